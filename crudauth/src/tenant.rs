//! Tenants on the [`Principal`](crate::Principal): where a user's tenant comes from, how it
//! travels, and the per-tenant feature sets behind `Gate::feature`.
//!
//! A tenant comes from one of two places, chosen once:
//!
//! - **a column of the user table** (`#[auth(tenant = "org_id")]`, a string or integer
//!   column). Every token and session carries the tenant it was issued under, and every
//!   request compares it with the row the transport re-reads anyway (no extra store read):
//!   a user moved to another tenant loses the old tenant's tokens and sessions at once (401).
//!   Crudauth never writes the column; an app that moves a user writes it and calls
//!   `auth.invalidate_user(..)`, which retires every cached copy of the row.
//! - **a resolver** the app gives on the builder ([`TenantConfig::resolver`]): the user and
//!   the sign-in request's headers in, the tenant out, evaluated at sign-in and carried
//!   unchanged by the token (and its refresh rotations) or the session. The resolver decides
//!   membership: it must answer only a tenant the user belongs to, whatever the headers say.
//!
//! A tenant claim is part of the signed token: an edited one fails the signature (401). An
//! API key's principal has the tenant the key was made in, kept with the key (with a tenant
//! column, a key whose owner's row is in another tenant now is refused, 401). An impersonation has the impersonated user's
//! tenant: a superuser acting as a user of tenant B is, for every gate, that user in tenant B.
//! A superuser who belongs to a tenant may impersonate only users of their own tenant unless
//! [`TenantConfig::impersonation_across_tenants`] allows it; a platform operator may
//! impersonate anyone: with a tenant column, a superuser whose row has no tenant; with a
//! resolver, only a tenant-less superuser [`TenantConfig::platform_operators`] names (a
//! sign-in that resolved to no tenant proves nothing). The same rule holds for the users
//! admin routes and service-account keys
//! ([`TenantConfig::administration_across_tenants`]).
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! use crudauth::UserRecord;
//! use crudauth::tenant::TenantConfig;
//! // The tenant is the domain of a verified address (anyone may register an unverified
//! // one at any domain); "acme.test" pays for billing.
//! let auth = b
//!     .tenants(
//!         TenantConfig::new()
//!             .resolver(|user: &crudauth::doc_fixture::User, _headers| {
//!                 if !user.email_verified() {
//!                     return None;
//!                 }
//!                 user.email.split_once('@').map(|(_, domain)| domain.to_owned())
//!             })
//!             .feature_sets([("acme.test", ["billing"])]),
//!     )
//!     .build()?;
//! assert!(auth.tenancy().has_feature(Some("acme.test"), "billing"));
//! assert!(!auth.tenancy().has_feature(None, "billing")); // no tenant, no features
//! # Ok(()) });
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::error::ConfigError;
use crate::user::{LogicalField, UserRecord, UserSchema};

/// The longest tenant a request may name: a longer path segment or header value cannot be
/// any tenant and is refused like a foreign one without comparing it.
///
/// ```
/// assert_eq!(crudauth::tenant::MAX_TENANT_CHARS, 255);
/// ```
pub const MAX_TENANT_CHARS: usize = 255;

type Resolver<U> = Arc<dyn Fn(&U, &HeaderMap) -> Option<String> + Send + Sync>;
type Features = Arc<dyn Fn(Option<&str>, &str) -> bool + Send + Sync>;
type FromRequest = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;
type Operators<U> = Arc<dyn Fn(&U) -> bool + Send + Sync>;

