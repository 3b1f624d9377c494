//! Server-side sessions with synchronizer-token CSRF.
//!
//! - Session ids are 256 bits from the OS CSPRNG; only their HMAC (under a key derived for
//!   this purpose) is stored, and that HMAC is the public handle shown by `GET /sessions`.
//! - A session is created with set-if-absent, never an overwrite.
//! - Every login makes a new id (no fixation); idle and absolute timeouts apply.
//! - The CSRF token is stored (as an HMAC) inside the session record itself, so checking it
//!   costs no extra store round trip; it is compared in constant time.
//! - The session records the user's `token_version` at login and dies when it changes.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::device::DeviceInfo;
use crate::error::AuthError;
use crate::keys::{Keys, hmac_hex, random_token};
use crate::store::{Store, StoreError};

/// The `SameSite` policies a session cookie may use. `None` is deliberately absent.
///
/// ```
/// assert_eq!(crudauth::SameSite::default(), crudauth::SameSite::Lax);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Lax` (default).
    #[default]
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

/// Session transport settings.
///
/// ```
/// let c = crudauth::SessionConfig::default();
/// assert_eq!(c.cookie_name, "session_id");
/// assert!(c.secure && c.csrf);
/// ```
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The session cookie (default `session_id`).
    pub cookie_name: String,
    /// The CSRF cookie, readable by scripts (default `csrf_token`).
    pub csrf_cookie_name: String,
    /// The CSRF header (default `X-CSRF-Token`).
    pub csrf_header: String,
    /// Require the CSRF header on state-changing requests (default `true`).
    pub csrf: bool,
    /// Mark cookies `Secure` (default `true`; turn off only for plain-http development).
    pub secure: bool,
    /// The cookies' `SameSite` (default `Lax`).
    pub same_site: SameSite,
    /// The cookies' `Path` (default `/`).
    pub path: String,
    /// Idle timeout (default 30 minutes), also the storage TTL.
    pub idle_timeout: Duration,
    /// Absolute lifetime from login (default 12 hours).
    pub absolute_timeout: Duration,
    /// Sessions kept per user; the least recently active beyond this are ended at login
    /// (default 5).
    pub max_sessions_per_user: usize,
    /// How stale `last_activity` may get before a request writes it (default 60 s). Keeps an
    /// authenticated request at one store read in the common case.
    pub touch_interval: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie_name: "session_id".into(),
            csrf_cookie_name: "csrf_token".into(),
            csrf_header: "x-csrf-token".into(),
            csrf: true,
            secure: true,
            same_site: SameSite::Lax,
            path: "/".into(),
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            max_sessions_per_user: 5,
            touch_interval: Duration::from_secs(60),
        }
    }
}

impl SessionConfig {
    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        let bad = |m: &str| Err(crate::ConfigError::Invalid(m.into()));
        if self.cookie_name == self.csrf_cookie_name {
            return bad("the session and CSRF cookie names must differ");
        }
        if self.cookie_name.is_empty() || self.csrf_cookie_name.is_empty() {
            return bad("cookie names must not be empty");
        }
        if self.idle_timeout.is_zero() || self.absolute_timeout < self.idle_timeout {
            return bad("session timeouts: idle must be positive and absolute >= idle");
        }
        if self.max_sessions_per_user == 0 {
            return bad("max_sessions_per_user must be at least 1");
        }
        if axum::http::HeaderName::try_from(self.csrf_header.as_str()).is_err() {
            return bad("csrf_header is not a valid header name");
        }
        Ok(())
    }
}

/// A stored session.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    /// The user's id, in its textual form.
    pub uid: String,
    /// The user's `token_version` when the session was made.
    pub ver: i64,
    /// Unix seconds of the login.
    pub created: i64,
    /// Unix seconds of the last recorded activity.
    pub last: i64,
    /// The client address at login.
    pub ip: String,
    /// The device parsed from the User-Agent at login.
    pub device: DeviceInfo,
    /// HMAC of the CSRF token.
    pub csrf: String,
    /// Unix seconds until which the session is elevated (sudo), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_until: Option<i64>,
}

/// A session resolved from its cookie.
#[derive(Clone, Debug)]
pub struct LiveSession {
    /// The public handle (the storage key's HMAC).
    pub handle: String,
    /// The record.
    pub record: SessionRecord,
}

/// A freshly created session: the raw id for the cookie and the CSRF token.
#[derive(Clone)]
pub struct NewSession {
    /// The raw session id (cookie value). Never stored.
    pub id: String,
    /// The CSRF token (cookie value and `/login` body). Stored only as an HMAC.
    pub csrf_token: String,
    /// The public handle.
    pub handle: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// Creates, resolves and revokes sessions. Reached as `auth.sessions()`.
#[derive(Clone)]
pub struct SessionManager {
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    config: Arc<SessionConfig>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn store_fault(e: StoreError) -> AuthError {
    crate::store::report_fault("session store", &e);
    AuthError::Unavailable
}

fn session_key(handle: &str) -> String {
    format!("session:{handle}")
}

fn index_key(uid: &str) -> String {
    format!("sessions:{uid}")
}

impl SessionManager {
    pub(crate) fn new(store: Arc<dyn Store>, keys: Arc<Keys>, config: SessionConfig) -> Self {
        SessionManager {
            store,
            keys,
            config: Arc::new(config),
        }
    }

