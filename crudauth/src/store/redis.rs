//! The Redis store (feature `redis`): one connection manager shared by every part, Lua
//! scripts where a step must be atomic, every key under a configurable prefix so two apps can
//! share one Redis. Needs Redis 6.2 or newer (`GETDEL`); tested on Redis 7.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{Store, StoreError};

const COMPARE_AND_SET: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else
    redis.call('SET', KEYS[1], ARGV[2])
  end
  return 1
end
return 0
";

/// Increment, arming the expiry only when the counter has none (i.e. was just created).
const INCR_ARMED: &str = r"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
";

/// Add a member with its own deadline; keep the set alive as long as its longest member.
const INDEX_ADD: &str = r"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[3])
local current = redis.call('PTTL', KEYS[1])
if current >= 0 and current < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
elseif current == -1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
";

/// A [`Store`] on Redis.
///
/// ```no_run
/// # async fn f() -> Result<(), crudauth::store::StoreError> {
/// let store = crudauth::store::RedisStore::connect("redis://127.0.0.1:6379", "myapp:auth:").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    manager: ConnectionManager,
    prefix: String,
    cas: redis::Script,
    incr: redis::Script,
    index_add: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn fault(e: redis::RedisError) -> StoreError {
    StoreError::new(format!("redis: {e}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RedisStore {
    /// Connects (with automatic reconnection and 2-second connection and response timeouts)
    /// and namespaces every key under `prefix`.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), crudauth::store::StoreError> {
    /// let store = crudauth::store::RedisStore::connect("redis://127.0.0.1:6379", "crudauth:").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(fault)?;
        // Bounded waits: an unreachable Redis must fail requests quickly (503), not hang them.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(fault)?;
        warn_on_eviction(manager.clone()).await;
        Ok(Self::from_manager(manager, prefix))
    }

    /// Wraps an existing connection manager (shared with the rest of the app). Unlike
    /// [`RedisStore::connect`], it does not look at the server's eviction policy.
    ///
    /// ```no_run
    /// # fn f(manager: redis::aio::ConnectionManager) {
    /// let store = crudauth::store::RedisStore::from_manager(manager, "crudauth:");
    /// # }
    /// ```
    pub fn from_manager(manager: ConnectionManager, prefix: &str) -> Self {
        RedisStore {
            manager,
            prefix: prefix.to_owned(),
            cas: redis::Script::new(COMPARE_AND_SET),
            incr: redis::Script::new(INCR_ARMED),
            index_add: redis::Script::new(INDEX_ADD),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// Logs an error when the server may evict keys that have no expiry (`maxmemory-policy`
/// `allkeys-*`): the user generations have none, and an evicted one hands a process's user
/// cache back a number it read under before (stale users until `max_age`). Warns under
/// `volatile-*`, which evicts lockout counters and the access-token deny list. A server that
/// will not say (managed Redis often refuses `CONFIG`) is left alone.
async fn warn_on_eviction(mut c: ConnectionManager) {
    let policy: Result<Vec<String>, _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut c)
        .await;
    let Ok(reply) = policy else {
        return;
    };
    let Some(policy) = reply.get(1) else {
        return;
    };
    if policy.starts_with("allkeys") {
        tracing::error!(
            policy = %policy,
            "crudauth: Redis may evict keys without expiry; set maxmemory-policy to noeviction \
             or a volatile-* policy, or keep UserCacheConfig::max_age short"
        );
    } else if policy.starts_with("volatile") {
        tracing::warn!(
            policy = %policy,
            "crudauth: under memory pressure Redis evicts keys with an expiry: lockout \
             counters, rate limits and the access-token deny list (a logged-out token would \
             work again until it expires); maxmemory-policy noeviction keeps them"
        );
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.manager.clone();
        c.get(self.key(key)).await.map_err(fault)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.manager.clone();
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        cmd.query_async(&mut c).await.map_err(fault)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        let mut c = self.manager.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        cmd.query_async::<()>(&mut c).await.map_err(fault)
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut c = self.manager.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("NX");
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        let reply: Option<String> = cmd.query_async(&mut c).await.map_err(fault)?;
        Ok(reply.is_some())
    }

    async fn get_and_delete(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.manager.clone();
        redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut c)
            .await
            .map_err(fault)
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut c = self.manager.clone();
        let swapped: i64 = self
            .cas
            .key(self.key(key))
            .arg(expected)
            .arg(new)
            .arg(ttl.map_or(0, millis))
            .invoke_async(&mut c)
            .await
            .map_err(fault)?;
        Ok(swapped == 1)
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut c = self.manager.clone();
        let removed: i64 = c.del(self.key(key)).await.map_err(fault)?;
        Ok(removed > 0)
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
        let mut c = self.manager.clone();
        self.incr
            .key(self.key(key))
            .arg(delta)
            .arg(millis(ttl))
            .invoke_async(&mut c)
            .await
            .map_err(fault)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let mut c = self.manager.clone();
        let ms: i64 = redis::cmd("PTTL")
            .arg(self.key(key))
            .query_async(&mut c)
            .await
            .map_err(fault)?;
        Ok(match ms {
            -2 => None,
            -1 => Some(Duration::MAX),
            ms => Some(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    async fn index_add(&self, index: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut c = self.manager.clone();
        let deadline = now_ms().saturating_add(millis(ttl));
        self.index_add
            .key(self.key(index))
            .arg(deadline)
            .arg(member)
            .arg(millis(ttl))
            .invoke_async::<i64>(&mut c)
            .await
            .map_err(fault)?;
        Ok(())
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        let mut c = self.manager.clone();
        c.zrem::<_, _, ()>(self.key(index), member)
            .await
            .map_err(fault)
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let mut c = self.manager.clone();
        let key = self.key(index);
        let now = now_ms();
        c.zrembyscore::<_, _, _, ()>(&key, "-inf", now)
            .await
            .map_err(fault)?;
        c.zrangebyscore(&key, format!("({now}"), "+inf")
            .await
            .map_err(fault)
    }

    /// Redis expires records and counters itself, and expired index members are dropped
    /// whenever an index is read; there is nothing left to purge.
    async fn purge_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
