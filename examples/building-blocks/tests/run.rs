//! Runs the recipe: cargo builds the binary, the test starts it on a free loopback port and
//! signs in through the app's own routes, which no `auth.router()` backs.

#[path = "../../common/harness.rs"]
mod harness;

use std::process::Command;

use harness::*;

fn start() -> Server {
    harness::start(Command::new(env!(
        "CARGO_BIN_EXE_crudauth-example-building-blocks"
    )))
}

#[test]
fn the_apps_own_sign_in_routes_give_credentials_its_own_routes_accept() {
    let server = start();
    let creds = r#"{"email":"carol@example.com","password":"a long enough password"}"#;
    let signup = request(&server, "POST", "/signup", &[JSON], creds);
    assert_eq!(signup.status, 202, "{}", signup.body);

    // `/api-token`: authenticate_password + issue_tokens; `/profile` accepts the token.
    let token = request(&server, "POST", "/api-token", &[JSON], creds);
    assert_eq!(token.status, 200, "{}", token.body);
    let bearer = format!("Bearer {}", field(&token, "access_token"));
    let profile = request(
        &server,
        "GET",
        "/profile",
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(profile.status, 200, "{}", profile.body);
    assert_eq!(profile.json()["transport"], "bearer");
    assert_eq!(profile.json()["email"], "carol@example.com");

    // `/signin`: authenticate_password + a session whose cookies the app set itself.
    let signin = request(&server, "POST", "/signin", &[JSON], creds);
    assert_eq!(signin.status, 200, "{}", signin.body);
    let cookie = format!(
        "session_id={}",
        signin.cookie("session_id").expect("a session cookie")
    );
    assert_eq!(
        signin.cookie("csrf_token"),
        Some(field(&signin, "csrf_token"))
    );
    let profile = request(&server, "GET", "/profile", &[("cookie", &cookie)], "");
    assert_eq!(profile.json()["transport"], "session", "{}", profile.body);

    // The extractor checks the CSRF token of the app's own mutating route.
    let forged = request(&server, "POST", "/signout", &[("cookie", &cookie)], "");
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(forged.json()["detail"], "Missing CSRF token");
    let csrf = field(&signin, "csrf_token");
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let signout = request(&server, "POST", "/signout", &headers, "");
    assert_eq!(signout.status, 200, "{}", signout.body);
    let after = request(&server, "GET", "/profile", &[("cookie", &cookie)], "");
    assert_eq!(after.status, 401, "the session ended: {}", after.body);

    // A wrong password is refused by the same check the library's routes use.
    let wrong = r#"{"email":"carol@example.com","password":"not the password"}"#;
    assert_eq!(
        request(&server, "POST", "/signin", &[JSON], wrong).status,
        401
    );
}
