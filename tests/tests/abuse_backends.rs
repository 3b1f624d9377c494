//! The CAPTCHA's failed-login counter on every store of the matrix (memory, the database
//! store on SQLite, PostgreSQL and MariaDB, Redis): failures counted by one process make
//! another process sharing the store ask, per client address, until the window ends.

use std::time::Duration;

use crudauth::captcha::CaptchaConfig;
use crudauth::captcha::siteverify::Turnstile;
use crudauth::{CrudAuth, LockoutConfig};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::fake_captcha::{CAPTCHA_SECRET, FakeCaptcha};
use crudauth_tests::http::{Req, User, default_builder, demo_routes, send};
use crudauth_tests::models::users;
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use serde_json::json;

const PW: &str = "a long password 1";

fn login(name: &str, password: &str, peer: [u8; 4]) -> Req {
    Req::post("/login")
        .form(&[("username", name), ("password", password)])
        .peer(peer)
}

#[tokio::test]
async fn failed_logins_counted_by_one_process_make_another_ask_on_every_store() {
    let fake = FakeCaptcha::start().await;
    let tdb = open(Backend::Sqlite, "abuse_counter_users").await.unwrap();
    tdb.create_table(users::Entity).await;
    let mut checked = Vec::new();
    for store in all_stores("abuse_counter").await {
        let label = store.name.clone();
        // Two processes: the same user table, the same store.
        let process = || -> CrudAuth<User> {
            let config = CaptchaConfig::new(
                Turnstile::new(CAPTCHA_SECRET).verify_url(fake.url("turnstile")),
            )
            .after_failed_logins(2, Duration::from_secs(2));
            default_builder(SeaUserRepository::<User>::new(tdb.db.clone()))
                .store(store.store.clone())
                .lockout(LockoutConfig {
                    max_attempts: 50,
                    ip_max_attempts: 50,
                    account_max_attempts: 50,
                    ..LockoutConfig::default()
                })
                .captcha(config)
                .build()
                .unwrap()
        };
        let (a, b) = (demo_routes(&process()), demo_routes(&process()));
        let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let r = send(
            &a,
            Req::post("/register").json(
                json!({ "email": format!("{name}@example.com"), "username": name, "password": PW }),
            ),
        )
        .await;
        assert_eq!(r.status, 202, "{label}");
        let attacker = [198, 51, 100, 20];
        let bystander = [198, 51, 100, 21];
        for _ in 0..2 {
            let r = send(&a, login(&name, "wrong password", attacker)).await;
            assert_eq!(r.status, 401, "{label}: {:?}", r.json);
        }
        let r = send(&b, login(&name, PW, attacker)).await;
        assert_eq!(
            r.status, 403,
            "{label}: the other process asks: {:?}",
            r.json
        );
        assert_eq!(r.json["detail"], "captcha_required", "{label}");
        let r = send(&b, login(&name, PW, bystander)).await;
        assert_eq!(r.status, 200, "{label}: another address is not asked");
        let r = send(
            &b,
            login(&name, PW, attacker).header("x-captcha-token", fake.good("login")),
        )
        .await;
        assert_eq!(r.status, 200, "{label}: a solved CAPTCHA passes");
        // The window ends: the address is no longer asked.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let r = send(&a, login(&name, PW, attacker)).await;
        assert_eq!(r.status, 200, "{label}: after the window: {:?}", r.json);
        checked.push(label);
        store.cleanup().await;
    }
    eprintln!("abuse_backends: checked {checked:?}");
    tdb.cleanup().await;
}
