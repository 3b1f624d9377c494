//! Passkey assertions for a signed-in user: sudo, and the second factor of a sign-in's MFA
//! challenge. Both are allow-list ceremonies over the user's own passkeys.

use webauthn_rs::prelude::{PasskeyAuthentication, PublicKeyCredential, RequestChallengeResponse};

use super::ceremony::{Ceremony, INVALID_CEREMONY, Started, credential_id, decode};
use super::{Passkeys, store_fault};
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
#[cfg(feature = "mfa")]
use crate::keys::hmac_hex;
use crate::principal::Principal;
use crate::sudo::Elevated;
use crate::user::UserRecord;

impl<U: UserRecord> Passkeys<U> {
    /// An allow-list ceremony over the user's passkeys (400 when there are none).
    async fn allow_list(
        &self,
        user_id: &str,
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication), AuthError> {
        let mut keys = Vec::new();
        for stored in self.passkeys_of(user_id).await? {
            keys.push(decode(&stored)?);
        }
        if keys.is_empty() {
            return Err(AuthError::BadRequest("This account has no passkey."));
        }
        self.parts
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(|e| {
                tracing::error!(error = %e, "passkey ceremony could not start");
                AuthError::Internal
            })
    }

    /// Whether an assertion answers an allow-list ceremony of `user_id` with one of their
    /// passkeys (recorded as a use); `Err` only for a fault.
    async fn assert_for(
        &self,
        user_id: &str,
        state: &PasskeyAuthentication,
        credential: &PublicKeyCredential,
    ) -> Result<bool, AuthError> {
        let Some(stored) = (self.parts.store)
            .find(&credential_id(credential.get_credential_id()))
            .await
            .map_err(store_fault)?
            .filter(|s| s.user_id == user_id)
        else {
            return Ok(false);
        };
        let passkey = decode(&stored)?;
        let result = (self.parts.webauthn).finish_passkey_authentication(credential, state);
        match self.record_use(&stored, passkey, result).await {
            Ok(()) => Ok(true),
            Err(AuthError::Unauthorized(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Starts a sudo elevation with one of the signed-in user's passkeys.
    pub(crate) async fn start_sudo(
        &self,
        principal: &Principal<U>,
    ) -> Result<Started<RequestChallengeResponse>, AuthError> {
        let user_id = principal.user_id.to_string();
        let (options, state) = self.allow_list(&user_id).await?;
        let ceremony = self.keep(&Ceremony::Sudo { user_id, state }).await?;
        Ok(Started { ceremony, options })
    }

    /// Starts answering the MFA challenge `challenge` (of `user`) with a passkey.
    #[cfg(feature = "mfa")]
    pub(crate) async fn start_second_factor(
        &self,
        user: &U,
        challenge: &str,
    ) -> Result<Started<RequestChallengeResponse>, AuthError> {
        let user_id = user.user_id().to_string();
        let (options, state) = self.allow_list(&user_id).await?;
        let challenge = hmac_hex(&self.core.keys.one_time, challenge.as_bytes());
        let ceremony = Ceremony::SecondFactor {
            user_id,
            challenge,
            state,
        };
        let ceremony = self.keep(&ceremony).await?;
        Ok(Started { ceremony, options })
    }

    /// Whether a passkey assertion answers the ceremony started for this MFA challenge and
    /// user (the ceremony is spent either way).
    #[cfg(feature = "mfa")]
    pub(crate) async fn check_second_factor(
        &self,
        handle: &str,
        challenge: &str,
        user: &U,
        credential: &PublicKeyCredential,
    ) -> Result<bool, AuthError> {
        let Ceremony::SecondFactor {
            user_id,
            challenge: bound,
            state,
        } = self.claim(handle).await?
        else {
            return Err(INVALID_CEREMONY);
        };
        let challenge = hmac_hex(&self.core.keys.one_time, challenge.as_bytes());
        if bound != challenge || user_id != user.user_id().to_string() {
            return Err(INVALID_CEREMONY);
        }
        self.assert_for(&user_id, &state, credential).await
    }

    /// Elevates the principal's session with a passkey assertion (the sudo strikes and
    /// lockout apply, as to a password).
    pub(crate) async fn finish_sudo(
        &self,
        principal: &Principal<U>,
        handle: &str,
        credential: &PublicKeyCredential,
        client: &ClientMeta,
    ) -> Result<Elevated, AuthError> {
        let Ceremony::Sudo { user_id, state } = self.claim(handle).await? else {
            return Err(INVALID_CEREMONY);
        };
        if user_id != principal.user_id.to_string() {
            return Err(INVALID_CEREMONY);
        }
        let check = async || self.assert_for(&user_id, &state, credential).await;
        self.sudo
            .elevate_with(principal, client, "Passkey verification failed", check)
            .await
    }
}
