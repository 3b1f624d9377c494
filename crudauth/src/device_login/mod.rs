//! CLI device login (feature `device-login`, switched on by
//! [`crate::CrudAuthBuilder::device_login`]): a command-line client signs in through a
//! browser where its user is already signed in, as zndraw-auth's `/auth/cli-login` does
//! (same paths, field names and statuses), hardened.
//!
//! - `POST /auth/cli-login` (no auth) starts a challenge: `{code, secret, approve_url}` as
//!   zndraw-auth answers, plus a short `user_code` (8 characters from an alphabet without
//!   look-alikes, shown as `ABCD-EFGH`), `expires_in` and `interval`.
//! - The CLI polls `GET /auth/cli-login/{code}?secret=..` every `interval` seconds:
//!   `pending`, then `approved` with a normal access + refresh pair, exactly once (a
//!   compare-and-set hands it to one poll); `rejected` (403), expired (410). Polling faster
//!   than `interval` answers `slow_down` (429), as RFC 8628 asks.
//! - The signed-in browser user reads the challenge (`GET /auth/cli-login/{code}`: the
//!   requesting client's address and user agent, its times; never the secret or the user
//!   code) and approves it with `PATCH {user_code, scopes?}`, or rejects it with `DELETE`.
//!   The user code the CLI printed must be typed: a phished approve link alone approves
//!   nothing, and too many wrong user codes kill the challenge.
//! - Challenges live five minutes (configurable) in the store under a keyed hash of the
//!   code; the secret and the user code are kept only as keyed hashes and compared in
//!   constant time; no token is ever stored (the pair is minted when the approved challenge
//!   is redeemed, at the approver's epoch, so a password change in between revokes it).
//!   Redeemed and rejected challenges stay as audit records without secrets for
//!   [`DeviceLoginConfig::audit_ttl`] ([`DeviceLogin::history`]).
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! use crudauth::device_login::DeviceLoginConfig;
//! let auth = b.device_login(DeviceLoginConfig::default()).build()?;
//! let device_login = auth.device_login().expect("device login on");
//! let started = device_login.start(&crudauth::doc_fixture::client()).await?;
//! assert_eq!(started.user_code.len(), 9); // ABCD-EFGH
//! # Ok(()) });
//! ```

mod challenge;
mod codes;

pub use crate::hooks::DeviceLoginAction;
pub use codes::normalize_user_code;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::clock::Clock;
use crate::core::Core;
use crate::error::{AuthError, ConfigError};
use crate::tokens::TokenPair;
use crate::user::UserRecord;

/// Settings of the CLI device login.
///
/// ```
/// let c = crudauth::device_login::DeviceLoginConfig::default();
/// assert_eq!(c.ttl.as_secs(), 300);
/// assert_eq!(c.interval.as_secs(), 5);
/// assert_eq!(c.approve_url, "/auth/cli-login/{code}");
/// ```
#[derive(Clone, Debug)]
pub struct DeviceLoginConfig {
    /// How long a challenge can be approved and redeemed (default 5 minutes).
    pub ttl: Duration,
    /// The polling interval the CLI is told; a faster poll answers `slow_down` (default 5
    /// seconds, whole seconds from 1 to 60).
    pub interval: Duration,
    /// The approve page's URL, with `{code}` where the challenge's code goes: a path
    /// (`/auth/cli-login/{code}`, zndraw-auth's answer and the default) or an absolute
    /// http(s) URL of the frontend's page. Never taken from a request's `Host` header.
    pub approve_url: String,
    /// Wrong user codes after which a challenge is dead (default 5).
    pub max_attempts: u32,
    /// How long redeemed and rejected challenges are kept for audit, without their secrets
    /// (default 24 hours).
    pub audit_ttl: Duration,
    /// The clock expiry is decided by (tests move an adjustable one forward).
    pub clock: Clock,
}

impl Default for DeviceLoginConfig {
    fn default() -> Self {
        DeviceLoginConfig {
            ttl: Duration::from_secs(300),
            interval: Duration::from_secs(5),
            approve_url: "/auth/cli-login/{code}".into(),
            max_attempts: 5,
            audit_ttl: Duration::from_secs(24 * 3600),
            clock: Clock::system(),
        }
    }
}

impl DeviceLoginConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("device login: {m}")));
        if self.ttl < Duration::from_secs(30) || self.ttl > Duration::from_secs(3600) {
            return bad("ttl must be between 30 seconds and 1 hour");
        }
        let interval = self.interval.as_secs();
        if !(1..=60).contains(&interval) || self.interval.subsec_nanos() != 0 {
            return bad("interval must be whole seconds from 1 to 60");
        }
        if self.interval >= self.ttl {
            return bad("interval must be shorter than ttl");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return bad("max_attempts must be between 1 and 10");
        }
        if self.audit_ttl < Duration::from_secs(60)
            || self.audit_ttl > Duration::from_secs(90 * 86400)
        {
            return bad("audit_ttl must be between 1 minute and 90 days");
        }
        let url = &self.approve_url;
        let absolute = url.parse::<axum::http::Uri>().ok().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
        });
        let fine = url.matches("{code}").count() == 1
            && (url.starts_with('/') && !url.starts_with("//") || absolute)
            && !url.contains('#')
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !fine {
            return bad(
                "approve_url must be a path or an absolute http(s) URL holding {code} once",
            );
        }
        Ok(())
    }
}

