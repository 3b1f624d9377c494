//! Bearer tokens: access and refresh JWTs, with rotating refresh-token families.
//!
//! - The algorithm is pinned per key (HS256 by default, with a key derived from the secret;
//!   ES256 and EdDSA key pairs accepted with a `kid`); `none` and algorithm confusion are
//!   impossible because verification accepts exactly one algorithm.
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
//!   valid until it expires (`access_ttl`), since access tokens are checked without a store
//!   read. To end access tokens at once, bump the epoch (`CrudAuth::bump_epoch`), as
//!   `/logout-all` does.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock::now_secs;
use crate::error::{AuthError, ConfigError};
use crate::keys::{hmac_hex, random_token};
use crate::store::{Store, StoreError};

/// The signing key of bearer tokens.
///
/// ```
/// let key = crudauth::JwtKey::Hs256Derived;
/// assert!(matches!(key, crudauth::JwtKey::Hs256Derived));
/// ```
#[derive(Clone, Default)]
pub enum JwtKey {
    /// HS256 with a key derived from the secret key (default).
    #[default]
    Hs256Derived,
    /// ES256 (P-256) with PEM keys.
    Es256 {
        /// Key id placed in the header.
        kid: String,
        /// PKCS#8 private key, PEM.
        private_pem: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// EdDSA (Ed25519) with PEM keys.
    EdDsa {
        /// Key id placed in the header.
        kid: String,
        /// PKCS#8 private key, PEM.
        private_pem: String,
        /// Public key, PEM.
        public_pem: String,
    },
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtKey::Hs256Derived => f.write_str("Hs256Derived"),
            JwtKey::Es256 { kid, .. } => write!(f, "Es256 {{ kid: {kid:?}, .. }}"),
            JwtKey::EdDsa { kid, .. } => write!(f, "EdDsa {{ kid: {kid:?}, .. }}"),
        }
    }
}

/// Where `/token` and `/refresh` carry the refresh token.
///
/// The mode is strict: in `Body` mode `/refresh` reads the JSON body only and never a
/// cookie (a sibling subdomain could plant one); in `Cookie` mode it reads the cookie only.
///
/// ```
/// assert_eq!(crudauth::RefreshMode::default(), crudauth::RefreshMode::Body);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefreshMode {
    /// In the JSON body (`refresh_token`), as the reference transcript.
    #[default]
    Body,
    /// In an HttpOnly cookie `refresh_token` (cleared by `/logout`). `/token` then refuses
    /// cross-site requests (`Sec-Fetch-Site: cross-site`), like `/login`.
    Cookie,
}

/// Bearer transport settings.
///
/// ```
/// use std::time::Duration;
/// let c = crudauth::BearerConfig {
///     refresh_family_lifetime: Duration::from_secs(7 * 24 * 3600), // sign in again weekly
///     ..crudauth::BearerConfig::default()
/// };
/// assert_eq!(c.access_ttl.as_secs(), 900);
/// assert_eq!(crudauth::BearerConfig::default().refresh_family_lifetime.as_secs(), 30 * 24 * 3600);
/// ```
#[derive(Clone, Debug)]
pub struct BearerConfig {
    /// Access token lifetime (default 15 minutes).
    pub access_ttl: Duration,
    /// Refresh token lifetime (default 30 days): how long a refresh token stays usable
    /// without being used. Each rotation mints a token with this lifetime, capped by what is
    /// left of its family's [`refresh_family_lifetime`](Self::refresh_family_lifetime).
    pub refresh_ttl: Duration,
    /// The absolute lifetime of a refresh-token family, counted from the sign-in (`/token`)
    /// that started it (default 30 days; at least one second). Rotations never extend it:
    /// once it is over the client must sign in again.
    pub refresh_family_lifetime: Duration,
    /// Scopes granted when the client asks for none.
    pub default_scopes: BTreeSet<String>,
    /// The ceiling: requested scopes are clamped to these (at issue and at refresh).
    pub grantable_scopes: BTreeSet<String>,
    /// Where the refresh token travels.
    pub refresh: RefreshMode,
    /// The signing key.
    pub key: JwtKey,
    /// `iss` to set and require, if any.
    pub issuer: Option<String>,
    /// `aud` to set and require, if any.
    pub audience: Option<String>,
}

