//! The device login routes (feature `device-login`): `POST /auth/cli-login`, and `GET`,
//! `PATCH`, `DELETE /auth/cli-login/{code}`, on zndraw-auth's paths with its field names
//! and statuses (`{code, secret, approve_url}`; `{status: "pending"}`; `{status:
//! "approved", token}`; 404 `Challenge not found`; 410 `Challenge expired`; 200 on
//! approval, 204 on rejection).
//!
//! Where this deviates from zndraw-auth, and why:
//! - `code` is 128 random bits (22 characters), not 8: it names the challenge in a URL that
//!   may be phished, and guessing one must be hopeless. The 8-character code a human types
//!   is the new `user_code`; the approval needs it (`PATCH {user_code}`), so the approve
//!   link alone approves nothing.
//! - The approved poll carries a whole pair (`access_token`, `refresh_token`, `token_type`,
//!   `expires_in`, `refresh_expires_in`) beside `token` (the access token, as zndraw-auth
//!   names it). The refresh token is in the body in either refresh mode: the poller is a
//!   CLI, which keeps no cookie jar (with `RefreshMode::Cookie` it presents the token to
//!   `/refresh` as the `__Host-refresh_token` cookie header).
//! - A rejected challenge answers `403 {status: "rejected"}` (zndraw-auth deletes it and
//!   answers 404) so the CLI can say why; an approve or reject of an already decided
//!   challenge is `409`.
//! - A poll faster than `interval` answers `429 {status: "slow_down", interval}` with
//!   `Retry-After` (RFC 8628's `slow_down`, a 400 there: 429 lets generic clients back off).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::session::iso;
use super::{private_json, with_limit};
use crate::body::Fields;
use crate::client_ip::{ClientMeta, ip_key};
use crate::device_login::{Decision, DeviceLogin, Poll};
use crate::error::{AuthError, ValidationIssue};
use crate::facade::CrudAuth;
use crate::principal::Principal;
use crate::transport::session::no_store;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The device login service, when [`crate::CrudAuthBuilder::device_login`] turned it on.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.device_login().is_none()); // the fixture has no device login
    /// # Ok(()) });
    /// ```
    pub fn device_login(&self) -> Option<&DeviceLogin<U>> {
        self.inner.methods.device_login.as_ref()
    }

    /// The device login routes only (empty without them): `POST /auth/cli-login`, `GET`,
    /// `PATCH` and `DELETE /auth/cli-login/{code}`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let app: axum::Router = auth.device_login_router();
    /// # Ok(()) });
    /// ```
    pub fn device_login_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        super::limited(self.device_login_routes()).with_state(self.clone())
    }

    pub(super) fn device_login_routes(&self) -> Router<CrudAuth<U>> {
        if self.device_login().is_none() {
            return Router::new();
        }
        Router::new()
            .route("/auth/cli-login", post(start::<U>))
            .route(
                "/auth/cli-login/{code}",
                get(poll_or_view::<U>)
                    .patch(approve::<U>)
                    .delete(reject::<U>),
            )
    }
}

fn service<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&DeviceLogin<U>, AuthError> {
    auth.device_login().ok_or(AuthError::NotFound("Not Found"))
}

/// A JSON answer with a status, never cached.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

/// `POST /auth/cli-login`: a new challenge for this client.
async fn start<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
) -> Result<Response, AuthError> {
    let device_login = service(&auth)?;
    let allowed = auth
        .rate_limiter()
        .enforce("cli_login_start", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let started = device_login.start(&client).await?;
    Ok(with_limit(private_json(started), allowed))
}

#[derive(serde::Deserialize)]
struct PollQuery {
    secret: Option<String>,
}

/// The header a CLI may carry the secret in instead of `?secret=` (zndraw-auth's query form
/// stays for its clients): a query string ends up in proxies' access logs.
const SECRET_HEADER: &str = "x-cli-login-secret";

/// `GET /auth/cli-login/{code}`: with `?secret=` (or the `X-CLI-Login-Secret` header), the
/// CLI's poll; without, the approve page's data for the signed-in user.
async fn poll_or_view<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    Path(code): Path<String>,
    query: Result<Query<PollQuery>, axum::extract::rejection::QueryRejection>,
    headers: axum::http::HeaderMap,
    principal: Option<Principal<U>>,
) -> Result<Response, AuthError> {
    let device_login = service(&auth)?;
    let in_header = headers
        .get(SECRET_HEADER)
        .map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
    let secret = in_header.or_else(|| query.ok().and_then(|Query(q)| q.secret));
    if let Some(secret) = secret {
        let allowed = auth
            .rate_limiter()
            .enforce("cli_login_poll", &format!("ip:{}", ip_key(client.ip)))
            .await?;
        let poll = device_login.poll(&code, &secret).await?;
        return Ok(with_limit(poll_answer(poll), allowed));
    }
    let principal = principal.ok_or(AuthError::NotAuthenticated)?;
    let allowed = decide_limit(&auth, &principal).await?;
    let view = device_login
        .view(&code, &principal.user_id.to_string())
        .await?;
    let expires_in = (view.expires - device_login.config().clock.now_secs()).max(0);
    let body = json!({
        "code": code,
        "status": view.status,
        "client_ip": view.client_ip,
        "user_agent": view.user_agent,
        "created_at": iso(view.created),
        "expires_at": iso(view.expires),
        "expires_in": expires_in,
        "scopes": view.scopes,
    });
    Ok(with_limit(private_json(body), allowed))
}

