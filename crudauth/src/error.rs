//! One error type for the runtime, with one mapping to HTTP status and JSON body.
//!
//! Bodies follow the Python original: `{"detail": "..."}`, and validation errors as a list
//! `{"detail": [{"type", "loc", "msg", "ctx"}]}`. Internal causes are logged with `tracing`
//! and answered with a generic body that leaks nothing.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One entry of a 422 validation error, in FastAPI's shape.
///
/// ```
/// use crudauth::error::ValidationIssue;
/// let issue = ValidationIssue::too_short("password", 8);
/// assert_eq!(issue.kind, "string_too_short");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidationIssue {
    /// The error type (`missing`, `string_too_short`, `string_too_long`, `json_invalid`, ...).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where: `["body", field]`.
    pub loc: Vec<serde_json::Value>,
    /// Human-readable message.
    pub msg: String,
    /// Extra context (`min_length`, `max_length`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<serde_json::Value>,
}

impl ValidationIssue {
    /// A field in the body failed a rule.
    ///
    /// ```
    /// # use crudauth::error::ValidationIssue;
    /// let i = ValidationIssue::body("email", "value_error", "not an email");
    /// assert_eq!(i.loc[1], "email");
    /// ```
    pub fn body(field: &str, kind: &'static str, msg: impl Into<String>) -> Self {
        ValidationIssue {
            kind,
            loc: vec!["body".into(), field.into()],
            msg: msg.into(),
            ctx: None,
        }
    }

    /// A required field is missing.
    ///
    /// ```
    /// # use crudauth::error::ValidationIssue;
    /// assert_eq!(ValidationIssue::missing("password").msg, "Field required");
    /// ```
    pub fn missing(field: &str) -> Self {
        Self::body(field, "missing", "Field required")
    }

    /// A string is shorter than `min` characters.
    ///
    /// ```
    /// # use crudauth::error::ValidationIssue;
    /// assert_eq!(ValidationIssue::too_short("password", 8).ctx.unwrap()["min_length"], 8);
    /// ```
    pub fn too_short(field: &str, min: usize) -> Self {
        ValidationIssue {
            ctx: Some(serde_json::json!({ "min_length": min })),
            ..Self::body(
                field,
                "string_too_short",
                format!("String should have at least {min} characters"),
            )
        }
    }

    /// A string is longer than `max` characters.
    ///
    /// ```
    /// # use crudauth::error::ValidationIssue;
    /// assert_eq!(ValidationIssue::too_long("email", 254).kind, "string_too_long");
    /// ```
    pub fn too_long(field: &str, max: usize) -> Self {
        ValidationIssue {
            ctx: Some(serde_json::json!({ "max_length": max })),
            ..Self::body(
                field,
                "string_too_long",
                format!("String should have at most {max} characters"),
            )
        }
    }
}

