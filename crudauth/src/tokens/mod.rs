//! Bearer tokens: access and refresh JWTs, with rotating refresh-token families.
//!
//! - Access tokens are signed by the first key of a key set (refresh tokens by the derived
//!   HS256 key, which is never published) and verified by the key their `kid`
//!   names, pinned to its algorithm (HS256 by default, with a key derived from the secret;
//!   ES256, ES384, ES512, EdDSA and RS256 key pairs, ES512 by `p521`; see
//!   [`BearerConfig::verify_only`]); `none` and algorithm confusion are impossible.
//! - `exp`, `iat` and `sub` are required and typed: a string `exp` is a rejected token. (The
//!   presence of `iat` is enforced by the typed [`Claims`]: jsonwebtoken's list of required
//!   claims does not know `iat`.) A configured `iss` / `aud` is required and must match.
//! - Every token carries the user's `token_version` (`epoch`), checked on every request.
//! - Refresh tokens rotate on every use. Each belongs to a family whose record (current `jti`,
//!   owner, creation and last rotation time, scopes) lives in the store; presenting an older
//!   one (reuse) revokes the whole family.
//! - A family has an absolute lifetime ([`BearerConfig::refresh_family_lifetime`], 30 days by
//!   default) counted from the sign-in that started it: a rotation never extends past it (the
//!   rotated token lives `min(refresh_ttl, what is left of the family)`), so a stolen refresh
//!   token cannot be kept alive forever by using it.
//! - Each user's families are listed in a per-user index of the store, so they can be listed
//!   ([`TokenService::families`], `GET /tokens`), revoked one by one
//!   ([`TokenService::revoke_family_by_id`], `DELETE /tokens/{id}`) or all at once
//!   ([`TokenService::revoke_all_families`]; `POST /logout-all` does this and also bumps the
//!   user's revocation epoch, which ends every access token at once).
//! - Revoking a family ends its refresh token; an access token already minted from it stays
//!   valid until it expires (`access_ttl`). To end one access token at once, put it on the
//!   deny list (`POST /logout` with the token, or `auth.revocation().deny_access_token(..)`;
//!   the bearer transport reads it in the same store round trip as the user generation); to
//!   end all of a user's, bump the epoch (`auth.revocation().bump(&user)`), as `/logout-all`
//!   does.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::audit::Outcome::Refused;
use crate::clock::now_secs;
use crate::error::{AuthError, ConfigError};
use crate::keys::random_token;
use crate::store::{Store, StoreError};

mod config;
mod family;
mod issue;
mod keys;
mod signing;
#[cfg(test)]
mod tests;

pub use config::{BearerConfig, RefreshMode};
pub use family::TokenFamily;
use family::{FamilyRecord, family_key};
pub use keys::{JwtKey, VerifyKey};

/// The claims of crudauth's tokens.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
/// # let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
/// let claims: crudauth::tokens::Claims = tokens.verify_access(&pair.access_token)?;
/// println!("user {} with scopes {:?}", claims.sub, claims.scopes);
/// assert_eq!((claims.sub.as_str(), claims.token_type.as_str()), ("1", "access"));
/// # Ok(()) });
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The user id (textual).
    pub sub: String,
    /// The user's revocation epoch at issue (the `ver` claim on the wire).
    #[serde(rename = "ver")]
    pub epoch: i64,
    /// Expiry (unix seconds).
    pub exp: u64,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Unique token id.
    pub jti: String,
    /// `access` or `refresh`.
    pub token_type: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The refresh family (refresh tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// Issuer, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The superuser acting as `sub` (impersonation tokens only, feature `admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_by: Option<String>,
    /// The impersonator's revocation epoch at issue (`imp_ver`): their password reset or
    /// deactivation ends the token too.
    #[serde(default, rename = "imp_ver", skip_serializing_if = "Option::is_none")]
    pub impersonator_epoch: Option<i64>,
    /// Whether the impersonated user was a superuser when it began (`imp_su`): a user
    /// promoted during an impersonation ends it.
    #[serde(default, rename = "imp_su", skip_serializing_if = "std::ops::Not::not")]
    pub impersonated_superuser: bool,
    /// The tenant the token was issued under (`tid`; see [`crate::tenant`]).
    #[serde(default, rename = "tid", skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// An issued pair. Serialised, it is the body of `/token` in [`RefreshMode::Body`].
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
/// let pair: crudauth::TokenPair = tokens.issue("1", 0, vec![]).await?;
/// assert_eq!(pair.token_type, "bearer");
/// assert!(pair.refresh_expires_in >= pair.expires_in);
/// # Ok(()) });
/// ```
#[derive(Clone, Serialize)]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// The refresh token.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires (not serialised; the refresh cookie's
    /// `Max-Age`).
    #[serde(skip)]
    pub refresh_expires_in: u64,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}
