//! The provider port: what crudauth asks of an identity provider (an authorize URL, and an
//! identity for a code), the built-in implementations' shared HTTP client, and the
//! identity a provider answers with.

use std::time::Duration;

use crate::user::BoxFuture;

pub use oauth2::PkceCodeChallenge;

/// What a provider says about the person who signed in.
///
/// ```
/// let who = crudauth::oauth::OAuthIdentity::new("1234");
/// assert!(!who.email_verified); // never assumed
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct OAuthIdentity {
    /// The provider's stable id of the account (`sub`, GitHub's numeric id): what a link
    /// remembers. Never the address, which can change hands.
    pub subject: String,
    /// The address, as the provider reported it.
    pub email: Option<String>,
    /// Whether the provider vouches for the address. An unverified address is never used to
    /// link or create an account.
    pub email_verified: bool,
    /// A handle (`preferred_username`, GitHub's `login`).
    pub username: Option<String>,
    /// The full name.
    pub name: Option<String>,
    /// The given name.
    pub given_name: Option<String>,
    /// The verified claims or profile as the provider sent them (for hooks).
    pub claims: serde_json::Value,
}

impl OAuthIdentity {
    /// An identity with only a subject.
    pub fn new(subject: impl Into<String>) -> Self {
        OAuthIdentity {
            subject: subject.into(),
            ..Default::default()
        }
    }
}

/// The parameters of one authorize redirect.
///
/// ```
/// # use crudauth::oauth::{AuthorizeRequest, PkceCodeChallenge};
/// let (pkce, _verifier) = PkceCodeChallenge::new_random_sha256();
/// let req = AuthorizeRequest { redirect_uri: "https://app.example.com/oauth/x/callback", state: "s", nonce: "n", pkce: &pkce };
/// assert_eq!(req.pkce.method().as_str(), "S256");
/// ```
#[derive(Debug)]
pub struct AuthorizeRequest<'a> {
    /// The callback URL registered with the provider.
    pub redirect_uri: &'a str,
    /// The `state` parameter (256 random bits).
    pub state: &'a str,
    /// The OpenID Connect `nonce` (256 random bits); a plain OAuth 2.0 provider ignores it.
    pub nonce: &'a str,
    /// The PKCE challenge (S256).
    pub pkce: &'a PkceCodeChallenge,
}

/// The parameters of one code exchange.
///
/// ```
/// let ex = crudauth::oauth::CodeExchange { code: "c", redirect_uri: "https://app.example.com/cb", pkce_verifier: "v", nonce: "n" };
/// assert_eq!(ex.code, "c");
/// ```
#[derive(Debug)]
pub struct CodeExchange<'a> {
    /// The `code` the provider sent to the callback.
    pub code: &'a str,
    /// The callback URL (the same as in the authorize request).
    pub redirect_uri: &'a str,
    /// The PKCE verifier of the authorize request.
    pub pkce_verifier: &'a str,
    /// The nonce the ID token must carry.
    pub nonce: &'a str,
}

/// Why a provider step failed. Every kind is answered `oauth_failed`; the kind and message
/// go to the log, never to the client.
///
/// ```
/// let e = crudauth::oauth::ProviderError::Rejected("bad nonce".into());
/// assert_eq!(e.to_string(), "provider answer rejected: bad nonce");
/// ```
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached, timed out, or answered with an HTTP error.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider answered, but the answer failed a check (a token, a signature, a claim,
    /// a malformed document).
    #[error("provider answer rejected: {0}")]
    Rejected(String),
}

