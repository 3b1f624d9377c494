//! The development switch (feature `dev-bypass`, craft-easy's `AUTH_ENABLED=false`): every
//! principal extractor, gate and `auth.authenticate` yields one fixed user, with no
//! credential at all, so a front end can be worked on without signing in.
//!
//! Three guards keep it out of production, each tested:
//!
//! 1. **Not in a release build.** Building the feature without `debug_assertions` (`cargo
//!    build --release`, `cargo bench`) is a compile error.
//! 2. **Not on a reachable address.** [`CrudAuthBuilder::dev_bypass`](crate::CrudAuthBuilder::dev_bypass)
//!    takes the address the server is bound to, and `build` refuses anything but a loopback
//!    address (`127.0.0.0/8`, `::1`).
//! 3. **Not for a remote client, not for a web page, and never quietly.** Each request it
//!    serves must
//!    - come from a loopback peer (axum's `ConnectInfo<SocketAddr>`, so serve with
//!      `into_make_service_with_connect_info::<SocketAddr>()`; an IPv4-mapped address such
//!      as `::ffff:127.0.0.1` is not loopback);
//!    - carry no forwarding header (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`, `Via`,
//!      `X-Forwarded-Host`, `CF-Connecting-IP`, `True-Client-IP`, `X-Client-IP`): a local
//!      proxy forwarding someone else is refused;
//!    - name a loopback host in `Host` (`localhost`, `127.x.x.x`, `[::1]`), so a tunnel
//!      arriving under its own name and a DNS-rebinding page (`Host: evil.example`) are
//!      refused;
//!    - not be cross-site (`Sec-Fetch-Site: cross-site`), and, unless it is a `GET`, `HEAD`
//!      or `OPTIONS`, carry no `Origin` but a loopback one: the bypass has no CSRF token,
//!      so a page the developer visits must not be able to post to it.
//!
//!    Anything else is a 403. Every request it serves logs a warning. A plain TCP forwarder
//!    that adds no header and keeps a loopback `Host` (`ssh -L` to a remote developer) cannot
//!    be told apart: do not forward the port.
//!
//! The principal it yields comes through the session transport's door (`via = session`)
//! with no session handle, no sign-in time, no sudo, and the scopes given to
//! [`DevBypass::scopes`]: routes that need a real session (`/logout`, `/sessions`), a recent
//! sign-in (`/set-password`, linking a provider, removing a passkey, approving a device
//! login) or sudo refuse it as they refuse any principal without one. A
//! [`fixed`](DevBypass::fixed) user has no row: routes that write to the user answer as
//! for a deleted account.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

use crate::error::{AuthError, ConfigError};
use crate::principal::{Principal, Transport};
use crate::store::repo_fault;
use crate::user::{DynUserRepository, UserRecord};

/// Who the bypass signs in.
enum Who<U> {
    /// A user of the repository, by login identifier, read on every request (so a change to
    /// them, a deactivation, shows at once).
    Login(String),
    /// A fixed user value that need not exist in the repository (an anonymous developer).
    Fixed(Arc<U>),
}

impl<U> Clone for Who<U> {
    fn clone(&self) -> Self {
        match self {
            Who::Login(login) => Who::Login(login.clone()),
            Who::Fixed(user) => Who::Fixed(user.clone()),
        }
    }
}

/// The development switch: see the [module](self) for its guards.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| { let builder = crudauth::doc_fixture::builder().await;
/// use crudauth::dev::DevBypass;
/// let bound: std::net::SocketAddr = "127.0.0.1:3000".parse()?; // listener.local_addr()?
/// let auth = builder.dev_bypass(DevBypass::login("ann@example.com", bound)).build()?;
/// # let builder = crudauth::doc_fixture::builder().await;
/// let public: std::net::SocketAddr = "0.0.0.0:3000".parse()?;
/// assert!(builder.dev_bypass(DevBypass::login("ann@example.com", public)).build().is_err());
/// # Ok(()) });
/// ```
pub struct DevBypass<U> {
    who: Who<U>,
    bound: SocketAddr,
    scopes: Vec<String>,
}

impl<U> Clone for DevBypass<U> {
    fn clone(&self) -> Self {
        DevBypass {
            who: self.who.clone(),
            bound: self.bound,
            scopes: self.scopes.clone(),
        }
    }
}

