//! Where API keys live: a table crudauth owns (`crudauth-sea`'s `SeaApiKeyStore`) or memory.
//! A key is found by its public id (one indexed read); only a keyed hash of its secret is
//! kept, and a rotation replaces that hash by a compare-and-set, so two rotations of one key
//! cannot both win.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::store::StoreError;

/// One API key as stored (never its secret: `secret_hash` is an HMAC of it under a key
/// derived from the app's secret key).
///
/// ```
/// let k = crudauth::api_key::StoredApiKey {
///     id: "0123456789abcdef".into(), user_id: "7".into(), name: "CI".into(),
///     scopes: vec!["reports:read".into()], secret_hash: "00".repeat(32),
///     previous_hash: None, previous_until: None, allowed_ips: vec![], epoch: 0,
///     service: false, created_by: "7".into(), created_at: 1, expires_at: None, last_used_at: None,
///     tenant: Some("acme".into()),
/// };
/// assert_eq!(k.name, "CI");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    /// The public id (16 lower-case hex digits), part of the key string.
    pub id: String,
    /// The owner's id, textual.
    pub user_id: String,
    /// The name the owner gave it.
    pub name: String,
    /// The scopes the key grants.
    pub scopes: Vec<String>,
    /// HMAC-SHA256 (hex) of the whole key string.
    pub secret_hash: String,
    /// The hash of the secret a rotation replaced, still accepted until `previous_until`.
    pub previous_hash: Option<String>,
    /// Unix seconds until which the previous secret is accepted.
    pub previous_until: Option<i64>,
    /// Client networks (CIDR) the key may be used from; empty: anywhere.
    pub allowed_ips: Vec<String>,
    /// The owner's revocation epoch when the key was made: a password reset or a
    /// deactivation moves the epoch and ends the key (not for service keys).
    pub epoch: i64,
    /// A service account's key: it does not end with its owner's epoch.
    pub service: bool,
    /// Who made it (the owner, or the superuser who made a service key).
    pub created_by: String,
    /// Unix seconds of its creation.
    pub created_at: i64,
    /// Unix seconds from which it is refused, if it expires.
    pub expires_at: Option<i64>,
    /// Unix seconds of its last use (written at most once a minute).
    pub last_used_at: Option<i64>,
    /// The tenant it was made in (see [`crate::tenant`]): its principal's tenant at every
    /// use. With a tenant column, a key whose owner's row is in another tenant now is
    /// refused.
    pub tenant: Option<String>,
}

/// The secret's hash stays out of debug output.
impl std::fmt::Debug for StoredApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredApiKey")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("allowed_ips", &self.allowed_ips)
            .field("service", &self.service)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// The storage of API keys.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use crudauth::api_key::{ApiKeyStore, MemoryApiKeyStore, StoredApiKey};
/// let store = MemoryApiKeyStore::default();
/// let key = StoredApiKey { id: "0123456789abcdef".into(), user_id: "7".into(), name: "CI".into(),
///     scopes: vec![], secret_hash: "aa".into(), previous_hash: None, previous_until: None,
///     allowed_ips: vec![], epoch: 0, service: false, created_by: "7".into(), created_at: 1,
///     expires_at: None, last_used_at: None, tenant: None };
/// assert!(store.insert(&key).await?);
/// assert!(!store.insert(&key).await?, "an id is used once");
/// assert!(store.rotate("0123456789abcdef", "aa", "bb", Some(100)).await?);
/// assert!(!store.rotate("0123456789abcdef", "aa", "cc", None).await?, "rotated already");
/// assert!(store.touch("0123456789abcdef", 500, 440).await?);
/// assert!(!store.touch("0123456789abcdef", 510, 450).await?, "used less than a minute ago");
/// assert_eq!(store.for_user("7").await?.len(), 1);
/// # Ok::<_, crudauth::store::StoreError>(()) }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// The key with this public id, whoever owns it.
    async fn find(&self, id: &str) -> Result<Option<StoredApiKey>, StoreError>;
    /// The user's keys, oldest first.
    async fn for_user(&self, user_id: &str) -> Result<Vec<StoredApiKey>, StoreError>;
    /// Stores a new key; `false` (nothing written) if its id is taken.
    async fn insert(&self, key: &StoredApiKey) -> Result<bool, StoreError>;
    /// Replaces the secret's hash by `new_hash` only if it is still `old_hash`, keeping
    /// `old_hash` as the previous one until `previous_until` (or dropping it when `None`);
    /// `true` if replaced.
    async fn rotate(
        &self,
        id: &str,
        old_hash: &str,
        new_hash: &str,
        previous_until: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Records a use at `at` unless one was recorded after `after` (so a busy key is
    /// written at most once a minute, across processes); `true` if written.
    async fn touch(&self, id: &str, at: i64, after: i64) -> Result<bool, StoreError>;
    /// Removes one of the user's keys; `false` if the user has no such key.
    async fn delete(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Removes every key of the user; returns how many.
    async fn delete_all(&self, user_id: &str) -> Result<usize, StoreError>;
}

/// API keys in memory: for tests and single-process development (lost on restart).
///
/// ```
/// let store = crudauth::api_key::MemoryApiKeyStore::default();
/// ```
#[derive(Debug, Default)]
pub struct MemoryApiKeyStore {
    keys: Mutex<BTreeMap<String, StoredApiKey>>,
}

impl MemoryApiKeyStore {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, StoredApiKey>) -> T) -> T {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut keys)
    }
}

#[async_trait::async_trait]
impl ApiKeyStore for MemoryApiKeyStore {
    async fn find(&self, id: &str) -> Result<Option<StoredApiKey>, StoreError> {
        Ok(self.with(|k| k.get(id).cloned()))
    }

    async fn for_user(&self, user_id: &str) -> Result<Vec<StoredApiKey>, StoreError> {
        let mut mine: Vec<_> = self.with(|k| {
            k.values()
                .filter(|key| key.user_id == user_id)
                .cloned()
                .collect()
        });
        mine.sort_by_key(|key| key.created_at);
        Ok(mine)
    }

    async fn insert(&self, key: &StoredApiKey) -> Result<bool, StoreError> {
        Ok(self.with(|k| {
            if k.contains_key(&key.id) {
                return false;
            }
            k.insert(key.id.clone(), key.clone());
            true
        }))
    }

    async fn rotate(
        &self,
        id: &str,
        old_hash: &str,
        new_hash: &str,
        previous_until: Option<i64>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|k| match k.get_mut(id) {
            Some(key) if key.secret_hash == old_hash => {
                key.previous_hash = previous_until.map(|_| old_hash.to_owned());
                key.previous_until = previous_until;
                key.secret_hash = new_hash.to_owned();
                true
            }
            _ => false,
        }))
    }

    async fn touch(&self, id: &str, at: i64, after: i64) -> Result<bool, StoreError> {
        Ok(self.with(|k| match k.get_mut(id) {
            Some(key) if key.last_used_at.is_none_or(|t| t <= after) => {
                key.last_used_at = Some(at);
                true
            }
            _ => false,
        }))
    }

    async fn delete(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|k| {
            if k.get(id).is_some_and(|key| key.user_id == user_id) {
                k.remove(id);
                true
            } else {
                false
            }
        }))
    }

    async fn delete_all(&self, user_id: &str) -> Result<usize, StoreError> {
        Ok(self.with(|k| {
            let before = k.len();
            k.retain(|_, key| key.user_id != user_id);
            before - k.len()
        }))
    }
}
