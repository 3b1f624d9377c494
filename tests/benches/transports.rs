//! What authenticating one request costs, by transport, through the real router
//! (in-process, SQLite users table, memory store): a bearer JWT (the baseline), a session
//! cookie, and an API key with its key table in memory and in SQLite (one indexed read and
//! one HMAC; the per-key rate limit counts it too), and a bearer token beside a 10,000-entry
//! deny list. Report each as a ratio to the bearer token in the same run. `cargo bench -p crudauth-tests --bench transports`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crudauth::RateLimit;
use crudauth::api_key::ApiKeyConfig;
use crudauth_sea::{API_KEY_TABLE, SeaApiKeyStore};
use crudauth_tests::http::{Req, Session, TestApp, app_with, send};
use serde_json::json;

const PW: &str = "a long password 1";

/// Ann signed in and elevated, with a key: (app, session, key).
async fn setup(test: &str, table: bool) -> (TestApp, Session, String) {
    let t = app_with(test, |b| {
        // Counted, never refused: the bench makes far more than a minute's default budget.
        b.rate_limit("api_key", RateLimit::new(u32::MAX, Duration::from_secs(60)))
    })
    .await;
    let config = if table {
        SeaApiKeyStore::create_table(&t.tdb.db, API_KEY_TABLE)
            .await
            .unwrap();
        ApiKeyConfig::default().store(Arc::new(SeaApiKeyStore::new(
            t.tdb.db.clone(),
            API_KEY_TABLE,
        )))
    } else {
        ApiKeyConfig::default()
    };
    let auth = crudauth_tests::http::default_builder(crudauth_sea::SeaUserRepository::new(
        t.tdb.db.clone(),
    ))
    .rate_limit("api_key", RateLimit::new(u32::MAX, Duration::from_secs(60)))
    .api_keys(config)
    .build()
    .unwrap();
    let app = crudauth_tests::http::demo_routes(&auth);
    let t = TestApp {
        app,
        auth,
        tdb: t.tdb,
    };
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    let r = t
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({ "password": PW })),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .send(
            Req::post("/api-keys")
                .session(&s)
                .json(json!({ "name": "bench" })),
        )
        .await;
    assert_eq!(r.status, 201);
    let key = r.json["key"].as_str().unwrap().to_owned();
    (t, s, key)
}

fn transports(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (memory, session, key) = rt.block_on(setup("bench_transports", false));
    let (table, _, table_key) = rt.block_on(setup("bench_transports_table", true));
    let (access, _) = rt.block_on(memory.token("ann", PW, "me:read"));
    // The deny list of `POST /logout` with a bearer token, 10,000 entries long: it is read in
    // the generation's round trip, so a live token costs what it did before.
    let (denied_app, _, _) = rt.block_on(setup("bench_transports_denied", false));
    let (live, _) = rt.block_on(denied_app.token("ann", PW, "me:read"));
    rt.block_on(async {
        let revocation = denied_app.auth.revocation();
        let exp = crudauth_tests::unix_now() + 3600;
        for i in 0..10_000 {
            revocation
                .deny_access_token(&format!("bench-{i}"), exp)
                .await
                .unwrap();
        }
    });

    let mut g = c.benchmark_group("one authenticated request (GET /whoami)");
    let mut run = |name: &str, app: &axum::Router, req: Req, via: &'static str| {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let r = send(app, req.clone_req()).await;
                assert_eq!(r.json["via"], via);
            })
        });
    };
    run(
        "bearer JWT (baseline)",
        &memory.app,
        Req::get("/whoami").bearer(&access),
        "bearer",
    );
    run(
        "bearer JWT, 10,000 tokens on the deny list",
        &denied_app.app,
        Req::get("/whoami").bearer(&live),
        "bearer",
    );
    run(
        "session cookie",
        &memory.app,
        Req::get("/whoami").session(&session),
        "session",
    );
    run(
        "API key, memory key store",
        &memory.app,
        Req::get("/whoami").header("x-api-key", &key),
        "api_key",
    );
    run(
        "API key, SQLite key table",
        &table.app,
        Req::get("/whoami").header("x-api-key", &table_key),
        "api_key",
    );
    g.finish();
    rt.block_on(async {
        memory.auth.background().flush().await;
        table.auth.background().flush().await;
    });
}

criterion_group!(benches, transports);
criterion_main!(benches);
