//! One-time tokens: 256-bit random values stored only as an HMAC that also covers their
//! purpose, one live token per user and purpose, redeemed by an atomic claim.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::AuthError;
use crate::keys::{hmac_hex, random_token};
use crate::store::{Store, StoreError, fail_closed};

/// What a one-time token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Verify,
    Reset,
    ChangeEmail,
}

impl Purpose {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify_email",
            Purpose::Reset => "reset_password",
            Purpose::ChangeEmail => "change_email",
        }
    }
}

/// A one-time token's stored record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct TokenRecord {
    /// The user id, textual (stored as `uid`).
    #[serde(rename = "uid")]
    pub(super) user_id: String,
    /// The user's revocation epoch at issue (stored as `ver`).
    #[serde(rename = "ver")]
    pub(super) epoch: i64,
    /// The (normalised) address the token was issued to or for.
    pub(super) email: String,
    /// For an email change: the new (normalised) address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) new_email: Option<String>,
    /// Unix seconds the token expires at (to put a claimed token back for the rest of its
    /// lifetime only). Absent in records written before it existed: those are not put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) exp: Option<i64>,
}

fn fault(e: StoreError) -> AuthError {
    fail_closed("one-time token store", &e)
}

/// One-time tokens in the store: hashed, purpose-bound, single-use, one live per user and
/// purpose.
#[derive(Clone)]
pub(crate) struct OneTimeTokens {
    pub(super) store: Arc<dyn Store>,
    pub(super) key: [u8; 32],
}

impl OneTimeTokens {
    fn digest(&self, purpose: Purpose, token: &str) -> String {
        hmac_hex(
            &self.key,
            format!("{}\0{token}", purpose.as_str()).as_bytes(),
        )
    }

    fn record_key(purpose: Purpose, digest: &str) -> String {
        format!("ott:{}:{digest}", purpose.as_str())
    }

    fn pointer_key(&self, purpose: Purpose, user_id: &str) -> String {
        let who = hmac_hex(&self.key, user_id.as_bytes());
        format!("ott:{}:user:{who}", purpose.as_str())
    }

