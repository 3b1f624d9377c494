//! `CrudAuth`: the composition root. It holds the shared parts and the services; the work is
//! theirs (`login`, `revocation`, `sudo`, `recovery`, the transports).

use std::sync::Arc;

use axum::http::request::Parts;

use crate::client_ip::ClientMeta;
use crate::core::Core;
use crate::error::AuthError;
use crate::login::{Login, VerifiedUser};
use crate::password::PasswordHasher;
use crate::principal::{Principal, Transport};
use crate::recovery::Recovery;
use crate::revocation::Revocation;
use crate::session::Sessions;
use crate::sudo::Sudo;
use crate::tokens::{TokenPair, TokenService};
use crate::user::{DynUserRepository, UserRecord};

pub(crate) struct Inner<U> {
    pub core: Arc<Core<U>>,
    /// `repo()`: the repository with its writes announced.
    pub repo: Arc<dyn DynUserRepository<U>>,
    pub login: Login<U>,
    pub sudo: Sudo<U>,
    pub recovery: Option<Recovery<U>>,
    /// The optional sign-in methods' services (unread when no method's feature is on).
    #[allow(dead_code)]
    pub methods: crate::methods::Methods<U>,
}

/// The authentication facade: repository + store + transports + hooks, wired once.
///
/// Cheap to clone (an `Arc` inside). Put it in your app state and expose it with
/// `FromRef`, or use it as the state itself.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let repo = crudauth::doc_fixture::Repo::new();
/// use crudauth::{BearerConfig, CrudAuth, SessionConfig};
/// let auth = CrudAuth::builder(repo)
///     .secret_key(b"an example secret key of at least 32 bytes!".to_vec())
///     .session(SessionConfig::default())
///     .bearer(BearerConfig::default())
///     .build()?;
/// let app: axum::Router = auth.router();
/// # Ok(()) });
/// ```
pub struct CrudAuth<U> {
    pub(crate) inner: Arc<Inner<U>>,
}

impl<U> Clone for CrudAuth<U> {
    fn clone(&self) -> Self {
        let inner = self.inner.clone();
        CrudAuth { inner }
    }
}

impl<U> std::fmt::Debug for CrudAuth<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transports = &self.inner.core.transports;
        (f.debug_struct("CrudAuth").field("transports", transports)).finish_non_exhaustive()
    }
}

impl<U: UserRecord> CrudAuth<U> {
    pub(crate) fn core(&self) -> &Arc<Core<U>> {
        &self.inner.core
    }

    /// The user repository. Writes through it are announced like crudauth's own (every
    /// process stops using its cached copy of the user on its next request).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let found = auth.repo().find_by_login("Ann@Example.com").await?;
    /// assert_eq!(found.map(|u| u.username).as_deref(), Some("ann"));
    /// # Ok(()) });
    /// ```
    pub fn repo(&self) -> &dyn DynUserRepository<U> {
        self.inner.repo.as_ref()
    }

    /// The session service, when the session transport is configured.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.sessions().is_some()); // the session transport is on
    /// # Ok(()) });
    /// ```
    pub fn sessions(&self) -> Option<&Sessions> {
        self.inner.core.sessions.as_ref()
    }

    /// The token service, when the bearer transport is configured.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.tokens().is_some()); // the bearer transport is on
    /// # Ok(()) });
    /// ```
    pub fn tokens(&self) -> Option<&TokenService> {
        self.inner.core.tokens.as_ref()
    }

    /// The password hasher.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let hash = auth.passwords().hash("correct horse").await?;
    /// assert!(auth.passwords().verify("correct horse", Some(&hash)).await.matched);
    /// # Ok(()) });
    /// ```
    pub fn passwords(&self) -> &PasswordHasher {
        &self.inner.core.passwords
    }

    /// The store.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// # use crudauth::store::Store;
    /// assert!(auth.store().get("no-such-key").await?.is_none());
    /// # Ok(()) });
    /// ```
    pub fn store(&self) -> &Arc<dyn crate::store::Store> {
        &self.inner.core.store
    }

    /// The tracker of work done after answering (mail, the register hook);
    /// [`crate::Background::flush`] waits for it before a shutdown.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// auth.background().flush().await;
    /// # Ok(()) });
    /// ```
    pub fn background(&self) -> &crate::Background {
        &self.inner.core.background
    }

    /// The rate limiter (shared through the configured store).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert_eq!(auth.rate_limiter().limit("register").map(|l| l.times), Some(5));
    /// # Ok(()) });
    /// ```
    pub fn rate_limiter(&self) -> &crate::ratelimit::RateLimiter {
        &self.inner.core.limiter
    }

