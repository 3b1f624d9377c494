//! A local CAPTCHA verifier over real HTTP: the `siteverify` endpoints of Cloudflare
//! Turnstile (`/turnstile`), hCaptcha (`/hcaptcha`) and reCAPTCHA v3 (`/recaptcha`) on a
//! loopback port, answering in each provider's JSON shape, and recording every form it got.
//!
//! Tokens are issued by the test ([`FakeCaptcha::token`]) with the action, score and
//! hostname the provider would report; a token is good once (a replay is refused with
//! `timeout-or-duplicate`, as the providers do), an unknown one is `invalid-input-response`,
//! and a wrong secret is `invalid-input-secret`. The verifier can be made slow, or to answer
//! 500 or garbage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

/// The secret the fake expects.
pub const CAPTCHA_SECRET: &str = "0x4AAAAAAA-test-secret-never-logged";

/// What the fake knows of a token it issued.
#[derive(Clone, Debug)]
struct Issued {
    action: String,
    score: f64,
    hostname: String,
    used: bool,
}

/// How the fake answers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Mode {
    /// Each provider's JSON answer.
    #[default]
    Normal,
    /// 500 Internal Server Error.
    Fails,
    /// 200 with a body that is no JSON.
    Garbage,
    /// Sleeps this long first.
    Slow(Duration),
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, Issued>,
    received: Vec<HashMap<String, String>>,
    mode: Mode,
}

/// The fake verifier (cheap to clone; every clone is the same server).
#[derive(Clone)]
pub struct FakeCaptcha {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeCaptcha {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> FakeCaptcha {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let fake = FakeCaptcha {
            base,
            inner: Arc::new(Mutex::new(Inner::default())),
        };
        let app = Router::new()
            .route("/{provider}", post(siteverify))
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        fake
    }

    /// The siteverify URL of `provider` (`turnstile`, `hcaptcha`, `recaptcha`).
    pub fn url(&self, provider: &str) -> String {
        format!("{}/{provider}", self.base)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Issues a fresh token as solved for `action` on `hostname` with `score`.
    pub fn token(&self, action: &str, score: f64, hostname: &str) -> String {
        let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
        self.with(|i| {
            i.tokens.insert(
                token.clone(),
                Issued {
                    action: action.into(),
                    score,
                    hostname: hostname.into(),
                    used: false,
                },
            )
        });
        token
    }

    /// A good token for `action` on `app.example` with score 0.9.
    pub fn good(&self, action: &str) -> String {
        self.token(action, 0.9, "app.example")
    }

    /// Sets how the fake answers.
    pub fn set_mode(&self, mode: Mode) {
        self.with(|i| i.mode = mode);
    }

    /// Every form posted so far.
    pub fn received(&self) -> Vec<HashMap<String, String>> {
        self.with(|i| i.received.clone())
    }
}

async fn siteverify(
    State(fake): State<FakeCaptcha>,
    Path(provider): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mode = fake.with(|i| {
        i.received.push(form.clone());
        i.mode
    });
    match mode {
        Mode::Fails => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Garbage => return (StatusCode::OK, "<html>captcha</html>").into_response(),
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Normal => {}
    }
    let refuse = |code: &str| axum::Json(json!({ "success": false, "error-codes": [code] }));
    if form.get("secret").map(String::as_str) != Some(CAPTCHA_SECRET) {
        return refuse("invalid-input-secret").into_response();
    }
    let token = form.get("response").cloned().unwrap_or_default();
    let issued = fake.with(|i| match i.tokens.get_mut(&token) {
        None => Err("invalid-input-response"),
        Some(t) if t.used => Err("timeout-or-duplicate"),
        Some(t) => {
            t.used = true;
            Ok(t.clone())
        }
    });
    let issued = match issued {
        Ok(issued) => issued,
        Err(code) => return refuse(code).into_response(),
    };
    let ts = "2026-01-01T00:00:00Z";
    let answer = match provider.as_str() {
        "turnstile" => json!({
            "success": true, "challenge_ts": ts, "hostname": issued.hostname,
            "error-codes": [], "action": issued.action, "cdata": ""
        }),
        "hcaptcha" => json!({
            "success": true, "challenge_ts": ts, "hostname": issued.hostname, "credit": false
        }),
        _ => json!({
            "success": true, "challenge_ts": ts, "hostname": issued.hostname,
            "score": issued.score, "action": issued.action
        }),
    };
    axum::Json(answer).into_response()
}
