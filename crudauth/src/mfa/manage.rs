//! Enrolment and management: setup, confirm, disable, regenerate, status; the code check
//! every route shares (a TOTP code claims its time step, a recovery code is consumed).

use std::sync::Arc;

use serde::Serialize;

use super::codes::{self, Code};
use super::{Mfa, store_fault};
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::hooks::Event;
use crate::password::is_unusable_password;
use crate::principal::Principal;
use crate::session::RotatedSession;
use crate::sudo::Elevated;
use crate::user::UserRecord;

/// What `GET /mfa` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MfaStatus {
    /// A confirmed factor exists.
    pub enabled: bool,
    /// The account must have one.
    pub required: bool,
    /// Recovery codes left.
    pub recovery_codes_remaining: usize,
}

/// A started enrolment: what the person's authenticator needs.
#[derive(Clone, Serialize)]
pub struct Setup {
    /// The secret, base32 (32 characters).
    pub secret: String,
    /// The `otpauth://totp/...` URI.
    pub otpauth_uri: String,
    /// The URI's QR code as an SVG document.
    pub qr_svg: String,
    /// The URI's QR code as a PNG data URL.
    pub qr_png: String,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Setup(<secret>)")
    }
}

/// What a privilege change left the caller: its session under a new id (session callers),
/// and the user's new epoch (a bearer caller's new tokens carry it).
#[derive(Debug)]
pub(crate) struct Changed {
    pub moved: Option<RotatedSession>,
    pub epoch: i64,
}

const INVALID_CODE: AuthError = AuthError::Unauthorized("Invalid code");
const NOT_PENDING: AuthError = AuthError::BadRequest("No authenticator setup is pending.");
const ALREADY: AuthError = AuthError::BadRequest("Two-factor authentication is already enabled.");

pub(super) fn now() -> i64 {
    crate::clock::system_secs()
}

impl<U: UserRecord> Mfa<U> {
    /// The account's second-factor state.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.mfa(crudauth::mfa::MfaConfig::new("App")).build()?;
    /// # let user = crudauth::doc_fixture::user(&auth).await?;
    /// let status = auth.mfa().unwrap().status(&user).await?;
    /// assert!(!status.enabled && status.recovery_codes_remaining == 0);
    /// # Ok(()) });
    /// ```
    pub async fn status(&self, user: &U) -> Result<MfaStatus, AuthError> {
        let uid = user.user_id().to_string();
        let factor = self.factors.get(&uid).await.map_err(store_fault)?;
        let enabled = factor.is_some_and(|f| f.enabled());
        let left = if enabled {
            self.factors
                .recovery_left(&uid)
                .await
                .map_err(store_fault)?
        } else {
            0
        };
        Ok(MfaStatus {
            enabled,
            required: self.is_required(user).await,
            recovery_codes_remaining: left,
        })
    }

    /// The authenticator view of a secret.
    pub(super) fn setup_view(&self, user: &U, secret: &[u8]) -> Result<Setup, AuthError> {
        let account = (user.email().or(user.username()))
            .map_or_else(|| user.user_id().to_string(), str::to_owned);
        let totp = codes::totp(secret, &self.config.issuer, &account).ok_or(AuthError::Internal)?;
        let mut uri = totp.to_url().map_err(|_| AuthError::Internal)?;
        // The original's URI names the parameters even where they are the defaults.
        for (key, value) in [("algorithm", "SHA1"), ("digits", "6"), ("period", "30")] {
            if !uri.contains(&format!("{key}=")) {
                uri.push_str(&format!("&{key}={value}"));
            }
        }
        let (qr_svg, qr_png) = codes::qr(&uri).ok_or(AuthError::Internal)?;
        Ok(Setup {
            secret: codes::base32(secret),
            otpauth_uri: uri,
            qr_svg,
            qr_png,
        })
    }

    /// The purpose a pending secret is sealed for: bound to the epoch, so a password change
    /// (or any epoch move) discards it.
    pub(super) fn pending_purpose(epoch: i64) -> String {
        format!("pending:{epoch}")
    }

