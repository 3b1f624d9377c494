//! OpenID Connect providers (any issuer by discovery; the Google and Microsoft presets), on
//! the `openidconnect` crate: the ID token's signature is checked against the issuer's JWKS
//! (asymmetric algorithms only, so a token signed with the client secret is refused) with its
//! `iss`, `aud`, `azp`, `exp`, `iat` and `nonce`.
//!
//! Discovery happens on first use (and again after a failure, at most every few seconds).
//! The JWKS is cached and fetched again when a token names a key it does not hold, at most
//! once a minute, so a provider's key rotation is followed and a stream of forged `kid`s
//! cannot make us hammer the provider.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreGenderClaim, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IdToken, IdTokenClaims, IdTokenVerifier, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use super::provider::{
    AuthorizeRequest, CodeExchange, OAuthIdentity, OAuthProvider, ProviderError, allowed_endpoint,
    capped, get_json, unavailable,
};

/// How long after a failed discovery the next request fails fast instead of asking again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// The least time between two JWKS fetches caused by unknown `kid`s.
pub(crate) const JWKS_REFETCH: Duration = Duration::from_secs(60);
/// How far in the future an `iat` may be (clock skew), and how old.
const IAT_SKEW: i64 = 120;
const IAT_MAX_AGE: i64 = 600;

/// Which issuer rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// The document's `issuer` equals the configured one; `email_verified` must be true.
    Generic,
    /// Microsoft's identity platform: the `common` / `organizations` endpoints publish the
    /// issuer template `.../{tenantid}/v2.0`, checked per token against its `tid`; the
    /// address counts as verified only on `xms_edov` (domain owner verified).
    Microsoft,
}

/// The claims beyond the standard ones that Microsoft adds.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xms_edov: Option<serde_json::Value>,
}
impl AdditionalClaims for ExtraClaims {}

type OidcIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcClaims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;

/// The signature algorithms an ID token may use: asymmetric only.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

enum IssuerCheck {
    Exact,
    /// `{tenantid}` in the template is the token's `tid`.
    Template(String),
}

struct Discovered {
    metadata: CoreProviderMetadata,
    issuer: IssuerCheck,
    auth_type: AuthType,
}

/// One OpenID Connect provider.
pub(crate) struct OidcProvider {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    flavor: Flavor,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
    jwks: std::sync::RwLock<Option<CoreJsonWebKeySet>>,
    last_failure: Mutex<Option<Instant>>,
    last_jwks_fetch: Mutex<Option<Instant>>,
}

impl OidcProvider {
    pub(crate) fn new(
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        scopes: Vec<String>,
        flavor: Flavor,
        http: reqwest::Client,
    ) -> Self {
        OidcProvider {
            issuer,
            client_id,
            client_secret,
            scopes,
            flavor,
            http,
            discovered: RwLock::new(None),
            jwks: std::sync::RwLock::new(None),
            last_failure: Mutex::new(None),
            last_jwks_fetch: Mutex::new(None),
        }
    }

    /// The discovery document (fetched once, checked), and the JWKS with it.
    async fn discovered(&self) -> Result<Arc<Discovered>, ProviderError> {
        if let Some(d) = self.discovered.read().await.as_ref() {
            return Ok(d.clone());
        }
        let mut slot = self.discovered.write().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        if let Ok(last) = self.last_failure.lock()
            && last.is_some_and(|at| at.elapsed() < DISCOVERY_RETRY)
        {
            return Err(ProviderError::Unavailable(
                "discovery failed a moment ago".into(),
            ));
        }
        match self.discover().await {
            Ok(d) => {
                let d = Arc::new(d);
                *slot = Some(d.clone());
                Ok(d)
            }
            Err(e) => {
                if let Ok(mut last) = self.last_failure.lock() {
                    *last = Some(Instant::now());
                }
                Err(e)
            }
        }
    }

