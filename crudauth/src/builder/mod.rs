//! [`CrudAuthBuilder`]: every part of a [`CrudAuth`] set once, every contradiction refused by
//! [`CrudAuthBuilder::build`]. The hook setters are in `hooks.rs`.

mod abuse;
#[cfg(feature = "admin")]
mod admin;
#[cfg(feature = "api-keys")]
mod api_key;
#[cfg(feature = "dev-bypass")]
mod dev;
#[cfg(feature = "device-login")]
mod device_login;
mod hooks;
mod methods;
#[cfg(feature = "mfa")]
mod mfa;
#[cfg(feature = "oauth")]
mod oauth;
#[cfg(feature = "passkeys")]
mod passkey;
#[cfg(feature = "passwordless")]
mod passwordless;
mod tenant;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::background::Background;
use crate::cache::{UserCache, UserCacheConfig};
use crate::core::Core;
use crate::delivery::{Deliveries, DeliveryChannel, EmailSender};
use crate::error::ConfigError;
use crate::facade::{CrudAuth, Inner};
use crate::hooks::Hooks;
use crate::keys::Keys;
use crate::lockout::{Lockout, LockoutConfig};
use crate::login::Login;
use crate::password::{LegacyHashes, PasswordConfig, PasswordHasher};
use crate::policy::PasswordPolicy;
use crate::principal::Transport;
use crate::ratelimit::{RateLimit, RateLimiter};
use crate::recovery::{Recovery, RecoveryConfig};
use crate::revocation::Revocation;
use crate::session::{SessionConfig, Sessions};
use crate::store::{MemoryStore, Store, TimeoutStore};
use crate::sudo::{Sudo, SudoConfig};
use crate::tokens::{BearerConfig, TokenService};
use crate::user::{DynUserRepository, LogicalField, UserRecord, UserRepository};

/// Builds a [`CrudAuth`]; every contradiction is refused by [`CrudAuthBuilder::build`].
pub struct CrudAuthBuilder<U> {
    repo: Arc<dyn DynUserRepository<U>>,
    secret: Option<Vec<u8>>,
    session: Option<SessionConfig>,
    bearer: Option<BearerConfig>,
    order: Vec<Transport>,
    lockout: LockoutConfig,
    password: PasswordConfig,
    legacy: Option<LegacyHashes>,
    user_cache: UserCacheConfig,
    policy: PasswordPolicy,
    trusted_proxy_hops: usize,
    store: Option<Arc<dyn Store>>,
    hooks: Hooks<U>,
    register_extra_fields: BTreeSet<String>,
    rate_limits: std::collections::BTreeMap<String, RateLimit>,
    recovery: Option<RecoveryConfig>,
    email_sender: Option<Arc<dyn EmailSender>>,
    channels: Vec<Arc<dyn DeliveryChannel>>,
    sudo: SudoConfig,
    store_timeout: Duration,
    /// The optional sign-in methods' settings.
    methods: methods::Settings<U>,
    #[cfg(feature = "dev-bypass")]
    dev_bypass: Option<crate::dev::DevBypass<U>>,
    tenants: Option<crate::tenant::TenantConfig<U>>,
    abuse: abuse::Settings,
}

