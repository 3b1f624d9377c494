//! The default routes, wire-compatible with crudauth 0.8.

mod account;
#[cfg(feature = "api-keys")]
mod api_key;
mod bearer;
#[cfg(feature = "device-login")]
mod device_login;
#[cfg(feature = "admin")]
mod impersonation;
#[cfg(feature = "mfa")]
mod mfa;
#[cfg(feature = "oauth")]
mod oauth;
#[cfg(feature = "passkeys")]
mod passkey;
#[cfg(feature = "passwordless")]
mod passwordless;
mod recovery;
mod session;
#[cfg(any(feature = "passkeys", feature = "passwordless"))]
mod signin;
#[cfg(feature = "admin")]
mod users;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::facade::CrudAuth;
use crate::transport::session::no_store;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// Every route of the configured transports: `/register`, `/me`, `/change-password`,
    /// `/set-password`, the session routes (`/login`, `/logout`, `/logout-all`, `/sessions`,
    /// `DELETE /sessions/{id}`, `/csrf/refresh`, `/sudo`), the bearer routes (`/token`,
    /// `/refresh`, `GET /tokens`, `DELETE /tokens/{id}`, `/logout` when there is no
    /// session transport, and `GET /.well-known/jwks.json` when the key set has a key pair) and, with a [`crate::RecoveryConfig`], the email flows
    /// (`/email/verify-request`, `/email/verify-confirm`, `/password/reset-request`,
    /// `/password/reset-confirm`, `/email/change-request`, `/email/change-confirm`).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use tower::ServiceExt; // `oneshot`: one request, no server
    /// let app: axum::Router = axum::Router::new().merge(auth.router());
    /// let request = axum::http::Request::get("/me").body(axum::body::Body::empty())?;
    /// let response = app.oneshot(request).await?;
    /// assert_eq!(response.status(), 401); // nobody signed in
    /// # Ok(()) });
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
        #[cfg(feature = "oauth")]
        {
            router = router.merge(self.oauth_routes());
        }
        #[cfg(feature = "mfa")]
        {
            router = router.merge(self.mfa_routes());
        }
        #[cfg(feature = "passkeys")]
        {
            router = router.merge(self.passkey_routes());
        }
        #[cfg(feature = "passwordless")]
        {
            router = router.merge(self.passwordless_routes());
        }
        #[cfg(feature = "api-keys")]
        {
            router = router.merge(self.api_key_routes());
        }
        #[cfg(feature = "admin")]
        {
            router = router.merge(self.impersonation_routes());
        }
        #[cfg(feature = "device-login")]
        {
            router = router.merge(self.device_login_routes());
        }
        #[cfg(feature = "admin")]
        {
            router = router.merge(self.users_routes());
        }
        limited(router).with_state(self.clone())
    }

    /// The session transport's routes only (empty without a session transport).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use tower::ServiceExt; // `oneshot`: one request, no server
    /// let app: axum::Router = auth.session_router();
    /// let request = axum::http::Request::get("/sessions").body(axum::body::Body::empty())?;
    /// let response = app.oneshot(request).await?;
    /// assert_eq!(response.status(), 401);
    /// # Ok(()) });
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
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use tower::ServiceExt; // `oneshot`: one request, no server
    /// let app: axum::Router = auth.bearer_router();
    /// let request = axum::http::Request::get("/tokens").body(axum::body::Body::empty())?;
    /// let response = app.oneshot(request).await?;
    /// assert_eq!(response.status(), 401);
    /// # Ok(()) });
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
        if recovery.verifies() {
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
        if self.core().deliveries.sends_email() {
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
        // The public keys, when the key set has a key pair (not with HS256 only).
        let router = if self.tokens().is_some_and(|t| t.jwks().is_some()) {
            router.route("/.well-known/jwks.json", get(bearer::jwks::<U>))
        } else {
            router
        };
        if self.sessions().is_some() {
            router // the session routes' `/logout` also ends a presented refresh family
        } else {
            router.route("/logout", post(bearer::logout::<U>))
        }
    }
}

/// How a password sign-in began (what its second factor, if any, completes).
pub(crate) enum Start {
    /// `/login`.
    Session,
    /// `/token`, with the scopes asked for (kept for the second factor's completion).
    Bearer(#[cfg_attr(not(feature = "mfa"), allow(dead_code))] Vec<String>),
}

/// A password sign-in: done, or waiting for its second factor (the challenge answer).
pub(crate) enum SignIn<U> {
    Done(crate::login::VerifiedUser<U>),
    #[cfg_attr(not(feature = "mfa"), allow(dead_code))]
    Challenged(axum::response::Response),
}

#[cfg(feature = "mfa")]
use mfa::password_sign_in;

/// Without the `mfa` feature a password sign-in is always done at once.
#[cfg(not(feature = "mfa"))]
async fn password_sign_in<U: UserRecord>(
    auth: &CrudAuth<U>,
    identifier: &str,
    password: &str,
    client: &crate::client_ip::ClientMeta,
    _headers: &axum::http::HeaderMap,
    start: Start,
) -> Result<SignIn<U>, crate::error::AuthError> {
    let transport = match start {
        Start::Session => "session",
        Start::Bearer(_) => "bearer",
    };
    let verified = auth
        .authenticate_password(identifier, password, client, transport)
        .await?;
    Ok(SignIn::Done(verified))
}

/// The largest request body the library's routes read (64 KiB; every form and JSON body
/// they take is a few hundred bytes). A larger one is refused with `413` before it is
/// buffered, instead of axum's 2 MB default.
pub const BODY_LIMIT: usize = 64 * 1024;

fn limited<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(axum::middleware::from_fn(crate::audit::request_span))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

/// A JSON answer that carries a credential or personal data: never cached.
pub(crate) fn private_json<T: serde::Serialize>(body: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    response
}

/// Login CSRF: a cross-site request must not finish a sign-in that sets cookies (a
/// session's when `session`, or any with the refresh token in a cookie); checked before
/// an attempt is counted or a credential spent.
#[cfg_attr(
    not(any(feature = "mfa", feature = "passkeys", feature = "passwordless")),
    allow(dead_code)
)]
pub(crate) fn refuse_cross_site_sign_in<U: UserRecord>(
    auth: &CrudAuth<U>,
    headers: &axum::http::HeaderMap,
    session: bool,
) -> Result<(), crate::error::AuthError> {
    let sets_cookies = session
        || auth
            .tokens()
            .is_some_and(|t| t.config().refresh == crate::tokens::RefreshMode::Cookie);
    if sets_cookies && crate::transport::session::is_cross_site(headers) {
        return Err(crate::error::AuthError::Forbidden(
            "Cross-site login requests are not allowed.",
        ));
    }
    Ok(())
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
