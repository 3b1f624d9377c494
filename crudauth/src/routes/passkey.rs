//! The passkey routes (feature `passkeys`): JSON in and out.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::signin::{ending, signed_in};
use super::{private_json, with_limit};
use crate::body::Fields;
use crate::client_ip::{ClientMeta, ip_key};
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::passkey::Passkeys;
use crate::principal::Principal;
use crate::ratelimit::Allowed;
use crate::transport::session::set_session_cookie;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The passkey service, when [`crate::CrudAuthBuilder::passkeys`] turned it on.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.passkeys().is_none()); // the fixture has no passkeys
    /// # Ok(()) });
    /// ```
    pub fn passkeys(&self) -> Option<&Passkeys<U>> {
        self.inner.methods.passkeys.as_ref()
    }

    /// The passkey routes only (empty without passkeys): `GET /passkeys`,
    /// `POST /passkeys/register/start`, `/passkeys/register/finish`, `/passkeys/login/start`,
    /// `/passkeys/login/finish`, `/passkeys/sudo/start`, `/passkeys/sudo/finish`,
    /// `PATCH` and `DELETE /passkeys/{id}`; with MFA on, `/passkeys/mfa/start` and
    /// `/passkeys/mfa/finish` (a passkey as the second factor of a sign-in's challenge).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let app: axum::Router = auth.passkey_router();
    /// # Ok(()) });
    /// ```
    pub fn passkey_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        super::limited(self.passkey_routes()).with_state(self.clone())
    }

    pub(super) fn passkey_routes(&self) -> Router<CrudAuth<U>> {
        if self.passkeys().is_none() {
            return Router::new();
        }
        let router = Router::new()
            .route("/passkeys", get(list::<U>))
            .route("/passkeys/register/start", post(register_start::<U>))
            .route("/passkeys/register/finish", post(register_finish::<U>))
            .route("/passkeys/login/start", post(login_start::<U>))
            .route("/passkeys/login/finish", post(login_finish::<U>))
            .route("/passkeys/sudo/start", post(sudo_start::<U>))
            .route("/passkeys/sudo/finish", post(sudo_finish::<U>))
            .route("/passkeys/{id}", patch(rename::<U>).delete(remove::<U>));
        #[cfg(feature = "mfa")]
        let router = router
            .route("/passkeys/mfa/start", post(mfa_start::<U>))
            .route("/passkeys/mfa/finish", post(mfa_finish::<U>));
        router
    }
}

fn service<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&Passkeys<U>, AuthError> {
    auth.passkeys().ok_or(AuthError::NotFound("Not Found"))
}

/// Counts a management call against `passkey_manage` (per user), for the person only (no
/// impersonation, no API key).
async fn manage_limit<U: UserRecord>(
    auth: &CrudAuth<U>,
    principal: &Principal<U>,
) -> Result<Option<Allowed>, AuthError> {
    principal.refuse_delegated()?;
    let key = format!("user:{}", principal.user_id);
    auth.rate_limiter().enforce("passkey_manage", &key).await
}

/// Counts a sign-in start against `passkey_login` (per client address): each stores a
/// ceremony.
async fn login_limit<U: UserRecord>(
    auth: &CrudAuth<U>,
    client: &ClientMeta,
) -> Result<Option<Allowed>, AuthError> {
    let key = format!("ip:{}", ip_key(client.ip));
    auth.rate_limiter().enforce("passkey_login", &key).await
}

/// A JSON body's fields (an empty body is an empty object).
fn fields(headers: &HeaderMap, body: &Bytes) -> Result<Fields, AuthError> {
    if body.is_empty() {
        return Fields::json(headers, b"{}");
    }
    Fields::json(headers, body)
}

/// The `{ceremony, credential}` of a finish body (422 entries for either missing or
/// malformed).
fn answer<T: serde::de::DeserializeOwned>(fields: &mut Fields) -> Option<(String, T)> {
    let ceremony = fields.string("ceremony");
    let credential = fields.value::<T>("credential");
    ceremony.zip(credential)
}

/// A management start (registration, sudo): the `passkey_manage` limit, then `start`.
async fn managed_start<U: UserRecord, T: serde::Serialize>(
    auth: &CrudAuth<U>,
    principal: &Principal<U>,
    start: impl AsyncFnOnce(&Passkeys<U>) -> Result<T, AuthError>,
) -> Result<Response, AuthError> {
    let passkeys = service(auth)?;
    let allowed = manage_limit(auth, principal).await?;
    let started = start(passkeys).await?;
    Ok(with_limit(private_json(started), allowed))
}

async fn list<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    let passkeys = service(&auth)?.list(&principal.user_id).await?;
    Ok(private_json(passkeys))
}

async fn register_start<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    managed_start(&auth, &principal, async |p| {
        p.start_registration(&principal).await
    })
    .await
}

