//! Work the library does after answering (mail, hooks that must not delay a response),
//! counted so a shutdown can wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The tracker of background tasks: every task the library starts off the request path
/// (deliveries, the `on_after_register` hook) is counted here, and [`Background::flush`]
/// waits until none is left. Reached as `auth.background()`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let background = crudauth::Background::default();
/// background.flush().await; // nothing in flight: returns at once
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Background {
    in_flight: Arc<InFlight>,
}

#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("in_flight", &self.in_flight.count.load(Ordering::Relaxed))
            .finish()
    }
}

/// Decrements the in-flight count when a task ends, however it ends.
struct Guard(Arc<InFlight>);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Background {
    /// Runs `task` on the runtime, counted until it ends.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        let guard = Guard(self.in_flight.clone());
        // In the spawning request's span, so its audit events (a registration's) nest there.
        let task = tracing::Instrument::in_current_span(task);
        tokio::spawn(async move {
            let _guard = guard;
            task.await;
        });
    }

    /// Waits until no background task is in flight (call before shutting down, or in tests).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// crudauth::Background::default().flush().await;
    /// # }
    /// ```
    pub async fn flush(&self) {
        loop {
            let idle = self.in_flight.idle.notified();
            if self.in_flight.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}
