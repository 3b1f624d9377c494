//! The users admin service: reads and writes of accounts for `/users/me` and, for
//! superusers, `/users` and `/users/{id}`; every write that should end sign-ins ends them.

use std::sync::Arc;

use serde_json::Value;

use super::patch::user_json;
use super::{AdminPatch, OwnPatch, UsersAdminConfig};
use crate::claim::Remover;
use crate::client_ip::ClientMeta;
use crate::core::Core;
use crate::error::{AuthError, ValidationIssue};
use crate::hooks::Event;
use crate::login::Login;
use crate::policy::{PasswordContext, PasswordSource};
use crate::principal::Principal;
use crate::recovery::Recovery;
use crate::session::RotatedSession;
use crate::store::{fail_closed, repo_fault};
use crate::user::{
    BoxFuture, DynUserRepository, LogicalField, RepoError, UserFilter, UserId, UserPage,
    UserRecord, UserUpdate, normalize_email,
};

/// The answer to a refused removal of the last active superuser.
const LAST_SUPERUSER: &str = "Cannot remove the last active superuser.";

/// The users admin. Reached as `auth.users_admin()` (feature `admin`, switched on by
/// [`crate::CrudAuthBuilder::users_admin`]).
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// use crudauth::admin::UsersAdminConfig;
/// let auth = b.users_admin(UsersAdminConfig::default()).build()?;
/// assert_eq!(auth.users_admin().map(|a| a.config().max_page_size), Some(100));
/// # Ok(()) });
/// ```
pub struct UsersAdmin<U> {
    pub(super) core: Arc<Core<U>>,
    login: Login<U>,
    /// The repository with its writes announced (a delete forgets the cached user too).
    pub(super) repo: Arc<dyn DynUserRepository<U>>,
    recovery: Option<Recovery<U>>,
    /// What the other methods keep for a user, removed with the user.
    removers: Vec<(&'static str, Remover)>,
    config: UsersAdminConfig,
    /// Serialises this process's removals of superusers (see `removing_superuser`).
    superusers: Arc<tokio::sync::Mutex<()>>,
}

impl<U> std::fmt::Debug for UsersAdmin<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let removers: Vec<_> = self.removers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("UsersAdmin")
            .field("config", &self.config)
            .field("removers", &removers)
            .finish_non_exhaustive()
    }
}

/// What `PATCH /users/me` did.
pub(crate) struct OwnOutcome<U> {
    /// The account as it is now.
    pub user: U,
    /// Whether a confirmation link went to a new address (answered 202).
    pub email_pending: bool,
    /// Whether a confirmation code was texted to a new phone number (answered 202).
    pub phone_pending: bool,
    /// The caller's session under its new id, after a password change.
    pub session: Option<RotatedSession>,
}

/// A repository write's refusal, as the users routes answer it.
fn write_error(e: RepoError) -> AuthError {
    match e {
        RepoError::Duplicate { field } if field == "email" => {
            AuthError::BadRequest("UPDATE_USER_EMAIL_ALREADY_EXISTS")
        }
        RepoError::Duplicate { .. } => AuthError::Taken("Already taken"),
        RepoError::TooLong { field, max } => {
            AuthError::Validation(vec![ValidationIssue::too_long(&field, max)])
        }
        RepoError::InvalidValue { field, reason } => {
            AuthError::Validation(vec![ValidationIssue::body(&field, "value_error", reason)])
        }
        RepoError::NotFound => AuthError::NotFound("Not Found"),
        e @ RepoError::Backend(_) => repo_fault(e),
    }
}

/// Rows read per query when a listing is filtered to one tenant in Rust.
const TENANT_SCAN_PAGE: u64 = 500;

