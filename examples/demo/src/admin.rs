//! `crudauth-demo create-admin [--promote] [--database URL]`: makes a superuser from an
//! address and a password typed at the prompt (read without echo from a terminal, or one
//! line each from standard input when it is not a terminal, as in scripts and tests), so no
//! admin password needs to sit in an environment variable.
//!
//! The password is checked against the server's policy. A new account is created active,
//! verified and a superuser. An address that already has an account is refused, unless
//! `--promote` is given: then that account becomes an active, verified superuser *with the
//! typed password*, and every session and token it had ends (whoever registered the address
//! first keeps nothing). The accounts table keeps that epoch in the store: give the same
//! `--store` (database or redis) as the running servers so they see it at once; with the
//! memory store a running server learns of it only when its user cache lets the row go, and
//! the old sessions die with its restart. The `CRUDAUTH_DEFAULT_ADMIN_EMAIL` / `_PASSWORD`
//! start-up admin stays as it is.

use std::io::{BufRead, IsTerminal, Write};

use crudauth::policy::{PasswordContext, PasswordSource};
use crudauth::user::{NewUser, UserUpdate, normalize_email};
use crudauth::{CrudAuth, UserRecord};

use crate::User;

type Failure = Box<dyn std::error::Error>;

/// One answer: without echo from a terminal, else the next line of standard input.
fn ask(prompt: &str, secret: bool) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        if secret {
            return Ok(rpassword::prompt_password(prompt)?);
        }
        eprint!("{prompt}");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    if stdin.lock().read_line(&mut line)? == 0 {
        return Err(format!("{}: no input", prompt.trim_end_matches([':', ' '])).into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Runs the command against the demo's configured auth.
pub async fn create_admin(auth: &CrudAuth<User>, promote: bool) -> Result<(), Failure> {
    let email = normalize_email(ask("Admin email: ", false)?.trim());
    let (local, domain) = email.split_once('@').unwrap_or_default();
    if local.is_empty() || !domain.contains('.') || email.chars().count() > 254 {
        return Err(format!("{email:?} is not an email address").into());
    }
    let password = ask("Password: ", true)?;
    let again = ask("Password (again): ", true)?;
    if password != again {
        return Err("the passwords differ".into());
    }
    let ctx = PasswordContext {
        source: PasswordSource::Admin,
        username: None,
        email: Some(email.clone()),
    };
    if let Err(crudauth::AuthError::Validation(issues)) = auth
        .login()
        .validate_password(&password, &ctx, "password")
        .await
    {
        let reasons: Vec<String> = issues.into_iter().map(|i| i.msg).collect();
        return Err(format!("the password is refused: {}", reasons.join("; ")).into());
    }
    let hash = auth.passwords().hash(&password).await?;
    let repo = auth.repo();
    let user = match repo.find_by_recovery(&email).await? {
        Some(_) if !promote => {
            return Err(format!(
                "an account with {email} exists; run `create-admin --promote` to make it a \
                 superuser with the password typed here"
            )
            .into());
        }
        Some(existing) if !existing.email_verified() => {
            // Whoever registered an address first need not own it (a provider link, a
            // passkey or a phone they added would still sign them in): only an account
            // whose owner proved the address is promoted.
            return Err(format!(
                "the account with {email} never verified its address: verify it first (or                  delete the account), then promote"
            )
            .into());
        }
        Some(existing) => {
            let id = existing.user_id();
            // The hash and the epoch (the accounts table keeps it in the store) move first:
            // every earlier session and token of the account ends before it is a superuser.
            repo.replace_password_hash(&id, &hash).await?;
            let current = repo.find_by_id(&id).await?.ok_or("the account vanished")?;
            auth.revocation().bump(&current).await?;
            let update = UserUpdate {
                is_superuser: Some(true),
                is_active: Some(true),
                ..Default::default()
            };
            repo.update(&id, update).await?;
            let promoted = repo.find_by_id(&id).await?.ok_or("the account vanished")?;
            println!("promoted {email} (id {id}) to superuser");
            promoted
        }
        None => {
            let mut new = NewUser::new(hash).email(&email);
            new.is_superuser = true;
            new.email_verified = true;
            let created = repo.create(new).await?;
            println!("created superuser {email} (id {})", created.user_id());
            created
        }
    };
    tracing::warn!(admin = %user.user_id(), promote, "crudauth-demo create-admin made a superuser");
    Ok(())
}