    /// `POST /mfa/totp/setup`: the password again for an account that has one (counted in
    /// its lockout), a recent sign-in for one that has none.
    pub(crate) async fn begin_setup(
        &self,
        principal: &Principal<U>,
        password: Option<&str>,
        client: &ClientMeta,
    ) -> Result<Setup, AuthError> {
        principal.refuse_delegated()?;
        let user = principal.user.as_ref();
        let has_password = user
            .password_hash()
            .is_some_and(|h| !h.is_empty() && !is_unusable_password(h));
        if has_password {
            let attempt = self.login.count_account_attempt(user, client).await?;
            let matched = match password {
                Some(p) => {
                    self.core
                        .passwords
                        .verify(p, user.password_hash())
                        .await
                        .matched
                }
                None => false,
            };
            if !matched {
                return Err(AuthError::Unauthorized("Incorrect password"));
            }
            self.core.lockout.succeeded(attempt).await;
        } else {
            self.login.require_recent_sign_in(principal)?;
        }
        if self.enabled(user).await? {
            return Err(ALREADY);
        }
        let uid = user.user_id().to_string();
        let epoch = self.core.revocation.epoch(user).await?;
        let secret = codes::new_secret();
        let sealed = (self.seal)
            .seal(&uid, &Self::pending_purpose(epoch), &secret)
            .ok_or(AuthError::Internal)?;
        let expires = now() + self.config.pending_ttl.as_secs() as i64;
        (self.factors)
            .set_pending(&uid, &sealed, expires)
            .await
            .map_err(store_fault)?;
        self.setup_view(user, &secret)
    }

    /// `POST /mfa/totp/confirm`: enables the pending secret with a code of it, answers the
    /// recovery codes, and ends every other session and token of the user.
    pub(crate) async fn confirm(
        &self,
        principal: &Principal<U>,
        code: &str,
        client: &ClientMeta,
    ) -> Result<(Vec<String>, Changed), AuthError> {
        let user = principal.user.as_ref();
        let uid = user.user_id().to_string();
        let factor = self.factors.get(&uid).await.map_err(store_fault)?;
        let factor = factor.unwrap_or_default();
        if factor.enabled() {
            return Err(ALREADY);
        }
        let (Some(pending), Some(expires)) = (factor.pending, factor.pending_expires_at) else {
            return Err(NOT_PENDING);
        };
        let epoch = self.core.revocation.epoch(user).await?;
        let secret = (self.seal)
            .open(&uid, &Self::pending_purpose(epoch), &pending)
            .filter(|_| expires > now())
            .ok_or(NOT_PENDING)?;
        let attempt = self.login.count_account_attempt(user, client).await?;
        let step = self.step_of(user, &secret, code).ok_or(INVALID_CODE)?;
        self.core.lockout.succeeded(attempt).await;
        let codes = self.activate(user, &secret, step).await?;
        let moved = self.end_others(principal).await?;
        self.fire(Event::AfterMfaEnabled, principal, client).await;
        Ok((codes, moved))
    }

    /// Stores a confirmed secret (the step its code used is spent) and fresh recovery
    /// codes; answers the codes.
    pub(super) async fn activate(
        &self,
        user: &U,
        secret: &[u8],
        step: u64,
    ) -> Result<Vec<String>, AuthError> {
        let uid = user.user_id().to_string();
        let sealed = self
            .seal
            .seal(&uid, "totp", secret)
            .ok_or(AuthError::Internal)?;
        let step = i64::try_from(step).map_err(|_| AuthError::Internal)?;
        let done = (self.factors)
            .activate(&uid, &sealed, step, now())
            .await
            .map_err(store_fault)?;
        if !done {
            return Err(ALREADY);
        }
        self.new_recovery_codes(&uid).await
    }

    async fn new_recovery_codes(&self, uid: &str) -> Result<Vec<String>, AuthError> {
        let codes: Vec<String> = (0..self.config.recovery_code_count)
            .map(|_| codes::recovery_code())
            .collect();
        let hashes: Vec<String> = (codes.iter())
            .map(|c| self.recovery_hash(uid, &c.replace('-', "")))
            .collect();
        (self.factors)
            .set_recovery(uid, &hashes)
            .await
            .map_err(store_fault)?;
        Ok(codes)
    }

