//! An HTTP harness: the real router, driven in-process with `tower::ServiceExt::oneshot`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use crudauth::password::PasswordConfig;
use crudauth::{BearerConfig, CrudAuth, CrudAuthBuilder, SessionConfig};
use crudauth_sea::SeaUserRepository;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::models::users;
use crate::{Backend, TestDb, open};

/// The secret key of the tests.
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

/// The user model of the HTTP tests (the modern reference model).
pub type User = users::Model;

/// An app under test.
pub struct TestApp {
    /// The router: the library's routes plus `/whoami` and `/admin-only`.
    pub app: Router,
    /// The facade.
    pub auth: CrudAuth<User>,
    /// The database.
    pub tdb: TestDb,
}

/// A response, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (`Null` when not JSON).
    pub json: serde_json::Value,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The `Set-Cookie` headers, by cookie name: (value, full header).
    pub fn cookies(&self) -> HashMap<String, (String, String)> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|full| {
                let first = full.split(';').next()?;
                let (k, v) = first.split_once('=')?;
                Some((k.trim().to_owned(), (v.to_owned(), full.to_owned())))
            })
            .collect()
    }

    /// The `detail` string of an error body.
    pub fn detail(&self) -> &str {
        self.json["detail"].as_str().unwrap_or_default()
    }
}

/// A request builder.
#[derive(Clone)]
pub struct Req {
    method: Method,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    peer: SocketAddr,
    /// The browser (a [`Session`], by its first id) whose cookies this request carries.
    browser: Option<String>,
}

/// The browsers' cookie jar: a [`Session`]'s first id → the session id its browser holds
/// now. A privilege change (password change, sudo, email change) moves a session to a new
/// id and sets it as the cookie; a browser takes it, and so does a [`Session`] here, while
/// a copy of the old cookie sent as a raw `cookie` header (an attacker's copy) does not.
static JAR: std::sync::LazyLock<std::sync::Mutex<HashMap<String, String>>> =
    std::sync::LazyLock::new(Default::default);

/// The session id a [`Session`]'s browser holds now (its first id until a response moved it).
pub fn current_id(s: &Session) -> String {
    JAR.lock()
        .expect("jar")
        .get(&s.id)
        .cloned()
        .unwrap_or_else(|| s.id.clone())
}

impl Req {
    /// A copy of this request.
    pub fn clone_req(&self) -> Self {
        self.clone()
    }

    /// A request.
    pub fn new(method: Method, path: &str) -> Self {
        Req {
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            browser: None,
        }
    }
    /// GET.
    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }
    /// POST.
    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path)
    }
    /// A header (raw bytes allowed, for hostile input).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }
    /// A JSON body.
    pub fn json(mut self, value: serde_json::Value) -> Self {
        self.body = serde_json::to_vec(&value).expect("json");
        self.header("content-type", "application/json")
    }
    /// A raw body with a content type.
    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("content-type", content_type)
    }
    /// A form body.
    pub fn form(self, pairs: &[(&str, &str)]) -> Self {
        let body = serde_urlencoded_encode(pairs);
        self.raw("application/x-www-form-urlencoded", body)
    }
    /// The socket peer.
    pub fn peer(mut self, ip: [u8; 4]) -> Self {
        self.peer = SocketAddr::from((ip, 40000));
        self
    }
    /// The socket peer, as a full address (IPv6 included).
    pub fn peer_addr(mut self, addr: SocketAddr) -> Self {
        self.peer = addr;
        self
    }
    /// A bearer token.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    /// A browser session: its cookies and, for unsafe methods, its CSRF header. Like a
    /// browser, it follows a new session cookie a response sets (see [`current_id`]).
    pub fn session(self, s: &Session) -> Self {
        let r = self.session_cookie_only(s);
        if r.method == Method::GET {
            r
        } else {
            r.header("x-csrf-token", s.csrf.clone())
        }
    }
    /// Only the session cookie (no CSRF header).
    pub fn session_cookie_only(mut self, s: &Session) -> Self {
        self.browser = Some(s.id.clone());
        self.header(
            "cookie",
            format!("session_id={}; csrf_token={}", current_id(s), s.csrf),
        )
    }
}

