//! The passwordless backend matrix: a code and a magic link, each raced against itself,
//! with the codes in every store of the matrix (memory, the database store on SQLite,
//! PostgreSQL and MariaDB, Redis) and the users in every database.

use std::sync::Arc;

use crudauth::passwordless::PasswordlessConfig;
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{
    FRONTEND, Req, User, default_builder, demo_routes, mails, outbox_path, send,
};
use crudauth_tests::models::users;
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use serde_json::json;

#[tokio::test]
async fn codes_and_links_are_single_use_with_every_store_and_database_of_the_matrix() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "passwordless_matrix_db").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        for store in all_stores("passwordless_matrix").await {
            let label = format!("{backend:?}/{}", store.name);
            let outbox = outbox_path("passwordless_matrix");
            let repo = SeaUserRepository::<User>::new(tdb.db.clone());
            let auth = default_builder(repo)
                .store(store.store.clone())
                .email_sender(Arc::new(crudauth::delivery::OutboxSender::new(&outbox)))
                .passwordless(PasswordlessConfig::new(FRONTEND))
                .build()
                .unwrap();
            let app = demo_routes(&auth);
            let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            let email = format!("{name}@example.com");
            let r = send(
                &app,
                Req::post("/register").json(
                    json!({ "email": email, "username": name, "password": "a long password 1" }),
                ),
            )
            .await;
            assert_eq!(r.status, 202);
            for round in ["code", "link"] {
                let r = send(
                    &app,
                    Req::post("/otp/request").json(json!({ "email": email })),
                )
                .await;
                assert_eq!(r.status, 200, "{label}");
                let all = mails(&auth, &outbox).await;
                let mail = all
                    .iter()
                    .rev()
                    .find(|m| m["kind"] == "sign_in_code")
                    .unwrap();
                let request = if round == "code" {
                    Req::post("/otp/verify").json(json!({ "email": email, "code": mail["code"] }))
                } else {
                    let link = mail["link"].as_str().unwrap();
                    let token = link.split_once("?token=").unwrap().1;
                    Req::post("/magic-link/verify").json(json!({ "token": token }))
                };
                let (a, b) = tokio::join!(send(&app, request.clone_req()), send(&app, request));
                let won = [&a, &b].iter().filter(|r| r.status == 200).count();
                assert_eq!(won, 1, "{label} {round}: {:?} {:?}", a.json, b.json);
            }
            let _ = std::fs::remove_file(outbox);
            store.cleanup().await;
        }
        tdb.cleanup().await;
    }
}
