//! A user's own new phone number, confirmed by a texted code before it is written: a phone
//! number is a way to sign in (passwordless SMS), so nobody may claim one they cannot
//! receive texts on.
//!
//! `PATCH /users/me {phone, current_password}` texts a six-digit code to the new number
//! (202); `POST /users/me/phone/confirm {code}` writes the number. The pending change lives
//! in the store under a key derived from the user id (one per user: a new request replaces
//! it), holding the number and a keyed hash that binds the user, the number and the code;
//! it lives 10 minutes and dies after 5 wrong codes; the right code is spent atomically.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::UsersAdmin;
use crate::delivery::{Medium, MessageKind, delivery};
use crate::error::AuthError;
use crate::keys::{hmac_hex, random_bytes};
use crate::principal::Principal;
use crate::store::{Store, fail_closed, repo_fault};
use crate::user::{LogicalField, RepoError, UserRecord, UserUpdate};

/// How long a texted code can be used.
const CODE_TTL: Duration = Duration::from_secs(600);

/// Wrong codes after which the pending change is dead.
const MAX_ATTEMPTS: i64 = 5;

/// The answer to a wrong, spent or expired code (or no pending change at all).
const INVALID: AuthError = AuthError::BadRequest("Invalid or expired code");

/// A pending change: the new number and the keyed hash of (user, number, code).
#[derive(Serialize, Deserialize)]
struct Pending {
    phone: String,
    digest: String,
}

/// Six decimal digits, uniformly (a rejection draw: no modulo bias).
fn six_digits() -> String {
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>());
        // 4_294_000_000 is the largest multiple of a million below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

fn store_fault(e: crate::store::StoreError) -> AuthError {
    fail_closed("phone change store", &e)
}

impl<U: UserRecord> UsersAdmin<U> {
    /// Whether a phone number can be confirmed here: the table has a writable phone column
    /// and a delivery channel (an SMS gateway) is configured.
    pub(crate) fn phone_changes(&self) -> bool {
        self.repo.schema().writable(LogicalField::Phone) && self.core.deliveries.has_channels()
    }

    fn phone_keys(&self, user_id: &str) -> (String, String) {
        let tag = hmac_hex(
            &self.core.keys.store,
            format!("phone\0{user_id}").as_bytes(),
        );
        (
            format!("users_admin:phone:{tag}"),
            format!("users_admin:phone_tries:{tag}"),
        )
    }

    fn phone_digest(&self, user_id: &str, phone: &str, code: &str) -> String {
        let data = format!("phone-change\0{user_id}\0{phone}\0{code}");
        hmac_hex(&self.core.keys.one_time, data.as_bytes())
    }

    /// Texts a code to `phone` (E.164) for `user`, replacing any pending change.
    pub(crate) async fn request_phone(&self, user: &U, phone: &str) -> Result<(), AuthError> {
        let uid = user.user_id().to_string();
        let (pending_key, tries_key) = self.phone_keys(&uid);
        let code = six_digits();
        let pending = Pending {
            phone: phone.to_owned(),
            digest: self.phone_digest(&uid, phone, &code),
        };
        let bytes = serde_json::to_vec(&pending).map_err(|_| AuthError::Internal)?;
        let store: &dyn Store = self.core.store.as_ref();
        store.delete(&tries_key).await.map_err(store_fault)?;
        store
            .set(&pending_key, &bytes, Some(CODE_TTL))
            .await
            .map_err(store_fault)?;
        let mut message = delivery(
            MessageKind::ConfirmPhone,
            phone.to_owned(),
            Some(user.contract()),
            None,
            self.repo.database(),
        );
        message.code = Some(code);
        message.expires_in = Some(CODE_TTL);
        message.medium = Medium::Sms;
        self.core.deliveries.deliver(message).await;
        Ok(())
    }

    /// Checks a texted code and, when it is right, writes the pending number: 400 `Invalid
    /// or expired code` otherwise (a wrong one counts; the fifth kills the change), 400
    /// `UPDATE_USER_PHONE_ALREADY_EXISTS` when another account took the number meanwhile.
    pub(crate) async fn confirm_phone(
        &self,
        principal: &Principal<U>,
        code: &str,
    ) -> Result<U, AuthError> {
        let uid = principal.user_id.to_string();
        let (pending_key, tries_key) = self.phone_keys(&uid);
        let store: &dyn Store = self.core.store.as_ref();
        // Counted before the check, so concurrent guesses share one budget.
        let tries = store
            .incr(&tries_key, 1, CODE_TTL)
            .await
            .map_err(store_fault)?;
        if tries > MAX_ATTEMPTS {
            store.delete(&pending_key).await.map_err(store_fault)?;
            return Err(INVALID);
        }
        let raw = store.get(&pending_key).await.map_err(store_fault)?;
        let pending: Pending = match raw.as_deref().map(serde_json::from_slice) {
            Some(Ok(pending)) => pending,
            _ => return Err(INVALID),
        };
        let expected = self.phone_digest(&uid, &pending.phone, code.trim());
        if !crate::keys::same_secret(&expected, &pending.digest) {
            return Err(INVALID);
        }
        // Spent once: of two requests with the right code, one writes.
        let spent = store
            .get_and_delete(&pending_key)
            .await
            .map_err(store_fault)?;
        if spent != raw {
            return Err(INVALID);
        }
        store.delete(&tries_key).await.map_err(store_fault)?;
        let update = UserUpdate {
            phone: Some(pending.phone),
            ..Default::default()
        };
        let user = match self.repo.update(&principal.user_id, update).await {
            Ok(user) => user,
            Err(RepoError::Duplicate { .. }) => {
                return Err(AuthError::BadRequest("UPDATE_USER_PHONE_ALREADY_EXISTS"));
            }
            Err(RepoError::NotFound) => return Err(AuthError::NotAuthenticated),
            Err(e) => return Err(repo_fault(e)),
        };
        tracing::info!(user = %principal.user_id, "crudauth: a user confirmed a new phone number");
        Ok(user)
    }
}
