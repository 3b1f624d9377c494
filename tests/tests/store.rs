//! The store conformance suite on every backend: memory always, Redis when
//! `CRUDAUTH_TEST_REDIS_URL` is set (each run under a key prefix of its own).

use std::io::Write;
use std::sync::Arc;

use crudauth::store::{MemoryStore, RedisStore, Store};
use crudauth_tests::store_conformance::run_all;

#[tokio::test]
async fn the_memory_store_conforms() {
    run_all(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn the_redis_store_conforms() {
    let Ok(url) = std::env::var("CRUDAUTH_TEST_REDIS_URL") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the_redis_store_conforms: CRUDAUTH_TEST_REDIS_URL is not set (set it to run Redis)"
        );
        return;
    };
    let prefix = format!("crudauth-test:{}:", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("CRUDAUTH_TEST_REDIS_URL is set but Redis is unreachable: {e}"));
    run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn two_prefixes_share_one_redis_without_seeing_each_other() {
    let Ok(url) = std::env::var("CRUDAUTH_TEST_REDIS_URL") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED redis prefixes: CRUDAUTH_TEST_REDIS_URL is not set"
        );
        return;
    };
    let base = uuid::Uuid::new_v4().simple().to_string();
    let a = RedisStore::connect(&url, &format!("{base}:a:"))
        .await
        .unwrap();
    let b = RedisStore::connect(&url, &format!("{base}:b:"))
        .await
        .unwrap();
    a.set("k", b"from a", None).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
    assert!(a.delete("k").await.unwrap());
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_never_a_silent_success() {
    // Nobody listens on port 1: connecting fails loudly.
    let result = RedisStore::connect("redis://127.0.0.1:1", "x:").await;
    assert!(result.is_err());
}

#[tokio::test]
async fn sessions_lockout_and_refresh_families_work_on_redis() {
    use crudauth_tests::http::{Req, app_with};
    use serde_json::json;
    let Ok(url) = std::env::var("CRUDAUTH_TEST_REDIS_URL") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED redis http flows: CRUDAUTH_TEST_REDIS_URL is not set"
        );
        return;
    };
    let prefix = format!("crudauth-test:{}:", uuid::Uuid::new_v4().simple());
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(&url, &prefix).await.unwrap());
    let t = app_with("redis_flows", move |b| b.store(store)).await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let s = t.login("alice", "correct horse 1").await;
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 200);
    assert_eq!(
        t.send(Req::post("/logout").session_cookie_only(&s))
            .await
            .status,
        403
    );
    assert_eq!(t.send(Req::post("/logout").session(&s)).await.status, 200);
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 401);
    let (_, refresh) = t.token("alice", "correct horse 1", "").await;
    let r = t
        .send(Req::post("/refresh").json(json!({"refresh_token": refresh.clone()})))
        .await;
    assert_eq!(r.status, 200);
    let replay = t
        .send(Req::post("/refresh").json(json!({"refresh_token": refresh})))
        .await;
    assert_eq!(replay.status, 401);
    for _ in 0..5 {
        let r = t
            .send(Req::post("/login").form(&[("username", "alice"), ("password", "wrong")]))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = t
        .send(Req::post("/token").form(&[("username", "alice"), ("password", "wrong")]))
        .await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn a_redis_outage_fails_closed_with_503_and_recovers_by_itself() {
    use crudauth_tests::http::{Req, app_with};
    use std::process::{Command, Stdio};
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED redis outage: no redis-server binary to start a private one"
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawn = || {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start a private redis-server")
    };
    let wait_up = || async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("private redis never came up");
    };
    let mut server = spawn();
    wait_up().await;
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(&format!("redis://127.0.0.1:{port}"), "outage:")
            .await
            .unwrap(),
    );
    let t = app_with("redis_outage", move |b| b.store(store)).await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let s = t.login("alice", "correct horse 1").await;
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 200);

    server.kill().unwrap();
    server.wait().unwrap();
    let r = t.send(Req::get("/me").session(&s)).await;
    assert_eq!(
        r.status, 503,
        "a session cannot be checked: nobody is let in"
    );
    let r = t
        .send(Req::post("/login").form(&[("username", "alice"), ("password", "correct horse 1")]))
        .await;
    assert_eq!(r.status, 503, "lockout cannot be checked: no login");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("redis"),
        "no internals leak"
    );

    let mut server = spawn();
    wait_up().await;
    let mut recovered = false;
    for _ in 0..40 {
        let r = t
            .send(
                Req::post("/login").form(&[("username", "alice"), ("password", "correct horse 1")]),
            )
            .await;
        if r.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    server.kill().ok();
    server.wait().ok();
    assert!(
        recovered,
        "logins work again once Redis is back, without a restart"
    );
}

