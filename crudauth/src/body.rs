//! Request bodies: the JSON and form inputs of the library's routes, answered with the
//! FastAPI-shaped 422 of the wire contract when they are not what a route takes.

use axum::http::{HeaderMap, header};

use crate::error::{AuthError, ValidationIssue};

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
