//! Device information parsed from a User-Agent, for `GET /sessions`.

use serde::{Deserialize, Serialize};

/// What a User-Agent says about the device, in the original's shape.
///
/// ```
/// let d = crudauth::device::DeviceInfo::parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
/// assert_eq!(d.browser, "Chrome");
/// assert!(d.is_pc && !d.is_mobile);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Browser name, or `Unknown`.
    pub browser: String,
    /// Browser version, or empty.
    pub browser_version: String,
    /// Operating system, or `Unknown`.
    pub os: String,
    /// Device category, or `Unknown`.
    pub device: String,
    /// A phone.
    pub is_mobile: bool,
    /// A tablet.
    pub is_tablet: bool,
    /// A desktop or laptop.
    pub is_pc: bool,
}

impl DeviceInfo {
    /// Parses a User-Agent (at most its first 512 bytes are read).
    ///
    /// ```
    /// let d = crudauth::device::DeviceInfo::parse("");
    /// assert_eq!(d.browser, "Unknown");
    /// ```
    pub fn parse(user_agent: &str) -> Self {
        let mut end = user_agent.len().min(512);
        while !user_agent.is_char_boundary(end) {
            end -= 1;
        }
        let ua = &user_agent[..end];
        let parsed = woothee::parser::Parser::new().parse(ua);
        let known = |s: &str| {
            if s.is_empty() || s == "UNKNOWN" {
                None
            } else {
                Some(s.to_owned())
            }
        };
        let Some(r) = parsed else {
            return DeviceInfo {
                browser: "Unknown".into(),
                browser_version: String::new(),
                os: "Unknown".into(),
                device: "Unknown".into(),
                is_mobile: false,
                is_tablet: false,
                is_pc: false,
            };
        };
        let is_tablet = ua.contains("iPad") || ua.contains("Tablet");
        let is_mobile = !is_tablet && matches!(r.category, "smartphone" | "mobilephone");
        let device = match r.category {
            _ if is_tablet => "Tablet",
            "smartphone" => "Smartphone",
            "mobilephone" => "Mobile phone",
            "pc" => "PC",
            "crawler" => "Crawler",
            "appliance" => "Appliance",
            _ => "Unknown",
        };
        DeviceInfo {
            browser: known(r.name).unwrap_or_else(|| "Unknown".into()),
            browser_version: known(r.version).unwrap_or_default(),
            os: known(r.os).unwrap_or_else(|| "Unknown".into()),
            device: device.into(),
            is_mobile,
            is_tablet,
            is_pc: r.category == "pc",
        }
    }
}
