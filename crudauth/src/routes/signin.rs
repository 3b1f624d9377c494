//! The end of a sign-in that is not a password's (a passkey; a one-time code or magic
//! link): the session transport's cookies, or a token pair, as the client asked.

use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::hooks::Event;
use crate::login::VerifiedUser;
use crate::transport::bearer::pair_response;
use crate::transport::session::{no_store, set_sign_in_cookies};
use crate::user::UserRecord;

/// How a sign-in ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// A session: its cookies, and `{id, username, csrf_token}`.
    Session,
    /// A token pair, as `/token` answers it.
    Token,
}

/// The ending a request asks for with `"response": "session" | "token"`; without it, a
/// session when the session transport is on, else tokens. A session ending is refused
/// for a cross-site request (login CSRF), before anything is counted or spent.
pub(super) fn ending<U: UserRecord>(
    auth: &CrudAuth<U>,
    response: Option<&str>,
    headers: &HeaderMap,
) -> Result<Ending, AuthError> {
    let ending = match response {
        None if auth.sessions().is_some() => Ending::Session,
        None | Some("token") if auth.tokens().is_some() => Ending::Token,
        Some("session") if auth.sessions().is_some() => Ending::Session,
        _ => {
            return Err(AuthError::BadRequest(
                "response must be \"session\" or \"token\", of a configured transport.",
            ));
        }
    };
    super::refuse_cross_site_sign_in(auth, headers, ending == Ending::Session)?;
    Ok(ending)
}

/// Ends a verified sign-in: a new session (the presented one ends; `method` is its
/// `login_type` and provider, as `/sessions` shows them) or a token pair; then
/// `on_after_login`.
pub(super) async fn signed_in<U: UserRecord>(
    auth: &CrudAuth<U>,
    verified: VerifiedUser<U>,
    ending: Ending,
    method: (&str, &str),
    (client, headers): (&ClientMeta, &HeaderMap),
) -> Result<Response, AuthError> {
    let VerifiedUser { user, epoch } = verified;
    let user = std::sync::Arc::new(user);
    let core = auth.core();
    match ending {
        Ending::Token => {
            let tokens = auth.tokens().ok_or(AuthError::Internal)?;
            let pair = crate::transport::bearer::issue_for(
                core,
                &user,
                epoch,
                Vec::<&str>::new(),
                headers,
            )
            .await?;
            let ctx = client.hook_context(Some("bearer"));
            core.hooks.fire_user(Event::AfterLogin, user, &ctx).await;
            Ok(pair_response(tokens, pair))
        }
        Ending::Session => {
            let sessions = auth.sessions().ok_or(AuthError::Internal)?;
            let new =
                super::session::open_session(auth, &user, epoch, client, headers, Some(method))
                    .await?;
            let mut response = Json(json!({
                "id": user.user_id(),
                "username": user.username().or(user.email()),
                "csrf_token": new.csrf_token,
            }))
            .into_response();
            set_sign_in_cookies(sessions, &new, &mut response);
            no_store(&mut response);
            let mut ctx = client.hook_context(Some("session"));
            ctx.session_handle = Some(new.handle.clone());
            core.hooks.fire_user(Event::AfterLogin, user, &ctx).await;
            Ok(response)
        }
    }
}
