//! API keys over the real router: made inside the sudo window, shown once, stored as an
//! HMAC, carried as `X-API-Key` or `Authorization: Bearer ca_live_...`, and every attack of
//! the issue: a revoked, expired, wrong-prefix, truncated, tampered or other owner's key, a
//! key sent as a cookie, a key from outside its networks (with a spoofed
//! `X-Forwarded-For`), a key that outlives a password change, a key that manages keys.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use crudauth::api_key::ApiKeyConfig;
use crudauth::{Principal, RateLimit};
use crudauth_tests::http::{Req, Resp, Session, TestApp, User, app_with, send};
use serde_json::{Value, json};

const PW: &str = "a long password 1";

async fn setup(test: &str) -> TestApp {
    app_with(test, |b| b.api_keys(ApiKeyConfig::default())).await
}

/// Registers `name`, signs in and elevates the session (sudo), as making a key needs.
async fn member(app: &TestApp, name: &str) -> Session {
    app.register(&format!("{name}@example.com"), name, PW).await;
    let s = app.login(name, PW).await;
    elevate(app, &s).await;
    s
}

async fn elevate(app: &TestApp, s: &Session) {
    let r = app
        .send(
            Req::post("/sudo")
                .session(s)
                .json(json!({ "password": PW })),
        )
        .await;
    assert_eq!(r.status, 200, "sudo: {:?}", r.json);
}

async fn make(app: &TestApp, s: &Session, body: Value) -> Resp {
    app.send(Req::post("/api-keys").session(s).json(body)).await
}

/// Makes a key named `name`: (key, id).
async fn make_key(app: &TestApp, s: &Session, body: Value) -> (String, String) {
    let r = make(app, s, body).await;
    assert_eq!(r.status, 201, "make: {:?}", r.json);
    (
        r.json["key"].as_str().unwrap().to_owned(),
        r.json["id"].as_str().unwrap().to_owned(),
    )
}

fn with_key(path: &str, key: &str) -> Req {
    Req::get(path).header("x-api-key", key)
}

async fn whoami(app: &TestApp, key: &str) -> Resp {
    app.send(with_key("/whoami", key)).await
}

#[tokio::test]
async fn a_key_is_shown_once_stored_as_a_hash_and_authenticates_as_its_owner() {
    let app = setup("api_key_roundtrip").await;
    let s = member(&app, "alice").await;
    let r = make(
        &app,
        &s,
        json!({ "name": "CI", "scopes": ["reports:read", "admin:all"] }),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(r.headers["cache-control"], "no-store");
    let key = r.json["key"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("ca_live_{id}_")), "{key}");
    assert_eq!(key.len(), "ca_live_".len() + 16 + 1 + 43);
    assert_eq!(r.json["prefix"], format!("ca_live_{id}"));
    // Scopes are clamped to the grantable set (the bearer's, here).
    assert_eq!(r.json["scopes"], json!(["reports:read"]));

    // Only an HMAC of it is kept.
    let stored = app
        .auth
        .api_keys()
        .unwrap()
        .store()
        .find(&id)
        .await
        .unwrap()
        .unwrap();
    let secret = &key[key.len() - 43..];
    assert!(!stored.secret_hash.contains(secret) && stored.secret_hash.len() == 64);
    assert_ne!(stored.secret_hash, key);

    // The listing has no secret.
    let r = app.send(Req::get("/api-keys").session(&s)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    let listed = r.json[0].clone();
    assert!(listed.get("key").is_none(), "{listed}");
    assert!(!r.json.to_string().contains(secret));
    assert!(!r.json.to_string().contains(&stored.secret_hash));

    // In its header and as a bearer value: the same principal.
    let r = whoami(&app, &key).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["via"], "api_key");
    assert_eq!(r.json["scopes"], json!(["reports:read"]));
    let r = app.send(Req::get("/whoami").bearer(&key)).await;
    assert_eq!(
        (r.status.as_u16(), r.json["via"].as_str()),
        (200, Some("api_key"))
    );
    let r = app.send(Req::get("/me").bearer(&key)).await;
    assert_eq!(r.json["username"], "alice");

    // The use is recorded (in the background, at most once a minute).
    app.auth.background().flush().await;
    let r = app.send(Req::get("/api-keys").session(&s)).await;
    assert!(r.json[0]["last_used_at"].is_i64(), "{:?}", r.json);

    // A JWT still goes to the bearer transport.
    let (access, _) = app.token("alice", PW, "me:read").await;
    let r = app.send(Req::get("/whoami").bearer(&access)).await;
    assert_eq!(r.json["via"], "bearer");
}

