//! The audit log (target `crudauth::audit`): every auth event of every flow is one `tracing`
//! event with its structured fields, inside the request's span; and the attack: no secret the
//! flows used (passwords, access and refresh tokens, session id, CSRF token, TOTP secret and
//! codes, API key, reset token) appears anywhere in everything logged.

use std::sync::{Arc, Mutex, OnceLock};

use axum::http::Method;
use crudauth::UserRecord;
use crudauth::admin::ImpersonationConfig;
use crudauth::api_key::ApiKeyConfig;
use crudauth::mfa::MfaConfig;
use crudauth::user::UserUpdate;
use crudauth_tests::http::{
    Req, Session, TestApp, app_with, mails, outbox_path, token_of, with_outbox,
};
use serde_json::json;

const PW: &str = "a long password 1";
const PW2: &str = "another long password 2";
const PW3: &str = "a third long password 3";
const WRONG: &str = "not the password at all";

/// Everything logged in this process, DEBUG for the library (API key use is at DEBUG) and INFO
/// for the rest, without timestamps (so no digits but the flows' own). One test in this file:
/// the global subscriber sees every event.
fn log() -> String {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buffer = LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,crudauth=debug"))
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buffer
    });
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn id_of(app: &TestApp, name: &str) -> String {
    let user = app.auth.repo().find_by_login(name).await.unwrap().unwrap();
    user.user_id().to_string()
}

async fn sudo(app: &TestApp, s: &Session, password: &str) {
    let r = app
        .send(
            Req::post("/sudo")
                .session(s)
                .json(json!({ "password": password })),
        )
        .await;
    assert_eq!(r.status, 200, "sudo: {:?}", r.json);
}

/// The audit lines of `event` (its `event="..."` field).
fn lines<'a>(text: &'a str, event: &str) -> Vec<&'a str> {
    let field = format!("event=\"{event}\"");
    text.lines()
        .filter(|l| l.contains("crudauth::audit") && l.contains(&field))
        .collect()
}

/// Asserts one audit line of `event` carries every one of `fields`.
#[track_caller]
fn assert_event(text: &str, event: &str, fields: &[String]) {
    let found = lines(text, event);
    assert!(
        found
            .iter()
            .any(|l| fields.iter().all(|f| l.contains(f.as_str()))),
        "no {event} event with {fields:?} in:\n{}",
        found.join("\n")
    );
}

fn uid(id: &str) -> String {
    format!("user_id=\"{id}\"")
}

