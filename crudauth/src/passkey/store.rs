//! Where passkeys live: a table crudauth owns (`crudauth-sea`'s `SeaPasskeyStore`) or memory.
//! A credential belongs to one user for good: its id is unique across all users, and every
//! use moves its signature counter by a compare-and-set, so two uses of one assertion (or of
//! a cloned authenticator) cannot both be recorded.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::store::StoreError;

/// One registered passkey as stored.
///
/// ```
/// let p = crudauth::passkey::StoredPasskey {
///     credential_id: "AAEC".into(), user_id: "7".into(), user_handle: uuid::Uuid::nil(),
///     name: "Laptop".into(), passkey: "{}".into(), counter: 0, created_at: 1, last_used_at: None,
/// };
/// assert_eq!(p.name, "Laptop");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential id, base64url without padding (as WebAuthn clients send it).
    pub credential_id: String,
    /// The owner's id, textual.
    pub user_id: String,
    /// The WebAuthn user handle of the owner (random, one per user; never the user id).
    pub user_handle: uuid::Uuid,
    /// The name the user chose ("Laptop", "Phone").
    pub name: String,
    /// The serialized `webauthn_rs::prelude::Passkey` (public key, algorithm, counter).
    pub passkey: String,
    /// The last signature counter accepted.
    pub counter: u32,
    /// Unix seconds of the registration.
    pub created_at: i64,
    /// Unix seconds of the last sign-in with it.
    pub last_used_at: Option<i64>,
}

/// The serialized public key is not secret, but it is long: debug output leaves it out.
impl std::fmt::Debug for StoredPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPasskey")
            .field("credential_id", &self.credential_id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("counter", &self.counter)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

/// The storage of passkeys.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use crudauth::passkey::{MemoryPasskeyStore, PasskeyStore, StoredPasskey};
/// let store = MemoryPasskeyStore::default();
/// let key = StoredPasskey { credential_id: "AAEC".into(), user_id: "7".into(),
///     user_handle: uuid::Uuid::nil(), name: "Laptop".into(), passkey: "{}".into(),
///     counter: 0, created_at: 1, last_used_at: None };
/// assert!(store.insert(&key).await?);
/// assert!(!store.insert(&key).await?, "a credential id is registered once");
/// assert!(store.record_use("AAEC", 0, 1, "{}", 5).await?);
/// assert!(!store.record_use("AAEC", 0, 1, "{}", 6).await?, "the counter moved already");
/// assert_eq!(store.for_user("7").await?.len(), 1);
/// # Ok::<_, crudauth::store::StoreError>(()) }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// The passkey with this credential id, whoever owns it.
    async fn find(&self, credential_id: &str) -> Result<Option<StoredPasskey>, StoreError>;
    /// The user's passkeys, oldest first.
    async fn for_user(&self, user_id: &str) -> Result<Vec<StoredPasskey>, StoreError>;
    /// Registers a passkey; `false` (nothing written) if its credential id is registered
    /// already, to this user or another.
    async fn insert(&self, passkey: &StoredPasskey) -> Result<bool, StoreError>;
    /// Records a sign-in: the counter becomes `new_counter`, the serialized passkey
    /// `passkey`, the last use `at`, only if the counter is still `old_counter` (`true` if
    /// recorded).
    async fn record_use(
        &self,
        credential_id: &str,
        old_counter: u32,
        new_counter: u32,
        passkey: &str,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Renames one of the user's passkeys; `false` if the user has no such passkey.
    async fn rename(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
    ) -> Result<bool, StoreError>;
    /// Removes one of the user's passkeys; `false` if the user has no such passkey.
    async fn delete(&self, user_id: &str, credential_id: &str) -> Result<bool, StoreError>;
    /// Removes every passkey of the user; returns how many.
    async fn delete_all(&self, user_id: &str) -> Result<usize, StoreError>;
}

/// Passkeys in memory: for tests and single-process development (lost on restart).
///
/// ```
/// let store = crudauth::passkey::MemoryPasskeyStore::default();
/// ```
#[derive(Debug, Default)]
pub struct MemoryPasskeyStore {
    keys: Mutex<BTreeMap<String, StoredPasskey>>,
}

impl MemoryPasskeyStore {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, StoredPasskey>) -> T) -> T {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut keys)
    }
}

#[async_trait::async_trait]
impl PasskeyStore for MemoryPasskeyStore {
    async fn find(&self, credential_id: &str) -> Result<Option<StoredPasskey>, StoreError> {
        Ok(self.with(|k| k.get(credential_id).cloned()))
    }

    async fn for_user(&self, user_id: &str) -> Result<Vec<StoredPasskey>, StoreError> {
        let mut mine: Vec<_> = self.with(|k| {
            k.values()
                .filter(|p| p.user_id == user_id)
                .cloned()
                .collect()
        });
        mine.sort_by_key(|p| p.created_at);
        Ok(mine)
    }

    async fn insert(&self, passkey: &StoredPasskey) -> Result<bool, StoreError> {
        Ok(self.with(|k| {
            if k.contains_key(&passkey.credential_id) {
                return false;
            }
            k.insert(passkey.credential_id.clone(), passkey.clone());
            true
        }))
    }

    async fn record_use(
        &self,
        credential_id: &str,
        old_counter: u32,
        new_counter: u32,
        passkey: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|k| match k.get_mut(credential_id) {
            Some(p) if p.counter == old_counter => {
                p.counter = new_counter;
                p.passkey = passkey.to_owned();
                p.last_used_at = Some(at);
                true
            }
            _ => false,
        }))
    }

    async fn rename(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|k| match k.get_mut(credential_id) {
            Some(p) if p.user_id == user_id => {
                p.name = name.to_owned();
                true
            }
            _ => false,
        }))
    }

    async fn delete(&self, user_id: &str, credential_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|k| {
            if k.get(credential_id).is_some_and(|p| p.user_id == user_id) {
                k.remove(credential_id);
                true
            } else {
                false
            }
        }))
    }

    async fn delete_all(&self, user_id: &str) -> Result<usize, StoreError> {
        Ok(self.with(|k| {
            let before = k.len();
            k.retain(|_, p| p.user_id != user_id);
            before - k.len()
        }))
    }
}
