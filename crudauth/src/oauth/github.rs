//! GitHub: plain OAuth 2.0 (no ID token). The account is `GET /user`; the address is
//! chosen from `GET /user/emails`: the primary verified one, else any verified one. An
//! unverified address is reported as unverified and is never used to link or create.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeVerifier, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use super::provider::{
    AuthorizeRequest, CodeExchange, OAuthIdentity, OAuthProvider, ProviderError, capped, get_json,
    unavailable,
};

/// GitHub's endpoints (GitHub Enterprise Server and tests use others).
#[derive(Clone, Debug)]
pub(crate) struct GitHubEndpoints {
    pub authorize: String,
    pub token: String,
    pub api: String,
}

impl Default for GitHubEndpoints {
    fn default() -> Self {
        GitHubEndpoints {
            authorize: "https://github.com/login/oauth/authorize".into(),
            token: "https://github.com/login/oauth/access_token".into(),
            api: "https://api.github.com".into(),
        }
    }
}

pub(crate) struct GitHubProvider {
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub endpoints: GitHubEndpoints,
    pub http: reqwest::Client,
}

#[derive(Deserialize)]
struct User {
    id: serde_json::Value,
    login: Option<String>,
    name: Option<String>,
}

#[derive(Clone, Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

const ACCEPT: &str = "application/vnd.github+json";

/// The address to use: the primary verified one, else any verified one; else the primary
/// (or first) one, reported unverified.
fn choose(emails: &[Email]) -> Option<(String, bool)> {
    let pick = emails
        .iter()
        .find(|e| e.primary && e.verified)
        .or_else(|| emails.iter().find(|e| e.verified))
        .or_else(|| emails.iter().find(|e| e.primary))
        .or_else(|| emails.first())?;
    Some((pick.email.clone(), pick.verified))
}

impl GitHubProvider {
    fn client(
        &self,
        redirect_uri: &str,
    ) -> Result<
        BasicClient<
            oauth2::EndpointSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointSet,
        >,
        ProviderError,
    > {
        let bad = |e: oauth2::url::ParseError| ProviderError::Rejected(format!("URL: {e}"));
        Ok(BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            .set_auth_uri(AuthUrl::new(self.endpoints.authorize.clone()).map_err(bad)?)
            .set_token_uri(TokenUrl::new(self.endpoints.token.clone()).map_err(bad)?)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(bad)?))
    }
}

#[async_trait::async_trait]
impl OAuthProvider for GitHubProvider {
    async fn authorize_url(&self, req: &AuthorizeRequest<'_>) -> Result<String, ProviderError> {
        let state = req.state.to_owned();
        let (url, _) = self
            .client(req.redirect_uri)?
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(req.pkce.clone())
            .url();
        Ok(url.to_string())
    }

    async fn identity(&self, ex: &CodeExchange<'_>) -> Result<OAuthIdentity, ProviderError> {
        let token = self
            .client(ex.redirect_uri)?
            .exchange_code(AuthorizationCode::new(ex.code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(ex.pkce_verifier.to_owned()))
            .request_async(&capped(&self.http))
            .await
            .map_err(|e| unavailable("code exchange", e))?;
        let access = token.access_token().secret();
        let api = self.endpoints.api.trim_end_matches('/');
        let profile: serde_json::Value =
            get_json(&self.http, &format!("{api}/user"), Some(access), ACCEPT).await?;
        let user: User = serde_json::from_value(profile.clone())
            .map_err(|e| ProviderError::Rejected(format!("/user: {e}")))?;
        let subject = match &user.id {
            serde_json::Value::Number(n) if n.is_u64() => n.to_string(),
            _ => return Err(ProviderError::Rejected("/user: no numeric id".into())),
        };
        let emails: Vec<Email> = get_json(
            &self.http,
            &format!("{api}/user/emails"),
            Some(access),
            ACCEPT,
        )
        .await?;
        let (email, email_verified) = match choose(&emails) {
            Some((email, verified)) => (Some(email), verified),
            None => (None, false),
        };
        Ok(OAuthIdentity {
            subject,
            email,
            email_verified,
            username: user.login,
            given_name: None,
            name: user.name,
            claims: profile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Email, choose};

    fn e(email: &str, primary: bool, verified: bool) -> Email {
        Email {
            email: email.into(),
            primary,
            verified,
        }
    }

    #[test]
    fn the_primary_verified_address_wins_then_any_verified_one() {
        let all = [e("a@x.io", false, true), e("b@x.io", true, true)];
        assert_eq!(choose(&all), Some(("b@x.io".into(), true)));
        let all = [e("a@x.io", true, false), e("b@x.io", false, true)];
        assert_eq!(choose(&all), Some(("b@x.io".into(), true)));
        let all = [e("a@x.io", true, false)];
        assert_eq!(choose(&all), Some(("a@x.io".into(), false)));
        assert_eq!(choose(&[]), None);
    }
}
