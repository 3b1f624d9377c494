//! The builder's users admin switch (feature `admin`).

use super::CrudAuthBuilder;
use crate::admin::UsersAdminConfig;
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
}
