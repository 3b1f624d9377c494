//! Impersonation: a superuser acting as another user, for support.
//!
//! The hardening over zndraw-auth's admin token:
//! - only a superuser inside their sudo window (an elevated session) may begin, and never
//!   from an impersonation or an API key;
//! - the target must be active, not the superuser themselves, and not another superuser
//!   unless the config allows it;
//! - a token is an access token with `impersonated_by` (and the superuser's epoch), 15
//!   minutes by default, and no refresh token; a session ends after 15 minutes too;
//! - both end as soon as the superuser may no longer act (demoted, disabled, their epoch
//!   moved on), and the user's own revocation ends them like any credential;
//! - the principal names the superuser (`Principal::impersonated_by`), is never elevated,
//!   and cannot change the password or email, manage second factors, passkeys or API keys,
//!   or impersonate in turn ([`crate::Principal::refuse_delegated`]);
//! - every start fires `on_impersonation` and writes one structured log line.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::client_ip::ClientMeta;
use crate::core::Core;
use crate::error::AuthError;
use crate::hooks::Event;
use crate::principal::Principal;
use crate::session::{Impersonator, LiveSession, NewSession};
use crate::user::UserRecord;

/// How impersonation behaves.
///
/// ```
/// use std::time::Duration;
/// let config = crudauth::admin::ImpersonationConfig::default()
///     .lifetime(Duration::from_secs(600))
///     .allow_superusers(false);
/// ```
#[derive(Clone, Debug)]
pub struct ImpersonationConfig {
    pub(crate) lifetime: Duration,
    pub(crate) allow_superusers: bool,
}

impl Default for ImpersonationConfig {
    fn default() -> Self {
        ImpersonationConfig {
            lifetime: Duration::from_secs(15 * 60),
            allow_superusers: false,
        }
    }
}

impl ImpersonationConfig {
    /// How long an impersonation token or session lives (default 15 minutes; at most an
    /// hour, which `build` enforces).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let config = crudauth::admin::ImpersonationConfig::default().lifetime(Duration::from_secs(300));
    /// ```
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Whether a superuser may impersonate another superuser (default: no).
    ///
    /// ```
    /// let config = crudauth::admin::ImpersonationConfig::default().allow_superusers(true);
    /// ```
    pub fn allow_superusers(mut self, allow: bool) -> Self {
        self.allow_superusers = allow;
        self
    }
}

/// An impersonation token, as `POST /admin/users/{id}/token` answers it.
///
/// ```
/// let t = crudauth::admin::ImpersonationToken { access_token: "eyJ...".into(), token_type: "bearer",
///     expires_in: 900, user_id: "2".into(), impersonated_by: "1".into() };
/// assert_eq!(serde_json::to_value(&t).unwrap()["impersonated_by"], "1");
/// ```
#[derive(Clone, Serialize)]
pub struct ImpersonationToken {
    /// The access token (no refresh token is issued).
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The user impersonated.
    pub user_id: String,
    /// The superuser acting.
    pub impersonated_by: String,
}

impl std::fmt::Debug for ImpersonationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImpersonationToken")
            .field("expires_in", &self.expires_in)
            .field("user_id", &self.user_id)
            .field("impersonated_by", &self.impersonated_by)
            .finish_non_exhaustive()
    }
}

/// The impersonation service. Reached as `auth.impersonation()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
/// let auth = b.impersonation(crudauth::admin::ImpersonationConfig::default()).build()?;
/// assert!(auth.impersonation().is_some());
/// # Ok(()) });
/// ```
pub struct Impersonation<U> {
    core: Arc<Core<U>>,
    config: ImpersonationConfig,
}

impl<U> Clone for Impersonation<U> {
    fn clone(&self) -> Self {
        Impersonation {
            core: self.core.clone(),
            config: self.config.clone(),
        }
    }
}

/// A started impersonation session: the new session and when it ends.
pub(crate) struct Started {
    pub session: NewSession,
    pub until: i64,
    pub user_id: String,
}

impl<U: UserRecord> Impersonation<U> {
    pub(crate) fn new(
        core: Arc<Core<U>>,
        config: ImpersonationConfig,
    ) -> Result<Self, crate::error::ConfigError> {
        if config.lifetime.is_zero() || config.lifetime > Duration::from_secs(3600) {
            return Err(crate::error::ConfigError::Invalid(
                "impersonation: the lifetime is between 1 second and 1 hour".into(),
            ));
        }
        Ok(Impersonation { core, config })
    }

    /// The user `admin` may impersonate, after every rule of the module docs.
    async fn target(&self, admin: &Principal<U>, target: &str) -> Result<U, AuthError> {
        if !admin.is_superuser {
            return Err(AuthError::Forbidden("Insufficient privileges"));
        }
        admin.refuse_delegated()?;
        admin.require_elevated()?;
        let Some(user) = self.core.user_by_text_id(target).await? else {
            return Err(AuthError::NotFound("User not found."));
        };
        // Another tenant's user is not found, before any other rule can tell it exists
        // (or whether it is active, or a superuser), as in the users admin.
        if !self.core.tenancy.may_impersonate(admin, &user) {
            return Err(AuthError::NotFound("User not found."));
        }
        if user.user_id() == admin.user_id {
            return Err(AuthError::BadRequest("You cannot impersonate yourself."));
        }
        if !user.is_active() {
            return Err(AuthError::BadRequest("The user is not active."));
        }
        if user.is_superuser() && !self.config.allow_superusers {
            return Err(AuthError::Forbidden(
                "Impersonating a superuser is not allowed.",
            ));
        }
        Ok(user)
    }

