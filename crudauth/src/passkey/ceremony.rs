//! The ceremonies of registration and sign-in (allow-list or discoverable; sudo and the
//! second factor are in `elevate`). Each start keeps its `webauthn-rs` state in the store
//! under the keyed hash of a 256-bit handle; each finish claims it first (get-and-delete), so
//! an answer is checked against a state exactly once, whatever the outcome.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Uuid, WebauthnError,
};

use super::{PasskeyInfo, Passkeys, StoredPasskey, store_fault};
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::keys::{hmac_hex, random_token};
use crate::login::VerifiedUser;
use crate::principal::Principal;
use crate::store::fail_closed;
use crate::user::UserRecord;

/// A ceremony handle that is unknown, expired, spent, or for another purpose or user.
pub(crate) const INVALID_CEREMONY: AuthError =
    AuthError::BadRequest("Invalid or expired passkey ceremony");
/// Any assertion that does not verify (the reason is logged, never answered).
pub(crate) const FAILED: AuthError = AuthError::Unauthorized("Passkey verification failed");

/// What a ceremony is for, and its `webauthn-rs` state.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Ceremony {
    Register {
        user_id: String,
        epoch: i64,
        user_handle: Uuid,
        state: PasskeyRegistration,
    },
    /// A username-first sign-in: the user's credentials are the allow-list.
    SignIn {
        user_id: String,
        state: PasskeyAuthentication,
    },
    /// A usernameless sign-in: the authenticator names the user.
    Discoverable { state: DiscoverableAuthentication },
    /// A username-first start for an identifier that names no account with passkeys: its
    /// options look like an account's, and its finish fails whatever it is sent (else a
    /// passkey of one's own would tell, by succeeding, that the name has none).
    Decoy,
    Sudo {
        user_id: String,
        state: PasskeyAuthentication,
    },
    /// The second factor of a sign-in's MFA challenge (whose keyed hash binds it).
    SecondFactor {
        user_id: String,
        challenge: String,
        state: PasskeyAuthentication,
    },
}

/// A started ceremony: the handle the client echoes, and the options for the browser's
/// `navigator.credentials.create()` or `.get()`.
#[derive(Debug, Serialize)]
pub struct Started<T> {
    /// The ceremony handle (256 bits), sent back with the answer.
    pub ceremony: String,
    /// The WebAuthn options (`{"publicKey": {...}}`).
    pub options: T,
}

/// The credential id of a passkey, as clients send it: base64url without padding.
pub(crate) fn credential_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// A name a user gave: trimmed, 1 to 64 characters, no control characters.
pub(crate) fn clean_name(name: Option<&str>) -> Result<String, AuthError> {
    let name = name.map(str::trim).unwrap_or("Passkey");
    let name = if name.is_empty() { "Passkey" } else { name };
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AuthError::BadRequest(
            "A passkey name has at most 64 characters and no control characters.",
        ));
    }
    Ok(name.to_owned())
}

pub(super) fn decode(stored: &StoredPasskey) -> Result<Passkey, AuthError> {
    serde_json::from_str(&stored.passkey).map_err(|e| {
        tracing::error!(credential = %stored.credential_id, error = %e, "stored passkey does not parse");
        AuthError::Internal
    })
}

fn now() -> i64 {
    crate::clock::system_secs()
}

impl<U: UserRecord> Passkeys<U> {
    fn ceremony_key(&self, handle: &str) -> String {
        let hash = hmac_hex(&self.core.keys.one_time, handle.as_bytes());
        format!("passkey_ceremony:{hash}")
    }

    pub(super) async fn keep(&self, ceremony: &Ceremony) -> Result<String, AuthError> {
        let handle = random_token();
        let bytes = serde_json::to_vec(ceremony).map_err(|_| AuthError::Internal)?;
        let ttl = Some(self.parts.config.ceremony_ttl);
        let stored = (self.core.store)
            .set_if_absent(&self.ceremony_key(&handle), &bytes, ttl)
            .await
            .map_err(|e| fail_closed("passkey ceremony store", &e))?;
        if !stored {
            return Err(AuthError::Internal); // 256 random bits never collide
        }
        Ok(handle)
    }

    /// Claims a ceremony: of concurrent or repeated finishes, one gets it.
    pub(super) async fn claim(&self, handle: &str) -> Result<Ceremony, AuthError> {
        if handle.is_empty() || handle.len() > 128 {
            return Err(INVALID_CEREMONY);
        }
        let bytes = (self.core.store)
            .get_and_delete(&self.ceremony_key(handle))
            .await
            .map_err(|e| fail_closed("passkey ceremony store", &e))?
            .ok_or(INVALID_CEREMONY)?;
        serde_json::from_slice(&bytes).map_err(|_| INVALID_CEREMONY)
    }

