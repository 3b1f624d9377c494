//! The configured rule at work: built by the builder, asked by the routes.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, header};

use super::{CAPTCHA_HEADER, CaptchaAction, CaptchaConfig, CaptchaVerdict, MAX_TOKEN};
use crate::client_ip::{ClientMeta, ip_key};
use crate::error::AuthError;
use crate::store::Store;

/// The configured rule at work: built by the builder, asked by the routes.
pub(crate) struct CaptchaGuard {
    config: CaptchaConfig,
    store: Arc<dyn Store>,
    /// Verifications running now, over all clients.
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl CaptchaGuard {
    pub(crate) fn new(config: CaptchaConfig, store: Arc<dyn Store>) -> Self {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(config.max_in_flight));
        CaptchaGuard {
            config,
            store,
            in_flight,
        }
    }

    fn failures_key(ip: Option<IpAddr>) -> String {
        format!("captcha:login-failures:{}", ip_key(ip))
    }

    /// Whether sign-in attempts are counted for the after-failures rule (it is on, and the
    /// sign-in is not always asked anyway).
    fn counts_logins(&self) -> Option<(u32, std::time::Duration)> {
        self.config
            .after_failures
            .filter(|_| !self.config.always.contains(&CaptchaAction::Login))
    }

    /// Whether `action` from this client must show a token now. A sign-in attempt under
    /// the after-failures rule is counted here, as it arrives (and taken back by
    /// [`login_succeeded`](Self::login_succeeded)): counting only once a password check
    /// has failed would let a parallel burst through unasked. A store fault fails closed
    /// (503).
    async fn asks(&self, action: CaptchaAction, client: &ClientMeta) -> Result<bool, AuthError> {
        if self.config.always.contains(&action) {
            return Ok(true);
        }
        match self.counts_logins() {
            Some((n, window)) if action == CaptchaAction::Login => {
                let attempts = self
                    .store
                    .incr(&Self::failures_key(client.ip), 1, window)
                    .await
                    .map_err(|e| crate::store::fail_closed("captcha failure counter", &e))?;
                Ok(attempts > i64::from(n))
            }
            _ => Ok(false),
        }
    }

    /// Takes back the count of a sign-in attempt that signed in (or reached its second
    /// factor). A store fault is logged: the sign-in already happened.
    pub(crate) async fn login_succeeded(&self, client: &ClientMeta) {
        let Some((_, window)) = self.counts_logins() else {
            return;
        };
        let key = Self::failures_key(client.ip);
        // A window that ended between the count and now leaves a fresh counter at -1: put
        // it back to zero, or the next window would allow one attempt more.
        let result = match self.store.incr(&key, -1, window).await {
            Ok(n) if n < 0 => self.store.incr(&key, -n, window).await.map(|_| ()),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            crate::store::report_fault("captcha failure counter", &e);
        }
    }

    /// The per-client verification budget: 429 once a client has had its share verified
    /// this window.
    async fn spend_verification(&self, client: &ClientMeta) -> Result<(), AuthError> {
        let (limit, window) = self.config.verify_budget;
        let key = format!("captcha:verify:{}", ip_key(client.ip));
        let used = self
            .store
            .incr(&key, 1, window)
            .await
            .map_err(|e| crate::store::fail_closed("captcha verification budget", &e))?;
        if used > i64::from(limit) {
            let retry_after = match self.store.ttl(&key).await {
                Ok(Some(left)) => left.as_secs().max(1),
                _ => window.as_secs().max(1),
            };
            return Err(AuthError::RateLimited(crate::quota::Limited {
                limit,
                retry_after,
            }));
        }
        Ok(())
    }

    fn refusal(&self, detail: &'static str) -> AuthError {
        AuthError::Captcha {
            detail,
            provider: self.config.verifier.provider(),
        }
    }

