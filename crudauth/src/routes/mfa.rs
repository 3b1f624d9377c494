//! The two-factor routes (feature `mfa`) and the challenge step of every sign-in.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::{SignIn, Start, private_json, with_limit};
use crate::body::Fields;
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::hooks::Event;
use crate::login::VerifiedUser;
use crate::mfa::{Challenge, Completed, Mfa, Origin};
use crate::principal::Principal;
use crate::transport::bearer::pair_response_with;
use crate::transport::session::{no_store, set_session_cookie, set_sign_in_cookies};
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The two-factor service, when [`crate::CrudAuthBuilder::mfa`] turned it on.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.mfa().is_none()); // the fixture has no second factor
    /// # Ok(()) });
    /// ```
    pub fn mfa(&self) -> Option<&Mfa<U>> {
        self.inner.methods.mfa.as_ref()
    }

    /// The two-factor routes only (empty without MFA): `GET /mfa`, `POST /mfa/totp/setup`,
    /// `/mfa/totp/confirm`, `/mfa/totp/disable`, `/mfa/recovery-codes/regenerate`,
    /// `/mfa/verify`, `/mfa/challenge`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let app: axum::Router = auth.mfa_router();
    /// # Ok(()) });
    /// ```
    pub fn mfa_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        super::limited(self.mfa_routes()).with_state(self.clone())
    }

    pub(super) fn mfa_routes(&self) -> Router<CrudAuth<U>> {
        if self.mfa().is_none() {
            return Router::new();
        }
        Router::new()
            .route("/mfa", get(status::<U>))
            .route("/mfa/totp/setup", post(setup::<U>))
            .route("/mfa/totp/confirm", post(confirm::<U>))
            .route("/mfa/totp/disable", post(disable::<U>))
            .route("/mfa/recovery-codes/regenerate", post(regenerate::<U>))
            .route("/mfa/verify", post(verify::<U>))
            .route("/mfa/challenge", post(challenge_setup::<U>))
    }
}

pub(super) fn service<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&Mfa<U>, AuthError> {
    auth.mfa().ok_or(AuthError::NotFound("Not Found"))
}

/// The challenge answer: the original's `{"mfa_required": true, "challenge", "expires_in"}`
/// (with `setup` for an account that enrols now), no credential.
pub(super) fn challenge_body(challenge: &Challenge) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("mfa_required".into(), json!(true));
    body.insert("challenge".into(), json!(challenge.token));
    body.insert("expires_in".into(), json!(challenge.expires_in));
    if let Some(setup) = &challenge.setup {
        body.insert("setup".into(), json!(setup));
    }
    body
}

/// A password sign-in: done, or (for an account with a second factor, or one that must
/// enrol, on a device not remembered) a challenge whose lockout success waits for the code.
pub(super) async fn password_sign_in<U: UserRecord>(
    auth: &CrudAuth<U>,
    identifier: &str,
    password: &str,
    client: &ClientMeta,
    headers: &HeaderMap,
    start: Start,
) -> Result<SignIn<U>, AuthError> {
    let (transport, origin) = match start {
        Start::Session => (
            "session",
            Origin::Session {
                provider: None,
                redirect_to: None,
            },
        ),
        Start::Bearer(scopes) => ("bearer", Origin::Bearer { scopes, pkce: None }),
    };
    let Some(mfa) = auth.mfa() else {
        let verified = auth
            .authenticate_password(identifier, password, client, transport)
            .await?;
        return Ok(SignIn::Done(verified));
    };
    let (verified, attempt, pending) = auth
        .login()
        .authenticate_password_deferred(identifier, password, client, transport)
        .await?;
    match challenge_or_success(
        auth,
        mfa,
        &verified,
        (Some(attempt), pending),
        origin,
        headers,
    )
    .await?
    {
        Some(challenge) => Ok(SignIn::Challenged(challenge)),
        None => Ok(SignIn::Done(verified)),
    }
}