    pub(super) async fn passkeys_of(&self, user_id: &str) -> Result<Vec<StoredPasskey>, AuthError> {
        self.parts
            .store
            .for_user(user_id)
            .await
            .map_err(store_fault)
    }

    /// Who may register a passkey now: a session elevated by sudo; an account with neither
    /// a usable password nor a passkey (signed up by a link, a code or a provider, so it has
    /// nothing to re-check) from a sign-in within the fresh window. And only with a proven
    /// address: a passkey of an account whose address is unproven would survive that
    /// address's rightful owner claiming it.
    fn may_register(
        &self,
        principal: &Principal<U>,
        existing: &[StoredPasskey],
    ) -> Result<(), AuthError> {
        principal.refuse_delegated()?;
        let user = principal.user.as_ref();
        if self
            .core
            .repo
            .schema()
            .has(crate::user::LogicalField::EmailVerified)
            && user.email().is_some()
            && !principal.email_verified
        {
            return Err(AuthError::Forbidden(
                "Verify your email address before adding a passkey.",
            ));
        }
        if principal.is_elevated() {
            return Ok(());
        }
        let has_password = user
            .password_hash()
            .is_some_and(|h| !h.is_empty() && !crate::password::is_unusable_password(h));
        if has_password || !existing.is_empty() {
            return Err(AuthError::Forbidden("Re-authentication required."));
        }
        self.login.require_recent_sign_in(principal)
    }

    /// Refuses a user at the most passkeys they may hold.
    fn room_for_one(&self, existing: &[StoredPasskey]) -> Result<(), AuthError> {
        if existing.len() >= self.parts.config.max_per_user {
            return Err(AuthError::BadRequest(
                "This account has the most passkeys it may hold; remove one first.",
            ));
        }
        Ok(())
    }

    /// Starts registering a passkey for the signed-in user (see `may_register`).
    pub(crate) async fn start_registration(
        &self,
        principal: &Principal<U>,
    ) -> Result<Started<CreationChallengeResponse>, AuthError> {
        let user = principal.user.as_ref();
        let user_id = principal.user_id.to_string();
        let existing = self.passkeys_of(&user_id).await?;
        self.may_register(principal, &existing)?;
        self.room_for_one(&existing)?;
        let user_handle = existing
            .first()
            .map_or_else(Uuid::new_v4, |p| p.user_handle);
        let mut exclude = Vec::with_capacity(existing.len());
        for stored in &existing {
            exclude.push(decode(stored)?.cred_id().clone());
        }
        let name = user
            .username()
            .or(user.email())
            .map_or_else(|| user_id.clone(), str::to_owned);
        let (options, state) = self
            .parts
            .webauthn
            .start_passkey_registration(user_handle, &name, &name, Some(exclude))
            .map_err(|e| {
                tracing::error!(error = %e, "passkey registration could not start");
                AuthError::Internal
            })?;
        let epoch = self.core.revocation.epoch(user).await?;
        let ceremony = self
            .keep(&Ceremony::Register {
                user_id,
                epoch,
                user_handle,
                state,
            })
            .await?;
        Ok(Started { ceremony, options })
    }

    /// Finishes a registration: the browser's answer checked against the ceremony's state
    /// (challenge, origin, RP id, user verification, signature), the credential stored.
    pub(crate) async fn finish_registration(
        &self,
        principal: &Principal<U>,
        handle: &str,
        credential: &RegisterPublicKeyCredential,
        name: Option<&str>,
    ) -> Result<PasskeyInfo, AuthError> {
        let name = clean_name(name)?;
        let Ceremony::Register {
            user_id,
            epoch,
            user_handle,
            state,
        } = self.claim(handle).await?
        else {
            return Err(INVALID_CEREMONY);
        };
        // The same user, at the same epoch, still recently signed in.
        if user_id != principal.user_id.to_string()
            || self.core.revocation.epoch(principal.user.as_ref()).await? != epoch
        {
            return Err(INVALID_CEREMONY);
        }
        // Checked again: the session's elevation may have ended, and parallel ceremonies
        // must not add up past the limit.
        let existing = self.passkeys_of(&user_id).await?;
        self.may_register(principal, &existing)?;
        self.room_for_one(&existing)?;
        let passkey = self
            .parts
            .webauthn
            .finish_passkey_registration(credential, &state)
            .map_err(|e| {
                tracing::info!(error = %e, user_id, "passkey registration refused");
                AuthError::BadRequest("Passkey registration failed")
            })?;
        let stored = StoredPasskey {
            credential_id: credential_id(passkey.cred_id()),
            user_id: user_id.clone(),
            user_handle,
            name,
            passkey: serde_json::to_string(&passkey).map_err(|_| AuthError::Internal)?,
            counter: 0,
            created_at: now(),
            last_used_at: None,
        };
        if !self
            .parts
            .store
            .insert(&stored)
            .await
            .map_err(store_fault)?
        {
            return Err(AuthError::BadRequest("This passkey is registered already."));
        }
        crate::audit::emit(&crate::audit::AuditEvent {
            user_id: Some(user_id.to_string()),
            credential_id: Some(stored.credential_id.to_string()),
            ..crate::audit::AuditEvent::new("passkey_registered", crate::audit::Outcome::Success)
        });
        self.notify_added(principal.user.as_ref()).await;
        Ok(PasskeyInfo::of(&stored))
    }

