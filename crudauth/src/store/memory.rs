//! The in-process store: right for one process and for tests.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Store, StoreError};

const SHARDS: usize = 16;
/// Every this many writes to a shard, its expired entries are swept.
const SWEEP_EVERY: u32 = 1024;

#[derive(Default)]
struct Shard {
    records: HashMap<String, (Vec<u8>, Option<Instant>)>,
    counters: HashMap<String, (i64, Instant)>,
    indexes: HashMap<String, HashMap<String, Instant>>,
    writes: u32,
}

impl Shard {
    fn sweep(&mut self, now: Instant) -> u64 {
        let before = self.records.len() + self.counters.len();
        self.records
            .retain(|_, (_, exp)| exp.is_none_or(|e| e > now));
        self.counters.retain(|_, (_, exp)| *exp > now);
        let mut removed = (before - self.records.len() - self.counters.len()) as u64;
        for members in self.indexes.values_mut() {
            let n = members.len();
            members.retain(|_, exp| *exp > now);
            removed += (n - members.len()) as u64;
        }
        self.indexes.retain(|_, m| !m.is_empty());
        removed
    }

    fn wrote(&mut self, now: Instant) {
        self.writes += 1;
        if self.writes >= SWEEP_EVERY {
            self.writes = 0;
            self.sweep(now);
        }
    }

    fn live_record(&mut self, key: &str, now: Instant) -> Option<&mut (Vec<u8>, Option<Instant>)> {
        let expired = self
            .records
            .get(key)
            .is_some_and(|(_, exp)| exp.is_some_and(|e| e <= now));
        if expired {
            self.records.remove(key);
        }
        self.records.get_mut(key)
    }
}

/// An in-memory [`Store`]: sharded maps under short-held mutexes. State is lost on restart
/// and not shared between processes.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use crudauth::store::{MemoryStore, Store};
/// let store = MemoryStore::new();
/// assert_eq!(store.incr("c", 1, Duration::from_secs(60)).await.unwrap(), 1);
/// assert_eq!(store.incr("c", 1, Duration::from_secs(60)).await.unwrap(), 2);
/// # });
/// ```
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// let store = crudauth::store::MemoryStore::new();
    /// ```
    pub fn new() -> Self {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding a shard lock cannot leave a map half-written (every
        // operation is a single insert/remove), so a poisoned lock is safe to reuse.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn deadline(now: Instant, ttl: Option<Duration>) -> Option<Instant> {
    ttl.map(|t| now + t)
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = Instant::now();
        Ok(self
            .shard(key)
            .live_record(key, now)
            .map(|(v, _)| v.clone()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        shard
            .records
            .insert(key.to_owned(), (value.to_vec(), deadline(now, ttl)));
        shard.wrote(now);
        Ok(())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if shard.live_record(key, now).is_some() {
            return Ok(false);
        }
        shard
            .records
            .insert(key.to_owned(), (value.to_vec(), deadline(now, ttl)));
        shard.wrote(now);
        Ok(true)
    }

    async fn get_and_delete(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        Ok(shard
            .records
            .remove(key)
            .filter(|(_, exp)| exp.is_none_or(|e| e > now))
            .map(|(v, _)| v))
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        match shard.live_record(key, now) {
            Some(record) if record.0 == expected => {
                *record = (new.to_vec(), deadline(now, ttl));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut shard = self.shard(key);
        let record = shard.records.remove(key).is_some();
        let counter = shard.counters.remove(key).is_some();
        Ok(record || counter)
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let entry = shard
            .counters
            .entry(key.to_owned())
            .or_insert((0, now + ttl));
        if entry.1 <= now {
            *entry = (0, now + ttl);
        }
        entry.0 = entry.0.saturating_add(delta);
        let value = entry.0;
        shard.wrote(now);
        Ok(value)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if let Some((_, exp)) = shard.live_record(key, now) {
            return Ok(exp.map(|e| e - now).or(Some(Duration::MAX)));
        }
        Ok(shard
            .counters
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(_, exp)| *exp - now))
    }

    async fn index_add(&self, index: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(index);
        shard
            .indexes
            .entry(index.to_owned())
            .or_default()
            .insert(member.to_owned(), now + ttl);
        shard.wrote(now);
        Ok(())
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        let mut shard = self.shard(index);
        if let Some(members) = shard.indexes.get_mut(index) {
            members.remove(member);
            if members.is_empty() {
                shard.indexes.remove(index);
            }
        }
        Ok(())
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let shard = self.shard(index);
        Ok(shard
            .indexes
            .get(index)
            .map(|m| {
                m.iter()
                    .filter(|(_, exp)| **exp > now)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = Instant::now();
        let mut removed = 0;
        for shard in &self.shards {
            removed += shard.lock().unwrap_or_else(|p| p.into_inner()).sweep(now);
        }
        Ok(removed)
    }
}
