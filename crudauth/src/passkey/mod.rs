//! Passkeys (feature `passkeys`, switched on by [`crate::CrudAuthBuilder::passkeys`]):
//! WebAuthn registration and sign-in with `webauthn-rs`, which does every CBOR, attestation
//! and signature check; crudauth keeps the ceremonies, the credentials and the rules.
//!
//! - Registration, for a signed-in user inside the fresh sign-in or sudo window:
//!   `POST /passkeys/register/start`, then `/passkeys/register/finish` with the browser's
//!   `navigator.credentials.create()` answer.
//! - Sign-in: `POST /passkeys/login/start` (with `{username}` for an allow-list, without it for
//!   a discoverable credential), then `/passkeys/login/finish`; it ends like any sign-in (the
//!   session's cookies, or a token pair with `"response": "token"`). A passkey needs user
//!   verification, so it is two factors in itself: no second-factor challenge follows it.
//! - Sudo with a passkey: `POST /passkeys/sudo/start`, `/passkeys/sudo/finish`.
//! - Management: `GET /passkeys`, `PATCH /passkeys/{id} {name}`, `DELETE /passkeys/{id}`;
//!   the last way to sign in (no password, no provider link, no other passkey) stays.
//!
//! Every ceremony's state is kept server-side, in the store, under the keyed hash of a
//! 256-bit handle the client echoes (`ceremony`): single use (claimed before it is checked,
//! so a failed or replayed answer spends it), 5 minutes. Credentials live in a
//! [`PasskeyStore`] (`crudauth-sea`'s table, or memory), their signature counter moved by a
//! compare-and-set; a counter that goes back is refused and logged as a possible clone.
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! use crudauth::passkey::PasskeyConfig;
//! let auth = b.passkeys(PasskeyConfig::new("app.example.com", "https://app.example.com")).build()?;
//! assert!(auth.passkeys().is_some());
//! # Ok(()) });
//! ```

mod ceremony;
mod elevate;
mod manage;
mod store;

use std::sync::Arc;
use std::time::Duration;

pub use manage::PasskeyInfo;
pub use store::{MemoryPasskeyStore, PasskeyStore, StoredPasskey};

use crate::core::Core;
use crate::error::{AuthError, ConfigError};
use crate::login::Login;
use crate::store::StoreError;
use crate::sudo::Sudo;
use crate::user::UserRecord;

/// Settings of passkeys.
///
/// ```
/// let c = crudauth::passkey::PasskeyConfig::new("app.example.com", "https://app.example.com")
///     .origin("https://admin.app.example.com")
///     .rp_name("Example App");
/// assert_eq!(c.origins.len(), 2);
/// assert_eq!(c.ceremony_ttl.as_secs(), 300);
/// ```
#[derive(Clone)]
pub struct PasskeyConfig {
    /// The relying party id: the registrable domain the credentials are bound to
    /// (`app.example.com`, or `localhost` in development). Never taken from a request.
    pub rp_id: String,
    /// The name authenticators show (default: the RP id).
    pub rp_name: String,
    /// The origins pages may run ceremonies from (`https://app.example.com`); each must be
    /// the RP id or a subdomain of it. Any other origin is a refused ceremony.
    pub origins: Vec<String>,
    /// How long a started ceremony can be finished (default 5 minutes).
    pub ceremony_ttl: Duration,
    /// The most passkeys one user may hold (default 20).
    pub max_per_user: usize,
    store: Option<Arc<dyn PasskeyStore>>,
}

impl std::fmt::Debug for PasskeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyConfig")
            .field("rp_id", &self.rp_id)
            .field("rp_name", &self.rp_name)
            .field("origins", &self.origins)
            .field("ceremony_ttl", &self.ceremony_ttl)
            .field("max_per_user", &self.max_per_user)
            .field("store", &self.store.is_some())
            .finish()
    }
}

impl PasskeyConfig {
    /// Passkeys for the relying party `rp_id`, with ceremonies from `origin`.
    ///
    /// ```
    /// let c = crudauth::passkey::PasskeyConfig::new("localhost", "http://localhost:3000");
    /// assert_eq!(c.rp_name, "localhost");
    /// ```
    pub fn new(rp_id: impl Into<String>, origin: impl Into<String>) -> Self {
        let rp_id = rp_id.into();
        PasskeyConfig {
            rp_name: rp_id.clone(),
            rp_id,
            origins: vec![origin.into()],
            ceremony_ttl: Duration::from_secs(300),
            max_per_user: 20,
            store: None,
        }
    }

    /// Adds an origin ceremonies may run from.
    ///
    /// ```
    /// let c = crudauth::passkey::PasskeyConfig::new("example.com", "https://example.com")
    ///     .origin("https://www.example.com");
    /// assert_eq!(c.origins[1], "https://www.example.com");
    /// ```
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// The name authenticators show.
    ///
    /// ```
    /// let c = crudauth::passkey::PasskeyConfig::new("example.com", "https://example.com").rp_name("Example");
    /// assert_eq!(c.rp_name, "Example");
    /// ```
    pub fn rp_name(mut self, name: impl Into<String>) -> Self {
        self.rp_name = name.into();
        self
    }

