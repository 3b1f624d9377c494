//! CAPTCHA: a port ([`Captcha`]: verify a client's token for an action and a client
//! address) and the rule of when the library's routes ask for one ([`CaptchaConfig`]).
//!
//! The rule: always on chosen actions ([`CaptchaConfig::always`]: `/register`,
//! `/password/reset-request`, and if wanted `/login` + `/token` or `/otp/request`), and/or
//! on sign-in only once the client address has failed `n` logins within a window
//! ([`CaptchaConfig::after_failed_logins`]): a real user is rarely asked, a credential
//! stuffing run from one address always is. The failures are a counter in the configured
//! store (so the rule holds across processes), keyed by the client address as the lockout
//! keys it (the socket peer unless `trusted_proxy_hops` is set; IPv6 by /64).
//!
//! The token travels in the `X-Captcha-Token` header, or in a body field: `captcha_token`
//! (configurable) or the widget's own field (`cf-turnstile-response`, `h-captcha-response`,
//! `g-recaptcha-response`), so a plain HTML form posting the widget works. The field is read
//! only for the CAPTCHA: it never becomes a user column (the builder refuses it in
//! `register_extra_fields`).
//!
//! It is checked before the body's password is verified or hashed and before any account is
//! looked up. A missing token is answered `403 {"detail": "captcha_required"}`, a refused
//! one `403 {"detail": "captcha_failed"}`, both with `X-Captcha-Required: <provider>`. A
//! verifier that cannot be reached (refused connection, timeout, 5xx) fails closed with
//! 503, or, with [`CaptchaConfig::fail_open`], lets the request through with a warning in
//! the log. An answer that is not the provider's (a 4xx, an unreadable body) is a refusal,
//! and a provider refusing our secret a 503 ([`CaptchaRefusal::Misconfigured`]), whatever
//! the fail-open setting.
//!
//! The HTTP verifiers for Cloudflare Turnstile, hCaptcha and reCAPTCHA v3 are in
//! `captcha::siteverify` (feature `captcha`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

mod guard;
#[cfg(feature = "captcha")]
pub mod siteverify;

pub(crate) use guard::CaptchaGuard;

/// The header a client sends its token in.
pub const CAPTCHA_HEADER: &str = "x-captcha-token";
/// The header of a refusal: which provider's widget the client must show.
pub const CAPTCHA_REQUIRED_HEADER: &str = crate::error::CAPTCHA_REQUIRED;
/// The longest token looked at; a longer one is refused without asking the verifier.
pub const MAX_TOKEN: usize = 8192;

/// The actions a CAPTCHA may guard (for reCAPTCHA v3 and Turnstile also the expected
/// `action` of the token, [`CaptchaAction::as_str`]).
///
/// ```
/// assert_eq!(crudauth::captcha::CaptchaAction::PasswordReset.as_str(), "password_reset");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaptchaAction {
    /// `POST /register`.
    Register,
    /// `POST /password/reset-request`.
    PasswordReset,
    /// `POST /login` and `POST /token`.
    Login,
    /// `POST /otp/request` (passwordless start).
    Passwordless,
}

impl CaptchaAction {
    /// The action's name (`register`, `password_reset`, `login`, `passwordless`).
    ///
    /// ```
    /// assert_eq!(crudauth::captcha::CaptchaAction::Login.as_str(), "login");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            CaptchaAction::Register => "register",
            CaptchaAction::PasswordReset => "password_reset",
            CaptchaAction::Login => "login",
            CaptchaAction::Passwordless => "passwordless",
        }
    }
}

/// Why a verifier refused a token.
///
/// ```
/// assert_eq!(crudauth::captcha::CaptchaRefusal::LowScore.as_str(), "low_score");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptchaRefusal {
    /// The provider said no (invalid, expired or already used token), with its error codes.
    Rejected(Vec<String>),
    /// The token was made for another action.
    WrongAction,
    /// The score is under the threshold (reCAPTCHA v3).
    LowScore,
    /// The token was solved on another site than the configured hostname.
    WrongHostname,
    /// The provider refused our own configuration (an invalid or missing secret): the
    /// guard answers 503 and logs an error, whether or not it fails open.
    Misconfigured,
}

impl CaptchaRefusal {
    /// A short name for logs.
    ///
    /// ```
    /// assert_eq!(crudauth::captcha::CaptchaRefusal::WrongAction.as_str(), "wrong_action");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            CaptchaRefusal::Rejected(_) => "rejected",
            CaptchaRefusal::WrongAction => "wrong_action",
            CaptchaRefusal::LowScore => "low_score",
            CaptchaRefusal::WrongHostname => "wrong_hostname",
            CaptchaRefusal::Misconfigured => "misconfigured",
        }
    }
}

