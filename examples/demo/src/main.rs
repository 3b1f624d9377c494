//! The crudauth demo server.
//!
//! ```text
//! cargo run -p crudauth-demo -- [--addr 127.0.0.1:8000] [--database sqlite://crudauth-demo.db?mode=rwc]
//!                               [--store memory|database|redis] [--redis-url redis://127.0.0.1:6379]
//!                               [--hash-workers N] [--hash-niceness 0-19]
//! ```
//!
//! It adopts a legacy `accounts` table with `#[derive(AuthUser)]`, mounts the session and
//! bearer transports (session first) and the email flows, and adds routes of its own:
//! `GET /whoami`, the superuser-only `GET /admin-only` and `POST /admin/users/{id}/deactivate`
//! (a write of the app's own, announced with `auth.invalidate_user`), and the sudo-gated
//! `POST /danger`.
//!
//! Mail goes to the JSON-lines file named by `CRUDAUTH_DEMO_OUTBOX`, else over SMTP when
//! `CRUDAUTH_SMTP_HOST` is set (`CRUDAUTH_SMTP_PORT`, `CRUDAUTH_SMTP_SECURITY` =
//! `starttls|tls|plain`, `CRUDAUTH_SMTP_USER`, `CRUDAUTH_SMTP_PASSWORD`,
//! `CRUDAUTH_SMTP_FROM`), else to the log. Links start with `CRUDAUTH_FRONTEND_URL`
//! (default: the demo's own address, which serves the pages the links open: see `pages`).
//!
//! Two-factor sign-in is on for every account that enrols (see `mfa`; `crudauth-demo totp
//! <secret>` prints a code, `crudauth-demo qr <otpauth URI>` the QR code in the terminal).
//!
//! Passwordless sign-in is on (see `passwordless`): codes by email (with a magic link) or by
//! SMS to the phone an administrator set (`POST /admin/users/{id}/phone`), texts in the file
//! named by `CRUDAUTH_DEMO_SMS_OUTBOX`.
//!
//! The users admin routes are on (`/users/me`, and `/users`, `/users/{id}` for superusers,
//! writes under sudo; `display_name` is shown and writable); `crudauth-demo create-admin
//! [--promote]` makes a superuser from a password typed at a prompt (see `admin`).
//!
//! Passkeys are on (see `passkeys`; `crudauth-demo passkey-register` and `passkey-login` run
//! the JSON ceremonies against a running demo with a software authenticator).
//!
//! API keys and impersonation are on (see `machines`): keys in the `crudauth_api_keys`
//! table, made inside the sudo window; a superuser in sudo may act as a user for 15 minutes.
//! The CLI device login is on (see `device_login`; `crudauth-demo login --server URL` signs
//! a terminal in through a signed-in browser user, `crudauth-demo whoami --server URL` uses
//! the pair it kept).
//!
//! Access tokens are HS256 unless `CRUDAUTH_JWT_KEYS` names a directory of PEM keys (see
//! `signing`): then they are signed by its key pair and `GET /.well-known/jwks.json`
//! publishes the public keys.
//!
//! Tenants are on when `CRUDAUTH_DEMO_TENANTS=email-domain` (see `tenants`): the address's
//! domain is the tenant, `GET /tenants/{tenant}/whoami` and `/billing` are gated by it.
//! Disposable email addresses are refused, and a CAPTCHA (Turnstile, hCaptcha or reCAPTCHA
//! v3) can be switched on by the environment (see `abuse`: `CRUDAUTH_CAPTCHA_PROVIDER`,
//! `CRUDAUTH_CAPTCHA_SECRET`, `CRUDAUTH_CAPTCHA_VERIFY_URL`, ...).
//!
//! Social sign-in is on when the environment names a provider (see `oauth`):
//! `CRUDAUTH_OIDC_ISSUER` / `_CLIENT_ID` / `_CLIENT_SECRET`, or the Google, GitHub and
//! Microsoft presets' `CRUDAUTH_{GOOGLE,GITHUB,MICROSOFT}_CLIENT_ID` / `_SECRET`.

