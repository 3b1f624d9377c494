//! Two-factor sign-in (feature `mfa`, switched on by [`crate::CrudAuthBuilder::mfa`]): TOTP
//! (RFC 6238 with `totp-rs`), recovery codes, and a pre-auth challenge that no handler but
//! `/mfa/verify` and `/mfa/challenge` accepts.
//!
//! - Enrolment: `POST /mfa/totp/setup` answers the secret, the `otpauth://` URI and its QR
//!   code (SVG, and PNG as a data URL); `POST /mfa/totp/confirm {code}` enables it and answers
//!   10 recovery codes. Enabling, disabling and regenerating end every other session and
//!   token of the user.
//! - Sign-in: `/login`, `/token` and the OAuth callback answer a challenge for an account
//!   with a second factor (or one that must enrol); `POST /mfa/verify {challenge, code}`
//!   completes the sign-in over the transport that started it.
//! - At rest: secrets sealed with XChaCha20-Poly1305 under a key derived from the secret key
//!   (plus any rotation keys), the user id bound in; recovery codes as keyed hashes; both in
//!   a [`FactorStore`] (`crudauth-sea`'s table, or memory).
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! use crudauth::mfa::{MfaConfig, Required};
//! let auth = b.mfa(MfaConfig::new("Example App").required(Required::Never)).build()?;
//! assert!(auth.mfa().is_some());
//! # Ok(()) });
//! ```

mod challenge;
mod codes;
mod factors;
mod manage;
mod seal;

use std::sync::Arc;
use std::time::Duration;

pub use challenge::{Challenge, Completed, Origin};
pub use factors::{FactorStore, MemoryFactorStore, TotpFactor};
pub(crate) use manage::Changed;
pub use manage::{MfaStatus, Setup};

use crate::core::Core;
use crate::error::{AuthError, ConfigError};
use crate::login::Login;
use crate::store::StoreError;
use crate::sudo::Sudo;
use crate::user::{BoxFuture, UserRecord};
use seal::Seal;

type Predicate<U> = Arc<dyn Fn(Arc<U>) -> BoxFuture<'static, bool> + Send + Sync>;

/// Which accounts must have a second factor.
///
/// ```
/// use crudauth::mfa::Required;
/// # use crudauth::doc_fixture::User;
/// let admins: Required<User> = Required::when(|user: std::sync::Arc<User>| async move { user.username == "root" });
/// # let _ = admins;
/// ```
pub enum Required<U> {
    /// Nobody (MFA is each user's choice).
    Never,
    /// Everybody: an account without a factor enrols during its next sign-in.
    Always,
    /// Accounts the predicate names.
    When(Predicate<U>),
}

impl<U> Clone for Required<U> {
    fn clone(&self) -> Self {
        match self {
            Required::Never => Required::Never,
            Required::Always => Required::Always,
            Required::When(p) => Required::When(p.clone()),
        }
    }
}

impl<U: UserRecord> Required<U> {
    /// An async predicate on the app's user model.
    pub fn when<F, Fut>(predicate: F) -> Self
    where
        F: Fn(Arc<U>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = bool> + Send + 'static,
    {
        Required::When(Arc::new(move |user| Box::pin(predicate(user))))
    }

    async fn applies(&self, user: &U) -> bool {
        match self {
            Required::Never => false,
            Required::Always => true,
            Required::When(p) => p(Arc::new(user.clone())).await,
        }
    }
}

/// The two-factor settings.
///
/// ```
/// let config: crudauth::mfa::MfaConfig<crudauth::doc_fixture::User> = crudauth::mfa::MfaConfig::new("Example App");
/// assert_eq!(config.max_code_attempts, 5);
/// assert_eq!(config.challenge_ttl.as_secs(), 300);
/// ```
pub struct MfaConfig<U> {
    /// The issuer shown by authenticator apps (`otpauth://totp/{issuer}:{account}`).
    pub issuer: String,
    /// Which accounts must have a second factor (default: none).
    pub required: Required<U>,
    /// Sealing keys for TOTP secrets, 32 bytes each, newest first: the first seals, every
    /// one opens (rotation). The key derived from the secret key is always last, so
    /// secrets sealed before keys were configured still open. Default: only that one.
    pub encryption_keys: Vec<[u8; 32]>,
    /// How long a sign-in challenge lives (default 5 minutes).
    pub challenge_ttl: Duration,
    /// Codes a challenge takes before it dies (default 5).
    pub max_code_attempts: u32,
    /// Recovery codes made at enrolment and regeneration (default 10).
    pub recovery_code_count: usize,
    /// How long a setup may wait for its confirmation (default 10 minutes).
    pub pending_ttl: Duration,
    /// "Remember this device": how long a device that passed the second factor skips it
    /// (a signed cookie, revoked by any epoch move); default off.
    pub remember_device: Option<Duration>,
    factors: Option<Arc<dyn FactorStore>>,
}

impl<U> Clone for MfaConfig<U> {
    fn clone(&self) -> Self {
        MfaConfig {
            issuer: self.issuer.clone(),
            required: self.required.clone(),
            encryption_keys: self.encryption_keys.clone(),
            challenge_ttl: self.challenge_ttl,
            max_code_attempts: self.max_code_attempts,
            recovery_code_count: self.recovery_code_count,
            pending_ttl: self.pending_ttl,
            remember_device: self.remember_device,
            factors: self.factors.clone(),
        }
    }
}

impl<U> MfaConfig<U> {
    /// Defaults, with the issuer name authenticator apps show.
    pub fn new(issuer: impl Into<String>) -> Self {
        MfaConfig {
            issuer: issuer.into(),
            required: Required::Never,
            encryption_keys: Vec::new(),
            challenge_ttl: Duration::from_secs(300),
            max_code_attempts: 5,
            recovery_code_count: 10,
            pending_ttl: Duration::from_secs(600),
            remember_device: None,
            factors: None,
        }
    }

