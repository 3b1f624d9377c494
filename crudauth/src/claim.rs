//! Taking over an account whose address was never proven, for someone who just proved it (a
//! provider's verified address, a code or link sent to it): whatever the unproven holder set
//! up ends (the password, every session, token and refresh family, the provider links,
//! second factors and passkeys), and the address is marked verified.

use std::sync::Arc;

use crate::core::Core;
use crate::error::AuthError;
use crate::login::Login;
use crate::password::make_unusable_password;
use crate::store::{StoreError, fail_closed, repo_fault};
use crate::user::{BoxFuture, DynUserRepository, LogicalField, UserRecord, UserUpdate};

/// Removes everything one store holds for a user (by id); how many things.
pub(crate) type Remover =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<usize, StoreError>> + Send + Sync>;

/// The claim, with the stores of the methods that are on.
#[cfg_attr(
    not(any(feature = "oauth", feature = "passwordless")),
    allow(dead_code)
)]
pub(crate) struct Claim<U> {
    pub core: Arc<Core<U>>,
    pub login: Login<U>,
    /// The repository with its writes announced.
    pub repo: Arc<dyn DynUserRepository<U>>,
    /// What each method keeps for a user, by name (`links`, `factors`, `passkeys`).
    pub removers: Vec<(&'static str, Remover)>,
}

#[cfg_attr(
    not(any(feature = "oauth", feature = "passwordless")),
    allow(dead_code)
)]
impl<U: UserRecord> Claim<U> {
    /// Claims `user` for the one who proved its address `by` (for the log); the account
    /// as it is afterwards.
    pub(crate) async fn claim(&self, user: U, by: &'static str) -> Result<U, AuthError> {
        let id = user.user_id();
        let uid = id.to_string();
        // First the password and the epoch (every session and access token ends), so
        // nothing the holder still has in flight can add a credential after the removals.
        self.login
            .replace_password(&user, &make_unusable_password(), None)
            .await?;
        if let Some(tokens) = &self.core.tokens {
            tokens.revoke_all_families(&uid).await?;
        }
        let mut removed = Vec::new();
        for (what, remove) in &self.removers {
            let n = remove(uid.clone())
                .await
                .map_err(|e| fail_closed("claim", &e))?;
            removed.push(format!("{what}={n}"));
        }

        let schema = self.core.repo.schema();
        if schema.has(LogicalField::EmailVerified) && schema.writable(LogicalField::EmailVerified) {
            let update = UserUpdate {
                email_verified: Some(true),
                ..Default::default()
            };
            self.repo.update(&id, update).await.map_err(repo_fault)?;
        }
        tracing::warn!(user_id = %id, by, removed = %removed.join(","), "crudauth: an account with an unverified address was claimed by the address's owner; its password, sessions and credentials were ended");
        let user = self.core.repo.find_by_id(&id).await.map_err(repo_fault)?;
        user.ok_or(AuthError::NotAuthenticated)
    }
}