    /// The settings.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// let name = &sessions.config().cookie_name;
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The public handle of a raw session id.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// let handle = sessions.handle_of("raw-cookie-value");
    /// # Ok(()) }
    /// ```
    pub fn handle_of(&self, raw_id: &str) -> String {
        hmac_hex(&self.keys.session, raw_id.as_bytes())
    }

    fn csrf_digest(&self, token: &str) -> String {
        hmac_hex(&self.keys.csrf, token.as_bytes())
    }

    /// Creates a session for a user (insert-if-absent; a collision draws a new id), and ends
    /// the least recently active sessions beyond the per-user cap.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// let new = sessions.create("42", 0, "203.0.113.9", "Mozilla/5.0").await?;
    /// # Ok(()) }
    /// ```
    pub async fn create(
        &self,
        uid: &str,
        token_version: i64,
        ip: &str,
        user_agent: &str,
    ) -> Result<NewSession, AuthError> {
        let now = now_secs();
        let csrf_token = random_token();
        let record = SessionRecord {
            uid: uid.to_owned(),
            ver: token_version,
            created: now,
            last: now,
            ip: ip.to_owned(),
            device: DeviceInfo::parse(user_agent),
            csrf: self.csrf_digest(&csrf_token),
            sudo_until: None,
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        for _ in 0..4 {
            let id = random_token();
            let handle = self.handle_of(&id);
            let fresh = self
                .store
                .set_if_absent(
                    &session_key(&handle),
                    &bytes,
                    Some(self.config.idle_timeout),
                )
                .await
                .map_err(store_fault)?;
            if !fresh {
                continue; // a 256-bit collision: astronomically unlikely, never an overwrite
            }
            self.store
                .index_add(&index_key(uid), &handle, self.config.absolute_timeout)
                .await
                .map_err(store_fault)?;
            self.evict_beyond_cap(uid, &handle).await?;
            return Ok(NewSession {
                id,
                csrf_token,
                handle,
            });
        }
        Err(AuthError::Internal)
    }

    async fn evict_beyond_cap(&self, uid: &str, keep: &str) -> Result<(), AuthError> {
        let mut sessions = self.list(uid).await?;
        if sessions.len() <= self.config.max_sessions_per_user {
            return Ok(());
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.record.last));
        let excess = sessions.len() - self.config.max_sessions_per_user;
        let mut victims: Vec<_> = sessions.into_iter().filter(|s| s.handle != keep).collect();
        victims.sort_by_key(|s| s.record.last);
        for victim in victims.into_iter().take(excess) {
            self.delete(&victim.handle, uid).await?;
        }
        Ok(())
    }

    /// Resolves a raw session id: `Ok(None)` when unknown, expired or timed out (an expired
    /// session is deleted on read). Refreshes the idle window at most once per
    /// `touch_interval`.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// let live = sessions.resolve("raw-cookie-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn resolve(&self, raw_id: &str) -> Result<Option<LiveSession>, AuthError> {
        if raw_id.is_empty() || raw_id.len() > 128 {
            return Ok(None);
        }
        let handle = self.handle_of(raw_id);
        self.load(&handle).await
    }

    /// Loads a session by handle, applying the timeouts.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// let live = sessions.load("a-public-handle").await?;
    /// # Ok(()) }
    /// ```
    pub async fn load(&self, handle: &str) -> Result<Option<LiveSession>, AuthError> {
        let key = session_key(handle);
        let Some(bytes) = self.store.get(&key).await.map_err(store_fault)? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<SessionRecord>(&bytes) else {
            tracing::warn!("unreadable session record dropped");
            self.store.delete(&key).await.map_err(store_fault)?;
            return Ok(None);
        };
        let now = now_secs();
        let idle = self.config.idle_timeout.as_secs() as i64;
        let absolute = self.config.absolute_timeout.as_secs() as i64;
        if now - record.last >= idle || now - record.created >= absolute {
            self.delete(handle, &record.uid).await?;
            return Ok(None);
        }
        let mut record = record;
        if now - record.last >= self.config.touch_interval.as_secs() as i64 {
            let mut touched = record.clone();
            touched.last = now;
            let new = serde_json::to_vec(&touched).map_err(|_| AuthError::Internal)?;
            // Compare-and-set: a concurrent write (logout, sudo) is never overwritten.
            if self
                .store
                .compare_and_set(&key, &bytes, &new, Some(self.config.idle_timeout))
                .await
                .map_err(store_fault)?
            {
                record = touched;
            }
        }
        Ok(Some(LiveSession {
            handle: handle.to_owned(),
            record,
        }))
    }