/// A verifier's answer about a token.
///
/// ```
/// use crudauth::captcha::{CaptchaRefusal, CaptchaVerdict};
/// assert!(CaptchaVerdict::Passed.passed());
/// assert!(!CaptchaVerdict::Refused(CaptchaRefusal::LowScore).passed());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptchaVerdict {
    /// The token is good for this action.
    Passed,
    /// The token is not.
    Refused(CaptchaRefusal),
}

impl CaptchaVerdict {
    /// Whether the token passed.
    ///
    /// ```
    /// assert!(crudauth::captcha::CaptchaVerdict::Passed.passed());
    /// ```
    pub fn passed(&self) -> bool {
        matches!(self, CaptchaVerdict::Passed)
    }
}

/// The verifier could not be reached (no connection, a timeout, a 5xx, an answer past the
/// size cap): the one failure [`CaptchaConfig::fail_open`] may let through. The message is
/// for the log and never holds the secret.
///
/// ```
/// let e = crudauth::captcha::CaptchaUnavailable("timed out".into());
/// assert!(e.to_string().contains("timed out"));
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[error("CAPTCHA verifier unavailable: {0}")]
pub struct CaptchaUnavailable(pub String);

/// A CAPTCHA verifier: checks a client's token for an action and a client address.
///
/// ```
/// use std::net::IpAddr;
/// use crudauth::captcha::{Captcha, CaptchaAction, CaptchaUnavailable, CaptchaVerdict, CaptchaRefusal};
///
/// /// Passes one fixed token (a test double).
/// struct Fixed;
/// #[async_trait::async_trait]
/// impl Captcha for Fixed {
///     fn provider(&self) -> &'static str { "fixed" }
///     async fn verify(&self, token: &str, _: CaptchaAction, _: Option<IpAddr>)
///         -> Result<CaptchaVerdict, CaptchaUnavailable> {
///         Ok(if token == "ok" { CaptchaVerdict::Passed }
///            else { CaptchaVerdict::Refused(CaptchaRefusal::Rejected(vec![])) })
///     }
/// }
/// # crudauth::doc_fixture::run(async |_| {
/// assert!(Fixed.verify("ok", CaptchaAction::Login, None).await?.passed());
/// # Ok(()) });
/// ```
#[async_trait::async_trait]
pub trait Captcha: Send + Sync + 'static {
    /// The provider's name, sent in `X-Captcha-Required` (`turnstile`, `hcaptcha`,
    /// `recaptcha`).
    fn provider(&self) -> &'static str;
    /// The body field the provider's widget posts in an HTML form (none by default).
    fn widget_field(&self) -> Option<&'static str> {
        None
    }
    /// Verifies `token` for `action` from the client at `ip`.
    async fn verify(
        &self,
        token: &str,
        action: CaptchaAction,
        ip: Option<IpAddr>,
    ) -> Result<CaptchaVerdict, CaptchaUnavailable>;
}

/// When the library's routes ask for a CAPTCHA, and what to do when the verifier is down.
///
/// ```
/// use std::time::Duration;
/// use crudauth::captcha::{CaptchaAction, CaptchaConfig};
/// # struct V;
/// # #[async_trait::async_trait]
/// # impl crudauth::captcha::Captcha for V {
/// #     fn provider(&self) -> &'static str { "v" }
/// #     async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
/// #         -> Result<crudauth::captcha::CaptchaVerdict, crudauth::captcha::CaptchaUnavailable> {
/// #         Ok(crudauth::captcha::CaptchaVerdict::Passed) } }
/// let config = CaptchaConfig::new(V)
///     .always(CaptchaAction::Register)
///     .always(CaptchaAction::PasswordReset)
///     .after_failed_logins(3, Duration::from_secs(900));
/// assert!(config.is_always(CaptchaAction::Register));
/// assert!(!config.is_always(CaptchaAction::Login));
/// ```
#[derive(Clone)]
pub struct CaptchaConfig {
    verifier: Arc<dyn Captcha>,
    always: BTreeSet<CaptchaAction>,
    after_failures: Option<(u32, Duration)>,
    fail_open: bool,
    field: String,
    verify_budget: (u32, Duration),
    max_in_flight: usize,
}

impl std::fmt::Debug for CaptchaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptchaConfig")
            .field("provider", &self.verifier.provider())
            .field("always", &self.always)
            .field("after_failures", &self.after_failures)
            .field("fail_open", &self.fail_open)
            .field("field", &self.field)
            .field("verify_budget", &self.verify_budget)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

impl CaptchaConfig {
    /// A config over a verifier; nothing is asked until a rule is added.
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// let config = CaptchaConfig::new(V);
    /// assert_eq!(config.field(), "captcha_token");
    /// ```
    pub fn new(verifier: impl Captcha) -> Self {
        CaptchaConfig::shared(Arc::new(verifier))
    }

