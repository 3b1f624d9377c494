//! The flow's one-time records: the pending `state` (server-side, hashed, single use, bound
//! to the browser by the `oauth_state` cookie) and the token-mode exchange code; and the
//! `redirect_to` rules.

use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The cookie that binds a pending state to the browser that asked for it: the original's
/// name, `__Host-` prefixed where the session cookie is (`Secure`, `Path=/`, no `Domain`), so
/// a sibling subdomain or a plain-http page cannot plant a state of its own.
pub(crate) const STATE_COOKIE: &str = "oauth_state";
/// The prefixed name.
pub(crate) const HOST_STATE_COOKIE: &str = "__Host-oauth_state";
/// How many pending states the cookie keeps (parallel flows in one browser, one per tab,
/// do not clobber each other as the original's single value did).
const COOKIE_STATES: usize = 3;
/// The longest `redirect_to` kept.
const MAX_REDIRECT: usize = 2048;

/// What a pending flow will do when it comes back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Purpose {
    /// Sign in over the session transport.
    Session,
    /// Sign in and hand a token pair to a bearer client; `challenge` (S256 of the client's
    /// verifier) binds the exchange code of redirect mode to that client.
    Token { challenge: Option<String> },
    /// Link the provider account to a signed-in user (at the epoch it had).
    Link { user_id: String, epoch: i64 },
}

/// A pending flow, stored under the state's keyed hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub provider: String,
    pub verifier: String,
    pub nonce: String,
    pub redirect_to: Option<String>,
    pub purpose: Purpose,
    pub created: i64,
}

/// A token-mode sign-in waiting for its bearer client to exchange the code.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PendingTokens {
    pub user_id: String,
    pub epoch: i64,
    pub challenge: String,
}

/// The states the request's `oauth_state` cookie carries.
pub(crate) fn cookie_states(headers: &HeaderMap, name: &str) -> Vec<String> {
    crate::transport::session::cookie(headers, name)
        .map(|v| {
            v.split('.')
                .filter(|s| !s.is_empty() && s.len() <= 64)
                .take(COOKIE_STATES)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `state` is one the cookie carries (compared in constant time).
pub(crate) fn cookie_holds(states: &[String], state: &str) -> bool {
    states.iter().fold(false, |found, s| {
        found | bool::from(s.as_bytes().ct_eq(state.as_bytes()))
    })
}

/// The cookie after adding a new state (the oldest dropped beyond the cap).
pub(crate) fn with_state(mut states: Vec<String>, state: &str) -> Vec<String> {
    states.push(state.to_owned());
    let excess = states.len().saturating_sub(COOKIE_STATES);
    states.drain(..excess);
    states
}

/// The `Set-Cookie` for the pending states (cleared when none is left).
pub(crate) fn state_cookie(
    name: &'static str,
    states: &[String],
    secure: bool,
    ttl_secs: i64,
) -> HeaderValue {
    let clear = states.is_empty();
    let mut builder = cookie::Cookie::build((name, states.join(".")))
        .http_only(true)
        .secure(secure)
        .path("/")
        .same_site(cookie::SameSite::Lax)
        .max_age(time::Duration::seconds(if clear { 0 } else { ttl_secs }));
    if clear {
        builder = builder.expires(time::OffsetDateTime::UNIX_EPOCH);
    }
    HeaderValue::from_str(&builder.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Where a flow may send the browser back to.
#[derive(Clone, Debug)]
pub(crate) struct Redirects {
    /// The origins an absolute `redirect_to` may have (the API's, the default redirect's).
    origins: Vec<url::Origin>,
    /// The API's own base (a path is resolved against it).
    base: url::Url,
    /// Exact targets a token-mode flow may use besides those (a native app's redirect).
    apps: Vec<String>,
}

impl Redirects {
    pub(crate) fn new(base: url::Url, default: &str, apps: Vec<String>) -> Self {
        let mut origins = vec![base.origin()];
        if let Ok(url) = url::Url::parse(default) {
            origins.push(url.origin());
        }
        Redirects {
            origins,
            base,
            apps,
        }
    }

    /// The target if it is safe: a same-origin path (not `//host`, not `/\host`) or an
    /// absolute http(s) URL on one of the allowed origins; in token mode also one of the
    /// app redirects, exactly. Control characters (CR/LF, tabs), backslashes and anything
    /// over 2048 bytes are refused.
    pub(crate) fn safe(&self, raw: &str, token_mode: bool) -> Option<String> {
        if raw.is_empty()
            || raw.len() > MAX_REDIRECT
            || raw.chars().any(|c| c.is_control() || c == '\\')
        {
            return None;
        }
        if token_mode && self.apps.iter().any(|a| a == raw) {
            return Some(raw.to_owned());
        }
        if raw.starts_with('/') {
            if raw.starts_with("//") {
                return None;
            }
            let joined = self.base.join(raw).ok()?;
            return (joined.origin() == self.base.origin()).then(|| raw.to_owned());
        }
        let url = url::Url::parse(raw).ok()?;
        let web = matches!(url.scheme(), "http" | "https");
        let ok = web
            && url.username().is_empty()
            && url.password().is_none()
            && self.origins.contains(&url.origin());
        ok.then(|| url.to_string())
    }
}

/// `target` with `?key=value` (or `&key=value`) added before any fragment.
pub(crate) fn with_query(target: &str, key: &str, value: &str) -> String {
    let (head, fragment) = match target.split_once('#') {
        Some((h, f)) => (h, Some(f)),
        None => (target, None),
    };
    let sep = if head.contains('?') { '&' } else { '?' };
    let pair: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(key, value)
        .finish();
    match fragment {
        Some(f) => format!("{head}{sep}{pair}#{f}"),
        None => format!("{head}{sep}{pair}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirects() -> Redirects {
        let base = url::Url::parse("https://api.example.com").unwrap();
        Redirects::new(
            base,
            "https://app.example.com/home",
            vec!["com.example.app:/oauth".into()],
        )
    }

    #[test]
    fn only_same_origin_targets_are_safe() {
        let r = redirects();
        assert_eq!(
            r.safe("/dashboard?x=1", false).as_deref(),
            Some("/dashboard?x=1")
        );
        assert!(r.safe("https://app.example.com/a", false).is_some());
        assert!(r.safe("https://api.example.com/a", false).is_some());
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://user@app.example.com/",
            "/ok\r\nSet-Cookie: x=1",
            "/\t/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
        ] {
            assert_eq!(r.safe(bad, false), None, "{bad:?}");
        }
        assert_eq!(r.safe(&format!("/{}", "a".repeat(3000)), false), None);
    }

    #[test]
    fn app_redirects_count_in_token_mode_only() {
        let r = redirects();
        assert!(r.safe("com.example.app:/oauth", true).is_some());
        assert!(r.safe("com.example.app:/oauth", false).is_none());
        assert!(r.safe("com.example.app:/oauth/other", true).is_none());
    }

    #[test]
    fn the_cookie_keeps_the_newest_three_states() {
        let mut states = Vec::new();
        for s in ["a", "b", "c", "d"] {
            states = with_state(states, s);
        }
        assert_eq!(states, ["b", "c", "d"]);
        assert!(cookie_holds(&states, "c"));
        assert!(!cookie_holds(&states, "a"));
        assert!(!cookie_holds(&states, ""));
    }

    #[test]
    fn errors_are_added_as_query_parameters() {
        assert_eq!(
            with_query("/", "error", "oauth_failed"),
            "/?error=oauth_failed"
        );
        assert_eq!(with_query("/a?b=1#f", "error", "x y"), "/a?b=1&error=x+y#f");
    }
}
