//! Two demo processes sharing Redis (and one user database): state moves with the store.
//! Runs when `CRUDAUTH_TEST_REDIS_URL` is set; says so when it is not.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn demo_binary() -> &'static str {
    // Cargo builds this package's binary before running its integration tests.
    env!("CARGO_BIN_EXE_crudauth-demo")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the demos keep their state.
enum Shared<'a> {
    Redis { url: &'a str, prefix: &'a str },
    Database,
}

async fn start(port: u16, database: &str, shared: &Shared<'_>, secret: &str) -> Demo {
    let mut command = Command::new(demo_binary());
    command.args([
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--database",
        database,
    ]);
    match shared {
        Shared::Redis { url, prefix } => {
            command.args([
                "--store",
                "redis",
                "--redis-url",
                url,
                "--redis-prefix",
                prefix,
            ]);
        }
        Shared::Database => {
            command.args(["--store", "database"]);
        }
    }
    let demo = Demo(
        command
            .env("CRUDAUTH_SECRET_KEY", secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo"),
    );
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return demo;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the demo on port {port} never started");
}

/// A minimal HTTP/1.1 client: enough for these requests, loopback only.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim()))
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|r| r.split(';').next().unwrap_or("").to_owned())
        })
        .unwrap_or_default()
}

fn field(body: &str, key: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v[key].as_str().map(str::to_owned))
        .unwrap_or_default()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn two_processes_share_sessions_lockout_and_refresh_families_through_redis() {
    let Ok(redis) = std::env::var("CRUDAUTH_TEST_REDIS_URL") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED multi-process on Redis: CRUDAUTH_TEST_REDIS_URL is not set"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("crudauth-mp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}/users.db?mode=rwc", dir.display());
    let prefix = format!("crudauth-mp:{}:", uuid::Uuid::new_v4().simple());
    let shared = Shared::Redis {
        url: &redis,
        prefix: &prefix,
    };
    let secret = format!("multi-process-secret-{}", uuid::Uuid::new_v4().simple());
    let (pa, pb) = (free_port(), free_port());
    let _a = start(pa, &database, &shared, &secret).await;
    let _b = start(pb, &database, &shared, &secret).await;
    exercise(pa, pb).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn two_processes_share_state_through_the_database_store_on_postgres() {
    use sea_orm::{ConnectionTrait, Database};
    let Ok(url) = std::env::var("CRUDAUTH_TEST_POSTGRES_URL") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED multi-process on the database store: CRUDAUTH_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let schema = format!("ca_mp_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let admin = Database::connect(&url).await.expect("PostgreSQL reachable");
    admin
        .execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let database = format!("{url}{sep}options[search_path]={schema}");
    let secret = format!("multi-process-secret-{}", uuid::Uuid::new_v4().simple());
    let (pa, pb) = (free_port(), free_port());
    {
        let _a = start(pa, &database, &Shared::Database, &secret).await;
        let _b = start(pb, &database, &Shared::Database, &secret).await;
        exercise(pa, pb).await;
    }
    admin
        .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .ok();
}

/// Session shared, logout on one ends it on the other, a refresh token used on one is dead
/// on the other, and failures spread over both trip the lockout.
async fn exercise(pa: u16, pb: u16) {
    let (status, _, _) = http(
        pa,
        "POST",
        "/register",
        &[JSON],
        r#"{"email":"mp@example.com","username":"mp","password":"correct horse 1"}"#,
    )
    .await;
    assert_eq!(status, 202);

    // A session made on A is valid on B; logout on B ends it on A.
    let (status, head, body) = http(
        pa,
        "POST",
        "/login",
        &[FORM],
        "username=mp&password=correct+horse+1",
    )
    .await;
    assert_eq!(status, 200);
    let sid = cookie(&head, "session_id");
    let csrf = field(&body, "csrf_token");
    let jar = format!("session_id={sid}");
    assert_eq!(
        http(pb, "GET", "/me", &[("cookie", &jar)], "").await.0,
        200,
        "session known on B"
    );
    assert_eq!(
        http(
            pb,
            "POST",
            "/logout",
            &[("cookie", &jar), ("x-csrf-token", &csrf)],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        http(pa, "GET", "/me", &[("cookie", &jar)], "").await.0,
        401,
        "logged out on A too"
    );

    // A refresh token used on A is dead on B (and its reuse revokes the family).
    let (_, _, body) = http(
        pa,
        "POST",
        "/token",
        &[FORM],
        "username=mp&password=correct+horse+1",
    )
    .await;
    let refresh = field(&body, "refresh_token");
    let payload = format!("{{\"refresh_token\":\"{refresh}\"}}");
    assert_eq!(http(pa, "POST", "/refresh", &[JSON], &payload).await.0, 200);
    assert_eq!(http(pb, "POST", "/refresh", &[JSON], &payload).await.0, 401);

    // Five wrong passwords spread over both processes trip the lockout on either.
    for i in 0..5 {
        let port = if i % 2 == 0 { pa } else { pb };
        assert_eq!(
            http(
                port,
                "POST",
                "/login",
                &[FORM],
                "username=mp&password=wrong"
            )
            .await
            .0,
            401
        );
    }
    assert_eq!(
        http(
            pb,
            "POST",
            "/login",
            &[FORM],
            "username=mp&password=correct+horse+1"
        )
        .await
        .0,
        429
    );
    assert_eq!(
        http(
            pa,
            "POST",
            "/token",
            &[FORM],
            "username=mp&password=correct+horse+1"
        )
        .await
        .0,
        429
    );
}
