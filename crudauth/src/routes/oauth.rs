//! The OAuth routes (feature `oauth`): authorize, callback, the bearer client's code
//! exchange, and linking for a signed-in user.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::session::iso;
use super::with_limit;
use crate::body::{Body, ExchangeBody};
use crate::client_ip::{ClientMeta, ip_key};
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::hooks::{Event, Payload};
use crate::oauth::{
    CallbackParams, Failure, Finished, OAuth, OAuthErrorCode, Purpose, ResponseMode,
};
use crate::principal::{Principal, Transport};
use crate::transport::bearer::pair_response;
use crate::transport::session::{no_store, set_sign_in_cookies};
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The OAuth service, when [`crate::CrudAuthBuilder::oauth`] turned it on.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.oauth().is_none()); // the fixture has no providers
    /// # Ok(()) });
    /// ```
    pub fn oauth(&self) -> Option<&OAuth<U>> {
        self.inner.methods.oauth.as_ref()
    }

    /// The OAuth routes only (empty without OAuth): under the prefix (`/oauth`),
    /// `GET /{provider}/authorize`, `GET /{provider}/callback`, `POST /exchange`,
    /// `POST /{provider}/link`, `GET /links`, `DELETE /links/{provider}`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let app: axum::Router = auth.oauth_router();
    /// # Ok(()) });
    /// ```
    pub fn oauth_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        super::limited(self.oauth_routes()).with_state(self.clone())
    }

    pub(super) fn oauth_routes(&self) -> Router<CrudAuth<U>> {
        let Some(oauth) = self.oauth() else {
            return Router::new();
        };
        let p = &oauth.config().prefix;
        Router::new()
            .route(&format!("{p}/{{provider}}/authorize"), get(authorize::<U>))
            .route(&format!("{p}/{{provider}}/callback"), get(callback::<U>))
            .route(&format!("{p}/{{provider}}/link"), post(link::<U>))
            .route(&format!("{p}/exchange"), post(exchange::<U>))
            .route(&format!("{p}/links"), get(links::<U>))
            .route(&format!("{p}/links/{{provider}}"), delete(unlink::<U>))
    }
}

fn service<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&OAuth<U>, AuthError> {
    auth.oauth().ok_or(AuthError::NotFound("Not Found"))
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "detail": message }))).into_response()
}

fn unknown_provider(name: &str) -> Response {
    let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    let message = format!("Unknown or unconfigured OAuth provider: '{shown}'");
    detail(StatusCode::BAD_REQUEST, &message)
}

