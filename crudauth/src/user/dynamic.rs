//! [`DynUserRepository`]: the [`UserRepository`] trait behind a trait object.

use std::sync::Arc;

use super::{
    BoxFuture, NewUser, RepoError, UserFilter, UserId, UserPage, UserRepository, UserSchema,
    UserUpdate,
};

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
    /// See [`UserRepository::find_by_phone`].
    fn find_by_phone<'a>(&'a self, phone: &'a str) -> BoxFuture<'a, Result<Option<U>, RepoError>>;
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
    /// See [`UserRepository::password_hashes`].
    fn password_hashes<'a>(
        &'a self,
        after: Option<&'a UserId>,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<(UserId, String)>, RepoError>>;
    /// See [`UserRepository::list_users`].
    fn list_users<'a>(
        &'a self,
        filter: &'a UserFilter,
    ) -> BoxFuture<'a, Result<UserPage<U>, RepoError>>;
    /// See [`UserRepository::count_active_superusers`].
    fn count_active_superusers(&self) -> BoxFuture<'_, Result<u64, RepoError>>;
    /// See [`UserRepository::delete_user`].
    fn delete_user<'a>(&'a self, id: &'a UserId) -> BoxFuture<'a, Result<(), RepoError>>;
    /// See [`UserRepository::extra_columns`].
    fn extra_columns(&self) -> Vec<&'static str>;
    /// See [`UserRepository::contract_columns`].
    fn contract_columns(&self) -> Vec<&'static str>;
    /// See [`UserRepository::read_extra`].
    fn read_extra(&self, user: &U, column: &str) -> Option<serde_json::Value>;
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
    fn find_by_phone<'a>(
        &'a self,
        phone: &'a str,
    ) -> BoxFuture<'a, Result<Option<R::User>, RepoError>> {
        Box::pin(UserRepository::find_by_phone(self, phone))
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
    fn password_hashes<'a>(
        &'a self,
        after: Option<&'a UserId>,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<(UserId, String)>, RepoError>> {
        Box::pin(UserRepository::password_hashes(self, after, limit))
    }
    fn list_users<'a>(
        &'a self,
        filter: &'a UserFilter,
    ) -> BoxFuture<'a, Result<UserPage<R::User>, RepoError>> {
        Box::pin(UserRepository::list_users(self, filter))
    }
    fn count_active_superusers(&self) -> BoxFuture<'_, Result<u64, RepoError>> {
        Box::pin(UserRepository::count_active_superusers(self))
    }
    fn delete_user<'a>(&'a self, id: &'a UserId) -> BoxFuture<'a, Result<(), RepoError>> {
        Box::pin(UserRepository::delete_user(self, id))
    }
    fn extra_columns(&self) -> Vec<&'static str> {
        UserRepository::extra_columns(self)
    }
    fn contract_columns(&self) -> Vec<&'static str> {
        UserRepository::contract_columns(self)
    }
    fn read_extra(&self, user: &R::User, column: &str) -> Option<serde_json::Value> {
        UserRepository::read_extra(self, user, column)
    }
    fn database(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        UserRepository::database(self)
    }
}
