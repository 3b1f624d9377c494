//! Password login over cookie sessions: lockout, enumeration, fixation, CSRF, replay.

use crudauth::LockoutConfig;
use crudauth_tests::http::{Req, Session, app, app_with};
use serde_json::json;

#[tokio::test]
async fn login_sets_hardened_cookies_and_the_original_body() {
    let t = app("login_cookies").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let r = t
        .send(Req::post("/login").form(&[
            ("username", "alice@example.com"),
            ("password", "correct horse 1"),
        ]))
        .await;
    assert_eq!(r.status, 200);
    let cookies = r.cookies();
    let (sid, session_header) = &cookies["session_id"];
    let (csrf, csrf_header) = &cookies["csrf_token"];
    assert_eq!(sid.len(), 43, "256 bits, base64url");
    for part in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(
            session_header.contains(part),
            "{session_header} lacks {part}"
        );
    }
    assert!(
        !csrf_header.contains("HttpOnly"),
        "the CSRF cookie is readable by scripts"
    );
    assert!(csrf_header.contains("Secure") && csrf_header.contains("SameSite=Lax"));
    assert_eq!(r.json["csrf_token"], csrf.as_str());
    assert_eq!(r.json["username"], "alice");
    assert!(r.json["id"].is_string());
}

#[tokio::test]
async fn login_does_not_reveal_whether_an_account_exists() {
    let t = app("login_enumeration").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let before = t.auth.passwords().verifications();
    let wrong = t
        .send(
            Req::post("/login")
                .form(&[("username", "alice@example.com"), ("password", "nope nope")]),
        )
        .await;
    let after_wrong = t.auth.passwords().verifications();
    let unknown = t
        .send(Req::post("/login").form(&[
            ("username", "nobody@example.com"),
            ("password", "nope nope"),
        ]))
        .await;
    let after_unknown = t.auth.passwords().verifications();
    assert_eq!(
        (wrong.status, wrong.body.clone()),
        (unknown.status, unknown.body.clone())
    );
    assert_eq!(wrong.detail(), "Incorrect username or password");
    // The same work: one argon2 verification each (the unknown one against the dummy hash).
    assert_eq!((after_wrong - before, after_unknown - after_wrong), (1, 1));
}

#[tokio::test]
async fn a_disabled_account_is_refused_like_a_wrong_password_after_the_check() {
    use crudauth::{UserRecord, UserUpdate};
    let t = app("login_disabled").await;
    t.register("dora@example.com", "dora", "correct horse 1")
        .await;
    let user = t.auth.repo().find_by_login("dora").await.unwrap().unwrap();
    let s = t.login("dora", "correct horse 1").await;
    let off = UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    t.auth.repo().update(&user.user_id(), off).await.unwrap();
    let before = t.auth.passwords().verifications();
    let r = t
        .send(Req::post("/login").form(&[("username", "dora"), ("password", "correct horse 1")]))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (401, "Incorrect username or password")
    );
    assert_eq!(t.auth.passwords().verifications() - before, 1);
    assert_eq!(
        t.send(Req::get("/me").session(&s)).await.status,
        401,
        "live sessions end too"
    );
}

