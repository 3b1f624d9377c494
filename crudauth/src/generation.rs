//! The user generation: one counter per user in the shared store, moved by every write
//! crudauth makes to the user (and by `auth.invalidate_user`). Cached users are used only
//! under the generation they were read with, so a write on any process retires every
//! process's cached copy; session records carry the generation they were last told of, so
//! the session path learns it from the read it makes anyway.
//!
//! A user who was never written to has no counter of their own: their generation is the
//! store's *base*, one record for all of them, read in the same round trip
//! ([`Store::get_many`]). So the store holds a counter per user written to, not per user
//! signed in, and an idle session costs no more than its own record.

use crate::error::AuthError;
use crate::store::{Store, fail_closed};

/// The base generation's key. User keys are `gen:{id}`: no user id reaches this one.
const BASE: &str = "gen-base";

fn key(user_id: &str) -> String {
    format!("gen:{user_id}")
}

fn fault(e: crate::store::StoreError) -> AuthError {
    fail_closed("generation store", &e)
}

fn parse(bytes: &[u8]) -> Result<i64, AuthError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(AuthError::Internal)
}

/// Where a user's generation came from.
enum Current {
    /// Their own counter.
    Own(i64),
    /// The base: they have none of their own yet.
    Base(i64),
}

/// One round trip for the user's counter, the base and `also` (a record the caller wants in
/// the same read, if any); a missing base is started at the current time in microseconds, so
/// a store that lost its records (a flush, a restart of the memory store) never hands out a
/// number an older cached copy was read under.
async fn current(
    store: &dyn Store,
    key: &str,
    also: Option<&str>,
) -> Result<(Current, bool), AuthError> {
    let mut keys = vec![key, BASE];
    keys.extend(also);
    for _ in 0..2 {
        let found = store.get_many(&keys).await.map_err(fault)?;
        let present = also.is_some() && found.get(2).is_some_and(Option::is_some);
        match found.get(..2) {
            Some([Some(own), _]) => return Ok((Current::Own(parse(own)?), present)),
            Some([None, Some(base)]) => return Ok((Current::Base(parse(base)?), present)),
            Some([None, None]) => {
                let start = crate::clock::system_micros().to_string();
                store
                    .set_if_absent(BASE, start.as_bytes(), None)
                    .await
                    .map_err(fault)?;
            }
            _ => return Err(AuthError::Internal),
        }
    }
    Err(AuthError::Unavailable)
}

/// The user's generation. Counters have no expiry: a store must not evict them (Redis: a
/// `noeviction` or `volatile-*` policy), and `max_age` is the backstop if it does.
pub(crate) async fn read(store: &dyn Store, user_id: &str) -> Result<i64, AuthError> {
    Ok(read_with(store, user_id, None).await?.0)
}

/// The user's generation and whether the record `also` exists, in the same round trip (the
/// bearer transport looks its token up on the deny list this way, at no extra cost).
pub(crate) async fn read_with(
    store: &dyn Store,
    user_id: &str,
    also: Option<&str>,
) -> Result<(i64, bool), AuthError> {
    match current(store, &key(user_id), also).await? {
        (Current::Own(n) | Current::Base(n), present) => Ok((n, present)),
    }
}

/// Moves the user's generation on (a compare-and-set, or a create when they have no counter
/// yet, retried, so concurrent bumps each move it); returns the new one.
pub(crate) async fn bump(store: &dyn Store, user_id: &str) -> Result<i64, AuthError> {
    let key = key(user_id);
    for _ in 0..16 {
        let (current, _) = current(store, &key, None).await?;
        let (Current::Own(n) | Current::Base(n)) = current;
        // Never below the clock either: a counter a store lost and started again from a
        // lagging clock still moves past every number handed out before.
        let next = (n + 1).max(crate::clock::system_micros());
        let new = next.to_string();
        let moved = match current {
            Current::Own(_) => store
                .compare_and_set(&key, n.to_string().as_bytes(), new.as_bytes(), None)
                .await
                .map_err(fault)?,
            Current::Base(_) => store
                .set_if_absent(&key, new.as_bytes(), None)
                .await
                .map_err(fault)?,
        };
        if moved {
            return Ok(next);
        }
    }
    Err(AuthError::Unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn users_share_the_base_until_written_to() {
        let store = MemoryStore::new();
        let a = read(&store, "1").await.unwrap();
        assert_eq!(read(&store, "2").await.unwrap(), a, "both on the base");
        assert!(
            store.get("gen:1").await.unwrap().is_none(),
            "no record per reader"
        );
        let bumped = bump(&store, "1").await.unwrap();
        assert!(bumped > a);
        assert_eq!(read(&store, "1").await.unwrap(), bumped);
        assert_eq!(
            read(&store, "2").await.unwrap(),
            a,
            "the other user keeps the base"
        );
        let again = bump(&store, "1").await.unwrap();
        assert!(again > bumped, "a second bump moves the user's own counter");
    }

    #[tokio::test]
    async fn a_lost_store_never_gives_back_an_old_number() {
        let store = MemoryStore::new();
        let before = bump(&store, "1").await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let fresh = MemoryStore::new();
        assert!(
            read(&fresh, "1").await.unwrap() > before,
            "starts again from the clock"
        );
    }

    #[tokio::test]
    async fn a_user_called_base_does_not_meet_the_base() {
        let store = MemoryStore::new();
        let base = read(&store, "x").await.unwrap();
        bump(&store, "base").await.unwrap();
        bump(&store, "-base").await.unwrap();
        assert_eq!(read(&store, "x").await.unwrap(), base);
    }
}