#[tokio::test]
async fn a_deleted_key_is_refused_at_once_and_another_owner_cannot_touch_it() {
    let app = setup("api_key_revoke").await;
    let alice = member(&app, "alice").await;
    let bob = member(&app, "bob").await;
    let (key, id) = make_key(&app, &alice, json!({ "name": "CI" })).await;
    // Bob neither sees, deletes nor rotates Alice's key.
    let r = app.send(Req::get("/api-keys").session(&bob)).await;
    assert_eq!(r.json, json!([]));
    let r = app
        .send(Req::new(axum::http::Method::DELETE, &format!("/api-keys/{id}")).session(&bob))
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .send(Req::post(&format!("/api-keys/{id}/rotate")).session(&bob))
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .send(Req::get(&format!("/api-keys?owner={}", user_id(&app, "alice").await)).session(&bob))
        .await;
    assert_eq!(r.status, 403, "only a superuser lists another's keys");
    assert_eq!(whoami(&app, &key).await.status, 200);

    let r = app
        .send(Req::new(axum::http::Method::DELETE, &format!("/api-keys/{id}")).session(&alice))
        .await;
    assert_eq!(r.status, 204);
    let r = whoami(&app, &key).await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "Invalid API key"));
    // Even where authentication is optional, a present key that is not valid fails.
    assert_eq!(app.send(with_key("/maybe", &key)).await.status, 401);
}

async fn user_id(app: &TestApp, name: &str) -> String {
    let user = app.auth.repo().find_by_login(name).await.unwrap().unwrap();
    crudauth::UserRecord::user_id(&user).to_string()
}

#[tokio::test]
async fn malformed_wrong_prefix_truncated_and_tampered_keys_are_refused_alike() {
    let app = setup("api_key_malformed").await;
    let s = member(&app, "alice").await;
    let (key, _) = make_key(&app, &s, json!({ "name": "CI" })).await;
    let last = key.chars().last().unwrap();
    let flipped = if last == 'A' { 'B' } else { 'A' };
    let tampered = format!("{}{flipped}", &key[..key.len() - 1]);
    let wrong_prefix = key.replacen("ca_live_", "ca_test_", 1);
    let other_id = format!(
        "ca_live_{}{}",
        "0".repeat(16),
        &key["ca_live_".len() + 16..]
    );
    for bad in [
        tampered.as_str(),
        &key[..key.len() - 1],
        &key[..20],
        &wrong_prefix,
        &other_id,
        "ca_live_",
        "",
        &format!("{key}x"),
        &key.to_uppercase(),
    ] {
        let r = whoami(&app, bad).await;
        assert_eq!(r.status, 401, "{bad:?}: {:?}", r.json);
        assert!(!r.body.windows(8).any(|w| w == &key.as_bytes()[30..38]));
    }
    // A bearer value with the prefix is never tried as a JWT (and fails as a key).
    let r = app.send(Req::get("/whoami").bearer(&tampered)).await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "Invalid API key"));
    // Two key headers: refused, not "the first one".
    let r = app
        .send(with_key("/whoami", &key).header("x-api-key", &key))
        .await;
    assert_eq!(r.status, 401);
    // Bytes that are no text.
    let r = app
        .send(Req::get("/whoami").header("x-api-key", b"ca_live_\xff\xfe".as_slice()))
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_key_sent_as_a_cookie_is_no_credential() {
    let app = setup("api_key_cookie").await;
    let s = member(&app, "alice").await;
    let (key, _) = make_key(&app, &s, json!({ "name": "CI" })).await;
    let r = app
        .send(Req::get("/whoami").header("cookie", format!("x-api-key={key}; api_key={key}")))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.detail(), "Not authenticated");
}

