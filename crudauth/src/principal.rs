//! The authenticated identity, its extractors and its gates.
//!
//! Handlers ask for what they need by type:
//!
//! - [`Principal<U>`]: an authenticated user (401 `Not authenticated` otherwise);
//! - `Option<Principal<U>>`: optional authentication (a present but invalid credential still
//!   fails the request);
//! - [`Superuser<U>`]: a superuser (403 `Insufficient privileges` otherwise).
//!
//! Other gates (verified, scopes, transport narrowing, a custom check) are declared once as a
//! [`Gate`] and put on routes with `auth.require(gate)`. Authentication happens once
//! per request, however many extractors and gates ask: the result is cached in the request.

use std::sync::Arc;

use crate::error::AuthError;
use crate::tenant::TenantFrom;
use crate::user::UserId;

/// The transport that authenticated a request.
///
/// ```
/// assert_eq!(crudauth::Transport::Session.as_str(), "session");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A session cookie.
    Session,
    /// A bearer token.
    Bearer,
    /// An API key (feature `api-keys`).
    ApiKey,
}

impl Transport {
    /// The transport's name on the wire (`via` in `/me`).
    ///
    /// ```
    /// assert_eq!(crudauth::Transport::Bearer.as_str(), "bearer");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Session => "session",
            Transport::Bearer => "bearer",
            Transport::ApiKey => "api_key",
        }
    }
}

/// One identity, whatever the transport.
///
/// ```
/// use crudauth::Principal;
/// # use crudauth::doc_fixture::User;
/// async fn whoami(principal: Principal<User>) -> String {
///     format!("{} via {}", principal.user_id, principal.via.as_str())
/// }
/// # crudauth::doc_fixture::run(async |auth| {
/// # let principal = crudauth::doc_fixture::session_principal(&auth).await?;
/// assert_eq!(whoami(principal).await, "1 via session");
/// # Ok(()) });
/// ```
///
/// Its `Debug` output leaves the loaded user out (the application's model carries the
/// password hash, and `Debug` output ends up in logs).
#[derive(Clone)]
pub struct Principal<U> {
    /// The user's id.
    pub user_id: UserId,
    /// Granted scopes (empty for sessions).
    pub scopes: Vec<String>,
    /// The transport that authenticated the request.
    pub via: Transport,
    /// The loaded user, as the application's model.
    pub user: Arc<U>,
    /// Superuser flag.
    pub is_superuser: bool,
    /// Email (recovery factor) verified.
    pub email_verified: bool,
    /// The session's public handle, for session principals.
    pub session_handle: Option<String>,
    /// When the session signed in (unix seconds), for session principals.
    pub signed_in_at: Option<i64>,
    /// Until when the session is elevated (unix seconds), if it was; see
    /// [`Principal::is_elevated`].
    pub sudo_until: Option<i64>,
    /// The superuser acting as this user, for an impersonation token or session (feature
    /// `admin`): such a principal is never elevated and may not change the account's
    /// credentials (see [`Principal::refuse_delegated`]).
    pub impersonated_by: Option<UserId>,
    /// The id of the API key that authenticated the request (feature `api-keys`).
    pub api_key_id: Option<String>,
    /// The tenant the principal acts in (see [`crate::tenant`]): the one its token or
    /// session was issued under, its API key owner's, or the impersonated user's.
    pub tenant: Option<String>,
}

impl<U> std::fmt::Debug for Principal<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id)
            .field("scopes", &self.scopes)
            .field("via", &self.via)
            .field("user", &format_args!("<redacted>"))
            .field("is_superuser", &self.is_superuser)
            .field("email_verified", &self.email_verified)
            .field("session_handle", &self.session_handle)
            .field("signed_in_at", &self.signed_in_at)
            .field("sudo_until", &self.sudo_until)
            .field("impersonated_by", &self.impersonated_by)
            .field("api_key_id", &self.api_key_id)
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl<U> Principal<U> {
    /// Whether every required scope was granted.
    ///
    /// ```
    /// # use std::sync::Arc; use crudauth::{Principal, UserId, Transport};
    /// let p = Principal { user_id: UserId::Int(1), scopes: vec!["a".into()], via: Transport::Bearer,
    ///     user: Arc::new(()), is_superuser: false, email_verified: false, session_handle: None,
    ///     signed_in_at: None, sudo_until: None, impersonated_by: None, api_key_id: None,
    ///     tenant: None };
    /// assert!(p.has_scopes(&["a"]) && !p.has_scopes(&["a", "b"]));
    /// ```
    pub fn has_scopes(&self, required: &[&str]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r))
    }
}