    /// Starts a sign-in: with an identifier (username or email), an allow-list ceremony
    /// over the account's passkeys; without one, a discoverable ceremony (the authenticator
    /// names the user). An identifier that names no account, or one without passkeys, gets
    /// options of the same shape: an allow-list of one credential id derived from the
    /// identifier (stable, so asking twice shows nothing either), which no authenticator
    /// holds, over a discoverable ceremony.
    pub(crate) async fn start_sign_in(
        &self,
        identifier: Option<&str>,
    ) -> Result<Started<serde_json::Value>, AuthError> {
        let webauthn = &self.parts.webauthn;
        let internal = |e: WebauthnError| {
            tracing::error!(error = %e, "passkey sign-in could not start");
            AuthError::Internal
        };
        let Some(identifier) = identifier.map(str::trim) else {
            let (options, state) = webauthn
                .start_discoverable_authentication()
                .map_err(internal)?;
            let ceremony = self.keep(&Ceremony::Discoverable { state }).await?;
            let options = serde_json::to_value(options).map_err(|_| AuthError::Internal)?;
            return Ok(Started { ceremony, options });
        };
        let mut keys = Vec::new();
        let mut user_id = None;
        let plausible = !identifier.is_empty()
            && identifier.chars().count() <= crate::user::MAX_IDENTIFIER_CHARS
            && !identifier.chars().any(char::is_control);
        if plausible {
            // The password sign-in's lookup (with its NFKC fallback), the equivalence the
            // made-up credential below is keyed on.
            let found = self.login.find_login(identifier).await?;

            // The same store read whether or not an active account was found.
            let owner = found
                .filter(|u| u.is_active())
                .map(|u| u.user_id().to_string());
            let stored = self
                .passkeys_of(owner.as_deref().unwrap_or("\0no account"))
                .await?;
            for stored in &stored {
                keys.push(decode(stored)?);
            }
            user_id = owner;
        }
        if let (Some(user_id), false) = (user_id, keys.is_empty()) {
            let (options, state) = webauthn
                .start_passkey_authentication(&keys)
                .map_err(internal)?;
            let ceremony = self.keep(&Ceremony::SignIn { user_id, state }).await?;
            let options = serde_json::to_value(options).map_err(|_| AuthError::Internal)?;
            return Ok(Started { ceremony, options });
        }
        let (options, _) = webauthn
            .start_discoverable_authentication()
            .map_err(internal)?;
        let options = self.fake_allow_list(options, identifier)?;
        let ceremony = self.keep(&Ceremony::Decoy).await?;
        Ok(Started { ceremony, options })
    }

    /// Finishes a sign-in: the assertion verified against the ceremony's state and the
    /// stored credential, its counter moved; the user, active and not vetoed, at their
    /// current epoch.
    pub(crate) async fn finish_sign_in(
        &self,
        handle: &str,
        credential: &PublicKeyCredential,
        client: &ClientMeta,
    ) -> Result<VerifiedUser<U>, AuthError> {
        let ceremony = self.claim(handle).await?;
        let stored = self.stored_of(credential).await?;
        let webauthn = &self.parts.webauthn;
        let passkey = decode(&stored)?;
        let result = match ceremony {
            Ceremony::SignIn { user_id, state } => {
                if stored.user_id != user_id {
                    return Err(FAILED);
                }
                webauthn.finish_passkey_authentication(credential, &state)
            }
            Ceremony::Discoverable { state } => {
                let (handle, _) = webauthn
                    .identify_discoverable_authentication(credential)
                    .map_err(|_| FAILED)?;
                if handle != stored.user_handle {
                    tracing::info!(credential = %stored.credential_id, "passkey answered for another user handle");
                    return Err(FAILED);
                }
                webauthn.finish_discoverable_authentication_v2(credential, state, &passkey)
            }
            // The same lookups as a real ceremony's, then the refusal a wrong answer gets.
            Ceremony::Decoy => return Err(FAILED),
            _ => return Err(INVALID_CEREMONY),
        };
        self.record_use(&stored, passkey, result).await?;
        let user = match self.core.user_by_text_id(&stored.user_id).await? {
            Some(user) if user.is_active() => user,
            _ => return Err(FAILED),
        };
        let ctx = client.hook_context(Some("passkey"));
        if self.login.vetoed(&user, &ctx).await.is_some() {
            return Err(AuthError::Forbidden("Sign-in refused."));
        }
        let epoch = self.core.revocation.epoch(&user).await?;
        Ok(VerifiedUser { user, epoch })
    }

