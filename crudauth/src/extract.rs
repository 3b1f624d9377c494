//! The extractors: [`Principal`], `Option<Principal>`, [`Superuser`], [`RequireSudo`] and
//! [`ClientMeta`], for any state `S` where `CrudAuth<U>: FromRef<S>` (the app's own state,
//! or the `CrudAuth` itself).
//!
//! Authentication happens once per request, however many extractors, gates and rate-limit
//! layers ask: the outcome is cached in the request's extensions.
//!
//! ```
//! use axum::{Router, extract::FromRef, routing::get};
//! use crudauth::{ClientMeta, CrudAuth, Principal, extract::TrustedHops};
//! use tower::ServiceExt; // `oneshot`: one request, no server
//! # use crudauth::doc_fixture::User;
//!
//! #[derive(Clone)]
//! struct AppState { auth: CrudAuth<User>, greeting: String }
//!
//! impl FromRef<AppState> for CrudAuth<User> {
//!     fn from_ref(state: &AppState) -> Self { state.auth.clone() }
//! }
//! impl FromRef<AppState> for TrustedHops {
//!     fn from_ref(state: &AppState) -> Self { TrustedHops::from_ref(&state.auth) }
//! }
//!
//! async fn hello(p: Principal<User>, client: ClientMeta) -> String {
//!     format!("{} from {:?}", p.user_id, client.ip)
//! }
//! # crudauth::doc_fixture::run(async |auth| {
//! let state = AppState { auth: auth.clone(), greeting: "hello".into() };
//! let app: Router = Router::new().route("/hello", get(hello)).with_state(state);
//! # let request = crudauth::doc_fixture::signed_in_request(&auth, "ann", axum::http::Method::GET, "/hello").await?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) });
//! ```

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::principal::{Principal, RequireSudo, Superuser};
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The client of a request (see [`ClientMeta::from_parts`]), with the configured
    /// `trusted_proxy_hops`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let parts = crudauth::doc_fixture::parts();
    /// let client = auth.client_meta(&parts);
    /// assert_eq!(client.ip, Some([203, 0, 113, 7].into()));
    /// # Ok(()) });
    /// ```
    pub fn client_meta(&self, parts: &Parts) -> ClientMeta {
        ClientMeta::from_parts(parts, self.inner.core.trusted_proxy_hops)
    }
}

/// The per-request cache of the authentication outcome.
#[derive(Clone)]
pub(crate) struct Resolved<U>(pub Result<Option<Principal<U>>, AuthError>);

/// Authenticates once per request, reusing the cached outcome.
pub(crate) async fn resolve<U: UserRecord>(
    parts: &mut Parts,
    auth: &CrudAuth<U>,
) -> Result<Option<Principal<U>>, AuthError> {
    if let Some(Resolved(cached)) = parts.extensions.get::<Resolved<U>>() {
        return cached.clone();
    }
    let outcome = auth.authenticate(parts, None).await;
    parts.extensions.insert(Resolved(outcome.clone()));
    outcome
}

impl<S, U> FromRequestParts<S> for Principal<U>
where
    S: Send + Sync,
    U: UserRecord,
    CrudAuth<U>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = CrudAuth::<U>::from_ref(state);
        resolve(parts, &auth)
            .await?
            .ok_or(AuthError::NotAuthenticated)
    }
}

impl<S, U> OptionalFromRequestParts<S> for Principal<U>
where
    S: Send + Sync,
    U: UserRecord,
    CrudAuth<U>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let auth = CrudAuth::<U>::from_ref(state);
        resolve(parts, &auth).await
    }
}

impl<S, U> FromRequestParts<S> for Superuser<U>
where
    S: Send + Sync,
    U: UserRecord,
    CrudAuth<U>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal =
            <Principal<U> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if principal.is_superuser {
            Ok(Superuser(principal))
        } else {
            Err(AuthError::Forbidden("Insufficient privileges"))
        }
    }
}

impl<S, U> FromRequestParts<S> for RequireSudo<U>
where
    S: Send + Sync,
    U: UserRecord,
    CrudAuth<U>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal =
            <Principal<U> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        principal.require_elevated()?;
        Ok(RequireSudo(principal))
    }
}

/// The [`ClientMeta`] of a request, for any state that holds a `CrudAuth`: the peer address
/// honours the configured `trusted_proxy_hops`.
///
/// Generic over the user type through the state, so an app with its own state asks for
/// `ClientMeta` like any axum extractor.
impl<S> FromRequestParts<S> for ClientMeta
where
    S: Send + Sync,
    TrustedHops: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let TrustedHops(hops) = TrustedHops::from_ref(state);
        Ok(ClientMeta::from_parts(parts, hops))
    }
}

/// How many reverse proxies in front of the app are trusted to append `X-Forwarded-For`
/// (from the builder's `trusted_proxy_hops`). The [`ClientMeta`] extractor reads it from the
/// state: every `CrudAuth<U>` provides it, and so does any app state that derives `FromRef`
/// with a `CrudAuth` field when it also implements `FromRef<AppState> for TrustedHops`
/// (one line: `TrustedHops::from_ref(&state.auth)`).
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| {
/// use axum::extract::FromRef;
/// let crudauth::extract::TrustedHops(hops) = crudauth::extract::TrustedHops::from_ref(&auth);
/// assert_eq!(hops, 0); // the default: no proxy in front
/// # Ok(()) });
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TrustedHops(pub usize);

impl<U: UserRecord> FromRef<CrudAuth<U>> for TrustedHops {
    fn from_ref(auth: &CrudAuth<U>) -> Self {
        TrustedHops(auth.core().trusted_proxy_hops)
    }
}
