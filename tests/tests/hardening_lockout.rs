//! Lockout attacks: one budget per account across every password path, internal keys no
//! input can name, one lock per burst on every store, the hourly bound, and look-alike
//! identifiers sharing a budget.

use std::time::Duration;

use crudauth::LockoutConfig;
use crudauth_tests::http::{Req, TestApp, app, app_with};
use crudauth_tests::stores::all_stores;
use serde_json::json;

const PW: &str = "correct horse 1";

async fn alice(t: &TestApp) {
    t.register("alice@example.com", "alice", PW).await;
}

fn login(user: &str, password: &str) -> Req {
    Req::post("/login").form(&[("username", user), ("password", password)])
}

fn retry_after(r: &crudauth_tests::http::Resp) -> u64 {
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_nul_identifier_cannot_reach_an_accounts_lockout_key() {
    let t = app("lockout_nul").await;
    alice(&t).await;
    let s = t.login("alice", PW).await;
    let me = t.send(Req::get("/me").session(&s)).await;
    let id = me.json["user_id"].as_str().unwrap().to_owned();
    // The old key layout: `\0uid:<id>` named the account's change-password budget. Every
    // such identifier (and any with a control or bidi character) is refused before any
    // counter: the sixth is still a plain 401, not a 429.
    let hostile = [
        format!("\u{0}uid:{id}"),
        format!("\u{0}a:{id}"),
        "alice\u{0}".to_owned(),
        "al\u{202E}ice".to_owned(),
        "alice\n".to_owned(),
        "\u{200B}alice".to_owned(),
    ];
    for (i, name) in hostile.iter().cycle().take(12).enumerate() {
        let r = t.send(login(name, "wrong")).await;
        assert_eq!(r.status, 401, "attempt {i} with {name:?}");
    }
    // The owner's password paths are untouched.
    let r = t
        .send(Req::post("/change-password").session(&s).json(json!({
            "current_password": PW, "new_password": "another horse 2"
        })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(t.send(login("alice", "another horse 2")).await.status, 200);
}

#[tokio::test]
async fn fullwidth_and_whitespace_variants_of_an_identifier_share_one_budget() {
    let t = app("lockout_variants").await;
    alice(&t).await;
    for (i, name) in [
        "alice",
        " alice ",
        "ａｌｉｃｅ",
        "ALICE@example.com",
        "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    ]
    .iter()
    .enumerate()
    {
        let r = t.send(login(name, "wrong")).await;
        assert_eq!(r.status, 401, "attempt {} ({name:?})", i + 1);
    }
    let r = t.send(login("alice", PW)).await;
    assert_eq!(r.status, 429, "the variants drew on alice's one budget");

    // An identifier that names nobody: its variants fold to one budget too, and it
    // answers exactly as a real account does.
    for name in ["bob", " bob", "ｂｏｂ", "bob ", "ｂｏｂ "] {
        assert_eq!(t.send(login(name, "wrong")).await.status, 401);
    }
    let r = t.send(login("bob", "wrong")).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (429, "Too many login attempts. Try again later.")
    );
    assert_eq!(r.headers["retry-after"], "60");
}

/// Wrong passwords for `pattern` (one after the other), as statuses.
async fn statuses(t: &TestApp, pattern: &[&str]) -> Vec<u16> {
    let mut out = Vec::new();
    for name in pattern {
        out.push(t.send(login(name, "wrong")).await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn the_lockout_never_tells_whether_an_account_exists() {
    let t = app("lockout_oracle").await;
    alice(&t).await;
    t.register("carol@bücher.de", "carol", PW).await;
    // Usernames are matched exactly: `Alice` is another identifier than `alice`, whether
    // or not `alice` exists, so the budgets split (or not) the same way for both.
    let known = statuses(&t, &["Alice", "Alice", "Alice", "alice", "alice", "alice"]).await;
    let unknown = statuses(&t, &["Bob", "Bob", "Bob", "bob", "bob", "bob"]).await;
    assert_eq!(known, unknown);
    // Addresses are one identifier in any spelling the lookup treats as one: the Unicode
    // and the IDNA form of a domain, upper and lower case.
    let known = statuses(
        &t,
        &[
            "carol@bücher.de",
            "CAROL@BÜCHER.DE",
            "carol@xn--bcher-kva.de",
            "carol@xn--bcher-kva.de",
            "Carol@Bücher.de",
            "carol@bücher.de",
        ],
    )
    .await;
    let unknown = statuses(
        &t,
        &[
            "dave@bücher.de",
            "DAVE@BÜCHER.DE",
            "dave@xn--bcher-kva.de",
            "dave@xn--bcher-kva.de",
            "Dave@Bücher.de",
            "dave@bücher.de",
        ],
    )
    .await;
    assert_eq!(known, [401, 401, 401, 401, 401, 429]);
    assert_eq!(known, unknown);
}

#[tokio::test]
async fn the_known_address_exemption_ends_with_a_password_change() {
    let config = LockoutConfig {
        account_max_attempts: 10,
        account_hourly_max_attempts: 10,
        ..LockoutConfig::default()
    };
    let t = app_with("lockout_known_epoch", move |b| b.lockout(config)).await;
    alice(&t).await;
    // Someone with the password signs in from four addresses...
    for a in 0..4u8 {
        assert_eq!(
            t.send(login("alice", PW).peer([198, 51, 100, a]))
                .await
                .status,
            200
        );
    }
    // ...the owner changes it...
    let s = t.login("alice", PW).await;
    let r = t
        .send(Req::post("/change-password").session(&s).json(json!({
            "current_password": PW, "new_password": "another horse 2"
        })))
        .await;
    assert_eq!(r.status, 200);
    // ...and those addresses are strangers again: the account-wide bound holds for them.
    let mut answers = Vec::new();
    for a in 0..4u8 {
        for _ in 0..4 {
            answers.push(
                t.send(login("alice", "wrong").peer([198, 51, 100, a]))
                    .await
                    .status,
            );
        }
    }
    let hashed = answers.iter().filter(|s| **s == 401).count();
    assert_eq!(
        hashed, 10,
        "no more than the account-wide bound reached the hash"
    );
}

#[tokio::test]
async fn a_parallel_wrong_password_burst_gives_one_lock_on_every_store() {
    for m in all_stores("lockout_burst").await {
        let store = m.store.clone();
        let t = app_with(&format!("lockout_burst_{}", m.name), move |b| {
            b.store(store)
        })
        .await;
        alice(&t).await;
        let before = t.auth.passwords().verifications();
        let burst = (0..30)
            .map(|_| Box::pin(t.send(login("alice", "wrong"))))
            .collect();
        let answers = join_vec(burst).await;
        let refused: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
        let checked = answers.iter().filter(|r| r.status == 401).count();
        assert_eq!(checked, 5, "{}: exactly five were checked", m.name);
        assert_eq!(refused.len(), 25, "{}", m.name);
        assert_eq!(
            t.auth.passwords().verifications() - before,
            5,
            "{}: five hashes, no more",
            m.name
        );
        for r in &refused {
            let after = retry_after(r);
            // 60 s, read back from the store (a database store keeps whole-second expiry
            // stamps, so its reading may round up to 61).
            assert!(
                (59..=61).contains(&after),
                "{}: one lock of the first round, not an escalation per refusal (got {after})",
                m.name
            );
        }
        // The lock is the first round's: after it, the next lock is the second round's.
        let r = t.send(login("alice", "wrong")).await;
        assert!(retry_after(&r) <= 61, "{}: still the first lock", m.name);
        m.cleanup().await;
    }
}

#[tokio::test]
async fn a_distributed_burst_cannot_lock_the_owner_out_and_strangers_stay_bounded() {
    for m in all_stores("lockout_distributed").await {
        let store = m.store.clone();
        let t = app_with(&format!("lockout_dist_{}", m.name), move |b| b.store(store)).await;
        alice(&t).await;
        // The owner signs in from their usual address once.
        let owner = [192, 0, 2, 10];
        assert_eq!(t.send(login("alice", PW).peer(owner)).await.status, 200);
        // 120 wrong passwords from 24 addresses (five each: under every per-client cap).
        let mut max_retry = 0;
        for a in 0..24u8 {
            for _ in 0..5 {
                let r = t
                    .send(login("alice", "wrong").peer([198, 51, 100, a]))
                    .await;
                assert!(r.status == 401 || r.status == 429, "{}", m.name);
                if r.status == 429 {
                    max_retry = max_retry.max(retry_after(&r));
                }
            }
        }
        assert!(
            max_retry > 0,
            "{}: the account-wide bound refused strangers",
            m.name
        );
        // A stranger now is refused (at most 100 guesses an hour reach the hash)...
        let r = t.send(login("alice", PW).peer([203, 0, 113, 99])).await;
        assert_eq!(r.status, 429, "{}", m.name);
        assert!(retry_after(&r) <= 3600, "{}", m.name);
        // ...but the owner, from the address they signed in from, is not locked out.
        let r = t.send(login("alice", PW).peer(owner)).await;
        assert_eq!(r.status, 200, "{}: the owner still signs in", m.name);
        m.cleanup().await;
    }
}

#[tokio::test]
async fn an_hour_of_distributed_guessing_is_capped_per_account() {
    // Small thresholds: five per minute per client, at most 12 an hour per account.
    let config = LockoutConfig {
        max_attempts: 5,
        account_max_attempts: 50,
        account_hourly_max_attempts: 12,
        ..LockoutConfig::default()
    };
    let t = app_with("lockout_hourly", move |b| b.lockout(config)).await;
    alice(&t).await;
    let before = t.auth.passwords().verifications();
    let mut refused = 0;
    for a in 0..10u8 {
        for _ in 0..3 {
            let r = t
                .send(login("alice", "wrong").peer([198, 51, 100, a]))
                .await;
            if r.status == 429 {
                refused += 1;
                let after = retry_after(&r);
                assert!(after > 60 && after <= 3600, "locked for the hour: {after}");
            }
        }
    }
    let hashed = t.auth.passwords().verifications() - before;
    assert_eq!(hashed, 12, "no more than the hourly bound reached the hash");
    assert_eq!(refused, 30 - 12);
}

#[tokio::test]
async fn the_lock_escalates_once_per_lock_not_once_per_refusal() {
    let config = LockoutConfig {
        max_attempts: 2,
        base: Duration::from_secs(2),
        max: Duration::from_secs(16),
        window: Duration::from_secs(1),
        ..LockoutConfig::default()
    };
    let t = app_with("lockout_once", move |b| b.lockout(config)).await;
    alice(&t).await;
    assert_eq!(t.send(login("alice", "wrong")).await.status, 401);
    assert_eq!(t.send(login("alice", "wrong")).await.status, 401);
    // Ten refusals in a row while locked: one lock of the first round.
    for _ in 0..10 {
        let r = t.send(login("alice", "wrong")).await;
        assert_eq!(r.status, 429);
        assert!(retry_after(&r) <= 2);
    }
}

/// Polls every future on this task until all are done (a concurrent burst without a
/// `futures` dependency).
async fn join_vec<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut results: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if results[i].is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    Poll::Ready(v) => results[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn a_forwarded_for_with_non_ascii_bytes_does_not_move_a_client_out_of_its_bucket() {
    let t = app_with("lockout_xff_bytes", |b| b.trusted_proxy_hops(1)).await;
    alice(&t).await;
    // The client writes garbage (and a port) into the left of the chain; the proxy appends
    // the real address, with a port as some proxies do.
    let hostile: &[u8] = b"\xff\xfe evil, 10.0.0.1, 198.51.100.7:51234";
    for i in 0..5 {
        let r = t
            .send(login("alice", "wrong").header("x-forwarded-for", hostile))
            .await;
        assert_eq!(r.status, 401, "attempt {}", i + 1);
    }
    // The same client without the garbage is in the same bucket: locked.
    let r = t
        .send(login("alice", PW).header("x-forwarded-for", "198.51.100.7"))
        .await;
    assert_eq!(r.status, 429);
    // Another client behind the same proxy is not.
    let r = t
        .send(login("alice", PW).header("x-forwarded-for", "192.0.2.44"))
        .await;
    assert_eq!(r.status, 200);
}
