//! Social sign-in: OAuth 2.0 and OpenID Connect (feature `oauth`, switched on by
//! [`crate::CrudAuthBuilder::oauth`]).
//!
//! - Providers: the presets [`ProviderConfig::google`], [`ProviderConfig::microsoft`] and
//!   [`ProviderConfig::github`], any OpenID Connect issuer by discovery
//!   ([`ProviderConfig::oidc`]), or an app's own [`OAuthProvider`].
//! - The flow: `GET /oauth/{provider}/authorize` stores a pending state (256 random bits,
//!   kept server-side under a keyed hash, single use, 30 minutes) bound to the browser by the
//!   `oauth_state` cookie, with PKCE S256 and an OpenID Connect `nonce` always;
//!   `GET /oauth/{provider}/callback` checks the cookie, claims the state, exchanges the code,
//!   verifies the ID token, and signs the user in over the session transport (or hands a token
//!   pair to a bearer client: `?response=token`).
//! - Accounts: links (provider, subject) → user live in a [`LinkStore`] (a table crudauth owns
//!   in `crudauth-sea`, or memory), so the user table needs no new column.
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! use crudauth::oauth::{OAuthConfig, ProviderConfig};
//! let auth = b
//!     .oauth(
//!         OAuthConfig::new("https://api.example.com")
//!             .provider(ProviderConfig::google("client-id", "client-secret"))
//!             .provider(ProviderConfig::github("client-id", "client-secret")),
//!     )
//!     .build()?;
//! let oauth = auth.oauth().expect("configured");
//! assert_eq!(oauth.callback_url("github").as_deref(), Some("https://api.example.com/oauth/github/callback"));
//! # Ok(()) });
//! ```

mod accounts;
mod github;
mod links;
mod oidc;
mod provider;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;

pub use links::{LinkStore, MemoryLinkStore, OAuthLink};
pub use provider::{
    AuthorizeRequest, CodeExchange, OAuthIdentity, OAuthProvider, PkceCodeChallenge, ProviderError,
};

use crate::core::Core;
use crate::error::{AuthError, ConfigError};
use crate::keys::{hmac_hex, random_token};
use crate::login::Login;
use crate::user::{DynUserRepository, LogicalField, UserRecord};
use state::{Pending, PendingTokens, Redirects};
pub(crate) use state::{Purpose, cookie_states};

/// [`crate::store::fail_closed`] for a fault of the state store or the link store.
pub(crate) fn store_fault(e: crate::store::StoreError) -> AuthError {
    crate::store::fail_closed("OAuth store", &e)
}

/// How the callback answers.
///
/// ```
/// assert_eq!(crudauth::oauth::ResponseMode::default(), crudauth::oauth::ResponseMode::Redirect);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseMode {
    /// `307` to the provider, and from the callback to `redirect_to` (errors as `?error=`).
    #[default]
    Redirect,
    /// `200 {"url"}` from authorize; the callback answers JSON (errors as `400 {"detail"}`),
    /// for a frontend that receives the provider's redirect itself and forwards it.
    Json,
}

