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
        #[allow(unused_mut)] // the passkeys wire themselves into it
        let mut oauth = match self.oauth {
            Some(config) => {
                let oauth =
                    crate::oauth::OAuth::new(core.clone(), login.clone(), repo.clone(), config)?;
                #[cfg(feature = "mfa")]
                let oauth = match &mfa {
                    Some(mfa) => oauth.with_factors(mfa.factors().clone()),
                    None => oauth,
                };
                Some(oauth)
            }
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
        let passwordless = match self.passwordless {
            Some(config) => Some(crate::passwordless::Passwordless::new(
                core.clone(),
                login.clone(),
                repo.clone(),
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
            _user: std::marker::PhantomData,
        })
    }
}
