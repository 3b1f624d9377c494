//! Lifecycle hooks: async closures the library calls around auth events.
//!
//! Every hook is kept in one table keyed by its [`Event`] and fires through it, once per
//! event. A hook receives the application's own user model (`Arc<U>`, the type the
//! repository loads), so it can read any column without a second query; the contract view is
//! one call away (`user.contract()`).
//!
//! Observing hooks (`on_after_*`, `on_login_failed`, `on_lockout`) never break the flow
//! they observe: a hook that fails or panics is logged (target `crudauth::hooks`) and the
//! request completes as if it had succeeded. The two veto hooks (`on_before_register`,
//! `on_before_login`) may refuse with a [`Veto`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use crate::user::{BoxFuture, NewUser};

/// The error type hooks return.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type HookFuture = BoxFuture<'static, Result<(), HookError>>;
type VetoFuture = BoxFuture<'static, Result<(), Veto>>;

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
    /// The superuser acting, for `on_impersonation` (feature `admin`).
    pub impersonated_by: Option<String>,
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
    /// The password was right, but an `on_before_login` hook refused the sign-in.
    Refused,
}

impl LoginFailure {
    /// The reason as the original names it (`refused` is ours).
    ///
    /// ```
    /// assert_eq!(crudauth::LoginFailure::Refused.as_str(), "refused");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::InvalidCredentials => "invalid_credentials",
            LoginFailure::Inactive => "inactive",
            LoginFailure::Refused => "refused",
        }
    }
}

/// The events hooks observe: the keys of the hook table.
///
/// ```
/// assert_eq!(crudauth::hooks::Event::AfterLogin.hook_name(), "on_after_login");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// An account was created (`on_after_register`).
    AfterRegister,
    /// A sign-in completed (`on_after_login`).
    AfterLogin,
    /// A password login was refused (`on_login_failed`).
    LoginFailed,
    /// A login was refused by the lockout (`on_lockout`).
    Lockout,
    /// A session or refresh family was ended (`on_after_logout`).
    AfterLogout,
    /// The password was changed or set (`on_after_password_changed`).
    AfterPasswordChanged,
    /// The address was verified (`on_after_recovery_verified`).
    AfterRecoveryVerified,
    /// The password was reset (`on_after_password_reset`).
    AfterPasswordReset,
    /// The address was changed (`on_after_email_changed`).
    AfterEmailChanged,
    /// A session was elevated (`on_after_sudo`).
    AfterSudo,
    /// A provider sign-in resolved an active account (`on_oauth_login`).
    OAuthLogin,
    /// A second factor was enabled (`on_after_mfa_enabled`).
    AfterMfaEnabled,
    /// A second factor was disabled (`on_after_mfa_disabled`).
    AfterMfaDisabled,
    /// A superuser began acting as the user (`on_impersonation`; the context names them).
    Impersonation,
    /// A CLI device login was approved, rejected or redeemed (`on_device_login`).
    DeviceLogin,
}

impl Event {
    /// The builder method that registers hooks for this event.
    ///
    /// ```
    /// assert_eq!(crudauth::hooks::Event::Lockout.hook_name(), "on_lockout");
    /// ```
    pub fn hook_name(self) -> &'static str {
        match self {
            Event::AfterRegister => "on_after_register",
            Event::AfterLogin => "on_after_login",
            Event::LoginFailed => "on_login_failed",
            Event::Lockout => "on_lockout",
            Event::AfterLogout => "on_after_logout",
            Event::AfterPasswordChanged => "on_after_password_changed",
            Event::AfterRecoveryVerified => "on_after_recovery_verified",
            Event::AfterPasswordReset => "on_after_password_reset",
            Event::AfterEmailChanged => "on_after_email_changed",
            Event::AfterSudo => "on_after_sudo",
            Event::OAuthLogin => "on_oauth_login",
            Event::AfterMfaEnabled => "on_after_mfa_enabled",
            Event::AfterMfaDisabled => "on_after_mfa_disabled",
            Event::Impersonation => "on_impersonation",
            Event::DeviceLogin => "on_device_login",
        }
    }
}

/// A refusal from a veto hook (`on_before_register`, `on_before_login`).
///
/// For a registration it is answered as one FastAPI-shaped 422 entry on its field (the body
/// root when no field is named), so it tells nothing about existing accounts. For a login
/// the message is only logged: the client gets the answer a disabled account gets.
///
/// ```
/// let veto = crudauth::Veto::new("Sign-ups from this domain are closed").on_field("email");
/// assert_eq!(veto.message(), "Sign-ups from this domain are closed");
/// assert_eq!(veto.field(), Some("email"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veto {
    field: Option<String>,
    message: String,
}

