//! The users admin routes (feature `admin`), in fastapi-users' shape: `GET | PATCH
//! /users/me`; for superusers `GET /users`, `GET | PATCH | DELETE /users/{id}` (the writes
//! only inside the sudo window of a session).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::{private_json, with_limit};
use crate::admin::{UsersAdmin, admin_patch, own_patch};
use crate::body::Fields;
use crate::client_ip::{ClientMeta, ip_key};
use crate::error::{AuthError, ValidationIssue};
use crate::facade::CrudAuth;
use crate::principal::{Principal, Superuser};
use crate::transport::session::set_session_cookie;
use crate::user::{MAX_IDENTIFIER_CHARS, UserFilter, UserId, UserRecord};

/// The largest `offset` `GET /users` accepts (a larger one is answered 422).
const MAX_OFFSET: u64 = 1_000_000_000;

/// The longest `email` prefix `GET /users` accepts.
const MAX_PREFIX: usize = 254;

const PHONE_PENDING: &str =
    "A code was texted to the new number; confirm it at /users/me/phone/confirm.";

const EMAIL_PENDING: &str = "If the address is available, a confirmation email has been sent; the email changes when it is followed.";

impl<U: UserRecord> CrudAuth<U> {
    /// The users admin, when [`crate::CrudAuthBuilder::users_admin`] switched it on.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.users_admin().is_none()); // not switched on in the fixture
    /// # Ok(()) });
    /// ```
    pub fn users_admin(&self) -> Option<&UsersAdmin<U>> {
        self.inner.methods.users_admin.as_ref()
    }

    /// The users admin routes alone (empty unless switched on), with the library's state;
    /// [`CrudAuth::router`] includes them.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use tower::ServiceExt; // `oneshot`: one request, no server
    /// let app: axum::Router = auth.users_router();
    /// let request = axum::http::Request::get("/users/me").body(axum::body::Body::empty())?;
    /// assert_eq!(app.oneshot(request).await?.status(), 404); // not switched on here
    /// # Ok(()) });
    /// ```
    pub fn users_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        super::limited(self.users_routes()).with_state(self.clone())
    }

    pub(super) fn users_routes(&self) -> Router<CrudAuth<U>> {
        if self.users_admin().is_none() {
            return Router::new();
        }
        Router::new()
            .route("/users/me", get(me::<U>).patch(patch_me::<U>))
            .route("/users/me/phone/confirm", post(confirm_phone::<U>))
            .route("/users", get(list::<U>))
            .route(
                "/users/{id}",
                get(read::<U>).patch(update::<U>).delete(remove::<U>),
            )
    }
}

fn admin<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&UsersAdmin<U>, AuthError> {
    auth.users_admin().ok_or(AuthError::NotFound("Not Found"))
}

/// The id in the path; a malformed one is a user that does not exist (404, as
/// fastapi-users answers it).
fn user_id<U: UserRecord>(auth: &CrudAuth<U>, raw: &str) -> Result<UserId, AuthError> {
    if raw.len() > MAX_IDENTIFIER_CHARS {
        return Err(AuthError::NotFound("Not Found"));
    }
    let kind = auth.repo().schema().id_kind;
    kind.parse(raw).ok_or(AuthError::NotFound("Not Found"))
}

/// `GET /users/me`.
async fn me<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
) -> Result<Response, AuthError> {
    let admin = admin(&auth)?;
    Ok(private_json(admin.user_json(principal.user.as_ref())))
}

/// `PATCH /users/me`: 200 with the account, 202 when a confirmation link went to a new
/// address; a moved session is set as the cookie.
async fn patch_me<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let admin = admin(&auth)?;
    let patch = own_patch(Fields::json(&headers, &body)?, admin.config())?;
    if let Some(email) = &patch.email {
        auth.core().refuse_disposable("email", email)?;
    }
    // Refused before any budget is spent: an impersonator or a leaked key must not use up
    // the person's own password and phone budgets.
    if patch.email.is_some() || patch.phone.is_some() || patch.password.is_some() {
        principal.refuse_delegated()?;
    }
    let mut allowed = None;
    if patch.password.is_some() {
        let who = format!("user:{}", principal.user_id);
        allowed = auth.rate_limiter().enforce("change_password", &who).await?;
    }
    if patch.phone.is_some() {
        let who = format!("user:{}", principal.user_id);
        let limit = auth.rate_limiter().enforce("phone_change_request", &who);
        allowed = limit.await?.or(allowed);
        // Texts cost money: per client address too, and over all clients (against many
        // fresh accounts texting premium-rate numbers).
        let from = format!("ip:{}", ip_key(client.ip));
        let limit = auth.rate_limiter().enforce("phone_change_request", &from);
        allowed = limit.await?.or(allowed);
        auth.rate_limiter()
            .enforce("phone_change_sms", "all")
            .await?;
    }
    let since = tokio::time::Instant::now();
    if patch.email.is_some() {
        let from = format!("ip:{}", ip_key(client.ip));
        let limit = auth.rate_limiter().enforce("email_change_request", &from);
        allowed = limit.await?.or(allowed);
    }
    let outcome = admin.update_own(&principal, patch, &client).await?;
    let mut response = if outcome.email_pending || outcome.phone_pending {
        let mut body = admin.user_json(&outcome.user);
        if outcome.email_pending {
            // As `/email/change-request`: the answer does not tell a free address from a
            // taken one.
            super::recovery::answer_at(&auth, since).await;
            body["detail"] = json!(EMAIL_PENDING);
        } else {
            body["detail"] = json!(PHONE_PENDING);
        }
        let mut response = (StatusCode::ACCEPTED, private_json(body)).into_response();
        crate::transport::session::no_store(&mut response);
        response
    } else {
        private_json(admin.user_json(&outcome.user))
    };
    if let (Some(moved), Some(sessions)) = (outcome.session, auth.sessions()) {
        set_session_cookie(sessions, &moved.id, &mut response);
    }
    Ok(with_limit(response, allowed))
}

