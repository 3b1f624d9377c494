//! Escalating login lockout, shared by every password path.
//!
//! Three counters per attempt, all atomic increments in the configured store, counted
//! *before* the password is checked (so concurrent guesses cannot slip past the cap):
//!
//! - the (client IP, identifier) pair: with defaults the 6th attempt inside the window is
//!   refused with `429` and `Retry-After: 60`, even with the right password (as the original);
//! - the client IP across identifiers (password spraying), at a higher threshold;
//! - the identifier across all IPs, at a much higher threshold, so a stranger cannot lock the
//!   owner out cheaply (the original locks an account after 5 failures from anywhere).
//!
//! Each lock lasts `base * 2^round` up to `max`; rounds are remembered for `round_retention`.
//! A successful login clears its pair's counter, lock and rounds. Store faults fail closed.

use std::sync::Arc;
use std::time::Duration;

use crate::error::AuthError;
use crate::keys::hmac_hex;
use crate::store::Store;

/// Lockout thresholds and durations.
///
/// ```
/// let c = crudauth::LockoutConfig::default();
/// assert_eq!((c.max_attempts, c.window.as_secs(), c.base.as_secs()), (5, 60, 60));
/// ```
#[derive(Clone, Debug)]
pub struct LockoutConfig {
    /// Failures allowed per (client, identifier) inside the window (default 5).
    pub max_attempts: i64,
    /// Attempts allowed per client IP across identifiers inside the window (default 30).
    pub ip_max_attempts: i64,
    /// Attempts allowed per identifier across all clients inside the window (default 100).
    pub account_max_attempts: i64,
    /// The counting window, fixed from the first attempt (default 60 s).
    pub window: Duration,
    /// The first lock's duration (default 60 s); each further round doubles it.
    pub base: Duration,
    /// The longest lock (default 1 h).
    pub max: Duration,
    /// How long rounds are remembered (default 1 h).
    pub round_retention: Duration,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            max_attempts: 5,
            ip_max_attempts: 30,
            account_max_attempts: 100,
            window: Duration::from_secs(60),
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
            round_retention: Duration::from_secs(3600),
        }
    }
}

impl LockoutConfig {
    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        let positive = self.max_attempts > 0
            && self.ip_max_attempts >= self.max_attempts
            && self.account_max_attempts >= self.max_attempts
            && !self.window.is_zero()
            && !self.base.is_zero()
            && self.max >= self.base;
        if positive {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid(
                "lockout: thresholds must be positive, ip/account thresholds at least \
                 max_attempts, durations positive and max >= base"
                    .into(),
            ))
        }
    }
}

/// A counted attempt; hand it back to [`Lockout::succeeded`] when the password was right.
#[derive(Debug)]
pub struct Attempt {
    pair: String,
    ip: String,
    user: String,
}

/// The lockout service.
#[derive(Clone)]
pub struct Lockout {
    store: Arc<dyn Store>,
    key: [u8; 32],
    config: LockoutConfig,
}

impl std::fmt::Debug for Lockout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockout")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The identifier as the lockout counts it: trimmed and case-folded.
pub(crate) fn fold_identifier(identifier: &str) -> String {
    identifier.trim().to_lowercase()
}

impl Lockout {
    pub(crate) fn new(store: Arc<dyn Store>, key: [u8; 32], config: LockoutConfig) -> Self {
        Lockout { store, key, config }
    }

