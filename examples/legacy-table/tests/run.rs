//! Runs the recipe: cargo builds the binary, the test starts it on a free loopback port and
//! signs in through the library's routes to read the app's own `/me`.

#[path = "../../common/harness.rs"]
mod harness;

use std::process::Command;

use harness::*;

fn start() -> Server {
    harness::start(Command::new(env!(
        "CARGO_BIN_EXE_crudauth-example-legacy-table"
    )))
}

#[test]
fn a_legacy_member_signs_in_and_me_reads_the_apps_own_column() {
    let server = start();
    assert_eq!(request(&server, "GET", "/me", &[], "").status, 401);

    // A member who was in the table before crudauth signs in with a cookie session.
    let login = request(
        &server,
        "POST",
        "/auth/login",
        &[FORM],
        "username=GRACE@example.com&password=correct-horse-battery-staple",
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let session = login.cookie("session_id").expect("a session cookie");
    let me = request(
        &server,
        "GET",
        "/me",
        &[("cookie", &format!("session_id={session}"))],
        "",
    );
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["display_name"], "Grace Hopper");
    assert_eq!(me.json()["email"], "grace@example.com");

    // `active = false` is the derive's `is_active`: the right password is refused.
    let ada = request(
        &server,
        "POST",
        "/auth/login",
        &[FORM],
        "username=ada@example.com&password=correct-horse-battery-staple",
    );
    assert_eq!(ada.status, 401, "{}", ada.body);
}

#[test]
fn a_new_member_registers_with_a_display_name_and_me_shows_it() {
    let server = start();
    let register = request(
        &server,
        "POST",
        "/auth/register",
        &[JSON],
        r#"{"email":"linus@example.com","password":"a long enough password","display_name":"Linus"}"#,
    );
    assert!(
        register.status < 300,
        "{} {}",
        register.status,
        register.body
    );
    let login = request(
        &server,
        "POST",
        "/auth/login",
        &[FORM],
        "username=linus@example.com&password=a+long+enough+password",
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let session = login.cookie("session_id").expect("a session cookie");
    let me = request(
        &server,
        "GET",
        "/me",
        &[("cookie", &format!("session_id={session}"))],
        "",
    );
    assert_eq!(me.json()["display_name"], "Linus", "{}", me.body);
}
