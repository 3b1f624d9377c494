//! Escalating login lockout, one budget per account, shared by every password path.
//!
//! Four counters per attempt, all atomic increments in the configured store, counted
//! *before* the password is checked (so concurrent guesses cannot slip past the cap):
//!
//! - the (client IP, subject) pair: with defaults the 6th attempt inside the window is
//!   refused with `429` and `Retry-After: 60`, even with the right password (as the original);
//! - the client IP across subjects (password spraying), at a higher threshold;
//! - the subject across all IPs, at a much higher threshold, so a stranger cannot lock the
//!   owner out cheaply (the original locks an account after 5 failures from anywhere);
//! - the subject across all IPs over an hour (NIST SP 800-63B: at most 100 consecutive
//!   failures), so a distributed guesser gets no more than that per hour.
//!
//! The *subject* is the account once the identifier resolves to one ([`LockSubject::Account`]):
//! logging in by email, by username, by `/token`, and re-checking the password for
//! `/change-password`, the email change or sudo all draw on one budget. An identifier that
//! names no account is counted in the equivalence the lookup uses ([`LockSubject::Unknown`]),
//! with the same thresholds, so unknown and known identifiers answer alike.
//! The two kinds live in separate key namespaces that no input can name: an account key is
//! derived from the id, an identifier key from an HMAC of the input under its own tag.
//!
//! A client address that signed in to the account before (within 90 days) is held to its
//! own (client, account) budget only: the account-wide counters bound what strangers can
//! guess (at most `account_hourly_max_attempts` an hour), and lock strangers out, but a
//! distributed burst cannot lock the owner out from their usual address. A completed
//! password reset clears the account-wide locks.
//!
//! A lock lasts `base * 2^round` up to `max`. The round moves once per lock, by the one
//! request that sets it (an atomic set-if-absent): a burst of refused requests gives the
//! same single lock on every store. Rounds are remembered for `round_retention`. A
//! successful login clears its pair's counter, lock and rounds. Store faults fail closed.

use std::sync::Arc;
use std::time::Duration;

use crate::error::AuthError;
use crate::keys::hmac_hex;
use crate::store::Store;
use crate::user::UserId;

/// Lockout thresholds and durations.
///
/// ```
/// let c = crudauth::LockoutConfig::default();
/// assert_eq!((c.max_attempts, c.window.as_secs(), c.base.as_secs()), (5, 60, 60));
/// assert_eq!(c.account_hourly_max_attempts, 100);
/// ```
#[derive(Clone, Debug)]
pub struct LockoutConfig {
    /// Failures allowed per (client, subject) inside the window (default 5).
    pub max_attempts: i64,
    /// Attempts allowed per client IP across subjects inside the window (default 30).
    pub ip_max_attempts: i64,
    /// Attempts allowed per subject across all clients inside the window (default 100).
    pub account_max_attempts: i64,
    /// Failures allowed per subject across all clients per hour (default 100, NIST's
    /// ceiling); past it the subject is locked until the hour's window ends.
    pub account_hourly_max_attempts: i64,
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
            account_hourly_max_attempts: 100,
            window: Duration::from_secs(60),
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
            round_retention: Duration::from_secs(3600),
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);

impl LockoutConfig {
    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        let positive = self.max_attempts > 0
            && self.ip_max_attempts >= self.max_attempts
            && self.account_max_attempts >= self.max_attempts
            && self.account_hourly_max_attempts >= self.max_attempts
            && !self.window.is_zero()
            && !self.base.is_zero()
            && self.max >= self.base;
        if positive {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid(
                "lockout: thresholds must be positive, ip/account/hourly thresholds at \
                 least max_attempts, durations positive and max >= base"
                    .into(),
            ))
        }
    }
}

/// Whose budget a password attempt counts against.
///
/// ```
/// use crudauth::lockout::LockSubject;
/// use crudauth::user::UserId;
/// let id = UserId::Int(3);
/// // The identifier resolved to account 3; the client has not signed in to it before.
/// let known = LockSubject::Account { id: &id, known_client: false };
/// let unknown = LockSubject::Unknown("nobody@example.com");
/// # let _ = (known, unknown);
/// ```
#[derive(Clone, Copy, Debug)]
pub enum LockSubject<'a> {
    /// A known account: every identifier of it, and every path that checks its password.
    ///
    /// `known_client`: the client address signed in to this account before (within 90
    /// days). Such a client is held to its own (client, account) budget only: the
    /// account-wide counters, which every address adds to, neither count it nor lock it,
    /// so strangers spending the account's budget cannot lock its owner out.
    Account {
        /// The account.
        id: &'a UserId,
        /// Whether the client signed in to this account before.
        known_client: bool,
    },
    /// An identifier that names no account, counted as given: the caller folds it into
    /// the equivalence its lookup uses (the facade: an address normalised as stored, a
    /// username after NFKC and trimming), so its variants share a budget exactly when they
    /// would share an account, and the lockout cannot tell which accounts exist.
    Unknown(&'a str),
}

