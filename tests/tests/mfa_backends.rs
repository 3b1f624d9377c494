//! The two-factor backend matrix: the factor tables (`SeaFactorStore`) on SQLite, PostgreSQL
//! and MariaDB, migrated up and down, with their single-use steps under concurrency; and a
//! whole sign-in with a second factor with the challenge in every store of the matrix.

use std::sync::Arc;

use crudauth::mfa::{FactorStore, MfaConfig};
use crudauth_sea::{CreateFactorTables, FactorTables, SeaFactorStore, SeaUserRepository};
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
        vec![Box::new(CreateFactorTables::default())]
    }
}

#[tokio::test]
async fn the_factor_tables_keep_every_step_and_code_single_use_on_every_database() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "mfa_factor_tables").await else {
            continue;
        };
        Migrator::up(&tdb.db, None).await.unwrap();
        let store = Arc::new(SeaFactorStore::new(tdb.db.clone(), FactorTables::default()));
        assert_eq!(store.get("7").await.unwrap(), None);
        store.set_pending("7", "pending-1", 100).await.unwrap();
        store.set_pending("7", "pending-2", 200).await.unwrap();
        let f = store.get("7").await.unwrap().unwrap();
        assert_eq!(
            (f.pending.as_deref(), f.pending_expires_at, f.enabled()),
            (Some("pending-2"), Some(200), false)
        );
        assert!(
            store.activate("7", "sealed", 10, 5).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            !store.activate("7", "again", 11, 6).await.unwrap(),
            "{backend:?}: activates once"
        );
        let f = store.get("7").await.unwrap().unwrap();
        assert_eq!(
            (f.secret.as_deref(), f.pending, f.last_step),
            (Some("sealed"), None, Some(10))
        );
        assert!(
            !store.reseal("7", "not-it", "x").await.unwrap(),
            "{backend:?}: compare-and-set"
        );
        assert!(store.reseal("7", "sealed", "sealed-again").await.unwrap());
        assert_eq!(
            store.get("7").await.unwrap().unwrap().secret.as_deref(),
            Some("sealed-again")
        );
        assert!(
            !store.claim_step("7", 10).await.unwrap(),
            "{backend:?}: the confirm step is spent"
        );
        assert!(
            !store.claim_step("7", 9).await.unwrap(),
            "{backend:?}: an older step"
        );
        // Ten concurrent claims of one new step: exactly one wins.
        let claims = (0..10).map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.claim_step("7", 11).await.unwrap() })
        });
        let won = futures_count(claims).await;
        assert_eq!(won, 1, "{backend:?}");
        store
            .set_recovery("7", &["a".repeat(64), "b".repeat(64)])
            .await
            .unwrap();
        assert_eq!(store.recovery_left("7").await.unwrap(), 2);
        let uses = (0..10).map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.use_recovery("7", &"a".repeat(64)).await.unwrap() })
        });
        assert_eq!(
            futures_count(uses).await,
            1,
            "{backend:?}: one redemption of a code wins"
        );
        assert!(
            !store.use_recovery("70", &"b".repeat(64)).await.unwrap(),
            "{backend:?}: another user"
        );
        assert_eq!(store.recovery_left("7").await.unwrap(), 1);
        // Ids that MariaDB's collation would call equal are different users here.
        store.set_pending("jose", "p-jose", 100).await.unwrap();
        for variant in ["José", "JOSE", "jose "] {
            assert_eq!(
                store.get(variant).await.unwrap(),
                None,
                "{backend:?}: {variant:?}"
            );
            assert!(
                store.activate(variant, "s", 1, 1).await.unwrap(),
                "{backend:?}: {variant:?} has a row of its own"
            );
        }
        assert_eq!(
            store.get("jose").await.unwrap().unwrap().secret,
            None,
            "{backend:?}: jose untouched"
        );
        assert!(store.remove("7").await.unwrap());
        assert_eq!(store.get("7").await.unwrap(), None);
        assert_eq!(store.recovery_left("7").await.unwrap(), 0);
        Migrator::down(&tdb.db, None).await.unwrap();
        assert!(
            store.get("7").await.is_err(),
            "{backend:?}: the tables are gone"
        );
        tdb.cleanup().await;
    }
}

async fn futures_count(tasks: impl Iterator<Item = tokio::task::JoinHandle<bool>>) -> usize {
    let mut won = 0;
    for task in tasks.collect::<Vec<_>>() {
        won += usize::from(task.await.unwrap());
    }
    won
}

#[tokio::test]
async fn a_second_factor_sign_in_works_with_every_store_and_database_of_the_matrix() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "mfa_matrix_db").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        SeaFactorStore::create_tables(&tdb.db, &FactorTables::default())
            .await
            .unwrap();
        for store in all_stores("mfa_matrix").await {
            let factors = Arc::new(SeaFactorStore::new(tdb.db.clone(), FactorTables::default()));
            let repo = SeaUserRepository::<User>::new(tdb.db.clone());
            let auth = default_builder(repo)
                .store(store.store.clone())
                .mfa(MfaConfig::new("matrix").factors(factors))
                .build()
                .unwrap();
            let app = demo_routes(&auth);
            let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            let pw = "a long password 1";
            let r = send(&app, Req::post("/register").json(json!({ "email": format!("{name}@example.com"), "username": name, "password": pw }))).await;
            assert_eq!(r.status, 202);
            let login = || {
                send(
                    &app,
                    Req::post("/login").form(&[("username", name.as_str()), ("password", pw)]),
                )
            };
            let r = login().await;
            let sid = r.cookies()["session_id"].0.clone();
            let csrf = r.cookies()["csrf_token"].0.clone();
            let with = |req: Req| {
                req.header("cookie", format!("session_id={sid}"))
                    .header("x-csrf-token", &csrf)
            };
            let r = send(
                &app,
                with(Req::post("/mfa/totp/setup")).json(json!({ "password": pw })),
            )
            .await;
            let secret = r.json["secret"]
                .as_str()
                .unwrap_or_else(|| panic!("{backend:?}/{}: {:?}", store.name, r.json))
                .to_owned();
            let now = crudauth_tests::unix_now();
            let totp = |t: u64| crudauth_tests::totp_code(&secret, t);
            let r = send(
                &app,
                with(Req::post("/mfa/totp/confirm")).json(json!({ "code": totp(now - 30) })),
            )
            .await;
            assert_eq!(r.status, 200, "{backend:?}/{}: {:?}", store.name, r.json);
            let recovery = r.json["recovery_codes"][0].as_str().unwrap().to_owned();
            let r = login().await;
            let challenge = r.json["challenge"].as_str().unwrap().to_owned();
            // Two different right answers at once (a TOTP code and a recovery code): only
            // the single-use claim of the challenge keeps it to one sign-in.
            let by_totp = json!({ "challenge": challenge, "code": totp(now) });
            let by_recovery = json!({ "challenge": challenge, "code": recovery });
            let (a, b) = tokio::join!(
                send(&app, Req::post("/mfa/verify").json(by_totp)),
                send(&app, Req::post("/mfa/verify").json(by_recovery))
            );
            let won = [&a, &b].iter().filter(|r| r.status == 200).count();
            assert_eq!(
                won, 1,
                "{backend:?}/{}: {:?} {:?}",
                store.name, a.json, b.json
            );
            store.cleanup().await;
        }
        tdb.cleanup().await;
    }
}