    async fn discover(&self) -> Result<Discovered, ProviderError> {
        let base = self.issuer.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let metadata: CoreProviderMetadata =
            get_json(&self.http, &url, None, "application/json").await?;
        let published = metadata.issuer().as_str().trim_end_matches('/');
        let issuer = if published == base {
            IssuerCheck::Exact
        } else if self.flavor == Flavor::Microsoft
            && published.contains("{tenantid}")
            && same_origin(published, base)
        {
            IssuerCheck::Template(published.to_owned())
        } else if self.flavor == Flavor::Microsoft
            && same_origin(published, base)
            && !published.contains('{')
        {
            // A tenant named by domain publishes its GUID form: that issuer, exactly.
            IssuerCheck::Exact
        } else {
            return Err(ProviderError::Rejected(format!(
                "discovery issuer {published:?} is not the configured {base:?}"
            )));
        };
        let mut endpoints = vec![
            metadata.authorization_endpoint().as_str(),
            metadata.jwks_uri().as_str(),
        ];
        let token = metadata
            .token_endpoint()
            .ok_or_else(|| ProviderError::Rejected("discovery without token_endpoint".into()))?;
        endpoints.push(token.as_str());
        if let Some(info) = metadata.userinfo_endpoint() {
            endpoints.push(info.as_str());
        }
        if let Some(bad) = endpoints.into_iter().find(|e| !allowed_endpoint(e)) {
            return Err(ProviderError::Rejected(format!(
                "endpoint {bad:?} is not https (or loopback)"
            )));
        }
        let jwks: CoreJsonWebKeySet = get_json(
            &self.http,
            metadata.jwks_uri().as_str(),
            None,
            "application/json",
        )
        .await?;
        if let Ok(mut slot) = self.jwks.write() {
            *slot = Some(jwks);
        }
        let methods = metadata.token_endpoint_auth_methods_supported();
        let basic_only = methods.is_some_and(|m| {
            m.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && !m.contains(&CoreClientAuthMethod::ClientSecretPost)
        });
        let auth_type = if basic_only {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        };
        Ok(Discovered {
            metadata,
            issuer,
            auth_type,
        })
    }

