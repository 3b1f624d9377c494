//! The email flows: verification, password reset, email change, and set-password.
//!
//! One-time tokens are 256-bit random values, stored only as an HMAC (under a key derived
//! for this purpose) that also covers the purpose, so a reset token looked up as a verify
//! token is simply unknown. A token's record binds the user id, the user's revocation epoch
//! and the address it was issued for; redemption is an atomic get-and-delete, so of
//! concurrent redemptions exactly one succeeds. Each user has at most one live token per
//! purpose: issuing a new one retires the previous one, by an atomic swap of the user's
//! pointer to their live token (of two concurrent issuances, the later swap retires the
//! earlier token).
//!
//! A token is claimed before any expensive work is done for it: a reset confirmation takes
//! the token out of the store first, then checks the new password and hashes it, so one
//! token buys one hash however many requests race with it. A password the policy refuses
//! puts the token back (for the rest of its lifetime, unless a newer one replaced it), so a
//! typo does not burn the link.
//!
//! Request routes do their work (lookup, throttling, token issuance, delivery) in the
//! background: the answer, its status and its timing are the same whether or not the account
//! exists, and a failing mail server is only a log line.

mod flows;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use crate::core::Core;
use crate::error::{AuthError, ConfigError};
use crate::login::Login;
use crate::user::{LogicalField, UserRecord, normalize_email};

use self::tokens::{OneTimeTokens, TokenRecord};

/// The answer to a token that is unknown, used, expired, superseded or stale.
pub(crate) const INVALID_TOKEN: AuthError = AuthError::BadRequest("Invalid or expired token");

/// Settings of the email flows.
///
/// ```
/// let c = crudauth::RecoveryConfig::new("https://app.example.com");
/// assert_eq!(c.reset_path, "/reset-password");
/// assert_eq!(c.reset_ttl.as_secs(), 3600);
/// ```
#[derive(Clone, Debug)]
pub struct RecoveryConfig {
    /// The frontend's absolute base URL (`https://app.example.com`); every link starts with
    /// it. Never taken from a request's `Host` header.
    pub frontend_url: String,
    /// Path of the verification page (default `/verify-email`).
    pub verify_path: String,
    /// Path of the reset page (default `/reset-password`).
    pub reset_path: String,
    /// Path of the email-change confirmation page (default `/confirm-email-change`).
    pub change_path: String,
    /// Lifetime of a verification token (default 24 hours).
    pub verify_ttl: Duration,
    /// Lifetime of a reset token (default 1 hour).
    pub reset_ttl: Duration,
    /// Lifetime of an email-change token (default 24 hours).
    pub change_ttl: Duration,
    /// How recently a session must have signed in (or been elevated) to set a first
    /// password with `/set-password` (default 10 minutes).
    pub fresh_sign_in: Duration,
    /// The request routes answer this long after the request arrived (default 50 ms),
    /// whatever the account: the lookup and the delivery run in the background, so the
    /// answer's time never depends on them, and a fast delivery (an outbox, a local
    /// relay) has usually happened by the time the client reads its mail, as with the
    /// original's inline delivery. `Duration::ZERO` answers at once.
    pub answer_after: Duration,
}

impl RecoveryConfig {
    /// The defaults, with links under `frontend_url`.
    ///
    /// ```
    /// let c = crudauth::RecoveryConfig::new("http://127.0.0.1:3000");
    /// assert_eq!(c.verify_ttl.as_secs(), 24 * 3600);
    /// ```
    pub fn new(frontend_url: impl Into<String>) -> Self {
        RecoveryConfig {
            frontend_url: frontend_url.into(),
            verify_path: "/verify-email".into(),
            reset_path: "/reset-password".into(),
            change_path: "/confirm-email-change".into(),
            verify_ttl: Duration::from_secs(24 * 3600),
            reset_ttl: Duration::from_secs(3600),
            change_ttl: Duration::from_secs(24 * 3600),
            fresh_sign_in: Duration::from_secs(600),
            answer_after: Duration::from_millis(50),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let uri: axum::http::Uri = match self.frontend_url.parse() {
            Ok(uri) => uri,
            Err(_) => return bad(format!("frontend_url {:?} is not a URL", self.frontend_url)),
        };
        if !matches!(uri.scheme_str(), Some("http" | "https"))
            || uri.authority().is_none()
            || uri.query().is_some()
            || self.frontend_url.contains('#')
        {
            return bad(format!(
                "frontend_url {:?} must be an absolute http(s) URL without query or fragment",
                self.frontend_url
            ));
        }
        for path in [&self.verify_path, &self.reset_path, &self.change_path] {
            if !path.starts_with('/')
                || path.contains(['?', '#'])
                || path.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return bad(format!(
                    "link path {path:?} must start with / and hold no query"
                ));
            }
        }
        if self.answer_after > Duration::from_secs(5) {
            return bad("answer_after must be at most 5 seconds".into());
        }
        let week = Duration::from_secs(7 * 24 * 3600);
        for ttl in [self.verify_ttl, self.reset_ttl, self.change_ttl] {
            if ttl.is_zero() || ttl > week {
                return bad("token lifetimes must be between 1 second and 7 days".into());
            }
        }
        Ok(())
    }

    fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?token={token}",
            self.frontend_url.trim_end_matches('/')
        )
    }
}

/// The email flows (present when a [`RecoveryConfig`] was given). Reached as
/// `auth.recovery()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| {
/// # let (auth, mailbox) = crudauth::doc_fixture::auth_with_mailbox().await;
/// # let client = crudauth::doc_fixture::client();
/// let recovery = auth.recovery().expect("email flows on");
/// recovery.request_password_reset("ann@example.com", &client);
/// auth.background().flush().await;
/// assert_eq!(mailbox.messages().len(), 1);
/// # Ok(()) });
/// ```
pub struct Recovery<U> {
    core: Arc<Core<U>>,
    login: Login<U>,
    parts: Arc<Parts>,
}

/// The flows' own state.
struct Parts {
    config: RecoveryConfig,
    tokens: OneTimeTokens,
    /// Whether the table can record a verified address (the verify routes need it).
    verifies: bool,
}

impl<U> Clone for Recovery<U> {
    fn clone(&self) -> Self {
        Recovery {
            core: self.core.clone(),
            login: self.login.clone(),
            parts: self.parts.clone(),
        }
    }
}

impl<U> std::fmt::Debug for Recovery<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovery")
            .field("config", &self.parts.config)
            .field("verifies", &self.parts.verifies)
            .finish_non_exhaustive()
    }
}

impl<U: UserRecord> Recovery<U> {
    /// Wires the flows, refusing a configuration they cannot work under.
    pub(crate) fn new(
        core: Arc<Core<U>>,
        login: Login<U>,
        config: RecoveryConfig,
        key: [u8; 32],
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let schema = *core.repo.schema();
        let deliveries = &core.deliveries;
        if !deliveries.is_configured() {
            return Err(ConfigError::Invalid(
                "recovery needs an email sender or a delivery channel".into(),
            ));
        }
        if schema.recovery.and_then(|f| f.logical) != Some(LogicalField::Email) {
            return Err(ConfigError::Invalid(
                "the email flows need the recovery field to be the email column".into(),
            ));
        }
        let verifies = schema.has(LogicalField::EmailVerified);
        if !verifies {
            tracing::info!(
                table = schema.table,
                "crudauth: no email_verified column; the verify routes are not mounted"
            );
        }
        if !deliveries.sends_email() {
            tracing::info!("crudauth: no email sender; the email-change routes are not mounted");
        }
        let tokens = OneTimeTokens {
            store: core.store.clone(),
            key,
        };
        let parts = Arc::new(Parts {
            config,
            tokens,
            verifies,
        });
        Ok(Recovery { core, login, parts })
    }

    /// The settings.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let ttl = auth.recovery().map(|r| r.config().reset_ttl);
    /// assert_eq!(ttl, Some(std::time::Duration::from_secs(3600)));
    /// # Ok(()) });
    /// ```
    pub fn config(&self) -> &RecoveryConfig {
        &self.parts.config
    }

    /// Whether the verify flow is on (the table has an `email_verified` column).
    pub(crate) fn verifies(&self) -> bool {
        self.parts.verifies
    }

    /// The checks every redemption makes: the user still exists and is active, the epoch has
    /// not moved since the token was issued, and the address is still the one it was for.
    async fn current_user(&self, record: &TokenRecord) -> Result<Option<U>, AuthError> {
        let Some(user) = self.core.user_by_text_id(&record.user_id).await? else {
            return Ok(None);
        };
        if !user.is_active()
            || self.core.revocation.epoch(&user).await? != record.epoch
            || user.email().map(normalize_email).as_deref() != Some(record.email.as_str())
        {
            return Ok(None);
        }
        Ok(Some(user))
    }
}

/// Logs a background job's failure (it has no caller to answer).
fn log_job(job: &'static str, result: Result<(), AuthError>) {
    if let Err(e) = result {
        tracing::warn!(job, error = %e, "email flow job failed");
    }
}
