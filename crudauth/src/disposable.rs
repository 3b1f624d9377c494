//! Disposable-email blocking: addresses at throwaway mail services are refused wherever an
//! address enters (`/register`, the email change, `PATCH /users/me`, an OAuth sign-up, a
//! passwordless sign-up), as the 422 entry of the email field, before any account is looked
//! up, so the answer tells nothing about existing accounts.
//!
//! With the `disposable-email` feature, [`DisposableEmails::default`] holds the shipped
//! list: the CC0 [disposable-email-domains] blocklist, vendored as
//! `crudauth/data/disposable_email_blocklist.conf` (its header names the commit and date;
//! `scripts/update-disposable-domains.sh` refreshes it), embedded in the binary and parsed
//! once, on first use, into a hash set. Without the feature the default list is empty and
//! only the app's own domains are blocked.
//!
//! A domain matches itself and every subdomain (`a.b.mailinator.com` is blocked when
//! `mailinator.com` is), case-insensitively, with a trailing dot ignored and international
//! names compared in their ASCII (punycode) form. The most specific entry wins: an
//! exception for `team.example-trash.com` lets that subdomain through while the rest of
//! `example-trash.com` stays blocked.
//!
//! [disposable-email-domains]: https://github.com/disposable-email-domains/disposable-email-domains

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{AuthError, ValidationIssue};

/// The message of the 422 entry for a disposable address.
pub const DISPOSABLE_MESSAGE: &str = "Disposable email addresses are not accepted";

/// The shipped list, parsed once.
#[cfg(feature = "disposable-email")]
fn shipped() -> &'static HashSet<&'static str> {
    static LIST: std::sync::LazyLock<HashSet<&'static str>> = std::sync::LazyLock::new(|| {
        include_str!("../data/disposable_email_blocklist.conf")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    });
    &LIST
}

#[cfg(not(feature = "disposable-email"))]
fn shipped() -> &'static HashSet<&'static str> {
    static EMPTY: std::sync::LazyLock<HashSet<&'static str>> =
        std::sync::LazyLock::new(HashSet::new);
    &EMPTY
}

/// Which addresses count as disposable: the shipped list (feature `disposable-email`),
/// the app's own additions, and its exceptions. Cheap to clone.
///
/// ```
/// use crudauth::disposable::DisposableEmails;
/// let list = DisposableEmails::empty()
///     .block(["trash.example"])
///     .allow(["ok.trash.example"]);
/// assert!(list.is_disposable("ann@trash.example"));
/// assert!(list.is_disposable("ann@A.Trash.Example.")); // subdomain, case, trailing dot
/// assert!(!list.is_disposable("ann@ok.trash.example")); // the exception
/// assert!(!list.is_disposable("ann@example.com"));
/// ```
#[derive(Clone)]
pub struct DisposableEmails {
    inner: Arc<Lists>,
}

#[derive(Clone)]
struct Lists {
    shipped: bool,
    block: HashSet<String>,
    allow: HashSet<String>,
}

impl std::fmt::Debug for DisposableEmails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisposableEmails")
            .field("shipped", &self.inner.shipped)
            .field("block", &self.inner.block.len())
            .field("allow", &self.inner.allow.len())
            .finish()
    }
}

impl Default for DisposableEmails {
    /// The shipped list (empty without the `disposable-email` feature), no additions, no
    /// exceptions.
    ///
    /// ```
    /// let list = crudauth::disposable::DisposableEmails::default();
    /// # #[cfg(feature = "disposable-email")]
    /// assert!(list.is_disposable("someone@mailinator.com"));
    /// assert!(!list.is_disposable("someone@example.com"));
    /// ```
    fn default() -> Self {
        DisposableEmails {
            inner: Arc::new(Lists {
                shipped: cfg!(feature = "disposable-email"),
                block: HashSet::new(),
                allow: HashSet::new(),
            }),
        }
    }
}

impl DisposableEmails {
    /// No shipped list: only the domains given with [`block`](Self::block).
    ///
    /// ```
    /// let list = crudauth::disposable::DisposableEmails::empty();
    /// assert!(!list.is_disposable("someone@mailinator.com"));
    /// ```
    pub fn empty() -> Self {
        DisposableEmails {
            inner: Arc::new(Lists {
                shipped: false,
                block: HashSet::new(),
                allow: HashSet::new(),
            }),
        }
    }

    fn lists(&mut self) -> &mut Lists {
        Arc::make_mut(&mut self.inner)
    }

