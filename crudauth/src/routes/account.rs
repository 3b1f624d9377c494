//! `/register`, `/me`, `/change-password`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{json_object, string_field, with_limit};
use crate::client_ip::ip_key;
use crate::error::{AuthError, ValidationIssue};
use crate::facade::{ClientMeta, CrudAuth};
use crate::hooks::UserEvent;
use crate::password::is_unusable_password;
use crate::principal::Principal;
use crate::user::{LogicalField, NewUser, RepoError, UserRecord};

const REGISTERED: &str = "If the email is available, check your inbox to finish signing up.";
/// RFC 5321's practical limit on an address.
const MAX_EMAIL: usize = 254;

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces or
/// control characters. Deliverability is proven by the verification flow, not here.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The password policy of this issue: a minimum and a maximum length (NFKC characters).
pub(crate) fn check_password<U: UserRecord>(
    auth: &CrudAuth<U>,
    field: &str,
    password: &str,
    issues: &mut Vec<ValidationIssue>,
) {
    let Some(normalized) = auth.passwords().normalize(password) else {
        issues.push(ValidationIssue::too_long(
            field,
            auth.passwords().max_length(),
        ));
        return;
    };
    let min = auth.min_password_length();
    if normalized.chars().count() < min {
        issues.push(ValidationIssue::too_short(field, min));
    }
}

fn repo_error(e: RepoError) -> AuthError {
    match e {
        RepoError::TooLong { field, max } => {
            AuthError::Validation(vec![ValidationIssue::too_long(&field, max)])
        }
        RepoError::InvalidValue { field, reason } => {
            AuthError::Validation(vec![ValidationIssue::body(&field, "value_error", reason)])
        }
        RepoError::Duplicate { .. } => AuthError::Conflict("Already taken"),
        RepoError::NotFound => AuthError::NotAuthenticated,
        RepoError::Backend(cause) => {
            crate::store::report_fault("user repository", &cause);
            AuthError::Unavailable
        }
    }
}

/// `POST /register`.
pub(crate) async fn register<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let map = json_object(&headers, &body)?;
    let schema = *auth.repo().schema();
    let mut issues = Vec::new();

    let email = string_field(&map, "email", &mut issues).map(str::trim);
    if let Some(email) = email {
        if email.chars().count() > MAX_EMAIL {
            issues.push(ValidationIssue::too_long("email", MAX_EMAIL));
        } else if !valid_email(email) {
            issues.push(ValidationIssue::body(
                "email",
                "value_error",
                "value is not a valid email address",
            ));
        }
    }
    let username = if schema.has(LogicalField::Username) {
        let username = string_field(&map, "username", &mut issues);
        if let Some(name) = username
            && (name.trim().is_empty() || name.chars().any(char::is_control) || name != name.trim())
        {
            issues.push(ValidationIssue::body(
                "username",
                "value_error",
                "Username must be non-empty, without surrounding spaces or control characters",
            ));
        }
        username
    } else {
        None
    };
    let password = string_field(&map, "password", &mut issues);
    if let Some(password) = password {
        check_password(&auth, "password", password, &mut issues);
    }
    if !issues.is_empty() {
        return Err(AuthError::Validation(issues));
    }
    let (Some(email), Some(password)) = (email, password) else {
        return Err(AuthError::Validation(issues));
    };

    // Counted after validation (as the original), before any hashing.
    let allowed = auth
        .rate_limiter()
        .enforce("register", &format!("ip:{}", ip_key(client.ip)))
        .await?;

    // Only allow-listed own columns; privileged and unknown fields are dropped silently.
    let mut new = NewUser::new(String::new()).email(email);
    new.username = username.map(str::to_owned);
    for (key, value) in &map {
        if auth.register_extra_fields().contains(key) {
            new.extra.insert(key.clone(), value.clone());
        }
    }
    // Hash before the uniqueness check, so a taken email costs the same work as a new one.
    new.password_hash = auth.passwords().hash(password).await.map_err(|_| {
        AuthError::Validation(vec![ValidationIssue::too_long(
            "password",
            auth.passwords().max_length(),
        )])
    })?;

    match auth.repo().create(new).await {
        Ok(user) => {
            let ctx = client.hook_context(None);
            auth.hooks()
                .fire(UserEvent::Registered, &user.contract(), &ctx)
                .await;
        }
        // A taken email answers exactly like a new one: no enumeration.
        Err(RepoError::Duplicate { field }) if field == "email" => {}
        Err(RepoError::Duplicate { field }) if field == "username" => {
            return Err(AuthError::Conflict("Username already taken"));
        }
        Err(e) => return Err(repo_error(e)),
    }
    Ok(with_limit(
        (StatusCode::ACCEPTED, Json(json!({ "detail": REGISTERED }))).into_response(),
        allowed,
    ))
}

