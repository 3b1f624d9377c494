//! A flow from start to end: the pending state (stored, claimed once), the provider's
//! answer, the account, and the token mode's exchange code.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;

use super::state::{self, Pending, PendingTokens, Purpose};
use super::{
    AuthorizeRequest, Begun, CodeExchange, Failure, Finished, OAuth, OAuthErrorCode,
    PkceCodeChallenge, store_fault,
};
use crate::error::AuthError;
use crate::keys::{hmac_hex, random_token};
use crate::user::UserRecord;

impl<U: UserRecord> OAuth<U> {
    fn state_key(&self, state: &str) -> String {
        format!(
            "oauth_state:{}",
            hmac_hex(&self.core.keys.one_time, state.as_bytes())
        )
    }

    fn exchange_key(&self, code: &str) -> String {
        format!(
            "oauth_exchange:{}",
            hmac_hex(&self.core.keys.one_time, code.as_bytes())
        )
    }

    /// Starts a flow: a fresh state, nonce and PKCE verifier, stored (hashed) for
    /// `state_ttl`; answers the provider's authorize URL.
    pub(crate) async fn begin(
        &self,
        provider_name: &str,
        redirect_to: Option<&str>,
        purpose: Purpose,
    ) -> Result<Begun, Failure> {
        let provider = self
            .inner
            .providers
            .get(provider_name)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let state = random_token();
        let nonce = random_token();
        let (pkce, verifier) = PkceCodeChallenge::new_random_sha256_len(64);
        let redirect_uri = self
            .callback_url(provider_name)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let token_mode = matches!(purpose, Purpose::Token { .. });
        let request = AuthorizeRequest {
            redirect_uri: &redirect_uri,
            state: &state,
            nonce: &nonce,
            pkce: &pkce,
        };
        let url = provider.authorize_url(&request).await.map_err(|e| {
            tracing::warn!(provider = provider_name, error = %e, "crudauth: OAuth authorize failed");
            OAuthErrorCode::OAuthFailed
        })?;
        let pending = Pending {
            provider: provider_name.to_owned(),
            verifier: verifier.secret().clone(),
            nonce,
            redirect_to: redirect_to.and_then(|r| self.safe_redirect(r, token_mode)),
            purpose,
            created: crate::clock::system_secs(),
        };
        let bytes = serde_json::to_vec(&pending).map_err(|_| AuthError::Internal)?;
        let stored = (self.core.store)
            .set_if_absent(
                &self.state_key(&state),
                &bytes,
                Some(self.inner.config.state_ttl),
            )
            .await
            .map_err(store_fault)?;
        if !stored {
            return Err(AuthError::Internal.into()); // a 256-bit collision
        }
        Ok(Begun { url, state })
    }

