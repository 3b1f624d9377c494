//! Input and one-time-token hardening, each test named after its attack: one reset token
//! buys one password hash however many confirmations race with it; the confirm routes are
//! rate limited; two concurrent email changes leave one pending change bound to its
//! address; `/register` checks lengths before any work, refuses invisible formatting
//! characters in usernames, and canonicalises addresses (NFKC, IDNA) before the uniqueness
//! check and at every lookup.
//!
//! Tests that involve server-side state run on every store (memory, the database store of
//! crudauth-sea on SQLite, PostgreSQL and MariaDB, Redis); the look-alike registration runs
//! on every database of the users table. An unconfigured backend is reported as SKIPPED on
//! stderr; a configured but unreachable one fails the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crudauth::RateLimit;
use crudauth::policy::{PasswordPolicy, PasswordSource};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{
    Req, Resp, TestApp, User, app_with, default_builder, demo_routes, mails, outbox_path, send,
    token_of, with_outbox,
};
use crudauth_tests::models::users;
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use serde_json::json;

const PW: &str = "correct horse 1";

/// A password policy whose validator counts the checks made for `source`: a reset
/// confirmation checks the new password right before it hashes it, so the count is the
/// number of hashes a token bought (no timing involved).
fn counting(source: PasswordSource, count: &Arc<AtomicUsize>) -> PasswordPolicy {
    let count = count.clone();
    PasswordPolicy::default().validator(move |_, ctx| {
        if ctx.source == source {
            count.fetch_add(1, Ordering::SeqCst);
        }
        async { Ok(()) }
    })
}

/// Sends every request at once (from its own task); the responses in order.
async fn all_at_once(app: &axum::Router, reqs: Vec<Req>) -> Vec<Resp> {
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|req| {
            let app = app.clone();
            tokio::spawn(async move { send(&app, req).await })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("request task"));
    }
    out
}

fn statuses(responses: &[Resp]) -> Vec<u16> {
    let mut s: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    s.sort_unstable();
    s
}

