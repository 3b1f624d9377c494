//! The user code a person types (8 characters from an alphabet without look-alikes), and
//! the shape a code or secret from the wire must have before it costs a store round trip.

use crate::keys::random_bytes;

/// The user code's alphabet: upper-case letters and digits without 0/O, 1/I/L.
const ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// Eight characters of [`ALPHABET`], drawn uniformly (rejection sampling).
pub(super) fn user_code() -> String {
    let mut out = String::with_capacity(9);
    while out.len() < 9 {
        for b in random_bytes::<16>() {
            // 248 = 8 * 31: the largest multiple of 31 below 256.
            if b < 248 && out.len() < 9 {
                if out.len() == 4 {
                    out.push('-');
                }
                out.push(ALPHABET[usize::from(b % 31)] as char);
            }
        }
    }
    out
}

/// A user code as typed (any case, with or without the dash and spaces), in its canonical
/// form; `None` when it cannot be one.
///
/// ```
/// use crudauth::device_login::normalize_user_code;
/// assert_eq!(normalize_user_code(" abcd-efgh ").as_deref(), Some("ABCDEFGH"));
/// assert!(normalize_user_code("ABCD-EFG0").is_none()); // no 0 in the alphabet
/// ```
pub fn normalize_user_code(typed: &str) -> Option<String> {
    if typed.len() > 32 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// A code or secret that could be one of ours (base64url, bounded); anything else is
/// unknown without a store round trip.
pub(super) fn well_formed(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::{normalize_user_code, user_code};

    #[test]
    fn user_codes_are_eight_unambiguous_characters() {
        for _ in 0..1000 {
            let shown = user_code();
            assert_eq!(shown.len(), 9, "{shown}");
            assert_eq!(&shown[4..5], "-");
            let code = normalize_user_code(&shown).expect("its own alphabet");
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
        }
    }

    #[test]
    fn typed_codes_are_normalised_or_refused() {
        assert_eq!(
            normalize_user_code("wxyz 2345").as_deref(),
            Some("WXYZ2345")
        );
        assert!(normalize_user_code("ABCDEFG").is_none());
        assert!(normalize_user_code("ABCDEFGHJ").is_none());
        assert!(normalize_user_code("ÄBCDEFGH").is_none());
        assert!(normalize_user_code(&"A".repeat(1000)).is_none());
    }
}
