//! Store operations per backend and a session-cookie `/me` through each, as ratios to the
//! memory backend. `cargo bench -p crudauth-tests --bench stores`; PostgreSQL, MariaDB and
//! Redis join when `CRUDAUTH_TEST_POSTGRES_URL` / `CRUDAUTH_TEST_MYSQL_URL` /
//! `CRUDAUTH_TEST_REDIS_URL` are set.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crudauth::store::{MemoryStore, RedisStore, Store};
use crudauth_sea::{DatabaseStore, StoreTables};
use crudauth_tests::http::{Req, app_with, send};
use crudauth_tests::{Backend, TestDb, open};

async fn backends() -> Vec<(String, Arc<dyn Store>, Option<TestDb>)> {
    let mut out: Vec<(String, Arc<dyn Store>, Option<TestDb>)> =
        vec![("memory".into(), Arc::new(MemoryStore::new()), None)];
    for backend in Backend::ALL {
        if let Some(tdb) = open(backend, "bench").await {
            let tables = StoreTables::default();
            DatabaseStore::create_tables(&tdb.db, &tables)
                .await
                .expect("tables");
            let store = Arc::new(DatabaseStore::new(tdb.db.clone(), tables));
            out.push((format!("database ({backend:?})"), store, Some(tdb)));
        }
    }
    if let Ok(url) = std::env::var("CRUDAUTH_TEST_REDIS_URL") {
        let prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
        let store = RedisStore::connect(&url, &prefix).await.expect("redis");
        out.push(("redis".into(), Arc::new(store), None));
    }
    out
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let all = rt.block_on(backends());
    let ttl = Some(Duration::from_secs(600));
    for (name, store, _) in &all {
        let mut g = c.benchmark_group(format!("store: {name}"));
        g.sample_size(30);
        rt.block_on(store.set("bench:get", b"value", ttl)).unwrap();
        g.bench_function("get", |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(store.get("bench:get").await.unwrap()) })
        });
        g.bench_function("set", |b| {
            b.to_async(&rt)
                .iter(|| async { store.set("bench:set", b"value", ttl).await.unwrap() })
        });
        g.bench_function("set + get_and_delete", |b| {
            b.to_async(&rt).iter(|| async {
                store.set("bench:gd", b"value", ttl).await.unwrap();
                black_box(store.get_and_delete("bench:gd").await.unwrap())
            })
        });
        g.bench_function("incr", |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    store
                        .incr("bench:incr", 1, Duration::from_secs(600))
                        .await
                        .unwrap(),
                )
            })
        });
        g.finish();

        let store = store.clone();
        let (app, session) = rt.block_on(async move {
            let t = app_with("bench_me", move |b| b.store(store)).await;
            t.register("bench@example.com", "bench", "correct horse 1")
                .await;
            let s = t.login("bench", "correct horse 1").await;
            (t, s)
        });
        let mut g = c.benchmark_group(format!("session /me: {name}"));
        g.sample_size(30);
        g.bench_function("GET /me (session cookie)", |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    send(&app.app, Req::get("/me").session(&session))
                        .await
                        .status,
                )
            })
        });
        // A whole password login (test argon2 parameters, so the store's share shows):
        // the user lookup, the known-address read, the lockout's locks and counters, the
        // hash check, the counters' clearing and the new session.
        g.bench_function("POST /token (lockout bookkeeping + fast hash)", |b| {
            b.to_async(&rt).iter(|| async {
                let r = send(
                    &app.app,
                    Req::post("/token")
                        .form(&[("username", "bench"), ("password", "correct horse 1")]),
                )
                .await;
                assert_eq!(r.status, 200);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, stores);
criterion_main!(benches);
