//! The command line and environment of the recipe; nothing here is crudauth-specific.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What the command line asks for.
pub struct Args {
    /// `--addr`, default `127.0.0.1:3000` (`:0` picks a free port).
    pub addr: SocketAddr,
    /// `--database`, any SQLite URL; default an in-memory database.
    pub database: String,
    /// `--outbox FILE`: where the welcome mails go, one JSON object a line (appended);
    /// without it they are only logged.
    pub outbox: Option<PathBuf>,
    /// `--blocked-domain DOMAIN`, repeatable: sign-ups from these domains are refused;
    /// default `blocked.example`.
    pub blocked_domains: Vec<String>,
}

/// Starts the log (`RUST_LOG`, default `info`) and reads the command line.
pub fn init() -> Result<Args, String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .init();
    let mut parsed = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        database: "sqlite::memory:".to_owned(),
        outbox: None,
        blocked_domains: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => parsed.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--database" => parsed.database = value()?,
            "--outbox" => parsed.outbox = Some(value()?.into()),
            "--blocked-domain" => parsed.blocked_domains.push(value()?.to_ascii_lowercase()),
            _ => {
                return Err(format!(
                    "unknown argument {arg}; takes --addr, --database, --outbox and \
                     --blocked-domain"
                ));
            }
        }
    }
    if parsed.blocked_domains.is_empty() {
        parsed.blocked_domains.push("blocked.example".to_owned());
    }
    Ok(parsed)
}

/// `CRUDAUTH_SECRET_KEY` (32+ bytes), or a random key that dies with the process.
pub fn secret_key() -> Vec<u8> {
    std::env::var("CRUDAUTH_SECRET_KEY")
        .unwrap_or_else(|_| {
            tracing::warn!(
                "CRUDAUTH_SECRET_KEY is not set: using an ephemeral random key, so sessions \
                 and tokens stop working when the process ends"
            );
            crudauth::generate_secret_key()
        })
        .into_bytes()
}