impl<U: UserRecord> UsersAdmin<U> {
    pub(crate) fn new(
        core: Arc<Core<U>>,
        login: Login<U>,
        repo: Arc<dyn DynUserRepository<U>>,
        recovery: Option<Recovery<U>>,
        removers: Vec<(&'static str, Remover)>,
        config: UsersAdminConfig,
    ) -> Result<Self, crate::ConfigError> {
        config.validate(&repo.extra_columns())?;
        Ok(UsersAdmin {
            core,
            login,
            repo,
            recovery,
            removers,
            config,
            superusers: Arc::default(),
        })
    }

    /// The settings.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.users_admin(crudauth::admin::UsersAdminConfig::default()).build()?;
    /// let admin = auth.users_admin().expect("the users admin is on");
    /// assert_eq!(admin.config().default_page_size, 50);
    /// # Ok(()) });
    /// ```
    pub fn config(&self) -> &UsersAdminConfig {
        &self.config
    }

    /// A user as the routes show it.
    pub(crate) fn user_json(&self, user: &U) -> Value {
        user_json(user, self.repo.as_ref(), &self.config)
    }

    /// Whether an address change can go through the verified email-change flow.
    fn email_changes(&self) -> bool {
        self.recovery.is_some() && self.core.deliveries.sends_email()
    }

    /// A page of the users `actor` may administer: every matching user, or for a superuser
    /// limited to their tenant (see `TenantConfig::administration_across_tenants`) the
    /// matching users of that tenant, found by reading the matching rows in pages of
    /// `TENANT_SCAN_PAGE` (a resolver's tenant cannot be asked of SQL).
    pub(crate) async fn list(
        &self,
        actor: &Principal<U>,
        filter: &UserFilter,
    ) -> Result<UserPage<U>, AuthError> {
        let tenancy = &self.core.tenancy;
        if !tenancy.administers_one_tenant(actor) {
            return self.repo.list_users(filter).await.map_err(write_error);
        }
        let (mut users, mut total) = (Vec::new(), 0u64);
        let mut scan = UserFilter {
            offset: 0,
            limit: TENANT_SCAN_PAGE,
            ..filter.clone()
        };
        loop {
            let page = self.repo.list_users(&scan).await.map_err(write_error)?;
            let read = page.users.len() as u64;
            for user in page.users {
                if !tenancy.may_administer(actor, &user) {
                    continue;
                }
                if total >= filter.offset && (users.len() as u64) < filter.limit {
                    users.push(user);
                }
                total += 1;
            }
            if read < TENANT_SCAN_PAGE {
                break;
            }
            scan.offset += read;
        }
        Ok(UserPage { users, total })
    }

    /// The user with this id; 404 `Not Found` when there is none.
    pub(crate) async fn get(&self, id: &UserId) -> Result<U, AuthError> {
        let user = self.repo.find_by_id(id).await.map_err(repo_fault)?;
        user.ok_or(AuthError::NotFound("Not Found"))
    }

    /// The user with this id if `actor` may administer them; 404 `Not Found` when there is
    /// none, and for another tenant's user (never telling that one exists).
    pub(crate) async fn get_for(&self, actor: &Principal<U>, id: &UserId) -> Result<U, AuthError> {
        let user = self.get(id).await?;
        if !self.core.tenancy.may_administer(actor, &user) {
            return Err(AuthError::NotFound("Not Found"));
        }
        Ok(user)
    }

    /// `PATCH /users/me`: the current password checked once before anything is written
    /// (on the account's lockout budget), then the own columns, the password (through
    /// `/change-password`'s service: every other session and token ends), the email
    /// (through the email-change flow: a link to the new address, 202) and the phone number
    /// (a code texted to it, 202; see `phone`).
    pub(crate) async fn update_own(
        &self,
        principal: &Principal<U>,
        patch: OwnPatch,
        client: &ClientMeta,
    ) -> Result<OwnOutcome<U>, AuthError> {
        // The account's ways in are the person's to change: not an impersonating
        // superuser's, not a script's API key (its own columns they may write).
        if patch.email.is_some() || patch.phone.is_some() || patch.password.is_some() {
            principal.refuse_delegated()?;
        }
        let user = principal.user.as_ref();
        let id = user.user_id();
        if let Some(email) = &patch.email {
            if !self.email_changes() {
                return Err(AuthError::BadRequest(
                    "Email changes are not available: no email flows are configured.",
                ));
            }
            if user.email().map(normalize_email).as_deref() == Some(email.as_str()) {
                return Err(AuthError::BadRequest("New email matches current email"));
            }
        }
        if let Some(phone) = &patch.phone {
            if !self.phone_changes() {
                return Err(AuthError::BadRequest(
                    "Phone changes need a texted confirmation, which is not configured.",
                ));
            }
            if user.phone() == Some(phone.as_str()) {
                return Err(AuthError::BadRequest("New phone matches current phone"));
            }
        }
        if let Some(password) = &patch.password {
            let ctx = PasswordContext::for_user(PasswordSource::Change, user);
            self.login
                .validate_password(password, &ctx, "password")
                .await?;
        }
        let current = patch.current_password.as_deref().unwrap_or_default();
        if patch.email.is_some() || patch.phone.is_some() || patch.password.is_some() {
            let wrong = AuthError::Unauthorized("Current password is incorrect.");
            self.login
                .check_current_password(principal, current, client, wrong)
                .await?;
        }
        if !patch.extra.is_empty() {
            let update = UserUpdate {
                extra: patch.extra.clone(),
                ..Default::default()
            };
            self.repo.update(&id, update).await.map_err(write_error)?;
        }
        let mut session = None;
        if let Some(new) = &patch.password {
            session = self
                .login
                .change_password(principal, current, new, client)
                .await?;
        }
        let email_pending = match (&patch.email, &self.recovery) {
            (Some(email), Some(recovery)) => {
                recovery
                    .request_email_change(principal, email, current, client)
                    .await?;
                true
            }
            _ => false,
        };
        let phone_pending = match &patch.phone {
            Some(phone) => {
                self.request_phone(user, phone).await?;
                true
            }
            None => false,
        };
        Ok(OwnOutcome {
            user: self.get(&id).await?,
            email_pending,
            phone_pending,
            session,
        })
    }

    /// `PATCH /users/{id}` by `actor` (a superuser in the sudo window).
    ///
    /// The password is checked against the policy and hashed before anything is written.
    /// Every field is written in one repository update (a refused value writes nothing);
    /// one that removes an active superuser (demotion or deactivation) is guarded by
    /// `removing_superuser`. Then a new password moves the hash and the revocation epoch
    /// together; a password, a deactivation, a demotion or an email change ends every
    /// session, token and refresh family of the user.
    pub(crate) async fn update_user(
        &self,
        actor: &Principal<U>,
        id: &UserId,
        patch: AdminPatch,
        client: &ClientMeta,
    ) -> Result<U, AuthError> {
        let target = self.get_for(actor, id).await?;
        let schema = *self.repo.schema();
        let hash = match &patch.password {
            Some(password) => {
                let ctx = PasswordContext::for_user(PasswordSource::Admin, &target);
                self.login
                    .validate_password(password, &ctx, "password")
                    .await?;
                Some(self.login.hash_new_password(password, "password").await?)
            }
            None => None,
        };
        let old_email = target.email().map(normalize_email);
        let email_changed = patch
            .email
            .as_ref()
            .is_some_and(|e| Some(e) != old_email.as_ref());
        if let Some(email) = patch.email.as_deref().filter(|_| email_changed)
            && let Some(other) = self.repo.find_by_login(email).await.map_err(repo_fault)?
            && other.user_id() != *id
            && other.email().map(normalize_email).as_deref() == Some(email)
        {
            return Err(AuthError::BadRequest("UPDATE_USER_EMAIL_ALREADY_EXISTS"));
        }
        let demoted = target.is_superuser() && patch.is_superuser == Some(false);
        let deactivated = target.is_active() && patch.is_active == Some(false);
        let mut update = UserUpdate {
            email: patch.email.clone().filter(|_| email_changed),
            is_active: patch.is_active,
            is_superuser: patch.is_superuser,
            email_verified: patch.is_verified,
            extra: patch.extra.clone(),
            ..Default::default()
        };
        if email_changed
            && update.email_verified.is_none()
            && schema.has(LogicalField::EmailVerified)
        {
            update.email_verified = Some(false);
        }
        let mut user = target.clone();
        if !update.is_empty() {
            let write = self.repo.update(id, update);
            user = if target.is_superuser() && target.is_active() && (demoted || deactivated) {
                let undo = UserUpdate {
                    is_superuser: demoted.then_some(true),
                    is_active: deactivated.then_some(true),
                    ..Default::default()
                };
                self.removing_superuser(&target, undo, write).await?
            } else {
                write.await.map_err(write_error)?
            };
        }
        let ctx = client.hook_context(Some(actor.via.as_str()));
        if let Some(hash) = &hash {
            self.login.replace_password(&user, hash, None).await?;
        }
        if hash.is_some() || demoted || deactivated || email_changed {
            self.end_sign_ins(&user).await?;
        }
        let user = self.get(id).await?;
        tracing::warn!(
            actor = %actor.user_id,
            target = %id,
            fields = %patch.changed().join(","),
            "crudauth: users admin updated an account"
        );
        let hooks = &self.core.hooks;
        if hash.is_some() {
            let changed = Arc::new(user.clone());
            hooks
                .fire_user(Event::AfterPasswordChanged, changed, &ctx)
                .await;
        }
        if email_changed {
            let changed = Arc::new(user.clone());
            hooks
                .fire_user(Event::AfterEmailChanged, changed, &ctx)
                .await;
        }
        Ok(user)
    }

    /// `DELETE /users/{id}` by `actor`: the last active superuser is never deleted; every
    /// session, token and refresh family of the user ends, then what the other methods
    /// keep for the user (provider links, second factors, passkeys), then the row.
    pub(crate) async fn delete_user(
        &self,
        actor: &Principal<U>,
        id: &UserId,
    ) -> Result<(), AuthError> {
        let target = self.get_for(actor, id).await?;
        if target.is_superuser() && target.is_active() {
            // Demoted and deactivated first (where the table lets crudauth write the flags),
            // so the count after it sees the removal.
            let schema = self.repo.schema();
            let (demote, deactivate) = (
                schema.writable(LogicalField::IsSuperuser),
                schema.writable(LogicalField::IsActive),
            );
            let removal = UserUpdate {
                is_superuser: demote.then_some(false),
                is_active: deactivate.then_some(false),
                ..Default::default()
            };
            let undo = UserUpdate {
                is_superuser: demote.then_some(true),
                is_active: deactivate.then_some(true),
                ..Default::default()
            };
            let write: BoxFuture<'_, Result<(), RepoError>> = if removal.is_empty() {
                Box::pin(async { Ok(()) })
            } else {
                Box::pin(async { self.repo.update(id, removal).await.map(|_| ()) })
            };
            self.removing_superuser(&target, undo, write).await?;
        } else if target.is_active() && self.repo.schema().writable(LogicalField::IsActive) {
            // Disabled first: should the row's delete fail afterwards (a foreign key of the
            // app's), the account is left disabled, not active with its factors removed.
            let off = UserUpdate {
                is_active: Some(false),
                ..Default::default()
            };
            self.repo.update(id, off).await.map_err(write_error)?;
        }
        self.end_sign_ins(&target).await?;
        let uid = id.to_string();
        let mut removed = Vec::new();
        for (what, remove) in &self.removers {
            let n = remove(uid.clone())
                .await
                .map_err(|e| fail_closed("users admin delete", &e))?;
            removed.push(format!("{what}={n}"));
        }
        self.repo.delete_user(id).await.map_err(write_error)?;
        tracing::warn!(
            actor = %actor.user_id,
            target = %id,
            removed = %removed.join(","),
            "crudauth: users admin deleted an account; its sessions, tokens and credentials ended"
        );
        Ok(())
    }

