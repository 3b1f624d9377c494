//! The demo's tenants, off unless the environment switches them on:
//!
//! - `CRUDAUTH_DEMO_TENANTS=email-domain`: a user's tenant is their verified address's domain
//!   (`ann@acme.test` is in `acme.test` once she has verified it; before, in none), resolved
//!   at sign-in and carried by the session,
//!   the token and its rotations;
//! - `CRUDAUTH_DEMO_TENANT_FEATURES=acme.test=billing+reports,globex.test=reports`: the
//!   features each tenant has (none otherwise).
//!
//! `GET /tenants/{tenant}/whoami` answers only a user of that tenant (404 for anyone else,
//! as if the route did not exist); `GET /tenants/{tenant}/billing` also needs the tenant's
//! `billing` feature (403 without it).

use axum::routing::get;
use axum::{Json, Router};
use crudauth::tenant::{TenantConfig, TenantFrom};
use crudauth::{ConfigError, CrudAuth, Gate, Principal, UserRecord};

use crate::User;

/// The tenant settings the environment asks for, or `None` (tenants off).
pub fn config() -> Result<Option<TenantConfig<User>>, ConfigError> {
    let Ok(mode) = std::env::var("CRUDAUTH_DEMO_TENANTS") else {
        return Ok(None);
    };
    if mode != "email-domain" {
        return Err(ConfigError::Invalid(format!(
            "CRUDAUTH_DEMO_TENANTS must be `email-domain`, not `{mode}`"
        )));
    }
    let features = features(&std::env::var("CRUDAUTH_DEMO_TENANT_FEATURES").unwrap_or_default())?;
    tracing::info!(?features, "tenants on: the email domain");
    Ok(Some(
        TenantConfig::new()
            .resolver(|user: &User, _headers| {
                // Only a verified address proves membership: anyone may register an
                // unverified one at any domain.
                if !user.email_verified() {
                    return None;
                }
                let (_, domain) = user.email_address.rsplit_once('@')?;
                Some(domain.to_ascii_lowercase())
            })
            .feature_sets(features),
    ))
}

/// `acme.test=billing+reports,globex.test=reports` as (tenant, features) pairs.
fn features(spec: &str) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    spec.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (tenant, list) = entry.split_once('=').ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "CRUDAUTH_DEMO_TENANT_FEATURES: `{entry}` is not tenant=feature+feature"
                ))
            })?;
            let names = list.split('+').map(str::trim).filter(|f| !f.is_empty());
            Ok((tenant.trim().to_owned(), names.map(str::to_owned).collect()))
        })
        .collect()
}

async fn whoami(p: Principal<User>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "user_id": p.user_id, "tenant": p.tenant, "via": p.via.as_str() }))
}

/// The tenant-gated routes.
pub fn routes(auth: &CrudAuth<User>) -> Result<Router, ConfigError> {
    let in_path = || Gate::new().tenant_matches(TenantFrom::path("tenant"));
    Ok(Router::new()
        .route("/tenants/{tenant}/whoami", get(whoami))
        .route_layer(auth.require(in_path())?)
        .merge(
            Router::new()
                .route("/tenants/{tenant}/billing", get(whoami))
                .route_layer(auth.require(in_path().feature("billing"))?),
        )
        .with_state(auth.clone()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn feature_lists_parse_and_a_malformed_one_is_refused() {
        let parsed = super::features(" acme.test=billing+reports, globex.test=").unwrap();
        assert_eq!(
            parsed[0],
            ("acme.test".into(), vec!["billing".into(), "reports".into()])
        );
        assert!(parsed[1].1.is_empty());
        assert!(super::features("acme.test").is_err());
        assert!(super::features("").unwrap().is_empty());
    }
}
