//! The bearer transport: a JWT access token in `Authorization: Bearer`, and a rotating
//! refresh token in the body or an `HttpOnly` cookie. The header is read, the token
//! verified, and the pair issued and cleared here and nowhere else.

use axum::Json;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::Core;
use crate::error::AuthError;
use crate::principal::{Principal, Transport};
use crate::tokens::{RefreshMode, TokenPair, TokenService};
use crate::user::UserRecord;

/// The refresh cookie in cookie mode (host-only, `Secure`, `HttpOnly`).
pub(crate) const REFRESH_COOKIE: &str = "__Host-refresh_token";

/// The principal of a request's `Authorization: Bearer` token. Another scheme is not ours
/// (`None`); `Bearer` with an empty, unreadable, invalid or revoked token is an error, not
/// the absence of a credential (optional-auth routes must not treat it as anonymous).
pub(crate) async fn authenticate<U: UserRecord>(
    core: &Core<U>,
    parts: &Parts,
) -> Result<Option<Principal<U>>, AuthError> {
    let Some(tokens) = &core.tokens else {
        return Ok(None);
    };
    let Some(token) = presented_access(&parts.headers)? else {
        return Ok(None);
    };
    let claims = tokens.verify_access(token)?;
    let Some(id) = core.repo.schema().id_kind.parse(&claims.sub) else {
        return Err(AuthError::NotAuthenticated);
    };
    // The deny list (`POST /logout` with this token) is read with the generation: one round
    // trip, as before it existed.
    let (generation, denied) = core
        .revocation
        .generation_and_denied(&id, &claims.jti)
        .await?;
    if denied {
        return Err(AuthError::InvalidToken);
    }
    let found = super::load_current(core, id, Some(claims.epoch), generation).await?;
    // A user moved to another tenant (the column) leaves their old tenant's tokens behind.
    let Some(user) = found.filter(|u| core.tenancy.still_member(u, claims.tenant.as_deref()))
    else {
        return Err(AuthError::NotAuthenticated);
    };
    // An impersonation token lives only while its superuser may still act.
    let impersonated_by = match (&claims.impersonated_by, claims.impersonator_epoch) {
        (None, _) => None,
        // A user promoted to superuser during it is no longer the user it began with.
        (Some(_), _) if user.is_superuser() && !claims.impersonated_superuser => {
            return Err(AuthError::NotAuthenticated);
        }
        (Some(admin), Some(epoch)) => match super::impersonator(core, admin, epoch).await? {
            Some(admin) => Some(admin),
            None => return Err(AuthError::NotAuthenticated),
        },
        (Some(_), None) => return Err(AuthError::InvalidToken),
    };
    let mut principal = super::principal(user, Transport::Bearer, claims.scopes, None);
    principal.impersonated_by = impersonated_by;
    principal.tenant = claims.tenant;
    Ok(Some(principal))
}

/// The token of an `Authorization: Bearer` header. Another scheme (Basic, ...) is not ours
/// (`None`); `Bearer` with an empty or unreadable value is an error.
pub(crate) fn presented_access(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let is_bearer = bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"bearer")
        && (bytes.len() == 6 || bytes[6] == b' ');
    if !is_bearer {
        return Ok(None);
    }
    value
        .to_str()
        .ok()
        .map(|v| v[6..].trim())
        .filter(|t| !t.is_empty())
        .map(Some)
        .ok_or(AuthError::InvalidToken)
}

/// Issues an access + refresh pair for a user at a known epoch, scopes clamped to the
/// grantable set, outside any request (the tenant resolver sees no headers).
pub(crate) async fn issue<'a, U: UserRecord>(
    core: &Core<U>,
    user: &U,
    epoch: i64,
    requested_scopes: impl IntoIterator<Item = &'a str>,
) -> Result<TokenPair, AuthError> {
    issue_for(core, user, epoch, requested_scopes, &HeaderMap::new()).await
}

/// [`issue`] for a sign-in request: the tenant is the user's, as the column or the
/// resolver (given the request's headers) answers.
pub(crate) async fn issue_for<'a, U: UserRecord>(
    core: &Core<U>,
    user: &U,
    epoch: i64,
    requested_scopes: impl IntoIterator<Item = &'a str>,
    headers: &HeaderMap,
) -> Result<TokenPair, AuthError> {
    let tenant = core.tenancy.of(user, headers);
    issue_in(core, user, epoch, requested_scopes, tenant).await
}

/// [`issue`] under a known tenant (a pair re-issued to a principal keeps its tenant).
pub(crate) async fn issue_in<'a, U: UserRecord>(
    core: &Core<U>,
    user: &U,
    epoch: i64,
    requested_scopes: impl IntoIterator<Item = &'a str>,
    tenant: Option<String>,
) -> Result<TokenPair, AuthError> {
    let tokens = core.tokens.as_ref().ok_or(AuthError::Internal)?;
    let scopes = tokens.clamp_scopes(requested_scopes);
    tokens
        .issue_in(&user.user_id().to_string(), epoch, scopes, tenant)
        .await
}

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

/// Clears the refresh cookie (cookie mode only).
pub(crate) fn clear_refresh_cookie(tokens: Option<&TokenService>, response: &mut Response) {
    if tokens.is_some_and(|t| t.config().refresh == RefreshMode::Cookie)
        && let Some(v) = refresh_cookie(String::new(), 0)
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The answer carrying a token pair: all in the body, or the refresh token in its cookie.
pub(crate) fn pair_response(tokens: &TokenService, pair: TokenPair) -> Response {
    pair_response_with(tokens, pair, serde_json::Map::new())
}

/// [`pair_response`] with more fields in the body (a second factor's recovery codes).
pub(crate) fn pair_response_with(
    tokens: &TokenService,
    pair: TokenPair,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Response {
    let mut response = match tokens.config().refresh {
        RefreshMode::Body => {
            let mut body = serde_json::to_value(&pair).unwrap_or_default();
            if let Some(map) = body.as_object_mut() {
                map.extend(extra);
            }
            Json(body).into_response()
        }
        RefreshMode::Cookie => {
            let max_age = i64::try_from(pair.refresh_expires_in).unwrap_or(i64::MAX);
            let mut body = json!({
                "access_token": pair.access_token,
                "token_type": pair.token_type,
                "expires_in": pair.expires_in,
            });
            if let Some(map) = body.as_object_mut() {
                map.extend(extra);
            }
            let mut response = Json(body).into_response();
            if let Some(v) = refresh_cookie(pair.refresh_token, max_age) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
    };
    super::session::no_store(&mut response);
    response
}

/// The refresh token a request presents: its cookie, or `refresh_token` in a JSON body.
pub(crate) fn presented_refresh(
    tokens: &TokenService,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, AuthError> {
    let missing = AuthError::Unauthorized("Refresh token missing");
    match tokens.config().refresh {
        RefreshMode::Cookie => super::session::cookie(headers, REFRESH_COOKIE)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or(missing),
        RefreshMode::Body => {
            if body.is_empty() {
                return Err(missing);
            }
            crate::body::refresh_token(headers, body)?.ok_or(missing)
        }
    }
}
