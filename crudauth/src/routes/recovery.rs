//! The email-flow routes, `/set-password` and `/sudo`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{email_field, json_object, string_field, with_limit};
use crate::client_ip::ip_key;
use crate::error::AuthError;
use crate::facade::{ClientMeta, CrudAuth};
use crate::principal::Principal;
use crate::user::UserRecord;

const VERIFY_SENT: &str = "If an account exists, a verification email has been sent.";
const RESET_SENT: &str = "If an account exists, a password reset email has been sent.";
const CHANGE_SENT: &str = "If the address is available, a confirmation email has been sent.";

fn detail(text: &str) -> Response {
    Json(json!({ "detail": text })).into_response()
}

/// The one required string field of a JSON body, or the 422.
fn one_field(headers: &HeaderMap, body: &[u8], field: &str) -> Result<String, AuthError> {
    let map = json_object(headers, body)?;
    let mut issues = Vec::new();
    string_field(&map, field, &mut issues)
        .map(str::to_owned)
        .ok_or(AuthError::Validation(issues))
}

/// Holds a request route's answer until `answer_after` has passed since `since` (see
/// [`crate::RecoveryConfig::answer_after`]); never depends on the account.
pub(super) async fn answer_at<U: UserRecord>(auth: &CrudAuth<U>, since: tokio::time::Instant) {
    if let Some(recovery) = auth.recovery() {
        tokio::time::sleep_until(since + recovery.config.answer_after).await;
    }
}

/// A request route: its per-IP limit, its body (`{email}`), the background job `start`,
/// and the uniform answer at the fixed time; nothing in it depends on the account.
async fn request_route<U: UserRecord>(
    auth: &CrudAuth<U>,
    action: &str,
    client: &ClientMeta,
    (headers, body): (&HeaderMap, &[u8]),
    start: fn(&CrudAuth<U>, &str, &ClientMeta),
    answer: &str,
) -> Result<Response, AuthError> {
    let since = tokio::time::Instant::now();
    let allowed = auth
        .rate_limiter()
        .enforce(action, &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let map = json_object(headers, body)?;
    let mut issues = Vec::new();
    let email = email_field(&map, "email", &mut issues).ok_or(AuthError::Validation(issues))?;
    start(auth, email, client);
    answer_at(auth, since).await;
    Ok(with_limit(detail(answer), allowed))
}

/// `POST /email/verify-request`.
pub(crate) async fn verify_request<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let start: fn(&CrudAuth<U>, &str, &ClientMeta) = CrudAuth::request_verification;
    request_route(
        &auth,
        "email_verify_request",
        &client,
        (&headers, &body),
        start,
        VERIFY_SENT,
    )
    .await
}

/// `POST /email/verify-confirm`.
pub(crate) async fn verify_confirm<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let token = one_field(&headers, &body, "token")?;
    auth.confirm_verification(&token).await?;
    Ok(detail("Verified successfully."))
}

/// `POST /password/reset-request`.
pub(crate) async fn reset_request<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let start: fn(&CrudAuth<U>, &str, &ClientMeta) = CrudAuth::request_password_reset;
    request_route(
        &auth,
        "password_reset_request",
        &client,
        (&headers, &body),
        start,
        RESET_SENT,
    )
    .await
}

/// `POST /password/reset-confirm`.
pub(crate) async fn reset_confirm<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let map = json_object(&headers, &body)?;
    let mut issues = Vec::new();
    let token = string_field(&map, "token", &mut issues);
    let new = string_field(&map, "new_password", &mut issues);
    let (Some(token), Some(new)) = (token, new) else {
        return Err(AuthError::Validation(issues));
    };
    auth.confirm_password_reset(token, new).await?;
    Ok(detail("Password reset successfully."))
}

/// `POST /email/change-request` (authenticated).
pub(crate) async fn change_request<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let allowed = auth
        .rate_limiter()
        .enforce("email_change_request", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let map = json_object(&headers, &body)?;
    let mut issues = Vec::new();
    let new_email = email_field(&map, "new_email", &mut issues);
    let password = string_field(&map, "password", &mut issues);
    let (Some(new_email), Some(password)) = (new_email, password) else {
        return Err(AuthError::Validation(issues));
    };
    auth.request_email_change(&principal, new_email, password, &client)
        .await?;
    // Timed from after the password check: only the part that depends on the new
    // address must not show.
    answer_at(&auth, tokio::time::Instant::now()).await;
    Ok(with_limit(detail(CHANGE_SENT), allowed))
}

/// `POST /email/change-confirm`.
pub(crate) async fn change_confirm<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let token = one_field(&headers, &body, "token")?;
    auth.confirm_email_change(&token).await?;
    Ok(detail("Email changed successfully."))
}

/// `POST /set-password` (authenticated, recent session sign-in).
pub(crate) async fn set_password<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let new = one_field(&headers, &body, "new_password")?;
    auth.set_password(&principal, &new, &client).await?;
    Ok(detail("Password set."))
}

/// `POST /sudo` (session only): `{password}` → `{"detail": "elevated"}`.
pub(crate) async fn sudo<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let password = one_field(&headers, &body, "password")?;
    auth.sudo().elevate(&principal, &password).await?;
    Ok(detail("elevated"))
}