    /// Where passkeys are kept (default: process memory, with a warning; use
    /// `crudauth_sea::SeaPasskeyStore` in production).
    ///
    /// ```
    /// let store = std::sync::Arc::new(crudauth::passkey::MemoryPasskeyStore::default());
    /// let c = crudauth::passkey::PasskeyConfig::new("example.com", "https://example.com").store(store);
    /// # let _ = c;
    /// ```
    pub fn store(mut self, store: Arc<dyn PasskeyStore>) -> Self {
        self.store = Some(store);
        self
    }

    fn webauthn(&self) -> Result<webauthn_rs::Webauthn, ConfigError> {
        let bad = |m: String| ConfigError::Invalid(format!("passkeys: {m}"));
        let parse = |o: &str| {
            webauthn_rs::prelude::Url::parse(o)
                .map_err(|_| bad(format!("origin {o:?} is not a URL")))
        };
        let Some((first, rest)) = self.origins.split_first() else {
            return Err(bad("at least one origin is needed".into()));
        };
        let first = parse(first)?;
        let mut builder = webauthn_rs::WebauthnBuilder::new(&self.rp_id, &first)
            .map_err(|e| bad(format!("the RP id and origin do not fit together: {e}")))?
            .rp_name(&self.rp_name)
            .timeout(self.ceremony_ttl);
        for origin in rest {
            let url = parse(origin)?;
            let host = url.host_str().unwrap_or_default();
            if host != self.rp_id && !host.ends_with(&format!(".{}", self.rp_id)) {
                return Err(bad(format!(
                    "origin {origin:?} is not the RP id or a subdomain of it"
                )));
            }
            builder = builder.append_allowed_origin(&url);
        }
        builder
            .build()
            .map_err(|e| bad(format!("invalid configuration: {e}")))
    }
}

/// The passkey service (present when [`crate::CrudAuthBuilder::passkeys`] was given).
/// Reached as `auth.passkeys()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// # let auth = b.passkeys(crudauth::passkey::PasskeyConfig::new("example.com", "https://example.com")).build()?;
/// let passkeys = auth.passkeys().expect("passkeys on");
/// assert_eq!(passkeys.config().rp_id, "example.com");
/// # Ok(()) });
/// ```
pub struct Passkeys<U> {
    core: Arc<Core<U>>,
    login: Login<U>,
    sudo: Sudo<U>,
    parts: Arc<Parts>,
}

struct Parts {
    config: PasskeyConfig,
    webauthn: webauthn_rs::Webauthn,
    store: Arc<dyn PasskeyStore>,
    /// Whether a user (by id) has another way in than a password or a passkey (a provider
    /// link): the builder wires it when OAuth is on, so the last passkey of an account that
    /// signs in through a provider can go.
    other_ways: Option<OtherWays>,
}

impl<U> Clone for Passkeys<U> {
    fn clone(&self) -> Self {
        Passkeys {
            core: self.core.clone(),
            login: self.login.clone(),
            sudo: self.sudo.clone(),
            parts: self.parts.clone(),
        }
    }
}

impl<U> std::fmt::Debug for Passkeys<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("config", &self.parts.config)
            .finish_non_exhaustive()
    }
}

/// Whether a user (by id) has a way in that is neither a password nor a passkey.
pub(crate) type OtherWays =
    Arc<dyn Fn(String) -> crate::user::BoxFuture<'static, Result<bool, StoreError>> + Send + Sync>;

pub(crate) fn store_fault(e: StoreError) -> AuthError {
    crate::store::fail_closed("passkey store", &e)
}

impl<U: UserRecord> Passkeys<U> {
    pub(crate) fn new(
        core: Arc<Core<U>>,
        login: Login<U>,
        sudo: Sudo<U>,
        mut config: PasskeyConfig,
        other_ways: Option<OtherWays>,
    ) -> Result<Self, ConfigError> {
        let webauthn = config.webauthn()?;
        if config.ceremony_ttl.is_zero() || config.ceremony_ttl > Duration::from_secs(3600) {
            return Err(ConfigError::Invalid(
                "passkeys: ceremony_ttl must be between 1 second and 1 hour".into(),
            ));
        }
        if config.max_per_user == 0 {
            return Err(ConfigError::Invalid(
                "passkeys: max_per_user must be positive".into(),
            ));
        }
        let store = match config.store.take() {
            Some(store) => store,
            None => {
                tracing::warn!(
                    "crudauth: passkeys are kept in process memory and lost on restart; \
                     use crudauth_sea::SeaPasskeyStore in production"
                );
                Arc::new(MemoryPasskeyStore::default())
            }
        };
        Ok(Passkeys {
            core,
            login,
            sudo,
            parts: Arc::new(Parts {
                config,
                webauthn,
                store,
                other_ways,
            }),
        })
    }

    /// The settings.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.passkeys(crudauth::passkey::PasskeyConfig::new("example.com", "https://example.com")).build()?;
    /// assert_eq!(auth.passkeys().unwrap().config().max_per_user, 20);
    /// # Ok(()) });
    /// ```
    pub fn config(&self) -> &PasskeyConfig {
        &self.parts.config
    }

    /// Where the passkeys are kept (claims and OAuth's unlinks reach them).
    #[cfg(any(feature = "oauth", feature = "passwordless", feature = "admin"))]
    pub(crate) fn store(&self) -> &Arc<dyn PasskeyStore> {
        &self.parts.store
    }
}
