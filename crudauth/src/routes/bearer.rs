//! The bearer transport's routes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{json_object, login_form, no_store};
use crate::error::AuthError;
use crate::facade::{ClientMeta, CrudAuth, cookie};
use crate::hooks::UserEvent;
use crate::tokens::{RefreshMode, TokenPair};
use crate::user::UserRecord;

const REFRESH_COOKIE: &str = "refresh_token";

fn pair_response<U: UserRecord>(auth: &CrudAuth<U>, pair: TokenPair) -> Response {
    let Some(tokens) = auth.tokens() else {
        return AuthError::Internal.into_response();
    };
    match tokens.config().refresh {
        RefreshMode::Body => Json(pair).into_response(),
        RefreshMode::Cookie => {
            let mut response = Json(json!({
                "access_token": pair.access_token,
                "token_type": pair.token_type,
                "expires_in": pair.expires_in,
            }))
            .into_response();
            let cookie = cookie::Cookie::build((REFRESH_COOKIE, pair.refresh_token))
                .http_only(true)
                .secure(true)
                .path("/")
                .same_site(cookie::SameSite::Lax)
                .max_age(time::Duration::seconds(
                    tokens.config().refresh_ttl.as_secs() as i64,
                ))
                .build();
            if let Ok(v) = cookie.to_string().parse() {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
    }
}

/// `POST /token`: form `username`, `password`, optional space-separated `scope`.
pub(crate) async fn token<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
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
    let mut response = pair_response(&auth, pair);
    no_store(&mut response);
    Ok(response)
}

/// `POST /refresh`: JSON `{refresh_token}` or the refresh cookie; rotates the token.
pub(crate) async fn refresh<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let tokens = auth.tokens().ok_or(AuthError::Internal)?;
    let presented = match cookie(&headers, REFRESH_COOKIE) {
        Some(token) => token.to_owned(),
        None if body.is_empty() => return Err(AuthError::Unauthorized("Refresh token missing")),
        None => {
            let map = json_object(&headers, &body)?;
            match map.get("refresh_token") {
                Some(serde_json::Value::String(t)) if !t.is_empty() => t.clone(),
                _ => return Err(AuthError::Unauthorized("Refresh token missing")),
            }
        }
    };
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
    let ver = auth.epoch(&user).await?;
    if ver != claims.ver {
        tokens.revoke_family(&claims).await?;
        return Err(invalid);
    }
    let pair = tokens.rotate(&claims, ver).await?;
    Ok(pair_response(&auth, pair))
}
