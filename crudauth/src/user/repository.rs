//! Writing and reading users: the [`UserRepository`] trait, the data it writes
//! ([`NewUser`], [`UserUpdate`]), what it fails with ([`RepoError`]), and
//! [`super::DynUserRepository`], the same trait behind a trait object.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use super::{UserFilter, UserId, UserPage, UserRecord, UserSchema};

/// Validated data for a new user, plus the server-set defaults.
///
/// The runtime fills it after validation (password policy, allow-listed extras); the
/// repository writes it. `extra` holds the application's own columns by name; a repository
/// refuses any extra that names a mapped logical column or the primary key, so a client can
/// never set a privileged column this way.
///
/// ```
/// use crudauth::user::NewUser;
/// let new = NewUser::new("$argon2id$...")
///     .email("ann@example.com")
///     .username("ann")
///     .phone("+46701234567")
///     .extra("display_name", "Ann");
/// assert_eq!(new.email.as_deref(), Some("ann@example.com"));
/// assert_eq!(new.phone.as_deref(), Some("+46701234567"));
/// assert!(new.is_active && !new.is_superuser && !new.email_verified);
/// // Debug output never shows the hash.
/// assert!(!format!("{new:?}").contains("argon2"));
/// ```
#[derive(Clone, PartialEq)]
pub struct NewUser {
    /// The email address (normalised by the repository before it is written).
    pub email: Option<String>,
    /// The username.
    pub username: Option<String>,
    /// The phone number, in E.164 form (see [`crate::user::normalize_phone`]); a repository
    /// refuses any other form, so that the exact lookup by phone finds what was written.
    pub phone: Option<String>,
    /// The password hash (or the unusable-password marker).
    pub password_hash: String,
    /// Server-set: may the account log in (default `true`).
    pub is_active: bool,
    /// Server-set: administrator (default `false`).
    pub is_superuser: bool,
    /// Server-set: email verified (default `false`).
    pub email_verified: bool,
    /// The application's own columns, by column name.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("phone", &self.phone)
            .field("password_hash", &"<redacted>")
            .field("is_active", &self.is_active)
            .field("is_superuser", &self.is_superuser)
            .field("email_verified", &self.email_verified)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl NewUser {
    /// A new active, unprivileged, unverified user with this password hash.
    ///
    /// ```
    /// # use crudauth::user::NewUser;
    /// assert_eq!(NewUser::new("h").password_hash, "h");
    /// ```
    pub fn new(password_hash: impl Into<String>) -> Self {
        NewUser {
            email: None,
            username: None,
            phone: None,
            password_hash: password_hash.into(),
            is_active: true,
            is_superuser: false,
            email_verified: false,
            extra: BTreeMap::new(),
        }
    }

    /// Sets the email address.
    ///
    /// ```
    /// # use crudauth::user::NewUser;
    /// assert!(NewUser::new("h").email("a@b.c").email.is_some());
    /// ```
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the username.
    ///
    /// ```
    /// # use crudauth::user::NewUser;
    /// assert!(NewUser::new("h").username("ann").username.is_some());
    /// ```
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the phone number; give it in E.164 form, as [`crate::user::normalize_phone`]
    /// makes it.
    ///
    /// ```
    /// # use crudauth::user::{NewUser, normalize_phone};
    /// let phone = normalize_phone("+46 70 123 45 67").expect("an E.164 number");
    /// assert_eq!(NewUser::new("h").phone(phone).phone.as_deref(), Some("+46701234567"));
    /// ```
    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }

    /// Sets one of the application's own columns.
    ///
    /// ```
    /// # use crudauth::user::NewUser;
    /// assert_eq!(NewUser::new("h").extra("display_name", "Ann").extra.len(), 1);
    /// ```
    pub fn extra(mut self, column: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(column.into(), value.into());
        self
    }
}