mod abuse;
mod accounts;
mod admin;
mod device_login;
mod machines;
mod mfa;
mod oauth;
mod pages;
mod passkeys;
mod passwordless;
mod signing;
mod tenants;

use std::net::SocketAddr;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use crudauth::admin::UsersAdminConfig;
use crudauth::delivery::{DeliveryError, EmailMessage, EmailSender, OutboxSender};
use crudauth::password::LegacyHashes;
use crudauth::{
    BearerConfig, CrudAuth, Principal, RecoveryConfig, RequireSudo, SessionConfig, Superuser,
};
use crudauth_sea::SeaUserRepository;
use sea_orm::{ConnectionTrait, Database, Schema};
use serde_json::json;

type User = accounts::Model;

struct Args {
    /// `users hash-report`: print the accounts per password hash format and exit.
    hash_report: bool,
    /// `create-admin [--promote]`: make a superuser from a prompt and exit (see `admin`).
    create_admin: bool,
    promote: bool,
    addr: SocketAddr,
    database: String,
    store: String,
    redis_url: String,
    redis_prefix: String,
    /// `--store database` on another database than the users' (default: the same).
    store_database: Option<String>,
    /// `--hash-workers N`: password hashing threads (default: one less than the cores).
    hash_workers: Option<usize>,
    /// `--hash-niceness N`: how much the hashing threads yield the CPU (default 5).
    hash_niceness: Option<u8>,
}

