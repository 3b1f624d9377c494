//! Test support for the rustdoc examples, **not part of the API**: a user type, an in-memory
//! repository, a mailbox and a configured auth, so that the examples run instead of only
//! compiling. Hidden from the docs, exempt from semver; never use it in an application.
//!
//! The configured auth ([`auth`]) has the session and bearer transports, the memory store,
//! a fixed secret, cheap argon2 parameters, the email flows with a [`Mailbox`] as the sender,
//! and one user: `ann@example.com`, username `ann`, password [`PASSWORD`]. An example runs
//! inside two hidden lines, `# crudauth::doc_fixture::run(async |auth| {` and
//! `# Ok(()) });` ([`run`]; the session examples use [`run_with_session`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{COOKIE, USER_AGENT as USER_AGENT_HEADER};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request};

use crate::delivery::{DeliveryError, EmailMessage, EmailSender};
use crate::error::AuthError;
use crate::password::{PasswordConfig, PasswordHasher};
use crate::principal::{Principal, Transport};
use crate::recovery::RecoveryConfig;
use crate::session::{LiveSession, NewSession, SessionConfig, Sessions};
use crate::store::MemoryStore;
use crate::tokens::BearerConfig;
use crate::user::UserRecord;
use crate::{ClientMeta, CrudAuth, CrudAuthBuilder};

mod repo;

pub use repo::{Repo, User};

/// Ann's password.
pub const PASSWORD: &str = "correct horse battery staple";

/// The fixture's secret key (a constant: fine for examples, never for an application).
pub const SECRET: &[u8] = b"doc-fixture secret key: 32+ bytes, never for production";

/// The User-Agent of [`client`] and [`parts`].
pub const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// An email sender that keeps every message in memory.
#[derive(Clone, Debug, Default)]
pub struct Mailbox {
    messages: Arc<Mutex<Vec<EmailMessage>>>,
}

impl Mailbox {
    fn inbox(&self) -> MutexGuard<'_, Vec<EmailMessage>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every message sent so far, oldest first.
    pub fn messages(&self) -> Vec<EmailMessage> {
        self.inbox().clone()
    }

    /// The one-time token of the latest message that carried a link.
    pub fn last_token(&self) -> Option<String> {
        let inbox = self.inbox();
        let link = inbox.iter().rev().find_map(|m| m.context.link.as_deref())?;
        link.split_once("token=").map(|(_, token)| token.to_owned())
    }
}

#[async_trait::async_trait]
impl EmailSender for Mailbox {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        self.inbox().push(message.clone());
        Ok(())
    }
}

/// Runs a rustdoc example on a current-thread runtime, handing it the fixture's [`auth`];
/// an error fails the example (a doctest fails by panicking).
pub fn run<F>(example: F)
where
    F: AsyncFnOnce(CrudAuth<User>) -> Result<(), Box<dyn std::error::Error>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime.map(|rt| rt.block_on(async { example(auth().await).await })) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("the example failed: {e}"),
        Err(e) => panic!("no runtime for the example: {e}"),
    }
}

/// Cheap argon2 parameters (the examples measure nothing), as the fixture's auth uses.
pub fn password_config() -> PasswordConfig {
    PasswordConfig {
        memory_kib: 64,
        iterations: 1,
        ..Default::default()
    }
}

/// The configured builder over a repository holding Ann, and the mailbox it sends to.
async fn configured() -> (CrudAuthBuilder<User>, Mailbox) {
    const INVALID: &str = "the doc fixture's constant configuration is valid";
    let hasher = PasswordHasher::new(password_config()).expect(INVALID);
    let hash = hasher.hash(PASSWORD).await.expect(INVALID);
    let repo = Repo::new();
    repo.users().push(User {
        id: 1,
        email: "ann@example.com".into(),
        username: "ann".into(),
        password_hash: hash,
        is_active: true,
        is_superuser: false,
        email_verified: false,
        token_version: Some(0),
        phone: None,
    });
    let mailbox = Mailbox::default();
    let bearer = BearerConfig {
        grantable_scopes: ["me:read", "reports:read"].map(String::from).into(),
        ..Default::default()
    };
    let builder = CrudAuth::builder(repo)
        .secret_key(SECRET)
        .session(SessionConfig::default())
        .bearer(bearer)
        .store(Arc::new(MemoryStore::new()))
        .password(password_config())
        .recovery(RecoveryConfig::new("https://app.example.com"))
        .email_sender(Arc::new(mailbox.clone()));
    (builder, mailbox)
}

/// The fixture's builder, fully configured (see the module docs); ready to `build()`.
///
/// # Panics
///
/// Only if the fixture's own constant configuration were invalid.
pub async fn builder() -> CrudAuthBuilder<User> {
    configured().await.0
}

/// The fixture's auth and the mailbox its email flows send to.
///
/// # Panics
///
/// Only if the fixture's own constant configuration were invalid.
pub async fn auth_with_mailbox() -> (CrudAuth<User>, Mailbox) {
    let (builder, mailbox) = configured().await;
    let auth = builder
        .build()
        .expect("the doc fixture's constant configuration is valid");
    (auth, mailbox)
}

/// The fixture's auth (see the module docs).
///
/// # Panics
///
/// Only if the fixture's own constant configuration were invalid.
pub async fn auth() -> CrudAuth<User> {
    auth_with_mailbox().await.0
}

