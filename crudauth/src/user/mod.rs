//! The user contract: how the runtime reads and writes users without knowing the ORM.
//!
//! An application's user table is reached through one trait, [`UserRepository`]. The runtime
//! never sees SeaORM (or any other ORM) types: it reads the *logical fields* of a loaded user
//! through [`UserRecord`], and it writes through the plain data types [`NewUser`] and
//! [`UserUpdate`]. `crudauth-sea` implements the trait for any SeaORM entity that carries
//! `#[derive(AuthUser)]`; other backends can implement it by hand.

use std::fmt;
use std::future::Future;

use serde::Serialize;

mod dynamic;
mod listing;
mod repository;
mod schema;
mod text;

pub use dynamic::DynUserRepository;
pub use listing::{UserFilter, UserPage};
pub use repository::{NewUser, RepoError, UserRepository, UserUpdate};
pub use schema::{IdentityField, LogicalField, UserSchema};
pub(crate) use text::{is_format_char, valid_email};
pub use text::{normalize_email, normalize_phone};

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

/// The logical fields of a loaded user, read without knowing its model type.
///
/// Implemented for every model with `#[derive(AuthUser)]`. Absent optional columns answer
/// with the documented defaults: no `is_active` column means active, no `email_verified`
/// column means unverified, no `is_superuser` column means not a superuser, no
/// `token_version` column answers `None` (the epoch then lives in the store), and no `phone`
/// column answers `None` (the default body of [`UserRecord::phone`], so an implementation
/// for a table without phone numbers need not write it).
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

    /// The phone number (E.164, see [`normalize_phone`]), if the table has a phone column
    /// and it is set. The default answers `None`: a table without phone numbers.
    ///
    /// ```
    /// use crudauth::user::{UserId, UserRecord};
    /// #[derive(Clone)]
    /// struct Member { mobile: Option<String> }
    /// impl UserRecord for Member {
    ///     fn user_id(&self) -> UserId { UserId::Int(1) }
    ///     fn email(&self) -> Option<&str> { None }
    ///     fn username(&self) -> Option<&str> { Some("ann") }
    ///     fn password_hash(&self) -> Option<&str> { None }
    ///     fn is_active(&self) -> bool { true }
    ///     fn is_superuser(&self) -> bool { false }
    ///     fn email_verified(&self) -> bool { false }
    ///     fn token_version(&self) -> Option<i64> { None }
    ///     fn phone(&self) -> Option<&str> { self.mobile.as_deref() }
    /// }
    /// let ann = Member { mobile: Some("+46701234567".into()) };
    /// assert_eq!(ann.phone(), Some("+46701234567"));
    /// assert_eq!(ann.contract().phone.as_deref(), Some("+46701234567"));
    /// ```
    fn phone(&self) -> Option<&str> {
        None
    }

    /// The tenant the user belongs to, in its textual form, if the table has a tenant column
    /// (`#[auth(tenant = "org_id")]`, a string or integer column) and it is set. The default
    /// answers `None`: a table without tenants. See [`crate::tenant`].
    ///
    /// ```
    /// use crudauth::user::{UserId, UserRecord};
    /// #[derive(Clone)]
    /// struct Member { org_id: i64 }
    /// impl UserRecord for Member {
    ///     fn user_id(&self) -> UserId { UserId::Int(1) }
    ///     fn email(&self) -> Option<&str> { None }
    ///     fn username(&self) -> Option<&str> { Some("ann") }
    ///     fn password_hash(&self) -> Option<&str> { None }
    ///     fn is_active(&self) -> bool { true }
    ///     fn is_superuser(&self) -> bool { false }
    ///     fn email_verified(&self) -> bool { false }
    ///     fn token_version(&self) -> Option<i64> { None }
    ///     fn tenant(&self) -> Option<String> { Some(self.org_id.to_string()) }
    /// }
    /// assert_eq!(Member { org_id: 7 }.tenant().as_deref(), Some("7"));
    /// ```
    fn tenant(&self) -> Option<String> {
        None
    }

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
            phone: self.phone().map(str::to_owned),
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
///     is_active: true, is_superuser: false, email_verified: false, token_version: Some(0),
///     phone: Some("+46701234567".into()) };
/// let map = c.to_map();
/// assert_eq!(map["username"], "ann");
/// assert_eq!(map["phone"], "+46701234567");
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
    /// The phone number (E.164), absent when the table has no phone column or it is unset.
    pub phone: Option<String>,
}

impl UserContract {
    /// The contract as a JSON object map.
    ///
    /// ```
    /// # use crudauth::user::{UserContract, UserId};
    /// # let c = UserContract { id: UserId::Int(1), email: None, username: None,
    /// #     is_active: true, is_superuser: false, email_verified: false, token_version: None,
    /// #     phone: None };
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
