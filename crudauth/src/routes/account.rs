//! `/register`, `/me`, `/change-password`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{email_field, json_object, string_field, with_limit};
use crate::client_ip::ip_key;
use crate::error::{AuthError, ValidationIssue};
use crate::facade::{ClientMeta, CrudAuth};
use crate::hooks::UserEvent;
use crate::password::is_unusable_password;
use crate::policy::{PasswordContext, PasswordSource};
use crate::principal::Principal;
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
    let since = tokio::time::Instant::now();
    let map = json_object(&headers, &body)?;
    let schema = *auth.repo().schema();
    let mut issues = Vec::new();

    let email = email_field(&map, "email", &mut issues);
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
        let ctx = PasswordContext {
            source: PasswordSource::Register,
            username: username.map(str::to_owned),
            email: email.map(str::to_owned),
        };
        auth.check_password("password", password, &ctx, &mut issues)
            .await;
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
    new.password_hash = auth.hash_new_password(password, "password").await?;

    match auth.repo().create(new).await {
        Ok(user) => {
            // The hook runs after the answer, like the mails: whatever it does, its time
            // never tells a new address from a taken one.
            let (hook_auth, contract) = (auth.clone(), user.contract());
            let ctx = client.hook_context(None);
            auth.deliveries().spawn(async move {
                hook_auth
                    .hooks()
                    .fire(UserEvent::Registered, &contract, &ctx)
                    .await;
            });
            auth.send_verification_to(user);
        }
        // A taken email answers exactly like a new one: no enumeration. Its owner hears of
        // the attempt instead.
        Err(RepoError::Duplicate { field }) if field == "email" => {
            auth.send_existing_account_notice(email, &client);
        }
        Err(RepoError::Duplicate { field }) if field == "username" => {
            return Err(AuthError::Conflict("Username already taken"));
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
    let user = principal.user.as_ref();
    if let Some(new) = new {
        let ctx = PasswordContext::for_user(PasswordSource::Change, user);
        auth.check_password("new_password", new, &ctx, &mut issues)
            .await;
    }
    let (Some(current), Some(new), true) = (current, new, issues.is_empty()) else {
        return Err(AuthError::Validation(issues));
    };
    if is_unusable_password(user.password_hash().unwrap_or_default()) {
        return Err(AuthError::BadRequest(
            "Account has no password; use the set-password or reset flow.",
        ));
    }
    auth.check_current_password(
        &principal,
        current,
        &client,
        AuthError::Unauthorized("Current password is incorrect."),
    )
    .await?;
    let hash = auth.hash_new_password(new, "new_password").await?;
    auth.replace_password(user, &hash, principal.session_handle.as_deref())
        .await?;
    let ctx = client.hook_context(Some(principal.via.as_str()));
    let contract = auth.reload(user).await.contract();
    auth.hooks()
        .fire(UserEvent::PasswordChanged, &contract, &ctx)
        .await;
    Ok(with_limit(
        Json(json!({ "detail": "Password changed." })).into_response(),
        allowed,
    ))
}