#[tokio::test]
async fn no_csrf_token_is_asked_of_a_key_but_cookies_still_need_one() {
    let app = setup("api_key_csrf").await;
    let s = member(&app, "alice").await;
    let (key, _) = make_key(&app, &s, json!({ "name": "CI" })).await;
    async fn echo(p: Principal<User>) -> String {
        p.via.as_str().to_owned()
    }
    let router: Router = Router::new()
        .route("/echo", post(echo))
        .with_state(app.auth.clone());
    let r = send(&router, Req::post("/echo").header("x-api-key", &key)).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_slice()),
        (200, b"api_key".as_slice())
    );
    let r = send(&router, Req::post("/echo").session_cookie_only(&s)).await;
    assert_eq!(r.status, 403, "a cookie without its CSRF token");
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = setup("api_key_expired").await;
    let s = member(&app, "alice").await;
    let (key, id) = make_key(&app, &s, json!({ "name": "CI", "expires_in": 60 })).await;
    assert_eq!(whoami(&app, &key).await.status, 200);
    // Move its expiry into the past, as time would.
    let store = app.auth.api_keys().unwrap().store().clone();
    let mut stored = store.find(&id).await.unwrap().unwrap();
    stored.expires_at = Some(crudauth_tests::unix_now() as i64 - 1);
    assert!(store.delete(&stored.user_id, &id).await.unwrap());
    assert!(store.insert(&stored).await.unwrap());
    let r = whoami(&app, &key).await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "API key expired"));
}

/// Service accounts are the ids in the returned list (filled once the users exist).
type Bots = Arc<Mutex<Vec<String>>>;

async fn with_service_accounts(test: &str) -> (TestApp, Bots) {
    let bots: Bots = Arc::default();
    let named = bots.clone();
    let app = app_with(test, move |b| {
        b.api_keys(
            ApiKeyConfig::default()
                .service_accounts(move |id| named.lock().unwrap().iter().any(|b| b == id)),
        )
    })
    .await;
    (app, bots)
}

/// Makes `name` a superuser (or not).
async fn set_superuser(app: &TestApp, name: &str, on: bool) {
    let user = app.auth.repo().find_by_login(name).await.unwrap().unwrap();
    let update = crudauth::user::UserUpdate {
        is_superuser: Some(on),
        ..Default::default()
    };
    let id = crudauth::UserRecord::user_id(&user);
    app.auth.repo().update(&id, update).await.unwrap();
}

