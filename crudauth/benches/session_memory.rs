//! Memory per idle session in the memory store: creates N sessions (default 100,000) through
//! the real `Sessions` and reports the process RSS before and after. Then the memory of the
//! user cache per cached user: N users (this bench's model: an integer id, a 20-odd-byte
//! email, a 97-byte argon2id hash) signed in by bearer token and resolved once each, with a
//! cache large enough to keep them all.
//!
//! ```text
//! cargo bench -p crudauth --bench session_memory            # 100,000 sessions
//! cargo bench -p crudauth --bench session_memory -- 20000   # N sessions
//! ```
//!
//! A plain `main` (`harness = false`): the argument that is a number is N (`100_000`
//! works too); flags, such as the `--bench` cargo adds, are ignored. Any other argument is a
//! bench-name filter, as criterion takes (`cargo bench -p crudauth -- tokens` skips this
//! bench). Run as a test (`cargo test --benches`, no `--bench` flag) it makes 1,000 sessions,
//! a smoke check and not a measurement.

use std::sync::Arc;

use crudauth::{BearerConfig, CrudAuth, SessionConfig, UserCacheConfig};

#[path = "support/mod.rs"]
mod support;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// What to run, from the command line.
enum Run {
    /// Make this many sessions.
    Sessions(u64),
    /// A filter names other benches only: nothing to do.
    Skip,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Run, String> {
    let mut bench_mode = false;
    let mut count = None;
    let mut filters = Vec::new();
    for arg in args {
        if arg == "--bench" {
            bench_mode = true;
        } else if arg.starts_with('-') {
            // cargo's and libtest's flags (`--nocapture`, `--quiet`, ...): not ours.
        } else if let Ok(n) = arg.replace('_', "").parse::<u64>() {
            if count.replace(n).is_some() {
                return Err(format!("more than one session count given ({arg})"));
            }
        } else {
            filters.push(arg);
        }
    }
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| "session_memory".contains(f.as_str()))
    {
        return Ok(Run::Skip);
    }
    let default = if bench_mode { 100_000 } else { 1_000 };
    match count.unwrap_or(default) {
        0 => Err("the session count must be at least 1".into()),
        n => Ok(Run::Sessions(n)),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = match parse_args(std::env::args().skip(1))? {
        Run::Sessions(n) => n,
        Run::Skip => return Ok(()),
    };
    let auth = CrudAuth::builder(support::OneUser(Arc::new(support::User {
        id: 1,
        email: "memory@example.com".into(),
        hash: String::new(),
    })))
    .secret_key(vec![9u8; 32])
    .session(SessionConfig {
        // One session per user: this measures idle sessions, not eviction.
        max_sessions_per_user: 1,
        ..SessionConfig::default()
    })
    .build()?;
    let sessions = auth.sessions().ok_or("session transport")?;
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    let before = rss_kib();
    for i in 0..n {
        sessions
            .create(&i.to_string(), 0, "203.0.113.77", ua)
            .await?;
    }
    let after = rss_kib();
    let per = (after.saturating_sub(before) * 1024) / n;
    println!("sessions: {n}");
    println!("RSS before: {before} KiB, after: {after} KiB");
    println!("per idle session: {per} bytes");
    drop(auth);
    cache_memory(n).await
}

/// RSS growth per cached user: tokens are minted first (their refresh records are not the
/// cache's), then each is resolved once, which loads its user into the cache.
async fn cache_memory(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let template = support::User {
        id: 0,
        email: String::new(),
        hash: concat!(
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$",
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
        )
        .to_owned(),
    };
    let capacity = usize::try_from(n)?;
    let auth = CrudAuth::builder(support::OneUser::every_id(template))
        .secret_key(vec![9u8; 32])
        .bearer(BearerConfig::default())
        .user_cache(UserCacheConfig {
            capacity,
            max_age: None,
        })
        .build()?;
    let tokens = auth.tokens().ok_or("bearer transport")?;
    let mut headers = Vec::with_capacity(capacity);
    for i in 1..=n {
        let pair = tokens.issue(&i.to_string(), 0, vec![]).await?;
        headers.push(format!("Bearer {}", pair.access_token));
    }
    let before = rss_kib();
    for header in &headers {
        let request = axum::http::Request::get("/me")
            .header(axum::http::header::AUTHORIZATION, header)
            .body(())?;
        let (parts, ()) = request.into_parts();
        auth.authenticate(&parts, None)
            .await?
            .ok_or("a minted token resolves")?;
    }
    let after = rss_kib();
    let per = (after.saturating_sub(before) * 1024) / n;
    println!("cached users: {n}");
    println!("RSS before: {before} KiB, after: {after} KiB");
    println!("per cached user: {per} bytes");
    Ok(())
}
