//! Sudo mode: elevation of a session by re-entering the password, its gate and its lockout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crudauth_tests::http::{Req, app, app_with, demo_routes};
use serde_json::json;

const PW: &str = "correct horse 1";

#[tokio::test]
async fn elevation_opens_the_gate_and_fires_its_hook() {
    let elevated = Arc::new(AtomicUsize::new(0));
    let hook = elevated.clone();
    let t = app_with("sudo_flow", |b| {
        b.on_after_sudo(move |_, ctx| {
            let hook = hook.clone();
            async move {
                assert_eq!(ctx.transport, Some("session"));
                hook.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
    })
    .await;
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;

    let r = t.send(Req::post("/danger").session(&s)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Re-authentication required.")
    );
    let r = t
        .send(
            Req::post("/sudo")
                .session_cookie_only(&s)
                .json(json!({"password": PW})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (403, "Missing CSRF token"));
    let r = t
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({"password": "wrong"})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "Incorrect password"));
    let r = t
        .send(Req::post("/sudo").session(&s).json(json!({"password": PW})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json, json!({"detail": "elevated"}));
    assert_eq!(elevated.load(Ordering::SeqCst), 1);
    let r = t.send(Req::post("/danger").session(&s)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, json!({"ok": true}));

    // Another session of the same user is not elevated, and the elevation dies with its
    // session.
    let other = t.login("ann", PW).await;
    assert_eq!(
        t.send(Req::post("/danger").session(&other)).await.status,
        403
    );
    assert_eq!(t.send(Req::post("/logout").session(&s)).await.status, 200);
    assert_eq!(t.send(Req::post("/danger").session(&s)).await.status, 401);
}

#[tokio::test]
async fn the_third_wrong_password_locks_sudo_even_for_the_right_one() {
    let t = app("sudo_lockout").await;
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    for _ in 0..2 {
        let r = t
            .send(
                Req::post("/sudo")
                    .session(&s)
                    .json(json!({"password": "wrong"})),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = t
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({"password": "wrong"})),
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.detail(), "Too many attempts. Try again later.");
    assert_eq!(r.headers["retry-after"], "900");
    let r = t
        .send(Req::post("/sudo").session(&s).json(json!({"password": PW})))
        .await;
    assert_eq!(r.status, 429, "locked even with the right password");
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 800
    );
    // A new session of the same user shares the lock (it is per user).
    let other = t.login("ann", PW).await;
    let r = t
        .send(
            Req::post("/sudo")
                .session(&other)
                .json(json!({"password": PW})),
        )
        .await;
    assert_eq!(r.status, 429);
    // The login itself is unaffected.
    assert_eq!(t.send(Req::get("/me").session(&other)).await.status, 200);
}

#[tokio::test]
async fn concurrent_guesses_share_one_budget() {
    let t = app("sudo_race").await;
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let app = t.app.clone();
        let req = Req::post("/sudo")
            .session(&s)
            .json(json!({"password": "wrong"}));
        racers.spawn(async move { crudauth_tests::http::send(&app, req).await.status });
    }
    let statuses = racers.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        checked <= 2,
        "at most two guesses were checked: {statuses:?}"
    );
    assert_eq!(checked + locked, 8, "{statuses:?}");
}

