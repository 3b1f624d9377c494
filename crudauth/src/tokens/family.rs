//! Refresh-token families: the stored record of each family, the per-user index, and the
//! family-management half of [`TokenService`] (listing, revoking, ending).

use serde::{Deserialize, Serialize};

use super::{Claims, TokenService, secs, store_fault};
use crate::clock::now_secs;
use crate::error::AuthError;
use crate::keys::hmac_hex;

/// A refresh-token family as its owner sees it: no token, no secret.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
/// tokens.issue("1", 0, vec!["me:read".into()]).await?;
/// for family in tokens.families("1").await? {
///     println!("{} signed in at {}, scopes {:?}", family.id, family.created, family.scopes);
///     assert_eq!(family.scopes, ["me:read"]);
/// }
/// # Ok(()) });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenFamily {
    /// The public handle of the family (an HMAC of its id), for
    /// [`TokenService::revoke_family_by_id`] and `DELETE /tokens/{id}`.
    pub id: String,
    /// When the family was started (unix seconds): the sign-in.
    pub created: i64,
    /// When its current refresh token was minted (unix seconds; `created` if never rotated).
    pub rotated: i64,
    /// When the family ends at the latest (unix seconds): its absolute lifetime.
    pub expires: i64,
    /// The scopes of its current tokens.
    pub scopes: Vec<String>,
}

/// The stored record of a refresh family.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct FamilyRecord {
    /// The `jti` of the family's one current refresh token.
    pub(super) jti: String,
    /// The owner (textual user id; stored as `uid`).
    #[serde(rename = "uid")]
    pub(super) user_id: String,
    /// Unix seconds of the sign-in that started the family.
    pub(super) created: i64,
    /// Unix seconds of the last rotation.
    pub(super) rotated: i64,
    /// The scopes of the current tokens.
    pub(super) scopes: Vec<String>,
}

pub(super) fn family_key(fam: &str) -> String {
    format!("refresh:{fam}")
}

/// The per-user index of refresh families (members: family ids).
pub(super) fn index_key(user_id: &str) -> String {
    format!("refresh-families:{user_id}")
}

impl TokenService {
    /// The public handle of a family id.
    fn family_id(&self, fam: &str) -> String {
        hmac_hex(&self.inner.handle_key, fam.as_bytes())
    }

    /// Unix seconds at which a family ends at the latest.
    pub(super) fn family_end(&self, record: &FamilyRecord) -> i64 {
        record
            .created
            .saturating_add(secs(self.inner.config.refresh_family_lifetime))
    }

    /// Ends a family: its record and its index entry.
    pub(super) async fn end_family(&self, fam: &str, user_id: &str) -> Result<bool, AuthError> {
        let store = &self.inner.store;
        let removed = store.delete(&family_key(fam)).await.map_err(store_fault)?;
        store
            .index_remove(&index_key(user_id), fam)
            .await
            .map_err(store_fault)?;
        Ok(removed)
    }

    /// The family record behind a refresh token's claims, with its raw bytes; `None` when
    /// the family is gone or unreadable (an unreadable record is dropped).
    pub(super) async fn load_family(
        &self,
        fam: &str,
        user_id: &str,
    ) -> Result<Option<(FamilyRecord, Vec<u8>)>, AuthError> {
        let Some(bytes) = self
            .inner
            .store
            .get(&family_key(fam))
            .await
            .map_err(store_fault)?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<FamilyRecord>(&bytes) {
            Ok(record) if record.user_id == user_id => Ok(Some((record, bytes))),
            // Signed by us but naming another user's family: never touch that family.
            Ok(_) => Ok(None),
            Err(_) => {
                tracing::warn!("unreadable refresh-family record dropped");
                self.end_family(fam, user_id).await?;
                Ok(None)
            }
        }
    }

    /// Revokes the family of a refresh token's claims.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// # let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
    /// let claims = tokens.check_refresh(&pair.refresh_token).await?;
    /// tokens.revoke_family(&claims).await?;
    /// assert!(tokens.check_refresh(&pair.refresh_token).await.is_err());
    /// # Ok(()) });
    /// ```
    pub async fn revoke_family(&self, claims: &Claims) -> Result<(), AuthError> {
        if let Some(fam) = &claims.fam {
            self.end_family(fam, &claims.sub).await?;
        }
        Ok(())
    }