/// One budget per account, whatever the path: login by email or username, `/token`,
/// `/change-password`, the email change and `/sudo`, mixed. The sixth attempt is refused
/// on every one of them, even with the right password.
#[tokio::test]
async fn five_failures_answer_401_and_the_sixth_429_on_login_and_token_alike() {
    let outbox = crudauth_tests::http::outbox_path("lockout_shared");
    let t = app_with("lockout_shared", |b| {
        crudauth_tests::http::with_outbox(b, &outbox)
    })
    .await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let s = t.login("alice", "correct horse 1").await;
    let (access, _) = t.token("alice@example.com", "correct horse 1", "").await;
    let form = |path: &str, user: &str, password: &str| {
        Req::post(path).form(&[("username", user), ("password", password)])
    };
    let statuses = [
        t.send(form("/login", "alice@example.com", "wrong")).await,
        t.send(form("/token", "alice", "wrong")).await,
        t.send(Req::post("/change-password").session(&s).json(json!({
            "current_password": "wrong", "new_password": "another horse 2"
        })))
        .await,
        t.send(
            Req::post("/email/change-request")
                .bearer(&access)
                .json(json!({
                    "new_email": "alice2@example.com", "password": "wrong"
                })),
        )
        .await,
        t.send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({ "password": "wrong" })),
        )
        .await,
    ]
    .map(|r| r.status.as_u16());
    assert_eq!(
        statuses,
        [401, 401, 401, 400, 401],
        "each path's own refusal"
    );
    let r = t.send(form("/login", "alice", "correct horse 1")).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (429, "Too many login attempts. Try again later.")
    );
    assert_eq!(r.headers["retry-after"], "60");
    for req in [
        form("/token", "alice@example.com", "correct horse 1"),
        form("/login", "ALICE@example.com", "correct horse 1"),
        Req::post("/change-password").session(&s).json(json!({
            "current_password": "correct horse 1", "new_password": "another horse 2"
        })),
        Req::post("/sudo")
            .session(&s)
            .json(json!({ "password": "correct horse 1" })),
    ] {
        let r = t.send(req).await;
        assert_eq!(r.status, 429, "the lock is the account's, on every path");
    }
}

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_escape_the_lockout() {
    let t = app("lockout_xff").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    for i in 0..6 {
        let r = t
            .send(
                Req::post("/login")
                    .header("x-forwarded-for", format!("203.0.113.{i}"))
                    .form(&[("username", "alice"), ("password", "wrong")]),
            )
            .await;
        assert_eq!(r.status, if i < 5 { 401 } else { 429 }, "attempt {}", i + 1);
    }
}

