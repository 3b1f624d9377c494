//! The HTTP verifiers (feature `captcha`): Cloudflare Turnstile, hCaptcha and reCAPTCHA v3,
//! each a POST of the secret, the token and the client address to the provider's
//! `siteverify` endpoint over HTTPS (reqwest with rustls), with a connect timeout (3 s) and
//! a total timeout (5 s), and a configurable URL (for a proxy, or a local fake in tests).
//!
//! Every answer is checked: `success`, then (when configured) the hostname the token was
//! solved on, the action (reCAPTCHA v3 always; Turnstile with
//! [`Turnstile::check_action`]) and the score (reCAPTCHA v3, [`RecaptchaV3::min_score`]).
//! A provider that names our own secret as the problem (`invalid-input-secret`,
//! `missing-input-secret`) is a configuration fault, answered like an unreachable verifier,
//! not blamed on the user. The secret never appears in `Debug` output or in the log.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use super::{Captcha, CaptchaAction, CaptchaRefusal, CaptchaUnavailable, CaptchaVerdict};

/// The largest answer read from a verifier.
const MAX_ANSWER: usize = 64 * 1024;

/// The parts every provider shares: where to ask, with what secret, within what time.
struct SiteVerify {
    url: String,
    secret: String,
    hostname: Option<String>,
    connect_timeout: Duration,
    timeout: Duration,
    client: OnceLock<reqwest::Client>,
}

impl Clone for SiteVerify {
    fn clone(&self) -> Self {
        SiteVerify {
            url: self.url.clone(),
            secret: self.secret.clone(),
            hostname: self.hostname.clone(),
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            client: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for SiteVerify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteVerify")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("hostname", &self.hostname)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The refusal code of a `verify_url` that would send the secret over plain HTTP to
/// another machine.
const INSECURE_URL: &str = "crudauth-insecure-verify-url";

/// The fields of a siteverify answer the three providers share (each ignores the others').
#[derive(Deserialize)]
struct Answer {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    score: Option<f64>,
}

impl SiteVerify {
    fn new(url: &str, secret: String) -> Self {
        SiteVerify {
            url: url.to_owned(),
            secret,
            hostname: None,
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(5),
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, CaptchaUnavailable> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CaptchaUnavailable(format!("no HTTP client: {e}")))?;
        let _ = self.client.set(client);
        self.client
            .get()
            .ok_or_else(|| CaptchaUnavailable("no HTTP client".into()))
    }

    /// Posts the form and reads the answer. Not getting one (no connection, a timeout, a
    /// 5xx, an answer past the size cap) is `CaptchaUnavailable`, which a fail-open config
    /// lets through; an answer that is not the provider's (a 4xx, an unreadable body) is a
    /// refusal, so an attacker who can make the provider or a proxy answer oddly (a 429 by
    /// flooding it) cannot turn fail-open into no CAPTCHA at all.
    async fn ask(&self, form: &[(&str, &str)]) -> Result<Answer, CaptchaUnavailable> {
        // The secret travels in this body: never over plain HTTP, but to this machine (a
        // local fake or sidecar).
        let plain = self
            .url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
        let local = url::Url::parse(&self.url)
            .ok()
            .is_some_and(|u| match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            });
        if plain && !local {
            return Ok(Answer {
                success: false,
                error_codes: vec![INSECURE_URL.into()],
                hostname: None,
                action: None,
                score: None,
            });
        }
        let body = serde_urlencoded::to_string(form)
            .map_err(|e| CaptchaUnavailable(format!("form: {e}")))?;
        let unreachable = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            // reqwest's message names the URL (never the secret: it travels in the body).
            CaptchaUnavailable(format!("{kind}: {e}"))
        };
        let mut response = self
            .client()?
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(CaptchaUnavailable(format!("answered {status}")));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(CaptchaUnavailable("answer too large".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        let refused = |code: String| Answer {
            success: false,
            error_codes: vec![code],
            hostname: None,
            action: None,
            score: None,
        };
        if !status.is_success() {
            return Ok(refused(format!("http-{}", status.as_u16())));
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| refused("unreadable-answer".into())))
    }

    /// The form every provider takes (our secret, the client's token, its address when
    /// known, and one provider-specific field), posted and read.
    async fn ask_for(
        &self,
        token: &str,
        ip: Option<IpAddr>,
        extra: Option<(&str, &str)>,
    ) -> Result<Answer, CaptchaUnavailable> {
        let ip = ip.map(|ip| ip.to_string());
        let mut form = vec![("secret", self.secret.as_str()), ("response", token)];
        form.extend(ip.as_deref().map(|ip| ("remoteip", ip)));
        form.extend(extra);
        self.ask(&form).await
    }

    /// The checks every provider shares: success, then the hostname when configured.
    fn judge(&self, answer: &Answer) -> Option<CaptchaRefusal> {
        if answer.error_codes.iter().any(|c| {
            c == "invalid-input-secret" || c == "missing-input-secret" || c == INSECURE_URL
        }) {
            return Some(CaptchaRefusal::Misconfigured);
        }
        if !answer.success {
            return Some(CaptchaRefusal::Rejected(answer.error_codes.clone()));
        }
        if let Some(expected) = &self.hostname
            && !answer
                .hostname
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(expected))
        {
            return Some(CaptchaRefusal::WrongHostname);
        }
        None
    }
}

fn verdict(refusal: Option<CaptchaRefusal>) -> CaptchaVerdict {
    match refusal {
        Some(r) => CaptchaVerdict::Refused(r),
        None => CaptchaVerdict::Passed,
    }
}

macro_rules! common_settings {
    ($ty:ident, $example:literal) => {
        impl $ty {
            /// The siteverify URL to post to (the provider's own by default; a proxy, or a
            /// local fake in tests).
            ///
            /// ```
            #[doc = $example]
            /// let v = v.verify_url("http://127.0.0.1:9/siteverify");
            /// assert!(format!("{v:?}").contains("127.0.0.1:9"));
            /// ```
            pub fn verify_url(mut self, url: impl Into<String>) -> Self {
                self.site.url = url.into();
                self
            }

            /// Refuses a token solved on another hostname than this one (as the provider
            /// reports it; compared case-insensitively).
            ///
            /// ```
            #[doc = $example]
            /// let v = v.hostname("app.example.com");
            /// ```
            pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
                self.site.hostname = Some(hostname.into());
                self
            }

            /// The connect timeout (3 s) and the total timeout of one verification (5 s).
            ///
            /// ```
            #[doc = $example]
            /// use std::time::Duration;
            /// let v = v.timeouts(Duration::from_secs(1), Duration::from_secs(2));
            /// ```
            pub fn timeouts(mut self, connect: Duration, total: Duration) -> Self {
                self.site.connect_timeout = connect;
                self.site.timeout = total;
                self.site.client = OnceLock::new();
                self
            }
        }
    };
}