    /// Which accounts must have a second factor.
    ///
    /// ```
    /// # use crudauth::doc_fixture::User;
    /// let c: crudauth::mfa::MfaConfig<User> = crudauth::mfa::MfaConfig::new("App").required(crudauth::mfa::Required::Always);
    /// # let _ = c;
    /// ```
    pub fn required(mut self, required: Required<U>) -> Self {
        self.required = required;
        self
    }

    /// Where factors are kept (default: process memory, with a warning; use
    /// `crudauth_sea::SeaFactorStore` in production).
    ///
    /// ```
    /// # use crudauth::doc_fixture::User;
    /// let c: crudauth::mfa::MfaConfig<User> = crudauth::mfa::MfaConfig::new("App")
    ///     .factors(std::sync::Arc::new(crudauth::mfa::MemoryFactorStore::default()));
    /// # let _ = c;
    /// ```
    pub fn factors(mut self, store: Arc<dyn FactorStore>) -> Self {
        self.factors = Some(store);
        self
    }
}

/// The two-factor service.
pub struct Mfa<U> {
    core: Arc<Core<U>>,
    login: Login<U>,
    sudo: Sudo<U>,
    config: Arc<MfaConfig<U>>,
    factors: Arc<dyn FactorStore>,
    seal: Seal,
}

impl<U> Clone for Mfa<U> {
    fn clone(&self) -> Self {
        Mfa {
            core: self.core.clone(),
            login: self.login.clone(),
            sudo: self.sudo.clone(),
            config: self.config.clone(),
            factors: self.factors.clone(),
            seal: self.seal.clone(),
        }
    }
}

/// [`crate::store::fail_closed`] for a fault of the factor store or the challenge store.
pub(crate) fn store_fault(e: StoreError) -> AuthError {
    crate::store::fail_closed("MFA store", &e)
}

impl<U: UserRecord> Mfa<U> {
    pub(crate) fn new(
        core: Arc<Core<U>>,
        login: Login<U>,
        sudo: Sudo<U>,
        mut config: MfaConfig<U>,
    ) -> Result<Self, ConfigError> {
        if config.issuer.trim().is_empty() || config.issuer.contains(':') {
            return Err(ConfigError::Invalid(
                "mfa issuer must be a non-empty name without ':'".into(),
            ));
        }
        if config.max_code_attempts == 0
            || config.challenge_ttl.is_zero()
            || config.pending_ttl.is_zero()
            || !(1..=100).contains(&config.recovery_code_count)
        {
            return Err(ConfigError::Invalid(
                "mfa: attempts, lifetimes and the recovery code count must be positive".into(),
            ));
        }
        if core.sessions.is_none() && core.tokens.is_none() {
            return Err(ConfigError::NoTransport);
        }
        let mut keys = config.encryption_keys.clone();
        keys.push(core.keys.mfa);
        let factors = match config.factors.take() {
            Some(f) => f,
            None => {
                tracing::warn!(
                    "crudauth: second factors are kept in process memory (configure a FactorStore)"
                );
                Arc::new(MemoryFactorStore::default())
            }
        };
        Ok(Mfa {
            core,
            login,
            sudo,
            config: Arc::new(config),
            factors,
            seal: Seal::new(keys),
        })
    }

    /// The settings.
    pub fn config(&self) -> &MfaConfig<U> {
        &self.config
    }

    /// The factor store.
    pub fn factors(&self) -> &Arc<dyn FactorStore> {
        &self.factors
    }

    /// Whether the account must have a second factor.
    pub async fn is_required(&self, user: &U) -> bool {
        self.config.required.applies(user).await
    }

    /// Whether a sign-in of this account needs its second factor: it has one, or must enrol.
    pub async fn is_due(&self, user: &U) -> Result<bool, AuthError> {
        Ok(self.enabled(user).await? || self.is_required(user).await)
    }

    async fn enabled(&self, user: &U) -> Result<bool, AuthError> {
        let factor = self.factors.get(&user.user_id().to_string()).await;
        Ok(factor.map_err(store_fault)?.is_some_and(|f| f.enabled()))
    }

    /// The keyed hash a recovery code is stored as.
    fn recovery_hash(&self, user_id: &str, normalized: &str) -> String {
        let data = format!("mfa-recovery\u{0}{user_id}\u{0}{normalized}");
        crate::keys::hmac_hex(&self.core.keys.store, data.as_bytes())
    }
}
