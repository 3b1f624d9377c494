//! `CrudAuth`: the composition root. Built once, validated once, cheap to clone.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::client_ip::{client_ip, ip_key};
use crate::delivery::{Deliveries, DeliveryChannel, EmailSender};
use crate::error::{AuthError, ConfigError};
use crate::hooks::{self, HookContext, HookError, Hooks, LoginFailure};
use crate::keys::Keys;
use crate::lockout::{LockSubject, Lockout, LockoutConfig};
use crate::password::{PasswordConfig, PasswordError, PasswordHasher};
use crate::policy::{PasswordContext, PasswordPolicy, PasswordSource};
use crate::principal::{Gate, Principal, Resolved, Transport};
use crate::ratelimit::{KeyBy, RateLimit, RateLimiter};
use crate::recovery::{Recovery, RecoveryConfig};
use crate::session::{SessionConfig, Sessions};
use crate::store::{MemoryStore, Store, TimeoutStore};
use crate::sudo::SudoConfig;
use crate::tokens::{BearerConfig, TokenPair, TokenService};
use crate::user::{
    LogicalField, NewUser, RepoError, UserContract, UserId, UserRecord, UserRepository, UserUpdate,
};

pub use crate::user::DynUserRepository;

pub use crate::user::MAX_IDENTIFIER_CHARS;

/// A user whose password was just checked, with the revocation epoch read *before* the
/// check; sessions and tokens made from it carry that epoch.
#[derive(Clone, Debug)]
pub struct VerifiedUser<U> {
    /// The user.
    pub user: U,
    /// The revocation epoch at the time of the check.
    pub epoch: i64,
}

/// What the facade knows of the client of a request.
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    /// The client address (socket peer, or per `trusted_proxy_hops`).
    pub ip: Option<IpAddr>,
    /// The User-Agent.
    pub user_agent: String,
}

impl ClientMeta {
    /// The hook context for this client.
    pub fn hook_context(&self, transport: Option<&'static str>) -> HookContext {
        HookContext {
            ip: self.ip.map(|ip| ip.to_string()),
            user_agent: Some(self.user_agent.clone()).filter(|u| !u.is_empty()),
            transport,
            session_handle: None,
        }
    }
}

pub(crate) struct Inner<U> {
    pub repo: Arc<dyn DynUserRepository<U>>,
    pub store: Arc<dyn Store>,
    pub passwords: PasswordHasher,
    pub lockout: Lockout,
    pub sessions: Option<Sessions>,
    pub tokens: Option<TokenService>,
    pub transports: Vec<Transport>,
    pub hooks: Hooks,
    pub trusted_proxy_hops: usize,
    pub policy: PasswordPolicy,
    pub register_extra_fields: BTreeSet<String>,
    pub limiter: RateLimiter,
    pub keys: Arc<Keys>,
    pub deliveries: Deliveries,
    pub background: crate::background::Background,
    pub recovery: Option<Recovery>,
    pub sudo: SudoConfig,
}

/// The authentication facade: repository + store + transports + hooks, wired once.
///
/// Cheap to clone (an `Arc` inside). Put it in your app state and expose it with
/// `FromRef`, or use it as the state itself.
///
/// ```no_run
/// # async fn demo<R: crudauth::UserRepository>(repo: R) -> Result<(), crudauth::ConfigError> {
/// use crudauth::{BearerConfig, CrudAuth, SessionConfig};
/// let auth = CrudAuth::builder(repo)
///     .secret_key(b"an example secret key of at least 32 bytes!".to_vec())
///     .session(SessionConfig::default())
///     .bearer(BearerConfig::default())
///     .build()?;
/// let app: axum::Router = auth.router();
/// # Ok(()) }
/// ```
pub struct CrudAuth<U> {
    pub(crate) inner: Arc<Inner<U>>,
}

impl<U> Clone for CrudAuth<U> {
    fn clone(&self) -> Self {
        CrudAuth {
            inner: self.inner.clone(),
        }
    }
}

impl<U> std::fmt::Debug for CrudAuth<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrudAuth")
            .field("transports", &self.inner.transports)
            .finish_non_exhaustive()
    }
}

/// Builds a [`CrudAuth`]; every contradiction is refused by [`CrudAuthBuilder::build`].
pub struct CrudAuthBuilder<U> {
    repo: Arc<dyn DynUserRepository<U>>,
    secret: Option<Vec<u8>>,
    session: Option<SessionConfig>,
    bearer: Option<BearerConfig>,
    order: Vec<Transport>,
    lockout: LockoutConfig,
    password: PasswordConfig,
    policy: PasswordPolicy,
    trusted_proxy_hops: usize,
    store: Option<Arc<dyn Store>>,
    hooks: Hooks,
    register_extra_fields: BTreeSet<String>,
    rate_limits: std::collections::BTreeMap<String, RateLimit>,
    recovery: Option<RecoveryConfig>,
    email_sender: Option<Arc<dyn EmailSender>>,
    channels: Vec<Arc<dyn DeliveryChannel>>,
    sudo: SudoConfig,
    store_timeout: Duration,
}

