//! Rate limits for the auth-adjacent routes and for the application's own routes.
//!
//! Fixed windows aligned to multiples of the period (as the original), counted with atomic
//! increments in the configured store, so every process behind a load balancer shares them.
//! `times = 0` switches a limit off. Answers carry `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` (and the original's `X-RateLimit-Limit` / `X-RateLimit-Remaining`); a
//! refusal is `429 Too many requests. Try again later.` with `Retry-After`. A store fault
//! fails closed (503), like every other use of the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::AuthError;
use crate::keys::hmac_hex;
use crate::store::Store;

pub use crate::quota::{Allowed, Limited};

/// A limit: `times` requests per `period`; `times = 0` turns it off.
///
/// ```
/// let limit = crudauth::RateLimit::new(5, std::time::Duration::from_secs(3600));
/// assert!(!limit.is_off());
/// assert!(crudauth::RateLimit::OFF.is_off());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub times: u32,
    /// The window.
    pub period: Duration,
}

impl RateLimit {
    /// The explicit off switch.
    pub const OFF: RateLimit = RateLimit {
        times: 0,
        period: Duration::from_secs(3600),
    };

    /// `times` per `period`.
    ///
    /// ```
    /// let per_minute = crudauth::RateLimit::new(30, std::time::Duration::from_secs(60));
    /// assert_eq!(per_minute.times, 30);
    /// ```
    pub const fn new(times: u32, period: Duration) -> Self {
        RateLimit { times, period }
    }

    /// Whether the limit is switched off.
    ///
    /// ```
    /// assert!(crudauth::RateLimit::new(0, std::time::Duration::from_secs(1)).is_off());
    /// ```
    pub fn is_off(&self) -> bool {
        self.times == 0
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// The built-in actions and their defaults (those of the original).
///
/// ```
/// let defaults = crudauth::ratelimit::default_limits();
/// assert_eq!(defaults["register"].times, 5);
/// ```
pub fn default_limits() -> BTreeMap<&'static str, RateLimit> {
    BTreeMap::from([
        ("register", RateLimit::new(5, HOUR)),
        ("email_verify_request", RateLimit::new(5, HOUR)),
        ("password_reset_request", RateLimit::new(5, HOUR)),
        ("email_change_request", RateLimit::new(3, HOUR)),
        ("existing_account_notice", RateLimit::new(5, HOUR)),
        ("change_password", RateLimit::new(5, HOUR)),
        ("logout_all", RateLimit::new(10, HOUR)),
        ("csrf_refresh", RateLimit::new(30, HOUR)),
        // Per client IP: starting a provider sign-in stores a pending state.
        ("oauth_authorize", RateLimit::new(30, HOUR)),
        // Per user: the four two-factor management routes share one budget.
        ("mfa_manage", RateLimit::new(10, HOUR)),
        // Per user: second-factor codes (verify, management, sudo), which a password reset
        // does not refill as it does the login lockout.
        ("mfa_code", RateLimit::new(20, HOUR)),
        // Per client IP: starting a passkey sign-in stores a ceremony.
        (
            "passkey_login",
            RateLimit::new(30, Duration::from_secs(600)),
        ),
        // Per user: registering, renaming and removing passkeys, and passkey sudo.
        ("passkey_manage", RateLimit::new(20, HOUR)),
        // Per client IP, and silently per address in the background (as the email flows'
        // request routes): a sign-in code by email or SMS.
        ("otp_request", RateLimit::new(10, HOUR)),
        // Per client IP: codes tried (each also counts in the login lockout) and magic links.
        ("otp_verify", RateLimit::new(30, HOUR)),
        ("magic_link_verify", RateLimit::new(20, HOUR)),
        // Per user: a code texted to confirm a new phone number (`PATCH /users/me`).
        ("phone_change_request", RateLimit::new(3, HOUR)),
        // Over all clients: texts confirming a new phone number (against SMS pumping).
        ("phone_change_sms", RateLimit::new(100, HOUR)),
        // Over all clients: texts to numbers without an account (passwordless sign-up).
        ("otp_sms_signup", RateLimit::new(100, HOUR)),
        // Per API key: the requests one key may make (counted once its secret checked out).
        ("api_key", RateLimit::new(600, Duration::from_secs(60))),
        // The confirm routes (per client IP): a link is confirmed once or twice; the limit
        // caps what one client can make the server do with guessed or replayed tokens.
        ("password_reset_confirm", RateLimit::new(20, HOUR)),
        ("email_verify_confirm", RateLimit::new(20, HOUR)),
        ("email_change_confirm", RateLimit::new(20, HOUR)),
        // CLI device login: challenges started and polls (per client IP; a challenge's own
        // pace is its `interval`), and the browser side's reads, approvals and rejections
        // (per user).
        ("cli_login_start", RateLimit::new(20, HOUR)),
        ("cli_login_poll", RateLimit::new(720, HOUR)),
        ("cli_login_decide", RateLimit::new(30, HOUR)),
    ])
}

/// What a request is counted by.
///
/// ```
/// let key = crudauth::KeyBy::UserOrIp;
/// assert_ne!(key, crudauth::KeyBy::Ip);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyBy {
    /// The client address (IPv6 by /64).
    Ip,
    /// The authenticated user (unauthenticated requests are refused with 401).
    User,
    /// The user when authenticated, else the client address.
    UserOrIp,
}

