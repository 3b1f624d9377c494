//! The user generation: one counter per user in the shared store, moved by every write
//! crudauth makes to the user (and by `auth.invalidate_user`). Cached users are used only
//! under the generation they were read with, so a write on any process retires every
//! process's cached copy; session records carry the generation they were last told of, so
//! the session path learns it from the read it makes anyway.

use crate::error::AuthError;
use crate::store::{Store, fail_closed};

fn key(user_id: &str) -> String {
    format!("gen:{user_id}")
}

fn fault(e: crate::store::StoreError) -> AuthError {
    fail_closed("generation store", &e)
}

/// The user's generation. A missing counter starts at the current time in microseconds, so
/// a store that lost it (a flush, a restart of the memory store) never hands out a number
/// an older cached copy was read under. The counter has no expiry: a store must not evict it
/// (Redis: a `noeviction` or `volatile-*` policy), and `max_age` is the backstop if it does.
pub(crate) async fn read(store: &dyn Store, user_id: &str) -> Result<i64, AuthError> {
    let key = key(user_id);
    for _ in 0..2 {
        if let Some(bytes) = store.get(&key).await.map_err(fault)? {
            return std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or(AuthError::Internal);
        }
        let start = crate::clock::system_micros().to_string();
        store
            .set_if_absent(&key, start.as_bytes(), None)
            .await
            .map_err(fault)?;
    }
    Err(AuthError::Unavailable)
}

/// Moves the user's generation on (a compare-and-set, retried, so concurrent bumps each
/// move it); returns the new one.
pub(crate) async fn bump(store: &dyn Store, user_id: &str) -> Result<i64, AuthError> {
    let key = key(user_id);
    for _ in 0..16 {
        let current = read(store, user_id).await?;
        // Never below the clock either: a counter a store lost and started again from a
        // lagging clock still moves past every number handed out before.
        let next = (current + 1).max(crate::clock::system_micros());
        let (old, new) = (current.to_string(), next.to_string());
        let swapped = store
            .compare_and_set(&key, old.as_bytes(), new.as_bytes(), None)
            .await
            .map_err(fault)?;
        if swapped {
            return Ok(next);
        }
    }
    Err(AuthError::Unavailable)
}