    /// Finishes a flow from the callback's parameters: the cookie must hold `state` (else
    /// nothing is consumed), the stored state is claimed (single use), then the code is
    /// exchanged and the identity resolved to an account.
    pub(crate) async fn finish(
        &self,
        provider_name: &str,
        params: &CallbackParams,
        cookie: &[String],
        client: &crate::client_ip::ClientMeta,
        signed_in: Option<&str>,
    ) -> Result<Finished<U>, Failure> {
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .ok_or(OAuthErrorCode::InvalidState)?;
        if !state::cookie_holds(cookie, state) {
            return Err(OAuthErrorCode::InvalidState.into());
        }
        let raw = (self.core.store)
            .get_and_delete(&self.state_key(state))
            .await
            .map_err(store_fault)?;
        let pending: Pending = raw
            .and_then(|r| serde_json::from_slice(&r).ok())
            .ok_or(OAuthErrorCode::InvalidState)?;
        if pending.provider != provider_name {
            return Err(OAuthErrorCode::InvalidState.into());
        }
        // A link ends in the session that started it: not in a browser someone else signed
        // in to (or out of) meanwhile.
        if let Purpose::Link { user_id, .. } = &pending.purpose
            && signed_in != Some(user_id.as_str())
        {
            return Err(OAuthErrorCode::InvalidState.into());
        }
        if let Some(error) = &params.error {
            tracing::info!(provider = provider_name, error = %error.chars().take(64).collect::<String>(), "crudauth: the provider refused the sign-in");
            return Err(OAuthErrorCode::OAuthFailed.into());
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let provider = self
            .inner
            .providers
            .get(provider_name)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let redirect_uri = self
            .callback_url(provider_name)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let exchange = CodeExchange {
            code,
            redirect_uri: &redirect_uri,
            pkce_verifier: &pending.verifier,
            nonce: &pending.nonce,
        };
        let identity = provider.identity(&exchange).await.map_err(|e| {
            tracing::warn!(provider = provider_name, error = %e, "crudauth: OAuth sign-in failed at the provider");
            OAuthErrorCode::OAuthFailed
        })?;
        if identity.subject.is_empty() || identity.subject.len() > 255 {
            return Err(OAuthErrorCode::OAuthFailed.into());
        }
        let token_mode = matches!(pending.purpose, Purpose::Token { .. });
        let redirect_to = pending
            .redirect_to
            .as_deref()
            .and_then(|r| self.safe_redirect(r, token_mode));
        let (user, created) = match &pending.purpose {
            Purpose::Link { user_id, epoch } => (
                self.link_to(provider_name, &identity, user_id, *epoch)
                    .await?,
                false,
            ),
            _ => self.sign_in(provider_name, &identity, client).await?,
        };
        Ok(Finished {
            user,
            created,
            provider: pending.provider,
            purpose: pending.purpose,
            redirect_to,
        })
    }

    /// A one-time code a token-mode client exchanges for its token pair (2 minutes).
    pub(crate) async fn issue_exchange_code(
        &self,
        user: &U,
        epoch: i64,
        challenge: String,
    ) -> Result<String, AuthError> {
        let code = random_token();
        let pending = PendingTokens {
            user_id: user.user_id().to_string(),
            epoch,
            challenge,
        };
        let bytes = serde_json::to_vec(&pending).map_err(|_| AuthError::Internal)?;
        (self.core.store)
            .set(
                &self.exchange_key(&code),
                &bytes,
                Some(Duration::from_secs(120)),
            )
            .await
            .map_err(store_fault)?;
        Ok(code)
    }

    /// Redeems an exchange code (single use) with the client's PKCE verifier; answers the
    /// user and its epoch, still current.
    pub(crate) async fn redeem_exchange_code(
        &self,
        code: &str,
        verifier: &str,
    ) -> Result<(Arc<U>, i64), AuthError> {
        const INVALID: AuthError = AuthError::BadRequest("Invalid or expired code");
        if code.is_empty() || code.len() > 64 || verifier.len() < 43 || verifier.len() > 128 {
            return Err(INVALID);
        }
        let raw = (self.core.store)
            .get_and_delete(&self.exchange_key(code))
            .await
            .map_err(store_fault)?;
        let pending: PendingTokens = raw
            .and_then(|r| serde_json::from_slice(&r).ok())
            .ok_or(INVALID)?;
        let computed = PkceCodeChallenge::from_code_verifier_sha256(
            &oauth2::PkceCodeVerifier::new(verifier.to_owned()),
        );
        let matches: bool = subtle::ConstantTimeEq::ct_eq(
            computed.as_str().as_bytes(),
            pending.challenge.as_bytes(),
        )
        .into();
        if !matches {
            return Err(INVALID);
        }
        let user = (self.core)
            .user_by_text_id(&pending.user_id)
            .await?
            .ok_or(INVALID)?;
        let epoch = self.core.revocation.epoch(&user).await?;
        if !user.is_active() || epoch != pending.epoch {
            return Err(INVALID);
        }
        Ok((Arc::new(user), epoch))
    }

    /// The state cookie's name: `__Host-oauth_state` where the session cookie is prefixed
    /// too (a `Secure` session cookie with `host_prefix`), else `oauth_state`.
    pub(crate) fn state_cookie_name(&self) -> &'static str {
        crate::transport::session::companion_cookie_name(
            self.core.sessions.as_ref(),
            state::HOST_STATE_COOKIE,
            state::STATE_COOKIE,
        )
    }

    /// The pending states the request's cookie carries.
    pub(crate) fn cookie_states(&self, headers: &axum::http::HeaderMap) -> Vec<String> {
        state::cookie_states(headers, self.state_cookie_name())
    }

    pub(crate) fn state_cookie(&self, states: &[String]) -> HeaderValue {
        let secure = self
            .core
            .sessions
            .as_ref()
            .is_none_or(|s| s.config().secure);
        let ttl = self.inner.config.state_ttl.as_secs() as i64;
        state::state_cookie(self.state_cookie_name(), states, secure, ttl)
    }

    pub(crate) fn with_state(states: Vec<String>, state: &str) -> Vec<String> {
        state::with_state(states, state)
    }

    /// `default_redirect` with `?error=<code>`.
    pub(crate) fn error_target(&self, code: OAuthErrorCode) -> String {
        state::with_query(&self.inner.config.default_redirect, "error", code.as_str())
    }

    pub(crate) fn with_query(target: &str, key: &str, value: &str) -> String {
        state::with_query(target, key, value)
    }
}

/// The callback's query parameters.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}
