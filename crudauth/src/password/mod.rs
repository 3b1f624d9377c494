//! Password primitives: argon2id hashing and verification off the async runtime.
//!
//! - argon2id with OWASP parameters by default (19 MiB, t=2, p=1), configurable;
//! - NFKC normalisation, so a password typed in another Unicode form still verifies;
//! - a maximum length enforced *before* normalising or hashing, to bound the work;
//! - hashing on fixed worker threads (one less than the cores), each reusing one argon2
//!   memory block, with a bounded wait queue, so a burst of logins
//!   cannot starve other requests;
//! - an unusable-password marker for accounts that sign in another way;
//! - the hashes of older systems ([`LegacyHashes`]: bcrypt, PBKDF2, scrypt, an app's own),
//!   verified and upgraded to argon2id, behind a timing floor.

mod legacy;
mod workers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Params;
use unicode_normalization::UnicodeNormalization;

use crate::error::ConfigError;

pub use legacy::{HashFormat, HashReport, LegacyHashes, SampleCosts, Verifier};

/// Parameters of password hashing.
///
/// ```
/// let config = crudauth::password::PasswordConfig::default();
/// assert_eq!((config.memory_kib, config.iterations, config.parallelism), (19 * 1024, 2, 1));
/// ```
#[derive(Clone, Debug)]
pub struct PasswordConfig {
    /// argon2id memory cost in KiB (default 19 MiB).
    pub memory_kib: u32,
    /// argon2id iterations (default 2).
    pub iterations: u32,
    /// argon2id lanes (default 1).
    pub parallelism: u32,
    /// The longest accepted password, in characters after NFKC (default 1024).
    pub max_length: usize,
    /// How many hashes may run at once (default: one less than the number of cores, at
    /// least one, so a login flood always leaves a core to the other requests).
    pub concurrency: usize,
    /// How much the hashing workers yield the CPU to the rest of the process, as a Unix
    /// niceness added to theirs (0 to 19, default 5; Linux only, ignored elsewhere). Under a
    /// login flood a hashing worker then gets about a quarter of a contended core instead of
    /// half, so cheap authenticated requests keep their latency and logins queue instead;
    /// 0 treats both alike.
    pub worker_niceness: u8,
    /// How many requests may wait for a hashing slot (default 256). Past it a request is
    /// refused at once (`503` with `Retry-After`) instead of joining an unbounded line that
    /// holds every waiting request's body and connection.
    pub max_waiting: usize,
    /// The old hash formats that verify besides argon2id (none by default; see
    /// [`LegacyHashes`]).
    pub legacy: LegacyHashes,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
            max_length: 1024,
            concurrency: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1).max(1)),
            worker_niceness: 5,
            max_waiting: 256,
            legacy: LegacyHashes::default(),
        }
    }
}

/// Why a password could not be hashed.
///
/// ```
/// use crudauth::password::PasswordError;
/// assert!(PasswordError::TooLong { max: 1024 }.to_string().contains("1024"));
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// Longer than the configured maximum.
    #[error("password is longer than {max} characters")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// The hasher failed (never expected with valid parameters).
    #[error("password hashing failed")]
    Internal,
    /// Too many requests are already waiting for the hasher (see
    /// [`PasswordConfig::max_waiting`]); answered 503 with `Retry-After`.
    #[error("the password hasher is busy")]
    Busy,
}

/// The outcome of a verification.
///
/// ```
/// let v = crudauth::password::Verification { matched: false, needs_rehash: false };
/// assert!(!v.matched);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The password matched the hash.
    pub matched: bool,
    /// It matched, but the hash was made with other parameters (or the password only matched
    /// as typed, not NFKC-normalised): store a fresh hash.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords. Cheap to clone.
