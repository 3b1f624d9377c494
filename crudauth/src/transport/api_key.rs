//! The API key transport (feature `api-keys`): a key in the configured header (`X-API-Key`)
//! or in `Authorization: Bearer` with the keys' prefix. No cookie is read, so no CSRF
//! applies; a present key that is not valid fails the request (401), even where
//! authentication is optional. A key and its checks are `crate::api_key`'s; this file reads
//! the credential and turns a valid key into the [`Principal`].

use axum::http::header;
use axum::http::request::Parts;

use crate::api_key::ApiKeys;
use crate::client_ip::ClientMeta;
use crate::core::Core;
use crate::error::AuthError;
use crate::principal::{Principal, Transport};
use crate::user::UserRecord;

/// The value of `Authorization: Bearer <v>` when it is there and readable.
fn bearer_value(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_at_checked(6)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|v| !v.is_empty())
}

/// Whether `Authorization: Bearer` carries one of our keys (so the JWT transport must
/// leave it to this one).
pub(crate) fn in_authorization<U: UserRecord>(keys: &ApiKeys<U>, parts: &Parts) -> bool {
    bearer_value(parts).is_some_and(|v| keys.claims_bearer(v))
}

/// The principal of a request's API key; `None` when it carries none.
pub(crate) async fn authenticate<U: UserRecord>(
    core: &Core<U>,
    keys: &ApiKeys<U>,
    parts: &Parts,
) -> Result<Option<Principal<U>>, AuthError> {
    let mut values = parts.headers.get_all(keys.header()).iter();
    let key = match (values.next(), values.next()) {
        (None, _) => match bearer_value(parts).filter(|v| keys.claims_bearer(v)) {
            Some(v) => v,
            None => return Ok(None),
        },
        // One key, readable: anything else (two headers, bytes that are no text) is a
        // present credential that is not valid.
        (Some(v), None) => v.to_str().map_err(|_| crate::api_key::INVALID)?.trim(),
        (Some(_), Some(_)) => return Err(crate::api_key::INVALID),
    };
    let client = ClientMeta::from_parts(parts, core.trusted_proxy_hops);
    let grant = keys.check(key, client.ip).await?;
    let Some(id) = core.repo.schema().id_kind.parse(&grant.user_id) else {
        return Err(crate::api_key::INVALID);
    };
    // A key a superuser made for a service account lives only while its maker may still
    // make one: an active superuser.
    if let Some(maker) = &grant.made_by {
        let Some(maker) = core.repo.schema().id_kind.parse(maker) else {
            return Err(crate::api_key::INVALID);
        };
        let generation = core.revocation.generation(&maker).await?;
        let maker = super::load_current(core, maker, None, generation).await?;
        if !maker.is_some_and(|m| m.is_superuser()) {
            return Err(crate::api_key::INVALID);
        }
    }
    let generation = core.revocation.generation(&id).await?;
    let Some(user) = super::load_current(core, id, grant.epoch, generation).await? else {
        // The owner is gone or disabled, or the epoch moved on (a password reset, a
        // deactivation, "sign out everywhere"): the key ended with it.
        return Err(crate::api_key::INVALID);
    };
    // The key acts in the tenant it was made in, whatever this request's headers say; with
    // a tenant column, an owner moved to another tenant since has lost it.
    if !core.tenancy.still_member(&user, grant.tenant.as_deref()) {
        return Err(crate::api_key::INVALID);
    }
    let mut principal = super::principal(user, Transport::ApiKey, grant.scopes, None);
    principal.api_key_id = Some(grant.id);
    principal.tenant = grant.tenant;
    Ok(Some(principal))
}