/// Whether `code` appears as a whole digit run (not inside a longer number).
fn has_code(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn every_flow_logs_its_events_with_ids_and_never_a_secret() {
    log();
    let outbox = outbox_path("audit_log");
    let path = outbox.clone();
    let app = app_with("audit_log", move |b| {
        with_outbox(b, &path)
            .api_keys(ApiKeyConfig::default())
            .mfa(MfaConfig::new("crudauth-test"))
            .impersonation(ImpersonationConfig::default())
    })
    .await;
    let mut secrets: Vec<String> = vec![PW.into(), PW2.into(), PW3.into(), WRONG.into()];

    // Registration, a wrong password, a sign-in, a logout.
    app.register("alice@example.com", "alice", PW).await;
    let alice = id_of(&app, "alice").await;
    let r = app
        .send(Req::post("/login").form(&[("username", "alice"), ("password", WRONG)]))
        .await;
    assert_eq!(r.status, 401, "{:?}", r.json);
    let s = app.login("alice", PW).await;
    secrets.extend([s.id.clone(), s.csrf.clone()]);
    let r = app.send(Req::post("/logout").session(&s)).await;
    assert!(r.status.is_success(), "{:?}", r.json);

    // Bearer: a pair, a refresh, the spent refresh token presented again.
    let (access, refresh) = app.token("alice", PW, "me:read").await;
    let r = app
        .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access2 = r.json["access_token"].as_str().unwrap().to_owned();
    let refresh2 = r.json["refresh_token"].as_str().unwrap().to_owned();
    let r = app
        .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
        .await;
    assert_eq!(r.status, 401, "reuse: {:?}", r.json);
    secrets.extend([access, refresh, access2, refresh2]);

    // A password change, then a reset by mail.
    let s = app.login("alice", PW).await;
    secrets.extend([s.id.clone(), s.csrf.clone()]);
    let r = app
        .send(
            Req::post("/change-password")
                .session(&s)
                .json(json!({ "current_password": PW, "new_password": PW2 })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    app.verify_email("alice").await;
    let r = app
        .send(Req::post("/password/reset-request").json(json!({ "email": "alice@example.com" })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let reset = token_of(
        mails(&app.auth, &outbox)
            .await
            .last()
            .expect("a reset mail"),
    );
    let r = app
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({ "token": reset, "new_password": PW3 })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    secrets.push(reset);

    // The lockout: wrong passwords until the account's counter refuses.
    app.register("erin@example.com", "erin", PW).await;
    let erin = id_of(&app, "erin").await;
    let mut locked = false;
    for _ in 0..10 {
        let r = app
            .send(Req::post("/login").form(&[("username", "erin"), ("password", WRONG)]))
            .await;
        if r.status == 429 {
            locked = true;
            break;
        }
    }
    assert!(locked, "the lockout refuses at last");

    // MFA: enrolment, then a sign-in answered with a wrong code.
    app.register("carol@example.com", "carol", PW).await;
    let carol = id_of(&app, "carol").await;
    let s = app.login("carol", PW).await;
    secrets.extend([s.id.clone(), s.csrf.clone()]);
    let totp = app.enrol_totp(&s, PW).await;
    let now = crudauth_tests::unix_now();
    let codes: Vec<String> = (0..6)
        .map(|i| crudauth_tests::totp_code(&totp, now + 60 - i * 30))
        .collect();
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !codes.contains(c))
        .unwrap();
    let r = app
        .send(Req::post("/login").form(&[("username", "carol"), ("password", PW)]))
        .await;
    assert_eq!(r.json["mfa_required"], true, "{:?}", r.json);
    let challenge = r.json["challenge"].as_str().unwrap().to_owned();
    let r = app
        .send(Req::post("/mfa/verify").json(json!({ "challenge": challenge, "code": wrong })))
        .await;
    assert_eq!(r.status, 401, "{:?}", r.json);
    secrets.extend([totp, challenge]);

    // API keys: made, used, rotated, revoked.
    app.register("dave@example.com", "dave", PW).await;
    let dave = id_of(&app, "dave").await;
    let s = app.login("dave", PW).await;
    secrets.extend([s.id.clone(), s.csrf.clone()]);
    sudo(&app, &s, PW).await;
    let r = app
        .send(
            Req::post("/api-keys")
                .session(&s)
                .json(json!({ "name": "ci" })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let key = r.json["key"].as_str().unwrap().to_owned();
    let key_id = r.json["id"].as_str().unwrap().to_owned();
    let r = app
        .send(Req::get("/whoami").header("x-api-key", &key))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = app
        .send(Req::post(&format!("/api-keys/{key_id}/rotate")).session(&s))
        .await;
    assert_eq!(r.status, 200, "rotate: {:?}", r.json);
    secrets.push(r.json["key"].as_str().unwrap().to_owned());
    let r = app
        .send(Req::new(Method::DELETE, &format!("/api-keys/{key_id}")).session(&s))
        .await;
    assert!(r.status.is_success(), "{:?}", r.json);
    secrets.push(key);

    // Impersonation: an elevated superuser mints a token for dave.
    app.register("root@example.com", "root", PW).await;
    let root = id_of(&app, "root").await;
    let update = UserUpdate {
        email_verified: Some(true),
        is_superuser: Some(true),
        ..Default::default()
    };
    let user = app
        .auth
        .repo()
        .find_by_login("root")
        .await
        .unwrap()
        .unwrap();
    app.auth
        .repo()
        .update(&user.user_id(), update)
        .await
        .unwrap();
    let s = app.login("root", PW).await;
    secrets.extend([s.id.clone(), s.csrf.clone()]);
    sudo(&app, &s, PW).await;
    let r = app
        .send(Req::post(&format!("/admin/users/{dave}/token")).session(&s))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    secrets.push(r.json["access_token"].as_str().unwrap().to_owned());

    app.auth.background().flush().await;
    let text = log();

    // Every event, with its ids, outcome, transport and reason.
    let ok = "outcome=\"success\"".to_owned();
    let session = "transport=\"session\"".to_owned();
    let bearer = "transport=\"bearer\"".to_owned();
    let span = "request{method=POST route=\"/register\"}".to_owned();
    assert_event(&text, "register", &[uid(&alice), ok.clone(), span]);
    assert_event(
        &text,
        "login",
        &[
            uid(&alice),
            "outcome=\"failure\"".into(),
            "reason=\"invalid_credentials\"".into(),
            session.clone(),
            "client_ip=".into(),
        ],
    );
    assert_event(&text, "login", &[uid(&alice), ok.clone(), session.clone()]);
    assert_event(&text, "login", &[uid(&alice), ok.clone(), bearer.clone()]);
    assert_event(&text, "logout", &[uid(&alice), ok.clone(), session.clone()]);
    assert_event(&text, "token_refreshed", &[uid(&alice), bearer.clone()]);
    assert_event(
        &text,
        "refresh_token_reuse",
        &[uid(&alice), "outcome=\"refused\"".into()],
    );
    assert_event(&text, "password_changed", &[uid(&alice)]);
    assert_event(&text, "password_reset", &[uid(&alice)]);
    assert_event(
        &text,
        "login",
        &[
            uid(&erin),
            "outcome=\"refused\"".into(),
            "reason=\"locked_out\"".into(),
        ],
    );
    assert_event(&text, "mfa_enabled", &[uid(&carol)]);
    assert_event(
        &text,
        "mfa_verify",
        &[
            uid(&carol),
            "outcome=\"failure\"".into(),
            "reason=\"invalid_code\"".into(),
        ],
    );
    let key_field = format!("credential_id=\"{key_id}\"");
    assert_event(&text, "api_key_created", &[uid(&dave), key_field.clone()]);
    assert_event(
        &text,
        "api_key_used",
        &[
            uid(&dave),
            key_field.clone(),
            "transport=\"api_key\"".into(),
        ],
    );
    assert_event(&text, "api_key_rotated", &[uid(&dave), key_field.clone()]);
    assert_event(&text, "api_key_revoked", &[uid(&dave), key_field]);
    assert_event(
        &text,
        "impersonation_started",
        &[uid(&dave), format!("actor_id=\"{root}\"")],
    );
    // Inside the request's span: method and route template, never the raw path's ids.
    assert!(
        text.lines()
            .any(|l| l.contains("request{method=POST route=\"/login\"}")
                && l.contains("event=\"login\"")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("route=\"/admin/users/{user_id}/token\"")
                || l.contains("route=\"/admin/users/{id}/token\"")),
        "the span names the route template: {text}"
    );

    // The attack: not one secret anywhere in the log.
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !text.contains(secret.as_str()),
            "a secret was logged: {secret}"
        );
    }
    for code in codes.iter().chain([&wrong]) {
        assert!(!has_code(&text, code), "a code was logged: {code}");
    }
}