    /// The time step `code` is valid for under `secret` (not claimed).
    pub(super) fn step_of(&self, user: &U, secret: &[u8], code: &str) -> Option<u64> {
        let Some(Code::Totp(digits)) = codes::parse(code) else {
            return None;
        };
        let totp = codes::totp(secret, &self.config.issuer, &user.user_id().to_string())?;
        codes::matching_step(&totp, &digits, now().max(0) as u64)
    }

    /// Checks a TOTP or recovery code of the user's confirmed factor, spending it: a TOTP
    /// code claims its step (later than any claimed before), a recovery code is consumed.
    /// A secret that no longer opens (tampered, its key gone) refuses every TOTP code;
    /// recovery codes still work.
    pub(crate) async fn check_code(&self, user: &U, code: &str) -> Result<bool, AuthError> {
        let uid = user.user_id().to_string();
        match codes::parse(code) {
            None => Ok(false),
            Some(Code::Recovery(normalized)) => {
                // Only with a confirmed factor: codes left behind by a race with a disable
                // open nothing.
                if !self.enabled(user).await? {
                    return Ok(false);
                }
                let hash = self.recovery_hash(&uid, &normalized);
                self.factors
                    .use_recovery(&uid, &hash)
                    .await
                    .map_err(store_fault)
            }
            Some(Code::Totp(_)) => {
                let factor = self.factors.get(&uid).await.map_err(store_fault)?;
                let Some(sealed) = factor.and_then(|f| f.secret) else {
                    return Ok(false);
                };
                let Some((secret, current)) = self.seal.open_with(&uid, "totp", &sealed) else {
                    tracing::error!(user_id = %uid, "crudauth: a TOTP secret does not open (tampered, or its key was removed); TOTP codes are refused, recovery codes still work");
                    return Ok(false);
                };
                let Some(step) = self.step_of(user, &secret, code) else {
                    return Ok(false);
                };
                let step = i64::try_from(step).map_err(|_| AuthError::Internal)?;
                let claimed = (self.factors)
                    .claim_step(&uid, step)
                    .await
                    .map_err(store_fault)?;
                // Opened with an older key: sealed again under the current one (best
                // effort), so the older key can be retired once every secret moved.
                if claimed
                    && !current
                    && let Some(again) = self.seal.seal(&uid, "totp", &secret)
                    && let Err(e) = self.factors.reseal(&uid, &sealed, &again).await
                {
                    tracing::warn!(error = %e, "crudauth: could not seal a TOTP secret again");
                }
                Ok(claimed)
            }
        }
    }

    /// A management code check: counted in the account's lockout, 401 when wrong.
    async fn checked(
        &self,
        principal: &Principal<U>,
        code: &str,
        client: &ClientMeta,
    ) -> Result<(), AuthError> {
        let user = principal.user.as_ref();
        self.code_budget(user).await?;
        let attempt = self.login.count_account_attempt(user, client).await?;
        if !self.check_code(user, code).await? {
            let failure = crate::audit::Outcome::Failure;
            let id = &principal.user_id;
            crate::audit::user_event("mfa_verify", failure, id, None, Some("invalid_code"));
            return Err(INVALID_CODE);
        }
        self.core.lockout.succeeded(attempt).await;
        Ok(())
    }

    /// `POST /mfa/totp/disable`: a TOTP or recovery code; refused (403) for an account that
    /// must have MFA. Ends every other session and token.
    pub(crate) async fn disable(
        &self,
        principal: &Principal<U>,
        code: &str,
        client: &ClientMeta,
    ) -> Result<Changed, AuthError> {
        let user = principal.user.as_ref();
        if self.is_required(user).await {
            return Err(AuthError::Forbidden(
                "Two-factor authentication is required for this account.",
            ));
        }
        if !self.enabled(user).await? {
            return Err(AuthError::BadRequest(
                "Two-factor authentication is not enabled.",
            ));
        }
        self.checked(principal, code, client).await?;
        (self.factors)
            .remove(&user.user_id().to_string())
            .await
            .map_err(store_fault)?;
        let moved = self.end_others(principal).await?;
        self.fire(Event::AfterMfaDisabled, principal, client).await;
        Ok(moved)
    }

