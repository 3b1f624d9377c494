//! A one-user, in-memory repository shared by the criterion benches and the session-memory
//! bench: they measure the library, not a database.

use std::sync::Arc;

use crudauth::user::{
    IdKind, IdentityField, LogicalField, NewUser, RepoError, UserId, UserRecord, UserRepository,
    UserSchema, UserUpdate,
};

/// The one user.
#[derive(Clone, Debug)]
pub struct User {
    /// Key.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Password hash.
    pub hash: String,
}

impl UserRecord for User {
    fn user_id(&self) -> UserId {
        UserId::Int(self.id)
    }
    fn email(&self) -> Option<&str> {
        Some(&self.email)
    }
    fn username(&self) -> Option<&str> {
        None
    }
    fn password_hash(&self) -> Option<&str> {
        Some(&self.hash)
    }
    fn is_active(&self) -> bool {
        true
    }
    fn is_superuser(&self) -> bool {
        false
    }
    fn email_verified(&self) -> bool {
        false
    }
    fn token_version(&self) -> Option<i64> {
        Some(0)
    }
}

const EMAIL: IdentityField = IdentityField {
    column: "email",
    logical: Some(LogicalField::Email),
};
static SCHEMA: UserSchema = UserSchema {
    table: "bench",
    id_kind: IdKind::Int,
    present: &[
        LogicalField::Id,
        LogicalField::Email,
        LogicalField::Password,
        LogicalField::TokenVersion,
    ],
    login: &[EMAIL],
    recovery: Some(EMAIL),
    read_only: &[],
};

/// One user held in memory: the bench measures the library, not a database.
pub struct OneUser(pub Arc<User>);

#[allow(
    dead_code,
    reason = "the session_memory bench uses it, the criterion benches do not"
)]
impl OneUser {
    /// Every numeric id finds a copy of this user under that id (for benches that need many
    /// users, such as the cache's memory per user); sign-in still knows only the one.
    pub fn every_id(user: User) -> EveryId {
        EveryId(OneUser(Arc::new(user)))
    }
}

/// [`OneUser::every_id`].
#[allow(
    dead_code,
    reason = "the session_memory bench uses it, the criterion benches do not"
)]
pub struct EveryId(OneUser);

impl UserRepository for EveryId {
    type User = User;
    fn schema(&self) -> &UserSchema {
        self.0.schema()
    }
    async fn find_by_id(&self, id: &UserId) -> Result<Option<User>, RepoError> {
        let UserId::Int(n) = id else { return Ok(None) };
        let mut user = (*self.0.0).clone();
        user.id = *n;
        user.email = format!("user{n}@example.com");
        Ok(Some(user))
    }
    async fn find_by_login(&self, identifier: &str) -> Result<Option<User>, RepoError> {
        self.0.find_by_login(identifier).await
    }
    async fn find_by_recovery(&self, value: &str) -> Result<Option<User>, RepoError> {
        self.0.find_by_recovery(value).await
    }
    async fn find_by_phone(&self, phone: &str) -> Result<Option<User>, RepoError> {
        self.0.find_by_phone(phone).await
    }
    async fn create(&self, new: NewUser) -> Result<User, RepoError> {
        self.0.create(new).await
    }
    async fn update(&self, id: &UserId, update: UserUpdate) -> Result<User, RepoError> {
        self.0.update(id, update).await
    }
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<(), RepoError> {
        self.0.set_password_hash(id, hash).await
    }
    async fn bump_token_version(&self, id: &UserId) -> Result<Option<i64>, RepoError> {
        self.0.bump_token_version(id).await
    }
}

impl UserRepository for OneUser {
    type User = User;
    fn schema(&self) -> &UserSchema {
        &SCHEMA
    }
    async fn find_by_id(&self, id: &UserId) -> Result<Option<User>, RepoError> {
        Ok((*id == UserId::Int(self.0.id)).then(|| (*self.0).clone()))
    }
    async fn find_by_login(&self, identifier: &str) -> Result<Option<User>, RepoError> {
        Ok((identifier == self.0.email).then(|| (*self.0).clone()))
    }
    async fn find_by_recovery(&self, value: &str) -> Result<Option<User>, RepoError> {
        self.find_by_login(value).await
    }
    async fn create(&self, _: NewUser) -> Result<User, RepoError> {
        Err(RepoError::Backend("read-only bench repository".into()))
    }
    async fn update(&self, _: &UserId, _: UserUpdate) -> Result<User, RepoError> {
        Err(RepoError::Backend("read-only bench repository".into()))
    }
    async fn set_password_hash(&self, _: &UserId, _: &str) -> Result<(), RepoError> {
        Ok(())
    }
    async fn bump_token_version(&self, _: &UserId) -> Result<Option<i64>, RepoError> {
        Ok(Some(0))
    }
}
