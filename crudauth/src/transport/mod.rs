//! The transports: how a credential travels and becomes a [`Principal`].
//!
//! One file per transport, each holding its credential read, its resolution, its CSRF rule
//! and how it issues and clears its credential: [`session`] (cookie + synchronizer token)
//! and [`bearer`] (JWT access + rotating refresh tokens). They are tried in the order they
//! were configured; the first whose credential is present wins.

pub mod bearer;
pub mod session;

use std::sync::Arc;

use axum::http::request::Parts;

use crate::core::Core;
use crate::error::AuthError;
use crate::principal::{Principal, Transport};
use crate::session::LiveSession;
use crate::store::repo_fault;
use crate::user::UserRecord;

/// Authenticates a request: the configured transports in order (or only `only`).
///
/// `Ok(None)` when no credential is present. A present but invalid bearer token, a revoked
/// token or a failed CSRF check is an error even where authentication is optional. A stale
/// session cookie (unknown, expired, revoked) counts as absent.
pub(crate) async fn authenticate<U: UserRecord>(
    core: &Core<U>,
    parts: &Parts,
    only: Option<Transport>,
) -> Result<Option<Principal<U>>, AuthError> {
    for transport in &core.transports {
        if only.is_some_and(|o| o != *transport) {
            continue;
        }
        let found = match transport {
            Transport::Session => session::authenticate(core, parts).await?,
            Transport::Bearer => bearer::authenticate(core, parts).await?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Loads a user for a credential: `None` when gone, disabled or the epoch moved on.
pub(crate) async fn load_current<U: UserRecord>(
    core: &Core<U>,
    raw_id: &str,
    epoch: i64,
) -> Result<Option<U>, AuthError> {
    let Some(id) = core.repo.schema().id_kind.parse(raw_id) else {
        return Ok(None);
    };
    let Some(user) = core.repo.find_by_id(&id).await.map_err(repo_fault)? else {
        return Ok(None);
    };
    if !user.is_active() || core.revocation.epoch(&user).await? != epoch {
        return Ok(None);
    }
    Ok(Some(user))
}

/// The principal for a loaded user.
pub(crate) fn principal<U: UserRecord>(
    user: U,
    via: Transport,
    scopes: Vec<String>,
    session: Option<LiveSession>,
) -> Principal<U> {
    let (session_handle, signed_in_at, sudo_until) = match session {
        Some(s) => (Some(s.handle), Some(s.record.created), s.record.sudo_until),
        None => (None, None, None),
    };
    Principal {
        user_id: user.user_id(),
        is_superuser: user.is_superuser(),
        email_verified: user.email_verified(),
        user: Arc::new(user),
        scopes,
        via,
        session_handle,
        signed_in_at,
        sudo_until,
    }
}
