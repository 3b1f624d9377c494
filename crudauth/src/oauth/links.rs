//! Where a provider account is tied to a user: the link records (provider, subject) → user,
//! kept in a table crudauth owns (`crudauth-sea`'s `SeaLinkStore`) or in memory, so a
//! legacy user table needs no OAuth column.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::store::StoreError;

/// One provider account tied to one user.
///
/// ```
/// let link = crudauth::oauth::OAuthLink::new("github", "583231", "7", Some("ann@example.com".into()), 1_700_000_000);
/// assert_eq!(link.last_used_at, link.created_at);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OAuthLink {
    /// The provider's name as configured (`google`, `github`, `oidc`, ...).
    pub provider: String,
    /// The provider's stable id of the account (the ID token's `sub`, GitHub's numeric id).
    pub subject: String,
    /// The user's primary key, in its text form.
    pub user_id: String,
    /// The address the provider reported when the link was made.
    pub email: Option<String>,
    /// When the link was made (unix seconds).
    pub created_at: i64,
    /// When it last signed someone in (unix seconds).
    pub last_used_at: i64,
}

impl OAuthLink {
    /// A link made now.
    pub fn new(
        provider: impl Into<String>,
        subject: impl Into<String>,
        user_id: impl Into<String>,
        email: Option<String>,
        now: i64,
    ) -> Self {
        OAuthLink {
            provider: provider.into(),
            subject: subject.into(),
            user_id: user_id.into(),
            email,
            created_at: now,
            last_used_at: now,
        }
    }
}

/// The storage of links. A (provider, subject) pair belongs to one user, and a user has at
/// most one link per provider; [`LinkStore::insert`] answers `false` when either is taken
/// (a unique constraint, so two concurrent inserts cannot both win).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use crudauth::oauth::{LinkStore, MemoryLinkStore, OAuthLink};
/// let links = MemoryLinkStore::default();
/// assert!(links.insert(&OAuthLink::new("github", "1", "7", None, 0)).await?);
/// assert!(!links.insert(&OAuthLink::new("github", "1", "8", None, 0)).await?); // taken
/// assert_eq!(links.find("github", "1").await?.map(|l| l.user_id).as_deref(), Some("7"));
/// # Ok::<_, crudauth::store::StoreError>(()) }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait LinkStore: Send + Sync + 'static {
    /// The link of a provider account.
    async fn find(&self, provider: &str, subject: &str) -> Result<Option<OAuthLink>, StoreError>;
    /// Every link of a user, oldest first.
    async fn for_user(&self, user_id: &str) -> Result<Vec<OAuthLink>, StoreError>;
    /// Inserts a link; `false` if the provider account or the user's slot for that provider
    /// is taken.
    async fn insert(&self, link: &OAuthLink) -> Result<bool, StoreError>;
    /// Records a sign-in through a link.
    async fn touch(&self, provider: &str, subject: &str, at: i64) -> Result<(), StoreError>;
    /// Removes a user's link to a provider; `true` if there was one.
    async fn delete(&self, user_id: &str, provider: &str) -> Result<bool, StoreError>;
    /// Removes every link of a user (a claimed account, a deleted user); how many.
    async fn delete_all(&self, user_id: &str) -> Result<usize, StoreError> {
        let mut gone = 0;
        for link in self.for_user(user_id).await? {
            gone += usize::from(self.delete(user_id, &link.provider).await?);
        }
        Ok(gone)
    }
}

/// Links in process memory: for tests and single-process setups without a database.
///
/// ```
/// let links = crudauth::oauth::MemoryLinkStore::default();
/// # let _ = links;
/// ```
#[derive(Debug, Default)]
pub struct MemoryLinkStore {
    links: Mutex<Links>,
}

/// (provider, subject) → link.
type Links = BTreeMap<(String, String), OAuthLink>;

impl MemoryLinkStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Links>, StoreError> {
        self.links
            .lock()
            .map_err(|_| StoreError::new("link store lock poisoned"))
    }
}

#[async_trait::async_trait]
impl LinkStore for MemoryLinkStore {
    async fn find(&self, provider: &str, subject: &str) -> Result<Option<OAuthLink>, StoreError> {
        let key = (provider.to_owned(), subject.to_owned());
        Ok(self.lock()?.get(&key).cloned())
    }

    async fn for_user(&self, user_id: &str) -> Result<Vec<OAuthLink>, StoreError> {
        let mut out: Vec<_> = (self.lock()?.values())
            .filter(|l| l.user_id == user_id)
            .cloned()
            .collect();
        out.sort_by_key(|l| l.created_at);
        Ok(out)
    }

    async fn insert(&self, link: &OAuthLink) -> Result<bool, StoreError> {
        let mut links = self.lock()?;
        let key = (link.provider.clone(), link.subject.clone());
        let slot_taken = links
            .values()
            .any(|l| l.user_id == link.user_id && l.provider == link.provider);
        if slot_taken || links.contains_key(&key) {
            return Ok(false);
        }
        links.insert(key, link.clone());
        Ok(true)
    }

    async fn touch(&self, provider: &str, subject: &str, at: i64) -> Result<(), StoreError> {
        let key = (provider.to_owned(), subject.to_owned());
        if let Some(link) = self.lock()?.get_mut(&key) {
            link.last_used_at = at;
        }
        Ok(())
    }

    async fn delete(&self, user_id: &str, provider: &str) -> Result<bool, StoreError> {
        let mut links = self.lock()?;
        let before = links.len();
        links.retain(|_, l| !(l.user_id == user_id && l.provider == provider));
        Ok(links.len() != before)
    }
}