impl Veto {
    /// A refusal with a message for the person.
    ///
    /// ```
    /// let veto = crudauth::Veto::new("Outside office hours");
    /// assert!(veto.field().is_none());
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Veto {
            field: None,
            message: message.into(),
        }
    }

    /// Names the body field the refusal is about (`email`, `username`, an extra field).
    ///
    /// ```
    /// assert_eq!(crudauth::Veto::new("no").on_field("email").field(), Some("email"));
    /// ```
    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The message.
    ///
    /// ```
    /// assert_eq!(crudauth::Veto::new("no").message(), "no");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field, if one is named.
    ///
    /// ```
    /// assert_eq!(crudauth::Veto::new("no").field(), None);
    /// ```
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl std::fmt::Display for Veto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What happened to a CLI device login, as `on_device_login` hooks hear it (feature
/// `device-login`).
///
/// ```
/// assert_eq!(crudauth::hooks::DeviceLoginAction::Redeemed.as_str(), "redeem");
/// ```
#[cfg(feature = "device-login")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceLoginAction {
    /// A browser user approved it (the user is the approver).
    Approved,
    /// A browser user rejected it.
    Rejected,
    /// The CLI got its token pair (the user is who it is signed in as).
    Redeemed,
}

#[cfg(feature = "device-login")]
impl DeviceLoginAction {
    /// The action's name, as the log lines write it.
    ///
    /// ```
    /// assert_eq!(crudauth::hooks::DeviceLoginAction::Approved.as_str(), "approve");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceLoginAction::Approved => "approve",
            DeviceLoginAction::Rejected => "reject",
            DeviceLoginAction::Redeemed => "redeem",
        }
    }
}

/// What an event carries to its hooks.
pub(crate) enum Payload<U> {
    /// The user the event is about.
    User(Arc<U>),
    /// A refused password login.
    LoginFailed {
        identifier: String,
        user: Option<Arc<U>>,
        reason: LoginFailure,
    },
    /// A provider sign-in: the provider's name, and whether the account was made now.
    #[cfg(feature = "oauth")]
    OAuthLogin {
        user: Arc<U>,
        provider: String,
        created: bool,
    },
    /// A CLI device login: the user who decided it (or is signed in by it), and what
    /// happened.
    #[cfg(feature = "device-login")]
    DeviceLogin {
        user: Arc<U>,
        action: DeviceLoginAction,
    },
    /// A login refused by the lockout (`user_id`: the account's, when the identifier names
    /// one; for the audit log only).
    Lockout {
        identifier: String,
        retry_after: u64,
        user_id: Option<String>,
    },
}

/// One registered hook: given an event's payload, the future to run (or `None` when the
/// payload is not of its shape, which the setters make impossible).
type Handler<U> = Arc<dyn Fn(&Payload<U>, HookContext) -> Option<HookFuture> + Send + Sync>;
type RegisterVeto = Arc<dyn Fn(NewUser, HookContext) -> VetoFuture + Send + Sync>;
type LoginVeto<U> = Arc<dyn Fn(Arc<U>, HookContext) -> VetoFuture + Send + Sync>;

/// The registered hooks: one table keyed by [`Event`], and the veto hooks. Built through the
/// `on_*` methods of the builder.
pub struct Hooks<U> {
    table: BTreeMap<Event, Vec<Handler<U>>>,
    before_register: Vec<RegisterVeto>,
    before_login: Vec<LoginVeto<U>>,
}

impl<U> Default for Hooks<U> {
    fn default() -> Self {
        Hooks {
            table: BTreeMap::new(),
            before_register: Vec::new(),
            before_login: Vec::new(),
        }
    }
}

impl<U> std::fmt::Debug for Hooks<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("events", &self.table.keys().collect::<Vec<_>>())
            .field("before_register", &self.before_register.len())
            .field("before_login", &self.before_login.len())
            .finish()
    }
}

