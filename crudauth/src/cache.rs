//! The user cache: loaded users (the app's model) and their revocation epochs, kept in
//! process so an authenticated request needs no database read.
//!
//! An entry is used only while it is provably current. Every write crudauth makes to a user
//! moves the user's *generation* (a counter in the shared store, see `revocation`): the
//! session record carries the generation it was last told of, and a bearer request reads the
//! generation from the store (the one store read of that path). An entry cached under another
//! generation is ignored and reloaded, so a revocation on any process takes effect on every
//! process on its next request. Writes the app makes to its table outside crudauth are
//! announced with `auth.invalidate_user(id)`; for those it forgets, entries also expire after
//! [`UserCacheConfig::max_age`].

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::user::UserId;

/// Settings of the user cache.
///
/// ```
/// let c = crudauth::UserCacheConfig::default();
/// assert_eq!(c.capacity, 10_000);
/// assert_eq!(c.max_age, Some(std::time::Duration::from_secs(5)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserCacheConfig {
    /// How many users are kept (least recently used go first); 0 turns the cache off.
    pub capacity: usize,
    /// The longest an entry is used, whatever the generation says: the bound on how stale a
    /// user can be after a write the app made to its table outside crudauth without calling
    /// `auth.invalidate_user`. `None`: only generations decide (every write must go through
    /// crudauth or `invalidate_user`).
    pub max_age: Option<Duration>,
}

impl Default for UserCacheConfig {
    fn default() -> Self {
        UserCacheConfig {
            capacity: 10_000,
            max_age: Some(Duration::from_secs(5)),
        }
    }
}

/// A cached user.
pub(crate) struct Entry<U> {
    pub user: Arc<U>,
    /// The revocation epoch read with the user.
    pub epoch: i64,
    /// The user's generation when it was read.
    pub generation: i64,
    loaded: Instant,
}

impl<U> Clone for Entry<U> {
    fn clone(&self) -> Self {
        Entry {
            user: self.user.clone(),
            epoch: self.epoch,
            generation: self.generation,
            loaded: self.loaded,
        }
    }
}

/// The cache (cheap to share: one lock around an LRU).
pub(crate) struct UserCache<U> {
    entries: Option<Mutex<lru::LruCache<UserId, Entry<U>>>>,
    max_age: Option<Duration>,
}

impl<U> std::fmt::Debug for UserCache<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCache")
            .field("on", &self.entries.is_some())
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl<U> UserCache<U> {
    pub(crate) fn new(config: UserCacheConfig) -> Self {
        UserCache {
            entries: NonZeroUsize::new(config.capacity)
                .map(|cap| Mutex::new(lru::LruCache::new(cap))),
            max_age: config.max_age,
        }
    }

    /// The entry for `id` if it was read under `generation` and is not too old.
    pub(crate) fn get(&self, id: &UserId, generation: i64) -> Option<Entry<U>> {
        let mut entries = self.entries.as_ref()?.lock().ok()?;
        let entry = entries.get(id)?;
        let fresh = self.max_age.is_none_or(|max| entry.loaded.elapsed() < max);
        if entry.generation == generation && fresh {
            return Some(entry.clone());
        }
        entries.pop(id);
        None
    }

    /// Keeps a user read under `generation`.
    pub(crate) fn put(&self, id: UserId, user: Arc<U>, epoch: i64, generation: i64) {
        if let Some(Ok(mut entries)) = self.entries.as_ref().map(Mutex::lock) {
            let loaded = Instant::now();
            entries.put(
                id,
                Entry {
                    user,
                    epoch,
                    generation,
                    loaded,
                },
            );
        }
    }

    /// Forgets a user (a write this process made; the generation tells the others).
    pub(crate) fn forget(&self, id: &UserId) {
        if let Some(Ok(mut entries)) = self.entries.as_ref().map(Mutex::lock) {
            entries.pop(id);
        }
    }
}
