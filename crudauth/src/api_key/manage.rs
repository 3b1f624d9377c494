//! Making, listing, rotating and deleting keys.
//!
//! Making and rotating a key needs a session inside its sudo window: a key outlives the
//! sign-in that made it, so a stolen bearer token or session cookie alone cannot turn
//! itself into one. Neither an API key nor an impersonation token can manage keys.

use serde::{Deserialize, Serialize};

use super::{ApiKeys, ID_LEN, StoredApiKey, store_fault};
use crate::error::{AuthError, ValidationIssue};
use crate::keys::{hex, random_bytes, random_token};
use crate::principal::Principal;
use crate::user::UserRecord;

/// The body of `POST /api-keys`.
///
/// ```
/// let req: crudauth::api_key::NewApiKeyRequest =
///     serde_json::from_str(r#"{"name": "CI", "scopes": ["reports:read"], "expires_in": 86400}"#).unwrap();
/// assert_eq!(req.expires_in, Some(86400));
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyRequest {
    /// A name for people ("CI", "backup script"): 1 to 64 characters.
    pub name: String,
    /// The scopes asked for, clamped to the grantable ones.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Seconds until it expires (at least 60); none: it does not expire (unless the config
    /// has a maximum lifetime, which is then the default).
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Client networks it may be used from (`203.0.113.0/24`, `2001:db8::/32`, or one
    /// address); none: anywhere. At most 32.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// A superuser only: the id of the service account the key is for (see
    /// `ApiKeyConfig::service_accounts`).
    #[serde(default)]
    pub owner: Option<String>,
    /// A superuser only, for a service account: a key that does not end with the account's
    /// revocation epoch (a password reset or "sign out everywhere").
    #[serde(default)]
    pub service: bool,
}

/// A key as listed: everything but its secret.
///
/// ```
/// let info = crudauth::api_key::ApiKeyInfo { id: "0123456789abcdef".into(),
///     prefix: "ca_live_0123456789abcdef".into(), owner: "7".into(), created_by: "7".into(), name: "CI".into(),
///     scopes: vec![], allowed_ips: vec![], service: false, created_at: 1, expires_at: None,
///     last_used_at: None };
/// assert_eq!(serde_json::to_value(&info).unwrap()["name"], "CI");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    /// The public id (`DELETE /api-keys/{id}`).
    pub id: String,
    /// The key's visible beginning (prefix and id), to recognise it.
    pub prefix: String,
    /// The owner's id.
    pub owner: String,
    /// Who made it: the owner, or the superuser who made it for a service account.
    pub created_by: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// The client networks it is limited to (empty: anywhere).
    pub allowed_ips: Vec<String>,
    /// A service account's key.
    pub service: bool,
    /// Unix seconds of its creation.
    pub created_at: i64,
    /// Unix seconds of its expiry, if any.
    pub expires_at: Option<i64>,
    /// Unix seconds of its last use (to the minute).
    pub last_used_at: Option<i64>,
}

/// A key just made or rotated: the only time its secret is shown.
///
/// ```
/// # let info = crudauth::api_key::ApiKeyInfo { id: "0123456789abcdef".into(),
/// #     prefix: "ca_live_0123456789abcdef".into(), owner: "7".into(), created_by: "7".into(), name: "CI".into(),
/// #     scopes: vec![], allowed_ips: vec![], service: false, created_at: 1, expires_at: None,
/// #     last_used_at: None };
/// let made = crudauth::api_key::NewApiKey { key: "ca_live_...".into(), info };
/// assert!(serde_json::to_value(&made).unwrap()["key"].is_string());
/// ```
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewApiKey {
    /// The whole key: shown once, stored nowhere.
    pub key: String,
    /// What is listed of it.
    #[serde(flatten)]
    pub info: ApiKeyInfo,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("key", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

const NOT_FOUND: AuthError = AuthError::NotFound("API key not found.");
const TOO_MANY: AuthError =
    AuthError::BadRequest("This account holds as many API keys as it may: delete one first.");
const MAX_NETWORKS: usize = 32;
const MAX_SCOPES: usize = 64;
/// Ten years: the longest expiry a key may be given.
const MAX_EXPIRES_IN: u64 = 10 * 366 * 86_400;

fn invalid(field: &str, msg: &str) -> AuthError {
    AuthError::Validation(vec![ValidationIssue::body(field, "value_error", msg)])
}

fn clean_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AuthError::Validation(vec![ValidationIssue::too_short(
            "name", 1,
        )]));
    }
    if name.chars().count() > 64 {
        return Err(AuthError::Validation(vec![ValidationIssue::too_long(
            "name", 64,
        )]));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "A name has no control characters."));
    }
    Ok(name.to_owned())
}

