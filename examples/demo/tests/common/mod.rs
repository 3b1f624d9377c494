//! Helpers shared by the demo's process-level tests: start the binary, talk HTTP to it.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running demo process, killed when dropped; its log (stderr) is printed when the test
/// that started it fails, so a failure that comes from the server shows why.
pub struct Demo(Child, std::path::PathBuf);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let status = self.0.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!("--- the demo ({status:?}) logged:\n{}", tail.join("\n"));
        }
        let _ = std::fs::remove_file(&self.1);
    }
}

pub fn demo_binary() -> &'static str {
    // Cargo builds this package's binary before running its integration tests.
    env!("CARGO_BIN_EXE_crudauth-demo")
}

/// A port nobody listens on right now, handed out once per test binary, and below Linux's
/// ephemeral range (32768 and up), so the outgoing connections of tests running in parallel
/// (databases, Redis) cannot take it as their source port before the demo binds it.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let random = u16::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..2].try_into().unwrap());
        let port = 20_000 + random % 12_000;
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// Starts the demo on `port` with these arguments and environment, and waits until it
/// listens.
pub async fn spawn(port: u16, args: &[&str], env: &[(&str, &str)]) -> Demo {
    let mut command = Command::new(demo_binary());
    command
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let log = std::env::temp_dir().join(format!(
        "crudauth-demo-{port}-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let stderr = std::fs::File::create(&log).expect("the demo's log file");
    let mut demo = Demo(
        command
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the demo"),
        log,
    );
    for _ in 0..200 {
        // A demo that exited (its port was taken) must not pass for one that listens.
        if let Ok(Some(status)) = demo.0.try_wait() {
            panic!("the demo on port {port} exited at start: {status}");
        }
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return demo;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the demo on port {port} never started");
}

/// A minimal HTTP/1.1 client: enough for these requests, loopback only.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut raw = Vec::new();
    for attempt in 0..2 {
        raw.clear();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(req.as_bytes()).await.unwrap();
        match stream.read_to_end(&mut raw).await {
            Ok(_) => break,
            // A reset after a whole answer (head and all) lost nothing; a reset before any
            // byte of it is retried once (a server that resets every time still fails the
            // test, with its log printed by `Demo`).
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                if raw.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
                assert!(
                    raw.is_empty() && attempt == 0,
                    "{method} {path}: reset mid-answer: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

pub fn cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim()))
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|r| r.split(';').next().unwrap_or("").to_owned())
        })
        .unwrap_or_default()
}

pub fn field(body: &str, key: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v[key].as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
pub const JSON: (&str, &str) = ("content-type", "application/json");

/// The token of the newest mail of `kind` in a JSON-lines outbox, waiting (up to 10 s) for
/// it to arrive: mail leaves in the background.
pub async fn last_token(outbox: &str, kind: &str) -> String {
    last_tokens(outbox, kind, 1).await.pop().expect("a mail")
}

/// The tokens of the mails of `kind`, once there are at least `count`.
pub async fn last_tokens(outbox: &str, kind: &str, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let tokens: Vec<String> = std::fs::read_to_string(outbox)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["kind"] == kind)
            .filter_map(|m| {
                m["link"]
                    .as_str()
                    .and_then(|l| l.split_once("?token="))
                    .map(|(_, t)| t.to_owned())
            })
            .collect();
        if tokens.len() >= count {
            return tokens;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {count} {kind} mail(s) in {outbox}");
}

/// A cookie a `reqwest` response sets, by name (empty values, clearing cookies, skipped).
pub fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// Signs `login` in at the demo on `base` and elevates the session (sudo): (session id,
/// CSRF token).
#[allow(dead_code)] // not every test file signs in
pub async fn elevated(
    http: &reqwest::Client,
    base: &str,
    login: &str,
    password: &str,
) -> (String, String) {
    let r = http
        .post(format!("{base}/login"))
        .form(&[("username", login), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login {login}");
    let sid = cookie_of(&r, "session_id").unwrap();
    let csrf = cookie_of(&r, "csrf_token").unwrap();
    let r = http
        .post(format!("{base}/sudo"))
        .header("cookie", format!("session_id={sid}"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sudo {login}");
    (cookie_of(&r, "session_id").unwrap(), csrf)
}
