//! Device login challenges in the store: one record under a keyed hash of the code, moved
//! from state to state by compare-and-set on the exact bytes that were checked, so of two
//! approvers one wins and of concurrent polls of an approved challenge one gets the pair.
//!
//! States: `pending` → `approved` (a browser user typed the right user code) → `redeemed`
//! (the CLI got its pair); `pending` → `rejected` (a browser user said no) or `killed` (too
//! many wrong user codes); `approved` → `revoked` (the approver was disabled or their epoch
//! moved before the CLI polled). Redeemed, rejected, killed and revoked records are audit
//! records: the secret and the user code are removed once the CLI has been told.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::codes::{normalize_user_code, user_code, well_formed};
use super::{ChallengeView, Decision, DeviceLogin, Poll, Started, store_fault};
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::hooks::{DeviceLoginAction, Event, HookContext, Payload};
use crate::keys::{hmac_hex, random_bytes, random_token};
use crate::principal::{Principal, Transport};
use crate::store::repo_fault;
use crate::user::UserRecord;

/// A code that is unknown, mistyped, redeemed, or polled with a wrong secret: one answer
/// for all (zndraw-auth's), so nothing is learnt by guessing.
pub(crate) const NOT_FOUND: AuthError = AuthError::NotFound("Challenge not found");
/// A wrong user code typed in the browser.
pub(crate) const WRONG_USER_CODE: AuthError = AuthError::BadRequest("Invalid user code");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Pending,
    Approved,
    Rejected,
    Killed,
    Redeemed,
    Revoked,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Killed => "killed",
            Status::Redeemed => "redeemed",
            Status::Revoked => "revoked",
        }
    }
}

/// A challenge's stored record.
#[derive(Clone, Serialize, Deserialize)]
struct Record {
    status: Status,
    /// The keyed hash of (code, secret); `None` once the CLI was told the outcome.
    secret: Option<String>,
    /// The keyed hash of (code, user code); `None` once decided.
    user_code: Option<String>,
    created: i64,
    exp: i64,
    ip: Option<String>,
    agent: String,
    /// The approver's or rejecter's id.
    by: Option<String>,
    /// The approver's revocation epoch at approval.
    epoch: Option<i64>,
    decided: Option<i64>,
    redeemed: Option<i64>,
    scopes: Vec<String>,
}

impl Record {
    fn view(&self) -> ChallengeView {
        ChallengeView {
            status: self.status.as_str().to_owned(),
            client_ip: self.ip.clone(),
            user_agent: self.agent.clone(),
            created: self.created,
            expires: self.exp,
            decided_by: self.by.clone(),
            decided: self.decided,
            redeemed: self.redeemed,
            scopes: self.scopes.clone(),
        }
    }
}

fn matches(expected: Option<&String>, presented: &str) -> bool {
    expected.is_some_and(|e| crate::keys::same_secret(e, presented))
}

fn by_index(user_id: &str) -> String {
    format!("cli_login_by:{user_id}")
}

impl<U: UserRecord> DeviceLogin<U> {
    fn now(&self) -> i64 {
        self.config.clock.now_secs()
    }

    /// The name of a code at rest (the hash only: the store never holds a code).
    fn id_of(&self, code: &str) -> String {
        hmac_hex(
            &self.core.keys.one_time,
            format!("cli-login\0{code}").as_bytes(),
        )
    }

    fn digest(&self, purpose: &str, code: &str, value: &str) -> String {
        let data = format!("cli-login-{purpose}\0{code}\0{value}");
        hmac_hex(&self.core.keys.one_time, data.as_bytes())
    }

    async fn load(&self, id: &str) -> Result<Option<(Vec<u8>, Record)>, AuthError> {
        let raw = self
            .core
            .store
            .get(&format!("cli_login:{id}"))
            .await
            .map_err(store_fault)?;
        Ok(raw.and_then(|raw| {
            let record = serde_json::from_slice(&raw).ok()?;
            Some((raw, record))
        }))
    }

