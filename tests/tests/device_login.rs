//! The CLI device login over the real router (`/auth/cli-login`), and its attacks: a
//! guessed code, a wrong secret, a second poll, concurrent polls, two approvers at once, a
//! phished approve link without the user code, wrong user codes, expiry, polling too fast,
//! a rejected challenge, a disabled or changed approver, scopes beyond the approver's.

use std::time::Duration;

use crudauth::clock::Clock;
use crudauth::device_login::DeviceLoginConfig;
use crudauth::store::{MemoryStore, Store, StoreError};
use crudauth::{RateLimit, UserRecord, UserUpdate};
use crudauth_tests::http::{Req, Resp, Session, TestApp, app_with, send};
use serde_json::{Value, json};

const PW: &str = "a long password 1";

async fn setup_with(test: &str, config: DeviceLoginConfig) -> TestApp {
    let t = app_with(test, move |b| b.device_login(config)).await;
    for name in ["ann", "bob"] {
        t.register(&format!("{name}@example.com"), name, PW).await;
    }
    t
}

async fn setup(test: &str) -> TestApp {
    setup_with(test, DeviceLoginConfig::default()).await
}

async fn start(t: &TestApp) -> Value {
    let r = t
        .send(Req::post("/auth/cli-login").header("user-agent", "crudauth-cli/1.0"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json
}

fn poll_req(c: &Value) -> Req {
    Req::get(&format!(
        "/auth/cli-login/{}?secret={}",
        c["code"].as_str().unwrap(),
        c["secret"].as_str().unwrap()
    ))
}

async fn poll(t: &TestApp, c: &Value) -> Resp {
    t.send(poll_req(c)).await
}

fn path(c: &Value) -> String {
    format!("/auth/cli-login/{}", c["code"].as_str().unwrap())
}

fn approve_req(c: &Value, body: Value) -> Req {
    Req::new(axum::http::Method::PATCH, &path(c)).json(body)
}

async fn approve(t: &TestApp, s: &Session, c: &Value) -> Resp {
    let body = json!({ "user_code": c["user_code"] });
    t.send(approve_req(c, body).session(s)).await
}

async fn user_id(t: &TestApp, name: &str) -> String {
    let user = t.auth.repo().find_by_login(name).await.unwrap().unwrap();
    user.user_id().to_string()
}

async fn families(t: &TestApp, name: &str) -> usize {
    let uid = user_id(t, name).await;
    t.auth.tokens().unwrap().families(&uid).await.unwrap().len()
}

#[tokio::test]
async fn the_whole_flow_hands_the_cli_a_working_pair_it_can_refresh() {
    let t = setup("dl_flow").await;
    let c = start(&t).await;
    let code = c["code"].as_str().unwrap();
    assert_eq!(code.len(), 22, "128 random bits");
    assert_eq!(c["approve_url"], format!("/auth/cli-login/{code}"));
    assert_eq!(
        (c["expires_in"].as_u64(), c["interval"].as_u64()),
        (Some(300), Some(5))
    );
    let shown = c["user_code"].as_str().unwrap();
    assert_eq!(shown.len(), 9);
    assert!(!shown.replace('-', "").contains(['0', 'O', '1', 'I', 'L']));

    let r = poll(&t, &c).await;
    assert_eq!(
        (r.status.as_u16(), &r.json),
        (200, &json!({ "status": "pending" }))
    );

    let s = t.login("ann", PW).await;
    let view = t.send(Req::get(&path(&c)).session(&s)).await;
    assert_eq!(view.status, 200, "{:?}", view.json);
    assert_eq!(view.json["status"], "pending");
    assert_eq!(view.json["client_ip"], "127.0.0.1");
    assert_eq!(view.json["user_agent"], "crudauth-cli/1.0");
    let text = String::from_utf8(view.body.clone()).unwrap();
    let secret = c["secret"].as_str().unwrap();
    assert!(!text.contains(secret) && !text.contains("secret"), "{text}");
    assert!(
        !text.contains(shown) && !text.contains(&shown.replace('-', "")),
        "{text}"
    );

    let r = approve(&t, &s, &c).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["scopes"], json!(["me:read"]));

    let r = poll(&t, &c).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["status"], "approved");
    assert_eq!(r.json["token"], r.json["access_token"]);
    let access = r.json["access_token"].as_str().unwrap();
    let me = t.send(Req::get("/me").bearer(access)).await;
    assert_eq!(
        (me.status.as_u16(), &me.json["username"]),
        (200, &json!("ann"))
    );
    assert_eq!(me.json["via"], "bearer");
    let refresh = r.json["refresh_token"].as_str().unwrap();
    let r = t
        .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let again = t
        .send(Req::get("/me").bearer(r.json["access_token"].as_str().unwrap()))
        .await;
    assert_eq!(again.status, 200);

    // Kept for audit, without its secrets.
    let history = t
        .auth
        .device_login()
        .unwrap()
        .history(&user_id(&t, "ann").await)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, "redeemed");
    assert_eq!(history[0].client_ip.as_deref(), Some("127.0.0.1"));
    assert!(history[0].redeemed.is_some() && history[0].decided.is_some());
}