/// Mints and verifies tokens, and keeps the refresh families. Reached as `auth.tokens()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| {
/// let tokens: &crudauth::TokenService = auth.tokens().expect("bearer configured");
/// let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
/// let claims = tokens.verify_access(&pair.access_token)?;
/// assert_eq!(claims.scopes, ["me:read"]);
/// # Ok(()) });
/// ```
#[derive(Clone)]
pub struct TokenService {
    inner: Arc<TokenInner>,
}

struct TokenInner {
    keys: signing::KeySet,
    config: BearerConfig,
    store: Arc<dyn Store>,
    /// Key of the public family handles, derived from the JWT key (never signs a token).
    handle_key: [u8; 32],
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("alg", &self.inner.keys.signer_alg())
            .finish_non_exhaustive()
    }
}
/// The transport of the audit events the token service logs.
const BEARER: Option<&str> = Some("bearer");

fn invalid_refresh() -> AuthError {
    AuthError::Unauthorized("Invalid or expired refresh token")
}

fn store_fault(e: StoreError) -> AuthError {
    crate::store::fail_closed("refresh-family store", &e)
}

/// A key for the public family handles, derived from the JWT key with HKDF-Expand, so a
/// handle is never a valid signature of anything.
fn derive_handle_key(hs_key: &[u8; 32]) -> Result<[u8; 32], ConfigError> {
    let hk = hkdf::Hkdf::<Sha256>::from_prk(hs_key)
        .map_err(|_| ConfigError::Invalid("key derivation failed".into()))?;
    let mut out = [0u8; 32];
    hk.expand(b"refresh-family-handle", &mut out)
        .map_err(|_| ConfigError::Invalid("key derivation failed".into()))?;
    Ok(out)
}

