//! The clock sessions read "now" from.
//!
//! Session timeouts (idle and absolute) are decided by comparing the timestamps in a session
//! record with [`Clock::now_secs`]. By default that is the system clock. A test (or a
//! simulation) can hand the session transport an [`Clock::adjustable`] clock instead and move
//! it forward with [`Clock::advance`], so timeouts are tested without sleeping.
//!
//! An adjustable clock is the system clock plus an offset: real time keeps flowing, and
//! `advance` adds to the offset. Only what reads this clock sees the jump; the store's own
//! record expiry (real time) does not, so a test that advances past a timeout exercises the
//! session manager's own check, which is the one that must hold whatever the backend does.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of the current time in unix seconds: the system clock, or an adjustable one.
///
/// Cheap to clone; clones of an adjustable clock share their offset, so a test keeps one
/// clone and gives another to [`crate::SessionConfig::clock`].
///
/// ```
/// use std::time::Duration;
/// let clock = crudauth::clock::Clock::adjustable();
/// let before = clock.now_secs();
/// assert!(clock.advance(Duration::from_secs(3600)));
/// assert!(clock.now_secs() >= before + 3600);
/// assert!(!crudauth::clock::Clock::system().advance(Duration::from_secs(1)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: seconds added to the system clock.
    offset: Option<Arc<AtomicI64>>,
}

/// The system clock in unix seconds (0 if the system clock is before 1970).
pub(crate) fn system_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The system clock in unix microseconds (where store-kept counters start).
pub(crate) fn system_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as i64)
}

/// The system clock in unix seconds (for what is not tied to a session manager's clock).
pub(crate) fn now_secs() -> i64 {
    system_secs()
}

impl Clock {
    /// The system clock (the default).
    ///
    /// ```
    /// let clock = crudauth::clock::Clock::system();
    /// assert!(clock.now_secs() > 1_600_000_000);
    /// ```
    pub fn system() -> Self {
        Clock { offset: None }
    }

    /// A clock that starts at the system time and can be moved forward with
    /// [`Clock::advance`] (for tests).
    ///
    /// ```
    /// let clock = crudauth::clock::Clock::adjustable();
    /// let config = crudauth::SessionConfig { clock: clock.clone(), ..Default::default() };
    /// ```
    pub fn adjustable() -> Self {
        Clock {
            offset: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Now, in unix seconds.
    ///
    /// ```
    /// let now = crudauth::clock::Clock::default().now_secs();
    /// assert!(now > 0);
    /// ```
    pub fn now_secs(&self) -> i64 {
        let offset = self.offset.as_ref().map_or(0, |o| o.load(Ordering::SeqCst));
        system_secs().saturating_add(offset)
    }

    /// Moves an adjustable clock (and every clone of it) forward by `by`; returns `false`
    /// and does nothing on the system clock.
    ///
    /// ```
    /// let clock = crudauth::clock::Clock::adjustable();
    /// let shared = clock.clone();
    /// clock.advance(std::time::Duration::from_secs(60));
    /// assert!(shared.now_secs() >= crudauth::clock::Clock::system().now_secs() + 59);
    /// ```
    pub fn advance(&self, by: Duration) -> bool {
        let Some(offset) = &self.offset else {
            return false;
        };
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        offset.fetch_add(secs, Ordering::SeqCst);
        true
    }

    /// Whether this is an adjustable clock.
    ///
    /// ```
    /// assert!(crudauth::clock::Clock::adjustable().is_adjustable());
    /// assert!(!crudauth::clock::Clock::system().is_adjustable());
    /// ```
    pub fn is_adjustable(&self) -> bool {
        self.offset.is_some()
    }
}