#[tokio::test]
async fn the_database_store_conforms_on_every_database() {
    use crudauth_sea::{DatabaseStore, StoreTables};
    use crudauth_tests::{Backend, open};
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "db_store").await else {
            continue;
        };
        let tables = StoreTables::default();
        DatabaseStore::create_tables(&tdb.db, &tables)
            .await
            .unwrap();
        DatabaseStore::create_tables(&tdb.db, &tables)
            .await
            .expect("idempotent");
        let store = DatabaseStore::new(tdb.db.clone(), tables);
        run_all(Arc::new(store)).await;
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn http_flows_work_on_the_database_store_and_a_closed_pool_fails_closed() {
    use crudauth_sea::{DatabaseStore, StoreTables};
    use crudauth_tests::http::{Req, app_with, mails, outbox_path, token_of, with_outbox};
    use sea_orm::{ConnectOptions, Database};
    // The store's own database (an in-memory SQLite pool) beside the users' one.
    let mut opts = ConnectOptions::new("sqlite::memory:");
    opts.max_connections(1).sqlx_logging(false);
    let state_db = Database::connect(opts).await.unwrap();
    let tables = StoreTables {
        records: "auth_state".into(),
        counters: "auth_counts".into(),
    };
    DatabaseStore::create_tables(&state_db, &tables)
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(DatabaseStore::new(state_db.clone(), tables));
    let outbox = outbox_path("db_store_flows");
    let t = app_with("db_store_flows", |b| with_outbox(b.store(store), &outbox)).await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    // A reset link issued and redeemed through the database store, once.
    t.send(
        Req::post("/password/reset-request")
            .json(serde_json::json!({"email": "alice@example.com"})),
    )
    .await;
    let token = token_of(mails(&t.auth, &outbox).await.last().unwrap());
    let confirm = Req::post("/password/reset-confirm")
        .json(serde_json::json!({"token": token, "new_password": "correct horse 1 again"}));
    assert_eq!(t.send(confirm.clone_req()).await.status, 200);
    assert_eq!(t.send(confirm.clone_req()).await.status, 400);
    t.send(
        Req::post("/password/reset-request")
            .json(serde_json::json!({"email": "alice@example.com"})),
    )
    .await;
    let pending = token_of(mails(&t.auth, &outbox).await.last().unwrap());
    let s = t.login("alice", "correct horse 1 again").await;
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 200);
    let r = t.send(Req::get("/sessions").session(&s)).await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(1));
    assert_eq!(t.send(Req::post("/logout").session(&s)).await.status, 200);
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 401);
    let s = t.login("alice", "correct horse 1 again").await;

    state_db.close().await.unwrap();
    assert_eq!(
        t.send(Req::get("/me").session(&s)).await.status,
        503,
        "no session check, nobody in"
    );
    let r = t
        .send(Req::post("/login").form(&[("username", "alice"), ("password", "correct horse 1")]))
        .await;
    assert_eq!(r.status, 503);
    let r = t
        .send(
            Req::post("/password/reset-confirm").json(
                serde_json::json!({"token": pending, "new_password": "correct horse 1 third"}),
            ),
        )
        .await;
    assert_eq!(
        r.status, 503,
        "a token that cannot be checked redeems nothing"
    );
    let r = t
        .send(
            Req::post("/password/reset-request")
                .json(serde_json::json!({"email": "alice@example.com"})),
        )
        .await;
    assert_eq!(r.status, 503, "the request route's limit cannot be counted");
}

