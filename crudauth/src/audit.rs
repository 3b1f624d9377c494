//! The audit log: every auth event is one `tracing` event, target `crudauth::audit`.
//!
//! Each event carries the same structured fields: `event` (a stable snake_case name),
//! `outcome` (`success`, `failure` or `refused`), and when known `user_id`, `transport`
//! (`session`, `bearer`, `api_key`), `client_ip`, `reason` (for a failure), `actor_id`
//! (the superuser, for an impersonation or a key made for someone else) and `credential_id`
//! (the public id of the API key or passkey acted on) and `provider` (an OAuth provider's name). Successes are logged at INFO, failures and
//! refusals at WARN. No field ever holds a secret: ids only, never a password, token, code,
//! cookie, key or query string.
//!
//! Most events are emitted by the hook dispatcher ([`crate::hooks`]), which knows the event,
//! the user and the request's context, whether or not a hook is registered; the others
//! (refresh, reuse, API keys, session revocation) are emitted where they happen.

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It happened.
    Success,
    /// It was attempted and failed (bad credentials, a wrong code).
    Failure,
    /// It was refused by a rule (lockout, disabled account, reuse of a spent token).
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Refused => "refused",
        }
    }
}

/// One auth event, as it is logged. Every field but `event` and `outcome` is optional.
#[derive(Clone, Debug)]
pub(crate) struct AuditEvent<'a> {
    pub event: &'static str,
    pub outcome: Outcome,
    pub user_id: Option<String>,
    pub transport: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub actor_id: Option<String>,
    pub credential_id: Option<String>,
    pub provider: Option<&'a str>,
}

impl AuditEvent<'static> {
    /// An event with only its name and outcome.
    pub(crate) fn new(event: &'static str, outcome: Outcome) -> Self {
        AuditEvent {
            event,
            outcome,
            user_id: None,
            transport: None,
            client_ip: None,
            reason: None,
            actor_id: None,
            credential_id: None,
            provider: None,
        }
    }
}

/// Logs one auth event: INFO for a success, WARN for a failure or refusal.
pub(crate) fn emit(e: &AuditEvent<'_>) {
    let outcome = e.outcome.as_str();
    let user_id = e.user_id.as_deref();
    match e.outcome {
        Outcome::Success => tracing::info!(
            target: "crudauth::audit",
            event = e.event,
            outcome,
            user_id,
            transport = e.transport,
            client_ip = e.client_ip,
            reason = e.reason,
            actor_id = e.actor_id.as_deref(),
            credential_id = e.credential_id.as_deref(),
            provider = e.provider,
            "auth event"
        ),
        Outcome::Failure | Outcome::Refused => tracing::warn!(
            target: "crudauth::audit",
            event = e.event,
            outcome,
            user_id,
            transport = e.transport,
            client_ip = e.client_ip,
            reason = e.reason,
            actor_id = e.actor_id.as_deref(),
            credential_id = e.credential_id.as_deref(),
            provider = e.provider,
            "auth event"
        ),
    }
}

/// Logs an event about one user, with its outcome and (for a failure) its reason.
pub(crate) fn user_event(
    event: &'static str,
    outcome: Outcome,
    user_id: &dyn std::fmt::Display,
    transport: Option<&str>,
    reason: Option<&str>,
) {
    emit(&AuditEvent {
        user_id: Some(user_id.to_string()),
        transport,
        reason,
        ..AuditEvent::new(event, outcome)
    });
}

/// Logs a cheap, frequent event (an API key used on a request) at DEBUG.
#[cfg(feature = "api-keys")]
pub(crate) fn emit_debug(e: &AuditEvent<'_>) {
    tracing::debug!(
        target: "crudauth::audit",
        event = e.event,
        outcome = e.outcome.as_str(),
        user_id = e.user_id.as_deref(),
        transport = e.transport,
        client_ip = e.client_ip,
        credential_id = e.credential_id.as_deref(),
        "auth event"
    );
}

/// The span every request to the library's routes runs in: the method and the matched route
/// template (never the raw path, which may carry a token, nor the query string).
pub(crate) async fn request_span(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let span = tracing::info_span!(
        target: "crudauth::audit",
        "request",
        method = %request.method(),
        route = route.as_deref().unwrap_or("unmatched"),
    );
    next.run(request).instrument(span).await
}
