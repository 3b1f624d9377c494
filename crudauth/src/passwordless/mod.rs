//! Passwordless sign-in (feature `passwordless`, switched on by
//! [`crate::CrudAuthBuilder::passwordless`]): a six-digit code sent by email or SMS, and by
//! email a magic link beside it.
//!
//! - `POST /otp/request {email | phone}` answers the same way, at the same time, whether or
//!   not an account has the address: the lookup, the throttles and the delivery run in the
//!   background (as the email flows' request routes do).
//! - `POST /otp/verify {email | phone, code}` and `GET | POST /magic-link/verify {token}` sign
//!   in: the session's cookies, or a token pair with `"response": "token"`; an account with a
//!   second factor gets its challenge first.
//! - Codes live 10 minutes, stored as a keyed hash that binds the medium and the address; at
//!   most 5 attempts a code, then it is dead; a new request replaces the old code (and its
//!   link); every attempt counts in the login lockout; comparisons are constant-time.
//! - A magic link carries 256 random bits, single use under concurrency (a compare-and-set
//!   spends it), and in same-browser mode opens only in the browser that asked (a cookie
//!   set by the request).
//! - Optionally (off by default) a code or link for an address without an account creates
//!   the account (`on_before_register` may veto it).
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! # let b = b.email_sender(std::sync::Arc::new(crudauth::delivery::OutboxSender::new(std::env::temp_dir().join("pl-doc.jsonl"))));
//! use crudauth::passwordless::PasswordlessConfig;
//! let auth = b.passwordless(PasswordlessConfig::new("https://app.example.com")).build()?;
//! assert!(auth.passwordless().is_some());
//! # Ok(()) });
//! ```

mod codes;
mod flows;

use std::sync::Arc;
use std::time::Duration;

use crate::core::Core;
use crate::error::{AuthError, ConfigError};
use crate::login::Login;
use crate::user::{DynUserRepository, LogicalField, UserRecord};

pub use flows::Address;
pub(crate) use flows::Proven;

/// Settings of passwordless sign-in.
///
/// ```
/// let c = crudauth::passwordless::PasswordlessConfig::new("https://app.example.com");
/// assert_eq!(c.code_ttl.as_secs(), 600);
/// assert_eq!(c.max_attempts, 5);
/// assert!(!c.create_accounts && !c.same_browser);
/// ```
#[derive(Clone, Debug)]
pub struct PasswordlessConfig {
    /// The frontend's absolute base URL; magic links start with it. Never taken from a
    /// request's `Host` header.
    pub frontend_url: String,
    /// Path of the page that opens a magic link (default `/magic-link`): it reads the
    /// token, removes it from the address bar and posts it to `/magic-link/verify`.
    pub link_path: String,
    /// Whether emails carry a magic link beside the code (default `true`).
    pub magic_links: bool,
    /// How long a code (and its link) can be used (default 10 minutes).
    pub code_ttl: Duration,
    /// Wrong codes after which a code is dead (default 5).
    pub max_attempts: u32,
    /// Whether a code or link for an address without an account creates one (default
    /// `false`); `on_before_register` hooks may veto each.
    pub create_accounts: bool,
    /// Whether a magic link opens only in the browser that asked for it (default `false`):
    /// the request sets a cookie, the link checks it.
    pub same_browser: bool,
    /// The request route answers this long after the request arrived (default 50 ms),
    /// whatever the account (as [`crate::RecoveryConfig::answer_after`]).
    pub answer_after: Duration,
}

impl PasswordlessConfig {
    /// The defaults, with magic links under `frontend_url`.
    ///
    /// ```
    /// let c = crudauth::passwordless::PasswordlessConfig::new("http://127.0.0.1:3000");
    /// assert_eq!(c.link_path, "/magic-link");
    /// ```
    pub fn new(frontend_url: impl Into<String>) -> Self {
        PasswordlessConfig {
            frontend_url: frontend_url.into(),
            link_path: "/magic-link".into(),
            magic_links: true,
            code_ttl: Duration::from_secs(600),
            max_attempts: 5,
            create_accounts: false,
            same_browser: false,
            answer_after: Duration::from_millis(50),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("passwordless: {m}")));
        let uri: Option<axum::http::Uri> = self.frontend_url.parse().ok();
        let fine = uri.is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https"))
                && u.authority().is_some()
                && u.query().is_none()
        }) && !self.frontend_url.contains('#');
        if !fine {
            return bad("frontend_url must be an absolute http(s) URL without query or fragment");
        }
        if !self.link_path.starts_with('/')
            || self.link_path.contains(['?', '#'])
            || self
                .link_path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad("link_path must start with / and hold no query");
        }
        if self.code_ttl < Duration::from_secs(60) || self.code_ttl > Duration::from_secs(3600) {
            return bad("code_ttl must be between 1 minute and 1 hour");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return bad("max_attempts must be between 1 and 10");
        }
        if self.answer_after > Duration::from_secs(5) {
            return bad("answer_after must be at most 5 seconds");
        }
        Ok(())
    }
}