/// Everything an auth route or extractor can answer with besides success.
///
/// ```
/// use axum::response::IntoResponse;
/// use crudauth::AuthError;
/// let response = AuthError::NotAuthenticated.into_response();
/// assert_eq!(response.status(), 401);
/// ```
#[derive(Clone, Debug, thiserror::Error)]
pub enum AuthError {
    /// 401 `Not authenticated`: no credential.
    #[error("Not authenticated")]
    NotAuthenticated,
    /// 401 `Invalid token`: a bearer token that is present but invalid.
    #[error("Invalid token")]
    InvalidToken,
    /// 401 `Incorrect username or password`.
    #[error("Incorrect username or password")]
    BadCredentials,
    /// 401 with a specific message (`Current password is incorrect.`, refresh errors).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403 `Missing CSRF token` / `Invalid CSRF token`, with `X-CSRF-Error: true`.
    #[error("{0}")]
    Csrf(&'static str),
    /// 403 from a gate (`Insufficient privileges`, `Insufficient scope`, ...).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 400 with a message.
    #[error("{0}")]
    BadRequest(&'static str),
    /// 404 with a message.
    #[error("{0}")]
    NotFound(&'static str),
    /// 409 with a message: the thing changed meanwhile (a concurrent rotation, approval).
    #[error("{0}")]
    Conflict(&'static str),
    /// 422 with a plain message (`Username already taken`).
    #[error("{0}")]
    Taken(&'static str),
    /// 422 with a list of validation issues.
    #[error("validation failed")]
    Validation(Vec<ValidationIssue>),
    /// 429 `Too many login attempts. Try again later.` with `Retry-After`.
    #[error("Too many login attempts. Try again later.")]
    LockedOut {
        /// Seconds until the next attempt is considered.
        retry_after: u64,
    },
    /// 429 `Too many attempts. Try again later.` with `Retry-After`: the sudo lockout.
    #[error("Too many attempts. Try again later.")]
    TooManyAttempts {
        /// Seconds until the next attempt is considered.
        retry_after: u64,
    },
    /// 429 `Too many requests. Try again later.` from a rate limit, with `Retry-After` and
    /// the rate-limit headers.
    #[error("Too many requests. Try again later.")]
    RateLimited(crate::quota::Limited),
    /// 403 `captcha_required` / `captcha_failed`: the route wants a CAPTCHA token (missing
    /// or refused), with `X-Captcha-Required: <provider>`.
    #[error("{detail}")]
    Captcha {
        /// `captcha_required` or `captcha_failed`.
        detail: &'static str,
        /// The provider whose widget the client must show (`turnstile`, ...).
        provider: &'static str,
    },
    /// 503: a store or the database is unreachable; nobody is authenticated (fail closed).
    #[error("Service temporarily unavailable")]
    Unavailable,
    /// 500: an internal failure; the cause is logged, never sent.
    #[error("Internal server error")]
    Internal,
}

/// The header of a CAPTCHA refusal (`crate::captcha::CAPTCHA_REQUIRED_HEADER`).
pub(crate) const CAPTCHA_REQUIRED: &str = "x-captcha-required";

#[derive(Serialize)]
struct Detail<'a> {
    detail: &'a str,
}

#[derive(Serialize)]
struct DetailList<'a> {
    detail: &'a [ValidationIssue],
}

impl AuthError {
    /// The HTTP status this error answers with.
    ///
    /// ```
    /// # use crudauth::AuthError;
    /// assert_eq!(AuthError::LockedOut { retry_after: 60 }.status(), 429);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::NotAuthenticated
            | AuthError::InvalidToken
            | AuthError::BadCredentials
            | AuthError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AuthError::Csrf(_) | AuthError::Forbidden(_) | AuthError::Captcha { .. } => {
                StatusCode::FORBIDDEN
            }
            AuthError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AuthError::NotFound(_) => StatusCode::NOT_FOUND,
            AuthError::Conflict(_) => StatusCode::CONFLICT,
            AuthError::Taken(_) | AuthError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AuthError::LockedOut { .. }
            | AuthError::TooManyAttempts { .. }
            | AuthError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        if let AuthError::RateLimited(limited) = self {
            return limited.into_response();
        }
        let status = self.status();
        let mut response = match &self {
            AuthError::Validation(issues) => {
                (status, axum::Json(DetailList { detail: issues })).into_response()
            }
            other => {
                let text = other.to_string();
                (status, axum::Json(Detail { detail: &text })).into_response()
            }
        };
        let headers = response.headers_mut();
        match self {
            AuthError::InvalidToken => {
                // RFC 6750: say which scheme failed.
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            AuthError::Csrf(_) => {
                headers.insert("x-csrf-error", HeaderValue::from_static("true"));
            }
            AuthError::LockedOut { retry_after } | AuthError::TooManyAttempts { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            }
            AuthError::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(5u64));
            }
            AuthError::Captcha { provider, .. } => {
                if let Ok(value) = HeaderValue::from_str(provider) {
                    headers.insert(CAPTCHA_REQUIRED, value);
                }
            }
            _ => {}
        }
        response
    }
}

/// A configuration mistake, caught once by the builder's `build()`.
///
/// ```
/// use crudauth::ConfigError;
/// assert!(ConfigError::SecretTooShort.to_string().contains("32 bytes"));
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The secret key is shorter than 32 bytes.
    #[error("the secret key must be at least 32 bytes")]
    SecretTooShort,
    /// No secret key was given.
    #[error("a secret key is required")]
    MissingSecret,
    /// No transport was configured.
    #[error("at least one transport (session or bearer) is required")]
    NoTransport,
    /// A setting contradicts another or is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}
