//! Recipe: hooks as closures.
//!
//! ```text
//! cargo run -p crudauth-example-hooks -- [--addr 127.0.0.1:3000] [--database sqlite::memory:]
//!     [--outbox outbox.jsonl] [--blocked-domain blocked.example]...
//! ```
//!
//! Everything the app adds to sign-up and sign-in is a closure given to the builder, and
//! every closure that is about an account receives the app's own model (`Arc<User>`), so it
//! reads the app's columns (`display_name`, `plan`, `suspended_until`) without a query:
//!
//! - an audit log: `on_after_login`, `on_login_failed`, `on_lockout`, `on_after_logout` and
//!   `on_after_password_changed` append to a log that administrators read at `GET /audit`;
//! - a domain veto: `on_before_register` refuses sign-ups from the `--blocked-domain`s with
//!   a 422 on the `email` field;
//! - a suspension veto: `on_before_login` refuses the right password of an account whose
//!   `suspended_until` lies ahead, answered exactly like a wrong password (the audit log
//!   shows the reason `refused`);
//! - a welcome mail: `on_after_register` writes a message to the outbox (`--outbox FILE`,
//!   one JSON object a line), after the answer has gone out.
//!
//! The library's routes (`/register`, `/login`, `/logout`, `/token`, `/change-password`,
//! `/me`, ...) are merged as they are; the app adds `GET /audit` only.

mod audit;
mod cli;
mod outbox;
mod users;

use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use crudauth::{
    BearerConfig, CrudAuth, HookContext, HookError, NewUser, RepoError, SessionConfig, Superuser,
    Veto,
};
use crudauth_sea::SeaUserRepository;
use sea_orm::{ConnectionTrait, Database, Schema};
use serde_json::json;

use crate::audit::{AuditLog, now_secs};
use crate::outbox::Outbox;

type User = users::Model;

/// The password of the suspended account the example seeds (a demo value, never a real one).
const SEED_PASSWORD: &str = "correct-horse-battery-staple";

/// The app's state: crudauth beside the audit log. `FromRef` lets the extractors
/// (`Superuser`, ...) find the `CrudAuth` inside it.
#[derive(Clone)]
struct AppState {
    auth: CrudAuth<User>,
    audit: AuditLog,
}

impl FromRef<AppState> for CrudAuth<User> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// `GET /audit`: the log, oldest first, for administrators only (401 signed out, 403 for
/// anyone else). It names accounts and addresses: never cached.
async fn read_audit(
    State(state): State<AppState>,
    Superuser(_admin): Superuser<User>,
) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(state.audit.entries()),
    )
}

/// The hook for an event about one account: appends `event` with the account's own columns.
/// One closure per event, made by this function.
fn audit_event(
    log: &AuditLog,
    event: &'static str,
) -> impl Fn(Arc<User>, HookContext) -> Ready<Result<(), HookError>> + Send + Sync + 'static {
    let log = log.clone();
    move |user, ctx| {
        log.record(event, Some(&user), &ctx, json!({}));
        ready(Ok(()))
    }
}