async fn reset_token(t: &TestApp, path: &std::path::Path, email: &str) -> String {
    let r = t
        .send(Req::post("/password/reset-request").json(json!({ "email": email })))
        .await;
    assert_eq!(r.status, 200);
    let sent = mails(&t.auth, path).await;
    token_of(
        sent.iter()
            .rev()
            .find(|m| m["kind"] == "reset_password")
            .expect("a reset mail"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reset_token_buys_one_hash_however_many_confirm_it_at_once() {
    for case in all_stores("reset_one_hash").await {
        let path = outbox_path("reset_one_hash");
        let checks = Arc::new(AtomicUsize::new(0));
        let (store, policy) = (case.store.clone(), counting(PasswordSource::Reset, &checks));
        let t = app_with("reset_one_hash", |b| {
            with_outbox(b.store(store), &path).password_policy(policy)
        })
        .await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let token = reset_token(&t, &path, "ann@example.com").await;
        let racers: Vec<Req> = (0..16u8)
            .map(|i| {
                Req::post("/password/reset-confirm")
                    .peer([10, 0, 0, i + 1])
                    .json(json!({"token": token, "new_password": format!("racer number {i} wins")}))
            })
            .collect();
        let answers = all_at_once(&t.app, racers).await;
        let mut expected = vec![200];
        expected.extend([400; 15]);
        assert_eq!(statuses(&answers), expected, "{who}");
        for r in answers.iter().filter(|r| r.status == 400) {
            assert_eq!(r.detail(), "Invalid or expired token", "{who}");
        }
        assert_eq!(
            checks.load(Ordering::SeqCst),
            1,
            "{who}: one token, one policy check, one hash"
        );
        let winner = answers.iter().position(|r| r.status == 200).unwrap();
        t.login("ann", &format!("racer number {winner} wins")).await;
        case.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_the_new_password_neither_burns_the_reset_link_nor_buys_parallel_hashes() {
    for case in all_stores("reset_typo").await {
        let path = outbox_path("reset_typo");
        let checks = Arc::new(AtomicUsize::new(0));
        let (store, policy) = (case.store.clone(), counting(PasswordSource::Reset, &checks));
        let t = app_with("reset_typo", |b| {
            with_outbox(b.store(store), &path).password_policy(policy)
        })
        .await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let token = reset_token(&t, &path, "ann@example.com").await;
        let confirm = |pw: &str, peer: u8| {
            Req::post("/password/reset-confirm")
                .peer([10, 0, 1, peer])
                .json(json!({"token": token, "new_password": pw}))
        };
        // A refused password: 422, and the link still works.
        let r = t.send(confirm("short", 1)).await;
        assert_eq!(r.status, 422, "{who}: {:?}", r.json);
        assert_eq!(r.json["detail"][0]["loc"], json!(["body", "new_password"]));
        // Eight at once with a refused password: one is checked, the rest find the token
        // taken; nothing is hashed, and the link survives them all.
        let before = checks.load(Ordering::SeqCst);
        let answers = all_at_once(&t.app, (0..8).map(|i| confirm("short", 10 + i)).collect()).await;
        let got = statuses(&answers);
        assert!(
            got.iter().filter(|s| **s == 422).count() >= 1
                && got.iter().all(|s| *s == 422 || *s == 400),
            "{who}: {got:?}"
        );
        assert_eq!(
            checks.load(Ordering::SeqCst) - before,
            got.iter().filter(|s| **s == 422).count(),
            "{who}: one check per claim, never one per request"
        );
        let r = t.send(confirm("a new long passphrase", 2)).await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        let replay = t.send(confirm("another long passphrase", 3)).await;
        assert_eq!(replay.status, 400, "{who}: single use");
        t.login("ann", "a new long passphrase").await;

        // A link superseded by a newer one stays dead, typo or not.
        let old = reset_token(&t, &path, "ann@example.com").await;
        let new = reset_token(&t, &path, "ann@example.com").await;
        let r = t
            .send(
                Req::post("/password/reset-confirm")
                    .json(json!({"token": old, "new_password": "short"})),
            )
            .await;
        assert_eq!(r.status, 400, "{who}");
        let r = t
            .send(
                Req::post("/password/reset-confirm")
                    .json(json!({"token": new, "new_password": "yet another passphrase"})),
            )
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        case.cleanup().await;
    }
}

#[tokio::test]
async fn token_guessing_on_the_confirm_routes_is_rate_limited_per_client_address() {
    for case in all_stores("confirm_limits").await {
        let path = outbox_path("confirm_limits");
        let store = case.store.clone();
        let t = app_with("confirm_limits", |b| with_outbox(b.store(store), &path)).await;
        let who = &case.name;
        let guess = "A".repeat(43);
        for (route, body) in [
            (
                "/password/reset-confirm",
                json!({"token": guess, "new_password": PW}),
            ),
            ("/email/verify-confirm", json!({"token": guess})),
            ("/email/change-confirm", json!({"token": guess})),
        ] {
            let from = |ip: [u8; 4]| Req::post(route).peer(ip).json(body.clone());
            for i in 0..20 {
                let r = t.send(from([10, 9, 9, 9])).await;
                assert_eq!(r.status, 400, "{who} {route} #{i}: {:?}", r.json);
            }
            let r = t.send(from([10, 9, 9, 9])).await;
            assert_eq!(r.status, 429, "{who} {route}");
            assert!(r.headers.contains_key("retry-after"), "{who} {route}");
            let r = t.send(from([10, 8, 8, 8])).await;
            assert_eq!(
                r.status, 400,
                "{who} {route}: another client has its own budget"
            );
        }
        case.cleanup().await;
    }
    // A configured limit wins; RateLimit::OFF switches one off.
    let path = outbox_path("confirm_limits_off");
    let t = app_with("confirm_limits_off", |b| {
        with_outbox(b, &path)
            .rate_limit("password_reset_confirm", RateLimit::OFF)
            .rate_limit(
                "email_verify_confirm",
                RateLimit::new(2, std::time::Duration::from_secs(60)),
            )
    })
    .await;
    for _ in 0..25 {
        let r = t
            .send(
                Req::post("/password/reset-confirm")
                    .json(json!({"token": "nope", "new_password": PW})),
            )
            .await;
        assert_eq!(r.status, 400);
    }
    let verify = || Req::post("/email/verify-confirm").json(json!({"token": "nope"}));
    assert_eq!(t.send(verify()).await.status, 400);
    assert_eq!(t.send(verify()).await.status, 400);
    assert_eq!(t.send(verify()).await.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_email_changes_leave_one_pending_change_bound_to_its_address() {
    for case in all_stores("concurrent_email_change").await {
        let path = outbox_path("concurrent_email_change");
        let store = case.store.clone();
        let t = app_with("concurrent_email_change", |b| {
            with_outbox(b.store(store), &path)
        })
        .await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let mut current = "ann@example.com".to_owned();
        for round in 1..=3u8 {
            let s = t.login(&current, PW).await;
            let seen = mails(&t.auth, &path).await.len();
            let a = format!("ann.a{round}@new.example");
            let b = format!("ann.b{round}@new.example");
            let request = |to: &str, peer: u8| {
                Req::post("/email/change-request")
                    .peer([10, round, 0, peer])
                    .session(&s)
                    .json(json!({"new_email": to, "password": PW}))
            };
            let answers = all_at_once(&t.app, vec![request(&a, 1), request(&b, 2)]).await;
            assert_eq!(statuses(&answers), [200, 200], "{who} round {round}");
            let sent = mails(&t.auth, &path).await;
            let links: Vec<(String, String)> = sent[seen..]
                .iter()
                .filter(|m| m["kind"] == "change_email")
                .map(|m| (m["to"].as_str().unwrap().to_owned(), token_of(m)))
                .collect();
            assert!(!links.is_empty(), "{who} round {round}");
            // The confirm body cannot name an address: the token binds it.
            let confirm = |token: &str| {
                Req::post("/email/change-confirm")
                    .json(json!({"token": token, "new_email": "mallory@evil.example"}))
            };
            let answers = if round == 2 {
                // One after the other this time: still only one of them is live.
                let mut out = Vec::new();
                for (_, token) in &links {
                    out.push(t.send(confirm(token)).await);
                }
                out
            } else {
                all_at_once(&t.app, links.iter().map(|(_, tk)| confirm(tk)).collect()).await
            };
            let won: Vec<usize> = answers
                .iter()
                .enumerate()
                .filter(|(_, r)| r.status == 200)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(won.len(), 1, "{who} round {round}: one pending change");
            for r in answers.iter().filter(|r| r.status != 200) {
                assert_eq!(r.status, 400, "{who} round {round}: {:?}", r.json);
            }
            let address = &links[won[0]].0;
            let user = t
                .auth
                .repo()
                .find_by_recovery(address)
                .await
                .unwrap()
                .expect("the account moved to the winning link's address");
            assert_eq!(user.email, *address, "{who} round {round}");
            for other in [&a, &b, &current, &"mallory@evil.example".to_owned()] {
                if other != address {
                    assert!(
                        t.auth
                            .repo()
                            .find_by_recovery(other)
                            .await
                            .unwrap()
                            .is_none(),
                        "{who} round {round}: {other} is nobody's"
                    );
                }
            }
            assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 401);
            current = address.clone();
        }
        case.cleanup().await;
    }
}

/// An app whose users table lives on `backend` (with the email flows on).
async fn app_on(backend: Backend, test: &str, outbox: &std::path::Path) -> Option<TestApp> {
    let tdb = open(backend, test).await?;
    tdb.create_table(users::Entity).await;
    let repo = SeaUserRepository::<User>::new(tdb.db.clone());
    let auth = with_outbox(default_builder(repo), outbox)
        .build()
        .expect("valid config");
    Some(TestApp {
        app: demo_routes(&auth),
        auth,
        tdb,
    })
}

#[tokio::test]
async fn a_fullwidth_or_idn_look_alike_cannot_register_a_second_account() {
    for backend in Backend::ALL {
        let path = outbox_path("look_alike");
        let Some(t) = app_on(backend, "look_alike", &path).await else {
            continue;
        };
        let repo = t.auth.repo();
        // Each from its own client address: the register limit is 5 an hour per address.
        let peer = std::cell::Cell::new(0u8);
        let register = |email: &str, username: &str| {
            peer.set(peer.get() + 1);
            Req::post("/register")
                .peer([10, 3, 0, peer.get()])
                .json(json!({"email": email, "username": username, "password": PW}))
        };
        let r = t.send(register("ann@example.com", "ann")).await;
        assert_eq!(r.status, 202, "{backend:?}: {:?}", r.json);
        for (i, look_alike) in [
            "ａｎｎ@ｅｘａｍｐｌｅ.com",
            "ａｎｎ＠example.com",
            "ANN@Example.COM",
            " ann@example.com ",
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("ann{i}");
            let r = t.send(register(look_alike, &name)).await;
            assert_eq!(
                r.status, 202,
                "{backend:?}: the uniform answer: {:?}",
                r.json
            );
            assert!(
                repo.find_by_login(&name).await.unwrap().is_none(),
                "{backend:?}: {look_alike:?} made a second account"
            );
        }
        // Internationalised domains are stored in their IDNA ASCII form, so each spelling
        // of one domain is one address.
        let r = t.send(register("bob@bücher.example", "bob")).await;
        assert_eq!(r.status, 202, "{backend:?}: {:?}", r.json);
        let bob = repo.find_by_login("bob").await.unwrap().expect("bob");
        assert_eq!(bob.email, "bob@xn--bcher-kva.example", "{backend:?}");
        for (i, look_alike) in [
            "bob@XN--BCHER-KVA.example",
            "bob@BÜCHER.example",
            "ｂｏｂ@ｂüｃｈｅｒ.example",
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("bob{i}");
            let r = t.send(register(look_alike, &name)).await;
            assert_eq!(r.status, 202, "{backend:?}: {:?}", r.json);
            assert!(
                repo.find_by_login(&name).await.unwrap().is_none(),
                "{backend:?}: {look_alike:?} made a second account"
            );
        }
        // Every lookup by address normalises the same way; mail goes to the stored address.
        let r = t
            .send(
                Req::post("/password/reset-request")
                    .json(json!({"email": "ａｎｎ@ｅｘａｍｐｌｅ.com"})),
            )
            .await;
        assert_eq!(r.status, 200);
        let sent = mails(&t.auth, &path).await;
        let reset = sent
            .iter()
            .find(|m| m["kind"] == "reset_password")
            .expect("the look-alike found the account");
        assert_eq!(reset["to"], "ann@example.com", "{backend:?}");
        let notices = sent
            .iter()
            .filter(|m| m["kind"] == "existing_account")
            .count();
        assert!(notices >= 1, "{backend:?}: the owner heard of the attempts");
        t.tdb.cleanup().await;
    }
}

#[tokio::test]
async fn usernames_with_bidi_overrides_or_invisible_characters_are_refused() {
    let t = app_with("username_cf", |b| b).await;
    for (i, c) in [
        '\u{202E}',  // right-to-left override
        '\u{202D}',  // left-to-right override
        '\u{2066}',  // left-to-right isolate
        '\u{2067}',  // right-to-left isolate
        '\u{2068}',  // first strong isolate
        '\u{2069}',  // pop directional isolate
        '\u{200B}',  // zero-width space
        '\u{200D}',  // zero-width joiner
        '\u{200E}',  // left-to-right mark
        '\u{FEFF}',  // byte order mark
        '\u{00AD}',  // soft hyphen
        '\u{061C}',  // Arabic letter mark
        '\u{E0041}', // tag latin capital A
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("user{i}@example.com");
        let r = t
            .send(Req::post("/register").json(json!({
                "email": email, "username": format!("ad{c}min"), "password": PW
            })))
            .await;
        assert_eq!(r.status, 422, "U+{:04X}: {:?}", c as u32, r.json);
        let entry = r.json["detail"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["loc"] == json!(["body", "username"]))
            .unwrap_or_else(|| panic!("U+{:04X}: no username entry: {:?}", c as u32, r.json));
        assert_eq!(
            entry["msg"],
            "Username must not contain invisible formatting characters"
        );
        assert!(
            t.auth
                .repo()
                .find_by_recovery(&email)
                .await
                .unwrap()
                .is_none(),
            "U+{:04X}",
            c as u32
        );
    }
    // Letters of any script are fine.
    for (name, email) in [("jörg", "jorg@example.com"), ("名前", "namae@example.com")] {
        t.register(email, name, PW).await;
        assert!(t.auth.repo().find_by_login(name).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn register_refuses_every_over_long_field_before_any_policy_check_or_hash() {
    let checks = Arc::new(AtomicUsize::new(0));
    let policy = counting(PasswordSource::Register, &checks);
    let t = app_with("register_lengths", |b| b.password_policy(policy)).await;
    let body = |email: String, username: String, password: String, bio: String| {
        Req::post("/register").json(json!({
            "email": email, "username": username, "password": password, "bio": bio
        }))
    };
    let ok = |s: &str| s.to_owned();
    for (field, req) in [
        (
            "username",
            body(ok("u@example.com"), "u".repeat(256), ok(PW), ok("hi")),
        ),
        (
            "email",
            body(
                format!("{}@example.com", "e".repeat(250)),
                ok("u"),
                ok(PW),
                ok("hi"),
            ),
        ),
        (
            "bio",
            body(ok("u@example.com"), ok("u"), ok(PW), "b".repeat(5000)),
        ),
        (
            "password",
            body(ok("u@example.com"), ok("u"), "p".repeat(5000), ok("hi")),
        ),
    ] {
        let r = t.send(req).await;
        assert_eq!(r.status, 422, "{field}: {:?}", r.json);
        assert!(
            r.json["detail"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["loc"] == json!(["body", field]) && e["type"] == "string_too_long"),
            "{field}: {:?}",
            r.json
        );
        assert_eq!(
            checks.load(Ordering::SeqCst),
            0,
            "{field}: no work was done"
        );
    }
    assert!(t.auth.repo().find_by_login("u").await.unwrap().is_none());
    // Within every length, the policy runs (the counter counts).
    let r = t
        .send(body(ok("u@example.com"), ok("u"), ok("short"), ok("hi")))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(checks.load(Ordering::SeqCst), 1);
    t.register("u@example.com", "u", PW).await;
}

/// MariaDB's default collations compare accents and case away (`ännie` = `annie`): the
/// SQL condition only prefilters, and every lookup by address compares exactly afterwards,
/// so an accented look-alike finds no one and is never reported as someone's duplicate.
#[tokio::test]
async fn an_accent_insensitive_collation_never_matches_a_look_alike_address() {
    use crudauth::user::{UserRepository, UserUpdate};
    use crudauth_tests::models::users;
    for backend in Backend::ALL {
        let Some(tdb) = crudauth_tests::open(backend, "collation").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        let repo = SeaUserRepository::<users::Model>::new(tdb.db.clone());
        let annie = repo
            .create(
                crudauth::NewUser::new("$argon2id$x")
                    .email("annie@example.com")
                    .username("annie"),
            )
            .await
            .unwrap();
        let other = repo
            .create(
                crudauth::NewUser::new("$argon2id$x")
                    .email("zoe@example.com")
                    .username("zoe"),
            )
            .await
            .unwrap();
        for look_alike in [
            "ännie@example.com",
            "ANNÍE@example.com",
            "annie@exämple.com",
        ] {
            assert!(
                repo.find_by_login(look_alike).await.unwrap().is_none(),
                "{backend:?}: login lookup by {look_alike}"
            );
            assert!(
                repo.find_by_recovery(look_alike).await.unwrap().is_none(),
                "{backend:?}: recovery lookup by {look_alike}"
            );
        }
        // The exact address still finds its account, in any letter case.
        assert_eq!(
            repo.find_by_recovery("ANNIE@example.com")
                .await
                .unwrap()
                .map(|u| u.id),
            Some(annie.id)
        );
        // Moving another account to a look-alike is never blamed on annie's address: it is
        // written, or refused by the database's own unique index as a generic duplicate.
        let update = UserUpdate {
            email: Some("ännie@example.com".into()),
            ..Default::default()
        };
        match repo.update(&crudauth::UserId::Uuid(other.id), update).await {
            Ok(moved) => assert_eq!(moved.email, "ännie@example.com"),
            Err(crudauth::RepoError::Duplicate { field }) => {
                assert_ne!(field, "email", "{backend:?}: annie's address was not named")
            }
            Err(e) => panic!("{backend:?}: {e}"),
        }
        tdb.cleanup().await;
    }
}