/// The audit record of a fired event: its stable name, outcome, user and context. Ids only,
/// never the identifier typed, a token or a code.
fn audit<U: crate::user::UserRecord>(event: Event, payload: &Payload<U>, ctx: &HookContext) {
    use crate::audit::{AuditEvent, Outcome};
    let (name, outcome, user, reason): (_, _, Option<&U>, _) = match payload {
        Payload::User(user) => {
            let name = match event {
                Event::AfterRegister => "register",
                Event::AfterLogin => "login",
                Event::AfterLogout => "logout",
                Event::AfterPasswordChanged => "password_changed",
                Event::AfterRecoveryVerified => "email_verified",
                Event::AfterPasswordReset => "password_reset",
                Event::AfterEmailChanged => "email_changed",
                Event::AfterSudo => "sudo",
                Event::AfterMfaEnabled => "mfa_enabled",
                Event::AfterMfaDisabled => "mfa_disabled",
                Event::Impersonation => "impersonation_started",
                Event::OAuthLogin => "oauth_login",
                Event::DeviceLogin => "device_login",
                Event::LoginFailed => "login",
                Event::Lockout => "lockout",
            };
            (name, Outcome::Success, Some(&**user), None)
        }
        Payload::LoginFailed { user, reason, .. } => {
            let outcome = match reason {
                LoginFailure::InvalidCredentials => Outcome::Failure,
                LoginFailure::Inactive | LoginFailure::Refused => Outcome::Refused,
            };
            ("login", outcome, user.as_deref(), Some(reason.as_str()))
        }
        #[cfg(feature = "oauth")]
        Payload::OAuthLogin {
            user,
            created,
            provider,
        } => {
            let name = if *created {
                "oauth_register"
            } else {
                "oauth_login"
            };
            (
                name,
                Outcome::Success,
                Some(&**user),
                Some(provider.as_str()),
            )
        }
        #[cfg(feature = "device-login")]
        Payload::DeviceLogin { user, action } => (
            "device_login",
            Outcome::Success,
            Some(&**user),
            Some(action.as_str()),
        ),
        Payload::Lockout { .. } => ("login", Outcome::Refused, None, Some("locked_out")),
    };
    let locked = match payload {
        Payload::Lockout { user_id, .. } => user_id.clone(),
        _ => None,
    };
    // An OAuth event's detail is its provider; any other's, its reason.
    let oauth = matches!(name, "oauth_login" | "oauth_register");
    crate::audit::emit(&AuditEvent {
        user_id: user.map(|u| u.user_id().to_string()).or(locked),
        transport: ctx.transport,
        client_ip: ctx.ip.as_deref(),
        reason: reason.filter(|_| !oauth),
        provider: reason.filter(|_| oauth),
        actor_id: ctx.impersonated_by.clone(),
        ..AuditEvent::new(name, outcome)
    });
}

/// Runs one hook future in its own task, so a panic is contained, and logs any failure.
async fn run(event: &'static str, fut: HookFuture) {
    match tokio::spawn(fut).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(target: "crudauth::hooks", event, error = %e, "hook failed"),
        Err(e) => tracing::error!(target: "crudauth::hooks", event, error = %e, "hook panicked"),
    }
}

/// Runs a veto in its own task. A veto that panics refuses (fails closed) with a generic
/// message and an error log line.
async fn run_veto(event: &'static str, fut: VetoFuture) -> Result<(), Veto> {
    match tokio::spawn(fut).await {
        Ok(verdict) => verdict,
        Err(e) => {
            tracing::error!(target: "crudauth::hooks", event, error = %e, "veto hook panicked; refusing");
            Err(Veto::new("Refused."))
        }
    }
}

