//! Sudo mode: a short-lived elevation stamped on a server-side session after the user typed
//! their password again, required by [`RequireSudo`] (or [`crate::Gate::sudo`]) for
//! dangerous operations.
//!
//! - Only session principals can be elevated; a bearer token never can (403).
//! - The stamp lives in the session record, so it dies with the session (logout, revocation,
//!   password change elsewhere).
//! - Attempts have their own lockout, keyed by user: each attempt is counted *before* the
//!   password is checked, so concurrent guesses share the budget; with defaults the third
//!   wrong password locks elevation for 15 minutes (429 `Too many attempts. Try again
//!   later.` with `Retry-After`), and a locked user cannot elevate even with the right
//!   password.

use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::clock::now_secs;
use crate::error::AuthError;
use crate::facade::{ClientMeta, CrudAuth};
use crate::hooks::UserEvent;
use crate::keys::hmac_hex;
use crate::lockout::ceil_secs;
use crate::principal::{Principal, Transport};
use crate::user::UserRecord;

/// Sudo settings.
///
/// ```
/// let c = crudauth::SudoConfig::default();
/// assert_eq!(c.window.as_secs(), 300);
/// assert_eq!(c.max_attempts, 3);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SudoConfig {
    /// How long an elevation lasts (default 5 minutes).
    pub window: Duration,
    /// Wrong passwords allowed before the lock (default 3: the third wrong one locks).
    pub max_attempts: u32,
    /// How long the lock lasts, and how long failures are remembered (default 15 minutes).
    pub lockout: Duration,
}

impl Default for SudoConfig {
    fn default() -> Self {
        SudoConfig {
            window: Duration::from_secs(300),
            max_attempts: 3,
            lockout: Duration::from_secs(900),
        }
    }
}