/// A counted attempt; hand it back to [`Lockout::succeeded`] when the password was right.
#[derive(Debug)]
pub struct Attempt {
    pair: String,
    uncount: Vec<String>,
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

/// One counter of an attempt.
struct Dim {
    key: String,
    limit: i64,
    window: Duration,
    /// Escalating locks (`base * 2^round`), or a lock until the window ends.
    escalate: bool,
}

fn fault(e: crate::store::StoreError) -> AuthError {
    crate::store::fail_closed("lockout store", &e)
}

impl Lockout {
    pub(crate) fn new(store: Arc<dyn Store>, key: [u8; 32], config: LockoutConfig) -> Self {
        Lockout { store, key, config }
    }

    /// The subject's key part. Both kinds are HMACs under distinct tags, so no input (an
    /// identifier with a NUL, say) can name an account's key.
    fn subject_key(&self, subject: LockSubject<'_>) -> String {
        match subject {
            LockSubject::Account { id, .. } => {
                let mac = hmac_hex(&self.key, format!("lockout-account\u{0}{id}").as_bytes());
                format!("a:{mac}")
            }
            LockSubject::Unknown(identifier) => {
                let mac = hmac_hex(
                    &self.key,
                    format!("lockout-identifier\u{0}{identifier}").as_bytes(),
                );
                format!("i:{mac}")
            }
        }
    }

    fn dims(&self, ip_key: &str, subject: &str, account_wide: bool) -> Vec<Dim> {
        let c = &self.config;
        let mut dims = vec![
            Dim {
                key: format!("login:pair:{ip_key}:{subject}"),
                limit: c.max_attempts,
                window: c.window,
                escalate: true,
            },
            Dim {
                key: format!("login:ip:{ip_key}"),
                limit: c.ip_max_attempts,
                window: c.window,
                escalate: true,
            },
            Dim {
                key: format!("login:subject:{subject}"),
                limit: c.account_max_attempts,
                window: c.window,
                escalate: true,
            },
            Dim {
                key: format!("login:hour:{subject}"),
                limit: c.account_hourly_max_attempts,
                window: HOUR,
                escalate: false,
            },
        ];
        if !account_wide {
            dims.truncate(2);
        }
        dims
    }

    /// Checks the locks and counts this attempt. `Err(LockedOut)` when refused,
    /// `Err(Unavailable)` when the store fails (fail closed).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let lockout = crudauth::doc_fixture::lockout();
    /// use crudauth::lockout::LockSubject;
    /// let id = crudauth::UserId::Int(3);
    /// let subject = LockSubject::Account { id: &id, known_client: false };
    /// for _ in 0..5 {
    ///     lockout.check_and_count("203.0.113.9", subject).await?; // five wrong passwords
    /// }
    /// let sixth = lockout.check_and_count("203.0.113.9", subject).await;
    /// assert!(matches!(sixth, Err(crudauth::AuthError::LockedOut { retry_after: 60 })));
    /// # Ok(()) });
    /// ```
    pub async fn check_and_count(
        &self,
        ip_key: &str,
        subject: LockSubject<'_>,
    ) -> Result<Attempt, AuthError> {
        let account_wide = !matches!(
            subject,
            LockSubject::Account {
                known_client: true,
                ..
            }
        );
        let dims = self.dims(ip_key, &self.subject_key(subject), account_wide);
        let mut locked_for = Duration::ZERO;
        for dim in &dims {
            if let Some(left) = self
                .store
                .ttl(&format!("{}:lock", dim.key))
                .await
                .map_err(fault)?
            {
                locked_for = locked_for.max(left);
            }
        }
        if !locked_for.is_zero() {
            return Err(AuthError::LockedOut {
                retry_after: ceil_secs(locked_for),
            });
        }

        let mut retry = Duration::ZERO;
        for dim in &dims {
            let count = self
                .store
                .incr(&dim.key, 1, dim.window)
                .await
                .map_err(fault)?;
            if count > dim.limit {
                retry = retry.max(self.lock(dim).await?);
            }
        }
        if !retry.is_zero() {
            return Err(AuthError::LockedOut {
                retry_after: ceil_secs(retry),
            });
        }
        let mut keys = dims.into_iter().map(|d| d.key);
        let pair = keys.next().unwrap_or_default();
        Ok(Attempt {
            pair,
            uncount: keys.collect(),
        })
    }

