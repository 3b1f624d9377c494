//! The default routes, wire-compatible with crudauth 0.8.

mod account;
mod bearer;
mod recovery;
mod session;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{delete, get, post};

use crate::error::{AuthError, ValidationIssue};
use crate::facade::CrudAuth;
use crate::session::{SameSite, SessionConfig};
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// Every route of the configured transports: `/register`, `/me`, `/change-password`,
    /// `/set-password`, the session routes (`/login`, `/logout`, `/logout-all`, `/sessions`,
    /// `DELETE /sessions/{id}`, `/csrf/refresh`, `/sudo`), the bearer routes (`/token`,
    /// `/refresh`, `GET /tokens`, `DELETE /tokens/{id}`, and `/logout` when there is no
    /// session transport) and, with a [`crate::RecoveryConfig`], the email flows
    /// (`/email/verify-request`, `/email/verify-confirm`, `/password/reset-request`,
    /// `/password/reset-confirm`, `/email/change-request`, `/email/change-confirm`).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let app: axum::Router = axum::Router::new().merge(auth.router());
    /// # }
    /// ```
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let mut router = self.account_routes();
        if self.sessions().is_some() {
            router = router.merge(self.session_routes());
        }
        if self.tokens().is_some() {
            router = router.merge(self.bearer_routes());
        }
        router = router.merge(self.recovery_routes());
        limited(router).with_state(self.clone())
    }

    /// The session transport's routes only (empty without a session transport).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let app: axum::Router = auth.session_router();
    /// # }
    /// ```
    pub fn session_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let router = if self.sessions().is_some() {
            self.session_routes()
        } else {
            Router::new()
        };
        limited(router).with_state(self.clone())
    }

    /// The bearer transport's routes only (empty without a bearer transport).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let app: axum::Router = auth.bearer_router();
    /// # }
    /// ```
    pub fn bearer_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let router = if self.tokens().is_some() {
            self.bearer_routes()
        } else {
            Router::new()
        };
        limited(router).with_state(self.clone())
    }

    fn account_routes(&self) -> Router<CrudAuth<U>> {
        Router::new()
            .route("/register", post(account::register::<U>))
            .route("/me", get(account::me::<U>))
            .route("/change-password", post(account::change_password::<U>))
            .route("/set-password", post(recovery::set_password::<U>))
    }

    /// The email flows, when configured: verify (with an `email_verified` column), reset,
    /// and email change (with an email sender).
    fn recovery_routes(&self) -> Router<CrudAuth<U>> {
        let mut router = Router::new();
        let Some(recovery) = self.recovery() else {
            return router;
        };
        if recovery.verifies {
            router = router
                .route("/email/verify-request", post(recovery::verify_request::<U>))
                .route("/email/verify-confirm", post(recovery::verify_confirm::<U>));
        }
        router = router
            .route(
                "/password/reset-request",
                post(recovery::reset_request::<U>),
            )
            .route(
                "/password/reset-confirm",
                post(recovery::reset_confirm::<U>),
            );
        if self.deliveries().sends_email() {
            router = router
                .route("/email/change-request", post(recovery::change_request::<U>))
                .route("/email/change-confirm", post(recovery::change_confirm::<U>));
        }
        router
    }

    fn session_routes(&self) -> Router<CrudAuth<U>> {
        Router::new()
            .route("/login", post(session::login::<U>))
            .route("/logout", post(session::logout::<U>))
            .route("/logout-all", post(session::logout_all::<U>))
            .route("/sessions", get(session::list::<U>))
            .route("/sessions/{id}", delete(session::revoke::<U>))
            .route("/csrf/refresh", post(session::csrf_refresh::<U>))
            .route("/sudo", post(recovery::sudo::<U>))
    }

    fn bearer_routes(&self) -> Router<CrudAuth<U>> {
        let router = Router::new()
            .route("/token", post(bearer::token::<U>))
            .route("/refresh", post(bearer::refresh::<U>))
            .route("/tokens", get(bearer::list_families::<U>))
            .route("/tokens/{id}", delete(bearer::revoke_family::<U>));
        if self.sessions().is_some() {
            router // the session routes' `/logout` also ends a presented refresh family
        } else {
            router.route("/logout", post(bearer::logout::<U>))
        }
    }
}

/// The largest request body the library's routes read (64 KiB; every form and JSON body
/// they take is a few hundred bytes). A larger one is refused with `413` before it is
/// buffered, instead of axum's 2 MB default.
pub const BODY_LIMIT: usize = 64 * 1024;

fn limited<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

/// 422 for a body that is not a JSON object.
fn not_an_object() -> AuthError {
    AuthError::Validation(vec![ValidationIssue {
        kind: "model_attributes_type",
        loc: vec!["body".into()],
        msg: "Input should be a valid dictionary or object to extract fields from".into(),
        ctx: None,
    }])
}

/// Parses a JSON object body, answering FastAPI-shaped 422s.
pub(crate) fn json_object(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json && !body.is_empty() {
        return Err(not_an_object());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(not_an_object()),
        Err(e) => Err(AuthError::Validation(vec![ValidationIssue {
            kind: "json_invalid",
            loc: vec!["body".into(), e.column().into()],
            msg: "JSON decode error".into(),
            ctx: Some(serde_json::json!({ "error": e.to_string() })),
        }])),
    }
}