impl<U: Send + Sync + 'static> Hooks<U> {
    fn add(&mut self, event: Event, handler: Handler<U>) {
        self.table.entry(event).or_default().push(handler);
    }

    /// Registers a hook on a user event (every event but `LoginFailed` and `Lockout`).
    pub(crate) fn on_user<F, Fut>(&mut self, event: Event, hook: F)
    where
        F: Fn(Arc<U>, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.add(
            event,
            Arc::new(move |payload, ctx| match payload {
                Payload::User(user) => Some(Box::pin(hook(user.clone(), ctx)) as HookFuture),
                _ => None,
            }),
        );
    }

    /// Registers an `on_login_failed` hook.
    pub(crate) fn on_login_failed<F, Fut>(&mut self, hook: F)
    where
        F: Fn(String, Option<Arc<U>>, LoginFailure, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.add(
            Event::LoginFailed,
            Arc::new(move |payload, ctx| match payload {
                Payload::LoginFailed {
                    identifier,
                    user,
                    reason,
                } => Some(
                    Box::pin(hook(identifier.clone(), user.clone(), *reason, ctx)) as HookFuture,
                ),
                _ => None,
            }),
        );
    }

    /// Registers an `on_lockout` hook.
    pub(crate) fn on_lockout<F, Fut>(&mut self, hook: F)
    where
        F: Fn(String, u64, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.add(
            Event::Lockout,
            Arc::new(move |payload, ctx| match payload {
                Payload::Lockout {
                    identifier,
                    retry_after,
                    ..
                } => Some(Box::pin(hook(identifier.clone(), *retry_after, ctx)) as HookFuture),
                _ => None,
            }),
        );
    }

    /// Registers an `on_oauth_login` hook.
    #[cfg(feature = "oauth")]
    pub(crate) fn on_oauth_login<F, Fut>(&mut self, hook: F)
    where
        F: Fn(Arc<U>, String, bool, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.add(
            Event::OAuthLogin,
            Arc::new(move |payload, ctx| match payload {
                Payload::OAuthLogin {
                    user,
                    provider,
                    created,
                } => Some(
                    Box::pin(hook(user.clone(), provider.clone(), *created, ctx)) as HookFuture,
                ),
                _ => None,
            }),
        );
    }

    /// Registers an `on_device_login` hook.
    #[cfg(feature = "device-login")]
    pub(crate) fn on_device_login<F, Fut>(&mut self, hook: F)
    where
        F: Fn(Arc<U>, DeviceLoginAction, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.add(
            Event::DeviceLogin,
            Arc::new(move |payload, ctx| match payload {
                Payload::DeviceLogin { user, action } => {
                    Some(Box::pin(hook(user.clone(), *action, ctx)) as HookFuture)
                }
                _ => None,
            }),
        );
    }

    /// Registers an `on_before_register` veto.
    pub(crate) fn on_before_register<F, Fut>(&mut self, hook: F)
    where
        F: Fn(NewUser, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Veto>> + Send + 'static,
    {
        self.before_register
            .push(Arc::new(move |new, ctx| Box::pin(hook(new, ctx))));
    }

    /// Registers an `on_before_login` veto.
    pub(crate) fn on_before_login<F, Fut>(&mut self, hook: F)
    where
        F: Fn(Arc<U>, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Veto>> + Send + 'static,
    {
        self.before_login
            .push(Arc::new(move |user, ctx| Box::pin(hook(user, ctx))));
    }

    /// Fires an event: logs it to the audit log (target `crudauth::audit`), then runs every
    /// hook registered for it, in order, each once.
    pub(crate) async fn fire(&self, event: Event, payload: Payload<U>, ctx: &HookContext)
    where
        U: crate::user::UserRecord,
    {
        audit(event, &payload, ctx);
        let Some(handlers) = self.table.get(&event) else {
            return;
        };
        for handler in handlers {
            if let Some(fut) = handler(&payload, ctx.clone()) {
                run(event.hook_name(), fut).await;
            }
        }
    }

    /// Fires a user event.
    pub(crate) async fn fire_user(&self, event: Event, user: Arc<U>, ctx: &HookContext)
    where
        U: crate::user::UserRecord,
    {
        self.fire(event, Payload::User(user), ctx).await;
    }

    /// Whether any hook observes `event` (lets callers skip building a payload).
    #[cfg(feature = "device-login")]
    pub(crate) fn observes(&self, event: Event) -> bool {
        self.table.get(&event).is_some_and(|h| !h.is_empty())
    }

    /// Whether any `on_before_login` veto is registered.
    pub(crate) fn vets_logins(&self) -> bool {
        !self.before_login.is_empty()
    }

    /// Asks every `on_before_register` veto, in order; the first refusal wins.
    pub(crate) async fn before_register(
        &self,
        new: &NewUser,
        ctx: &HookContext,
    ) -> Result<(), Veto> {
        for veto in &self.before_register {
            run_veto("on_before_register", veto(new.clone(), ctx.clone())).await?;
        }
        Ok(())
    }

    /// Asks every `on_before_login` veto, in order; the first refusal wins.
    pub(crate) async fn before_login(&self, user: &Arc<U>, ctx: &HookContext) -> Result<(), Veto> {
        for veto in &self.before_login {
            run_veto("on_before_login", veto(user.clone(), ctx.clone())).await?;
        }
        Ok(())
    }
}
