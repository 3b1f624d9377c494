//! `POST /logout` with a bearer token ends the access token itself: its `jti` goes on a deny
//! list in the store until it expires, read in the same round trip as the user generation.
//!
//! Stateful tests run on every store of the matrix (memory, the database store on SQLite,
//! PostgreSQL and MariaDB, Redis; a configured server that cannot be reached fails).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crudauth::store::{MemoryStore, Store, StoreError};
use crudauth::{BearerConfig, CrudAuth, CrudAuthBuilder};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{
    Req, SECRET, TestApp, User, app_with, demo_routes, fast_passwords, send,
};
use crudauth_tests::stores::{MatrixStore, all_stores};
use serde_json::json;

const PW: &str = "correct horse 1";

async fn app_on(
    case: &MatrixStore,
    test: &str,
    configure: impl FnOnce(CrudAuthBuilder<User>) -> CrudAuthBuilder<User>,
) -> TestApp {
    let store = case.store.clone();
    app_with(test, move |b| configure(b.store(store))).await
}

#[tokio::test]
async fn a_stolen_access_token_dies_at_logout_on_every_store() {
    for case in all_stores("deny_stolen_access").await {
        let t = app_on(&case, "deny_stolen_access", |b| b).await;
        t.register("alice@example.com", "alice", PW).await;
        let (stolen, refresh) = t.token("alice", PW, "").await;
        let (other, _) = t.token("alice", PW, "").await;
        assert_eq!(t.send(Req::get("/me").bearer(&stolen)).await.status, 200);

        let r = t.send(Req::post("/logout").bearer(&stolen)).await;
        assert_eq!(r.status, 200, "{}: {:?}", case.name, r.json);
        let me = t.send(Req::get("/me").bearer(&stolen)).await;
        assert_eq!(
            (me.status.as_u16(), me.detail()),
            (401, "Invalid token"),
            "{}: the stolen copy died at the logout, not at its expiry",
            case.name
        );
        assert_eq!(
            t.send(Req::get("/me").bearer(&other)).await.status,
            200,
            "{}: another sign-in of the same user lives on",
            case.name
        );
        // The access token alone does not name its family: the refresh token lives on until
        // it is presented to a logout too (or the user signs out everywhere).
        let r = t
            .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
            .await;
        assert_eq!(r.status, 200, "{}", case.name);
        let fresh = r.json["access_token"].as_str().unwrap().to_owned();
        let r = t
            .send(
                Req::post("/logout")
                    .bearer(&fresh)
                    .json(json!({ "refresh_token": r.json["refresh_token"] })),
            )
            .await;
        assert_eq!(r.status, 200, "{}", case.name);
        assert_eq!(t.send(Req::get("/me").bearer(&fresh)).await.status, 401);
        t.tdb.cleanup().await;
        case.cleanup().await;
    }
}

#[tokio::test]
async fn the_deny_list_holds_on_every_process_sharing_the_store() {
    for case in all_stores("deny_across_processes").await {
        let web = app_on(&case, "deny_across_processes", |b| b).await;
        web.register("alice@example.com", "alice", PW).await;
        // A second process: same users table, same store, bearer only.
        let api = CrudAuth::builder(SeaUserRepository::<User>::new(web.tdb.db.clone()))
            .secret_key(SECRET.to_vec())
            .password(fast_passwords())
            .store(case.store.clone())
            .bearer(BearerConfig::default())
            .build()
            .expect("valid config");
        let api_app = demo_routes(&api);
        let (token, _) = web.token("alice", PW, "").await;
        assert_eq!(
            send(&api_app, Req::get("/me").bearer(&token)).await.status,
            200
        );

        // Logged out on the bearer-only process (its own `/logout` route) ...
        let r = send(&api_app, Req::post("/logout").bearer(&token)).await;
        assert_eq!(r.status, 200, "{}: {:?}", case.name, r.json);
        // ... dead on both.
        assert_eq!(
            send(&api_app, Req::get("/me").bearer(&token)).await.status,
            401
        );
        assert_eq!(
            web.send(Req::get("/me").bearer(&token)).await.status,
            401,
            "{}: the other process sees the deny list",
            case.name
        );
        web.tdb.cleanup().await;
        case.cleanup().await;
    }
}