/// Whether an address is at one of the blocked domains (the address reaches the veto in
/// its canonical form; the comparison ignores case anyway).
fn blocked(email: Option<&str>, domains: &[String]) -> bool {
    let domain = email.and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
    domain.is_some_and(|d| domains.iter().any(|b| b.eq_ignore_ascii_case(d)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli::Args {
        addr,
        database,
        outbox,
        blocked_domains,
    } = cli::init()?;

    let db = Database::connect(&database).await?;
    let mut create = Schema::new(db.get_database_backend()).create_table_from_entity(users::Entity);
    db.execute(create.if_not_exists()).await?;

    let audit = AuditLog::default();
    let outbox = Outbox::new(outbox);

    let auth: CrudAuth<User> = CrudAuth::builder(SeaUserRepository::<User>::new(db))
        .secret_key(cli::secret_key())
        .session(SessionConfig {
            secure: !addr.ip().is_loopback(), // plain http on loopback only
            ..SessionConfig::default()
        })
        .bearer(BearerConfig::default())
        // `/register` may fill this own column; `plan` and `suspended_until` are server-set.
        .register_extra_fields(["display_name"])
        // The domain veto: asked after the body is validated, before anything is written,
        // and for a taken address as for a new one (the 422 tells nothing about accounts).
        .on_before_register(move |new: NewUser, _ctx| {
            let refused = blocked(new.email.as_deref(), &blocked_domains);
            async move {
                if refused {
                    Err(Veto::new("Sign-ups from this domain are closed").on_field("email"))
                } else {
                    Ok(())
                }
            }
        })
        // The suspension veto: asked only once the password was found right. The client
        // gets the answer of a wrong password; the message goes to the server's log only.
        .on_before_login(|user: Arc<User>, _ctx| async move {
            match user.suspended_until {
                Some(until) if until > now_secs() => {
                    Err(Veto::new(format!("suspended until {until}")))
                }
                _ => Ok(()),
            }
        })
        // The welcome mail: runs after the `202` has gone out, and only for an account that
        // was really created (a taken address gets the same `202` and no mail).
        .on_after_register({
            let outbox = outbox.clone();
            move |user: Arc<User>, _ctx| {
                let outbox = outbox.clone();
                async move {
                    let name = user.display_name.as_deref().unwrap_or("there");
                    let body = format!(
                        "Hello {name}, welcome aboard! You are on the {} plan.",
                        user.plan
                    );
                    outbox.send(&user.email, "Welcome!", &body).await
                }
            }
        })
        // The audit log.
        .on_after_login(audit_event(&audit, "login"))
        .on_after_logout(audit_event(&audit, "logout"))
        .on_after_password_changed(audit_event(&audit, "password_changed"))
        .on_login_failed({
            let audit = audit.clone();
            // `user` is the account the identifier named, if any: `None` for an unknown one.
            move |identifier: String, user: Option<Arc<User>>, reason, ctx| {
                let details = json!({ "identifier": identifier, "reason": reason.as_str() });
                audit.record("login_failed", user.as_deref(), &ctx, details);
                async { Ok(()) }
            }
        })
        .on_lockout({
            let audit = audit.clone();
            // The lockout refuses before any lookup: the hook gets what was typed.
            move |identifier: String, retry_after: u64, ctx| {
                let details = json!({ "identifier": identifier, "retry_after": retry_after });
                audit.record("lockout", None, &ctx, details);
                async { Ok(()) }
            }
        })
        .build()?;

    // An administrator for `GET /audit`, when the environment names one.
    if let (Ok(email), Ok(password)) = (
        std::env::var("CRUDAUTH_DEFAULT_ADMIN_EMAIL"),
        std::env::var("CRUDAUTH_DEFAULT_ADMIN_PASSWORD"),
    ) {
        auth.ensure_admin(&email, &password).await?;
    }
    // A suspended account, as an administrator would have left it: its right password is
    // refused by the `on_before_login` veto for a week from the start.
    let mut sam =
        NewUser::new(auth.passwords().hash(SEED_PASSWORD).await?).email("sam@example.com");
    sam.extra.insert("display_name".into(), json!("Sam"));
    sam.extra.insert("plan".into(), json!("pro"));
    sam.extra
        .insert("suspended_until".into(), json!(now_secs() + 7 * 24 * 3600));
    match auth.repo().create(sam).await {
        Ok(_) | Err(RepoError::Duplicate { .. }) => {} // a file database seeded before
        Err(e) => return Err(e.into()),
    }

    let state = AppState {
        auth: auth.clone(),
        audit,
    };
    let app = Router::new()
        .route("/audit", get(read_audit))
        .with_state(state)
        // /register, /login, /logout, /token, /refresh, /change-password, /me...
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
    // Welcome mails still being written when the server stopped.
    auth.background().flush().await;
    Ok(())
}