/// `GET /me`.
pub(crate) async fn me<U: UserRecord>(principal: Principal<U>) -> Json<serde_json::Value> {
    let user = &principal.user;
    Json(json!({
        "user_id": principal.user_id,
        "username": user.username(),
        "email": user.email(),
        "is_superuser": principal.is_superuser,
        "scopes": principal.scopes,
        "via": principal.via.as_str(),
    }))
}

/// `POST /change-password`: every earlier token and every other session ends.
pub(crate) async fn change_password<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    // Per user, counted before the body is checked (as the original).
    let allowed = auth
        .rate_limiter()
        .enforce("change_password", &format!("user:{}", principal.user_id))
        .await?;
    let map = json_object(&headers, &body)?;
    let mut issues = Vec::new();
    let current = string_field(&map, "current_password", &mut issues);
    let new = string_field(&map, "new_password", &mut issues);
    if let Some(new) = new {
        check_password(&auth, "new_password", new, &mut issues);
    }
    let (Some(current), Some(new), true) = (current, new, issues.is_empty()) else {
        return Err(AuthError::Validation(issues));
    };
    let user = &principal.user;
    let stored = user.password_hash().unwrap_or_default();
    if is_unusable_password(stored) {
        return Err(AuthError::BadRequest(
            "Account has no password; use the set-password or reset flow.",
        ));
    }
    // The current password is a password path like /login: it shares the escalating
    // lockout, keyed by this client and this account, so a stolen session or token is no
    // unthrottled password oracle.
    let id = principal.user_id.clone();
    let attempt = auth
        .lockout()
        .check_and_count(&ip_key(client.ip), &format!("\u{0}uid:{id}"))
        .await?;
    if !auth.passwords().verify(current, Some(stored)).await.matched {
        return Err(AuthError::Unauthorized("Current password is incorrect."));
    }
    auth.lockout().succeeded(attempt).await;
    let hash = auth.passwords().hash(new).await.map_err(|_| {
        AuthError::Validation(vec![ValidationIssue::too_long(
            "new_password",
            auth.passwords().max_length(),
        )])
    })?;
    // Revoke first, then write: if the write fails, old sessions and tokens are already
    // dead (safe); never a new password with the old credentials still alive.
    let ver = auth.bump_epoch(user).await?;
    auth.repo()
        .set_password_hash(&id, &hash)
        .await
        .map_err(repo_error)?;
    if let Some(sessions) = auth.sessions() {
        let uid = id.to_string();
        let keep = principal.session_handle.as_deref();
        sessions.revoke_all(&uid, keep).await?;
        // The session that made the change lives on, bound to the new epoch (if it changed
        // concurrently, it simply ends: the safe outcome).
        if let Some(handle) = keep
            && let Some(live) = sessions.load(handle).await?
        {
            let mut record = live.record.clone();
            record.ver = ver;
            if sessions.update(&live, &record).await.is_err() {
                tracing::info!("session changed during a password change; it ends");
            }
        }
    }
    let ctx = client.hook_context(Some(principal.via.as_str()));
    let contract = auth
        .repo()
        .find_by_id(&id)
        .await
        .ok()
        .flatten()
        .map_or_else(|| user.contract(), |u| u.contract());
    auth.hooks()
        .fire(UserEvent::PasswordChanged, &contract, &ctx)
        .await;
    Ok(with_limit(
        Json(json!({ "detail": "Password changed." })).into_response(),
        allowed,
    ))
}
