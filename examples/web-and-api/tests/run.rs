//! Runs the recipe: cargo builds the binary, the test starts it on a free loopback port and
//! reaches the app's own handlers once through a browser session and once with a bearer
//! token.

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_crudauth-example-web-and-api"))
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

fn field(response: &Response, key: &str) -> String {
    response.json()[key].as_str().unwrap_or_default().to_owned()
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
