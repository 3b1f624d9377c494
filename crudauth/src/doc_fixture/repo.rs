//! The fixture's user type and in-memory repository.

use std::sync::{Mutex, MutexGuard};

use crate::user::{
    IdKind, IdentityField, LogicalField, NewUser, RepoError, UserFilter, UserId, UserPage,
    UserRecord, UserRepository, UserSchema, UserUpdate, normalize_email, normalize_phone,
};

/// A user row with every logical field (an absent email or username is stored empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The primary key.
    pub id: i64,
    /// The email address (stored normalised).
    pub email: String,
    /// The username.
    pub username: String,
    /// The password hash.
    pub password_hash: String,
    /// May the account log in.
    pub is_active: bool,
    /// Administrator.
    pub is_superuser: bool,
    /// Email verified.
    pub email_verified: bool,
    /// The revocation epoch.
    pub token_version: Option<i64>,
    /// The phone number (E.164), if set.
    pub phone: Option<String>,
}

impl UserRecord for User {
    fn user_id(&self) -> UserId {
        UserId::Int(self.id)
    }
    fn email(&self) -> Option<&str> {
        Some(&self.email)
    }
    fn username(&self) -> Option<&str> {
        Some(&self.username)
    }
    fn password_hash(&self) -> Option<&str> {
        Some(&self.password_hash)
    }
    fn is_active(&self) -> bool {
        self.is_active
    }
    fn is_superuser(&self) -> bool {
        self.is_superuser
    }
    fn email_verified(&self) -> bool {
        self.email_verified
    }
    fn token_version(&self) -> Option<i64> {
        self.token_version
    }
    fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
}

const EMAIL: IdentityField = IdentityField {
    column: "email",
    logical: Some(LogicalField::Email),
};
const USERNAME: IdentityField = IdentityField {
    column: "username",
    logical: Some(LogicalField::Username),
};
static SCHEMA: UserSchema = UserSchema {
    table: "users",
    id_kind: IdKind::Int,
    // Every field but the tenant: the fixture's users belong to no tenant.
    present: &[
        LogicalField::Id,
        LogicalField::Email,
        LogicalField::Username,
        LogicalField::Password,
        LogicalField::IsActive,
        LogicalField::IsSuperuser,
        LogicalField::EmailVerified,
        LogicalField::TokenVersion,
        LogicalField::Phone,
    ],
    login: &[EMAIL, USERNAME],
    recovery: Some(EMAIL),
    read_only: &[],
};

/// The longest email and username the repository stores.
const MAX_EMAIL: usize = 254;
const MAX_USERNAME: usize = 150;

/// An in-memory user table: login by email (case-insensitive) or username, unique emails,
/// usernames and phone numbers (E.164, matched exactly), the epoch in the `token_version`
/// column.
#[derive(Debug, Default)]
pub struct Repo {
    users: Mutex<Vec<User>>,
}

impl Repo {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn users(&self) -> MutexGuard<'_, Vec<User>> {
        // No code path panics while holding the lock, but a poisoned lock is still usable.
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_user<T>(&self, id: &UserId, f: impl FnOnce(&mut User) -> T) -> Result<T, RepoError> {
        let mut users = self.users();
        let user = users
            .iter_mut()
            .find(|u| u.user_id() == *id)
            .ok_or(RepoError::NotFound)?;
        Ok(f(user))
    }
}

/// Reads a unique column of a user.
type Column = fn(&User) -> &str;

/// Refuses a value longer than its column, or one another user (than `except`) holds.
fn check_unique(
    users: &[User],
    except: Option<i64>,
    email: Option<&str>,
    username: Option<&str>,
) -> Result<(), RepoError> {
    let columns: [(&str, Option<&str>, usize, Column); 2] = [
        ("email", email, MAX_EMAIL, |u| &u.email),
        ("username", username, MAX_USERNAME, |u| &u.username),
    ];
    for (field, value, max, column) in columns {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        if value.chars().count() > max {
            return Err(RepoError::TooLong {
                field: field.into(),
                max,
            });
        }
        if users
            .iter()
            .any(|u| Some(u.id) != except && column(u) == value)
        {
            return Err(RepoError::Duplicate {
                field: field.into(),
            });
        }
    }
    Ok(())
}

/// Refuses a phone number not in E.164 form, or one another user (than `except`) holds.
fn check_phone(users: &[User], except: Option<i64>, phone: Option<&str>) -> Result<(), RepoError> {
    let Some(phone) = phone else { return Ok(()) };
    if normalize_phone(phone).as_deref() != Some(phone) {
        return Err(RepoError::InvalidValue {
            field: "phone".into(),
            reason: "must be an E.164 number such as +46701234567".into(),
        });
    }
    if users
        .iter()
        .any(|u| Some(u.id) != except && u.phone.as_deref() == Some(phone))
    {
        return Err(RepoError::Duplicate {
            field: "phone".into(),
        });
    }
    Ok(())
}

/// The table has no columns of its own: every extra is refused.
fn no_extras(
    extra: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), RepoError> {
    match extra.keys().next() {
        Some(column) => Err(RepoError::InvalidValue {
            field: column.clone(),
            reason: "no such column".into(),
        }),
        None => Ok(()),
    }
}

impl UserRepository for Repo {
    type User = User;