fn redirect(status: StatusCode, target: &str) -> Response {
    let mut response = status.into_response();
    match HeaderValue::from_str(target) {
        Ok(v) => {
            response.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    no_store(&mut response);
    response
}

/// A failed flow: `?error=<code>` at the default redirect, or `400 {"detail": <code>}`.
fn failed<U: UserRecord>(oauth: &OAuth<U>, code: OAuthErrorCode) -> Response {
    match oauth.config().response_mode {
        ResponseMode::Redirect => {
            redirect(StatusCode::TEMPORARY_REDIRECT, &oauth.error_target(code))
        }
        ResponseMode::Json => {
            let message = match code {
                OAuthErrorCode::InvalidState => "Invalid or expired OAuth state",
                other => other.as_str(),
            };
            detail(StatusCode::BAD_REQUEST, message)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct AuthorizeQuery {
    redirect_to: Option<String>,
    response: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn bad_query() -> AuthError {
    AuthError::BadRequest("Malformed query string.")
}

/// The purpose of an authorize call: a session sign-in, or a token pair for a bearer client
/// (bound in redirect mode to the client's PKCE challenge).
fn purpose_of<U: UserRecord>(auth: &CrudAuth<U>, q: &AuthorizeQuery) -> Result<Purpose, AuthError> {
    let json_mode = service(auth)?.config().response_mode == ResponseMode::Json;
    match q.response.as_deref() {
        None if auth.sessions().is_some() => Ok(Purpose::Session),
        Some("session") if auth.sessions().is_some() => Ok(Purpose::Session),
        None | Some("session") => Err(AuthError::BadRequest(
            "Session sign-in needs the session transport: use response=token.",
        )),
        Some("token") if auth.tokens().is_none() => Err(AuthError::BadRequest(
            "Token sign-in needs the bearer transport.",
        )),
        Some("token") => {
            let challenge = q.code_challenge.clone().filter(|c| {
                (43..=128).contains(&c.len())
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            let s256 = q.code_challenge_method.as_deref() == Some("S256");
            match (challenge, s256) {
                (Some(c), true) => Ok(Purpose::Token { challenge: Some(c) }),
                _ if json_mode && q.code_challenge.is_none() => {
                    Ok(Purpose::Token { challenge: None })
                }
                _ => Err(AuthError::BadRequest(
                    "response=token needs code_challenge (base64url, 43-128 characters) with code_challenge_method=S256.",
                )),
            }
        }
        Some(_) => Err(AuthError::BadRequest("response must be session or token.")),
    }
}

/// Answers a started flow: `307` to the provider (`303` after a POST) or `200 {"url"}`,
/// with the state added to the `oauth_state` cookie.
fn started<U: UserRecord>(
    oauth: &OAuth<U>,
    headers: &HeaderMap,
    url: &str,
    state: &str,
    after_post: bool,
) -> Response {
    let mut response = match (oauth.config().response_mode, after_post) {
        (ResponseMode::Json, _) => Json(json!({ "url": url })).into_response(),
        (ResponseMode::Redirect, false) => redirect(StatusCode::TEMPORARY_REDIRECT, url),
        (ResponseMode::Redirect, true) => redirect(StatusCode::SEE_OTHER, url),
    };
    let states = OAuth::<U>::with_state(oauth.cookie_states(headers), state);
    let cookie = oauth.state_cookie(&states);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    no_store(&mut response);
    response
}

/// `GET /oauth/{provider}/authorize?redirect_to=&response=session|token`.
async fn authorize<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    Path(provider): Path<String>,
    client: ClientMeta,
    headers: HeaderMap,
    query: Result<Query<AuthorizeQuery>, QueryRejection>,
) -> Result<Response, AuthError> {
    let oauth = service(&auth)?;
    if !oauth.has_provider(&provider) {
        return Ok(unknown_provider(&provider));
    }
    let Query(q) = query.map_err(|_| bad_query())?;
    let purpose = purpose_of(&auth, &q)?;
    let allowed = auth
        .rate_limiter()
        .enforce("oauth_authorize", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let begun = match oauth
        .begin(&provider, q.redirect_to.as_deref(), purpose)
        .await
    {
        Ok(begun) => begun,
        Err(Failure::Code(code)) => return Ok(with_limit(failed(oauth, code), allowed)),
        Err(Failure::Auth(e)) => return Err(e),
    };
    let response = started(oauth, &headers, &begun.url, &begun.state, false);
    Ok(with_limit(response, allowed))
}

/// `POST /oauth/{provider}/link?redirect_to=`: starts linking a provider account to the
/// signed-in user (a recent sign-in, or sudo).
async fn link<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    Path(provider): Path<String>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    query: Result<Query<AuthorizeQuery>, QueryRejection>,
) -> Result<Response, AuthError> {
    let oauth = service(&auth)?;
    if !oauth.has_provider(&provider) {
        return Ok(unknown_provider(&provider));
    }
    let Query(q) = query.map_err(|_| bad_query())?;
    principal.refuse_delegated()?;
    auth.login().require_recent_sign_in(&principal)?;
    // A provider linked to an account whose address is unproven would survive that
    // address's rightful owner claiming it.
    if !principal.email_verified {
        return Err(AuthError::Forbidden(
            "Verify your email address before linking a provider.",
        ));
    }
    let allowed = auth
        .rate_limiter()
        .enforce("oauth_authorize", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let epoch = auth.revocation().epoch(&principal.user).await?;
    let user_id = principal.user_id.to_string();
    let purpose = Purpose::Link { user_id, epoch };
    let begun = match oauth
        .begin(&provider, q.redirect_to.as_deref(), purpose)
        .await
    {
        Ok(begun) => begun,
        Err(Failure::Code(code)) => return Ok(with_limit(failed(oauth, code), allowed)),
        Err(Failure::Auth(e)) => return Err(e),
    };
    Ok(with_limit(
        started(oauth, &headers, &begun.url, &begun.state, true),
        allowed,
    ))
}

/// `GET /oauth/{provider}/callback?code&state&error`.
async fn callback<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    Path(provider): Path<String>,
    client: ClientMeta,
    parts: axum::http::request::Parts,
    query: Result<Query<CallbackParams>, QueryRejection>,
) -> Result<Response, AuthError> {
    let headers = &parts.headers;
    let oauth = service(&auth)?;
    if !oauth.has_provider(&provider) {
        return Ok(unknown_provider(&provider));
    }
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let cookie_states = oauth.cookie_states(headers);
    // Who is signed in on this browser's session (a link must end there).
    let current = match auth.authenticate(&parts, Some(Transport::Session)).await {
        Ok(Some(p)) => Some(p.user_id.to_string()),
        _ => None,
    };
    let outcome = oauth
        .finish(
            &provider,
            &params,
            &cookie_states,
            &client,
            current.as_deref(),
        )
        .await;
    // The used state leaves the cookie whatever the outcome; a state the cookie does not
    // hold changes nothing.
    let remaining: Vec<String> = (cookie_states.iter())
        .filter(|s| Some(s.as_str()) != params.state.as_deref())
        .cloned()
        .collect();
    let mut response = match outcome {
        Ok(finished) => match signed_in(&auth, oauth, finished, &client, headers).await {
            Ok(response) => response,
            Err(Failure::Code(code)) => failed(oauth, code),
            Err(Failure::Auth(e)) => return Err(e),
        },
        Err(Failure::Code(code)) => failed(oauth, code),
        Err(Failure::Auth(e)) => return Err(e),
    };
    if remaining.len() != cookie_states.len() {
        let cookie = oauth.state_cookie(&remaining);
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    no_store(&mut response);
    Ok(response)
}

/// The end of a finished flow: a session, a token pair (or its exchange code), or a link.
async fn signed_in<U: UserRecord>(
    auth: &CrudAuth<U>,
    oauth: &OAuth<U>,
    finished: Finished<U>,
    client: &ClientMeta,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let Finished {
        user,
        created,
        provider,
        purpose,
        redirect_to,
    } = finished;
    let mode = oauth.config().response_mode;
    let target = redirect_to.unwrap_or_else(|| oauth.config().default_redirect.clone());
    if let Purpose::Link { .. } = purpose {
        return Ok(match mode {
            ResponseMode::Redirect => {
                let target = OAuth::<U>::with_query(&target, "linked", &provider);
                redirect(StatusCode::TEMPORARY_REDIRECT, &target)
            }
            ResponseMode::Json => {
                Json(json!({ "detail": "linked", "provider": provider })).into_response()
            }
        });
    }
    let core = auth.core();
    let mut ctx = client.hook_context(Some("oauth"));
    let epoch = auth.revocation().epoch(&user).await?;
    // An account with a second factor: a challenge instead of the session or tokens
    // (`on_oauth_login` fires now, `on_after_login` when the code is verified).
    #[cfg(feature = "mfa")]
    if let Some(mfa) = auth.mfa()
        && mfa.is_due(&user).await?
        && !mfa.remembered(headers, &user, epoch)
    {
        use crate::mfa::Origin;
        let origin = match &purpose {
            Purpose::Token { challenge } => Origin::Bearer {
                scopes: Vec::new(),
                pkce: challenge.clone(),
            },
            _ => Origin::Session {
                provider: Some(provider.clone()),
                redirect_to: Some(target.clone()),
            },
        };
        let payload = Payload::OAuthLogin {
            user: user.clone(),
            provider: provider.clone(),
            created,
        };
        core.hooks.fire(Event::OAuthLogin, payload, &ctx).await;
        let challenge = mfa.challenge(&user, epoch, origin, None).await?;
        return Ok(match mode {
            ResponseMode::Redirect => {
                // Token mode: back to the client that started the flow (its app redirect);
                // a session sign-in: the default redirect, as the original.
                let back = match &purpose {
                    Purpose::Token { .. } => &target,
                    _ => &oauth.config().default_redirect,
                };
                let head = back.split('#').next().unwrap_or_default();
                let target = format!("{head}#mfa_challenge={}", challenge.token);
                redirect(StatusCode::TEMPORARY_REDIRECT, &target)
            }
            ResponseMode::Json => {
                let mut body = super::mfa::challenge_body(&challenge);
                body.insert("redirect_to".into(), json!(target));
                Json(serde_json::Value::Object(body)).into_response()
            }
        });
    }
    let response = match purpose {
        Purpose::Token { challenge } => {
            let tokens = auth.tokens().ok_or(AuthError::Internal)?;
            fire(auth, &user, &provider, created, &ctx).await;
            match (mode, challenge) {
                (ResponseMode::Redirect, Some(challenge)) => {
                    let code = oauth.issue_exchange_code(&user, epoch, challenge).await?;
                    let head = target.split('#').next().unwrap_or_default();
                    redirect(
                        StatusCode::TEMPORARY_REDIRECT,
                        &format!("{head}#oauth_code={code}"),
                    )
                }
                _ => {
                    let none = Vec::<&str>::new();
                    let pair =
                        crate::transport::bearer::issue_for(core, &user, epoch, none, headers)
                            .await?;
                    pair_response(tokens, pair)
                }
            }
        }
        _ => {
            let sessions = auth.sessions().ok_or(AuthError::Internal)?;
            let method = Some(("oauth", provider.as_str()));
            let new =
                super::session::open_session(auth, &user, epoch, client, headers, method).await?;
            ctx.session_handle = Some(new.handle.clone());
            fire(auth, &user, &provider, created, &ctx).await;
            let mut response = match mode {
                ResponseMode::Redirect => redirect(StatusCode::TEMPORARY_REDIRECT, &target),
                ResponseMode::Json => Json(json!({
                    "user": {
                        "user_id": user.user_id(),
                        "username": user.username(),
                        "email": user.email(),
                        "is_superuser": user.is_superuser(),
                    },
                    "csrf_token": new.csrf_token,
                    "redirect_to": target,
                }))
                .into_response(),
            };
            set_sign_in_cookies(sessions, &new, &mut response);
            response
        }
    };
    Ok(response)
}

/// `on_oauth_login`, then `on_after_login`.
async fn fire<U: UserRecord>(
    auth: &CrudAuth<U>,
    user: &Arc<U>,
    provider: &str,
    created: bool,
    ctx: &crate::hooks::HookContext,
) {
    let hooks = &auth.core().hooks;
    let payload = Payload::OAuthLogin {
        user: user.clone(),
        provider: provider.to_owned(),
        created,
    };
    hooks.fire(Event::OAuthLogin, payload, ctx).await;
    hooks.fire_user(Event::AfterLogin, user.clone(), ctx).await;
}

/// `POST /oauth/exchange {code, code_verifier}`: a token-mode client's token pair.
async fn exchange<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    Body(ExchangeBody {
        code,
        code_verifier,
    }): Body<ExchangeBody>,
) -> Result<Response, AuthError> {
    let oauth = service(&auth)?;
    let tokens = auth.tokens().ok_or(AuthError::NotFound("Not Found"))?;
    let (user, epoch) = oauth.redeem_exchange_code(&code, &code_verifier).await?;
    let pair =
        crate::transport::bearer::issue(auth.core(), &user, epoch, Vec::<&str>::new()).await?;
    Ok(pair_response(tokens, pair))
}

/// `GET /oauth/links`: the signed-in user's linked provider accounts.
async fn links<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    let oauth = service(&auth)?;
    let links = oauth.links_of(&principal.user_id).await?;
    let body: Vec<_> = (links.iter())
        .map(|l| {
            json!({
                "provider": l.provider,
                "email": l.email,
                "created_at": iso(l.created_at),
                "last_used_at": iso(l.last_used_at),
            })
        })
        .collect();
    Ok(super::private_json(body))
}

/// `DELETE /oauth/links/{provider}`: never the last way left to sign in.
async fn unlink<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(provider): Path<String>,
) -> Result<Response, AuthError> {
    let oauth = service(&auth)?;
    principal.refuse_delegated()?;
    auth.login().require_recent_sign_in(&principal)?;
    oauth.unlink(&principal.user, &provider).await?;
    Ok(Json(json!({ "detail": "Unlinked." })).into_response())
}