/// Cloudflare Turnstile.
///
/// ```
/// use crudauth::captcha::siteverify::Turnstile;
/// let v = Turnstile::new("0x4AAAA-secret").check_action(true);
/// assert!(!format!("{v:?}").contains("0x4AAAA-secret"));
/// ```
#[derive(Clone, Debug)]
pub struct Turnstile {
    site: SiteVerify,
    check_action: bool,
}

impl Turnstile {
    /// Cloudflare's endpoint.
    pub const URL: &'static str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

    /// A verifier with this secret key.
    ///
    /// ```
    /// let v = crudauth::captcha::siteverify::Turnstile::new("secret");
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        Turnstile {
            site: SiteVerify::new(Self::URL, secret.into()),
            check_action: false,
        }
    }

    /// Refuses a token whose `action` (the widget's `data-action`) is not the route's
    /// ([`CaptchaAction::as_str`]).
    ///
    /// ```
    /// let v = crudauth::captcha::siteverify::Turnstile::new("secret").check_action(true);
    /// ```
    pub fn check_action(mut self, check: bool) -> Self {
        self.check_action = check;
        self
    }
}

common_settings!(
    Turnstile,
    "let v = crudauth::captcha::siteverify::Turnstile::new(\"secret\");"
);

#[async_trait::async_trait]
impl Captcha for Turnstile {
    fn provider(&self) -> &'static str {
        "turnstile"
    }

    fn widget_field(&self) -> Option<&'static str> {
        Some("cf-turnstile-response")
    }

    async fn verify(
        &self,
        token: &str,
        action: CaptchaAction,
        ip: Option<IpAddr>,
    ) -> Result<CaptchaVerdict, CaptchaUnavailable> {
        let answer = self.site.ask_for(token, ip, None).await?;
        let mut refusal = self.site.judge(&answer);
        if refusal.is_none()
            && self.check_action
            && answer.action.as_deref() != Some(action.as_str())
        {
            refusal = Some(CaptchaRefusal::WrongAction);
        }
        Ok(verdict(refusal))
    }
}