impl<U> Principal<U> {
    /// Whether the session is elevated (sudo) right now. Always `false` for bearer and API
    /// key principals, and for an impersonation.
    ///
    /// ```
    /// # use std::sync::Arc; use crudauth::{Principal, UserId, Transport};
    /// let p = Principal { user_id: UserId::Int(1), scopes: vec![], via: Transport::Bearer,
    ///     user: Arc::new(()), is_superuser: false, email_verified: false, session_handle: None,
    ///     signed_in_at: None, sudo_until: Some(i64::MAX), impersonated_by: None, api_key_id: None,
    ///     tenant: None };
    /// assert!(!p.is_elevated());
    /// ```
    pub fn is_elevated(&self) -> bool {
        self.via == Transport::Session
            && self.impersonated_by.is_none()
            && self
                .sudo_until
                .is_some_and(|until| until > crate::clock::system_secs())
    }

    /// `Err(403)` for a principal that is not the person signed in: an impersonation (a
    /// superuser acting as the user) or an API key (a script). The routes that change an
    /// account's credentials or ways in (password, email, second factors, passkeys, API
    /// keys, sudo, impersonation itself) call it first.
    ///
    /// ```
    /// # use std::sync::Arc; use crudauth::{Principal, UserId, Transport};
    /// let p = Principal { user_id: UserId::Int(2), scopes: vec![], via: Transport::Bearer,
    ///     user: Arc::new(()), is_superuser: false, email_verified: true, session_handle: None,
    ///     signed_in_at: None, sudo_until: None, impersonated_by: Some(UserId::Int(1)), api_key_id: None,
    ///     tenant: None };
    /// assert_eq!(p.refuse_delegated().unwrap_err().status(), 403);
    /// ```
    pub fn refuse_delegated(&self) -> Result<(), AuthError> {
        if self.impersonated_by.is_some() {
            return Err(AuthError::Forbidden("Not allowed while impersonating."));
        }
        self.refuse_api_key()
    }

    /// `Err(403)` for an API key: what is the person's alone (their sign-ins, the user
    /// directory of a superuser) is no script's, whatever the key's scopes.
    pub(crate) fn refuse_api_key(&self) -> Result<(), AuthError> {
        if self.via == Transport::ApiKey {
            return Err(AuthError::Forbidden("Not allowed with an API key."));
        }
        Ok(())
    }

    /// `Err(403 Re-authentication required.)` unless elevated.
    pub(crate) fn require_elevated(&self) -> Result<(), AuthError> {
        if self.is_elevated() {
            Ok(())
        } else {
            Err(AuthError::Forbidden("Re-authentication required."))
        }
    }
}

/// A superuser principal: 403 `Insufficient privileges` for anyone else.
///
/// ```
/// # use crudauth::doc_fixture::User;
/// async fn admin_only(crudauth::Superuser(admin): crudauth::Superuser<User>) -> String {
///     format!("welcome {}", admin.user_id)
/// }
/// # crudauth::doc_fixture::run(async |auth| {
/// use tower::ServiceExt; // `oneshot`: one request, no server
/// let app = axum::Router::new().route("/admin", axum::routing::get(admin_only)).with_state(auth.clone());
/// # let request = crudauth::doc_fixture::signed_in_request(&auth, "ann", axum::http::Method::GET, "/admin").await?;
/// let response = app.oneshot(request).await?;
/// assert_eq!(response.status(), 403); // Ann is no superuser
/// # Ok(()) });
/// ```
#[derive(Clone, Debug)]
pub struct Superuser<U>(pub Principal<U>);

type Check<U> = Arc<dyn Fn(&Principal<U>) -> bool + Send + Sync>;

