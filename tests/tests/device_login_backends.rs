//! The device login backend matrix: the whole flow, two approvers racing and concurrent
//! polls racing, with the challenges in every store of the matrix (memory, the database
//! store on SQLite, PostgreSQL and MariaDB, Redis) and the users in every database.

use crudauth::device_login::DeviceLoginConfig;
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{Req, User, default_builder, demo_routes, send};
use crudauth_tests::models::users;
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use serde_json::json;

const PW: &str = "a long password 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_logins_are_approved_once_and_redeemed_once_with_every_store_and_database() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "device_login_matrix_db").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        for store in all_stores("device_login_matrix").await {
            let label = format!("{backend:?}/{}", store.name);
            let repo = SeaUserRepository::<User>::new(tdb.db.clone());
            let auth = default_builder(repo)
                .store(store.store.clone())
                .device_login(DeviceLoginConfig::default())
                .build()
                .unwrap();
            let app = demo_routes(&auth);
            let mut sessions = Vec::new();
            for _ in 0..2 {
                let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                let email = format!("{name}@example.com");
                let body = json!({ "email": email, "username": name, "password": PW });
                let r = send(&app, Req::post("/register").json(body)).await;
                assert_eq!(r.status, 202, "{label}");
                let r = send(
                    &app,
                    Req::post("/login").form(&[("username", &name), ("password", PW)]),
                )
                .await;
                assert_eq!(r.status, 200, "{label}");
                let cookies = r.cookies();
                let session = crudauth_tests::http::Session {
                    id: cookies["session_id"].0.clone(),
                    csrf: cookies["csrf_token"].0.clone(),
                };
                sessions.push((name, session));
            }

            let r = send(&app, Req::post("/auth/cli-login")).await;
            assert_eq!(r.status, 200, "{label}");
            let c = r.json;
            let path = format!("/auth/cli-login/{}", c["code"].as_str().unwrap());
            let poll = Req::get(&format!("{path}?secret={}", c["secret"].as_str().unwrap()));
            let r = send(&app, poll.clone_req()).await;
            assert_eq!(r.json["status"], "pending", "{label}: {:?}", r.json);
            let r = send(&app, poll.clone_req()).await;
            assert_eq!(r.status, 429, "{label}: slow_down");

            // Two approvers at once: one wins.
            let approve = |s: &crudauth_tests::http::Session| {
                Req::new(axum::http::Method::PATCH, &path)
                    .json(json!({ "user_code": c["user_code"] }))
                    .session(s)
            };
            let (a, b) = tokio::join!(
                send(&app, approve(&sessions[0].1)),
                send(&app, approve(&sessions[1].1))
            );
            let mut statuses = [a.status.as_u16(), b.status.as_u16()];
            statuses.sort_unstable();
            assert_eq!(statuses, [200, 409], "{label}: {:?} {:?}", a.json, b.json);
            let winner = if a.status == 200 { 0 } else { 1 };

            // Concurrent polls: one pair.
            let mut polls = tokio::task::JoinSet::new();
            for _ in 0..6 {
                let (app, req) = (app.clone(), poll.clone_req());
                polls.spawn(async move { send(&app, req).await });
            }
            let answers = polls.join_all().await;
            let won: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
            let lost = answers.iter().filter(|r| r.status == 404).count();
            assert_eq!((won.len(), lost), (1, 5), "{label}: {answers:?}");
            let access = won[0].json["access_token"].as_str().unwrap();
            let me = send(&app, Req::get("/me").bearer(access)).await;
            assert_eq!(me.json["username"], sessions[winner].0, "{label}");
            let refresh = won[0].json["refresh_token"].as_str().unwrap();
            let r = send(
                &app,
                Req::post("/refresh").json(json!({ "refresh_token": refresh })),
            )
            .await;
            assert_eq!(r.status, 200, "{label}");
            assert_eq!(send(&app, poll).await.status, 404, "{label}: redeemed");
            store.cleanup().await;
        }
        tdb.cleanup().await;
    }
}
