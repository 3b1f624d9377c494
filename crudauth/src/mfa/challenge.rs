//! The pre-auth challenge: what a password (or provider) sign-in of an account with a
//! second factor answers instead of a session or tokens. 256 random bits, stored under
//! their keyed hash for 5 minutes, bound to the user's epoch and to how the sign-in began,
//! at most 5 codes, consumed once. It is not a credential: no transport reads it, and only
//! `/mfa/verify` and `/mfa/challenge` take it.
//!
//! And "remember this device": a signed cookie that lets a device skip the second factor
//! until it expires or the user's epoch moves.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::manage::now;
use super::{Mfa, Setup, codes, store_fault};
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::keys::{hmac_hex, random_token};
use crate::login::PendingSuccess;
use crate::user::UserRecord;

/// How the sign-in that waits for its second factor began, and so how it ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A session sign-in (`/login`, or a provider's callback: `provider` and `redirect_to`).
    Session {
        /// The OAuth provider, for a provider sign-in.
        provider: Option<String>,
        /// Where a provider sign-in goes next.
        redirect_to: Option<String>,
    },
    /// A bearer sign-in (`/token`, or a provider sign-in in token mode), with its scopes.
    Bearer {
        /// The scopes asked for (clamped again when the tokens are issued).
        scopes: Vec<String>,
        /// A provider sign-in's PKCE challenge (S256): the verify then answers a one-time
        /// code for `/oauth/exchange`, which only the client holding the verifier redeems.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pkce: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Record {
    user_id: String,
    epoch: i64,
    origin: Origin,
    /// The sealed secret of an enrolment made during this sign-in.
    setup: Option<String>,
    attempts: u32,
    pending: Option<PendingSuccess>,
    expires: i64,
}

/// A challenge handed to the client.
#[derive(Clone)]
pub struct Challenge {
    /// The challenge token (256 bits), for `/mfa/verify`.
    pub token: String,
    /// Seconds it lives.
    pub expires_in: u64,
    /// For an account that must enrol now: its new authenticator.
    pub setup: Option<Setup>,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("expires_in", &self.expires_in)
            .field("setup", &self.setup.is_some())
            .finish_non_exhaustive()
    }
}

/// A sign-in whose second factor was verified.
pub struct Completed<U> {
    /// The user.
    pub user: Arc<U>,
    /// The epoch the sign-in carries.
    pub epoch: i64,
    /// How it began.
    pub origin: Origin,
    /// The recovery codes of an enrolment made during the sign-in (shown once).
    pub recovery_codes: Option<Vec<String>>,
}

impl<U> std::fmt::Debug for Completed<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completed")
            .field("epoch", &self.epoch)
            .field("origin", &self.origin)
            .field(
                "recovery_codes",
                &self.recovery_codes.as_ref().map(Vec::len),
            )
            .finish_non_exhaustive()
    }
}

const INVALID: AuthError = AuthError::BadRequest("Invalid or expired MFA challenge");

/// What answered a challenge.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A TOTP or recovery code.
    Code,
    /// A passkey assertion (`verify_with`).
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    Passkey,
}

impl<U: UserRecord> Mfa<U> {
    fn challenge_key(&self, token: &str) -> String {
        let hash = hmac_hex(&self.core.keys.one_time, token.as_bytes());
        format!("mfa_challenge:{hash}")
    }

    /// The purpose an enrolment secret is sealed for: this challenge, and no other.
    fn setup_purpose(&self, token: &str) -> String {
        let hash = hmac_hex(&self.core.keys.one_time, token.as_bytes());
        format!("challenge-setup:{hash}")
    }

