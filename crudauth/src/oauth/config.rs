//! The settings: [`OAuthConfig`], [`ResponseMode`] and the providers' [`ProviderConfig`].

use std::sync::Arc;
use std::time::Duration;

use super::links::LinkStore;
use super::provider::{self, OAuthProvider};
use super::{github, oidc};
use crate::error::ConfigError;

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
    pub(super) providers: Vec<ProviderConfig>,
    pub(super) links: Option<Arc<dyn LinkStore>>,
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
pub(super) enum Kind {
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
    pub(super) name: String,
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

    pub(super) fn build(
        self,
        http: &reqwest::Client,
    ) -> Result<Arc<dyn OAuthProvider>, ConfigError> {
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
