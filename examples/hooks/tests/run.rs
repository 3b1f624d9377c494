//! Runs the recipe: cargo builds the binary, the test starts it on a free loopback port and
//! drives the library's routes, then reads what the hooks did: the welcome mail in the
//! outbox file, the vetoes' answers, and the audit log at `GET /audit`.

#[path = "../../common/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::*;
use serde_json::Value;

const ADMIN: &str = "username=root@example.com&password=the+administrator%27s+long+password";
const ALICE: &str = "username=alice@example.com&password=a+long+enough+password";
/// The suspended account the example seeds, with its right password.
const SAM: &str = "username=sam@example.com&password=correct-horse-battery-staple";

/// Starts the example with an administrator and an outbox file of its own (removed with
/// the server).
fn start(name: &str) -> Server {
    let outbox = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hooks-outbox-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&outbox);
    let mut command = Command::new(env!("CARGO_BIN_EXE_crudauth-example-hooks"));
    command
        .arg("--outbox")
        .arg(&outbox)
        .env("CRUDAUTH_DEFAULT_ADMIN_EMAIL", "root@example.com")
        .env(
            "CRUDAUTH_DEFAULT_ADMIN_PASSWORD",
            "the administrator's long password",
        );
    let mut server = harness::start(command);
    server.files.push(outbox);
    server
}

/// An access token for the form `credentials`.
fn bearer(server: &Server, credentials: &str) -> String {
    let token = request(server, "POST", "/token", &[FORM], credentials);
    assert_eq!(token.status, 200, "{}", token.body);
    let access = token.json()["access_token"].as_str().unwrap().to_owned();
    format!("Bearer {access}")
}

/// The audit log, read by the administrator.
fn audit(server: &Server) -> Vec<Value> {
    let admin = bearer(server, ADMIN);
    let log = request(server, "GET", "/audit", &[("authorization", &admin)], "");
    assert_eq!(log.status, 200, "{}", log.body);
    log.json().as_array().cloned().expect("a JSON array")
}

/// The first entry of `event` about `email`, or a panic showing the whole log.
fn entry<'a>(log: &'a [Value], event: &str, email: &str) -> &'a Value {
    log.iter()
        .find(|e| e["event"] == event && e["email"] == email)
        .unwrap_or_else(|| panic!("no {event} entry for {email} in {log:#?}"))
}

