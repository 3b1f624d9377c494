//! `CrudAuth`: the composition root. Built once by [`crate::CrudAuthBuilder`], validated
//! once, cheap to clone. It holds the shared parts and the services; the work is theirs
//! (`login`, `revocation`, `sudo`, `recovery`, the transports), the extractors live in
//! [`crate::extract`], the route layers in `layers` and the routes in `routes`.

use std::sync::Arc;

use axum::http::request::Parts;

use crate::background::Background;
use crate::client_ip::ClientMeta;
use crate::core::Core;
use crate::delivery::Deliveries;
use crate::error::AuthError;
use crate::login::{Login, VerifiedUser};
use crate::password::PasswordHasher;
use crate::principal::{Principal, Transport};
use crate::ratelimit::RateLimiter;
use crate::recovery::Recovery;
use crate::revocation::Revocation;
use crate::session::Sessions;
use crate::store::Store;
use crate::sudo::Sudo;
use crate::tokens::{TokenPair, TokenService};
use crate::user::{DynUserRepository, UserRecord};

pub(crate) struct Inner<U> {
    pub core: Arc<Core<U>>,
    pub login: Login<U>,
    pub sudo: Sudo<U>,
    pub recovery: Option<Recovery<U>>,
}

/// The authentication facade: repository + store + transports + hooks, wired once.
///
/// Cheap to clone (an `Arc` inside). Put it in your app state and expose it with
/// `FromRef`, or use it as the state itself.
///
/// ```no_run
/// # async fn demo<R: crudauth::UserRepository>(repo: R) -> Result<(), crudauth::ConfigError> {
/// use crudauth::{BearerConfig, CrudAuth, SessionConfig};
/// let auth = CrudAuth::builder(repo)
///     .secret_key(b"an example secret key of at least 32 bytes!".to_vec())
///     .session(SessionConfig::default())
///     .bearer(BearerConfig::default())
///     .build()?;
/// let app: axum::Router = auth.router();
/// # Ok(()) }
/// ```
pub struct CrudAuth<U> {
    pub(crate) inner: Arc<Inner<U>>,
}

impl<U> Clone for CrudAuth<U> {
    fn clone(&self) -> Self {
        CrudAuth {
            inner: self.inner.clone(),
        }
    }
}

impl<U> std::fmt::Debug for CrudAuth<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrudAuth")
            .field("transports", &self.inner.core.transports)
            .finish_non_exhaustive()
    }
}

impl<U: UserRecord> CrudAuth<U> {
    pub(crate) fn core(&self) -> &Arc<Core<U>> {
        &self.inner.core
    }

    /// The user repository.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let found = auth.repo().find_by_login("ann@example.com").await;
    /// # }
    /// ```
    pub fn repo(&self) -> &dyn DynUserRepository<U> {
        self.inner.core.repo.as_ref()
    }

    /// The session service, when the session transport is configured.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) -> Result<(), crudauth::AuthError> {
    /// if let Some(sessions) = auth.sessions() { sessions.revoke_all("42", None).await?; }
    /// # Ok(()) }
    /// ```
    pub fn sessions(&self) -> Option<&Sessions> {
        self.inner.core.sessions.as_ref()
    }

    /// The token service, when the bearer transport is configured.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let bearer_configured = auth.tokens().is_some();
    /// # }
    /// ```
    pub fn tokens(&self) -> Option<&TokenService> {
        self.inner.core.tokens.as_ref()
    }

    /// The password hasher.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let hash = auth.passwords().hash("correct horse").await;
    /// # }
    /// ```
    pub fn passwords(&self) -> &PasswordHasher {
        &self.inner.core.passwords
    }

