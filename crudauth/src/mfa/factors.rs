//! Where second factors live: a table crudauth owns (`crudauth-sea`'s `SeaFactorStore`) or
//! memory, keyed by user id, so a legacy user table needs no MFA column. Every write that
//! must be single-use is one atomic step here: claiming a time step (greater than the last
//! one), activating a pending secret, consuming a recovery code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::store::StoreError;

/// A user's TOTP factor as stored: secrets sealed (see `Seal`), never in clear.
///
/// ```
/// let none = crudauth::mfa::TotpFactor::default();
/// assert!(!none.enabled());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TotpFactor {
    /// The confirmed secret, sealed; `None` until enrolment is confirmed.
    pub secret: Option<String>,
    /// A pending secret (setup started, not confirmed), sealed and bound to the user's
    /// revocation epoch.
    pub pending: Option<String>,
    /// When the pending secret stops being confirmable (unix seconds).
    pub pending_expires_at: Option<i64>,
    /// When the factor was confirmed (unix seconds).
    pub confirmed_at: Option<i64>,
    /// The last time step a code was accepted for (replay protection).
    pub last_step: Option<i64>,
}

impl TotpFactor {
    /// Whether a confirmed secret is there.
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }
}

/// The storage of second factors and recovery codes.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use crudauth::mfa::{FactorStore, MemoryFactorStore};
/// let store = MemoryFactorStore::default();
/// store.set_pending("7", "sealed", 100).await?;
/// assert!(store.activate("7", "sealed-for-good", 5, 50).await?);
/// assert!(!store.claim_step("7", 5).await?, "the step confirm used is spent");
/// assert!(store.claim_step("7", 6).await?);
/// store.set_recovery("7", &["h1".into(), "h2".into()]).await?;
/// assert!(store.use_recovery("7", "h1").await?);
/// assert!(!store.use_recovery("7", "h1").await?, "single use");
/// assert_eq!(store.recovery_left("7").await?, 1);
/// # Ok::<_, crudauth::store::StoreError>(()) }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait FactorStore: Send + Sync + 'static {
    /// The user's factor, if any row exists.
    async fn get(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError>;
    /// Stores a pending secret (replacing any pending one; a confirmed secret stays).
    async fn set_pending(
        &self,
        user_id: &str,
        sealed: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Confirms: the secret becomes `sealed`, the pending one goes, `last_step` becomes
    /// `step`. Only if no secret is confirmed yet; `true` if done.
    async fn activate(
        &self,
        user_id: &str,
        sealed: &str,
        step: i64,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces the confirmed sealed secret only if it is still `old` (sealed again under a
    /// newer key); `true` if replaced.
    async fn reseal(&self, user_id: &str, old: &str, new: &str) -> Result<bool, StoreError>;
    /// Claims a time step: `true` only if it is greater than the last one claimed (a
    /// compare-and-set, so of two uses of one code exactly one wins).
    async fn claim_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    /// Removes the factor and every recovery code; `true` if there was a factor.
    async fn remove(&self, user_id: &str) -> Result<bool, StoreError>;
    /// Replaces the user's recovery codes (their hashes).
    async fn set_recovery(&self, user_id: &str, hashes: &[String]) -> Result<(), StoreError>;
    /// Consumes a recovery code by its hash: `true` for exactly one of concurrent callers.
    async fn use_recovery(&self, user_id: &str, hash: &str) -> Result<bool, StoreError>;
    /// How many recovery codes are left.
    async fn recovery_left(&self, user_id: &str) -> Result<usize, StoreError>;
}

/// Factors in process memory (tests, single-process setups).
#[derive(Debug, Default)]
pub struct MemoryFactorStore {
    rows: Mutex<BTreeMap<String, (TotpFactor, BTreeSet<String>)>>,
}

type Rows = BTreeMap<String, (TotpFactor, BTreeSet<String>)>;

impl MemoryFactorStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Rows>, StoreError> {
        self.rows
            .lock()
            .map_err(|_| StoreError::new("factor store lock poisoned"))
    }
}

#[async_trait::async_trait]
impl FactorStore for MemoryFactorStore {
    async fn get(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError> {
        Ok(self.lock()?.get(user_id).map(|(f, _)| f.clone()))
    }

    async fn set_pending(
        &self,
        user_id: &str,
        sealed: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut rows = self.lock()?;
        let (factor, _) = rows.entry(user_id.to_owned()).or_default();
        factor.pending = Some(sealed.to_owned());
        factor.pending_expires_at = Some(expires_at);
        Ok(())
    }

    async fn activate(
        &self,
        user_id: &str,
        sealed: &str,
        step: i64,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.lock()?;
        let (factor, _) = rows.entry(user_id.to_owned()).or_default();
        if factor.secret.is_some() {
            return Ok(false);
        }
        factor.secret = Some(sealed.to_owned());
        factor.pending = None;
        factor.pending_expires_at = None;
        factor.confirmed_at = Some(at);
        factor.last_step = Some(step);
        Ok(true)
    }

    async fn reseal(&self, user_id: &str, old: &str, new: &str) -> Result<bool, StoreError> {
        let mut rows = self.lock()?;
        match rows.get_mut(user_id) {
            Some((factor, _)) if factor.secret.as_deref() == Some(old) => {
                factor.secret = Some(new.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn claim_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let mut rows = self.lock()?;
        let Some((factor, _)) = rows.get_mut(user_id) else {
            return Ok(false);
        };
        if factor.last_step.is_some_and(|last| last >= step) {
            return Ok(false);
        }
        factor.last_step = Some(step);
        Ok(true)
    }

    async fn remove(&self, user_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()?
            .remove(user_id)
            .is_some_and(|(f, _)| f.enabled()))
    }

    async fn set_recovery(&self, user_id: &str, hashes: &[String]) -> Result<(), StoreError> {
        let mut rows = self.lock()?;
        let (_, codes) = rows.entry(user_id.to_owned()).or_default();
        *codes = hashes.iter().cloned().collect();
        Ok(())
    }

    async fn use_recovery(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()?
            .get_mut(user_id)
            .is_some_and(|(_, codes)| codes.remove(hash)))
    }

    async fn recovery_left(&self, user_id: &str) -> Result<usize, StoreError> {
        Ok(self.lock()?.get(user_id).map_or(0, |(_, c)| c.len()))
    }
}