    /// A challenge for a user whose password (or provider) was right; `pending` is the
    /// password's lockout success, recorded only once the code is right.
    pub(crate) async fn challenge(
        &self,
        user: &U,
        epoch: i64,
        origin: Origin,
        pending: Option<PendingSuccess>,
    ) -> Result<Challenge, AuthError> {
        let token = random_token();
        let uid = user.user_id().to_string();
        let enrol = !self.enabled(user).await? && self.is_required(user).await;
        let (setup, sealed) = if enrol {
            let secret = codes::new_secret();
            let sealed = (self.seal)
                .seal(&uid, &self.setup_purpose(&token), &secret)
                .ok_or(AuthError::Internal)?;
            (Some(self.setup_view(user, &secret)?), Some(sealed))
        } else {
            (None, None)
        };
        let ttl = self.config.challenge_ttl;
        let record = Record {
            user_id: uid,
            epoch,
            origin,
            setup: sealed,
            attempts: 0,
            pending,
            expires: now() + ttl.as_secs() as i64,
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        let fresh = (self.core.store)
            .set_if_absent(&self.challenge_key(&token), &bytes, Some(ttl))
            .await
            .map_err(store_fault)?;
        if !fresh {
            return Err(AuthError::Internal);
        }
        Ok(Challenge {
            token,
            expires_in: ttl.as_secs(),
            setup,
        })
    }

    async fn load(&self, token: &str) -> Result<Option<(Vec<u8>, Record)>, AuthError> {
        if token.is_empty() || token.len() > 64 {
            return Ok(None);
        }
        let raw = (self.core.store)
            .get(&self.challenge_key(token))
            .await
            .map_err(store_fault)?;
        Ok(raw.and_then(|r| serde_json::from_slice(&r).ok().map(|rec| (r, rec))))
    }

    /// `POST /mfa/challenge`: the enrolment a challenge carries, if any (not an attempt).
    pub(crate) async fn challenge_setup(&self, token: &str) -> Result<Option<Setup>, AuthError> {
        let (_, record) = self.load(token).await?.ok_or(INVALID)?;
        let Some(sealed) = record.setup else {
            return Ok(None);
        };
        let user = (self.core)
            .user_by_text_id(&record.user_id)
            .await?
            .ok_or(INVALID)?;
        let secret = (self.seal)
            .open(&record.user_id, &self.setup_purpose(token), &sealed)
            .ok_or(INVALID)?;
        self.setup_view(&user, &secret).map(Some)
    }

    /// Counts one attempt on the challenge (a compare-and-set, so concurrent attempts each
    /// count); answers the record as counted.
    async fn count_attempt(&self, token: &str) -> Result<Record, AuthError> {
        let key = self.challenge_key(token);
        for _ in 0..5 {
            let (raw, mut record) = self.load(token).await?.ok_or(INVALID)?;
            record.attempts += 1;
            let left = record.expires - now();
            if left <= 0 {
                return Err(INVALID);
            }
            let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
            let ttl = std::time::Duration::from_secs(left as u64);
            let stored = (self.core.store)
                .compare_and_set(&key, &raw, &bytes, Some(ttl))
                .await
                .map_err(store_fault)?;
            if stored {
                return Ok(record);
            }
        }
        Err(AuthError::Unavailable)
    }

    async fn drop_challenge(&self, token: &str) -> Result<(), AuthError> {
        let key = self.challenge_key(token);
        self.core.store.delete(&key).await.map_err(store_fault)?;
        Ok(())
    }

    /// `POST /mfa/verify`: one code against a challenge. 400 for an unknown, expired, used,
    /// exhausted or revoked challenge; 401 for a wrong code; the login lockout's 429 (the
    /// challenge is then deleted).
    pub(crate) async fn verify(
        &self,
        token: &str,
        code: &str,
        client: &ClientMeta,
    ) -> Result<Completed<U>, AuthError> {
        let proof = async |user: &U, record: &Record| {
            // An enrolment during sign-in takes a code of its new secret; otherwise a code
            // of the confirmed factor (a TOTP step claimed, or a recovery code consumed).
            match &record.setup {
                Some(sealed) => {
                    let secret = (self.seal)
                        .open(&record.user_id, &self.setup_purpose(token), sealed)
                        .ok_or(INVALID)?;
                    Ok(self
                        .step_of(user, &secret, code)
                        .map(|step| Some((secret, step))))
                }
                None => Ok(self.check_code(user, code).await?.then_some(None)),
            }
        };
        self.answer(token, client, Answer::Code, proof).await
    }

    /// A challenge answered with another proof of the person than a code (a passkey, which
    /// `check` verifies): the same attempts, lockout and single use, never an enrolment.
    #[cfg(feature = "passkeys")]
    pub(crate) async fn verify_with(
        &self,
        token: &str,
        client: &ClientMeta,
        check: impl AsyncFnOnce(&U) -> Result<bool, AuthError>,
    ) -> Result<Completed<U>, AuthError> {
        let proof = async |user: &U, record: &Record| {
            if record.setup.is_some() {
                return Err(AuthError::BadRequest(
                    "This sign-in enrols a second factor: answer it with a code of the new authenticator.",
                ));
            }
            Ok(check(user).await?.then_some(None))
        };
        self.answer(token, client, Answer::Passkey, proof).await
    }

    /// The user a live challenge is for (not an attempt): to start a passkey ceremony for it.
    #[cfg(feature = "passkeys")]
    pub(crate) async fn challenged_user(&self, token: &str) -> Result<U, AuthError> {
        let (_, record) = self.load(token).await?.ok_or(INVALID)?;
        if record.expires <= now() {
            return Err(INVALID);
        }
        match self.core.user_by_text_id(&record.user_id).await? {
            Some(user) if user.is_active() => Ok(user),
            _ => Err(INVALID),
        }
    }

    /// One answer to a challenge: counted on the challenge and in the login lockout (and,
    /// for a code, in the `mfa_code` budget), checked by `proof` (`None`: wrong; `Some`,
    /// with the enrolment's secret and step for an enrolment), then the challenge consumed.
    async fn answer(
        &self,
        token: &str,
        client: &ClientMeta,
        kind: Answer,
        proof: impl AsyncFnOnce(&U, &Record) -> Result<Option<Option<(Vec<u8>, u64)>>, AuthError>,
    ) -> Result<Completed<U>, AuthError> {
        let record = self.count_attempt(token).await?;
        let max = self.config.max_code_attempts;
        if record.attempts > max {
            self.drop_challenge(token).await?;
            return Err(INVALID);
        }
        let found = self.core.user_by_text_id(&record.user_id).await?;
        let user = match found {
            Some(u) if u.is_active() => u,
            _ => {
                self.drop_challenge(token).await?;
                return Err(INVALID);
            }
        };
        if self.core.revocation.epoch(&user).await? != record.epoch {
            self.drop_challenge(token).await?;
            return Err(INVALID);
        }
        // Codes also draw on a per-user budget (`mfa_code`, 20 an hour) that nothing
        // refills early: a password reset clears the login lockout, not this.
        if kind == Answer::Code
            && let Err(e) = self.code_budget(&user).await
        {
            self.drop_challenge(token).await?;
            return Err(e);
        }
        let attempt = match self.login.count_account_attempt(&user, client).await {
            Ok(a) => a,
            Err(e) => {
                self.drop_challenge(token).await?;
                return Err(e);
            }
        };
        let Some(setup_step) = proof(&user, &record).await? else {
            if record.attempts >= max {
                self.drop_challenge(token).await?;
            }
            let reason = match kind {
                Answer::Code => "invalid_code",
                Answer::Passkey => "passkey_failed",
            };
            let ip = client.ip.map(|ip| ip.to_string());
            crate::audit::emit(&crate::audit::AuditEvent {
                user_id: Some(record.user_id.clone()),
                client_ip: ip.as_deref(),
                reason: Some(reason),
                ..crate::audit::AuditEvent::new("mfa_verify", crate::audit::Outcome::Failure)
            });
            return Err(AuthError::Unauthorized(match kind {
                Answer::Code => "Invalid code",
                Answer::Passkey => "Passkey verification failed",
            }));
        };
        // Consumed once: of concurrent right answers, one gets the record.
        let claimed = (self.core.store)
            .get_and_delete(&self.challenge_key(token))
            .await
            .map_err(store_fault)?;
        if claimed.is_none() {
            return Err(INVALID);
        }
        let mut epoch = record.epoch;
        let recovery_codes = match setup_step {
            Some((secret, step)) => {
                let codes = self.activate(&user, &secret, step).await?;
                // Enabling ends every other session and token, here as at /mfa/totp/confirm;
                // the sign-in completes at the new epoch.
                epoch = self.end_all(&user, None).await?;
                Some(codes)
            }
            None => None,
        };
        self.core.lockout.succeeded(attempt).await;
        if let Some(pending) = record.pending {
            self.login
                .confirm_success(&user.user_id(), epoch, pending)
                .await;
        }
        if recovery_codes.is_some() {
            let ctx = client.hook_context(None);
            let user = Arc::new(user.clone());
            self.core
                .hooks
                .fire_user(crate::hooks::Event::AfterMfaEnabled, user, &ctx)
                .await;
        }
        Ok(Completed {
            user: Arc::new(user),
            epoch,
            origin: record.origin,
            recovery_codes,
        })
    }

    fn device_cookie_name(&self) -> &'static str {
        crate::transport::session::companion_cookie_name(
            self.core.sessions.as_ref(),
            "__Host-mfa_device",
            "mfa_device",
        )
    }