    /// `POST /mfa/recovery-codes/regenerate`: new codes (the old ones die), every other
    /// session and token ends.
    pub(crate) async fn regenerate(
        &self,
        principal: &Principal<U>,
        code: &str,
        client: &ClientMeta,
    ) -> Result<(Vec<String>, Changed), AuthError> {
        let user = principal.user.as_ref();
        if !self.enabled(user).await? {
            return Err(AuthError::BadRequest(
                "Two-factor authentication is not enabled.",
            ));
        }
        self.checked(principal, code, client).await?;
        let codes = self.new_recovery_codes(&user.user_id().to_string()).await?;
        let moved = self.end_others(principal).await?;
        Ok((codes, moved))
    }

    /// `POST /sudo {code}`: elevation by a TOTP or recovery code, under sudo's own strikes
    /// and lock.
    pub(crate) async fn elevate(
        &self,
        principal: &Principal<U>,
        code: &str,
        client: &ClientMeta,
    ) -> Result<Elevated, AuthError> {
        let user = principal.user.clone();
        self.code_budget(&user).await?;
        let check = async || self.check_code(&user, code).await;
        self.sudo
            .elevate_with(principal, client, "Invalid code", check)
            .await
    }

    /// Every session (but `keep`), token and refresh family of the user ends: the epoch
    /// moves; answers the new epoch.
    pub(super) async fn end_all(&self, user: &U, keep: Option<&str>) -> Result<i64, AuthError> {
        let uid = user.user_id().to_string();
        let epoch = self.core.revocation.bump(user).await?;
        if let Some(tokens) = &self.core.tokens {
            tokens.revoke_all_families(&uid).await?;
        }
        if let Some(sessions) = &self.core.sessions {
            sessions.revoke_all(&uid, keep).await?;
        }
        Ok(epoch)
    }

    /// One code attempt against the user's `mfa_code` budget (per user, not refilled by a
    /// password reset as the login lockout is).
    pub(super) async fn code_budget(&self, user: &U) -> Result<(), AuthError> {
        let key = format!("user:{}", user.user_id());
        self.core
            .limiter
            .enforce("mfa_code", &key)
            .await
            .map(|_| ())
    }

    /// Removes the user's factor and recovery codes: call it when the app deletes a user
    /// (and an OAuth claim does, for the account's unproven holder's factor).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.mfa(crudauth::mfa::MfaConfig::new("App")).build()?;
    /// assert!(!auth.mfa().unwrap().forget_user(&crudauth::UserId::Int(1)).await?);
    /// # Ok(()) });
    /// ```
    pub async fn forget_user(&self, user: &crate::user::UserId) -> Result<bool, AuthError> {
        (self.factors)
            .remove(&user.to_string())
            .await
            .map_err(store_fault)
    }

    /// A privilege change: the epoch moves (every token and other session ends, every
    /// refresh family too), and the caller's own session lives on under a new id.
    async fn end_others(&self, principal: &Principal<U>) -> Result<Changed, AuthError> {
        let keep = principal.session_handle.as_deref();
        let epoch = self.end_all(&principal.user, keep).await?;
        let moved = match (keep, &self.core.sessions) {
            (Some(handle), Some(sessions)) => {
                sessions.rotate_with(handle, |r| r.epoch = epoch).await?
            }
            _ => None,
        };
        Ok(Changed { moved, epoch })
    }

    async fn fire(&self, event: Event, principal: &Principal<U>, client: &ClientMeta) {
        let user: Arc<U> = principal.user.clone();
        let ctx = client.hook_context(Some(principal.via.as_str()));
        self.core.hooks.fire_user(event, user, &ctx).await;
    }
}