impl<U: UserRecord> CrudAuth<U> {
    /// Starts a builder over a user repository.
    ///
    /// ```no_run
    /// # fn f<R: crudauth::UserRepository>(repo: R) {
    /// let builder = crudauth::CrudAuth::builder(repo);
    /// # }
    /// ```
    pub fn builder<R: UserRepository<User = U>>(repo: R) -> CrudAuthBuilder<U> {
        CrudAuthBuilder {
            repo: Arc::new(repo),
            secret: None,
            session: None,
            bearer: None,
            order: Vec::new(),
            lockout: LockoutConfig::default(),
            password: PasswordConfig::default(),
            policy: PasswordPolicy::default(),
            trusted_proxy_hops: 0,
            store: None,
            hooks: Hooks::default(),
            register_extra_fields: BTreeSet::new(),
            rate_limits: crate::ratelimit::default_limits()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            recovery: None,
            email_sender: None,
            channels: Vec::new(),
            sudo: SudoConfig::default(),
            store_timeout: Duration::from_secs(2),
        }
    }
}

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// The secret key (at least 32 bytes); per-purpose keys are derived from it.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.secret_key(std::env::var("CRUDAUTH_SECRET_KEY").unwrap().into_bytes());
    /// # }
    /// ```
    pub fn secret_key(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Adds the session transport (cookie + CSRF), tried in the order transports are added.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.session(crudauth::SessionConfig::default());
    /// # }
    /// ```
    pub fn session(mut self, config: SessionConfig) -> Self {
        self.session = Some(config);
        self.order.retain(|v| *v != Transport::Session);
        self.order.push(Transport::Session);
        self
    }

    /// Adds the bearer transport (JWT access + rotating refresh tokens).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.bearer(crudauth::BearerConfig::default());
    /// # }
    /// ```
    pub fn bearer(mut self, config: BearerConfig) -> Self {
        self.bearer = Some(config);
        self.order.retain(|v| *v != Transport::Bearer);
        self.order.push(Transport::Bearer);
        self
    }

    /// Lockout thresholds.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.lockout(crudauth::LockoutConfig { max_attempts: 3, ..Default::default() });
    /// # }
    /// ```
    pub fn lockout(mut self, config: LockoutConfig) -> Self {
        self.lockout = config;
        self
    }

    /// Password hashing parameters.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.password(crudauth::password::PasswordConfig::default());
    /// # }
    /// ```
    pub fn password(mut self, config: PasswordConfig) -> Self {
        self.password = config;
        self
    }

    /// Minimum password length in characters (default 8); shorthand for the policy's
    /// `min_length`.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.min_password_length(12);
    /// # }
    /// ```
    pub fn min_password_length(mut self, min: usize) -> Self {
        self.policy.min_length = min;
        self
    }

    /// The password policy, applied on register, set, change and reset.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// use crudauth::policy::PasswordPolicy;
    /// let b = b.password_policy(PasswordPolicy { min_length: 12, require_digit: true, ..Default::default() });
    /// # }
    /// ```
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Turns on the email flows (verify, reset, email change): links are built from
    /// `config.frontend_url`, never from the request. Needs an email sender or a delivery
    /// channel.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b
    ///     .recovery(crudauth::RecoveryConfig::new("https://app.example.com"))
    ///     .email_sender(std::sync::Arc::new(crudauth::delivery::OutboxSender::new("outbox.jsonl")));
    /// # }
    /// ```
    pub fn recovery(mut self, config: RecoveryConfig) -> Self {
        self.recovery = Some(config);
        self
    }

    /// The email sender for the email flows.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.email_sender(std::sync::Arc::new(crudauth::delivery::OutboxSender::new("outbox.jsonl")));
    /// # }
    /// ```
    pub fn email_sender(mut self, sender: Arc<dyn EmailSender>) -> Self {
        self.email_sender = Some(sender);
        self
    }

    /// Adds a delivery channel (SMS, push, ...), fired after the email sender.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>, sms: std::sync::Arc<dyn crudauth::delivery::DeliveryChannel>) {
    /// let b = b.delivery_channel(sms);
    /// # }
    /// ```
    pub fn delivery_channel(mut self, channel: Arc<dyn DeliveryChannel>) -> Self {
        self.channels.push(channel);
        self
    }

    /// Sudo settings (elevation window, attempts, lock).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.sudo(crudauth::SudoConfig { window: std::time::Duration::from_secs(120), ..Default::default() });
    /// # }
    /// ```
    pub fn sudo(mut self, config: SudoConfig) -> Self {
        self.sudo = config;
        self
    }

    /// How many proxies in front of the app to trust for `X-Forwarded-For` (default 0).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.trusted_proxy_hops(1); // one reverse proxy in front
    /// # }
    /// ```
    pub fn trusted_proxy_hops(mut self, hops: usize) -> Self {
        self.trusted_proxy_hops = hops;
        self
    }

    /// The store for sessions, lockout counters, refresh families and epochs (default: memory).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.store(std::sync::Arc::new(crudauth::store::MemoryStore::new()));
    /// # }
    /// ```
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The deadline on every store call (default 2 s): a store that answers slower is a
    /// fault, answered `503` (fail closed), never a request that hangs.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.store_timeout(std::time::Duration::from_millis(500));
    /// # }
    /// ```
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// The application's own columns `/register` may write (everything else is dropped).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.register_extra_fields(["display_name"]);
    /// # }
    /// ```
    pub fn register_extra_fields<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        fields: I,
    ) -> Self {
        self.register_extra_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Overrides a built-in rate limit (`register`, `change_password`, `logout_all`,
    /// `csrf_refresh`, ...) or registers one for [`CrudAuth::rate_limit`];
    /// [`RateLimit::OFF`] switches one off.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// use std::time::Duration;
    /// let b = b
    ///     .rate_limit("register", crudauth::RateLimit::new(20, Duration::from_secs(3600)))
    ///     .rate_limit("csrf_refresh", crudauth::RateLimit::OFF);
    /// # }
    /// ```
    pub fn rate_limit(mut self, action: &str, limit: RateLimit) -> Self {
        self.rate_limits.insert(action.to_owned(), limit);
        self
    }

    /// Called after a user registered. It runs after the answer is sent (the answer must not
    /// take longer for a new address than for a taken one), so it may still be running when
    /// the user first signs in: a hook that must gate the account should write its state
    /// in the same transaction as the app's own data, not rely on running first.
    /// `auth.background().flush()` waits for it.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_after_register(|user, _ctx| async move { println!("welcome {:?}", user.email); Ok(()) });
    /// # }
    /// ```
    pub fn on_after_register<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserContract, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.after_register.push(hooks::boxed(hook));
        self
    }

    /// Called after a successful login (session or token).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_after_login(|user, ctx| async move { println!("{} from {:?}", user.id, ctx.ip); Ok(()) });
    /// # }
    /// ```
    pub fn on_after_login<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserContract, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.after_login.push(hooks::boxed(hook));
        self
    }

    /// Called after a refused password login (not for lockout refusals).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_login_failed(|identifier, _user, reason, _ctx| async move { println!("{identifier}: {}", reason.as_str()); Ok(()) });
    /// # }
    /// ```
    pub fn on_login_failed<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(String, Option<UserContract>, LoginFailure, HookContext) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks
            .login_failed
            .push(Arc::new(move |a, b, c, d| Box::pin(hook(a, b, c, d))));
        self
    }

    /// Called for every attempt the lockout refuses.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_lockout(|identifier, retry_after, _ctx| async move { println!("{identifier} locked for {retry_after}s"); Ok(()) });
    /// # }
    /// ```
    pub fn on_lockout<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(String, u64, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks
            .lockout
            .push(Arc::new(move |a, b, c| Box::pin(hook(a, b, c))));
        self
    }

    /// Called after a session logout.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_after_logout(|user, _ctx| async move { println!("bye {}", user.id); Ok(()) });
    /// # }
    /// ```
    pub fn on_after_logout<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserContract, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.after_logout.push(hooks::boxed(hook));
        self
    }

    /// Called after a password change.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_after_password_changed(|user, _ctx| async move { println!("notify {:?}", user.email); Ok(()) });
    /// # }
    /// ```
    pub fn on_after_password_changed<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserContract, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.after_password_changed.push(hooks::boxed(hook));
        self
    }

    /// Called the first time a user's email address is verified (a verify token redeemed).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_after_recovery_verified(|user, _ctx| async move { println!("verified {:?}", user.email); Ok(()) });
    /// # }
    /// ```
    pub fn on_after_recovery_verified<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserContract, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.after_recovery_verified.push(hooks::boxed(hook));
        self
    }

    /// Called after a completed password reset (every session and token of the user has ended).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_after_password_reset(|user, _ctx| async move { println!("reset for {}", user.id); Ok(()) });
    /// # }
    /// ```
    pub fn on_after_password_reset<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserContract, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.after_password_reset.push(hooks::boxed(hook));
        self
    }

    /// Called after a confirmed email change (`user.email` is the new address).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_after_email_changed(|user, _ctx| async move { println!("now {:?}", user.email); Ok(()) });
    /// # }
    /// ```
    pub fn on_after_email_changed<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserContract, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.after_email_changed.push(hooks::boxed(hook));
        self
    }

    /// Called after a session was elevated (sudo mode).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let b = b.on_after_sudo(|user, _ctx| async move { println!("sudo by {}", user.id); Ok(()) });
    /// # }
    /// ```
    pub fn on_after_sudo<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserContract, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.after_sudo.push(hooks::boxed(hook));
        self
    }

    /// Validates the configuration and wires the services.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(b: crudauth::CrudAuthBuilder<U>) {
    /// let auth: Result<crudauth::CrudAuth<U>, crudauth::ConfigError> = b.build();
    /// # }
    /// ```
    pub fn build(self) -> Result<CrudAuth<U>, ConfigError> {
        let secret = self.secret.ok_or(ConfigError::MissingSecret)?;
        let keys = Arc::new(Keys::derive(&secret)?);
        if self.order.is_empty() {
            return Err(ConfigError::NoTransport);
        }
        self.policy.validate_config(self.password.max_length)?;
        self.sudo.validate()?;
        self.lockout.validate()?;
        let schema = *self.repo.schema();
        let privileged = [
            "id",
            "email",
            "username",
            "password",
            "is_active",
            "is_superuser",
            "email_verified",
            "token_version",
        ];
        for field in &self.register_extra_fields {
            let mapped = schema.login.iter().any(|f| f.column == field)
                || schema.recovery.is_some_and(|f| f.column == field);
            if privileged.contains(&field.as_str()) || mapped {
                return Err(ConfigError::Invalid(format!(
                    "register_extra_fields: `{field}` is a contract field and can never be set by a client"
                )));
            }
        }
        if schema.login.is_empty() {
            return Err(ConfigError::Invalid(
                "the user table has no login field".into(),
            ));
        }
        if self.store_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "store_timeout must be positive".into(),
            ));
        }
        let store: Arc<dyn Store> = match self.store {
            Some(store) => Arc::new(TimeoutStore::new(store, self.store_timeout)),
            None => {
                tracing::warn!(
                    "crudauth: sessions, CSRF tokens, lockout counters, rate-limit counters, refresh \
                     families, one-time tokens and revocation epochs are in process memory: \
                     right for one process, wrong behind a load balancer (configure a shared \
                     store)"
                );
                Arc::new(MemoryStore::new())
            }
        };
        if schema.has(LogicalField::TokenVersion) {
            tracing::info!(
                table = schema.table,
                "crudauth: revocation epoch in the token_version column"
            );
        } else {
            tracing::info!(
                table = schema.table,
                "crudauth: no token_version column; revocation epoch kept in the store"
            );
        }
        let sessions = match self.session {
            Some(config) => {
                config.validate()?;
                Some(Sessions::new(store.clone(), keys.clone(), config))
            }
            None => None,
        };
        let tokens = match self.bearer {
            Some(config) => Some(TokenService::new(config, &keys.jwt, store.clone())?),
            None => None,
        };
        let passwords = PasswordHasher::new(self.password)?;
        let lockout = Lockout::new(store.clone(), keys.store, self.lockout);
        if self
            .rate_limits
            .values()
            .any(|l| !l.is_off() && l.period.is_zero())
        {
            return Err(ConfigError::Invalid(
                "a rate limit's period must be positive".into(),
            ));
        }
        let limiter = RateLimiter::new(store.clone(), keys.store, self.rate_limits);
        let background = crate::background::Background::default();
        let deliveries = Deliveries::new(self.email_sender, self.channels, background.clone());
        let recovery = match self.recovery {
            Some(config) => Some(Recovery::new(
                config,
                &schema,
                &deliveries,
                store.clone(),
                keys.one_time,
            )?),
            None => {
                if deliveries.is_configured() {
                    tracing::warn!(
                        "crudauth: an email sender or channel is set but no recovery config: \
                         the email flows are off"
                    );
                }
                None
            }
        };
        Ok(CrudAuth {
            inner: Arc::new(Inner {
                repo: self.repo,
                store,
                passwords,
                lockout,
                sessions,
                tokens,
                transports: self.order,
                hooks: self.hooks,
                trusted_proxy_hops: self.trusted_proxy_hops,
                policy: self.policy,
                register_extra_fields: self.register_extra_fields,
                limiter,
                keys,
                deliveries,
                background,
                recovery,
                sudo: self.sudo,
            }),
        })
    }
}

