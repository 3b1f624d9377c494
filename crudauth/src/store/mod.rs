//! Server-side state: one small trait, with TTL'd records, atomic primitives, counters and a
//! per-user index. Sessions, lockout counters, refresh-token families and one-time tokens all
//! live behind it, so one switch moves them together.
//!
//! ## Writing a backend
//!
//! Every method is atomic with respect to the others on the same key. Keys are opaque ASCII
//! strings chosen by crudauth (`session:…`, `login:…`); a backend may prefix them. TTLs are
//! upper bounds: an expired record must never be returned, but may linger in storage until
//! [`Store::purge_expired`] runs. Errors must be reported, never swallowed: crudauth turns
//! them into a 503 and authenticates nobody (fail closed).

mod memory;
#[cfg(feature = "redis")]
mod redis;
mod timeout;

use std::time::Duration;

#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
pub use memory::MemoryStore;
pub use timeout::TimeoutStore;

/// Logs a backend fault (store or database) at most once per burst: the first fault, then
/// at most one line every 10 seconds with the number of faults in between. An outage must
/// not turn every refused request into a log line.
///
/// ```
/// crudauth::store::report_fault("session store", &"connection refused");
/// ```
pub fn report_fault(context: &str, error: &dyn std::fmt::Display) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
        tracing::error!(
            error = %error,
            suppressed,
            "{context} failed; refusing requests until it recovers (fail closed)"
        );
    } else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The one answer to a backend fault: reported (see [`report_fault`]) and refused as `503`,
/// never let through (fail closed).
pub(crate) fn fail_closed(context: &str, error: &dyn std::fmt::Display) -> crate::error::AuthError {
    report_fault(context, error);
    crate::error::AuthError::Unavailable
}

/// [`fail_closed`] for a user repository fault.
pub(crate) fn repo_fault(e: crate::user::RepoError) -> crate::error::AuthError {
    fail_closed("user repository", &e)
}

/// A store backend failed (unreachable, timed out, corrupt data).
///
/// ```
/// let e = crudauth::store::StoreError::new("connection refused");
/// assert!(e.to_string().contains("connection refused"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("store failure: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// A failure with this message (for logs).
    ///
    /// ```
    /// let _ = crudauth::store::StoreError::new("timeout");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        StoreError(message.into())
    }
}

/// The storage port. Implemented by [`MemoryStore`]; database and Redis backends plug in the
/// same way.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use crudauth::store::{MemoryStore, Store};
/// let store = MemoryStore::new();
/// assert!(store.set_if_absent("k", b"v", Some(Duration::from_secs(60))).await.unwrap());
/// assert!(!store.set_if_absent("k", b"w", None).await.unwrap());
/// assert_eq!(store.get_and_delete("k").await.unwrap().as_deref(), Some(&b"v"[..]));
/// # });
/// ```
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The record under `key`, if present and unexpired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The records under `keys`, in order, each `None` if absent or expired: one round trip
    /// in the Redis and database stores. The default asks [`get`](Store::get) once a key;
    /// a store on a network should override it.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }
    /// Writes a record (replacing any), expiring after `ttl` (`None`: never).
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError>;
    /// Writes a record only if none exists; `true` if written.
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;
    /// Removes and returns a record in one step: of concurrent callers, exactly one gets it.
    async fn get_and_delete(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the record only if it still equals `expected`; `true` if replaced.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;
    /// Removes a record or counter; `true` if something was removed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Adds `delta` to a counter and returns the new value. A counter that does not exist
    /// starts at 0 and expires `ttl` after its creation (a fixed window); later increments do
    /// not move the expiry.
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError>;
    /// The time left before `key` (record or counter) expires; `None` if absent or expired.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError>;
    /// Adds `member` to the set `index`, the member expiring after `ttl`.
    async fn index_add(&self, index: &str, member: &str, ttl: Duration) -> Result<(), StoreError>;
    /// Removes `member` from the set `index`.
    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError>;
    /// The unexpired members of the set `index`.
    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError>;
    /// Drops expired entries; returns how many. Never needed for correctness.
    async fn purge_expired(&self) -> Result<u64, StoreError>;
}