/// A sign-in provider. The built-in ones are made by [`crate::oauth::ProviderConfig`];
/// an app implements this trait for a provider of its own.
///
/// ```
/// use crudauth::oauth::{AuthorizeRequest, CodeExchange, OAuthIdentity, OAuthProvider, ProviderError};
/// struct Corp;
/// #[async_trait::async_trait]
/// impl OAuthProvider for Corp {
///     async fn authorize_url(&self, req: &AuthorizeRequest<'_>) -> Result<String, ProviderError> {
///         Ok(format!("https://sso.corp.example/authorize?state={}&code_challenge={}", req.state, req.pkce.as_str()))
///     }
///     async fn identity(&self, ex: &CodeExchange<'_>) -> Result<OAuthIdentity, ProviderError> {
///         Err(ProviderError::Unavailable("not in this example".into()))
///     }
/// }
/// let custom = crudauth::oauth::ProviderConfig::custom("corp", std::sync::Arc::new(Corp));
/// assert_eq!(custom.name(), "corp");
/// ```
#[async_trait::async_trait]
pub trait OAuthProvider: Send + Sync + 'static {
    /// The URL to send the browser to.
    async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<String, ProviderError>;
    /// Exchanges the code (with the PKCE verifier) and answers who signed in, every token
    /// verified.
    async fn identity(&self, exchange: &CodeExchange<'_>) -> Result<OAuthIdentity, ProviderError>;
}

/// The HTTP client of the built-in providers: rustls, the given timeout on every request
/// (connect included), and no redirects followed (a provider endpoint that redirects is
/// refused rather than followed somewhere else).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("crudauth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::Unavailable(format!("HTTP client: {e}")))
}

/// Whether a URL may be used for a provider endpoint: https, or http on a loopback host
/// (local development and tests).
pub(crate) fn allowed_endpoint(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// A provider error for a failed HTTP call.
pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unavailable(format!("{what}: {e}"))
}

/// GETs a JSON document, refusing a non-2xx answer and bodies over 1 MiB.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    accept: &str,
) -> Result<T, ProviderError> {
    let mut request = http.get(url).header(reqwest::header::ACCEPT, accept);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| unavailable(url, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(ProviderError::Unavailable(format!("{url}: HTTP {status}")));
    }
    let body = read_capped(response, url).await?;
    serde_json::from_slice(&body).map_err(|e| ProviderError::Rejected(format!("{url}: {e}")))
}

const MAX_DOCUMENT: usize = 1 << 20;

/// A response body, refused past 1 MiB whether declared or streamed (a chunked answer is
/// counted as it arrives, never buffered whole first).
async fn read_capped(
    mut response: reqwest::Response,
    what: &str,
) -> Result<Vec<u8>, ProviderError> {
    let too_large = || ProviderError::Rejected(format!("{what}: answer over 1 MiB"));
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(what, e))? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The HTTP client handed to `oauth2` and `openidconnect` (token exchange, userinfo): the
/// same reqwest client (timeouts, no redirects) with the same 1 MiB cap on answers.
pub(crate) fn capped(
    http: &reqwest::Client,
) -> impl Fn(oauth2::HttpRequest) -> BoxFuture<'static, Result<oauth2::HttpResponse, ProviderError>>
+ Send
+ Sync
+ '_ {
    move |request| {
        let http = http.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| ProviderError::Rejected(format!("request: {e}")))?;
            let host = request.url().host_str().unwrap_or_default().to_owned();
            let response = http
                .execute(request)
                .await
                .map_err(|e| unavailable(&host, e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_capped(response, &host).await?;
            let mut out = axum::http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::allowed_endpoint;

    #[test]
    fn endpoints_are_https_or_loopback() {
        assert!(allowed_endpoint("https://accounts.google.com"));
        assert!(allowed_endpoint("http://127.0.0.1:8080/x"));
        assert!(allowed_endpoint("http://[::1]:8080/x"));
        assert!(allowed_endpoint("http://localhost:9/x"));
        assert!(!allowed_endpoint("http://idp.example.com"));
        assert!(!allowed_endpoint("http://127.0.0.1.evil.example"));
        assert!(!allowed_endpoint("ftp://127.0.0.1"));
        assert!(!allowed_endpoint("not a url"));
    }
}
