//! Runs the recipe: cargo builds the binary, the test starts it on a free loopback port and
//! signs in through the library's routes to read the app's own `/me`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The running example, killed when dropped (also when an assertion fails).
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the example on `127.0.0.1:0` (the OS picks a free port) and waits, at most 30 s,
/// for the `listening on http://ADDR` line it prints once its socket is bound.
fn start() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crudauth-example-legacy-table"))
        .args(["--addr", "127.0.0.1:0", "--database", "sqlite::memory:"])
        .env(
            "CRUDAUTH_SECRET_KEY",
            "the tests' secret key, at least 32 bytes long",
        )
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the example");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let mut server = Server {
        child,
        addr: String::new(),
    };
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => server.addr = addr,
        Err(e) => panic!(
            "the example never listened ({e}); exit status: {:?}",
            server.child.try_wait()
        ),
    }
    server
}

/// A response: status, head (status line and headers) and body.
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The value of a cookie this response sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            let pair = value.trim().split(';').next()?;
            let (cookie, value) = pair.split_once('=')?;
            (key.eq_ignore_ascii_case("set-cookie") && cookie == name).then(|| value.to_owned())
        })
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), at most 10 s.
fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.addr,
        body.len()
    );
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    stream.write_all(raw.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json");

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
