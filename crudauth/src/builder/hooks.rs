//! The builder's hook setters: observing hooks on every event, and the two vetoes.

use std::future::Future;
use std::sync::Arc;

use super::CrudAuthBuilder;
use crate::hooks::{Event, HookContext, HookError, LoginFailure, Veto};
use crate::user::{NewUser, UserRecord};

/// The setters of the hooks on user events: each takes an async closure receiving the
/// application's own user model (`Arc<U>`) and the [`HookContext`].
macro_rules! user_hooks {
    ($( $(#[$doc:meta])* $name:ident => $event:ident; )*) => {
        impl<U: UserRecord> CrudAuthBuilder<U> {
            $(
                $(#[$doc])*
                pub fn $name<F, Fut>(mut self, hook: F) -> Self
                where
                    F: Fn(Arc<U>, HookContext) -> Fut + Send + Sync + 'static,
                    Fut: Future<Output = Result<(), HookError>> + Send + 'static,
                {
                    self.hooks.on_user(Event::$event, hook);
                    self
                }
            )*
        }
    };
}

user_hooks! {
    /// Called after a user registered. It runs after the answer is sent (the answer must not
    /// take longer for a new address than for a taken one), so it may still be running when
    /// the user first signs in. `auth.background().flush()` waits for it.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_register(|user, _ctx| async move { println!("welcome {}", user.user_id()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    on_after_register => AfterRegister;
    /// Called after a successful sign-in (session or token).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_login(|user, ctx| async move { println!("{} from {:?}", user.user_id(), ctx.ip); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    on_after_login => AfterLogin;
    /// Called after a logout (a session, or a bearer client's refresh family).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_logout(|user, _ctx| async move { println!("bye {}", user.user_id()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    on_after_logout => AfterLogout;
    /// Called after a password change (or a first password set).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_password_changed(|user, _ctx| async move { println!("notify {:?}", user.email()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    on_after_password_changed => AfterPasswordChanged;
    /// Called the first time a user's email address is verified (a verify token redeemed).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_recovery_verified(|user, _ctx| async move { println!("verified {:?}", user.email()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    on_after_recovery_verified => AfterRecoveryVerified;
    /// Called after a completed password reset (every session and token of the user ended).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_password_reset(|user, _ctx| async move { println!("reset for {}", user.user_id()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    on_after_password_reset => AfterPasswordReset;
    /// Called after a confirmed email change (the model holds the new address).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_email_changed(|user, _ctx| async move { println!("now {:?}", user.email()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    on_after_email_changed => AfterEmailChanged;
    /// Called after a session was elevated (sudo mode).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_sudo(|user, _ctx| async move { println!("sudo by {}", user.user_id()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    on_after_sudo => AfterSudo;
    /// Called after a second factor was enabled (`/mfa/totp/confirm`, or an enrolment during
    /// sign-in). Feature `mfa`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_mfa_enabled(|user, _ctx| async move { println!("2FA on for {}", user.user_id()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    #[cfg(feature = "mfa")]
    on_after_mfa_enabled => AfterMfaEnabled;
    /// Called after a second factor was disabled (`/mfa/totp/disable`). Feature `mfa`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_after_mfa_disabled(|user, _ctx| async move { println!("2FA off for {}", user.user_id()); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    #[cfg(feature = "mfa")]
    on_after_mfa_disabled => AfterMfaDisabled;
    /// Called when a superuser mints an impersonation token or starts an impersonation
    /// session (the user is the one impersonated; `ctx.impersonated_by` names the
    /// superuser). Feature `admin`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_impersonation(|user, ctx| async move {
    ///     println!("{:?} acts as {}", ctx.impersonated_by, user.user_id());
    ///     Ok(())
    /// });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    #[cfg(feature = "admin")]
    on_impersonation => Impersonation;
}

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Called after a refused password login, with the identifier typed, the account's model
    /// when the identifier named one, and why (not for lockout refusals: see
    /// [`CrudAuthBuilder::on_lockout`]).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let client = crudauth::doc_fixture::client();
    /// let b = b.on_login_failed(|identifier, _user, reason, _ctx| async move { println!("{identifier}: {}", reason.as_str()); Ok(()) });
    /// let auth = b.build()?;
    /// // Prints "ann: invalid_credentials".
    /// assert!(auth.authenticate_password("ann", "wrong horse", &client, "session").await.is_err());
    /// # Ok(()) });
    /// ```
    pub fn on_login_failed<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(String, Option<Arc<U>>, LoginFailure, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.on_login_failed(hook);
        self
    }

    /// Called for every attempt the lockout refuses, with the identifier typed and the
    /// seconds until it may try again.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_lockout(|identifier, retry_after, _ctx| async move { println!("{identifier} locked for {retry_after}s"); Ok(()) });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    pub fn on_lockout<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(String, u64, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.on_lockout(hook);
        self
    }

    /// Called on every provider sign-in that resolved an active account (feature `oauth`),
    /// before the session or tokens exist: the user, the provider's name, and whether the
    /// account was created by this sign-in. `on_after_register` (when created) and
    /// `on_after_login` fire too, with the full context (ip, user agent).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_oauth_login(|user, provider, created, ctx| async move {
    ///     println!("{} via {provider} (new: {created}) from {:?}", user.user_id(), ctx.ip);
    ///     Ok(())
    /// });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    #[cfg(feature = "oauth")]
    pub fn on_oauth_login<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Arc<U>, String, bool, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.on_oauth_login(hook);
        self
    }

    /// Called when a CLI device login is approved or rejected (with the browser user who
    /// decided) and when the CLI redeems it (with the user it is signed in as); the context
    /// is the CLI's (its address and user agent, transport `bearer`). Feature
    /// `device-login`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_device_login(|user, action, ctx| async move {
    ///     println!("device login {} for {} from {:?}", action.as_str(), user.user_id(), ctx.ip);
    ///     Ok(())
    /// });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    #[cfg(feature = "device-login")]
    pub fn on_device_login<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Arc<U>, crate::hooks::DeviceLoginAction, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.on_device_login(hook);
        self
    }

    /// A veto on every path that creates an account (today `/register`): given the account
    /// about to be created, it may refuse with a [`Veto`], answered as the 422 entry of the
    /// veto's field (so it tells nothing about existing accounts). It runs after validation,
    /// before anything is written.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let b = b.on_before_register(|new, _ctx| async move {
    ///     match new.email.as_deref() {
    ///         Some(e) if e.ends_with("@competitor.example") => Err(crudauth::Veto::new("Sign-ups from this domain are closed").on_field("email")),
    ///         _ => Ok(()),
    ///     }
    /// });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    pub fn on_before_register<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(NewUser, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Veto>> + Send + 'static,
    {
        self.hooks.on_before_register(hook);
        self
    }

    /// A veto on every path that signs an account in (today `/login` and `/token`), asked
    /// after the credential was found right: a refusal is answered exactly as a disabled
    /// account is (same status, body and timing) and reported to `on_login_failed` with
    /// the reason `refused`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { use crudauth::UserRecord;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// # let client = crudauth::doc_fixture::client();
    /// let b = b.on_before_login(|user, _ctx| async move {
    ///     if user.is_superuser() { Err(crudauth::Veto::new("admins sign in elsewhere")) } else { Ok(()) }
    /// });
    /// let auth = b.build()?;
    /// auth.ensure_admin("root@example.com", "a long admin password").await?;
    /// let refused = auth.authenticate_password("root@example.com", "a long admin password", &client, "session").await;
    /// assert!(matches!(refused, Err(crudauth::AuthError::BadCredentials))); // as a disabled account
    /// assert!(auth.authenticate_password("ann", "correct horse battery staple", &client, "session").await.is_ok());
    /// # Ok(()) });
    /// ```
    pub fn on_before_login<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Arc<U>, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Veto>> + Send + 'static,
    {
        self.hooks.on_before_login(hook);
        self
    }
}