fn serde_urlencoded_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The session cookie value.
    pub id: String,
    /// The CSRF token.
    pub csrf: String,
}

/// Fast argon2 parameters for tests (the defaults are measured in the benches).
pub fn fast_passwords() -> PasswordConfig {
    PasswordConfig {
        memory_kib: 64,
        iterations: 1,
        ..PasswordConfig::default()
    }
}

/// The default test configuration: session first, then bearer with two grantable scopes.
/// The session cookie keeps its 0.8 name `session_id` (no `__Host-` prefix), which the
/// tests read and send by name; `tests/tests/hardening_sessions.rs` covers the prefix.
pub fn default_builder(repo: SeaUserRepository<User>) -> CrudAuthBuilder<User> {
    CrudAuth::builder(repo)
        .secret_key(SECRET.to_vec())
        .password(fast_passwords())
        .session(SessionConfig {
            host_prefix: false,
            ..SessionConfig::default()
        })
        .bearer(BearerConfig {
            default_scopes: ["me:read".to_owned()].into(),
            grantable_scopes: ["me:read".to_owned(), "reports:read".to_owned()].into(),
            ..BearerConfig::default()
        })
        .register_extra_fields(["bio"])
}

/// An app on a fresh SQLite database, configured by `configure`.
pub async fn app_with(
    test: &str,
    configure: impl FnOnce(CrudAuthBuilder<User>) -> CrudAuthBuilder<User>,
) -> TestApp {
    let tdb = open(Backend::Sqlite, test)
        .await
        .expect("sqlite is always there");
    tdb.create_table(users::Entity).await;
    let repo = SeaUserRepository::<User>::new(tdb.db.clone());
    let auth = configure(default_builder(repo))
        .build()
        .expect("valid config");
    let app = demo_routes(&auth);
    TestApp { app, auth, tdb }
}

/// An app with the default configuration.
pub async fn app(test: &str) -> TestApp {
    app_with(test, |b| b).await
}

/// The frontend URL of the email tests: every link must start with it.
pub const FRONTEND: &str = "https://app.example";

/// A fresh outbox file path for a test.
pub fn outbox_path(test: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "crudauth-outbox-{test}-{}.jsonl",
        uuid::Uuid::new_v4()
    ))
}

/// Turns on the email flows with links under [`FRONTEND`] and the outbox at `path`.
pub fn with_outbox(b: CrudAuthBuilder<User>, path: &std::path::Path) -> CrudAuthBuilder<User> {
    b.recovery(crudauth::RecoveryConfig::new(FRONTEND))
        .email_sender(std::sync::Arc::new(crudauth::delivery::OutboxSender::new(
            path,
        )))
}

