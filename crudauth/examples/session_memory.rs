//! Memory per idle session in the memory store: creates N sessions (default 100,000) through
//! the real `Sessions` and reports the process RSS before and after.
//!
//! ```text
//! cargo run --release -p crudauth --example session_memory [-- N]
//! ```

use std::sync::Arc;

use crudauth::{CrudAuth, SessionConfig};

#[path = "../benches/support/mod.rs"]
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
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
    let per = (after.saturating_sub(before) * 1024) / n.max(1);
    println!("sessions: {n}");
    println!("RSS before: {before} KiB, after: {after} KiB");
    println!("per idle session: {per} bytes");
    Ok(())
}