/// `POST /users/me/phone/confirm {code}`: the texted code writes the pending number; 200
/// with the account.
async fn confirm_phone<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    principal.refuse_delegated()?;
    let admin = admin(&auth)?;
    let mut fields = Fields::json(&headers, &body)?;
    let code = fields.string("code");
    if code.as_ref().is_some_and(|c| c.len() > 16) {
        fields.issues().push(ValidationIssue::too_long("code", 16));
    }
    let code = fields.finish(code)?;
    let user = admin.confirm_phone(&principal, &code).await?;
    Ok(private_json(admin.user_json(&user)))
}

fn bad_query(field: &str, msg: &str) -> AuthError {
    AuthError::Validation(vec![ValidationIssue {
        kind: "value_error",
        loc: vec!["query".into(), field.into()],
        msg: msg.into(),
        ctx: None,
    }])
}

/// The listing's query: `limit` (1..=max, default from the config), `offset`
/// (0..=1e9), `email` (a prefix), `is_active`, `is_superuser` (`true` / `false`). A value
/// out of range or of the wrong form is a 422; the first of a repeated parameter counts;
/// unknown parameters are ignored.
fn list_filter(raw: Option<&str>, admin_max: u64, default: u64) -> Result<UserFilter, AuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| bad_query("query", "Invalid query string"))?;
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let number = |key: &str, min: u64, max: u64| -> Result<Option<u64>, AuthError> {
        let Some(v) = get(key) else { return Ok(None) };
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(bad_query(
                key,
                &format!("Input should be an integer between {min} and {max}"),
            )),
        }
    };
    let flag = |key: &str| -> Result<Option<bool>, AuthError> {
        match get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(bad_query(key, "Input should be true or false")),
        }
    };
    let email_prefix = match get("email") {
        Some(p) if p.chars().count() > MAX_PREFIX || p.len() > MAX_PREFIX * 4 => {
            return Err(bad_query("email", "Input is too long"));
        }
        Some(p) if p.chars().any(char::is_control) => {
            return Err(bad_query("email", "Input holds control characters"));
        }
        Some(p) if !p.is_empty() => Some(p.to_owned()),
        _ => None,
    };
    Ok(UserFilter {
        email_prefix,
        is_active: flag("is_active")?,
        is_superuser: flag("is_superuser")?,
        offset: number("offset", 0, MAX_OFFSET)?.unwrap_or(0),
        limit: number("limit", 1, admin_max)?.unwrap_or(default),
    })
}

/// `GET /users` (superuser): `{items, total, limit, offset}`; a superuser of one tenant
/// sees only that tenant's users.
async fn list<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    Superuser(actor): Superuser<U>,
    RawQuery(query): RawQuery,
) -> Result<Response, AuthError> {
    actor.refuse_api_key()?;
    let admin = admin(&auth)?;
    let config = admin.config();
    let filter = list_filter(
        query.as_deref(),
        config.max_page_size,
        config.default_page_size,
    )?;
    let page = admin.list(&actor, &filter).await?;
    let items: Vec<_> = page.users.iter().map(|u| admin.user_json(u)).collect();
    Ok(private_json(json!({
        "items": items,
        "total": page.total,
        "limit": filter.limit,
        "offset": filter.offset,
    })))
}

/// `GET /users/{id}` (superuser).
async fn read<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    Superuser(actor): Superuser<U>,
    Path(raw): Path<String>,
) -> Result<Response, AuthError> {
    actor.refuse_api_key()?;
    let admin = admin(&auth)?;
    let user = admin.get_for(&actor, &user_id(&auth, &raw)?).await?;
    Ok(private_json(admin.user_json(&user)))
}

/// `PATCH /users/{id}` (superuser, elevated session).
async fn update<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    Superuser(actor): Superuser<U>,
    client: ClientMeta,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    actor.require_elevated()?;
    let admin = admin(&auth)?;
    let id = user_id(&auth, &raw)?;
    let patch = admin_patch(Fields::json(&headers, &body)?, admin.config())?;
    let user = admin.update_user(&actor, &id, patch, &client).await?;
    Ok(private_json(admin.user_json(&user)))
}

/// `DELETE /users/{id}` (superuser, elevated session): 204.
async fn remove<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    Superuser(actor): Superuser<U>,
    Path(raw): Path<String>,
) -> Result<Response, AuthError> {
    actor.require_elevated()?;
    let admin = admin(&auth)?;
    let id = user_id(&auth, &raw)?;
    admin.delete_user(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
