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

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client_ip::ip_key;
use crate::delivery::{Deliveries, MessageKind, OneTimeLink, delivery};
use crate::error::{AuthError, ConfigError};
use crate::facade::{ClientMeta, CrudAuth, repo_fault};
use crate::hooks::UserEvent;
use crate::keys::{hmac_hex, random_token};
use crate::password::is_unusable_password;
use crate::policy::{PasswordContext, PasswordSource};
use crate::principal::{Principal, Transport};
use crate::session::{LiveSession, RotatedSession};
use crate::store::{Store, StoreError};
use crate::user::{LogicalField, RepoError, UserRecord, UserSchema, UserUpdate, normalize_email};

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

/// What a one-time token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Verify,
    Reset,
    ChangeEmail,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify_email",
            Purpose::Reset => "reset_password",
            Purpose::ChangeEmail => "change_email",
        }
    }
}

/// A one-time token's stored record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct TokenRecord {
    /// The user id, textual (stored as `user_id`).
    #[serde(rename = "uid")]
    user_id: String,
    /// The user's revocation epoch at issue (stored as `ver`).
    #[serde(rename = "ver")]
    epoch: i64,
    /// The (normalised) address the token was issued to or for.
    email: String,
    /// For an email change: the new (normalised) address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new_email: Option<String>,
    /// Unix seconds the token expires at (to put a claimed token back for the rest of its
    /// lifetime only). Absent in records written before it existed: those are not put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

fn fault(e: StoreError) -> AuthError {
    crate::store::report_fault("one-time token store", &e);
    AuthError::Unavailable
}

/// One-time tokens in the store: hashed, purpose-bound, single-use, one live per user and
/// purpose.
#[derive(Clone)]
pub(crate) struct OneTimeTokens {
    store: Arc<dyn Store>,
    key: [u8; 32],
}

impl OneTimeTokens {
    fn digest(&self, purpose: Purpose, token: &str) -> String {
        hmac_hex(
            &self.key,
            format!("{}\0{token}", purpose.as_str()).as_bytes(),
        )
    }

    fn record_key(purpose: Purpose, digest: &str) -> String {
        format!("ott:{}:{digest}", purpose.as_str())
    }

    fn pointer_key(&self, purpose: Purpose, user_id: &str) -> String {
        let who = hmac_hex(&self.key, user_id.as_bytes());
        format!("ott:{}:user:{who}", purpose.as_str())
    }

