//! Runs the recipe: cargo builds the binary, the test starts it on a free loopback port and
//! drives the library's routes, then reads what the hooks did: the welcome mail in the
//! outbox file, the vetoes' answers, and the audit log at `GET /audit`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const ADMIN: &str = "username=root@example.com&password=the+administrator%27s+long+password";
const ALICE: &str = "username=alice@example.com&password=a+long+enough+password";
/// The suspended account the example seeds, with its right password.
const SAM: &str = "username=sam@example.com&password=correct-horse-battery-staple";

/// The running example, killed when dropped (also when an assertion fails).
struct Server {
    child: Child,
    addr: String,
    outbox: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.outbox);
    }
}

/// Starts the example on `127.0.0.1:0` (the OS picks a free port), with an administrator
/// and an outbox file of its own, and waits, at most 30 s, for the `listening on
/// http://ADDR` line it prints once its socket is bound.
fn start(name: &str) -> Server {
    let outbox = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hooks-outbox-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&outbox);
    let mut child = Command::new(env!("CARGO_BIN_EXE_crudauth-example-hooks"))
        .args(["--addr", "127.0.0.1:0", "--database", "sqlite::memory:"])
        .arg("--outbox")
        .arg(&outbox)
        .env(
            "CRUDAUTH_SECRET_KEY",
            "the tests' secret key, at least 32 bytes long",
        )
        .env("CRUDAUTH_DEFAULT_ADMIN_EMAIL", "root@example.com")
        .env(
            "CRUDAUTH_DEFAULT_ADMIN_PASSWORD",
            "the administrator's long password",
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
        outbox,
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
        let mails: Vec<Value> = std::fs::read_to_string(&server.outbox)
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
