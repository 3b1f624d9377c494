//! The secret key and the per-purpose keys derived from it with HKDF-SHA256.
//!
//! One secret key is configured; each purpose (session ids, CSRF tokens, JWTs, one-time
//! tokens) gets its own derived key, so a value made for one purpose never verifies for
//! another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::ConfigError;

type HmacSha256 = Hmac<Sha256>;

/// The derived keys.
#[derive(Clone)]
pub(crate) struct Keys {
    pub session: [u8; 32],
    pub csrf: [u8; 32],
    pub jwt: [u8; 32],
    pub store: [u8; 32],
    pub one_time: [u8; 32],
    /// Seals second-factor secrets at rest (feature `mfa`; unused without it).
    #[cfg_attr(not(feature = "mfa"), allow(dead_code))]
    pub mfa: [u8; 32],
    /// Hashes API keys at rest (feature `api-keys`; unused without it).
    #[cfg_attr(not(feature = "api-keys"), allow(dead_code))]
    pub api_key: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    pub fn derive(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < 32 {
            return Err(ConfigError::SecretTooShort);
        }
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"crudauth/v1"), secret);
        let expand = |info: &[u8]| {
            let mut out = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
            hk.expand(info, &mut out)
                .map(|()| out)
                .map_err(|_| ConfigError::Invalid("key derivation failed".into()))
        };
        Ok(Keys {
            session: expand(b"session-id")?,
            csrf: expand(b"csrf-token")?,
            jwt: expand(b"jwt-hs256")?,
            store: expand(b"store-key")?,
            one_time: expand(b"one-time-token")?,
            mfa: expand(b"mfa-secret-seal")?,
            api_key: expand(b"api-key-hash")?,
        })
    }
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_bytes(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of `data` under `key`, hex-encoded: how secrets are named at rest.
pub(crate) fn hmac_hex(key: &[u8; 32], data: &[u8]) -> String {
    hex(&hmac_bytes(key, data))
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether two secrets (or their digests) are equal, compared in constant time (a length
/// difference is answered at once: lengths are no secret here).
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// `N` bytes from the operating system's CSPRNG.
///
/// # Panics
/// If the operating system cannot provide randomness, which leaves nothing safe to do.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the OS random number generator failed");
    out
}

/// A random token: 32 bytes (256 bits) from the OS CSPRNG, base64url without padding.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Generates a fresh 32-byte secret key, base64url-encoded (for development setups that
/// have none configured).
///
/// ```
/// let key = crudauth::generate_secret_key();
/// assert!(key.len() >= 43);
/// ```
pub fn generate_secret_key() -> String {
    random_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            Keys::derive(b"short").unwrap_err(),
            ConfigError::SecretTooShort
        );
    }

    #[test]
    fn each_purpose_gets_its_own_key() {
        let keys = Keys::derive(&[7u8; 32]).unwrap();
        let all = [
            keys.session,
            keys.csrf,
            keys.jwt,
            keys.store,
            keys.one_time,
            keys.mfa,
            keys.api_key,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn random_tokens_are_256_bits_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }
}
