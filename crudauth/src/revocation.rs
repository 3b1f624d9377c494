//! The revocation epoch: one number per user that every session and token carries; moving it
//! on ends them all. It lives in the `token_version` column when the table has one, else in
//! the store.
//!
//! This module also owns the user *generation* (`crate::generation`): every write crudauth
//! makes to a user ends with `Revocation::changed`, which moves the generation, tells the
//! user's sessions, and forgets this process's cached copy, so no process uses a copy read
//! before the write.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::UserCache;
use crate::error::AuthError;
use crate::session::Sessions;
use crate::store::{Store, fail_closed};
use crate::user::{DynUserRepository, LogicalField, UserId, UserRecord};

const EPOCH_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Reads and moves users' revocation epochs. Reached as `auth.revocation()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| {
/// # let user = crudauth::doc_fixture::user(&auth).await?;
/// let revocation = auth.revocation();
/// let before = revocation.epoch(&user).await?;
/// assert!(revocation.bump(&user).await? != before);
/// # Ok(()) });
/// ```
pub struct Revocation<U> {
    repo: Arc<dyn DynUserRepository<U>>,
    store: Arc<dyn Store>,
    sessions: Option<Sessions>,
    cache: Arc<UserCache<U>>,
}

impl<U> Clone for Revocation<U> {
    fn clone(&self) -> Self {
        Revocation {
            repo: self.repo.clone(),
            store: self.store.clone(),
            sessions: self.sessions.clone(),
            cache: self.cache.clone(),
        }
    }
}

impl<U> std::fmt::Debug for Revocation<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocation")
            .field("store_kept", &self.store_kept())
            .finish()
    }
}

/// The deny-list record of an access token (`POST /logout` with a bearer token). Token ids
/// are minted by crudauth and signed, so no caller chooses this key.
fn denied_key(jti: &str) -> String {
    format!("deny-jti:{jti}")
}

fn store_fault(e: crate::store::StoreError) -> AuthError {
    fail_closed("epoch store", &e)
}

impl<U> Revocation<U> {
    pub(crate) fn new(
        repo: Arc<dyn DynUserRepository<U>>,
        store: Arc<dyn Store>,
        sessions: Option<Sessions>,
        cache: Arc<UserCache<U>>,
    ) -> Self {
        Revocation {
            repo,
            store,
            sessions,
            cache,
        }
    }

    /// The user cache (read by the transports).
    pub(crate) fn cache(&self) -> &UserCache<U> {
        &self.cache
    }

    /// The user's generation (one store read).
    pub(crate) async fn generation(&self, id: &UserId) -> Result<i64, AuthError> {
        crate::generation::read(self.store.as_ref(), &id.to_string()).await
    }

    /// The user's generation and whether the access token `jti` is on the deny list, read in
    /// one store round trip: the deny list costs the bearer transport no read of its own.
    pub(crate) async fn generation_and_denied(
        &self,
        id: &UserId,
        jti: &str,
    ) -> Result<(i64, bool), AuthError> {
        let denied = denied_key(jti);
        crate::generation::read_with(self.store.as_ref(), &id.to_string(), Some(&denied)).await
    }

    /// Puts an access token on the deny list until it expires: from now on it authenticates
    /// nothing, on every process sharing the store. `POST /logout` does this for the bearer
    /// token it is sent with; call it for tokens ended elsewhere. `exp` is the token's expiry
    /// (unix seconds); the entry outlives it by a minute, beyond any verifier's leeway, and
    /// then goes by itself.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// let pair = tokens.issue("1", 0, vec![]).await?;
    /// let claims = tokens.verify_access(&pair.access_token)?;
    /// auth.revocation().deny_access_token(&claims.jti, claims.exp).await?;
    /// # Ok(()) });
    /// ```
    ///
    /// Returns `false` when the token was already on the list (a second logout with it). An
    /// `exp` further out than a year is held for a year: no access token lives that long.
    pub async fn deny_access_token(&self, jti: &str, exp: u64) -> Result<bool, AuthError> {
        const YEAR: u64 = 366 * 24 * 3600;
        let now = u64::try_from(crate::clock::now_secs()).unwrap_or(0);
        let left = exp.saturating_sub(now).min(YEAR) + 60;
        self.store
            .set_if_absent(&denied_key(jti), b"1", Some(Duration::from_secs(left)))
            .await
            .map_err(|e| fail_closed("token deny list", &e))
    }