/// The OAuth settings and providers.
///
/// ```
/// use crudauth::oauth::{OAuthConfig, ProviderConfig, ResponseMode};
/// let config = OAuthConfig::new("https://api.example.com")
///     .provider(ProviderConfig::oidc("corp", "https://sso.corp.example", "id", "secret"));
/// assert_eq!(config.prefix, "/oauth");
/// assert_eq!(config.response_mode, ResponseMode::Redirect);
/// ```
#[derive(Clone)]
pub struct OAuthConfig {
    /// The public base URL of this API; callbacks are `{base}{prefix}/{provider}/callback`
    /// (the redirect URIs to register with the providers). https, or http on loopback.
    pub redirect_base_url: String,
    /// The routes' prefix (default `/oauth`).
    pub prefix: String,
    /// Where the browser goes when `redirect_to` is missing or unsafe, and where errors are
    /// sent (`?error=code`): a path, or an absolute http(s) URL (default `/`).
    pub default_redirect: String,
    /// How the routes answer (default [`ResponseMode::Redirect`]).
    pub response_mode: ResponseMode,
    /// The timeout of every provider HTTP call (default 10 s).
    pub http_timeout: Duration,
    /// How long a started flow may take (default 30 minutes).
    pub state_ttl: Duration,
    /// Exact `redirect_to` targets a token-mode flow (`?response=token`) may use besides
    /// same-origin ones: a native app's redirect (`com.example.app:/oauth`).
    pub app_redirects: Vec<String>,
    providers: Vec<ProviderConfig>,
    links: Option<Arc<dyn LinkStore>>,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("redirect_base_url", &self.redirect_base_url)
            .field("prefix", &self.prefix)
            .field("default_redirect", &self.default_redirect)
            .field("response_mode", &self.response_mode)
            .field(
                "providers",
                &self.providers.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl OAuthConfig {
    /// Settings with defaults, for an API served at `redirect_base_url`.
    pub fn new(redirect_base_url: impl Into<String>) -> Self {
        OAuthConfig {
            redirect_base_url: redirect_base_url.into(),
            prefix: "/oauth".into(),
            default_redirect: "/".into(),
            response_mode: ResponseMode::Redirect,
            http_timeout: Duration::from_secs(10),
            state_ttl: Duration::from_secs(1800),
            app_redirects: Vec::new(),
            providers: Vec::new(),
            links: None,
        }
    }

    /// Adds a provider (its name is the `{provider}` of the routes).
    ///
    /// ```
    /// let c = crudauth::oauth::OAuthConfig::new("https://api.example.com")
    ///     .provider(crudauth::oauth::ProviderConfig::github("id", "secret"));
    /// # let _ = c;
    /// ```
    pub fn provider(mut self, provider: ProviderConfig) -> Self {
        self.providers.push(provider);
        self
    }

    /// Where links are kept (default: process memory, with a warning; use
    /// `crudauth_sea::SeaLinkStore` in production).
    ///
    /// ```
    /// let c = crudauth::oauth::OAuthConfig::new("https://api.example.com")
    ///     .links(std::sync::Arc::new(crudauth::oauth::MemoryLinkStore::default()));
    /// # let _ = c;
    /// ```
    pub fn links(mut self, store: Arc<dyn LinkStore>) -> Self {
        self.links = Some(store);
        self
    }
}

#[derive(Clone)]
enum Kind {
    Oidc {
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        flavor: oidc::Flavor,
    },
    GitHub {
        client_id: String,
        client_secret: String,
        endpoints: github::GitHubEndpoints,
    },
    Custom(Arc<dyn OAuthProvider>),
}

/// One provider's configuration.
///
/// ```
/// use crudauth::oauth::ProviderConfig;
/// let google = ProviderConfig::google("id", "secret");
/// let tenant = ProviderConfig::microsoft("id", "secret", "organizations");
/// assert_eq!((google.name(), tenant.name()), ("google", "microsoft"));
/// ```
#[derive(Clone)]
pub struct ProviderConfig {
    name: String,
    kind: Kind,
    scopes: Vec<String>,
}

impl ProviderConfig {
    fn oidc_kind(
        name: &str,
        issuer: String,
        id: String,
        secret: String,
        flavor: oidc::Flavor,
    ) -> Self {
        ProviderConfig {
            name: name.to_owned(),
            kind: Kind::Oidc {
                issuer,
                client_id: id,
                client_secret: (!secret.is_empty()).then_some(secret),
                flavor,
            },
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
        }
    }

    /// Google (OpenID Connect, issuer `https://accounts.google.com`), named `google`.
    pub fn google(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        let issuer = "https://accounts.google.com".to_owned();
        Self::oidc_kind(
            "google",
            issuer,
            client_id.into(),
            client_secret.into(),
            oidc::Flavor::Generic,
        )
    }

    /// Microsoft's identity platform (OpenID Connect), named `microsoft`. `tenant` is
    /// `common`, `organizations`, `consumers`, a tenant id or a tenant domain; for the
    /// multi-tenant forms each token's issuer is checked against its own `tid`.
    pub fn microsoft(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        tenant: impl AsRef<str>,
    ) -> Self {
        let issuer = format!("https://login.microsoftonline.com/{}/v2.0", tenant.as_ref());
        Self::oidc_kind(
            "microsoft",
            issuer,
            client_id.into(),
            client_secret.into(),
            oidc::Flavor::Microsoft,
        )
    }

    /// GitHub (plain OAuth 2.0: `/user` and `/user/emails`), named `github`.
    pub fn github(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        ProviderConfig {
            name: "github".into(),
            kind: Kind::GitHub {
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                endpoints: github::GitHubEndpoints::default(),
            },
            scopes: vec!["read:user".into(), "user:email".into()],
        }
    }

    /// Any OpenID Connect issuer, found by discovery (`{issuer}/.well-known/openid-configuration`,
    /// whose `issuer` must equal this one). An empty secret makes a public client.
    pub fn oidc(
        name: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        let mut p = Self::oidc_kind(
            "",
            issuer.into(),
            client_id.into(),
            client_secret.into(),
            oidc::Flavor::Generic,
        );
        p.name = name.into();
        p
    }

    /// An app's own provider.
    pub fn custom(name: impl Into<String>, provider: Arc<dyn OAuthProvider>) -> Self {
        ProviderConfig {
            name: name.into(),
            kind: Kind::Custom(provider),
            scopes: Vec::new(),
        }
    }

    /// Another issuer for an OpenID Connect preset (a sovereign cloud, a test server).
    ///
    /// ```
    /// let p = crudauth::oauth::ProviderConfig::microsoft("id", "s", "common")
    ///     .issuer("https://login.microsoftonline.us/common/v2.0");
    /// # let _ = p;
    /// ```
    pub fn issuer(mut self, url: impl Into<String>) -> Self {
        if let Kind::Oidc { issuer, .. } = &mut self.kind {
            *issuer = url.into();
        }
        self
    }

    /// Other endpoints for the GitHub preset (GitHub Enterprise Server, a test server):
    /// the authorize and token URLs and the API base.
    ///
    /// ```
    /// let p = crudauth::oauth::ProviderConfig::github("id", "s").endpoints(
    ///     "https://ghe.corp.example/login/oauth/authorize",
    ///     "https://ghe.corp.example/login/oauth/access_token",
    ///     "https://ghe.corp.example/api/v3",
    /// );
    /// # let _ = p;
    /// ```
    pub fn endpoints(
        mut self,
        authorize: impl Into<String>,
        token: impl Into<String>,
        api: impl Into<String>,
    ) -> Self {
        if let Kind::GitHub { endpoints, .. } = &mut self.kind {
            *endpoints = github::GitHubEndpoints {
                authorize: authorize.into(),
                token: token.into(),
                api: api.into(),
            };
        }
        self
    }

    /// The scopes asked for (OpenID Connect adds `openid` itself).
    ///
    /// ```
    /// let p = crudauth::oauth::ProviderConfig::google("id", "s").scopes(["openid", "email"]);
    /// # let _ = p;
    /// ```
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The provider's name in the routes.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn build(self, http: &reqwest::Client) -> Result<Arc<dyn OAuthProvider>, ConfigError> {
        let bad = |what: &str, url: &str| {
            ConfigError::Invalid(format!(
                "oauth provider `{}`: {what} {url:?} must be https (or http on loopback)",
                self.name
            ))
        };
        Ok(match self.kind.clone() {
            Kind::Oidc {
                issuer,
                client_id,
                client_secret,
                flavor,
            } => {
                if !provider::allowed_endpoint(&issuer) {
                    return Err(bad("the issuer", &issuer));
                }
                Arc::new(oidc::OidcProvider::new(
                    issuer,
                    client_id,
                    client_secret,
                    self.scopes,
                    flavor,
                    http.clone(),
                ))
            }
            Kind::GitHub {
                client_id,
                client_secret,
                endpoints,
            } => {
                for url in [&endpoints.authorize, &endpoints.token, &endpoints.api] {
                    if !provider::allowed_endpoint(url) {
                        return Err(bad("the endpoint", url));
                    }
                }
                Arc::new(github::GitHubProvider {
                    client_id,
                    client_secret,
                    scopes: self.scopes,
                    endpoints,
                    http: http.clone(),
                })
            }
            Kind::Custom(provider) => provider,
        })
    }
}

/// Why an OAuth flow ended without a sign-in: the original's codes, answered as
/// `?error=<code>` in redirect mode and `400 {"detail": "<code>"}` in JSON mode.
///
/// ```
/// assert_eq!(crudauth::oauth::OAuthErrorCode::InvalidState.as_str(), "invalid_state");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// The provider refused, could not be reached, or its answer failed a check.
    OAuthFailed,
    /// The state is missing, not this browser's, unknown, expired or used.
    InvalidState,
    /// The provider gave no address (and no link exists).
    EmailMissing,
    /// The provider does not vouch for the address.
    EmailUnverified,
    /// The address is longer than any stored one can be.
    EmailTooLong,
    /// The account already has another account of this provider linked, or this provider
    /// account is linked to another user.
    ProviderAlreadyLinked,
    /// The account is disabled.
    AccountInactive,
    /// The app's `on_before_register` or `on_before_login` hook refused (ours).
    SignInRefused,
}

