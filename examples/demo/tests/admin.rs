//! `crudauth-demo create-admin`: a superuser made from a prompt (standard input here, as a
//! script would drive it), who then signs in to the running demo and lists `/users`; a weak
//! password, differing passwords and a taken address without `--promote` are refused.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{FORM, free_port, http, spawn};

const SECRET: &str = "a create-admin test secret of 32+ bytes";

/// Runs `create-admin` with `input` on standard input: (success, stdout, stderr).
fn create_admin(database: &str, extra: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(common::demo_binary())
        .arg("create-admin")
        .args(extra)
        .args(["--database", database])
        .env("RUST_LOG", "warn")
        .env("CRUDAUTH_SECRET_KEY", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the demo");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write the answers");
    let out = child.wait_with_output().expect("the demo ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn create_admin_makes_a_superuser_who_signs_in_and_lists_users() {
    let dir = std::env::temp_dir().join(format!(
        "crudauth-demo-admin-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}/admin.db?mode=rwc", dir.display());
    let password = "the root's long password";

    let (ok, _, err) = create_admin(&database, &[], "root@example.com\nshort\nshort\n");
    assert!(!ok && err.contains("password is refused"), "{err}");
    let (ok, _, err) = create_admin(
        &database,
        &[],
        "root@example.com\none long password\nanother long password\n",
    );
    assert!(!ok && err.contains("differ"), "{err}");
    let (ok, _, err) = create_admin(&database, &[], "not-an-address\n");
    assert!(!ok, "{err}");

    let input = format!("Root@Example.com\n{password}\n{password}\n");
    let (ok, out, err) = create_admin(&database, &[], &input);
    assert!(ok, "{err}");
    assert!(out.contains("created superuser root@example.com"), "{out}");
    let (ok, _, err) = create_admin(&database, &[], &input);
    assert!(!ok && err.contains("--promote"), "a taken address: {err}");

    let port = free_port();
    let demo = spawn(
        port,
        &["--database", &database],
        &[("CRUDAUTH_SECRET_KEY", SECRET)],
    )
    .await;
    // A user registers, then the address's owner is promoted with --promote.
    let body = r#"{"email":"bob@example.com","username":"bob","password":"bob's long password"}"#;
    let json = [("content-type", "application/json")];
    assert_eq!(http(port, "POST", "/register", &json, body).await.0, 202);

    let form = format!(
        "username=root%40example.com&password={}",
        password.replace(' ', "+").replace('\'', "%27")
    );
    let (status, _, body) = http(port, "POST", "/token", &[FORM], &form).await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let (status, _, body) = http(port, "GET", "/users", &[("authorization", &bearer)], "").await;
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["total"], 2, "{list}");
    let root = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "root@example.com")
        .expect("the admin is listed");
    assert_eq!(
        (
            root["is_superuser"].as_bool(),
            root["is_verified"].as_bool(),
            root["is_active"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );

    let promoted = "bob's new admin password";
    let input = format!("bob@example.com\n{promoted}\n{promoted}\n");
    // Bob never proved the address: whoever registered it first is not promoted.
    let (ok, _, err) = create_admin(&database, &["--promote"], &input);
    assert!(!ok && err.contains("never verified"), "{err}");
    // Once the address is verified (here written as the verify link would), it is.
    let db = sea_orm::Database::connect(&database).await.unwrap();
    let verify = "UPDATE accounts SET email_confirmed = 1 WHERE email_address = 'bob@example.com'";
    sea_orm::ConnectionTrait::execute_unprepared(&db, verify)
        .await
        .unwrap();
    let (ok, out, err) = create_admin(&database, &["--promote"], &input);
    assert!(
        ok && out.contains("promoted bob@example.com"),
        "{out} {err}"
    );
    drop(demo);
    let _ = std::fs::remove_dir_all(dir);
}
