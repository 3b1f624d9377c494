//! The default administrator: created, or an existing account promoted, from an address
//! and a password at start-up (the demo calls it with `CRUDAUTH_DEFAULT_ADMIN_EMAIL` /
//! `_PASSWORD`; reached as `auth.ensure_admin(..)`).

use crate::core::Core;
use crate::error::AuthError;
use crate::login::Login;
use crate::policy::{PasswordContext, PasswordSource};
use crate::store::repo_fault;
use crate::user::{LogicalField, NewUser, RepoError, UserRecord, UserUpdate};

/// The superuser flag is read through a function only: crudauth cannot make anyone one.
const READ_ONLY: AuthError = AuthError::BadRequest(
    "the superuser column is read through a function only: make the admin in the database",
);

/// Creates the administrator, or promotes an existing account, from an email and a
/// password (the demo calls it with `CRUDAUTH_DEFAULT_ADMIN_EMAIL` / `_PASSWORD`). An
/// existing account with that address is promoted only if the password is its own; its
/// password is left alone.
pub(crate) async fn ensure_admin<U: UserRecord>(
    core: &Core<U>,
    login: &Login<U>,
    email: &str,
    password: &str,
) -> Result<U, AuthError> {
    let repo = &core.repo;
    let schema = *repo.schema();
    if !schema.has(LogicalField::IsSuperuser) {
        return Err(AuthError::BadRequest(
            "the user table has no superuser column",
        ));
    }
    // Matched on the recovery field only (never a username that merely looks like the
    // address), and promoted only when the given password is the account's own: whoever
    // registered the admin's address first gains nothing from a restart.
    let existing = if schema.recovery.is_some() {
        repo.find_by_recovery(email).await
    } else {
        repo.find_by_login(email).await
    }
    .map_err(repo_fault)?;
    if let Some(user) = existing {
        if user.is_superuser() {
            return Ok(user);
        }
        if !schema.writable(LogicalField::IsSuperuser) {
            return Err(READ_ONLY);
        }
        if !core
            .passwords
            .verify(password, user.password_hash())
            .await
            .matched
        {
            tracing::error!(
                "crudauth: an account with the admin address exists but its password is not \
                 the configured admin password; refusing to promote it"
            );
            return Err(AuthError::Forbidden("Insufficient privileges"));
        }
        let update = UserUpdate {
            is_superuser: Some(true),
            ..Default::default()
        };
        let promoted = repo
            .update(&user.user_id(), update)
            .await
            .map_err(repo_fault)?;
        core.revocation.changed(&promoted.user_id()).await?;
        return Ok(promoted);
    }
    if !schema.writable(LogicalField::IsSuperuser) {
        return Err(READ_ONLY);
    }
    let ctx = PasswordContext {
        source: PasswordSource::Admin,
        username: None,
        email: Some(email.to_owned()),
    };
    if login
        .validate_password(password, &ctx, "password")
        .await
        .is_err()
    {
        return Err(AuthError::BadRequest(
            "the admin password does not meet the password policy",
        ));
    }
    let hash = core
        .passwords
        .hash(password)
        .await
        .map_err(|_| AuthError::BadRequest("the admin password is too long"))?;
    let mut new = NewUser::new(hash).email(email);
    new.is_superuser = true;
    new.email_verified = true;
    if schema.has(LogicalField::Username) {
        new.username = Some(email.split('@').next().unwrap_or(email).to_owned());
    }
    match repo.create(new.clone()).await {
        Err(RepoError::Duplicate { field }) if field == "username" => {
            // The address's local part is someone's username: add a random suffix.
            let suffix = &crate::keys::random_token()[..6];
            new.username = new.username.map(|u| format!("{u}-{suffix}"));
            repo.create(new).await.map_err(repo_fault)
        }
        other => other.map_err(repo_fault),
    }
}