/// Where a request names the tenant it is about: a path parameter, a header, or any
/// function of the request.
///
/// ```
/// use crudauth::tenant::TenantFrom;
/// let by_path = TenantFrom::path("org");
/// let by_header = TenantFrom::header("x-tenant");
/// let by_host = TenantFrom::request(|parts| {
///     let host = parts.headers.get("host")?.to_str().ok()?;
///     host.split_once('.').map(|(sub, _)| sub.to_owned())
/// });
/// # let _ = (by_path, by_header, by_host);
/// ```
#[derive(Clone)]
pub enum TenantFrom {
    /// The (percent-decoded) path parameter of this name (`/orgs/{org}/...`); a route that
    /// names it twice names no one tenant, and is refused.
    Path(String),
    /// The value of this request header.
    Header(String),
    /// A function of the request's parts.
    Request(FromRequest),
}

impl std::fmt::Debug for TenantFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantFrom::Path(name) => f.debug_tuple("Path").field(name).finish(),
            TenantFrom::Header(name) => f.debug_tuple("Header").field(name).finish(),
            TenantFrom::Request(_) => f.write_str("Request(..)"),
        }
    }
}

impl TenantFrom {
    /// The path parameter `name`.
    ///
    /// ```
    /// let from = crudauth::tenant::TenantFrom::path("org");
    /// assert!(matches!(from, crudauth::tenant::TenantFrom::Path(n) if n == "org"));
    /// ```
    pub fn path(name: impl Into<String>) -> Self {
        TenantFrom::Path(name.into())
    }

    /// The request header `name`.
    ///
    /// ```
    /// let from = crudauth::tenant::TenantFrom::header("x-tenant");
    /// assert!(matches!(from, crudauth::tenant::TenantFrom::Header(_)));
    /// ```
    pub fn header(name: impl Into<String>) -> Self {
        TenantFrom::Header(name.into())
    }

    /// A function of the request (`None`: the request names no tenant, and is refused).
    ///
    /// ```
    /// let from = crudauth::tenant::TenantFrom::request(|parts| Some(parts.uri.path().to_owned()));
    /// assert!(matches!(from, crudauth::tenant::TenantFrom::Request(_)));
    /// ```
    pub fn request(f: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        TenantFrom::Request(Arc::new(f))
    }

    /// The tenant the request names: `None` when it names none, or one that cannot be a
    /// tenant (empty, longer than [`MAX_TENANT_CHARS`], not UTF-8 once percent-decoded).
    pub(crate) async fn read(&self, parts: &mut Parts) -> Option<String> {
        let named = match self {
            TenantFrom::Path(name) => {
                let params = RawPathParams::from_request_parts(parts, &()).await.ok()?;
                let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
                match (values.next(), values.next()) {
                    (Some(v), None) => Some(v.to_owned()),
                    (None, _) => {
                        tracing::warn!(param = %name, "tenant gate: the route has no such path parameter");
                        None
                    }
                    _ => None, // named twice: no one tenant
                }
            }
            TenantFrom::Header(name) => {
                let mut values = parts.headers.get_all(name.as_str()).iter();
                match (values.next(), values.next()) {
                    (Some(v), None) => v.to_str().ok().map(str::to_owned),
                    _ => None, // absent, or named twice: no one tenant
                }
            }
            TenantFrom::Request(f) => f(parts),
        };
        named.filter(|t| !t.is_empty() && t.chars().count() <= MAX_TENANT_CHARS)
    }
}

/// The tenant settings, given to the builder's `.tenants(..)`.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// use crudauth::tenant::{TenantConfig, TenantFrom};
/// let config = TenantConfig::new()
///     .source(TenantFrom::path("org"))
///     .features(|tenant, feature| tenant == Some("acme") || feature == "public-beta");
/// let auth = b.tenants(config).build()?;
/// assert!(auth.tenancy().has_feature(None, "public-beta"));
/// # Ok(()) });
/// ```
pub struct TenantConfig<U> {
    resolver: Option<Resolver<U>>,
    features: Option<Features>,
    source: TenantFrom,
    superusers_any_tenant: bool,
    across: bool,
    admin_across: bool,
    operators: Option<Operators<U>>,
}

