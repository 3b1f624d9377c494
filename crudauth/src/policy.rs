//! The password policy: applied on registration, set, change and reset alike.
//!
//! Rules are checked on the NFKC form (the form that is hashed). Every unmet rule is its own
//! 422 entry (`string_too_short`, `string_too_long`, or `password_policy` with
//! `ctx.requirement`), and the password itself is never echoed back.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use crate::error::ValidationIssue;

/// Which flow a password is being set by (for validators).
///
/// ```
/// assert_eq!(crudauth::policy::PasswordSource::Reset.as_str(), "reset");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// `/register`.
    Register,
    /// `/set-password` (an account without a usable password).
    Set,
    /// `/change-password`.
    Change,
    /// `/password/reset-confirm`.
    Reset,
    /// An administrator created by the application (`ensure_admin`).
    Admin,
}

impl PasswordSource {
    /// The source's name.
    ///
    /// ```
    /// assert_eq!(crudauth::policy::PasswordSource::Register.as_str(), "register");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordSource::Register => "register",
            PasswordSource::Set => "set",
            PasswordSource::Change => "change",
            PasswordSource::Reset => "reset",
            PasswordSource::Admin => "admin",
        }
    }
}

/// What a validator knows besides the password.
///
/// ```
/// let ctx = crudauth::policy::PasswordContext {
///     source: crudauth::policy::PasswordSource::Register,
///     username: Some("ann".into()),
///     email: Some("ann@example.com".into()),
/// };
/// assert_eq!(ctx.source.as_str(), "register");
/// ```
#[derive(Clone, Debug)]
pub struct PasswordContext {
    /// The flow setting the password.
    pub source: PasswordSource,
    /// The account's username, if known.
    pub username: Option<String>,
    /// The account's email address, if known.
    pub email: Option<String>,
}

impl PasswordContext {
    /// The context of a password set for an existing user.
    ///
    /// ```
    /// # #[derive(Clone)] struct U;
    /// # impl crudauth::UserRecord for U {
    /// #   fn user_id(&self) -> crudauth::UserId { crudauth::UserId::Int(1) }
    /// #   fn email(&self) -> Option<&str> { Some("ann@example.com") } fn username(&self) -> Option<&str> { None }
    /// #   fn password_hash(&self) -> Option<&str> { None } fn is_active(&self) -> bool { true }
    /// #   fn is_superuser(&self) -> bool { false } fn email_verified(&self) -> bool { false }
    /// #   fn token_version(&self) -> Option<i64> { None } }
    /// use crudauth::policy::{PasswordContext, PasswordSource};
    /// let ctx = PasswordContext::for_user(PasswordSource::Change, &U);
    /// assert_eq!(ctx.email.as_deref(), Some("ann@example.com"));
    /// ```
    pub fn for_user<U: crate::user::UserRecord>(source: PasswordSource, user: &U) -> Self {
        PasswordContext {
            source,
            username: user.username().map(str::to_owned),
            email: user.email().map(str::to_owned),
        }
    }
}

/// The future a [`PasswordValidator`] returns.
///
/// ```
/// let ok: crudauth::policy::ValidatorFuture = Box::pin(async { Ok(()) });
/// ```
pub type ValidatorFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
/// A user-supplied check; add one with [`PasswordPolicy::validator`].
///
/// ```
/// use crudauth::policy::PasswordValidator;
/// let no_spaces: PasswordValidator = std::sync::Arc::new(|pw, _ctx| {
///     Box::pin(async move { if pw.contains(' ') { Err("No spaces".into()) } else { Ok(()) } })
/// });
/// ```
pub type PasswordValidator = Arc<dyn Fn(String, PasswordContext) -> ValidatorFuture + Send + Sync>;

