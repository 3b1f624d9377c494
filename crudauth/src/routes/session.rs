//! The session transport's routes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::bearer::{end_bearer_credentials, fire_logout};
use super::with_limit;
use crate::body::{Body, LoginForm};
use crate::captcha::CaptchaAction;
use crate::client_ip::{ClientMeta, ip_key};
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::hooks::Event;
use crate::principal::{Principal, Transport};
use crate::session::{LiveSession, Sessions};
use crate::transport::bearer::clear_refresh_cookie;
use crate::transport::session::{
    clear_cookies, cookie, is_cross_site, set_csrf_cookie, set_session_cookie, set_sign_in_cookies,
};
use crate::user::UserRecord;

fn manager<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&Sessions, AuthError> {
    auth.sessions().ok_or(AuthError::NotFound("Not Found"))
}

fn session_principal<U>(principal: &Principal<U>) -> Result<&str, AuthError> {
    match (principal.via, principal.session_handle.as_deref()) {
        (Transport::Session, Some(handle)) => Ok(handle),
        _ => Err(AuthError::NotAuthenticated),
    }
}

/// `POST /login`: form `username`, `password`; sets `session_id` and `csrf_token`.
pub(crate) async fn login<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let sessions = manager(&auth)?;
    // Login CSRF: a cross-site page must not be able to sign the browser into an account.
    if is_cross_site(&headers) {
        return Err(AuthError::Forbidden(
            "Cross-site login requests are not allowed.",
        ));
    }
    let form = Body::<LoginForm>::parse(&headers, &body)?;
    // Before the lockout counts the attempt and before any account is looked up.
    auth.core()
        .check_captcha(CaptchaAction::Login, &client, &headers, &body)
        .await?;
    let signed_in = super::password_sign_in(
        &auth,
        &form.username,
        &form.password,
        &client,
        &headers,
        super::Start::Session,
    )
    .await;
    if signed_in.is_ok() {
        auth.core().captcha_login_succeeded(&client).await;
    }
    let signed_in = signed_in?;
    let verified = match signed_in {
        super::SignIn::Done(verified) => verified,
        super::SignIn::Challenged(challenge) => return Ok(challenge),
    };
    let user = verified.user;
    let new = open_session(&auth, &user, verified.epoch, &client, &headers, None).await?;
    let mut ctx = client.hook_context(Some("session"));
    ctx.session_handle = Some(new.handle.clone());
    let mut response = Json(json!({
        "id": user.user_id(),
        "username": user.username().or(user.email()),
        "csrf_token": new.csrf_token,
    }))
    .into_response();
    set_sign_in_cookies(sessions, &new, &mut response);
    auth.core()
        .hooks
        .fire_user(Event::AfterLogin, user.into(), &ctx)
        .await;
    Ok(response)
}

/// Opens a session for a user who just signed in: the presented session (if any) ends, a
/// new id is drawn (no fixation); `method` is the (`login_type`, provider) of a sign-in
/// that was not a password's.
pub(super) async fn open_session<U: UserRecord>(
    auth: &CrudAuth<U>,
    user: &U,
    epoch: i64,
    client: &ClientMeta,
    headers: &HeaderMap,
    method: Option<(&str, &str)>,
) -> Result<crate::session::NewSession, AuthError> {
    let sessions = manager(auth)?;
    if let Some(raw) = cookie(headers, &sessions.config().cookie_name)
        && let Some(old) = sessions.resolve(raw).await?
    {
        sessions.delete(&old.handle, &old.record.user_id).await?;
    }
    let ip = (client.ip)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into());
    let uid = user.user_id().to_string();
    let tenant = auth.core().tenancy.of(user, headers);
    sessions
        .create_in(&uid, epoch, (&ip, &client.user_agent), method, tenant)
        .await
}

/// `POST /logout`: a live session needs its CSRF token; a stale one just clears cookies.
/// A bearer access token in `Authorization` goes on the deny list. A presented refresh token (the cookie in cookie mode, a JSON `{refresh_token}` body in
/// body mode) has its family ended too. Every cookie the library sets is cleared: session,
/// CSRF and, in refresh-cookie mode, `refresh_token`.
pub(crate) async fn logout<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let sessions = manager(&auth)?;
    let config = sessions.config();
    let mut fired = false;
    #[allow(unused_mut)] // only an impersonation session has more to end
    let mut parked = false;
    if let Some(raw) = cookie(&headers, &config.cookie_name)
        && let Some(live) = sessions.resolve(raw).await?
    {
        sessions.check_request_csrf(&live, &headers)?;
        sessions.delete(&live.handle, &live.record.user_id).await?;
        #[cfg(feature = "admin")]
        {
            parked = super::impersonation::end_parked(sessions, &live, &headers).await?;
        }
        let mut ctx = client.hook_context(Some("session"));
        ctx.session_handle = Some(live.handle.clone());
        fired = fire_logout(&auth, &live.record.user_id, &ctx).await;
    }
    // After the CSRF check: a forged logout ends nothing. A bearer access token sent along
    // goes on the deny list, a presented refresh token's family ends.
    end_bearer_credentials(&auth, &client, &headers, &body, fired).await?;
    let mut response = Json(json!({ "detail": "Logged out" })).into_response();
    clear_cookies(sessions, &mut response);
    clear_refresh_cookie(auth.tokens(), &mut response);
    #[cfg(feature = "admin")]
    if parked {
        super::impersonation::clear_parked(sessions, &mut response);
    }
    let _ = parked;
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct LogoutAllQuery {
    #[serde(default)]
    keep_current: bool,
}