    fn client(&self, d: &Discovered, redirect_uri: &str) -> Result<OidcClient, ProviderError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| ProviderError::Rejected(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(d.auth_type.clone()))
    }

    fn current_jwks(&self) -> CoreJsonWebKeySet {
        self.jwks
            .read()
            .ok()
            .and_then(|j| j.clone())
            .unwrap_or_else(|| CoreJsonWebKeySet::new(Vec::new()))
    }

    /// Fetches the JWKS again, unless that was done less than [`JWKS_REFETCH`] ago.
    async fn refetch_jwks(&self, d: &Discovered) -> Result<bool, ProviderError> {
        {
            let Ok(mut last) = self.last_jwks_fetch.lock() else {
                return Ok(false);
            };
            if last.is_some_and(|at| at.elapsed() < JWKS_REFETCH) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let jwks: CoreJsonWebKeySet = get_json(
            &self.http,
            d.metadata.jwks_uri().as_str(),
            None,
            "application/json",
        )
        .await?;
        if let Ok(mut slot) = self.jwks.write() {
            *slot = Some(jwks);
        }
        Ok(true)
    }

    fn verify(
        &self,
        d: &Discovered,
        token: &OidcIdToken,
        nonce: &str,
    ) -> Result<OidcClaims, ClaimsVerificationError> {
        let issuer = IssuerUrl::new(d.metadata.issuer().as_str().to_owned())
            .map_err(|e| ClaimsVerificationError::Other(e.to_string()))?;
        let verifier = IdTokenVerifier::new_public_client(
            ClientId::new(self.client_id.clone()),
            issuer,
            self.current_jwks(),
        )
        .set_allowed_algs(ALGORITHMS)
        .require_issuer_match(matches!(d.issuer, IssuerCheck::Exact))
        .set_issue_time_verifier_fn(|iat| {
            let age = crate::clock::system_secs() - iat.timestamp();
            if age < -IAT_SKEW {
                Err("iat is in the future".into())
            } else if age > IAT_MAX_AGE {
                Err("iat is too old".into())
            } else {
                Ok(())
            }
        });
        let claims = token.claims(&verifier, &Nonce::new(nonce.to_owned()))?;
        // `azp`, when present, must name this client (the crate leaves this step to us; an
        // extra audience is already refused by its audience check).
        if let Some(azp) = claims.authorized_party()
            && azp.as_str() != self.client_id
        {
            return Err(ClaimsVerificationError::InvalidAudience(
                "azp names another client".into(),
            ));
        }
        if let IssuerCheck::Template(template) = &d.issuer {
            let tid = claims.additional_claims().tid.as_deref().unwrap_or("");
            let valid_tid = !tid.is_empty()
                && tid.len() <= 64
                && tid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid_tid || claims.issuer().as_str() != template.replace("{tenantid}", tid) {
                return Err(ClaimsVerificationError::InvalidIssuer(
                    "issuer does not match the tenant".into(),
                ));
            }
        }
        Ok(claims.clone())
    }

    fn email_verified(&self, claims: &OidcClaims) -> bool {
        match self.flavor {
            Flavor::Generic => claims.email_verified() == Some(true),
            // A tenant sets its users' `email` itself; only `xms_edov` (the domain's owner
            // verified it) is Microsoft's word on it, never an `email_verified` claim.
            Flavor::Microsoft => match &claims.additional_claims().xms_edov {
                Some(serde_json::Value::Bool(b)) => *b,
                Some(serde_json::Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
                Some(serde_json::Value::Number(n)) => n.as_i64() == Some(1),
                _ => false,
            },
        }
    }
}

type OidcClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

fn rejected(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Rejected(format!("{what}: {e}"))
}

#[async_trait::async_trait]
impl OAuthProvider for OidcProvider {
    async fn authorize_url(&self, req: &AuthorizeRequest<'_>) -> Result<String, ProviderError> {
        let d = self.discovered().await?;
        let client = self.client(&d, req.redirect_uri)?;
        let state = req.state.to_owned();
        let nonce = req.nonce.to_owned();
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(req.pkce.clone())
            .url();
        Ok(url.to_string())
    }

    async fn identity(&self, ex: &CodeExchange<'_>) -> Result<OAuthIdentity, ProviderError> {
        let d = self.discovered().await?;
        let client = self.client(&d, ex.redirect_uri)?;
        let response = client
            .exchange_code(AuthorizationCode::new(ex.code.to_owned()))
            .map_err(|e| rejected("token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(ex.pkce_verifier.to_owned()))
            .request_async(&capped(&self.http))
            .await
            .map_err(|e| unavailable("code exchange", e))?;
        let raw = response
            .id_token()
            .ok_or_else(|| ProviderError::Rejected("no id_token in the token response".into()))?
            .to_string();
        let token: OidcIdToken = raw.parse().map_err(|e| rejected("id_token", e))?;
        let claims = match self.verify(&d, &token, ex.nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.refetch_jwks(&d).await? => self.verify(&d, &token, ex.nonce),
            other => other,
        }
        .map_err(|e| rejected("id_token", e))?;
        let mut identity = OAuthIdentity {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: self.email_verified(&claims),
            username: claims.preferred_username().map(|u| u.as_str().to_owned()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            given_name: claims
                .given_name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            claims: serde_json::to_value(&claims).unwrap_or_default(),
        };
        // No address in the ID token: ask the userinfo endpoint (its `sub` must match).
        if identity.email.is_none() && d.metadata.userinfo_endpoint().is_some() {
            let info: CoreUserInfoClaims = client
                .user_info(
                    response.access_token().clone(),
                    Some(claims.subject().clone()),
                )
                .map_err(|e| rejected("userinfo", e))?
                .request_async(&capped(&self.http))
                .await
                .map_err(|e| rejected("userinfo", e))?;
            identity.email = info.email().map(|e| e.as_str().to_owned());
            identity.email_verified =
                self.flavor == Flavor::Generic && info.email_verified() == Some(true);
            if identity.username.is_none() {
                identity.username = info.preferred_username().map(|u| u.as_str().to_owned());
            }
        }
        Ok(identity)
    }
}