/// The second factor's turn in a sign-in whose first factor (a password, a one-time code)
/// was right: for an account with a factor due, on a device not remembered, the attempt is
/// given back to the lockout (the right first factor neither counts nor clears: the codes
/// decide) and the challenge answered, which records the success once its code is right;
/// otherwise the success is recorded now and `None` answered.
pub(super) async fn challenge_or_success<U: UserRecord>(
    auth: &CrudAuth<U>,
    mfa: &Mfa<U>,
    verified: &VerifiedUser<U>,
    (attempt, pending): (
        Option<crate::lockout::Attempt>,
        crate::login::PendingSuccess,
    ),
    origin: Origin,
    headers: &HeaderMap,
) -> Result<Option<Response>, AuthError> {
    let VerifiedUser { user, epoch } = verified;
    let lockout = &auth.core().lockout;
    if mfa.is_due(user).await? && !mfa.remembered(headers, user, *epoch) {
        if let Some(attempt) = attempt {
            lockout.refund(attempt).await;
        }
        let challenge = mfa.challenge(user, *epoch, origin, Some(pending)).await?;
        return Ok(Some(private_json(challenge_body(&challenge))));
    }
    if let Some(attempt) = attempt {
        lockout.succeeded(attempt).await;
    }
    auth.login()
        .confirm_success(&user.user_id(), *epoch, pending)
        .await;
    Ok(None)
}

async fn status<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    let status = service(&auth)?.status(&principal.user).await?;
    Ok(private_json(status))
}

/// Counts a management call against `mfa_manage` (per user, shared by the four routes).
async fn limited<U: UserRecord>(
    auth: &CrudAuth<U>,
    principal: &Principal<U>,
) -> Result<Option<crate::ratelimit::Allowed>, AuthError> {
    principal.refuse_delegated()?;
    let key = format!("user:{}", principal.user_id);
    auth.rate_limiter().enforce("mfa_manage", &key).await
}

fn code_of(headers: &HeaderMap, body: &Bytes) -> Result<String, AuthError> {
    let mut fields = Fields::json(headers, body)?;
    let code = fields.string("code");
    fields.finish(code)
}

/// Answers a privilege change: a session caller gets its session's new id as the cookie
/// (the old one died), a bearer caller a new token pair at the new epoch (its old tokens
/// died with the others).
async fn changed_response<U: UserRecord>(
    auth: &CrudAuth<U>,
    principal: &Principal<U>,
    body: Value,
    changed: crate::mfa::Changed,
) -> Result<Response, AuthError> {
    if principal.via == crate::principal::Transport::Bearer
        && let Some(tokens) = auth.tokens()
    {
        let scopes = principal.scopes.iter().map(String::as_str);
        // The pair re-issued keeps the tenant the principal signed in under.
        let (core, tenant) = (auth.core(), principal.tenant.clone());
        let pair = crate::transport::bearer::issue_in(
            core,
            &principal.user,
            changed.epoch,
            scopes,
            tenant,
        )
        .await?;
        let extra = match body {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        return Ok(pair_response_with(tokens, pair, extra));
    }
    let mut response = private_json(body);
    if let (Some(moved), Some(sessions)) = (changed.moved, auth.sessions()) {
        set_session_cookie(sessions, &moved.id, &mut response);
    }
    Ok(response)
}

async fn setup<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let mfa = service(&auth)?;
    let allowed = limited(&auth, &principal).await?;
    let password = if body.is_empty() {
        None
    } else {
        Fields::json(&headers, &body)?.optional("password")
    };
    let setup = mfa
        .begin_setup(&principal, password.as_deref(), &client)
        .await?;
    Ok(with_limit(private_json(setup), allowed))
}

/// A management route (confirm, disable, regenerate): the shared `mfa_manage` limit, the
/// `{code}` body, the change, and the answer carrying the caller's moved session or new
/// tokens.
async fn manage<U: UserRecord>(
    auth: &CrudAuth<U>,
    principal: &Principal<U>,
    (headers, body): (&HeaderMap, &Bytes),
    change: impl AsyncFnOnce(&Mfa<U>, String) -> Result<(Value, crate::mfa::Changed), AuthError>,
) -> Result<Response, AuthError> {
    let mfa = service(auth)?;
    let allowed = limited(auth, principal).await?;
    let code = code_of(headers, body)?;
    let (answer, changed) = change(mfa, code).await?;
    let response = changed_response(auth, principal, answer, changed).await?;
    Ok(with_limit(response, allowed))
}

async fn confirm<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    manage(&auth, &principal, (&headers, &body), async |mfa, code| {
        let (codes, changed) = mfa.confirm(&principal, &code, &client).await?;
        Ok((json!({ "recovery_codes": codes }), changed))
    })
    .await
}

async fn disable<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    manage(&auth, &principal, (&headers, &body), async |mfa, code| {
        let changed = mfa.disable(&principal, &code, &client).await?;
        Ok((
            json!({ "detail": "Two-factor authentication disabled." }),
            changed,
        ))
    })
    .await
}

