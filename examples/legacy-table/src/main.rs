//! Recipe: adopt an existing user table with `#[derive(AuthUser)]`.
//!
//! ```text
//! cargo run -p crudauth-example-legacy-table -- [--addr 127.0.0.1:3000] [--database sqlite::memory:]
//! ```
//!
//! The app already has a `members` table, made here with raw SQL as an older version of the
//! app would have made it: `member_id`, `email_address`, `pw_hash`, an `active` flag, and a
//! `display_name` crudauth knows nothing about. The derive (in `members.rs`) maps the columns
//! crudauth needs and leaves the rest to the app; the app's own `GET /me` reads
//! `display_name` straight off the principal's model, without a second query. Sign-in is a
//! cookie session; the library's routes live under `/auth` (`/auth/register`,
//! `/auth/login`, `/auth/logout`, ...), so the app keeps `/me` for itself.

mod cli;
mod members;

use std::net::SocketAddr;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use crudauth::{CrudAuth, Principal, SessionConfig};
use crudauth_sea::SeaUserRepository;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::json;

type Member = members::Model;

/// The table as the app created it long before crudauth. Nothing here is crudauth's: no
/// `token_version` column (the revocation epoch then lives in crudauth's store) and a
/// `joined_on` column the entity does not even list.
const CREATE_MEMBERS: &str = "CREATE TABLE IF NOT EXISTS members (
    member_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    email_address VARCHAR(254) NOT NULL UNIQUE,
    pw_hash       TEXT NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT 1,
    display_name  VARCHAR(80),
    joined_on     TEXT NOT NULL DEFAULT CURRENT_DATE
)";

/// The password of the two members the example seeds (a demo value, never a real one).
const SEED_PASSWORD: &str = "correct-horse-battery-staple";

/// The app's own `/me`: `principal.user` is the `members` row as the app's own type.
async fn me(principal: Principal<Member>) -> impl IntoResponse {
    let member = &principal.user;
    (
        // It shows personal data: never cached.
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "member_id": member.member_id,
            "email": member.email_address,
            "display_name": member.display_name,
        })),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli::Args { addr, database } = cli::init()?;

    // The existing database and table.
    let db = Database::connect(&database).await?;
    db.execute_unprepared(CREATE_MEMBERS).await?;

    let auth: CrudAuth<Member> = CrudAuth::builder(SeaUserRepository::<Member>::new(db.clone()))
        .secret_key(cli::secret_key())
        .session(SessionConfig {
            // Plain-http development on loopback; anywhere else the cookie is `Secure`.
            secure: !addr.ip().is_loopback(),
            ..SessionConfig::default()
        })
        // `/auth/register` may fill this own column; any other field of the body is dropped.
        .register_extra_fields(["display_name"])
        .build()?;

    // Rows that predate crudauth. Their `pw_hash` must be argon2id PHC strings for crudauth
    // to verify them; here the library's hasher makes them.
    let hash = auth.passwords().hash(SEED_PASSWORD).await?;
    for (email, name, active) in [
        ("grace@example.com", "Grace Hopper", true),
        ("ada@example.com", "Ada Lovelace", false), // left: her sign-in is refused
    ] {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT OR IGNORE INTO members (email_address, pw_hash, active, display_name) \
             VALUES (?, ?, ?, ?)",
            [
                email.into(),
                hash.clone().into(),
                active.into(),
                name.into(),
            ],
        ))
        .await?;
    }

    let app = Router::new()
        .route("/me", get(me))
        .with_state(auth.clone())
        .nest("/auth", auth.router());

    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The tests wait for this line (and read the port from it when `--addr` ends in `:0`).
    println!("listening on http://{}", listener.local_addr()?);
    // Required: the lockout counts per client address, read from `ConnectInfo`.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
