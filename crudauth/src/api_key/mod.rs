//! API keys (feature `api-keys`): the third transport, for scripts and services.
//!
//! - A key is a string `ca_live_<id>_<secret>`: the configurable prefix (so secret scanners
//!   and people recognise it), a 16-hex-digit public id, and 256 random bits (base64url). It
//!   is shown once, when made or rotated; only an HMAC-SHA256 of it (under a key derived
//!   from the app's secret key) is stored, so checking one costs one indexed read and one
//!   HMAC, never a password hash.
//! - It travels as `X-API-Key` (configurable) or `Authorization: Bearer ca_live_...`, and
//!   becomes the same [`crate::Principal`] as the other transports, with `via = api_key`, the
//!   key's scopes and its id. No cookie, so no CSRF; a key sent as a cookie is no key.
//! - A key ends with its owner's revocation epoch (a password reset, a deactivation, "sign
//!   out everywhere"), unless a superuser made it as a service account's key; it also ends
//!   when it expires, is deleted, or its owner is deleted or disabled. A key may be limited
//!   to client networks (CIDR). Each key has its own rate limit (`api_key`, per key id).
//! - Routes: `POST /api-keys` (inside the sudo window), `GET /api-keys`, `DELETE
//!   /api-keys/{id}`, `POST /api-keys/{id}/rotate` (sudo; an optional overlap during which
//!   the old secret still works). An API key or an impersonation token can manage no key.
//!
//! ```
//! use crudauth::api_key::ApiKeyConfig;
//! let config = ApiKeyConfig::default()
//!     .scopes(["reports:read", "reports:write"])
//!     .header("x-api-key");
//! ```

mod manage;
mod store;
mod verify;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub use manage::{ApiKeyInfo, NewApiKey, NewApiKeyRequest};
pub use store::{ApiKeyStore, MemoryApiKeyStore, StoredApiKey};
pub(crate) use verify::INVALID;

use crate::core::Core;
use crate::error::{AuthError, ConfigError};
use crate::keys::hmac_hex;
use crate::store::StoreError;
use crate::user::UserRecord;

/// How API keys are made, carried and stored.
///
/// ```
/// use std::time::Duration;
/// let config = crudauth::api_key::ApiKeyConfig::default()
///     .prefix("acme_live_")
///     .max_lifetime(Duration::from_secs(90 * 86_400))
///     .max_per_user(10);
/// ```
#[derive(Clone)]
pub struct ApiKeyConfig {
    pub(crate) header: String,
    pub(crate) prefix: String,
    pub(crate) scopes: BTreeSet<String>,
    pub(crate) max_per_user: usize,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) max_overlap: Duration,
    pub(crate) store: Arc<dyn ApiKeyStore>,
    pub(crate) service_accounts: Option<ServiceAccounts>,
}

/// Which users are service accounts (by their id in text form).
pub(crate) type ServiceAccounts = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl std::fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("header", &self.header)
            .field("prefix", &self.prefix)
            .field("scopes", &self.scopes)
            .field("max_per_user", &self.max_per_user)
            .finish_non_exhaustive()
    }
}

impl Default for ApiKeyConfig {
    fn default() -> Self {
        ApiKeyConfig {
            header: "x-api-key".into(),
            prefix: "ca_live_".into(),
            scopes: BTreeSet::new(),
            max_per_user: 25,
            max_lifetime: None,
            max_overlap: Duration::from_secs(7 * 86_400),
            store: Arc::new(MemoryApiKeyStore::default()),
            service_accounts: None,
        }
    }
}

impl ApiKeyConfig {
    /// The header a key travels in besides `Authorization: Bearer` (default `X-API-Key`).
    /// `build` refuses a name that is no header name, or one the other transports use.
    ///
    /// ```
    /// let config = crudauth::api_key::ApiKeyConfig::default().header("x-acme-key");
    /// ```
    pub fn header(mut self, name: &str) -> Self {
        self.header = name.to_ascii_lowercase();
        self
    }

