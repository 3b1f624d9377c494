//! The user contract: how the runtime reads and writes users without knowing the ORM.
//!
//! An application's user table is reached through one trait, [`UserRepository`]. The runtime
//! never sees SeaORM (or any other ORM) types: it reads the *logical fields* of a loaded user
//! through [`UserRecord`], and it writes through the plain data types [`NewUser`] and
//! [`UserUpdate`]. `crudauth-sea` implements the trait for any SeaORM entity that carries
//! `#[derive(AuthUser)]`; other backends can implement it by hand.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use serde::Serialize;

/// A boxed, sendable future: the one shape the runtime uses to call async code through a
/// trait object (the user repository, hooks).
pub(crate) type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The longest login identifier or recovery value accepted or looked up at all (an email
/// address is at most 254 characters): longer input cannot match a stored value and is
/// answered like an unknown account without touching a counter or the database.
///
/// ```
/// assert_eq!(crudauth::user::MAX_IDENTIFIER_CHARS, 320);
/// ```
pub const MAX_IDENTIFIER_CHARS: usize = 320;

/// A user's primary key, whatever its column type.
///
/// Serialises as its natural JSON value (a number, or a string for UUID and text keys), so
/// `{"user_id": 1}` stays wire-compatible with the Python original.
///
/// ```
/// use crudauth::user::UserId;
/// let id = UserId::Int(7);
/// assert_eq!(id.to_string(), "7");
/// assert_eq!(serde_json::to_string(&id).unwrap(), "7");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum UserId {
    /// An integer key (`i16`..`i64`, unsigned up to `u32`).
    Int(i64),
    /// A UUID key.
    Uuid(uuid::Uuid),
    /// A text key.
    Text(String),
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserId::Int(v) => write!(f, "{v}"),
            UserId::Uuid(v) => write!(f, "{v}"),
            UserId::Text(v) => f.write_str(v),
        }
    }
}

/// The kind of key a user table uses; tells the runtime how to parse an id from a token.
///
/// ```
/// use crudauth::user::{IdKind, UserId};
/// assert_eq!(IdKind::Int.parse("42"), Some(UserId::Int(42)));
/// assert_eq!(IdKind::Int.parse("4x2"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// Integer keys.
    Int,
    /// UUID keys.
    Uuid,
    /// Text keys.
    Text,
}

impl IdKind {
    /// An id of this kind that no user has (the smallest integer, the nil UUID, a NUL text
    /// key): a lookup by it does the work of a real one and finds nobody.
    ///
    /// ```
    /// use crudauth::user::{IdKind, UserId};
    /// assert_eq!(IdKind::Int.nobody(), UserId::Int(i64::MIN));
    /// ```
    pub fn nobody(self) -> UserId {
        match self {
            IdKind::Int => UserId::Int(i64::MIN),
            IdKind::Uuid => UserId::Uuid(uuid::Uuid::nil()),
            IdKind::Text => UserId::Text("\u{0}".to_owned()),
        }
    }

    /// Parses the textual form of an id (as found in a token's `sub`); `None` if it does not fit.
    ///
    /// ```
    /// use crudauth::user::IdKind;
    /// assert!(IdKind::Uuid.parse("not-a-uuid").is_none());
    /// ```
    pub fn parse(self, raw: &str) -> Option<UserId> {
        match self {
            IdKind::Int => raw.parse().ok().map(UserId::Int),
            IdKind::Uuid => uuid::Uuid::parse_str(raw).ok().map(UserId::Uuid),
            IdKind::Text if !raw.is_empty() => Some(UserId::Text(raw.to_owned())),
            IdKind::Text => None,
        }
    }
}

/// A logical field of the user contract.
///
/// ```
/// use crudauth::user::LogicalField;
/// assert_eq!(LogicalField::Email.name(), "email");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogicalField {
    /// The primary key.
    Id,
    /// The email address.
    Email,
    /// The username.
    Username,
    /// The password hash.
    Password,
    /// Whether the account may log in.
    IsActive,
    /// Whether the account is an administrator.
    IsSuperuser,
    /// Whether the email address was verified.
    EmailVerified,
    /// The revocation epoch.
    TokenVersion,
}

impl LogicalField {
    /// The field's contract name (as used in `#[auth(...)]` keys and error messages).
    ///
    /// ```
    /// use crudauth::user::LogicalField;
    /// assert_eq!(LogicalField::IsSuperuser.name(), "is_superuser");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            LogicalField::Id => "id",
            LogicalField::Email => "email",
            LogicalField::Username => "username",
            LogicalField::Password => "password",
            LogicalField::IsActive => "is_active",
            LogicalField::IsSuperuser => "is_superuser",
            LogicalField::EmailVerified => "email_verified",
            LogicalField::TokenVersion => "token_version",
        }
    }
}

