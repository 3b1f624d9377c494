//! Lifecycle hooks: async closures the facade calls after auth events.
//!
//! Hooks observe; they never break the flow they observe. A hook that fails or panics is
//! logged (target `crudauth::hooks`) and the request completes as if it had succeeded.

use std::future::Future;
use std::sync::Arc;

use crate::user::UserContract;

/// The error type hooks return.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture = crate::user::BoxFuture<'static, Result<(), HookError>>;

/// Where an event happened.
///
/// ```
/// let ctx = crudauth::HookContext::default();
/// assert!(ctx.ip.is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct HookContext {
    /// The client address.
    pub ip: Option<String>,
    /// The User-Agent.
    pub user_agent: Option<String>,
    /// `session` or `bearer`, when a transport is involved.
    pub transport: Option<&'static str>,
    /// The session's public handle, for session events.
    pub session_handle: Option<String>,
}

/// Why a password login was refused (for `on_login_failed`).
///
/// ```
/// assert_eq!(crudauth::LoginFailure::InvalidCredentials.as_str(), "invalid_credentials");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown identifier or wrong password.
    InvalidCredentials,
    /// The account is disabled.
    Inactive,
}

impl LoginFailure {
    /// The reason as the original names it.
    ///
    /// ```
    /// assert_eq!(crudauth::LoginFailure::Inactive.as_str(), "inactive");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::InvalidCredentials => "invalid_credentials",
            LoginFailure::Inactive => "inactive",
        }
    }
}

pub(crate) type UserHook = Arc<dyn Fn(UserContract, HookContext) -> BoxFuture + Send + Sync>;
pub(crate) type FailedHook =
    Arc<dyn Fn(String, Option<UserContract>, LoginFailure, HookContext) -> BoxFuture + Send + Sync>;
pub(crate) type LockoutHook = Arc<dyn Fn(String, u64, HookContext) -> BoxFuture + Send + Sync>;

/// The user events hooks observe.
#[derive(Clone, Copy, Debug)]
pub(crate) enum UserEvent {
    Registered,
    LoggedIn,
    LoggedOut,
    PasswordChanged,
    RecoveryVerified,
    PasswordReset,
    EmailChanged,
    Sudo,
}

/// The registered hooks. Built through the `on_*` methods of [`crate::CrudAuthBuilder`].
#[derive(Clone, Default)]
pub struct Hooks {
    pub(crate) after_register: Vec<UserHook>,
    pub(crate) after_login: Vec<UserHook>,
    pub(crate) login_failed: Vec<FailedHook>,
    pub(crate) lockout: Vec<LockoutHook>,
    pub(crate) after_logout: Vec<UserHook>,
    pub(crate) after_password_changed: Vec<UserHook>,
    pub(crate) after_recovery_verified: Vec<UserHook>,
    pub(crate) after_password_reset: Vec<UserHook>,
    pub(crate) after_email_changed: Vec<UserHook>,
    pub(crate) after_sudo: Vec<UserHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

pub(crate) fn boxed<F, Fut, A, B>(hook: F) -> Arc<dyn Fn(A, B) -> BoxFuture + Send + Sync>
where
    F: Fn(A, B) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HookError>> + Send + 'static,
{
    Arc::new(move |a, b| Box::pin(hook(a, b)))
}

/// Runs one hook future in its own task, so a panic is contained, and logs any failure.
pub(crate) async fn run(event: &'static str, fut: BoxFuture) {
    match tokio::spawn(fut).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(target: "crudauth::hooks", event, error = %e, "hook failed"),
        Err(e) => tracing::error!(target: "crudauth::hooks", event, error = %e, "hook panicked"),
    }
}

impl Hooks {
    pub(crate) async fn fire(&self, event: UserEvent, user: &UserContract, ctx: &HookContext) {
        let (name, hooks) = match event {
            UserEvent::Registered => ("on_after_register", &self.after_register),
            UserEvent::LoggedIn => ("on_after_login", &self.after_login),
            UserEvent::LoggedOut => ("on_after_logout", &self.after_logout),
            UserEvent::PasswordChanged => {
                ("on_after_password_changed", &self.after_password_changed)
            }
            UserEvent::RecoveryVerified => {
                ("on_after_recovery_verified", &self.after_recovery_verified)
            }
            UserEvent::PasswordReset => ("on_after_password_reset", &self.after_password_reset),
            UserEvent::EmailChanged => ("on_after_email_changed", &self.after_email_changed),
            UserEvent::Sudo => ("on_after_sudo", &self.after_sudo),
        };
        self.user_event(name, hooks, user, ctx).await;
    }

    async fn user_event(
        &self,
        event: &'static str,
        hooks: &[UserHook],
        user: &UserContract,
        ctx: &HookContext,
    ) {
        for hook in hooks {
            run(event, hook(user.clone(), ctx.clone())).await;
        }
    }
}