#[tokio::test]
async fn a_password_change_ends_a_users_keys_but_not_a_service_accounts() {
    let (app, bots) = with_service_accounts("api_key_epoch").await;
    let root = member(&app, "root").await;
    set_superuser(&app, "root", true).await;
    let bob = member(&app, "bob").await;
    let (own, _) = make_key(&app, &bob, json!({ "name": "mine" })).await;
    let bob_id = user_id(&app, "bob").await;
    let _ = member(&app, "carol").await;
    let carol_id = user_id(&app, "carol").await;
    // Nobody is a service account yet: no key for Bob, from anyone.
    let r = make(
        &app,
        &root,
        json!({ "name": "svc", "owner": bob_id, "service": true }),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    let root_id = user_id(&app, "root").await;
    bots.lock().unwrap().extend([bob_id.clone(), root_id]);
    // Carol is no service account, and a superuser is never one.
    let r = make(&app, &root, json!({ "name": "x", "owner": carol_id })).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    let r = make(&app, &root, json!({ "name": "x", "service": true })).await;
    assert_eq!(r.status, 404, "{:?}", r.json);
    let (service, service_id) = make_key(
        &app,
        &root,
        json!({ "name": "svc", "owner": bob_id, "service": true }),
    )
    .await;
    assert_eq!(
        whoami(&app, &service).await.json["id"].as_str(),
        Some(bob_id.as_str())
    );
    let r = app
        .send(Req::get(&format!("/api-keys?owner={bob_id}")).session(&root))
        .await;
    assert_eq!(
        r.json.as_array().unwrap().len(),
        2,
        "a superuser lists them"
    );
    let made = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == service_id.as_str())
        .unwrap();
    assert_eq!(
        made["created_by"],
        user_id(&app, "root").await.as_str(),
        "Bob sees who made it"
    );
    // Another superuser may revoke it but not take it over by a rotation.
    let other = member(&app, "root2").await;
    set_superuser(&app, "root2", true).await;
    let r = app
        .send(Req::post(&format!("/api-keys/{service_id}/rotate")).session(&other))
        .await;
    assert_eq!(r.status, 404, "{:?}", r.json);

    let r = app
        .send(
            Req::post("/change-password")
                .session(&bob)
                .json(json!({ "current_password": PW, "new_password": "another long password 2" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(whoami(&app, &own).await.status, 401, "ended with the epoch");
    assert_eq!(
        whoami(&app, &service).await.status,
        200,
        "a service key lives on"
    );

    // A deactivated owner ends every key, service or not.
    let bob_user = app.auth.repo().find_by_login("bob").await.unwrap().unwrap();
    let id = crudauth::UserRecord::user_id(&bob_user);
    app.auth
        .repo()
        .update(
            &id,
            crudauth::user::UserUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(whoami(&app, &service).await.status, 401);
}

#[tokio::test]
async fn only_a_superuser_makes_keys_for_others_or_service_keys() {
    let app = setup("api_key_owner").await;
    let s = member(&app, "alice").await;
    let _ = member(&app, "bob").await;
    let bob_id = user_id(&app, "bob").await;
    for body in [
        json!({ "name": "x", "owner": bob_id }),
        json!({ "name": "x", "service": true }),
    ] {
        let r = make(&app, &s, body).await;
        assert_eq!(r.status, 403, "{:?}", r.json);
    }
    assert_eq!(
        app.send(Req::get("/api-keys").session(&s)).await.json,
        json!([])
    );
}

#[tokio::test]
async fn making_a_key_needs_the_sudo_window_and_a_person() {
    let app = setup("api_key_sudo").await;
    app.register("alice@example.com", "alice", PW).await;
    let s = app.login("alice", PW).await;
    let r = make(&app, &s, json!({ "name": "CI" })).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Re-authentication required.")
    );
    // A bearer token cannot turn itself into a long-lived key.
    let (access, _) = app.token("alice", PW, "me:read").await;
    let r = app
        .send(
            Req::post("/api-keys")
                .bearer(&access)
                .json(json!({ "name": "CI" })),
        )
        .await;
    assert_eq!(r.status, 403);
    // A key manages no keys (not even listing them).
    elevate(&app, &s).await;
    let (key, id) = make_key(&app, &s, json!({ "name": "CI" })).await;
    for req in [
        Req::post("/api-keys").json(json!({ "name": "more" })),
        Req::get("/api-keys"),
        Req::new(axum::http::Method::DELETE, &format!("/api-keys/{id}")),
        Req::post(&format!("/api-keys/{id}/rotate")),
        Req::post("/change-password")
            .json(json!({ "current_password": PW, "new_password": "x long password 3" })),
    ] {
        let r = app.send(req.header("x-api-key", &key)).await;
        assert_eq!(r.status, 403, "{:?}", r.json);
    }
    assert_eq!(whoami(&app, &key).await.status, 200, "and is still there");
}

#[tokio::test]
async fn networks_limit_where_a_key_works_and_a_spoofed_forwarded_for_does_not_help() {
    let app = setup("api_key_networks").await;
    let s = member(&app, "alice").await;
    let (key, _) = make_key(
        &app,
        &s,
        json!({ "name": "CI", "allowed_ips": ["203.0.113.7/24", "2001:db8::1"] }),
    )
    .await;
    let r = app.send(Req::get("/api-keys").session(&s)).await;
    assert_eq!(
        r.json[0]["allowed_ips"],
        json!(["203.0.113.0/24", "2001:db8::1/128"])
    );
    let inside = app
        .send(with_key("/whoami", &key).peer([203, 0, 113, 9]))
        .await;
    assert_eq!(inside.status, 200);
    let outside = app
        .send(with_key("/whoami", &key).peer([198, 51, 100, 1]))
        .await;
    assert_eq!(outside.status, 403);
    // No proxy is trusted here: X-Forwarded-For is the client's say-so, and ignored.
    let spoofed = app
        .send(
            with_key("/whoami", &key)
                .peer([198, 51, 100, 1])
                .header("x-forwarded-for", "203.0.113.9"),
        )
        .await;
    assert_eq!(spoofed.status, 403);
}

#[tokio::test]
async fn a_rotation_gives_a_new_secret_with_an_optional_overlap_and_one_winner() {
    let app = setup("api_key_rotate").await;
    let s = member(&app, "alice").await;
    let (old, id) = make_key(&app, &s, json!({ "name": "CI" })).await;
    let r = app
        .send(
            Req::post(&format!("/api-keys/{id}/rotate"))
                .session(&s)
                .json(json!({ "overlap": 3600 })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let new = r.json["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with(&format!("ca_live_{id}_")));
    assert_eq!(whoami(&app, &old).await.status, 200, "inside the overlap");
    assert_eq!(whoami(&app, &new).await.status, 200);
    // Without an overlap the old secret ends at once (and so does the previous one).
    let r = app
        .send(Req::post(&format!("/api-keys/{id}/rotate")).session(&s))
        .await;
    let newest = r.json["key"].as_str().unwrap().to_owned();
    assert_eq!(whoami(&app, &new).await.status, 401);
    assert_eq!(whoami(&app, &old).await.status, 401);
    assert_eq!(whoami(&app, &newest).await.status, 200);
    // An overlap beyond the maximum is refused.
    let r = app
        .send(
            Req::post(&format!("/api-keys/{id}/rotate"))
                .session(&s)
                .json(json!({ "overlap": 99_999_999 })),
        )
        .await;
    assert_eq!(r.status, 422);

    // Concurrent rotations: one wins, the others are told the key changed.
    let rotations = (0..6).map(|_| {
        let app = app.app.clone();
        let req = Req::post(&format!("/api-keys/{id}/rotate")).session(&s);
        tokio::spawn(async move { send(&app, req).await })
    });
    let mut statuses = Vec::new();
    for r in rotations {
        statuses.push(r.await.unwrap().status.as_u16());
    }
    let won = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        won >= 1 && statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let live: usize = {
        let stored = app
            .auth
            .api_keys()
            .unwrap()
            .store()
            .find(&id)
            .await
            .unwrap()
            .unwrap();
        usize::from(stored.previous_hash.is_none())
    };
    assert_eq!(live, 1, "no overlap left behind");
}

#[tokio::test]
async fn hostile_bodies_get_422s_and_write_nothing() {
    let app = setup("api_key_hostile").await;
    let s = member(&app, "alice").await;
    for body in [
        json!({}),
        json!({ "name": "" }),
        json!({ "name": "   " }),
        json!({ "name": "x".repeat(65) }),
        json!({ "name": "a\u{0}b" }),
        json!({ "name": "x", "allowed_ips": ["not a network"] }),
        json!({ "name": "x", "allowed_ips": ["10.0.0.0/33"] }),
        json!({ "name": "x", "allowed_ips": vec!["10.0.0.1"; 33] }),
        json!({ "name": "x", "expires_in": 0 }),
        json!({ "name": "x", "expires_in": -5 }),
        json!({ "name": "x", "expires_in": u64::MAX }),
        json!({ "name": "x", "scopes": "reports:read" }),
        json!({ "name": "x", "is_superuser": true }),
        json!({ "name": "x", "scopes": vec!["s"; 65] }),
        json!(["name"]),
    ] {
        let r = make(&app, &s, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.json);
    }
    let r = app
        .send(
            Req::post("/api-keys")
                .session(&s)
                .raw("application/json", "{\"name\": "),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .send(Req::get("/api-keys?owner=1&owner=2").session(&s))
        .await;
    assert!(r.status == 400 || r.status == 200, "{:?}", r.status);
    assert_eq!(
        app.send(Req::get("/api-keys").session(&s)).await.json,
        json!([])
    );
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_keys() {
    let app = app_with("api_key_max", |b| {
        b.api_keys(ApiKeyConfig::default().max_per_user(2))
    })
    .await;
    let s = member(&app, "alice").await;
    make_key(&app, &s, json!({ "name": "a" })).await;
    make_key(&app, &s, json!({ "name": "b" })).await;
    assert_eq!(make(&app, &s, json!({ "name": "c" })).await.status, 400);
}

#[tokio::test]
async fn each_key_has_its_own_rate_limit_and_wrong_secrets_do_not_spend_it() {
    let app = app_with("api_key_limit", |b| {
        b.api_keys(ApiKeyConfig::default())
            .rate_limit("api_key", RateLimit::new(3, Duration::from_secs(60)))
    })
    .await;
    let s = member(&app, "alice").await;
    let (key, _) = make_key(&app, &s, json!({ "name": "CI" })).await;
    let (other, _) = make_key(&app, &s, json!({ "name": "other" })).await;
    let tampered = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('A') { 'B' } else { 'A' }
    );
    for _ in 0..10 {
        assert_eq!(whoami(&app, &tampered).await.status, 401);
    }
    for _ in 0..3 {
        assert_eq!(whoami(&app, &key).await.status, 200);
    }
    let r = whoami(&app, &key).await;
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(
        whoami(&app, &other).await.status,
        200,
        "another key has its own"
    );
}

#[tokio::test]
async fn a_max_lifetime_makes_every_key_expire() {
    let app = app_with("api_key_lifetime", |b| {
        b.api_keys(ApiKeyConfig::default().max_lifetime(Duration::from_secs(86_400)))
    })
    .await;
    let s = member(&app, "alice").await;
    let r = make(&app, &s, json!({ "name": "CI" })).await;
    assert_eq!(r.status, 201);
    let expires = r.json["expires_at"].as_i64().unwrap();
    let created = r.json["created_at"].as_i64().unwrap();
    assert_eq!(expires - created, 86_400);
    assert_eq!(
        make(&app, &s, json!({ "name": "x", "expires_in": 86_401 }))
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn a_bad_configuration_is_refused_at_build() {
    for config in [
        ApiKeyConfig::default().prefix("NoUnderscore"),
        ApiKeyConfig::default().prefix("_x_"),
        ApiKeyConfig::default().prefix("a_very_long_prefix_"),
        ApiKeyConfig::default().header("authorization"),
        ApiKeyConfig::default().header("bad header"),
        ApiKeyConfig::default().max_per_user(0),
    ] {
        let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "api_key_config")
            .await
            .unwrap();
        let repo = crudauth_sea::SeaUserRepository::<User>::new(tdb.db.clone());
        let built = crudauth_tests::http::default_builder(repo)
            .api_keys(config.clone())
            .build();
        assert!(built.is_err(), "{config:?}");
    }
}

#[tokio::test]
async fn a_service_key_ends_when_its_maker_is_no_longer_a_superuser() {
    let (app, bots) = with_service_accounts("api_key_maker").await;
    let root = member(&app, "root").await;
    set_superuser(&app, "root", true).await;
    let _ = member(&app, "bot").await;
    let bot = user_id(&app, "bot").await;
    bots.lock().unwrap().push(bot.clone());
    let (key, _) = make_key(
        &app,
        &root,
        json!({ "name": "svc", "owner": bot, "service": true }),
    )
    .await;
    assert_eq!(whoami(&app, &key).await.status, 200);
    set_superuser(&app, "root", false).await;
    assert_eq!(
        whoami(&app, &key).await.status,
        401,
        "its maker was demoted"
    );
    set_superuser(&app, "root", true).await;
    assert_eq!(whoami(&app, &key).await.status, 200);
}

#[tokio::test]
async fn deleting_a_user_deletes_their_keys() {
    let app = app_with("api_key_user_deleted", |b| {
        b.api_keys(ApiKeyConfig::default())
            .users_admin(crudauth::admin::UsersAdminConfig::default())
    })
    .await;
    let root = member(&app, "root").await;
    set_superuser(&app, "root", true).await;
    let bob = member(&app, "bob").await;
    let (key, _) = make_key(&app, &bob, json!({ "name": "CI" })).await;
    let bob_id = user_id(&app, "bob").await;
    let r = app
        .send(Req::new(axum::http::Method::DELETE, &format!("/users/{bob_id}")).session(&root))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    assert_eq!(whoami(&app, &key).await.status, 401);
    let left = app
        .auth
        .api_keys()
        .unwrap()
        .store()
        .for_user(&bob_id)
        .await
        .unwrap();
    assert!(left.is_empty(), "the rows went with the user: {left:?}");
}

#[tokio::test]
async fn a_key_reads_no_user_directory_and_spends_no_budget_of_its_owner() {
    let app = app_with("api_key_users_admin", |b| {
        b.api_keys(ApiKeyConfig::default())
            .users_admin(crudauth::admin::UsersAdminConfig::default())
    })
    .await;
    let root = member(&app, "root").await;
    set_superuser(&app, "root", true).await;
    let (key, _) = make_key(&app, &root, json!({ "name": "CI" })).await;
    assert_eq!(app.send(with_key("/users", &key)).await.status, 403);
    let root_id = user_id(&app, "root").await;
    assert_eq!(
        app.send(with_key(&format!("/users/{root_id}"), &key))
            .await
            .status,
        403
    );
    // A password change through the key: refused before the owner's budget is spent.
    for _ in 0..8 {
        let body = json!({ "password": "another long password 9", "current_password": "wrong" });
        let r = app
            .send(
                Req::new(axum::http::Method::PATCH, "/users/me")
                    .header("x-api-key", &key)
                    .json(body),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.json);
    }
    let body = json!({ "current_password": PW, "new_password": "another long password 9" });
    let r = app
        .send(Req::post("/change-password").session(&root).json(body))
        .await;
    assert_eq!(
        r.status, 200,
        "the owner's own budget is whole: {:?}",
        r.json
    );
}