impl fmt::Display for LogicalField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field a user can be found by: a login field or the recovery field.
///
/// ```
/// use crudauth::user::{IdentityField, LogicalField};
/// let f = IdentityField { column: "email_address", logical: Some(LogicalField::Email) };
/// assert!(f.case_insensitive());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityField {
    /// The column name.
    pub column: &'static str,
    /// The logical field the column is mapped to, if any.
    pub logical: Option<LogicalField>,
}

impl IdentityField {
    /// Whether values are matched case-insensitively (true for the email field).
    ///
    /// ```
    /// # use crudauth::user::IdentityField;
    /// assert!(!IdentityField { column: "username", logical: None }.case_insensitive());
    /// ```
    pub fn case_insensitive(&self) -> bool {
        self.logical == Some(LogicalField::Email)
    }
}

/// What a user table provides, as seen by the runtime: which optional fields exist, the login
/// fields in resolution order and the recovery field.
///
/// The facade uses it to refuse contradictory configurations at build time (a verified gate on
/// a table without `email_verified`, say) and to decide where the revocation epoch lives.
///
/// ```
/// use crudauth::user::{IdKind, IdentityField, LogicalField, UserSchema};
/// const EMAIL: IdentityField = IdentityField { column: "email", logical: Some(LogicalField::Email) };
/// let schema = UserSchema {
///     table: "accounts",
///     id_kind: IdKind::Int,
///     present: &[LogicalField::Id, LogicalField::Email, LogicalField::Password],
///     login: &[EMAIL],
///     recovery: Some(EMAIL),
/// };
/// assert!(!schema.has(LogicalField::TokenVersion));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct UserSchema {
    /// The table name (for logs).
    pub table: &'static str,
    /// The key kind.
    pub id_kind: IdKind,
    /// The logical fields that have a column.
    pub present: &'static [LogicalField],
    /// The fields a login identifier is matched against, in order.
    pub login: &'static [IdentityField],
    /// The recovery factor (where reset and verification messages go).
    pub recovery: Option<IdentityField>,
}

impl UserSchema {
    /// Whether the table has a column for `field`.
    ///
    /// ```
    /// # use crudauth::user::{IdKind, LogicalField, UserSchema};
    /// # let schema = UserSchema { table: "t", id_kind: IdKind::Int, present: &[LogicalField::Id], login: &[], recovery: None };
    /// assert!(schema.has(LogicalField::Id));
    /// ```
    pub fn has(&self, field: LogicalField) -> bool {
        self.present.contains(&field)
    }
}

/// The logical fields of a loaded user, read without knowing its model type.
///
/// Implemented for every model with `#[derive(AuthUser)]`. Absent optional columns answer
/// with the documented defaults: no `is_active` column means active, no `email_verified`
/// column means unverified, no `is_superuser` column means not a superuser, and no
/// `token_version` column answers `None` (the epoch then lives in the store).
///
/// ```
/// use crudauth::user::{UserId, UserRecord};
/// #[derive(Clone)]
/// struct U;
/// impl UserRecord for U {
///     fn user_id(&self) -> UserId { UserId::Int(1) }
///     fn email(&self) -> Option<&str> { Some("a@example.com") }
///     fn username(&self) -> Option<&str> { None }
///     fn password_hash(&self) -> Option<&str> { None }
///     fn is_active(&self) -> bool { true }
///     fn is_superuser(&self) -> bool { false }
///     fn email_verified(&self) -> bool { false }
///     fn token_version(&self) -> Option<i64> { None }
/// }
/// assert_eq!(U.contract().email.as_deref(), Some("a@example.com"));
/// ```
pub trait UserRecord: Clone + Send + Sync + 'static {
    /// The primary key.
    fn user_id(&self) -> UserId;
    /// The email address, if the table has one and it is set.
    fn email(&self) -> Option<&str>;
    /// The username, if the table has one and it is set.
    fn username(&self) -> Option<&str>;
    /// The password hash, if set.
    fn password_hash(&self) -> Option<&str>;
    /// Whether the account may log in.
    fn is_active(&self) -> bool;
    /// Whether the account is an administrator.
    fn is_superuser(&self) -> bool;
    /// Whether the email address was verified.
    fn email_verified(&self) -> bool;
    /// The revocation epoch, or `None` when the table has no `token_version` column.
    fn token_version(&self) -> Option<i64>;

    /// The contract-only view handed to hooks: the logical fields, never the password hash
    /// and never the application's own columns.
    fn contract(&self) -> UserContract {
        UserContract {
            id: self.user_id(),
            email: self.email().map(str::to_owned),
            username: self.username().map(str::to_owned),
            is_active: self.is_active(),
            is_superuser: self.is_superuser(),
            email_verified: self.email_verified(),
            token_version: self.token_version(),
        }
    }
}