impl OAuthErrorCode {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::OAuthFailed => "oauth_failed",
            OAuthErrorCode::InvalidState => "invalid_state",
            OAuthErrorCode::EmailMissing => "email_missing",
            OAuthErrorCode::EmailUnverified => "email_unverified",
            OAuthErrorCode::EmailTooLong => "email_too_long",
            OAuthErrorCode::ProviderAlreadyLinked => "provider_already_linked",
            OAuthErrorCode::AccountInactive => "account_inactive",
            OAuthErrorCode::SignInRefused => "sign_in_refused",
        }
    }
}

/// How a flow failed: one of the codes, or a fault of ours (store down: 503).
#[derive(Debug)]
pub(crate) enum Failure {
    Code(OAuthErrorCode),
    Auth(AuthError),
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        Failure::Auth(e)
    }
}

impl From<OAuthErrorCode> for Failure {
    fn from(c: OAuthErrorCode) -> Self {
        Failure::Code(c)
    }
}

/// A started flow: where to send the browser.
pub(crate) struct Begun {
    pub url: String,
    pub state: String,
}

/// A finished flow.
pub(crate) struct Finished<U> {
    pub user: Arc<U>,
    pub created: bool,
    pub provider: String,
    pub purpose: Purpose,
    pub redirect_to: Option<String>,
}

