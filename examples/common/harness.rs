//! The recipes' test harness, shared by their `tests/run.rs` (`#[path]`-included, so each
//! recipe stays a crate of its own): start the example's binary on a free loopback port, and
//! talk HTTP/1.1 to it.

#![allow(dead_code)] // each recipe's test uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The running example, killed when dropped (also when an assertion fails), with the files
/// it was given removed.
pub struct Server {
    child: Child,
    pub addr: String,
    pub files: Vec<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Starts `command` (the example's binary, with any arguments of its own) on `127.0.0.1:0`
/// (the OS picks a free port) over an in-memory SQLite database, and waits, at most 30 s,
/// for the `listening on http://ADDR` line it prints once its socket is bound.
pub fn start(mut command: Command) -> Server {
    let mut child = command
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
        files: Vec::new(),
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
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The value of a cookie this response sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            let pair = value.trim().split(';').next()?;
            let (cookie, value) = pair.split_once('=')?;
            (key.eq_ignore_ascii_case("set-cookie") && cookie == name).then(|| value.to_owned())
        })
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), at most 10 s.
pub fn request(
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

pub const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
pub const JSON: (&str, &str) = ("content-type", "application/json");

pub fn field(response: &Response, key: &str) -> String {
    response.json()[key].as_str().unwrap_or_default().to_owned()
}
