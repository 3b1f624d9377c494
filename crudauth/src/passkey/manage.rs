//! A user's passkeys: listing, renaming, removing (never the last way in), forgetting.

use serde::Serialize;

use super::ceremony::clean_name;
use super::{Passkeys, StoredPasskey, store_fault};
use crate::error::AuthError;
use crate::password::is_unusable_password;
use crate::principal::Principal;
use crate::user::{UserId, UserRecord};

/// A passkey as its owner sees it (no key material).
///
/// ```
/// let info = crudauth::passkey::PasskeyInfo { id: "AAEC".into(), name: "Laptop".into(),
///     created_at: 1, last_used_at: None };
/// assert_eq!(serde_json::to_value(&info).unwrap()["name"], "Laptop");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PasskeyInfo {
    /// The credential id (base64url), the id of `PATCH` and `DELETE /passkeys/{id}`.
    pub id: String,
    /// The name its owner gave it.
    pub name: String,
    /// Unix seconds of its registration.
    pub created_at: i64,
    /// Unix seconds of its last sign-in.
    pub last_used_at: Option<i64>,
}

impl PasskeyInfo {
    pub(crate) fn of(stored: &StoredPasskey) -> Self {
        PasskeyInfo {
            id: stored.credential_id.clone(),
            name: stored.name.clone(),
            created_at: stored.created_at,
            last_used_at: stored.last_used_at,
        }
    }
}

const NOT_FOUND: AuthError = AuthError::NotFound("Passkey not found.");
const LAST_WAY: AuthError = AuthError::BadRequest(
    "This is the last way to sign in to this account: set a password or add another passkey first.",
);

impl<U: UserRecord> Passkeys<U> {
    /// The user's passkeys, oldest first.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.passkeys(crudauth::passkey::PasskeyConfig::new("example.com", "https://example.com")).build()?;
    /// let passkeys = auth.passkeys().unwrap();
    /// assert!(passkeys.list(&crudauth::UserId::Int(1)).await?.is_empty());
    /// # Ok(()) });
    /// ```
    pub async fn list(&self, user: &UserId) -> Result<Vec<PasskeyInfo>, AuthError> {
        let stored = (self.parts.store)
            .for_user(&user.to_string())
            .await
            .map_err(store_fault)?;
        Ok(stored.iter().map(PasskeyInfo::of).collect())
    }

    /// Renames one of the principal's passkeys (404 for another user's).
    pub(crate) async fn rename(
        &self,
        principal: &Principal<U>,
        id: &str,
        name: &str,
    ) -> Result<PasskeyInfo, AuthError> {
        let name = clean_name(Some(name))?;
        let uid = principal.user_id.to_string();
        if !(self.parts.store)
            .rename(&uid, id, &name)
            .await
            .map_err(store_fault)?
        {
            return Err(NOT_FOUND);
        }
        let stored = (self.parts.store.find(id).await.map_err(store_fault)?)
            .filter(|s| s.user_id == uid)
            .ok_or(NOT_FOUND)?;
        Ok(PasskeyInfo::of(&stored))
    }

    /// Whether the user has a way to sign in other than passkeys: a usable password, or a
    /// provider link.
    async fn other_way_in(&self, user: &U) -> Result<bool, AuthError> {
        let has_password = user
            .password_hash()
            .is_some_and(|h| !h.is_empty() && !is_unusable_password(h));
        if has_password {
            return Ok(true);
        }
        if let Some(other_ways) = &self.parts.other_ways {
            return other_ways(user.user_id().to_string())
                .await
                .map_err(store_fault);
        }
        Ok(false)
    }

    /// Removes one of the principal's passkeys: from a recent sign-in or sudo, and never
    /// the last way to sign in (400 then); 404 for another user's.
    pub(crate) async fn remove(&self, principal: &Principal<U>, id: &str) -> Result<(), AuthError> {
        self.login.require_recent_sign_in(principal)?;
        let uid = principal.user_id.to_string();
        let store = &self.parts.store;
        let mine = store.for_user(&uid).await.map_err(store_fault)?;
        let Some(removed) = mine.iter().find(|p| p.credential_id == id).cloned() else {
            return Err(NOT_FOUND);
        };
        let other_way = self.other_way_in(principal.user.as_ref()).await?;
        if !other_way && mine.len() == 1 {
            return Err(LAST_WAY);
        }
        if !store.delete(&uid, id).await.map_err(store_fault)? {
            return Err(NOT_FOUND);
        }
        // Two removals at once (or a removal and a provider unlink) could each see the
        // other's way in still there: whoever finds none left after its own delete puts
        // its passkey back.
        if store.for_user(&uid).await.map_err(store_fault)?.is_empty()
            && !self.other_way_in(principal.user.as_ref()).await?
        {
            store.insert(&removed).await.map_err(store_fault)?;
            return Err(LAST_WAY);
        }
        crate::audit::emit(&crate::audit::AuditEvent {
            user_id: Some(uid.to_string()),
            credential_id: Some(id.to_string()),
            ..crate::audit::AuditEvent::new("passkey_removed", crate::audit::Outcome::Success)
        });
        Ok(())
    }

    /// Removes every passkey of a user: call it when the app deletes a user.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.passkeys(crudauth::passkey::PasskeyConfig::new("example.com", "https://example.com")).build()?;
    /// assert_eq!(auth.passkeys().unwrap().forget_user(&crudauth::UserId::Int(1)).await?, 0);
    /// # Ok(()) });
    /// ```
    pub async fn forget_user(&self, user: &UserId) -> Result<usize, AuthError> {
        (self.parts.store)
            .delete_all(&user.to_string())
            .await
            .map_err(store_fault)
    }
}