    /// Ends every sign-in of the user: the revocation epoch moves (every session and access
    /// token dies on its next use), the session records and refresh families go.
    async fn end_sign_ins(&self, user: &U) -> Result<(), AuthError> {
        self.core.revocation.bump(user).await?;
        let uid = user.user_id().to_string();
        if let Some(sessions) = &self.core.sessions {
            sessions.revoke_all(&uid, None).await?;
        }
        if let Some(tokens) = &self.core.tokens {
            tokens.revoke_all_families(&uid).await?;
        }
        Ok(())
    }

    /// Runs `write`, which removes the active superuser `target` (a demotion, a
    /// deactivation, or the first step of a deletion), unless no active superuser would be
    /// left: 400 then.
    ///
    /// The active superusers are counted before the write (the target among them: fewer
    /// than two refuses with nothing written) and again after it; when the second count
    /// finds none, `undo` puts the flags back and the answer is the same 400. Counting
    /// after the write means two removals racing each other (two processes, two
    /// superusers demoting each other) each see the other's write, and at least one is
    /// undone: there is never a moment after both answered in which nobody is left. In one
    /// process they are also serialised by a lock. What remains: in that race the undone
    /// request's other fields (an email, own columns) stay written; a failure to undo (the
    /// database gone between the count and the undo) is answered 503 and logged; and a
    /// table whose flags are read through functions only has no write to count after, so
    /// there a race between processes is not excluded.
    async fn removing_superuser<T>(
        &self,
        target: &U,
        undo: UserUpdate,
        write: BoxFuture<'_, Result<T, RepoError>>,
    ) -> Result<T, AuthError> {
        let _serialised = self.superusers.lock().await;
        let id = target.user_id();
        let before = self
            .repo
            .count_active_superusers()
            .await
            .map_err(repo_fault)?;
        if before < 2 {
            return Err(AuthError::BadRequest(LAST_SUPERUSER));
        }
        let done = write.await.map_err(write_error)?;
        let left = self.repo.count_active_superusers().await;
        if undo.is_empty() || matches!(left, Ok(n) if n > 0) {
            return Ok(done);
        }
        if let Err(e) = self.repo.update(&id, undo).await {
            tracing::error!(target = %id, error = %e, "crudauth: a refused removal of the last superuser could not be undone");
            return Err(repo_fault(e));
        }
        match left {
            Ok(_) => Err(AuthError::BadRequest(LAST_SUPERUSER)),
            Err(e) => Err(repo_fault(e)),
        }
    }
}
