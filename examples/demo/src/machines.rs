//! The demo's API keys and impersonation.
//!
//! API keys live in the `crudauth_api_keys` table beside the accounts (made here if
//! missing): `POST /api-keys` inside the sudo window, then `X-API-Key: ca_live_...` or
//! `Authorization: Bearer ca_live_...`. A superuser in sudo may impersonate: a 15-minute token
//! (`POST /admin/users/{id}/token`) or session (`POST /admin/users/{id}/impersonate`, back
//! with `POST /admin/impersonation/stop`).

use std::sync::Arc;

use crudauth::admin::ImpersonationConfig;
use crudauth::api_key::ApiKeyConfig;
use crudauth_sea::{API_KEY_TABLE, SeaApiKeyStore};
use sea_orm::DatabaseConnection;

/// Keys in the demo's database, granting at most `me:read` and `reports:read`.
pub async fn api_keys(db: &DatabaseConnection) -> Result<ApiKeyConfig, sea_orm::DbErr> {
    SeaApiKeyStore::create_table(db, API_KEY_TABLE).await?;
    let store = Arc::new(SeaApiKeyStore::new(db.clone(), API_KEY_TABLE));
    Ok(ApiKeyConfig::default()
        .scopes(["me:read", "reports:read"])
        .store(store))
}

/// Impersonation with the defaults: 15 minutes, never another superuser.
pub fn impersonation() -> ImpersonationConfig {
    ImpersonationConfig::default()
}
