//! Recipe: the app's own sign-in routes on crudauth's building blocks, without
//! `auth.router()`.
//!
//! ```text
//! cargo run -p crudauth-example-building-blocks -- [--addr 127.0.0.1:3000] [--database sqlite::memory:]
//! ```
//!
//! The app keeps its own URLs and JSON shapes and calls what the library's routes call:
//!
//! - `POST /signup {email, password}`: the password policy, the hasher and the repository;
//! - `POST /signin {email, password}`: `authenticate_password` (lockout, a timing-equalised
//!   check, disabled accounts, rehash) and a session from `auth.sessions()`, whose cookies
//!   `crudauth::transport::session::set_sign_in_cookies` sets under the library's policy;
//! - `POST /api-token {email, password, scopes}`: `authenticate_password` and
//!   `auth.login().issue_tokens`;
//! - `GET /profile`, `POST /signout`: the `Principal` extractor, which works on the app's
//!   routes as on the library's (either transport; the CSRF check for a session's POST).

mod cli;
mod users;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crudauth::policy::{PasswordContext, PasswordSource};
use crudauth::transport::session;
use crudauth::{
    AuthError, BearerConfig, ClientMeta, CrudAuth, KeyBy, NewUser, Principal, RateLimit, RepoError,
    SessionConfig, UserRecord,
};
use crudauth_sea::SeaUserRepository;
use sea_orm::{ConnectionTrait, Database, Schema};
use serde::Deserialize;
use serde_json::json;

type User = users::Model;
type Auth = State<CrudAuth<User>>;

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
    /// Read by `/api-token` only.
    #[serde(default)]
    scopes: Vec<String>,
}

async fn signup(State(auth): Auth, Json(new): Json<Credentials>) -> Result<Response, AuthError> {
    // crudauth's own address check is not public: refuse what no mailbox looks like, and the
    // characters of RFC 5322 display forms (`x<evil@example.com>`), before anything is stored.
    let specials = |c: char| c.is_whitespace() || c.is_control() || r#"<>()[],;:"\"#.contains(c);
    match new.email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => {}
        _ => return Err(AuthError::BadRequest("Invalid email address")),
    }
    if new.email.chars().any(specials) {
        return Err(AuthError::BadRequest("Invalid email address"));
    }
    let ctx = PasswordContext {
        source: PasswordSource::Register,
        username: None,
        email: Some(new.email.clone()),
    };
    auth.login()
        .validate_password(&new.password, &ctx, "password")
        .await?; // 422, one entry per unmet rule
    // After the policy check this fails only when the hasher's line is full: 503.
    let hash = auth.passwords().hash(&new.password).await;
    let hash = hash.map_err(|_| AuthError::Unavailable)?;
    match auth
        .repo()
        .create(NewUser::new(hash).email(&new.email))
        .await
    {
        // A taken address answers like a new one: the route does not tell who has an account.
        Ok(_) | Err(RepoError::Duplicate { .. }) => {}
        Err(RepoError::TooLong { .. }) => return Err(AuthError::BadRequest("Email too long")),
        Err(e) => {
            tracing::error!(error = %e, "signup");
            return Err(AuthError::Unavailable);
        }
    }
    let answer = Json(json!({ "detail": "Signed up." }));
    Ok((StatusCode::ACCEPTED, answer).into_response())
}

/// `ClientMeta` (client address and User-Agent) feeds the per-client lockout.
async fn signin(
    State(auth): Auth,
    client: ClientMeta,
    headers: HeaderMap,
    Json(creds): Json<Credentials>,
) -> Result<Response, AuthError> {
    // Login CSRF: a page on another site must not sign the browser into someone's account.
    if session::is_cross_site(&headers) {
        return Err(AuthError::Forbidden("Cross-site sign-in refused"));
    }
    let verified = auth
        .authenticate_password(&creds.email, &creds.password, &client, "session")
        .await?;
    let sessions = auth.sessions().ok_or(AuthError::Internal)?;
    let ip = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let uid = verified.user.user_id().to_string();
    // `verified.epoch` was read before the password check: a password change that lands
    // meanwhile ends this session too.
    let new = sessions
        .create(&uid, verified.epoch, &ip, &client.user_agent)
        .await?;
    let body = json!({ "user_id": verified.user.id, "csrf_token": new.csrf_token });
    let mut response = Json(body).into_response();
    // The library's cookie policy (`HttpOnly`, `SameSite`, `Secure`, the `__Host-` rules).
    session::set_sign_in_cookies(sessions, &new, &mut response);
    Ok(response)
}

async fn api_token(
    State(auth): Auth,
    client: ClientMeta,
    Json(creds): Json<Credentials>,
) -> Result<Response, AuthError> {
    let verified = auth
        .authenticate_password(&creds.email, &creds.password, &client, "bearer")
        .await?;
    // Scopes are clamped to `BearerConfig::grantable_scopes`; none asked for gets the defaults.
    // Issued at `verified.epoch`, read before the password check: a password change that
    // lands meanwhile revokes this pair too.
    let scopes = creds.scopes.iter().map(String::as_str);
    let pair = auth.login().issue_tokens(&verified, scopes).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(pair)).into_response())
}

async fn profile(principal: Principal<User>) -> Response {
    let body = json!({ "email": principal.user.email, "transport": principal.via.as_str() });
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// A POST riding a session: `Principal` has already checked its CSRF token.
async fn signout(State(auth): Auth, principal: Principal<User>) -> Result<Response, AuthError> {
    let (Some(sessions), Some(handle)) = (auth.sessions(), &principal.session_handle) else {
        return Err(AuthError::BadRequest("Not signed in with a session"));
    };
    sessions
        .delete(handle, &principal.user_id.to_string())
        .await?;
    let mut response = Json(json!({ "detail": "Signed out." })).into_response();
    session::clear_cookies(sessions, &mut response);
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli::Args { addr, database } = cli::init()?;
    let db = Database::connect(&database).await?;
    let mut create = Schema::new(db.get_database_backend()).create_table_from_entity(users::Entity);
    db.execute(create.if_not_exists()).await?;

    // Both transports are configured, so `sessions()` and `issue_tokens` have something to
    // work with and `Principal` reads cookies and bearer tokens; no route is mounted.
    let auth: CrudAuth<User> = CrudAuth::builder(SeaUserRepository::<User>::new(db))
        .secret_key(cli::secret_key())
        .session(SessionConfig {
            secure: !addr.ip().is_loopback(),
            ..SessionConfig::default()
        })
        .bearer(BearerConfig {
            grantable_scopes: ["profile:read".to_owned()].into(),
            ..BearerConfig::default()
        })
        .build()?;

    let hourly = RateLimit::new(5, Duration::from_secs(3600));
    let app = Router::new()
        .route(
            "/signup",
            post(signup).route_layer(auth.rate_limit("signup", hourly, KeyBy::Ip)),
        )
        .route("/signin", post(signin))
        .route("/api-token", post(api_token))
        .route("/profile", get(profile))
        .route("/signout", post(signout))
        .with_state(auth);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The tests wait for this line (and read the port from it when `--addr` ends in `:0`).
    println!("listening on http://{}", listener.local_addr()?);
    // Required: the lockout counts per client address, read from `ConnectInfo`.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