/// Requirements on the principal, checked in the original's order: authenticated (401),
/// then the tenant (404 `Not Found`, see [`Gate::tenant_matches`]: a request about another
/// tenant learns nothing of what that tenant has, whatever else the gate asks), superuser
/// (403 `Insufficient privileges`), verified (403 `Recovery factor not verified`), scopes
/// (403 `Insufficient scope`), features (403 `Feature not available for this tenant.`),
/// custom check (403 `Access denied`), and last an elevated session (403
/// `Re-authentication required.`).
///
/// ```
/// # #[derive(Clone)] struct User;
/// let gate = crudauth::Gate::<User>::new()
///     .scopes(["reports:read"])
///     .transport(crudauth::Transport::Bearer)
///     .check(|p| p.user_id.to_string() != "0");
/// ```
pub struct Gate<U> {
    pub(crate) superuser: bool,
    pub(crate) verified: bool,
    pub(crate) scopes: Vec<String>,
    pub(crate) transport: Option<Transport>,
    pub(crate) check: Option<Check<U>>,
    pub(crate) sudo: bool,
    pub(crate) tenant: Option<TenantFrom>,
    pub(crate) tenant_superusers: bool,
    pub(crate) features: Vec<String>,
}

impl<U> Clone for Gate<U> {
    fn clone(&self) -> Self {
        Gate {
            superuser: self.superuser,
            verified: self.verified,
            scopes: self.scopes.clone(),
            transport: self.transport,
            check: self.check.clone(),
            sudo: self.sudo,
            tenant: self.tenant.clone(),
            tenant_superusers: self.tenant_superusers,
            features: self.features.clone(),
        }
    }
}

impl<U> Default for Gate<U> {
    fn default() -> Self {
        Gate {
            superuser: false,
            verified: false,
            scopes: Vec::new(),
            transport: None,
            check: None,
            sudo: false,
            tenant: None,
            tenant_superusers: false,
            features: Vec::new(),
        }
    }
}

impl<U> Gate<U> {
    /// Authenticated, nothing more.
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// let gate = crudauth::Gate::<User>::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Require a superuser.
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// let gate = crudauth::Gate::<User>::new().superuser();
    /// ```
    pub fn superuser(mut self) -> Self {
        self.superuser = true;
        self
    }

    /// Require a verified recovery factor (needs an `email_verified` column).
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// let gate = crudauth::Gate::<User>::new().verified();
    /// ```
    pub fn verified(mut self) -> Self {
        self.verified = true;
        self
    }

    /// Require these scopes.
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// let gate = crudauth::Gate::<User>::new().scopes(["me:read"]);
    /// ```
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Only this transport may authenticate the route.
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// let gate = crudauth::Gate::<User>::new().transport(crudauth::Transport::Session);
    /// ```
    pub fn transport(mut self, via: Transport) -> Self {
        self.transport = Some(via);
        self
    }

    /// A custom check; `false` answers 403 `Access denied`.
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// let gate = crudauth::Gate::<User>::new().check(|p| p.is_superuser);
    /// ```
    pub fn check(mut self, check: impl Fn(&Principal<U>) -> bool + Send + Sync + 'static) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    /// Require an elevated session (sudo mode; bearer principals never are).
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// let gate = crudauth::Gate::<User>::new().sudo();
    /// ```
    pub fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }

    /// The request must be about the principal's own tenant, as `from` names it (a path
    /// parameter, a header, a function of the request): a principal without a tenant, a
    /// request naming none (or one that cannot be a tenant: empty, over
    /// [`crate::tenant::MAX_TENANT_CHARS`], not UTF-8), and another tenant are all answered
    /// 404 `Not Found`, before any other requirement, so a foreign tenant's routes look like
    /// routes that do not exist. Superusers too, unless
    /// [`Gate::tenant_superuser_bypass`].
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use axum::{Router, routing::get};
    /// use crudauth::{Gate, tenant::TenantFrom};
    /// use tower::ServiceExt; // `oneshot`: one request, no server
    /// let app: Router = Router::new()
    ///     .route("/orgs/{org}/invoices", get(|| async { "..." }))
    ///     .route_layer(auth.require(Gate::new().tenant_matches(TenantFrom::path("org")).scopes(["invoices:read"]))?);
    /// # let request = crudauth::doc_fixture::signed_in_request(&auth, "ann", axum::http::Method::GET, "/orgs/acme/invoices").await?;
    /// let response = app.oneshot(request).await?;
    /// assert_eq!(response.status(), 404); // Ann belongs to no tenant
    /// # Ok(()) });
    /// ```
    pub fn tenant_matches(mut self, from: TenantFrom) -> Self {
        self.tenant = Some(from);
        self
    }

