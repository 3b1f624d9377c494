//! The demo's API keys and impersonation end to end, over real HTTP: a key made inside the
//! sudo window works after a restart (the table keeps it), and the default admin acts as a
//! user through an impersonation token that cannot make keys.

mod common;

use serde_json::{Value, json};

#[tokio::test]
async fn a_key_survives_a_restart_and_an_impersonation_token_cannot_make_one() {
    let dir = std::env::temp_dir().join(format!("crudauth-demo-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let admin_pw = "the admin has a long pass";
    let env = [
        (
            "CRUDAUTH_SECRET_KEY",
            "a demo secret key that is long enough for keys",
        ),
        ("CRUDAUTH_DEFAULT_ADMIN_EMAIL", "admin@example.com"),
        ("CRUDAUTH_DEFAULT_ADMIN_PASSWORD", admin_pw),
    ];
    let http = reqwest::Client::new();
    let port = common::free_port();
    let demo = common::spawn(port, &["--database", &url, "--store", "database"], &env).await;
    let base = format!("http://127.0.0.1:{port}");
    let pw = "dora has a long pass";
    let r = http
        .post(format!("{base}/register"))
        .json(&json!({ "email": "dora@example.com", "username": "dora", "password": pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let (sid, csrf) = common::elevated(&http, &base, "dora", pw).await;
    let r = http
        .post(format!("{base}/api-keys"))
        .header("cookie", format!("session_id={sid}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "laptop script", "scopes": ["reports:read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ca_live_"));
    drop(demo);

    // Another process on the same database and secret: the key still works. (The accounts
    // table has no token_version column, so the users' epochs live in the store: with the
    // memory store a restart would move every epoch, and end every key with it.)
    let port = common::free_port();
    let _demo = common::spawn(port, &["--database", &url, "--store", "database"], &env).await;
    let base = format!("http://127.0.0.1:{port}");
    let r = http
        .get(format!("{base}/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        (me["username"].as_str(), me["via"].as_str()),
        (Some("dora"), Some("api_key"))
    );

    // The default admin, in sudo, acts as Dora; as Dora they cannot make a key.
    let base2 = base.clone();
    let (sid, csrf) = common::elevated(&http, &base2, "admin@example.com", admin_pw).await;
    let dora = me["user_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| me["user_id"].to_string());
    let r = http
        .post(format!("{base2}/admin/users/{dora}/token"))
        .header("cookie", format!("session_id={sid}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();
    let r = http
        .get(format!("{base2}/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let as_dora: Value = r.json().await.unwrap();
    assert_eq!(as_dora["username"], "dora");
    assert!(!as_dora["impersonated_by"].is_null(), "{as_dora}");
    let r = http
        .post(format!("{base2}/api-keys"))
        .bearer_auth(access)
        .json(&json!({ "name": "backdoor" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let _ = std::fs::remove_dir_all(dir);
}