/// The passwordless service (present when [`crate::CrudAuthBuilder::passwordless`] was
/// given). Reached as `auth.passwordless()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// # let b = b.email_sender(std::sync::Arc::new(crudauth::delivery::OutboxSender::new(std::env::temp_dir().join("pl-doc.jsonl"))));
/// # let auth = b.passwordless(crudauth::passwordless::PasswordlessConfig::new("https://app.example.com")).build()?;
/// let passwordless = auth.passwordless().expect("passwordless on");
/// assert_eq!(passwordless.config().max_attempts, 5);
/// # Ok(()) });
/// ```
pub struct Passwordless<U> {
    core: Arc<Core<U>>,
    login: Login<U>,
    /// `repo()`: writes announced (an account created, an address verified).
    repo: Arc<dyn DynUserRepository<U>>,
    parts: Arc<Parts>,
    /// The takeover of an account whose address was never proven (the builder wires it).
    claim: Option<Arc<crate::claim::Claim<U>>>,
}

struct Parts {
    config: PasswordlessConfig,
    /// Whether codes can go by email (an email column and an email sender).
    email: bool,
    /// Whether codes can go by SMS (a phone column and a delivery channel).
    sms: bool,
}

impl<U> Clone for Passwordless<U> {
    fn clone(&self) -> Self {
        Passwordless {
            core: self.core.clone(),
            login: self.login.clone(),
            repo: self.repo.clone(),
            parts: self.parts.clone(),
            claim: self.claim.clone(),
        }
    }
}

impl<U> std::fmt::Debug for Passwordless<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwordless")
            .field("config", &self.parts.config)
            .field("email", &self.parts.email)
            .field("sms", &self.parts.sms)
            .finish_non_exhaustive()
    }
}

fn store_fault(e: crate::store::StoreError) -> AuthError {
    crate::store::fail_closed("passwordless store", &e)
}

impl<U: UserRecord> Passwordless<U> {
    pub(crate) fn new(
        core: Arc<Core<U>>,
        login: Login<U>,
        repo: Arc<dyn DynUserRepository<U>>,
        config: PasswordlessConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let schema = *core.repo.schema();
        let email = schema.recovery.and_then(|f| f.logical) == Some(LogicalField::Email)
            && core.deliveries.sends_email();
        let sms = schema.has(LogicalField::Phone) && core.deliveries.has_channels();
        if !email && !sms {
            return Err(ConfigError::Invalid(
                "passwordless needs an email column (as the recovery field) and an email \
                 sender, or a phone column and a delivery channel"
                    .into(),
            ));
        }
        if email && !schema.writable(LogicalField::EmailVerified) {
            // A code proves the address, and an account whose address was never proven is
            // claimed before its owner signs in (else a squatter who registered the address
            // keeps their password and passkeys in it): that needs the column, writable.
            return Err(ConfigError::Invalid(
                "passwordless sign-in by email needs a writable email_verified column".into(),
            ));
        }

        if config.create_accounts && schema.has(LogicalField::Username) {
            tracing::info!("crudauth: passwordless sign-up derives usernames from the address");
        }
        Ok(Passwordless {
            core,
            login,
            repo,
            parts: Arc::new(Parts { config, email, sms }),
            claim: None,
        })
    }

    /// The claim of accounts with an unproven address (the builder wires it).
    pub(crate) fn with_claim(mut self, claim: Arc<crate::claim::Claim<U>>) -> Self {
        self.claim = Some(claim);
        self
    }

    /// The settings.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let b = b.email_sender(std::sync::Arc::new(crudauth::delivery::OutboxSender::new(std::env::temp_dir().join("pl-doc.jsonl"))));
    /// # let auth = b.passwordless(crudauth::passwordless::PasswordlessConfig::new("https://app.example.com")).build()?;
    /// assert_eq!(auth.passwordless().unwrap().config().code_ttl.as_secs(), 600);
    /// # Ok(()) });
    /// ```
    pub fn config(&self) -> &PasswordlessConfig {
        &self.parts.config
    }
}
