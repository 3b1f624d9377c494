//! Signing and verifying tokens with a key set.
//!
//! - The set is the signing key ([`BearerConfig::key`]) followed by the verify-only keys
//!   ([`BearerConfig::verify_only`]). Every token names its key in the header's `kid`; the
//!   HS256 key's kid is derived from it with HKDF (it tells nothing about the key).
//! - Verification reads the header first: the `kid` must name a key of the set (a token
//!   naming another is an invalid token; one naming none, minted before tokens named their
//!   key, is taken only by the derived HS256 key, while it is in the set), and the header's
//!   `alg` must be that key's algorithm. Each key then verifies with exactly its own algorithm, so `none`
//!   and algorithm confusion (an HS256 token keyed with a public key) are impossible.
//! - ES256, ES384, EdDSA, RS256 and HS256 go through jsonwebtoken. **ES512 does not**:
//!   jsonwebtoken 11 has no ES512 (its `Algorithm` has no variant for it), so an ES512 token
//!   is framed here (JWS compact serialisation: base64url header, payload and the 132-byte
//!   fixed-size `r || s` signature) and signed and verified by RustCrypto's `p521` (ECDSA
//!   over SHA-512, deterministic nonces per RFC 6979). Its claims get the same checks as
//!   jsonwebtoken's path: the typed [`Claims`] (so `exp`, `iat`, `sub` are required and
//!   numeric), `exp` with the same leeway against the same clock, and a configured `iss` and
//!   `aud` required and equal. A test runs the same bad claims through every algorithm.
//! - `GET /.well-known/jwks.json` publishes the public keys of the set (never the HS256 key,
//!   never a private part), built from the public PEMs only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p521::ecdsa::signature::{Signer as _, Verifier as _};
use p521::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::keys::{Alg, Parts};
use super::{BearerConfig, Claims, JwtKey, TokenService};
use crate::error::{AuthError, ConfigError};

#[cfg(test)]
#[path = "signing_tests.rs"]
mod tests;

/// Leeway of `exp`, in seconds (both paths).
const LEEWAY: u64 = 5;
/// The longest token read at all.
const MAX_TOKEN: usize = 8192;
/// The longest `kid` of a configured key.
const MAX_KID: usize = 128;
/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;

enum SignWith {
    Jwt {
        header: Box<Header>,
        key: EncodingKey,
    },
    /// ES512: the encoded header is fixed, the signature is p521's.
    P521 {
        header_b64: String,
        key: Box<p521::ecdsa::SigningKey>,
    },
}

enum VerifyWith {
    Jwt {
        key: DecodingKey,
        validation: Box<Validation>,
    },
    P521(Box<p521::ecdsa::VerifyingKey>),
}

struct Entry {
    kid: String,
    alg: Alg,
    with: VerifyWith,
}

/// The signing key and every key that verifies.
pub(crate) struct KeySet {
    signer: SignWith,
    signer_alg: Alg,
    entries: Vec<Entry>,
    /// Refresh tokens are signed with the derived HS256 key whatever the set: they are
    /// redeemed by this service alone, and a service that trusts the published keys must
    /// never be able to take one for an access token.
    refresh_signer: SignWith,
    refresh_entry: Entry,
    jwks: Option<Value>,
    issuer: Option<String>,
    audience: Option<String>,
}

/// The header fields read before choosing a key. Unknown fields are ignored, a duplicate
/// or mistyped one refuses the token.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // typed as in jsonwebtoken's header: a non-string `typ` is refused
    typ: Option<String>,
    /// RFC 7515 §4.1.11: extensions the verifier must understand. None is understood.
    #[serde(default)]
    crit: Option<Value>,
}

fn invalid<E>(_: E) -> AuthError {
    AuthError::InvalidToken
}

fn bad(what: &str) -> impl Fn(String) -> ConfigError + '_ {
    move |e| ConfigError::Invalid(format!("bearer key {what}: {e}"))
}

/// The kid of the derived HS256 key: HKDF-Expand of the key with its own label (another
/// label than the family handles'), so it reveals nothing about the key.
fn derived_kid(hs_key: &[u8; 32]) -> Result<String, ConfigError> {
    let hk = hkdf::Hkdf::<Sha256>::from_prk(hs_key)
        .map_err(|_| ConfigError::Invalid("key derivation failed".into()))?;
    let mut out = [0u8; 12];
    hk.expand(b"jwt-kid", &mut out)
        .map_err(|_| ConfigError::Invalid("key derivation failed".into()))?;
    Ok(format!("hs-{}", URL_SAFE_NO_PAD.encode(out)))
}

