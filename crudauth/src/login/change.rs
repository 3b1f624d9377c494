//! Password changes: the policy check, the re-check of the current password, and the one
//! write that replaces a hash and moves the revocation epoch with it.

use std::time::Duration;

use super::{Login, busy, repo_fault};
use crate::client_ip::ClientMeta;
use crate::error::{AuthError, ValidationIssue};
use crate::hooks::Event;
use crate::password::{PasswordError, is_unusable_password};
use crate::policy::{PasswordContext, PasswordSource};
use crate::principal::{Principal, Transport};
use crate::session::RotatedSession;
use crate::user::{RepoError, UserRecord};

impl<U: UserRecord> Login<U> {
    /// Checks a new password against the policy: `Err(Validation)` with one entry per
    /// unmet rule, on `field`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use crudauth::policy::{PasswordContext, PasswordSource};
    /// let ctx = PasswordContext { source: PasswordSource::Set, username: None, email: Some("ann@example.com".into()) };
    /// auth.login().validate_password("mauve staple orbit", &ctx, "password").await?;
    /// assert!(auth.login().validate_password("short", &ctx, "password").await.is_err()); // under 8 characters
    /// # Ok(()) });
    /// ```
    pub async fn validate_password(
        &self,
        password: &str,
        ctx: &PasswordContext,
        field: &str,
    ) -> Result<(), AuthError> {
        let mut issues = Vec::new();
        self.check_password(field, password, ctx, &mut issues).await;
        if issues.is_empty() {
            Ok(())
        } else {
            Err(AuthError::Validation(issues))
        }
    }

    /// The policy check, adding its issues to `issues` (routes gather every field's issues
    /// into one 422).
    pub(crate) async fn check_password(
        &self,
        field: &str,
        password: &str,
        ctx: &PasswordContext,
        issues: &mut Vec<ValidationIssue>,
    ) {
        let core = &self.core;
        let max = core
            .policy
            .max_length
            .unwrap_or(core.passwords.max_length());
        // Over the hasher's cap: refused before it is normalised.
        let Some(normalized) = core.passwords.normalize(password) else {
            issues.push(ValidationIssue::too_long(field, max));
            return;
        };
        core.policy
            .check(field, &normalized, max, ctx, issues)
            .await;
    }

    /// Re-checks the signed-in user's password on a sensitive route. It is a password path
    /// like `/login`: it draws on the same lockout budget as every other path that checks
    /// this account's password (keyed by this client and this account), so a stolen session
    /// or token is no unthrottled password oracle. `wrong` is the answer for a wrong
    /// password.
    pub(crate) async fn check_current_password(
        &self,
        principal: &Principal<U>,
        password: &str,
        client: &ClientMeta,
        wrong: AuthError,
    ) -> Result<(), AuthError> {
        let core = &self.core;
        let attempt = self
            .count_account_attempt(principal.user.as_ref(), client)
            .await?;
        let hash = principal.user.password_hash();
        let verification = match core.passwords.try_verify(password, hash).await {
            Ok(v) => v,
            Err(e) => {
                core.lockout.refund(attempt).await;
                return Err(busy(e));
            }
        };
        if !verification.matched {
            return Err(wrong);
        }
        core.lockout.succeeded(attempt).await;
        Ok(())
    }

    /// Hashes a password that passed the policy (422 on `field` if over the cap).
    pub(crate) async fn hash_new_password(
        &self,
        password: &str,
        field: &str,
    ) -> Result<String, AuthError> {
        self.core
            .passwords
            .hash(password)
            .await
            .map_err(|e| match e {
                PasswordError::TooLong { max } => {
                    AuthError::Validation(vec![ValidationIssue::too_long(field, max)])
                }
                other => busy(other),
            })
    }

    /// Stores a new password hash and ends every earlier token and every session of the
    /// user; the session `keep` (the one that made the change) lives on under a new id,
    /// bound to the new epoch, and is returned (set its `id` as the session cookie).
    ///
    /// The hash and the epoch move together, so no login can check the old password and
    /// carry the new epoch (DESIGN 6.6): with a `token_version` column they are one `UPDATE`
    /// ([`crate::UserRepository::replace_password_hash`]). With a store-kept epoch the epoch
    /// is bumped before the write (a failed write leaves the old credentials dead, never
    /// alive) and again after it, and a login reads the epoch *before* it re-reads the hash
    /// it checks (see [`Login::authenticate_password`]): a login that saw the old hash read
    /// its epoch before the second bump, and dies with it.
    ///
    /// The kept session's old id is never valid under the new epoch: it keeps the old
    /// epoch (dead from the bump on) until the rotation moves the record, rebound, to the
    /// new id (DESIGN 6.12).
    pub(crate) async fn replace_password(
        &self,
        user: &U,
        hash: &str,
        keep: Option<&str>,
    ) -> Result<Option<RotatedSession>, AuthError> {
        let core = &self.core;
        let id = user.user_id();
        let store_kept = core.revocation.store_kept();
        if store_kept {
            core.revocation.bump_store(&id).await?;
        }
        let written = match core.repo.replace_password_hash(&id, hash).await {
            Ok(v) => v,
            Err(RepoError::Backend(e)) => return Err(repo_fault(RepoError::Backend(e))),
            Err(_) => return Err(AuthError::NotAuthenticated),
        };
        // The announcement (the generation move) is made after the write; if it fails, the
        // sessions are still revoked below before the failure is answered.
        let (epoch, announced) = match written {
            Some(v) => (v, core.revocation.changed(&id).await),
            None => (core.revocation.bump_store(&id).await?, Ok(())),
        };
        let Some(sessions) = &core.sessions else {
            announced?;
            return Ok(None);
        };
        sessions.revoke_all(&id.to_string(), keep).await?;
        announced?;
        let Some(handle) = keep else {
            return Ok(None);
        };
        // If the session cannot be moved (it ended meanwhile), it simply ends with the
        // others: the safe outcome.
        let moved = sessions.rotate_with(handle, |r| r.epoch = epoch).await?;
        if moved.is_none() {
            tracing::info!("session ended during a password change");
        }
        Ok(moved)
    }