/// The address of [`client`].
const CLIENT_IP: [u8; 4] = [203, 0, 113, 7];

/// A client at 203.0.113.7 with a browser's User-Agent.
pub fn client() -> ClientMeta {
    ClientMeta {
        ip: Some(CLIENT_IP.into()),
        user_agent: USER_AGENT.into(),
    }
}

/// A request from [`client`] (its socket peer, as `ConnectInfo`, and its User-Agent),
/// without credentials or body.
pub fn request(method: Method, uri: &str) -> Result<Request<Body>, axum::http::Error> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(USER_AGENT_HEADER, USER_AGENT)
        .extension(ConnectInfo(SocketAddr::from((CLIENT_IP, 52000))))
        .body(Body::empty())
}

/// The head of a `GET /` [`request`].
pub fn parts() -> Parts {
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT));
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((CLIENT_IP, 52000))));
    request.into_parts().0
}

/// Ann, as stored now.
pub async fn user(auth: &CrudAuth<User>) -> Result<User, AuthError> {
    user_named(auth, "ann").await
}

async fn user_named(auth: &CrudAuth<User>, identifier: &str) -> Result<User, AuthError> {
    auth.repo()
        .find_by_login(identifier)
        .await
        .map_err(|_| AuthError::Unavailable)?
        .ok_or(AuthError::BadCredentials)
}

/// Signs the user `identifier` names in over a new session, as `/login` does once the
/// password was checked, and returns the `Cookie` header value that carries it.
pub async fn session_cookie(auth: &CrudAuth<User>, identifier: &str) -> Result<String, AuthError> {
    let sessions = auth.sessions().ok_or(AuthError::Internal)?;
    let user = user_named(auth, identifier).await?;
    let epoch = auth.revocation().epoch(&user).await?;
    let new = sessions
        .create(
            &user.user_id().to_string(),
            epoch,
            "203.0.113.7",
            USER_AGENT,
        )
        .await?;
    Ok(format!("{}={}", sessions.config().cookie_name, new.id))
}

/// [`request`] with the session cookie of the user `identifier` names.
pub async fn signed_in_request(
    auth: &CrudAuth<User>,
    identifier: &str,
    method: Method,
    uri: &str,
) -> Result<Request<Body>, AuthError> {
    let cookie = session_cookie(auth, identifier).await?;
    let mut request = request(method, uri).map_err(|_| AuthError::Internal)?;
    let value = HeaderValue::from_str(&cookie).map_err(|_| AuthError::Internal)?;
    request.headers_mut().insert(COOKIE, value);
    Ok(request)
}

/// [`parts`] with the session cookie of the user `identifier` names.
pub async fn signed_in_parts(auth: &CrudAuth<User>, identifier: &str) -> Result<Parts, AuthError> {
    let request = signed_in_request(auth, identifier, Method::GET, "/").await?;
    Ok(request.into_parts().0)
}

/// The principal of the user `identifier` names, signed in over a session (resolved by
/// `auth.authenticate`, as every request is).
pub async fn session_principal_of(
    auth: &CrudAuth<User>,
    identifier: &str,
) -> Result<Principal<User>, AuthError> {
    let parts = signed_in_parts(auth, identifier).await?;
    auth.authenticate(&parts, Some(Transport::Session))
        .await?
        .ok_or(AuthError::NotAuthenticated)
}

/// Ann's principal, signed in over a session.
pub async fn session_principal(auth: &CrudAuth<User>) -> Result<Principal<User>, AuthError> {
    session_principal_of(auth, "ann").await
}

/// Ann's principal over a session inside its sudo window (elevated with her password; the
/// session moves to a new id, as every privilege change does).
pub async fn elevated_principal(auth: &CrudAuth<User>) -> Result<Principal<User>, AuthError> {
    let signed_in = session_principal(auth).await?;
    let elevated = auth.sudo().elevate(&signed_in, PASSWORD, &client()).await?;
    let sessions = auth.sessions().ok_or(AuthError::Internal)?;
    let cookie = format!("{}={}", sessions.config().cookie_name, elevated.session.id);
    let mut request = request(Method::GET, "/").map_err(|_| AuthError::Internal)?;
    let value = HeaderValue::from_str(&cookie).map_err(|_| AuthError::Internal)?;
    request.headers_mut().insert(COOKIE, value);
    let parts = request.into_parts().0;
    auth.authenticate(&parts, Some(Transport::Session))
        .await?
        .ok_or(AuthError::NotAuthenticated)
}

/// [`run`] for the session examples: hands over the session service of the fixture's auth
/// and a session of Ann's (user `1`, epoch 0) from [`client`], as created and as resolved.
pub fn run_with_session<F>(example: F)
where
    F: AsyncFnOnce(Sessions, NewSession, LiveSession) -> Result<(), Box<dyn std::error::Error>>,
{
    run(async |auth| {
        let sessions = auth.sessions().ok_or("no session transport")?.clone();
        let new = sessions.create("1", 0, "203.0.113.7", USER_AGENT).await?;
        let live = sessions.resolve(&new.id).await?.ok_or("no live session")?;
        example(sessions, new, live).await
    })
}

/// A lockout service over its own memory store, with the default thresholds (the lockout
/// of a configured auth is internal to it).
pub fn lockout() -> crate::lockout::Lockout {
    crate::lockout::Lockout::new(
        Arc::new(MemoryStore::new()),
        [7; 32],
        crate::lockout::LockoutConfig::default(),
    )
}
