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

use crate::device::DeviceInfo;
use crate::error::AuthError;
use crate::keys::{Keys, hmac_hex, random_token};
use crate::store::{Store, StoreError};

mod config;
mod index;
mod record;
mod tenant;

pub use config::{SameSite, SessionConfig};
pub use record::{Impersonator, LiveSession, NewSession, RotatedSession, SessionRecord};

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

pub(super) fn store_fault(e: StoreError) -> AuthError {
    crate::store::fail_closed("session store", &e)
}

pub(super) fn session_key(handle: &str) -> String {
    format!("session:{handle}")
}

pub(super) fn index_key(user_id: &str) -> String {
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
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, _, _| {
    /// assert!(sessions.now_secs() > 1_700_000_000);
    /// # Ok(()) });
    /// ```
    pub fn now_secs(&self) -> i64 {
        self.config.clock.now_secs()
    }

    /// The settings, with the cookie names as sent (the `__Host-` prefix applied where
    /// [`SessionConfig::host_prefix`] asks for it).
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, _, _| {
    /// assert_eq!(sessions.config().cookie_name, "__Host-session_id"); // the prefix applied
    /// # Ok(()) });
    /// ```
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The public handle of a raw session id.
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, _| {
    /// assert_eq!(sessions.handle_of(&new.id), new.handle);
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, _, _| {
    /// let new = sessions.create("1", 0, "203.0.113.9", "Mozilla/5.0").await?;
    /// // `new.id` goes in the cookie, `new.csrf_token` to the page; only `new.handle` is stored.
    /// let live = sessions.resolve(&new.id).await?.expect("just created");
    /// assert_eq!((live.handle, live.record.user_id), (new.handle, "1".to_owned()));
    /// # Ok(()) });
    /// ```
    pub async fn create(
        &self,
        user_id: &str,
        epoch: i64,
        ip: &str,
        user_agent: &str,
    ) -> Result<NewSession, AuthError> {
        self.create_via(user_id, epoch, ip, user_agent, None).await
    }

    /// [`Sessions::create`] for a sign-in by another method than the password: the record
    /// keeps `login_type` and the provider (`("oauth", "github")`).
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, _, _| {
    /// let new = sessions.create_via("1", 0, "203.0.113.9", "Mozilla/5.0", Some(("oauth", "github"))).await?;
    /// let live = sessions.resolve(&new.id).await?.expect("just created");
    /// assert_eq!(live.record.provider.as_deref(), Some("github"));
    /// # Ok(()) });
    /// ```
    pub async fn create_via(
        &self,
        user_id: &str,
        epoch: i64,
        ip: &str,
        user_agent: &str,
        method: Option<(&str, &str)>,
    ) -> Result<NewSession, AuthError> {
        self.create_record(user_id, epoch, (ip, user_agent), method, (None, None))
            .await
    }

    /// An impersonation session (feature `admin`): the user's session, with the acting
    /// superuser in its record. It does not count against the user's session cap (it never
    /// ends one of the user's own sessions).
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) async fn create_impersonation(
        &self,
        user_id: &str,
        epoch: i64,
        client: (&str, &str),
        (impersonator, tenant): (record::Impersonator, Option<String>),
    ) -> Result<NewSession, AuthError> {
        self.create_record(user_id, epoch, client, None, (Some(impersonator), tenant))
            .await
    }

    async fn create_record(
        &self,
        user_id: &str,
        epoch: i64,
        (ip, user_agent): (&str, &str),
        method: Option<(&str, &str)>,
        (impersonator, tenant): (Option<record::Impersonator>, Option<String>),
    ) -> Result<NewSession, AuthError> {
        let now = self.now_secs();
        let csrf_token = random_token();
        // The user's generation, read before the session exists and again once it is
        // indexed: a move in between is caught by the second read, one after it finds the
        // session in the index.
        let generation = crate::generation::read(self.store.as_ref(), user_id).await?;
        let record = SessionRecord {
            user_id: user_id.to_owned(),
            epoch,
            created: now,
            last_seen: now,
            ip: ip.to_owned(),
            device: DeviceInfo::parse(user_agent),
            csrf_digest: self.csrf_digest(&csrf_token),
            sudo_until: None,
            generation,
            login_type: method.map(|(t, _)| t.to_owned()),
            provider: method.map(|(_, p)| p.to_owned()),
            impersonator,
            tenant,
        };
        let record_is_own = record.impersonator.is_none();
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        let (id, handle) = self.insert_fresh(&bytes).await?;
        self.store
            .index_add(&index_key(user_id), &handle, self.config.absolute_timeout)
            .await
            .map_err(store_fault)?;
        if record_is_own {
            self.evict_beyond_cap(user_id, &handle).await?;
        }
        self.catch_up_generation(&handle, user_id, generation)
            .await?;
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

    /// Resolves a raw session id: `Ok(None)` when unknown, expired or timed out (an expired
    /// session is deleted on read). Refreshes the idle window at most once per
    /// `touch_interval`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, _| {
    /// assert!(sessions.resolve(&new.id).await?.is_some());
    /// assert!(sessions.resolve("not-a-session-id").await?.is_none());
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, _| {
    /// let live = sessions.load(&new.handle).await?.expect("live");
    /// assert_eq!(live.record.ip, "203.0.113.7");
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, live| {
    /// sessions.check_csrf(&live, Some(&new.csrf_token))?;
    /// assert!(sessions.check_csrf(&live, Some("forged")).is_err());
    /// # Ok(()) });
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
        if crate::keys::same_secret(&digest, &session.record.csrf_digest) {
            Ok(())
        } else {
            Err(AuthError::Csrf("Invalid CSRF token"))
        }
    }

    /// The CSRF check of a request riding `session`: the configured header must carry the
    /// session's token (always `Ok` when CSRF is switched off).
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, live| {
    /// let mut headers = axum::http::HeaderMap::new();
    /// headers.insert("x-csrf-token", new.csrf_token.parse()?);
    /// sessions.check_request_csrf(&live, &headers)?;
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, live| {
    /// assert!(sessions.csrf_matches(&live, &new.csrf_token));
    /// assert!(!sessions.csrf_matches(&live, "forged"));
    /// # Ok(()) });
    /// ```
    pub fn csrf_matches(&self, session: &LiveSession, presented: &str) -> bool {
        self.check_csrf(session, Some(presented)).is_ok()
    }

    /// Replaces a session's record (CSRF rotation, sudo stamp, epoch rebind), only if it is
    /// still exactly as loaded; otherwise `Err(NotAuthenticated)` and nothing is written.
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, _, live| {
    /// let mut record = live.record.clone();
    /// record.sudo_until = Some(sessions.now_secs() + 300);
    /// sessions.update(&live, &record).await?;
    /// assert!(sessions.update(&live, &record).await.is_err()); // `live` is stale now
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, _| {
    /// assert!(sessions.modify(&new.handle, |r| r.sudo_until = None).await?);
    /// assert!(!sessions.modify("a-handle-that-is-gone", |r| r.sudo_until = None).await?);
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, live| {
    /// let token = sessions.rotate_csrf(&live).await?;
    /// let live = sessions.load(&new.handle).await?.expect("live");
    /// assert!(sessions.csrf_matches(&live, &token) && !sessions.csrf_matches(&live, &new.csrf_token));
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, _| {
    /// let moved = sessions.rotate(&new.handle).await?.expect("live");
    /// // Set `moved.id` as the new session cookie: the old id is dead.
    /// assert!(sessions.resolve(&new.id).await?.is_none());
    /// assert!(sessions.resolve(&moved.id).await?.is_some());
    /// # Ok(()) });
    /// ```
    pub async fn rotate(&self, handle: &str) -> Result<Option<RotatedSession>, AuthError> {
        self.rotate_with(handle, |_| {}).await
    }

    /// [`Sessions::rotate`], changing the record on the way with `change` (an epoch
    /// rebind, say). `change` may run twice (when a concurrent write has to be carried
    /// over); it must be a pure function of the record.
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, _| {
    /// let moved = sessions.rotate_with(&new.handle, |r| r.epoch = 7).await?.expect("live");
    /// assert_eq!(moved.record.epoch, 7);
    /// # Ok(()) });
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
        // 3. The user's generation, read again now that the new id is indexed: a move that
        //    listed the index before it (and so told only the old id) is caught here.
        match self
            .catch_up_generation(&new_handle, &user_id, record.generation)
            .await?
        {
            Some(generation) => record.generation = generation,
            None => return Ok(None),
        }
        Ok(Some(RotatedSession {
            id,
            handle: new_handle,
            record,
        }))
    }

    /// Reads the user's generation once a session is indexed, and raises the session's to it
    /// when it moved past `known` (the generation the record was written with): a move that
    /// listed the index before the session was in it is caught here, one after it finds the
    /// session. The session's generation, or `None` if the session ended meanwhile.
    async fn catch_up_generation(
        &self,
        handle: &str,
        user_id: &str,
        known: i64,
    ) -> Result<Option<i64>, AuthError> {
        let generation = crate::generation::read(self.store.as_ref(), user_id).await?;
        if generation <= known {
            return Ok(Some(known));
        }
        let raised = self
            .modify(handle, |r| r.generation = r.generation.max(generation))
            .await?;
        Ok(raised.then_some(generation))
    }
}
