//! The optional sign-in methods (each behind its cargo feature): their settings as the
//! builder collects them, and the services built from them, wired into each other.

use std::sync::Arc;

use crate::core::Core;
use crate::error::ConfigError;
use crate::login::Login;
use crate::methods::Methods;
use crate::sudo::Sudo;
use crate::user::{DynUserRepository, UserRecord};

/// The settings given to the builder.
pub(super) struct Settings<U> {
    #[cfg(feature = "oauth")]
    pub oauth: Option<crate::oauth::OAuthConfig>,
    #[cfg(feature = "mfa")]
    pub mfa: Option<crate::mfa::MfaConfig<U>>,
    #[cfg(feature = "passkeys")]
    pub passkeys: Option<crate::passkey::PasskeyConfig>,
    #[cfg(feature = "passwordless")]
    pub passwordless: Option<crate::passwordless::PasswordlessConfig>,
    #[cfg(feature = "api-keys")]
    pub api_keys: Option<crate::api_key::ApiKeyConfig>,
    #[cfg(feature = "admin")]
    pub impersonation: Option<crate::admin::ImpersonationConfig>,
    #[cfg(feature = "device-login")]
    pub device_login: Option<crate::device_login::DeviceLoginConfig>,
    #[cfg(feature = "admin")]
    pub users_admin: Option<crate::admin::UsersAdminConfig>,
    _user: std::marker::PhantomData<fn() -> U>,
}

impl<U> Default for Settings<U> {
    fn default() -> Self {
        Settings {
            #[cfg(feature = "oauth")]
            oauth: None,
            #[cfg(feature = "mfa")]
            mfa: None,
            #[cfg(feature = "passkeys")]
            passkeys: None,
            #[cfg(feature = "passwordless")]
            passwordless: None,
            #[cfg(feature = "api-keys")]
            api_keys: None,
            #[cfg(feature = "admin")]
            impersonation: None,
            #[cfg(feature = "device-login")]
            device_login: None,
            #[cfg(feature = "admin")]
            users_admin: None,
            _user: std::marker::PhantomData,
        }
    }
}

/// What every method's service is built over.
pub(super) struct Parts<'a, U> {
    pub core: &'a Arc<Core<U>>,
    pub login: &'a Login<U>,
    pub sudo: &'a Sudo<U>,
    /// The repository with its writes announced.
    pub repo: &'a Arc<dyn DynUserRepository<U>>,
    /// The email flows, when configured.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub recovery: Option<&'a crate::recovery::Recovery<U>>,
}

