//! `/register`, `/me`, `/change-password`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::with_limit;
use crate::body::Fields;
use crate::captcha::CaptchaAction;
use crate::client_ip::{ClientMeta, ip_key};
use crate::error::{AuthError, ValidationIssue};
use crate::facade::CrudAuth;
use crate::hooks::Event;
use crate::policy::{PasswordContext, PasswordSource};
use crate::principal::Principal;
use crate::store::repo_fault;
use crate::transport::session::set_session_cookie;
use crate::user::{LogicalField, NewUser, RepoError, UserRecord};

const REGISTERED: &str = "If the email is available, check your inbox to finish signing up.";

fn repo_error(e: RepoError) -> AuthError {
    match e {
        RepoError::TooLong { field, max } => {
            AuthError::Validation(vec![ValidationIssue::too_long(&field, max)])
        }
        RepoError::InvalidValue { field, reason } => {
            AuthError::Validation(vec![ValidationIssue::body(&field, "value_error", reason)])
        }
        RepoError::Duplicate { .. } => AuthError::Taken("Already taken"),
        RepoError::NotFound => AuthError::NotAuthenticated,
        e @ RepoError::Backend(_) => repo_fault(e),
    }
}

/// The longest username `/register` accepts at all, checked before anything else is done
/// with the body (a `String` column without a length is 255 characters on every backend;
/// a narrower column is still enforced by the repository).
const MAX_USERNAME: usize = 255;

/// The longest value an allow-listed extra field may carry into `/register` (a string's
/// characters, or the JSON text of any other value), checked before hashing; the column's
/// own limit is still enforced by the repository.
const MAX_EXTRA: usize = 4096;

