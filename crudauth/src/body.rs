//! Request bodies: the JSON and form inputs of the library's routes, read by one typed
//! extractor, [`Body<T>`], whose rejection is the FastAPI-shaped 422 of the wire contract
//! (`{"detail":[{"loc":["body",field],"msg":..,"type":..}]}`), every missing or mistyped
//! field listed at once.
//!
//! A body type says which fields it takes through [`BodyFields`]; routes that must count a
//! request (rate limits) before its body is looked at call [`Body::parse`] after counting,
//! the others take `Body<T>` as their last extractor.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::error::{AuthError, ValidationIssue};

/// A body the routes take: how to read it from the request's fields.
pub(crate) trait BodyFields: Sized {
    /// `application/x-www-form-urlencoded` (the OAuth2 password form) instead of JSON.
    const FORM: bool = false;
    /// Reads the fields, recording an issue for each one that is missing or malformed.
    fn read(fields: &mut Fields) -> Option<Self>;
}

/// A typed request body (see the module docs).
pub(crate) struct Body<T>(pub T);

impl<T: BodyFields> Body<T> {
    /// Parses a body already read (after a rate limit counted the request).
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<T, AuthError> {
        let mut fields = if T::FORM {
            Fields::form(headers, body)?
        } else {
            Fields::json(headers, body)?
        };
        let value = T::read(&mut fields);
        fields.finish(value)
    }
}

impl<S: Send + Sync, T: BodyFields> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Self::parse(&headers, &bytes)
            .map(Body)
            .map_err(IntoResponse::into_response)
    }
}

/// The fields of a body, and the issues found reading them.
pub(crate) struct Fields {
    map: Map<String, Value>,
    issues: Vec<ValidationIssue>,
}

impl Fields {
    /// A JSON object body (an empty body reads as `{}`, so every field is missing).
    pub(crate) fn json(headers: &HeaderMap, body: &[u8]) -> Result<Self, AuthError> {
        Ok(Fields {
            map: json_object(headers, body)?,
            issues: Vec::new(),
        })
    }

    /// A form body (any other content type reads as no fields). A field given twice
    /// counts by its first value.
    pub(crate) fn form(headers: &HeaderMap, body: &[u8]) -> Result<Self, AuthError> {
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
        let mut map = Map::new();
        for (k, v) in pairs {
            map.entry(k).or_insert(Value::String(v));
        }
        Ok(Fields {
            map,
            issues: Vec::new(),
        })
    }

    /// A required string field.
    pub(crate) fn string(&mut self, field: &str) -> Option<String> {
        match self.map.get(field) {
            None | Some(Value::Null) => {
                self.issues.push(ValidationIssue::missing(field));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.issues.push(ValidationIssue::body(
                    field,
                    "string_type",
                    "Input should be a valid string",
                ));
                None
            }
        }
    }

