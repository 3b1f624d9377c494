//! Checking a presented key: its shape, one read by id, the HMAC compared in constant time
//! (the current secret, or the previous one inside a rotation's overlap), the expiry, the
//! client networks, the per-key rate limit, and a use recorded at most once a minute.

use std::net::IpAddr;

use super::{ApiKeys, StoredApiKey, store_fault};
use crate::error::AuthError;
use crate::keys::same_secret;
use crate::user::UserRecord;

/// What a valid key grants: whose it is and what it may do.
#[derive(Clone, Debug)]
pub(crate) struct KeyGrant {
    /// The key's public id.
    pub id: String,
    /// The owner's id, textual.
    pub user_id: String,
    /// The key's scopes.
    pub scopes: Vec<String>,
    /// The owner's epoch the key was made at; `None` for a service key (which does not end
    /// with its owner's epoch).
    pub epoch: Option<i64>,
    /// The superuser who made it for a service account (the key works only while they
    /// are an active superuser); `None` for a user's own key.
    pub made_by: Option<String>,
    /// The tenant the key was made in.
    pub tenant: Option<String>,
}

/// Every refusal of a key that is not valid looks the same (unknown id, wrong secret,
/// malformed): 401 `Invalid API key`.
pub(crate) const INVALID: AuthError = AuthError::Unauthorized("Invalid API key");

/// How often a key's last use is written at most.
const TOUCH_INTERVAL: i64 = 60;

/// Whether the client address is inside one of the key's networks (no networks: anywhere).
/// An address the server could not learn is outside every network.
fn allowed_from(key: &StoredApiKey, ip: Option<IpAddr>) -> bool {
    if key.allowed_ips.is_empty() {
        return true;
    }
    let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
        return false;
    };
    key.allowed_ips.iter().any(|net| {
        net.parse::<ipnet::IpNet>()
            .is_ok_and(|net| net.contains(&ip))
    })
}

impl<U: UserRecord> ApiKeys<U> {
    /// Whether this process should write a key's use now: not if it did within the last
    /// minute (the stored time may lag behind its own write, in the background).
    fn first_touch(&self, id: &str, now: i64) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        if touched.get(id).is_some_and(|t| *t > now - TOUCH_INTERVAL) {
            return false;
        }
        touched.put(id.to_owned(), now);
        true
    }

    /// Checks a presented key string from a client at `ip`.
    pub(crate) async fn check(&self, key: &str, ip: Option<IpAddr>) -> Result<KeyGrant, AuthError> {
        let Some(id) = self.parse(key) else {
            return Err(INVALID);
        };
        let stored = self.config.store.find(id).await.map_err(store_fault)?;
        let presented = self.hash(key);
        let now = crate::clock::system_secs();
        let Some(stored) = stored.filter(|k| {
            let current = same_secret(&k.secret_hash, &presented);
            let previous = k.previous_until.is_some_and(|until| until > now)
                && k.previous_hash
                    .as_deref()
                    .is_some_and(|h| same_secret(h, &presented));
            // Both compared, whichever matched: no early exit on the first.
            current | previous
        }) else {
            return Err(INVALID);
        };
        if stored.expires_at.is_some_and(|at| at <= now) {
            return Err(AuthError::Unauthorized("API key expired"));
        }
        if !allowed_from(&stored, ip) {
            crate::audit::emit(&crate::audit::AuditEvent {
                user_id: Some(stored.user_id.to_string()),
                transport: Some("api_key"),
                reason: Some("address"),
                credential_id: Some(stored.id.to_string()),
                ..crate::audit::AuditEvent::new("api_key_used", crate::audit::Outcome::Refused)
            });
            return Err(AuthError::Forbidden(
                "API key not allowed from this address",
            ));
        }
        // Counted only once the secret checked out: someone who knows an id (it is in the
        // key's visible prefix) cannot spend its owner's budget with wrong secrets.
        self.core.limiter.enforce("api_key", &stored.id).await?;
        if stored
            .last_used_at
            .is_none_or(|t| t <= now - TOUCH_INTERVAL)
            && self.first_touch(&stored.id, now)
        {
            let store = self.config.store.clone();
            let id = stored.id.clone();
            self.core.background.spawn(async move {
                if let Err(e) = store.touch(&id, now, now - TOUCH_INTERVAL).await {
                    crate::store::report_fault("api key last use", &e);
                }
            });
        }
        if tracing::enabled!(target: "crudauth::audit", tracing::Level::DEBUG) {
            let client_ip = ip.map(|ip| ip.to_string());
            crate::audit::emit_debug(&crate::audit::AuditEvent {
                user_id: Some(stored.user_id.to_string()),
                transport: Some("api_key"),
                client_ip: client_ip.as_deref(),
                credential_id: Some(stored.id.to_string()),
                ..crate::audit::AuditEvent::new("api_key_used", crate::audit::Outcome::Success)
            });
        }
        Ok(KeyGrant {
            epoch: (!stored.service).then_some(stored.epoch),
            made_by: (stored.created_by != stored.user_id).then_some(stored.created_by),
            tenant: stored.tenant,
            id: stored.id,
            user_id: stored.user_id,
            scopes: stored.scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(nets: &[&str]) -> StoredApiKey {
        StoredApiKey {
            id: "0".repeat(16),
            user_id: "1".into(),
            name: "k".into(),
            scopes: vec![],
            secret_hash: String::new(),
            previous_hash: None,
            previous_until: None,
            allowed_ips: nets.iter().map(|n| (*n).to_owned()).collect(),
            epoch: 0,
            service: false,
            created_by: "1".into(),
            created_at: 0,
            expires_at: None,
            last_used_at: None,
            tenant: None,
        }
    }

    #[test]
    fn networks_hold_their_addresses_only() {
        let k = key(&["203.0.113.0/24", "2001:db8::/32"]);
        assert!(allowed_from(&k, Some("203.0.113.9".parse().unwrap())));
        assert!(allowed_from(&k, Some("2001:db8::1".parse().unwrap())));
        // An IPv4 client seen through an IPv6 socket is the same client.
        assert!(allowed_from(
            &k,
            Some("::ffff:203.0.113.9".parse().unwrap())
        ));
        assert!(!allowed_from(&k, Some("198.51.100.1".parse().unwrap())));
        assert!(!allowed_from(&k, None), "an unknown address is outside");
        assert!(allowed_from(&key(&[]), None), "no networks: anywhere");
    }

    #[test]
    fn hashes_compare_whole() {
        assert!(same_secret("abcd", "abcd"));
        assert!(!same_secret("abcd", "abce"));
        assert!(!same_secret("abcd", "abc"));
    }
}