fn poll_answer(poll: Poll) -> Response {
    let status = poll.status();
    match poll {
        Poll::Pending => answer(StatusCode::OK, json!({ "status": status })),
        Poll::SlowDown { interval } => {
            let mut response = answer(
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "status": status,
                    "error": status,
                    "interval": interval,
                    "detail": "Polling too fast; wait `interval` seconds between polls.",
                }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(interval));
            response
        }
        Poll::Approved(pair) => answer(
            StatusCode::OK,
            json!({
                "status": status,
                "token": pair.access_token,
                "access_token": pair.access_token,
                "token_type": pair.token_type,
                "refresh_token": pair.refresh_token,
                "expires_in": pair.expires_in,
                "refresh_expires_in": pair.refresh_expires_in,
            }),
        ),
        Poll::Rejected => answer(
            StatusCode::FORBIDDEN,
            json!({ "status": status, "detail": "Challenge rejected" }),
        ),
        Poll::Expired => answer(
            StatusCode::GONE,
            json!({ "status": status, "detail": "Challenge expired" }),
        ),
    }
}

/// The per-user budget of the browser side (read, approve, reject).
async fn decide_limit<U: UserRecord>(
    auth: &CrudAuth<U>,
    principal: &Principal<U>,
) -> Result<Option<crate::ratelimit::Allowed>, AuthError> {
    auth.rate_limiter()
        .enforce("cli_login_decide", &format!("user:{}", principal.user_id))
        .await
}

fn decision_answer(decision: Decision, done: impl FnOnce(Vec<String>) -> Response) -> Response {
    match decision {
        Decision::Done(scopes) => done(scopes),
        Decision::Conflict => answer(
            StatusCode::CONFLICT,
            json!({ "detail": "Challenge already decided" }),
        ),
        Decision::Expired => answer(
            StatusCode::GONE,
            json!({ "status": "expired", "detail": "Challenge expired" }),
        ),
    }
}

/// The optional `scopes` of an approval: a list of strings, or one space-separated string.
fn scopes_of(fields: &mut Fields) -> Option<Option<Vec<String>>> {
    let split = |s: &str| -> Vec<String> {
        s.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match fields.all().get("scopes") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.len() <= 4096 => Some(Some(split(s))),
        Some(Value::Array(items)) if items.len() <= 64 => {
            let strings: Option<Vec<String>> = items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect();
            if let Some(strings) = strings.filter(|s| s.iter().all(|s| s.len() <= 128)) {
                return Some(Some(strings));
            }
            fields.issues().push(ValidationIssue::body(
                "scopes",
                "value_error",
                "scopes is a list of scope names",
            ));
            None
        }
        Some(_) => {
            fields.issues().push(ValidationIssue::body(
                "scopes",
                "value_error",
                "scopes is a list of scope names",
            ));
            None
        }
    }
}

/// `PATCH /auth/cli-login/{code} {user_code, scopes?}`: approves as the signed-in user.
async fn approve<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let device_login = service(&auth)?;
    let allowed = decide_limit(&auth, &principal).await?;
    let mut fields = Fields::json(&headers, &body)?;
    let user_code = fields.string("user_code");
    let scopes = scopes_of(&mut fields);
    let (user_code, scopes) = fields.finish(user_code.zip(scopes))?;
    let decision = device_login
        .approve(&principal, &code, &user_code, scopes)
        .await?;
    let response = decision_answer(decision, |scopes| {
        private_json(json!({ "status": "approved", "scopes": scopes }))
    });
    Ok(with_limit(response, allowed))
}

/// `DELETE /auth/cli-login/{code}`: rejects as the signed-in user.
async fn reject<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(code): Path<String>,
) -> Result<Response, AuthError> {
    let device_login = service(&auth)?;
    let allowed = decide_limit(&auth, &principal).await?;
    let decision = device_login.reject(&principal, &code).await?;
    let response = decision_answer(decision, |_| StatusCode::NO_CONTENT.into_response());
    Ok(with_limit(response, allowed))
}
