//! The demo's email flows end to end, as a user would run them: the demo binary with
//! `CRUDAUTH_DEMO_OUTBOX`, links read from the outbox file.

mod common;

use common::{FORM, JSON, cookie, field, free_port, http, last_token, last_tokens, spawn};

#[tokio::test]
async fn verify_reset_change_and_sudo_in_the_demo() {
    let dir = std::env::temp_dir().join(format!(
        "crudauth-demo-mail-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let outbox = dir.join("outbox.jsonl");
    let outbox = outbox.to_str().unwrap();
    let database = format!("sqlite://{}/demo.db?mode=rwc", dir.display());
    let port = free_port();
    let _demo = spawn(
        port,
        &["--database", &database],
        &[
            ("CRUDAUTH_DEMO_OUTBOX", outbox),
            ("CRUDAUTH_FRONTEND_URL", "https://frontend.example"),
            (
                "CRUDAUTH_SECRET_KEY",
                "an email-flow test secret of 32+ bytes",
            ),
        ],
    )
    .await;

    // Register; the verification link arrives; redeeming it verifies the address once.
    let (status, _, _) = http(
        port,
        "POST",
        "/register",
        &[JSON],
        r#"{"email":"eve@example.com","username":"eve","password":"correct horse 1"}"#,
    )
    .await;
    assert_eq!(status, 202);
    let token = last_token(outbox, "verify_email").await;
    let verify = format!("{{\"token\":\"{token}\"}}");
    assert_eq!(
        http(port, "POST", "/email/verify-confirm", &[JSON], &verify)
            .await
            .0,
        200
    );
    assert_eq!(
        http(port, "POST", "/email/verify-confirm", &[JSON], &verify)
            .await
            .0,
        400
    );
    let mail = std::fs::read_to_string(outbox).unwrap();
    assert!(
        mail.contains("https://frontend.example/verify-email?token="),
        "{mail}"
    );

    // Reset, with a session open: the session ends, the new password works.
    let (_, head, _) = http(
        port,
        "POST",
        "/login",
        &[FORM],
        "username=eve&password=correct+horse+1",
    )
    .await;
    let jar = format!("session_id={}", cookie(&head, "session_id"));
    for email in ["eve@example.com", "nobody@example.com"] {
        let (status, _, body) = http(
            port,
            "POST",
            "/password/reset-request",
            &[JSON],
            &format!("{{\"email\":\"{email}\"}}"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            field(&body, "detail"),
            "If an account exists, a password reset email has been sent."
        );
    }
    let token = last_token(outbox, "reset_password").await;
    let reset = format!("{{\"token\":\"{token}\",\"new_password\":\"correct horse 2\"}}");
    assert_eq!(
        http(port, "POST", "/password/reset-confirm", &[JSON], &reset)
            .await
            .0,
        200
    );
    assert_eq!(
        http(port, "POST", "/password/reset-confirm", &[JSON], &reset)
            .await
            .0,
        400
    );
    assert_eq!(
        http(port, "GET", "/me", &[("cookie", &jar)], "").await.0,
        401
    );

    // Email change: confirmation to the new address, then login with it.
    let (_, head, body) = http(
        port,
        "POST",
        "/login",
        &[FORM],
        "username=eve&password=correct+horse+2",
    )
    .await;
    let jar = format!("session_id={}", cookie(&head, "session_id"));
    let csrf = field(&body, "csrf_token");
    let session = [
        ("cookie", jar.as_str()),
        ("x-csrf-token", csrf.as_str()),
        JSON,
    ];
    let (status, _, _) = http(
        port,
        "POST",
        "/email/change-request",
        &session,
        r#"{"new_email":"eve@new.example","password":"correct horse 2"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let token = last_tokens(outbox, "change_email", 1).await.remove(0);
    let change = format!("{{\"token\":\"{token}\"}}");
    assert_eq!(
        http(port, "POST", "/email/change-confirm", &[JSON], &change)
            .await
            .0,
        200
    );
    let (status, head, body) = http(
        port,
        "POST",
        "/login",
        &[FORM],
        "username=eve%40new.example&password=correct+horse+2",
    )
    .await;
    assert_eq!(status, 200);

    // Sudo: /danger refuses until the password is typed again.
    let jar = format!("session_id={}", cookie(&head, "session_id"));
    let csrf = field(&body, "csrf_token");
    let session = [
        ("cookie", jar.as_str()),
        ("x-csrf-token", csrf.as_str()),
        JSON,
    ];
    let (status, _, body) = http(port, "POST", "/danger", &session, "").await;
    assert_eq!(
        (status, field(&body, "detail").as_str()),
        (403, "Re-authentication required.")
    );
    let (status, head, body) = http(
        port,
        "POST",
        "/sudo",
        &session,
        r#"{"password":"correct horse 2"}"#,
    )
    .await;
    assert_eq!((status, field(&body, "detail").as_str()), (200, "elevated"));
    // Elevation issues a new session id; the one from before it is dead.
    assert_eq!(http(port, "POST", "/danger", &session, "").await.0, 401);
    let jar = format!("session_id={}", cookie(&head, "session_id"));
    let elevated = [
        ("cookie", jar.as_str()),
        ("x-csrf-token", csrf.as_str()),
        JSON,
    ];
    assert_eq!(http(port, "POST", "/danger", &elevated, "").await.0, 200);

    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_pages_the_links_open_are_served_without_leaking_the_token() {
    let dir = std::env::temp_dir().join(format!(
        "crudauth-demo-pages-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}/demo.db?mode=rwc", dir.display());
    let port = free_port();
    let _demo = spawn(port, &["--database", &database], &[]).await;
    for (path, flow) in [
        ("/verify-email?token=abc", "verify"),
        ("/reset-password?token=abc", "reset"),
        ("/confirm-email-change?token=abc", "change"),
    ] {
        let (status, head, body) = http(port, "GET", path, &[], "").await;
        assert_eq!(status, 200, "{path}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("referrer-policy: no-referrer"), "{head}");
        assert!(head.contains("cache-control: no-store"), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{head}"
        );
        assert!(body.contains(&format!("data-flow=\"{flow}\"")), "{body}");
        assert!(!body.contains("abc"), "the page never echoes the token");
    }
    let (status, head, body) = http(port, "GET", "/flows.js", &[], "").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/javascript"));
    assert!(body.contains("history.replaceState"));
    let _ = std::fs::remove_dir_all(&dir);
}
