//! Session transport settings: the cookie names and attributes, the timeouts, the CSRF
//! switch and the clock.

use std::time::Duration;

use crate::clock::Clock;

// Only the rustdoc links name it.
#[cfg(doc)]
use super::Sessions;

/// The `SameSite` policies a session cookie may use. `None` is deliberately absent.
///
/// ```
/// assert_eq!(crudauth::SameSite::default(), crudauth::SameSite::Lax);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Lax` (default).
    #[default]
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

/// Session transport settings.
///
/// ```
/// let c = crudauth::SessionConfig::default();
/// assert_eq!(c.cookie_name, "session_id");
/// assert!(c.secure && c.csrf && c.host_prefix && !c.csrf_host_prefix);
/// ```
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The session cookie (default `session_id`).
    pub cookie_name: String,
    /// The CSRF cookie, readable by scripts (default `csrf_token`).
    pub csrf_cookie_name: String,
    /// The CSRF header (default `X-CSRF-Token`).
    pub csrf_header: String,
    /// Require the CSRF header on state-changing requests (default `true`).
    pub csrf: bool,
    /// Mark cookies `Secure` (default `true`; turn off only for plain-http development).
    pub secure: bool,
    /// The cookies' `SameSite` (default `Lax`).
    pub same_site: SameSite,
    /// The cookies' `Path` (default `/`).
    pub path: String,
    /// Idle timeout (default 30 minutes), also the storage TTL.
    pub idle_timeout: Duration,
    /// Absolute lifetime from login (default 12 hours).
    pub absolute_timeout: Duration,
    /// Sessions kept per user; the least recently active beyond this are ended at login
    /// (default 5).
    pub max_sessions_per_user: usize,
    /// How stale `last_activity` may get before a request writes it (default 60 s). Keeps an
    /// authenticated request at one store read in the common case.
    pub touch_interval: Duration,
    /// Put the `__Host-` prefix on the session cookie's name (default `true`): the browser
    /// then accepts it only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain
    /// can neither set nor shadow it (cookie tossing, subdomain session fixation). Applied
    /// only where those rules hold: with `secure` on and `path` `/`; with `secure` off (plain
    /// http development) the name stays as configured. The effective name is what
    /// [`Sessions::config`] reports (`__Host-session_id` with the defaults). The session
    /// cookie is `HttpOnly`, so no script reads it by name; clients that pick it out of
    /// `Set-Cookie` by name must use the prefixed name (or turn this off).
    pub host_prefix: bool,
    /// Put the `__Host-` prefix on the CSRF cookie too (default `false`): scripts read that
    /// cookie by name (`csrf_token`, as crudauth 0.8 named it), so prefixing it changes what
    /// a frontend must read. It stays readable by scripts either way. A tossed CSRF cookie
    /// cannot pass the check (the token is compared with the one stored in the session), so
    /// the prefix is defence in depth here.
    pub csrf_host_prefix: bool,
    /// Where "now" comes from for session timestamps and timeouts (default: the system
    /// clock). Tests hand in [`Clock::adjustable`] and move it forward to test the idle and
    /// absolute timeouts without sleeping.
    pub clock: Clock,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie_name: "session_id".into(),
            csrf_cookie_name: "csrf_token".into(),
            csrf_header: "x-csrf-token".into(),
            csrf: true,
            secure: true,
            same_site: SameSite::Lax,
            path: "/".into(),
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            max_sessions_per_user: 5,
            touch_interval: Duration::from_secs(60),
            host_prefix: true,
            csrf_host_prefix: false,
            clock: Clock::system(),
        }
    }
}

const HOST_PREFIX: &str = "__Host-";

impl SessionConfig {
    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        let bad = |m: &str| Err(crate::ConfigError::Invalid(m.into()));
        if self.cookie_name == self.csrf_cookie_name {
            return bad("the session and CSRF cookie names must differ");
        }
        if self.cookie_name.is_empty() || self.csrf_cookie_name.is_empty() {
            return bad("cookie names must not be empty");
        }
        if self.idle_timeout.is_zero() || self.absolute_timeout < self.idle_timeout {
            return bad("session timeouts: idle must be positive and absolute >= idle");
        }
        if self.max_sessions_per_user == 0 {
            return bad("max_sessions_per_user must be at least 1");
        }
        if axum::http::HeaderName::try_from(self.csrf_header.as_str()).is_err() {
            return bad("csrf_header is not a valid header name");
        }
        // A name the application prefixed itself must meet the prefix's rules, or browsers
        // drop the cookie and nobody can sign in.
        for name in [&self.cookie_name, &self.csrf_cookie_name] {
            if name.starts_with(HOST_PREFIX) && !(self.secure && self.path == "/") {
                return bad("a __Host- cookie needs secure = true and path = \"/\"");
            }
            if name.starts_with("__Secure-") && !self.secure {
                return bad("a __Secure- cookie needs secure = true");
            }
        }
        Ok(())
    }

    /// Whether the `__Host-` prefix can be used: `Secure` and `Path=/` (no `Domain` is ever
    /// set).
    fn host_prefix_allowed(&self) -> bool {
        self.secure && self.path == "/"
    }

    /// The configuration with the `__Host-` prefixes applied to the cookie names, as the
    /// session manager uses them.
    pub(super) fn with_effective_names(mut self) -> Self {
        let prefix = |name: &mut String| {
            if !name.starts_with("__Host-") && !name.starts_with("__Secure-") {
                name.insert_str(0, HOST_PREFIX);
            }
        };
        if self.host_prefix_allowed() {
            if self.host_prefix {
                prefix(&mut self.cookie_name);
            }
            if self.csrf_host_prefix {
                prefix(&mut self.csrf_cookie_name);
            }
        } else if self.secure && (self.host_prefix || self.csrf_host_prefix) {
            tracing::info!(
                path = %self.path,
                "crudauth: cookie path is not /, so the __Host- prefix is not used"
            );
        }
        self
    }
}