/// Password rules. `Default` is a minimum of 8 characters, the hasher's maximum, no
/// character classes, and the common-password check on.
///
/// ```
/// use crudauth::policy::PasswordPolicy;
/// let policy = PasswordPolicy { min_length: 12, require_digit: true, ..PasswordPolicy::default() }
///     .validator(|password, ctx| async move {
///         match ctx.username {
///             Some(name) if password.to_lowercase().contains(&name.to_lowercase()) => {
///                 Err("Password must not contain the username".to_owned())
///             }
///             _ => Ok(()),
///         }
///     });
/// assert_eq!(policy.min_length, 12);
/// ```
#[derive(Clone)]
pub struct PasswordPolicy {
    /// Minimum length in characters (default 8).
    pub min_length: usize,
    /// Maximum length in characters; `None` uses the hasher's cap (1024 by default). A
    /// longer password is refused before it is normalised or hashed.
    pub max_length: Option<usize>,
    /// Require an upper-case letter.
    pub require_uppercase: bool,
    /// Require a lower-case letter.
    pub require_lowercase: bool,
    /// Require a digit.
    pub require_digit: bool,
    /// Require a character that is neither a letter nor a digit.
    pub require_special: bool,
    /// Refuse the ~20,000 most common passwords (default `true`).
    pub reject_common: bool,
    /// User-supplied checks, run in order (see [`PasswordPolicy::validator`]).
    pub validators: Vec<PasswordValidator>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            max_length: None,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_special: false,
            reject_common: true,
            validators: Vec::new(),
        }
    }
}

impl std::fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("min_length", &self.min_length)
            .field("max_length", &self.max_length)
            .field("require_uppercase", &self.require_uppercase)
            .field("require_lowercase", &self.require_lowercase)
            .field("require_digit", &self.require_digit)
            .field("require_special", &self.require_special)
            .field("reject_common", &self.reject_common)
            .field("validators", &self.validators.len())
            .finish()
    }
}

/// The shipped list, sorted (see `data/README.md` for its source and licence).
const COMMON: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| COMMON.lines().collect())
}

/// Whether a password is on the shipped list of common passwords (compared lower-cased and
/// trimmed, as the list is).
///
/// ```
/// assert!(crudauth::policy::is_common_password("Password1"));
/// assert!(!crudauth::policy::is_common_password("mauve staple orbit"));
/// ```
pub fn is_common_password(password: &str) -> bool {
    let folded = password.trim().to_lowercase();
    common_passwords().binary_search(&folded.as_str()).is_ok()
}

impl PasswordPolicy {
    /// Adds a validator: an async check receiving the (NFKC) password and its context;
    /// `Err(message)` is a 422 entry of type `password_policy`.
    ///
    /// ```
    /// let policy = crudauth::policy::PasswordPolicy::default()
    ///     .validator(|pw, _ctx| async move { if pw.contains("acme") { Err("No company names".into()) } else { Ok(()) } });
    /// ```
    pub fn validator<F, Fut>(mut self, check: F) -> Self
    where
        F: Fn(String, PasswordContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.validators
            .push(Arc::new(move |pw, ctx| Box::pin(check(pw, ctx))));
        self
    }

