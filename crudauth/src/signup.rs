//! Accounts made without a password form (a provider sign-in, a one-time code): a
//! username derived from what is known, made unique by a random suffix when taken.

use crate::user::{DynUserRepository, NewUser, RepoError, UserRecord};

/// The longest derived username before a suffix (the original's default for an unbounded
/// column).
pub(crate) const USERNAME_CHARS: usize = 32;

/// A username from the first source with a letter or digit in it, else `user`:
/// lower-cased, runs of anything but `[a-z0-9]` made one `_`, at most 32 characters.
pub(crate) fn username_from(sources: &[Option<&str>]) -> String {
    let source = sources
        .iter()
        .flatten()
        .find(|s| s.chars().any(|c| c.is_ascii_alphanumeric()))
        .copied()
        .unwrap_or("user");
    let mut out = String::new();
    for c in source.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out: String = out.trim_matches('_').chars().take(USERNAME_CHARS).collect();
    if out.is_empty() { "user".into() } else { out }
}

/// `base` with a random 8-hex-digit suffix.
pub(crate) fn suffixed(base: &str) -> String {
    let hex = crate::keys::hex(&crate::keys::random_bytes::<4>());
    let head: String = base.chars().take(USERNAME_CHARS - 9).collect();
    format!("{head}_{hex}")
}

/// Creates `new`, drawing another username (the base with a random suffix, shortened to
/// the column) when the one derived is taken or too long; other errors are answered as
/// they come.
pub(crate) async fn create_with_free_username<U: UserRecord>(
    repo: &dyn DynUserRepository<U>,
    mut new: NewUser,
) -> Result<U, RepoError> {
    let base = new.username.clone().unwrap_or_default();
    let mut tries = 0;
    loop {
        tries += 1;
        match repo.create(new.clone()).await {
            Err(RepoError::Duplicate { field }) if field == "username" && tries < 4 => {
                new.username = Some(suffixed(&base));
            }
            Err(RepoError::TooLong { field, max }) if field == "username" && tries < 4 => {
                let cut: String = base.chars().take(max.saturating_sub(9).max(1)).collect();
                new.username = Some(suffixed(&cut).chars().take(max).collect());
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_come_from_the_first_usable_source() {
        assert_eq!(username_from(&[Some("Ann.Lee"), Some("X")]), "ann_lee");
        assert_eq!(username_from(&[None, Some("Ann  Lee!")]), "ann_lee");
        assert_eq!(username_from(&[Some("日本"), None]), "user");
        assert_eq!(username_from(&[Some(&"a".repeat(80))]).len(), 32);
        let s = suffixed("ann");
        assert!(s.starts_with("ann_") && s.len() == 12, "{s}");
    }
}
