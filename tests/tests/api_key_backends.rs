//! The API key backend matrix: the key table (`SeaApiKeyStore`) on SQLite, PostgreSQL and
//! MariaDB, migrated up and down, with its rotation compare-and-set and its once-a-minute
//! use record under concurrency; and a key made, used, rotated and revoked through the
//! router with the key table and the rate-limit store of every backend.

use std::sync::Arc;

use crudauth::api_key::{ApiKeyConfig, ApiKeyStore, StoredApiKey};
use crudauth_sea::{API_KEY_TABLE, CreateApiKeyTable, SeaApiKeyStore, SeaUserRepository};
use crudauth_tests::http::{Req, User, default_builder, demo_routes, send};
use crudauth_tests::models::users;
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use sea_orm_migration::prelude::*;
use serde_json::json;

struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateApiKeyTable::default())]
    }
}

fn stored(id: &str, user: &str, at: i64) -> StoredApiKey {
    StoredApiKey {
        id: id.into(),
        user_id: user.into(),
        name: "CI ünïcode".into(),
        scopes: vec!["reports:read".into()],
        secret_hash: "a".repeat(64),
        previous_hash: None,
        previous_until: None,
        allowed_ips: vec!["203.0.113.0/24".into()],
        epoch: 3,
        service: false,
        created_by: user.into(),
        created_at: at,
        expires_at: Some(at + 60),
        last_used_at: None,
        tenant: Some("acme ünïcode".into()),
    }
}

