//! Runs the recipe: cargo builds the binary, the test starts it on a free loopback port and
//! signs in through the app's own routes, which no `auth.router()` backs.

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_crudauth-example-building-blocks"))
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

const JSON: (&str, &str) = ("content-type", "application/json");

fn field(response: &Response, key: &str) -> String {
    response.json()[key].as_str().unwrap_or_default().to_owned()
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
