//! The repository handle `auth.repo()` gives out: every write through it is announced (the
//! user's generation moves, see `crate::generation`), so an app that writes users through
//! crudauth's handle gets the same at-once revocation as crudauth's own writes.

use std::sync::Arc;

use crate::error::AuthError;
use crate::revocation::Revocation;
use crate::user::{BoxFuture, DynUserRepository, NewUser, RepoError, UserId, UserRecord};
use crate::user::{UserFilter, UserPage, UserSchema, UserUpdate};

/// A repository whose writes are announced.
pub(crate) struct Announcing<U> {
    pub repo: Arc<dyn DynUserRepository<U>>,
    pub revocation: Revocation<U>,
}

fn unannounced(e: AuthError) -> RepoError {
    RepoError::Backend(format!(
        "the write succeeded but could not be announced: {e}"
    ))
}

impl<U: UserRecord> Announcing<U> {
    /// Runs a write, then announces it.
    fn announced<'a, T: Send + 'a>(
        &'a self,
        id: &'a UserId,
        write: BoxFuture<'a, Result<T, RepoError>>,
    ) -> BoxFuture<'a, Result<T, RepoError>> {
        Box::pin(async move {
            let done = write.await?;
            self.revocation.changed(id).await.map_err(unannounced)?;
            Ok(done)
        })
    }
}

impl<U: UserRecord> DynUserRepository<U> for Announcing<U> {
    fn schema(&self) -> &UserSchema {
        self.repo.schema()
    }
    fn find_by_id<'a>(&'a self, id: &'a UserId) -> BoxFuture<'a, Result<Option<U>, RepoError>> {
        self.repo.find_by_id(id)
    }
    fn find_by_login<'a>(
        &'a self,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<U>, RepoError>> {
        self.repo.find_by_login(identifier)
    }
    fn find_by_recovery<'a>(
        &'a self,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Option<U>, RepoError>> {
        self.repo.find_by_recovery(value)
    }
    fn find_by_phone<'a>(&'a self, phone: &'a str) -> BoxFuture<'a, Result<Option<U>, RepoError>> {
        self.repo.find_by_phone(phone)
    }
    fn create(&self, new: NewUser) -> BoxFuture<'_, Result<U, RepoError>> {
        self.repo.create(new)
    }
    fn update<'a>(
        &'a self,
        id: &'a UserId,
        update: UserUpdate,
    ) -> BoxFuture<'a, Result<U, RepoError>> {
        self.announced(id, self.repo.update(id, update))
    }
    fn set_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<(), RepoError>> {
        self.announced(id, self.repo.set_password_hash(id, hash))
    }
    fn bump_token_version<'a>(
        &'a self,
        id: &'a UserId,
    ) -> BoxFuture<'a, Result<Option<i64>, RepoError>> {
        self.announced(id, self.repo.bump_token_version(id))
    }
    fn replace_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, RepoError>> {
        self.announced(id, self.repo.replace_password_hash(id, hash))
    }
    fn compare_and_set_password_hash<'a>(
        &'a self,
        id: &'a UserId,
        expected: &'a str,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, RepoError>> {
        let write = self.repo.compare_and_set_password_hash(id, expected, hash);
        Box::pin(async move {
            let swapped = write.await?;
            if swapped {
                self.revocation.changed(id).await.map_err(unannounced)?;
            }
            Ok(swapped)
        })
    }
    fn password_hashes<'a>(
        &'a self,
        after: Option<&'a UserId>,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<(UserId, String)>, RepoError>> {
        self.repo.password_hashes(after, limit)
    }
    fn list_users<'a>(
        &'a self,
        filter: &'a UserFilter,
    ) -> BoxFuture<'a, Result<UserPage<U>, RepoError>> {
        self.repo.list_users(filter)
    }
    fn count_active_superusers(&self) -> BoxFuture<'_, Result<u64, RepoError>> {
        self.repo.count_active_superusers()
    }
    /// The row goes, then the generation moves: every process forgets its cached copy and
    /// every session of the user is told, so the next request with them finds nobody.
    fn delete_user<'a>(&'a self, id: &'a UserId) -> BoxFuture<'a, Result<(), RepoError>> {
        self.announced(id, self.repo.delete_user(id))
    }
    fn extra_columns(&self) -> Vec<&'static str> {
        self.repo.extra_columns()
    }
    fn contract_columns(&self) -> Vec<&'static str> {
        self.repo.contract_columns()
    }
    fn read_extra(&self, user: &U, column: &str) -> Option<serde_json::Value> {
        self.repo.read_extra(user, column)
    }
    fn database(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.repo.database()
    }
}