/// Parses and normalizes the networks (`10.1.2.3/8` becomes `10.0.0.0/8`; one address
/// becomes a /32 or /128).
fn clean_networks(raw: &[String]) -> Result<Vec<String>, AuthError> {
    if raw.len() > MAX_NETWORKS {
        return Err(invalid("allowed_ips", "At most 32 networks."));
    }
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let entry = entry.trim();
        let net = match entry.parse::<ipnet::IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => match entry.parse::<std::net::IpAddr>() {
                Ok(ip) => ipnet::IpNet::from(ip.to_canonical()),
                Err(_) => {
                    return Err(invalid(
                        "allowed_ips",
                        "Each entry is an IP address or a network in CIDR form.",
                    ));
                }
            },
        };
        let text = net.to_string();
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}

/// Refuses a principal that is not the person: an API key (a key making keys would make
/// a leak permanent) or an impersonation.
fn own_authority<U>(principal: &Principal<U>) -> Result<(), AuthError> {
    principal.refuse_delegated()
}

impl<U: UserRecord> ApiKeys<U> {
    fn info(&self, key: &StoredApiKey) -> ApiKeyInfo {
        ApiKeyInfo {
            id: key.id.clone(),
            prefix: format!("{}{}", self.config.prefix, key.id),
            owner: key.user_id.clone(),
            created_by: key.created_by.clone(),
            name: key.name.clone(),
            scopes: key.scopes.clone(),
            allowed_ips: key.allowed_ips.clone(),
            service: key.service,
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
        }
    }

