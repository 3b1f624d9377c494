//! The impersonation routes (feature `admin`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::json;

use super::private_json;
use crate::admin::Impersonation;
use crate::body::Fields;
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::principal::Principal;
use crate::session::Sessions;
use crate::transport::session::{
    clear_cookies, cookie, is_cross_site, set_cookie, set_csrf_cookie, set_session_cookie,
};
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The impersonation service, when [`crate::CrudAuthBuilder::impersonation`] turned it
    /// on.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.impersonation().is_none()); // the fixture has none
    /// # Ok(()) });
    /// ```
    pub fn impersonation(&self) -> Option<&Impersonation<U>> {
        self.inner.methods.impersonation.as_ref()
    }

    /// The impersonation routes (empty without impersonation).
    pub(super) fn impersonation_routes(&self) -> Router<CrudAuth<U>> {
        let mut router = Router::new();
        if self.impersonation().is_none() {
            return router;
        }
        if self.tokens().is_some() {
            router = router.route("/admin/users/{id}/token", post(token::<U>));
        }
        if self.sessions().is_some() {
            router = router
                .route("/admin/users/{id}/impersonate", post(start::<U>))
                .route("/admin/impersonation/stop", post(stop::<U>));
        }
        router
    }
}

fn service<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&Impersonation<U>, AuthError> {
    auth.impersonation().ok_or(AuthError::NotFound("Not Found"))
}

/// The cookie the superuser's own session waits in during an impersonation session: never
/// read as a credential, only by `POST /admin/impersonation/stop`.
fn parked_name(sessions: &Sessions) -> String {
    format!("{}_admin", sessions.config().cookie_name)
}

/// Signing out of an impersonation session signs the superuser out too: their parked
/// session ends (a support desk's browser left behind holds nothing). `true` when the
/// request carried a parked cookie (to clear).
pub(super) async fn end_parked(
    sessions: &Sessions,
    ended: &crate::session::LiveSession,
    headers: &HeaderMap,
) -> Result<bool, AuthError> {
    let Some(imp) = &ended.record.impersonator else {
        return Ok(false);
    };
    let Some(raw) = cookie(headers, &parked_name(sessions)) else {
        return Ok(false);
    };
    if let Some(own) = sessions.resolve(raw).await?
        && own.record.user_id == imp.user_id
    {
        sessions.delete(&own.handle, &own.record.user_id).await?;
    }
    Ok(true)
}

/// Clears the parked cookie on a response.
pub(super) fn clear_parked(sessions: &Sessions, response: &mut Response) {
    let clear = set_cookie(sessions.config(), &parked_name(sessions), "", true, Some(0));
    response.headers_mut().append(header::SET_COOKIE, clear);
}

/// `POST /admin/users/{id}/token` `{scopes?}`: an impersonation access token.
async fn token<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(id): Path<String>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let scopes: Vec<String> = if body.is_empty() {
        Vec::new()
    } else {
        let mut fields = Fields::json(&headers, &body)?;
        let scopes = match fields.all().get("scopes") {
            None | Some(serde_json::Value::Null) => Some(Vec::new()),
            Some(_) => fields.value::<Vec<String>>("scopes"),
        };
        fields.finish(scopes)?
    };
    let minted = service(&auth)?
        .token(&principal, &id, &scopes, &client)
        .await?;
    Ok(private_json(minted))
}

/// `POST /admin/users/{id}/impersonate`: the browser's session becomes the user's, for the
/// configured lifetime; the superuser's own session waits in its parked cookie.
async fn start<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(id): Path<String>,
    client: ClientMeta,
    headers: HeaderMap,
) -> Result<Response, AuthError> {
    let sessions = auth.sessions().ok_or(AuthError::Internal)?;
    // The superuser's own session, from its cookie: an elevated session principal has one.
    let own = cookie(&headers, &sessions.config().cookie_name)
        .filter(|_| principal.session_handle.is_some())
        .ok_or(AuthError::Forbidden("Re-authentication required."))?
        .to_owned();
    let started = service(&auth)?
        .start_session(&principal, &id, &client)
        .await?;
    let mut response = private_json(json!({
        "detail": "Impersonating.",
        "user_id": started.user_id,
        "impersonated_by": principal.user_id,
        "expires_at": started.until,
        "csrf_token": started.session.csrf_token,
    }));
    // It outlives the impersonation by a few minutes only: long enough to come back.
    let keep = started.until - sessions.now_secs() + 300;
    let parked = set_cookie(
        sessions.config(),
        &parked_name(sessions),
        &own,
        true,
        Some(keep),
    );
    response.headers_mut().append(header::SET_COOKIE, parked);
    set_session_cookie(sessions, &started.session.id, &mut response);
    set_csrf_cookie(sessions, &started.session.csrf_token, &mut response);
    Ok(response)
}

/// `POST /admin/impersonation/stop`: ends the impersonation session and gives the browser
/// back the superuser's own session (with a fresh CSRF token), or signs it out when there
/// is none to go back to. With the impersonation session already over (expired, ended by
/// the user), a same-site request with the parked cookie alone still goes back.
async fn stop<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Option<Principal<U>>,
    headers: HeaderMap,
) -> Result<Response, AuthError> {
    let sessions = auth.sessions().ok_or(AuthError::Internal)?;
    if principal.is_none() && is_cross_site(&headers) {
        return Err(AuthError::Forbidden("Cross-site requests are not allowed."));
    }
    let parked = cookie(&headers, &parked_name(sessions));
    let restored = service(&auth)?.stop(principal.as_ref(), parked).await?;
    let mut response = match &restored {
        Some(_) => private_json(json!({ "detail": "Impersonation stopped." })),
        None => private_json(json!({ "detail": "Impersonation stopped; signed out." })),
    };
    clear_parked(sessions, &mut response);
    match restored {
        Some((id, csrf)) => {
            set_session_cookie(sessions, &id, &mut response);
            set_csrf_cookie(sessions, &csrf, &mut response);
        }
        None => clear_cookies(sessions, &mut response),
    }
    Ok(response)
}
