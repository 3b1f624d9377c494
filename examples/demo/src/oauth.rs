//! The demo's social sign-in, configured from the environment:
//!
//! - `CRUDAUTH_OIDC_ISSUER`, `CRUDAUTH_OIDC_CLIENT_ID`, `CRUDAUTH_OIDC_CLIENT_SECRET`: any
//!   OpenID Connect issuer, as the provider `oidc`;
//! - `CRUDAUTH_GOOGLE_CLIENT_ID` / `_SECRET`, `CRUDAUTH_GITHUB_CLIENT_ID` / `_SECRET`,
//!   `CRUDAUTH_MICROSOFT_CLIENT_ID` / `_SECRET` / `_TENANT` (default `common`): the presets;
//! - `CRUDAUTH_PUBLIC_URL`: the base of the redirect URIs
//!   (`{base}/oauth/{provider}/callback`; default the demo's own address);
//! - `CRUDAUTH_OAUTH_RESPONSE_MODE=json`: the JSON answers instead of redirects.
//!
//! Links live in the `crudauth_oauth_links` table of the demo's database.

use std::sync::Arc;

use crudauth::oauth::{OAuthConfig, ProviderConfig, ResponseMode};
use crudauth_sea::{LINK_TABLE, SeaLinkStore};
use sea_orm::DatabaseConnection;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn pair(prefix: &str) -> Option<(String, String)> {
    let id = env(&format!("CRUDAUTH_{prefix}_CLIENT_ID"))?;
    Some((
        id,
        env(&format!("CRUDAUTH_{prefix}_CLIENT_SECRET")).unwrap_or_default(),
    ))
}

/// The providers the environment names, or `None` when it names none.
pub async fn config(
    own_address: &str,
    db: &DatabaseConnection,
) -> Result<Option<OAuthConfig>, Box<dyn std::error::Error>> {
    let base = env("CRUDAUTH_PUBLIC_URL").unwrap_or_else(|| own_address.to_owned());
    let mut config = OAuthConfig::new(base.trim_end_matches('/'));
    let mut any = false;
    if let Some(issuer) = env("CRUDAUTH_OIDC_ISSUER") {
        let (id, secret) =
            pair("OIDC").ok_or("CRUDAUTH_OIDC_ISSUER needs CRUDAUTH_OIDC_CLIENT_ID")?;
        config = config.provider(ProviderConfig::oidc("oidc", issuer, id, secret));
        any = true;
    }
    if let Some((id, secret)) = pair("GOOGLE") {
        config = config.provider(ProviderConfig::google(id, secret));
        any = true;
    }
    if let Some((id, secret)) = pair("GITHUB") {
        config = config.provider(ProviderConfig::github(id, secret));
        any = true;
    }
    if let Some((id, secret)) = pair("MICROSOFT") {
        let tenant = env("CRUDAUTH_MICROSOFT_TENANT").unwrap_or_else(|| "common".into());
        config = config.provider(ProviderConfig::microsoft(id, secret, tenant));
        any = true;
    }
    if !any {
        return Ok(None);
    }
    if env("CRUDAUTH_OAUTH_RESPONSE_MODE").as_deref() == Some("json") {
        config.response_mode = ResponseMode::Json;
    }
    SeaLinkStore::create_table(db, LINK_TABLE).await?;
    let links = Arc::new(SeaLinkStore::new(db.clone(), LINK_TABLE));
    tracing::info!(base = %config.redirect_base_url, "social sign-in on: redirect URIs are {{base}}/oauth/{{provider}}/callback");
    Ok(Some(config.links(links)))
}