/// The outbox's mails, once one to `to` is there; polled for at most 5 s (the welcome mail
/// is written after the answer).
fn mails_once_one_to(server: &Server, to: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mails: Vec<Value> = std::fs::read_to_string(&server.files[0])
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
            .collect();
        if mails.iter().any(|m| m["to"] == to) {
            return mails;
        }
        assert!(Instant::now() < deadline, "no mail to {to}: {mails:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_hooks_mail_veto_and_audit() {
    let server = start("flow");

    // The domain veto: a 422 on the `email` field, in the FastAPI shape.
    let blocked = request(
        &server,
        "POST",
        "/register",
        &[JSON],
        r#"{"email":"eve@Blocked.example","password":"a long enough password"}"#,
    );
    assert_eq!(blocked.status, 422, "{}", blocked.body);
    let detail = &blocked.json()["detail"][0];
    assert_eq!(detail["loc"], serde_json::json!(["body", "email"]));
    assert_eq!(detail["msg"], "Sign-ups from this domain are closed");

    // A sign-up: `202`, then the welcome mail, greeting with the app's own column.
    let register = request(
        &server,
        "POST",
        "/register",
        &[JSON],
        r#"{"email":"alice@example.com","password":"a long enough password","display_name":"Alice"}"#,
    );
    assert_eq!(register.status, 202, "{}", register.body);
    let mails = mails_once_one_to(&server, "alice@example.com");
    let welcome = mails.iter().find(|m| m["to"] == "alice@example.com");
    let body = welcome.unwrap()["body"].as_str().unwrap().to_owned();
    assert!(
        body.contains("Hello Alice") && body.contains("free plan"),
        "{body}"
    );
    assert!(
        !mails.iter().any(|m| m["to"] == "eve@blocked.example"),
        "a vetoed sign-up creates nothing, so nobody is welcomed: {mails:?}"
    );

    // The suspension veto: Sam's right password is answered exactly as a wrong one.
    let wrong = request(
        &server,
        "POST",
        "/login",
        &[FORM],
        "username=alice@example.com&password=not+her+password",
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let refused = request(&server, "POST", "/login", &[FORM], SAM);
    assert_eq!((refused.status, &refused.body), (wrong.status, &wrong.body));
    let refused = request(&server, "POST", "/token", &[FORM], SAM);
    assert_eq!((refused.status, &refused.body), (wrong.status, &wrong.body));

    // Alice signs in (a session), signs out, signs in with a token, changes her password.
    let login = request(&server, "POST", "/login", &[FORM], ALICE);
    assert_eq!(login.status, 200, "{}", login.body);
    let cookie = format!("session_id={}", login.cookie("session_id").unwrap());
    let csrf = login.json()["csrf_token"].as_str().unwrap().to_owned();
    let logout = request(
        &server,
        "POST",
        "/logout",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        "",
    );
    assert_eq!(logout.status, 200, "{}", logout.body);
    let alice = bearer(&server, ALICE);
    // The audit log is for administrators only.
    assert_eq!(request(&server, "GET", "/audit", &[], "").status, 401);
    let denied = request(&server, "GET", "/audit", &[("authorization", &alice)], "");
    assert_eq!(denied.status, 403, "{}", denied.body);
    let changed = request(
        &server,
        "POST",
        "/change-password",
        &[JSON, ("authorization", &alice)],
        r#"{"current_password":"a long enough password","new_password":"another long password"}"#,
    );
    assert_eq!(changed.status, 200, "{}", changed.body);

    // Every entry carries the app's own columns, read off the model the hook was given.
    let log = audit(&server);
    let failed = entry(&log, "login_failed", "alice@example.com");
    assert_eq!(failed["reason"], "invalid_credentials");
    assert_eq!(failed["display_name"], "Alice");
    let suspended = entry(&log, "login_failed", "sam@example.com");
    assert_eq!(suspended["reason"], "refused");
    assert_eq!(suspended["plan"], "pro");
    assert_eq!(suspended["transport"], "session");
    let refusals = log
        .iter()
        .filter(|e| e["email"] == "sam@example.com" && e["reason"] == "refused")
        .count();
    assert_eq!(refusals, 2, "/login and /token both ask the veto: {log:#?}");
    let login = entry(&log, "login", "alice@example.com");
    assert_eq!(
        (&login["plan"], &login["display_name"]),
        (&"free".into(), &"Alice".into())
    );
    assert_eq!(login["transport"], "session");
    assert_eq!(login["ip"], "127.0.0.1");
    assert_eq!(
        entry(&log, "logout", "alice@example.com")["transport"],
        "session"
    );
    assert_eq!(
        entry(&log, "password_changed", "alice@example.com")["plan"],
        "free"
    );
    assert!(
        !log.iter()
            .any(|e| e["event"] == "login" && e["email"] == "sam@example.com"),
        "a refused login is no login: {log:#?}"
    );
}

#[test]
fn a_lockout_reaches_the_audit_log() {
    let server = start("lockout");
    // Five wrong passwords for one identifier from one address; the sixth attempt is
    // refused by the lockout before any password check.
    let guess = "username=mallory@example.com&password=guess+number+one";
    for _ in 0..5 {
        assert_eq!(
            request(&server, "POST", "/login", &[FORM], guess).status,
            401
        );
    }
    let locked = request(&server, "POST", "/login", &[FORM], guess);
    assert_eq!(locked.status, 429, "{}", locked.body);

    let log = audit(&server);
    let failures = log.iter().filter(|e| e["event"] == "login_failed").count();
    assert_eq!(failures, 5, "{log:#?}");
    let lockout = log
        .iter()
        .find(|e| e["event"] == "lockout")
        .unwrap_or_else(|| panic!("no lockout entry in {log:#?}"));
    assert_eq!(lockout["identifier"], "mallory@example.com");
    assert!(lockout["retry_after"].as_u64().unwrap() > 0, "{lockout}");
    assert!(
        lockout.get("email").is_none(),
        "no account is named: {lockout}"
    );
}
