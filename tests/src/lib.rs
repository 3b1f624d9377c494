//! Support for the integration tests: the reference models and the backend matrix.
//!
//! Every test gets a database of its own: an in-memory SQLite database, a fresh PostgreSQL
//! schema, or a fresh MariaDB database, so parallel tests never collide. PostgreSQL and
//! MariaDB run when `CRUDAUTH_TEST_POSTGRES_URL` / `CRUDAUTH_TEST_MYSQL_URL` are set; when
//! they are not, the test says loudly that it skipped them.

pub mod fake_captcha;
pub mod http;
pub mod models;
pub mod oauth_provider;
pub mod passkey_client;
pub mod store_conformance;
pub mod stores;

use std::io::Write;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait, Schema,
};

/// The backends of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, always.
    Sqlite,
    /// PostgreSQL, when `CRUDAUTH_TEST_POSTGRES_URL` is set.
    Postgres,
    /// MySQL / MariaDB, when `CRUDAUTH_TEST_MYSQL_URL` is set.
    Mysql,
}

impl Backend {
    /// Every backend of the matrix.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::Mysql];

    /// The environment variable naming the server, if the backend needs one.
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("CRUDAUTH_TEST_POSTGRES_URL"),
            Backend::Mysql => Some("CRUDAUTH_TEST_MYSQL_URL"),
        }
    }
}

/// A database of one test's own; drop it with [`TestDb::cleanup`].
pub struct TestDb {
    /// The connection.
    pub db: DatabaseConnection,
    /// Which backend it is.
    pub backend: Backend,
    admin: Option<(DatabaseConnection, String)>,
}

fn unique_name(test: &str) -> String {
    let short: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(20)
        .collect();
    format!(
        "ca_{}_{}",
        short.to_lowercase(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Opens a fresh, isolated database on `backend` for the test `test`, or `None` (after
/// printing why) when the backend's server is not configured.
///
/// A configured server that cannot be reached is a failure, not a skip.
pub async fn open(backend: Backend, test: &str) -> Option<TestDb> {
    match backend {
        Backend::Sqlite => {
            let mut opts = ConnectOptions::new("sqlite::memory:");
            opts.max_connections(1).sqlx_logging(false);
            let db = Database::connect(opts)
                .await
                .expect("open in-memory SQLite");
            Some(TestDb {
                db,
                backend,
                admin: None,
            })
        }
        Backend::Postgres | Backend::Mysql => {
            let var = backend.env_var().unwrap_or_default();
            let Ok(url) = std::env::var(var) else {
                // Written to the raw stderr handle on purpose: the test harness captures
                // `eprintln!` of passing tests, and a skip must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test} on {backend:?}: {var} is not set (set it to run this backend)"
                );
                return None;
            };
            let name = unique_name(test);
            let mut admin_opts = ConnectOptions::new(url.clone());
            admin_opts.max_connections(1).sqlx_logging(false);
            let admin = Database::connect(admin_opts)
                .await
                .unwrap_or_else(|e| panic!("{var} is set but {backend:?} is unreachable: {e}"));
            let mut opts;
            if backend == Backend::Postgres {
                admin
                    .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
                    .await
                    .expect("create schema");
                opts = ConnectOptions::new(url);
                opts.set_schema_search_path(name.clone());
            } else {
                admin
                    .execute_unprepared(&format!("CREATE DATABASE `{name}`"))
                    .await
                    .expect("create database");
                let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
                opts = ConnectOptions::new(format!("{base}/{name}"));
            }
            opts.max_connections(5).sqlx_logging(false);
            let db = Database::connect(opts)
                .await
                .expect("connect to the test database");
            Some(TestDb {
                db,
                backend,
                admin: Some((admin, name)),
            })
        }
    }
}

impl TestDb {
    /// Creates the table of `entity` from its definition.
    pub async fn create_table<E: EntityTrait>(&self, entity: E) {
        let backend: DbBackend = self.db.get_database_backend();
        let stmt = Schema::new(backend).create_table_from_entity(entity);
        self.db.execute(&stmt).await.expect("create table");
    }

    /// Drops the test's schema or database.
    pub async fn cleanup(self) {
        self.db.close().await.ok();
        if let Some((admin, name)) = self.admin {
            let sql = match self.backend {
                Backend::Postgres => format!("DROP SCHEMA \"{name}\" CASCADE"),
                _ => format!("DROP DATABASE `{name}`"),
            };
            admin.execute_unprepared(&sql).await.ok();
            admin.close().await.ok();
        }
    }
}

/// Waits, when the clock is within 3 seconds of a TOTP step's end, for the next step to
/// begin: a code of the previous step computed just before a boundary would otherwise be two
/// steps old by the time the server checks it (outside its one step of drift).
pub async fn away_from_step_edge() {
    let into_step = unix_now() % 30;
    if into_step >= 27 {
        tokio::time::sleep(std::time::Duration::from_secs(30 - into_step + 1)).await;
    }
}

/// The RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret at a unix time: what an
/// authenticator app shows.
pub fn totp_code(secret: &str, unix_time: u64) -> String {
    let raw = totp_rs::Secret::try_from_base32(secret).expect("a base32 secret");
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(raw)
        .with_account_name("t")
        .build()
        .expect("a TOTP");
    totp.generate(unix_time).to_string()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The log lines (WARN and above) written on this thread while it lives: for tests that
/// prove an event is logged. `#[tokio::test]` runs its task on the test's thread.
pub struct LogCapture {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Starts capturing.
    pub fn start() -> Self {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = SharedBuffer(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        LogCapture {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Everything logged at INFO and above in this test process, through one global subscriber
/// installed on the first call. A scoped subscriber ([`LogCapture`]) can miss an event whose
/// call site a test on another thread reached first; tests that must see an INFO line use
/// this and look for their own ids in it.
pub fn global_log() -> String {
    static LOG: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
        std::sync::OnceLock::new();
    let buffer = LOG.get_or_init(|| {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = SharedBuffer(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buffer
    });
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}
