//! A software passkey authenticator for the tests: `webauthn-authenticator-rs`'s `SoftToken`
//! (real P-256 keys, real attestation and assertion signatures, a real signature counter),
//! driven as a browser drives a platform authenticator: the options of a start route in,
//! the credential JSON of the matching finish route out.
//!
//! `SoftToken` keeps no resident (discoverable) credentials, so for a ceremony with an
//! empty allow-list this client does what a resident-key authenticator does: it picks the
//! credential it holds for the RP and answers with the user handle it stored at
//! registration. The signature still covers the authenticator data and the client data,
//! exactly as a resident key's does (the user handle is outside the signed bytes).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// The origin of the tests' relying party.
pub const ORIGIN: &str = "https://app.example";
/// The tests' relying party id.
pub const RP_ID: &str = "app.example";

/// A software authenticator with the credentials it registered.
pub struct SoftAuthenticator {
    token: SoftToken,
    /// Credential id (base64url) → the user handle it was registered for.
    resident: HashMap<String, Vec<u8>>,
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftAuthenticator {
    /// A new authenticator holding no credential (it reports user verification).
    pub fn new() -> Self {
        let (token, _ca) = SoftToken::new(true).expect("a soft token");
        SoftAuthenticator {
            token,
            resident: HashMap::new(),
        }
    }

    /// A copy with the same keys and the same signature counter: a cloned authenticator.
    pub fn clone_device(&self) -> Self {
        let bytes = self.token.to_cbor().expect("serialisable");
        SoftAuthenticator {
            token: SoftToken::from_cbor(&bytes).expect("deserialisable"),
            resident: self.resident.clone(),
        }
    }

    /// Answers a registration start's `options` from `origin`: the credential for the
    /// finish route.
    pub fn register(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        let ccr: CreationChallengeResponse =
            serde_json::from_value(options.clone()).map_err(|e| e.to_string())?;
        let handle = ccr.public_key.user.id.clone();
        let origin = Url::parse(origin).map_err(|e| e.to_string())?;
        let credential = self
            .token
            .perform_register(origin, ccr.public_key, 60_000)
            .map_err(|e| format!("{e:?}"))?;
        self.resident
            .insert(URL_SAFE_NO_PAD.encode(&credential.raw_id), handle);
        serde_json::to_value(&credential).map_err(|e| e.to_string())
    }

    /// Answers a sign-in (or sudo) start's `options` from `origin`.
    pub fn sign(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        self.sign_for(origin, options, None)
    }

    /// [`SoftAuthenticator::sign`], signing for `rp_id` instead of the options' RP id (a
    /// page of another site relaying the options).
    pub fn sign_for(
        &mut self,
        origin: &str,
        options: &Value,
        rp_id: Option<&str>,
    ) -> Result<Value, String> {
        let mut options = options.clone();
        let public_key = &mut options["publicKey"];
        let discoverable = public_key["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if discoverable {
            let mine: Vec<Value> = self
                .resident
                .keys()
                .map(|id| json!({ "type": "public-key", "id": id }))
                .collect();
            public_key["allowCredentials"] = Value::Array(mine);
        }
        if let Some(rp_id) = rp_id {
            public_key["rpId"] = json!(rp_id);
        }
        let rcr: RequestChallengeResponse =
            serde_json::from_value(options).map_err(|e| e.to_string())?;
        let origin = Url::parse(origin).map_err(|e| e.to_string())?;
        let mut credential = self
            .token
            .perform_auth(origin, rcr.public_key, 60_000)
            .map_err(|e| format!("{e:?}"))?;
        if discoverable {
            let id = URL_SAFE_NO_PAD.encode(&credential.raw_id);
            credential.response.user_handle = self.resident.get(&id).cloned();
        }
        serde_json::to_value(&credential).map_err(|e| e.to_string())
    }

    /// The authenticator as JSON (its keys, counter and credentials: a secret), to keep it
    /// between runs (the demo's passkey commands).
    pub fn to_json(&self) -> Result<Value, String> {
        let token = self.token.to_cbor().map_err(|e| format!("{e:?}"))?;
        let resident: serde_json::Map<String, Value> = self
            .resident
            .iter()
            .map(|(id, handle)| (id.clone(), json!(URL_SAFE_NO_PAD.encode(handle))))
            .collect();
        Ok(json!({ "token": URL_SAFE_NO_PAD.encode(token), "resident": resident }))
    }

    /// An authenticator kept by [`SoftAuthenticator::to_json`].
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let token = value["token"].as_str().ok_or("no token")?;
        let token = URL_SAFE_NO_PAD.decode(token).map_err(|e| e.to_string())?;
        let token = SoftToken::from_cbor(&token).map_err(|e| format!("{e:?}"))?;
        let mut resident = HashMap::new();
        for (id, handle) in value["resident"].as_object().ok_or("no credentials")? {
            let handle = handle.as_str().ok_or("a user handle is not a string")?;
            let handle = URL_SAFE_NO_PAD.decode(handle).map_err(|e| e.to_string())?;
            resident.insert(id.clone(), handle);
        }
        Ok(SoftAuthenticator { token, resident })
    }

    /// The ids (base64url) of the credentials it holds.
    pub fn credential_ids(&self) -> Vec<String> {
        self.resident.keys().cloned().collect()
    }
}

/// Flips one bit of a base64url field of a credential's `response` (`signature`,
/// `authenticatorData`, `clientDataJSON`).
pub fn tamper(credential: &mut Value, field: &str) {
    let raw = credential["response"][field]
        .as_str()
        .expect("a base64url field");
    let mut bytes = URL_SAFE_NO_PAD.decode(raw).expect("base64url");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    credential["response"][field] = json!(URL_SAFE_NO_PAD.encode(bytes));
}