/// One stored hash per old format and cost in the table (for the timing floor).
async fn old_hash_samples(
    repo: &SeaUserRepository<User>,
) -> Result<Vec<String>, crudauth::RepoError> {
    use crudauth::UserRepository as _;
    let mut hashes = Vec::new();
    let mut after = None;
    loop {
        let page = repo.password_hashes(after.as_ref(), 1000).await?;
        let full = page.len() == 1000;
        after = page.last().map(|(id, _)| id.clone());
        hashes.extend(page.into_iter().map(|(_, hash)| hash));
        if !full {
            break;
        }
    }
    Ok(LegacyHashes::distinct_costs(
        hashes.iter().map(String::as_str),
    ))
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        hash_report: false,
        create_admin: false,
        promote: false,
        addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
        database: "sqlite://crudauth-demo.db?mode=rwc".to_owned(),
        store: "memory".to_owned(),
        redis_url: "redis://127.0.0.1:6379".to_owned(),
        redis_prefix: "crudauth-demo:".to_owned(),
        store_database: None,
        hash_workers: None,
        hash_niceness: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    if it.peek().map(String::as_str) == Some("users") {
        it.next();
        match it.next().as_deref() {
            Some("hash-report") => args.hash_report = true,
            other => {
                return Err(format!(
                    "users {}: unknown command (try `users hash-report`)",
                    other.unwrap_or("")
                ));
            }
        }
    }
    if it.peek().map(String::as_str) == Some("create-admin") {
        it.next();
        args.create_admin = true;
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--promote" if args.create_admin => args.promote = true,
            "--addr" => {
                let value = it.next().ok_or("--addr needs a value")?;
                args.addr = value.parse().map_err(|e| format!("--addr {value}: {e}"))?;
            }
            "--database" => args.database = it.next().ok_or("--database needs a value")?,
            "--store" => {
                args.store = it.next().ok_or("--store needs a value")?;
                if !matches!(args.store.as_str(), "memory" | "redis" | "database") {
                    return Err(format!(
                        "--store {}: expected memory, database or redis",
                        args.store
                    ));
                }
            }
            "--redis-url" => args.redis_url = it.next().ok_or("--redis-url needs a value")?,
            "--redis-prefix" => {
                args.redis_prefix = it.next().ok_or("--redis-prefix needs a value")?;
            }
            "--store-database" => {
                args.store_database = Some(it.next().ok_or("--store-database needs a value")?);
            }
            "--hash-workers" => {
                let value = it.next().ok_or("--hash-workers needs a value")?;
                match value.parse::<usize>() {
                    Ok(n) if n > 0 => args.hash_workers = Some(n),
                    _ => {
                        return Err(format!(
                            "--hash-workers {value}: expected a positive number"
                        ));
                    }
                }
            }
            "--hash-niceness" => {
                let value = it.next().ok_or("--hash-niceness needs a value")?;
                match value.parse::<u8>() {
                    Ok(n) if n <= 19 => args.hash_niceness = Some(n),
                    _ => return Err(format!("--hash-niceness {value}: expected 0 to 19")),
                }
            }
            "-h" | "--help" => {
                println!(
                    "crudauth-demo [users hash-report | create-admin [--promote]] [--addr 127.0.0.1:8000] [--database <SeaORM URL>] \
                     [--store memory|database|redis] [--store-database <SeaORM URL>] [--redis-url redis://127.0.0.1:6379] [--redis-prefix crudauth-demo:] [--hash-workers N] [--hash-niceness 0-19]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok(args)
}

async fn whoami(principal: Principal<User>) -> Json<serde_json::Value> {
    Json(
        json!({ "id": principal.user_id, "via": principal.via.as_str(), "scopes": principal.scopes }),
    )
}

async fn admin_only(Superuser(admin): Superuser<User>) -> Json<serde_json::Value> {
    Json(json!({ "ok": true, "admin": admin.user_id }))
}

/// `POST /admin/users/{id}/deactivate` (superusers): the app's own write to its table, with
/// plain SeaORM and not through crudauth, announced with `auth.invalidate_user` so every
/// process refuses the account's sessions and tokens on their next request (without the
/// call, the user cache would serve the old row for up to `UserCacheConfig::max_age`).
async fn deactivate(
    State(auth): State<CrudAuth<User>>,
    Superuser(_admin): Superuser<User>,
    Path(id): Path<i32>,
) -> Result<StatusCode, crudauth::AuthError> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let db = auth
        .repo()
        .database()
        .and_then(|db| db.downcast::<sea_orm::DatabaseConnection>().ok())
        .ok_or(crudauth::AuthError::Internal)?;
    let updated = accounts::Entity::update_many()
        .col_expr(accounts::Column::Enabled, Expr::value(false))
        .filter(accounts::Column::AccountId.eq(id))
        .exec(db.as_ref())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "deactivate: the accounts table could not be written");
            crudauth::AuthError::Unavailable
        })?;
    if updated.rows_affected == 0 {
        return Ok(StatusCode::NOT_FOUND);
    }
    auth.invalidate_user(&crudauth::UserId::Int(i64::from(id)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/users/{id}/phone {phone}` (a superuser, under sudo: a phone number is a way
/// to sign in): sets the number texted codes go to, stored in E.164 form; `null` removes it.
async fn set_phone(
    State(auth): State<CrudAuth<User>>,
    RequireSudo(admin): RequireSudo<User>,
    Path(id): Path<i32>,
    Json(body): Json<serde_json::Value>,
) -> Result<StatusCode, (StatusCode, Json<serde_json::Value>)> {
    let fail = |status: StatusCode, detail: &str| (status, Json(json!({ "detail": detail })));
    if !admin.is_superuser {
        return Err(fail(StatusCode::FORBIDDEN, "Insufficient privileges"));
    }
    let phone = match body.get("phone") {
        // `null` removes the number (a recycled number must stop signing anyone in).
        Some(serde_json::Value::Null) => Some(String::new()),
        Some(value) => value.as_str().and_then(crudauth::user::normalize_phone),
        None => None,
    };
    let phone = phone.ok_or_else(|| {
        fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "phone: not a phone number (E.164, such as +15551234567)",
        )
    })?;
    let update = crudauth::user::UserUpdate {
        phone: Some(phone),
        ..Default::default()
    };
    match auth
        .repo()
        .update(&crudauth::UserId::Int(i64::from(id)), update)
        .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(crudauth::RepoError::NotFound) => Err(fail(StatusCode::NOT_FOUND, "No such user.")),
        Err(crudauth::RepoError::Duplicate { .. }) => Err(fail(
            StatusCode::CONFLICT,
            "This phone number belongs to another account.",
        )),
        Err(e) => {
            tracing::error!(error = %e, "set_phone: the accounts table could not be written");
            Err(fail(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"))
        }
    }
}

async fn danger(RequireSudo(principal): RequireSudo<User>) -> Json<serde_json::Value> {
    tracing::info!(user = %principal.user_id, "a dangerous operation, under sudo");
    Json(json!({ "ok": true }))
}

/// Development sender: the message goes to the log (links included), nowhere else.
struct LogSender;

#[async_trait::async_trait]
impl EmailSender for LogSender {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        tracing::info!(
            to = %message.to,
            kind = message.kind().as_str(),
            link = message.context.link.as_deref().unwrap_or("-"),
            "mail (set CRUDAUTH_DEMO_OUTBOX or CRUDAUTH_SMTP_HOST to deliver it)"
        );
        Ok(())
    }
}

/// The sender the environment asks for: outbox file, SMTP, or the log.
fn email_sender() -> Result<Arc<dyn EmailSender>, Box<dyn std::error::Error>> {
    use crudauth::smtp::{SmtpConfig, SmtpSecurity, SmtpSender};
    if let Ok(path) = std::env::var("CRUDAUTH_DEMO_OUTBOX") {
        tracing::info!(%path, "mail goes to the outbox file");
        return Ok(Arc::new(OutboxSender::new(path)));
    }
    let Ok(host) = std::env::var("CRUDAUTH_SMTP_HOST") else {
        tracing::warn!(
            "mail goes to the log, live links and tokens included: development only \
             (set CRUDAUTH_DEMO_OUTBOX or CRUDAUTH_SMTP_HOST)"
        );
        return Ok(Arc::new(LogSender));
    };
    let env = |name: &str| std::env::var(name).ok();
    let mut config = SmtpConfig::new(
        host.clone(),
        env("CRUDAUTH_SMTP_FROM").unwrap_or_else(|| "crudauth demo <no-reply@localhost>".into()),
    );
    config.port = env("CRUDAUTH_SMTP_PORT").map(|p| p.parse()).transpose()?;
    config.security = match env("CRUDAUTH_SMTP_SECURITY").as_deref() {
        None | Some("starttls") => SmtpSecurity::StartTls,
        Some("tls") => SmtpSecurity::Tls,
        Some("plain") => SmtpSecurity::Plain,
        Some(other) => {
            return Err(
                format!("CRUDAUTH_SMTP_SECURITY={other}: expected starttls, tls or plain").into(),
            );
        }
    };
    if let (Some(user), Some(password)) = (env("CRUDAUTH_SMTP_USER"), env("CRUDAUTH_SMTP_PASSWORD"))
    {
        config.credentials = Some((user, password));
    }
    tracing::info!(%host, "mail goes over SMTP");
    Ok(Arc::new(SmtpSender::new(config)?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let command_line: Vec<String> = std::env::args().skip(1).collect();
    if let Some(done) = mfa::command(&command_line) {
        return done.map_err(Into::into);
    }
    if let Some(done) = passkeys::command(&command_line).await {
        return done.map_err(Into::into);
    }
    if let Some(done) = device_login::command(&command_line).await {
        return done.map_err(Into::into);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr) // stdout carries `users hash-report`'s answer
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .init();
    let args = parse_args()?;

    let db = Database::connect(&args.database).await?;
    let backend = db.get_database_backend();
    let mut create = Schema::new(backend).create_table_from_entity(accounts::Entity);
    db.execute(create.if_not_exists()).await?;
    add_missing_columns(&db).await?;

    let secret = match std::env::var("CRUDAUTH_SECRET_KEY") {
        Ok(secret) => secret,
        Err(_) => {
            tracing::warn!(
                "CRUDAUTH_SECRET_KEY is not set: using a random key, so sessions and tokens \
                 will not survive a restart"
            );
            crudauth::generate_secret_key()
        }
    };
    let loopback = args.addr.ip().is_loopback();
    if loopback {
        tracing::info!(
            "bound to a loopback address: cookies are sent without `Secure` (plain-http development)"
        );
    } else {
        tracing::info!("cookies are `Secure`: serve this behind HTTPS");
    }
    let session = SessionConfig {
        secure: !loopback,
        ..SessionConfig::default()
    };
    let mut bearer = BearerConfig {
        default_scopes: ["me:read".to_owned()].into(),
        grantable_scopes: ["me:read".to_owned(), "reports:read".to_owned()].into(),
        ..BearerConfig::default()
    };
    if let Some((key, verify_only)) = signing::key_set()? {
        (bearer.key, bearer.verify_only) = (key, verify_only);
    }
    let repo = SeaUserRepository::<User>::new(db.clone());
    // The table may hold the hashes of the system it came from (bcrypt, PBKDF2, scrypt):
    // they verify and are upgraded on sign-in, and every password check is held to the time
    // of the slowest format and cost found in the table (argon2id's when there is none).
    let samples = old_hash_samples(&repo).await?;
    if !samples.is_empty() {
        tracing::info!(
            kinds = samples.len(),
            "old password hashes in the table; they upgrade on sign-in"
        );
    }
    let legacy = LegacyHashes::built_in().timing_samples(samples);
    let mut builder = CrudAuth::builder(repo).legacy_hashes(legacy);
    if args.hash_workers.is_some() || args.hash_niceness.is_some() {
        let default = crudauth::PasswordConfig::default();
        builder = builder.password(crudauth::PasswordConfig {
            concurrency: args.hash_workers.unwrap_or(default.concurrency),
            worker_niceness: args.hash_niceness.unwrap_or(default.worker_niceness),
            ..default
        });
    }
    if args.store == "database" {
        let state = match &args.store_database {
            Some(url) => Database::connect(url).await?,
            None => db.clone(),
        };
        let tables = crudauth_sea::StoreTables::default();
        crudauth_sea::DatabaseStore::create_tables(&state, &tables).await?;
        tracing::info!("sessions, lockout, refresh families and epochs in the database");
        builder = builder.store(std::sync::Arc::new(crudauth_sea::DatabaseStore::new(
            state, tables,
        )));
    }
    if args.store == "redis" {
        let store =
            crudauth::store::RedisStore::connect(&args.redis_url, &args.redis_prefix).await?;
        tracing::info!(url = %args.redis_url, "sessions, lockout, refresh families and epochs in Redis");
        builder = builder.store(std::sync::Arc::new(store));
    }
    if let Some(config) = oauth::config(&format!("http://{}", args.addr), &db).await? {
        builder = builder.oauth(config);
    }
    if let Some(list) = abuse::disposable() {
        builder = builder.disposable_emails(list);
    }
    if let Some(config) = abuse::captcha()? {
        builder = builder.captcha(config);
    }
    builder = builder.mfa(mfa::config(&db).await?);
    builder = builder.passkeys(passkeys::config(&format!("http://{}", args.addr), &db).await?);
    if let Some(config) = tenants::config()? {
        builder = builder.tenants(config);
    }
    let api_keys = machines::api_keys(&db).await?;
    let frontend =
        std::env::var("CRUDAUTH_FRONTEND_URL").unwrap_or_else(|_| format!("http://{}", args.addr));
    let builder = builder
        .secret_key(secret.into_bytes())
        .session(session)
        .bearer(bearer)
        .api_keys(api_keys)
        .impersonation(machines::impersonation())
        .register_extra_fields(["display_name"])
        .recovery(RecoveryConfig::new(frontend.clone()))
        .email_sender(email_sender()?)
        .delivery_channel(passwordless::sms_channel())
        .passwordless(passwordless::config(&frontend))
        .device_login(device_login::config()?)
        .users_admin(UsersAdminConfig::default().writable(["display_name"]));
    let auth = dev_bypass(builder, args.addr).build()?;

    if args.create_admin {
        return admin::create_admin(&auth, args.promote).await;
    }

    if args.hash_report {
        let report = auth.password_hash_report().await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }

    if let (Ok(email), Ok(password)) = (
        std::env::var("CRUDAUTH_DEFAULT_ADMIN_EMAIL"),
        std::env::var("CRUDAUTH_DEFAULT_ADMIN_PASSWORD"),
    ) {
        match auth.ensure_admin(&email, &password).await {
            Ok(_) => tracing::info!(%email, "default admin ready"),
            Err(e) => tracing::error!(%email, error = %e, "could not create the default admin"),
        }
    }

    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/admin-only", get(admin_only))
        .route("/danger", post(danger))
        .route("/admin/users/{id}/deactivate", post(deactivate))
        .route("/admin/users/{id}/phone", post(set_phone))
        .with_state(auth.clone())
        .merge(tenants::routes(&auth)?)
        .merge(auth.router())
        .merge(pages::routes());

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!("crudauth demo listening on http://{}", args.addr);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Mail still in flight is sent before the process ends.
    auth.background().flush().await;
    Ok(())
}

/// The development switch: `CRUDAUTH_DEV_BYPASS=<login>` signs every request from this
/// machine in as that user, without a credential. Only in a build with the demo's
/// `dev-bypass` feature (`cargo run -p crudauth-demo --features dev-bypass`), which does not
/// compile in release, and only on a loopback address (`build` refuses anything else).
fn dev_bypass(
    builder: crudauth::CrudAuthBuilder<User>,
    bound: SocketAddr,
) -> crudauth::CrudAuthBuilder<User> {
    let Ok(login) = std::env::var("CRUDAUTH_DEV_BYPASS") else {
        return builder;
    };
    #[cfg(feature = "dev-bypass")]
    {
        tracing::warn!(%login, "CRUDAUTH_DEV_BYPASS: every local request is signed in as this user");
        builder.dev_bypass(crudauth::dev::DevBypass::login(login, bound).scopes(["me:read"]))
    }
    #[cfg(not(feature = "dev-bypass"))]
    {
        let _ = bound;
        tracing::warn!(
            %login,
            "CRUDAUTH_DEV_BYPASS is ignored: this build has no `dev-bypass` feature"
        );
        builder
    }
}

/// Brings an `accounts` table made by an older demo up to date: `email_confirmed` came
/// with the email flows, `enabled` with the admin's deactivation.
async fn add_missing_columns(db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    use sea_orm::sea_query::{Alias, ColumnDef, Table};
    for (column, default) in [("email_confirmed", false), ("enabled", true)] {
        let probe = db
            .execute_unprepared(&format!("SELECT {column} FROM accounts WHERE 1 = 0"))
            .await;
        if probe.is_ok() {
            continue;
        }
        tracing::info!(column, "adding a column to accounts");
        let alter = Table::alter()
            .table(Alias::new("accounts"))
            .add_column(
                ColumnDef::new(Alias::new(column))
                    .boolean()
                    .not_null()
                    .default(default),
            )
            .to_owned();
        db.execute(&alter).await?;
    }
    // `phone` came with passwordless sign-in: nullable, unique by its own index (SQLite
    // cannot add a UNIQUE column).
    let probe = db
        .execute_unprepared("SELECT phone FROM accounts WHERE 1 = 0")
        .await;
    if probe.is_err() {
        tracing::info!(column = "phone", "adding a column to accounts");
        let alter = Table::alter()
            .table(Alias::new("accounts"))
            .add_column(ColumnDef::new(Alias::new("phone")).string_len(16).null())
            .to_owned();
        db.execute(&alter).await?;
        let index = sea_orm::sea_query::Index::create()
            .name("accounts_phone_key")
            .table(Alias::new("accounts"))
            .col(Alias::new("phone"))
            .unique()
            .to_owned();
        db.execute(&index).await?;
    }
    Ok(())
}