/// The mails in an outbox once every delivery in flight has finished.
pub async fn mails(auth: &CrudAuth<User>, path: &std::path::Path) -> Vec<serde_json::Value> {
    auth.background().flush().await;
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// The token inside a mail's link.
pub fn token_of(mail: &serde_json::Value) -> String {
    let link = mail["link"].as_str().expect("a link");
    link.split_once("?token=").expect("a token").1.to_owned()
}

/// The library's routes plus the demo's own `/whoami`, `/maybe`, `/admin-only` and the
/// sudo-gated `POST /danger`.
pub fn demo_routes(auth: &CrudAuth<User>) -> Router {
    use axum::Json;
    use axum::routing::get;
    use crudauth::{Principal, Superuser};
    async fn whoami(p: Principal<User>) -> Json<serde_json::Value> {
        Json(serde_json::json!({ "id": p.user_id, "via": p.via.as_str(), "scopes": p.scopes }))
    }
    async fn maybe(p: Option<Principal<User>>) -> Json<serde_json::Value> {
        Json(serde_json::json!({ "anonymous": p.is_none() }))
    }
    async fn admin(_: Superuser<User>) -> Json<serde_json::Value> {
        Json(serde_json::json!({ "ok": true }))
    }
    async fn danger(_: crudauth::RequireSudo<User>) -> Json<serde_json::Value> {
        Json(serde_json::json!({ "ok": true }))
    }
    Router::new()
        .route("/whoami", get(whoami))
        .route("/maybe", get(maybe))
        .route("/admin-only", get(admin))
        .route("/danger", axum::routing::post(danger))
        .with_state(auth.clone())
        .merge(auth.router())
}

impl TestApp {
    /// Sends a request through the router.
    pub async fn send(&self, req: Req) -> Resp {
        send(&self.app, req).await
    }

    /// Registers a user (asserting the uniform 202).
    pub async fn register(&self, email: &str, username: &str, password: &str) {
        let r = self
            .send(Req::post("/register").json(serde_json::json!({
                "email": email, "username": username, "password": password
            })))
            .await;
        assert_eq!(r.status, 202, "register {email}: {:?}", r.json);
    }

    /// Logs in by form; panics unless it succeeds.
    pub async fn login(&self, username: &str, password: &str) -> Session {
        let r = self
            .send(Req::post("/login").form(&[("username", username), ("password", password)]))
            .await;
        assert_eq!(r.status, 200, "login {username}: {:?}", r.json);
        let cookies = r.cookies();
        Session {
            id: cookies["session_id"].0.clone(),
            csrf: cookies["csrf_token"].0.clone(),
        }
    }

    /// Marks the address of the account `identifier` names as verified (what the verify
    /// link would do).
    pub async fn verify_email(&self, identifier: &str) {
        let repo = self.auth.repo();
        let user = repo
            .find_by_login(identifier)
            .await
            .unwrap()
            .expect("the account");
        let update = crudauth::user::UserUpdate {
            email_verified: Some(true),
            ..Default::default()
        };
        repo.update(&crudauth::UserRecord::user_id(&user), update)
            .await
            .unwrap();
    }

    /// Enrols a TOTP second factor for the session's user (the password again, then a code
    /// of the previous step, so the current one stays free); answers the base32 secret.
    pub async fn enrol_totp(&self, s: &Session, password: &str) -> String {
        let r = self
            .send(
                Req::post("/mfa/totp/setup")
                    .session(s)
                    .json(serde_json::json!({ "password": password })),
            )
            .await;
        assert_eq!(r.status, 200, "setup: {:?}", r.json);
        let secret = r.json["secret"].as_str().expect("a secret").to_owned();
        crate::away_from_step_edge().await;
        let code = crate::totp_code(&secret, crate::unix_now() - 30);
        let r = self
            .send(
                Req::post("/mfa/totp/confirm")
                    .session(s)
                    .json(serde_json::json!({ "code": code })),
            )
            .await;
        assert_eq!(r.status, 200, "confirm: {:?}", r.json);
        secret
    }

    /// Gets a token pair; panics unless it succeeds.
    pub async fn token(&self, username: &str, password: &str, scope: &str) -> (String, String) {
        let r = self
            .send(Req::post("/token").form(&[
                ("username", username),
                ("password", password),
                ("scope", scope),
            ]))
            .await;
        assert_eq!(r.status, 200, "token {username}: {:?}", r.json);
        (
            r.json["access_token"].as_str().expect("access").to_owned(),
            r.json["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_owned(),
        )
    }
}

/// Sends a request through any router.
pub async fn send(app: &Router, req: Req) -> Resp {
    let mut builder = Request::builder().method(req.method).uri(req.path);
    for (name, value) in req.headers {
        builder = builder.header(name, value);
    }
    let mut request = builder.body(Body::from(req.body)).expect("request");
    request.extensions_mut().insert(ConnectInfo(req.peer));
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    if let Some(browser) = req.browser {
        // The browser takes a new session cookie (not a deletion).
        let moved = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|full| full.split(';').next()?.split_once('='))
            .find(|(name, value)| *name == "session_id" && !value.is_empty())
            .map(|(_, value)| value.to_owned());
        if let Some(moved) = moved {
            JAR.lock().expect("jar").insert(browser, moved);
        }
    }
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    assert!(status != 500, "a 500 leaked: {json:?}");
    Resp {
        status,
        headers,
        json,
        body,
    }
}
