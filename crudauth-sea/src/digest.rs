//! Collation-proof keys: the SHA-256 hex of length-prefixed parts. The crudauth tables key
//! rows on these instead of on text columns, which MySQL and MariaDB compare case-, accent-
//! and trailing-space-insensitively under their default collations.

use sha2::Digest;

/// The lower-case SHA-256 hex of the parts, each length-prefixed (so no two lists of parts
/// share a digest by concatenation).
pub(crate) fn digest(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::digest;

    #[test]
    fn parts_do_not_run_together() {
        assert_ne!(digest(&["ab", "c"]), digest(&["a", "bc"]));
        assert_ne!(digest(&["Alice"]), digest(&["alice"]));
        assert_eq!(digest(&["x"]).len(), 64);
    }
}