    /// The options of a discoverable ceremony dressed as an allow-list one: one credential
    /// id, the keyed hash of the identifier, and no conditional mediation or extensions,
    /// the shape an account's allow-list has.
    fn fake_allow_list(
        &self,
        options: RequestChallengeResponse,
        identifier: &str,
    ) -> Result<serde_json::Value, AuthError> {
        let mut options = serde_json::to_value(options).map_err(|_| AuthError::Internal)?;
        // Keyed on the identifier as the lockout folds an unknown one (the account lookup's
        // equivalence), so two spellings of one address get one made-up credential.
        let folded = self.login.fold_unknown_identifier(identifier);
        let data = format!("pk-fake\0{folded}");

        let fake = crate::keys::hmac_bytes(&self.core.keys.one_time, data.as_bytes());
        let public_key = &mut options["publicKey"];
        public_key["allowCredentials"] =
            serde_json::json!([{ "type": "public-key", "id": URL_SAFE_NO_PAD.encode(fake) }]);
        if let Some(map) = public_key.as_object_mut() {
            map.remove("extensions");
        }
        if let Some(map) = options.as_object_mut() {
            map.remove("mediation");
        }
        Ok(options)
    }

    /// Tells the owner by email that a passkey was added to their account (best effort, in
    /// the background; nothing without an email sender).
    async fn notify_added(&self, user: &U) {
        let Some(email) = user.email().map(str::to_owned) else {
            return;
        };
        if !self.core.deliveries.sends_email() {
            return;
        }
        let notice = crate::delivery::delivery(
            crate::delivery::MessageKind::PasskeyAdded,
            email,
            Some(user.contract()),
            None,
            self.core.repo.database(),
        );
        let core = self.core.clone();
        self.core.background.spawn(async move {
            core.deliveries.deliver(notice).await;
        });
    }

    /// The stored passkey an assertion names (401 for an unknown credential).
    async fn stored_of(
        &self,
        credential: &PublicKeyCredential,
    ) -> Result<StoredPasskey, AuthError> {
        let id = credential_id(credential.get_credential_id());
        if id.len() > 1400 {
            return Err(FAILED);
        }
        (self.parts.store.find(&id).await.map_err(store_fault)?).ok_or(FAILED)
    }

    /// Checks a verified assertion's counter against the stored one and records the use
    /// (a compare-and-set: of two uses of one counter value, one is recorded).
    pub(super) async fn record_use(
        &self,
        stored: &StoredPasskey,
        mut passkey: Passkey,
        result: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
    ) -> Result<(), AuthError> {
        let result = match result {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tracing::warn!(user_id = %stored.user_id, credential = %stored.credential_id,
                    "passkey signature counter went back: possibly a cloned authenticator; refused");
                return Err(FAILED);
            }
            Err(e) => {
                tracing::info!(credential = %stored.credential_id, error = %e, "passkey assertion refused");
                return Err(FAILED);
            }
        };
        let counter = result.counter();
        if (counter > 0 || stored.counter > 0) && counter <= stored.counter {
            tracing::warn!(user_id = %stored.user_id, credential = %stored.credential_id,
                stored = stored.counter, presented = counter,
                "passkey signature counter went back: possibly a cloned authenticator; refused");
            return Err(FAILED);
        }
        passkey.update_credential(&result);
        let json = serde_json::to_string(&passkey).map_err(|_| AuthError::Internal)?;
        let recorded = (self.parts.store)
            .record_use(&stored.credential_id, stored.counter, counter, &json, now())
            .await
            .map_err(store_fault)?;
        if !recorded {
            // Another use of this credential was recorded meanwhile (or it was removed).
            return Err(FAILED);
        }
        Ok(())
    }
}
