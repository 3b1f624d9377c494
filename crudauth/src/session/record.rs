//! What a session is made of: the stored record, a session resolved from its cookie, and
//! the raw ids handed out when a session is created or moved.

use serde::{Deserialize, Serialize};

use crate::device::DeviceInfo;

// Only the rustdoc links name it.
#[cfg(doc)]
use super::Sessions;

/// A stored session.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    /// The user's id, in its textual form.
    #[serde(rename = "uid")]
    pub user_id: String,
    /// The user's revocation epoch when the session was made (stored as `ver`).
    #[serde(rename = "ver")]
    pub epoch: i64,
    /// Unix seconds of the login.
    pub created: i64,
    /// Unix seconds of the last recorded activity.
    #[serde(rename = "last")]
    pub last_seen: i64,
    /// The client address at login.
    pub ip: String,
    /// The device parsed from the User-Agent at login.
    pub device: DeviceInfo,
    /// HMAC of the CSRF token (stored as `csrf`).
    #[serde(rename = "csrf")]
    pub csrf_digest: String,
    /// Unix seconds until which the session is elevated (sudo), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_until: Option<i64>,
    /// The user's generation as last told to this session (stored as `gen`; see
    /// `crate::generation`): a cached copy of the user read under another one is not used.
    /// Left out when 0, so a record written before generations existed serialises to the
    /// same bytes (its compare-and-set updates keep matching).
    #[serde(default, rename = "gen", skip_serializing_if = "is_zero")]
    pub generation: i64,
    /// How the user signed in (`oauth`; absent for a password sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_type: Option<String>,
    /// The provider of an OAuth sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The superuser acting as the user, for an impersonation session (stored as `imp`;
    /// feature `admin`).
    #[serde(default, rename = "imp", skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<Impersonator>,
    /// The tenant the session was signed in under (stored as `tid`; see [`crate::tenant`]).
    /// Left out when there is none, so a record of a table without tenants keeps its bytes.
    #[serde(default, rename = "tid", skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Who is acting in an impersonation session, and until when.
///
/// ```
/// let who = crudauth::session::Impersonator { user_id: "1".into(), epoch: 0, until: 900, superuser: false };
/// assert_eq!(serde_json::to_value(&who).unwrap()["uid"], "1");
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Impersonator {
    /// The superuser's id, textual.
    #[serde(rename = "uid")]
    pub user_id: String,
    /// The superuser's revocation epoch when it began (their password reset or
    /// deactivation ends it).
    #[serde(rename = "ver")]
    pub epoch: i64,
    /// Unix seconds when the impersonation ends (short: 15 minutes by default).
    pub until: i64,
    /// Whether the user was a superuser when it began (a promotion during it ends it).
    #[serde(default, rename = "su", skip_serializing_if = "std::ops::Not::not")]
    pub superuser: bool,
}

/// A session resolved from its cookie.
#[derive(Clone, Debug)]
pub struct LiveSession {
    /// The public handle (the storage key's HMAC).
    pub handle: String,
    /// The record.
    pub record: SessionRecord,
}

/// A freshly created session: the raw id for the cookie and the CSRF token.
#[derive(Clone)]
pub struct NewSession {
    /// The raw session id (cookie value). Never stored.
    pub id: String,
    /// The CSRF token (cookie value and `/login` body). Stored only as an HMAC.
    pub csrf_token: String,
    /// The public handle.
    pub handle: String,
}

/// A session moved to a new id by [`Sessions::rotate`]: the raw id for the new cookie
/// and the new public handle. The CSRF token is unchanged.
#[derive(Clone)]
pub struct RotatedSession {
    /// The new raw session id (cookie value). Never stored.
    pub id: String,
    /// The new public handle.
    pub handle: String,
    /// The record as written under the new id.
    pub record: SessionRecord,
}

impl std::fmt::Debug for RotatedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSession")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}
