//! The baseline of the load harness: what crudauth's bearer hot path does, written by hand
//! as well as we can, without the library.
//!
//! - `GET /me`: verify an HS256 bearer JWT of the same shape (`sub`, `ver`, `exp`, `iat`,
//!   `jti`, `token_type`, `scopes`; algorithm pinned, `exp`/`iat`/`sub` required, type
//!   checked), load the user row by primary key with SeaORM from the same SQLite file, check
//!   the epoch, answer the same JSON as the library's `/me`.
//! - `GET /plain`: no auth at all.
//! - `crudauth-baseline mint <account_id>` prints a token for the harness.
//!
//! ```text
//! BASELINE_KEY=<32+ bytes> crudauth-baseline serve --addr 127.0.0.1:8101 --database sqlite://crudauth-demo.db
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::entity::prelude::*;
use sea_orm::{Database, DatabaseConnection};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The demo's `accounts` table, read-only here.
mod accounts;

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    ver: i64,
    exp: u64,
    iat: u64,
    jti: String,
    token_type: String,
    scopes: Vec<String>,
}

struct AppState {
    db: DatabaseConnection,
    key: DecodingKey,
    validation: Validation,
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "detail": "Not authenticated" })),
    )
        .into_response()
}

async fn me(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized();
    };
    let Ok(data) = jsonwebtoken::decode::<Claims>(token, &state.key, &state.validation) else {
        return unauthorized();
    };
    let claims = data.claims;
    if claims.token_type != "access" {
        return unauthorized();
    }
    let Ok(id) = claims.sub.parse::<i32>() else {
        return unauthorized();
    };
    let user = match accounts::Entity::find_by_id(id).one(&state.db).await {
        Ok(Some(user)) => user,
        Ok(None) => return unauthorized(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    // The legacy table has no token_version column: every token is at epoch 0 here.
    if claims.ver != 0 {
        return unauthorized();
    }
    Json(json!({
        "user_id": user.account_id,
        "username": user.username,
        "email": user.email_address,
        "is_superuser": user.is_admin,
        "scopes": claims.scopes,
        "via": "bearer",
    }))
    .into_response()
}

fn key() -> Vec<u8> {
    std::env::var("BASELINE_KEY")
        .unwrap_or_else(|_| "baseline-key-of-at-least-32-bytes!!".into())
        .into_bytes()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("mint") {
        let sub = args.get(1).ok_or("mint <account_id>")?;
        let claims = Claims {
            sub: sub.clone(),
            ver: 0,
            exp: now() + 3600,
            iat: now(),
            jti: format!("baseline-{}", now()),
            token_type: "access".into(),
            scopes: vec!["me:read".into()],
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&key()),
        )?;
        println!("{token}");
        return Ok(());
    }
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8101));
    let mut database = "sqlite://crudauth-demo.db".to_owned();
    let mut it = args.iter().skip_while(|a| a.as_str() == "serve");
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--addr" => addr = it.next().ok_or("--addr needs a value")?.parse()?,
            "--database" => database = it.next().ok_or("--database needs a value")?.clone(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let db = Database::connect(&database).await?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);
    validation.validate_aud = false;
    let state = Arc::new(AppState {
        db,
        key: DecodingKey::from_secret(&key()),
        validation,
    });
    let app = Router::new()
        .route("/me", get(me))
        .route("/plain", get(|| async { "ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