    /// Announces a write to the user (by crudauth, or by the app through
    /// `auth.invalidate_user`): the generation moves, every session of the user is told, and
    /// this process's cached copy is forgotten. Called after the write, before the answer.
    pub(crate) async fn changed(&self, id: &UserId) -> Result<(), AuthError> {
        self.cache.forget(id);
        let user_id = id.to_string();
        let generation = crate::generation::bump(self.store.as_ref(), &user_id).await?;
        if let Some(sessions) = &self.sessions {
            sessions.set_generation(&user_id, generation).await?;
        }
        // Forgotten again: a request that read the old generation may have refilled it.
        self.cache.forget(id);
        Ok(())
    }

    /// Whether the epoch is kept in the store (the table has no `token_version` column).
    pub(crate) fn store_kept(&self) -> bool {
        !self.repo.schema().has(LogicalField::TokenVersion)
    }
}

impl<U: UserRecord> Revocation<U> {
    /// The user's revocation epoch: the `token_version` column, or the store when the table
    /// has none.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// # let user = crudauth::doc_fixture::user(&auth).await?;
    /// let epoch = auth.revocation().epoch(&user).await?;
    /// assert_eq!(epoch, 0); // the user's `token_version`
    /// # Ok(()) });
    /// ```
    pub async fn epoch(&self, user: &U) -> Result<i64, AuthError> {
        if let Some(v) = user.token_version() {
            return Ok(v);
        }
        self.store_epoch(&user.user_id()).await
    }

    /// The epoch kept in the store for tables without a `token_version` column. A missing
    /// record starts at the current unix time in microseconds, not 0, so losing the store (a
    /// flush, an eviction, a restart of the memory store) can never bring revoked tokens
    /// back: their epochs are all older.
    pub(crate) async fn store_epoch(&self, id: &UserId) -> Result<i64, AuthError> {
        let key = format!("epoch:{id}");
        for _ in 0..2 {
            if let Some(bytes) = self.store.get(&key).await.map_err(store_fault)? {
                return std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(AuthError::Internal);
            }
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_micros() as i64)
                .to_string();
            self.store
                .set_if_absent(&key, start.as_bytes(), Some(EPOCH_TTL))
                .await
                .map_err(store_fault)?;
        }
        Err(AuthError::Unavailable)
    }

    /// Moves the user's revocation epoch on: every earlier token and session of the user
    /// dies. Returns the new epoch.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// # let user = crudauth::doc_fixture::user(&auth).await?;
    /// # let signed_in = crudauth::doc_fixture::signed_in_parts(&auth, "ann").await?;
    /// auth.revocation().bump(&user).await?; // every earlier token and session ends
    /// assert!(auth.authenticate(&signed_in, None).await?.is_none());
    /// # Ok(()) });
    /// ```
    pub async fn bump(&self, user: &U) -> Result<i64, AuthError> {
        let id = user.user_id();
        let epoch = match self
            .repo
            .bump_token_version(&id)
            .await
            .map_err(|e| fail_closed("user repository", &e))?
        {
            Some(v) => v,
            None => self.bump_store(&id).await?,
        };
        self.changed(&id).await?;
        Ok(epoch)
    }

    /// Moves the store-kept epoch on (tables without `token_version`): compare-and-set,
    /// retried, so concurrent bumps each move it.
    pub(crate) async fn bump_store(&self, id: &UserId) -> Result<i64, AuthError> {
        let key = format!("epoch:{id}");
        for _ in 0..16 {
            let current = self.store_epoch(id).await?;
            let next = current + 1;
            let swapped = self
                .store
                .compare_and_set(
                    &key,
                    current.to_string().as_bytes(),
                    next.to_string().as_bytes(),
                    Some(EPOCH_TTL),
                )
                .await
                .map_err(store_fault)?;
            if swapped {
                self.changed(id).await?;
                return Ok(next);
            }
        }
        Err(AuthError::Unavailable)
    }
}