#[tokio::test]
async fn the_key_table_keeps_ids_unique_and_rotations_single_on_every_database() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "api_key_table").await else {
            continue;
        };
        Migrator::up(&tdb.db, None).await.unwrap();
        let store = Arc::new(SeaApiKeyStore::new(tdb.db.clone(), API_KEY_TABLE));
        let a = stored("00000000000000aa", "7", 1);
        assert!(store.insert(&a).await.unwrap(), "{backend:?}");
        assert!(!store.insert(&a).await.unwrap(), "{backend:?}: one id once");
        let mut service = stored("00000000000000bb", "7", 2);
        service.service = true;
        service.expires_at = None;
        assert!(store.insert(&service).await.unwrap());
        assert!(
            store
                .insert(&stored("00000000000000cc", "8", 3))
                .await
                .unwrap()
        );
        assert_eq!(
            store.find("00000000000000aa").await.unwrap(),
            Some(a.clone()),
            "{backend:?}: a round trip"
        );
        assert_eq!(
            store.find("00000000000000AA").await.unwrap(),
            None,
            "{backend:?}: no collation folding"
        );
        let mine: Vec<_> = store
            .for_user("7")
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(
            mine,
            ["00000000000000aa", "00000000000000bb"],
            "{backend:?}"
        );

        // Ten concurrent rotations from one secret: exactly one wins.
        let rotations = (0..10).map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                s.rotate(
                    "00000000000000aa",
                    &"a".repeat(64),
                    &format!("{i:0>64}"),
                    Some(500),
                )
                .await
                .unwrap()
            })
        });
        let mut won = 0;
        for r in rotations.collect::<Vec<_>>() {
            won += usize::from(r.await.unwrap());
        }
        assert_eq!(won, 1, "{backend:?}");
        let rotated = store.find("00000000000000aa").await.unwrap().unwrap();
        assert_eq!(
            rotated.previous_hash.as_deref(),
            Some("a".repeat(64).as_str())
        );
        assert_eq!(rotated.previous_until, Some(500));
        assert_ne!(rotated.secret_hash, "a".repeat(64));
        // A rotation without overlap drops the previous secret.
        assert!(
            store
                .rotate(
                    "00000000000000aa",
                    &rotated.secret_hash,
                    &"f".repeat(64),
                    None
                )
                .await
                .unwrap()
        );
        let again = store.find("00000000000000aa").await.unwrap().unwrap();
        assert_eq!(
            (again.previous_hash, again.previous_until),
            (None, None),
            "{backend:?}"
        );

        // Concurrent uses within a minute: one write.
        let touches = (0..10).map(|i| {
            let s = store.clone();
            tokio::spawn(async move { s.touch("00000000000000cc", 1000 + i, 940).await.unwrap() })
        });
        let mut written = 0;
        for t in touches.collect::<Vec<_>>() {
            written += usize::from(t.await.unwrap());
        }
        assert_eq!(written, 1, "{backend:?}");
        assert!(!store.touch("00000000000000cc", 1030, 970).await.unwrap());
        assert!(
            store.touch("00000000000000cc", 1100, 1040).await.unwrap(),
            "{backend:?}: a minute later"
        );

        assert!(
            !store.delete("8", "00000000000000aa").await.unwrap(),
            "{backend:?}: not the owner"
        );
        assert!(store.delete("7", "00000000000000aa").await.unwrap());
        assert_eq!(store.delete_all("7").await.unwrap(), 1);
        assert_eq!(store.for_user("8").await.unwrap().len(), 1);
        Migrator::down(&tdb.db, None).await.unwrap();
        assert!(
            store.find("00000000000000cc").await.is_err(),
            "{backend:?}: the table is gone"
        );
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn a_key_works_through_the_router_with_every_store_and_database_of_the_matrix() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "api_key_matrix_db").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        SeaApiKeyStore::create_table(&tdb.db, API_KEY_TABLE)
            .await
            .unwrap();
        for store in all_stores("api_key_matrix").await {
            let keys = Arc::new(SeaApiKeyStore::new(tdb.db.clone(), API_KEY_TABLE));
            let repo = SeaUserRepository::<User>::new(tdb.db.clone());
            let auth = default_builder(repo)
                .store(store.store.clone())
                .api_keys(ApiKeyConfig::default().store(keys))
                .build()
                .unwrap();
            let app = demo_routes(&auth);
            let label = format!("{backend:?}/{}", store.name);
            let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            let pw = "a long password 1";
            let r = send(&app, Req::post("/register").json(json!({ "email": format!("{name}@example.com"), "username": name, "password": pw }))).await;
            assert_eq!(r.status, 202, "{label}");
            let r = send(
                &app,
                Req::post("/login").form(&[("username", name.as_str()), ("password", pw)]),
            )
            .await;
            let csrf = r.cookies()["csrf_token"].0.clone();
            let cookie = format!("session_id={}", r.cookies()["session_id"].0);
            let r = send(
                &app,
                Req::post("/sudo")
                    .header("cookie", &cookie)
                    .header("x-csrf-token", &csrf)
                    .json(json!({ "password": pw })),
            )
            .await;
            let cookie = format!("session_id={}", r.cookies()["session_id"].0);
            let with = |req: Req| req.header("cookie", &cookie).header("x-csrf-token", &csrf);
            let r = send(
                &app,
                with(Req::post("/api-keys"))
                    .json(json!({ "name": "CI", "scopes": ["reports:read"] })),
            )
            .await;
            assert_eq!(r.status, 201, "{label}: {:?}", r.json);
            let key = r.json["key"].as_str().unwrap().to_owned();
            let id = r.json["id"].as_str().unwrap().to_owned();
            let r = send(&app, Req::get("/whoami").header("x-api-key", &key)).await;
            assert_eq!(
                (r.status.as_u16(), r.json["via"].as_str()),
                (200, Some("api_key")),
                "{label}"
            );
            let r = send(&app, with(Req::post(&format!("/api-keys/{id}/rotate")))).await;
            assert_eq!(r.status, 200, "{label}: {:?}", r.json);
            let new = r.json["key"].as_str().unwrap().to_owned();
            assert_eq!(
                send(&app, Req::get("/whoami").header("x-api-key", &key))
                    .await
                    .status,
                401,
                "{label}"
            );
            assert_eq!(
                send(&app, Req::get("/whoami").bearer(&new)).await.status,
                200,
                "{label}"
            );
            let r = send(
                &app,
                with(Req::new(
                    axum::http::Method::DELETE,
                    &format!("/api-keys/{id}"),
                )),
            )
            .await;
            assert_eq!(r.status, 204, "{label}");
            assert_eq!(
                send(&app, Req::get("/whoami").bearer(&new)).await.status,
                401,
                "{label}"
            );
            auth.background().flush().await;
        }
        tdb.cleanup().await;
    }
}