/// What each method that is on keeps for a user, by name (`links`, `factors`, `passkeys`,
/// `api_keys`),
/// with the function that removes all of it: for a provider claim and a deleted account.
/// A new method with per-user records adds its remover here.
#[cfg(any(feature = "oauth", feature = "passwordless", feature = "admin"))]
#[allow(clippy::extra_unused_type_parameters)] // used by the methods' parameters, when on
fn removers<U: UserRecord>(
    #[cfg(feature = "oauth")] oauth: Option<&crate::oauth::OAuth<U>>,
    #[cfg(feature = "mfa")] mfa: Option<&crate::mfa::Mfa<U>>,
    #[cfg(feature = "passkeys")] passkeys: Option<&crate::passkey::Passkeys<U>>,
    #[cfg(feature = "api-keys")] api_keys: Option<&crate::api_key::ApiKeys<U>>,
) -> Vec<(&'static str, crate::claim::Remover)> {
    #[allow(unused_mut)] // without the other methods nothing is added
    let mut removers: Vec<(&'static str, crate::claim::Remover)> = Vec::new();
    #[cfg(feature = "oauth")]
    if let Some(oauth) = oauth {
        removers.push(remover(
            "links",
            oauth.links().clone(),
            |links, uid| async move { links.delete_all(&uid).await },
        ));
    }
    #[cfg(feature = "mfa")]
    if let Some(mfa) = mfa {
        removers.push(remover(
            "factors",
            mfa.factors().clone(),
            |f, uid| async move { f.remove(&uid).await.map(usize::from) },
        ));
    }
    #[cfg(feature = "passkeys")]
    if let Some(passkeys) = passkeys {
        removers.push(remover(
            "passkeys",
            passkeys.store().clone(),
            |s, uid| async move { s.delete_all(&uid).await },
        ));
    }
    #[cfg(feature = "api-keys")]
    if let Some(keys) = api_keys {
        removers.push(remover(
            "api_keys",
            keys.store().clone(),
            |s, uid| async move { s.delete_all(&uid).await },
        ));
    }
    removers
}

/// One named remover over a store handle: `remove(store, user id)`.
#[cfg(all(
    any(feature = "oauth", feature = "passwordless", feature = "admin"),
    any(
        feature = "oauth",
        feature = "mfa",
        feature = "passkeys",
        feature = "api-keys"
    )
))]
fn remover<T, F, Fut>(
    what: &'static str,
    target: T,
    remove: F,
) -> (&'static str, crate::claim::Remover)
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<usize, crate::store::StoreError>> + Send + 'static,
{
    let remove = Arc::new(remove);
    let run: crate::claim::Remover = Arc::new(move |uid: String| {
        let (target, remove) = (target.clone(), remove.clone());
        Box::pin(async move { remove(target, uid).await })
    });
    (what, run)
}

impl<U: UserRecord> Settings<U> {
    /// Builds the configured services. A provider claim removes the second factors and
    /// passkeys of the account it takes over; passkeys and provider links count each other
    /// as ways in.
    pub(super) fn build(self, parts: Parts<'_, U>) -> Result<Methods<U>, ConfigError> {
        #[allow(unused_variables)]
        let Parts {
            core,
            login,
            sudo,
            repo,
            recovery,
        } = parts;
        #[cfg(feature = "mfa")]
        let mfa = match self.mfa {
            Some(config) => Some(crate::mfa::Mfa::new(
                core.clone(),
                login.clone(),
                sudo.clone(),
                config,
            )?),
            None => None,
        };
        #[cfg(feature = "oauth")]
        #[allow(unused_mut)] // the passkeys and the claim wire themselves into it
        let mut oauth = match self.oauth {
            Some(config) => Some(crate::oauth::OAuth::new(
                core.clone(),
                login.clone(),
                repo.clone(),
                config,
            )?),
            None => None,
        };
        #[cfg(feature = "passkeys")]
        let passkeys = super::passkey::wire(
            self.passkeys,
            (core, login, sudo),
            #[cfg(feature = "oauth")]
            &mut oauth,
        )?;
        #[cfg(feature = "passwordless")]
        #[allow(unused_mut)] // the claim wires itself into it
        let mut passwordless = match self.passwordless {
            Some(config) => Some(crate::passwordless::Passwordless::new(
                core.clone(),
                login.clone(),
                repo.clone(),
                config,
            )?),
            None => None,
        };
        #[cfg(feature = "api-keys")]
        let api_keys = match self.api_keys {
            Some(config) => Some(crate::api_key::ApiKeys::new(core.clone(), config)?),
            None => None,
        };
        #[cfg(feature = "admin")]
        let impersonation = match self.impersonation {
            Some(config) => Some(crate::admin::Impersonation::new(core.clone(), config)?),
            None => None,
        };
        #[cfg(any(feature = "oauth", feature = "passwordless"))]
        {
            let removers = removers::<U>(
                #[cfg(feature = "oauth")]
                oauth.as_ref(),
                #[cfg(feature = "mfa")]
                mfa.as_ref(),
                #[cfg(feature = "passkeys")]
                passkeys.as_ref(),
                #[cfg(feature = "api-keys")]
                api_keys.as_ref(),
            );
            let claim = Arc::new(crate::claim::Claim {
                core: core.clone(),
                login: login.clone(),
                repo: repo.clone(),
                removers,
            });
            #[cfg(feature = "oauth")]
            {
                oauth = oauth.map(|o| o.with_claim(claim.clone()));
            }
            #[cfg(feature = "passwordless")]
            {
                passwordless = passwordless.map(|p| p.with_claim(claim.clone()));
            }
            let _ = claim;
        }
        #[cfg(feature = "device-login")]
        let device_login = match self.device_login {
            Some(config) => Some(crate::device_login::DeviceLogin::new(
                core.clone(),
                login.clone(),
                config,
            )?),
            None => None,
        };
        #[cfg(feature = "admin")]
        let users_admin = match self.users_admin {
            Some(config) => Some(crate::admin::UsersAdmin::new(
                core.clone(),
                login.clone(),
                repo.clone(),
                recovery.cloned(),
                removers::<U>(
                    #[cfg(feature = "oauth")]
                    oauth.as_ref(),
                    #[cfg(feature = "mfa")]
                    mfa.as_ref(),
                    #[cfg(feature = "passkeys")]
                    passkeys.as_ref(),
                    #[cfg(feature = "api-keys")]
                    api_keys.as_ref(),
                ),
                config,
            )?),
            None => None,
        };
        Ok(Methods {
            #[cfg(feature = "oauth")]
            oauth,
            #[cfg(feature = "mfa")]
            mfa,
            #[cfg(feature = "passkeys")]
            passkeys,
            #[cfg(feature = "passwordless")]
            passwordless,
            #[cfg(feature = "api-keys")]
            api_keys,
            #[cfg(feature = "admin")]
            impersonation,
            #[cfg(feature = "device-login")]
            device_login,
            #[cfg(feature = "admin")]
            users_admin,
            _user: std::marker::PhantomData,
        })
    }
}