#[tokio::test]
async fn a_guessed_code_answers_as_an_unknown_one_and_a_wrong_secret_alike() {
    let t = setup("dl_guess").await;
    let c = start(&t).await;
    let s = t.login("ann", PW).await;
    let guessed = json!({ "code": "AAAAAAAAAAAAAAAAAAAAAA", "secret": c["secret"], "user_code": c["user_code"] });
    let unknown = poll(&t, &guessed).await;
    let wrong = poll(&t, &json!({ "code": c["code"], "secret": "x".repeat(43) })).await;
    let hostile = t
        .send(Req::get(&format!("{}?secret=%00%FF", path(&c))))
        .await;
    for r in [&unknown, &wrong, &hostile] {
        assert_eq!(
            (r.status.as_u16(), r.detail()),
            (404, "Challenge not found")
        );
    }
    assert_eq!(unknown.body, wrong.body, "no enumeration by answer");
    assert_eq!(
        t.send(Req::get(&path(&guessed)).session(&s)).await.status,
        404
    );
    assert_eq!(approve(&t, &s, &guessed).await.status, 404);
    let del = Req::new(axum::http::Method::DELETE, &path(&guessed)).session(&s);
    assert_eq!(t.send(del).await.status, 404);
    // The wrong secret spent nothing: the right one still polls.
    assert_eq!(poll(&t, &c).await.json["status"], "pending");
}

#[tokio::test]
async fn a_redeemed_challenge_hands_out_no_second_pair() {
    let t = setup("dl_replay").await;
    let c = start(&t).await;
    let s = t.login("ann", PW).await;
    assert_eq!(approve(&t, &s, &c).await.status, 200);
    assert_eq!(poll(&t, &c).await.status, 200);
    let again = poll(&t, &c).await;
    assert_eq!(
        (again.status.as_u16(), again.detail()),
        (404, "Challenge not found")
    );
    assert_eq!(families(&t, "ann").await, 1, "one refresh family minted");
    // Nor can it be approved again.
    assert_eq!(approve(&t, &s, &c).await.status, 409);
}

/// The memory store, with every read of a challenge held back 50 ms when `slow`
/// (concurrent requests then all read the same record before any of them writes, so a race
/// is run every time, not only when the scheduler happens to interleave them), and every
/// device login key failing while `down` is set.
#[derive(Default)]
struct ChallengeStore {
    inner: MemoryStore,
    slow: bool,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ChallengeStore {
    fn check(&self, key: &str) -> Result<(), StoreError> {
        let down = self.down.load(std::sync::atomic::Ordering::SeqCst);
        if down && key.starts_with("cli_login") {
            return Err(StoreError::new("device login keys are down"));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for ChallengeStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check(key)?;
        let found = self.inner.get(key).await;
        if self.slow && key.starts_with("cli_login:") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        found
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.check(key)?;
        self.inner.set(key, value, ttl).await
    }
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.check(key)?;
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn get_and_delete(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check(key)?;
        self.inner.get_and_delete(key).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.check(key)?;
        self.inner.compare_and_set(key, expected, new, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.check(key)?;
        self.inner.delete(key).await
    }
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
        self.check(key)?;
        self.inner.incr(key, delta, ttl).await
    }
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        self.check(key)?;
        self.inner.ttl(key).await
    }
    async fn index_add(&self, index: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        self.check(index)?;
        self.inner.index_add(index, member, ttl).await
    }
    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        self.check(index)?;
        self.inner.index_remove(index, member).await
    }
    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        self.check(index)?;
        self.inner.index_members(index).await
    }
    async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.inner.purge_expired().await
    }
}