    /// The password service: sign-in by password, policy checks, set-password.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
    /// let verified = auth.login().authenticate_password("ann", "correct horse battery staple", &client, "session").await?;
    /// assert_eq!(verified.user.email, "ann@example.com");
    /// # Ok(()) });
    /// ```
    pub fn login(&self) -> &Login<U> {
        &self.inner.login
    }

    /// The revocation epochs.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// # let user = crudauth::doc_fixture::user(&auth).await?;
    /// assert_eq!(auth.revocation().bump(&user).await?, 1); // the new epoch
    /// # Ok(()) });
    /// ```
    pub fn revocation(&self) -> &Revocation<U> {
        &self.inner.core.revocation
    }

    /// The sudo service.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
    /// # let p = crudauth::doc_fixture::session_principal(&auth).await?;
    /// let elevated = auth.sudo().elevate(&p, "correct horse battery staple", &client).await?;
    /// assert_eq!(elevated.session.record.sudo_until, Some(elevated.until));
    /// # Ok(()) });
    /// ```
    pub fn sudo(&self) -> &Sudo<U> {
        &self.inner.sudo
    }

    /// The email flows, when a [`crate::RecoveryConfig`] is set.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.recovery().is_some()); // the fixture has a RecoveryConfig
    /// # Ok(()) });
    /// ```
    pub fn recovery(&self) -> Option<&Recovery<U>> {
        self.inner.recovery.as_ref()
    }

    /// Authenticates a request over the configured transports, in order (or only `only`);
    /// `Ok(None)` when no credential is present (see [`crate::transport`]).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// # let parts = crudauth::doc_fixture::signed_in_parts(&auth, "ann").await?;
    /// let principal = auth.authenticate(&parts, None).await?.expect("a session cookie");
    /// assert_eq!(principal.via, crudauth::Transport::Session);
    /// # Ok(()) });
    /// ```
    pub async fn authenticate(
        &self,
        parts: &Parts,
        only: Option<Transport>,
    ) -> Result<Option<Principal<U>>, AuthError> {
        crate::transport::authenticate(
            &self.inner.core,
            parts,
            only,
            #[cfg(feature = "api-keys")]
            self.inner.methods.api_keys.as_ref(),
        )
        .await
    }

    /// The password check behind `/login` and `/token` ([`Login::authenticate_password`]).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
    /// let verified = auth.authenticate_password("ann@example.com", "correct horse battery staple", &client, "session").await?;
    /// assert_eq!(verified.user.username, "ann");
    /// # Ok(()) });
    /// ```
    pub async fn authenticate_password(
        &self,
        identifier: &str,
        password: &str,
        client: &ClientMeta,
        transport: &'static str,
    ) -> Result<VerifiedUser<U>, AuthError> {
        let login = &self.inner.login;
        (login.authenticate_password(identifier, password, client, transport)).await
    }

    /// Issues an access + refresh pair for a user at its current epoch, scopes clamped to
    /// the grantable set.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// # let user = crudauth::doc_fixture::user(&auth).await?;
    /// let pair = auth.issue_tokens(&user, ["me:read"]).await?;
    /// assert_eq!(auth.tokens().unwrap().verify_access(&pair.access_token)?.scopes, ["me:read"]);
    /// # Ok(()) });
    /// ```
    pub async fn issue_tokens<'a>(
        &self,
        user: &U,
        requested_scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<TokenPair, AuthError> {
        let epoch = self.revocation().epoch(user).await?;
        crate::transport::bearer::issue(&self.inner.core, user, epoch, requested_scopes).await
    }

    /// Creates the administrator, or promotes an existing account whose password is the
    /// given one (an account with the address but another password is never promoted).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let admin = auth.ensure_admin("root@example.com", "a long admin password").await?;
    /// assert!(admin.is_superuser);
    /// # Ok(()) });
    /// ```
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<U, AuthError> {
        crate::bootstrap::ensure_admin(&self.inner.core, &self.inner.login, email, password).await
    }

    /// Counts the accounts per stored password hash format ([`Login::password_hash_report`]).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert_eq!(auth.password_hash_report().await?.total, 1);
    /// # Ok(()) });
    /// ```
    pub async fn password_hash_report(&self) -> Result<crate::password::HashReport, AuthError> {
        self.inner.login.password_hash_report().await
    }

    /// Announces a write the app made to a user outside crudauth (a deactivation with plain
    /// SeaORM, say): every process stops using its cached copy on its next request.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// auth.invalidate_user(&crudauth::UserId::Int(1)).await?;
    /// # Ok(()) });
    /// ```
    pub async fn invalidate_user(&self, id: &crate::UserId) -> Result<(), AuthError> {
        self.inner.core.revocation.changed(id).await
    }
}
