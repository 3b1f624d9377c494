//! A session signed in under a tenant.

use super::{NewSession, Sessions};
use crate::error::AuthError;

// Only the rustdoc links name it.
#[cfg(doc)]
use super::SessionRecord;

impl Sessions {
    /// [`Sessions::create_via`] under a tenant (the record's [`SessionRecord::tenant`]; see
    /// [`crate::tenant`]). With a tenant column, an app that signs users in from its own
    /// routes creates their sessions here with `auth.tenancy().of(&user, &headers)`: a
    /// session whose tenant is not the row's is refused.
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, _, _| {
    /// let new = sessions.create_in("1", 0, ("203.0.113.9", "Mozilla/5.0"), None, Some("acme".into())).await?;
    /// let live = sessions.resolve(&new.id).await?.expect("just created");
    /// assert_eq!(live.record.tenant.as_deref(), Some("acme"));
    /// # Ok(()) });
    /// ```
    pub async fn create_in(
        &self,
        user_id: &str,
        epoch: i64,
        client: (&str, &str),
        method: Option<(&str, &str)>,
        tenant: Option<String>,
    ) -> Result<NewSession, AuthError> {
        self.create_record(user_id, epoch, client, method, (None, tenant))
            .await
    }
}
