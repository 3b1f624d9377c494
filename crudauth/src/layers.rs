//! Route layers: [`CrudAuth::require`] (authenticate once and apply a [`Gate`]) and
//! [`CrudAuth::rate_limit`] (limit an action of the app's own), each returning a named
//! layer type.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{FromFnLayer, Next};
use axum::response::{IntoResponse, Response};

use crate::client_ip::ip_key;
use crate::error::{AuthError, ConfigError};
use crate::extract::Resolved;
use crate::facade::CrudAuth;
use crate::principal::Gate;
use crate::ratelimit::{Decision, KeyBy, RateLimit};
use crate::user::{LogicalField, UserRecord};

type Middleware<T> = fn(State<T>, Request, Next) -> Pin<Box<dyn Future<Output = Response> + Send>>;

/// The state of a [`RequireLayer`].
pub type GateState<U> = (CrudAuth<U>, Arc<Gate<U>>);

/// The layer [`CrudAuth::require`] returns.
pub type RequireLayer<U> =
    FromFnLayer<Middleware<GateState<U>>, GateState<U>, (State<GateState<U>>, Request)>;

/// What a [`RateLimitLayer`] limits: the action, its limit and what it is keyed by.
pub type LimitSpec = Arc<(String, RateLimit, KeyBy)>;

/// The state of a [`RateLimitLayer`].
pub type LimitState<U> = (CrudAuth<U>, LimitSpec);

/// The layer [`CrudAuth::rate_limit`] returns.
pub type RateLimitLayer<U> =
    FromFnLayer<Middleware<LimitState<U>>, LimitState<U>, (State<LimitState<U>>, Request)>;

impl<U: UserRecord> CrudAuth<U> {
    /// A route layer that authenticates once and applies a [`Gate`]; handlers behind it can
    /// still take [`crate::Principal`] at no extra cost. Refuses a gate that cannot hold (a
    /// verified gate on a table without `email_verified`, a transport that is not
    /// configured).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use tower::ServiceExt; // `oneshot`: one request, no server
    /// use axum::{Router, routing::get};
    /// let reports: Router = Router::new()
    ///     .route("/reports", get(|| async { "..." }))
    ///     .route_layer(auth.require(crudauth::Gate::new().scopes(["reports:read"]))?);
    /// # let request = crudauth::doc_fixture::signed_in_request(&auth, "ann", axum::http::Method::GET, "/reports").await?;
    /// let response = reports.oneshot(request).await?;
    /// assert_eq!(response.status(), 403); // a session grants no scopes
    /// # Ok(()) });
    /// ```
    pub fn require(&self, gate: Gate<U>) -> Result<RequireLayer<U>, ConfigError> {
        if gate.verified && !self.repo().schema().has(LogicalField::EmailVerified) {
            return Err(ConfigError::Invalid(
                "a verified gate needs an email_verified column on the user table".into(),
            ));
        }
        if let Some(via) = gate.transport
            && !self.core().transports.contains(&via)
        {
            return Err(ConfigError::Invalid(format!(
                "gate names the {} transport, which is not configured",
                via.as_str()
            )));
        }
        let f: Middleware<GateState<U>> = |State((auth, gate)), request, next| {
            Box::pin(gate_middleware(auth, gate, request, next))
        };
        Ok(axum::middleware::from_fn_with_state(
            (self.clone(), Arc::new(gate)),
            f,
        ))
    }

    /// A route layer limiting an action of the application's own, keyed by IP, user, or
    /// user-or-IP; refused requests get `429` with `Retry-After`, allowed ones the
    /// rate-limit headers. `limit` of [`RateLimit::OFF`] is a no-op.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use std::time::Duration;
    /// use axum::{Router, body::Body, http::Request, routing::post};
    /// use tower::ServiceExt; // `oneshot`: one request, no server
    /// let app: Router = Router::new()
    ///     .route("/export", post(|| async { "..." }))
    ///     .route_layer(auth.rate_limit("export", crudauth::RateLimit::new(1, Duration::from_secs(3600)), crudauth::KeyBy::UserOrIp));
    /// let export = || Request::post("/export").body(Body::empty());
    /// assert_eq!(app.clone().oneshot(export()?).await?.status(), 200);
    /// assert_eq!(app.oneshot(export()?).await?.status(), 429); // one an hour
    /// # Ok(()) });
    /// ```
    pub fn rate_limit(&self, action: &str, limit: RateLimit, key: KeyBy) -> RateLimitLayer<U> {
        let f: Middleware<LimitState<U>> = |State((auth, spec)), request, next| {
            Box::pin(rate_limit_middleware(auth, spec, request, next))
        };
        axum::middleware::from_fn_with_state(
            (self.clone(), Arc::new((action.to_owned(), limit, key))),
            f,
        )
    }
}

async fn gate_middleware<U: UserRecord>(
    auth: CrudAuth<U>,
    gate: Arc<Gate<U>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let outcome = auth.authenticate(&parts, gate.transport).await;
    let principal = match &outcome {
        Ok(Some(p)) => p.clone(),
        Ok(None) => return AuthError::NotAuthenticated.into_response(),
        Err(e) => return e.clone().into_response(),
    };
    let requested = match &gate.tenant {
        Some(from) => from.read(&mut parts).await,
        None => None,
    };
    let tenancy = &auth.core().tenancy;
    if let Err(e) = gate.apply(&principal, requested.as_deref(), |t, f| {
        tenancy.has_feature(t, f)
    }) {
        return e.into_response();
    }
    parts.extensions.insert(Resolved(outcome));
    next.run(Request::from_parts(parts, body)).await
}

async fn rate_limit_middleware<U: UserRecord>(
    auth: CrudAuth<U>,
    spec: LimitSpec,
    request: Request,
    next: Next,
) -> Response {
    let (action, limit, key) = (&spec.0, spec.1, spec.2);
    let (mut parts, body) = request.into_parts();
    let ip = format!("ip:{}", ip_key(auth.client_meta(&parts).ip));
    let identity = match key {
        KeyBy::Ip => ip,
        KeyBy::User | KeyBy::UserOrIp => {
            // The same once-per-request authentication the extractors use.
            let outcome = crate::extract::resolve(&mut parts, &auth).await;
            match (outcome, key) {
                (Err(e), _) => return e.into_response(),
                (Ok(Some(p)), _) => format!("user:{}", p.user_id),
                (Ok(None), KeyBy::UserOrIp) => ip,
                (Ok(None), _) => return AuthError::NotAuthenticated.into_response(),
            }
        }
    };
    match auth.rate_limiter().check(action, limit, &identity).await {
        Err(e) => e.into_response(),
        Ok(Decision::Limited(limited)) => limited.into_response(),
        Ok(Decision::Allowed(allowed)) => {
            let mut response = next.run(Request::from_parts(parts, body)).await;
            if let Some(allowed) = allowed {
                allowed.write_headers(response.headers_mut());
            }
            response
        }
    }
}