impl<U> std::fmt::Debug for DevBypass<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match &self.who {
            Who::Login(login) => login.as_str(),
            Who::Fixed(_) => "<fixed user>",
        };
        f.debug_struct("DevBypass")
            .field("who", &who)
            .field("bound", &self.bound)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl<U> DevBypass<U> {
    /// Signs every request in as the repository's user with this login identifier (email
    /// or username), read on each request. `bound` is the address the server listens on:
    /// pass `listener.local_addr()?`, never a literal (the guard can only check what it is
    /// told; the per-request checks hold whatever the listener). A login nobody has is a
    /// 401, as without the bypass.
    ///
    /// ```
    /// let bound = "127.0.0.1:3000".parse().unwrap();
    /// let bypass = crudauth::dev::DevBypass::<()>::login("dev@example.com", bound);
    /// ```
    pub fn login(identifier: impl Into<String>, bound: SocketAddr) -> Self {
        DevBypass {
            who: Who::Login(identifier.into()),
            bound,
            scopes: Vec::new(),
        }
    }

    /// Signs every request in as this fixed user value, which need not exist in the
    /// repository (a placeholder developer account).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let developer = crudauth::doc_fixture::user(&auth).await?; // any value of the model
    /// let bound = "[::1]:3000".parse()?;
    /// let bypass = crudauth::dev::DevBypass::fixed(developer, bound);
    /// # Ok(()) });
    /// ```
    pub fn fixed(user: U, bound: SocketAddr) -> Self {
        DevBypass {
            who: Who::Fixed(Arc::new(user)),
            bound,
            scopes: Vec::new(),
        }
    }

    /// The scopes the principal carries (none by default).
    ///
    /// ```
    /// let bound = "127.0.0.1:3000".parse().unwrap();
    /// let bypass = crudauth::dev::DevBypass::<()>::login("dev@example.com", bound)
    ///     .scopes(["reports:read"]);
    /// ```
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The second guard: a server bound anywhere but loopback does not start.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if !self.bound.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "dev-bypass serves a loopback address only; the server is bound to {}",
                self.bound
            )));
        }
        tracing::warn!(
            bound = %self.bound,
            "dev-bypass is ON: every request from this machine is signed in without a credential"
        );
        Ok(())
    }
}

/// Headers by which a proxy names the client it forwards.
const FORWARDING: [&str; 8] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "via",
    "x-forwarded-host",
    "cf-connecting-ip",
    "true-client-ip",
    "x-client-ip",
];

/// Whether a host (`Host` header, or an origin's host part), with or without a port, is a
/// loopback name.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The peer of a request, when it is a loopback client on a loopback host, forwarded by no
/// proxy, and not a cross-site write.
fn loopback_peer(parts: &Parts) -> Option<IpAddr> {
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    let headers = &parts.headers;
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\0"));
    if !peer.ip().is_loopback() || FORWARDING.iter().any(|h| headers.contains_key(*h)) {
        return None;
    }
    let host = text("host").or_else(|| parts.uri.authority().map(|a| a.as_str()));
    if !host.is_some_and(loopback_host) {
        return None;
    }
    if text("sec-fetch-site").is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
        return None;
    }
    let reads = matches!(parts.method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let origin_ok = match text("origin") {
        None => true,
        Some(origin) => origin
            .split_once("://")
            .is_some_and(|(_, host)| loopback_host(host)),
    };
    (reads || origin_ok).then(|| peer.ip())
}

impl<U: UserRecord> DevBypass<U> {
    /// The third guard and the principal: a loopback client gets the configured user, with a
    /// warning; anyone else a 403.
    pub(crate) async fn principal(
        &self,
        repo: &dyn DynUserRepository<U>,
        tenancy: &crate::tenant::Tenancy<U>,
        parts: &Parts,
    ) -> Result<Option<Principal<U>>, AuthError> {
        let Some(peer) = loopback_peer(parts) else {
            tracing::warn!(
                path = parts.uri.path(),
                "dev-bypass refused a request: not a loopback client on a loopback host, or a cross-site write"
            );
            return Err(AuthError::Forbidden(
                "The development bypass serves loopback clients only.",
            ));
        };
        let user = match &self.who {
            Who::Fixed(user) => user.clone(),
            Who::Login(login) => {
                let found = repo.find_by_login(login).await.map_err(repo_fault)?;
                match found.filter(UserRecord::is_active) {
                    Some(user) => Arc::new(user),
                    None => return Err(AuthError::NotAuthenticated),
                }
            }
        };
        let tenant = tenancy.of(&user, &parts.headers);
        let principal = Principal {
            user_id: user.user_id(),
            scopes: self.scopes.clone(),
            via: Transport::Session,
            is_superuser: user.is_superuser(),
            email_verified: user.email_verified(),
            user,
            session_handle: None,
            signed_in_at: None,
            sudo_until: None,
            impersonated_by: None,
            api_key_id: None,
            tenant,
        };
        tracing::warn!(
            user_id = %principal.user_id,
            %peer,
            path = parts.uri.path(),
            "dev-bypass: request signed in without a credential"
        );
        Ok(Some(principal))
    }
}