    /// The gate of a guarded route: `Ok` when no token is needed or it passed (or the
    /// verifier is down and the config fails open); 403 when it is missing or refused;
    /// 503 when the verifier is down.
    pub(crate) async fn check(
        &self,
        action: CaptchaAction,
        client: &ClientMeta,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), AuthError> {
        if !self.asks(action, client).await? {
            return Ok(());
        }
        let Some(token) = self.token(headers, body) else {
            return Err(self.refusal("captcha_required"));
        };
        if token.len() > MAX_TOKEN {
            return Err(self.refusal("captcha_failed"));
        }
        self.spend_verification(client).await?;
        let provider = self.config.verifier.provider();
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(
                provider,
                action = action.as_str(),
                "crudauth: too many CAPTCHA verifications at once; request refused"
            );
            return Err(AuthError::Unavailable);
        };
        match self.config.verifier.verify(&token, action, client.ip).await {
            Ok(CaptchaVerdict::Passed) => Ok(()),
            Ok(CaptchaVerdict::Refused(super::CaptchaRefusal::Misconfigured)) => {
                tracing::error!(
                    provider,
                    "crudauth: the CAPTCHA provider refuses the configured secret; guarded requests are refused (503) until it is fixed"
                );
                Err(AuthError::Unavailable)
            }
            Ok(CaptchaVerdict::Refused(why)) => {
                tracing::info!(
                    provider,
                    action = action.as_str(),
                    reason = why.as_str(),
                    "crudauth: CAPTCHA refused"
                );
                Err(self.refusal("captcha_failed"))
            }
            Err(e) if self.config.fail_open => {
                tracing::warn!(provider, action = action.as_str(), error = %e, "crudauth: CAPTCHA verifier unavailable; request let through (fail open)");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(provider, action = action.as_str(), error = %e, "crudauth: CAPTCHA verifier unavailable; request refused (fail closed)");
                Err(AuthError::Unavailable)
            }
        }
    }

    /// The token: the header, else the first configured body field (form or JSON).
    fn token(&self, headers: &HeaderMap, body: &[u8]) -> Option<String> {
        if let Some(value) = headers.get(CAPTCHA_HEADER) {
            let token = value.to_str().ok()?.trim();
            return (!token.is_empty()).then(|| token.to_owned());
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let found = if content_type.starts_with("application/x-www-form-urlencoded") {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
            self.config
                .fields()
                .find_map(|f| pairs.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone()))
        } else {
            let value: serde_json::Value = serde_json::from_slice(body).ok()?;
            self.config.fields().find_map(|f| {
                value
                    .get(f)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            })
        };
        found.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captcha::{Captcha, CaptchaRefusal, CaptchaUnavailable};

    struct Widget;

    #[async_trait::async_trait]
    impl Captcha for Widget {
        fn provider(&self) -> &'static str {
            "widget"
        }
        fn widget_field(&self) -> Option<&'static str> {
            Some("w-response")
        }
        async fn verify(
            &self,
            token: &str,
            _: CaptchaAction,
            _: Option<IpAddr>,
        ) -> Result<CaptchaVerdict, CaptchaUnavailable> {
            Ok(if token == "good" {
                CaptchaVerdict::Passed
            } else {
                CaptchaVerdict::Refused(CaptchaRefusal::Rejected(vec![]))
            })
        }
    }

    fn guard() -> CaptchaGuard {
        let config = CaptchaConfig::new(Widget).always(CaptchaAction::Register);
        CaptchaGuard::new(config, Arc::new(crate::store::MemoryStore::new()))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_token_comes_from_the_header_first_then_the_fields() {
        let g = guard();
        let json = headers(&[("content-type", "application/json")]);
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(
            g.token(&json, br#"{"captcha_token":" a "}"#).as_deref(),
            Some("a")
        );
        assert_eq!(
            g.token(&json, br#"{"w-response":"b"}"#).as_deref(),
            Some("b")
        );
        assert_eq!(
            g.token(&form, b"username=x&w-response=c").as_deref(),
            Some("c")
        );
        assert_eq!(
            g.token(&form, b"captcha_token=d&w-response=c").as_deref(),
            Some("d")
        );
        let both = headers(&[("content-type", "application/json"), (CAPTCHA_HEADER, "h")]);
        assert_eq!(
            g.token(&both, br#"{"captcha_token":"a"}"#).as_deref(),
            Some("h")
        );
        // Absent, empty, of the wrong type, or in a body that is no object: no token.
        for body in [
            &b""[..],
            b"[]",
            b"{",
            br#"{"captcha_token":""}"#,
            br#"{"captcha_token":7}"#,
        ] {
            assert_eq!(g.token(&json, body), None, "{body:?}");
        }
        let empty_header = headers(&[(CAPTCHA_HEADER, " ")]);
        assert_eq!(g.token(&empty_header, br#"{"captcha_token":"a"}"#), None);
    }

    #[tokio::test]
    async fn missing_refused_and_passing_tokens() {
        let g = guard();
        let client = ClientMeta::default();
        let check = |h: HeaderMap| {
            let g = &g;
            let client = client.clone();
            async move { g.check(CaptchaAction::Register, &client, &h, b"").await }
        };
        let missing = check(HeaderMap::new()).await.unwrap_err();
        assert_eq!(missing.status(), 403);
        assert_eq!(missing.to_string(), "captcha_required");
        let refused = check(headers(&[(CAPTCHA_HEADER, "bad")]))
            .await
            .unwrap_err();
        assert_eq!(refused.to_string(), "captcha_failed");
        assert!(check(headers(&[(CAPTCHA_HEADER, "good")])).await.is_ok());
        // An action no rule names is not asked.
        let other = g
            .check(CaptchaAction::Login, &client, &HeaderMap::new(), b"")
            .await;
        assert!(other.is_ok());
    }
}