/// A partial update of a user's logical fields and own columns; `None` leaves a field as is.
///
/// The password hash and the revocation epoch have their own repository methods, so an
/// update can never move them by accident.
///
/// ```
/// use crudauth::user::UserUpdate;
/// let update = UserUpdate { email_verified: Some(true), ..Default::default() };
/// assert!(!update.is_empty());
/// assert!(UserUpdate::default().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserUpdate {
    /// New email address.
    pub email: Option<String>,
    /// New username.
    pub username: Option<String>,
    /// New phone number, in E.164 form (see [`crate::user::normalize_phone`]); `Some("")`
    /// removes the number (a recycled number must stop signing anyone in).
    pub phone: Option<String>,
    /// New active flag.
    pub is_active: Option<bool>,
    /// New superuser flag.
    pub is_superuser: Option<bool>,
    /// New verified flag.
    pub email_verified: Option<bool>,
    /// The application's own columns, by column name.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl UserUpdate {
    /// Whether the update changes nothing.
    ///
    /// ```
    /// # use crudauth::user::UserUpdate;
    /// assert!(UserUpdate::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.username.is_none()
            && self.phone.is_none()
            && self.is_active.is_none()
            && self.is_superuser.is_none()
            && self.email_verified.is_none()
            && self.extra.is_empty()
    }
}

/// What a repository operation can fail with.
///
/// Database errors never reach callers raw: a unique violation is [`RepoError::Duplicate`],
/// an over-long value is [`RepoError::TooLong`] (found before anything is written), and
/// everything else is [`RepoError::Backend`], whose message is for logs, not for clients.
///
/// ```
/// use crudauth::user::RepoError;
/// let e = RepoError::Duplicate { field: "email".into() };
/// assert_eq!(e.to_string(), "a user with this email already exists");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No user with that id.
    #[error("user not found")]
    NotFound,
    /// A unique field already holds this value.
    #[error("a user with this {field} already exists")]
    Duplicate {
        /// The logical field name (`email`, `username`) or the column name of an own column.
        field: String,
    },
    /// A value is longer than its column allows.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The logical field or column name.
        field: String,
        /// The column's limit in characters.
        max: usize,
    },
    /// A value cannot be written to its column (unknown or privileged column, wrong type).
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The field or column name.
        field: String,
        /// What is wrong, for the client.
        reason: String,
    },
    /// The backend failed; the message is for logs only.
    #[error("user store failure: {0}")]
    Backend(String),
}

/// The error of an operation a repository does not provide.
fn unsupported(what: &str) -> RepoError {
    RepoError::Backend(format!("this repository cannot {what}"))
}

