//! The builder's development switch (feature `dev-bypass`; never in a release build).

use super::CrudAuthBuilder;
use crate::dev::DevBypass;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns the development bypass on: every request from a loopback client is signed in
    /// as the configured user, without a credential. `build` refuses it unless the bound
    /// address it was given is loopback; see [`crate::dev`] for all three guards.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::dev::DevBypass;
    /// let bound = "127.0.0.1:3000".parse()?;
    /// let auth = b.dev_bypass(DevBypass::login("ann@example.com", bound)).build()?;
    /// # Ok(()) });
    /// ```
    pub fn dev_bypass(mut self, bypass: DevBypass<U>) -> Self {
        self.dev_bypass = Some(bypass);
        self
    }
}