    /// Replaces the exact record that was read; `true` for the one caller that did.
    async fn replace(
        &self,
        id: &str,
        raw: &[u8],
        record: &Record,
        ttl: Duration,
    ) -> Result<bool, AuthError> {
        let bytes = serde_json::to_vec(record).map_err(|_| AuthError::Internal)?;
        self.core
            .store
            .compare_and_set(&format!("cli_login:{id}"), raw, &bytes, Some(ttl))
            .await
            .map_err(store_fault)
    }

    /// How long a live record stays in the store: its expiry plus one lifetime more, so a
    /// late poll hears "expired" (410) rather than "not found".
    fn live_ttl(&self, record: &Record) -> Duration {
        let left = record.exp + self.config.ttl.as_secs() as i64 - self.now();
        Duration::from_secs(left.max(1) as u64)
    }

    /// Starts a challenge for the client (`POST /auth/cli-login`).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.device_login(Default::default()).build()?;
    /// let device_login = auth.device_login().unwrap();
    /// let started = device_login.start(&crudauth::doc_fixture::client()).await?;
    /// let poll = device_login.poll(&started.code, &started.secret).await?;
    /// assert_eq!(poll.status(), "pending");
    /// # Ok(()) });
    /// ```
    pub async fn start(&self, client: &ClientMeta) -> Result<Started, AuthError> {
        let code = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
        let secret = random_token();
        let shown = user_code();
        let typed = normalize_user_code(&shown).ok_or(AuthError::Internal)?;
        let now = self.now();
        let record = Record {
            status: Status::Pending,
            secret: Some(self.digest("secret", &code, &secret)),
            user_code: Some(self.digest("user-code", &code, &typed)),
            created: now,
            exp: now + self.config.ttl.as_secs() as i64,
            ip: client.ip.map(|ip| ip.to_string()),
            agent: client.user_agent.clone(),
            by: None,
            epoch: None,
            decided: None,
            redeemed: None,
            scopes: Vec::new(),
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        let key = format!("cli_login:{}", self.id_of(&code));
        let written = self
            .core
            .store
            .set_if_absent(&key, &bytes, Some(self.live_ttl(&record)));
        if !written.await.map_err(store_fault)? {
            return Err(AuthError::Internal); // 128 random bits never collide
        }
        Ok(Started {
            approve_url: self.config.approve_url.replace("{code}", &code),
            code,
            secret,
            user_code: shown,
            expires_in: self.config.ttl.as_secs(),
            interval: self.config.interval.as_secs(),
        })
    }

    /// Polls a challenge with its secret (`GET /auth/cli-login/{code}?secret=`). An unknown
    /// code, a wrong secret and a redeemed challenge are all `404 Challenge not found`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.device_login(Default::default()).build()?;
    /// let device_login = auth.device_login().unwrap();
    /// let started = device_login.start(&crudauth::doc_fixture::client()).await?;
    /// assert_eq!(device_login.poll(&started.code, &started.secret).await?.status(), "pending");
    /// // Again at once: faster than the interval.
    /// assert_eq!(device_login.poll(&started.code, &started.secret).await?.status(), "slow_down");
    /// assert!(device_login.poll(&started.code, "wrong").await.is_err());
    /// # Ok(()) });
    /// ```
    pub async fn poll(&self, code: &str, secret: &str) -> Result<Poll, AuthError> {
        if !well_formed(code) || !well_formed(secret) {
            return Err(NOT_FOUND);
        }
        let id = self.id_of(code);
        let presented = self.digest("secret", code, secret);
        let Some((raw, record)) = self.load(&id).await? else {
            return Err(NOT_FOUND);
        };
        if !matches(record.secret.as_ref(), &presented) {
            return Err(NOT_FOUND);
        }
        let expired = self.now() >= record.exp;
        match record.status {
            Status::Rejected | Status::Killed => {
                // Told once; then the secret goes and the record is only an audit record.
                let told = Record {
                    secret: None,
                    ..record
                };
                self.replace(&id, &raw, &told, self.config.audit_ttl)
                    .await?;
                Ok(Poll::Rejected)
            }
            Status::Pending | Status::Approved if expired => Ok(Poll::Expired),
            Status::Pending => {
                let pace = format!("cli_login_pace:{id}");
                let first = self
                    .core
                    .store
                    .set_if_absent(&pace, b"1", Some(self.config.interval));
                if first.await.map_err(store_fault)? {
                    Ok(Poll::Pending)
                } else {
                    Ok(Poll::SlowDown {
                        interval: self.config.interval.as_secs(),
                    })
                }
            }
            Status::Approved => self.redeem(&id, &raw, record).await,
            Status::Redeemed | Status::Revoked => Err(NOT_FOUND),
        }
    }

    /// Hands out the pair of an approved challenge, once: the record becomes an audit
    /// record (no secret) by a compare-and-set, and only its winner mints.
    async fn redeem(&self, id: &str, raw: &[u8], record: Record) -> Result<Poll, AuthError> {
        let by = record.by.clone().unwrap_or_default();
        let user = self.core.user_by_text_id(&by).await?;
        let current = match &user {
            Some(user) if user.is_active() => {
                Some(self.core.revocation.epoch(user).await?) == record.epoch
            }
            _ => false,
        };
        let audit = Record {
            status: if current {
                Status::Redeemed
            } else {
                Status::Revoked
            },
            secret: None,
            user_code: None,
            redeemed: Some(self.now()),
            ..record
        };
        if !self.replace(id, raw, &audit, self.config.audit_ttl).await? {
            return Err(NOT_FOUND); // another poll got it
        }
        let (Some(user), true) = (user, current) else {
            tracing::info!(
                target: "crudauth::device_login",
                action = "revoked",
                user_id = %by,
                "device login not handed out: the approver's account changed"
            );
            return Ok(Poll::Rejected);
        };
        let epoch = audit.epoch.unwrap_or_default();
        // Exactly the scopes the approval recorded (clamped then), never re-defaulted.
        let tokens = self.core.tokens.as_ref().ok_or(AuthError::Internal)?;
        // The approver's tenant (the column; a resolver sees no request here).
        let tenant = self.core.tenancy.of(&user, &axum::http::HeaderMap::new());
        let pair = tokens
            .issue_in(&by, epoch, audit.scopes.clone(), tenant)
            .await?;
        tracing::info!(
            target: "crudauth::device_login",
            action = "redeem",
            user_id = %by,
            client_ip = audit.ip.as_deref().unwrap_or("-"),
            "device login redeemed"
        );
        self.announce(Arc::new(user), DeviceLoginAction::Redeemed, &audit)
            .await;
        Ok(Poll::Approved(pair))
    }

    /// A challenge as the approve page shows it to the signed-in user `viewer`: a pending
    /// one to anyone holding its code, a decided one only to who decided it.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.device_login(Default::default()).build()?;
    /// let device_login = auth.device_login().unwrap();
    /// let started = device_login.start(&crudauth::doc_fixture::client()).await?;
    /// let view = device_login.view(&started.code, "1").await?;
    /// assert_eq!(view.status, "pending");
    /// assert_eq!(view.client_ip.as_deref(), Some("203.0.113.7"));
    /// # Ok(()) });
    /// ```
    pub async fn view(&self, code: &str, viewer: &str) -> Result<ChallengeView, AuthError> {
        if !well_formed(code) {
            return Err(NOT_FOUND);
        }
        let Some((_, record)) = self.load(&self.id_of(code)).await? else {
            return Err(NOT_FOUND);
        };
        if record.status != Status::Pending && record.by.as_deref() != Some(viewer) {
            return Err(NOT_FOUND);
        }
        Ok(record.view())
    }

    /// Approves a challenge as `approver`, who typed `user_code`: the scopes asked for
    /// (the defaults when none) clamped to the grantable set and, for a bearer approver, to
    /// their own token's scopes. A wrong user code counts; the last allowed wrong one kills
    /// the challenge. The approver's account is read again: a disabled one approves nothing.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.device_login(Default::default()).build()?;
    /// # let ann = crudauth::doc_fixture::session_principal(&auth).await?;
    /// use crudauth::device_login::Decision;
    /// let device_login = auth.device_login().unwrap();
    /// let started = device_login.start(&crudauth::doc_fixture::client()).await?;
    /// let decided = device_login.approve(&ann, &started.code, &started.user_code, None).await?;
    /// assert!(matches!(decided, Decision::Done(_)));
    /// assert_eq!(device_login.poll(&started.code, &started.secret).await?.status(), "approved");
    /// # Ok(()) });
    /// ```
    pub async fn approve(
        &self,
        approver: &Principal<U>,
        code: &str,
        user_code: &str,
        scopes: Option<Vec<String>>,
    ) -> Result<Decision, AuthError> {
        // The signed-in browser user, recently signed in (or in sudo): not a bearer token (a
        // stolen access token would turn itself into a new refresh family), an
        // impersonating superuser or a script's API key (the pair would outlive the
        // impersonation, or widen the key).
        if approver.via != Transport::Session {
            return Err(AuthError::Forbidden(
                "Approve a device login from a signed-in browser.",
            ));
        }
        self.login.require_recent_sign_in(approver)?;
        if !well_formed(code) {
            return Err(NOT_FOUND);
        }
        let typed = normalize_user_code(user_code).ok_or(WRONG_USER_CODE)?;
        let id = self.id_of(code);
        let Some((raw, record)) = self.load(&id).await? else {
            return Err(NOT_FOUND);
        };
        if record.status != Status::Pending {
            return Ok(Decision::Conflict);
        }
        let now = self.now();
        if now >= record.exp {
            return Ok(Decision::Expired);
        }
        let left = Duration::from_secs((record.exp - now).max(1) as u64);
        let tries = format!("cli_login_try:{id}");
        let attempts = self.core.store.incr(&tries, 1, left).await;
        let attempts = attempts.map_err(store_fault)?;
        let max = i64::from(self.config.max_attempts);
        let right = matches(
            record.user_code.as_ref(),
            &self.digest("user-code", code, &typed),
        );
        if attempts > max || !right {
            if attempts >= max {
                let killed = Record {
                    status: Status::Killed,
                    user_code: None,
                    decided: Some(now),
                    ..record.clone()
                };
                if self
                    .replace(&id, &raw, &killed, self.config.audit_ttl)
                    .await?
                {
                    tracing::warn!(
                        target: "crudauth::device_login",
                        action = "killed",
                        user_id = %approver.user_id,
                        "device login challenge killed after too many wrong user codes"
                    );
                }
            }
            return Err(WRONG_USER_CODE);
        }
        // The approver's account, read again (not the request's cached copy).
        let user = self.core.repo.find_by_id(&approver.user_id).await;
        let Some(user) = user.map_err(repo_fault)?.filter(UserRecord::is_active) else {
            return Err(AuthError::Forbidden("Inactive user"));
        };
        let epoch = self.core.revocation.epoch(&user).await?;
        let tokens = self.core.tokens.as_ref().ok_or(AuthError::Internal)?;
        let asked = scopes.unwrap_or_default();
        let granted = tokens.clamp_scopes(asked.iter().map(String::as_str));
        let uid = user.user_id().to_string();
        let approved = Record {
            status: Status::Approved,
            user_code: None,
            by: Some(uid.clone()),
            epoch: Some(epoch),
            decided: Some(now),
            scopes: granted.clone(),
            ..record
        };
        if !self
            .replace(&id, &raw, &approved, self.live_ttl(&approved))
            .await?
        {
            return Ok(Decision::Conflict); // another approver, or a rejection, came first
        }
        self.remember_or_warn(&uid, &id).await;
        tracing::info!(
            target: "crudauth::device_login",
            action = "approve",
            user_id = %uid,
            via = approver.via.as_str(),
            client_ip = approved.ip.as_deref().unwrap_or("-"),
            scopes = ?granted,
            "device login approved"
        );
        self.announce(Arc::new(user), DeviceLoginAction::Approved, &approved)
            .await;
        Ok(Decision::Done(granted))
    }

    /// Files a decided challenge under its decider for `history`. The decision is made
    /// already (the CLI will be answered by it): a store fault here is logged, not answered.
    async fn remember_or_warn(&self, user_id: &str, id: &str) {
        if let Err(e) = self.remember(user_id, id).await {
            tracing::warn!(target: "crudauth::device_login", error = %e,
                "a decided device login is missing from its decider's history");
        }
    }

    /// Rejects a pending challenge as `rejecter`; the CLI's next poll hears `rejected`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.device_login(Default::default()).build()?;
    /// # let ann = crudauth::doc_fixture::session_principal(&auth).await?;
    /// let device_login = auth.device_login().unwrap();
    /// let started = device_login.start(&crudauth::doc_fixture::client()).await?;
    /// device_login.reject(&ann, &started.code).await?;
    /// assert_eq!(device_login.poll(&started.code, &started.secret).await?.status(), "rejected");
    /// # Ok(()) });
    /// ```
    pub async fn reject(&self, rejecter: &Principal<U>, code: &str) -> Result<Decision, AuthError> {
        rejecter.refuse_delegated()?;
        if !well_formed(code) {
            return Err(NOT_FOUND);
        }
        let id = self.id_of(code);
        let Some((raw, record)) = self.load(&id).await? else {
            return Err(NOT_FOUND);
        };
        if record.status != Status::Pending {
            return Ok(Decision::Conflict);
        }
        let now = self.now();
        if now >= record.exp {
            return Ok(Decision::Expired);
        }
        let uid = rejecter.user_id.to_string();
        let rejected = Record {
            status: Status::Rejected,
            user_code: None,
            by: Some(uid.clone()),
            decided: Some(now),
            ..record
        };
        if !self
            .replace(&id, &raw, &rejected, self.config.audit_ttl)
            .await?
        {
            return Ok(Decision::Conflict);
        }
        self.remember_or_warn(&uid, &id).await;
        tracing::info!(
            target: "crudauth::device_login",
            action = "reject",
            user_id = %uid,
            client_ip = rejected.ip.as_deref().unwrap_or("-"),
            "device login rejected"
        );
        let user = rejecter.user.clone();
        self.announce(user, DeviceLoginAction::Rejected, &rejected)
            .await;
        Ok(Decision::Done(Vec::new()))
    }

    /// Fires `on_device_login`, with the CLI's address and user agent as the context.
    async fn announce(&self, user: Arc<U>, action: DeviceLoginAction, record: &Record) {
        if !self.core.hooks.observes(Event::DeviceLogin) {
            return;
        }
        let ctx = HookContext {
            ip: record.ip.clone(),
            user_agent: Some(record.agent.clone()).filter(|a| !a.is_empty()),
            transport: Some("bearer"),
            ..HookContext::default()
        };
        let payload = Payload::DeviceLogin { user, action };
        self.core
            .hooks
            .fire(Event::DeviceLogin, payload, &ctx)
            .await;
    }

    async fn remember(&self, uid: &str, id: &str) -> Result<(), AuthError> {
        let index = by_index(uid);
        let added = self
            .core
            .store
            .index_add(&index, id, self.config.audit_ttl)
            .await;
        added.map_err(store_fault)
    }

    /// The challenges a user decided (approved, rejected, or killed while they typed), kept
    /// for [`super::DeviceLoginConfig::audit_ttl`], oldest first: without secrets.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.device_login(Default::default()).build()?;
    /// # let ann = crudauth::doc_fixture::session_principal(&auth).await?;
    /// let device_login = auth.device_login().unwrap();
    /// let started = device_login.start(&crudauth::doc_fixture::client()).await?;
    /// device_login.approve(&ann, &started.code, &started.user_code, None).await?;
    /// device_login.poll(&started.code, &started.secret).await?;
    /// let history = device_login.history(&ann.user_id.to_string()).await?;
    /// assert_eq!(history[0].status, "redeemed");
    /// # Ok(()) });
    /// ```
    pub async fn history(&self, user_id: &str) -> Result<Vec<ChallengeView>, AuthError> {
        let store = &self.core.store;
        let ids = store.index_members(&by_index(user_id)).await;
        let keys: Vec<String> = ids
            .map_err(store_fault)?
            .iter()
            .map(|id| format!("cli_login:{id}"))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let raws = store.get_many(&refs).await.map_err(store_fault)?;
        let mut out: Vec<ChallengeView> = raws
            .into_iter()
            .flatten()
            .filter_map(|raw| serde_json::from_slice::<Record>(&raw).ok())
            .filter(|r| r.by.as_deref() == Some(user_id))
            .map(|r| r.view())
            .collect();
        out.sort_by_key(|v| v.created);
        Ok(out)
    }
}