    /// Locks a counter that went over its limit and returns how long the lock lasts. Only
    /// the request that creates the lock (set-if-absent) moves the escalation round; every
    /// other refused request of the burst reads the lock it made.
    async fn lock(&self, dim: &Dim) -> Result<Duration, AuthError> {
        let lock_key = format!("{}:lock", dim.key);
        if let Some(left) = self.store.ttl(&lock_key).await.map_err(fault)? {
            return Ok(left);
        }
        if !dim.escalate {
            // Until the counting window ends.
            let left = self
                .store
                .ttl(&dim.key)
                .await
                .map_err(fault)?
                .unwrap_or(dim.window);
            self.store
                .set_if_absent(&lock_key, b"1", Some(left))
                .await
                .map_err(fault)?;
            return Ok(self
                .store
                .ttl(&lock_key)
                .await
                .map_err(fault)?
                .unwrap_or(left));
        }
        let rounds_key = format!("{}:rounds", dim.key);
        let retention = self.config.round_retention;
        let round = self
            .store
            .incr(&rounds_key, 0, retention)
            .await
            .map_err(fault)?
            + 1;
        let lock = self.lock_duration(round);
        if self
            .store
            .set_if_absent(&lock_key, b"1", Some(lock))
            .await
            .map_err(fault)?
        {
            // This request made the lock: it alone moves the round on.
            self.store
                .incr(&rounds_key, 1, retention)
                .await
                .map_err(fault)?;
            return Ok(lock);
        }
        Ok(self
            .store
            .ttl(&lock_key)
            .await
            .map_err(fault)?
            .unwrap_or(lock))
    }

    fn lock_duration(&self, round: i64) -> Duration {
        let factor = 1u32
            .checked_shl((round - 1).clamp(0, 20) as u32)
            .unwrap_or(u32::MAX);
        self.config.base.saturating_mul(factor).min(self.config.max)
    }