/// Counts store calls, to pin the per-request cost.
struct Counting(MemoryStore, std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl Store for Counting {
    async fn get(&self, k: &str) -> Result<Option<Vec<u8>>, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.get(k).await
    }
    async fn get_many(
        &self,
        k: &[&str],
    ) -> Result<Vec<Option<Vec<u8>>>, crudauth::store::StoreError> {
        // One round trip, as the networked stores make it.
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.get_many(k).await
    }
    async fn set(
        &self,
        k: &str,
        v: &[u8],
        t: Option<std::time::Duration>,
    ) -> Result<(), crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.set(k, v, t).await
    }
    async fn set_if_absent(
        &self,
        k: &str,
        v: &[u8],
        t: Option<std::time::Duration>,
    ) -> Result<bool, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.set_if_absent(k, v, t).await
    }
    async fn get_and_delete(
        &self,
        k: &str,
    ) -> Result<Option<Vec<u8>>, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.get_and_delete(k).await
    }
    async fn compare_and_set(
        &self,
        k: &str,
        e: &[u8],
        n: &[u8],
        t: Option<std::time::Duration>,
    ) -> Result<bool, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.compare_and_set(k, e, n, t).await
    }
    async fn delete(&self, k: &str) -> Result<bool, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.delete(k).await
    }
    async fn incr(
        &self,
        k: &str,
        d: i64,
        t: std::time::Duration,
    ) -> Result<i64, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.incr(k, d, t).await
    }
    async fn ttl(
        &self,
        k: &str,
    ) -> Result<Option<std::time::Duration>, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.ttl(k).await
    }
    async fn index_add(
        &self,
        i: &str,
        m: &str,
        t: std::time::Duration,
    ) -> Result<(), crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.index_add(i, m, t).await
    }
    async fn index_remove(&self, i: &str, m: &str) -> Result<(), crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.index_remove(i, m).await
    }
    async fn index_members(&self, i: &str) -> Result<Vec<String>, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.index_members(i).await
    }
    async fn purge_expired(&self) -> Result<u64, crudauth::store::StoreError> {
        self.0.purge_expired().await
    }
}

#[tokio::test]
async fn a_session_request_and_a_bearer_request_each_cost_one_store_round_trip() {
    use crudauth_tests::http::{Req, app_with};
    use std::sync::atomic::Ordering;
    let counting = Arc::new(Counting(
        MemoryStore::new(),
        std::sync::atomic::AtomicUsize::new(0),
    ));
    let store: Arc<dyn Store> = counting.clone();
    let t = app_with("round_trips", move |b| b.store(store)).await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let s = t.login("alice", "correct horse 1").await;
    let (access, _) = t.token("alice", "correct horse 1", "").await;
    let before = counting.1.load(Ordering::SeqCst);
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 200);
    assert_eq!(
        counting.1.load(Ordering::SeqCst) - before,
        1,
        "session /me: one store read"
    );
    let before = counting.1.load(Ordering::SeqCst);
    assert_eq!(t.send(Req::get("/me").bearer(&access)).await.status, 200);
    assert_eq!(
        counting.1.load(Ordering::SeqCst) - before,
        1,
        "bearer /me: one store read (the user's generation, which keeps the user cache \
         revocation-correct across processes)"
    );
}

#[tokio::test]
async fn the_store_tables_migrate_up_and_down_in_an_apps_migrator() {
    use crudauth_sea::migration::CreateStoreTables;
    use crudauth_sea::{DatabaseStore, StoreTables};
    use crudauth_tests::{Backend, open};
    use sea_orm_migration::prelude::*;
    struct Migrator;
    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateStoreTables::default())]
        }
    }
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "migration").await else {
            continue;
        };
        Migrator::up(&tdb.db, None).await.unwrap();
        let store = DatabaseStore::new(tdb.db.clone(), StoreTables::default());
        store.set("k", b"v", None).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        Migrator::down(&tdb.db, None).await.unwrap();
        assert!(
            store.get("k").await.is_err(),
            "{backend:?}: the tables are gone"
        );
        tdb.cleanup().await;
    }
}