/// The claim checks of the jsonwebtoken path (the algorithm is set per key).
fn base_validation(config: &BearerConfig) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY;
    validation.validate_exp = true;
    // `iat` is not in jsonwebtoken's list of checkable claims; `Claims::iat` is a required
    // integer, so a token without it (or with a string) fails to deserialise.
    let mut required = vec!["exp", "iat", "sub"];
    if config.issuer.is_some() {
        required.push("iss");
    }
    if config.audience.is_some() {
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    match &config.issuer {
        Some(iss) => validation.set_issuer(&[iss]),
        None => validation.iss = None,
    }
    match &config.audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    validation
}

/// The algorithm of a public key PEM (for [`crate::JwtKey::from_pem`]).
pub(crate) fn detect(public_pem: &str) -> Result<Alg, ConfigError> {
    for alg in [Alg::Es256, Alg::Es384, Alg::Es512, Alg::EdDsa, Alg::Rs256] {
        if public_key(alg, public_pem).is_ok() {
            return Ok(alg);
        }
    }
    Err(ConfigError::Invalid(
        "bearer key: not a P-256, P-384, P-521, Ed25519 or RSA (2048 bits or more) public key PEM"
            .into(),
    ))
}

/// Parses a public key of `alg`: its verifier and its public JWK (kty and the public
/// numbers only), refusing a key of another curve or size.
fn public_key(alg: Alg, pem: &str) -> Result<(VerifyWith, Value), ConfigError> {
    let e = |e: jsonwebtoken::errors::Error| bad("public_pem")(e.to_string());
    let (jwt_alg, key) = match alg {
        Alg::Es512 => {
            let key = p521::ecdsa::VerifyingKey::from_public_key_pem(pem)
                .map_err(|e| bad("public_pem")(e.to_string()))?;
            let point = key.to_sec1_point(false);
            let xy = point.as_bytes().get(1..).unwrap_or_default();
            let (x, y) = xy.split_at(xy.len() / 2);
            let jwk = json!({"kty": "EC", "crv": "P-521",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
            return Ok((VerifyWith::P521(Box::new(key)), jwk));
        }
        Alg::Es256 => (
            Algorithm::ES256,
            DecodingKey::from_ec_pem(pem.as_bytes()).map_err(e)?,
        ),
        Alg::Es384 => (
            Algorithm::ES384,
            DecodingKey::from_ec_pem(pem.as_bytes()).map_err(e)?,
        ),
        Alg::EdDsa => (
            Algorithm::EdDSA,
            DecodingKey::from_ed_pem(pem.as_bytes()).map_err(e)?,
        ),
        Alg::Rs256 => (
            Algorithm::RS256,
            DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(e)?,
        ),
        Alg::Hs256 => return Err(ConfigError::Invalid("HS256 has no public key".into())),
    };
    let jwk = Jwk::from_decoding_key(&key, Some(jwt_alg)).map_err(e)?;
    let curve = |c| serde_json::to_value(c).unwrap_or_default();
    let public = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Alg::Es256 | Alg::Es384) => {
            json!({"kty": "EC", "crv": curve(&p.curve), "x": p.x, "y": p.y})
        }
        (AlgorithmParameters::OctetKeyPair(p), Alg::EdDsa) => {
            json!({"kty": "OKP", "crv": curve(&p.curve), "x": p.x})
        }
        (AlgorithmParameters::RSA(p), Alg::Rs256) => json!({"kty": "RSA", "n": p.n, "e": p.e}),
        _ => return Err(bad("public_pem")(format!("not an {} key", alg.name()))),
    };
    let fits = match alg {
        Alg::Es256 => public["crv"] == "P-256",
        Alg::Es384 => public["crv"] == "P-384",
        Alg::EdDsa => public["crv"] == "Ed25519",
        _ => public["n"]
            .as_str()
            .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
            .is_some_and(|n| {
                // The modulus's bit length, not its byte count (a 2041-bit one fills 256 bytes).
                let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
                let bits = n
                    .first()
                    .map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
                bits >= MIN_RSA_BYTES * 8
            }),
    };
    if !fits {
        return Err(bad("public_pem")(format!("not an {} key", alg.name())));
    }
    let mut validation = Box::new(Validation::new(jwt_alg));
    validation.algorithms = vec![jwt_alg];
    Ok((VerifyWith::Jwt { key, validation }, public))
}

fn signer(p: &Parts<'_>, hs_key: &[u8; 32], kid: &str) -> Result<SignWith, ConfigError> {
    let pem = p.private_pem.unwrap_or_default();
    let e = |e: jsonwebtoken::errors::Error| bad("private_pem")(e.to_string());
    let (alg, key) = match p.alg {
        Alg::Hs256 => (Algorithm::HS256, EncodingKey::from_secret(hs_key)),
        Alg::Es256 => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(e)?,
        ),
        Alg::Es384 => (
            Algorithm::ES384,
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(e)?,
        ),
        Alg::EdDsa => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem.as_bytes()).map_err(e)?,
        ),
        Alg::Rs256 => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(e)?,
        ),
        Alg::Es512 => {
            let key = p521::ecdsa::SigningKey::from_pkcs8_pem(pem)
                .map_err(|e| bad("private_pem")(e.to_string()))?;
            let header = json!({"typ": "JWT", "alg": "ES512", "kid": kid});
            return Ok(SignWith::P521 {
                header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
                key: Box::new(key),
            });
        }
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    Ok(SignWith::Jwt {
        header: Box::new(header),
        key,
    })
}