    /// The password was right: forget this client's failures for this subject, and take
    /// this (successful) attempt back out of the IP and account counters, so legitimate
    /// logins from one busy address never add up to a lock. Earlier failures stay counted.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let lockout = crudauth::doc_fixture::lockout();
    /// use crudauth::lockout::LockSubject;
    /// let subject = LockSubject::Unknown("ann");
    /// for _ in 0..4 {
    ///     lockout.check_and_count("203.0.113.9", subject).await?; // four wrong passwords
    /// }
    /// let attempt = lockout.check_and_count("203.0.113.9", subject).await?;
    /// lockout.succeeded(attempt).await; // the fifth was right: the count starts over
    /// assert!(lockout.check_and_count("203.0.113.9", subject).await.is_ok());
    /// # Ok(()) });
    /// ```
    pub async fn succeeded(&self, attempt: Attempt) {
        for key in &attempt.uncount {
            let window = if key.starts_with("login:hour:") {
                HOUR
            } else {
                self.config.window
            };
            if let Err(e) = self.store.incr(key, -1, window).await {
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

    /// A counted attempt that was refused before its password was checked (the hasher was
    /// busy): every counter it added to is given back, so a flood of the hasher cannot
    /// push anyone into a lock.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let lockout = crudauth::doc_fixture::lockout();
    /// use crudauth::lockout::LockSubject;
    /// let subject = LockSubject::Unknown("ann");
    /// for _ in 0..5 {
    ///     let attempt = lockout.check_and_count("203.0.113.9", subject).await?;
    ///     lockout.refund(attempt).await; // nothing was checked: it does not count
    /// }
    /// assert!(lockout.check_and_count("203.0.113.9", subject).await.is_ok());
    /// # Ok(()) });
    /// ```
    pub async fn refund(&self, attempt: Attempt) {
        for key in std::iter::once(&attempt.pair).chain(&attempt.uncount) {
            let window = if key.starts_with("login:hour:") {
                HOUR
            } else {
                self.config.window
            };
            if let Err(e) = self.store.incr(key, -1, window).await {
                tracing::warn!(error = %e, "could not give back a refused attempt");
            }
        }
    }

    /// Clears every account-wide lock and counter of an account (after a completed password
    /// reset: the reset proves the owner).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let lockout = crudauth::doc_fixture::lockout();
    /// lockout.clear_account(&crudauth::UserId::Int(3)).await?;
    /// # Ok(()) });
    /// ```
    pub async fn clear_account(&self, id: &UserId) -> Result<(), AuthError> {
        self.clear_subject(LockSubject::Account {
            id,
            known_client: false,
        })
        .await
    }

    /// Clears the account-wide locks and counters kept for an identifier that named no
    /// account when it was tried.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let lockout = crudauth::doc_fixture::lockout();
    /// lockout.clear_identifier("ann@example.com").await?;
    /// # Ok(()) });
    /// ```
    pub async fn clear_identifier(&self, identifier: &str) -> Result<(), AuthError> {
        self.clear_subject(LockSubject::Unknown(identifier)).await
    }

    async fn clear_subject(&self, subject: LockSubject<'_>) -> Result<(), AuthError> {
        let subject = self.subject_key(subject);
        for base in [
            format!("login:subject:{subject}"),
            format!("login:hour:{subject}"),
        ] {
            for suffix in ["", ":lock", ":rounds"] {
                self.store
                    .delete(&format!("{base}{suffix}"))
                    .await
                    .map_err(fault)?;
            }
        }
        Ok(())
    }
}

/// A small fixed budget of failures with a lock of fixed length, kept in the lockout's
/// store under its key (sudo's three strikes: `{namespace}:fail:{who}` counts,
/// `{namespace}:lock:{who}` locks, `who` an HMAC of the subject).
#[derive(Clone)]
pub(crate) struct Strikes {
    store: Arc<dyn Store>,
    key: [u8; 32],
    namespace: &'static str,
    max: u32,
    lock_for: Duration,
}

impl Lockout {
    /// A strike counter beside the login lockout: `max` failures within `lock_for` lock the
    /// subject for `lock_for`.
    pub(crate) fn strikes(&self, namespace: &'static str, max: u32, lock_for: Duration) -> Strikes {
        Strikes {
            store: self.store.clone(),
            key: self.key,
            namespace,
            max,
            lock_for,
        }
    }
}

/// The outcome of counting one strike.
pub(crate) struct Strike {
    /// The failures counted so far, this one included.
    pub count: i64,
    /// Over the budget already: the attempt must not be checked at all.
    pub over: bool,
}

impl Strike {
    /// Whether a failure of this attempt uses up the budget.
    pub(crate) fn is_last(&self, max: u32) -> bool {
        self.over || self.count >= i64::from(max)
    }
}

impl Strikes {
    /// A fault of the store, reported under this counter's own name (`sudo store`).
    fn fault(&self, e: crate::store::StoreError) -> AuthError {
        crate::store::fail_closed(&format!("{} store", self.namespace), &e)
    }

    fn key(&self, kind: &str, subject: &str) -> String {
        let who = hmac_hex(&self.key, subject.as_bytes());
        format!("{}:{kind}:{who}", self.namespace)
    }

    /// The budget.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// `Err(TooManyAttempts)` while the subject is locked.
    pub(crate) async fn check_unlocked(&self, subject: &str) -> Result<(), AuthError> {
        match self
            .store
            .ttl(&self.key("lock", subject))
            .await
            .map_err(|e| self.fault(e))?
        {
            Some(left) => Err(AuthError::TooManyAttempts {
                retry_after: ceil_secs(left),
            }),
            None => Ok(()),
        }
    }

    /// Counts an attempt before it is checked, so concurrent guesses share one budget.
    pub(crate) async fn count(&self, subject: &str) -> Result<Strike, AuthError> {
        let count = self
            .store
            .incr(&self.key("fail", subject), 1, self.lock_for)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(Strike {
            count,
            over: count > i64::from(self.max),
        })
    }

    /// Gives a counted attempt back (it was refused before any check).
    pub(crate) async fn give_back(&self, subject: &str) -> Result<(), AuthError> {
        self.store
            .incr(&self.key("fail", subject), -1, self.lock_for)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(())
    }

    /// Locks the subject for the lock length and forgets its count; the answer to give.
    pub(crate) async fn lock(&self, subject: &str) -> Result<AuthError, AuthError> {
        self.store
            .set(&self.key("lock", subject), b"1", Some(self.lock_for))
            .await
            .map_err(|e| self.fault(e))?;
        self.clear(subject).await?;
        Ok(AuthError::TooManyAttempts {
            retry_after: self.lock_for.as_secs().max(1),
        })
    }

    /// Forgets the subject's count (after a success).
    pub(crate) async fn clear(&self, subject: &str) -> Result<(), AuthError> {
        self.store
            .delete(&self.key("fail", subject))
            .await
            .map_err(|e| self.fault(e))?;
        Ok(())
    }
}

/// Whole seconds, rounded up (for `Retry-After`).
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
