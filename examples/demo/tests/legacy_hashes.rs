//! The demo pointed at an existing database whose `accounts` rows hold the old system's
//! password hashes: `users hash-report` counts them, those users sign in, and their hashes
//! are upgraded to argon2id.

mod common;

use common::{FORM, free_port, http, spawn};
use sea_orm::{ConnectionTrait, Database};

/// A vector of `tests/fixtures/legacy-hashes.json`: (password, hash).
fn vector(format: &str) -> (String, String) {
    let text = include_str!("../../../tests/fixtures/legacy-hashes.json");
    let file: serde_json::Value = serde_json::from_str(text).unwrap();
    let v = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["format"] == format)
        .unwrap();
    (
        v["password"].as_str().unwrap().to_owned(),
        v["hash"].as_str().unwrap().to_owned(),
    )
}

fn hash_report(database: &str) -> serde_json::Value {
    let out = std::process::Command::new(common::demo_binary())
        .args(["users", "hash-report", "--database", database])
        .env("RUST_LOG", "warn")
        .env(
            "CRUDAUTH_SECRET_KEY",
            "a hash-report test secret of 32+ bytes",
        )
        .output()
        .expect("run the demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report as JSON")
}

#[tokio::test]
async fn an_existing_table_with_old_hashes_signs_in_and_upgrades() {
    let dir = std::env::temp_dir().join(format!(
        "crudauth-demo-legacy-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}/old.db?mode=rwc", dir.display());
    // The old system's table, written by the old system.
    let db = Database::connect(&database).await.unwrap();
    db.execute_unprepared(
        "CREATE TABLE accounts (
            account_id INTEGER PRIMARY KEY AUTOINCREMENT,
            email_address VARCHAR(254) NOT NULL UNIQUE,
            username VARCHAR(32) UNIQUE,
            pw_hash VARCHAR NOT NULL,
            is_admin BOOLEAN NOT NULL,
            display_name VARCHAR(80)
        )",
    )
    .await
    .unwrap();
    let (bcrypt, django) = (vector("bcrypt"), vector("django"));
    for (name, v) in [("rails", &bcrypt), ("django", &django)] {
        let sql = format!(
            "INSERT INTO accounts (email_address, username, pw_hash, is_admin) \
             VALUES ('{name}@example.com', '{name}', '{}', false)",
            v.1
        );
        db.execute_unprepared(&sql).await.unwrap();
    }

    let report = hash_report(&database);
    assert_eq!(report["total"], 2);
    assert_eq!(report["counts"]["bcrypt"], 1);
    assert_eq!(report["counts"]["pbkdf2_sha256_django"], 1);

    let port = free_port();
    let demo = spawn(
        port,
        &["--database", &database],
        &[(
            "CRUDAUTH_SECRET_KEY",
            "a legacy-hash test secret of 32+ bytes",
        )],
    )
    .await;
    for (name, v) in [("rails", &bcrypt), ("django", &django)] {
        let wrong = format!("username={name}&password=not+it");
        assert_eq!(
            http(port, "POST", "/token", &[FORM], &wrong).await.0,
            401,
            "{name}"
        );
        let right = format!("username={name}&password={}", v.0.replace(' ', "+"));
        let (status, _, body) = http(port, "POST", "/token", &[FORM], &right).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    drop(demo);

    let report = hash_report(&database);
    assert_eq!(report["counts"]["argon2"], 2, "{report}");
    assert!(report["counts"].get("bcrypt").is_none(), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}
