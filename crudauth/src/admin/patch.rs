//! The bodies of `PATCH /users/me` and `PATCH /users/{id}`, read field by field against
//! what each caller may write, and the user JSON the users routes answer.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::UsersAdminConfig;
use crate::body::Fields;
use crate::error::{AuthError, ValidationIssue};
use crate::user::{DynUserRepository, LogicalField, UserRecord};

/// The longest value an own column may be given (a string's characters, or the JSON text
/// of another value), checked before anything is written; the column's own limit is still
/// enforced by the repository.
const MAX_EXTRA: usize = 4096;

/// Names no client may ever write through these routes: the key, the revocation epoch and
/// the password hash (under the names apps give it).
const NEVER: [&str; 6] = [
    "id",
    "user_id",
    "token_version",
    "password_hash",
    "hashed_password",
    "hash",
];

/// Names only a superuser may write (through `PATCH /users/{id}`).
const PRIVILEGED: [&str; 4] = ["is_active", "is_superuser", "is_verified", "email_verified"];

/// What a user may change on their own account (`PATCH /users/me`): the email (through the
/// verified email-change flow), the phone number (confirmed by a texted code), the password
/// (with the current one) and the writable own columns. `None` leaves a field as it is.
///
/// ```
/// let patch = crudauth::admin::OwnPatch::default();
/// assert!(patch.is_empty());
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct OwnPatch {
    /// The new email address (canonical form); it changes when the link sent to it is
    /// followed.
    pub email: Option<String>,
    /// The new phone number (E.164); it changes when the code texted to it is confirmed.
    pub phone: Option<String>,
    /// The new password.
    pub password: Option<String>,
    /// The current password (required with `email`, `phone` or `password`).
    pub current_password: Option<String>,
    /// Writable own columns.
    pub extra: BTreeMap<String, Value>,
}

impl std::fmt::Debug for OwnPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnPatch")
            .field("email", &self.email)
            .field("phone", &self.phone)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl OwnPatch {
    /// Whether the patch changes nothing.
    ///
    /// ```
    /// let patch = crudauth::admin::OwnPatch { email: Some("a@b.example".into()), ..Default::default() };
    /// assert!(!patch.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.phone.is_none()
            && self.password.is_none()
            && self.extra.is_empty()
    }
}

/// What a superuser may change on any account (`PATCH /users/{id}`). `None` leaves a field
/// as it is.
///
/// ```
/// let patch = crudauth::admin::AdminPatch { is_active: Some(false), ..Default::default() };
/// assert_eq!(patch.changed(), ["is_active"]);
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct AdminPatch {
    /// The new email address (canonical form), written directly; the address is then
    /// unverified unless `is_verified` says otherwise (as fastapi-users does).
    pub email: Option<String>,
    /// The new password (checked against the policy).
    pub password: Option<String>,
    /// May the account sign in.
    pub is_active: Option<bool>,
    /// Administrator.
    pub is_superuser: Option<bool>,
    /// Email verified.
    pub is_verified: Option<bool>,
    /// Writable own columns.
    pub extra: BTreeMap<String, Value>,
}

impl std::fmt::Debug for AdminPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminPatch")
            .field("changed", &self.changed())
            .finish_non_exhaustive()
    }
}

impl AdminPatch {
    /// The names of the fields the patch sets (for the log line: names, never values).
    ///
    /// ```
    /// let patch = crudauth::admin::AdminPatch { password: Some("s3cret pass".into()), ..Default::default() };
    /// assert_eq!(patch.changed(), ["password"]);
    /// ```
    pub fn changed(&self) -> Vec<String> {
        let flags = [
            ("email", self.email.is_some()),
            ("password", self.password.is_some()),
            ("is_active", self.is_active.is_some()),
            ("is_superuser", self.is_superuser.is_some()),
            ("is_verified", self.is_verified.is_some()),
        ];
        let named = flags.into_iter().filter(|(_, set)| *set).map(|(n, _)| n);
        named
            .map(str::to_owned)
            .chain(self.extra.keys().cloned())
            .collect()
    }
}

/// A present, non-null value of `key`.
fn given<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// A flag: absent or null leaves it; anything but a boolean is a 422 issue.
fn flag(fields: &mut Fields, key: &str) -> Option<bool> {
    match given(fields.all(), key)? {
        Value::Bool(b) => Some(*b),
        _ => {
            fields.issues().push(ValidationIssue::body(
                key,
                "bool_type",
                "Input should be a valid boolean",
            ));
            None
        }
    }
}

/// A string field when given.
fn text(fields: &mut Fields, key: &str) -> Option<String> {
    given(fields.all(), key)?;
    fields.string(key)
}

/// An email field when given (canonicalised and checked as everywhere else).
fn email(fields: &mut Fields, key: &str) -> Option<String> {
    given(fields.all(), key)?;
    fields.email(key)
}

