//! The email-flow routes, `/set-password` and `/sudo`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::with_limit;
use crate::body::{
    Body, ChangeEmailBody, EmailBody, NewPasswordBody, PasswordBody, ResetBody, TokenBody,
};
use crate::captcha::CaptchaAction;
use crate::client_ip::{ClientMeta, ip_key};
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::principal::Principal;
use crate::ratelimit::{Allowed, Decision, RateLimit};
use crate::recovery::Recovery;
use crate::transport::session::{cookie, set_session_cookie};
use crate::user::UserRecord;

/// The default limit of each confirm route (`password_reset_confirm`,
/// `email_verify_confirm`, `email_change_confirm`): 20 an hour per client address. A link
/// is confirmed once or twice; the limit caps what one client can make the server do with
/// guessed or replayed tokens. Override it per action with
/// [`crate::CrudAuthBuilder::rate_limit`] ([`RateLimit::OFF`] switches it off).
const CONFIRM_LIMIT: RateLimit = RateLimit::new(20, std::time::Duration::from_secs(3600));

/// Counts a confirm request against its per-IP limit (the configured one for `action`, or
/// [`CONFIRM_LIMIT`]); 429 with `Retry-After` when over it.
async fn confirm_limit<U: UserRecord>(
    auth: &CrudAuth<U>,
    action: &str,
    client: &ClientMeta,
) -> Result<Option<Allowed>, AuthError> {
    let limiter = auth.rate_limiter();
    let limit = limiter.limit(action).unwrap_or(CONFIRM_LIMIT);
    let identity = format!("ip:{}", ip_key(client.ip));
    match limiter.check(action, limit, &identity).await? {
        Decision::Allowed(allowed) => Ok(allowed),
        Decision::Limited(limited) => Err(AuthError::RateLimited(limited)),
    }
}

/// The email flows of a route that is only mounted with them.
fn flows<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&Recovery<U>, AuthError> {
    auth.recovery().ok_or(AuthError::NotFound("Not Found"))
}

const VERIFY_SENT: &str = "If an account exists, a verification email has been sent.";
const RESET_SENT: &str = "If an account exists, a password reset email has been sent.";
const CHANGE_SENT: &str = "If the address is available, a confirmation email has been sent.";

fn detail(text: &str) -> Response {
    Json(json!({ "detail": text })).into_response()
}

/// Holds a request route's answer until `answer_after` has passed since `since` (see
/// [`crate::RecoveryConfig::answer_after`]); never depends on the account.
pub(super) async fn answer_at<U: UserRecord>(auth: &CrudAuth<U>, since: tokio::time::Instant) {
    if let Some(recovery) = auth.recovery() {
        tokio::time::sleep_until(since + recovery.config().answer_after).await;
    }
}

/// A request route: its per-IP limit, its body (`{email}`), the background job `start`,
/// and the uniform answer at the fixed time; nothing in it depends on the account.
async fn request_route<U: UserRecord>(
    auth: &CrudAuth<U>,
    action: &str,
    client: &ClientMeta,
    (headers, body): (&HeaderMap, &[u8]),
    start: fn(&Recovery<U>, &str, &ClientMeta),
    answer: &str,
    captcha: Option<CaptchaAction>,
) -> Result<Response, AuthError> {
    let since = tokio::time::Instant::now();
    let allowed = auth
        .rate_limiter()
        .enforce(action, &format!("ip:{}", ip_key(client.ip)))
        .await?;
    // After the limit (which bounds the calls to the verifier), before anything is done
    // with the address.
    if let Some(captcha) = captcha {
        auth.core()
            .check_captcha(captcha, client, headers, body)
            .await?;
    }
    let EmailBody { email } = Body::parse(headers, body)?;
    start(flows(auth)?, &email, client);
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
    let start: fn(&Recovery<U>, &str, &ClientMeta) = Recovery::request_verification;
    request_route(
        &auth,
        "email_verify_request",
        &client,
        (&headers, &body),
        start,
        VERIFY_SENT,
        None,
    )
    .await
}

/// `POST /email/verify-confirm` (limited per client address).
pub(crate) async fn verify_confirm<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let allowed = confirm_limit(&auth, "email_verify_confirm", &client).await?;
    let TokenBody { token } = Body::parse(&headers, &body)?;
    flows(&auth)?.confirm_verification(&token).await?;
    Ok(with_limit(detail("Verified successfully."), allowed))
}

/// `POST /password/reset-request`.
pub(crate) async fn reset_request<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let start: fn(&Recovery<U>, &str, &ClientMeta) = Recovery::request_password_reset;
    request_route(
        &auth,
        "password_reset_request",
        &client,
        (&headers, &body),
        start,
        RESET_SENT,
        Some(CaptchaAction::PasswordReset),
    )
    .await
}