    fn schema(&self) -> &UserSchema {
        &SCHEMA
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<User>, RepoError> {
        Ok(self.users().iter().find(|u| u.user_id() == *id).cloned())
    }

    async fn password_hashes(
        &self,
        after: Option<&UserId>,
        limit: u64,
    ) -> Result<Vec<(UserId, String)>, RepoError> {
        let mut rows: Vec<(UserId, String)> = self
            .users()
            .iter()
            .map(|u| (u.user_id(), u.password_hash.clone()))
            .filter(|(id, _)| after.is_none_or(|a| id > a))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(rows)
    }

    async fn find_by_login(&self, identifier: &str) -> Result<Option<User>, RepoError> {
        let email = normalize_email(identifier);
        let users = self.users();
        let found = users
            .iter()
            .find(|u| u.email == email)
            .or_else(|| users.iter().find(|u| u.username == identifier));
        Ok(found.cloned())
    }

    async fn find_by_recovery(&self, value: &str) -> Result<Option<User>, RepoError> {
        let email = normalize_email(value);
        Ok(self.users().iter().find(|u| u.email == email).cloned())
    }

    async fn find_by_phone(&self, phone: &str) -> Result<Option<User>, RepoError> {
        let users = self.users();
        Ok(users
            .iter()
            .find(|u| u.phone.as_deref() == Some(phone))
            .cloned())
    }

    async fn create(&self, new: NewUser) -> Result<User, RepoError> {
        no_extras(&new.extra)?;
        let email = new
            .email
            .as_deref()
            .map(normalize_email)
            .unwrap_or_default();
        let username = new.username.unwrap_or_default();
        let mut users = self.users();
        check_unique(&users, None, Some(&email), Some(&username))?;
        check_phone(&users, None, new.phone.as_deref())?;
        let user = User {
            id: users.iter().map(|u| u.id).max().unwrap_or(0) + 1,
            email,
            username,
            password_hash: new.password_hash,
            is_active: new.is_active,
            is_superuser: new.is_superuser,
            email_verified: new.email_verified,
            token_version: Some(0),
            phone: new.phone,
        };
        users.push(user.clone());
        Ok(user)
    }

    async fn update(&self, id: &UserId, update: UserUpdate) -> Result<User, RepoError> {
        no_extras(&update.extra)?;
        let email = update.email.as_deref().map(normalize_email);
        let mut users = self.users();
        let index = users
            .iter()
            .position(|u| u.user_id() == *id)
            .ok_or(RepoError::NotFound)?;
        let except = Some(users[index].id);
        check_unique(&users, except, email.as_deref(), update.username.as_deref())?;
        check_phone(
            &users,
            except,
            update.phone.as_deref().filter(|p| !p.is_empty()),
        )?;
        let user = &mut users[index];
        if let Some(email) = email {
            user.email = email;
        }
        if let Some(username) = update.username {
            user.username = username;
        }
        if let Some(phone) = update.phone {
            user.phone = Some(phone).filter(|p| !p.is_empty());
        }
        user.is_active = update.is_active.unwrap_or(user.is_active);
        user.is_superuser = update.is_superuser.unwrap_or(user.is_superuser);
        user.email_verified = update.email_verified.unwrap_or(user.email_verified);
        Ok(user.clone())
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<(), RepoError> {
        self.with_user(id, |u| u.password_hash = hash.to_owned())
    }

    async fn bump_token_version(&self, id: &UserId) -> Result<Option<i64>, RepoError> {
        self.with_user(id, |u| {
            let next = u.token_version.unwrap_or(0) + 1;
            u.token_version = Some(next);
            Some(next)
        })
    }

    /// One write under one lock: the hash and the epoch move together.
    async fn replace_password_hash(
        &self,
        id: &UserId,
        hash: &str,
    ) -> Result<Option<i64>, RepoError> {
        self.with_user(id, |u| {
            let next = u.token_version.unwrap_or(0) + 1;
            u.password_hash = hash.to_owned();
            u.token_version = Some(next);
            Some(next)
        })
    }

    async fn compare_and_set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> Result<bool, RepoError> {
        self.with_user(id, |u| {
            let current = u.password_hash == expected;
            if current {
                u.password_hash = hash.to_owned();
            }
            current
        })
    }

    async fn list_users(&self, filter: &UserFilter) -> Result<UserPage<User>, RepoError> {
        let mut matching: Vec<User> = self
            .users()
            .iter()
            .filter(|u| filter.email_matches(Some(&u.email)))
            .filter(|u| filter.is_active.is_none_or(|a| u.is_active == a))
            .filter(|u| filter.is_superuser.is_none_or(|s| u.is_superuser == s))
            .cloned()
            .collect();
        matching.sort_by_key(|u| u.id);
        let total = matching.len() as u64;
        let skip = usize::try_from(filter.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        let users = matching.into_iter().skip(skip).take(take).collect();
        Ok(UserPage { users, total })
    }

    async fn count_active_superusers(&self) -> Result<u64, RepoError> {
        let users = self.users();
        Ok(users
            .iter()
            .filter(|u| u.is_superuser && u.is_active)
            .count() as u64)
    }

    async fn delete_user(&self, id: &UserId) -> Result<(), RepoError> {
        let mut users = self.users();
        let before = users.len();
        users.retain(|u| u.user_id() != *id);
        if users.len() == before {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }
}
