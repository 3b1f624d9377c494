//! The tenant and feature extractors: [`TenantPrincipal`] (the request is about the
//! principal's own tenant) and [`RequireFeature`] (the principal's tenant has a feature),
//! the typed forms of `Gate::tenant_matches` and `Gate::feature`; and `auth.tenancy()`.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::error::AuthError;
use crate::facade::CrudAuth;
use crate::principal::Principal;
use crate::tenant::Tenancy;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The tenant settings as built (see [`crate::tenant`]).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(!auth.tenancy().has_feature(None, "billing"));
    /// # Ok(()) });
    /// ```
    pub fn tenancy(&self) -> &Tenancy<U> {
        &self.core().tenancy
    }
}

/// A principal whose tenant is the one the request is about, read where the builder's
/// `TenantConfig::source` says (the path parameter `tenant` by default): 401 when nobody
/// is authenticated, 404 `Not Found` for a principal of another tenant or of none (and for
/// a request naming no tenant), as `Gate::tenant_matches` answers. The second field is the
/// tenant. Superusers pass in any tenant only with `TenantConfig::superusers_any_tenant`.
///
/// ```
/// # use crudauth::doc_fixture::User;
/// use crudauth::TenantPrincipal;
/// async fn invoices(TenantPrincipal(who, tenant): TenantPrincipal<User>) -> String {
///     format!("{} reads the invoices of {tenant}", who.user_id)
/// }
/// # crudauth::doc_fixture::run(async |auth| {
/// use tower::ServiceExt; // `oneshot`: one request, no server
/// let app = axum::Router::new().route("/t/{tenant}/invoices", axum::routing::get(invoices)).with_state(auth.clone());
/// # let request = crudauth::doc_fixture::signed_in_request(&auth, "ann", axum::http::Method::GET, "/t/acme/invoices").await?;
/// let response = app.oneshot(request).await?;
/// assert_eq!(response.status(), 404); // Ann belongs to no tenant
/// # Ok(()) });
/// ```
#[derive(Clone, Debug)]
pub struct TenantPrincipal<U>(pub Principal<U>, pub String);

impl<S, U> FromRequestParts<S> for TenantPrincipal<U>
where
    S: Send + Sync,
    U: UserRecord,
    CrudAuth<U>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal =
            <Principal<U> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        let auth = CrudAuth::<U>::from_ref(state);
        let tenancy = auth.tenancy();
        let not_found = AuthError::NotFound("Not Found");
        let requested = tenancy
            .source()
            .read(parts)
            .await
            .ok_or(not_found.clone())?;
        let bypass = tenancy.superusers_any_tenant() && principal.is_superuser;
        if !bypass && principal.tenant.as_deref() != Some(requested.as_str()) {
            return Err(not_found);
        }
        Ok(TenantPrincipal(principal, requested))
    }
}

/// A feature's name, for the typed [`RequireFeature`] extractor.
///
/// ```
/// struct Billing;
/// impl crudauth::FeatureName for Billing {
///     const NAME: &'static str = "billing";
/// }
/// assert_eq!(<Billing as crudauth::FeatureName>::NAME, "billing");
/// ```
pub trait FeatureName: Send + Sync + 'static {
    /// The feature, as the builder's feature rule knows it.
    const NAME: &'static str;
}

/// A principal whose tenant has the feature `F`, as the builder's tenant settings decide
/// (`TenantConfig::features` or `feature_sets`): 401 when nobody is authenticated, 403
/// `Feature not available for this tenant.` otherwise, as `Gate::feature` answers. With
/// `TenantConfig::superusers_any_tenant`, a superuser's request that names a tenant (at
/// `TenantConfig::source`) is checked against that tenant's features.
///
/// ```
/// # use crudauth::doc_fixture::User;
/// use crudauth::{FeatureName, RequireFeature};
/// struct Billing;
/// impl FeatureName for Billing { const NAME: &'static str = "billing"; }
///
/// async fn billing(RequireFeature(who, _): RequireFeature<User, Billing>) -> String {
///     format!("billing for {}", who.user_id)
/// }
/// # crudauth::doc_fixture::run(async |auth| {
/// use tower::ServiceExt; // `oneshot`: one request, no server
/// let app = axum::Router::new().route("/billing", axum::routing::get(billing)).with_state(auth.clone());
/// # let request = crudauth::doc_fixture::signed_in_request(&auth, "ann", axum::http::Method::GET, "/billing").await?;
/// let response = app.oneshot(request).await?;
/// assert_eq!(response.status(), 403); // no tenant, no features
/// # Ok(()) });
/// ```
pub struct RequireFeature<U, F>(pub Principal<U>, pub PhantomData<F>);

impl<U: Clone, F> Clone for RequireFeature<U, F> {
    fn clone(&self) -> Self {
        RequireFeature(self.0.clone(), PhantomData)
    }
}

impl<U, F: FeatureName> std::fmt::Debug for RequireFeature<U, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequireFeature")
            .field(&self.0)
            .field(&F::NAME)
            .finish()
    }
}

impl<S, U, F> FromRequestParts<S> for RequireFeature<U, F>
where
    S: Send + Sync,
    U: UserRecord,
    F: FeatureName,
    CrudAuth<U>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal =
            <Principal<U> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        let auth = CrudAuth::<U>::from_ref(state);
        let tenancy = auth.tenancy();
        // A superuser the `TenantPrincipal` extractor lets into any tenant acts in the
        // tenant the request names: that tenant's features count, not their own.
        let requested = if tenancy.superusers_any_tenant() && principal.is_superuser {
            tenancy.source().read(parts).await
        } else {
            None
        };
        let tenant = requested.as_deref().or(principal.tenant.as_deref());
        if !tenancy.has_feature(tenant, F::NAME) {
            return Err(AuthError::Forbidden(
                "Feature not available for this tenant.",
            ));
        }
        Ok(RequireFeature(principal, PhantomData))
    }
}