    /// Changes the signed-in user's password (`/change-password`): the new password
    /// against the policy, the current one re-checked (on the account's lockout budget),
    /// then [`Login::replace_password`] and `on_after_password_changed`. Returns the moved
    /// session, if the principal's session was kept.
    pub(crate) async fn change_password(
        &self,
        principal: &Principal<U>,
        current: &str,
        new: &str,
        client: &ClientMeta,
    ) -> Result<Option<RotatedSession>, AuthError> {
        principal.refuse_delegated()?;
        let user = principal.user.as_ref();
        if is_unusable_password(user.password_hash().unwrap_or_default()) {
            return Err(AuthError::BadRequest(
                "Account has no password; use the set-password or reset flow.",
            ));
        }
        let wrong = AuthError::Unauthorized("Current password is incorrect.");
        self.check_current_password(principal, current, client, wrong)
            .await?;
        let hash = self.hash_new_password(new, "new_password").await?;
        let moved = self
            .replace_password(user, &hash, principal.session_handle.as_deref())
            .await?;
        self.password_changed(principal, client).await;
        Ok(moved)
    }

    async fn password_changed(&self, principal: &Principal<U>, client: &ClientMeta) {
        let ctx = client.hook_context(Some(principal.via.as_str()));
        let user = self.reload(principal.user.as_ref()).await;
        self.core
            .hooks
            .fire_user(Event::AfterPasswordChanged, user.into(), &ctx)
            .await;
    }

    /// `403` unless the principal's session signed in within the fresh sign-in window or is
    /// elevated (sudo): for `/set-password` and linking or unlinking a provider.
    pub(crate) fn require_recent_sign_in(&self, principal: &Principal<U>) -> Result<(), AuthError> {
        // An impersonation began recently, but it is no sign-in of the user's.
        principal.refuse_delegated()?;
        let core = &self.core;
        let fresh: Duration = core.fresh_sign_in;
        // The session manager's clock: the one its sign-in times were written with.
        let now = core
            .sessions
            .as_ref()
            .map_or_else(crate::clock::system_secs, |s| s.now_secs());
        let recent = principal.via == Transport::Session
            && (principal.is_elevated()
                || principal
                    .signed_in_at
                    .is_some_and(|at| now - at <= fresh.as_secs() as i64));
        if recent {
            Ok(())
        } else {
            Err(AuthError::Forbidden(
                "Sign in again to continue: this needs a recent sign-in.",
            ))
        }
    }

    /// Sets a first password on an account that has none (signed up by a link or a
    /// provider): only from a recent session sign-in (or an elevated session), under the
    /// policy. Returns the moved session, which the caller sets as the cookie.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
    /// # let unusable = crudauth::password::make_unusable_password();
    /// # auth.repo().create(crudauth::NewUser::new(unusable).email("bob@example.com").username("bob")).await?;
    /// // Bob signed up by a link and has no password yet; he signed in a moment ago.
    /// # let p = crudauth::doc_fixture::session_principal_of(&auth, "bob").await?;
    /// let moved = auth.login().set_password(&p, "mauve staple orbit", &client).await?;
    /// assert!(moved.is_some()); // the session moved to a new id: set it as the cookie
    /// # Ok(()) });
    /// ```
    pub async fn set_password(
        &self,
        principal: &Principal<U>,
        new_password: &str,
        client: &ClientMeta,
    ) -> Result<Option<RotatedSession>, AuthError> {
        let user = principal.user.as_ref();
        self.require_recent_sign_in(principal)?;
        let ctx = PasswordContext::for_user(PasswordSource::Set, user);
        self.validate_password(new_password, &ctx, "new_password")
            .await?;
        if !is_unusable_password(user.password_hash().unwrap_or_default()) {
            return Err(AuthError::BadRequest(
                "Account already has a password; use the password reset flow to change it.",
            ));
        }
        let hash = self.hash_new_password(new_password, "new_password").await?;
        let moved = self
            .replace_password(user, &hash, principal.session_handle.as_deref())
            .await?;
        self.password_changed(principal, client).await;
        Ok(moved)
    }
}
