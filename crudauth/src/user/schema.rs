//! The shape of a user table as the runtime sees it: the logical fields, the fields a user
//! can be found by, and the [`UserSchema`] that names which of them a table provides.

use std::fmt;

use super::IdKind;

/// A logical field of the user contract.
///
/// ```
/// use crudauth::user::LogicalField;
/// assert_eq!(LogicalField::Email.name(), "email");
/// assert_eq!(LogicalField::Phone.name(), "phone");
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
    /// The phone number, in E.164 form (see [`crate::user::normalize_phone`]): an optional
    /// identity column, matched exactly (passwordless SMS sign-in finds users by it).
    Phone,
    /// The tenant the user belongs to (a string or integer column, mapped only explicitly
    /// with `#[auth(tenant = "org_id")]`): read, never written, by crudauth; see
    /// [`crate::tenant`].
    Tenant,
}

impl LogicalField {
    /// Every logical field, in declaration order.
    ///
    /// ```
    /// use crudauth::user::LogicalField;
    /// let names: Vec<&str> = LogicalField::ALL.iter().map(|f| f.name()).collect();
    /// assert_eq!(
    ///     names,
    ///     [
    ///         "id", "email", "username", "password", "is_active", "is_superuser",
    ///         "email_verified", "token_version", "phone", "tenant",
    ///     ]
    /// );
    /// ```
    pub const ALL: [LogicalField; 10] = [
        LogicalField::Id,
        LogicalField::Email,
        LogicalField::Username,
        LogicalField::Password,
        LogicalField::IsActive,
        LogicalField::IsSuperuser,
        LogicalField::EmailVerified,
        LogicalField::TokenVersion,
        LogicalField::Phone,
        LogicalField::Tenant,
    ];

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
            LogicalField::Phone => "phone",
            LogicalField::Tenant => "tenant",
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
    /// Whether values are matched case-insensitively (true for the email field; a username
    /// or a phone number matches exactly).
    ///
    /// ```
    /// # use crudauth::user::{IdentityField, LogicalField};
    /// assert!(!IdentityField { column: "username", logical: None }.case_insensitive());
    /// let phone = IdentityField { column: "mobile", logical: Some(LogicalField::Phone) };
    /// assert!(!phone.case_insensitive());
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
///     read_only: &[],
/// };
/// assert!(!schema.has(LogicalField::TokenVersion));
/// assert!(!schema.has(LogicalField::Phone)); // no phone column: nobody is found by phone
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
    /// Flags mapped to a column of another shape through a read function only (a
    /// soft-delete timestamp read as `is_active`): crudauth reads them and never writes them.
    pub read_only: &'static [LogicalField],
}

impl UserSchema {
    /// Whether the table has a column for `field`.
    ///
    /// ```
    /// # use crudauth::user::{IdKind, LogicalField, UserSchema};
    /// # let schema = UserSchema { table: "t", id_kind: IdKind::Int, present: &[LogicalField::Id], login: &[], recovery: None, read_only: &[] };
    /// assert!(schema.has(LogicalField::Id));
    /// ```
    pub fn has(&self, field: LogicalField) -> bool {
        self.present.contains(&field)
    }

    /// Whether crudauth may write `field`: it has a column, and not one only read through a
    /// function.
    ///
    /// ```
    /// # use crudauth::user::{IdKind, LogicalField, UserSchema};
    /// let schema = UserSchema { table: "t", id_kind: IdKind::Int,
    ///     present: &[LogicalField::Id, LogicalField::IsActive], login: &[], recovery: None,
    ///     read_only: &[LogicalField::IsActive] };
    /// assert!(schema.has(LogicalField::IsActive) && !schema.writable(LogicalField::IsActive));
    /// ```
    pub fn writable(&self, field: LogicalField) -> bool {
        self.has(field) && !self.read_only.contains(&field)
    }
}
