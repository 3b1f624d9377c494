//! The client's address: the socket peer unless trusted proxies are configured.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::hooks::HookContext;

/// What the library knows of the client of a request. An extractor (for any state the auth
/// facade is reached from through `FromRef`), or `auth.client_meta(&parts)`.
///
/// ```
/// let client = crudauth::ClientMeta { ip: Some([203, 0, 113, 7].into()), user_agent: "curl/8".into() };
/// assert_eq!(client.hook_context(Some("session")).ip.as_deref(), Some("203.0.113.7"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    /// The client address (socket peer, or per `trusted_proxy_hops`).
    pub ip: Option<IpAddr>,
    /// The User-Agent (at most 512 bytes of it).
    pub user_agent: String,
}

impl ClientMeta {
    /// The client of a request: the socket peer (from `ConnectInfo`) unless `trusted_hops`
    /// proxies are configured, and the User-Agent.
    ///
    /// ```
    /// let (parts, _) = axum::http::Request::new(()).into_parts();
    /// assert!(crudauth::ClientMeta::from_parts(&parts, 0).ip.is_none());
    /// ```
    pub fn from_parts(parts: &Parts, trusted_hops: usize) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = client_ip(&parts.headers, peer, trusted_hops);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut end = user_agent.len().min(512);
        while !user_agent.is_char_boundary(end) {
            end -= 1;
        }
        ClientMeta {
            ip,
            user_agent: user_agent[..end].to_owned(),
        }
    }

    /// The hook context for this client.
    ///
    /// ```
    /// let ctx = crudauth::ClientMeta::default().hook_context(None);
    /// assert!(ctx.ip.is_none() && ctx.user_agent.is_none());
    /// ```
    pub fn hook_context(&self, transport: Option<&'static str>) -> HookContext {
        HookContext {
            ip: self.ip.map(|ip| ip.to_string()),
            user_agent: Some(self.user_agent.clone()).filter(|u| !u.is_empty()),
            transport,
            session_handle: None,
            impersonated_by: None,
        }
    }
}

/// The client address of a request.
///
/// With `trusted_proxy_hops = 0` it is the socket peer, whatever `X-Forwarded-For` says.
/// With `N` it is the `N`-th address from the right of `X-Forwarded-For` (all header lines
/// joined); a chain shorter than `N` yields its left-most entry. The header is split as
/// bytes, so a non-ASCII or malformed entry elsewhere in the chain (which the client
/// controls) cannot make the whole header unreadable and move the client into the proxy's
/// bucket; only the chosen entry must parse. A port on that entry (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`) is stripped. A chosen entry that is not an address, or a missing
/// header, falls back to the socket peer.
///
/// ```
/// use axum::http::HeaderMap;
/// use crudauth::client_ip::client_ip;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "6.6.6.6, 10.0.0.1:5123".parse().unwrap());
/// let peer = Some("127.0.0.1".parse().unwrap());
/// assert_eq!(client_ip(&headers, peer, 0), peer);
/// assert_eq!(client_ip(&headers, peer, 1), Some("10.0.0.1".parse().unwrap()));
/// assert_eq!(client_ip(&headers, peer, 2), Some("6.6.6.6".parse().unwrap()));
/// ```
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted_proxy_hops: usize,
) -> Option<IpAddr> {
    if trusted_proxy_hops == 0 {
        return peer;
    }
    let mut entries: Vec<&[u8]> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        entries.extend(
            value
                .as_bytes()
                .split(|b| *b == b',')
                .map(<[u8]>::trim_ascii)
                .filter(|e| !e.is_empty()),
        );
    }
    if entries.is_empty() {
        return peer;
    }
    let index = entries.len().saturating_sub(trusted_proxy_hops);
    parse_entry(entries[index]).or(peer)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`[v6]:port` for IPv6).
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let port_ok = tail.is_empty()
            || tail
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok
            .then(|| host.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))
            .flatten();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The key an address is counted under by lockout and rate limits: IPv4 as is, IPv6 reduced
/// to its /64 (one customer's allocation), IPv4-mapped IPv6 as the IPv4.
///
/// ```
/// use crudauth::client_ip::ip_key;
/// assert_eq!(ip_key(Some("2001:db8::1".parse().unwrap())), "2001:db8::/64");
/// assert_eq!(ip_key(Some("2001:db8::ffff".parse().unwrap())), "2001:db8::/64");
/// assert_eq!(ip_key(Some("::ffff:1.2.3.4".parse().unwrap())), "1.2.3.4");
/// assert_eq!(ip_key(None), "unknown");
/// ```
pub fn ip_key(ip: Option<IpAddr>) -> String {
    match ip {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_forwarded_entries_fall_back_to_the_peer() {
        let peer = Some("10.1.1.1".parse().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(&headers, peer, 1), peer);
        assert_eq!(client_ip(&HeaderMap::new(), peer, 1), peer);
    }

    #[test]
    fn spoofed_forwarded_for_with_non_ascii_bytes_keeps_the_trusted_hops_entry() {
        let peer = Some("10.9.9.9".parse().unwrap());
        let mut headers = HeaderMap::new();
        // The client wrote the left part; the proxy appended the real address.
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe garbage, 1.2.3.4, 203.0.113.7").unwrap(),
        );
        assert_eq!(
            client_ip(&headers, peer, 1),
            Some("203.0.113.7".parse().unwrap())
        );
    }

    #[test]
    fn spoofed_forwarded_for_with_ports_counts_the_address_not_the_port() {
        let peer = Some("10.9.9.9".parse().unwrap());
        for (value, want) in [
            ("203.0.113.7:5555", "203.0.113.7"),
            ("203.0.113.7:1", "203.0.113.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", value.parse().unwrap());
            assert_eq!(
                client_ip(&headers, peer, 1),
                Some(want.parse().unwrap()),
                "{value}"
            );
        }
        for bad in [
            "203.0.113.7:99999",
            "[2001:db8::7]x",
            "1.2.3.4:ab",
            "[1.2.3.4]:80",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", bad.parse().unwrap());
            assert_eq!(client_ip(&headers, peer, 1), peer, "{bad}");
        }
    }

    #[test]
    fn a_short_chain_yields_its_leftmost_entry() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.1.1.1".parse().unwrap());
        assert_eq!(
            client_ip(&headers, None, 3),
            Some("1.1.1.1".parse().unwrap())
        );
    }
}