impl<U: UserRecord> CrudAuth<U> {
    /// Starts a builder over a user repository.
    ///
    /// ```
    /// # let repo = crudauth::doc_fixture::Repo::new();
    /// let builder = crudauth::CrudAuth::builder(repo);
    /// // Nothing configured yet: `build` says what is missing.
    /// assert!(matches!(builder.build(), Err(crudauth::ConfigError::MissingSecret)));
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
            legacy: None,
            user_cache: UserCacheConfig::default(),
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
            methods: methods::Settings::default(),
            #[cfg(feature = "dev-bypass")]
            dev_bypass: None,
            tenants: None,
            abuse: abuse::Settings::default(),
        }
    }
}

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// The secret key (at least 32 bytes); per-purpose keys are derived from it.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.secret_key(std::env::var("CRUDAUTH_SECRET_KEY").unwrap_or_else(|_| crudauth::generate_secret_key()));
    /// assert!(b.build().is_ok());
    /// # let b = crudauth::doc_fixture::builder().await;
    /// assert!(matches!(b.secret_key("too short").build(), Err(crudauth::ConfigError::SecretTooShort)));
    /// # Ok(()) });
    /// ```
    pub fn secret_key(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Adds the session transport (cookie + CSRF), tried in the order transports are added.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.session(crudauth::SessionConfig::default());
    /// assert!(b.build()?.sessions().is_some());
    /// # Ok(()) });
    /// ```
    pub fn session(mut self, config: SessionConfig) -> Self {
        self.session = Some(config);
        self.order.retain(|v| *v != Transport::Session);
        self.order.push(Transport::Session);
        self
    }

    /// Adds the bearer transport (JWT access + rotating refresh tokens).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.bearer(crudauth::BearerConfig::default());
    /// assert!(b.build()?.tokens().is_some());
    /// # Ok(()) });
    /// ```
    pub fn bearer(mut self, config: BearerConfig) -> Self {
        self.bearer = Some(config);
        self.order.retain(|v| *v != Transport::Bearer);
        self.order.push(Transport::Bearer);
        self
    }

    /// Lockout thresholds.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.lockout(crudauth::LockoutConfig { max_attempts: 3, ..Default::default() });
    /// # b.build()?;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let refused = b.lockout(crudauth::LockoutConfig { max_attempts: 0, ..Default::default() }).build();
    /// assert!(refused.is_err());
    /// # Ok(()) });
    /// ```
    pub fn lockout(mut self, config: LockoutConfig) -> Self {
        self.lockout = config;
        self
    }

    /// Password hashing parameters.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.password(crudauth::password::PasswordConfig { max_length: 256, ..Default::default() });
    /// assert_eq!(b.build()?.passwords().max_length(), 256);
    /// # Ok(()) });
    /// ```
    pub fn password(mut self, config: PasswordConfig) -> Self {
        self.password = config;
        self
    }

    /// The old hash formats a legacy table brings (bcrypt, PBKDF2, scrypt, an app's own
    /// verifier): they verify, a successful sign-in upgrades them to argon2id, and every
    /// password check is held to the slowest one's time (see [`LegacyHashes`]).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::password::LegacyHashes;
    /// let legacy = LegacyHashes::built_in().timing_samples(Vec::<String>::new());
    /// let auth = b.legacy_hashes(legacy).build()?;
    /// # Ok(()) });
    /// ```
    pub fn legacy_hashes(mut self, legacy: LegacyHashes) -> Self {
        self.legacy = Some(legacy);
        self
    }

    /// The user cache: authenticated requests use a user read earlier, in this process, while
    /// its generation says nothing changed (default: 10,000 users, 5 s at most; see
    /// [`UserCacheConfig`]). `capacity: 0` reads the user on every request.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let auth = b.user_cache(crudauth::UserCacheConfig { capacity: 0, ..Default::default() }).build()?;
    /// # Ok(()) });
    /// ```
    pub fn user_cache(mut self, config: UserCacheConfig) -> Self {
        self.user_cache = config;
        self
    }

    /// Minimum password length in characters (default 8); shorthand for the policy's
    /// `min_length`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.min_password_length(12);
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    pub fn min_password_length(mut self, min: usize) -> Self {
        self.policy.min_length = min;
        self
    }

    /// The password policy, applied on register, set, change and reset.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::policy::PasswordPolicy;
    /// let b = b.password_policy(PasswordPolicy { min_length: 12, require_digit: true, ..Default::default() });
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Turns on the email flows (verify, reset, email change): links are built from
    /// `config.frontend_url`, never from the request. Needs an email sender or a delivery
    /// channel.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b
    ///     .recovery(crudauth::RecoveryConfig::new("https://app.example.com"))
    ///     .email_sender(std::sync::Arc::new(crudauth::delivery::OutboxSender::new("outbox.jsonl")));
    /// assert!(b.build()?.recovery().is_some());
    /// # Ok(()) });
    /// ```
    pub fn recovery(mut self, config: RecoveryConfig) -> Self {
        self.recovery = Some(config);
        self
    }

    /// The email sender for the email flows.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.email_sender(std::sync::Arc::new(crudauth::delivery::OutboxSender::new("outbox.jsonl")));
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    pub fn email_sender(mut self, sender: Arc<dyn EmailSender>) -> Self {
        self.email_sender = Some(sender);
        self
    }

    /// Adds a delivery channel (SMS, push, ...), fired after the email sender.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// # use crudauth::delivery::{Delivery, DeliveryChannel, DeliveryError};
    /// # struct Sms;
    /// # #[async_trait::async_trait]
    /// # impl DeliveryChannel for Sms {
    /// #     async fn deliver(&self, _: &Delivery) -> Result<(), DeliveryError> { Ok(()) }
    /// # }
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let sms: std::sync::Arc<dyn DeliveryChannel> = std::sync::Arc::new(Sms);
    /// let b = b.delivery_channel(sms);
    /// let auth = b.build()?; // every message goes to the email sender, then to the SMS channel
    /// # Ok(()) });
    /// ```
    pub fn delivery_channel(mut self, channel: Arc<dyn DeliveryChannel>) -> Self {
        self.channels.push(channel);
        self
    }

    /// Sudo settings (elevation window, attempts, lock).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.sudo(crudauth::SudoConfig { window: std::time::Duration::from_secs(120), ..Default::default() });
    /// assert_eq!(b.build()?.sudo().config().window.as_secs(), 120);
    /// # Ok(()) });
    /// ```
    pub fn sudo(mut self, config: SudoConfig) -> Self {
        self.sudo = config;
        self
    }

    /// How many proxies in front of the app to trust for `X-Forwarded-For` (default 0).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.trusted_proxy_hops(1); // one reverse proxy in front
    /// let auth = b.build()?;
    /// let (mut parts, _) = axum::http::Request::new(()).into_parts();
    /// parts.headers.insert("x-forwarded-for", "198.51.100.4".parse()?);
    /// assert_eq!(auth.client_meta(&parts).ip, Some([198, 51, 100, 4].into()));
    /// # Ok(()) });
    /// ```
    pub fn trusted_proxy_hops(mut self, hops: usize) -> Self {
        self.trusted_proxy_hops = hops;
        self
    }

    /// The store for sessions, lockout counters, refresh families and epochs (default: memory).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.store(std::sync::Arc::new(crudauth::store::MemoryStore::new()));
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The deadline on every store call (default 2 s): a store that answers slower is a
    /// fault, answered `503` (fail closed), never a request that hangs.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.store_timeout(std::time::Duration::from_millis(500));
    /// # b.build()?;
    /// # Ok(()) });
    /// ```
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// The application's own columns `/register` may write (everything else is dropped).
    /// `build` refuses a contract field by name, and by its column where the repository
    /// names it (`UserRepository::contract_columns`; `crudauth-sea` does).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// let b = b.register_extra_fields(["display_name"]);
    /// # b.build()?;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// // A contract field can never be set by a client.
    /// assert!(b.register_extra_fields(["is_superuser"]).build().is_err());
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use std::time::Duration;
    /// let b = b
    ///     .rate_limit("register", crudauth::RateLimit::new(20, Duration::from_secs(3600)))
    ///     .rate_limit("csrf_refresh", crudauth::RateLimit::OFF);
    /// let auth = b.build()?;
    /// assert_eq!(auth.rate_limiter().limit("register").map(|l| l.times), Some(20));
    /// # Ok(()) });
    /// ```
    pub fn rate_limit(mut self, action: &str, limit: RateLimit) -> Self {
        self.rate_limits.insert(action.to_owned(), limit);
        self
    }
}

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Validates the configuration and wires the services.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # use crudauth::doc_fixture::User;
    /// let auth: Result<crudauth::CrudAuth<User>, crudauth::ConfigError> = b.build();
    /// assert!(auth.is_ok());
    /// # Ok(()) });
    /// ```
    pub fn build(self) -> Result<CrudAuth<U>, ConfigError> {
        let secret = self.secret.ok_or(ConfigError::MissingSecret)?;
        let keys = Arc::new(Keys::derive(&secret)?);
        if self.order.is_empty() {
            return Err(ConfigError::NoTransport);
        }
        #[cfg(feature = "dev-bypass")]
        if let Some(bypass) = &self.dev_bypass {
            bypass.check()?;
        }
        self.policy.validate_config(self.password.max_length)?;
        self.sudo.validate()?;
        self.lockout.validate()?;
        let schema = *self.repo.schema();
        // The repository names the columns mapped to contract fields (the tenant column, a
        // renamed flag): none of them may be registered either.
        let contract = self.repo.contract_columns();
        for field in &self.register_extra_fields {
            let mapped = schema.login.iter().any(|f| f.column == field)
                || schema.recovery.is_some_and(|f| f.column == field);
            let privileged = LogicalField::ALL.iter().any(|f| f.name() == field);
            let privileged = privileged || contract.contains(&field.as_str());
            if privileged || mapped {
                return Err(ConfigError::Invalid(format!(
                    "register_extra_fields: `{field}` is a contract field and can never be set by a client"
                )));
            }
        }
        let verified = LogicalField::EmailVerified;
        if self.recovery.is_some() && schema.has(verified) && !schema.writable(verified) {
            return Err(ConfigError::Invalid(
                "the email flows mark addresses verified, but email_verified is read through a \
                 function only: give it a write function (#[auth(email_verified(column = .., \
                 read = .., write = ..))]) or leave the recovery config out"
                    .into(),
            ));
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
        let mut password = self.password;
        if let Some(legacy) = self.legacy {
            password.legacy = legacy;
        }
        let passwords = PasswordHasher::new(password)?;
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
        let background = Background::default();
        let deliveries = Deliveries::new(self.email_sender, self.channels);
        let recovery = match self.recovery.clone() {
            Some(config) => Some(config),
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
        let fresh_sign_in = self
            .recovery
            .as_ref()
            .map_or(Duration::from_secs(600), |r| r.fresh_sign_in);
        let tenancy = crate::tenant::Tenancy::new(self.tenants, &schema)?;
        let (disposable, captcha) = self.abuse.build(&self.register_extra_fields, &store)?;
        let cache = Arc::new(UserCache::<U>::new(self.user_cache));
        // Session records are told of generation moves even by a process without the session
        // transport (a bearer-only API sharing the store with the web processes).
        let session_index = sessions.clone().unwrap_or_else(|| {
            Sessions::new(store.clone(), keys.clone(), SessionConfig::default())
        });
        let revocation =
            Revocation::new(self.repo.clone(), store.clone(), Some(session_index), cache);
        let core = Arc::new(Core {
            repo: self.repo,
            store: store.clone(),
            keys: keys.clone(),
            passwords,
            policy: self.policy,
            lockout,
            limiter,
            revocation,
            sessions,
            tokens,
            transports: self.order,
            hooks: self.hooks,
            deliveries,
            background,
            trusted_proxy_hops: self.trusted_proxy_hops,
            register_extra_fields: self.register_extra_fields,
            fresh_sign_in,
            #[cfg(feature = "dev-bypass")]
            dev_bypass: self.dev_bypass,
            tenancy,
            disposable,
            captcha,
        });
        let login = Login::new(core.clone());
        let recovery = match recovery {
            Some(config) => Some(Recovery::new(
                core.clone(),
                login.clone(),
                config,
                keys.one_time,
            )?),
            None => None,
        };
        let sudo = Sudo::new(core.clone(), login.clone(), self.sudo);
        let repo = Arc::new(crate::announce::Announcing {
            repo: core.repo.clone(),
            revocation: core.revocation.clone(),
        });
        let methods = self.methods.build(methods::Parts {
            core: &core,
            login: &login,
            sudo: &sudo,
            repo: &(repo.clone() as Arc<dyn crate::user::DynUserRepository<U>>),
            recovery: recovery.as_ref(),
        })?;
        Ok(CrudAuth {
            inner: Arc::new(Inner {
                repo,
                core,
                login,
                sudo,
                recovery,
                methods,
            }),
        })
    }
}
