//! One-time codes and magic links in the store. One live code per address (a new one
//! replaces it, and with it its link); the code kept only as a keyed hash bound to the
//! medium and the address; an attempt counter per code; a code spent, or killed after its
//! last attempt, by a compare-and-set on the exact record that was checked, so of
//! concurrent right answers exactly one signs in.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::store_fault;
use crate::delivery::Medium;
use crate::error::AuthError;
use crate::keys::{hmac_hex, random_bytes, random_token};
use crate::store::Store;

/// A code that is unknown, expired, spent, replaced or out of attempts, or a wrong one: the
/// same answer for all, so it tells nothing about the address.
pub(super) const INVALID: AuthError = AuthError::Unauthorized("Invalid or expired code");
/// A magic link that is unknown, expired, spent or replaced.
pub(super) const INVALID_LINK: AuthError = AuthError::BadRequest("Invalid or expired token");
/// A magic link opened in another browser than the one that asked (same-browser mode).
pub(super) const OTHER_BROWSER: AuthError =
    AuthError::BadRequest("Open the link in the browser that asked for it.");

/// A code's stored record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct CodeRecord {
    /// Random: names the attempt counter and ties the link to this code.
    pub id: String,
    /// The keyed hash of (medium, address, code).
    pub digest: String,
    /// The account the code was sent for; `None` for an address without one (sign-up).
    pub user_id: Option<String>,
    /// The account's revocation epoch when the code was sent.
    pub epoch: i64,
    /// Unix seconds the code dies at.
    pub exp: i64,
    /// The keyed hash of the asking browser's nonce (same-browser mode).
    pub browser: Option<String>,
}

/// A magic link's stored record: which code (and so which address) it opens.
#[derive(Serialize, Deserialize)]
struct LinkRecord {
    medium: String,
    address: String,
    id: String,
}

/// What a redeemed link or code was for.
pub(super) struct Redeemed {
    pub address: String,
    pub record: CodeRecord,
}

/// The value a spent or killed code's key holds for a moment (then a new request writes over
/// it).
const SPENT: &[u8] = b"-";

pub(super) struct Codes<'a> {
    pub store: &'a dyn Store,
    pub key: &'a [u8; 32],
    pub max_attempts: u32,
}

fn now() -> i64 {
    crate::clock::system_secs()
}