    /// An optional string field (absent or not a string: `None`, no issue).
    pub(crate) fn optional(&self, field: &str) -> Option<String> {
        match self.map.get(field) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A required email field, canonicalised: an issue when missing, too long or malformed.
    ///
    /// The raw value's length is capped before anything else is done with it; then it is
    /// canonicalised by [`crate::user::normalize_email`] (NFKC, lower case, IDNA for the
    /// domain), checked again for length and form (normalising may lengthen it, or turn a
    /// fullwidth `＜` into a `<`), and returned in its canonical form, so every route that
    /// takes an address (register, the request routes, email change) checks, stores and
    /// looks it up as the repository does: a fullwidth look-alike is the address it looks
    /// like.
    pub(crate) fn email(&mut self, field: &str) -> Option<String> {
        let raw = self.string(field)?;
        let raw = raw.trim();
        // Capped before normalising: four bytes a character is the most UTF-8 needs.
        if raw.len() > MAX_EMAIL * 4 || raw.chars().count() > MAX_EMAIL {
            self.issues
                .push(ValidationIssue::too_long(field, MAX_EMAIL));
            return None;
        }
        let email = crate::user::normalize_email(raw);
        if email.chars().count() > MAX_EMAIL {
            self.issues
                .push(ValidationIssue::too_long(field, MAX_EMAIL));
            return None;
        }
        if crate::user::valid_email(&email) {
            Some(email)
        } else {
            self.issues.push(ValidationIssue::body(
                field,
                "value_error",
                "value is not a valid email address",
            ));
            None
        }
    }

    /// A required field holding a JSON value of type `T` (a WebAuthn credential): an issue
    /// when missing or not of that shape.
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    pub(crate) fn value<T: serde::de::DeserializeOwned>(&mut self, field: &str) -> Option<T> {
        match self.map.get(field) {
            None | Some(Value::Null) => {
                self.issues.push(ValidationIssue::missing(field));
                None
            }
            Some(v) => match T::deserialize(v) {
                Ok(t) => Some(t),
                Err(_) => {
                    self.issues.push(ValidationIssue::body(
                        field,
                        "value_error",
                        "Input is not a valid value of this field",
                    ));
                    None
                }
            },
        }
    }

    /// Every field of the body (for the allow-listed extra fields of `/register`).
    pub(crate) fn all(&self) -> &Map<String, Value> {
        &self.map
    }

    /// Records an issue a route found (policy, length rules), to answer in the same 422.
    pub(crate) fn issues(&mut self) -> &mut Vec<ValidationIssue> {
        &mut self.issues
    }

    /// The value, or the 422 of every issue found.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, AuthError> {
        match value {
            Some(value) if self.issues.is_empty() => Ok(value),
            _ => Err(AuthError::Validation(self.issues)),
        }
    }
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
fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, AuthError> {
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
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(not_an_object()),
        Err(e) => Err(AuthError::Validation(vec![ValidationIssue {
            kind: "json_invalid",
            loc: vec!["body".into(), e.column().into()],
            msg: "JSON decode error".into(),
            ctx: Some(serde_json::json!({ "error": e.to_string() })),
        }])),
    }
}

/// RFC 5321's practical limit on an address.
pub(crate) const MAX_EMAIL: usize = 254;

/// The OAuth2 password form of `/login` and `/token` (`username`, `password`, optional
/// `scope`, and `grant_type`, which must be `password` when given).
pub(crate) struct LoginForm {
    pub username: String,
    pub password: String,
    pub scope: String,
}

impl BodyFields for LoginForm {
    const FORM: bool = true;

    fn read(fields: &mut Fields) -> Option<Self> {
        let username = fields.string("username");
        let password = fields.string("password");
        if let Some(grant) = fields.optional("grant_type")
            && grant != "password"
        {
            fields.issues().push(ValidationIssue::body(
                "grant_type",
                "string_pattern_mismatch",
                "String should match pattern '^password$'",
            ));
        }
        let scope = fields.optional("scope").unwrap_or_default();
        Some(LoginForm {
            username: username?,
            password: password?,
            scope,
        })
    }
}

/// Declares a JSON body of required fields (strings, or canonical addresses).
macro_rules! json_body {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $kind:ident),* $(,)? }) => {
        $(#[$doc])*
        pub(crate) struct $name {
            $(pub $field: String,)*
        }

        impl BodyFields for $name {
            fn read(fields: &mut Fields) -> Option<Self> {
                $(let $field = fields.$kind(stringify!($field));)*
                Some($name { $($field: $field?,)* })
            }
        }
    };
}

json_body!(
    /// `{token}`: the confirm routes.
    TokenBody { token: string }
);
#[cfg(feature = "oauth")]
json_body!(
    /// `{code, code_verifier}`: `/oauth/exchange`.
    ExchangeBody { code: string, code_verifier: string }
);
json_body!(
    /// `{password}`: `/sudo`.
    PasswordBody { password: string }
);
json_body!(
    /// `{new_password}`: `/set-password`.
    NewPasswordBody { new_password: string }
);
json_body!(
    /// `{token, new_password}`: `/password/reset-confirm`.
    ResetBody { token: string, new_password: string }
);
json_body!(
    /// `{email}`: the request routes.
    EmailBody { email: email }
);
json_body!(
    /// `{new_email, password}`: `/email/change-request`.
    ChangeEmailBody { new_email: email, password: string }
);

/// The refresh token in a JSON body (`{refresh_token}`), if it holds a non-empty one.
pub(crate) fn refresh_token(headers: &HeaderMap, body: &[u8]) -> Result<Option<String>, AuthError> {
    let fields = Fields::json(headers, body)?;
    Ok(fields.optional("refresh_token").filter(|t| !t.is_empty()))
}