impl<U> Clone for TenantConfig<U> {
    fn clone(&self) -> Self {
        TenantConfig {
            resolver: self.resolver.clone(),
            features: self.features.clone(),
            source: self.source.clone(),
            superusers_any_tenant: self.superusers_any_tenant,
            across: self.across,
            admin_across: self.admin_across,
            operators: self.operators.clone(),
        }
    }
}

impl<U> Default for TenantConfig<U> {
    fn default() -> Self {
        TenantConfig {
            resolver: None,
            features: None,
            source: TenantFrom::path("tenant"),
            superusers_any_tenant: false,
            across: false,
            admin_across: false,
            operators: None,
        }
    }
}

impl<U> TenantConfig<U> {
    /// No resolver (the tenant comes from the column, if the table maps one), no features,
    /// the `TenantPrincipal` extractor reading the path parameter `tenant`, no superuser
    /// bypass, no impersonation across tenants.
    ///
    /// ```
    /// # struct User;
    /// let config = crudauth::tenant::TenantConfig::<User>::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves the tenant at sign-in from the user and the sign-in request's headers (the
    /// `Host`, a tenant picker's header). It must answer only a tenant the user belongs to,
    /// and derive membership from data the user cannot choose at will: a membership table,
    /// or a verified address (`user.email_verified()`), never an address as registered,
    /// which anyone may give at any domain. The headers only choose among the user's
    /// tenants. Where a sign-in has no request (`auth.issue_tokens`, a device login's poll), the
    /// headers are empty. `build` refuses a resolver beside a tenant column.
    ///
    /// ```
    /// # #[derive(Clone)] struct User { org: String }
    /// let config = crudauth::tenant::TenantConfig::new()
    ///     .resolver(|user: &User, _headers| Some(user.org.clone()));
    /// ```
    pub fn resolver(
        mut self,
        f: impl Fn(&U, &HeaderMap) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Arc::new(f));
        self
    }

    /// Whether a tenant (`None`: a principal without one) has a feature: the app's own rule
    /// (a plan table in memory, a flag service's snapshot). It runs on every gated request:
    /// keep it cheap and non-blocking.
    ///
    /// ```
    /// # struct User;
    /// let config = crudauth::tenant::TenantConfig::<User>::new()
    ///     .features(|tenant, feature| tenant.is_some() && feature == "reports");
    /// ```
    pub fn features(
        mut self,
        f: impl Fn(Option<&str>, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.features = Some(Arc::new(f));
        self
    }

    /// Fixed per-tenant feature sets; a tenant not listed, and a principal without a tenant,
    /// has none.
    ///
    /// ```
    /// # struct User;
    /// let config = crudauth::tenant::TenantConfig::<User>::new()
    ///     .feature_sets([("acme", vec!["billing", "sso"]), ("globex", vec![])]);
    /// ```
    pub fn feature_sets<T, I, F>(self, sets: impl IntoIterator<Item = (T, I)>) -> Self
    where
        T: Into<String>,
        I: IntoIterator<Item = F>,
        F: Into<String>,
    {
        let sets: BTreeMap<String, BTreeSet<String>> = sets
            .into_iter()
            .map(|(t, fs)| (t.into(), fs.into_iter().map(Into::into).collect()))
            .collect();
        self.features(move |tenant, feature| {
            tenant
                .and_then(|t| sets.get(t))
                .is_some_and(|set| set.contains(feature))
        })
    }

    /// Where the `TenantPrincipal` extractor reads the tenant a request is about (the path
    /// parameter `tenant` by default). Gates name their own with `Gate::tenant_matches`.
    ///
    /// ```
    /// # struct User;
    /// let config = crudauth::tenant::TenantConfig::<User>::new()
    ///     .source(crudauth::tenant::TenantFrom::header("x-tenant"));
    /// ```
    pub fn source(mut self, from: TenantFrom) -> Self {
        self.source = from;
        self
    }

    /// Lets superusers through the `TenantPrincipal` extractor in any tenant (off by
    /// default). An impersonation is never a superuser's bypass: it has the impersonated
    /// user's flags.
    ///
    /// ```
    /// # struct User;
    /// let config = crudauth::tenant::TenantConfig::<User>::new().superusers_any_tenant();
    /// ```
    pub fn superusers_any_tenant(mut self) -> Self {
        self.superusers_any_tenant = true;
        self
    }

    /// Whether a superuser who belongs to a tenant may impersonate users of other tenants
    /// (feature `admin`; refused with 403 by default). A platform operator (see
    /// [`TenantConfig::platform_operators`]) may impersonate anyone either way.
    ///
    /// ```
    /// # struct User;
    /// let config = crudauth::tenant::TenantConfig::<User>::new().impersonation_across_tenants(true);
    /// ```
    pub fn impersonation_across_tenants(mut self, allowed: bool) -> Self {
        self.across = allowed;
        self
    }

    /// Whether a superuser who belongs to a tenant may administer users of other tenants
    /// through crudauth's own routes (feature `admin`: `GET /users` lists only the
    /// superuser's tenant, and `GET | PATCH | DELETE /users/{id}` answer 404 `Not Found`
    /// for another tenant's user; feature `api-keys`: a key for another tenant's service
    /// account is refused, 404 `User not found.`, and another tenant's keys are not listed,
    /// and are 404 to revoke or rotate). Off by default. The platform's
    /// operators (see [`TenantConfig::platform_operators`]) administer every tenant
    /// either way.
    ///
    /// ```
    /// # struct User;
    /// let config = crudauth::tenant::TenantConfig::<User>::new().administration_across_tenants(true);
    /// ```
    pub fn administration_across_tenants(mut self, allowed: bool) -> Self {
        self.admin_across = allowed;
        self
    }

    /// Which tenant-less superusers are the platform's operators, who may impersonate and
    /// administer users of every tenant. It counts only with a resolver: there, a
    /// superuser whose sign-in resolved to no tenant (an OAuth or device sign-in, which
    /// has no headers; a resolver that found nothing) is not an operator unless this says
    /// so, and then administers and impersonates nobody. With a tenant column, a superuser
    /// whose row has no tenant is the operator (the column says so), and this is not
    /// asked; without tenants, every superuser is one.
    ///
    /// ```
    /// # #[derive(Clone)] struct User { email: String }
    /// let config = crudauth::tenant::TenantConfig::new()
    ///     .resolver(|_: &User, _| None)
    ///     .platform_operators(|user: &User| user.email == "ops@platform.example");
    /// ```
    pub fn platform_operators(mut self, f: impl Fn(&U) -> bool + Send + Sync + 'static) -> Self {
        self.operators = Some(Arc::new(f));
        self
    }
}