/// `POST /password/reset-confirm` (limited per client address): the token is claimed
/// before the password is checked or hashed (see [`CrudAuth::confirm_password_reset`]).
pub(crate) async fn reset_confirm<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let allowed = confirm_limit(&auth, "password_reset_confirm", &client).await?;
    let ResetBody {
        token,
        new_password,
    } = Body::parse(&headers, &body)?;
    flows(&auth)?
        .confirm_password_reset(&token, &new_password)
        .await?;
    Ok(with_limit(detail("Password reset successfully."), allowed))
}

/// `POST /email/change-request` (authenticated).
pub(crate) async fn change_request<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    principal.refuse_delegated()?;
    let allowed = auth
        .rate_limiter()
        .enforce("email_change_request", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let ChangeEmailBody {
        new_email,
        password,
    } = Body::parse(&headers, &body)?;
    flows(&auth)?
        .request_email_change(&principal, &new_email, &password, &client)
        .await?;
    // Timed from after the password check: only the part that depends on the new
    // address must not show.
    answer_at(&auth, tokio::time::Instant::now()).await;
    Ok(with_limit(detail(CHANGE_SENT), allowed))
}

/// `POST /email/change-confirm` (limited per client address).
///
/// Every session of the user ends when the change is confirmed, with one exception: when
/// the confirming request rides a live session of that same user and proves it is that
/// session's own page (the session cookie *and* its CSRF token in the header, as every
/// state-changing session request must), that session survives under a new id, set as its
/// cookie. With the cookie alone (no or a wrong CSRF token) the address changes all the
/// same (the token is the authority) but that session ends with the others: the safe
/// default, since the link may have been opened anywhere. Another user's session riding the
/// request is left alone.
pub(crate) async fn change_confirm<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let allowed = confirm_limit(&auth, "email_change_confirm", &client).await?;
    let TokenBody { token } = Body::parse(&headers, &body)?;
    let mut keep = None;
    if let Some(sessions) = auth.sessions() {
        let config = sessions.config();
        if let Some(raw) = cookie(&headers, &config.cookie_name)
            && let Some(live) = sessions.resolve(raw).await?
            && sessions.check_request_csrf(&live, &headers).is_ok()
        {
            keep = Some(live);
        }
    }
    let (_, moved) = flows(&auth)?
        .confirm_email_change_keeping(&token, keep.as_ref())
        .await?;
    let mut response = detail("Email changed successfully.");
    if let (Some(moved), Some(sessions)) = (moved, auth.sessions()) {
        set_session_cookie(sessions, &moved.id, &mut response);
    }
    Ok(with_limit(response, allowed))
}

/// `POST /set-password` (authenticated, recent session sign-in): the session lives on
/// under a new id, set as its cookie.
pub(crate) async fn set_password<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    Body(NewPasswordBody { new_password }): Body<NewPasswordBody>,
) -> Result<Response, AuthError> {
    principal.refuse_delegated()?;
    let login = auth.login();
    let moved = login
        .set_password(&principal, &new_password, &client)
        .await?;
    let mut response = detail("Password set.");
    if let (Some(moved), Some(sessions)) = (moved, auth.sessions()) {
        set_session_cookie(sessions, &moved.id, &mut response);
    }
    Ok(response)
}

/// `POST /sudo` (session only): `{password}` → `{"detail": "elevated"}`, and the session's
/// new id as its cookie.
pub(crate) async fn sudo<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AuthError> {
    principal.refuse_delegated()?;
    // `{code}` (a TOTP or recovery code) instead of the password, with a second factor on.
    #[cfg(feature = "mfa")]
    if let Some(mfa) = auth.mfa()
        && let Some(code) = crate::body::Fields::json(&headers, &body)?.optional("code")
    {
        let elevated = mfa.elevate(&principal, &code, &client).await?;
        let mut response = detail("elevated");
        if let Some(sessions) = auth.sessions() {
            set_session_cookie(sessions, &elevated.session.id, &mut response);
        }
        return Ok(response);
    }
    let PasswordBody { password } = crate::body::Body::<PasswordBody>::parse(&headers, &body)?;
    // The elevated session moves to a new id: a copy of the cookie taken before the
    // elevation never opens a sudo-gated route.
    let elevated = auth.sudo().elevate(&principal, &password, &client).await?;
    let mut response = detail("elevated");
    if let Some(sessions) = auth.sessions() {
        set_session_cookie(sessions, &elevated.session.id, &mut response);
    }
    Ok(response)
}
