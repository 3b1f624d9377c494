//! TEMPORARY (moves to user/repository.rs).

use std::sync::Arc;

use crate::user::{BoxFuture, NewUser, RepoError, UserId, UserRepository, UserSchema, UserUpdate};

/// A [`UserRepository`] behind a trait object, so the facade is generic over the user type
/// only. Implemented for every `UserRepository`.
pub trait DynUserRepository<U>: Send + Sync {
    /// See [`UserRepository::schema`].
    fn schema(&self) -> &UserSchema;
    /// See [`UserRepository::find_by_id`].
    fn find_by_id<'a>(&'a self, id: &'a UserId) -> BoxFuture<'a, Result<Option<U>, RepoError>>;
    /// See [`UserRepository::find_by_login`].
    fn find_by_login<'a>(
        &'a self,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<U>, RepoError>>;
    /// See [`UserRepository::find_by_recovery`].
    fn find_by_recovery<'a>(
        &'a self,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Option<U>, RepoError>>;
    /// See [`UserRepository::create`].
    fn create(&self, new: NewUser) -> BoxFuture<'_, Result<U, RepoError>>;
    /// See [`UserRepository::update`].
    fn update<'a>(
        &'a self,
        id: &'a UserId,
        update: UserUpdate,
    ) -> BoxFuture<'a, Result<U, RepoError>>;
    /// See [`UserRepository::set_password_hash`].
    fn set_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<(), RepoError>>;
    /// See [`UserRepository::bump_token_version`].
    fn bump_token_version<'a>(
        &'a self,
        id: &'a UserId,
    ) -> BoxFuture<'a, Result<Option<i64>, RepoError>>;
    /// See [`UserRepository::replace_password_hash`].
    fn replace_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, RepoError>>;
    /// See [`UserRepository::compare_and_set_password_hash`].
    fn compare_and_set_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        expected: &'a str,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, RepoError>>;
    /// See [`UserRepository::database`].
    fn database(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>>;
}

impl<R: UserRepository> DynUserRepository<R::User> for R {
    fn schema(&self) -> &UserSchema {
        UserRepository::schema(self)
    }
    fn find_by_id<'a>(
        &'a self,
        id: &'a UserId,
    ) -> BoxFuture<'a, Result<Option<R::User>, RepoError>> {
        Box::pin(UserRepository::find_by_id(self, id))
    }
    fn find_by_login<'a>(
        &'a self,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<R::User>, RepoError>> {
        Box::pin(UserRepository::find_by_login(self, identifier))
    }
    fn find_by_recovery<'a>(
        &'a self,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Option<R::User>, RepoError>> {
        Box::pin(UserRepository::find_by_recovery(self, value))
    }
    fn create(&self, new: NewUser) -> BoxFuture<'_, Result<R::User, RepoError>> {
        Box::pin(UserRepository::create(self, new))
    }
    fn update<'a>(
        &'a self,
        id: &'a UserId,
        update: UserUpdate,
    ) -> BoxFuture<'a, Result<R::User, RepoError>> {
        Box::pin(UserRepository::update(self, id, update))
    }
    fn set_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<(), RepoError>> {
        Box::pin(UserRepository::set_password_hash(self, id, hash))
    }
    fn bump_token_version<'a>(
        &'a self,
        id: &'a UserId,
    ) -> BoxFuture<'a, Result<Option<i64>, RepoError>> {
        Box::pin(UserRepository::bump_token_version(self, id))
    }
    fn replace_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, RepoError>> {
        Box::pin(UserRepository::replace_password_hash(self, id, hash))
    }
    fn compare_and_set_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        expected: &'a str,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, RepoError>> {
        Box::pin(UserRepository::compare_and_set_password_hash(
            self, id, expected, hash,
        ))
    }
    fn database(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        UserRepository::database(self)
    }
}