    /// A token as sent: base64url, at most 128 characters. Anything else is not ours.
    fn well_formed(token: &str) -> bool {
        !token.is_empty()
            && token.len() <= 128
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    pub(super) async fn issue(
        &self,
        purpose: Purpose,
        record: &TokenRecord,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let token = random_token();
        let digest = self.digest(purpose, &token);
        let mut record = record.clone();
        record.exp = Some(crate::clock::system_secs() + ttl.as_secs() as i64);
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        if !self
            .store
            .set_if_absent(&Self::record_key(purpose, &digest), &bytes, Some(ttl))
            .await
            .map_err(fault)?
        {
            // 256 random bits never collide; refuse rather than overwrite if they do.
            return Err(AuthError::Internal);
        }
        // One live token per user and purpose: the pointer is swapped atomically (set-if-
        // absent, or compare-and-set against the value read), so every issuance retires
        // exactly the token it replaced, also when two run at once.
        let pointer = self.pointer_key(purpose, &record.user_id);
        let mut previous = None;
        let mut swapped = false;
        for _ in 0..8 {
            let current = self.store.get(&pointer).await.map_err(fault)?;
            swapped = match &current {
                None => self
                    .store
                    .set_if_absent(&pointer, digest.as_bytes(), Some(ttl))
                    .await
                    .map_err(fault)?,
                Some(bytes) => self
                    .store
                    .compare_and_set(&pointer, bytes, digest.as_bytes(), Some(ttl))
                    .await
                    .map_err(fault)?,
            };
            if swapped {
                previous = current;
                break;
            }
        }
        if !swapped {
            // Never left live without the pointer naming it.
            self.store
                .delete(&Self::record_key(purpose, &digest))
                .await
                .map_err(fault)?;
            tracing::warn!("one-time token pointer kept changing; issuance given up");
            return Err(AuthError::Unavailable);
        }
        if let Some(previous) = previous
            && let Ok(previous) = String::from_utf8(previous)
            && previous != digest
            && previous != CLAIMED
        {
            self.store
                .delete(&Self::record_key(purpose, &previous))
                .await
                .map_err(fault)?;
        }
        Ok(token)
    }

    /// Retires the user's live token of this purpose, if any.
    pub(super) async fn retire(&self, purpose: Purpose, user_id: &str) -> Result<(), AuthError> {
        let pointer = self.pointer_key(purpose, user_id);
        if let Some(previous) = self.store.get_and_delete(&pointer).await.map_err(fault)?
            && let Ok(previous) = String::from_utf8(previous)
        {
            self.store
                .delete(&Self::record_key(purpose, &previous))
                .await
                .map_err(fault)?;
        }
        Ok(())
    }

    /// Reads a token's record without consuming it (to validate a request first).
    pub(super) async fn peek(
        &self,
        purpose: Purpose,
        token: &str,
    ) -> Result<Option<TokenRecord>, AuthError> {
        if !Self::well_formed(token) {
            return Ok(None);
        }
        let key = Self::record_key(purpose, &self.digest(purpose, token));
        Ok(self
            .store
            .get(&key)
            .await
            .map_err(fault)?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Consumes a token: of concurrent callers, exactly one gets the record; a token that
    /// a newer one superseded yields nothing.
    pub(super) async fn redeem(
        &self,
        purpose: Purpose,
        token: &str,
    ) -> Result<Option<TokenRecord>, AuthError> {
        if !Self::well_formed(token) {
            return Ok(None);
        }
        let digest = self.digest(purpose, token);
        let Some(bytes) = self
            .store
            .get_and_delete(&Self::record_key(purpose, &digest))
            .await
            .map_err(fault)?
        else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<TokenRecord>(&bytes) else {
            return Ok(None);
        };
        // Still the user's live token? Checked and retired in one compare-and-set.
        let current = self
            .store
            .compare_and_set(
                &self.pointer_key(purpose, &record.user_id),
                digest.as_bytes(),
                CLAIMED.as_bytes(),
                Some(CLAIM_HOLD),
            )
            .await
            .map_err(fault)?;
        Ok(current.then_some(record))
    }

    /// Puts a token claimed by [`OneTimeTokens::redeem`] back, for the rest of its lifetime,
    /// unless it expired or a newer token replaced it meanwhile (the pointer no longer says
    /// "claimed"); `true` if it is live again. The pointer is given back first, by a
    /// compare-and-set, so a token superseded while it was claimed never comes back to life
    /// (a record restored after a newer issuance swapped the pointer is refused at redemption,
    /// since the pointer names the newer token).
    pub(super) async fn restore(
        &self,
        purpose: Purpose,
        token: &str,
        record: &TokenRecord,
    ) -> Result<bool, AuthError> {
        let Some(exp) = record.exp else {
            return Ok(false);
        };
        let left = exp - crate::clock::system_secs();
        if left <= 0 {
            return Ok(false);
        }
        let ttl = Duration::from_secs(left as u64);
        let digest = self.digest(purpose, token);
        if !self
            .store
            .compare_and_set(
                &self.pointer_key(purpose, &record.user_id),
                CLAIMED.as_bytes(),
                digest.as_bytes(),
                Some(ttl),
            )
            .await
            .map_err(fault)?
        {
            return Ok(false);
        }
        let bytes = serde_json::to_vec(record).map_err(|_| AuthError::Internal)?;
        self.store
            .set_if_absent(&Self::record_key(purpose, &digest), &bytes, Some(ttl))
            .await
            .map_err(fault)
    }
}

/// The pointer value of a token being redeemed (claimed, not yet spent or put back).
const CLAIMED: &str = "-";

/// How long a claimed token's pointer says "claimed": the longest a confirmation may take
/// between claiming a token and putting it back.
const CLAIM_HOLD: Duration = Duration::from_secs(60);
