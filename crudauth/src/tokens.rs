//! Bearer tokens: access and refresh JWTs, with rotating refresh-token families.
//!
//! - The algorithm is pinned per key (HS256 by default, with a key derived from the secret;
//!   ES256 and EdDSA key pairs accepted with a `kid`); `none` and algorithm confusion are
//!   impossible because verification accepts exactly one algorithm.
//! - `exp`, `iat` and `sub` are required and typed: a string `exp` is a rejected token.
//! - Every token carries the user's `token_version` (`ver`), checked on every request.
//! - Refresh tokens rotate on every use. Each belongs to a family whose current `jti` lives
//!   in the store; presenting an older one (reuse) revokes the whole family.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, ConfigError};
use crate::keys::random_token;
use crate::session::now_secs;
use crate::store::Store;

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
/// ```
/// assert_eq!(crudauth::RefreshMode::default(), crudauth::RefreshMode::Body);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefreshMode {
    /// In the JSON body (`refresh_token`), as the reference transcript.
    #[default]
    Body,
    /// In an HttpOnly cookie `refresh_token`.
    Cookie,
}

/// Bearer transport settings.
///
/// ```
/// let c = crudauth::BearerConfig::default();
/// assert_eq!(c.access_ttl.as_secs(), 900);
/// ```
#[derive(Clone, Debug)]
pub struct BearerConfig {
    /// Access token lifetime (default 15 minutes).
    pub access_ttl: Duration,
    /// Refresh token lifetime (default 30 days).
    pub refresh_ttl: Duration,
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
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The user id (textual).
    pub sub: String,
    /// The user's `token_version` at issue.
    pub ver: i64,
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

/// An issued pair.
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
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Mints and verifies tokens.
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
        let service = TokenService {
            inner: Arc::new(TokenInner {
                header,
                encoding,
                decoding,
                validation,
                config,
                store,
            }),
        };
        // Fail at build time, not at the first request, if the key pair does not round-trip.
        let probe = service.sign("probe", 0, vec![], "access", None, Duration::from_secs(60))?;
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

    fn sign(
        &self,
        sub: &str,
        ver: i64,
        scopes: Vec<String>,
        token_type: &str,
        fam: Option<String>,
        ttl: Duration,
    ) -> Result<String, ConfigError> {
        let now = now_secs().max(0) as u64;
        let claims = Claims {
            sub: sub.to_owned(),
            ver,
            exp: now + ttl.as_secs(),
            iat: now,
            jti: random_token(),
            token_type: token_type.to_owned(),
            scopes,
            fam,
            iss: self.inner.config.issuer.clone(),
            aud: self.inner.config.audience.clone(),
        };
        jsonwebtoken::encode(&self.inner.header, &claims, &self.inner.encoding)
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

    /// Mints an access + refresh pair starting a new refresh family.
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let pair = tokens.issue("42", 0, vec!["me:read".into()]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn issue(
        &self,
        sub: &str,
        ver: i64,
        scopes: Vec<String>,
    ) -> Result<TokenPair, AuthError> {
        let fam = random_token();
        self.issue_in_family(sub, ver, scopes, fam, None).await
    }

    async fn issue_in_family(
        &self,
        sub: &str,
        ver: i64,
        scopes: Vec<String>,
        fam: String,
        previous_jti: Option<&str>,
    ) -> Result<TokenPair, AuthError> {
        let config = &self.inner.config;
        let internal = |e: ConfigError| {
            tracing::error!(error = %e, "token signing failed");
            AuthError::Internal
        };
        let access = self
            .sign(sub, ver, scopes.clone(), "access", None, config.access_ttl)
            .map_err(internal)?;
        let refresh = self
            .sign(
                sub,
                ver,
                scopes,
                "refresh",
                Some(fam.clone()),
                config.refresh_ttl,
            )
            .map_err(internal)?;
        let jti = self.decode(&refresh).map_err(|_| AuthError::Internal)?.jti;
        let store = &self.inner.store;
        let fault = |e: crate::store::StoreError| {
            crate::store::report_fault("refresh-family store", &e);
            AuthError::Unavailable
        };
        let key = family_key(&fam);
        let recorded = match previous_jti {
            None => store
                .set_if_absent(&key, jti.as_bytes(), Some(config.refresh_ttl))
                .await
                .map_err(fault)?,
            Some(prev) => store
                .compare_and_set(
                    &key,
                    prev.as_bytes(),
                    jti.as_bytes(),
                    Some(config.refresh_ttl),
                )
                .await
                .map_err(fault)?,
        };
        if !recorded {
            // Lost a race with a concurrent use of the same refresh token: that is reuse.
            store.delete(&key).await.map_err(fault)?;
            return Err(AuthError::Unauthorized("Invalid or expired refresh token"));
        }
        Ok(TokenPair {
            access_token: access,
            token_type: "bearer",
            refresh_token: refresh,
            expires_in: config.access_ttl.as_secs(),
        })
    }

    /// Checks a refresh token and its family. Returns the claims; the caller checks the user
    /// and then calls [`TokenService::rotate`].
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let claims = tokens.check_refresh(token).await?;
    /// let pair = tokens.rotate(&claims, claims.ver).await?;
    /// # Ok(()) }
    /// ```
    pub async fn check_refresh(&self, token: &str) -> Result<Claims, AuthError> {
        let invalid = AuthError::Unauthorized("Invalid or expired refresh token");
        let claims = self
            .decode(token)
            .map_err(|_| AuthError::Unauthorized("Invalid or expired refresh token"))?;
        let Some(fam) = claims
            .fam
            .as_deref()
            .filter(|_| claims.token_type == "refresh")
        else {
            return Err(invalid);
        };
        let key = family_key(fam);
        let current = self.inner.store.get(&key).await.map_err(|e| {
            crate::store::report_fault("refresh-family store", &e);
            AuthError::Unavailable
        })?;
        match current {
            Some(jti) if jti == claims.jti.as_bytes() => Ok(claims),
            Some(_) => {
                // An already-rotated token presented again: revoke the family.
                tracing::warn!("refresh token reuse detected; revoking its family");
                self.inner
                    .store
                    .delete(&key)
                    .await
                    .map_err(|_| AuthError::Unavailable)?;
                Err(invalid)
            }
            None => Err(invalid),
        }
    }

    /// Rotates a checked refresh token: a new pair in the same family (scopes re-clamped).
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let claims = tokens.check_refresh(token).await?;
    /// let pair = tokens.rotate(&claims, claims.ver).await?;
    /// # Ok(()) }
    /// ```
    pub async fn rotate(&self, claims: &Claims, ver: i64) -> Result<TokenPair, AuthError> {
        let scopes = claims
            .scopes
            .iter()
            .filter(|s| self.inner.config.grantable_scopes.contains(*s))
            .cloned()
            .collect();
        let fam = claims.fam.clone().ok_or(AuthError::InvalidToken)?;
        self.issue_in_family(&claims.sub, ver, scopes, fam, Some(&claims.jti))
            .await
    }

    /// Revokes a refresh family (logout of a bearer client).
    ///
    /// ```no_run
    /// # async fn f(tokens: &crudauth::TokenService, token: &str) -> Result<(), crudauth::AuthError> {
    /// let claims = tokens.check_refresh(token).await?;
    /// tokens.revoke_family(&claims).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_family(&self, claims: &Claims) -> Result<(), AuthError> {
        if let Some(fam) = &claims.fam {
            self.inner
                .store
                .delete(&family_key(fam))
                .await
                .map_err(|_| AuthError::Unavailable)?;
        }
        Ok(())
    }
}