/// `POST /logout-all?keep_current=false`: sign out everywhere.
///
/// Bumps the user's revocation epoch, which ends every access token (and every pending
/// verify / reset / email-change link, which are bound to the epoch) at once; ends every
/// refresh-token family of the user; ends every other session. With `keep_current=true` the
/// calling session survives under a new id (set as its cookie), rebound to the new epoch;
/// without it the calling session ends too and its cookies are cleared. The refresh cookie (refresh-cookie mode) is always
/// cleared: its family is over. A concurrent request on the calling session can beat the
/// rebind and end it: the safe outcome, answered with cleared cookies.
pub(crate) async fn logout_all<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    query: Result<Query<LogoutAllQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AuthError> {
    let sessions = manager(&auth)?;
    let current = session_principal(&principal)?;
    let keep_current = query.map(|Query(q)| q.keep_current).map_err(|_| {
        AuthError::Validation(vec![crate::error::ValidationIssue {
            kind: "bool_parsing",
            loc: vec!["query".into(), "keep_current".into()],
            msg: "Input should be a valid boolean".into(),
            ctx: None,
        }])
    })?;
    let uid = principal.user_id.to_string();
    let allowed = auth
        .rate_limiter()
        .enforce("logout_all", &format!("user:{uid}"))
        .await?;
    // The epoch first: every access token and session of the user dies in this one step.
    let epoch = auth.revocation().bump(&principal.user).await?;
    if let Some(tokens) = auth.tokens() {
        tokens.revoke_all_families(&uid).await?;
    }
    let keep = keep_current.then_some(current);
    let revoked = sessions.revoke_all(&uid, keep).await?;
    let success = crate::audit::Outcome::Success;
    crate::audit::user_event("logout_all", success, &uid, Some("session"), None);
    // The kept session moves to a new id on the way to the new epoch: a copy of its cookie
    // (the one "sign out everywhere" is meant to shake off) dies with the others.
    let moved = match keep {
        Some(handle) => match sessions.rotate_with(handle, |r| r.epoch = epoch).await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::info!(error = %e, "could not move the current session; it ends");
                sessions.delete(handle, &uid).await.ok();
                None
            }
        },
        None => None,
    };
    let mut response = Json(json!({ "detail": "Signed out of all sessions.", "revoked": revoked }))
        .into_response();
    match moved {
        Some(moved) => set_session_cookie(sessions, &moved.id, &mut response),
        None => clear_cookies(sessions, &mut response),
    }
    clear_refresh_cookie(auth.tokens(), &mut response);
    Ok(with_limit(response, allowed))
}

/// RFC 3339 (UTC) of unix seconds, as the `/sessions` and `/tokens` lists show times.
pub(crate) fn iso(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn describe(session: &LiveSession, current: &str) -> serde_json::Value {
    json!({
        "id": session.handle,
        "device": session.record.device,
        "ip": session.record.ip,
        "created_at": iso(session.record.created),
        "last_activity": iso(session.record.last_seen),
        "current": session.handle == current,
        "login_type": session.record.login_type.as_deref().unwrap_or("password"),
        "provider": session.record.provider,
    })
}

/// `GET /sessions`: the user's live sessions, most recent first.
pub(crate) async fn list<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    let sessions = manager(&auth)?;
    let current = session_principal(&principal)?;
    let mut all = sessions.list(&principal.user_id.to_string()).await?;
    all.sort_by_key(|s| std::cmp::Reverse(s.record.last_seen));
    let body: Vec<_> = all.iter().map(|s| describe(s, current)).collect();
    Ok(super::private_json(body))
}

/// `DELETE /sessions/{id}`: 404 for unknown handles and for other users' handles alike.
pub(crate) async fn revoke<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(handle): Path<String>,
) -> Result<Response, AuthError> {
    let sessions = manager(&auth)?;
    let current = session_principal(&principal)?.to_owned();
    let uid = principal.user_id.to_string();
    let owned = sessions
        .list(&uid)
        .await?
        .into_iter()
        .any(|s| s.handle == handle);
    if !owned {
        return Err(AuthError::NotFound("Session not found."));
    }
    sessions.delete(&handle, &uid).await?;
    let success = crate::audit::Outcome::Success;
    crate::audit::user_event("session_revoked", success, &uid, Some("session"), None);
    let mut response = Json(json!({ "detail": "Session revoked." })).into_response();
    if handle == current {
        clear_cookies(sessions, &mut response);
    }
    Ok(response)
}

/// `POST /csrf/refresh`: returns the CSRF token of a live session (re-minting a lost one).
pub(crate) async fn csrf_refresh<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
) -> Result<Response, AuthError> {
    let sessions = manager(&auth)?;
    let config = sessions.config();
    if !config.csrf {
        return Err(AuthError::BadRequest("CSRF is disabled."));
    }
    let allowed = auth
        .rate_limiter()
        .enforce("csrf_refresh", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let Some(raw) = cookie(&headers, &config.cookie_name) else {
        return Err(AuthError::NotAuthenticated);
    };
    let Some(live) = sessions.resolve(raw).await? else {
        return Err(AuthError::NotAuthenticated);
    };
    if let Some(token) = cookie(&headers, &config.csrf_cookie_name)
        && sessions.csrf_matches(&live, token)
    {
        let response = super::private_json(json!({ "csrf_token": token }));
        return Ok(with_limit(response, allowed));
    }
    let token = sessions.rotate_csrf(&live).await?;
    let mut response = super::private_json(json!({ "csrf_token": token }));
    set_csrf_cookie(sessions, &token, &mut response);
    Ok(with_limit(response, allowed))
}