    /// A config over a shared verifier.
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// let verifier: std::sync::Arc<dyn Captcha> = std::sync::Arc::new(V);
    /// let config = CaptchaConfig::shared(verifier.clone());
    /// ```
    pub fn shared(verifier: Arc<dyn Captcha>) -> Self {
        CaptchaConfig {
            verifier,
            always: BTreeSet::new(),
            after_failures: None,
            fail_open: false,
            field: "captcha_token".into(),
            verify_budget: (20, Duration::from_secs(60)),
            max_in_flight: 64,
        }
    }

    /// How many tokens one client address may have verified per window (20 a minute by
    /// default): every check is an outbound call to the provider (its quota, its bill, this
    /// process's sockets), so a client sending junk tokens is answered 429 before it costs
    /// one. At most `max_in_flight` verifications run at once over all clients (64 by
    /// default); past that a guarded request is a 503, never a pass.
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// let config = CaptchaConfig::new(V)
    ///     .always(CaptchaAction::Register)
    ///     .verifications(10, std::time::Duration::from_secs(60), 32);
    /// ```
    pub fn verifications(
        mut self,
        per_client: u32,
        window: Duration,
        max_in_flight: usize,
    ) -> Self {
        self.verify_budget = (per_client, window);
        self.max_in_flight = max_in_flight;
        self
    }

    /// Always asks on `action`.
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// let config = CaptchaConfig::new(V).always(CaptchaAction::Login);
    /// assert!(config.is_always(CaptchaAction::Login));
    /// ```
    pub fn always(mut self, action: CaptchaAction) -> Self {
        self.always.insert(action);
        self
    }

    /// Asks on sign-in (`/login`, `/token`) once the client address has made more than
    /// `failures` sign-in attempts within `window` that did not sign in (a wrong password, a
    /// lockout, a refused CAPTCHA). Each attempt is counted when it arrives and taken back
    /// when it signs in, so a burst of parallel attempts is asked from the `failures + 1`st
    /// on, not only once the first ones have failed.
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// let config = CaptchaConfig::new(V).after_failed_logins(3, std::time::Duration::from_secs(600));
    /// ```
    pub fn after_failed_logins(mut self, failures: u32, window: Duration) -> Self {
        self.after_failures = Some((failures, window));
        self
    }

    /// Lets requests through (with a warning in the log) when the verifier cannot be
    /// reached (connection refused, a timeout, a 5xx), instead of answering 503. An answer
    /// that is not the provider's (a 4xx, an unreadable body) is a refusal, and a provider
    /// refusing our secret is a 503 with an error in the log: neither ever fails open.
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// let config = CaptchaConfig::new(V).fail_open(true);
    /// ```
    pub fn fail_open(mut self, open: bool) -> Self {
        self.fail_open = open;
        self
    }

    /// The body field that carries the token besides the widget's own (`captcha_token`).
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// assert_eq!(CaptchaConfig::new(V).field_name("human").field(), "human");
    /// ```
    pub fn field_name(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// The body field that carries the token.
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// assert_eq!(CaptchaConfig::new(V).field(), "captcha_token");
    /// ```
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Whether `action` is always guarded.
    ///
    /// ```
    /// # use crudauth::captcha::*;
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<CaptchaVerdict, CaptchaUnavailable> { Ok(CaptchaVerdict::Passed) } }
    /// assert!(!CaptchaConfig::new(V).is_always(CaptchaAction::Register));
    /// ```
    pub fn is_always(&self, action: CaptchaAction) -> bool {
        self.always.contains(&action)
    }

    /// The body field names a token is read from, in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.field.as_str()).chain(self.verifier.widget_field())
    }

    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        let bad = |m: &str| Err(crate::ConfigError::Invalid(format!("captcha: {m}")));
        if self.always.is_empty() && self.after_failures.is_none() {
            return bad("no rule: add `always(..)` or `after_failed_logins(..)`");
        }
        if let Some((n, window)) = self.after_failures
            && (n == 0 || window.is_zero())
        {
            return bad("after_failed_logins needs at least one failure and a positive window");
        }
        let field_ok = !self.field.is_empty()
            && self.field.len() <= 64
            && self
                .field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !field_ok {
            return bad("the field name must be 1 to 64 of [A-Za-z0-9_-]");
        }
        // A route's own field as the token field would send it (a password!) to the provider.
        const ROUTE_FIELDS: [&str; 14] = [
            "username",
            "password",
            "email",
            "phone",
            "code",
            "token",
            "new_email",
            "new_password",
            "current_password",
            "scope",
            "grant_type",
            "refresh_token",
            "client_id",
            "client_secret",
        ];
        if ROUTE_FIELDS.contains(&self.field.to_ascii_lowercase().as_str()) {
            return bad("the field name is one of the routes' own fields");
        }
        if self.verify_budget.0 == 0 || self.verify_budget.1.is_zero() || self.max_in_flight == 0 {
            return bad("verifications needs a positive budget, window and concurrency");
        }
        Ok(())
    }
}
