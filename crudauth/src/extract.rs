//! The extractors: [`Principal`], `Option<Principal>`, [`Superuser`], [`RequireSudo`] and
//! [`ClientMeta`], for any state `S` where `CrudAuth<U>: FromRef<S>` (the app's own state,
//! or the `CrudAuth` itself).
//!
//! Authentication happens once per request, however many extractors, gates and rate-limit
//! layers ask: the outcome is cached in the request's extensions.
//!
//! ```no_run
//! use axum::extract::FromRef;
//! use crudauth::{ClientMeta, CrudAuth, Principal};
//! # #[derive(Clone)] struct User;
//! # impl crudauth::UserRecord for User {
//! #   fn user_id(&self) -> crudauth::UserId { crudauth::UserId::Int(1) }
//! #   fn email(&self) -> Option<&str> { None } fn username(&self) -> Option<&str> { None }
//! #   fn password_hash(&self) -> Option<&str> { None } fn is_active(&self) -> bool { true }
//! #   fn is_superuser(&self) -> bool { false } fn email_verified(&self) -> bool { false }
//! #   fn token_version(&self) -> Option<i64> { None } }
//!
//! #[derive(Clone, FromRef)]
//! struct AppState { auth: CrudAuth<User>, greeting: String }
//!
//! async fn hello(p: Principal<User>, client: ClientMeta) -> String {
//!     format!("{} from {:?}", p.user_id, client.ip)
//! }
//! ```

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::principal::{Principal, RequireSudo, Superuser};
use crate::user::UserRecord;

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
/// ```no_run
/// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
/// use axum::extract::FromRef;
/// let crudauth::extract::TrustedHops(hops) = crudauth::extract::TrustedHops::from_ref(&auth);
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TrustedHops(pub usize);

impl<U: UserRecord> FromRef<CrudAuth<U>> for TrustedHops {
    fn from_ref(auth: &CrudAuth<U>) -> Self {
        TrustedHops(auth.core().trusted_proxy_hops)
    }
}