/// A required string field of a JSON object.
pub(crate) fn string_field<'m>(
    map: &'m serde_json::Map<String, serde_json::Value>,
    field: &str,
    issues: &mut Vec<ValidationIssue>,
) -> Option<&'m str> {
    match map.get(field) {
        None | Some(serde_json::Value::Null) => {
            issues.push(ValidationIssue::missing(field));
            None
        }
        Some(serde_json::Value::String(s)) => Some(s),
        Some(_) => {
            issues.push(ValidationIssue::body(
                field,
                "string_type",
                "Input should be a valid string",
            ));
            None
        }
    }
}

/// RFC 5321's practical limit on an address.
pub(crate) const MAX_EMAIL: usize = 254;

/// A required email field, canonicalised: 422 when missing, too long or malformed.
///
/// The raw value's length is capped before anything else is done with it; then it is
/// canonicalised by [`crate::user::normalize_email`] (NFKC, lower case, IDNA for the
/// domain), checked again for length and form (normalising may lengthen it, or turn a
/// fullwidth `＜` into a `<`), and returned in its canonical form, so every route that takes
/// an address (register, the request routes, email change) checks, stores and looks it up
/// as the repository does: a fullwidth look-alike is the address it looks like.
pub(crate) fn email_field(
    map: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    issues: &mut Vec<ValidationIssue>,
) -> Option<String> {
    let raw = string_field(map, field, issues)?.trim();
    // Capped before normalising: four bytes a character is the most UTF-8 needs.
    if raw.len() > MAX_EMAIL * 4 || raw.chars().count() > MAX_EMAIL {
        issues.push(ValidationIssue::too_long(field, MAX_EMAIL));
        return None;
    }
    let email = crate::user::normalize_email(raw);
    if email.chars().count() > MAX_EMAIL {
        issues.push(ValidationIssue::too_long(field, MAX_EMAIL));
        return None;
    }
    if crate::user::valid_email(&email) {
        Some(email)
    } else {
        issues.push(ValidationIssue::body(
            field,
            "value_error",
            "value is not a valid email address",
        ));
        None
    }
}

/// The login form (`username`, `password`, optional `scope`, `grant_type`).
pub(crate) struct LoginForm {
    pub username: String,
    pub password: String,
    pub scope: String,
}

pub(crate) fn login_form(headers: &HeaderMap, body: &[u8]) -> Result<LoginForm, AuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let pairs: Vec<(String, String)> = if is_form {
        serde_urlencoded::from_bytes(body).map_err(|_| {
            AuthError::Validation(vec![ValidationIssue {
                kind: "value_error",
                loc: vec!["body".into()],
                msg: "Invalid form body".into(),
                ctx: None,
            }])
        })?
    } else {
        Vec::new()
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut issues = Vec::new();
    let username = get("username");
    let password = get("password");
    if username.is_none() {
        issues.push(ValidationIssue::missing("username"));
    }
    if password.is_none() {
        issues.push(ValidationIssue::missing("password"));
    }
    if let Some(grant) = get("grant_type")
        && grant != "password"
    {
        issues.push(ValidationIssue::body(
            "grant_type",
            "string_pattern_mismatch",
            "String should match pattern '^password$'",
        ));
    }
    match (username, password, issues.is_empty()) {
        (Some(username), Some(password), true) => Ok(LoginForm {
            username,
            password,
            scope: get("scope").unwrap_or_default(),
        }),
        _ => Err(AuthError::Validation(issues)),
    }
}

/// A `Set-Cookie` value under the session cookie policy. A `__Host-` name is always sent
/// `Secure` with `Path=/` (and, like every cookie here, without `Domain`), a `__Secure-`
/// name always `Secure`, as browsers require for those prefixes.
pub(crate) fn set_cookie(
    config: &SessionConfig,
    name: &str,
    value: &str,
    http_only: bool,
    max_age: Option<i64>,
) -> HeaderValue {
    let same_site = match config.same_site {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
    };
    let host_only = name.starts_with("__Host-");
    let secure = config.secure || host_only || name.starts_with("__Secure-");
    let path = if host_only {
        "/".to_owned()
    } else {
        config.path.clone()
    };
    let mut builder = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .path(path)
        .same_site(same_site)
        .http_only(http_only)
        .secure(secure);
    if let Some(age) = max_age {
        builder = builder.max_age(time::Duration::seconds(age));
        if age == 0 {
            builder = builder.expires(time::OffsetDateTime::UNIX_EPOCH);
        }
    }
    HeaderValue::from_str(&builder.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Marks a response that carries credentials as not cacheable.
pub(crate) fn no_store(response: &mut axum::response::Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A JSON answer that carries a credential or personal data: never cached.
pub(crate) fn private_json<T: serde::Serialize>(body: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    response
}

/// Adds the rate-limit headers of an allowed request to its response.
pub(crate) fn with_limit(
    mut response: axum::response::Response,
    allowed: Option<crate::ratelimit::Allowed>,
) -> axum::response::Response {
    if let Some(allowed) = allowed {
        allowed.write_headers(response.headers_mut());
    }
    response
}
