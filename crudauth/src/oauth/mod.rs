//! Social sign-in: OAuth 2.0 and OpenID Connect (feature `oauth`, switched on by
//! [`crate::CrudAuthBuilder::oauth`]).
//!
//! - Providers: the presets [`ProviderConfig::google`], [`ProviderConfig::microsoft`] and
//!   [`ProviderConfig::github`], any OpenID Connect issuer by discovery
//!   ([`ProviderConfig::oidc`]), or an app's own [`OAuthProvider`].
//! - The flow: `GET /oauth/{provider}/authorize` stores a pending state (256 random bits,
//!   kept server-side under a keyed hash, single use, 30 minutes) bound to the browser by the
//!   `oauth_state` cookie, with PKCE S256 and an OpenID Connect `nonce` always;
//!   `GET /oauth/{provider}/callback` checks the cookie, claims the state, exchanges the code,
//!   verifies the ID token, and signs the user in over the session transport (or hands a token
//!   pair to a bearer client: `?response=token`).
//! - Accounts: links (provider, subject) → user live in a [`LinkStore`] (a table crudauth owns
//!   in `crudauth-sea`, or memory), so the user table needs no new column.
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! use crudauth::oauth::{OAuthConfig, ProviderConfig};
//! let auth = b
//!     .oauth(
//!         OAuthConfig::new("https://api.example.com")
//!             .provider(ProviderConfig::google("client-id", "client-secret"))
//!             .provider(ProviderConfig::github("client-id", "client-secret")),
//!     )
//!     .build()?;
//! let oauth = auth.oauth().expect("configured");
//! assert_eq!(oauth.callback_url("github").as_deref(), Some("https://api.example.com/oauth/github/callback"));
//! # Ok(()) });
//! ```

mod accounts;
mod config;
mod flow;
mod github;
mod links;
mod oidc;
mod provider;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use config::{OAuthConfig, ProviderConfig, ResponseMode};
pub(crate) use flow::CallbackParams;
pub use links::{LinkStore, MemoryLinkStore, OAuthLink};
pub use provider::{
    AuthorizeRequest, CodeExchange, OAuthIdentity, OAuthProvider, PkceCodeChallenge, ProviderError,
};

use crate::core::Core;
use crate::error::{AuthError, ConfigError};
use crate::login::Login;
use crate::user::{DynUserRepository, LogicalField, UserRecord};
pub(crate) use state::Purpose;
use state::Redirects;

/// [`crate::store::fail_closed`] for a fault of the state store or the link store.
pub(crate) fn store_fault(e: crate::store::StoreError) -> AuthError {
    crate::store::fail_closed("OAuth store", &e)
}

/// Why an OAuth flow ended without a sign-in: the original's codes, answered as
/// `?error=<code>` in redirect mode and `400 {"detail": "<code>"}` in JSON mode.
///
/// ```
/// assert_eq!(crudauth::oauth::OAuthErrorCode::InvalidState.as_str(), "invalid_state");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// The provider refused, could not be reached, or its answer failed a check.
    OAuthFailed,
    /// The state is missing, not this browser's, unknown, expired or used.
    InvalidState,
    /// The provider gave no address (and no link exists).
    EmailMissing,
    /// The provider does not vouch for the address.
    EmailUnverified,
    /// The address is longer than any stored one can be.
    EmailTooLong,
    /// The account already has another account of this provider linked, or this provider
    /// account is linked to another user.
    ProviderAlreadyLinked,
    /// The account is disabled.
    AccountInactive,
    /// The app's `on_before_register` or `on_before_login` hook refused (ours).
    SignInRefused,
}

impl OAuthErrorCode {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::OAuthFailed => "oauth_failed",
            OAuthErrorCode::InvalidState => "invalid_state",
            OAuthErrorCode::EmailMissing => "email_missing",
            OAuthErrorCode::EmailUnverified => "email_unverified",
            OAuthErrorCode::EmailTooLong => "email_too_long",
            OAuthErrorCode::ProviderAlreadyLinked => "provider_already_linked",
            OAuthErrorCode::AccountInactive => "account_inactive",
            OAuthErrorCode::SignInRefused => "sign_in_refused",
        }
    }
}

/// How a flow failed: one of the codes, or a fault of ours (store down: 503).
#[derive(Debug)]
pub(crate) enum Failure {
    Code(OAuthErrorCode),
    Auth(AuthError),
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        Failure::Auth(e)
    }
}

impl From<OAuthErrorCode> for Failure {
    fn from(c: OAuthErrorCode) -> Self {
        Failure::Code(c)
    }
}

/// A started flow: where to send the browser.
pub(crate) struct Begun {
    pub url: String,
    pub state: String,
}

/// A finished flow.
pub(crate) struct Finished<U> {
    pub user: Arc<U>,
    pub created: bool,
    pub provider: String,
    pub purpose: Purpose,
    pub redirect_to: Option<String>,
}

struct Inner {
    config: OAuthConfig,
    providers: BTreeMap<String, Arc<dyn OAuthProvider>>,
    links: Arc<dyn LinkStore>,
    redirects: Redirects,
    base: String,
}

/// The OAuth service: providers, pending flows, links, and the account rules.
pub struct OAuth<U> {
    core: Arc<Core<U>>,
    login: Login<U>,
    repo: Arc<dyn DynUserRepository<U>>,
    inner: Arc<Inner>,
    /// The takeover of an account with an unproven address (the builder wires it with the
    /// stores of every method that is on).
    claim: Option<Arc<crate::claim::Claim<U>>>,
    /// The passkeys, which an unlink counts as ways in.
    #[cfg(feature = "passkeys")]
    passkeys: Option<Arc<dyn crate::passkey::PasskeyStore>>,
}

