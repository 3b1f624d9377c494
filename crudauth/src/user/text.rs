//! Text helpers for user-supplied values: email normalisation and validation, and the
//! Unicode format characters (category Cf) that identifiers and usernames must not carry.

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
