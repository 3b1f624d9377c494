//! Runs the recipe: cargo builds the binary, the test starts it on a free loopback port and
//! reaches the app's own handlers once through a browser session and once with a bearer
//! token.

#[path = "../../common/harness.rs"]
mod harness;

use std::process::Command;

use harness::*;

fn start() -> Server {
    harness::start(Command::new(env!(
        "CARGO_BIN_EXE_crudauth-example-web-and-api"
    )))
}

#[test]
fn a_session_and_a_bearer_token_reach_the_same_handlers() {
    let server = start();
    let register = request(
        &server,
        "POST",
        "/register",
        &[JSON],
        r#"{"email":"alice@example.com","password":"a long enough password"}"#,
    );
    assert!(
        register.status < 300,
        "{} {}",
        register.status,
        register.body
    );
    let credentials = "username=alice@example.com&password=a+long+enough+password";

    // The browser: a session cookie, and the CSRF token for mutating requests.
    let login = request(&server, "POST", "/login", &[FORM], credentials);
    assert_eq!(login.status, 200, "{}", login.body);
    let cookie = format!(
        "session_id={}",
        login.cookie("session_id").expect("a session cookie")
    );
    let csrf = field(&login, "csrf_token");
    let whoami = request(&server, "GET", "/api/whoami", &[("cookie", &cookie)], "");
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    assert_eq!(whoami.json()["transport"], "session");
    let note = r#"{"text":"written in the browser"}"#;
    let forged = request(
        &server,
        "POST",
        "/api/notes",
        &[JSON, ("cookie", &cookie)],
        note,
    );
    assert_eq!(forged.status, 403, "a session POST without its CSRF token");
    assert_eq!(forged.json()["detail"], "Missing CSRF token");
    let saved = request(
        &server,
        "POST",
        "/api/notes",
        &[JSON, ("cookie", &cookie), ("x-csrf-token", &csrf)],
        note,
    );
    assert_eq!(saved.status, 200, "{}", saved.body);

    // The API client: a token pair with the write scope; no cookie, no CSRF token.
    let token = request(
        &server,
        "POST",
        "/token",
        &[FORM],
        &format!("{credentials}&scope=notes:read+notes:write"),
    );
    assert_eq!(token.status, 200, "{}", token.body);
    let bearer = format!("Bearer {}", field(&token, "access_token"));
    let whoami = request(
        &server,
        "GET",
        "/api/whoami",
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(whoami.json()["transport"], "bearer", "{}", whoami.body);
    assert_eq!(whoami.json()["user_id"], 1);
    let notes = request(
        &server,
        "GET",
        "/api/notes",
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(
        notes.json()[0]["text"],
        "written in the browser",
        "{}",
        notes.body
    );
    let api_note = r#"{"text":"written by the API"}"#;
    let saved = request(
        &server,
        "POST",
        "/api/notes",
        &[JSON, ("authorization", &bearer)],
        api_note,
    );
    assert_eq!(saved.json()["transport"], "bearer", "{}", saved.body);

    // The refresh token rotates into a new pair that works the same way.
    let refreshed = request(
        &server,
        "POST",
        "/refresh",
        &[JSON],
        &format!(
            r#"{{"refresh_token":"{}"}}"#,
            field(&token, "refresh_token")
        ),
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let bearer = format!("Bearer {}", field(&refreshed, "access_token"));
    let whoami = request(
        &server,
        "GET",
        "/api/whoami",
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(whoami.json()["transport"], "bearer", "{}", whoami.body);

    // A token granted the default scope only may read but not write.
    let read_only = request(&server, "POST", "/token", &[FORM], credentials);
    let bearer = format!("Bearer {}", field(&read_only, "access_token"));
    let refused = request(
        &server,
        "POST",
        "/api/notes",
        &[JSON, ("authorization", &bearer)],
        api_note,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["detail"], "Insufficient scope");
}
