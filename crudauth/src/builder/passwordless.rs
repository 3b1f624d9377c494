//! The builder's passwordless switch (feature `passwordless`).

use super::CrudAuthBuilder;
use crate::passwordless::PasswordlessConfig;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns on passwordless sign-in: `/otp/request`, `/otp/verify` and
    /// `/magic-link/verify`, and the `otp_request`, `otp_verify` and `magic_link_verify`
    /// rate limits. Codes go by email with an email column and an email sender, by SMS with
    /// a phone column and a delivery channel; `build` refuses a table and deliveries that
    /// allow neither.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::passwordless::PasswordlessConfig;
    /// let refused = b.passwordless(PasswordlessConfig::new("app.example.com")).build();
    /// assert!(refused.is_err()); // magic links need an absolute http(s) frontend URL
    /// # Ok(()) });
    /// ```
    pub fn passwordless(mut self, config: PasswordlessConfig) -> Self {
        self.methods.passwordless = Some(config);
        self
    }
}
