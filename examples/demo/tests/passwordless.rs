//! The demo's passwordless sign-in end to end: a code from the email outbox, the magic-link
//! page, and (after an administrator set the phone number) a code from the SMS outbox.

mod common;

use serde_json::{Value, json};

/// The newest line of `kind` in a JSON-lines outbox, waiting (up to 10 s) for it.
async fn newest(outbox: &std::path::Path, kind: &str) -> Value {
    for _ in 0..200 {
        let found = std::fs::read_to_string(outbox)
            .unwrap_or_default()
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m["kind"] == kind);
        if let Some(found) = found {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {kind} in {}", outbox.display());
}

#[tokio::test]
async fn the_demo_signs_in_by_emailed_and_texted_codes() {
    let port = common::free_port();
    let dir = std::env::temp_dir().join(format!("crudauth-demo-pl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let (mail, sms) = (dir.join("mail.jsonl"), dir.join("sms.jsonl"));
    let admin_pw = "the admin has a long pass";
    let env = [
        ("CRUDAUTH_DEMO_OUTBOX", mail.to_str().unwrap()),
        ("CRUDAUTH_DEMO_SMS_OUTBOX", sms.to_str().unwrap()),
        ("CRUDAUTH_DEFAULT_ADMIN_EMAIL", "admin@example.com"),
        ("CRUDAUTH_DEFAULT_ADMIN_PASSWORD", admin_pw),
    ];
    let _demo = common::spawn(port, &["--database", &url], &env).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(format!("{base}{path}")).json(&body).send();
    let r = post("/register", json!({ "email": "dora@example.com", "username": "dora", "password": "dora has a long pass" })).await.unwrap();
    assert_eq!(r.status(), 202);
    // By email: the code signs in.
    let r = post("/otp/request", json!({ "email": "dora@example.com" }))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let line = newest(&mail, "sign_in_code").await;
    let code = line["code"].as_str().unwrap();
    assert!(
        line["link"]
            .as_str()
            .unwrap()
            .contains("/magic-link?token=")
    );
    let r = post(
        "/otp/verify",
        json!({ "email": "dora@example.com", "code": code }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        common::cookie_of(&r, "session_id").is_some()
            || common::cookie_of(&r, "__Host-session_id").is_some()
    );
    let dora: Value = r.json().await.unwrap();
    // The page a magic link opens.
    let page = http
        .get(format!("{base}/magic-link?token=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    // An administrator (under sudo) gives Dora a phone number; a texted code signs in.
    let r = http
        .post(format!("{base}/login"))
        .form(&[("username", "admin@example.com"), ("password", admin_pw)])
        .send()
        .await
        .unwrap();
    let sid = common::cookie_of(&r, "session_id").unwrap();
    let csrf = common::cookie_of(&r, "csrf_token").unwrap();
    let r = http
        .post(format!("{base}/sudo"))
        .header("cookie", format!("session_id={sid}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "password": admin_pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sid = common::cookie_of(&r, "session_id").unwrap();
    let r = http
        .post(format!("{base}/admin/users/{}/phone", dora["id"]))
        .header("cookie", format!("session_id={sid}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "phone": "+1 555 010 9999" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = post("/otp/request", json!({ "phone": "+15550109999" }))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = newest(&sms, "sign_in_code").await;
    assert_eq!(text["to"], "+15550109999");
    let code = text["code"].as_str().unwrap();
    let r = post(
        "/otp/verify",
        json!({ "phone": "+15550109999", "code": code, "response": "token" }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let pair: Value = r.json().await.unwrap();
    assert!(pair["access_token"].is_string(), "{pair}");
    let _ = std::fs::remove_dir_all(dir);
}
