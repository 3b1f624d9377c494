//! A deadline on every store call: a store that answers slowly is a fault (503), never a
//! request that hangs.

use std::sync::Arc;
use std::time::Duration;

use super::{Store, StoreError};

/// Wraps a [`Store`] so that every call fails with a [`StoreError`] once `timeout` has
/// passed. The facade wraps the configured store in it (see the builder's `store_timeout`,
/// 2 s by default), so a stalled Redis or database answers `503` and authenticates nobody,
/// as any other store fault does.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use crudauth::store::{MemoryStore, Store, TimeoutStore};
/// let store = TimeoutStore::new(Arc::new(MemoryStore::new()), Duration::from_secs(2));
/// store.set("k", b"v", None).await.unwrap();
/// assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
/// # });
/// ```
#[derive(Clone)]
pub struct TimeoutStore {
    inner: Arc<dyn Store>,
    timeout: Duration,
}

impl std::fmt::Debug for TimeoutStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TimeoutStore {
    /// Wraps `inner` with a deadline of `timeout` per call.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// let _ = crudauth::store::TimeoutStore::new(
    ///     Arc::new(crudauth::store::MemoryStore::new()),
    ///     Duration::from_millis(500),
    /// );
    /// ```
    pub fn new(inner: Arc<dyn Store>, timeout: Duration) -> Self {
        TimeoutStore { inner, timeout }
    }

    async fn within<T>(
        &self,
        op: &str,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::new(format!(
                "{op} timed out after {:?}",
                self.timeout
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Store for TimeoutStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.within("get", self.inner.get(key)).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.within("get_many", self.inner.get_many(keys)).await
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.within("set", self.inner.set(key, value, ttl)).await
    }
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.within("set_if_absent", self.inner.set_if_absent(key, value, ttl))
            .await
    }
    async fn get_and_delete(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.within("get_and_delete", self.inner.get_and_delete(key))
            .await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.within(
            "compare_and_set",
            self.inner.compare_and_set(key, expected, new, ttl),
        )
        .await
    }
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.within("delete", self.inner.delete(key)).await
    }
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
        self.within("incr", self.inner.incr(key, delta, ttl)).await
    }
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        self.within("ttl", self.inner.ttl(key)).await
    }
    async fn index_add(&self, index: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        self.within("index_add", self.inner.index_add(index, member, ttl))
            .await
    }
    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        self.within("index_remove", self.inner.index_remove(index, member))
            .await
    }
    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        self.within("index_members", self.inner.index_members(index))
            .await
    }
    async fn purge_expired(&self) -> Result<u64, StoreError> {
        // Housekeeping may legitimately take long; it is never on a request's path.
        self.inner.purge_expired().await
    }
}