/// A store that records every operation it is asked for.
struct Recording {
    inner: MemoryStore,
    ops: Mutex<Vec<String>>,
}

impl Recording {
    fn note(&self, op: &str, key: &str) {
        self.ops.lock().unwrap().push(format!("{op} {key}"));
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl Store for Recording {
    async fn get(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.note("get", k);
        self.inner.get(k).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.note("get_many", &keys.join(","));
        self.inner.get_many(keys).await
    }
    async fn set(&self, k: &str, v: &[u8], t: Option<Duration>) -> Result<(), StoreError> {
        self.note("set", k);
        self.inner.set(k, v, t).await
    }
    async fn set_if_absent(
        &self,
        k: &str,
        v: &[u8],
        t: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.note("set_if_absent", k);
        self.inner.set_if_absent(k, v, t).await
    }
    async fn get_and_delete(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.note("get_and_delete", k);
        self.inner.get_and_delete(k).await
    }
    async fn compare_and_set(
        &self,
        k: &str,
        e: &[u8],
        n: &[u8],
        t: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.note("compare_and_set", k);
        self.inner.compare_and_set(k, e, n, t).await
    }
    async fn delete(&self, k: &str) -> Result<bool, StoreError> {
        self.note("delete", k);
        self.inner.delete(k).await
    }
    async fn incr(&self, k: &str, d: i64, t: Duration) -> Result<i64, StoreError> {
        self.note("incr", k);
        self.inner.incr(k, d, t).await
    }
    async fn ttl(&self, k: &str) -> Result<Option<Duration>, StoreError> {
        self.note("ttl", k);
        self.inner.ttl(k).await
    }
    async fn index_add(&self, i: &str, m: &str, t: Duration) -> Result<(), StoreError> {
        self.note("index_add", i);
        self.inner.index_add(i, m, t).await
    }
    async fn index_remove(&self, i: &str, m: &str) -> Result<(), StoreError> {
        self.note("index_remove", i);
        self.inner.index_remove(i, m).await
    }
    async fn index_members(&self, i: &str) -> Result<Vec<String>, StoreError> {
        self.note("index_members", i);
        self.inner.index_members(i).await
    }
    async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.inner.purge_expired().await
    }
}

#[tokio::test]
async fn the_deny_list_costs_the_bearer_path_no_round_trip_of_its_own() {
    let recording = Arc::new(Recording {
        inner: MemoryStore::new(),
        ops: Mutex::new(Vec::new()),
    });
    let store: Arc<dyn Store> = recording.clone();
    let t = app_with("deny_round_trips", move |b| b.store(store)).await;
    t.register("alice@example.com", "alice", PW).await;
    let (token, _) = t.token("alice", PW, "").await;
    let (denied, _) = t.token("alice", PW, "").await;
    assert_eq!(t.send(Req::get("/me").bearer(&denied)).await.status, 200);
    assert_eq!(
        t.send(Req::post("/logout").bearer(&denied)).await.status,
        200
    );
    assert_eq!(t.send(Req::get("/me").bearer(&token)).await.status, 200);

    // With the user in this process's cache and a deny list that is not empty: one read.
    recording.take();
    assert_eq!(t.send(Req::get("/me").bearer(&token)).await.status, 200);
    let ops = recording.take();
    assert_eq!(ops.len(), 1, "one round trip: {ops:?}");
    assert!(
        ops[0].starts_with("get_many ") && ops[0].contains("deny-jti:"),
        "the generation and the deny list in one read: {ops:?}"
    );
    // The denied token costs the same single read to refuse.
    assert_eq!(t.send(Req::get("/me").bearer(&denied)).await.status, 401);
    assert_eq!(recording.take().len(), 1);
}

#[tokio::test]
async fn a_forged_or_foreign_token_at_logout_writes_nothing_and_fails_nothing() {
    let recording = Arc::new(Recording {
        inner: MemoryStore::new(),
        ops: Mutex::new(Vec::new()),
    });
    let store: Arc<dyn Store> = recording.clone();
    let t = app_with("deny_forged", move |b| b.store(store)).await;
    t.register("alice@example.com", "alice", PW).await;
    let (token, _) = t.token("alice", PW, "").await;
    // The same claims signed under another key, a truncated token, garbage, an empty bearer,
    // a huge header, another scheme.
    let other = app_with("deny_forged_other", |b| b.secret_key(vec![7; 64])).await;
    other.register("alice@example.com", "alice", PW).await;
    let (foreign, _) = other.token("alice", PW, "").await;
    let truncated = &token[..token.len() - 4];
    let huge = "a".repeat(64 * 1024);
    let presented = [
        format!("Bearer {foreign}"),
        format!("Bearer {truncated}"),
        "Bearer not.a.jwt".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {huge}"),
        format!("Basic {token}"),
    ];
    for header in &presented {
        recording.take();
        let r = t
            .send(Req::post("/logout").header("authorization", header))
            .await;
        assert_eq!(
            r.status, 200,
            "a logout never fails on its token: {header:.40}"
        );
        let writes: Vec<_> = recording
            .take()
            .into_iter()
            .filter(|op| op.contains("deny-jti:"))
            .collect();
        assert!(
            writes.is_empty(),
            "nothing denied for {header:.40}: {writes:?}"
        );
    }
    assert_eq!(
        t.send(Req::get("/me").bearer(&token)).await.status,
        200,
        "the real token is untouched"
    );
    other.tdb.cleanup().await;
}

#[tokio::test]
async fn a_deny_entry_lives_as_long_as_its_token_and_no_longer() {
    let store = Arc::new(MemoryStore::new());
    let shared: Arc<dyn Store> = store.clone();
    let t = app_with("deny_ttl", move |b| b.store(shared)).await;
    t.register("alice@example.com", "alice", PW).await;
    let (token, _) = t.token("alice", PW, "").await;
    let claims = t.auth.tokens().unwrap().verify_access(&token).unwrap();
    assert_eq!(
        t.send(Req::post("/logout").bearer(&token)).await.status,
        200
    );
    let ttl = store
        .ttl(&format!("deny-jti:{}", claims.jti))
        .await
        .unwrap()
        .expect("a deny entry with an expiry");
    // A second logout with it is told it was already ended (no second logout hook), and an
    // absurd expiry is held for a year, not forever.
    let revocation = t.auth.revocation();
    assert!(
        !revocation
            .deny_access_token(&claims.jti, claims.exp)
            .await
            .unwrap()
    );
    assert_eq!(
        t.send(Req::post("/logout").bearer(&token)).await.status,
        200
    );
    assert!(revocation.deny_access_token("far", u64::MAX).await.unwrap());
    let far = store.ttl("deny-jti:far").await.unwrap().unwrap();
    assert!(far.as_secs() <= 366 * 24 * 3600 + 60, "{far:?}");
    let left = claims.exp - crudauth_tests::unix_now();
    assert!(
        ttl.as_secs() >= left && ttl.as_secs() <= left + 61,
        "until the token's expiry plus a minute: {ttl:?} for {left} s left"
    );
}

#[tokio::test]
async fn a_session_logout_with_a_forged_csrf_header_denies_no_token() {
    let t = app_with("deny_forged_csrf", |b| b).await;
    t.register("alice@example.com", "alice", PW).await;
    let s = t.login("alice", PW).await;
    let (token, _) = t.token("alice", PW, "").await;
    let forged = crudauth_tests::http::Session {
        id: s.id.clone(),
        csrf: "forged".into(),
    };
    let r = t
        .send(Req::post("/logout").session(&forged).bearer(&token))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(
        t.send(Req::get("/me").bearer(&token)).await.status,
        200,
        "a forged logout ends nothing"
    );
    // The real one ends both.
    let r = t
        .send(Req::post("/logout").session(&s).bearer(&token))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(t.send(Req::get("/me").bearer(&token)).await.status, 401);
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 401);
}