    /// Blocks these domains (and their subdomains) too. Entries are normalised as
    /// addresses are (case, trailing dot, punycode); an entry that is no domain at all is
    /// ignored.
    ///
    /// ```
    /// let list = crudauth::disposable::DisposableEmails::empty().block(["Bücher.Example."]);
    /// assert!(list.is_disposable("ann@xn--bcher-kva.example"));
    /// assert!(list.is_disposable("ann@shop.bücher.example"));
    /// ```
    pub fn block<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, domains: I) -> Self {
        let lists = self.lists();
        lists.block.extend(
            domains
                .into_iter()
                .filter_map(|d| canonical_domain(d.as_ref())),
        );
        self
    }

    /// Never blocks these domains (and their subdomains), whatever the lists say, unless a
    /// more specific entry blocks them.
    ///
    /// ```
    /// # #[cfg(feature = "disposable-email")] {
    /// let list = crudauth::disposable::DisposableEmails::default().allow(["mailinator.com"]);
    /// assert!(!list.is_disposable("qa@mailinator.com"));
    /// # }
    /// ```
    pub fn allow<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, domains: I) -> Self {
        let lists = self.lists();
        lists.allow.extend(
            domains
                .into_iter()
                .filter_map(|d| canonical_domain(d.as_ref())),
        );
        self
    }

    /// How many domains the shipped list holds (0 without the `disposable-email` feature).
    ///
    /// ```
    /// let n = crudauth::disposable::DisposableEmails::shipped_len();
    /// # #[cfg(feature = "disposable-email")]
    /// assert!(n > 1000);
    /// ```
    pub fn shipped_len() -> usize {
        shipped().len()
    }

    /// Whether the address (or a bare domain) is at a disposable domain: its domain or a
    /// parent domain is blocked, and no more specific exception lets it through.
    ///
    /// ```
    /// let list = crudauth::disposable::DisposableEmails::empty().block(["trash.example"]);
    /// assert!(list.is_disposable("trash.example"));
    /// assert!(!list.is_disposable("nottrash.example")); // labels, not suffixes of text
    /// ```
    pub fn is_disposable(&self, address: &str) -> bool {
        let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
        let Some(domain) = canonical_domain(domain) else {
            return false;
        };
        let lists = &self.inner;
        let mut rest = domain.as_str();
        loop {
            if lists.allow.contains(rest) {
                return false;
            }
            if lists.block.contains(rest) || (lists.shipped && shipped().contains(rest)) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => rest = parent,
                _ => return false,
            }
        }
    }

    /// `Err(422)` with the entry of `field` (`loc: ["body", field]`, `type: value_error`)
    /// when the address is disposable.
    ///
    /// ```
    /// let list = crudauth::disposable::DisposableEmails::empty().block(["trash.example"]);
    /// assert!(list.check("email", "ann@example.com").is_ok());
    /// let refused = list.check("email", "ann@trash.example").unwrap_err();
    /// assert_eq!(refused.status(), 422);
    /// ```
    pub fn check(&self, field: &str, address: &str) -> Result<(), AuthError> {
        match self.issue(field, address) {
            Some(issue) => Err(AuthError::Validation(vec![issue])),
            None => Ok(()),
        }
    }

    /// The 422 entry of `field` for a disposable address, to list with a body's other
    /// issues.
    ///
    /// ```
    /// let list = crudauth::disposable::DisposableEmails::empty().block(["trash.example"]);
    /// let issue = list.issue("email", "ann@trash.example").expect("disposable");
    /// assert_eq!(issue.kind, "value_error");
    /// assert_eq!(issue.loc, ["body", "email"]);
    /// ```
    pub fn issue(&self, field: &str, address: &str) -> Option<ValidationIssue> {
        self.is_disposable(address)
            .then(|| ValidationIssue::body(field, "value_error", DISPOSABLE_MESSAGE))
    }
}

/// A domain in the form lists are kept in: trimmed, NFKC, lower case, without trailing
/// dots, in ASCII (IDNA, punycode); `None` for an empty or invalid one, or one over 253
/// characters (no real domain is longer).
fn canonical_domain(raw: &str) -> Option<String> {
    use unicode_normalization::UnicodeNormalization;
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 1024 {
        return None;
    }
    let folded: String = raw.nfkc().collect::<String>().to_lowercase();
    let folded = folded.trim_end_matches('.');
    let ascii = if folded.is_ascii() {
        folded.to_owned()
    } else {
        idna::domain_to_ascii(folded).ok()?
    };
    (!ascii.is_empty() && ascii.len() <= 253 && !ascii.starts_with('.')).then_some(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_match_and_the_most_specific_entry_wins() {
        let list = DisposableEmails::empty()
            .block(["trash.example", "bad.fine.example"])
            .allow(["ok.trash.example", "fine.example"]);
        assert!(list.is_disposable("a@x.y.trash.example"));
        assert!(!list.is_disposable("a@ok.trash.example"));
        assert!(!list.is_disposable("a@deep.ok.trash.example"));
        assert!(list.is_disposable("a@bad.fine.example"));
        assert!(!list.is_disposable("a@fine.example"));
        assert!(!list.is_disposable("a@example"));
        assert!(!list.is_disposable("a@"));
        assert!(!list.is_disposable("a@."));
        assert!(!list.is_disposable(""));
    }

    #[test]
    fn hostile_domains_are_no_match_and_no_panic() {
        let list = DisposableEmails::empty().block(["trash.example"]);
        assert!(!list.is_disposable(&format!("a@{}", "x.".repeat(5000))));
        assert!(!list.is_disposable("a@..trash.example.."));
        assert!(list.is_disposable("a@ＴＲＡＳＨ.example")); // fullwidth folds by NFKC
        assert!(!list.is_disposable("a@trash\u{0}.example"));
    }

    #[test]
    fn clones_share_until_changed() {
        let a = DisposableEmails::empty().block(["one.example"]);
        let b = a.clone().block(["two.example"]);
        assert!(!a.is_disposable("x@two.example"));
        assert!(b.is_disposable("x@one.example") && b.is_disposable("x@two.example"));
    }

    #[cfg(feature = "disposable-email")]
    #[test]
    fn the_shipped_list_is_loaded() {
        assert!(DisposableEmails::shipped_len() > 1000);
        assert!(DisposableEmails::default().is_disposable("a@sub.mailinator.com"));
    }
}