/// Reads and writes users. The runtime's only door to the application's user table.
///
/// Lookups return `Ok(None)` for a missing user; writes return [`RepoError`]. Emails are
/// normalised (trimmed, lower-cased) on write and matched case-insensitively on lookup; phone
/// numbers are written and matched exactly, in E.164 form.
///
/// ```
/// use crudauth::user::{UserRepository, UserRecord};
/// async fn greet<R: UserRepository>(repo: &R, login: &str) -> Option<String> {
///     let user = repo.find_by_login(login).await.ok()??;
///     Some(format!("hello {}", user.user_id()))
/// }
/// ```
pub trait UserRepository: Send + Sync + 'static {
    /// The loaded user (the application's own model type).
    type User: UserRecord;

    /// What the table provides.
    fn schema(&self) -> &UserSchema;

    /// Looks a user up by primary key.
    fn find_by_id(
        &self,
        id: &UserId,
    ) -> impl Future<Output = Result<Option<Self::User>, RepoError>> + Send;

    /// Resolves a login identifier against the login fields, in their configured order: the
    /// first field that matches wins. The email field matches case-insensitively.
    fn find_by_login(
        &self,
        identifier: &str,
    ) -> impl Future<Output = Result<Option<Self::User>, RepoError>> + Send;

    /// Looks a user up by the recovery field (case-insensitively for an email).
    fn find_by_recovery(
        &self,
        value: &str,
    ) -> impl Future<Output = Result<Option<Self::User>, RepoError>> + Send;

    /// Looks a user up by phone number: an exact match on the phone column, so give the
    /// number in the E.164 form it is stored in ([`crate::user::normalize_phone`]). The
    /// default answers `Ok(None)` (a table without phone numbers); `crudauth-sea` matches
    /// the column mapped to `phone`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// use crudauth::user::{NewUser, UserRecord, UserRepository, normalize_phone};
    /// # let repo = crudauth::doc_fixture::Repo::new();
    /// let phone = normalize_phone("+46 70 123 45 67").ok_or("not a phone number")?;
    /// let new = NewUser::new("$argon2id$...").email("ann@example.com").phone(&phone);
    /// let ann = repo.create(new).await?;
    /// let found = repo.find_by_phone(&phone).await?;
    /// assert_eq!(found.map(|u| u.user_id()), Some(ann.user_id()));
    /// // Exact: the number as typed is not the stored form.
    /// assert!(repo.find_by_phone("+46 70 123 45 67").await?.is_none());
    /// # Ok(()) });
    /// ```
    fn find_by_phone(
        &self,
        phone: &str,
    ) -> impl Future<Output = Result<Option<Self::User>, RepoError>> + Send {
        let _ = phone;
        async { Ok(None) }
    }

    /// Creates a user. Checks lengths and uniqueness before writing.
    fn create(&self, new: NewUser) -> impl Future<Output = Result<Self::User, RepoError>> + Send;

    /// Applies a partial update and returns the updated user.
    fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
    ) -> impl Future<Output = Result<Self::User, RepoError>> + Send;

    /// Replaces the password hash.
    fn set_password_hash(
        &self,
        id: &UserId,
        hash: &str,
    ) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// Increments the revocation epoch atomically and returns the new value, or `Ok(None)`
    /// when the table has no `token_version` column (the epoch then lives in the store).
    fn bump_token_version(
        &self,
        id: &UserId,
    ) -> impl Future<Output = Result<Option<i64>, RepoError>> + Send;

    /// Replaces the password hash *and* increments the revocation epoch as one write, and
    /// returns the new epoch (`Ok(None)` when the table has no `token_version` column).
    ///
    /// A login reads the hash and the epoch from one row; if a password change could move
    /// them separately, a login reading between the two writes would check the old password
    /// and stamp the new epoch, and its tokens would survive the change. `crudauth-sea`
    /// does it in one `UPDATE`. The default bumps the epoch, writes the hash and bumps
    /// again: the first bump kills the old credentials before the hash moves (a failed
    /// write leaves nothing alive), the second kills a login that read the old hash between
    /// the two. Override it with one statement where you can.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// use crudauth::user::{NewUser, UserRecord, UserRepository};
    /// # let repo = crudauth::doc_fixture::Repo::new();
    /// # let ann = repo.create(NewUser::new("$argon2id$old").email("ann@example.com")).await?;
    /// let new_epoch = repo.replace_password_hash(&ann.user_id(), "$argon2id$new").await?;
    /// assert_eq!(new_epoch, Some(1)); // every earlier session and token of Ann ends
    /// # Ok(()) });
    /// ```
    fn replace_password_hash(
        &self,
        id: &UserId,
        hash: &str,
    ) -> impl Future<Output = Result<Option<i64>, RepoError>> + Send {
        async move {
            self.bump_token_version(id).await?;
            self.set_password_hash(id, hash).await?;
            self.bump_token_version(id).await
        }
    }

    /// Replaces the password hash only if it is still `expected` (the hash a login just
    /// checked); `Ok(true)` if replaced. Used to store a rehash with current parameters
    /// without ever overwriting a password change that landed meanwhile. The default
    /// answers `Ok(false)` (no rehash: the old hash keeps working); `crudauth-sea` does it
    /// with one conditional `UPDATE`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// use crudauth::user::{NewUser, UserRecord, UserRepository};
    /// # let repo = crudauth::doc_fixture::Repo::new();
    /// # let ann = repo.create(NewUser::new("$argon2id$old").email("ann@example.com")).await?;
    /// let id = ann.user_id();
    /// assert!(repo.compare_and_set_password_hash(&id, "$argon2id$old", "$argon2id$new").await?);
    /// // The hash moved meanwhile: the second swap writes nothing.
    /// assert!(!repo.compare_and_set_password_hash(&id, "$argon2id$old", "$argon2id$newer").await?);
    /// # Ok(()) });
    /// ```
    fn compare_and_set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send {
        let _ = (id, expected, hash);
        async { Ok(false) }
    }

    /// A page of the stored password hashes, by ascending id after `after`, at most
    /// `limit` of them (for the hash report, `auth.password_hash_report()`). The default
    /// answers that this repository cannot list its users; `crudauth-sea` lists them.
    fn password_hashes(
        &self,
        after: Option<&UserId>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<(UserId, String)>, RepoError>> + Send {
        let _ = (after, limit);
        async {
            Err(RepoError::Backend(
                "this repository cannot list its users' password hashes".into(),
            ))
        }
    }

    /// A page of the users matching `filter`, by ascending id, and how many match in all
    /// (for `GET /users`). The default answers that this repository cannot list its users
    /// (the users admin then answers 503 on the listing); `crudauth-sea` lists them.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// use crudauth::user::{NewUser, UserFilter, UserRepository};
    /// # let repo = crudauth::doc_fixture::Repo::new();
    /// repo.create(NewUser::new("h").email("ann@example.com").username("ann")).await?;
    /// repo.create(NewUser::new("h").email("bob@example.com").username("bob")).await?;
    /// let filter = UserFilter { email_prefix: Some("b".into()), ..UserFilter::page(0, 10) };
    /// let page = repo.list_users(&filter).await?;
    /// assert_eq!((page.total, page.users[0].username.as_str()), (1, "bob"));
    /// # Ok(()) });
    /// ```
    fn list_users(
        &self,
        filter: &UserFilter,
    ) -> impl Future<Output = Result<UserPage<Self::User>, RepoError>> + Send {
        let _ = filter;
        async { Err(unsupported("list its users")) }
    }

    /// How many users are active superusers (the users admin refuses to remove the last
    /// one). The default answers that this repository cannot count them (the admin then
    /// refuses every demotion, deactivation and deletion of a superuser); `crudauth-sea`
    /// counts them.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// use crudauth::user::{NewUser, UserRepository};
    /// # let repo = crudauth::doc_fixture::Repo::new();
    /// let mut root = NewUser::new("h").email("root@example.com").username("root");
    /// root.is_superuser = true;
    /// repo.create(root).await?;
    /// assert_eq!(repo.count_active_superusers().await?, 1);
    /// # Ok(()) });
    /// ```
    fn count_active_superusers(&self) -> impl Future<Output = Result<u64, RepoError>> + Send {
        async { Err(unsupported("count its superusers")) }
    }

    /// Deletes the user's row; [`RepoError::NotFound`] if there is none. Only the row: the
    /// users admin ends the user's sessions, tokens and method records around it. The
    /// default answers that this repository cannot delete users; `crudauth-sea` deletes.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// use crudauth::user::{NewUser, RepoError, UserRecord, UserRepository};
    /// # let repo = crudauth::doc_fixture::Repo::new();
    /// let ann = repo.create(NewUser::new("h").email("ann@example.com")).await?;
    /// repo.delete_user(&ann.user_id()).await?;
    /// assert!(repo.find_by_id(&ann.user_id()).await?.is_none());
    /// assert!(matches!(repo.delete_user(&ann.user_id()).await, Err(RepoError::NotFound)));
    /// # Ok(()) });
    /// ```
    fn delete_user(&self, id: &UserId) -> impl Future<Output = Result<(), RepoError>> + Send {
        let _ = id;
        async { Err(unsupported("delete users")) }
    }

    /// The application's own columns (every column that is no logical field), by the name
    /// `NewUser::extra` and `UserUpdate::extra` use: what an allow-list of the users admin
    /// may name. The default is none; `crudauth-sea` lists the model's other fields.
    ///
    /// ```
    /// # use crudauth::user::UserRepository;
    /// let repo = crudauth::doc_fixture::Repo::new();
    /// assert!(repo.extra_columns().is_empty()); // the fixture has no columns of its own
    /// ```
    fn extra_columns(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// The columns mapped to a contract field (a login field, a flag, the tenant column),
    /// by column name: what a client may never write, whatever it is called. `build`
    /// refuses them among `register_extra_fields`. The default is none (the logical names
    /// and the login and recovery columns are refused either way); `crudauth-sea` lists the
    /// mapped columns.
    ///
    /// ```
    /// # use crudauth::user::UserRepository;
    /// let repo = crudauth::doc_fixture::Repo::new();
    /// assert!(repo.contract_columns().is_empty());
    /// ```
    fn contract_columns(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// The value of one of the application's own columns of a loaded user, as JSON (`None`
    /// for a column that is not one of [`UserRepository::extra_columns`]). The default is
    /// `None`; `crudauth-sea` reads the model's field.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// use crudauth::user::{NewUser, UserRepository};
    /// # let repo = crudauth::doc_fixture::Repo::new();
    /// let ann = repo.create(NewUser::new("h").email("ann@example.com")).await?;
    /// assert!(repo.read_extra(&ann, "display_name").is_none());
    /// # Ok(()) });
    /// ```
    fn read_extra(&self, user: &Self::User, column: &str) -> Option<serde_json::Value> {
        let _ = (user, column);
        None
    }

    /// The database handle delivery channels may use (see
    /// [`crate::delivery::Delivery::database`]); `None` by default. `crudauth-sea` hands out
    /// its `sea_orm::DatabaseConnection`.
    fn database(&self) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        None
    }
}
