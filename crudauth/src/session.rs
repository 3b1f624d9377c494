//! Server-side sessions with synchronizer-token CSRF.
//!
//! - Session ids are 256 bits from the OS CSPRNG; only their HMAC (under a key derived for
//!   this purpose) is stored, and that HMAC is the public handle shown by `GET /sessions`.
//! - A session is created with set-if-absent, never an overwrite.
//! - Every login makes a new id (no fixation); idle and absolute timeouts apply.
//! - The CSRF token is stored (as an HMAC) inside the session record itself, so checking it
//!   costs no extra store round trip; it is compared in constant time.
//! - The session records the user's `token_version` at login and dies when it changes.
//! - A privilege change (password change, sudo elevation, email change) moves the session to
//!   a new id with [`Sessions::rotate`]: a copy of the cookie taken before the change
//!   dies at once. The CSRF token carries over, so a page's open forms keep working.
//! - "Now" comes from [`SessionConfig::clock`] (the system clock unless a test moves it).
//! - Where cookies are `Secure` and `Path=/`, the session cookie carries the `__Host-`
//!   prefix by default ([`SessionConfig::host_prefix`]): no sibling subdomain can set or
//!   shadow it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::clock::Clock;
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
/// assert!(c.secure && c.csrf && c.host_prefix && !c.csrf_host_prefix);
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
    /// Put the `__Host-` prefix on the session cookie's name (default `true`): the browser
    /// then accepts it only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain
    /// can neither set nor shadow it (cookie tossing, subdomain session fixation). Applied
    /// only where those rules hold: with `secure` on and `path` `/`; with `secure` off (plain
    /// http development) the name stays as configured. The effective name is what
    /// [`Sessions::config`] reports (`__Host-session_id` with the defaults). The session
    /// cookie is `HttpOnly`, so no script reads it by name; clients that pick it out of
    /// `Set-Cookie` by name must use the prefixed name (or turn this off).
    pub host_prefix: bool,
    /// Put the `__Host-` prefix on the CSRF cookie too (default `false`): scripts read that
    /// cookie by name (`csrf_token`, as crudauth 0.8 named it), so prefixing it changes what
    /// a frontend must read. It stays readable by scripts either way. A tossed CSRF cookie
    /// cannot pass the check (the token is compared with the one stored in the session), so
    /// the prefix is defence in depth here.
    pub csrf_host_prefix: bool,
    /// Where "now" comes from for session timestamps and timeouts (default: the system
    /// clock). Tests hand in [`Clock::adjustable`] and move it forward to test the idle and
    /// absolute timeouts without sleeping.
    pub clock: Clock,
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
            host_prefix: true,
            csrf_host_prefix: false,
            clock: Clock::system(),
        }
    }
}

const HOST_PREFIX: &str = "__Host-";

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
        // A name the application prefixed itself must meet the prefix's rules, or browsers
        // drop the cookie and nobody can sign in.
        for name in [&self.cookie_name, &self.csrf_cookie_name] {
            if name.starts_with(HOST_PREFIX) && !(self.secure && self.path == "/") {
                return bad("a __Host- cookie needs secure = true and path = \"/\"");
            }
            if name.starts_with("__Secure-") && !self.secure {
                return bad("a __Secure- cookie needs secure = true");
            }
        }
        Ok(())
    }

    /// Whether the `__Host-` prefix can be used: `Secure` and `Path=/` (no `Domain` is ever
    /// set).
    fn host_prefix_allowed(&self) -> bool {
        self.secure && self.path == "/"
    }

    /// The configuration with the `__Host-` prefixes applied to the cookie names, as the
    /// session manager uses them.
    fn with_effective_names(mut self) -> Self {
        let prefix = |name: &mut String| {
            if !name.starts_with("__Host-") && !name.starts_with("__Secure-") {
                name.insert_str(0, HOST_PREFIX);
            }
        };
        if self.host_prefix_allowed() {
            if self.host_prefix {
                prefix(&mut self.cookie_name);
            }
            if self.csrf_host_prefix {
                prefix(&mut self.csrf_cookie_name);
            }
        } else if self.secure && (self.host_prefix || self.csrf_host_prefix) {
            tracing::info!(
                path = %self.path,
                "crudauth: cookie path is not /, so the __Host- prefix is not used"
            );
        }
        self
    }
}