/// The hasher's queue is full: 503 with `Retry-After`, never an unbounded line.
pub(crate) fn busy(e: PasswordError) -> AuthError {
    match e {
        PasswordError::Busy => {
            tracing::warn!("password hashing queue full; answering 503");
            AuthError::Unavailable
        }
        _ => AuthError::Internal,
    }
}

/// Characters no identifier may carry: controls (`\0`, newlines, ...) and invisible
/// formatting characters (bidirectional overrides, zero-width joiners; Unicode category Cf).
pub(crate) fn is_hostile_char(c: char) -> bool {
    c.is_control() || crate::user::is_format_char(c)
}

pub(crate) fn repo_fault(e: RepoError) -> AuthError {
    crate::store::report_fault("user repository", &e);
    AuthError::Unavailable
}

const EPOCH_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Reads a cookie value from the request headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl<U: UserRecord> CrudAuth<U> {
    /// The user repository.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let found = auth.repo().find_by_login("ann@example.com").await;
    /// # Ok(()) }
    /// ```
    pub fn repo(&self) -> &dyn DynUserRepository<U> {
        self.inner.repo.as_ref()
    }

    /// The session manager, when the session transport is configured.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// if let Some(sessions) = auth.sessions() { sessions.revoke_all("42", None).await?; }
    /// # Ok(()) }
    /// ```
    pub fn sessions(&self) -> Option<&Sessions> {
        self.inner.sessions.as_ref()
    }

    /// The token service, when the bearer transport is configured.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let bearer_configured = auth.tokens().is_some();
    /// # Ok(()) }
    /// ```
    pub fn tokens(&self) -> Option<&TokenService> {
        self.inner.tokens.as_ref()
    }

    /// The password hasher.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let hash = auth.passwords().hash("correct horse").await;
    /// # Ok(()) }
    /// ```
    pub fn passwords(&self) -> &PasswordHasher {
        &self.inner.passwords
    }

    /// The store.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let store = auth.store().clone();
    /// # Ok(()) }
    /// ```
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The configured transports, in the order they are tried.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// assert!(!auth.transports().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn transports(&self) -> &[Transport] {
        &self.inner.transports
    }

    pub(crate) fn hooks(&self) -> &Hooks {
        &self.inner.hooks
    }

    /// The configured deliveries (email sender and channels); [`Deliveries::flush`] waits
    /// for the messages still in flight.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// auth.background().flush().await;
    /// # }
    /// ```
    pub fn deliveries(&self) -> &Deliveries {
        &self.inner.deliveries
    }

    /// The tracker of work done after answering (mail, the register hook);
    /// [`crate::Background::flush`] waits for it before a shutdown.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// auth.background().flush().await;
    /// # }
    /// ```
    pub fn background(&self) -> &crate::background::Background {
        &self.inner.background
    }

    pub(crate) fn sudo_config(&self) -> &SudoConfig {
        &self.inner.sudo
    }

    pub(crate) fn store_key(&self) -> &[u8; 32] {
        &self.inner.keys.store
    }

    pub(crate) fn recovery(&self) -> Option<&Recovery> {
        self.inner.recovery.as_ref()
    }

    /// Checks a new password against the policy: `Err(Validation)` with one entry per
    /// unmet rule, on `field`.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) -> Result<(), crudauth::AuthError> {
    /// use crudauth::policy::{PasswordContext, PasswordSource};
    /// let ctx = PasswordContext { source: PasswordSource::Set, username: None, email: Some("ann@example.com".into()) };
    /// auth.validate_password("mauve staple orbit", &ctx, "password").await?;
    /// # Ok(()) }
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
        issues: &mut Vec<crate::error::ValidationIssue>,
    ) {
        let hasher_max = self.inner.passwords.max_length();
        let max = self.inner.policy.max_length.unwrap_or(hasher_max);
        // Over the hasher's cap: refused before it is normalised.
        let Some(normalized) = self.inner.passwords.normalize(password) else {
            issues.push(crate::error::ValidationIssue::too_long(field, max));
            return;
        };
        self.inner
            .policy
            .check(field, &normalized, max, ctx, issues)
            .await;
    }

    pub(crate) fn register_extra_fields(&self) -> &BTreeSet<String> {
        &self.inner.register_extra_fields
    }

    /// The client of a request: the socket peer (from `ConnectInfo`) unless trusted proxies
    /// are configured, and the User-Agent.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let client = auth.client_meta(&parts);
    /// # Ok(()) }
    /// ```
    pub fn client_meta(&self, parts: &Parts) -> ClientMeta {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = client_ip(&parts.headers, peer, self.inner.trusted_proxy_hops);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut end = user_agent.len().min(512);
        while !user_agent.is_char_boundary(end) {
            end -= 1;
        }
        ClientMeta {
            ip,
            user_agent: user_agent[..end].to_owned(),
        }
    }

    /// The user's revocation epoch: the `token_version` column, or the store when the table
    /// has none.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let epoch = auth.epoch(&user).await?;
    /// # Ok(()) }
    /// ```
    pub async fn epoch(&self, user: &U) -> Result<i64, AuthError> {
        if let Some(v) = user.token_version() {
            return Ok(v);
        }
        self.store_epoch(&user.user_id()).await
    }

    /// The epoch kept in the store for tables without a `token_version` column. A missing
    /// record starts at the current unix time in microseconds, not 0, so losing the store (a
    /// flush, an eviction, a restart of the memory store) can never bring revoked tokens
    /// back: their epochs are all older.
    async fn store_epoch(&self, id: &UserId) -> Result<i64, AuthError> {
        let key = format!("epoch:{id}");
        let store = &self.inner.store;
        let fault = |e: crate::store::StoreError| {
            crate::store::report_fault("epoch store", &e);
            AuthError::Unavailable
        };
        for _ in 0..2 {
            if let Some(bytes) = store.get(&key).await.map_err(fault)? {
                return std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(AuthError::Internal);
            }
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_micros() as i64)
                .to_string();
            store
                .set_if_absent(&key, start.as_bytes(), Some(EPOCH_TTL))
                .await
                .map_err(fault)?;
        }
        Err(AuthError::Unavailable)
    }

    /// Bumps the user's revocation epoch: every earlier token and session of the user dies.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// auth.bump_epoch(&user).await?; // every earlier token and session of the user ends
    /// # Ok(()) }
    /// ```
    pub async fn bump_epoch(&self, user: &U) -> Result<i64, AuthError> {
        let id = user.user_id();
        match self
            .inner
            .repo
            .bump_token_version(&id)
            .await
            .map_err(repo_fault)?
        {
            Some(v) => Ok(v),
            None => self.bump_store_epoch(&id).await,
        }
    }

    /// Moves the store-kept epoch on (tables without `token_version`): compare-and-set,
    /// retried, so concurrent bumps each move it.
    async fn bump_store_epoch(&self, id: &UserId) -> Result<i64, AuthError> {
        let key = format!("epoch:{id}");
        for _ in 0..16 {
            let current = self.store_epoch(id).await?;
            let next = current + 1;
            let swapped = self
                .inner
                .store
                .compare_and_set(
                    &key,
                    current.to_string().as_bytes(),
                    next.to_string().as_bytes(),
                    Some(EPOCH_TTL),
                )
                .await
                .map_err(|e| {
                    crate::store::report_fault("epoch store", &e);
                    AuthError::Unavailable
                })?;
            if swapped {
                return Ok(next);
            }
        }
        Err(AuthError::Unavailable)
    }

    /// Loads a user for a credential: `None` when gone, disabled or the epoch moved on.
    async fn load_current(&self, raw_id: &str, epoch: i64) -> Result<Option<U>, AuthError> {
        let Some(id) = self.inner.repo.schema().id_kind.parse(raw_id) else {
            return Ok(None);
        };
        let Some(user) = self.inner.repo.find_by_id(&id).await.map_err(repo_fault)? else {
            return Ok(None);
        };
        if !user.is_active() || self.epoch(&user).await? != epoch {
            return Ok(None);
        }
        Ok(Some(user))
    }

    fn principal(
        &self,
        user: U,
        via: Transport,
        scopes: Vec<String>,
        session: Option<crate::session::LiveSession>,
    ) -> Principal<U> {
        let (session_handle, signed_in_at, sudo_until) = match session {
            Some(s) => (Some(s.handle), Some(s.record.created), s.record.sudo_until),
            None => (None, None, None),
        };
        Principal {
            user_id: user.user_id(),
            is_superuser: user.is_superuser(),
            email_verified: user.email_verified(),
            user: Arc::new(user),
            scopes,
            via,
            session_handle,
            signed_in_at,
            sudo_until,
        }
    }

    /// Authenticates a request: the configured transports in order (or only `only`), the
    /// first whose credential is present wins.
    ///
    /// `Ok(None)` when no credential is present. A present but invalid bearer token, a
    /// revoked token or a failed CSRF check is an error even where authentication is
    /// optional. A stale session cookie (unknown, expired, revoked) counts as absent.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let principal = auth.authenticate(&parts, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn authenticate(
        &self,
        parts: &Parts,
        only: Option<Transport>,
    ) -> Result<Option<Principal<U>>, AuthError> {
        for via in &self.inner.transports {
            if only.is_some_and(|o| o != *via) {
                continue;
            }
            match via {
                Transport::Session => {
                    let Some(sessions) = &self.inner.sessions else {
                        continue;
                    };
                    let Some(raw) = cookie(&parts.headers, &sessions.config().cookie_name) else {
                        continue;
                    };
                    let Some(live) = sessions.resolve(raw).await? else {
                        continue;
                    };
                    let Some(user) = self
                        .load_current(&live.record.user_id, live.record.epoch)
                        .await?
                    else {
                        sessions.delete(&live.handle, &live.record.user_id).await?;
                        continue;
                    };
                    if is_unsafe(&parts.method) {
                        sessions.check_request_csrf(&live, &parts.headers)?;
                    }
                    return Ok(Some(self.principal(
                        user,
                        Transport::Session,
                        Vec::new(),
                        Some(live),
                    )));
                }
                Transport::Bearer => {
                    let Some(tokens) = &self.inner.tokens else {
                        continue;
                    };
                    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
                        continue;
                    };
                    let bytes = value.as_bytes();
                    let is_bearer = bytes.len() >= 6
                        && bytes[..6].eq_ignore_ascii_case(b"bearer")
                        && (bytes.len() == 6 || bytes[6] == b' ');
                    if !is_bearer {
                        continue; // another scheme (Basic, ...): not ours
                    }
                    // `Bearer` with an empty or unreadable token is a bad credential, not
                    // the absence of one (optional-auth routes must not treat it as anonymous).
                    let token = value
                        .to_str()
                        .ok()
                        .map(|v| v[6..].trim())
                        .filter(|t| !t.is_empty())
                        .ok_or(AuthError::InvalidToken)?;
                    let claims = tokens.verify_access(token)?;
                    let Some(user) = self.load_current(&claims.sub, claims.epoch).await? else {
                        return Err(AuthError::NotAuthenticated);
                    };
                    return Ok(Some(self.principal(
                        user,
                        Transport::Bearer,
                        claims.scopes,
                        None,
                    )));
                }
            }
        }
        Ok(None)
    }

    /// The one credential check behind `/login` and `/token`: lockout (counted before any
    /// hashing), lookup by the login fields in order, a dummy-hash verify for unknown
    /// identifiers so time and answer match a wrong password, the disabled-account check
    /// after the password check, a rehash when parameters changed, and the hooks.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let client = auth.client_meta(&parts);
    /// let verified = auth.authenticate_password("ann@example.com", "correct horse", &client, "session").await?;
    /// # Ok(()) }
    /// ```
    pub async fn authenticate_password(
        &self,
        identifier: &str,
        password: &str,
        client: &ClientMeta,
        transport: &'static str,
    ) -> Result<VerifiedUser<U>, AuthError> {
        let ctx = client.hook_context(Some(transport));
        let hooks = &self.inner.hooks;
        if client.ip.is_none() {
            // Without a client address every client would share one lockout budget, and a
            // stranger could lock everyone out: refuse loudly instead.
            tracing::error!(
                "crudauth: no client address on the request; serve the app with \
                 `into_make_service_with_connect_info::<SocketAddr>()`"
            );
            return Err(AuthError::Internal);
        }
        // No account has an identifier this long, or one with control or invisible
        // formatting characters: refuse before any counter or lookup sees it (such input
        // could otherwise name another key, or spend a budget that is not its own).
        if identifier.chars().nth(MAX_IDENTIFIER_CHARS).is_some()
            || identifier.chars().any(is_hostile_char)
        {
            return Err(AuthError::BadCredentials);
        }
        let user = self.find_login(identifier).await?;
        let requester = ip_key(client.ip);
        let store_kept = !self.inner.repo.schema().has(LogicalField::TokenVersion);
        // The epoch as of before the password check (a password change that completes while
        // this check runs revokes what this login creates), and whether this client signed
        // in to the account before (under this epoch). An identifier that names nobody does
        // the same store reads against keys no account has, so the work does not tell.
        let (epoch, known_client) = match &user {
            Some(u) => {
                let epoch = self.epoch(u).await?;
                let known = self.is_known_at(&u.user_id(), epoch, &requester).await?;
                (epoch, known)
            }
            None => {
                if store_kept {
                    self.store_read("epoch:").await?;
                }
                self.store_read(&self.known_requester_key("", 0, &requester))
                    .await?;
                (0, false)
            }
        };
        let user_id = user.as_ref().map(UserRecord::user_id);
        let folded = self.fold_unknown_identifier(identifier);
        let lock_subject = match &user_id {
            Some(id) => LockSubject::Account { id, known_client },
            None => LockSubject::Unknown(&folded),
        };
        let attempt = match self
            .inner
            .lockout
            .check_and_count(&requester, lock_subject)
            .await
        {
            Ok(attempt) => attempt,
            Err(err) => {
                if let AuthError::LockedOut { retry_after } = err {
                    for hook in &hooks.lockout {
                        hooks::run(
                            "on_lockout",
                            hook(identifier.to_owned(), retry_after, ctx.clone()),
                        )
                        .await;
                    }
                }
                return Err(err);
            }
        };
        // A store-kept epoch is read apart from the row, so the row is read again after it:
        // if the hash moved in between, a password change ran, and the login is refused (it
        // would otherwise check the old hash and carry the new epoch). Unknown identifiers
        // make the same second read.
        let user = match user {
            Some(u) if store_kept => {
                let again = self
                    .inner
                    .repo
                    .find_by_id(&u.user_id())
                    .await
                    .map_err(repo_fault)?;
                match again {
                    Some(fresh) if fresh.password_hash() == u.password_hash() => Some(fresh),
                    _ => {
                        tracing::info!("password changed during a login; the login is refused");
                        None
                    }
                }
            }
            Some(u) => Some(u),
            None => {
                if store_kept {
                    let nobody = self.inner.repo.schema().id_kind.nobody();
                    self.inner
                        .repo
                        .find_by_id(&nobody)
                        .await
                        .map_err(repo_fault)?;
                }
                None
            }
        };
        let verification = match self
            .inner
            .passwords
            .try_verify(password, user.as_ref().and_then(|u| u.password_hash()))
            .await
        {
            Ok(v) => v,
            Err(e) => {
                // Refused before any hashing: the attempt is given back, so a flood of the
                // hasher cannot push anyone into a lock.
                self.inner.lockout.refund(attempt).await;
                return Err(busy(e));
            }
        };
        let failure = match &user {
            None => Some(LoginFailure::InvalidCredentials),
            Some(_) if !verification.matched => Some(LoginFailure::InvalidCredentials),
            Some(u) if !u.is_active() => Some(LoginFailure::Inactive),
            Some(_) => None,
        };
        if let Some(reason) = failure {
            tracing::info!(reason = reason.as_str(), "password login refused");
            let contract = user.as_ref().map(UserRecord::contract);
            for hook in &hooks.login_failed {
                hooks::run(
                    "on_login_failed",
                    hook(identifier.to_owned(), contract.clone(), reason, ctx.clone()),
                )
                .await;
            }
            return Err(AuthError::BadCredentials);
        }
        let user = user.ok_or(AuthError::BadCredentials)?;
        if verification.needs_rehash
            && let Some(checked) = user.password_hash()
        {
            // Compare-and-set on the hash that was checked: a password change that landed
            // meanwhile is never overwritten with a hash of the old password.
            match self.inner.passwords.hash(password).await {
                Ok(hash) => {
                    match self
                        .inner
                        .repo
                        .compare_and_set_password_hash(&user.user_id(), checked, &hash)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => tracing::info!("password changed before its rehash; kept"),
                        Err(e) => tracing::warn!(error = %e, "could not store a rehashed password"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "rehash failed"),
            }
        }
        self.inner.lockout.succeeded(attempt).await;
        self.remember_requester(&user.user_id(), epoch, &requester)
            .await;
        Ok(VerifiedUser { user, epoch })
    }

    /// Looks a login identifier up as typed (trimmed), then, if that finds nobody and its
    /// NFKC form differs, as its NFKC form: a fullwidth or padded variant of an identifier
    /// finds (and counts against) the same account.
    async fn find_login(&self, identifier: &str) -> Result<Option<U>, AuthError> {
        use unicode_normalization::UnicodeNormalization;
        let trimmed = identifier.trim();
        let repo = &self.inner.repo;
        if let Some(user) = repo.find_by_login(trimmed).await.map_err(repo_fault)? {
            return Ok(Some(user));
        }
        let nfkc: String = trimmed.nfkc().collect();
        let nfkc = nfkc.trim();
        if nfkc == trimmed || nfkc.is_empty() {
            return Ok(None);
        }
        repo.find_by_login(nfkc).await.map_err(repo_fault)
    }

    /// An identifier that names no account, in the equivalence the lookup itself uses, so
    /// that its variants share one lockout budget exactly when they would share an account:
    /// an address (when a login field is the email) as [`crate::user::normalize_email`]
    /// makes it, anything else as typed after NFKC and trimming (usernames are matched
    /// exactly: `Alice` is not `alice`). Counting unknown identifiers under any other
    /// equivalence would let the lockout tell which accounts exist.
    fn fold_unknown_identifier(&self, identifier: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        let by_email = self
            .inner
            .repo
            .schema()
            .login
            .iter()
            .any(crate::user::IdentityField::case_insensitive);
        if by_email && identifier.contains('@') {
            return crate::user::normalize_email(identifier);
        }
        identifier
            .trim()
            .nfkc()
            .collect::<String>()
            .trim()
            .to_owned()
    }

    /// A store read whose value does not matter (equal work for unknown identifiers).
    async fn store_read(&self, key: &str) -> Result<(), AuthError> {
        match self.inner.store.get(key).await {
            Ok(_) => Ok(()),
            Err(e) => {
                crate::store::report_fault("store", &e);
                Err(AuthError::Unavailable)
            }
        }
    }

    /// Counts a password attempt against an account's lockout budget (for the re-checks of
    /// a signed-in user's password: change-password, email change, sudo).
    pub(crate) async fn count_account_attempt(
        &self,
        user: &U,
        client: &ClientMeta,
    ) -> Result<crate::lockout::Attempt, AuthError> {
        let requester = ip_key(client.ip);
        let known_client = self.is_known_requester(user, &requester).await?;
        let id = user.user_id();
        self.inner
            .lockout
            .check_and_count(
                &requester,
                LockSubject::Account {
                    id: &id,
                    known_client,
                },
            )
            .await
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
        let attempt = self
            .count_account_attempt(principal.user.as_ref(), client)
            .await?;
        let verification = match self
            .inner
            .passwords
            .try_verify(password, principal.user.password_hash())
            .await
        {
            Ok(v) => v,
            Err(e) => {
                self.inner.lockout.refund(attempt).await;
                return Err(busy(e));
            }
        };
        if !verification.matched {
            return Err(wrong);
        }
        self.inner.lockout.succeeded(attempt).await;
        Ok(())
    }

    /// Hashes a password that passed the policy (422 on `field` if over the cap).
    pub(crate) async fn hash_new_password(
        &self,
        password: &str,
        field: &str,
    ) -> Result<String, AuthError> {
        self.inner
            .passwords
            .hash(password)
            .await
            .map_err(|e| match e {
                PasswordError::TooLong { max } => {
                    AuthError::Validation(vec![crate::error::ValidationIssue::too_long(field, max)])
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
    /// ([`UserRepository::replace_password_hash`]). With a store-kept epoch the epoch is
    /// bumped before the write (a failed write leaves the old credentials dead, never alive)
    /// and again after it, and a login reads the epoch *before* it re-reads the hash it
    /// checks (see [`CrudAuth::authenticate_password`]): a login that saw the old hash read
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
    ) -> Result<Option<crate::session::RotatedSession>, AuthError> {
        let id = user.user_id();
        let store_kept = !self.inner.repo.schema().has(LogicalField::TokenVersion);
        if store_kept {
            self.bump_store_epoch(&id).await?;
        }
        let written = match self.inner.repo.replace_password_hash(&id, hash).await {
            Ok(v) => v,
            Err(RepoError::Backend(e)) => return Err(repo_fault(RepoError::Backend(e))),
            Err(_) => return Err(AuthError::NotAuthenticated),
        };
        let epoch = match written {
            Some(v) => v,
            None => self.bump_store_epoch(&id).await?,
        };
        let Some(sessions) = &self.inner.sessions else {
            return Ok(None);
        };
        sessions.revoke_all(&id.to_string(), keep).await?;
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

    /// The record that a client address signed in to an account, under one revocation
    /// epoch: a password change or reset, or "sign out everywhere", forgets every address.
    fn known_requester_key(&self, id: &str, epoch: i64, requester: &str) -> String {
        let who = crate::keys::hmac_hex(
            &self.inner.keys.store,
            format!("{id}\u{0}{epoch}\u{0}{requester}").as_bytes(),
        );
        format!("seen:{who}")
    }

    /// Remembers (for 90 days, as an HMAC, until the epoch moves) that the user signed in
    /// from this client address: such requesters are exempt from the address-wide mail
    /// throttle and the account-wide lockout bounds. Best effort.
    async fn remember_requester(&self, id: &UserId, epoch: i64, requester: &str) {
        let key = self.known_requester_key(&id.to_string(), epoch, requester);
        let ttl = Duration::from_secs(90 * 24 * 3600);
        if let Err(e) = self.inner.store.set(&key, b"1", Some(ttl)).await {
            tracing::warn!(error = %e, "could not remember a sign-in address");
        }
    }

    async fn is_known_at(
        &self,
        id: &UserId,
        epoch: i64,
        requester: &str,
    ) -> Result<bool, AuthError> {
        let key = self.known_requester_key(&id.to_string(), epoch, requester);
        match self.inner.store.get(&key).await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => {
                crate::store::report_fault("known-requester store", &e);
                Err(AuthError::Unavailable)
            }
        }
    }

    /// Whether the user has signed in from this client address within 90 days, since the
    /// last password change, reset or sign-out-everywhere.
    pub(crate) async fn is_known_requester(
        &self,
        user: &U,
        requester: &str,
    ) -> Result<bool, AuthError> {
        let epoch = self.epoch(user).await?;
        self.is_known_at(&user.user_id(), epoch, requester).await
    }

    /// The user as stored now (for hooks after a write), or as given if it cannot be read.
    pub(crate) async fn reload(&self, user: &U) -> U {
        match self.inner.repo.find_by_id(&user.user_id()).await {
            Ok(Some(fresh)) => fresh,
            _ => user.clone(),
        }
    }

    /// Issues an access + refresh pair for a user, scopes clamped to the grantable set.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let pair = auth.issue_tokens(&user, ["me:read"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn issue_tokens<'a>(
        &self,
        user: &U,
        requested_scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<TokenPair, AuthError> {
        let epoch = self.epoch(user).await?;
        self.issue_tokens_at(user, epoch, requested_scopes).await
    }

    pub(crate) async fn issue_tokens_at<'a>(
        &self,
        user: &U,
        epoch: i64,
        requested_scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<TokenPair, AuthError> {
        let tokens = self.inner.tokens.as_ref().ok_or(AuthError::Internal)?;
        let scopes = tokens.clamp_scopes(requested_scopes);
        tokens
            .issue(&user.user_id().to_string(), epoch, scopes)
            .await
    }

    /// The rate limiter (shared through the configured store).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let register = auth.rate_limiter().limit("register");
    /// # }
    /// ```
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// A route layer limiting an action of the application's own, keyed by IP, user, or
    /// user-or-IP; refused requests get `429` with `Retry-After`, allowed ones the
    /// rate-limit headers. `limit` of [`RateLimit::OFF`] is a no-op.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// use std::time::Duration;
    /// use axum::{Router, routing::post};
    /// let app: Router = Router::new()
    ///     .route("/export", post(|| async { "..." }))
    ///     .route_layer(auth.rate_limit("export", crudauth::RateLimit::new(10, Duration::from_secs(60)), crudauth::KeyBy::UserOrIp));
    /// # }
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn rate_limit(
        &self,
        action: &str,
        limit: RateLimit,
        key: KeyBy,
    ) -> axum::middleware::FromFnLayer<
        fn(
            State<(CrudAuth<U>, Arc<(String, RateLimit, KeyBy)>)>,
            Request,
            Next,
        ) -> Pin<Box<dyn Future<Output = Response> + Send>>,
        (CrudAuth<U>, Arc<(String, RateLimit, KeyBy)>),
        (
            State<(CrudAuth<U>, Arc<(String, RateLimit, KeyBy)>)>,
            Request,
        ),
    > {
        let f: fn(
            State<(CrudAuth<U>, Arc<(String, RateLimit, KeyBy)>)>,
            Request,
            Next,
        ) -> Pin<Box<dyn Future<Output = Response> + Send>> =
            |State((auth, spec)), request, next| {
                Box::pin(rate_limit_middleware(auth, spec, request, next))
            };
        axum::middleware::from_fn_with_state(
            (self.clone(), Arc::new((action.to_owned(), limit, key))),
            f,
        )
    }

    pub(crate) fn lockout(&self) -> &Lockout {
        &self.inner.lockout
    }

    /// Creates the administrator, or promotes an existing account, from an email and a
    /// password (the demo calls it with `CRUDAUTH_DEFAULT_ADMIN_EMAIL` / `_PASSWORD`). An
    /// existing account with that address is promoted only if the password is its own; its
    /// password is left alone.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let admin = auth.ensure_admin("root@example.com", "a long admin password").await?;
    /// # Ok(()) }
    /// ```
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<U, AuthError> {
        let repo = &self.inner.repo;
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
            if !self
                .inner
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
            return repo
                .update(&user.user_id(), update)
                .await
                .map_err(repo_fault);
        }
        let ctx = PasswordContext {
            source: PasswordSource::Admin,
            username: None,
            email: Some(email.to_owned()),
        };
        if self
            .validate_password(password, &ctx, "password")
            .await
            .is_err()
        {
            return Err(AuthError::BadRequest(
                "the admin password does not meet the password policy",
            ));
        }
        let hash = self
            .inner
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

    /// A route layer that authenticates once and applies a [`Gate`]; handlers behind it can
    /// still take [`Principal`] at no extra cost. Refuses a gate that cannot hold (a verified
    /// gate on a table without `email_verified`, a transport that is not configured).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) -> Result<(), crudauth::ConfigError> {
    /// use axum::{Router, routing::get};
    /// let reports: Router = Router::new()
    ///     .route("/reports", get(|| async { "..." }))
    ///     .route_layer(auth.require(crudauth::Gate::new().scopes(["reports:read"]))?);
    /// # Ok(()) }
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn require(
        &self,
        gate: Gate<U>,
    ) -> Result<
        axum::middleware::FromFnLayer<
            fn(
                State<(CrudAuth<U>, Arc<Gate<U>>)>,
                Request,
                Next,
            ) -> Pin<Box<dyn Future<Output = Response> + Send>>,
            (CrudAuth<U>, Arc<Gate<U>>),
            (State<(CrudAuth<U>, Arc<Gate<U>>)>, Request),
        >,
        ConfigError,
    > {
        if gate.verified && !self.inner.repo.schema().has(LogicalField::EmailVerified) {
            return Err(ConfigError::Invalid(
                "a verified gate needs an email_verified column on the user table".into(),
            ));
        }
        if let Some(via) = gate.transport
            && !self.inner.transports.contains(&via)
        {
            return Err(ConfigError::Invalid(format!(
                "gate names the {} transport, which is not configured",
                via.as_str()
            )));
        }
        let f: fn(
            State<(CrudAuth<U>, Arc<Gate<U>>)>,
            Request,
            Next,
        ) -> Pin<Box<dyn Future<Output = Response> + Send>> =
            |State((auth, gate)), request, next| {
                Box::pin(gate_middleware(auth, gate, request, next))
            };
        Ok(axum::middleware::from_fn_with_state(
            (self.clone(), Arc::new(gate)),
            f,
        ))
    }
}

async fn gate_middleware<U: UserRecord>(
    auth: CrudAuth<U>,
    gate: Arc<Gate<U>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let outcome = auth.authenticate(&parts, gate.transport).await;
    let principal = match &outcome {
        Ok(Some(p)) => p.clone(),
        Ok(None) => return AuthError::NotAuthenticated.into_response(),
        Err(e) => return e.clone().into_response(),
    };
    if let Err(e) = gate.apply(&principal) {
        return e.into_response();
    }
    parts.extensions.insert(Resolved(outcome));
    next.run(Request::from_parts(parts, body)).await
}

async fn rate_limit_middleware<U: UserRecord>(
    auth: CrudAuth<U>,
    spec: Arc<(String, RateLimit, KeyBy)>,
    request: Request,
    next: Next,
) -> Response {
    let (action, limit, key) = (&spec.0, spec.1, spec.2);
    let (mut parts, body) = request.into_parts();
    let ip = format!("ip:{}", ip_key(auth.client_meta(&parts).ip));
    let identity = match key {
        KeyBy::Ip => ip,
        KeyBy::User | KeyBy::UserOrIp => {
            // The same once-per-request authentication the extractors use.
            let outcome = crate::principal::resolve(&mut parts, &auth).await;
            match (outcome, key) {
                (Err(e), _) => return e.into_response(),
                (Ok(Some(p)), _) => format!("user:{}", p.user_id),
                (Ok(None), KeyBy::UserOrIp) => ip,
                (Ok(None), _) => return AuthError::NotAuthenticated.into_response(),
            }
        }
    };
    match auth.rate_limiter().check(action, limit, &identity).await {
        Err(e) => e.into_response(),
        Ok(crate::ratelimit::Decision::Limited(limited)) => limited.into_response(),
        Ok(crate::ratelimit::Decision::Allowed(allowed)) => {
            let mut response = next.run(Request::from_parts(parts, body)).await;
            if let Some(allowed) = allowed {
                allowed.write_headers(response.headers_mut());
            }
            response
        }
    }
}

/// Extracts the [`ClientMeta`] of a request from a `CrudAuth` state.
impl<U: UserRecord> FromRequestParts<CrudAuth<U>> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &CrudAuth<U>,
    ) -> Result<Self, Self::Rejection> {
        Ok(state.client_meta(parts))
    }
}