/// hCaptcha.
///
/// ```
/// use crudauth::captcha::siteverify::HCaptcha;
/// let v = HCaptcha::new("0x-secret").sitekey("10000000-ffff-ffff-ffff-000000000001");
/// assert!(!format!("{v:?}").contains("0x-secret"));
/// ```
#[derive(Clone, Debug)]
pub struct HCaptcha {
    site: SiteVerify,
    sitekey: Option<String>,
}

impl HCaptcha {
    /// hCaptcha's endpoint.
    pub const URL: &'static str = "https://api.hcaptcha.com/siteverify";

    /// A verifier with this secret key.
    ///
    /// ```
    /// let v = crudauth::captcha::siteverify::HCaptcha::new("secret");
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        HCaptcha {
            site: SiteVerify::new(Self::URL, secret.into()),
            sitekey: None,
        }
    }

    /// Sends the site key too, so hCaptcha refuses a token made for another site.
    ///
    /// ```
    /// let v = crudauth::captcha::siteverify::HCaptcha::new("secret").sitekey("site-key");
    /// ```
    pub fn sitekey(mut self, sitekey: impl Into<String>) -> Self {
        self.sitekey = Some(sitekey.into());
        self
    }
}

common_settings!(
    HCaptcha,
    "let v = crudauth::captcha::siteverify::HCaptcha::new(\"secret\");"
);

#[async_trait::async_trait]
impl Captcha for HCaptcha {
    fn provider(&self) -> &'static str {
        "hcaptcha"
    }

    fn widget_field(&self) -> Option<&'static str> {
        Some("h-captcha-response")
    }

    async fn verify(
        &self,
        token: &str,
        _action: CaptchaAction,
        ip: Option<IpAddr>,
    ) -> Result<CaptchaVerdict, CaptchaUnavailable> {
        let sitekey = self.sitekey.as_deref().map(|k| ("sitekey", k));
        let answer = self.site.ask_for(token, ip, sitekey).await?;
        Ok(verdict(self.site.judge(&answer)))
    }
}

/// Google reCAPTCHA v3: a score per request; the token's action must be the route's
/// ([`CaptchaAction::as_str`]) and its score at least [`min_score`](Self::min_score) (0.5).
///
/// ```
/// use crudauth::captcha::siteverify::RecaptchaV3;
/// let v = RecaptchaV3::new("6Lc-secret").min_score(0.7);
/// assert!(!format!("{v:?}").contains("6Lc-secret"));
/// ```
#[derive(Clone, Debug)]
pub struct RecaptchaV3 {
    site: SiteVerify,
    min_score: f64,
}

impl RecaptchaV3 {
    /// Google's endpoint.
    pub const URL: &'static str = "https://www.google.com/recaptcha/api/siteverify";

    /// A verifier with this secret key.
    ///
    /// ```
    /// let v = crudauth::captcha::siteverify::RecaptchaV3::new("secret");
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        RecaptchaV3 {
            site: SiteVerify::new(Self::URL, secret.into()),
            min_score: 0.5,
        }
    }

    /// The lowest score that passes (0.0 to 1.0; 0.5 by default, as Google suggests).
    ///
    /// ```
    /// let v = crudauth::captcha::siteverify::RecaptchaV3::new("secret").min_score(0.3);
    /// ```
    pub fn min_score(mut self, score: f64) -> Self {
        self.min_score = score.clamp(0.0, 1.0);
        self
    }
}

common_settings!(
    RecaptchaV3,
    "let v = crudauth::captcha::siteverify::RecaptchaV3::new(\"secret\");"
);

#[async_trait::async_trait]
impl Captcha for RecaptchaV3 {
    fn provider(&self) -> &'static str {
        "recaptcha"
    }

    fn widget_field(&self) -> Option<&'static str> {
        Some("g-recaptcha-response")
    }

    async fn verify(
        &self,
        token: &str,
        action: CaptchaAction,
        ip: Option<IpAddr>,
    ) -> Result<CaptchaVerdict, CaptchaUnavailable> {
        let answer = self.site.ask_for(token, ip, None).await?;
        let mut refusal = self.site.judge(&answer);
        if refusal.is_none() && answer.action.as_deref() != Some(action.as_str()) {
            refusal = Some(CaptchaRefusal::WrongAction);
        }
        // A missing score, or NaN, is no pass.
        if refusal.is_none() && !answer.score.is_some_and(|s| s >= self.min_score) {
            refusal = Some(CaptchaRefusal::LowScore);
        }
        Ok(verdict(refusal))
    }
}
