//! The builder's administration switches (feature `admin`).

use super::CrudAuthBuilder;
use crate::admin::ImpersonationConfig;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns on impersonation: `POST /admin/users/{id}/token` (with a bearer transport),
    /// `POST /admin/users/{id}/impersonate` and `POST /admin/impersonation/stop` (with a
    /// session transport). `build` refuses a lifetime over an hour.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::admin::ImpersonationConfig;
    /// let auth = b.impersonation(ImpersonationConfig::default()).build()?;
    /// assert!(auth.impersonation().is_some());
    /// # Ok(()) });
    /// ```
    pub fn impersonation(mut self, config: ImpersonationConfig) -> Self {
        self.methods.impersonation = Some(config);
        self
    }
}