/// The tenant settings as built, with where the tenant comes from (`auth.tenancy()`).
pub struct Tenancy<U> {
    config: TenantConfig<U>,
    column: bool,
}

impl<U: UserRecord> Tenancy<U> {
    pub(crate) fn new(
        config: Option<TenantConfig<U>>,
        schema: &UserSchema,
    ) -> Result<Self, ConfigError> {
        let config = config.unwrap_or_default();
        let column = schema.has(LogicalField::Tenant);
        if column && config.resolver.is_some() {
            return Err(ConfigError::Invalid(
                "tenants: the user table maps a tenant column and a resolver is given; choose one"
                    .into(),
            ));
        }
        Ok(Tenancy { config, column })
    }

    /// Whether the tenant is the user table's column (and so checked against the row on
    /// every request).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(!auth.tenancy().from_column()); // the fixture's table has no tenant column
    /// # Ok(()) });
    /// ```
    pub fn from_column(&self) -> bool {
        self.column
    }

    /// The tenant a sign-in of `user` gets: the column, or the resolver given the sign-in
    /// request's headers, or none.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let ann = crudauth::doc_fixture::user(&auth).await?;
    /// assert_eq!(auth.tenancy().of(&ann, &axum::http::HeaderMap::new()), None);
    /// # Ok(()) });
    /// ```
    pub fn of(&self, user: &U, headers: &HeaderMap) -> Option<String> {
        if self.column {
            return user.tenant();
        }
        self.config.resolver.as_ref().and_then(|f| f(user, headers))
    }

