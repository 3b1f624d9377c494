//! The builder's administration switches (feature `admin`): the users admin routes and
//! impersonation.

use super::CrudAuthBuilder;
use crate::admin::{ImpersonationConfig, UsersAdminConfig};
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns on the users admin routes: `GET | PATCH /users/me` for every signed-in user,
    /// and for superusers `GET /users`, `GET | PATCH | DELETE /users/{id}` (the writes
    /// inside the sudo window). `build` refuses an allow-listed column that is not one of
    /// the table's own columns.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::admin::UsersAdminConfig;
    /// // The fixture's table has no columns of its own: an allow-list naming one is refused.
    /// let refused = b.users_admin(UsersAdminConfig::default().readable(["nickname"])).build();
    /// assert!(refused.is_err());
    /// # Ok(()) });
    /// ```
    pub fn users_admin(mut self, config: UsersAdminConfig) -> Self {
        self.methods.users_admin = Some(config);
        self
    }

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
