//! Sudo mode: a short-lived elevation stamped on a server-side session after the user typed
//! their password again, required by [`crate::RequireSudo`] (or [`crate::Gate::sudo`]) for
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

use std::sync::Arc;
use std::time::Duration;

use crate::client_ip::ClientMeta;
use crate::core::Core;
use crate::error::AuthError;
use crate::hooks::{Event, HookContext};
use crate::lockout::Strikes;
use crate::login::{Login, busy};
use crate::principal::{Principal, Transport};
use crate::session::RotatedSession;
use crate::user::UserRecord;

pub use crate::principal::RequireSudo;

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

/// The sudo service. Reached as `auth.sudo()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
/// # let principal = crudauth::doc_fixture::session_principal(&auth).await?;
/// let elevated = auth.sudo().elevate(&principal, "correct horse battery staple", &client).await?;
/// assert!(elevated.until > 0);
/// # Ok(()) });
/// ```
pub struct Sudo<U> {
    core: Arc<Core<U>>,
    login: Login<U>,
    config: SudoConfig,
    strikes: Strikes,
}

impl<U> Clone for Sudo<U> {
    fn clone(&self) -> Self {
        Sudo {
            core: self.core.clone(),
            login: self.login.clone(),
            config: self.config,
            strikes: self.strikes.clone(),
        }
    }
}

impl<U> std::fmt::Debug for Sudo<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sudo")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A successful elevation: the session's new id and when the elevation ends.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
/// # let principal = crudauth::doc_fixture::session_principal(&auth).await?;
/// let elevated = auth.sudo().elevate(&principal, "correct horse battery staple", &client).await?;
/// // Send `elevated.session.id` as the session cookie; elevated until `elevated.until`.
/// assert_eq!(elevated.session.record.sudo_until, Some(elevated.until));
/// # Ok(()) });
/// ```
#[derive(Debug)]
pub struct Elevated {
    /// The unix second the elevation ends.
    pub until: i64,
    /// The session under its new id.
    pub session: RotatedSession,
}

impl<U: UserRecord> Sudo<U> {
    pub(crate) fn new(core: Arc<Core<U>>, login: Login<U>, config: SudoConfig) -> Self {
        let strikes = core
            .lockout
            .strikes("sudo", config.max_attempts, config.lockout);
        Sudo {
            core,
            login,
            config,
            strikes,
        }
    }

    /// The settings.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert_eq!(auth.sudo().config().max_attempts, 3);
    /// # Ok(()) });
    /// ```
    pub fn config(&self) -> &SudoConfig {
        &self.config
    }

    /// Re-checks the password and moves the principal's session to a new id, stamped as
    /// elevated; returns the new session (set its `id` as the session cookie: the old id
    /// is dead) and the unix second the elevation ends. 403 for a bearer principal, 401
    /// `Incorrect password`, 429 when locked.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
    /// # let principal = crudauth::doc_fixture::session_principal(&auth).await?;
    /// let wrong = auth.sudo().elevate(&principal, "not my password", &client).await;
    /// assert!(matches!(wrong, Err(crudauth::AuthError::Unauthorized("Incorrect password"))));
    /// let elevated = auth.sudo().elevate(&principal, "correct horse battery staple", &client).await?;
    /// assert_eq!(elevated.session.record.sudo_until, Some(elevated.until));
    /// # Ok(()) });
    /// ```
    pub async fn elevate(
        &self,
        principal: &Principal<U>,
        password: &str,
        client: &ClientMeta,
    ) -> Result<Elevated, AuthError> {
        let hash = principal.user.password_hash();
        let passwords = &self.core.passwords;
        let check = async || {
            passwords
                .try_verify(password, hash)
                .await
                .map(|v| v.matched)
                .map_err(busy)
        };
        self.elevate_with(principal, client, "Incorrect password", check)
            .await
    }

    /// [`Sudo::elevate`] with another check of the person than the password (a second
    /// factor's code): the same strikes, lock and lockout budget; `wrong` is the 401's
    /// message. A check that fails (`Err`) spends neither budget.
    pub(crate) async fn elevate_with(
        &self,
        principal: &Principal<U>,
        client: &ClientMeta,
        wrong: &'static str,
        check: impl AsyncFnOnce() -> Result<bool, AuthError>,
    ) -> Result<Elevated, AuthError> {
        // An impersonating superuser never holds the user's sudo window.
        principal.refuse_delegated()?;
        let (Transport::Session, Some(handle), Some(sessions)) = (
            principal.via,
            principal.session_handle.as_deref(),
            self.core.sessions.as_ref(),
        ) else {
            return Err(AuthError::Forbidden(
                "Sudo requires a session-backed login.",
            ));
        };
        let who = principal.user_id.to_string();
        self.strikes.check_unlocked(&who).await?;
        // Sudo is a password path like any other: it draws on the account's login lockout
        // budget too (a 429 there is answered as the login lockout answers it).
        let attempt = self
            .login
            .count_account_attempt(principal.user.as_ref(), client)
            .await?;
        // Counted before the check, so concurrent guesses share one budget.
        let strike = self.strikes.count(&who).await?;
        let matched = if strike.over {
            false
        } else {
            match check().await {
                Ok(matched) => matched,
                Err(e) => {
                    // Refused before anything was checked: neither budget is spent.
                    self.core.lockout.refund(attempt).await;
                    self.strikes.give_back(&who).await?;
                    return Err(e);
                }
            }
        };
        if !matched {
            if strike.is_last(self.strikes.max()) {
                let locked = self.strikes.lock(&who).await?;
                // Whatever elevation the session had ends with the lock.
                sessions.modify(handle, |r| r.sudo_until = None).await?;
                return Err(locked);
            }
            return Err(AuthError::Unauthorized(wrong));
        }
        self.core.lockout.succeeded(attempt).await;
        self.strikes.clear(&who).await?;
        // A lock set while this password was being checked wins over it.
        self.strikes.check_unlocked(&who).await?;
        // The stamp is written on the way to a new session id: the old id is never
        // elevated, so a copy of the cookie taken before the elevation opens nothing.
        let until = sessions.now_secs() + self.config.window.as_secs() as i64;
        let Some(moved) = sessions
            .rotate_with(handle, |r| r.sudo_until = Some(until))
            .await?
        else {
            return Err(AuthError::NotAuthenticated);
        };
        let ctx = HookContext {
            transport: Some("session"),
            session_handle: Some(moved.handle.clone()),
            ..Default::default()
        };
        self.core
            .hooks
            .fire_user(Event::AfterSudo, principal.user.clone(), &ctx)
            .await;
        Ok(Elevated {
            until,
            session: moved,
        })
    }
}