/// `POST /register`.
///
/// Checks run in this order: every field's presence, type and length (nothing is
/// normalised, policy-checked or hashed for a body with an over-long value); the address's
/// canonical form (NFKC, IDNA domain: the form it is stored and looked up in) and the
/// username's characters (no controls, no invisible format characters such as
/// bidirectional overrides); a disposable address (when blocked); the password policy; the
/// rate limit; the CAPTCHA (when asked); the hash; the insert.
pub(crate) async fn register<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let since = tokio::time::Instant::now();
    let mut fields = Fields::json(&headers, &body)?;
    let schema = *auth.repo().schema();

    let email = fields.email("email");
    // A disposable address is the email field's 422 entry, listed with the body's other
    // issues, before any account is looked up.
    if let Some(issue) = email
        .as_deref()
        .and_then(|e| auth.core().disposable.as_ref()?.issue("email", e))
    {
        fields.issues().push(issue);
    }
    let username = if schema.has(LogicalField::Username) {
        match fields.string("username") {
            Some(name) if name.len() > MAX_USERNAME * 4 || name.chars().count() > MAX_USERNAME => {
                fields
                    .issues()
                    .push(ValidationIssue::too_long("username", MAX_USERNAME));
                None
            }
            Some(name) => {
                if name.trim().is_empty()
                    || name.chars().any(char::is_control)
                    || name != name.trim()
                {
                    fields.issues().push(ValidationIssue::body(
                        "username",
                        "value_error",
                        "Username must be non-empty, without surrounding spaces or control characters",
                    ));
                }
                if name.chars().any(crate::user::is_format_char) {
                    fields.issues().push(ValidationIssue::body(
                        "username",
                        "value_error",
                        "Username must not contain invisible formatting characters",
                    ));
                }
                Some(name)
            }
            None => None,
        }
    } else {
        None
    };
    for key in &auth.core().register_extra_fields {
        let too_long = match fields.all().get(key) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(v)) => {
                v.len() > MAX_EXTRA * 4 || v.chars().count() > MAX_EXTRA
            }
            Some(other) => other.to_string().len() > MAX_EXTRA,
        };
        if too_long {
            fields
                .issues()
                .push(ValidationIssue::too_long(key, MAX_EXTRA));
        }
    }
    let password = fields.string("password");
    // The policy (and its validators, which may be costly) only for a body whose every
    // field is within its length; the policy reports a password over the cap itself.
    let oversized = fields.issues().iter().any(|i| i.kind == "string_too_long");
    if let Some(password) = &password
        && !oversized
    {
        let ctx = PasswordContext {
            source: PasswordSource::Register,
            username: username.clone(),
            email: email.clone(),
        };
        auth.login()
            .check_password("password", password, &ctx, fields.issues())
            .await;
    }
    // Only allow-listed own columns; privileged and unknown fields are dropped silently.
    let extra: Vec<(String, serde_json::Value)> = fields
        .all()
        .iter()
        .filter(|(key, _)| auth.core().register_extra_fields.contains(*key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let (email, password) = fields.finish(email.zip(password))?;

    // Counted after validation (as the original), before any hashing.
    let allowed = auth
        .rate_limiter()
        .enforce("register", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    // The CAPTCHA after the limit (which bounds the calls to the verifier), before the
    // hash and the insert. Its body field is read here only: it is no allow-listed column.
    auth.core()
        .check_captcha(CaptchaAction::Register, &client, &headers, &body)
        .await?;

    let mut new = NewUser::new(String::new()).email(&email);
    new.username = username;
    new.extra.extend(extra);
    // Hash before the uniqueness check, so a taken email costs the same work as a new one.
    new.password_hash = auth
        .login()
        .hash_new_password(&password, "password")
        .await?;
    // The app's veto, after validation and before anything is written; asked for a taken
    // address as for a new one, so its answer tells nothing about existing accounts.
    let ctx = client.hook_context(None);
    if let Err(veto) = auth.core().hooks.before_register(&new, &ctx).await {
        let loc = match veto.field() {
            Some(field) => vec!["body".into(), field.into()],
            None => vec!["body".into()],
        };
        return Err(AuthError::Validation(vec![ValidationIssue {
            kind: "value_error",
            loc,
            msg: veto.message().to_owned(),
            ctx: None,
        }]));
    }

    match auth.repo().create(new).await {
        Ok(user) => {
            // The hook runs after the answer, like the mails: whatever it does, its time
            // never tells a new address from a taken one.
            let core = auth.core().clone();
            let registered = std::sync::Arc::new(user.clone());
            core.background.clone().spawn(async move {
                core.hooks
                    .fire_user(Event::AfterRegister, registered, &ctx)
                    .await;
            });
            if let Some(recovery) = auth.recovery() {
                recovery.send_verification_to(user);
            }
        }
        // A taken email answers exactly like a new one: no enumeration. Its owner hears of
        // the attempt instead.
        Err(RepoError::Duplicate { field }) if field == "email" => {
            if let Some(recovery) = auth.recovery() {
                recovery.send_existing_account_notice(&email, &client);
            }
        }
        Err(RepoError::Duplicate { field }) if field == "username" => {
            return Err(AuthError::Taken("Username already taken"));
        }
        Err(e) => return Err(repo_error(e)),
    }
    // The verification mail (or the notice) leaves in the background. With email flows on,
    // the answer comes no sooner than `answer_after` from the start, which also hides the
    // difference between an insert and a refused duplicate when the hash is fast.
    super::recovery::answer_at(&auth, since).await;
    Ok(with_limit(
        (StatusCode::ACCEPTED, Json(json!({ "detail": REGISTERED }))).into_response(),
        allowed,
    ))
}

/// `GET /me`: answered `Cache-Control: no-store` (it shows the account's address).
pub(crate) async fn me<U: UserRecord>(principal: Principal<U>) -> Response {
    let user = &principal.user;
    let mut body = json!({
        "user_id": principal.user_id,
        "username": user.username(),
        "email": user.email(),
        "is_superuser": principal.is_superuser,
        "scopes": principal.scopes,
        "via": principal.via.as_str(),
    });
    // Only present for an impersonation (the 0.8 shape is unchanged otherwise).
    if let Some(admin) = &principal.impersonated_by {
        body["impersonated_by"] = json!(admin);
    }
    super::private_json(body)
}

/// `POST /change-password`: every earlier token and every other session ends; the current
/// session (if the request rode one) lives on under a new id, set as its cookie.
pub(crate) async fn change_password<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    principal.refuse_delegated()?;
    // Per user, counted before the body is checked (as the original).
    let allowed = auth
        .rate_limiter()
        .enforce("change_password", &format!("user:{}", principal.user_id))
        .await?;
    let mut fields = Fields::json(&headers, &body)?;
    let current = fields.string("current_password");
    let new = fields.string("new_password");
    if let Some(new) = &new {
        let ctx = PasswordContext::for_user(PasswordSource::Change, principal.user.as_ref());
        auth.login()
            .check_password("new_password", new, &ctx, fields.issues())
            .await;
    }
    let (current, new) = fields.finish(current.zip(new))?;
    let moved = auth
        .login()
        .change_password(&principal, &current, &new, &client)
        .await?;
    let mut response = Json(json!({ "detail": "Password changed." })).into_response();
    if let (Some(moved), Some(sessions)) = (moved, auth.sessions()) {
        set_session_cookie(sessions, &moved.id, &mut response);
    }
    Ok(with_limit(response, allowed))
}
