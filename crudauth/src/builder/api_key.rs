//! The builder's API key switch (feature `api-keys`).

use super::CrudAuthBuilder;
use crate::api_key::ApiKeyConfig;
use crate::principal::Transport;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns on API keys: the API key transport (tried in the order transports are added,
    /// like `.session` and `.bearer`), the `/api-keys` routes, and the per-key `api_key`
    /// rate limit (600 a minute). `build` refuses a malformed prefix or header name.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::api_key::ApiKeyConfig;
    /// let auth = b.api_keys(ApiKeyConfig::default()).build()?;
    /// assert!(auth.api_keys().is_some());
    /// # let b = crudauth::doc_fixture::builder().await;
    /// assert!(b.api_keys(ApiKeyConfig::default().prefix("Bad Prefix")).build().is_err());
    /// # Ok(()) });
    /// ```
    pub fn api_keys(mut self, config: ApiKeyConfig) -> Self {
        self.methods.api_keys = Some(config);
        self.order.retain(|v| *v != Transport::ApiKey);
        self.order.push(Transport::ApiKey);
        self
    }
}