    pub(crate) fn validate_config(&self, hasher_max: usize) -> Result<(), crate::ConfigError> {
        let max = self.max_length.unwrap_or(hasher_max);
        if self.min_length == 0 || self.min_length > max || max > hasher_max {
            return Err(crate::ConfigError::Invalid(
                "password policy: need 1 <= min_length <= max_length <= the hasher's max_length"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks `normalized` (the NFKC form, already within the hasher's cap); every unmet rule
    /// is pushed as its own issue on `field`.
    pub(crate) async fn check(
        &self,
        field: &str,
        normalized: &str,
        max: usize,
        ctx: &PasswordContext,
        issues: &mut Vec<ValidationIssue>,
    ) {
        let chars = normalized.chars().count();
        if chars > max {
            issues.push(ValidationIssue::too_long(field, max));
            return;
        }
        if chars < self.min_length {
            issues.push(ValidationIssue::too_short(field, self.min_length));
        }
        let classes: [CharClass; 4] = [
            (
                self.require_uppercase,
                "uppercase",
                "Password must contain an uppercase letter",
                char::is_uppercase,
            ),
            (
                self.require_lowercase,
                "lowercase",
                "Password must contain a lowercase letter",
                char::is_lowercase,
            ),
            (
                self.require_digit,
                "digit",
                "Password must contain a digit",
                |c| c.is_numeric(),
            ),
            (
                self.require_special,
                "special",
                "Password must contain a special character",
                |c| !c.is_alphanumeric() && !c.is_whitespace(),
            ),
        ];
        for (required, requirement, msg, test) in classes {
            if required && !normalized.chars().any(test) {
                issues.push(policy_issue(field, msg, requirement));
            }
        }
        if self.reject_common && is_common_password(normalized) {
            issues.push(policy_issue(
                field,
                "This password is too common",
                "not_common",
            ));
        }
        for validator in &self.validators {
            if let Err(msg) = validator(normalized.to_owned(), ctx.clone()).await {
                issues.push(policy_issue(field, &msg, "custom"));
            }
        }
    }
}

/// A character-class rule: required?, its name, its message, its test.
type CharClass = (bool, &'static str, &'static str, fn(char) -> bool);

fn policy_issue(field: &str, msg: &str, requirement: &str) -> ValidationIssue {
    ValidationIssue {
        ctx: Some(serde_json::json!({ "requirement": requirement })),
        ..ValidationIssue::body(field, "password_policy", msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PasswordContext {
        PasswordContext {
            source: PasswordSource::Register,
            username: Some("ann".into()),
            email: None,
        }
    }

    async fn issues(policy: &PasswordPolicy, pw: &str) -> Vec<ValidationIssue> {
        let mut out = Vec::new();
        policy.check("password", pw, 1024, &ctx(), &mut out).await;
        out
    }

    #[tokio::test]
    async fn every_unmet_rule_is_its_own_entry() {
        let policy = PasswordPolicy {
            require_uppercase: true,
            require_digit: true,
            require_special: true,
            ..PasswordPolicy::default()
        };
        let found = issues(&policy, "short").await;
        let kinds: Vec<_> = found
            .iter()
            .map(|i| {
                i.ctx
                    .as_ref()
                    .and_then(|c| c.get("requirement").or(c.get("min_length")))
                    .cloned()
            })
            .collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[0].kind, "string_too_short");
        assert_eq!(kinds[1].as_ref().unwrap(), "uppercase");
        assert_eq!(kinds[2].as_ref().unwrap(), "digit");
        assert_eq!(kinds[3].as_ref().unwrap(), "special");
        assert!(issues(&policy, "Mauve-staple-9").await.is_empty());
    }

    #[tokio::test]
    async fn common_passwords_are_refused_whatever_the_case() {
        let policy = PasswordPolicy::default();
        for pw in ["password", "PASSWORD1", " qwertyuiop ", "iloveyou"] {
            let found = issues(&policy, pw).await;
            assert!(
                found.iter().any(|i| i.msg == "This password is too common"),
                "{pw}: {found:?}"
            );
        }
        assert!(issues(&policy, "mauve staple orbit").await.is_empty());
        assert!(common_passwords().len() >= 10_000);
        assert!(common_passwords().windows(2).all(|w| w[0] < w[1]));
    }

    #[tokio::test]
    async fn validators_see_the_context_and_the_password_is_never_echoed() {
        let policy = PasswordPolicy::default().validator(|pw, ctx| async move {
            match ctx.username {
                Some(u) if pw.contains(&u) => Err("Password must not contain the username".into()),
                _ => Ok(()),
            }
        });
        let found = issues(&policy, "ann-secret-words").await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].ctx.as_ref().unwrap()["requirement"], "custom");
        let json = serde_json::to_string(&found).unwrap();
        assert!(!json.contains("ann-secret-words"));
    }

    #[test]
    fn contradictory_limits_are_refused() {
        let bad = PasswordPolicy {
            min_length: 20,
            max_length: Some(10),
            ..PasswordPolicy::default()
        };
        assert!(bad.validate_config(1024).is_err());
        let over = PasswordPolicy {
            max_length: Some(4096),
            ..PasswordPolicy::default()
        };
        assert!(over.validate_config(1024).is_err());
        assert!(PasswordPolicy::default().validate_config(1024).is_ok());
    }
}