async fn with_store(test: &str, store: ChallengeStore) -> TestApp {
    let t = app_with(test, |b| {
        b.store(std::sync::Arc::new(store))
            .device_login(DeviceLoginConfig::default())
    })
    .await;
    for name in ["ann", "bob"] {
        t.register(&format!("{name}@example.com"), name, PW).await;
    }
    t
}

async fn racing(test: &str) -> TestApp {
    let store = ChallengeStore {
        slow: true,
        ..Default::default()
    };
    with_store(test, store).await
}

#[tokio::test]
async fn a_store_fault_is_a_503_and_loses_no_approval() {
    let store = ChallengeStore::default();
    let down = store.down.clone();
    let t = with_store("dl_store_down", store).await;
    let s = t.login("ann", PW).await;
    let c = start(&t).await;
    assert_eq!(approve(&t, &s, &c).await.status, 200);
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(t.send(Req::post("/auth/cli-login")).await.status, 503);
    let r = poll(&t, &c).await;
    assert_eq!(r.status, 503, "fail closed: {:?}", r.json);
    assert!(r.json.get("access_token").is_none());
    let other = json!({ "code": c["code"], "user_code": c["user_code"] });
    assert_eq!(approve(&t, &s, &other).await.status, 503);
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = poll(&t, &c).await;
    assert_eq!(
        (r.status.as_u16(), &r.json["status"]),
        (200, &json!("approved"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_polls_of_an_approved_challenge_get_one_pair() {
    let t = racing("dl_race_poll").await;
    let c = start(&t).await;
    let s = t.login("ann", PW).await;
    assert_eq!(approve(&t, &s, &c).await.status, 200);
    let mut polls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, req) = (t.app.clone(), poll_req(&c));
        polls.spawn(async move { send(&app, req).await });
    }
    let answers = polls.join_all().await;
    let won = answers.iter().filter(|r| r.status == 200).count();
    let lost = answers.iter().filter(|r| r.status == 404).count();
    assert_eq!((won, lost), (1, 7), "{answers:?}");
    assert_eq!(families(&t, "ann").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_approving_at_once_one_wins_and_the_pair_is_the_winners() {
    let t = racing("dl_race_approve").await;
    let c = start(&t).await;
    let ann = t.login("ann", PW).await;
    let bob = t.login("bob", PW).await;
    let (a, b) = tokio::join!(approve(&t, &ann, &c), approve(&t, &bob, &c));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{:?} {:?}", a.json, b.json);
    let winner = if a.status == 200 { "ann" } else { "bob" };
    let r = poll(&t, &c).await;
    let me = t
        .send(Req::get("/me").bearer(r.json["access_token"].as_str().unwrap()))
        .await;
    assert_eq!(me.json["username"], winner);
}

#[tokio::test]
async fn the_approve_link_alone_approves_nothing_and_wrong_user_codes_kill_the_challenge() {
    let t = setup("dl_user_code").await;
    let c = start(&t).await;
    let s = t.login("ann", PW).await;
    // A phished link: the PATCH without the user code (zndraw-auth's bodiless PATCH too).
    let r = t.send(approve_req(&c, json!({})).session(&s)).await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    let bare = Req::new(axum::http::Method::PATCH, &path(&c)).session(&s);
    let r = t.send(bare).await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    // A malformed code counts nothing; wrong ones count.
    let r = t
        .send(approve_req(&c, json!({ "user_code": "0000-0000" })).session(&s))
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (400, "Invalid user code"));
    let right = c["user_code"].as_str().unwrap().replace('-', "");
    let wrong = if right == "AAAAAAAA" {
        "BBBBBBBB"
    } else {
        "AAAAAAAA"
    };
    for _ in 0..4 {
        let r = t
            .send(approve_req(&c, json!({ "user_code": wrong })).session(&s))
            .await;
        assert_eq!((r.status.as_u16(), r.detail()), (400, "Invalid user code"));
    }
    assert_eq!(
        poll(&t, &c).await.json["status"],
        "pending",
        "still alive after 4"
    );
    let r = t
        .send(approve_req(&c, json!({ "user_code": wrong })).session(&s))
        .await;
    assert_eq!(r.status, 400);
    // The fifth wrong code killed it: the right one is too late now.
    let r = t
        .send(approve_req(&c, json!({ "user_code": right.to_lowercase() })).session(&s))
        .await;
    assert_eq!(r.status, 409, "{:?}", r.json);
    let r = poll(&t, &c).await;
    assert_eq!(
        (r.status.as_u16(), &r.json["status"]),
        (403, &json!("rejected"))
    );
    assert_eq!(
        poll(&t, &c).await.status,
        404,
        "told once, then only an audit record"
    );
    assert_eq!(families(&t, "ann").await, 0);
}

#[tokio::test]
async fn the_user_code_is_accepted_as_typed() {
    let t = setup("dl_typed").await;
    let c = start(&t).await;
    let s = t.login("ann", PW).await;
    let typed = c["user_code"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .replace('-', " ");
    let r = t
        .send(approve_req(&c, json!({ "user_code": typed })).session(&s))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
}

#[tokio::test]
async fn an_expired_challenge_is_neither_approved_nor_redeemed() {
    let clock = Clock::adjustable();
    let config = DeviceLoginConfig {
        clock: clock.clone(),
        ..Default::default()
    };
    let t = setup_with("dl_expiry", config).await;
    let s = t.login("ann", PW).await;
    // Approved in time, polled too late: no pair.
    let late = start(&t).await;
    assert_eq!(approve(&t, &s, &late).await.status, 200);
    // Never approved.
    let c = start(&t).await;
    clock.advance(Duration::from_secs(301));
    for challenge in [&late, &c] {
        let r = poll(&t, challenge).await;
        assert_eq!((r.status.as_u16(), r.detail()), (410, "Challenge expired"));
    }
    let r = approve(&t, &s, &c).await;
    assert_eq!(r.status, 410, "{:?}", r.json);
    let del = Req::new(axum::http::Method::DELETE, &path(&c)).session(&s);
    assert_eq!(t.send(del).await.status, 410);
    assert_eq!(families(&t, "ann").await, 0, "nothing minted");
}

#[tokio::test]
async fn polling_faster_than_the_interval_answers_slow_down() {
    let config = DeviceLoginConfig {
        interval: Duration::from_secs(1),
        ..Default::default()
    };
    let t = setup_with("dl_slow_down", config).await;
    let c = start(&t).await;
    assert_eq!(poll(&t, &c).await.json["status"], "pending");
    let r = poll(&t, &c).await;
    assert_eq!(r.status, 429);
    assert_eq!(
        (&r.json["status"], &r.json["interval"]),
        (&json!("slow_down"), &json!(1))
    );
    assert_eq!(r.headers["retry-after"], "1");
    // Another challenge has its own pace.
    let other = start(&t).await;
    assert_eq!(poll(&t, &other).await.json["status"], "pending");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(poll(&t, &c).await.json["status"], "pending");
}

#[tokio::test]
async fn polls_and_starts_are_rate_limited_per_client_address() {
    let t = app_with("dl_ip_limit", |b| {
        b.device_login(DeviceLoginConfig::default())
            .rate_limit(
                "cli_login_poll",
                RateLimit::new(3, Duration::from_secs(3600)),
            )
            .rate_limit(
                "cli_login_start",
                RateLimit::new(2, Duration::from_secs(3600)),
            )
    })
    .await;
    let c = start(&t).await;
    start(&t).await;
    let third = t.send(Req::post("/auth/cli-login")).await;
    assert_eq!(third.status, 429);
    assert!(third.headers.contains_key("retry-after"));
    for _ in 0..3 {
        let wrong = json!({ "code": c["code"], "secret": "guess" });
        assert_eq!(poll(&t, &wrong).await.status, 404);
    }
    let r = poll(&t, &c).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (429, "Too many requests. Try again later.")
    );
    // Another address is not held to it.
    let r = t.send(poll_req(&c).peer([10, 0, 0, 2])).await;
    assert_eq!(r.json["status"], "pending");
}

#[tokio::test]
async fn a_rejected_challenge_tells_the_cli_and_mints_nothing() {
    let t = setup("dl_reject").await;
    let c = start(&t).await;
    let s = t.login("ann", PW).await;
    let del = Req::new(axum::http::Method::DELETE, &path(&c)).session(&s);
    let r = t.send(del.clone_req()).await;
    assert_eq!(r.status, 204);
    assert_eq!(t.send(del).await.status, 409, "decided already");
    assert_eq!(approve(&t, &s, &c).await.status, 409);
    let r = poll(&t, &c).await;
    assert_eq!((r.status.as_u16(), r.detail()), (403, "Challenge rejected"));
    assert_eq!(poll(&t, &c).await.status, 404);
    assert_eq!(families(&t, "ann").await, 0);
}

#[tokio::test]
async fn the_browser_side_needs_a_signed_in_user_and_the_csrf_token() {
    let t = setup("dl_auth").await;
    let c = start(&t).await;
    assert_eq!(t.send(Req::get(&path(&c))).await.status, 401);
    let anonymous = approve_req(&c, json!({ "user_code": c["user_code"] }));
    assert_eq!(t.send(anonymous.clone_req()).await.status, 401);
    let del = Req::new(axum::http::Method::DELETE, &path(&c));
    assert_eq!(t.send(del).await.status, 401);
    let s = t.login("ann", PW).await;
    let r = t.send(anonymous.session_cookie_only(&s)).await;
    assert_eq!(r.status, 403, "no CSRF header: {:?}", r.json);
    assert_eq!(poll(&t, &c).await.json["status"], "pending");
}

#[tokio::test]
async fn a_disabled_approver_approves_nothing_and_hands_out_nothing() {
    let t = setup("dl_disabled").await;
    let ann = t.auth.repo().find_by_login("ann").await.unwrap().unwrap();
    let off = UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    // Approved, then disabled before the CLI polls: the pair is not handed out.
    let c = start(&t).await;
    let s = t.login("ann", PW).await;
    assert_eq!(approve(&t, &s, &c).await.status, 200);
    let other = start(&t).await;
    t.auth.repo().update(&ann.user_id(), off).await.unwrap();
    let r = poll(&t, &c).await;
    assert_eq!(
        (r.status.as_u16(), &r.json["status"]),
        (403, &json!("rejected"))
    );
    assert!(r.json.get("access_token").is_none());
    // And a disabled user approves nothing.
    let r = approve(&t, &s, &other).await;
    assert!(matches!(r.status.as_u16(), 401 | 403), "{:?}", r.json);
    assert_eq!(poll(&t, &other).await.json["status"], "pending");
    assert_eq!(families(&t, "ann").await, 0);
}

#[tokio::test]
async fn a_password_change_between_approval_and_poll_revokes_the_approval() {
    let t = setup("dl_epoch").await;
    let c = start(&t).await;
    let s = t.login("ann", PW).await;
    assert_eq!(approve(&t, &s, &c).await.status, 200);
    let r = t
        .send(Req::post("/change-password").session(&s).json(json!({
            "current_password": PW, "new_password": "another long password 2"
        })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = poll(&t, &c).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(families(&t, "ann").await, 0);
}

#[tokio::test]
async fn scopes_are_clamped_to_what_the_approver_may_grant() {
    let t = setup("dl_scopes").await;
    let s = t.login("ann", PW).await;
    let c = start(&t).await;
    let body = json!({ "user_code": c["user_code"], "scopes": ["reports:read", "admin:all"] });
    let r = t.send(approve_req(&c, body).session(&s)).await;
    assert_eq!(r.json["scopes"], json!(["reports:read"]));
    let pair = poll(&t, &c).await;
    let claims = t
        .auth
        .tokens()
        .unwrap()
        .verify_access(pair.json["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.scopes, ["reports:read"]);

    // A bearer token approves nothing: a stolen 15-minute token must not turn itself into a
    // new refresh family (the approver is the signed-in browser user).
    let (access, _) = t.token("ann", PW, "reports:read").await;
    let c = start(&t).await;
    let body = json!({ "user_code": c["user_code"], "scopes": ["me:read"] });
    let r = t.send(approve_req(&c, body).bearer(&access)).await;
    assert_eq!(r.status, 403, "{:?}", r.json);

    // No scope asked for: the defaults; the pair carries exactly what the answer says.
    let c = start(&t).await;
    let r = t
        .send(approve_req(&c, json!({ "user_code": c["user_code"], "scopes": [] })).session(&s))
        .await;
    let granted = r.json["scopes"].clone();
    let pair = poll(&t, &c).await;
    let access = pair.json["access_token"].as_str().unwrap();
    let claims = t.auth.tokens().unwrap().verify_access(access).unwrap();
    assert_eq!(json!(claims.scopes), granted);

    let c = start(&t).await;
    let body = json!({ "user_code": c["user_code"], "scopes": [1, 2] });
    assert_eq!(t.send(approve_req(&c, body).session(&s)).await.status, 422);
}

#[tokio::test]
async fn a_decided_challenge_is_shown_only_to_who_decided_it() {
    let t = setup("dl_view").await;
    let c = start(&t).await;
    let ann = t.login("ann", PW).await;
    let bob = t.login("bob", PW).await;
    assert_eq!(approve(&t, &ann, &c).await.status, 200);
    let mine = t.send(Req::get(&path(&c)).session(&ann)).await;
    assert_eq!(mine.json["status"], "approved");
    assert_eq!(t.send(Req::get(&path(&c)).session(&bob)).await.status, 404);
}

#[tokio::test]
async fn the_builder_refuses_device_login_without_the_bearer_transport() {
    let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "dl_no_bearer")
        .await
        .unwrap();
    let repo = crudauth_sea::SeaUserRepository::<crudauth_tests::http::User>::new(tdb.db.clone());
    let built = crudauth::CrudAuth::builder(repo)
        .secret_key(crudauth_tests::http::SECRET.to_vec())
        .session(crudauth::SessionConfig::default())
        .device_login(DeviceLoginConfig::default())
        .build();
    let Err(error) = built.map(|_| ()) else {
        panic!("device login without the bearer transport was accepted")
    };
    let error = error.to_string();
    assert!(error.contains("bearer"), "{error}");
    let bad = DeviceLoginConfig {
        approve_url: "https://evil.example/{code}{code}".into(),
        ..Default::default()
    };
    let refused = app_with_result(bad).await;
    assert!(refused.is_err());
}

async fn app_with_result(config: DeviceLoginConfig) -> Result<(), crudauth::ConfigError> {
    let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "dl_bad_config")
        .await
        .unwrap();
    let repo = crudauth_sea::SeaUserRepository::<crudauth_tests::http::User>::new(tdb.db.clone());
    crudauth_tests::http::default_builder(repo)
        .device_login(config)
        .build()
        .map(|_| ())
}

#[tokio::test]
async fn the_hook_hears_approve_reject_and_redeem_with_the_clis_address() {
    use std::sync::{Arc, Mutex};
    /// (username, action, the CLI's address) of each call.
    type Heard = Vec<(String, String, Option<String>)>;
    let heard: Arc<Mutex<Heard>> = Arc::default();
    let sink = heard.clone();
    let t = app_with("dl_hook", move |b| {
        b.device_login(DeviceLoginConfig::default())
            .on_device_login(move |user, action, ctx| {
                let sink = sink.clone();
                async move {
                    let name = user.username.clone();
                    sink.lock()
                        .unwrap()
                        .push((name, action.as_str().to_owned(), ctx.ip));
                    Ok(())
                }
            })
    })
    .await;
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    let c = start(&t).await;
    assert_eq!(approve(&t, &s, &c).await.status, 200);
    assert_eq!(poll(&t, &c).await.status, 200);
    let c = start(&t).await;
    let del = Req::new(axum::http::Method::DELETE, &path(&c)).session(&s);
    assert_eq!(t.send(del).await.status, 204);
    let ip = Some("127.0.0.1".to_owned());
    let expected: Vec<_> = ["approve", "redeem", "reject"]
        .iter()
        .map(|a| ("ann".to_owned(), (*a).to_owned(), ip.clone()))
        .collect();
    assert_eq!(*heard.lock().unwrap(), expected);
}

/// The INFO lines logged on this thread while it lives.
struct InfoLog {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl InfoLog {
    fn start() -> Self {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Buffer(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        InfoLog {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_log_lines_name_the_user_and_never_a_code_secret_or_token() {
    let log = InfoLog::start();
    let t = setup("dl_log").await;
    let s = t.login("ann", PW).await;
    let c = start(&t).await;
    assert_eq!(approve(&t, &s, &c).await.status, 200);
    let pair = poll(&t, &c).await;
    let text = log.text();
    let uid = user_id(&t, "ann").await;
    for line in ["device login approved", "device login redeemed"] {
        let found = text.lines().find(|l| l.contains(line)).unwrap_or_default();
        assert!(found.contains(&uid), "{line}: {text}");
    }
    let code = c["user_code"].as_str().unwrap();
    for secret in [
        c["code"].as_str().unwrap(),
        c["secret"].as_str().unwrap(),
        code,
        &code.replace('-', ""),
        pair.json["access_token"].as_str().unwrap(),
        pair.json["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "{secret} leaked into the log");
    }
}

#[tokio::test]
async fn neither_an_impersonation_nor_an_api_key_approves_a_terminal() {
    let t = app_with("dl_delegated", |b| {
        b.device_login(DeviceLoginConfig::default())
            .impersonation(crudauth::admin::ImpersonationConfig::default())
            .api_keys(crudauth::api_key::ApiKeyConfig::default())
    })
    .await;
    for name in ["root", "ann"] {
        t.register(&format!("{name}@example.com"), name, PW).await;
    }
    let root = t.auth.repo().find_by_login("root").await.unwrap().unwrap();
    let promote = crudauth::user::UserUpdate {
        is_superuser: Some(true),
        ..Default::default()
    };
    t.auth
        .repo()
        .update(&root.user_id(), promote)
        .await
        .unwrap();
    let elevate = async |s: &Session| {
        let r = t
            .send(
                Req::post("/sudo")
                    .session(s)
                    .json(json!({ "password": PW })),
            )
            .await;
        assert_eq!(r.status, 200);
    };
    let admin = t.login("root", PW).await;
    elevate(&admin).await;
    let ann_id = user_id(&t, "ann").await;
    let r = t
        .send(Req::post(&format!("/admin/users/{ann_id}/token")).session(&admin))
        .await;
    let as_ann = r.json["access_token"].as_str().unwrap().to_owned();
    let ann = t.login("ann", PW).await;
    elevate(&ann).await;
    let r = t
        .send(
            Req::post("/api-keys")
                .session(&ann)
                .json(json!({ "name": "script" })),
        )
        .await;
    let key = r.json["key"].as_str().unwrap().to_owned();

    let c = start(&t).await;
    let body = json!({ "user_code": c["user_code"] });
    let r = t.send(approve_req(&c, body.clone()).bearer(&as_ann)).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    let r = t
        .send(approve_req(&c, body).header("x-api-key", &key))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    let r = t
        .send(Req::new(axum::http::Method::DELETE, &path(&c)).bearer(&as_ann))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    // Still pending: Ann herself approves it.
    assert_eq!(approve(&t, &ann, &c).await.status, 200);
}