/// A stored session.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    /// The user's id, in its textual form.
    #[serde(rename = "uid")]
    pub user_id: String,
    /// The user's revocation epoch when the session was made (stored as `ver`).
    #[serde(rename = "ver")]
    pub epoch: i64,
    /// Unix seconds of the login.
    pub created: i64,
    /// Unix seconds of the last recorded activity.
    #[serde(rename = "last")]
    pub last_seen: i64,
    /// The client address at login.
    pub ip: String,
    /// The device parsed from the User-Agent at login.
    pub device: DeviceInfo,
    /// HMAC of the CSRF token (stored as `csrf`).
    #[serde(rename = "csrf")]
    pub csrf_digest: String,
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

/// A session moved to a new id by [`Sessions::rotate`]: the raw id for the new cookie
/// and the new public handle. The CSRF token is unchanged.
#[derive(Clone)]
pub struct RotatedSession {
    /// The new raw session id (cookie value). Never stored.
    pub id: String,
    /// The new public handle.
    pub handle: String,
    /// The record as written under the new id.
    pub record: SessionRecord,
}

impl std::fmt::Debug for RotatedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSession")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
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
pub struct Sessions {
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    config: Arc<SessionConfig>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The system clock in unix seconds (for what is not tied to a session manager's clock).
pub(crate) fn now_secs() -> i64 {
    crate::clock::system_secs()
}

fn store_fault(e: StoreError) -> AuthError {
    crate::store::report_fault("session store", &e);
    AuthError::Unavailable
}

fn session_key(handle: &str) -> String {
    format!("session:{handle}")
}

fn index_key(user_id: &str) -> String {
    format!("sessions:{user_id}")
}

impl Sessions {
    pub(crate) fn new(store: Arc<dyn Store>, keys: Arc<Keys>, config: SessionConfig) -> Self {
        Sessions {
            store,
            keys,
            config: Arc::new(config.with_effective_names()),
        }
    }

    /// Now, in unix seconds, from the configured [`SessionConfig::clock`]. Everything that
    /// compares against session timestamps (timeouts, sudo windows, sign-in freshness)
    /// should read this.
    ///
    /// ```no_run
    /// # fn f(sessions: &crudauth::Sessions) {
    /// let now = sessions.now_secs();
    /// # }
    /// ```
    pub fn now_secs(&self) -> i64 {
        self.config.clock.now_secs()
    }

    /// The settings, with the cookie names as sent (the `__Host-` prefix applied where
    /// [`SessionConfig::host_prefix`] asks for it).
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
    /// let name = &sessions.config().cookie_name;
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The public handle of a raw session id.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
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
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
    /// let new = sessions.create("42", 0, "203.0.113.9", "Mozilla/5.0").await?;
    /// # Ok(()) }
    /// ```
    pub async fn create(
        &self,
        user_id: &str,
        epoch: i64,
        ip: &str,
        user_agent: &str,
    ) -> Result<NewSession, AuthError> {
        let now = self.now_secs();
        let csrf_token = random_token();
        let record = SessionRecord {
            user_id: user_id.to_owned(),
            epoch,
            created: now,
            last_seen: now,
            ip: ip.to_owned(),
            device: DeviceInfo::parse(user_agent),
            csrf_digest: self.csrf_digest(&csrf_token),
            sudo_until: None,
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        let (id, handle) = self.insert_fresh(&bytes).await?;
        self.store
            .index_add(&index_key(user_id), &handle, self.config.absolute_timeout)
            .await
            .map_err(store_fault)?;
        self.evict_beyond_cap(user_id, &handle).await?;
        Ok(NewSession {
            id,
            csrf_token,
            handle,
        })
    }

    /// Writes a session record under a freshly drawn id, insert-if-absent (never an
    /// overwrite, even on a 256-bit collision, which only draws again); returns the raw id
    /// and its handle.
    async fn insert_fresh(&self, bytes: &[u8]) -> Result<(String, String), AuthError> {
        for _ in 0..4 {
            let id = random_token();
            let handle = self.handle_of(&id);
            if self
                .store
                .set_if_absent(&session_key(&handle), bytes, Some(self.config.idle_timeout))
                .await
                .map_err(store_fault)?
            {
                return Ok((id, handle));
            }
        }
        Err(AuthError::Internal)
    }

    async fn evict_beyond_cap(&self, user_id: &str, keep: &str) -> Result<(), AuthError> {
        let mut sessions = self.list(user_id).await?;
        if sessions.len() <= self.config.max_sessions_per_user {
            return Ok(());
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.record.last_seen));
        let excess = sessions.len() - self.config.max_sessions_per_user;
        let mut victims: Vec<_> = sessions.into_iter().filter(|s| s.handle != keep).collect();
        victims.sort_by_key(|s| s.record.last_seen);
        for victim in victims.into_iter().take(excess) {
            self.delete(&victim.handle, user_id).await?;
        }
        Ok(())
    }

    /// Resolves a raw session id: `Ok(None)` when unknown, expired or timed out (an expired
    /// session is deleted on read). Refreshes the idle window at most once per
    /// `touch_interval`.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
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
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
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
        let now = self.now_secs();
        let idle = self.config.idle_timeout.as_secs() as i64;
        let absolute = self.config.absolute_timeout.as_secs() as i64;
        if now - record.last_seen >= idle || now - record.created >= absolute {
            self.delete(handle, &record.user_id).await?;
            return Ok(None);
        }
        let mut record = record;
        if now - record.last_seen >= self.config.touch_interval.as_secs() as i64 {
            let mut touched = record.clone();
            touched.last_seen = now;
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
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
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
        if bool::from(
            digest
                .as_bytes()
                .ct_eq(session.record.csrf_digest.as_bytes()),
        ) {
            Ok(())
        } else {
            Err(AuthError::Csrf("Invalid CSRF token"))
        }
    }

    /// The CSRF check of a request riding `session`: the configured header must carry the
    /// session's token (always `Ok` when CSRF is switched off).
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions, live: crudauth::session::LiveSession, headers: axum::http::HeaderMap) -> Result<(), crudauth::AuthError> {
    /// sessions.check_request_csrf(&live, &headers)?;
    /// # Ok(()) }
    /// ```
    pub fn check_request_csrf(
        &self,
        session: &LiveSession,
        headers: &axum::http::HeaderMap,
    ) -> Result<(), AuthError> {
        if !self.config.csrf {
            return Ok(());
        }
        let presented = headers
            .get(self.config.csrf_header.as_str())
            .and_then(|v| v.to_str().ok());
        self.check_csrf(session, presented)
    }

    /// Whether a presented CSRF token is the session's (without an error).
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
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
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
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
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
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
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
    /// if let Some(live) = sessions.resolve("raw").await? { let token = sessions.rotate_csrf(&live).await?; }
    /// # Ok(()) }
    /// ```
    pub async fn rotate_csrf(&self, session: &LiveSession) -> Result<String, AuthError> {
        let token = random_token();
        let mut record = session.record.clone();
        record.csrf_digest = self.csrf_digest(&token);
        self.update(session, &record).await?;
        Ok(token)
    }

    /// Moves a live session to a new id (after a privilege change: password change, sudo
    /// elevation, email change), keeping everything else: the user, the epoch, the login
    /// time (so the absolute timeout still counts from the login), the device, the sudo
    /// stamp and the CSRF token (open forms keep working). The old id dies at once.
    ///
    /// `Ok(None)` when the session is gone, timed out, or was ended or rotated by a
    /// concurrent request meanwhile; nothing is created then.
    ///
    /// Atomic with respect to every other session write: the new record is created
    /// insert-if-absent (never an overwrite), then the old one is claimed with a
    /// get-and-delete. Of two concurrent rotations exactly one wins; a revocation that ends
    /// the old id before the claim also ends the new one; a change written to the old
    /// record in between (a sudo stamp, an epoch rebind) is carried over by a
    /// compare-and-set on the new record, which also fails (and the rotation answers
    /// `None`) when a revocation reached the new id through the user's index.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
    /// if let Some(moved) = sessions.rotate("the-current-handle").await? {
    ///     // set `moved.id` as the new session cookie
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn rotate(&self, handle: &str) -> Result<Option<RotatedSession>, AuthError> {
        self.rotate_with(handle, |_| {}).await
    }

    /// [`Sessions::rotate`], changing the record on the way with `change` (an epoch
    /// rebind, say). `change` may run twice (when a concurrent write has to be carried
    /// over); it must be a pure function of the record.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
    /// let moved = sessions.rotate_with("the-current-handle", |r| r.epoch = 7).await?;
    /// # Ok(()) }
    /// ```
    pub async fn rotate_with(
        &self,
        handle: &str,
        change: impl Fn(&mut SessionRecord),
    ) -> Result<Option<RotatedSession>, AuthError> {
        let Some(live) = self.load(handle).await? else {
            return Ok(None);
        };
        let expected = serde_json::to_vec(&live.record).map_err(|_| AuthError::Internal)?;
        let user_id = live.record.user_id.clone();
        let now = self.now_secs();
        let moved = |mut record: SessionRecord| {
            change(&mut record);
            record.last_seen = now;
            record
        };
        let mut record = moved(live.record.clone());
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;

        // 1. The new record, insert-if-absent under a fresh id.
        let (id, new_handle) = self.insert_fresh(&bytes).await?;
        let absolute = self.config.absolute_timeout.as_secs() as i64;
        let left = (record.created + absolute - now).max(1) as u64;
        self.store
            .index_add(&index_key(&user_id), &new_handle, Duration::from_secs(left))
            .await
            .map_err(store_fault)?;

        // 2. The old id dies: claimed by exactly one caller.
        let claimed = self
            .store
            .get_and_delete(&session_key(handle))
            .await
            .map_err(store_fault)?;
        self.store
            .index_remove(&index_key(&user_id), handle)
            .await
            .map_err(store_fault)?;
        let Some(claimed) = claimed else {
            // Ended (or rotated) concurrently: the new id must not outlive it.
            self.delete(&new_handle, &user_id).await?;
            return Ok(None);
        };
        if claimed != expected {
            // Written in between (a sudo stamp, an epoch rebind, an activity touch): carry
            // the latest state over, unless the new id was revoked meanwhile.
            let Ok(latest) = serde_json::from_slice::<SessionRecord>(&claimed) else {
                self.delete(&new_handle, &user_id).await?;
                return Ok(None);
            };
            let latest = moved(latest);
            let latest_bytes = serde_json::to_vec(&latest).map_err(|_| AuthError::Internal)?;
            let replaced = self
                .store
                .compare_and_set(
                    &session_key(&new_handle),
                    &bytes,
                    &latest_bytes,
                    Some(self.config.idle_timeout),
                )
                .await
                .map_err(store_fault)?;
            if !replaced {
                self.delete(&new_handle, &user_id).await?;
                return Ok(None);
            }
            record = latest;
        }
        Ok(Some(RotatedSession {
            id,
            handle: new_handle,
            record,
        }))
    }

    /// Ends one session.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
    /// sessions.delete("a-public-handle", "42").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, handle: &str, user_id: &str) -> Result<bool, AuthError> {
        let removed = self
            .store
            .delete(&session_key(handle))
            .await
            .map_err(store_fault)?;
        self.store
            .index_remove(&index_key(user_id), handle)
            .await
            .map_err(store_fault)?;
        Ok(removed)
    }

    /// A user's live sessions.
    ///
    /// ```no_run
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
    /// for s in sessions.list("42").await? { println!("{} {}", s.handle, s.record.ip); }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, user_id: &str) -> Result<Vec<LiveSession>, AuthError> {
        let handles = self
            .store
            .index_members(&index_key(user_id))
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
                Some(record) if record.user_id == user_id => {
                    out.push(LiveSession { handle, record })
                }
                _ => {
                    // Expired or gone: keep the index consistent.
                    self.store
                        .index_remove(&index_key(user_id), &handle)
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
    /// # async fn f(sessions: &crudauth::Sessions) -> Result<(), crudauth::AuthError> {
    /// let ended = sessions.revoke_all("42", Some("the-current-handle")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<usize, AuthError> {
        let mut revoked = 0;
        for session in self.list(user_id).await? {
            if Some(session.handle.as_str()) == keep {
                continue;
            }
            if self.delete(&session.handle, user_id).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }
}