#[tokio::test]
async fn with_a_trusted_proxy_each_forwarded_client_is_counted_apart() {
    let t = app_with("lockout_proxy", |b| b.trusted_proxy_hops(1)).await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    for _ in 0..5 {
        let r = t
            .send(
                Req::post("/login")
                    .header("x-forwarded-for", "198.51.100.7")
                    .form(&[("username", "alice"), ("password", "wrong")]),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let locked = t
        .send(
            Req::post("/login")
                .header("x-forwarded-for", "198.51.100.7")
                .form(&[("username", "alice"), ("password", "wrong")]),
        )
        .await;
    assert_eq!(locked.status, 429);
    // The owner, from elsewhere, is not locked out by a stranger's failures.
    let r = t
        .send(
            Req::post("/login")
                .header("x-forwarded-for", "192.0.2.1")
                .form(&[("username", "alice"), ("password", "correct horse 1")]),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn lockout_escalates_and_a_success_clears_the_pair() {
    let config = LockoutConfig {
        max_attempts: 2,
        base: std::time::Duration::from_secs(2),
        max: std::time::Duration::from_secs(8),
        window: std::time::Duration::from_secs(1),
        ..LockoutConfig::default()
    };
    let t = app_with("lockout_escalation", move |b| b.lockout(config)).await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let bad = || Req::post("/login").form(&[("username", "alice"), ("password", "wrong")]);
    let good =
        || Req::post("/login").form(&[("username", "alice"), ("password", "correct horse 1")]);
    // A failure, then a success (the 2nd attempt, within the cap): the pair is forgiven, so
    // two more failures stay under the cap. (Attempts are counted before the password is
    // checked, so the attempt after the cap is refused even with the right password.)
    assert_eq!(t.send(bad()).await.status, 401);
    assert_eq!(t.send(good()).await.status, 200);
    assert_eq!(t.send(bad()).await.status, 401);
    assert_eq!(t.send(bad()).await.status, 401);
    let mut retries = Vec::new();
    for _ in 0..2 {
        let r = t.send(bad()).await;
        assert_eq!(r.status, 429);
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        retries.push(retry);
        tokio::time::sleep(std::time::Duration::from_millis(retry * 1000 + 100)).await;
        // Lock and window are over: count again to the cap.
        assert_eq!(t.send(bad()).await.status, 401);
        assert_eq!(t.send(bad()).await.status, 401);
    }
    assert_eq!(retries, [2, 4], "the lock doubles each round");
}

#[tokio::test]
async fn a_pre_set_session_cookie_is_never_adopted() {
    let t = app("fixation").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let planted = "attacker-chosen-session-id";
    let r = t
        .send(
            Req::post("/login")
                .header("cookie", format!("session_id={planted}"))
                .form(&[("username", "alice"), ("password", "correct horse 1")]),
        )
        .await;
    let issued = r.cookies()["session_id"].0.clone();
    assert_ne!(issued, planted);
    let planted_session = Session {
        id: planted.into(),
        csrf: String::new(),
    };
    assert_eq!(
        t.send(Req::get("/me").session(&planted_session))
            .await
            .status,
        401
    );

    // Logging in again from a live session ends it and issues a new id.
    let first = t.login("alice", "correct horse 1").await;
    let r = t
        .send(
            Req::post("/login")
                .header("cookie", format!("session_id={}", first.id))
                .form(&[("username", "alice"), ("password", "correct horse 1")]),
        )
        .await;
    assert_ne!(r.cookies()["session_id"].0, first.id);
    assert_eq!(t.send(Req::get("/me").session(&first)).await.status, 401);
}

#[tokio::test]
async fn csrf_is_required_compared_and_bound_to_its_session() {
    let t = app("csrf").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    t.register("bob@example.com", "bob", "correct horse 1")
        .await;
    let alice = t.login("alice", "correct horse 1").await;
    let bob = t.login("bob", "correct horse 1").await;

    let missing = t
        .send(Req::post("/logout").session_cookie_only(&alice))
        .await;
    assert_eq!(
        (missing.status.as_u16(), missing.detail()),
        (403, "Missing CSRF token")
    );
    assert_eq!(missing.headers["x-csrf-error"], "true");
    let forged = t
        .send(
            Req::post("/logout")
                .session_cookie_only(&alice)
                .header("x-csrf-token", "forged-token"),
        )
        .await;
    assert_eq!(
        (forged.status.as_u16(), forged.detail()),
        (403, "Invalid CSRF token")
    );
    let other = t
        .send(
            Req::post("/logout")
                .session_cookie_only(&alice)
                .header("x-csrf-token", bob.csrf.clone()),
        )
        .await;
    assert_eq!(
        other.detail(),
        "Invalid CSRF token",
        "another session's token is no good"
    );
    // The cookie alone never counts, even when it holds the right token.
    let r = t
        .send(
            Req::post("/change-password")
                .session_cookie_only(&alice)
                .json(json!({})),
        )
        .await;
    assert_eq!(r.status, 403);
    // Safe methods need none.
    assert_eq!(
        t.send(Req::get("/me").session_cookie_only(&alice))
            .await
            .status,
        200
    );
    // Bearer requests need none.
    let (access, _) = t.token("alice", "correct horse 1", "").await;
    let r = t
        .send(
            Req::post("/change-password")
                .bearer(&access)
                .json(json!({"current_password": "x", "new_password": "y"})),
        )
        .await;
    assert_ne!(r.status, 403);
}

#[tokio::test]
async fn a_session_is_dead_after_logout_and_cannot_be_replayed() {
    let t = app("replay_logout").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let s = t.login("alice", "correct horse 1").await;
    let r = t.send(Req::post("/logout").session(&s)).await;
    assert_eq!((r.status.as_u16(), r.detail()), (200, "Logged out"));
    let cleared = r.cookies();
    assert!(cleared["session_id"].1.contains("Max-Age=0"));
    assert!(cleared["csrf_token"].1.contains("Max-Age=0"));
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 401);
    // Logging out a dead session just clears the cookies.
    assert_eq!(
        t.send(Req::post("/logout").session_cookie_only(&s))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn session_management_lists_revokes_and_refreshes_csrf() {
    let t = app("session_management").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    t.register("bob@example.com", "bob", "correct horse 1")
        .await;
    let laptop = t
        .send(
            Req::post("/login")
                .header("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
                .form(&[("username", "alice"), ("password", "correct horse 1")]),
        )
        .await;
    let laptop = Session {
        id: laptop.cookies()["session_id"].0.clone(),
        csrf: laptop.cookies()["csrf_token"].0.clone(),
    };
    let phone = t.login("alice", "correct horse 1").await;
    let bob = t.login("bob", "correct horse 1").await;

    let r = t.send(Req::get("/sessions").session(&laptop)).await;
    let list = r.json.as_array().expect("a list").clone();
    assert_eq!(list.len(), 2);
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device"]["browser"], "Chrome");
    assert_eq!(current[0]["device"]["is_pc"], true);
    assert_eq!(current[0]["ip"], "127.0.0.1");
    assert!(current[0]["created_at"].as_str().unwrap().ends_with('Z'));
    let phone_handle = list.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another user's handle is "not found", exactly like an unknown one.
    let bobs = t.send(Req::get("/sessions").session(&bob)).await.json[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .send(Req::new(axum::http::Method::DELETE, &format!("/sessions/{bobs}")).session(&laptop))
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (404, "Session not found."));
    let r = t
        .send(Req::new(axum::http::Method::DELETE, "/sessions/nope").session(&laptop))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(t.send(Req::get("/me").session(&bob)).await.status, 200);

    let r = t
        .send(
            Req::new(
                axum::http::Method::DELETE,
                &format!("/sessions/{phone_handle}"),
            )
            .session(&laptop),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (200, "Session revoked."));
    assert_eq!(t.send(Req::get("/me").session(&phone)).await.status, 401);

    // CSRF refresh: same token while the cookie is right, a new one when it is lost.
    let r = t
        .send(Req::post("/csrf/refresh").header(
            "cookie",
            format!("session_id={}; csrf_token={}", laptop.id, laptop.csrf),
        ))
        .await;
    assert_eq!(r.json["csrf_token"], laptop.csrf.as_str());
    let r = t
        .send(Req::post("/csrf/refresh").header("cookie", format!("session_id={}", laptop.id)))
        .await;
    let fresh = r.json["csrf_token"].as_str().unwrap().to_owned();
    assert_ne!(fresh, laptop.csrf);
    let old = t.send(Req::post("/logout").session(&laptop)).await;
    assert_eq!(old.status, 403, "the old token died with the rotation");
    assert_eq!(t.send(Req::post("/csrf/refresh")).await.status, 401);

    let laptop = Session {
        csrf: fresh,
        ..laptop
    };
    let another = t.login("alice", "correct horse 1").await;
    let r = t
        .send(Req::post("/logout-all?keep_current=true").session(&laptop))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["revoked"].as_u64()),
        (200, Some(1))
    );
    assert_eq!(t.send(Req::get("/me").session(&another)).await.status, 401);
    assert_eq!(t.send(Req::get("/me").session(&laptop)).await.status, 200);
    let r = t.send(Req::post("/logout-all").session(&laptop)).await;
    assert_eq!(r.json["revoked"], 1);
    assert_eq!(t.send(Req::get("/me").session(&laptop)).await.status, 401);
    let r = t
        .send(Req::post("/logout-all?keep_current=maybe").session(&bob))
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn hostile_forms_cookies_and_headers_get_clear_4xx_never_a_500() {
    let t = app("hostile_login").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let cases = vec![
        Req::post("/login").raw("application/x-www-form-urlencoded", "%%%&&&==="),
        Req::post("/login").raw("application/x-www-form-urlencoded", vec![0xff, 0xfe, 0x00]),
        Req::post("/login").json(json!({"username": "alice", "password": "correct horse 1"})),
        Req::post("/login").form(&[("username", "alice")]),
        Req::post("/login").form(&[
            ("username", "alice"),
            ("password", "x"),
            ("grant_type", "client_credentials"),
        ]),
        Req::post("/token").raw("application/x-www-form-urlencoded", ""),
    ];
    for req in cases {
        let r = t.send(req).await;
        assert_eq!(r.status, 422, "{:?}", r.json);
    }
    // A 1 MB body: refused before it is read. A password over the cap in a body that
    // fits: refused without hashing, same answer as a wrong password.
    let huge = "p".repeat(1_000_000);
    let before = t.auth.passwords().verifications();
    let r = t
        .send(Req::post("/login").form(&[("username", "alice"), ("password", huge.as_str())]))
        .await;
    assert_eq!(r.status, 413);
    let long = "p".repeat(5_000);
    let r = t
        .send(Req::post("/login").form(&[("username", "alice"), ("password", long.as_str())]))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(t.auth.passwords().verifications(), before);
    // A huge identifier (inside the body limit).
    let long_user = "u".repeat(60_000);
    let r = t
        .send(Req::post("/login").form(&[("username", long_user.as_str()), ("password", "x")]))
        .await;
    assert_eq!(r.status, 401);
    // Garbage cookies and headers on an authenticated route.
    for cookie in [
        "session_id=".to_owned(),
        format!("session_id={}", "x".repeat(8000)),
        ";;;===;;".to_owned(),
    ] {
        let r = t
            .send(Req::get("/me").header("cookie", cookie.as_bytes()))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = t
        .send(Req::get("/me").header("cookie", [0xffu8, 0xfe, b'=']))
        .await;
    assert_eq!(r.status, 401);
    let r = t
        .send(
            Req::post("/login")
                .header("sec-fetch-site", "cross-site")
                .form(&[("username", "alice"), ("password", "correct horse 1")]),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Cross-site login requests are not allowed.")
    );
}

#[tokio::test]
async fn a_password_that_changes_under_nfkc_costs_the_same_for_unknown_accounts() {
    let t = app("login_enumeration_nfkc").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let odd = "ｆｕｌｌｗｉｄｔｈ ｐａｓｓ"; // its NFKC form differs, so real accounts check both
    let before = t.auth.passwords().verifications();
    t.send(Req::post("/login").form(&[("username", "alice"), ("password", odd)]))
        .await;
    let known = t.auth.passwords().verifications() - before;
    let before = t.auth.passwords().verifications();
    t.send(Req::post("/login").form(&[("username", "ghost"), ("password", odd)]))
        .await;
    let unknown = t.auth.passwords().verifications() - before;
    assert_eq!((known, unknown), (2, 2));
}

#[tokio::test]
async fn successful_logins_from_one_busy_address_never_add_up_to_a_lock() {
    let t = app("lockout_busy_nat").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    for _ in 0..40 {
        let r = t
            .send(
                Req::post("/token").form(&[("username", "alice"), ("password", "correct horse 1")]),
            )
            .await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn a_revoked_session_is_never_resurrected_by_a_concurrent_update() {
    let t = app("session_resurrection").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let s = t.login("alice", "correct horse 1").await;
    let sessions = t.auth.sessions().unwrap();
    let live = sessions.resolve(&s.id).await.unwrap().unwrap();
    sessions
        .delete(&live.handle, &live.record.user_id)
        .await
        .unwrap();
    assert!(sessions.rotate_csrf(&live).await.is_err());
    assert!(sessions.resolve(&s.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_server_without_client_addresses_refuses_logins_instead_of_sharing_one_budget() {
    use axum::body::Body;
    use tower::ServiceExt;
    let t = app("no_connect_info").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let request = axum::http::Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("username=alice&password=correct+horse+1"))
        .unwrap();
    let response = t.app.clone().oneshot(request).await.unwrap();
    assert_eq!(
        response.status(),
        500,
        "misconfiguration is loud, not a shared lockout key"
    );
}