/// `{ceremony, credential, name?}`: 201 with the new passkey.
async fn register_finish<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    principal.refuse_delegated()?;
    let passkeys = service(&auth)?;
    let mut fields = fields(&headers, &body)?;
    let answer = answer::<RegisterPublicKeyCredential>(&mut fields);
    let name = fields.optional("name");
    let (ceremony, credential) = fields.finish(answer)?;
    let info = passkeys
        .finish_registration(&principal, &ceremony, &credential, name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, private_json(info)).into_response())
}

/// `{username?}`: a ceremony for the account's passkeys, or a discoverable one.
async fn login_start<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let passkeys = service(&auth)?;
    let allowed = login_limit(&auth, &client).await?;
    let fields = fields(&headers, &body)?;
    let username = fields.optional("username");
    let started = passkeys.start_sign_in(username.as_deref()).await?;
    Ok(with_limit(private_json(started), allowed))
}

/// `{ceremony, credential, response?}`: the session's cookies or a token pair.
async fn login_finish<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let passkeys = service(&auth)?;
    let mut fields = fields(&headers, &body)?;
    let ending = ending(&auth, fields.optional("response").as_deref(), &headers)?;
    let answer = answer::<PublicKeyCredential>(&mut fields);
    let (ceremony, credential) = fields.finish(answer)?;
    let verified = passkeys
        .finish_sign_in(&ceremony, &credential, &client)
        .await?;
    signed_in(
        &auth,
        verified,
        ending,
        ("passkey", "webauthn"),
        (&client, &headers),
    )
    .await
}

async fn sudo_start<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    managed_start(&auth, &principal, async |p| p.start_sudo(&principal).await).await
}

/// `{ceremony, credential}`: the elevated session under its new id, as `POST /sudo`.
async fn sudo_finish<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    principal.refuse_delegated()?;
    let passkeys = service(&auth)?;
    let mut fields = fields(&headers, &body)?;
    let answer = answer::<PublicKeyCredential>(&mut fields);
    let (ceremony, credential) = fields.finish(answer)?;
    let elevated = passkeys
        .finish_sudo(&principal, &ceremony, &credential, &client)
        .await?;
    let sessions = auth.sessions().ok_or(AuthError::Internal)?;
    let mut response = private_json(json!({ "detail": "elevated" }));
    set_session_cookie(sessions, &elevated.session.id, &mut response);
    Ok(response)
}

/// `{name}`.
async fn rename<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let passkeys = service(&auth)?;
    let allowed = manage_limit(&auth, &principal).await?;
    let mut fields = fields(&headers, &body)?;
    let name = fields.string("name");
    let name = fields.finish(name)?;
    let info = passkeys.rename(&principal, &id, &name).await?;
    Ok(with_limit(private_json(info), allowed))
}

async fn remove<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    let passkeys = service(&auth)?;
    let allowed = manage_limit(&auth, &principal).await?;
    passkeys.remove(&principal, &id).await?;
    let response = private_json(json!({ "detail": "Passkey removed." }));
    Ok(with_limit(response, allowed))
}

/// `{challenge}`: a ceremony over the challenged account's passkeys.
#[cfg(feature = "mfa")]
async fn mfa_start<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let passkeys = service(&auth)?;
    let mfa = super::mfa::service(&auth)?;
    let allowed = login_limit(&auth, &client).await?;
    let mut fields = fields(&headers, &body)?;
    let challenge = fields.string("challenge");
    let challenge = fields.finish(challenge)?;
    let user = mfa.challenged_user(&challenge).await?;
    let started = passkeys.start_second_factor(&user, &challenge).await?;
    Ok(with_limit(private_json(started), allowed))
}

/// `{challenge, ceremony, credential, remember_device?}`: completes the sign-in the
/// challenge holds, as `/mfa/verify` does with a code.
#[cfg(feature = "mfa")]
async fn mfa_finish<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let passkeys = service(&auth)?;
    let mfa = super::mfa::service(&auth)?;
    let mut fields = fields(&headers, &body)?;
    let challenge = fields.string("challenge");
    let answer = answer::<PublicKeyCredential>(&mut fields);
    let remember = matches!(
        fields.all().get("remember_device"),
        Some(serde_json::Value::Bool(true))
    );
    let (challenge, (ceremony, credential)) = fields.finish(challenge.zip(answer))?;
    // Login CSRF, as at `/mfa/verify`: before an attempt is counted.
    super::refuse_cross_site_sign_in(&auth, &headers, auth.sessions().is_some())?;
    let check = async |user: &U| {
        passkeys
            .check_second_factor(&ceremony, &challenge, user, &credential)
            .await
    };
    let done = mfa.verify_with(&challenge, &client, check).await?;
    super::mfa::complete(&auth, mfa, done, &client, &headers, remember).await
}