    /// Revokes the family of a presented refresh token (a logout): the token must carry a
    /// valid signature, be unexpired and be a refresh token; it need not be the family's
    /// current one. Returns its claims when a live family was ended, `None` otherwise (an
    /// invalid token, or a family already gone).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// # let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
    /// if let Some(claims) = tokens.revoke_refresh_token(&pair.refresh_token).await? {
    ///     println!("signed out user {}", claims.sub);
    /// }
    /// assert!(tokens.revoke_refresh_token(&pair.refresh_token).await?.is_none()); // already ended
    /// # Ok(()) });
    /// ```
    pub async fn revoke_refresh_token(&self, token: &str) -> Result<Option<Claims>, AuthError> {
        let Ok(claims) = self.inner.keys.verify_refresh(token) else {
            return Ok(None);
        };
        let Some(fam) = claims
            .fam
            .as_deref()
            .filter(|_| claims.token_type == "refresh")
        else {
            return Ok(None);
        };
        if self.load_family(fam, &claims.sub).await?.is_none() {
            return Ok(None);
        }
        let ended = self.end_family(fam, &claims.sub).await?;
        Ok(ended.then_some(claims))
    }

    /// A user's live refresh families, most recently rotated first. Entries of the index
    /// whose family is gone are dropped on the way.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// tokens.issue("1", 0, vec![]).await?;
    /// tokens.issue("1", 0, vec![]).await?;
    /// let families = tokens.families("1").await?;
    /// assert_eq!(families.len(), 2); // two signed-in token clients
    /// # Ok(()) });
    /// ```
    pub async fn families(&self, user_id: &str) -> Result<Vec<TokenFamily>, AuthError> {
        let store = &self.inner.store;
        let now = now_secs();
        let mut out = Vec::new();
        for fam in store
            .index_members(&index_key(user_id))
            .await
            .map_err(store_fault)?
        {
            match self.load_family(&fam, user_id).await? {
                Some((record, _)) if now < self.family_end(&record) => out.push(TokenFamily {
                    id: self.family_id(&fam),
                    created: record.created,
                    rotated: record.rotated,
                    expires: self.family_end(&record),
                    scopes: record.scopes,
                }),
                Some(_) => {
                    self.end_family(&fam, user_id).await?;
                }
                None => {
                    store
                        .index_remove(&index_key(user_id), &fam)
                        .await
                        .map_err(store_fault)?;
                }
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse((f.rotated, f.created)));
        Ok(out)
    }

    /// Revokes one of the user's families by its public handle ([`TokenFamily::id`]).
    /// `false` when the user has no live family with that handle (unknown, gone, or
    /// another user's: they are indistinguishable).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// # let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
    /// let id = tokens.families("1").await?[0].id.clone();
    /// assert!(!tokens.revoke_family_by_id("2", &id).await?); // not user 2's family
    /// assert!(tokens.revoke_family_by_id("1", &id).await?);
    /// # Ok(()) });
    /// ```
    pub async fn revoke_family_by_id(&self, user_id: &str, id: &str) -> Result<bool, AuthError> {
        let members = self
            .inner
            .store
            .index_members(&index_key(user_id))
            .await
            .map_err(store_fault)?;
        let Some(fam) = members.into_iter().find(|fam| self.family_id(fam) == id) else {
            return Ok(false);
        };
        self.end_family(&fam, user_id).await
    }

    /// Revokes every refresh family of a user ("sign out everywhere"); returns how many
    /// ended. Access tokens already minted stay valid until they expire: bump the user's
    /// epoch (`auth.revocation().bump(&user)`) to end them at once, as `/logout-all` does.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// tokens.issue("1", 0, vec![]).await?;
    /// tokens.issue("1", 0, vec![]).await?;
    /// let ended = tokens.revoke_all_families("1").await?;
    /// assert_eq!(ended, 2);
    /// # Ok(()) });
    /// ```
    pub async fn revoke_all_families(&self, user_id: &str) -> Result<usize, AuthError> {
        let members = self
            .inner
            .store
            .index_members(&index_key(user_id))
            .await
            .map_err(store_fault)?;
        let mut ended = 0;
        for fam in members {
            if self.end_family(&fam, user_id).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }
}