impl KeySet {
    pub(crate) fn new(config: &BearerConfig, hs_key: &[u8; 32]) -> Result<KeySet, ConfigError> {
        let hs_kid = derived_kid(hs_key)?;
        let base = base_validation(config);
        let first = config.key.parts();
        let signer_alg = first.alg;
        let sign_with = signer(&first, hs_key, first.kid.unwrap_or(&hs_kid))?;
        let mut entries: Vec<Entry> = Vec::new();
        let mut jwks = Vec::new();
        let set = std::iter::once(first).chain(config.verify_only.iter().map(|k| k.parts()));
        for p in set {
            let kid = p.kid.unwrap_or(&hs_kid).to_owned();
            if kid.is_empty() || kid.len() > MAX_KID || kid.chars().any(char::is_control) {
                return Err(ConfigError::Invalid(format!(
                    "bearer key id {kid:?}: 1 to {MAX_KID} bytes, no control characters"
                )));
            }
            if entries.iter().any(|e| e.kid == kid) {
                return Err(ConfigError::Invalid(format!(
                    "bearer key id {kid:?} is in the key set twice"
                )));
            }
            let with = if p.alg == Alg::Hs256 {
                let mut validation = Box::new(base.clone());
                validation.algorithms = vec![Algorithm::HS256];
                VerifyWith::Jwt {
                    key: DecodingKey::from_secret(hs_key),
                    validation,
                }
            } else {
                let (with, mut jwk) = public_key(p.alg, p.public_pem.unwrap_or_default())?;
                jwk["kid"] = json!(kid);
                jwk["alg"] = json!(p.alg.name());
                jwk["use"] = json!("sig");
                jwks.push(jwk);
                match with {
                    VerifyWith::Jwt { key, validation } => VerifyWith::Jwt {
                        key,
                        validation: Box::new(Validation {
                            algorithms: validation.algorithms,
                            ..base.clone()
                        }),
                    },
                    p521 => p521,
                }
            };
            entries.push(Entry {
                kid,
                alg: p.alg,
                with,
            });
        }
        if signer_alg != Alg::Hs256 && (config.issuer.is_none() || config.audience.is_none()) {
            tracing::warn!(
                "bearer tokens are signed with a published key pair but no issuer or audience is \
                 set: every service trusting the same keys would take this service's tokens"
            );
        }
        let derived = JwtKey::Hs256Derived;
        let refresh_signer = signer(&derived.parts(), hs_key, &hs_kid)?;
        let mut validation = Box::new(base.clone());
        validation.algorithms = vec![Algorithm::HS256];
        let refresh_entry = Entry {
            kid: hs_kid.clone(),
            alg: Alg::Hs256,
            with: VerifyWith::Jwt {
                key: DecodingKey::from_secret(hs_key),
                validation,
            },
        };
        Ok(KeySet {
            signer: sign_with,
            signer_alg,
            entries,
            refresh_signer,
            refresh_entry,
            jwks: (!jwks.is_empty()).then(|| json!({ "keys": jwks })),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// The signing key's algorithm (JOSE name).
    pub(crate) fn signer_alg(&self) -> &'static str {
        self.signer_alg.name()
    }

    /// Signs `claims` with the first key.
    pub(crate) fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, ConfigError> {
        Self::sign_with(&self.signer, claims)
    }

    /// Signs a refresh token's claims with the derived HS256 key (see `refresh_signer`).
    pub(crate) fn sign_refresh<T: serde::Serialize>(
        &self,
        claims: &T,
    ) -> Result<String, ConfigError> {
        Self::sign_with(&self.refresh_signer, claims)
    }

    fn sign_with<T: serde::Serialize>(with: &SignWith, claims: &T) -> Result<String, ConfigError> {
        let failed = |e: String| ConfigError::Invalid(format!("signing failed: {e}"));
        match with {
            SignWith::Jwt { header, key } => {
                jsonwebtoken::encode(header, claims, key).map_err(|e| failed(e.to_string()))
            }
            SignWith::P521 { header_b64, key } => {
                let payload = serde_json::to_vec(claims).map_err(|e| failed(e.to_string()))?;
                let input = format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(payload));
                let signature: p521::ecdsa::Signature = key
                    .try_sign(input.as_bytes())
                    .map_err(|e| failed(e.to_string()))?;
                // Low S, the one form the verifier below takes: a token has one signature.
                let signature = signature.normalize_s();
                Ok(format!(
                    "{input}.{}",
                    URL_SAFE_NO_PAD.encode(signature.to_bytes())
                ))
            }
        }
    }

    /// Verifies a token with the key its `kid` names, pinned to that key's algorithm.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_among(token, false)
    }

