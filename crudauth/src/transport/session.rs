//! The session transport: an opaque id in an `HttpOnly` cookie, a server-side record, and a
//! synchronizer CSRF token (cookie + header) on every unsafe method. The cookie is read,
//! resolved, checked, written and cleared here and nowhere else.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;

use crate::core::Core;
use crate::error::AuthError;
use crate::principal::{Principal, Transport};
use crate::session::{NewSession, SameSite, SessionConfig, Sessions};
use crate::user::UserRecord;

/// Reads a cookie value from the request headers (the session id is
/// `sessions.config().cookie_name`).
///
/// ```
/// let mut headers = axum::http::HeaderMap::new();
/// headers.insert("cookie", "a=1; session_id=xyz".parse().unwrap());
/// assert_eq!(crudauth::transport::session::cookie(&headers, "session_id"), Some("xyz"));
/// ```
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// A request a cross-site page made (`Sec-Fetch-Site: cross-site`): refused on the routes
/// that sign a browser in (login CSRF); apps with their own sign-in routes should refuse it
/// too.
///
/// ```
/// let mut headers = axum::http::HeaderMap::new();
/// headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
/// assert!(crudauth::transport::session::is_cross_site(&headers));
/// ```
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
}

/// The principal of a request's session cookie, the CSRF token checked on unsafe methods.
/// A stale cookie (unknown, expired, revoked, its user gone) counts as absent.
pub(crate) async fn authenticate<U: UserRecord>(
    core: &Core<U>,
    parts: &Parts,
) -> Result<Option<Principal<U>>, AuthError> {
    let Some(sessions) = &core.sessions else {
        return Ok(None);
    };
    let Some(raw) = cookie(&parts.headers, &sessions.config().cookie_name) else {
        return Ok(None);
    };
    let Some(live) = sessions.resolve(raw).await? else {
        return Ok(None);
    };
    let record = &live.record;
    let id = core.repo.schema().id_kind.parse(&record.user_id);
    let found = match id {
        Some(id) => super::load_current(core, id, Some(record.epoch), record.generation).await?,
        None => None,
    };
    // A user moved to another tenant (the column) leaves their old tenant's sessions behind.
    let Some(user) = found.filter(|u| core.tenancy.still_member(u, record.tenant.as_deref()))
    else {
        sessions.delete(&live.handle, &live.record.user_id).await?;
        return Ok(None);
    };
    // An impersonation session ends at its deadline, or as soon as its superuser may no
    // longer act (then it counts as absent, like any stale session).
    let mut impersonated_by = None;
    if let Some(imp) = &record.impersonator {
        // A user promoted to superuser during it is no longer the user it began with.
        let promoted = user.is_superuser() && !imp.superuser;
        let acting = if imp.until > sessions.now_secs() && !promoted {
            super::impersonator(core, &imp.user_id, imp.epoch).await?
        } else {
            None
        };
        let Some(admin) = acting else {
            sessions.delete(&live.handle, &live.record.user_id).await?;
            return Ok(None);
        };
        impersonated_by = Some(admin);
    }
    if is_unsafe(&parts.method) {
        sessions.check_request_csrf(&live, &parts.headers)?;
    }
    let tenant = live.record.tenant.clone();
    let mut principal = super::principal(user, Transport::Session, Vec::new(), Some(live));
    principal.impersonated_by = impersonated_by;
    principal.tenant = tenant;
    Ok(Some(principal))
}

/// A `Set-Cookie` value under the session cookie policy. A `__Host-` name is always sent
/// `Secure` with `Path=/` (and, like every cookie here, without `Domain`), a `__Secure-`
/// name always `Secure`, as browsers require for those prefixes.
pub(crate) fn set_cookie(
    config: &SessionConfig,
    name: &str,
    value: &str,
    http_only: bool,
    max_age: Option<i64>,
) -> HeaderValue {
    let same_site = match config.same_site {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
    };
    let host_only = name.starts_with("__Host-");
    let secure = config.secure || host_only || name.starts_with("__Secure-");
    let path = if host_only {
        "/".to_owned()
    } else {
        config.path.clone()
    };
    let mut builder = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .path(path)
        .same_site(same_site)
        .http_only(http_only)
        .secure(secure);
    if let Some(age) = max_age {
        builder = builder.max_age(time::Duration::seconds(age));
        if age == 0 {
            builder = builder.expires(time::OffsetDateTime::UNIX_EPOCH);
        }
    }
    HeaderValue::from_str(&builder.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Marks a response that carries credentials as not cacheable.
pub(crate) fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Sets the session cookie (a moved or new session id) on a response.
pub(crate) fn set_session_cookie(sessions: &Sessions, id: &str, response: &mut Response) {
    let config = sessions.config();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(config, &config.cookie_name, id, true, None),
    );
    no_store(response);
}

/// Sets the cookies of a new sign-in on a response: the session id (`HttpOnly`) and the
/// CSRF token (readable by the page's script), under the configured cookie policy (the
/// `__Host-` rules included). For apps that sign users in from their own routes.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
/// # let v = auth.login().authenticate_password("ann", "correct horse battery staple", &client, "session").await?;
/// use axum::response::IntoResponse;
/// use crudauth::UserRecord;
/// let sessions = auth.sessions().expect("session transport on");
/// let new = sessions.create(&v.user.user_id().to_string(), v.epoch, "203.0.113.7", "curl/8").await?;
/// let mut response = axum::Json(serde_json::json!({ "csrf_token": new.csrf_token })).into_response();
/// crudauth::transport::session::set_sign_in_cookies(sessions, &new, &mut response);
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
/// # Ok(()) });
/// ```
pub fn set_sign_in_cookies(sessions: &Sessions, new: &NewSession, response: &mut Response) {
    set_session_cookie(sessions, &new.id, response);
    set_csrf_cookie(sessions, &new.csrf_token, response);
}

/// Sets the (script-readable) CSRF cookie.
pub(crate) fn set_csrf_cookie(sessions: &Sessions, token: &str, response: &mut Response) {
    let config = sessions.config();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(config, &config.csrf_cookie_name, token, false, None),
    );
}

/// Clears the session and CSRF cookies on a response (after ending the session).
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let sessions = auth.sessions().unwrap();
/// use axum::response::IntoResponse;
/// let mut response = "signed out".into_response();
/// crudauth::transport::session::clear_cookies(sessions, &mut response);
/// let cleared = response.headers()["set-cookie"].to_str()?;
/// assert!(cleared.starts_with("__Host-session_id=;") && cleared.contains("Max-Age=0"));
/// # Ok(()) });
/// ```
pub fn clear_cookies(sessions: &Sessions, response: &mut Response) {
    let config = sessions.config();
    for (name, http_only) in [
        (&config.cookie_name, true),
        (&config.csrf_cookie_name, false),
    ] {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(config, name, "", http_only, Some(0)),
        );
    }
}

/// The name of a cookie crudauth sets beside the session's (the OAuth state, the remembered
/// device): `prefixed` (`__Host-...`) wherever the session cookie carries that prefix, and
/// without a session transport; `plain` otherwise (a non-`Secure` development setup).
#[cfg(any(feature = "oauth", feature = "mfa", feature = "passwordless"))]
pub(crate) fn companion_cookie_name(
    sessions: Option<&Sessions>,
    prefixed: &'static str,
    plain: &'static str,
) -> &'static str {
    let host = sessions.is_none_or(|s| s.config().cookie_name.starts_with("__Host-"));
    if host { prefixed } else { plain }
}
