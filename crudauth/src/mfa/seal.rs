//! TOTP secrets at rest: XChaCha20-Poly1305 (RustCrypto), a random 192-bit nonce per seal,
//! the user id and the record's purpose as associated data (a ciphertext copied to another
//! user's row, or from a pending slot to a confirmed one, fails to open), and key rotation:
//! the first key seals, every key opens. Text form: `v1.<key id>.<base64url(nonce ‖ ct)>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// The sealing keys, first first.
#[derive(Clone)]
pub(crate) struct Seal {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seal({} keys)", self.keys.len())
    }
}

/// A short public name of a key (so opening tries the right one first).
fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::digest([b"crudauth-mfa-key-id".as_slice(), key].concat());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn aad(user_id: &str, purpose: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_id.len() + purpose.len() + 16);
    for part in [user_id, purpose] {
        out.extend((part.len() as u64).to_be_bytes());
        out.extend(part.as_bytes());
    }
    out
}

impl Seal {
    pub(crate) fn new(keys: Vec<[u8; 32]>) -> Self {
        Seal { keys }
    }

    /// Seals `plain` for `user_id` and `purpose`.
    pub(crate) fn seal(&self, user_id: &str, purpose: &str, plain: &[u8]) -> Option<String> {
        let key = self.keys.first()?;
        let cipher = XChaCha20Poly1305::new(&Key::from(*key));
        let nonce = crate::keys::random_bytes::<24>();
        let aad = aad(user_id, purpose);
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .ok()?;
        let body = [nonce.as_slice(), &sealed].concat();
        Some(format!(
            "v1.{}.{}",
            key_id(key),
            URL_SAFE_NO_PAD.encode(body)
        ))
    }

    /// Opens a sealed text; `None` for anything tampered, sealed for another user or
    /// purpose, or under a key no longer in the list (fails closed).
    pub(crate) fn open(&self, user_id: &str, purpose: &str, text: &str) -> Option<Vec<u8>> {
        self.open_with(user_id, purpose, text)
            .map(|(plain, _)| plain)
    }

    /// [`Seal::open`], and whether the first (current) key opened it: a text opened with an
    /// older key is worth sealing again, so the older key can be retired.
    pub(crate) fn open_with(
        &self,
        user_id: &str,
        purpose: &str,
        text: &str,
    ) -> Option<(Vec<u8>, bool)> {
        let mut parts = text.splitn(3, '.');
        let (Some("v1"), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        let body = URL_SAFE_NO_PAD.decode(body).ok()?;
        if body.len() < 24 + 16 {
            return None;
        }
        let (nonce, sealed) = body.split_at(24);
        let nonce = XNonce::from(<[u8; 24]>::try_from(nonce).ok()?);
        let aad = aad(user_id, purpose);
        // The named key first, then the rest (an id is only a hint).
        let mut order: Vec<&[u8; 32]> = self.keys.iter().filter(|k| key_id(k) == id).collect();
        order.extend(self.keys.iter().filter(|k| key_id(k) != id));
        let first = self.keys.first();
        order.into_iter().find_map(|key| {
            let current = first == Some(key);
            XChaCha20Poly1305::new(&Key::from(*key))
                .decrypt(
                    &nonce,
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .ok()
                .map(|plain| (plain, current))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Seal;

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_purpose_and_keys() {
        let old = Seal::new(vec![[1; 32]]);
        let text = old.seal("7", "totp", b"secret").unwrap();
        assert_eq!(
            old.open("7", "totp", &text).as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(old.open("8", "totp", &text), None, "another user's row");
        assert_eq!(old.open("7", "pending:0", &text), None, "another purpose");
        // Rotation: a new first key seals, the old one still opens.
        let rotated = Seal::new(vec![[2; 32], [1; 32]]);
        assert_eq!(
            rotated.open("7", "totp", &text).as_deref(),
            Some(&b"secret"[..])
        );
        assert!(rotated.seal("7", "totp", b"x").unwrap().starts_with("v1."));
        // The old key removed: it fails closed.
        assert_eq!(Seal::new(vec![[2; 32]]).open("7", "totp", &text), None);
        // Tampered.
        let mut bad = text.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            old.open("7", "totp", &String::from_utf8(bad).unwrap()),
            None
        );
        assert_eq!(old.open("7", "totp", "v1.x.!!"), None);
        assert_ne!(
            old.seal("7", "totp", b"secret").unwrap(),
            text,
            "a fresh nonce each time"
        );
    }
}
