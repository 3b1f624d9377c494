//! Recipe: one backend for browsers and API clients.
//!
//! ```text
//! cargo run -p crudauth-example-web-and-api -- [--addr 127.0.0.1:3000] [--database sqlite::memory:]
//! ```
//!
//! Both transports are configured: a browser signs in with `POST /login` and gets a session
//! cookie plus a CSRF token (every mutating request sends it back in `X-CSRF-Token`); an API
//! client signs in with `POST /token` and gets a short-lived JWT access token plus a rotating
//! refresh token (`POST /refresh`). The app's own handlers take one `Principal`, whichever
//! transport authenticated the request: `GET /api/whoami` answers which one it was, and the
//! notes API is shared by both, with scopes limiting what a token may do.

mod cli;
mod users;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use crudauth::{AuthError, BearerConfig, CrudAuth, Principal, SessionConfig, Transport};
use crudauth_sea::SeaUserRepository;
use sea_orm::{ConnectionTrait, Database, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

type User = users::Model;

/// The app's state: crudauth beside the app's own data. `FromRef` lets the extractors
/// (`Principal`, ...) find the `CrudAuth` inside it.
#[derive(Clone)]
struct AppState {
    auth: CrudAuth<User>,
    notes: Arc<Mutex<Vec<Note>>>,
}

impl FromRef<AppState> for CrudAuth<User> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

#[derive(Clone, Serialize)]
struct Note {
    owner: String,
    text: String,
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

/// Answers which transport authenticated the request. Same handler, same `Principal`.
async fn whoami(principal: Principal<User>) -> Json<Value> {
    Json(json!({
        "user_id": principal.user_id,
        "transport": principal.via.as_str(), // "session" or "bearer"
        "scopes": principal.scopes,
    }))
}

/// Scopes bound what a token may do. A browser session is the user at the keyboard and
/// carries no scopes, so the check applies to bearer principals only.
fn allow(principal: &Principal<User>, scope: &str) -> Result<(), AuthError> {
    if principal.via == Transport::Bearer && !principal.has_scopes(&[scope]) {
        return Err(AuthError::Forbidden("Insufficient scope"));
    }
    Ok(())
}

async fn list_notes(
    State(state): State<AppState>,
    principal: Principal<User>,
) -> Result<Json<Vec<Note>>, AuthError> {
    allow(&principal, "notes:read")?;
    let owner = principal.user_id.to_string();
    let notes = state.notes.lock().map_err(|_| AuthError::Internal)?;
    Ok(Json(
        notes.iter().filter(|n| n.owner == owner).cloned().collect(),
    ))
}

/// A mutating route. For a session `Principal` itself checks the CSRF token (403 without
/// it); a bearer request needs none (no browser attaches it on its own) but needs the scope.
async fn add_note(
    State(state): State<AppState>,
    principal: Principal<User>,
    Json(new): Json<NewNote>,
) -> Result<Json<Value>, AuthError> {
    allow(&principal, "notes:write")?;
    let note = Note {
        owner: principal.user_id.to_string(),
        text: new.text,
    };
    state
        .notes
        .lock()
        .map_err(|_| AuthError::Internal)?
        .push(note.clone());
    Ok(Json(
        json!({ "saved": note, "transport": principal.via.as_str() }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli::Args { addr, database } = cli::init()?;

    let db = Database::connect(&database).await?;
    let mut create = Schema::new(db.get_database_backend()).create_table_from_entity(users::Entity);
    db.execute(create.if_not_exists()).await?;

    let auth: CrudAuth<User> = CrudAuth::builder(SeaUserRepository::<User>::new(db))
        .secret_key(cli::secret_key())
        // Tried in this order: a request carrying both credentials is a session request.
        .session(SessionConfig {
            secure: !addr.ip().is_loopback(), // plain http on loopback only
            ..SessionConfig::default()
        })
        .bearer(BearerConfig {
            // `POST /token` grants what the client asks for (`scope=notes:read notes:write`)
            // up to this ceiling, and `notes:read` when it asks for nothing.
            default_scopes: ["notes:read".to_owned()].into(),
            grantable_scopes: ["notes:read".to_owned(), "notes:write".to_owned()].into(),
            ..BearerConfig::default()
        })
        .build()?;

    let state = AppState {
        auth: auth.clone(),
        notes: Arc::default(),
    };
    let app = Router::new()
        .route("/api/whoami", get(whoami))
        .route("/api/notes", get(list_notes).post(add_note))
        .with_state(state)
        // /register, /me, /login, /logout, /logout-all, /sessions, /token, /refresh, /tokens...
        .merge(auth.router());

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
