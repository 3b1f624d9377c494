//! The conformance suite every `Store` backend must pass, including under concurrency.
//!
//! Each check takes a store whose keys are private to the caller (a fresh memory store, or a
//! unique key prefix on a shared server) and panics with the check's name on a violation.

use std::sync::Arc;
use std::time::Duration;

use crudauth::store::Store;

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(60);

/// Runs every check.
pub async fn run_all(store: Arc<dyn Store>) {
    records_round_trip_and_expire(&*store).await;
    get_many_answers_in_order(&*store).await;
    set_if_absent_never_overwrites(&*store).await;
    get_and_delete_has_exactly_one_winner(store.clone()).await;
    increments_are_exact_under_contention(store.clone()).await;
    compare_and_set_loses_no_update(store.clone()).await;
    counters_use_a_fixed_window(&*store).await;
    the_index_stays_consistent(&*store).await;
}

async fn records_round_trip_and_expire(store: &dyn Store) {
    store.set("r:a", b"1", Some(SHORT)).await.unwrap();
    store.set("r:forever", b"2", None).await.unwrap();
    assert_eq!(
        store.get("r:a").await.unwrap().as_deref(),
        Some(&b"1"[..]),
        "get after set"
    );
    let left = store
        .ttl("r:a")
        .await
        .unwrap()
        .expect("ttl of a live record");
    assert!(
        left <= SHORT && left > Duration::ZERO,
        "ttl within bounds: {left:?}"
    );
    assert_eq!(
        store.ttl("r:forever").await.unwrap(),
        Some(Duration::MAX),
        "no-expiry ttl"
    );
    assert_eq!(
        store.ttl("r:missing").await.unwrap(),
        None,
        "ttl of a missing key"
    );
    tokio::time::sleep(SHORT + Duration::from_millis(150)).await;
    assert_eq!(
        store.get("r:a").await.unwrap(),
        None,
        "an expired record is never returned"
    );
    assert_eq!(
        store.ttl("r:a").await.unwrap(),
        None,
        "an expired record has no ttl"
    );
    assert!(
        store.delete("r:forever").await.unwrap(),
        "delete reports a removal"
    );
    assert!(
        !store.delete("r:forever").await.unwrap(),
        "delete of a missing key"
    );
    store.set("r:b", b"x", Some(LONG)).await.unwrap();
    store.set("r:b", b"y", Some(LONG)).await.unwrap();
    assert_eq!(
        store.get("r:b").await.unwrap().as_deref(),
        Some(&b"y"[..]),
        "set replaces"
    );
}

async fn get_many_answers_in_order(store: &dyn Store) {
    assert!(store.get_many(&[]).await.unwrap().is_empty(), "no keys");
    store.set("m:a", b"1", None).await.unwrap();
    store.set("m:b", b"2", Some(LONG)).await.unwrap();
    store.set("m:gone", b"3", Some(SHORT)).await.unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(150)).await;
    let found = store
        .get_many(&["m:b", "m:missing", "m:gone", "m:a", "m:b"])
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![
            Some(b"2".to_vec()),
            None,
            None,
            Some(b"1".to_vec()),
            Some(b"2".to_vec()),
        ],
        "get_many: in order, missing and expired as None, a repeated key twice"
    );
}

async fn set_if_absent_never_overwrites(store: &dyn Store) {
    assert!(
        store
            .set_if_absent("n:a", b"first", Some(SHORT))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_if_absent("n:a", b"second", Some(LONG))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("n:a").await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    tokio::time::sleep(SHORT + Duration::from_millis(150)).await;
    assert!(
        store
            .set_if_absent("n:a", b"third", Some(LONG))
            .await
            .unwrap(),
        "an expired record no longer blocks set_if_absent"
    );
}

async fn get_and_delete_has_exactly_one_winner(store: Arc<dyn Store>) {
    for round in 0..5 {
        let key = format!("g:{round}");
        store.set(&key, b"token", Some(LONG)).await.unwrap();
        let racers: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                let key = key.clone();
                tokio::spawn(async move { store.get_and_delete(&key).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            if racer.await.unwrap().is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "get_and_delete: exactly one of 16 racers wins");
        assert_eq!(store.get(&key).await.unwrap(), None);
    }
}

async fn increments_are_exact_under_contention(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    store.incr("c:exact", 1, LONG).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        store.incr("c:exact", 0, LONG).await.unwrap(),
        500,
        "no lost increment"
    );
    assert_eq!(
        store.incr("c:exact", -3, LONG).await.unwrap(),
        497,
        "negative deltas"
    );
}

async fn compare_and_set_loses_no_update(store: Arc<dyn Store>) {
    store.set("cas:n", b"0", Some(LONG)).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let current = store.get("cas:n").await.unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&current).unwrap().parse().unwrap();
                        let next = (n + 1).to_string();
                        if store
                            .compare_and_set("cas:n", &current, next.as_bytes(), Some(LONG))
                            .await
                            .unwrap()
                        {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        store.get("cas:n").await.unwrap().as_deref(),
        Some(&b"100"[..]),
        "CAS"
    );
    assert!(
        !store
            .compare_and_set("cas:missing", b"x", b"y", None)
            .await
            .unwrap(),
        "CAS on a missing key fails"
    );
    assert_eq!(
        store.get("cas:missing").await.unwrap(),
        None,
        "and writes nothing"
    );
}

async fn counters_use_a_fixed_window(store: &dyn Store) {
    assert_eq!(store.incr("w:c", 1, SHORT).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // A later increment does not move the window's end.
    assert_eq!(store.incr("w:c", 1, LONG).await.unwrap(), 2);
    let left = store.ttl("w:c").await.unwrap().expect("counter ttl");
    assert!(
        left <= SHORT,
        "the window was armed at creation only: {left:?}"
    );
    tokio::time::sleep(SHORT).await;
    assert_eq!(
        store.incr("w:c", 1, SHORT).await.unwrap(),
        1,
        "a new window starts at zero"
    );
    assert!(
        store.delete("w:c").await.unwrap(),
        "counters can be deleted"
    );
}

async fn the_index_stays_consistent(store: &dyn Store) {
    store.index_add("i:user", "a", LONG).await.unwrap();
    store.index_add("i:user", "b", LONG).await.unwrap();
    store.index_add("i:user", "short", SHORT).await.unwrap();
    let mut members = store.index_members("i:user").await.unwrap();
    members.sort();
    assert_eq!(members, ["a", "b", "short"]);
    store.index_remove("i:user", "a").await.unwrap();
    store.index_remove("i:user", "never-there").await.unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(150)).await;
    assert_eq!(
        store.index_members("i:user").await.unwrap(),
        ["b"],
        "revoked and expired members leave"
    );
    assert!(store.index_members("i:nobody").await.unwrap().is_empty());
    store.purge_expired().await.unwrap();
    assert_eq!(
        store.index_members("i:user").await.unwrap(),
        ["b"],
        "purge keeps live members"
    );
}
