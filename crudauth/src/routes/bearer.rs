//! The bearer transport's routes: `/token`, `/refresh`, `/tokens`, `DELETE /tokens/{id}`,
//! `/logout` when no session transport is configured, and `/.well-known/jwks.json` when the
//! key set has a key pair.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::session::iso;
use crate::body::{Body, LoginForm};
use crate::captcha::CaptchaAction;
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::hooks::{Event, HookContext};
use crate::principal::Principal;
use crate::store::repo_fault;
use crate::tokens::{Claims, RefreshMode};
use crate::transport::bearer::{clear_refresh_cookie, pair_response, presented_refresh};
use crate::transport::session::is_cross_site;
use crate::user::UserRecord;

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
    let form = Body::<LoginForm>::parse(&headers, &body)?;
    let scopes = form
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
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
        super::Start::Bearer(scopes),
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
    let core = auth.core();
    let scopes = form.scope.split(' ');
    let pair =
        crate::transport::bearer::issue_for(core, &user, verified.epoch, scopes, &headers).await?;
    let ctx = client.hook_context(Some("bearer"));
    core.hooks
        .fire_user(Event::AfterLogin, user.into(), &ctx)
        .await;
    Ok(pair_response(tokens, pair))
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
    let user = auth.repo().find_by_id(&id).await.map_err(repo_fault)?;
    let Some(user) = user.filter(UserRecord::is_active) else {
        tokens.revoke_family(&claims).await?;
        return Err(invalid);
    };
    let epoch = auth.revocation().epoch(&user).await?;
    // A user moved to another tenant (the column) ends their old tenant's families too.
    if epoch != claims.epoch || !auth.tenancy().still_member(&user, claims.tenant.as_deref()) {
        tokens.revoke_family(&claims).await?;
        return Err(invalid);
    }
    let pair = tokens.rotate(&claims, epoch).await?;
    let success = crate::audit::Outcome::Success;
    crate::audit::user_event("token_refreshed", success, &id, Some("bearer"), None);
    Ok(pair_response(tokens, pair))
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

/// Puts the access token of a logout's `Authorization: Bearer` header on the deny list, so a
/// stolen copy dies at the logout and not at its expiry. No header, another scheme or a token
/// that does not verify is ignored (a logout never fails on it); returns the claims of the
/// token it ended (`None` for one already on the list: its logout was told before).
pub(crate) async fn deny_presented_access<U: UserRecord>(
    auth: &CrudAuth<U>,
    headers: &HeaderMap,
) -> Result<Option<Claims>, AuthError> {
    let Some(tokens) = auth.tokens() else {
        return Ok(None);
    };
    let Ok(Some(token)) = crate::transport::bearer::presented_access(headers) else {
        return Ok(None);
    };
    let Ok(claims) = tokens.verify_access(token) else {
        return Ok(None);
    };
    let newly = auth
        .revocation()
        .deny_access_token(&claims.jti, claims.exp)
        .await?;
    Ok(newly.then_some(claims))
}

/// The bearer half of a logout: the access token of the `Authorization` header goes on the
/// deny list and the presented refresh token's family ends. Both steps run whatever the
/// other did, and the first fault is reported after; `on_after_logout` fires for the
/// token's user unless `fired` (the session's logout already told it).
pub(crate) async fn end_bearer_credentials<U: UserRecord>(
    auth: &CrudAuth<U>,
    client: &ClientMeta,
    headers: &HeaderMap,
    body: &[u8],
    fired: bool,
) -> Result<(), AuthError> {
    let denied = deny_presented_access(auth, headers).await;
    let ended = end_presented_family(auth, headers, body).await;
    let claims = match (&ended, &denied) {
        (Ok(Some(claims)), _) | (_, Ok(Some(claims))) => Some(claims.clone()),
        _ => None,
    };
    if let Some(claims) = claims
        && !fired
    {
        fire_bearer_logout(auth, &claims, client).await;
    }
    denied?;
    ended?;
    Ok(())
}

/// Fires `on_after_logout` for the user behind a textual id (a session's or a refresh
/// token's), if they still exist; `true` if it fired.
pub(crate) async fn fire_logout<U: UserRecord>(
    auth: &CrudAuth<U>,
    uid: &str,
    ctx: &HookContext,
) -> bool {
    if let Some(id) = auth.repo().schema().id_kind.parse(uid)
        && let Ok(Some(user)) = auth.repo().find_by_id(&id).await
    {
        auth.core()
            .hooks
            .fire_user(Event::AfterLogout, user.into(), ctx)
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

/// `POST /logout` without a session transport: puts the access token of the
/// `Authorization: Bearer` header on the deny list (it authenticates nothing from now on, not
/// only from its expiry), ends the presented refresh token's family (if one is presented) and
/// clears the refresh cookie.
pub(crate) async fn logout<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    end_bearer_credentials(&auth, &client, &headers, &body, false).await?;
    let mut response = Json(json!({ "detail": "Logged out" })).into_response();
    clear_refresh_cookie(auth.tokens(), &mut response);
    Ok(response)
}

/// `GET /tokens`: the caller's live refresh-token families (any transport), most recently
/// rotated first: `[{id, created_at, last_rotated, expires_at, scopes}]`, no secrets.
pub(crate) async fn list_families<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    principal.refuse_api_key()?;
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
    principal.refuse_api_key()?;
    let tokens = auth.tokens().ok_or(AuthError::NotFound("Not Found"))?;
    if !tokens
        .revoke_family_by_id(&principal.user_id.to_string(), &id)
        .await?
    {
        return Err(AuthError::NotFound("Token not found."));
    }
    Ok(Json(json!({ "detail": "Token revoked." })).into_response())
}

/// `GET /.well-known/jwks.json`: the public keys of the key set, cacheable for five minutes
/// (a new key is added to the set before it signs, so caches catch up in time).
pub(crate) async fn jwks<U: UserRecord>(State(auth): State<CrudAuth<U>>) -> Response {
    match auth.tokens().and_then(|t| t.jwks()) {
        Some(set) => (
            [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
            Json(set.clone()),
        )
            .into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
