//! The passkey backend matrix: the passkey table (`SeaPasskeyStore`) on SQLite, PostgreSQL
//! and MariaDB, migrated up and down, its counter compare-and-set under concurrency; and a
//! whole registration and sign-in with the ceremony state in every store of the matrix.

use std::sync::Arc;

use crudauth::passkey::{PasskeyConfig, PasskeyStore, StoredPasskey};
use crudauth_sea::{CreatePasskeyTable, PASSKEY_TABLE, SeaPasskeyStore, SeaUserRepository};
use crudauth_tests::http::{Req, User, default_builder, demo_routes, send};
use crudauth_tests::models::users;
use crudauth_tests::passkey_client::{ORIGIN, RP_ID, SoftAuthenticator};
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use sea_orm_migration::prelude::*;
use serde_json::json;

struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreatePasskeyTable::default())]
    }
}

fn passkey(id: &str, user: &str, at: i64) -> StoredPasskey {
    StoredPasskey {
        credential_id: id.into(),
        user_id: user.into(),
        user_handle: uuid::Uuid::new_v4(),
        name: "Laptop".into(),
        passkey: "{\"cred\":1}".into(),
        counter: 0,
        created_at: at,
        last_used_at: None,
    }
}

#[tokio::test]
async fn the_passkey_table_keeps_ids_unique_and_counters_moving_on_every_database() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "passkey_table").await else {
            continue;
        };
        Migrator::up(&tdb.db, None).await.unwrap();
        let store = Arc::new(SeaPasskeyStore::new(tdb.db.clone(), PASSKEY_TABLE));
        // Credential ids are case-sensitive base64: a collation must not merge them.
        assert!(
            store.insert(&passkey("AbC-1", "7", 1)).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            store.insert(&passkey("abc-1", "7", 2)).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            store.insert(&passkey("abc-1 ", "8", 3)).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            !store.insert(&passkey("AbC-1", "8", 4)).await.unwrap(),
            "{backend:?}: one owner per credential"
        );
        let found = store.find("AbC-1").await.unwrap().unwrap();
        assert_eq!((found.user_id.as_str(), found.counter), ("7", 0));
        assert_eq!(store.find("ABC-1").await.unwrap(), None, "{backend:?}");
        let mine = store.for_user("7").await.unwrap();
        assert_eq!(
            mine.iter()
                .map(|p| p.credential_id.as_str())
                .collect::<Vec<_>>(),
            ["AbC-1", "abc-1"],
            "{backend:?}"
        );
        // Ten concurrent uses at one counter value: exactly one is recorded.
        let uses = (0..10).map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                s.record_use("AbC-1", 0, 5, "{\"cred\":2}", 100 + i)
                    .await
                    .unwrap()
            })
        });
        let mut won = 0;
        for u in uses.collect::<Vec<_>>() {
            won += usize::from(u.await.unwrap());
        }
        assert_eq!(won, 1, "{backend:?}");
        let found = store.find("AbC-1").await.unwrap().unwrap();
        assert_eq!((found.counter, found.passkey.as_str()), (5, "{\"cred\":2}"));
        assert!(found.last_used_at.is_some());
        // A counterless authenticator used twice in one second is still recorded.
        assert!(
            store
                .record_use("abc-1", 0, 0, "{\"cred\":1}", 7)
                .await
                .unwrap()
        );
        assert!(
            store
                .record_use("abc-1", 0, 0, "{\"cred\":1}", 7)
                .await
                .unwrap(),
            "{backend:?}"
        );
        assert!(store.rename("7", "abc-1", "Phone").await.unwrap());
        assert!(
            store.rename("7", "abc-1", "Phone").await.unwrap(),
            "{backend:?}: same name"
        );
        assert!(
            !store.rename("8", "abc-1", "Mine").await.unwrap(),
            "{backend:?}: not the owner"
        );
        assert!(
            !store.delete("8", "abc-1").await.unwrap(),
            "{backend:?}: not the owner"
        );
        assert!(store.delete("7", "abc-1").await.unwrap());
        assert_eq!(store.delete_all("7").await.unwrap(), 1);
        assert_eq!(store.for_user("8").await.unwrap().len(), 1);
        Migrator::down(&tdb.db, None).await.unwrap();
        assert!(
            store.find("abc-1 ").await.is_err(),
            "{backend:?}: the table is gone"
        );
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn a_passkey_registers_and_signs_in_with_every_store_and_database_of_the_matrix() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "passkey_matrix_db").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        SeaPasskeyStore::create_table(&tdb.db, PASSKEY_TABLE)
            .await
            .unwrap();
        for store in all_stores("passkey_matrix").await {
            let passkeys = Arc::new(SeaPasskeyStore::new(tdb.db.clone(), PASSKEY_TABLE));
            let repo = SeaUserRepository::<User>::new(tdb.db.clone());
            let auth = default_builder(repo)
                .store(store.store.clone())
                .passkeys(PasskeyConfig::new(RP_ID, ORIGIN).store(passkeys))
                .build()
                .unwrap();
            let app = demo_routes(&auth);
            let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            let pw = "a long password 1";
            let r = send(&app, Req::post("/register").json(json!({ "email": format!("{name}@example.com"), "username": name, "password": pw }))).await;
            assert_eq!(r.status, 202);
            let user = auth.repo().find_by_login(&name).await.unwrap().unwrap();
            let verified = crudauth::user::UserUpdate {
                email_verified: Some(true),
                ..Default::default()
            };
            let uid = crudauth::UserRecord::user_id(&user);
            auth.repo().update(&uid, verified).await.unwrap();
            let login = Req::post("/login").form(&[("username", name.as_str()), ("password", pw)]);
            let r = send(&app, login).await;
            let csrf = r.cookies()["csrf_token"].0.clone();
            let sudo = Req::post("/sudo")
                .header(
                    "cookie",
                    format!("session_id={}", r.cookies()["session_id"].0),
                )
                .header("x-csrf-token", &csrf)
                .json(json!({ "password": pw }));
            let r = send(&app, sudo).await;
            let sid = r.cookies()["session_id"].0.clone();
            let with = |req: Req| {
                req.header("cookie", format!("session_id={sid}"))
                    .header("x-csrf-token", &csrf)
            };
            let mut device = SoftAuthenticator::new();
            let r = send(&app, with(Req::post("/passkeys/register/start"))).await;
            let label = format!("{backend:?}/{}", store.name);
            assert_eq!(r.status, 200, "{label}: {:?}", r.json);
            let credential = device.register(ORIGIN, &r.json["options"]).unwrap();
            let body = json!({ "ceremony": r.json["ceremony"], "credential": credential });
            let r = send(
                &app,
                with(Req::post("/passkeys/register/finish")).json(body),
            )
            .await;
            assert_eq!(r.status, 201, "{label}: {:?}", r.json);
            for username in [None, Some(name.as_str())] {
                let r = send(
                    &app,
                    Req::post("/passkeys/login/start").json(json!({ "username": username })),
                )
                .await;
                let credential = device.sign(ORIGIN, &r.json["options"]).unwrap();
                let body = json!({ "ceremony": r.json["ceremony"], "credential": credential });
                let (a, b) = tokio::join!(
                    send(&app, Req::post("/passkeys/login/finish").json(body.clone())),
                    send(&app, Req::post("/passkeys/login/finish").json(body))
                );
                let won = [&a, &b].iter().filter(|r| r.status == 200).count();
                assert_eq!(won, 1, "{label}: {:?} {:?}", a.json, b.json);
            }
            store.cleanup().await;
        }
        tdb.cleanup().await;
    }
}
