//! The builder's tenant settings.

use super::CrudAuthBuilder;
use crate::tenant::TenantConfig;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// The tenant settings: a resolver (when the user table maps no tenant column), the
    /// per-tenant features, where the `TenantPrincipal` extractor reads a request's tenant,
    /// and the superuser and impersonation rules (see [`crate::tenant`]). Without it, the
    /// tenant is the user table's column if it maps one, and no tenant has any feature.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::tenant::{TenantConfig, TenantFrom};
    /// let auth = b
    ///     .tenants(TenantConfig::new().source(TenantFrom::path("org")).feature_sets([("acme", ["billing"])]))
    ///     .build()?;
    /// assert!(auth.tenancy().has_feature(Some("acme"), "billing"));
    /// # Ok(()) });
    /// ```
    pub fn tenants(mut self, config: TenantConfig<U>) -> Self {
        self.tenants = Some(config);
        self
    }
}
