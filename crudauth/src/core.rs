//! The parts every service shares, built once by the builder and held by the facade and
//! by each service (`login`, `sudo`, `recovery`, the transports) behind one `Arc`.
//!
//! Nothing here knows the facade: services import this module, never `facade`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::background::Background;
use crate::delivery::Deliveries;
use crate::error::AuthError;
use crate::hooks::Hooks;
use crate::keys::Keys;
use crate::lockout::Lockout;
use crate::password::PasswordHasher;
use crate::policy::PasswordPolicy;
use crate::principal::Transport;
use crate::ratelimit::RateLimiter;
use crate::revocation::Revocation;
use crate::session::Sessions;
use crate::store::Store;
use crate::tenant::Tenancy;
use crate::tokens::TokenService;
use crate::user::{DynUserRepository, UserRecord};

/// The shared parts of one configured auth facade.
pub(crate) struct Core<U> {
    pub repo: Arc<dyn DynUserRepository<U>>,
    pub store: Arc<dyn Store>,
    pub keys: Arc<Keys>,
    pub passwords: PasswordHasher,
    pub policy: PasswordPolicy,
    pub lockout: Lockout,
    pub limiter: RateLimiter,
    pub revocation: Revocation<U>,
    pub sessions: Option<Sessions>,
    pub tokens: Option<TokenService>,
    /// The configured transports, in the order they are tried.
    pub transports: Vec<Transport>,
    pub hooks: Hooks<U>,
    pub deliveries: Deliveries,
    pub background: Background,
    pub trusted_proxy_hops: usize,
    pub register_extra_fields: BTreeSet<String>,
    /// How recent a sign-in must be for `/set-password` (the recovery config's
    /// `fresh_sign_in`, 10 minutes without one).
    pub fresh_sign_in: Duration,
    /// The development switch (feature `dev-bypass`), when on.
    #[cfg(feature = "dev-bypass")]
    pub dev_bypass: Option<crate::dev::DevBypass<U>>,
    /// Where tenants come from, and the feature rule.
    pub tenancy: Tenancy<U>,
    /// Which addresses are refused as disposable (`None`: none are).
    pub disposable: Option<crate::disposable::DisposableEmails>,
    /// When a CAPTCHA is asked (`None`: never).
    pub captcha: Option<crate::captcha::CaptchaGuard>,
}

impl<U> Core<U> {
    /// `Err(422)` with the entry of `field` when the address is disposable (before any
    /// lookup: the answer tells nothing about accounts).
    pub(crate) fn refuse_disposable(&self, field: &str, address: &str) -> Result<(), AuthError> {
        match &self.disposable {
            Some(list) => list.check(field, address),
            None => Ok(()),
        }
    }

    /// The CAPTCHA gate of a guarded route (see [`crate::captcha`]).
    pub(crate) async fn check_captcha(
        &self,
        action: crate::captcha::CaptchaAction,
        client: &crate::client_ip::ClientMeta,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<(), AuthError> {
        match &self.captcha {
            Some(guard) => guard.check(action, client, headers, body).await,
            None => Ok(()),
        }
    }

    /// Counts a failed sign-in from this client for the CAPTCHA's after-failures rule.
    pub(crate) async fn captcha_login_failed(&self, client: &crate::client_ip::ClientMeta) {
        if let Some(guard) = &self.captcha {
            guard.login_failed(client).await;
        }
    }
}

impl<U: UserRecord> Core<U> {
    /// The user of an id in its text form (as records and tokens carry it): `None` when it
    /// does not parse as this table's key or nobody has it; a repository fault is a 503.
    pub(crate) async fn user_by_text_id(&self, raw: &str) -> Result<Option<U>, AuthError> {
        let Some(id) = self.repo.schema().id_kind.parse(raw) else {
            return Ok(None);
        };
        self.repo
            .find_by_id(&id)
            .await
            .map_err(crate::store::repo_fault)
    }
}