/// Whole seconds of a duration, as a signed count.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl TokenService {
    pub(crate) fn new(
        config: BearerConfig,
        hs_key: &[u8; 32],
        store: Arc<dyn Store>,
    ) -> Result<Self, ConfigError> {
        if !config.default_scopes.is_subset(&config.grantable_scopes) {
            return Err(ConfigError::Invalid(
                "bearer default_scopes must be a subset of grantable_scopes".into(),
            ));
        }
        if config.access_ttl.is_zero() || config.refresh_ttl < config.access_ttl {
            return Err(ConfigError::Invalid(
                "bearer ttls: access must be positive and refresh >= access".into(),
            ));
        }
        if config.refresh_family_lifetime < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "bearer refresh_family_lifetime must be at least one second".into(),
            ));
        }
        let keys = signing::KeySet::new(&config, hs_key)?;
        let handle_key = derive_handle_key(hs_key)?;
        let service = TokenService {
            inner: Arc::new(TokenInner {
                keys,
                config,
                store,
                handle_key,
            }),
        };
        // Fail at build time, not at the first request, if the key pair does not round-trip.
        let (probe, _) =
            service.sign("probe", 0, vec![], "access", None, Duration::from_secs(60))?;
        service.decode(&probe).map_err(|_| {
            ConfigError::Invalid("bearer key pair does not verify its own tokens".into())
        })?;
        Ok(service)
    }

    /// The settings.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// assert_eq!(tokens.config().access_ttl.as_secs(), 15 * 60);
    /// # Ok(()) });
    /// ```
    pub fn config(&self) -> &BearerConfig {
        &self.inner.config
    }

    /// Clamps requested scopes to the grantable set (the defaults when none were asked for).
    ///
    /// Unknown scopes are dropped silently, as in the original.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// let granted = tokens.clamp_scopes("me:read admin:all".split(' '));
    /// assert_eq!(granted, ["me:read"]); // `admin:all` is not grantable here
    /// # Ok(()) });
    /// ```
    pub fn clamp_scopes<'a>(&self, requested: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let requested: BTreeSet<&str> = requested.into_iter().filter(|s| !s.is_empty()).collect();
        let config = &self.inner.config;
        if requested.is_empty() {
            return config.default_scopes.iter().cloned().collect();
        }
        requested
            .into_iter()
            .filter(|s| config.grantable_scopes.contains(*s))
            .map(str::to_owned)
            .collect()
    }

    /// Signs a token; returns it with its `jti`.
    fn sign(
        &self,
        sub: &str,
        epoch: i64,
        scopes: Vec<String>,
        token_type: &str,
        fam: Option<String>,
        ttl: Duration,
    ) -> Result<(String, String), ConfigError> {
        let claims = self.claims(sub, epoch, scopes, token_type, fam, ttl);
        let jti = claims.jti.clone();
        self.encode(&claims).map(|token| (token, jti))
    }

    /// The claims of a new token.
    fn claims(
        &self,
        sub: &str,
        epoch: i64,
        scopes: Vec<String>,
        token_type: &str,
        fam: Option<String>,
        ttl: Duration,
    ) -> Claims {
        let now = now_secs().max(0) as u64;
        Claims {
            sub: sub.to_owned(),
            epoch,
            exp: now + ttl.as_secs(),
            iat: now,
            jti: random_token(),
            token_type: token_type.to_owned(),
            scopes,
            fam,
            iss: self.inner.config.issuer.clone(),
            aud: self.inner.config.audience.clone(),
            impersonated_by: None,
            impersonator_epoch: None,
            impersonated_superuser: false,
            tenant: None,
        }
    }

    fn encode(&self, claims: &Claims) -> Result<String, ConfigError> {
        match claims.token_type.as_str() {
            "refresh" => self.inner.keys.sign_refresh(claims),
            _ => self.inner.keys.sign(claims),
        }
    }

    /// An impersonation token (feature `admin`): an access token for `sub` that names the
    /// acting superuser and their epoch, lives `ttl`, and has no refresh token.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) fn impersonation_token(
        &self,
        (sub, epoch, scopes): (&str, i64, Vec<String>),
        (admin, admin_epoch): (&str, i64),
        (superuser, ttl): (bool, Duration),
        tenant: Option<String>,
    ) -> Result<String, AuthError> {
        let mut claims = self.claims(sub, epoch, scopes, "access", None, ttl);
        claims.tenant = tenant;
        claims.impersonated_by = Some(admin.to_owned());
        claims.impersonator_epoch = Some(admin_epoch);
        claims.impersonated_superuser = superuser;
        self.encode(&claims).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            AuthError::Internal
        })
    }

    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        self.inner.keys.verify(token)
    }

    /// Verifies an access token: signature, algorithm, expiry, required claims, type.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// # let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
    /// let claims = tokens.verify_access(&pair.access_token)?;
    /// assert_eq!(claims.sub, "1");
    /// assert!(tokens.verify_access(&pair.refresh_token).is_err()); // not an access token
    /// # Ok(()) });
    /// ```
    ///
    /// This checks the token alone (signature, expiry, type). The bearer transport also
    /// checks the user's epoch and the deny list of logged-out tokens: to accept a token
    /// outside the router (a WebSocket, a queue), authenticate its request with
    /// `auth.authenticate(..)` rather than calling this.
    pub fn verify_access(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = self.decode(token)?;
        if claims.token_type != "access" {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }
    /// Mints a pair in family `fam`; the refresh token lives `refresh_ttl` (the caller has
    /// capped it by the family's remaining lifetime), the access token no longer than it.
    fn mint(
        &self,
        sub: &str,
        epoch: i64,
        scopes: &[String],
        (fam, tenant): (&str, Option<&str>),
        refresh_ttl: Duration,
    ) -> Result<(TokenPair, String), AuthError> {
        let internal = |e: ConfigError| {
            tracing::error!(error = %e, "token signing failed");
            AuthError::Internal
        };
        let access_ttl = self.inner.config.access_ttl.min(refresh_ttl);
        let mut access = self.claims(sub, epoch, scopes.to_vec(), "access", None, access_ttl);
        access.tenant = tenant.map(str::to_owned);
        let access = self.encode(&access).map_err(internal)?;
        let fam = Some(fam.to_owned());
        let mut refresh = self.claims(sub, epoch, scopes.to_vec(), "refresh", fam, refresh_ttl);
        refresh.tenant = tenant.map(str::to_owned);
        let jti = refresh.jti.clone();
        let refresh = self.encode(&refresh).map_err(internal)?;
        let pair = TokenPair {
            access_token: access,
            token_type: "bearer",
            refresh_token: refresh,
            expires_in: access_ttl.as_secs(),
            refresh_expires_in: refresh_ttl.as_secs(),
        };
        Ok((pair, jti))
    }

    /// Checks a refresh token and its family (current token, absolute lifetime). Returns the
    /// claims; the caller checks the user and then calls [`TokenService::rotate`]. An
    /// already-rotated token presented again (reuse) revokes its family.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// # let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
    /// let claims = tokens.check_refresh(&pair.refresh_token).await?;
    /// let rotated = tokens.rotate(&claims, claims.epoch).await?;
    /// // The old refresh token is spent: presenting it again is reuse, and ends the family.
    /// assert!(tokens.check_refresh(&pair.refresh_token).await.is_err());
    /// assert!(tokens.check_refresh(&rotated.refresh_token).await.is_err());
    /// # Ok(()) });
    /// ```
    pub async fn check_refresh(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = self
            .inner
            .keys
            .verify_refresh(token)
            .map_err(|_| invalid_refresh())?;
        let Some(fam) = claims
            .fam
            .as_deref()
            .filter(|_| claims.token_type == "refresh")
        else {
            return Err(invalid_refresh());
        };
        let Some((record, _)) = self.load_family(fam, &claims.sub).await? else {
            return Err(invalid_refresh());
        };
        if record.jti != claims.jti {
            crate::audit::user_event("refresh_token_reuse", Refused, &claims.sub, BEARER, None);
            self.end_family(fam, &claims.sub).await?;
            return Err(invalid_refresh());
        }
        if now_secs() >= self.family_end(&record) {
            self.end_family(fam, &claims.sub).await?;
            return Err(invalid_refresh());
        }
        Ok(claims)
    }

    /// Rotates a checked refresh token: a new pair in the same family (scopes re-clamped),
    /// the refresh token living `min(refresh_ttl, what is left of the family's lifetime)`.
    /// Of two concurrent rotations of one token at most one succeeds, and the loser revokes
    /// the family (it is reuse).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let tokens = auth.tokens().unwrap();
    /// # let pair = tokens.issue("1", 0, vec!["me:read".into()]).await?;
    /// let claims = tokens.check_refresh(&pair.refresh_token).await?;
    /// let rotated = tokens.rotate(&claims, claims.epoch).await?;
    /// assert_ne!(rotated.refresh_token, pair.refresh_token);
    /// # Ok(()) });
    /// ```
    pub async fn rotate(&self, claims: &Claims, epoch: i64) -> Result<TokenPair, AuthError> {
        let config = &self.inner.config;
        let fam = claims.fam.as_deref().ok_or(AuthError::InvalidToken)?;
        let Some((record, old)) = self.load_family(fam, &claims.sub).await? else {
            return Err(invalid_refresh());
        };
        if record.jti != claims.jti {
            self.end_family(fam, &claims.sub).await?;
            return Err(invalid_refresh());
        }
        let now = now_secs();
        let left = self.family_end(&record) - now;
        if left <= 0 {
            self.end_family(fam, &claims.sub).await?;
            return Err(invalid_refresh());
        }
        let ttl = config.refresh_ttl.min(Duration::from_secs(left as u64));
        let scopes: Vec<String> = claims
            .scopes
            .iter()
            .filter(|s| config.grantable_scopes.contains(*s))
            .cloned()
            .collect();
        let tenant = claims.tenant.as_deref();
        let (pair, jti) = self.mint(&claims.sub, epoch, &scopes, (fam, tenant), ttl)?;
        let next = FamilyRecord {
            jti,
            rotated: now,
            scopes,
            ..record
        };
        let bytes = serde_json::to_vec(&next).map_err(|_| AuthError::Internal)?;
        if !self
            .inner
            .store
            .compare_and_set(&family_key(fam), &old, &bytes, Some(ttl))
            .await
            .map_err(store_fault)?
        {
            // Lost a race with a concurrent use of the same refresh token: that is reuse.
            crate::audit::user_event("refresh_token_reuse", Refused, &claims.sub, BEARER, None);
            self.end_family(fam, &claims.sub).await?;
            return Err(invalid_refresh());
        }
        Ok(pair)
    }
}
