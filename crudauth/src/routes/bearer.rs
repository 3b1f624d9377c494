//! The bearer transport's routes: `/token`, `/refresh`, `/tokens`, `DELETE /tokens/{id}`,
//! and `/logout` when no session transport is configured.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::session::iso;
use super::{json_object, login_form, no_store};
use crate::error::AuthError;
use crate::facade::{ClientMeta, CrudAuth, cookie};
use crate::hooks::UserEvent;
use crate::principal::Principal;
use crate::tokens::{Claims, RefreshMode, TokenPair, TokenService};
use crate::user::UserRecord;

/// The refresh cookie's name. Always `Secure` with `Path=/` and no `Domain`, so always the
/// `__Host-` form: a sibling subdomain cannot plant a `refresh_token` cookie that the
/// browser sends first and refresh the victim into the attacker's account (0.8 named it
/// `refresh_token`; a cookie of that name is never read).
const REFRESH_COOKIE: &str = "__Host-refresh_token";

/// The refresh cookie: HttpOnly, Secure, `Path=/`, `SameSite=Lax`; `max_age` 0 clears it.
fn refresh_cookie(value: String, max_age: i64) -> Option<HeaderValue> {
    let mut builder = cookie::Cookie::build((REFRESH_COOKIE, value))
        .http_only(true)
        .secure(true)
        .path("/")
        .same_site(cookie::SameSite::Lax)
        .max_age(time::Duration::seconds(max_age));
    if max_age == 0 {
        builder = builder.expires(time::OffsetDateTime::UNIX_EPOCH);
    }
    builder.build().to_string().parse().ok()
}

/// Clears the refresh cookie, in [`RefreshMode::Cookie`] (the only mode that sets it).
pub(crate) fn clear_refresh_cookie<U: UserRecord>(auth: &CrudAuth<U>, response: &mut Response) {
    if auth
        .tokens()
        .is_some_and(|t| t.config().refresh == RefreshMode::Cookie)
        && let Some(v) = refresh_cookie(String::new(), 0)
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Whether the browser says the request comes from another site (login CSRF).
pub(crate) fn is_cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
}

fn pair_response<U: UserRecord>(auth: &CrudAuth<U>, pair: TokenPair) -> Response {
    let Some(tokens) = auth.tokens() else {
        return AuthError::Internal.into_response();
    };
    let mut response = match tokens.config().refresh {
        RefreshMode::Body => Json(pair).into_response(),
        RefreshMode::Cookie => {
            let max_age = i64::try_from(pair.refresh_expires_in).unwrap_or(i64::MAX);
            let mut response = Json(json!({
                "access_token": pair.access_token,
                "token_type": pair.token_type,
                "expires_in": pair.expires_in,
            }))
            .into_response();
            if let Some(v) = refresh_cookie(pair.refresh_token, max_age) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
    };
    no_store(&mut response);
    response
}

/// `POST /token`: form `username`, `password`, optional space-separated `scope`. In
/// refresh-cookie mode a cross-site request is refused (403), as at `/login`: it would sign
/// the browser into the attacker's account.
pub(crate) async fn token<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let tokens = auth.tokens().ok_or(AuthError::Internal)?;
    if tokens.config().refresh == RefreshMode::Cookie && is_cross_site(&headers) {
        return Err(AuthError::Forbidden(
            "Cross-site login requests are not allowed.",
        ));
    }
    let form = login_form(&headers, &body)?;
    let verified = auth
        .authenticate_password(&form.username, &form.password, &client, "bearer")
        .await?;
    let user = verified.user;
    let pair = auth
        .issue_tokens_at(&user, verified.epoch, form.scope.split(' '))
        .await?;
    let ctx = client.hook_context(Some("bearer"));
    auth.hooks()
        .fire(UserEvent::LoggedIn, &user.contract(), &ctx)
        .await;
    Ok(pair_response(&auth, pair))
}