/// Six uniformly drawn decimal digits.
fn six_digits() -> String {
    loop {
        let n = u32::from_be_bytes(random_bytes::<4>());
        // Rejection sampling: 4_294_000_000 is the largest multiple of 1e6 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

impl Codes<'_> {
    fn address_key(&self, medium: Medium, address: &str) -> String {
        let data = format!("otp-address\0{}\0{address}", medium.as_str());
        format!("otp:{}", hmac_hex(self.key, data.as_bytes()))
    }

    fn digest(&self, medium: Medium, address: &str, code: &str) -> String {
        let data = format!("otp-code\0{}\0{address}\0{code}", medium.as_str());
        hmac_hex(self.key, data.as_bytes())
    }

    fn link_key(&self, token: &str) -> String {
        let data = format!("otp-link\0{token}");
        format!("otp_link:{}", hmac_hex(self.key, data.as_bytes()))
    }

    /// The keyed hash a same-browser nonce is kept as.
    pub(super) fn browser_digest(&self, nonce: &str) -> String {
        hmac_hex(self.key, format!("otp-browser\0{nonce}").as_bytes())
    }

    /// Issues a code for the address (replacing any live one, and its link) and, when
    /// `link` is asked for, a magic link token; answers (code, token).
    pub(super) async fn issue(
        &self,
        (medium, address): (Medium, &str),
        (user_id, epoch): (Option<String>, i64),
        browser: Option<String>,
        (ttl, link): (Duration, bool),
    ) -> Result<(String, Option<String>), AuthError> {
        let code = six_digits();
        let id = random_token();
        let record = CodeRecord {
            id: id.clone(),
            digest: self.digest(medium, address, &code),
            user_id,
            epoch,
            exp: now() + ttl.as_secs() as i64,
            browser,
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        let key = self.address_key(medium, address);
        self.store
            .set(&key, &bytes, Some(ttl))
            .await
            .map_err(store_fault)?;
        if !link {
            return Ok((code, None));
        }
        let token = random_token();
        let link = LinkRecord {
            medium: medium.as_str().to_owned(),
            address: address.to_owned(),
            id,
        };
        let bytes = serde_json::to_vec(&link).map_err(|_| AuthError::Internal)?;
        if !self
            .store
            .set_if_absent(&self.link_key(&token), &bytes, Some(ttl))
            .await
            .map_err(store_fault)?
        {
            return Err(AuthError::Internal); // 256 random bits never collide
        }
        Ok((code, Some(token)))
    }

    async fn load(&self, key: &str) -> Result<Option<(Vec<u8>, CodeRecord)>, AuthError> {
        let raw = self.store.get(key).await.map_err(store_fault)?;
        Ok(raw.and_then(|raw| {
            let record: CodeRecord = serde_json::from_slice(&raw).ok()?;
            (record.exp > now()).then_some((raw, record))
        }))
    }

    /// Ends the exact record that was read (a compare-and-set): `true` for the one caller
    /// that did.
    async fn spend(&self, key: &str, raw: &[u8]) -> Result<bool, AuthError> {
        self.store
            .compare_and_set(key, raw, SPENT, Some(Duration::from_secs(1)))
            .await
            .map_err(store_fault)
    }

    /// Checks a code for the address: one attempt counted on the code; a right code spent.
    pub(super) async fn check(
        &self,
        medium: Medium,
        address: &str,
        code: &str,
    ) -> Result<CodeRecord, AuthError> {
        let key = self.address_key(medium, address);
        let Some((raw, record)) = self.load(&key).await? else {
            // The same store round trip and hash as a live code's wrong answer: the time
            // does not tell whether the address was sent a code (so has an account).
            let dummy = format!("otp_try:none:{key}");
            self.store
                .incr(&dummy, 1, Duration::from_secs(1))
                .await
                .map_err(store_fault)?;
            let _ = self.digest(medium, address, code);
            return Err(INVALID);
        };
        let left = Duration::from_secs((record.exp - now()).max(1) as u64);
        let attempts = self
            .store
            .incr(&format!("otp_try:{}", record.id), 1, left)
            .await
            .map_err(store_fault)?;
        let max = i64::from(self.max_attempts);
        if attempts > max {
            self.spend(&key, &raw).await?;
            return Err(INVALID);
        }
        let presented = self.digest(medium, address, code);
        if !crate::keys::same_secret(&presented, &record.digest) {
            if attempts >= max {
                // The last attempt: the code (and its link) dies now.
                self.spend(&key, &raw).await?;
            }
            return Err(INVALID);
        }
        if !self.spend(&key, &raw).await? {
            return Err(INVALID); // spent or replaced meanwhile
        }
        Ok(record)
    }

    /// Redeems a magic link: single use, and (when the code was asked for with a browser
    /// nonce) only from the browser holding it, which a wrong browser does not spend.
    pub(super) async fn redeem_link(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<(Medium, Redeemed), AuthError> {
        let well_formed = !token.is_empty()
            && token.len() <= 128
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(INVALID_LINK);
        }
        let link_key = self.link_key(token);
        let link: LinkRecord = match self.store.get(&link_key).await.map_err(store_fault)? {
            Some(raw) => serde_json::from_slice(&raw).map_err(|_| INVALID_LINK)?,
            None => return Err(INVALID_LINK),
        };
        let medium = match link.medium.as_str() {
            "email" => Medium::Email,
            "sms" => Medium::Sms,
            _ => return Err(INVALID_LINK),
        };
        let key = self.address_key(medium, &link.address);
        let Some((raw, record)) = self.load(&key).await? else {
            return Err(INVALID_LINK);
        };
        if record.id != link.id {
            return Err(INVALID_LINK); // a newer code replaced this one
        }
        if let Some(expected) = &record.browser {
            let presented = nonce.map(|n| self.browser_digest(n)).unwrap_or_default();
            if !crate::keys::same_secret(&presented, expected) {
                return Err(OTHER_BROWSER);
            }
        }
        // Single use: the link's claim, then the code's, each for one caller.
        if self
            .store
            .get_and_delete(&link_key)
            .await
            .map_err(store_fault)?
            .is_none()
            || !self.spend(&key, &raw).await?
        {
            return Err(INVALID_LINK);
        }
        Ok((
            medium,
            Redeemed {
                address: link.address,
                record,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::six_digits;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let c = six_digits();
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
    }
}
