//! The transports: how a credential travels and becomes a [`Principal`].
//!
//! One file per transport, each holding its credential read, its resolution, its CSRF rule
//! and how it issues and clears its credential: [`session`] (cookie + synchronizer token)
//! , [`bearer`] (JWT access + rotating refresh tokens) and `api_key` (feature `api-keys`:
//! `X-API-Key` or `Authorization: Bearer <prefix>...`). They are tried in the order they
//! were configured; the first whose credential is present wins.

#[cfg(feature = "api-keys")]
pub mod api_key;
pub mod bearer;
pub mod session;

use std::sync::Arc;

use axum::http::request::Parts;

use crate::core::Core;
use crate::error::AuthError;
use crate::principal::{Principal, Transport};
use crate::session::LiveSession;
use crate::store::repo_fault;
use crate::user::{UserId, UserRecord};

/// Authenticates a request: the configured transports in order (or only `only`).
///
/// `Ok(None)` when no credential is present. A present but invalid bearer token, a revoked
/// token or a failed CSRF check is an error even where authentication is optional. A stale
/// session cookie (unknown, expired, revoked) counts as absent.
pub(crate) async fn authenticate<U: UserRecord>(
    core: &Core<U>,
    parts: &Parts,
    only: Option<Transport>,
    #[cfg(feature = "api-keys")] api_keys: Option<&crate::api_key::ApiKeys<U>>,
) -> Result<Option<Principal<U>>, AuthError> {
    // The bypass stands in for the session transport (its principal comes `via` it), so a
    // gate narrowed to another transport is not served by it.
    #[cfg(feature = "dev-bypass")]
    if let Some(bypass) = &core.dev_bypass
        && only.is_none_or(|t| t == Transport::Session)
    {
        return bypass
            .principal(core.repo.as_ref(), &core.tenancy, parts)
            .await;
    }
    for transport in &core.transports {
        if only.is_some_and(|o| o != *transport) {
            continue;
        }
        let found = match transport {
            Transport::Session => session::authenticate(core, parts).await?,
            #[cfg(feature = "api-keys")]
            Transport::Bearer if api_keys.is_some_and(|k| api_key::in_authorization(k, parts)) => {
                None // an API key in `Authorization: Bearer`: the API key transport's
            }
            Transport::Bearer => bearer::authenticate(core, parts).await?,
            #[cfg(feature = "api-keys")]
            Transport::ApiKey => match api_keys {
                Some(keys) => api_key::authenticate(core, keys, parts).await?,
                None => None,
            },
            #[cfg(not(feature = "api-keys"))]
            Transport::ApiKey => None,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The user of a credential: `None` when gone, disabled or the epoch moved on (`epoch`
/// `None`: a credential that does not end with the epoch, a service account's API key).
///
/// `generation` is the user's generation as the credential's path learned it (the session
/// record carries it; the bearer path reads it from the store). A
/// copy cached under that generation is used without reading the table; otherwise the row
/// (and a store-kept epoch) is read and cached under it. The generation is learned before
/// the row is read and every write moves it after writing, so a copy read before a write is
/// never used after it.
pub(crate) async fn load_current<U: UserRecord>(
    core: &Core<U>,
    id: UserId,
    epoch: Option<i64>,
    generation: i64,
) -> Result<Option<Arc<U>>, AuthError> {
    let revocation = &core.revocation;
    let (user, current) = match revocation.cache().get(&id, generation) {
        Some(entry) => (entry.user, entry.epoch),
        None => {
            let Some(user) = core.repo.find_by_id(&id).await.map_err(repo_fault)? else {
                return Ok(None);
            };
            let current = revocation.epoch(&user).await?;
            let user = Arc::new(user);
            revocation
                .cache()
                .put(id, user.clone(), current, generation);
            (user, current)
        }
    };
    if !user.is_active() || epoch.is_some_and(|epoch| current != epoch) {
        return Ok(None);
    }
    Ok(Some(user))
}

/// The acting superuser of an impersonation, while they still may act: active, still a
/// superuser, at the epoch the impersonation began with (their password reset, demotion or
/// deactivation ends every impersonation they started).
pub(crate) async fn impersonator<U: UserRecord>(
    core: &Core<U>,
    user_id: &str,
    epoch: i64,
) -> Result<Option<UserId>, AuthError> {
    let Some(id) = core.repo.schema().id_kind.parse(user_id) else {
        return Ok(None);
    };
    let generation = core.revocation.generation(&id).await?;
    let admin = load_current(core, id.clone(), Some(epoch), generation).await?;
    Ok(admin.filter(|a| a.is_superuser()).map(|_| id))
}

/// The principal for a loaded user.
pub(crate) fn principal<U: UserRecord>(
    user: Arc<U>,
    via: Transport,
    scopes: Vec<String>,
    session: Option<LiveSession>,
) -> Principal<U> {
    let (session_handle, signed_in_at, sudo_until) = match session {
        Some(s) => (Some(s.handle), Some(s.record.created), s.record.sudo_until),
        None => (None, None, None),
    };
    Principal {
        impersonated_by: None,
        api_key_id: None,
        tenant: None,
        user_id: user.user_id(),
        is_superuser: user.is_superuser(),
        email_verified: user.email_verified(),
        user,
        scopes,
        via,
        session_handle,
        signed_in_at,
        sudo_until,
    }
}