impl Default for BearerConfig {
    fn default() -> Self {
        BearerConfig {
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_family_lifetime: Duration::from_secs(30 * 24 * 3600),
            default_scopes: BTreeSet::new(),
            grantable_scopes: BTreeSet::new(),
            refresh: RefreshMode::Body,
            key: JwtKey::Hs256Derived,
            issuer: None,
            audience: None,
        }
    }
}

/// The claims of crudauth's tokens.
///
/// ```no_run
/// # fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
/// let claims: crudauth::tokens::Claims = tokens.verify_access(token)?;
/// println!("user {} with scopes {:?}", claims.sub, claims.scopes);
/// # Ok(()) }
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
}

/// An issued pair. Serialised, it is the body of `/token` in [`RefreshMode::Body`].
///
/// ```no_run
/// # async fn f(tokens: &crudauth::TokenService) -> Result<(), crudauth::AuthError> {
/// let pair: crudauth::TokenPair = tokens.issue("42", 0, vec![]).await?;
/// assert_eq!(pair.token_type, "bearer");
/// assert!(pair.refresh_expires_in >= pair.expires_in);
/// # Ok(()) }
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

/// A refresh-token family as its owner sees it: no token, no secret.
///
/// ```no_run
/// # async fn f(tokens: &crudauth::TokenService) -> Result<(), crudauth::AuthError> {
/// for family in tokens.families("42").await? {
///     println!("{} signed in at {}, scopes {:?}", family.id, family.created, family.scopes);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenFamily {
    /// The public handle of the family (an HMAC of its id), for
    /// [`TokenService::revoke_family_by_id`] and `DELETE /tokens/{id}`.
    pub id: String,
    /// When the family was started (unix seconds): the sign-in.
    pub created: i64,
    /// When its current refresh token was minted (unix seconds; `created` if never rotated).
    pub rotated: i64,
    /// When the family ends at the latest (unix seconds): its absolute lifetime.
    pub expires: i64,
    /// The scopes of its current tokens.
    pub scopes: Vec<String>,
}

/// The stored record of a refresh family.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct FamilyRecord {
    /// The `jti` of the family's one current refresh token.
    jti: String,
    /// The owner (textual user id; stored as `user_id`).
    #[serde(rename = "uid")]
    user_id: String,
    /// Unix seconds of the sign-in that started the family.
    created: i64,
    /// Unix seconds of the last rotation.
    rotated: i64,
    /// The scopes of the current tokens.
    scopes: Vec<String>,
}

/// Mints and verifies tokens, and keeps the refresh families. Reached as `auth.tokens()`.
///
/// ```no_run
/// # async fn f<U: crudauth::UserRecord>(auth: crudauth::CrudAuth<U>) -> Result<(), crudauth::AuthError> {
/// let tokens: &crudauth::TokenService = auth.tokens().expect("bearer configured");
/// let pair = tokens.issue("42", 0, vec!["me:read".into()]).await?;
/// let claims = tokens.verify_access(&pair.access_token)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenService {
    inner: Arc<TokenInner>,
}

struct TokenInner {
    header: Header,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    config: BearerConfig,
    store: Arc<dyn Store>,
    /// Key of the public family handles, derived from the JWT key (never signs a token).
    handle_key: [u8; 32],
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("alg", &self.inner.header.alg)
            .finish_non_exhaustive()
    }
}

fn family_key(fam: &str) -> String {
    format!("refresh:{fam}")
}

/// The per-user index of refresh families (members: family ids).
fn index_key(user_id: &str) -> String {
    format!("refresh-families:{user_id}")
}

fn invalid_refresh() -> AuthError {
    AuthError::Unauthorized("Invalid or expired refresh token")
}