    async fn announce(
        &self,
        admin: &Principal<U>,
        user: U,
        client: &ClientMeta,
        via: &'static str,
    ) {
        // The dispatcher logs it (`impersonation_started`, the superuser as `actor_id`).
        let mut ctx = client.hook_context(Some(via));
        ctx.impersonated_by = Some(admin.user_id.to_string());
        self.core
            .hooks
            .fire_user(Event::Impersonation, Arc::new(user), &ctx)
            .await;
    }

    /// Mints an impersonation token for the user `target` names (scopes clamped like
    /// `/token`'s; the bearer transport's defaults when none are asked for).
    pub async fn token(
        &self,
        admin: &Principal<U>,
        target: &str,
        scopes: &[String],
        client: &ClientMeta,
    ) -> Result<ImpersonationToken, AuthError> {
        let Some(tokens) = &self.core.tokens else {
            return Err(AuthError::NotFound("Not Found"));
        };
        let user = self.target(admin, target).await?;
        let epoch = self.core.revocation.epoch(&user).await?;
        let admin_epoch = self.core.revocation.epoch(&admin.user).await?;
        let scopes = tokens.clamp_scopes(scopes.iter().map(String::as_str));
        let user_id = user.user_id().to_string();
        let admin_id = admin.user_id.to_string();
        let access_token = tokens.impersonation_token(
            (&user_id, epoch, scopes),
            (&admin_id, admin_epoch),
            (user.is_superuser(), self.config.lifetime),
            self.core.tenancy.of(&user, &axum::http::HeaderMap::new()),
        )?;
        self.announce(admin, user, client, "bearer").await;
        Ok(ImpersonationToken {
            access_token,
            token_type: "bearer",
            expires_in: self.config.lifetime.as_secs(),
            user_id,
            impersonated_by: admin_id,
        })
    }

    /// Starts an impersonation session for the user `target` names.
    pub(crate) async fn start_session(
        &self,
        admin: &Principal<U>,
        target: &str,
        client: &ClientMeta,
    ) -> Result<Started, AuthError> {
        let Some(sessions) = &self.core.sessions else {
            return Err(AuthError::NotFound("Not Found"));
        };
        let user = self.target(admin, target).await?;
        let epoch = self.core.revocation.epoch(&user).await?;
        let admin_epoch = self.core.revocation.epoch(&admin.user).await?;
        let until = sessions.now_secs() + self.config.lifetime.as_secs() as i64;
        let user_id = user.user_id().to_string();
        let ip = (client.ip)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into());
        let session = sessions
            .create_impersonation(
                &user_id,
                epoch,
                (&ip, &client.user_agent),
                (
                    Impersonator {
                        user_id: admin.user_id.to_string(),
                        epoch: admin_epoch,
                        until,
                        superuser: user.is_superuser(),
                    },
                    self.core.tenancy.of(&user, &axum::http::HeaderMap::new()),
                ),
            )
            .await?;
        self.announce(admin, user, client, "session").await;
        Ok(Started {
            session,
            until,
            user_id,
        })
    }

    /// Ends an impersonation session (the principal's, when it is one) and gives back the
    /// superuser's own session, parked in its cookie while the impersonation ran: it must
    /// be live, a superuser's, and no impersonation itself. It comes back under a new id,
    /// with a new CSRF token and out of its sudo window. Answers the new id and CSRF token,
    /// or `None` (nothing to go back to: signed out).
    pub(crate) async fn stop(
        &self,
        principal: Option<&Principal<U>>,
        parked: Option<&str>,
    ) -> Result<Option<(String, String)>, AuthError> {
        let Some(sessions) = &self.core.sessions else {
            return Err(AuthError::NotFound("Not Found"));
        };
        if let Some(p) = principal {
            let (Some(_), Some(handle)) = (&p.impersonated_by, &p.session_handle) else {
                return Err(AuthError::BadRequest("Not impersonating."));
            };
            sessions.delete(handle, &p.user_id.to_string()).await?;
            crate::audit::emit(&crate::audit::AuditEvent {
                user_id: Some(p.user_id.to_string()),
                actor_id: p.impersonated_by.as_ref().map(ToString::to_string),
                ..crate::audit::AuditEvent::new(
                    "impersonation_stopped",
                    crate::audit::Outcome::Success,
                )
            });
        }
        let Some(raw) = parked else {
            return Ok(None);
        };
        let Some(live) = sessions.resolve(raw).await? else {
            return Ok(None);
        };
        let own = live.record.impersonator.is_none()
            && principal
                .and_then(|p| p.impersonated_by.as_ref())
                .is_none_or(|admin| admin.to_string() == live.record.user_id);
        let Some(admin) = self.core.user_by_text_id(&live.record.user_id).await? else {
            return Ok(None);
        };
        let epoch = self.core.revocation.epoch(&admin).await?;
        if !own || !admin.is_active() || !admin.is_superuser() || epoch != live.record.epoch {
            return Ok(None);
        }
        let Some(moved) = sessions
            .rotate_with(&live.handle, |r| r.sudo_until = None)
            .await?
        else {
            return Ok(None);
        };
        let moved_live = LiveSession {
            handle: moved.handle,
            record: moved.record,
        };
        let csrf = sessions.rotate_csrf(&moved_live).await?;
        Ok(Some((moved.id, csrf)))
    }
}