    /// Checks a presented CSRF token against the session's, in constant time.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// if let Some(live) = sessions.resolve("raw").await? { sessions.check_csrf(&live, Some("token"))?; }
    /// # Ok(()) }
    /// ```
    pub fn check_csrf(
        &self,
        session: &LiveSession,
        presented: Option<&str>,
    ) -> Result<(), AuthError> {
        let Some(presented) = presented.filter(|p| !p.is_empty()) else {
            return Err(AuthError::Csrf("Missing CSRF token"));
        };
        if presented.len() > 128 {
            return Err(AuthError::Csrf("Invalid CSRF token"));
        }
        let digest = self.csrf_digest(presented);
        if bool::from(digest.as_bytes().ct_eq(session.record.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(AuthError::Csrf("Invalid CSRF token"))
        }
    }

    /// Whether a presented CSRF token is the session's (without an error).
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// if let Some(live) = sessions.resolve("raw").await? { let ok = sessions.csrf_matches(&live, "token"); }
    /// # Ok(()) }
    /// ```
    pub fn csrf_matches(&self, session: &LiveSession, presented: &str) -> bool {
        self.check_csrf(session, Some(presented)).is_ok()
    }

    /// Replaces a session's record (CSRF rotation, sudo stamp, epoch rebind), only if it is
    /// still exactly as loaded; otherwise `Err(NotAuthenticated)` and nothing is written.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// if let Some(live) = sessions.resolve("raw").await? { let mut r = live.record.clone(); r.sudo_until = None; sessions.update(&live, &r).await?; }
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        session: &LiveSession,
        record: &SessionRecord,
    ) -> Result<(), AuthError> {
        let expected = serde_json::to_vec(&session.record).map_err(|_| AuthError::Internal)?;
        let bytes = serde_json::to_vec(record).map_err(|_| AuthError::Internal)?;
        // Compare-and-set against the record as loaded: a session revoked (or changed) in
        // the meantime is never resurrected or overwritten.
        let replaced = self
            .store
            .compare_and_set(
                &session_key(&session.handle),
                &expected,
                &bytes,
                Some(self.config.idle_timeout),
            )
            .await
            .map_err(store_fault)?;
        if replaced {
            Ok(())
        } else {
            Err(AuthError::NotAuthenticated)
        }
    }

    /// Changes a session's record with `change`, by compare-and-set: when a concurrent write
    /// (an activity touch, another change) got there first, it reloads and tries again, a
    /// few times. `Ok(false)` when the session is gone (never resurrected).
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// sessions.modify("a-public-handle", |r| r.sudo_until = None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn modify(
        &self,
        handle: &str,
        change: impl Fn(&mut SessionRecord),
    ) -> Result<bool, AuthError> {
        for _ in 0..4 {
            let Some(live) = self.load(handle).await? else {
                return Ok(false);
            };
            let mut record = live.record.clone();
            change(&mut record);
            if record == live.record {
                return Ok(true);
            }
            match self.update(&live, &record).await {
                Ok(()) => return Ok(true),
                Err(AuthError::NotAuthenticated) => continue,
                Err(e) => return Err(e),
            }
        }
        tracing::warn!("session record kept changing under a compare-and-set; giving up");
        Err(AuthError::Unavailable)
    }

    /// Mints a new CSRF token for a session.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// if let Some(live) = sessions.resolve("raw").await? { let token = sessions.rotate_csrf(&live).await?; }
    /// # Ok(()) }
    /// ```
    pub async fn rotate_csrf(&self, session: &LiveSession) -> Result<String, AuthError> {
        let token = random_token();
        let mut record = session.record.clone();
        record.csrf = self.csrf_digest(&token);
        self.update(session, &record).await?;
        Ok(token)
    }

    /// Ends one session.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// sessions.delete("a-public-handle", "42").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, handle: &str, uid: &str) -> Result<bool, AuthError> {
        let removed = self
            .store
            .delete(&session_key(handle))
            .await
            .map_err(store_fault)?;
        self.store
            .index_remove(&index_key(uid), handle)
            .await
            .map_err(store_fault)?;
        Ok(removed)
    }

    /// A user's live sessions.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// for s in sessions.list("42").await? { println!("{} {}", s.handle, s.record.ip); }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, uid: &str) -> Result<Vec<LiveSession>, AuthError> {
        let handles = self
            .store
            .index_members(&index_key(uid))
            .await
            .map_err(store_fault)?;
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            let bytes = self
                .store
                .get(&session_key(&handle))
                .await
                .map_err(store_fault)?;
            match bytes.and_then(|b| serde_json::from_slice::<SessionRecord>(&b).ok()) {
                Some(record) if record.uid == uid => out.push(LiveSession { handle, record }),
                _ => {
                    // Expired or gone: keep the index consistent.
                    self.store
                        .index_remove(&index_key(uid), &handle)
                        .await
                        .map_err(store_fault)?;
                }
            }
        }
        Ok(out)
    }

    /// Ends every session of a user except `keep`; returns how many ended.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::SessionManager) -> Result<(), crudauth::AuthError> {
    /// let ended = sessions.revoke_all("42", Some("the-current-handle")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_all(&self, uid: &str, keep: Option<&str>) -> Result<usize, AuthError> {
        let mut revoked = 0;
        for session in self.list(uid).await? {
            if Some(session.handle.as_str()) == keep {
                continue;
            }
            if self.delete(&session.handle, uid).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }
}
