//! Text helpers for user-supplied values: email normalisation and validation, phone number
//! normalisation (E.164), and the Unicode format characters (category Cf) that identifiers and usernames must not carry.

/// Normalises an email address the same way for writes and lookups: Unicode NFKC (so a
/// fullwidth `ａｎｎ@ｅｘａｍｐｌｅ.com` is `ann@example.com`), trimmed, lower-cased, and the
/// domain in its IDNA ASCII form (`exämple.com` is `xn--exmple-cua.com`), so look-alike
/// spellings of one address meet at the uniqueness check and at every lookup.
///
/// Mail is always sent to the stored address, never the submitted one, so a look-alike that
/// normalises to another user's address gains nothing.
///
/// ```
/// use crudauth::user::normalize_email;
/// assert_eq!(normalize_email("  Ann@Example.COM "), "ann@example.com");
/// assert_eq!(normalize_email("ａｎｎ＠ｅｘａｍｐｌｅ.com"), "ann@example.com");
/// assert_eq!(normalize_email("ann@EXÄMPLE.com"), "ann@xn--exmple-cua.com");
/// ```
pub fn normalize_email(email: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = email
        .trim()
        .nfkc()
        .collect::<String>()
        .trim()
        .to_lowercase();
    match folded.rsplit_once('@') {
        Some((local, domain)) if !domain.is_ascii() => match idna::domain_to_ascii(domain) {
            Ok(ascii) if !ascii.is_empty() => format!("{local}@{ascii}"),
            // Not a valid domain: left as it is (the address validation refuses it).
            _ => folded,
        },
        _ => folded,
    }
}

/// The longest raw phone number [`normalize_phone`] looks at, in characters: an E.164 number
/// has at most 16 (`+` and 15 digits), which leaves room for the usual separators; anything
/// longer is refused before it is scanned.
const MAX_PHONE_INPUT_CHARS: usize = 32;

/// Normalises a phone number to E.164 (`+` and 8 to 15 digits, the first not 0), the one form
/// phone numbers are stored in and looked up by; `None` for anything else.
///
/// The separators people write (spaces, `-`, `.`, `(`, `)`) are removed; nothing else is
/// interpreted. Letters, any other character (a tab, a non-breaking space, fullwidth or
/// other non-ASCII digits, invisible format characters), a second `+`, a missing `+` (a
/// national number or a `00` prefix: the country cannot be guessed), too few or too many
/// digits, and input longer than 32 characters are refused. Lookups by phone are exact, so
/// writes and lookups must both go through this function.
///
/// ```
/// use crudauth::user::normalize_phone;
/// assert_eq!(normalize_phone("+46 70-123 45 67").as_deref(), Some("+46701234567"));
/// assert_eq!(normalize_phone("+1 (555) 010.0199").as_deref(), Some("+15550100199"));
/// assert_eq!(normalize_phone("070-123 45 67"), None); // no country code
/// assert_eq!(normalize_phone("+1555CALLME"), None);
/// ```
pub fn normalize_phone(raw: &str) -> Option<String> {
    // Bounded work whatever the input's size.
    if raw.chars().nth(MAX_PHONE_INPUT_CHARS).is_some() {
        return None;
    }
    let kept: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = kept.strip_prefix('+')?;
    let e164 = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    e164.then_some(kept)
}

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces,
/// control characters or the specials of RFC 5322 display forms (`<>()[],;:"\`), so that
/// `x<attacker@evil.example>` can never be stored and then parsed by a mailer as a mailbox
/// with another address inside. Deliverability is proven by the verification flow, not
/// here.
pub(crate) fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
}

/// Unicode general category Cf (format characters: invisible, yet they change how text is
/// shown or compared: bidirectional overrides and isolates, zero-width spaces and joiners,
/// the BOM, tags, ...): every range the Unicode Character Database lists as Cf.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` is a format character (Unicode general category Cf).
pub(crate) fn is_format_char(c: char) -> bool {
    FORMAT_CHARS
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::normalize_phone;

    #[test]
    fn phone_separators_are_removed_and_the_result_is_e164() {
        let cases = [
            ("+15550100199", "+15550100199"),
            ("+1 555 010 0199", "+15550100199"),
            ("+1-555-010-0199", "+15550100199"),
            ("+1.555.010.0199", "+15550100199"),
            ("+1 (555) 010-0199", "+15550100199"),
            ("  +46 70 123 45 67  ", "+46701234567"),
            ("(+44) 20 7946 0958", "+442079460958"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_phone(raw).as_deref(), Some(want), "{raw:?}");
        }
    }

    #[test]
    fn phone_digit_count_is_8_to_15_and_the_first_digit_is_not_zero() {
        assert_eq!(normalize_phone("+1234567"), None, "7 digits");
        assert_eq!(normalize_phone("+12345678").as_deref(), Some("+12345678"));
        assert_eq!(
            normalize_phone("+123456789012345").as_deref(),
            Some("+123456789012345")
        );
        assert_eq!(normalize_phone("+1234567890123456"), None, "16 digits");
        assert_eq!(normalize_phone("+0123456789"), None, "a leading 0");
        assert_eq!(
            normalize_phone("+ 0 123 456 789"),
            None,
            "a leading 0 after a space"
        );
    }

    #[test]
    fn phone_without_a_single_leading_plus_is_refused() {
        for raw in [
            "15550100199",
            "0015550100199",
            "070-123 45 67",
            "++15550100199",
            "+1555+0100199",
            "1555010019+",
            "+",
            "",
            "   ",
            "-().",
        ] {
            assert_eq!(normalize_phone(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn hostile_phone_input_is_refused() {
        for raw in [
            "+1555CALLME",
            "+1555010019a",
            "+1 555 0100 ext 12",
            "+1555\t0100199",
            "+1555\n0100199",
            "+1555\r\n0100199",
            "+1555\u{0}0100199",
            "+1555\u{a0}0100199",      // a non-breaking space
            "+1555\u{200b}0100199",    // a zero-width space
            "+1555\u{202e}0100199",    // a right-to-left override
            "\u{feff}+15550100199",    // a byte-order mark
            "+１５５５０１００１９９", // fullwidth digits
            "＋15550100199",           // a fullwidth plus
            "+٩٦٦٥٠١٢٣٤٥٦٧",           // Arabic-Indic digits
            "+¹⁵⁵⁵⁰¹⁰⁰¹⁹⁹",            // superscript digits
            "+1555_0100199",
            "+1555/0100199",
            "+1555,0100199",
            "+1e10",
            "+-1",
            "+1555010019 9; DROP TABLE users",
        ] {
            assert_eq!(normalize_phone(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn phone_input_longer_than_32_characters_is_refused_before_it_is_scanned() {
        // 32 characters whose digits make a valid number: accepted.
        let padded = format!("+1 555 010 0199{}", " ".repeat(32 - 15));
        assert_eq!(padded.chars().count(), 32);
        assert_eq!(normalize_phone(&padded).as_deref(), Some("+15550100199"));
        // One more separator: refused, though the digits would still fit.
        assert_eq!(normalize_phone(&format!("{padded} ")), None);
        // Huge input is answered without a scan of the whole.
        let huge = format!("+15550100199{}", " ".repeat(10_000_000));
        assert_eq!(normalize_phone(&huge), None);
        // Multi-byte characters count as one each, not by their bytes.
        assert_eq!(normalize_phone(&"１".repeat(40)), None);
    }
}