///
/// ```
/// # tokio_test_block_on(async {
/// use crudauth::password::{PasswordConfig, PasswordHasher};
/// let hasher = PasswordHasher::new(PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
/// let hash = hasher.hash("correct horse").await.unwrap();
/// assert!(hasher.verify("correct horse", Some(&hash)).await.matched);
/// assert!(!hasher.verify("wrong horse", Some(&hash)).await.matched);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    max_length: usize,
    /// The hashing workers' queue (one worker per slot, each with its own argon2 memory).
    jobs: std::sync::mpsc::Sender<workers::Job>,
    /// Requests holding or waiting for a worker (hashes running count until they end).
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// `concurrency + max_waiting`.
    queue_cap: usize,
    /// argon2 verifications run so far (real or dummy): lets tests and metrics see that a
    /// refusal did the same work as a wrong password.
    verifications: std::sync::atomic::AtomicU64,
    /// A real hash of a random password, verified against for unknown or unusable accounts
    /// so they cost the same work as a wrong password.
    dummy: String,
    /// The old formats that verify.
    legacy: LegacyHashes,
    /// With old formats on: how long every check takes at least (see [`LegacyHashes`]).
    floor: Duration,
    /// Whether checks wait out the floor on the worker (else on the runtime); the same for
    /// every check, so the way of waiting tells nothing either.
    floor_on_worker: bool,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.inner.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with these parameters; refuses parameters argon2 does not accept.
    ///
    /// ```
    /// use crudauth::password::{PasswordConfig, PasswordHasher};
    /// assert!(PasswordHasher::new(PasswordConfig { memory_kib: 1, ..Default::default() }).is_err());
    /// ```
    pub fn new(config: PasswordConfig) -> Result<Self, ConfigError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| ConfigError::Invalid(format!("argon2 parameters: {e}")))?;
        if config.max_length == 0 || config.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "password max_length and concurrency must be positive".into(),
            ));
        }
        let mut memory = workers::Memory::default();
        let dummy = workers::hash(&mut memory, &params, &crate::keys::random_token())
            .ok_or_else(|| ConfigError::Invalid("argon2 failed to hash".into()))?;
        let (floor, argon2) = timing_floor(&config.legacy, &dummy, &params, &mut memory)?;
        drop(memory);
        // One way of waiting for every check, chosen once: on the worker, to the microsecond,
        // while the floor is about an argon2 run (a worker waiting holds no more than a hash
        // would); on the runtime when a slow old format sets it (a worker would otherwise sit
        // out every argon2 check's long rest).
        let floor_on_worker = floor <= argon2.saturating_mul(2);
        if !floor.is_zero() {
            tracing::info!(
                floor_ms = floor.as_millis() as u64,
                "crudauth: old password hash formats on; every password check takes at least \
                 the slowest one's time"
            );
        }
        Ok(PasswordHasher {
            inner: Arc::new(Inner {
                params,
                max_length: config.max_length,
                jobs: workers::start(config.concurrency, config.worker_niceness),
                queued: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
                queue_cap: config.concurrency.saturating_add(config.max_waiting),
                verifications: std::sync::atomic::AtomicU64::new(0),
                dummy,
                legacy: config.legacy,
                floor,
                floor_on_worker,
            }),
        })
    }

    /// The longest accepted password, in characters.
    ///
    /// ```
    /// # let h = crudauth::password::PasswordHasher::new(crudauth::password::PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
    /// assert_eq!(h.max_length(), 1024);
    /// ```
    pub fn max_length(&self) -> usize {
        self.inner.max_length
    }

    /// How many argon2 verifications (against a stored or the dummy hash) have run; a
    /// password whose typed form differs from its NFKC form costs two.
    ///
    /// ```
    /// # let h = crudauth::password::PasswordHasher::new(crudauth::password::PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
    /// assert_eq!(h.verifications(), 0);
    /// ```
    pub fn verifications(&self) -> u64 {
        self.inner
            .verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// NFKC-normalises a password after checking its length; `None` if it is too long.
    ///
    /// The raw input is capped at four bytes a character before normalising, so huge input
    /// is refused without being normalised.
    ///
    /// ```
    /// # let h = crudauth::password::PasswordHasher::new(crudauth::password::PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
    /// assert_eq!(h.normalize("ｐａｓｓ").as_deref(), Some("pass"));
    /// assert!(h.normalize(&"x".repeat(5000)).is_none());
    /// ```
    pub fn normalize(&self, password: &str) -> Option<String> {
        if password.len() > self.inner.max_length.saturating_mul(4) {
            return None;
        }
        let normalized: String = password.nfkc().collect();
        (normalized.chars().count() <= self.inner.max_length).then_some(normalized)
    }

    /// Hashes a password (NFKC-normalised) on a hashing worker.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let h = crudauth::password::PasswordHasher::new(crudauth::password::PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
    /// let hash = h.hash("correct horse").await.unwrap();
    /// assert!(hash.starts_with("$argon2id$"));
    /// # });
    /// ```
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let normalized = self.normalize(password).ok_or(PasswordError::TooLong {
            max: self.inner.max_length,
        })?;
        let inner = self.inner.clone();
        self.run(move |memory| workers::hash(memory, &inner.params, &normalized))
            .await?
            .ok_or(PasswordError::Internal)
    }

    /// Verifies a password against a stored hash, on a hashing worker.
    ///
    /// `None`, an unusable marker or a malformed hash verifies against a dummy hash instead,
    /// so every refusal costs the same work; all of them answer `matched: false`. A password
    /// over the length cap is refused without hashing.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let h = crudauth::password::PasswordHasher::new(crudauth::password::PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
    /// assert!(!h.verify("anything", None).await.matched);
    /// # });
    /// ```
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Verification {
        self.try_verify(password, hash)
            .await
            .unwrap_or(Verification {
                matched: false,
                needs_rehash: false,
            })
    }

    /// [`PasswordHasher::verify`], telling a full queue ([`PasswordError::Busy`]) apart
    /// from a refusal, so a caller can answer 503 instead of 401.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let h = crudauth::password::PasswordHasher::new(crudauth::password::PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
    /// assert!(!h.try_verify("anything", None).await.unwrap().matched);
    /// # });
    /// ```
    pub async fn try_verify(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> Result<Verification, PasswordError> {
        let refused = Verification {
            matched: false,
            needs_rehash: false,
        };
        let Some(normalized) = self.normalize(password) else {
            return Ok(refused);
        };
        let typed = (normalized != password).then(|| password.to_owned());
        let usable = hash.filter(|h| !is_unusable_password(h)).map(str::to_owned);
        let inner = self.inner.clone();
        let (verification, rest) = self
            .run(move |memory| {
                let started = Instant::now();
                let verification =
                    check_blocking(&inner, memory, usable, &normalized, typed.as_deref());
                // With old formats on, every check (any format, known or unknown account)
                // lasts the floor: neither time tells an old hash, an upgraded one or no
                // account apart. Every check waits the same way (`floor_on_worker`): here,
                // to the microsecond (tokio's timer ticks in whole milliseconds and would add
                // up to one to every sign-in), or on the runtime below.
                let rest = inner.floor.saturating_sub(started.elapsed());
                if inner.floor_on_worker {
                    std::thread::sleep(rest);
                    return (verification, Duration::ZERO);
                }
                (verification, rest)
            })
            .await?;
        if !rest.is_zero() {
            tokio::time::sleep(rest).await;
        }
        Ok(verification)
    }

    /// How long every password check takes at least (zero without old formats).
    ///
    /// ```
    /// # let h = crudauth::password::PasswordHasher::new(crudauth::password::PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
    /// assert!(h.timing_floor().is_zero());
    /// ```
    pub fn timing_floor(&self) -> Duration {
        self.inner.floor
    }

    /// Verifies against the dummy hash: the work of a wrong password, for an unknown account.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let h = crudauth::password::PasswordHasher::new(crudauth::password::PasswordConfig { memory_kib: 64, iterations: 1, ..Default::default() }).unwrap();
    /// h.dummy_verify("whatever").await;
    /// # });
    /// ```
    pub async fn dummy_verify(&self, password: &str) {
        let _ = self.verify(password, None).await;
    }

    /// Runs hashing work on a worker (see the `workers` module); refuses at once when
    /// `concurrency + max_waiting` requests already hold or wait for one. The queue slot
    /// moves into the job: a client that hangs up mid-hash frees it only when the hash it
    /// started has finished, and a job whose client hung up before a worker took it is
    /// dropped unrun, so cancelled requests cannot stack up argon2 work.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut workers::Memory) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        use std::sync::atomic::Ordering;
        struct Slot(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Slot {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let queued = &self.inner.queued;
        if queued.fetch_add(1, Ordering::AcqRel) >= self.inner.queue_cap {
            queued.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        let slot = Slot(queued.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: workers::Job = Box::new(move |memory| {
            if tx.is_closed() {
                return; // the client hung up before a worker took the job
            }
            let result = work(memory);
            // The slot is free before the answer arrives: whoever the answer wakes finds it.
            drop(slot);
            let _ = tx.send(result);
        });
        self.inner
            .jobs
            .send(job)
            .map_err(|_| PasswordError::Internal)?;
        rx.await.map_err(|_| PasswordError::Internal)
    }
}

/// The blocking part of a check. Every verification is counted; every refusal runs as many
/// as a wrong password for a real account would (twice when the typed form differs from the
/// NFKC form), so neither time nor work tells whether the account exists.
fn check_blocking(
    inner: &Inner,
    memory: &mut workers::Memory,
    usable: Option<String>,
    normalized: &str,
    typed: Option<&str>,
) -> Verification {
    let refused = Verification {
        matched: false,
        needs_rehash: false,
    };
    let argon = |memory: &mut workers::Memory, stored: &str, candidate: &str| {
        inner
            .verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        workers::verify(memory, &inner.params, stored, candidate)
    };
    let dummy_refusal = |memory: &mut workers::Memory| {
        let _ = argon(memory, &inner.dummy, normalized);
        if let Some(t) = typed {
            let _ = argon(memory, &inner.dummy, t);
        }
        refused
    };
    let Some(stored) = usable else {
        return dummy_refusal(memory);
    };
    if HashFormat::detect(&stored) != HashFormat::Argon2 {
        // An old format (or an app's own): the old system hashed the password as typed;
        // the NFKC form is tried second. A match is always upgraded.
        let raw = typed.unwrap_or(normalized);
        let mut runs = 1;
        let mut verdict = inner.legacy.verify(&stored, raw);
        if verdict == Some(false) && typed.is_some() {
            runs += 1;
            verdict = inner.legacy.verify(&stored, normalized);
        }
        let Some(matched) = verdict else {
            // Nothing recognises it (an unsalted digest, junk): the work of a refusal.
            return dummy_refusal(memory);
        };
        inner
            .verifications
            .fetch_add(runs, std::sync::atomic::Ordering::Relaxed);
        return Verification {
            matched,
            needs_rehash: matched,
        };
    }
    match argon(memory, &stored, normalized) {
        Some(true) => Verification {
            matched: true,
            needs_rehash: !same_params(&stored, &inner.params),
        },
        Some(false) => {
            // A hash made from the password as typed (before normalisation existed).
            let typed_ok = typed.is_some_and(|t| argon(memory, &stored, t) == Some(true));
            Verification {
                matched: typed_ok,
                needs_rehash: typed_ok,
            }
        }
        None => dummy_refusal(memory),
    }
}

/// The floor every check is held to while old formats verify, and the argon2id time it
/// started from: the longest of an argon2id dummy verification (the second slowest of five,
/// after one untimed run that warms the memory block as a worker's is warm) and one
/// verification of each timing sample. Zero without old formats. A slow run rather than a
/// typical one, so checks at the configured parameters also wait for it most of the time
/// and land on the floor like the others; not the slowest, so one run slowed by a busy
/// moment at start does not hold every sign-in of the process to it. It used to be a single
/// cold run, which made every sign-in up to a fifth slower than a verification.
///
/// The floor is a fixed time: under CPU load an argon2 check outgrows it while a quicker
/// old format does not, so load still separates them (the README says so, under "A real
/// legacy table").
fn timing_floor(
    legacy: &LegacyHashes,
    dummy: &str,
    params: &Params,
    memory: &mut workers::Memory,
) -> Result<(Duration, Duration), ConfigError> {
    if legacy.is_empty() {
        return Ok((Duration::ZERO, Duration::ZERO));
    }
    let wrong = crate::keys::random_token();
    let _ = workers::verify(memory, params, dummy, &wrong);
    let mut runs = [Duration::ZERO; 5];
    for run in &mut runs {
        let started = Instant::now();
        let _ = workers::verify(memory, params, dummy, &wrong);
        *run = started.elapsed();
    }
    runs.sort();
    let argon2 = runs[3];
    let mut floor = argon2;
    for sample in legacy.samples() {
        let started = Instant::now();
        let verdict = if HashFormat::detect(&sample) == HashFormat::Argon2 {
            workers::verify(memory, params, &sample, &wrong)
        } else {
            legacy.verify(&sample, &wrong)
        };
        if verdict.is_none() {
            return Err(ConfigError::Invalid(
                "legacy hashes: the timing sample is in no format that verifies".into(),
            ));
        }
        floor = floor.max(started.elapsed());
    }
    Ok((floor, argon2))
}

fn same_params(stored: &str, wanted: &Params) -> bool {
    let Ok(parsed) = argon2::PasswordHash::new(stored) else {
        return false;
    };
    parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == wanted.m_cost()
                && p.t_cost() == wanted.t_cost()
                && p.p_cost() == wanted.p_cost()
        })
}

/// A marker stored instead of a hash for accounts that have no password (OAuth-only): `!`
/// followed by random characters, so it can never verify.
///
/// ```
/// let marker = crudauth::password::make_unusable_password();
/// assert!(crudauth::password::is_unusable_password(&marker));
/// ```
pub fn make_unusable_password() -> String {
    format!("!{}", crate::keys::random_token())
}

/// Whether a stored value is not a usable hash (empty or the unusable marker).
///
/// ```
/// assert!(crudauth::password::is_unusable_password(""));
/// assert!(!crudauth::password::is_unusable_password("$argon2id$v=19$..."));
/// ```
pub fn is_unusable_password(stored: &str) -> bool {
    stored.is_empty() || stored.starts_with('!')
}

/// The hasher's queue is full: 503 with `Retry-After`, never an unbounded line.
pub(crate) fn busy(e: PasswordError) -> crate::error::AuthError {
    match e {
        PasswordError::Busy => {
            tracing::warn!("password hashing queue full; answering 503");
            crate::error::AuthError::Unavailable
        }
        _ => crate::error::AuthError::Internal,
    }
}

#[cfg(test)]
mod tests;