async fn regenerate<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    manage(&auth, &principal, (&headers, &body), async |mfa, code| {
        let (codes, changed) = mfa.regenerate(&principal, &code, &client).await?;
        Ok((json!({ "recovery_codes": codes }), changed))
    })
    .await
}

async fn challenge_setup<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let mfa = service(&auth)?;
    let mut fields = Fields::json(&headers, &body)?;
    let token = fields.string("challenge");
    let token = fields.finish(token)?;
    let setup = mfa.challenge_setup(&token).await?;
    Ok(private_json(json!({ "setup": setup })))
}

/// `POST /mfa/verify {challenge, code, remember_device?}`: completes the sign-in over the
/// transport that started it.
async fn verify<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let mfa = service(&auth)?;
    let mut fields = Fields::json(&headers, &body)?;
    let token = fields.string("challenge");
    let code = fields.string("code");
    let remember = matches!(fields.all().get("remember_device"), Some(Value::Bool(true)));
    let (token, code) = fields.finish(token.zip(code))?;
    // Login CSRF, before an attempt is counted: a cross-site page must not finish a
    // sign-in that sets cookies.
    super::refuse_cross_site_sign_in(&auth, &headers, auth.sessions().is_some())?;
    let done = mfa.verify(&token, &code, &client).await?;
    complete(&auth, mfa, done, &client, &headers, remember).await
}

/// Ends a sign-in whose second factor was verified, over the transport that started it.
pub(super) async fn complete<U: UserRecord>(
    auth: &CrudAuth<U>,
    mfa: &Mfa<U>,
    done: Completed<U>,
    client: &ClientMeta,
    headers: &HeaderMap,
    remember: bool,
) -> Result<Response, AuthError> {
    let Completed {
        user,
        epoch,
        origin,
        recovery_codes,
    } = done;
    let core = auth.core();
    let mut extra = Map::new();
    if let Some(codes) = recovery_codes {
        extra.insert("recovery_codes".into(), json!(codes));
    }
    match origin {
        Origin::Bearer { scopes, pkce } => {
            let tokens = auth.tokens().ok_or(AuthError::Internal)?;
            // A provider's token-mode flow: a code only its PKCE verifier redeems.
            #[cfg(feature = "oauth")]
            if let (Some(challenge), Some(oauth)) = (pkce, auth.oauth()) {
                let code = oauth.issue_exchange_code(&user, epoch, challenge).await?;
                let ctx = client.hook_context(Some("bearer"));
                core.hooks.fire_user(Event::AfterLogin, user, &ctx).await;
                let mut body = Map::new();
                body.insert("oauth_code".into(), json!(code));
                body.extend(extra);
                return Ok(private_json(Value::Object(body)));
            }
            #[cfg(not(feature = "oauth"))]
            let _ = pkce;
            let pair = crate::transport::bearer::issue_for(
                core,
                &user,
                epoch,
                scopes.iter().map(String::as_str),
                headers,
            )
            .await?;
            let ctx = client.hook_context(Some("bearer"));
            core.hooks.fire_user(Event::AfterLogin, user, &ctx).await;
            Ok(pair_response_with(tokens, pair, extra))
        }
        Origin::Session {
            provider,
            redirect_to,
        } => {
            let sessions = auth.sessions().ok_or(AuthError::Internal)?;
            let method = provider.as_deref().map(|p| ("oauth", p));
            let new =
                super::session::open_session(auth, &user, epoch, client, headers, method).await?;
            let mut body = Map::new();
            body.insert("id".into(), json!(user.user_id()));
            body.insert("username".into(), json!(user.username().or(user.email())));
            body.insert("csrf_token".into(), json!(new.csrf_token));
            if provider.is_some() {
                body.insert("redirect_to".into(), json!(redirect_to));
            }
            body.extend(extra);
            let mut response = Json(Value::Object(body)).into_response();
            set_sign_in_cookies(sessions, &new, &mut response);
            if remember
                && let Some(cookie) = mfa.remember_cookie(&user, epoch, sessions.config().secure)
            {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            no_store(&mut response);
            let mut ctx = client.hook_context(Some("session"));
            ctx.session_handle = Some(new.handle.clone());
            core.hooks.fire_user(Event::AfterLogin, user, &ctx).await;
            Ok(response)
        }
    }
}