    /// A token as sent: base64url, at most 128 characters. Anything else is not ours.
    fn well_formed(token: &str) -> bool {
        !token.is_empty()
            && token.len() <= 128
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    async fn issue(
        &self,
        purpose: Purpose,
        record: &TokenRecord,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let token = random_token();
        let digest = self.digest(purpose, &token);
        let mut record = record.clone();
        record.exp = Some(crate::clock::now_secs() + ttl.as_secs() as i64);
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        if !self
            .store
            .set_if_absent(&Self::record_key(purpose, &digest), &bytes, Some(ttl))
            .await
            .map_err(fault)?
        {
            // 256 random bits never collide; refuse rather than overwrite if they do.
            return Err(AuthError::Internal);
        }
        // One live token per user and purpose: the pointer is swapped atomically (set-if-
        // absent, or compare-and-set against the value read), so every issuance retires
        // exactly the token it replaced, also when two run at once.
        let pointer = self.pointer_key(purpose, &record.user_id);
        let mut previous = None;
        let mut swapped = false;
        for _ in 0..8 {
            let current = self.store.get(&pointer).await.map_err(fault)?;
            swapped = match &current {
                None => self
                    .store
                    .set_if_absent(&pointer, digest.as_bytes(), Some(ttl))
                    .await
                    .map_err(fault)?,
                Some(bytes) => self
                    .store
                    .compare_and_set(&pointer, bytes, digest.as_bytes(), Some(ttl))
                    .await
                    .map_err(fault)?,
            };
            if swapped {
                previous = current;
                break;
            }
        }
        if !swapped {
            // Never left live without the pointer naming it.
            self.store
                .delete(&Self::record_key(purpose, &digest))
                .await
                .map_err(fault)?;
            tracing::warn!("one-time token pointer kept changing; issuance given up");
            return Err(AuthError::Unavailable);
        }
        if let Some(previous) = previous
            && let Ok(previous) = String::from_utf8(previous)
            && previous != digest
            && previous != CLAIMED
        {
            self.store
                .delete(&Self::record_key(purpose, &previous))
                .await
                .map_err(fault)?;
        }
        Ok(token)
    }

    /// Retires the user's live token of this purpose, if any.
    async fn retire(&self, purpose: Purpose, user_id: &str) -> Result<(), AuthError> {
        let pointer = self.pointer_key(purpose, user_id);
        if let Some(previous) = self.store.get_and_delete(&pointer).await.map_err(fault)?
            && let Ok(previous) = String::from_utf8(previous)
        {
            self.store
                .delete(&Self::record_key(purpose, &previous))
                .await
                .map_err(fault)?;
        }
        Ok(())
    }

    /// Reads a token's record without consuming it (to validate a request first).
    async fn peek(&self, purpose: Purpose, token: &str) -> Result<Option<TokenRecord>, AuthError> {
        if !Self::well_formed(token) {
            return Ok(None);
        }
        let key = Self::record_key(purpose, &self.digest(purpose, token));
        Ok(self
            .store
            .get(&key)
            .await
            .map_err(fault)?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Consumes a token: of concurrent callers, exactly one gets the record; a token that
    /// a newer one superseded yields nothing.
    async fn redeem(
        &self,
        purpose: Purpose,
        token: &str,
    ) -> Result<Option<TokenRecord>, AuthError> {
        if !Self::well_formed(token) {
            return Ok(None);
        }
        let digest = self.digest(purpose, token);
        let Some(bytes) = self
            .store
            .get_and_delete(&Self::record_key(purpose, &digest))
            .await
            .map_err(fault)?
        else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<TokenRecord>(&bytes) else {
            return Ok(None);
        };
        // Still the user's live token? Checked and retired in one compare-and-set.
        let current = self
            .store
            .compare_and_set(
                &self.pointer_key(purpose, &record.user_id),
                digest.as_bytes(),
                CLAIMED.as_bytes(),
                Some(CLAIM_HOLD),
            )
            .await
            .map_err(fault)?;
        Ok(current.then_some(record))
    }

    /// Puts a token claimed by [`OneTimeTokens::redeem`] back, for the rest of its lifetime,
    /// unless it expired or a newer token replaced it meanwhile (the pointer no longer says
    /// "claimed"); `true` if it is live again. The pointer is given back first, by a
    /// compare-and-set, so a token superseded while it was claimed never comes back to life
    /// (a record restored after a newer issuance swapped the pointer is refused at redemption,
    /// since the pointer names the newer token).
    async fn restore(
        &self,
        purpose: Purpose,
        token: &str,
        record: &TokenRecord,
    ) -> Result<bool, AuthError> {
        let Some(exp) = record.exp else {
            return Ok(false);
        };
        let left = exp - crate::clock::now_secs();
        if left <= 0 {
            return Ok(false);
        }
        let ttl = Duration::from_secs(left as u64);
        let digest = self.digest(purpose, token);
        if !self
            .store
            .compare_and_set(
                &self.pointer_key(purpose, &record.user_id),
                CLAIMED.as_bytes(),
                digest.as_bytes(),
                Some(ttl),
            )
            .await
            .map_err(fault)?
        {
            return Ok(false);
        }
        let bytes = serde_json::to_vec(record).map_err(|_| AuthError::Internal)?;
        self.store
            .set_if_absent(&Self::record_key(purpose, &digest), &bytes, Some(ttl))
            .await
            .map_err(fault)
    }
}

/// The pointer value of a token being redeemed (claimed, not yet spent or put back).
const CLAIMED: &str = "-";

/// How long a claimed token's pointer says "claimed": the longest a confirmation may take
/// between claiming a token and putting it back.
const CLAIM_HOLD: Duration = Duration::from_secs(60);

/// The wired email flows (present when a [`RecoveryConfig`] was given).
#[derive(Clone)]
pub(crate) struct Recovery {
    pub config: RecoveryConfig,
    tokens: OneTimeTokens,
    /// Whether the table can record a verified address (the verify routes need it).
    pub verifies: bool,
}

impl Recovery {
    pub(crate) fn new(
        config: RecoveryConfig,
        schema: &UserSchema,
        deliveries: &Deliveries,
        store: Arc<dyn Store>,
        key: [u8; 32],
    ) -> Result<Self, ConfigError> {
        config.validate()?;
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
        Ok(Recovery {
            config,
            tokens: OneTimeTokens { store, key },
            verifies,
        })
    }
}

/// The checks every redemption makes: the user still exists and is active, the epoch has
/// not moved since the token was issued, and the address is still the one it was for.
async fn current_user<U: UserRecord>(
    auth: &CrudAuth<U>,
    record: &TokenRecord,
) -> Result<Option<U>, AuthError> {
    let Some(id) = auth.repo().schema().id_kind.parse(&record.user_id) else {
        return Ok(None);
    };
    let user = auth.repo().find_by_id(&id).await.map_err(repo_fault)?;
    let Some(user) = user else {
        return Ok(None);
    };
    if !user.is_active()
        || auth.epoch(&user).await? != record.epoch
        || user.email().map(normalize_email).as_deref() != Some(record.email.as_str())
    {
        return Ok(None);
    }
    Ok(Some(user))
}

/// Logs a background job's failure (it has no caller to answer).
fn log_job(job: &'static str, result: Result<(), AuthError>) {
    if let Err(e) = result {
        tracing::warn!(job, error = %e, "email flow job failed");
    }
}

impl<U: UserRecord> CrudAuth<U> {
    fn recovery_or_err(&self) -> Result<&Recovery, AuthError> {
        self.recovery().ok_or(AuthError::NotFound("Not Found"))
    }

    /// The silent throttle of a mail to `user`'s address: per requester, plus an
    /// address-wide cap that requesters the account has signed in from before are exempt
    /// from, so strangers cannot silence the owner's own requests.
    async fn allow_mail(
        &self,
        action: &str,
        email: &str,
        user: &U,
        requester: &str,
    ) -> Result<bool, AuthError> {
        let known = self.is_known_requester(user, requester).await?;
        self.rate_limiter()
            .allow_silently_from(action, email, requester, known)
            .await
    }

    /// Issues a token for `user` and delivers its link (in the calling background job) to
    /// the stored address, or for an email change to the new one.
    async fn send_token(
        &self,
        purpose: Purpose,
        user: &U,
        new_email: Option<String>,
    ) -> Result<(), AuthError> {
        let recovery = self.recovery_or_err()?;
        let config = &recovery.config;
        let (kind, path, ttl) = match purpose {
            Purpose::Verify => (
                MessageKind::VerifyEmail,
                &config.verify_path,
                config.verify_ttl,
            ),
            Purpose::Reset => (
                MessageKind::ResetPassword,
                &config.reset_path,
                config.reset_ttl,
            ),
            Purpose::ChangeEmail => (
                MessageKind::ChangeEmail,
                &config.change_path,
                config.change_ttl,
            ),
        };
        let record = TokenRecord {
            user_id: user.user_id().to_string(),
            epoch: self.epoch(user).await?,
            email: normalize_email(user.email().unwrap_or_default()),
            new_email: new_email.clone(),
            exp: None, // set by `issue`
        };
        let token = recovery.tokens.issue(purpose, &record, ttl).await?;
        let link = config.link(path, &token);
        let to = new_email.unwrap_or_else(|| user.email().unwrap_or_default().to_owned());
        self.deliveries()
            .deliver(delivery(
                kind,
                to,
                user.contract(),
                Some(OneTimeLink {
                    token,
                    link,
                    expires_in: ttl,
                }),
                self.repo().database(),
            ))
            .await;
        Ok(())
    }

    /// Delivers a notice (no token) to `recipient`.
    async fn send_notice(&self, kind: MessageKind, user: &U, recipient: String) {
        self.deliveries()
            .deliver(delivery(
                kind,
                recipient,
                user.contract(),
                None,
                self.repo().database(),
            ))
            .await;
    }

    /// Starts the verification of an address: if an active, unverified account has it (and
    /// the per-address throttle allows), a verify link is sent. Returns at once, the same
    /// way for every address; the work runs in the background.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, client: crudauth::ClientMeta) {
    /// auth.request_verification("ann@example.com", &client);
    /// # }
    /// ```
    pub fn request_verification(&self, email: &str, client: &ClientMeta) {
        if self.recovery().is_some_and(|r| r.verifies) {
            self.spawn_token_request(Purpose::Verify, email, client, |u| {
                u.is_active() && !u.email_verified()
            });
        }
    }

    /// The background job of a request route: the silent per-address throttle, the
    /// lookup, and a token for an account that `wanted` accepts; nothing otherwise.
    fn spawn_token_request(
        &self,
        purpose: Purpose,
        email: &str,
        client: &ClientMeta,
        wanted: fn(&U) -> bool,
    ) {
        let auth = self.clone();
        let email = normalize_email(email);
        let requester = ip_key(client.ip);
        let action = match purpose {
            Purpose::Verify => "email_verify_request",
            Purpose::Reset => "password_reset_request",
            Purpose::ChangeEmail => "email_change_request",
        };
        self.deliveries().spawn(async move {
            let job = async {
                // Nothing is sent to an address without a wanted account, so only those
                // count against the throttle.
                let user = auth
                    .repo()
                    .find_by_recovery(&email)
                    .await
                    .map_err(repo_fault)?;
                let Some(user) = user.filter(wanted) else {
                    return Ok(());
                };
                if !auth.allow_mail(action, &email, &user, &requester).await? {
                    return Ok(());
                }
                auth.send_token(purpose, &user, None).await
            };
            log_job(action, job.await);
        });
    }

    /// Sends the verification link to a user just created (registration).
    pub(crate) fn send_verification_to(&self, user: U) {
        if !self.recovery().is_some_and(|r| r.verifies) {
            return;
        }
        let auth = self.clone();
        self.deliveries().spawn(async move {
            log_job(
                "register_verify",
                auth.send_token(Purpose::Verify, &user, None).await,
            );
        });
    }

    /// Tells the owner of an address that someone tried to register it again.
    pub(crate) fn send_existing_account_notice(&self, email: &str, client: &ClientMeta) {
        if self.recovery().is_none() {
            return;
        }
        let auth = self.clone();
        let email = normalize_email(email);
        let requester = ip_key(client.ip);
        self.deliveries().spawn(async move {
            let job = async {
                if let Some(user) = auth
                    .repo()
                    .find_by_recovery(&email)
                    .await
                    .map_err(repo_fault)?
                    && auth
                        .allow_mail("existing_account_notice", &email, &user, &requester)
                        .await?
                {
                    // To the stored address, never the one typed.
                    let to = user.email().unwrap_or_default().to_owned();
                    auth.send_notice(MessageKind::ExistingAccount, &user, to)
                        .await;
                }
                Ok(())
            };
            log_job("existing_account_notice", job.await);
        });
    }

    /// Redeems a verify token and marks the address verified; fires
    /// `on_after_recovery_verified` the first time. 400 `Invalid or expired token` for any
    /// token that is not live.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) -> Result<(), crudauth::AuthError> {
    /// let user = auth.confirm_verification("token-from-the-link").await?;
    /// # Ok(()) }
    /// ```
    pub async fn confirm_verification(&self, token: &str) -> Result<U, AuthError> {
        let recovery = self.recovery_or_err()?;
        let record = recovery
            .tokens
            .redeem(Purpose::Verify, token)
            .await?
            .ok_or(INVALID_TOKEN)?;
        let user = current_user(self, &record).await?.ok_or(INVALID_TOKEN)?;
        if user.email_verified() {
            return Ok(user);
        }
        let update = UserUpdate {
            email_verified: Some(true),
            ..Default::default()
        };
        let user = self
            .repo()
            .update(&user.user_id(), update)
            .await
            .map_err(repo_fault)?;
        self.hooks()
            .fire(
                UserEvent::RecoveryVerified,
                &user.contract(),
                &Default::default(),
            )
            .await;
        Ok(user)
    }

    /// Starts a password reset: if an active account has this address (and the
    /// per-address throttle allows), a reset link is sent. Returns at once, the same way for
    /// every address; the work runs in the background.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, client: crudauth::ClientMeta) {
    /// auth.request_password_reset("ann@example.com", &client);
    /// # }
    /// ```
    pub fn request_password_reset(&self, email: &str, client: &ClientMeta) {
        self.spawn_token_request(Purpose::Reset, email, client, U::is_active);
    }

    /// Redeems a reset token and sets the new password. The token is claimed (atomically)
    /// before anything is done for it: of concurrent confirmations with one token exactly one
    /// gets past this point, so one token costs at most one password hash. The password is
    /// then checked against the policy; a refused password (422) puts the token back for the
    /// rest of its lifetime, so a typo does not burn the link (a confirmation racing with the
    /// refused one meanwhile was answered 400, and did no work). Every session and token of
    /// the user ends, the account's login lock is cleared, and `on_after_password_reset`
    /// fires.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) -> Result<(), crudauth::AuthError> {
    /// auth.confirm_password_reset("token-from-the-link", "a new long passphrase").await?;
    /// # Ok(()) }
    /// ```
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: &str,
    ) -> Result<U, AuthError> {
        let recovery = self.recovery_or_err()?;
        let record = recovery
            .tokens
            .redeem(Purpose::Reset, token)
            .await?
            .ok_or(INVALID_TOKEN)?;
        let user = current_user(self, &record).await?.ok_or(INVALID_TOKEN)?;
        let ctx = PasswordContext::for_user(PasswordSource::Reset, &user);
        let checked = self
            .validate_password(new_password, &ctx, "new_password")
            .await;
        let hashed = match checked {
            Ok(()) => self.hash_new_password(new_password, "new_password").await,
            Err(e) => Err(e),
        };
        let hash = match hashed {
            Ok(hash) => hash,
            Err(e) => {
                // Nothing was spent on the password: the link stays usable (a 503 from a
                // full hashing queue too). Only this request held the token meanwhile.
                recovery
                    .tokens
                    .restore(Purpose::Reset, token, &record)
                    .await?;
                return Err(e);
            }
        };
        self.replace_password(&user, &hash, None).await?;
        // The reset proves the owner: lift the account-wide login locks (kept by account, and
        // any kept for its identifiers).
        self.lockout().clear_account(&user.user_id()).await?;
        for identifier in [user.email(), user.username()].into_iter().flatten() {
            self.lockout().clear_identifier(identifier).await?;
        }
        let user = self.reload(&user).await;
        self.hooks()
            .fire(
                UserEvent::PasswordReset,
                &user.contract(),
                &Default::default(),
            )
            .await;
        Ok(user)
    }

    /// Starts an email change for the signed-in user: checks the password (sharing the
    /// login lockout), then, in the background, sends a notice to the current address and a
    /// confirmation link to the new one (unless another account has it: nothing tells the
    /// requester, not even their own inbox). 400 `Incorrect password`, 400 `New email
    /// matches current email`.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, p: crudauth::Principal<U>, client: crudauth::ClientMeta) -> Result<(), crudauth::AuthError> {
    /// auth.request_email_change(&p, "ann@new.example", "my password", &client).await?;
    /// # Ok(()) }
    /// ```
    pub async fn request_email_change(
        &self,
        principal: &Principal<U>,
        new_email: &str,
        password: &str,
        client: &ClientMeta,
    ) -> Result<(), AuthError> {
        self.recovery_or_err()?;
        self.check_current_password(
            principal,
            password,
            client,
            AuthError::BadRequest("Incorrect password"),
        )
        .await?;
        let new_email = normalize_email(new_email);
        let user = principal.user.as_ref().clone();
        if user.email().map(normalize_email).as_deref() == Some(new_email.as_str()) {
            return Err(AuthError::BadRequest("New email matches current email"));
        }
        let auth = self.clone();
        let requester = ip_key(client.ip);
        self.deliveries().spawn(async move {
            let job = async {
                // Every request retires the pending change and notifies the current
                // address, before anything depends on the new address: neither the
                // requester's own inbox nor their earlier link may tell a free address
                // from a taken one.
                auth.recovery_or_err()?
                    .tokens
                    .retire(Purpose::ChangeEmail, &user.user_id().to_string())
                    .await?;
                let old = user.email().unwrap_or_default().to_owned();
                auth.send_notice(MessageKind::EmailChangeRequested, &user, old.clone())
                    .await;
                if !auth
                    .rate_limiter()
                    .allow_silently_from("email_change_request", &new_email, &requester, false)
                    .await?
                {
                    return Ok(());
                }
                if auth
                    .repo()
                    .find_by_recovery(&new_email)
                    .await
                    .map_err(repo_fault)?
                    .is_some()
                {
                    return Ok(());
                }
                auth.send_token(Purpose::ChangeEmail, &user, Some(new_email))
                    .await
            };
            log_job("email_change_request", job.await);
        });
        Ok(())
    }

    /// Redeems an email-change token: the account's address becomes the new one (verified,
    /// since the link reached it, as a verify link would have), every session and token of
    /// the user ends, the old address gets a notice, and `on_after_email_changed` fires.
    /// 422 `Email already in use` if another account took the address meanwhile; the token
    /// stays usable when that is found before it is consumed, and in the rare race where the
    /// address is taken between that check and the write, the token is spent and the
    /// sessions have ended (revocation comes first: the safe side).
    ///
    /// The token binds the address: the new address is the one recorded when the link was
    /// issued, never one from the confirming request, and only the user's latest link is
    /// live (a second change request retires the first one's link).
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) -> Result<(), crudauth::AuthError> {
    /// let user = auth.confirm_email_change("token-from-the-link").await?;
    /// # Ok(()) }
    /// ```
    pub async fn confirm_email_change(&self, token: &str) -> Result<U, AuthError> {
        self.confirm_email_change_keeping(token, None)
            .await
            .map(|(user, _)| user)
    }

    /// [`CrudAuth::confirm_email_change`], keeping one session alive: `keep`, when it is a
    /// session of the user whose address changed, is not ended with the others but moved to
    /// a new id (bound to the new epoch; the CSRF token carries over), returned for the
    /// response's cookie. The caller vouches that the confirming request proved it holds
    /// `keep` (its cookie *and* its CSRF token); any other session of the user ends.
    pub(crate) async fn confirm_email_change_keeping(
        &self,
        token: &str,
        keep: Option<&LiveSession>,
    ) -> Result<(U, Option<RotatedSession>), AuthError> {
        let recovery = self.recovery_or_err()?;
        let peeked = recovery
            .tokens
            .peek(Purpose::ChangeEmail, token)
            .await?
            .ok_or(INVALID_TOKEN)?;
        current_user(self, &peeked).await?.ok_or(INVALID_TOKEN)?;
        let new_email = peeked.new_email.clone().ok_or(INVALID_TOKEN)?;
        let taken = self
            .repo()
            .find_by_recovery(&new_email)
            .await
            .map_err(repo_fault)?;
        if taken.is_some() {
            return Err(AuthError::Taken("Email already in use"));
        }
        let record = recovery
            .tokens
            .redeem(Purpose::ChangeEmail, token)
            .await?
            .ok_or(INVALID_TOKEN)?;
        let user = current_user(self, &record).await?.ok_or(INVALID_TOKEN)?;
        let new_email = record.new_email.ok_or(INVALID_TOKEN)?;
        let user_id = user.user_id().to_string();
        let keep = keep.filter(|live| live.record.user_id == user_id);
        // Revoke first: if the write then fails, old sessions are gone (the safe side). The
        // kept session is left out here, but the epoch moves past it: it lives on only if
        // it is rebound and moved to a new id below.
        let epoch = self.bump_epoch(&user).await?;
        if let Some(sessions) = self.sessions() {
            sessions
                .revoke_all(&user_id, keep.map(|live| live.handle.as_str()))
                .await?;
        }
        let update = UserUpdate {
            email: Some(new_email),
            email_verified: self
                .repo()
                .schema()
                .has(LogicalField::EmailVerified)
                .then_some(true),
            ..Default::default()
        };
        let updated = match self.repo().update(&user.user_id(), update).await {
            Ok(updated) => updated,
            Err(RepoError::Duplicate { .. }) => {
                return Err(AuthError::Taken("Email already in use"));
            }
            Err(e) => return Err(repo_fault(e)),
        };
        let rotated = match (self.sessions(), keep) {
            (Some(sessions), Some(live)) => {
                sessions
                    .rotate_with(&live.handle, |r| r.epoch = epoch)
                    .await?
            }
            _ => None,
        };
        let old = user.email().unwrap_or_default().to_owned();
        let auth = self.clone();
        let notified = updated.clone();
        self.deliveries().spawn(async move {
            auth.send_notice(MessageKind::EmailChanged, &notified, old)
                .await;
        });
        self.hooks()
            .fire(
                UserEvent::EmailChanged,
                &updated.contract(),
                &Default::default(),
            )
            .await;
        Ok((updated, rotated))
    }

    /// Sets a first password on an account that has none (created by OAuth, say). Needs a
    /// session that signed in recently or is elevated (403 otherwise; bearer never
    /// qualifies) and an account without a usable password (400 otherwise). Other sessions
    /// and tokens end; `on_after_password_changed` fires. The calling session lives on under
    /// a new id, returned: set its `id` as the session cookie (the old id is dead).
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, p: crudauth::Principal<U>, client: crudauth::ClientMeta) -> Result<(), crudauth::AuthError> {
    /// if let Some(moved) = auth.set_password(&p, "a new long passphrase", &client).await? {
    ///     // send `moved.id` as the new session cookie
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn set_password(
        &self,
        principal: &Principal<U>,
        new_password: &str,
        client: &ClientMeta,
    ) -> Result<Option<crate::session::RotatedSession>, AuthError> {
        let user = principal.user.as_ref();
        let fresh = self
            .recovery()
            .map_or(Duration::from_secs(600), |r| r.config.fresh_sign_in);
        // The session manager's clock: the one its sign-in times were written with.
        let now = self
            .sessions()
            .map_or_else(crate::clock::now_secs, |s| s.now_secs());
        let recent = principal.via == Transport::Session
            && (principal.is_elevated()
                || principal
                    .signed_in_at
                    .is_some_and(|at| now - at <= fresh.as_secs() as i64));
        if !recent {
            return Err(AuthError::Forbidden(
                "Sign in again to continue: this needs a recent sign-in.",
            ));
        }
        let ctx = PasswordContext::for_user(PasswordSource::Set, user);
        self.validate_password(new_password, &ctx, "new_password")
            .await?;
        if !is_unusable_password(user.password_hash().unwrap_or_default()) {
            return Err(AuthError::BadRequest(
                "Account already has a password; use the password reset flow to change it.",
            ));
        }
        let hash = self.hash_new_password(new_password, "new_password").await?;
        let moved = self
            .replace_password(user, &hash, principal.session_handle.as_deref())
            .await?;
        let ctx = client.hook_context(Some(principal.via.as_str()));
        let user = self.reload(user).await;
        self.hooks()
            .fire(UserEvent::PasswordChanged, &user.contract(), &ctx)
            .await;
        Ok(moved)
    }
}