    /// Verifies a refresh token: the derived HS256 key signs them, and the set's keys still
    /// verify those a key pair signed before.
    pub(crate) fn verify_refresh(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_among(token, true)
    }

    fn verify_among(&self, token: &str, refresh: bool) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN {
            return Err(AuthError::InvalidToken);
        }
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::InvalidToken);
        };
        // A JSON object (serde would read a struct from a list too); a duplicate member is
        // refused by the derive, as by jsonwebtoken's.
        let header: RawHeader = URL_SAFE_NO_PAD
            .decode(head)
            .ok()
            .filter(|bytes| bytes.trim_ascii_start().first() == Some(&b'{'))
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(AuthError::InvalidToken)?;
        let entry = match header.kid.as_deref() {
            Some(kid) if refresh && kid == self.refresh_entry.kid => Some(&self.refresh_entry),
            Some(kid) => self.entries.iter().find(|e| e.kid == kid),
            // A refresh token from before tokens named their key was the derived HS256 key's
            // (this service's alone), whatever the set is now.
            None if refresh => Some(&self.refresh_entry),
            // A token minted before tokens named their key (the 0.8 original's, this
            // crate's earlier ones) may only be the derived HS256 key's, and only while it
            // is in the set: the upgrade signs nobody out, and a key pair never takes one.
            None => self.entries.iter().find(|e| e.alg == Alg::Hs256),
        }
        .filter(|e| header.crit.is_none() && header.alg == e.alg.name())
        .ok_or(AuthError::InvalidToken)?;
        match &entry.with {
            VerifyWith::Jwt { key, validation } => {
                jsonwebtoken::decode::<Claims>(token, key, validation)
                    .map(|data| data.claims)
                    .map_err(invalid)
            }
            VerifyWith::P521(key) => {
                let bytes = URL_SAFE_NO_PAD.decode(signature).map_err(invalid)?;
                let signature = p521::ecdsa::Signature::from_slice(&bytes).map_err(invalid)?;
                // ECDSA's (r, n - s) twin verifies too: refused, so the same claims cannot be
                // sent as a second token string (a consumer keying on the string would see two).
                if signature.normalize_s() != signature {
                    return Err(AuthError::InvalidToken);
                }
                let input = &token[..head.len() + 1 + payload.len()];
                key.verify(input.as_bytes(), &signature).map_err(invalid)?;
                let json = URL_SAFE_NO_PAD.decode(payload).map_err(invalid)?;
                let claims: Claims = serde_json::from_slice(&json).map_err(invalid)?;
                self.check_claims(&claims)?;
                Ok(claims)
            }
        }
    }

    /// The claim checks jsonwebtoken makes (see [`base_validation`]), for the ES512 path:
    /// `exp` with the leeway against jsonwebtoken's clock, a configured `iss` and `aud`
    /// present and equal. (`iat` and `sub` are required by the typed [`Claims`].)
    fn check_claims(&self, claims: &Claims) -> Result<(), AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        let expired = claims.exp < now.saturating_sub(LEEWAY);
        let wrong = |want: &Option<String>, got: &Option<String>| {
            want.as_ref().is_some_and(|w| got.as_ref() != Some(w))
        };
        if expired || wrong(&self.issuer, &claims.iss) || wrong(&self.audience, &claims.aud) {
            return Err(AuthError::InvalidToken);
        }
        Ok(())
    }
}

impl TokenService {
    /// The public keys of the key set as a JSON Web Key Set (`{"keys": [...]}`: `kty`,
    /// `crv`/`x`/`y`, `n`/`e` or OKP `x`, with `kid`, `alg`, `use: "sig"`; never a private
    /// part), so other services verify the tokens themselves. `None` when the set holds no
    /// key pair (HS256 only). The router serves it at `GET /.well-known/jwks.json`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let tokens = auth.tokens().unwrap();
    /// assert!(tokens.jwks().is_none()); // HS256 only: nothing to publish
    /// # Ok(()) });
    /// ```
    pub fn jwks(&self) -> Option<&Value> {
        self.inner.keys.jwks.as_ref()
    }

    /// The `kid` of the signing key (for the derived HS256 key, its derived id).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let tokens = auth.tokens().unwrap();
    /// assert!(tokens.signing_kid().starts_with("hs-"));
    /// # Ok(()) });
    /// ```
    pub fn signing_kid(&self) -> &str {
        self.inner
            .keys
            .entries
            .first()
            .map_or("", |e| e.kid.as_str())
    }
}