#[tokio::test]
async fn a_bearer_principal_can_never_be_elevated() {
    let t = app("sudo_bearer").await;
    t.register("ann@example.com", "ann", PW).await;
    let (access, _) = t.token("ann", PW, "").await;
    let r = t
        .send(
            Req::post("/sudo")
                .bearer(&access)
                .json(json!({"password": PW})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Sudo requires a session-backed login.")
    );
    let r = t.send(Req::post("/danger").bearer(&access)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Re-authentication required.")
    );
}

#[tokio::test]
async fn the_gate_layer_and_the_elevation_window() {
    use axum::routing::post;
    let t = app_with("sudo_window", |b| {
        b.sudo(crudauth::SudoConfig {
            window: Duration::from_secs(1),
            ..Default::default()
        })
    })
    .await;
    let gated = axum::Router::new()
        .route("/wipe", post(|| async { "wiped" }))
        .route_layer(t.auth.require(crudauth::Gate::new().sudo()).unwrap())
        .merge(demo_routes(&t.auth));
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    let send = |req| crudauth_tests::http::send(&gated, req);
    assert_eq!(send(Req::post("/wipe").session(&s)).await.status, 403);
    let r = send(Req::post("/sudo").session(&s).json(json!({"password": PW}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(send(Req::post("/wipe").session(&s)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = send(Req::post("/wipe").session(&s)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Re-authentication required.")
    );
}

#[tokio::test]
async fn a_tripped_sudo_lock_ends_an_existing_elevation() {
    let t = app("sudo_lock_ends_elevation").await;
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    let r = t
        .send(Req::post("/sudo").session(&s).json(json!({"password": PW})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(t.send(Req::post("/danger").session(&s)).await.status, 200);
    for _ in 0..3 {
        t.send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({"password": "wrong"})),
        )
        .await;
    }
    let r = t.send(Req::post("/danger").session(&s)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Re-authentication required.")
    );
}

/// A memory store that, once armed, changes a session record (as a concurrent activity
/// touch would) just before the next compare-and-set on it (`armed`), or just before the
/// next get-and-delete that claims it (`armed_claim`: the elevation moves the session to a
/// new id, claiming the old record).
struct Interfering {
    inner: crudauth::store::MemoryStore,
    armed: std::sync::atomic::AtomicBool,
    armed_claim: std::sync::atomic::AtomicBool,
}

impl Interfering {
    async fn touch(&self, k: &str, t: Option<Duration>) -> StoreResult<()> {
        use crudauth::store::Store as _;
        let current = self.inner.get(k).await?.expect("the session exists");
        let mut record: crudauth::session::SessionRecord =
            serde_json::from_slice(&current).unwrap();
        record.last_seen += 1;
        self.inner
            .set(k, &serde_json::to_vec(&record).unwrap(), t)
            .await
    }
}

type StoreResult<T> = Result<T, crudauth::store::StoreError>;

#[async_trait::async_trait]
impl crudauth::store::Store for Interfering {
    async fn get(&self, k: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.get(k).await
    }
    async fn set(&self, k: &str, v: &[u8], t: Option<Duration>) -> StoreResult<()> {
        self.inner.set(k, v, t).await
    }
    async fn set_if_absent(&self, k: &str, v: &[u8], t: Option<Duration>) -> StoreResult<bool> {
        self.inner.set_if_absent(k, v, t).await
    }
    async fn get_and_delete(&self, k: &str) -> StoreResult<Option<Vec<u8>>> {
        if k.starts_with("session:") && self.armed_claim.swap(false, Ordering::SeqCst) {
            let left = self.inner.ttl(k).await?;
            self.touch(k, left).await?;
        }
        self.inner.get_and_delete(k).await
    }
    async fn compare_and_set(
        &self,
        k: &str,
        expected: &[u8],
        new: &[u8],
        t: Option<Duration>,
    ) -> StoreResult<bool> {
        if k.starts_with("session:") && self.armed.swap(false, Ordering::SeqCst) {
            self.touch(k, t).await?;
        }
        self.inner.compare_and_set(k, expected, new, t).await
    }
    async fn delete(&self, k: &str) -> StoreResult<bool> {
        self.inner.delete(k).await
    }
    async fn incr(&self, k: &str, d: i64, t: Duration) -> StoreResult<i64> {
        self.inner.incr(k, d, t).await
    }
    async fn ttl(&self, k: &str) -> StoreResult<Option<Duration>> {
        self.inner.ttl(k).await
    }
    async fn index_add(&self, i: &str, m: &str, t: Duration) -> StoreResult<()> {
        self.inner.index_add(i, m, t).await
    }
    async fn index_remove(&self, i: &str, m: &str) -> StoreResult<()> {
        self.inner.index_remove(i, m).await
    }
    async fn index_members(&self, i: &str) -> StoreResult<Vec<String>> {
        self.inner.index_members(i).await
    }
    async fn purge_expired(&self) -> StoreResult<u64> {
        self.inner.purge_expired().await
    }
}

#[tokio::test]
async fn a_concurrent_session_write_neither_loses_an_elevation_nor_a_lock() {
    let store = Arc::new(Interfering {
        inner: crudauth::store::MemoryStore::new(),
        armed: std::sync::atomic::AtomicBool::new(false),
        armed_claim: std::sync::atomic::AtomicBool::new(false),
    });
    let dyn_store: Arc<dyn crudauth::store::Store> = store.clone();
    let t = app_with("sudo_cas", move |b| b.store(dyn_store)).await;
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;

    // A touch lands between the read of the record and its claim by the move to a new
    // id: the elevation is carried over onto the touched record, not lost.
    store.armed_claim.store(true, Ordering::SeqCst);
    let r = t
        .send(Req::post("/sudo").session(&s).json(json!({"password": PW})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(
        !store.armed_claim.load(Ordering::SeqCst),
        "the interference happened"
    );
    assert_eq!(t.send(Req::post("/danger").session(&s)).await.status, 200);

    // The lock's clearing of the elevation loses once too: it still ends the elevation.
    for _ in 0..2 {
        t.send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({"password": "wrong"})),
        )
        .await;
    }
    store.armed.store(true, Ordering::SeqCst);
    let r = t
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({"password": "wrong"})),
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(
        !store.armed.load(Ordering::SeqCst),
        "the interference happened"
    );
    assert_eq!(t.send(Req::post("/danger").session(&s)).await.status, 403);
}