    /// Whether a credential issued under `carried` is still the user's: with a tenant
    /// column, the row's current tenant must be the carried one.
    pub(crate) fn still_member(&self, user: &U, carried: Option<&str>) -> bool {
        !self.column || user.tenant().as_deref() == carried
    }

    /// Whether `tenant` has `feature` (never, without a feature rule).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(!auth.tenancy().has_feature(Some("acme"), "billing")); // no rule configured
    /// # Ok(()) });
    /// ```
    pub fn has_feature(&self, tenant: Option<&str>, feature: &str) -> bool {
        self.config
            .features
            .as_ref()
            .is_some_and(|f| f(tenant, feature))
    }

    /// Where the `TenantPrincipal` extractor reads the request's tenant.
    pub(crate) fn source(&self) -> &TenantFrom {
        &self.config.source
    }

    /// Whether the `TenantPrincipal` extractor lets superusers into any tenant.
    pub(crate) fn superusers_any_tenant(&self) -> bool {
        self.config.superusers_any_tenant
    }

    /// Whether the superuser `admin` may impersonate `target`.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) fn may_impersonate(&self, admin: &crate::Principal<U>, target: &U) -> bool {
        self.config.across || self.same_tenant_or_operator(admin, target)
    }

    /// Whether the superuser `admin` may administer `target` (read, change, delete, make
    /// keys for) through crudauth's own routes.
    #[cfg_attr(not(any(feature = "admin", feature = "api-keys")), allow(dead_code))]
    pub(crate) fn may_administer(&self, admin: &crate::Principal<U>, target: &U) -> bool {
        self.config.admin_across || self.same_tenant_or_operator(admin, target)
    }

    /// Whether the superuser `admin` may administer what belongs to tenant `tenant` (another
    /// user's API key, kept with the tenant it was made in).
    #[cfg_attr(not(feature = "api-keys"), allow(dead_code))]
    pub(crate) fn may_administer_in(
        &self,
        admin: &crate::Principal<U>,
        tenant: Option<&str>,
    ) -> bool {
        self.config.admin_across || admin.tenant.as_deref() == tenant || self.is_operator(admin)
    }

    /// Whether `admin` is limited to its own tenant's users (and so a listing must be
    /// filtered): neither across tenants nor an operator.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) fn administers_one_tenant(&self, admin: &crate::Principal<U>) -> bool {
        !self.config.admin_across && !self.is_operator(admin)
    }

    /// The same tenant, or a tenant-less platform operator. A tenant-less admin who is no
    /// operator reaches tenant-less users only where that is a fact of the row (a tenant
    /// column): a resolver asked without a request may answer "none" for anyone.
    fn same_tenant_or_operator(&self, admin: &crate::Principal<U>, target: &U) -> bool {
        if self.is_operator(admin) {
            return true;
        }
        let target = self.of(target, &HeaderMap::new());
        match &admin.tenant {
            Some(tenant) => target.as_deref() == Some(tenant.as_str()),
            None => self.column && target.is_none(),
        }
    }

    /// A principal without a tenant whom the settings make the platform's operator: with a
    /// tenant column (a NULL column is a property of the row) or without tenants, every
    /// such one; with a resolver (a missing tenant proves nothing), only those
    /// [`TenantConfig::platform_operators`] names.
    fn is_operator(&self, admin: &crate::Principal<U>) -> bool {
        if admin.tenant.is_some() {
            return false;
        }
        if self.column || self.config.resolver.is_none() {
            return true;
        }
        self.config
            .operators
            .as_ref()
            .is_some_and(|f| f(admin.user.as_ref()))
    }
}