    /// The prefix of every key (default `ca_live_`): lower-case letters, digits and `_`,
    /// ending in `_`, at most 16 characters (`build` refuses anything else).
    ///
    /// ```
    /// let config = crudauth::api_key::ApiKeyConfig::default().prefix("ca_test_");
    /// ```
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// The scopes a key may grant (its owner picks among them; anything else asked for is
    /// dropped, as with bearer tokens). Without any, the bearer transport's grantable scopes.
    ///
    /// ```
    /// let config = crudauth::api_key::ApiKeyConfig::default().scopes(["reports:read"]);
    /// ```
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// How many keys one user may hold (default 25).
    ///
    /// ```
    /// let config = crudauth::api_key::ApiKeyConfig::default().max_per_user(5);
    /// ```
    pub fn max_per_user(mut self, n: usize) -> Self {
        self.max_per_user = n;
        self
    }

    /// The longest lifetime a key may be given; with one set, every key expires (default:
    /// none, a key lives until deleted unless its maker gives it an expiry).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let config = crudauth::api_key::ApiKeyConfig::default().max_lifetime(Duration::from_secs(86_400));
    /// ```
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// The longest overlap a rotation may give the old secret (default 7 days).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let config = crudauth::api_key::ApiKeyConfig::default().max_overlap(Duration::from_secs(3600));
    /// ```
    pub fn max_overlap(mut self, overlap: Duration) -> Self {
        self.max_overlap = overlap;
        self
    }

    /// Where keys are kept (default: memory, lost on restart; `crudauth_sea::SeaApiKeyStore`
    /// for a table in the app's database).
    ///
    /// ```
    /// use std::sync::Arc;
    /// let store = Arc::new(crudauth::api_key::MemoryApiKeyStore::default());
    /// let config = crudauth::api_key::ApiKeyConfig::default().store(store);
    /// ```
    pub fn store(mut self, store: Arc<dyn ApiKeyStore>) -> Self {
        self.store = store;
        self
    }

    /// Which users are service accounts (by id, in text form): a superuser, inside their
    /// sudo window, may make keys for them (`"owner"`), and mark such a key `"service"` so
    /// that it does not end with the account's revocation epoch. Without this, nobody makes
    /// a key for anyone else. A service account may not be a superuser, and a key made for
    /// one works only while its maker is still an active superuser.
    ///
    /// ```
    /// let bots = ["42".to_owned(), "43".to_owned()];
    /// let config = crudauth::api_key::ApiKeyConfig::default()
    ///     .service_accounts(move |id| bots.iter().any(|b| b == id));
    /// ```
    pub fn service_accounts(
        mut self,
        is_service: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.service_accounts = Some(Arc::new(is_service));
        self
    }

    fn validate(&self) -> Result<axum::http::HeaderName, ConfigError> {
        let p = &self.prefix;
        let ok = (2..=16).contains(&p.len())
            && p.ends_with('_')
            && p.starts_with(|c: char| c.is_ascii_lowercase())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(ConfigError::Invalid(
                "api keys: the prefix takes 2 to 16 lower-case letters, digits and `_`, starts \
                 with a letter and ends with `_`"
                    .into(),
            ));
        }
        let header = axum::http::HeaderName::try_from(self.header.as_str()).ok();
        let Some(header) = header.filter(|h| {
            !matches!(h.as_str(), "authorization" | "cookie") && !h.as_str().starts_with("x-csrf")
        }) else {
            return Err(ConfigError::Invalid(
                "api keys: the header must be a header name of its own".into(),
            ));
        };
        if self.max_per_user == 0 {
            return Err(ConfigError::Invalid(
                "api keys: max_per_user must be at least 1".into(),
            ));
        }
        Ok(header)
    }
}