struct Inner {
    config: OAuthConfig,
    providers: BTreeMap<String, Arc<dyn OAuthProvider>>,
    links: Arc<dyn LinkStore>,
    redirects: Redirects,
    base: String,
}

/// The OAuth service: providers, pending flows, links, and the account rules.
pub struct OAuth<U> {
    core: Arc<Core<U>>,
    login: Login<U>,
    repo: Arc<dyn DynUserRepository<U>>,
    inner: Arc<Inner>,
}

impl<U> Clone for OAuth<U> {
    fn clone(&self) -> Self {
        OAuth {
            core: self.core.clone(),
            login: self.login.clone(),
            repo: self.repo.clone(),
            inner: self.inner.clone(),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl<U: UserRecord> OAuth<U> {
    pub(crate) fn new(
        core: Arc<Core<U>>,
        login: Login<U>,
        repo: Arc<dyn DynUserRepository<U>>,
        mut config: OAuthConfig,
    ) -> Result<Self, ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if !core.repo.schema().has(LogicalField::Email) {
            return invalid("oauth needs an email column on the user table".into());
        }
        if !provider::allowed_endpoint(&config.redirect_base_url) {
            return invalid(format!(
                "oauth redirect_base_url {:?} must be an https URL (or http on loopback)",
                config.redirect_base_url
            ));
        }
        let base = url::Url::parse(&config.redirect_base_url)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let prefix = config.prefix.trim_end_matches('/').to_owned();
        if !prefix.starts_with('/') || prefix.contains(['{', '}', '?', '#']) {
            return invalid(format!("oauth prefix {:?} must be a path", config.prefix));
        }
        config.prefix = prefix;
        if config.http_timeout.is_zero() || config.state_ttl.is_zero() {
            return invalid("oauth http_timeout and state_ttl must be positive".into());
        }
        let redirects = Redirects::new(
            base.clone(),
            &config.default_redirect,
            config.app_redirects.clone(),
        );
        if redirects.safe(&config.default_redirect, false).is_none()
            && url::Url::parse(&config.default_redirect).is_err()
        {
            return invalid(format!(
                "oauth default_redirect {:?} must be a path or an absolute http(s) URL",
                config.default_redirect
            ));
        }
        if config.providers.is_empty() {
            return invalid("oauth has no provider".into());
        }
        let http = provider::http_client(config.http_timeout)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut providers = BTreeMap::new();
        for p in std::mem::take(&mut config.providers) {
            if !valid_name(&p.name) {
                return invalid(format!(
                    "oauth provider name {:?}: 1-32 of a-z 0-9 _ -",
                    p.name
                ));
            }
            let name = p.name.clone();
            if providers.insert(name.clone(), p.build(&http)?).is_some() {
                return invalid(format!("oauth provider `{name}` configured twice"));
            }
        }
        let links = match config.links.take() {
            Some(links) => links,
            None => {
                tracing::warn!(
                    "crudauth: OAuth links are kept in process memory (configure a LinkStore)"
                );
                Arc::new(MemoryLinkStore::default())
            }
        };
        let base = config.redirect_base_url.trim_end_matches('/').to_owned();
        Ok(OAuth {
            core,
            login,
            repo,
            inner: Arc::new(Inner {
                config,
                providers,
                links,
                redirects,
                base,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &OAuthConfig {
        &self.inner.config
    }

    /// The configured providers' names.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.oauth(crudauth::oauth::OAuthConfig::new("https://api.example.com").provider(crudauth::oauth::ProviderConfig::github("id", "s"))).build()?;
    /// assert_eq!(auth.oauth().unwrap().providers().collect::<Vec<_>>(), ["github"]);
    /// # Ok(()) });
    /// ```
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.inner.providers.keys().map(String::as_str)
    }

    /// The link store.
    pub fn links(&self) -> &Arc<dyn LinkStore> {
        &self.inner.links
    }

    /// The callback URL of a provider (to register with it); `None` if not configured.
    pub fn callback_url(&self, provider: &str) -> Option<String> {
        self.inner.providers.contains_key(provider).then(|| {
            format!(
                "{}{}/{provider}/callback",
                self.inner.base, self.inner.config.prefix
            )
        })
    }

    pub(crate) fn has_provider(&self, provider: &str) -> bool {
        self.inner.providers.contains_key(provider)
    }

    pub(crate) fn safe_redirect(&self, raw: &str, token_mode: bool) -> Option<String> {
        self.inner.redirects.safe(raw, token_mode)
    }

    fn state_key(&self, state: &str) -> String {
        format!(
            "oauth_state:{}",
            hmac_hex(&self.core.keys.one_time, state.as_bytes())
        )
    }

    fn exchange_key(&self, code: &str) -> String {
        format!(
            "oauth_exchange:{}",
            hmac_hex(&self.core.keys.one_time, code.as_bytes())
        )
    }

    /// Starts a flow: a fresh state, nonce and PKCE verifier, stored (hashed) for
    /// `state_ttl`; answers the provider's authorize URL.
    pub(crate) async fn begin(
        &self,
        provider_name: &str,
        redirect_to: Option<&str>,
        purpose: Purpose,
    ) -> Result<Begun, Failure> {
        let provider = self
            .inner
            .providers
            .get(provider_name)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let state = random_token();
        let nonce = random_token();
        let (pkce, verifier) = PkceCodeChallenge::new_random_sha256_len(64);
        let redirect_uri = self
            .callback_url(provider_name)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let token_mode = matches!(purpose, Purpose::Token { .. });
        let request = AuthorizeRequest {
            redirect_uri: &redirect_uri,
            state: &state,
            nonce: &nonce,
            pkce: &pkce,
        };
        let url = provider.authorize_url(&request).await.map_err(|e| {
            tracing::warn!(provider = provider_name, error = %e, "crudauth: OAuth authorize failed");
            OAuthErrorCode::OAuthFailed
        })?;
        let pending = Pending {
            provider: provider_name.to_owned(),
            verifier: verifier.secret().clone(),
            nonce,
            redirect_to: redirect_to.and_then(|r| self.safe_redirect(r, token_mode)),
            purpose,
            created: crate::clock::system_secs(),
        };
        let bytes = serde_json::to_vec(&pending).map_err(|_| AuthError::Internal)?;
        let stored = (self.core.store)
            .set_if_absent(
                &self.state_key(&state),
                &bytes,
                Some(self.inner.config.state_ttl),
            )
            .await
            .map_err(store_fault)?;
        if !stored {
            return Err(AuthError::Internal.into()); // a 256-bit collision
        }
        Ok(Begun { url, state })
    }

    /// Finishes a flow from the callback's parameters: the cookie must hold `state` (else
    /// nothing is consumed), the stored state is claimed (single use), then the code is
    /// exchanged and the identity resolved to an account.
    pub(crate) async fn finish(
        &self,
        provider_name: &str,
        params: &CallbackParams,
        cookie: &[String],
        client: &crate::client_ip::ClientMeta,
    ) -> Result<Finished<U>, Failure> {
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .ok_or(OAuthErrorCode::InvalidState)?;
        if !state::cookie_holds(cookie, state) {
            return Err(OAuthErrorCode::InvalidState.into());
        }
        let raw = (self.core.store)
            .get_and_delete(&self.state_key(state))
            .await
            .map_err(store_fault)?;
        let pending: Pending = raw
            .and_then(|r| serde_json::from_slice(&r).ok())
            .ok_or(OAuthErrorCode::InvalidState)?;
        if pending.provider != provider_name {
            return Err(OAuthErrorCode::InvalidState.into());
        }
        if let Some(error) = &params.error {
            tracing::info!(provider = provider_name, error = %error.chars().take(64).collect::<String>(), "crudauth: the provider refused the sign-in");
            return Err(OAuthErrorCode::OAuthFailed.into());
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let provider = self
            .inner
            .providers
            .get(provider_name)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let redirect_uri = self
            .callback_url(provider_name)
            .ok_or(OAuthErrorCode::OAuthFailed)?;
        let exchange = CodeExchange {
            code,
            redirect_uri: &redirect_uri,
            pkce_verifier: &pending.verifier,
            nonce: &pending.nonce,
        };
        let identity = provider.identity(&exchange).await.map_err(|e| {
            tracing::warn!(provider = provider_name, error = %e, "crudauth: OAuth sign-in failed at the provider");
            OAuthErrorCode::OAuthFailed
        })?;
        if identity.subject.is_empty() || identity.subject.len() > 255 {
            return Err(OAuthErrorCode::OAuthFailed.into());
        }
        let token_mode = matches!(pending.purpose, Purpose::Token { .. });
        let redirect_to = pending
            .redirect_to
            .as_deref()
            .and_then(|r| self.safe_redirect(r, token_mode));
        let (user, created) = match &pending.purpose {
            Purpose::Link { user_id, epoch } => (
                self.link_to(provider_name, &identity, user_id, *epoch)
                    .await?,
                false,
            ),
            _ => self.sign_in(provider_name, &identity, client).await?,
        };
        Ok(Finished {
            user,
            created,
            provider: pending.provider,
            purpose: pending.purpose,
            redirect_to,
        })
    }

    /// A one-time code a token-mode client exchanges for its token pair (2 minutes).
    pub(crate) async fn issue_exchange_code(
        &self,
        user: &U,
        epoch: i64,
        challenge: String,
    ) -> Result<String, AuthError> {
        let code = random_token();
        let pending = PendingTokens {
            user_id: user.user_id().to_string(),
            epoch,
            challenge,
        };
        let bytes = serde_json::to_vec(&pending).map_err(|_| AuthError::Internal)?;
        (self.core.store)
            .set(
                &self.exchange_key(&code),
                &bytes,
                Some(Duration::from_secs(120)),
            )
            .await
            .map_err(store_fault)?;
        Ok(code)
    }

    /// Redeems an exchange code (single use) with the client's PKCE verifier; answers the
    /// user and its epoch, still current.
    pub(crate) async fn redeem_exchange_code(
        &self,
        code: &str,
        verifier: &str,
    ) -> Result<(Arc<U>, i64), AuthError> {
        const INVALID: AuthError = AuthError::BadRequest("Invalid or expired code");
        if code.is_empty() || code.len() > 64 || verifier.len() < 43 || verifier.len() > 128 {
            return Err(INVALID);
        }
        let raw = (self.core.store)
            .get_and_delete(&self.exchange_key(code))
            .await
            .map_err(store_fault)?;
        let pending: PendingTokens = raw
            .and_then(|r| serde_json::from_slice(&r).ok())
            .ok_or(INVALID)?;
        let computed = PkceCodeChallenge::from_code_verifier_sha256(
            &oauth2::PkceCodeVerifier::new(verifier.to_owned()),
        );
        let matches: bool = subtle::ConstantTimeEq::ct_eq(
            computed.as_str().as_bytes(),
            pending.challenge.as_bytes(),
        )
        .into();
        if !matches {
            return Err(INVALID);
        }
        let id = self
            .core
            .repo
            .schema()
            .id_kind
            .parse(&pending.user_id)
            .ok_or(INVALID)?;
        let user = self
            .core
            .repo
            .find_by_id(&id)
            .await
            .map_err(crate::store::repo_fault)?
            .ok_or(INVALID)?;
        let epoch = self.core.revocation.epoch(&user).await?;
        if !user.is_active() || epoch != pending.epoch {
            return Err(INVALID);
        }
        Ok((Arc::new(user), epoch))
    }

    pub(crate) fn state_cookie(&self, states: &[String]) -> HeaderValue {
        let secure = self
            .core
            .sessions
            .as_ref()
            .is_none_or(|s| s.config().secure);
        state::state_cookie(states, secure, self.inner.config.state_ttl.as_secs() as i64)
    }

    pub(crate) fn with_state(states: Vec<String>, state: &str) -> Vec<String> {
        state::with_state(states, state)
    }

    /// `default_redirect` with `?error=<code>`.
    pub(crate) fn error_target(&self, code: OAuthErrorCode) -> String {
        state::with_query(&self.inner.config.default_redirect, "error", code.as_str())
    }

    pub(crate) fn with_query(target: &str, key: &str, value: &str) -> String {
        state::with_query(target, key, value)
    }
}

/// The callback's query parameters.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}