    fn clamp_scopes(&self, requested: &[String]) -> Result<Vec<String>, AuthError> {
        if requested.len() > MAX_SCOPES {
            return Err(invalid("scopes", "Too many scopes."));
        }
        let mut out: Vec<String> = requested
            .iter()
            .filter(|s| self.config.scopes.contains(s.as_str()))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn expiry(&self, expires_in: Option<u64>, now: i64) -> Result<Option<i64>, AuthError> {
        let max = self.config.max_lifetime.map(|d| d.as_secs());
        let seconds = match (expires_in, max) {
            (None, None) => return Ok(None),
            (None, Some(max)) => max,
            (Some(s), max) => {
                if !(60..=MAX_EXPIRES_IN).contains(&s) || max.is_some_and(|m| s > m) {
                    return Err(invalid(
                        "expires_in",
                        "The expiry is out of range for this server.",
                    ));
                }
                s
            }
        };
        Ok(Some(now.saturating_add(
            i64::try_from(seconds).unwrap_or(i64::MAX),
        )))
    }

    /// The owner of a new key: the principal, or (a superuser only) a service account.
    async fn owner_of(
        &self,
        principal: &Principal<U>,
        request: &NewApiKeyRequest,
    ) -> Result<std::sync::Arc<U>, AuthError> {
        let me = principal.user_id.to_string();
        let other = request.owner.as_deref().filter(|o| *o != me);
        if other.is_none() && !request.service {
            return Ok(principal.user.clone());
        }
        if !principal.is_superuser {
            return Err(AuthError::Forbidden("Insufficient privileges"));
        }
        let Some(is_service) = &self.config.service_accounts else {
            return Err(AuthError::Forbidden("No service accounts are configured."));
        };
        let owner = other.unwrap_or(&me);
        if !is_service(owner) {
            return Err(AuthError::Forbidden("Not a service account."));
        }
        let user = self.core.user_by_text_id(owner).await?;
        // Another tenant's service account is, to a superuser of one tenant, one that does
        // not exist (see `TenantConfig::administration_across_tenants`).
        let tenancy = &self.core.tenancy;
        match user
            .filter(|u| u.is_active() && !u.is_superuser() && tenancy.may_administer(principal, u))
        {
            Some(user) => Ok(std::sync::Arc::new(user)),
            None => Err(AuthError::NotFound("User not found.")),
        }
    }

    /// Makes a key (the principal's own, or a superuser's for a named user); the answer
    /// holds its secret, once.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.api_keys(crudauth::api_key::ApiKeyConfig::default()).build()?;
    /// # let principal = crudauth::doc_fixture::elevated_principal(&auth).await?;
    /// use crudauth::api_key::NewApiKeyRequest;
    /// let keys = auth.api_keys().unwrap();
    /// let made = keys.create(&principal, NewApiKeyRequest { name: "CI".into(), ..Default::default() }).await?;
    /// assert!(made.key.starts_with("ca_live_"));
    /// assert_eq!(keys.list(&principal, None).await?.len(), 1);
    /// # Ok(()) });
    /// ```
    pub async fn create(
        &self,
        principal: &Principal<U>,
        request: NewApiKeyRequest,
    ) -> Result<NewApiKey, AuthError> {
        own_authority(principal)?;
        principal.require_elevated()?;
        let name = clean_name(&request.name)?;
        let scopes = self.clamp_scopes(&request.scopes)?;
        let allowed_ips = clean_networks(&request.allowed_ips)?;
        let now = crate::clock::system_secs();
        let expires_at = self.expiry(request.expires_in, now)?;
        let owner = self.owner_of(principal, &request).await?;
        let owner_id = owner.user_id().to_string();
        let held = (self.config.store.for_user(&owner_id).await).map_err(store_fault)?;
        if held.len() >= self.config.max_per_user {
            return Err(TOO_MANY);
        }
        let epoch = self.core.revocation.epoch(&owner).await?;
        // The tenant the key acts in for good: the maker's own for their key; a service
        // account's own (with no request to resolve from) for a key made for one.
        let tenant = if owner.user_id() == principal.user_id {
            principal.tenant.clone()
        } else {
            self.core.tenancy.of(&owner, &axum::http::HeaderMap::new())
        };
        for _ in 0..3 {
            let id = hex(&random_bytes::<{ ID_LEN / 2 }>());
            let key = format!("{}{}_{}", self.config.prefix, id, random_token());
            let stored = StoredApiKey {
                id,
                user_id: owner_id.clone(),
                name: name.clone(),
                scopes: scopes.clone(),
                secret_hash: self.hash(&key),
                previous_hash: None,
                previous_until: None,
                allowed_ips: allowed_ips.clone(),
                epoch,
                service: request.service,
                created_by: principal.user_id.to_string(),
                created_at: now,
                expires_at,
                last_used_at: None,
                tenant: tenant.clone(),
            };
            if self
                .config
                .store
                .insert(&stored)
                .await
                .map_err(store_fault)?
            {
                // Two makes at once may both have passed the count: the one that finds
                // the account over its limit after writing takes its key back.
                let now_held =
                    (self.config.store.for_user(&owner_id).await).map_err(store_fault)?;
                if now_held.len() > self.config.max_per_user {
                    (self.config.store.delete(&owner_id, &stored.id).await).map_err(store_fault)?;
                    return Err(TOO_MANY);
                }
                crate::audit::emit(&crate::audit::AuditEvent {
                    user_id: Some(owner_id.to_string()),
                    actor_id: Some(principal.user_id.to_string()),
                    credential_id: Some(stored.id.to_string()),
                    ..crate::audit::AuditEvent::new(
                        "api_key_created",
                        crate::audit::Outcome::Success,
                    )
                });
                return Ok(NewApiKey {
                    key,
                    info: self.info(&stored),
                });
            }
        }
        // Three 64-bit collisions in a row: the store is not storing what it is given.
        tracing::error!("api key store refused three fresh ids");
        Err(AuthError::Internal)
    }

    /// The keys of the principal (or, for a superuser, of `owner`), oldest first; no
    /// secrets.
    pub async fn list(
        &self,
        principal: &Principal<U>,
        owner: Option<&str>,
    ) -> Result<Vec<ApiKeyInfo>, AuthError> {
        own_authority(principal)?;
        let me = principal.user_id.to_string();
        let owner = match owner {
            Some(other) if other != me => {
                if !principal.is_superuser {
                    return Err(AuthError::Forbidden("Insufficient privileges"));
                }
                other.to_owned()
            }
            _ => me.clone(),
        };
        let keys = (self.config.store.for_user(&owner).await).map_err(store_fault)?;
        // Another tenant's keys are, to a superuser of one tenant, none at all.
        let tenancy = &self.core.tenancy;
        Ok(keys
            .iter()
            .filter(|k| {
                k.user_id == me || tenancy.may_administer_in(principal, k.tenant.as_deref())
            })
            .map(|k| self.info(k))
            .collect())
    }

    /// A key the principal may act on: their own; for a revocation, any key for a
    /// superuser; for a rotation, one a superuser made for a service account.
    async fn own_key(
        &self,
        principal: &Principal<U>,
        id: &str,
        revoke: bool,
    ) -> Result<StoredApiKey, AuthError> {
        if id.len() != ID_LEN {
            return Err(NOT_FOUND);
        }
        let me = principal.user_id.to_string();
        let key = (self.config.store.find(id).await).map_err(store_fault)?;
        // A superuser acts on other users' keys of their own tenant only (see
        // `TenantConfig::administration_across_tenants`).
        let tenancy = &self.core.tenancy;
        key.filter(|k| {
            k.user_id == me
                || (principal.is_superuser
                    && (revoke || k.created_by == me)
                    && tenancy.may_administer_in(principal, k.tenant.as_deref()))
        })
        .ok_or(NOT_FOUND)
    }

    /// Deletes a key: refused from then on, on every process (404 for a key the principal
    /// may not touch).
    pub async fn revoke(&self, principal: &Principal<U>, id: &str) -> Result<(), AuthError> {
        own_authority(principal)?;
        let key = self.own_key(principal, id, true).await?;
        if !(self.config.store.delete(&key.user_id, &key.id).await).map_err(store_fault)? {
            return Err(NOT_FOUND);
        }
        crate::audit::emit(&crate::audit::AuditEvent {
            user_id: Some(key.user_id.to_string()),
            actor_id: Some(principal.user_id.to_string()),
            credential_id: Some(key.id.to_string()),
            ..crate::audit::AuditEvent::new("api_key_revoked", crate::audit::Outcome::Success)
        });
        Ok(())
    }

    /// Gives a key a new secret (shown once). The old one keeps working for `overlap`
    /// seconds (at most the configured maximum), so a deployment can switch without a gap.
    pub async fn rotate(
        &self,
        principal: &Principal<U>,
        id: &str,
        overlap: u64,
    ) -> Result<NewApiKey, AuthError> {
        own_authority(principal)?;
        principal.require_elevated()?;
        if overlap > self.config.max_overlap.as_secs() {
            return Err(invalid(
                "overlap",
                "The overlap is longer than this server allows.",
            ));
        }
        let mut key = self.own_key(principal, id, false).await?;
        let now = crate::clock::system_secs();
        let fresh = format!("{}{}_{}", self.config.prefix, key.id, random_token());
        let new_hash = self.hash(&fresh);
        let until = (overlap > 0).then(|| now + overlap as i64);
        if !(self.config.store)
            .rotate(&key.id, &key.secret_hash, &new_hash, until)
            .await
            .map_err(store_fault)?
        {
            // Deleted or rotated by someone else meanwhile: this rotation did not happen.
            return Err(AuthError::Conflict("The key changed meanwhile: try again."));
        }
        crate::audit::emit(&crate::audit::AuditEvent {
            user_id: Some(key.user_id.to_string()),
            actor_id: Some(principal.user_id.to_string()),
            credential_id: Some(key.id.to_string()),
            ..crate::audit::AuditEvent::new("api_key_rotated", crate::audit::Outcome::Success)
        });
        key.secret_hash = new_hash;
        Ok(NewApiKey {
            key: fresh,
            info: self.info(&key),
        })
    }
}
