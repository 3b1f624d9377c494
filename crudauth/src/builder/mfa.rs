//! The builder's two-factor switch (feature `mfa`).

use super::CrudAuthBuilder;
use crate::mfa::MfaConfig;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns on two-factor sign-in: the `/mfa` routes, the challenge at `/login`, `/token`
    /// and the OAuth callback for accounts with a factor (or that must enrol), `POST /sudo
    /// {code}`, and the `mfa_manage` rate limit (10 an hour per user).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.mfa(crudauth::mfa::MfaConfig::new("Example App"));
    /// assert!(b.build()?.mfa().is_some());
    /// # Ok(()) });
    /// ```
    pub fn mfa(mut self, config: MfaConfig<U>) -> Self {
        self.methods.mfa = Some(config);
        self
    }
}
