//! Bearer transport settings: the key set, where the refresh token travels, the lifetimes
//! and the scopes.

use std::collections::BTreeSet;
use std::time::Duration;

use super::keys::{JwtKey, VerifyKey};

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
    /// The signing key: it signs every new access token (and verifies them). Refresh tokens
    /// are signed by the derived HS256 key whatever this is.
    pub key: JwtKey,
    /// Keys that only verify: retired signing keys, kept (public half only) until the
    /// tokens they signed have expired, so a rotation signs nobody out. Each token's `kid`
    /// picks its key.
    pub verify_only: Vec<VerifyKey>,
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
            verify_only: Vec::new(),
            issuer: None,
            audience: None,
        }
    }
}