    /// Lets superusers through [`Gate::tenant_matches`] in any tenant (opt-in; an
    /// impersonation has the impersonated user's flags, so it never bypasses).
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// use crudauth::tenant::TenantFrom;
    /// let gate = crudauth::Gate::<User>::new().tenant_matches(TenantFrom::path("org")).tenant_superuser_bypass();
    /// ```
    pub fn tenant_superuser_bypass(mut self) -> Self {
        self.tenant_superusers = true;
        self
    }

    /// Require a feature of the principal's tenant, as the builder's tenant settings decide
    /// it (`TenantConfig::features` or `feature_sets`): 403 `Feature not available for this
    /// tenant.` otherwise. A principal without a tenant has no features unless the app's
    /// rule says so. With [`Gate::tenant_matches`] the feature is the requested tenant's
    /// (the same one, except for a superuser let through by
    /// [`Gate::tenant_superuser_bypass`]).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// use axum::{Router, routing::get};
    /// use tower::ServiceExt; // `oneshot`: one request, no server
    /// let app: Router = Router::new()
    ///     .route("/billing", get(|| async { "..." }))
    ///     .route_layer(auth.require(crudauth::Gate::new().feature("billing"))?);
    /// # let request = crudauth::doc_fixture::signed_in_request(&auth, "ann", axum::http::Method::GET, "/billing").await?;
    /// let response = app.oneshot(request).await?;
    /// assert_eq!(response.status(), 403); // no tenant, no features
    /// # Ok(()) });
    /// ```
    pub fn feature(mut self, name: impl Into<String>) -> Self {
        self.features.push(name.into());
        self
    }

    /// Applies the gate; `requested` is the tenant the request names (read by the caller
    /// from [`Gate::tenant_matches`]' source), `has_feature` the builder's feature rule.
    pub(crate) fn apply(
        &self,
        principal: &Principal<U>,
        requested: Option<&str>,
        has_feature: impl Fn(Option<&str>, &str) -> bool,
    ) -> Result<(), AuthError> {
        if self.tenant.is_some()
            && !(self.tenant_superusers && principal.is_superuser)
            && (requested.is_none() || principal.tenant.as_deref() != requested)
        {
            return Err(AuthError::NotFound("Not Found"));
        }
        if self.superuser && !principal.is_superuser {
            return Err(AuthError::Forbidden("Insufficient privileges"));
        }
        if self.verified && !principal.email_verified {
            return Err(AuthError::Forbidden("Recovery factor not verified"));
        }
        let required: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        if !principal.has_scopes(&required) {
            return Err(AuthError::Forbidden("Insufficient scope"));
        }
        // With a tenant source, the features are the requested tenant's (a superuser let
        // through by `tenant_superuser_bypass` gets the tenant they act in, not their own).
        let tenant = match self.tenant {
            Some(_) => requested,
            None => principal.tenant.as_deref(),
        };
        if !self.features.iter().all(|f| has_feature(tenant, f)) {
            return Err(AuthError::Forbidden(
                "Feature not available for this tenant.",
            ));
        }
        if let Some(check) = &self.check
            && !check(principal)
        {
            return Err(AuthError::Forbidden("Access denied"));
        }
        if self.sudo {
            principal.require_elevated()?;
        }
        Ok(())
    }
}

/// A principal whose session is elevated (sudo): 403 `Re-authentication required.`
/// otherwise. Elevate with `auth.sudo().elevate(..)` (or `POST /sudo`).
///
/// ```
/// # use crudauth::doc_fixture::User;
/// async fn danger(crudauth::RequireSudo(who): crudauth::RequireSudo<User>) -> String {
///     format!("done for {}", who.user_id)
/// }
/// # crudauth::doc_fixture::run(async |auth| {
/// use tower::ServiceExt; // `oneshot`: one request, no server
/// let app = axum::Router::new().route("/danger", axum::routing::get(danger)).with_state(auth.clone());
/// # let request = crudauth::doc_fixture::signed_in_request(&auth, "ann", axum::http::Method::GET, "/danger").await?;
/// let response = app.oneshot(request).await?;
/// assert_eq!(response.status(), 403); // signed in, but not elevated
/// # Ok(()) });
/// ```
#[derive(Clone, Debug)]
pub struct RequireSudo<U>(pub Principal<U>);
