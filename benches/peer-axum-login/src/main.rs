//! The peer of the load comparison: session sign-in as a Rust developer would build it with
//! axum-login and tower-sessions instead of crudauth, as close to the crates' own examples as
//! the comparison allows.
//!
//! - `POST /login` (form `username`, `password`): finds the row of the demo's `accounts`
//!   table by username or email with SeaORM, verifies the stored argon2id hash (the demo's
//!   own hashes, so the same parameters) on tokio's blocking pool, and signs in through
//!   `AuthSession::login` (a new session id in tower-sessions' in-memory store).
//! - `GET /me`: the session layer loads the user through the backend on every request (the
//!   row by primary key) and checks the session's auth hash, as axum-login does; answers the
//!   same JSON as the demo's `/me`.
//!
//! ```text
//! peer-axum-login --addr 127.0.0.1:8102 --database sqlite://load.db
//! ```

use std::net::SocketAddr;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, UserId};
use sea_orm::entity::prelude::*;
use sea_orm::{Condition, Database, DatabaseConnection};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::{MemoryStore, SessionManagerLayer};

/// The demo's `accounts` table, read-only here: the baseline's own model, so both read the
/// same columns.
#[path = "../../baseline/src/accounts.rs"]
mod accounts;

#[derive(Clone, Debug)]
struct User(accounts::Model);

impl AuthUser for User {
    type Id = i32;

    fn id(&self) -> i32 {
        self.0.account_id
    }

    fn session_auth_hash(&self) -> &[u8] {
        self.0.pw_hash.as_bytes()
    }
}

#[derive(Clone, Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Clone)]
struct Backend {
    db: DatabaseConnection,
}

#[derive(Debug)]
struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = Error;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, Error> {
        let row = accounts::Entity::find()
            .filter(
                Condition::any()
                    .add(accounts::Column::Username.eq(creds.username.clone()))
                    .add(accounts::Column::EmailAddress.eq(creds.username.clone())),
            )
            .one(&self.db)
            .await
            .map_err(|e| Error(e.to_string()))?;
        let Some(row) = row else { return Ok(None) };
        let hash = row.pw_hash.clone();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(creds.password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .map_err(|e| Error(e.to_string()))?;
        Ok(ok.then_some(User(row)))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, Error> {
        accounts::Entity::find_by_id(*id)
            .one(&self.db)
            .await
            .map(|row| row.map(User))
            .map_err(|e| Error(e.to_string()))
    }
}

async fn login(mut auth: AuthSession<Backend>, Form(creds): Form<Credentials>) -> Response {
    match auth.authenticate(creds).await {
        Ok(Some(user)) => match auth.login(&user).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Invalid credentials"})),
        )
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn me(auth: AuthSession<Backend>) -> Response {
    let Some(User(user)) = auth.user else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Not authenticated"})),
        )
            .into_response();
    };
    Json(json!({
        "user_id": user.account_id,
        "username": user.username,
        "email": user.email_address,
        "is_superuser": user.is_admin,
        "via": "session",
    }))
    .into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8102));
    let mut database = "sqlite://crudauth-demo.db".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?.parse()?,
            "--database" => database = args.next().ok_or("--database needs a value")?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let db = Database::connect(&database).await?;
    // Loopback over plain HTTP: the cookie must not be Secure-only for wrk to send it back.
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    let auth = AuthManagerLayerBuilder::new(Backend { db }, sessions).build();
    let app = Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .layer(auth);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