impl<U> Clone for OAuth<U> {
    fn clone(&self) -> Self {
        OAuth {
            core: self.core.clone(),
            login: self.login.clone(),
            repo: self.repo.clone(),
            inner: self.inner.clone(),
            claim: self.claim.clone(),
            #[cfg(feature = "passkeys")]
            passkeys: self.passkeys.clone(),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl<U: UserRecord> OAuth<U> {
    pub(crate) fn new(
        core: Arc<Core<U>>,
        login: Login<U>,
        repo: Arc<dyn DynUserRepository<U>>,
        mut config: OAuthConfig,
    ) -> Result<Self, ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if !core.repo.schema().writable(LogicalField::EmailVerified) {
            return invalid(
                "oauth needs a writable email_verified column: an account whose address was \
                 never verified is claimed by the provider sign-in that proves it, and marked \
                 verified"
                    .into(),
            );
        }
        if !core.repo.schema().has(LogicalField::Email) {
            return invalid("oauth needs an email column on the user table".into());
        }
        if !provider::allowed_endpoint(&config.redirect_base_url) {
            return invalid(format!(
                "oauth redirect_base_url {:?} must be an https URL (or http on loopback)",
                config.redirect_base_url
            ));
        }
        let base = url::Url::parse(&config.redirect_base_url)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let prefix = config.prefix.trim_end_matches('/').to_owned();
        if !prefix.starts_with('/') || prefix.contains(['{', '}', '?', '#']) {
            return invalid(format!("oauth prefix {:?} must be a path", config.prefix));
        }
        config.prefix = prefix;
        if config.http_timeout.is_zero() || config.state_ttl.is_zero() {
            return invalid("oauth http_timeout and state_ttl must be positive".into());
        }
        let redirects = Redirects::new(
            base.clone(),
            &config.default_redirect,
            config.app_redirects.clone(),
        );
        // The default's origin is allowed by construction: `safe` checks the rest (http(s),
        // no control characters, no credentials, not `//host`).
        if redirects.safe(&config.default_redirect, false).is_none() {
            return invalid(format!(
                "oauth default_redirect {:?} must be a path or an absolute http(s) URL",
                config.default_redirect
            ));
        }
        if config.providers.is_empty() {
            return invalid("oauth has no provider".into());
        }
        let http = provider::http_client(config.http_timeout)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut providers = BTreeMap::new();
        for p in std::mem::take(&mut config.providers) {
            if !valid_name(&p.name) {
                return invalid(format!(
                    "oauth provider name {:?}: 1-32 of a-z 0-9 _ -",
                    p.name
                ));
            }
            let name = p.name.clone();
            if providers.insert(name.clone(), p.build(&http)?).is_some() {
                return invalid(format!("oauth provider `{name}` configured twice"));
            }
        }
        let links = match config.links.take() {
            Some(links) => links,
            None => {
                tracing::warn!(
                    "crudauth: OAuth links are kept in process memory (configure a LinkStore)"
                );
                Arc::new(MemoryLinkStore::default())
            }
        };
        let base = config.redirect_base_url.trim_end_matches('/').to_owned();
        Ok(OAuth {
            core,
            login,
            repo,
            inner: Arc::new(Inner {
                config,
                providers,
                links,
                redirects,
                base,
            }),
            claim: None,
            #[cfg(feature = "passkeys")]
            passkeys: None,
        })
    }

    /// The passkeys an unlink counts as ways in (the builder wires it when both are on).
    #[cfg(feature = "passkeys")]
    pub(crate) fn with_passkeys(mut self, store: Arc<dyn crate::passkey::PasskeyStore>) -> Self {
        self.passkeys = Some(store);
        self
    }

    /// The claim of accounts with an unproven address (the builder wires it).
    pub(crate) fn with_claim(mut self, claim: Arc<crate::claim::Claim<U>>) -> Self {
        self.claim = Some(claim);
        self
    }

    /// The settings.
    pub fn config(&self) -> &OAuthConfig {
        &self.inner.config
    }

    /// The configured providers' names.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.oauth(crudauth::oauth::OAuthConfig::new("https://api.example.com").provider(crudauth::oauth::ProviderConfig::github("id", "s"))).build()?;
    /// assert_eq!(auth.oauth().unwrap().providers().collect::<Vec<_>>(), ["github"]);
    /// # Ok(()) });
    /// ```
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.inner.providers.keys().map(String::as_str)
    }

    /// The link store.
    pub fn links(&self) -> &Arc<dyn LinkStore> {
        &self.inner.links
    }

    /// The callback URL of a provider (to register with it); `None` if not configured.
    pub fn callback_url(&self, provider: &str) -> Option<String> {
        self.inner.providers.contains_key(provider).then(|| {
            format!(
                "{}{}/{provider}/callback",
                self.inner.base, self.inner.config.prefix
            )
        })
    }

    pub(crate) fn has_provider(&self, provider: &str) -> bool {
        self.inner.providers.contains_key(provider)
    }

    pub(crate) fn safe_redirect(&self, raw: &str, token_mode: bool) -> Option<String> {
        self.inner.redirects.safe(raw, token_mode)
    }
}