    fn device_mac(&self, uid: &str, epoch: i64, expires: i64, device: &str) -> String {
        let data = format!("mfa-device\u{0}{uid}\u{0}{epoch}\u{0}{expires}\u{0}{device}");
        hmac_hex(&self.core.keys.store, data.as_bytes())
    }

    /// Whether the request carries a valid "remember this device" cookie for this user at
    /// this epoch (always `false` when the option is off).
    pub(crate) fn remembered(&self, headers: &HeaderMap, user: &U, epoch: i64) -> bool {
        if self.config.remember_device.is_none() {
            return false;
        }
        let Some(value) = crate::transport::session::cookie(headers, self.device_cookie_name())
        else {
            return false;
        };
        let parts: Vec<&str> = value.split('.').collect();
        let [device, expires, mac] = parts[..] else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return false;
        };
        let uid = user.user_id().to_string();
        let expected = self.device_mac(&uid, epoch, expires, device);
        expires > now() && bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
    }

    /// The "remember this device" cookie for a completed sign-in (`None` when off).
    pub(crate) fn remember_cookie(
        &self,
        user: &U,
        epoch: i64,
        secure: bool,
    ) -> Option<HeaderValue> {
        let ttl = self.config.remember_device?;
        let device = random_token();
        let expires = now() + ttl.as_secs() as i64;
        let mac = self.device_mac(&user.user_id().to_string(), epoch, expires, &device);
        let cookie = cookie::Cookie::build((
            self.device_cookie_name(),
            format!("{device}.{expires}.{mac}"),
        ))
        .http_only(true)
        .secure(secure)
        .path("/")
        .same_site(cookie::SameSite::Lax)
        .max_age(time::Duration::seconds(ttl.as_secs() as i64))
        .build();
        HeaderValue::from_str(&cookie.to_string()).ok()
    }
}