/// The refresh token a request presents, where the mode says it travels and nowhere else:
/// the JSON body in [`RefreshMode::Body`] (a cookie is ignored: a sibling subdomain could
/// have planted it), the cookie in [`RefreshMode::Cookie`].
fn presented_refresh(
    tokens: &TokenService,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, AuthError> {
    let missing = AuthError::Unauthorized("Refresh token missing");
    match tokens.config().refresh {
        RefreshMode::Cookie => cookie(headers, REFRESH_COOKIE)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or(missing),
        RefreshMode::Body => {
            if body.is_empty() {
                return Err(missing);
            }
            match json_object(headers, body)?.get("refresh_token") {
                Some(serde_json::Value::String(t)) if !t.is_empty() => Ok(t.clone()),
                _ => Err(missing),
            }
        }
    }
}

/// `POST /refresh`: JSON `{refresh_token}` in body mode, the refresh cookie in cookie mode;
/// rotates the token.
pub(crate) async fn refresh<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let tokens = auth.tokens().ok_or(AuthError::Internal)?;
    let presented = presented_refresh(tokens, &headers, &body)?;
    let claims = tokens.check_refresh(&presented).await?;
    let invalid = AuthError::Unauthorized("Invalid or expired refresh token");
    let Some(id) = auth.repo().schema().id_kind.parse(&claims.sub) else {
        return Err(invalid);
    };
    let user = auth.repo().find_by_id(&id).await.map_err(|e| {
        crate::store::report_fault("user repository", &e);
        AuthError::Unavailable
    })?;
    let Some(user) = user.filter(UserRecord::is_active) else {
        tokens.revoke_family(&claims).await?;
        return Err(invalid);
    };
    let epoch = auth.epoch(&user).await?;
    if epoch != claims.epoch {
        tokens.revoke_family(&claims).await?;
        return Err(invalid);
    }
    let pair = tokens.rotate(&claims, epoch).await?;
    Ok(pair_response(&auth, pair))
}

/// Ends the refresh family a logout presents (the cookie in cookie mode, a JSON
/// `{refresh_token}` body in body mode; a malformed body is ignored: a logout never fails on
/// it). Returns the token's claims when a live family was ended.
pub(crate) async fn end_presented_family<U: UserRecord>(
    auth: &CrudAuth<U>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Claims>, AuthError> {
    let Some(tokens) = auth.tokens() else {
        return Ok(None);
    };
    let Ok(token) = presented_refresh(tokens, headers, body) else {
        return Ok(None);
    };
    tokens.revoke_refresh_token(&token).await
}

/// Fires `on_after_logout` for the user behind a textual id (a session's or a refresh
/// token's), if they still exist; `true` if it fired.
pub(crate) async fn fire_logout<U: UserRecord>(
    auth: &CrudAuth<U>,
    uid: &str,
    ctx: &crate::hooks::HookContext,
) -> bool {
    if let Some(id) = auth.repo().schema().id_kind.parse(uid)
        && let Ok(Some(user)) = auth.repo().find_by_id(&id).await
    {
        auth.hooks()
            .fire(UserEvent::LoggedOut, &user.contract(), ctx)
            .await;
        return true;
    }
    false
}

/// Fires `on_after_logout` for a bearer client whose family a logout ended.
pub(crate) async fn fire_bearer_logout<U: UserRecord>(
    auth: &CrudAuth<U>,
    claims: &Claims,
    client: &ClientMeta,
) {
    fire_logout(auth, &claims.sub, &client.hook_context(Some("bearer"))).await;
}

/// `POST /logout` without a session transport: ends the presented refresh token's family
/// (if one is presented) and clears the refresh cookie. Access tokens are not on a deny-list:
/// one already minted lives until it expires.
pub(crate) async fn logout<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    if let Some(claims) = end_presented_family(&auth, &headers, &body).await? {
        fire_bearer_logout(&auth, &claims, &client).await;
    }
    let mut response = Json(json!({ "detail": "Logged out" })).into_response();
    clear_refresh_cookie(&auth, &mut response);
    Ok(response)
}

/// `GET /tokens`: the caller's live refresh-token families (any transport), most recently
/// rotated first: `[{id, created_at, last_rotated, expires_at, scopes}]`, no secrets.
pub(crate) async fn list_families<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    let tokens = auth.tokens().ok_or(AuthError::NotFound("Not Found"))?;
    let families = tokens.families(&principal.user_id.to_string()).await?;
    let body: Vec<_> = families
        .into_iter()
        .map(|f| {
            json!({
                "id": f.id,
                "created_at": iso(f.created),
                "last_rotated": iso(f.rotated),
                "expires_at": iso(f.expires),
                "scopes": f.scopes,
            })
        })
        .collect();
    Ok(super::private_json(body))
}

/// `DELETE /tokens/{id}`: revokes one of the caller's families; 404 for unknown handles and
/// for other users' handles alike.
pub(crate) async fn revoke_family<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    let tokens = auth.tokens().ok_or(AuthError::NotFound("Not Found"))?;
    if !tokens
        .revoke_family_by_id(&principal.user_id.to_string(), &id)
        .await?
    {
        return Err(AuthError::NotFound("Token not found."));
    }
    Ok(Json(json!({ "detail": "Token revoked." })).into_response())
}
