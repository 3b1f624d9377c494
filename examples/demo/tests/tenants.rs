//! The demo's tenants end to end, over real HTTP: switched on by the environment (the
//! address's domain is the tenant), a user reads their own tenant's route by session and by
//! token and gets 404 on another's; the billing feature is on for one tenant only; with
//! tenants off, nobody has a tenant and every tenant route is a 404.

mod common;

use serde_json::json;

/// A fresh SQLite database for one demo process.
fn database() -> String {
    database_and_outbox().0
}

/// A fresh SQLite database and a mail outbox file for one demo process.
fn database_and_outbox() -> (String, String) {
    let dir = std::env::temp_dir().join(format!("crudauth-demo-tenants-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    (
        format!("sqlite://{}?mode=rwc", dir.join("demo.db").display()),
        dir.join("outbox.jsonl").display().to_string(),
    )
}

/// Redeems the `nth` (from 1) verification mail of the outbox: the address it went to is
/// verified.
async fn verify(http: &reqwest::Client, base: &str, outbox: &str, nth: usize) {
    let token = common::last_tokens(outbox, "verify_email", nth).await[nth - 1].clone();
    let r = http
        .post(format!("{base}/email/verify-confirm"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn register(http: &reqwest::Client, base: &str, email: &str, name: &str, pw: &str) {
    let r = http
        .post(format!("{base}/register"))
        .json(&json!({ "email": email, "username": name, "password": pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

async fn session(http: &reqwest::Client, base: &str, name: &str, pw: &str) -> String {
    let r = http
        .post(format!("{base}/login"))
        .form(&[("username", name), ("password", pw)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login {name}");
    format!(
        "session_id={}",
        common::cookie_of(&r, "session_id").unwrap()
    )
}

async fn bearer(http: &reqwest::Client, base: &str, name: &str, pw: &str) -> String {
    let r = http
        .post(format!("{base}/token"))
        .form(&[("username", name), ("password", pw)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "token {name}");
    let body: serde_json::Value = r.json().await.unwrap();
    format!("Bearer {}", body["access_token"].as_str().unwrap())
}

async fn status(http: &reqwest::Client, url: String, (name, value): (&str, &str)) -> u16 {
    http.get(url)
        .header(name, value)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn tenants_switched_on_gate_the_tenant_routes() {
    let secret = (
        "CRUDAUTH_SECRET_KEY",
        "a demo secret key that is long enough for keys",
    );
    let (url, outbox) = database_and_outbox();
    let env = [
        secret,
        ("CRUDAUTH_DEMO_OUTBOX", outbox.as_str()),
        ("CRUDAUTH_DEMO_TENANTS", "email-domain"),
        (
            "CRUDAUTH_DEMO_TENANT_FEATURES",
            "acme.test=billing+reports, globex.test=reports",
        ),
    ];
    let http = reqwest::Client::new();
    let port = common::free_port();
    let _demo = common::spawn(port, &["--database", &url], &env).await;
    let base = format!("http://127.0.0.1:{port}");
    let pw = "a long enough password";
    register(&http, &base, "ann@Acme.test", "ann", pw).await;
    verify(&http, &base, &outbox, 1).await;
    register(&http, &base, "bob@globex.test", "bob", pw).await;
    verify(&http, &base, &outbox, 2).await;
    // Mallory registers at acme's domain without owning the address: no tenant until it
    // is verified, so acme's routes are a 404 to her.
    register(&http, &base, "mallory@acme.test", "mallory", pw).await;
    let mallory_session = session(&http, &base, "mallory", pw).await;
    let mallory_token = bearer(&http, &base, "mallory", pw).await;
    for credential in [
        ("cookie", mallory_session.as_str()),
        ("authorization", mallory_token.as_str()),
    ] {
        for path in ["acme.test/whoami", "acme.test/billing"] {
            let at = format!("{base}/tenants/{path}");
            assert_eq!(status(&http, at, credential).await, 404, "mallory {path}");
        }
    }

    let ann_session = session(&http, &base, "ann", pw).await;
    let ann_token = bearer(&http, &base, "ann", pw).await;
    let ann = [
        ("cookie", ann_session.as_str()),
        ("authorization", ann_token.as_str()),
    ];
    for credential in ann {
        let r = http
            .get(format!("{base}/tenants/acme.test/whoami"))
            .header(credential.0, credential.1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", credential.0);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["tenant"], "acme.test");
        for path in [
            "globex.test/whoami",
            "globex.test/billing",
            "ACME.TEST/whoami",
            "acme.test%00/whoami",
        ] {
            let at = format!("{base}/tenants/{path}");
            assert_eq!(
                status(&http, at, credential).await,
                404,
                "{} {path}",
                credential.0
            );
        }
        let billing = format!("{base}/tenants/acme.test/billing");
        assert_eq!(status(&http, billing, credential).await, 200);
    }
    let bob = session(&http, &base, "bob", pw).await;
    let own = format!("{base}/tenants/globex.test/whoami");
    assert_eq!(status(&http, own, ("cookie", &bob)).await, 200);
    let billing = format!("{base}/tenants/globex.test/billing");
    assert_eq!(
        status(&http, billing, ("cookie", &bob)).await,
        403,
        "no billing for globex"
    );
    let anonymous = format!("{base}/tenants/globex.test/whoami");
    assert_eq!(status(&http, anonymous, ("x-nothing", "")).await, 401);
}

#[tokio::test]
async fn tenants_off_leave_everyone_outside_every_tenant() {
    let env = [(
        "CRUDAUTH_SECRET_KEY",
        "a demo secret key that is long enough for keys",
    )];
    let http = reqwest::Client::new();
    let port = common::free_port();
    let url = database();
    let _demo = common::spawn(port, &["--database", &url], &env).await;
    let base = format!("http://127.0.0.1:{port}");
    let pw = "a long enough password";
    register(&http, &base, "ann@acme.test", "ann", pw).await;
    let ann = session(&http, &base, "ann", pw).await;
    let at = format!("{base}/tenants/acme.test/whoami");
    assert_eq!(status(&http, at, ("cookie", &ann)).await, 404);
}

#[tokio::test]
async fn a_malformed_tenant_setting_stops_the_demo_at_start() {
    let log = std::env::temp_dir().join(format!(
        "crudauth-demo-tenants-{}.log",
        uuid::Uuid::new_v4()
    ));
    let out = std::process::Command::new(common::demo_binary())
        .args(["--addr", "127.0.0.1:1", "--database", &database()])
        .env(
            "CRUDAUTH_SECRET_KEY",
            "a demo secret key that is long enough for keys",
        )
        .env("CRUDAUTH_DEMO_TENANTS", "subdomain")
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(!out.success());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(text.contains("CRUDAUTH_DEMO_TENANTS"), "{text}");
}
