//! Hardening of the bearer tokens and of logout, each test named after its attack.
//!
//! Every test that touches server-side state (refresh families, sessions, epochs) runs on
//! every store: memory, the database store on SQLite, PostgreSQL and MariaDB, and Redis (the
//! last three when their `CRUDAUTH_TEST_*` variable is set; a configured server that cannot
//! be reached fails the test).

use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crudauth::{BearerConfig, CrudAuthBuilder, JwtKey, RefreshMode};
use crudauth_tests::http::{Req, Resp, Session, TestApp, User, app, app_with};
use crudauth_tests::stores::{MatrixStore, all_stores};
use crudauth_tests::{Backend, open};
use serde_json::{Value, json};

const PW: &str = "correct horse 1";

/// The test app on one store of the matrix, configured further by `configure`.
async fn app_on(
    case: &MatrixStore,
    test: &str,
    configure: impl FnOnce(CrudAuthBuilder<User>) -> CrudAuthBuilder<User>,
) -> TestApp {
    let store = case.store.clone();
    app_with(test, move |b| configure(b.store(store))).await
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

fn refresh_body(token: &str) -> Req {
    Req::post("/refresh").json(json!({ "refresh_token": token }))
}

fn cookie_mode(b: CrudAuthBuilder<User>) -> CrudAuthBuilder<User> {
    b.bearer(BearerConfig {
        refresh: RefreshMode::Cookie,
        ..BearerConfig::default()
    })
}

/// `/token` in refresh-cookie mode: (access token, refresh cookie value).
async fn cookie_token(t: &TestApp, user: &str) -> (String, String) {
    let r = t
        .send(Req::post("/token").form(&[("username", user), ("password", PW)]))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access = r.json["access_token"].as_str().unwrap().to_owned();
    (access, r.cookies()["__Host-refresh_token"].0.clone())
}

/// The session and CSRF cookie names as the app sets them (the session cookie may carry a
/// `__Host-` prefix).
fn session_cookies(t: &TestApp) -> (String, String) {
    let config = t.auth.sessions().expect("sessions").config();
    (config.cookie_name.clone(), config.csrf_cookie_name.clone())
}

fn cleared(r: &Resp, name: &str) -> bool {
    r.cookies()
        .get(name)
        .is_some_and(|(value, full)| value.is_empty() && full.contains("Max-Age=0"))
}

fn delete(path: &str) -> Req {
    Req::new(Method::DELETE, path)
}

// ---------------------------------------------------------------------------------------
// 1. Sign out everywhere ends every bearer credential.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stolen_token_pair_dies_with_sign_out_everywhere() {
    for case in all_stores("stolen_pair_logout_all").await {
        let t = app_on(&case, "stolen_pair_logout_all", |b| b).await;
        t.register("alice@example.com", "alice", PW).await;
        t.register("bob@example.com", "bob", PW).await;
        let (stolen_access, stolen_refresh) = t.token("alice", PW, "").await;
        let (_, other_refresh) = t.token("alice", PW, "").await;
        let (bob_access, bob_refresh) = t.token("bob", PW, "").await;
        let s = t.login("alice", PW).await;

        let r = t.send(Req::post("/logout-all").session(&s)).await;
        assert_eq!(r.status, 200, "{}: {:?}", case.name, r.json);
        let (sid, csrf) = session_cookies(&t);
        assert!(cleared(&r, &sid) && cleared(&r, &csrf), "{}", case.name);

        let me = t.send(Req::get("/me").bearer(&stolen_access)).await;
        assert_eq!(
            me.status, 401,
            "{}: the access token died at once",
            case.name
        );
        for refresh in [&stolen_refresh, &other_refresh] {
            let r = t.send(refresh_body(refresh)).await;
            assert_eq!(
                (r.status.as_u16(), r.detail()),
                (401, "Invalid or expired refresh token"),
                "{}: every family of the user ended",
                case.name
            );
        }
        assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 401);
        // Other users are untouched.
        assert_eq!(
            t.send(Req::get("/me").bearer(&bob_access)).await.status,
            200,
            "{}",
            case.name
        );
        assert_eq!(t.send(refresh_body(&bob_refresh)).await.status, 200);
        // A new sign-in works, and lists only its own family.
        let (fresh, _) = t.token("alice", PW, "").await;
        let list = t.send(Req::get("/tokens").bearer(&fresh)).await;
        assert_eq!(list.json.as_array().map(Vec::len), Some(1), "{}", case.name);
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

#[tokio::test]
async fn sign_out_everywhere_keeping_this_session_still_ends_every_token() {
    for case in all_stores("logout_all_keep_current").await {
        let t = app_on(&case, "logout_all_keep_current", |b| b).await;
        t.register("alice@example.com", "alice", PW).await;
        let (access, refresh) = t.token("alice", PW, "").await;
        let elsewhere = t.login("alice", PW).await;
        let here = t.login("alice", PW).await;

        let r = t
            .send(Req::post("/logout-all?keep_current=true").session(&here))
            .await;
        assert_eq!(
            (r.status.as_u16(), r.json["revoked"].as_u64()),
            (200, Some(1)),
            "{}",
            case.name
        );
        // The kept session moves to a new id (a copy of its cookie dies with the others).
        let moved = r.cookies()[&session_cookies(&t).0].0.clone();
        assert!(
            !moved.is_empty() && moved != here.id,
            "{}: the kept session has a new id",
            case.name
        );
        let copy = format!("{}={}", session_cookies(&t).0, here.id);
        assert_eq!(
            t.send(Req::get("/me").header("cookie", &copy)).await.status,
            401,
            "{}: the old id of the kept session is dead",
            case.name
        );
        let me = t.send(Req::get("/me").session(&here)).await;
        assert_eq!(me.status, 200, "{}: rebound to the new epoch", case.name);
        // The kept session still passes CSRF and can act.
        assert_eq!(
            t.send(Req::post("/csrf/refresh").session(&here))
                .await
                .status,
            200
        );
        assert_eq!(
            t.send(Req::get("/me").session(&elsewhere)).await.status,
            401
        );
        assert_eq!(t.send(Req::get("/me").bearer(&access)).await.status, 401);
        assert_eq!(t.send(refresh_body(&refresh)).await.status, 401);
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

#[tokio::test]
async fn sign_out_everywhere_ends_tokens_on_a_table_without_token_version() {
    use crudauth::{CrudAuth, SessionConfig};
    use crudauth_sea::SeaUserRepository;
    use crudauth_tests::http::{SECRET, fast_passwords, send};
    use crudauth_tests::models::accounts;
    for case in all_stores("logout_all_store_epoch").await {
        let tdb = open(Backend::Sqlite, "logout_all_store_epoch")
            .await
            .unwrap();
        tdb.create_table(accounts::Entity).await;
        let auth: CrudAuth<accounts::Model> =
            CrudAuth::builder(SeaUserRepository::<accounts::Model>::new(tdb.db.clone()))
                .secret_key(SECRET.to_vec())
                .password(fast_passwords())
                .session(SessionConfig::default())
                .bearer(BearerConfig::default())
                .store(case.store.clone())
                .build()
                .unwrap();
        let app = auth.router();
        let r = send(
            &app,
            Req::post("/register").json(json!({"email": "old@example.com", "password": PW})),
        )
        .await;
        assert_eq!(r.status, 202);
        let creds = [("username", "old@example.com"), ("password", PW)];
        let pair = send(&app, Req::post("/token").form(&creds)).await;
        let access = pair.json["access_token"].as_str().unwrap().to_owned();
        let refresh = pair.json["refresh_token"].as_str().unwrap().to_owned();
        let login = send(&app, Req::post("/login").form(&creds)).await;
        // Sent by the names the app set (the session cookie may carry a `__Host-` prefix).
        let config = auth.sessions().unwrap().config();
        let browser = format!(
            "{}={}; {}={}",
            config.cookie_name,
            login.cookies()[&config.cookie_name].0,
            config.csrf_cookie_name,
            login.cookies()[&config.csrf_cookie_name].0
        );
        let csrf = login.cookies()[&config.csrf_cookie_name].0.clone();
        assert_eq!(
            send(&app, Req::get("/me").bearer(&access)).await.status,
            200
        );
        let r = send(
            &app,
            Req::post("/logout-all?keep_current=true")
                .header("cookie", &browser)
                .header("x-csrf-token", &csrf),
        )
        .await;
        assert_eq!(r.status, 200, "{}", case.name);
        assert_eq!(
            send(&app, Req::get("/me").bearer(&access)).await.status,
            401,
            "{}: the store-kept epoch moved",
            case.name
        );
        assert_eq!(send(&app, refresh_body(&refresh)).await.status, 401);
        assert_eq!(
            send(&app, Req::get("/me").header("cookie", &browser))
                .await
                .status,
            401,
            "{}: the kept session's old id is dead",
            case.name
        );
        let moved = format!(
            "{}={}",
            config.cookie_name,
            r.cookies()[&config.cookie_name].0
        );
        assert_eq!(
            send(&app, Req::get("/me").header("cookie", &moved))
                .await
                .status,
            200,
            "{}: the kept session was moved and rebound",
            case.name
        );
        tdb.cleanup().await;
        case.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------
// 2. A refresh family has an absolute lifetime.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stolen_refresh_token_cannot_be_kept_alive_past_the_family_lifetime() {
    for case in all_stores("family_lifetime").await {
        let t = app_on(&case, "family_lifetime", |b| {
            b.bearer(BearerConfig {
                access_ttl: Duration::from_secs(1),
                refresh_family_lifetime: Duration::from_secs(2),
                ..BearerConfig::default()
            })
        })
        .await;
        t.register("alice@example.com", "alice", PW).await;
        let (_, first) = t.token("alice", PW, "").await;
        let start = claims_of(&first)["iat"].as_i64().unwrap();
        assert_eq!(
            claims_of(&first)["exp"].as_i64().unwrap() - start,
            2,
            "{}: min(refresh_ttl, family lifetime)",
            case.name
        );
        // The thief keeps rotating: no rotation re-arms the family.
        let mut current = first;
        for _ in 0..3 {
            let r = t.send(refresh_body(&current)).await;
            assert_eq!(r.status, 200, "{}: {:?}", case.name, r.json);
            current = r.json["refresh_token"].as_str().unwrap().to_owned();
            assert!(
                claims_of(&current)["exp"].as_i64().unwrap() <= start + 2,
                "{}: a rotation never extends past the family",
                case.name
            );
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let r = t.send(refresh_body(&current)).await;
        assert_eq!(
            (r.status.as_u16(), r.detail()),
            (401, "Invalid or expired refresh token"),
            "{}: the family is over",
            case.name
        );
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

#[test]
fn the_family_lifetime_defaults_to_thirty_days() {
    assert_eq!(
        BearerConfig::default().refresh_family_lifetime,
        Duration::from_secs(30 * 24 * 3600)
    );
}

// ---------------------------------------------------------------------------------------
// 3. Logout ends what it is shown and clears every cookie.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refresh_cookie_left_behind_by_logout_is_cleared_and_its_family_ended() {
    for case in all_stores("logout_refresh_cookie").await {
        let t = app_on(&case, "logout_refresh_cookie", cookie_mode).await;
        t.register("alice@example.com", "alice", PW).await;
        let s = t.login("alice", PW).await;
        let (_, refresh) = cookie_token(&t, "alice").await;
        let (sid, csrf) = session_cookies(&t);
        let cookies = format!(
            "{sid}={}; {csrf}={}; __Host-refresh_token={refresh}",
            s.id, s.csrf
        );

        // A forged logout (no CSRF token) ends nothing.
        let forged = t
            .send(Req::post("/logout").header("cookie", &cookies))
            .await;
        assert_eq!(forged.status, 403, "{}", case.name);
        let r = t
            .send(Req::post("/refresh").header("cookie", format!("__Host-refresh_token={refresh}")))
            .await;
        assert_eq!(r.status, 200, "{}: {:?}", case.name, r.json);
        let refresh = r.cookies()["__Host-refresh_token"].0.clone();
        let cookies = format!(
            "{sid}={}; {csrf}={}; __Host-refresh_token={refresh}",
            s.id, s.csrf
        );

        let r = t
            .send(
                Req::post("/logout")
                    .header("cookie", &cookies)
                    .header("x-csrf-token", &s.csrf),
            )
            .await;
        assert_eq!((r.status.as_u16(), r.detail()), (200, "Logged out"));
        for name in [sid.as_str(), csrf.as_str(), "__Host-refresh_token"] {
            assert!(cleared(&r, name), "{}: {name} is cleared", case.name);
        }
        let (_, full) = &r.cookies()["__Host-refresh_token"];
        assert!(full.contains("HttpOnly") && full.contains("Path=/"));
        let r = t
            .send(Req::post("/refresh").header("cookie", format!("__Host-refresh_token={refresh}")))
            .await;
        assert_eq!(r.status, 401, "{}: the family ended", case.name);
        assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 401);
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

#[tokio::test]
async fn a_bearer_client_logging_out_ends_its_refresh_family() {
    for case in all_stores("bearer_logout").await {
        let t = app_on(&case, "bearer_logout", |b| b).await;
        t.register("alice@example.com", "alice", PW).await;
        let (access, refresh) = t.token("alice", PW, "").await;
        let (_, other) = t.token("alice", PW, "").await;
        let r = t
            .send(
                Req::post("/logout")
                    .bearer(&access)
                    .json(json!({ "refresh_token": refresh })),
            )
            .await;
        assert_eq!((r.status.as_u16(), r.detail()), (200, "Logged out"));
        assert!(
            !r.cookies().contains_key("__Host-refresh_token"),
            "{}: body mode sets no refresh cookie, so clears none",
            case.name
        );
        assert_eq!(t.send(refresh_body(&refresh)).await.status, 401);
        assert_eq!(
            t.send(refresh_body(&other)).await.status,
            200,
            "{}: the client's other sign-ins are untouched",
            case.name
        );
        // A logout with a malformed body or an invalid token still answers 200.
        for req in [
            Req::post("/logout").raw("application/json", "{oops"),
            Req::post("/logout").json(json!({ "refresh_token": "nope" })),
        ] {
            assert_eq!(t.send(req).await.status, 200, "{}", case.name);
        }

        // Without a session transport the bearer router has its own /logout.
        let tdb = open(Backend::Sqlite, "bearer_only_logout").await.unwrap();
        tdb.create_table(crudauth_tests::models::users::Entity)
            .await;
        let auth = crudauth::CrudAuth::builder(crudauth_sea::SeaUserRepository::<User>::new(
            tdb.db.clone(),
        ))
        .secret_key(crudauth_tests::http::SECRET.to_vec())
        .password(crudauth_tests::http::fast_passwords())
        .bearer(BearerConfig::default())
        .store(case.store.clone())
        .build()
        .unwrap();
        let only = auth.router();
        let send = |req| crudauth_tests::http::send(&only, req);
        let r = send(
            Req::post("/register")
                .json(json!({"email": "carol@example.com", "username": "carol", "password": PW})),
        )
        .await;
        assert_eq!(r.status, 202);
        let pair = send(Req::post("/token").form(&[("username", "carol"), ("password", PW)])).await;
        let refresh = pair.json["refresh_token"].as_str().unwrap().to_owned();
        let r = send(Req::post("/logout").json(json!({ "refresh_token": refresh }))).await;
        assert_eq!((r.status.as_u16(), r.detail()), (200, "Logged out"));
        assert_eq!(
            send(refresh_body(&refresh)).await.status,
            401,
            "{}",
            case.name
        );
        tdb.cleanup().await;
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------
// 4. The refresh token comes from where the mode says, never from a planted cookie.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refresh_cookie_planted_by_a_sibling_subdomain_is_ignored_in_body_mode() {
    for case in all_stores("planted_refresh_cookie").await {
        let t = app_on(&case, "planted_refresh_cookie", |b| b).await;
        t.register("victim@example.com", "victim", PW).await;
        t.register("mallory@example.com", "mallory", PW).await;
        let (_, victims) = t.token("victim", PW, "").await;
        let (_, planted) = t.token("mallory", PW, "").await;
        let victim_id = claims_of(&victims)["sub"].clone();

        // The victim's client refreshes with its own token; the browser adds the planted one.
        let r = t
            .send(
                refresh_body(&victims).header("cookie", format!("__Host-refresh_token={planted}")),
            )
            .await;
        assert_eq!(r.status, 200, "{}: {:?}", case.name, r.json);
        let access = r.json["access_token"].as_str().unwrap();
        assert_eq!(
            claims_of(access)["sub"],
            victim_id,
            "{}: the body's token was used, not the planted cookie",
            case.name
        );
        // The cookie alone is no refresh token in body mode.
        let r = t
            .send(Req::post("/refresh").header("cookie", format!("__Host-refresh_token={planted}")))
            .await;
        assert_eq!(
            (r.status.as_u16(), r.detail()),
            (401, "Refresh token missing"),
            "{}",
            case.name
        );
        // Mallory's family was never touched by any of this.
        assert_eq!(t.send(refresh_body(&planted)).await.status, 200);
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

#[tokio::test]
async fn a_body_token_cannot_stand_in_for_the_cookie_in_cookie_mode() {
    for case in all_stores("cookie_mode_body_token").await {
        let t = app_on(&case, "cookie_mode_body_token", cookie_mode).await;
        t.register("alice@example.com", "alice", PW).await;
        let (_, refresh) = cookie_token(&t, "alice").await;
        let r = t.send(refresh_body(&refresh)).await;
        assert_eq!(
            (r.status.as_u16(), r.detail()),
            (401, "Refresh token missing"),
            "{}",
            case.name
        );
        let r = t
            .send(Req::post("/refresh").header("cookie", format!("__Host-refresh_token={refresh}")))
            .await;
        assert_eq!(r.status, 200, "{}: the cookie is the credential", case.name);
        let (_, full) = &r.cookies()["__Host-refresh_token"];
        let max_age: u64 = full
            .split(';')
            .find_map(|p| p.trim().strip_prefix("Max-Age="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(max_age <= 30 * 24 * 3600, "{}", case.name);
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------
// 5. Login CSRF on /token and cacheable credentials.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_cross_site_page_cannot_sign_the_browser_in_through_token_in_cookie_mode() {
    let t = app_with("token_login_csrf", cookie_mode).await;
    t.register("mallory@example.com", "mallory", PW).await;
    let form = [("username", "mallory"), ("password", PW)];
    let r = t
        .send(
            Req::post("/token")
                .header("sec-fetch-site", "cross-site")
                .form(&form),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Cross-site login requests are not allowed.")
    );
    assert!(!r.cookies().contains_key("__Host-refresh_token"));
    for site in ["same-origin", "same-site", "none"] {
        let r = t
            .send(
                Req::post("/token")
                    .header("sec-fetch-site", site)
                    .form(&form),
            )
            .await;
        assert_eq!(r.status, 200, "{site}");
    }
    // In body mode nothing is set in the browser, so nothing to refuse.
    let body = app("token_login_csrf_body").await;
    body.register("mallory@example.com", "mallory", PW).await;
    let r = body
        .send(
            Req::post("/token")
                .header("sec-fetch-site", "cross-site")
                .form(&form),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn credentials_and_personal_data_are_never_cached_by_a_shared_cache() {
    let t = app("no_store").await;
    t.register("alice@example.com", "alice", PW).await;
    let no_store = |r: &Resp, what: &str| {
        assert_eq!(r.status, 200, "{what}: {:?}", r.json);
        assert_eq!(
            r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{what}"
        );
    };
    let login = t
        .send(Req::post("/login").form(&[("username", "alice"), ("password", PW)]))
        .await;
    no_store(&login, "/login");
    let (sid, csrf) = session_cookies(&t);
    let s = Session {
        id: login.cookies()[&sid].0.clone(),
        csrf: login.cookies()[&csrf].0.clone(),
    };
    let token = t
        .send(Req::post("/token").form(&[("username", "alice"), ("password", PW)]))
        .await;
    no_store(&token, "/token");
    let refresh = token.json["refresh_token"].as_str().unwrap();
    no_store(&t.send(refresh_body(refresh)).await, "/refresh");
    no_store(
        &t.send(Req::get("/sessions").session(&s)).await,
        "/sessions",
    );
    no_store(&t.send(Req::get("/tokens").session(&s)).await, "/tokens");
    no_store(
        &t.send(Req::post("/csrf/refresh").session(&s)).await,
        "/csrf/refresh",
    );
    let cookie_app = app_with("no_store_cookie", cookie_mode).await;
    cookie_app.register("alice@example.com", "alice", PW).await;
    let r = cookie_app
        .send(Req::post("/token").form(&[("username", "alice"), ("password", PW)]))
        .await;
    no_store(&r, "/token in cookie mode");
    let refresh = r.cookies()["__Host-refresh_token"].0.clone();
    let r = cookie_app
        .send(Req::post("/refresh").header("cookie", format!("__Host-refresh_token={refresh}")))
        .await;
    no_store(&r, "/refresh in cookie mode");
}

// ---------------------------------------------------------------------------------------
// 6. Seeing and revoking one's token families.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_user_revokes_a_lost_devices_tokens_but_never_another_users() {
    for case in all_stores("token_families").await {
        let t = app_on(&case, "token_families", |b| b).await;
        t.register("alice@example.com", "alice", PW).await;
        t.register("bob@example.com", "bob", PW).await;
        let (phone_access, phone) = t.token("alice", PW, "me:read reports:read").await;
        let (_, laptop) = t.token("alice", PW, "").await;
        let (bob_access, bobs) = t.token("bob", PW, "").await;
        let s = t.login("alice", PW).await;
        // The laptop's family rotates once.
        let r = t.send(refresh_body(&laptop)).await;
        let laptop = r.json["refresh_token"].as_str().unwrap().to_owned();

        let by_bearer = t.send(Req::get("/tokens").bearer(&phone_access)).await;
        let by_session = t.send(Req::get("/tokens").session(&s)).await;
        assert_eq!(by_bearer.status, 200, "{}: {:?}", case.name, by_bearer.json);
        assert_eq!(by_bearer.json, by_session.json, "{}", case.name);
        let list = by_bearer.json.as_array().unwrap().clone();
        assert_eq!(list.len(), 2, "{}: only alice's families", case.name);
        let raw = String::from_utf8(by_bearer.body.clone()).unwrap();
        for secret in [&phone, &laptop, &phone_access] {
            assert!(
                !raw.contains(secret.as_str()),
                "{}: no token leaks",
                case.name
            );
        }
        for fam in [&phone, &laptop] {
            let fam = claims_of(fam)["fam"].as_str().unwrap().to_owned();
            assert!(!raw.contains(&fam), "{}: not even the family id", case.name);
        }
        for entry in &list {
            for key in ["id", "created_at", "last_rotated", "expires_at", "scopes"] {
                assert!(entry.get(key).is_some(), "{}: {key}", case.name);
            }
        }
        let id_with = |scopes: Value| {
            let entry = list.iter().find(|e| e["scopes"] == scopes).expect("listed");
            entry["id"].as_str().unwrap().to_owned()
        };
        let laptop_id = id_with(json!(["me:read"]));
        let phone_id = id_with(json!(["me:read", "reports:read"]));
        let bob_id = t.send(Req::get("/tokens").bearer(&bob_access)).await.json[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();

        // Another user's family is "not found", exactly like an unknown one.
        for id in [bob_id.as_str(), "nope"] {
            let r = t
                .send(delete(&format!("/tokens/{id}")).bearer(&phone_access))
                .await;
            assert_eq!(
                (r.status.as_u16(), r.detail()),
                (404, "Token not found."),
                "{}",
                case.name
            );
        }
        assert_eq!(t.send(refresh_body(&bobs)).await.status, 200);
        // A session needs its CSRF token to revoke.
        let r = t
            .send(delete(&format!("/tokens/{phone_id}")).session_cookie_only(&s))
            .await;
        assert_eq!(r.status, 403, "{}", case.name);
        let r = t
            .send(delete(&format!("/tokens/{phone_id}")).session(&s))
            .await;
        assert_eq!(
            (r.status.as_u16(), r.detail()),
            (200, "Token revoked."),
            "{}",
            case.name
        );
        assert_eq!(
            t.send(refresh_body(&phone)).await.status,
            401,
            "{}: the lost phone can no longer refresh",
            case.name
        );
        let again = t
            .send(delete(&format!("/tokens/{phone_id}")).session(&s))
            .await;
        assert_eq!(again.status, 404, "{}", case.name);
        assert_eq!(t.send(refresh_body(&laptop)).await.status, 200);
        let left = t.send(Req::get("/tokens").session(&s)).await;
        assert_eq!(left.json.as_array().map(Vec::len), Some(1));
        assert_eq!(left.json[0]["id"], laptop_id.as_str());
        assert_eq!(t.send(Req::get("/tokens")).await.status, 401);
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------
// 7. The JWT layer: validly signed tokens with bad claims.
// ---------------------------------------------------------------------------------------

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "api";

/// An app signing with the ES256 fixture key, `iss` and `aud` configured, and the private
/// key, so a test can mint tokens with a valid signature and chosen claims. Returns the
/// claims of a real access token of `alice` as the template.
async fn es256_app(test: &str) -> (TestApp, jsonwebtoken::EncodingKey, Value) {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let read = |name: &str| std::fs::read_to_string(format!("{fixtures}/{name}")).unwrap();
    let private = read("es256-private.pem");
    let key = JwtKey::Es256 {
        kid: "ec-1".into(),
        private_pem: private.clone(),
        public_pem: read("es256-public.pem"),
    };
    let t = app_with(test, move |b| {
        b.bearer(BearerConfig {
            key,
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            ..BearerConfig::default()
        })
    })
    .await;
    t.register("alice@example.com", "alice", PW).await;
    let (access, _) = t.token("alice", PW, "").await;
    let template = claims_of(&access);
    let signing = jsonwebtoken::EncodingKey::from_ec_pem(private.as_bytes()).unwrap();
    (t, signing, template)
}

fn sign(claims: &Value, key: &jsonwebtoken::EncodingKey) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ec-1".into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// Mints the template with `change` applied: the control (unchanged, re-signed) must pass,
/// the changed token must answer 401 `Invalid token`.
async fn refused_when(test: &str, change: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let (t, key, template) = es256_app(test).await;
    let control = t.send(Req::get("/me").bearer(&sign(&template, &key))).await;
    assert_eq!(control.status, 200, "the re-signed control passes");
    let mut claims = template;
    change(claims.as_object_mut().unwrap());
    let r = t.send(Req::get("/me").bearer(&sign(&claims, &key))).await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "Invalid token"));
    assert!(r.headers.contains_key("www-authenticate"));
    let optional = t
        .send(Req::get("/maybe").bearer(&sign(&claims, &key)))
        .await;
    assert_eq!(
        optional.status, 401,
        "present but invalid fails optional auth"
    );
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    refused_when("jwt_expired", |c| {
        c.insert("iat".into(), json!(unix_now() - 3600));
        c.insert("exp".into(), json!(unix_now() - 60));
    })
    .await;
}

#[tokio::test]
async fn an_access_token_without_exp_is_refused() {
    refused_when("jwt_no_exp", |c| {
        c.remove("exp");
    })
    .await;
}

#[tokio::test]
async fn an_access_token_without_iat_is_refused() {
    refused_when("jwt_no_iat", |c| {
        c.remove("iat");
    })
    .await;
}

#[tokio::test]
async fn an_access_token_minted_for_another_issuer_is_refused() {
    refused_when("jwt_wrong_iss", |c| {
        c.insert("iss".into(), json!("https://evil.example"));
    })
    .await;
}

#[tokio::test]
async fn an_access_token_minted_for_another_audience_is_refused() {
    refused_when("jwt_wrong_aud", |c| {
        c.insert("aud".into(), json!("another-api"));
    })
    .await;
}
