//! The demo's two-factor sign-in end to end: enrol with the code the demo's own `totp`
//! command prints, then a sign-in that stops at the challenge and ends with a recovery code.

mod common;

use serde_json::{Value, json};

#[tokio::test]
async fn the_demo_enrols_a_second_factor_and_signs_in_with_it() {
    let port = common::free_port();
    let db = std::env::temp_dir().join(format!("crudauth-demo-mfa-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let _demo = common::spawn(port, &["--database", &url], &[]).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let pw = "carol has a long pass";
    let r = http
        .post(format!("{base}/register"))
        .json(&json!({ "email": "carol@example.com", "username": "carol", "password": pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let login = || {
        http.post(format!("{base}/login"))
            .form(&[("username", "carol"), ("password", pw)])
            .send()
    };
    let r = login().await.unwrap();
    let sid = common::cookie_of(&r, "session_id").expect("session");
    let csrf = common::cookie_of(&r, "csrf_token").expect("csrf");
    let cookie = format!("session_id={sid}; csrf_token={csrf}");
    let setup: Value = http
        .post(format!("{base}/mfa/totp/setup"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "password": pw }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = setup["secret"].as_str().unwrap();
    // The demo's helper prints the current code, as an authenticator app would.
    let out = std::process::Command::new(common::demo_binary())
        .args(["totp", secret])
        .output()
        .unwrap();
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(code.len(), 6, "{code:?}");
    let r = http
        .post(format!("{base}/mfa/totp/confirm"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let recovery = body["recovery_codes"][0].as_str().unwrap().to_owned();
    let qr = std::process::Command::new(common::demo_binary())
        .args(["qr", setup["otpauth_uri"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&qr.stdout).contains('█'));
    // The next sign-in stops at the second factor; a recovery code finishes it.
    let r = login().await.unwrap();
    assert!(common::cookie_of(&r, "session_id").is_none());
    let challenge: Value = r.json().await.unwrap();
    assert_eq!(challenge["mfa_required"], true);
    let r = http
        .post(format!("{base}/mfa/verify"))
        .json(&json!({ "challenge": challenge["challenge"], "code": recovery }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sid = common::cookie_of(&r, "session_id").expect("signed in");
    let me: Value = http
        .get(format!("{base}/me"))
        .header("cookie", format!("session_id={sid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "carol");
    let _ = std::fs::remove_file(db);
}