/// Counts requests against limits. Reached as `auth.rate_limiter()`.
#[derive(Clone)]
pub struct RateLimiter {
    store: Arc<dyn Store>,
    key: [u8; 32],
    limits: Arc<BTreeMap<String, RateLimit>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The outcome of [`RateLimiter::check`].
#[derive(Debug)]
pub enum Decision {
    /// Allowed (or the limit is off: `None`).
    Allowed(Option<Allowed>),
    /// Refused.
    Limited(Limited),
}

impl RateLimiter {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        key: [u8; 32],
        limits: BTreeMap<String, RateLimit>,
    ) -> Self {
        RateLimiter {
            store,
            key,
            limits: Arc::new(limits),
        }
    }

    /// The configured limit of an action (built-in or registered), if any.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let limiter = auth.rate_limiter();
    /// let register = limiter.limit("register").expect("a built-in action");
    /// assert_eq!(register.times, 5);
    /// assert!(limiter.limit("export").is_none()); // registered by nobody
    /// # Ok(()) });
    /// ```
    pub fn limit(&self, action: &str) -> Option<RateLimit> {
        self.limits.get(action).copied()
    }

    /// Counts one request of `action` for `identity` against `limit`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let limiter = auth.rate_limiter();
    /// use crudauth::ratelimit::Decision;
    /// let limit = crudauth::RateLimit::new(1, std::time::Duration::from_secs(3600));
    /// let first = limiter.check("export", limit, "user:42").await?;
    /// assert!(matches!(first, Decision::Allowed(Some(_))));
    /// match limiter.check("export", limit, "user:42").await? {
    ///     Decision::Allowed(_) => unreachable!("one an hour"),
    ///     Decision::Limited(refusal) => println!("answer {refusal:?} as a 429"),
    /// }
    /// # Ok(()) });
    /// ```
    pub async fn check(
        &self,
        action: &str,
        limit: RateLimit,
        identity: &str,
    ) -> Result<Decision, AuthError> {
        if limit.is_off() {
            return Ok(Decision::Allowed(None));
        }
        let period = limit.period.as_secs().max(1);
        let now = crate::clock::now_secs().max(0) as u64;
        let window = now - now % period;
        let reset = (window + period).saturating_sub(now).max(1);
        // Identities (emails, ids) are stored only as a fixed-size HMAC.
        let who = hmac_hex(&self.key, identity.as_bytes());
        let key = format!("rl:{action}:{who}:{window}");
        let count = self
            .store
            .incr(&key, 1, Duration::from_secs(reset))
            .await
            .map_err(|e| crate::store::fail_closed("rate-limit store", &e))?;
        let count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
        if count > limit.times {
            return Ok(Decision::Limited(Limited {
                limit: limit.times,
                retry_after: reset,
            }));
        }
        Ok(Decision::Allowed(Some(Allowed {
            limit: limit.times,
            remaining: limit.times - count,
            reset,
        })))
    }

    /// A built-in or registered action's check: `Ok(headers to add)` or the 429 as an error.
    pub(crate) async fn enforce(
        &self,
        action: &str,
        identity: &str,
    ) -> Result<Option<Allowed>, AuthError> {
        let Some(limit) = self.limit(action) else {
            return Ok(None);
        };
        match self.check(action, limit, identity).await? {
            Decision::Allowed(allowed) => Ok(allowed),
            Decision::Limited(limited) => Err(AuthError::RateLimited(limited)),
        }
    }

    /// A per-target throttle for routes that must not enumerate (reset or verification
    /// requests): `false` means "do nothing, but answer as if done" — never a 429.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let limiter = auth.rate_limiter();
    /// // Five reset mails an hour per address; the sixth request is dropped, not refused.
    /// for _ in 0..5 {
    ///     assert!(limiter.allow_silently("password_reset_request", "ann@example.com").await?);
    /// }
    /// assert!(!limiter.allow_silently("password_reset_request", "ann@example.com").await?);
    /// # Ok(()) });
    /// ```
    pub async fn allow_silently(&self, action: &str, target: &str) -> Result<bool, AuthError> {
        let Some(limit) = self.limit(action) else {
            return Ok(true);
        };
        let decision = self
            .check(&format!("{action}:target"), limit, target)
            .await?;
        Ok(matches!(decision, Decision::Allowed(_)))
    }
    /// The per-target throttle of the email flows, keyed so that a stranger cannot use it
    /// to silence a victim's mail: each requester (client address, IPv6 by /64) gets the
    /// action's limit per target, and the target as a whole four times that (against mail
    /// floods from many addresses), which a `known` requester (one the account has signed
    /// in from) is not held to.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let limiter = auth.rate_limiter();
    /// if limiter.allow_silently_from("password_reset_request", "ann@example.com", "203.0.113.9", false).await? {
    ///     // send the mail
    /// }
    /// # Ok(()) });
    /// ```
    pub async fn allow_silently_from(
        &self,
        action: &str,
        target: &str,
        requester: &str,
        known: bool,
    ) -> Result<bool, AuthError> {
        let Some(limit) = self.limit(action).filter(|l| !l.is_off()) else {
            return Ok(true);
        };
        let pair = self
            .check(
                &format!("{action}:target"),
                limit,
                &format!("{target}\u{0}{requester}"),
            )
            .await?;
        if !matches!(pair, Decision::Allowed(_)) {
            return Ok(false);
        }
        if known {
            return Ok(true);
        }
        let whole = RateLimit::new(limit.times.saturating_mul(4), limit.period);
        let target = self
            .check(&format!("{action}:address"), whole, target)
            .await?;
        Ok(matches!(target, Decision::Allowed(_)))
    }
}
