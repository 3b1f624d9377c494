//! The demo's abuse protection over real HTTP: disposable addresses refused by default, and
//! a reCAPTCHA v3 switched on by the environment, pointed at a local fake verifier.

mod common;

use crudauth_tests::fake_captcha::{CAPTCHA_SECRET, FakeCaptcha};
use serde_json::{Value, json};

#[tokio::test]
async fn the_demo_refuses_disposable_addresses_and_asks_the_configured_captcha() {
    let fake = FakeCaptcha::start().await;
    let dir = std::env::temp_dir().join(format!("crudauth-demo-abuse-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let verify = fake.url("recaptcha");
    let env = [
        (
            "CRUDAUTH_SECRET_KEY",
            "a demo secret key that is long enough for keys",
        ),
        ("CRUDAUTH_CAPTCHA_PROVIDER", "recaptcha"),
        ("CRUDAUTH_CAPTCHA_SECRET", CAPTCHA_SECRET),
        ("CRUDAUTH_CAPTCHA_VERIFY_URL", verify.as_str()),
        ("CRUDAUTH_CAPTCHA_ACTIONS", "register"),
        ("CRUDAUTH_DISPOSABLE_BLOCK", "trash.example"),
    ];
    let port = common::free_port();
    let _demo = common::spawn(port, &["--database", &url], &env).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let register = |email: &str, token: Option<String>| {
        let mut req = http
            .post(format!("{base}/register"))
            .json(&json!({ "email": email, "username": email.split('@').next().unwrap(), "password": "a long password 1" }));
        if let Some(token) = token {
            req = req.header("x-captcha-token", token);
        }
        req.send()
    };
    for email in ["eve@mailinator.com", "eve@sub.trash.example"] {
        let r = register(email, Some(fake.good("register"))).await.unwrap();
        assert_eq!(r.status(), 422, "{email}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["body", "email"]),
            "{email}"
        );
    }
    let r = register("ann@example.com", None).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-captcha-required"], "recaptcha");
    let r = register(
        "ann@example.com",
        Some(fake.token("register", 0.1, "app.example")),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "a low score");
    let r = register("ann@example.com", Some(fake.good("register")))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(
        fake.received()
            .iter()
            .all(|f| f["secret"] == CAPTCHA_SECRET)
    );
    // Login is not in the actions: not asked.
    let r = http
        .post(format!("{base}/login"))
        .form(&[("username", "ann"), ("password", "a long password 1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