fn store_fault(e: StoreError) -> AuthError {
    crate::store::report_fault("refresh-family store", &e);
    AuthError::Unavailable
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
        let bad_key =
            |e: jsonwebtoken::errors::Error| ConfigError::Invalid(format!("bearer key: {e}"));
        let (alg, kid, encoding, decoding) = match &config.key {
            JwtKey::Hs256Derived => (
                Algorithm::HS256,
                None,
                EncodingKey::from_secret(hs_key),
                DecodingKey::from_secret(hs_key),
            ),
            JwtKey::Es256 {
                kid,
                private_pem,
                public_pem,
            } => (
                Algorithm::ES256,
                Some(kid.clone()),
                EncodingKey::from_ec_pem(private_pem.as_bytes()).map_err(bad_key)?,
                DecodingKey::from_ec_pem(public_pem.as_bytes()).map_err(bad_key)?,
            ),
            JwtKey::EdDsa {
                kid,
                private_pem,
                public_pem,
            } => (
                Algorithm::EdDSA,
                Some(kid.clone()),
                EncodingKey::from_ed_pem(private_pem.as_bytes()).map_err(bad_key)?,
                DecodingKey::from_ed_pem(public_pem.as_bytes()).map_err(bad_key)?,
            ),
        };
        let mut header = Header::new(alg);
        header.kid = kid;
        let mut validation = Validation::new(alg);
        validation.leeway = 5;
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
        let handle_key = derive_handle_key(hs_key)?;
        let service = TokenService {
            inner: Arc::new(TokenInner {
                header,
                encoding,
                decoding,
                validation,
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
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let ttl = tokens.config().access_ttl;
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &BearerConfig {
        &self.inner.config
    }

    /// Clamps requested scopes to the grantable set (the defaults when none were asked for).
    ///
    /// Unknown scopes are dropped silently, as in the original.
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let granted = tokens.clamp_scopes("me:read admin:all".split(' '));
    /// # Ok(()) }
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
        let now = now_secs().max(0) as u64;
        let jti = random_token();
        let claims = Claims {
            sub: sub.to_owned(),
            epoch,
            exp: now + ttl.as_secs(),
            iat: now,
            jti: jti.clone(),
            token_type: token_type.to_owned(),
            scopes,
            fam,
            iss: self.inner.config.issuer.clone(),
            aud: self.inner.config.audience.clone(),
        };
        jsonwebtoken::encode(&self.inner.header, &claims, &self.inner.encoding)
            .map(|token| (token, jti))
            .map_err(|e| ConfigError::Invalid(format!("signing failed: {e}")))
    }

    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > 8192 {
            return Err(AuthError::InvalidToken);
        }
        jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::InvalidToken)
    }

    /// Verifies an access token: signature, algorithm, expiry, required claims, type.
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let claims = tokens.verify_access(token)?;
    /// # Ok(()) }
    /// ```
    pub fn verify_access(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = self.decode(token)?;
        if claims.token_type != "access" {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// The public handle of a family id.
    fn family_id(&self, fam: &str) -> String {
        hmac_hex(&self.inner.handle_key, fam.as_bytes())
    }

    /// Unix seconds at which a family ends at the latest.
    fn family_end(&self, record: &FamilyRecord) -> i64 {
        record
            .created
            .saturating_add(secs(self.inner.config.refresh_family_lifetime))
    }

    /// Mints a pair in family `fam`; the refresh token lives `refresh_ttl` (the caller has
    /// capped it by the family's remaining lifetime), the access token no longer than it.
    fn mint(
        &self,
        sub: &str,
        epoch: i64,
        scopes: &[String],
        fam: &str,
        refresh_ttl: Duration,
    ) -> Result<(TokenPair, String), AuthError> {
        let internal = |e: ConfigError| {
            tracing::error!(error = %e, "token signing failed");
            AuthError::Internal
        };
        let access_ttl = self.inner.config.access_ttl.min(refresh_ttl);
        let (access, _) = self
            .sign(sub, epoch, scopes.to_vec(), "access", None, access_ttl)
            .map_err(internal)?;
        let (refresh, jti) = self
            .sign(
                sub,
                epoch,
                scopes.to_vec(),
                "refresh",
                Some(fam.to_owned()),
                refresh_ttl,
            )
            .map_err(internal)?;
        let pair = TokenPair {
            access_token: access,
            token_type: "bearer",
            refresh_token: refresh,
            expires_in: access_ttl.as_secs(),
            refresh_expires_in: refresh_ttl.as_secs(),
        };
        Ok((pair, jti))
    }

    /// Mints an access + refresh pair starting a new refresh family (listed in the user's
    /// index, with the absolute lifetime counted from now).
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let pair = tokens.issue("42", 0, vec!["me:read".into()]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn issue(
        &self,
        sub: &str,
        epoch: i64,
        scopes: Vec<String>,
    ) -> Result<TokenPair, AuthError> {
        let config = &self.inner.config;
        let store = &self.inner.store;
        let fam = random_token();
        let now = now_secs();
        // Indexed first: a family that exists is always findable by "sign out everywhere"
        // (an index entry whose record never got written is dropped when listed).
        store
            .index_add(&index_key(sub), &fam, config.refresh_family_lifetime)
            .await
            .map_err(store_fault)?;
        let ttl = config.refresh_ttl.min(config.refresh_family_lifetime);
        let (pair, jti) = self.mint(sub, epoch, &scopes, &fam, ttl)?;
        let record = FamilyRecord {
            jti,
            user_id: sub.to_owned(),
            created: now,
            rotated: now,
            scopes,
        };
        let bytes = serde_json::to_vec(&record).map_err(|_| AuthError::Internal)?;
        if !store
            .set_if_absent(&family_key(&fam), &bytes, Some(ttl))
            .await
            .map_err(store_fault)?
        {
            // A 256-bit collision: never adopt another family.
            return Err(AuthError::Internal);
        }
        Ok(pair)
    }

    /// Ends a family: its record and its index entry.
    async fn end_family(&self, fam: &str, user_id: &str) -> Result<bool, AuthError> {
        let store = &self.inner.store;
        let removed = store.delete(&family_key(fam)).await.map_err(store_fault)?;
        store
            .index_remove(&index_key(user_id), fam)
            .await
            .map_err(store_fault)?;
        Ok(removed)
    }

    /// The family record behind a refresh token's claims, with its raw bytes; `None` when
    /// the family is gone or unreadable (an unreadable record is dropped).
    async fn load_family(
        &self,
        fam: &str,
        user_id: &str,
    ) -> Result<Option<(FamilyRecord, Vec<u8>)>, AuthError> {
        let Some(bytes) = self
            .inner
            .store
            .get(&family_key(fam))
            .await
            .map_err(store_fault)?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<FamilyRecord>(&bytes) {
            Ok(record) if record.user_id == user_id => Ok(Some((record, bytes))),
            // Signed by us but naming another user's family: never touch that family.
            Ok(_) => Ok(None),
            Err(_) => {
                tracing::warn!("unreadable refresh-family record dropped");
                self.end_family(fam, user_id).await?;
                Ok(None)
            }
        }
    }

    /// Checks a refresh token and its family (current token, absolute lifetime). Returns the
    /// claims; the caller checks the user and then calls [`TokenService::rotate`]. An
    /// already-rotated token presented again (reuse) revokes its family.
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let claims = tokens.check_refresh(token).await?;
    /// let pair = tokens.rotate(&claims, claims.epoch).await?;
    /// # Ok(()) }
    /// ```
    pub async fn check_refresh(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = self.decode(token).map_err(|_| invalid_refresh())?;
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
            tracing::warn!("refresh token reuse detected; revoking its family");
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
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let claims = tokens.check_refresh(token).await?;
    /// let pair = tokens.rotate(&claims, claims.epoch).await?;
    /// # Ok(()) }
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
        let (pair, jti) = self.mint(&claims.sub, epoch, &scopes, fam, ttl)?;
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
            self.end_family(fam, &claims.sub).await?;
            return Err(invalid_refresh());
        }
        Ok(pair)
    }

    /// Revokes the family of a refresh token's claims.
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let claims = tokens.check_refresh(token).await?;
    /// tokens.revoke_family(&claims).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_family(&self, claims: &Claims) -> Result<(), AuthError> {
        if let Some(fam) = &claims.fam {
            self.end_family(fam, &claims.sub).await?;
        }
        Ok(())
    }

    /// Revokes the family of a presented refresh token (a logout): the token must carry a
    /// valid signature, be unexpired and be a refresh token; it need not be the family's
    /// current one. Returns its claims when a live family was ended, `None` otherwise (an
    /// invalid token, or a family already gone).
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, refresh_token: &str) -> Result<(), crudauth::AuthError> {
    /// if let Some(claims) = tokens.revoke_refresh_token(refresh_token).await? {
    ///     println!("signed out user {}", claims.sub);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn revoke_refresh_token(&self, token: &str) -> Result<Option<Claims>, AuthError> {
        let Ok(claims) = self.decode(token) else {
            return Ok(None);
        };
        let Some(fam) = claims
            .fam
            .as_deref()
            .filter(|_| claims.token_type == "refresh")
        else {
            return Ok(None);
        };
        if self.load_family(fam, &claims.sub).await?.is_none() {
            return Ok(None);
        }
        let ended = self.end_family(fam, &claims.sub).await?;
        Ok(ended.then_some(claims))
    }

    /// A user's live refresh families, most recently rotated first. Entries of the index
    /// whose family is gone are dropped on the way.
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService) -> Result<(), crudauth::AuthError> {
    /// let families = tokens.families("42").await?;
    /// println!("{} signed-in token clients", families.len());
    /// # Ok(()) }
    /// ```
    pub async fn families(&self, user_id: &str) -> Result<Vec<TokenFamily>, AuthError> {
        let store = &self.inner.store;
        let now = now_secs();
        let mut out = Vec::new();
        for fam in store
            .index_members(&index_key(user_id))
            .await
            .map_err(store_fault)?
        {
            match self.load_family(&fam, user_id).await? {
                Some((record, _)) if now < self.family_end(&record) => out.push(TokenFamily {
                    id: self.family_id(&fam),
                    created: record.created,
                    rotated: record.rotated,
                    expires: self.family_end(&record),
                    scopes: record.scopes,
                }),
                Some(_) => {
                    self.end_family(&fam, user_id).await?;
                }
                None => {
                    store
                        .index_remove(&index_key(user_id), &fam)
                        .await
                        .map_err(store_fault)?;
                }
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse((f.rotated, f.created)));
        Ok(out)
    }

    /// Revokes one of the user's families by its public handle ([`TokenFamily::id`]).
    /// `false` when the user has no live family with that handle (unknown, gone, or
    /// another user's: they are indistinguishable).
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService) -> Result<(), crudauth::AuthError> {
    /// let found = tokens.revoke_family_by_id("42", "a-family-handle").await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_family_by_id(&self, user_id: &str, id: &str) -> Result<bool, AuthError> {
        let members = self
            .inner
            .store
            .index_members(&index_key(user_id))
            .await
            .map_err(store_fault)?;
        let Some(fam) = members.into_iter().find(|fam| self.family_id(fam) == id) else {
            return Ok(false);
        };
        self.end_family(&fam, user_id).await
    }

    /// Revokes every refresh family of a user ("sign out everywhere"); returns how many
    /// ended. Access tokens already minted stay valid until they expire: bump the user's
    /// epoch (`CrudAuth::bump_epoch`) to end them at once, as `/logout-all` does.
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService) -> Result<(), crudauth::AuthError> {
    /// let ended = tokens.revoke_all_families("42").await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_all_families(&self, user_id: &str) -> Result<usize, AuthError> {
        let members = self
            .inner
            .store
            .index_members(&index_key(user_id))
            .await
            .map_err(store_fault)?;
        let mut ended = 0;
        for fam in members {
            if self.end_family(&fam, user_id).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn service(config: BearerConfig) -> (TokenService, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let tokens = TokenService::new(config, &[9u8; 32], store.clone()).expect("valid config");
        (tokens, store)
    }

    fn claims_of(tokens: &TokenService, token: &str) -> Claims {
        tokens.decode(token).expect("a valid token")
    }

    #[tokio::test]
    async fn a_rotation_never_extends_past_the_family_lifetime() {
        let (tokens, store) = service(BearerConfig {
            access_ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(1000),
            refresh_family_lifetime: Duration::from_secs(100),
            ..BearerConfig::default()
        });
        let pair = tokens.issue("7", 0, vec![]).await.unwrap();
        let first = claims_of(&tokens, &pair.refresh_token);
        assert_eq!(first.exp - first.iat, 100, "capped by the family lifetime");
        assert_eq!(pair.refresh_expires_in, 100);

        // Moves the family's start back by `secs` and returns its record.
        let fam = first.fam.clone().unwrap();
        let key = family_key(&fam);
        let age = |secs: i64| {
            let (store, key) = (store.clone(), key.clone());
            async move {
                let mut record: FamilyRecord =
                    serde_json::from_slice(&store.get(&key).await.unwrap().unwrap()).unwrap();
                record.created -= secs;
                store
                    .set(&key, &serde_json::to_vec(&record).unwrap(), None)
                    .await
                    .unwrap();
                record
            }
        };
        // Pretend the family started 95 seconds ago: 5 seconds are left.
        let record = age(95).await;
        let checked = tokens.check_refresh(&pair.refresh_token).await.unwrap();
        let rotated = tokens.rotate(&checked, 0).await.unwrap();
        let second = claims_of(&tokens, &rotated.refresh_token);
        assert!(second.exp as i64 <= record.created + 100, "not re-armed");
        assert!(rotated.expires_in <= 5, "the access token is capped too");

        // Past the end: refused, and the family is gone.
        age(10).await;
        assert!(tokens.check_refresh(&rotated.refresh_token).await.is_err());
        assert!(store.get(&key).await.unwrap().is_none());
        assert!(tokens.families("7").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn families_are_indexed_listed_and_revoked_per_user() {
        let (tokens, _) = service(BearerConfig::default());
        let a = tokens.issue("7", 0, vec![]).await.unwrap();
        let b = tokens.issue("7", 0, vec![]).await.unwrap();
        let other = tokens.issue("8", 0, vec![]).await.unwrap();
        let listed = tokens.families("7").await.unwrap();
        assert_eq!(listed.len(), 2);
        let others = tokens.families("8").await.unwrap();
        assert!(
            !tokens
                .revoke_family_by_id("7", &others[0].id)
                .await
                .unwrap(),
            "another user's family is not found"
        );
        assert!(tokens.check_refresh(&other.refresh_token).await.is_ok());
        assert!(
            tokens
                .revoke_family_by_id("7", &listed[0].id)
                .await
                .unwrap()
        );
        assert_eq!(tokens.families("7").await.unwrap().len(), 1);
        assert_eq!(tokens.revoke_all_families("7").await.unwrap(), 1);
        assert!(tokens.check_refresh(&a.refresh_token).await.is_err());
        assert!(tokens.check_refresh(&b.refresh_token).await.is_err());
        assert!(tokens.check_refresh(&other.refresh_token).await.is_ok());
    }

    #[tokio::test]
    async fn a_presented_refresh_token_revokes_its_family_once() {
        let (tokens, _) = service(BearerConfig::default());
        let pair = tokens.issue("7", 0, vec![]).await.unwrap();
        assert!(
            tokens
                .revoke_refresh_token(&pair.access_token)
                .await
                .unwrap()
                .is_none(),
            "an access token names no family"
        );
        assert!(
            tokens
                .revoke_refresh_token(&pair.refresh_token)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            tokens
                .revoke_refresh_token(&pair.refresh_token)
                .await
                .unwrap()
                .is_none()
        );
        assert!(tokens.check_refresh(&pair.refresh_token).await.is_err());
    }

    #[test]
    fn a_token_without_iat_is_rejected_although_jsonwebtoken_does_not_check_it() {
        let (tokens, _) = service(BearerConfig::default());
        let now = now_secs() as u64;
        let sign = |claims: &serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                claims,
                &EncodingKey::from_secret(&[9u8; 32]),
            )
            .unwrap()
        };
        let mut claims = serde_json::json!({
            "sub": "7", "ver": 0, "exp": now + 60, "iat": now, "jti": "x",
            "token_type": "access", "scopes": []
        });
        assert!(tokens.verify_access(&sign(&claims)).is_ok(), "the control");
        claims.as_object_mut().unwrap().remove("iat");
        assert!(tokens.verify_access(&sign(&claims)).is_err());
    }

    #[test]
    fn a_family_lifetime_under_a_second_is_refused() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let config = BearerConfig {
            refresh_family_lifetime: Duration::from_millis(500),
            ..BearerConfig::default()
        };
        assert!(TokenService::new(config, &[9u8; 32], store).is_err());
    }
}
