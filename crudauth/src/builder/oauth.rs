//! The builder's OAuth switch (feature `oauth`).

use super::CrudAuthBuilder;
use crate::oauth::OAuthConfig;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns on social sign-in with the configured providers: the routes under
    /// `config.prefix` (default `/oauth`), the link store, the `oauth_authorize` rate limit.
    /// `build` refuses a table without an email column, a non-https base URL (loopback
    /// excepted), an unsafe default redirect and duplicate or malformed provider names.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::oauth::{OAuthConfig, ProviderConfig};
    /// let b = b.oauth(OAuthConfig::new("https://api.example.com").provider(ProviderConfig::github("id", "secret")));
    /// assert!(b.build()?.oauth().is_some());
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let refused = b.oauth(OAuthConfig::new("http://api.example.com").provider(ProviderConfig::github("id", "s"))).build();
    /// assert!(refused.is_err()); // plain http off loopback
    /// # Ok(()) });
    /// ```
    pub fn oauth(mut self, config: OAuthConfig) -> Self {
        self.methods.oauth = Some(config);
        self
    }
}
