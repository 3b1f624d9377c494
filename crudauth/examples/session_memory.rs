//! Memory per idle session in the memory store: creates N sessions (default 100,000) through
//! the real `SessionManager` and reports the process RSS before and after.
//!
//! ```text
//! cargo run --release -p crudauth --example session_memory [-- N]
//! ```

use crudauth::user::{
    IdKind, IdentityField, LogicalField, NewUser, RepoError, UserId, UserRecord, UserRepository,
    UserSchema, UserUpdate,
};
use crudauth::{CrudAuth, SessionConfig};

#[derive(Clone)]
struct User;

impl UserRecord for User {
    fn user_id(&self) -> UserId {
        UserId::Int(1)
    }
    fn email(&self) -> Option<&str> {
        None
    }
    fn username(&self) -> Option<&str> {
        None
    }
    fn password_hash(&self) -> Option<&str> {
        None
    }
    fn is_active(&self) -> bool {
        true
    }
    fn is_superuser(&self) -> bool {
        false
    }
    fn email_verified(&self) -> bool {
        false
    }
    fn token_version(&self) -> Option<i64> {
        Some(0)
    }
}

const EMAIL: IdentityField = IdentityField {
    column: "email",
    logical: Some(LogicalField::Email),
};
static SCHEMA: UserSchema = UserSchema {
    table: "none",
    id_kind: IdKind::Int,
    present: &[
        LogicalField::Id,
        LogicalField::Email,
        LogicalField::Password,
    ],
    login: &[EMAIL],
    recovery: None,
};

struct NoUsers;

impl UserRepository for NoUsers {
    type User = User;
    fn schema(&self) -> &UserSchema {
        &SCHEMA
    }
    async fn find_by_id(&self, _: &UserId) -> Result<Option<User>, RepoError> {
        Ok(None)
    }
    async fn find_by_login(&self, _: &str) -> Result<Option<User>, RepoError> {
        Ok(None)
    }
    async fn find_by_recovery(&self, _: &str) -> Result<Option<User>, RepoError> {
        Ok(None)
    }
    async fn create(&self, _: NewUser) -> Result<User, RepoError> {
        Err(RepoError::NotFound)
    }
    async fn update(&self, _: &UserId, _: UserUpdate) -> Result<User, RepoError> {
        Err(RepoError::NotFound)
    }
    async fn set_password_hash(&self, _: &UserId, _: &str) -> Result<(), RepoError> {
        Ok(())
    }
    async fn bump_token_version(&self, _: &UserId) -> Result<Option<i64>, RepoError> {
        Ok(None)
    }
}

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
    let auth = CrudAuth::builder(NoUsers)
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