/// Sorts every key of the body: privileged or read-only ones are a 403 (they are visible,
/// so naming them tells nothing), unknown ones a 422 (an own column that is not
/// allow-listed answers exactly like a name the table does not have). Returns the
/// writable own columns given.
fn own_columns(
    fields: &mut Fields,
    known: &[&str],
    privileged_ok: bool,
    config: &UsersAdminConfig,
) -> Result<BTreeMap<String, Value>, AuthError> {
    let mut extra = BTreeMap::new();
    let keys: Vec<String> = fields.all().keys().cloned().collect();
    for key in keys {
        if known.contains(&key.as_str()) {
            continue;
        }
        if NEVER.contains(&key.as_str()) {
            return Err(AuthError::Forbidden("This field can never be changed."));
        }
        if PRIVILEGED.contains(&key.as_str()) && !privileged_ok {
            return Err(AuthError::Forbidden(
                "This field can only be changed by an administrator.",
            ));
        }
        if config.is_writable(&key) {
            let value = fields.all()[&key].clone();
            let long = match &value {
                Value::String(v) => v.len() > MAX_EXTRA * 4 || v.chars().count() > MAX_EXTRA,
                other => other.to_string().len() > MAX_EXTRA,
            };
            if long {
                fields
                    .issues()
                    .push(ValidationIssue::too_long(&key, MAX_EXTRA));
            }
            extra.insert(key, value);
        } else if config.is_readable(&key) {
            return Err(AuthError::Forbidden("This field is read-only."));
        } else {
            fields.issues().push(ValidationIssue::body(
                &key,
                "extra_forbidden",
                "Extra inputs are not permitted",
            ));
        }
    }
    Ok(extra)
}

/// Reads `PATCH /users/me`'s body: 403 for a privileged or read-only field, 422 for an
/// unknown one or a value of the wrong shape.
pub(crate) fn own_patch(
    mut fields: Fields,
    config: &UsersAdminConfig,
) -> Result<OwnPatch, AuthError> {
    let known = ["email", "phone", "password", "current_password"];
    let extra = own_columns(&mut fields, &known, false, config)?;
    let phone = match text(&mut fields, "phone") {
        Some(raw) if raw.len() > 64 => {
            fields.issues().push(ValidationIssue::too_long("phone", 64));
            None
        }
        Some(raw) => {
            let phone = crate::user::normalize_phone(&raw);
            if phone.is_none() {
                fields.issues().push(ValidationIssue::body(
                    "phone",
                    "value_error",
                    "value is not a phone number (E.164, such as +15551234567)",
                ));
            }
            phone
        }
        None => None,
    };
    let patch = OwnPatch {
        email: email(&mut fields, "email"),
        phone,
        password: text(&mut fields, "password"),
        current_password: text(&mut fields, "current_password"),
        extra,
    };
    let sensitive = patch.email.is_some() || patch.phone.is_some() || patch.password.is_some();
    if sensitive && patch.current_password.is_none() {
        fields
            .issues()
            .push(ValidationIssue::missing("current_password"));
    }
    fields.finish(Some(patch))
}

/// Reads `PATCH /users/{id}`'s body: 403 for a field nobody may write or a read-only own
/// column, 422 for an unknown one or a value of the wrong shape.
pub(crate) fn admin_patch(
    mut fields: Fields,
    config: &UsersAdminConfig,
) -> Result<AdminPatch, AuthError> {
    let known = [
        "email",
        "password",
        "is_active",
        "is_superuser",
        "is_verified",
    ];
    let extra = own_columns(&mut fields, &known, true, config)?;
    let patch = AdminPatch {
        email: email(&mut fields, "email"),
        password: text(&mut fields, "password"),
        is_active: flag(&mut fields, "is_active"),
        is_superuser: flag(&mut fields, "is_superuser"),
        is_verified: flag(&mut fields, "is_verified"),
        extra,
    };
    fields.finish(Some(patch))
}

/// A user as the users routes show it (fastapi-users' `UserRead`, plus the username and
/// the shown own columns); never the password hash or the revocation epoch.
pub(crate) fn user_json<U: UserRecord>(
    user: &U,
    repo: &dyn DynUserRepository<U>,
    config: &UsersAdminConfig,
) -> Value {
    let mut body = json!({
        "id": user.user_id(),
        "email": user.email(),
        "username": user.username(),
        "is_active": user.is_active(),
        "is_superuser": user.is_superuser(),
        "is_verified": user.email_verified(),
    });
    if let Value::Object(map) = &mut body {
        if repo.schema().has(LogicalField::Phone) {
            map.insert("phone".into(), json!(user.phone()));
        }
        for column in config.shown() {
            let value = repo.read_extra(user, column).unwrap_or(Value::Null);
            map.insert(column.to_owned(), value);
        }
    }
    body
}
