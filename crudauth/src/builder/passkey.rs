//! The builder's passkey switch (feature `passkeys`).

use std::sync::Arc;

use super::CrudAuthBuilder;
use crate::core::Core;
use crate::error::ConfigError;
use crate::login::Login;
use crate::passkey::{PasskeyConfig, Passkeys};
use crate::sudo::Sudo;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns on passkeys: the `/passkeys` routes (registration, sign-in, sudo, listing,
    /// renaming, removal) and the `passkey_login` rate limit (30 per 10 minutes per client
    /// address). `build` refuses an origin that is not the RP id or a subdomain of it.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::passkey::PasskeyConfig;
    /// let b = b.passkeys(PasskeyConfig::new("example.com", "https://example.com"));
    /// assert!(b.build()?.passkeys().is_some());
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let refused = b.passkeys(PasskeyConfig::new("example.com", "https://evil.example")).build();
    /// assert!(refused.is_err());
    /// # Ok(()) });
    /// ```
    pub fn passkeys(mut self, config: PasskeyConfig) -> Self {
        self.methods.passkeys = Some(config);
        self
    }
}

/// Builds the passkey service, counting provider links as ways in and letting OAuth's
/// claims and unlinks see the passkeys.
pub(super) fn wire<U: UserRecord>(
    config: Option<PasskeyConfig>,
    (core, login, sudo): (&Arc<Core<U>>, &Login<U>, &Sudo<U>),
    #[cfg(feature = "oauth")] oauth: &mut Option<crate::oauth::OAuth<U>>,
) -> Result<Option<Passkeys<U>>, ConfigError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let passkeys = Passkeys::new(
        core.clone(),
        login.clone(),
        sudo.clone(),
        config,
        #[cfg(feature = "oauth")]
        oauth.as_ref().map(|o| {
            let links = o.links().clone();
            let linked: crate::passkey::OtherWays = Arc::new(move |user_id: String| {
                let links = links.clone();
                Box::pin(async move { Ok(!links.for_user(&user_id).await?.is_empty()) })
            });
            linked
        }),
        #[cfg(not(feature = "oauth"))]
        None,
    )?;
    #[cfg(feature = "oauth")]
    {
        *oauth = oauth
            .take()
            .map(|o| o.with_passkeys(passkeys.store().clone()));
    }
    Ok(Some(passkeys))
}
