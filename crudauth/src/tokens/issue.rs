//! Starting a refresh family: [`TokenService::issue`] and, under a tenant,
//! [`TokenService::issue_in`].

use crate::clock::now_secs;
use crate::error::AuthError;
use crate::keys::random_token;

use super::family::{FamilyRecord, family_key, index_key};
use super::{TokenPair, TokenService, store_fault};

impl TokenService {
    /// Mints an access + refresh pair starting a new refresh family (listed in the user's
    /// index, with the absolute lifetime counted from now).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
    /// assert_eq!(tokens.families("1").await?.len(), 1); // a new refresh family
    /// # Ok(()) });
    /// ```
    pub async fn issue(
        &self,
        sub: &str,
        epoch: i64,
        scopes: Vec<String>,
    ) -> Result<TokenPair, AuthError> {
        self.issue_in(sub, epoch, scopes, None).await
    }

    /// [`TokenService::issue`] under a tenant (the `tid` claim of both tokens and of every
    /// rotation; see [`crate::tenant`]).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// let pair = tokens.issue_in("1", 0, vec![], Some("acme".into())).await?;
    /// assert_eq!(tokens.verify_access(&pair.access_token)?.tenant.as_deref(), Some("acme"));
    /// # Ok(()) });
    /// ```
    pub async fn issue_in(
        &self,
        sub: &str,
        epoch: i64,
        scopes: Vec<String>,
        tenant: Option<String>,
    ) -> Result<TokenPair, AuthError> {
        let config = &self.inner.config;
        let store = &self.inner.store;
        let fam = random_token();
        let now = now_secs();
        // Indexed first: a family that exists is always findable by "sign out everywhere"
        // (an index entry whose record never got written is dropped when listed).
        store
            .index_add(&index_key(sub), &fam, config.refresh_family_lifetime)
            .await
            .map_err(store_fault)?;
        let ttl = config.refresh_ttl.min(config.refresh_family_lifetime);
        let (pair, jti) = self.mint(sub, epoch, &scopes, (&fam, tenant.as_deref()), ttl)?;
        let record = FamilyRecord {
            jti,
            user_id: sub.to_owned(),
            created: now,
            rotated: now,
            scopes,
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        if !store
            .set_if_absent(&family_key(&fam), &bytes, Some(ttl))
            .await
            .map_err(store_fault)?
        {
            // A 256-bit collision: never adopt another family.
            return Err(AuthError::Internal);
        }
        Ok(pair)
    }
}