    /// The store.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let store = auth.store().clone();
    /// # }
    /// ```
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.core.store
    }

    /// The configured transports, in the order they are tried.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// assert!(!auth.transports().is_empty());
    /// # }
    /// ```
    pub fn transports(&self) -> &[Transport] {
        &self.inner.core.transports
    }

    /// The configured deliveries (email sender and channels).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let deliveries = auth.deliveries();
    /// # }
    /// ```
    pub fn deliveries(&self) -> &Deliveries {
        &self.inner.core.deliveries
    }

    /// The tracker of work done after answering (mail, the register hook);
    /// [`Background::flush`] waits for it before a shutdown.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// auth.background().flush().await;
    /// # }
    /// ```
    pub fn background(&self) -> &Background {
        &self.inner.core.background
    }

    /// The rate limiter (shared through the configured store).
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) {
    /// let register = auth.rate_limiter().limit("register");
    /// # }
    /// ```
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.core.limiter
    }

    /// The password service: sign-in by password, policy checks, set-password.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, client: crudauth::ClientMeta) -> Result<(), crudauth::AuthError> {
    /// let verified = auth.login().authenticate_password("ann", "correct horse", &client, "session").await?;
    /// # Ok(()) }
    /// ```
    pub fn login(&self) -> &Login<U> {
        &self.inner.login
    }

    /// The revocation epochs.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U) -> Result<(), crudauth::AuthError> {
    /// auth.revocation().bump(&user).await?;
    /// # Ok(()) }
    /// ```
    pub fn revocation(&self) -> &Revocation<U> {
        &self.inner.core.revocation
    }

    /// The sudo service.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, p: crudauth::Principal<U>, client: crudauth::ClientMeta) -> Result<(), crudauth::AuthError> {
    /// let elevated = auth.sudo().elevate(&p, "my password again", &client).await?;
    /// # Ok(()) }
    /// ```
    pub fn sudo(&self) -> &Sudo<U> {
        &self.inner.sudo
    }

    /// The email flows, when a [`crate::RecoveryConfig`] is set.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, client: crudauth::ClientMeta) {
    /// if let Some(recovery) = auth.recovery() { recovery.request_password_reset("ann@example.com", &client); }
    /// # }
    /// ```
    pub fn recovery(&self) -> Option<&Recovery<U>> {
        self.inner.recovery.as_ref()
    }

    /// The client of a request (see [`ClientMeta::from_parts`]), with the configured
    /// `trusted_proxy_hops`.
    ///
    /// ```no_run
    /// # fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, parts: axum::http::request::Parts) {
    /// let client = auth.client_meta(&parts);
    /// # }
    /// ```
    pub fn client_meta(&self, parts: &Parts) -> ClientMeta {
        ClientMeta::from_parts(parts, self.inner.core.trusted_proxy_hops)
    }

    /// Authenticates a request over the configured transports, in order (or only `only`);
    /// `Ok(None)` when no credential is present (see [`crate::transport`]).
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, parts: axum::http::request::Parts) -> Result<(), crudauth::AuthError> {
    /// let principal = auth.authenticate(&parts, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn authenticate(
        &self,
        parts: &Parts,
        only: Option<Transport>,
    ) -> Result<Option<Principal<U>>, AuthError> {
        crate::transport::authenticate(&self.inner.core, parts, only).await
    }

    /// The password check behind `/login` and `/token` ([`Login::authenticate_password`]).
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, client: crudauth::ClientMeta) -> Result<(), crudauth::AuthError> {
    /// let verified = auth.authenticate_password("ann@example.com", "correct horse", &client, "session").await?;
    /// # Ok(()) }
    /// ```
    pub async fn authenticate_password(
        &self,
        identifier: &str,
        password: &str,
        client: &ClientMeta,
        transport: &'static str,
    ) -> Result<VerifiedUser<U>, AuthError> {
        let login = &self.inner.login;
        login
            .authenticate_password(identifier, password, client, transport)
            .await
    }

    /// Issues an access + refresh pair for a user at its current epoch, scopes clamped to
    /// the grantable set.
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U) -> Result<(), crudauth::AuthError> {
    /// let pair = auth.issue_tokens(&user, ["me:read"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn issue_tokens<'a>(
        &self,
        user: &U,
        requested_scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<TokenPair, AuthError> {
        let epoch = self.revocation().epoch(user).await?;
        crate::transport::bearer::issue(&self.inner.core, user, epoch, requested_scopes).await
    }

    /// The user's revocation epoch ([`Revocation::epoch`]).
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U) -> Result<(), crudauth::AuthError> {
    /// let epoch = auth.epoch(&user).await?;
    /// # Ok(()) }
    /// ```
    pub async fn epoch(&self, user: &U) -> Result<i64, AuthError> {
        self.revocation().epoch(user).await
    }

    /// Ends every earlier token and session of the user ([`Revocation::bump`]).
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>, user: U) -> Result<(), crudauth::AuthError> {
    /// auth.bump_epoch(&user).await?;
    /// # Ok(()) }
    /// ```
    pub async fn bump_epoch(&self, user: &U) -> Result<i64, AuthError> {
        self.revocation().bump(user).await
    }

    /// Creates the administrator, or promotes an existing account whose password is the
    /// given one (see [`crate::bootstrap`]).
    ///
    /// ```no_run
    /// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) -> Result<(), crudauth::AuthError> {
    /// let admin = auth.ensure_admin("root@example.com", "a long admin password").await?;
    /// # Ok(()) }
    /// ```
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<U, AuthError> {
        crate::bootstrap::ensure_admin(&self.inner.core, &self.inner.login, email, password).await
    }
}