impl SudoConfig {
    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.window.is_zero() || self.lockout.is_zero() || self.max_attempts == 0 {
            return Err(crate::ConfigError::Invalid(
                "sudo: window, lockout and max_attempts must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// The sudo service of a [`CrudAuth`], from [`CrudAuth::sudo`].
///
/// ```no_run
/// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, principal: crudauth::Principal<U>) -> Result<(), crudauth::AuthError> {
/// let sudo: crudauth::sudo::Sudo<'_, U> = auth.sudo();
/// # let client = crudauth::ClientMeta::default();
/// sudo.elevate(&principal, "my password again", &client).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Sudo<'a, U> {
    auth: &'a CrudAuth<U>,
}

impl<U: UserRecord> CrudAuth<U> {
    /// The sudo service.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, principal: crudauth::Principal<U>) -> Result<(), crudauth::AuthError> {
    /// # let client = crudauth::ClientMeta::default();
    /// let until = auth.sudo().elevate(&principal, "my password again", &client).await?;
    /// # Ok(()) }
    /// ```
    pub fn sudo(&self) -> Sudo<'_, U> {
        Sudo { auth: self }
    }
}

fn fault(e: crate::store::StoreError) -> AuthError {
    crate::store::report_fault("sudo store", &e);
    AuthError::Unavailable
}

/// A successful elevation: the session's new id and when the elevation ends.
///
/// ```no_run
/// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, principal: crudauth::Principal<U>, client: crudauth::ClientMeta) -> Result<(), crudauth::AuthError> {
/// let elevated = auth.sudo().elevate(&principal, "my password again", &client).await?;
/// // send `elevated.session.id` as the session cookie; elevated until `elevated.until`
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Elevated {
    /// The unix second the elevation ends.
    pub until: i64,
    /// The session under its new id.
    pub session: crate::session::RotatedSession,
}

impl<U: UserRecord> Sudo<'_, U> {
    /// Re-checks the password and moves the principal's session to a new id, stamped as
    /// elevated; returns the new session (set its `id` as the session cookie: the old id
    /// is dead) and the unix second the elevation ends. 403 for a bearer principal, 401 `Incorrect password`,
    /// 429 when locked.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, principal: crudauth::Principal<U>) -> Result<(), crudauth::AuthError> {
    /// # let client = crudauth::ClientMeta::default();
    /// auth.sudo().elevate(&principal, "my password again", &client).await?;
    /// # Ok(()) }
    /// ```
    pub async fn elevate(
        &self,
        principal: &Principal<U>,
        password: &str,
        client: &ClientMeta,
    ) -> Result<Elevated, AuthError> {
        let auth = self.auth;
        let config = auth.sudo_config();
        let (Transport::Session, Some(handle), Some(sessions)) = (
            principal.via,
            principal.session_handle.as_deref(),
            auth.sessions(),
        ) else {
            return Err(AuthError::Forbidden(
                "Sudo requires a session-backed login.",
            ));
        };
        let store = auth.store();
        let who = hmac_hex(auth.store_key(), principal.user_id.to_string().as_bytes());
        let lock_key = format!("sudo:lock:{who}");
        let fail_key = format!("sudo:fail:{who}");
        if let Some(left) = store.ttl(&lock_key).await.map_err(fault)? {
            return Err(AuthError::TooManyAttempts {
                retry_after: ceil_secs(left),
            });
        }
        // Sudo is a password path like any other: it draws on the account's login lockout
        // budget too (a 429 there is answered as the login lockout answers it).
        let attempt = auth
            .count_account_attempt(principal.user.as_ref(), client)
            .await?;
        // Counted before the check, so concurrent guesses share one budget.
        let count = store
            .incr(&fail_key, 1, config.lockout)
            .await
            .map_err(fault)?;
        let over = count > i64::from(config.max_attempts);
        let matched = if over {
            false
        } else {
            match auth
                .passwords()
                .try_verify(password, principal.user.password_hash())
                .await
            {
                Ok(v) => v.matched,
                Err(e) => {
                    // Refused before any hashing: neither budget is spent.
                    auth.lockout().refund(attempt).await;
                    store
                        .incr(&fail_key, -1, config.lockout)
                        .await
                        .map_err(fault)?;
                    return Err(crate::facade::busy(e));
                }
            }
        };
        if !matched {
            if over || count >= i64::from(config.max_attempts) {
                store
                    .set(&lock_key, b"1", Some(config.lockout))
                    .await
                    .map_err(fault)?;
                store.delete(&fail_key).await.map_err(fault)?;
                // Whatever elevation the session had ends with the lock.
                sessions.modify(handle, |r| r.sudo_until = None).await?;
                return Err(AuthError::TooManyAttempts {
                    retry_after: config.lockout.as_secs().max(1),
                });
            }
            return Err(AuthError::Unauthorized("Incorrect password"));
        }
        auth.lockout().succeeded(attempt).await;
        store.delete(&fail_key).await.map_err(fault)?;
        // A lock set while this password was being checked wins over it.
        if let Some(left) = store.ttl(&lock_key).await.map_err(fault)? {
            return Err(AuthError::TooManyAttempts {
                retry_after: ceil_secs(left),
            });
        }
        // The stamp is written on the way to a new session id: the old id is never
        // elevated, so a copy of the cookie taken before the elevation opens nothing.
        let until = sessions.now_secs() + config.window.as_secs() as i64;
        let Some(moved) = sessions
            .rotate_with(handle, |r| r.sudo_until = Some(until))
            .await?
        else {
            return Err(AuthError::NotAuthenticated);
        };
        let handle = moved.handle.as_str();
        let ctx = crate::hooks::HookContext {
            transport: Some("session"),
            session_handle: Some(handle.to_owned()),
            ..Default::default()
        };
        auth.hooks()
            .fire(UserEvent::Sudo, &principal.user.contract(), &ctx)
            .await;
        Ok(Elevated {
            until,
            session: moved,
        })
    }
}

impl<U> Principal<U> {
    /// Whether the principal's session is elevated (sudo) right now. Always `false` for
    /// bearer principals.
    ///
    /// ```
    /// # use std::sync::Arc; use crudauth::{Principal, UserId, Transport};
    /// let p = Principal { user_id: UserId::Int(1), scopes: vec![], via: Transport::Bearer, user: Arc::new(()),
    ///     is_superuser: false, email_verified: false, session_handle: None, signed_in_at: None, sudo_until: None };
    /// assert!(!p.is_elevated());
    /// ```
    pub fn is_elevated(&self) -> bool {
        self.via == Transport::Session && self.sudo_until.is_some_and(|until| until > now_secs())
    }

    /// 403 `Re-authentication required.` unless elevated (for [`RequireSudo`] and
    /// [`crate::Gate::sudo`] alike).
    pub(crate) fn require_elevated(&self) -> Result<(), AuthError> {
        if self.is_elevated() {
            Ok(())
        } else {
            Err(AuthError::Forbidden("Re-authentication required."))
        }
    }
}

/// A principal whose session is elevated: 403 `Re-authentication required.` otherwise.
///
/// ```no_run
/// # #[derive(Clone)] struct User;
/// # impl crudauth::UserRecord for User {
/// #   fn user_id(&self) -> crudauth::UserId { crudauth::UserId::Int(1) }
/// #   fn email(&self) -> Option<&str> { None } fn username(&self) -> Option<&str> { None }
/// #   fn password_hash(&self) -> Option<&str> { None } fn is_active(&self) -> bool { true }
/// #   fn is_superuser(&self) -> bool { false } fn email_verified(&self) -> bool { false }
/// #   fn token_version(&self) -> Option<i64> { None } }
/// async fn delete_account(crudauth::RequireSudo(p): crudauth::RequireSudo<User>) -> &'static str {
///     "gone"
/// }
/// ```
#[derive(Clone, Debug)]
pub struct RequireSudo<U>(pub Principal<U>);

impl<S, U> FromRequestParts<S> for RequireSudo<U>
where
    S: Send + Sync,
    U: UserRecord,
    CrudAuth<U>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal =
            <Principal<U> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        principal.require_elevated()?;
        Ok(RequireSudo(principal))
    }
}