/// A started challenge, as `POST /auth/cli-login` answers it. The `secret` goes only to
/// the CLI; the `user_code` is shown to its user, who types it in the browser.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// # let auth = b.device_login(Default::default()).build()?;
/// let started = auth.device_login().unwrap().start(&crudauth::doc_fixture::client()).await?;
/// assert!(started.approve_url.ends_with(&started.code));
/// assert_eq!((started.expires_in, started.interval), (300, 5));
/// # Ok(()) });
/// ```
#[derive(Clone, Serialize)]
pub struct Started {
    /// Names the challenge (in the approve URL); 128 random bits.
    pub code: String,
    /// Proves the poller started it; 256 random bits.
    pub secret: String,
    /// Where the browser approves it.
    pub approve_url: String,
    /// What the user types in the browser (`ABCD-EFGH`).
    pub user_code: String,
    /// Seconds the challenge lives.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("approve_url", &self.approve_url)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// What a poll found.
///
/// ```
/// use crudauth::device_login::Poll;
/// let poll = Poll::SlowDown { interval: 5 };
/// assert_eq!(poll.status(), "slow_down");
/// ```
#[derive(Debug)]
pub enum Poll {
    /// Nobody decided yet.
    Pending,
    /// Polled faster than `interval` seconds.
    SlowDown {
        /// The interval to keep.
        interval: u64,
    },
    /// Approved: the pair (handed out once; the challenge is now an audit record).
    Approved(TokenPair),
    /// Rejected in the browser, killed by wrong user codes, or the approver's account
    /// changed (disabled, password changed) before the pair was handed out.
    Rejected,
    /// Not redeemed in time.
    Expired,
}

impl Poll {
    /// The `status` field of the answer.
    ///
    /// ```
    /// assert_eq!(crudauth::device_login::Poll::Pending.status(), "pending");
    /// ```
    pub fn status(&self) -> &'static str {
        match self {
            Poll::Pending => "pending",
            Poll::SlowDown { .. } => "slow_down",
            Poll::Approved(_) => "approved",
            Poll::Rejected => "rejected",
            Poll::Expired => "expired",
        }
    }
}

/// A browser user's decision on a challenge, when it could not be taken.
///
/// ```
/// use crudauth::device_login::Decision;
/// assert_ne!(Decision::Conflict, Decision::Expired);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Taken: approved with these scopes (empty for a rejection).
    Done(Vec<String>),
    /// Somebody decided first (approved, rejected or killed): 409.
    Conflict,
    /// The challenge expired: 410.
    Expired,
}

/// A challenge as the approve page shows it, and as the audit keeps it: never a secret,
/// a user code or a token.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// # let auth = b.device_login(Default::default()).build()?;
/// let device_login = auth.device_login().unwrap();
/// let started = device_login.start(&crudauth::doc_fixture::client()).await?;
/// let view = device_login.view(&started.code, "1").await?;
/// assert_eq!(view.status, "pending");
/// assert_eq!(view.client_ip.as_deref(), Some("203.0.113.7"));
/// # Ok(()) });
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct ChallengeView {
    /// `pending`, `approved`, `rejected`, `redeemed`, `killed` (too many wrong user codes)
    /// or `revoked` (the approver's account changed before redemption).
    pub status: String,
    /// The address of the client that started it.
    pub client_ip: Option<String>,
    /// Its user agent.
    pub user_agent: String,
    /// Unix seconds it was started.
    pub created: i64,
    /// Unix seconds it expires (or expired).
    pub expires: i64,
    /// Who approved or rejected it (their id).
    pub decided_by: Option<String>,
    /// Unix seconds of that decision.
    pub decided: Option<i64>,
    /// Unix seconds the CLI got its pair.
    pub redeemed: Option<i64>,
    /// The scopes approved.
    pub scopes: Vec<String>,
}

/// The device login service (present when [`crate::CrudAuthBuilder::device_login`] was
/// given). Reached as `auth.device_login()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// # let auth = b.device_login(Default::default()).build()?;
/// assert_eq!(auth.device_login().unwrap().config().max_attempts, 5);
/// # Ok(()) });
/// ```
pub struct DeviceLogin<U> {
    core: Arc<Core<U>>,
    login: crate::login::Login<U>,
    config: Arc<DeviceLoginConfig>,
}

impl<U> Clone for DeviceLogin<U> {
    fn clone(&self) -> Self {
        DeviceLogin {
            core: self.core.clone(),
            login: self.login.clone(),
            config: self.config.clone(),
        }
    }
}

impl<U> std::fmt::Debug for DeviceLogin<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn store_fault(e: crate::store::StoreError) -> AuthError {
    crate::store::fail_closed("device login store", &e)
}

impl<U: UserRecord> DeviceLogin<U> {
    pub(crate) fn new(
        core: Arc<Core<U>>,
        login: crate::login::Login<U>,
        config: DeviceLoginConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if core.tokens.is_none() {
            // The CLI is handed a token pair: without the bearer transport there is none.
            return Err(ConfigError::Invalid(
                "device login needs the bearer transport (`.bearer(..)`)".into(),
            ));
        }
        Ok(DeviceLogin {
            core,
            login,
            config: Arc::new(config),
        })
    }

    /// The settings.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.device_login(Default::default()).build()?;
    /// assert_eq!(auth.device_login().unwrap().config().ttl.as_secs(), 300);
    /// # Ok(()) });
    /// ```
    pub fn config(&self) -> &DeviceLoginConfig {
        &self.config
    }
}