/// The API key service. Reached as `auth.api_keys()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// let auth = b.api_keys(crudauth::api_key::ApiKeyConfig::default()).build()?;
/// assert!(auth.api_keys().is_some());
/// # Ok(()) });
/// ```
pub struct ApiKeys<U> {
    core: Arc<Core<U>>,
    config: ApiKeyConfig,
    header: axum::http::HeaderName,
    /// When this process last wrote each busy key's use (so a burst writes once).
    touched: Arc<std::sync::Mutex<lru::LruCache<String, i64>>>,
}

impl<U> Clone for ApiKeys<U> {
    fn clone(&self) -> Self {
        ApiKeys {
            core: self.core.clone(),
            config: self.config.clone(),
            header: self.header.clone(),
            touched: self.touched.clone(),
        }
    }
}

/// The public id's length: 16 hex digits (64 bits, unique by insert).
const ID_LEN: usize = 16;
/// The secret's length: 32 random bytes, base64url without padding.
const SECRET_LEN: usize = 43;

pub(crate) fn store_fault(e: StoreError) -> AuthError {
    crate::store::fail_closed("api key store", &e)
}

impl<U: UserRecord> ApiKeys<U> {
    pub(crate) fn new(core: Arc<Core<U>>, mut config: ApiKeyConfig) -> Result<Self, ConfigError> {
        let header = config.validate()?;
        if config.scopes.is_empty()
            && let Some(tokens) = &core.tokens
        {
            config.scopes = tokens.config().grantable_scopes.clone();
        }
        let capacity = std::num::NonZeroUsize::new(10_000).unwrap_or(std::num::NonZeroUsize::MIN);
        Ok(ApiKeys {
            core,
            config,
            header,
            touched: Arc::new(std::sync::Mutex::new(lru::LruCache::new(capacity))),
        })
    }

    /// The configuration (the header and prefix a key travels with).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.api_keys(crudauth::api_key::ApiKeyConfig::default()).build()?;
    /// assert_eq!(auth.api_keys().unwrap().prefix(), "ca_live_");
    /// # Ok(()) });
    /// ```
    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// The header a key travels in besides `Authorization`.
    pub(crate) fn header(&self) -> &axum::http::HeaderName {
        &self.header
    }

    /// The store of keys (for an app's own reports, and for removing a user's keys).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.api_keys(crudauth::api_key::ApiKeyConfig::default()).build()?;
    /// let keys = auth.api_keys().unwrap().store().for_user("1").await?;
    /// assert!(keys.is_empty());
    /// # Ok(()) });
    /// ```
    pub fn store(&self) -> &Arc<dyn ApiKeyStore> {
        &self.config.store
    }

    /// The stored hash of a whole key string.
    fn hash(&self, key: &str) -> String {
        hmac_hex(&self.core.keys.api_key, key.as_bytes())
    }

    /// Splits a key string into its id, if it has this app's shape: the prefix, 16 hex
    /// digits, `_`, and 43 base64url characters. Anything else is no key of ours.
    pub(crate) fn parse<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = key.strip_prefix(self.config.prefix.as_str())?;
        if rest.len() != ID_LEN + 1 + SECRET_LEN || !rest.is_char_boundary(ID_LEN) {
            return None;
        }
        let (id, secret) = rest.split_at(ID_LEN);
        let secret = secret.strip_prefix('_')?;
        let id_ok = id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let secret_ok = secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (id_ok && secret_ok).then_some(id)
    }

    /// Whether a bearer value is meant as one of this app's keys (its prefix), so the
    /// JWT transport leaves it alone.
    pub(crate) fn claims_bearer(&self, value: &str) -> bool {
        value.starts_with(self.config.prefix.as_str())
    }

    /// Forgets every key of a user (a deleted account); returns how many.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.api_keys(crudauth::api_key::ApiKeyConfig::default()).build()?;
    /// assert_eq!(auth.api_keys().unwrap().forget_user(&crudauth::UserId::Int(1)).await?, 0);
    /// # Ok(()) });
    /// ```
    pub async fn forget_user(&self, user: &crate::user::UserId) -> Result<usize, AuthError> {
        self.config
            .store
            .delete_all(&user.to_string())
            .await
            .map_err(store_fault)
    }
}