/// The contract-only view of a user, as given to hooks and delivery channels.
///
/// It carries no password hash and none of the application's own columns, so a hook cannot
/// leak what it was never given.
///
/// ```
/// use crudauth::user::{UserContract, UserId};
/// let c = UserContract { id: UserId::Int(1), email: None, username: Some("ann".into()),
///     is_active: true, is_superuser: false, email_verified: false, token_version: Some(0) };
/// let map = c.to_map();
/// assert_eq!(map["username"], "ann");
/// assert!(!map.contains_key("password"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserContract {
    /// The primary key.
    pub id: UserId,
    /// The email address.
    pub email: Option<String>,
    /// The username.
    pub username: Option<String>,
    /// Whether the account may log in.
    pub is_active: bool,
    /// Whether the account is an administrator.
    pub is_superuser: bool,
    /// Whether the email address was verified.
    pub email_verified: bool,
    /// The revocation epoch (absent when it lives in the store).
    pub token_version: Option<i64>,
}

impl UserContract {
    /// The contract as a JSON object map.
    ///
    /// ```
    /// # use crudauth::user::{UserContract, UserId};
    /// # let c = UserContract { id: UserId::Int(1), email: None, username: None,
    /// #     is_active: true, is_superuser: false, email_verified: false, token_version: None };
    /// assert_eq!(c.to_map()["id"], 1);
    /// ```
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            // A struct of plain fields always serialises to an object.
            _ => serde_json::Map::new(),
        }
    }
}

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
///     .extra("display_name", "Ann");
/// assert_eq!(new.email.as_deref(), Some("ann@example.com"));
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

/// Reads and writes users. The runtime's only door to the application's user table.
///
/// Lookups return `Ok(None)` for a missing user; writes return [`RepoError`]. Emails are
/// normalised (trimmed, lower-cased) on write and matched case-insensitively on lookup.
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
    /// ```no_run
    /// # async fn f<R: crudauth::UserRepository>(repo: R, id: crudauth::UserId) -> Result<(), crudauth::RepoError> {
    /// let new_epoch = repo.replace_password_hash(&id, "$argon2id$...").await?;
    /// # Ok(()) }
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
    /// ```no_run
    /// # async fn f<R: crudauth::UserRepository>(repo: R, id: crudauth::UserId) -> Result<(), crudauth::RepoError> {
    /// let swapped = repo.compare_and_set_password_hash(&id, "$argon2id$old", "$argon2id$new").await?;
    /// # Ok(()) }
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

    /// The database handle delivery channels may use (see
    /// [`crate::delivery::Delivery::database`]); `None` by default. `crudauth-sea` hands out
    /// its `sea_orm::DatabaseConnection`.
    fn database(&self) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        None
    }
}

/// Normalises an email address the same way for writes and lookups: Unicode NFKC (so a
/// fullwidth `ａｎｎ@ｅｘａｍｐｌｅ.com` is `ann@example.com`), trimmed, lower-cased, and the
/// domain in its IDNA ASCII form (`exämple.com` is `xn--exmple-cua.com`), so look-alike
/// spellings of one address meet at the uniqueness check and at every lookup.
///
/// Mail is always sent to the stored address, never the submitted one, so a look-alike that
/// normalises to another user's address gains nothing.
///
/// ```
/// use crudauth::user::normalize_email;
/// assert_eq!(normalize_email("  Ann@Example.COM "), "ann@example.com");
/// assert_eq!(normalize_email("ａｎｎ＠ｅｘａｍｐｌｅ.com"), "ann@example.com");
/// assert_eq!(normalize_email("ann@EXÄMPLE.com"), "ann@xn--exmple-cua.com");
/// ```
pub fn normalize_email(email: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = email
        .trim()
        .nfkc()
        .collect::<String>()
        .trim()
        .to_lowercase();
    match folded.rsplit_once('@') {
        Some((local, domain)) if !domain.is_ascii() => match idna::domain_to_ascii(domain) {
            Ok(ascii) if !ascii.is_empty() => format!("{local}@{ascii}"),
            // Not a valid domain: left as it is (the address validation refuses it).
            _ => folded,
        },
        _ => folded,
    }
}

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces,
/// control characters or the specials of RFC 5322 display forms (`<>()[],;:"\`), so that
/// `x<attacker@evil.example>` can never be stored and then parsed by a mailer as a mailbox
/// with another address inside. Deliverability is proven by the verification flow, not
/// here.
pub(crate) fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
}

/// Unicode general category Cf (format characters: invisible, yet they change how text is
/// shown or compared: bidirectional overrides and isolates, zero-width spaces and joiners,
/// the BOM, tags, ...): every range the Unicode Character Database lists as Cf.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` is a format character (Unicode general category Cf).
pub(crate) fn is_format_char(c: char) -> bool {
    FORMAT_CHARS
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}
pub use crate::user_dyn::DynUserRepository;