    /// Checks the locks and counts this attempt. `Err(LockedOut)` when refused,
    /// `Err(Unavailable)` when the store fails (fail closed).
    ///
    /// ```no_run
    /// # async fn f(lockout: &crudauth::lockout::Lockout) -> Result<(), crudauth::AuthError> {
    /// let attempt = lockout.check_and_count("203.0.113.9", "ann@example.com").await?;
    /// lockout.succeeded(attempt).await; // the password was right
    /// # Ok(()) }
    /// ```
    pub async fn check_and_count(
        &self,
        ip_key: &str,
        identifier: &str,
    ) -> Result<Attempt, AuthError> {
        // Identifiers are user input of any size: store them only as a fixed-size HMAC.
        let user = hmac_hex(&self.key, fold_identifier(identifier).as_bytes());
        let dims = [
            (
                format!("login:pair:{ip_key}:{user}"),
                self.config.max_attempts,
            ),
            (format!("login:ip:{ip_key}"), self.config.ip_max_attempts),
            (
                format!("login:user:{user}"),
                self.config.account_max_attempts,
            ),
        ];
        let fail = |e: crate::store::StoreError| {
            crate::store::report_fault("lockout store", &e);
            AuthError::Unavailable
        };

        let mut locked_for = Duration::ZERO;
        for (key, _) in &dims {
            if let Some(left) = self.store.ttl(&format!("{key}:lock")).await.map_err(fail)? {
                locked_for = locked_for.max(left);
            }
        }
        if !locked_for.is_zero() {
            return Err(AuthError::LockedOut {
                retry_after: ceil_secs(locked_for),
            });
        }

        let mut retry = Duration::ZERO;
        for (key, limit) in &dims {
            let count = self
                .store
                .incr(key, 1, self.config.window)
                .await
                .map_err(fail)?;
            if count > *limit {
                let round = self
                    .store
                    .incr(&format!("{key}:rounds"), 1, self.config.round_retention)
                    .await
                    .map_err(fail)?;
                let factor = 1u32
                    .checked_shl((round - 1).clamp(0, 20) as u32)
                    .unwrap_or(u32::MAX);
                let lock = self.config.base.saturating_mul(factor).min(self.config.max);
                self.store
                    .set(&format!("{key}:lock"), b"1", Some(lock))
                    .await
                    .map_err(fail)?;
                retry = retry.max(lock);
            }
        }
        if !retry.is_zero() {
            return Err(AuthError::LockedOut {
                retry_after: ceil_secs(retry),
            });
        }
        let [(pair, _), (ip, _), (user, _)] = dims;
        Ok(Attempt { pair, ip, user })
    }

    /// The password was right: forget this client's failures for this identifier, and take
    /// this (successful) attempt back out of the IP and account counters, so legitimate
    /// logins from one busy address never add up to a lock. Earlier failures stay counted.
    ///
    /// ```no_run
    /// # async fn f(lockout: &crudauth::lockout::Lockout) -> Result<(), crudauth::AuthError> {
    /// let attempt = lockout.check_and_count("203.0.113.9", "ann@example.com").await?;
    /// lockout.succeeded(attempt).await;
    /// # Ok(()) }
    /// ```
    pub async fn succeeded(&self, attempt: Attempt) {
        for key in [&attempt.ip, &attempt.user] {
            if let Err(e) = self.store.incr(key, -1, self.config.window).await {
                tracing::warn!(error = %e, "could not uncount a successful login");
            }
        }
        for key in [
            attempt.pair.clone(),
            format!("{}:rounds", attempt.pair),
            format!("{}:lock", attempt.pair),
        ] {
            if let Err(e) = self.store.delete(&key).await {
                tracing::warn!(error = %e, "could not clear a lockout counter after a login");
            }
        }
    }

    /// Clears every lock and counter of an identifier (after a completed password reset).
    ///
    /// ```no_run
    /// # async fn f(lockout: &crudauth::lockout::Lockout) -> Result<(), crudauth::AuthError> {
    /// lockout.clear_identifier("ann@example.com").await?; // after a completed password reset
    /// # Ok(()) }
    /// ```
    pub async fn clear_identifier(&self, identifier: &str) -> Result<(), AuthError> {
        let user = hmac_hex(&self.key, fold_identifier(identifier).as_bytes());
        for suffix in ["", ":lock", ":rounds"] {
            self.store
                .delete(&format!("login:user:{user}{suffix}"))
                .await
                .map_err(|_| AuthError::Unavailable)?;
        }
        Ok(())
    }
}

/// Whole seconds, rounded up (for `Retry-After`).
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
