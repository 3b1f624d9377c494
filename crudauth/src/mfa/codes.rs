//! The codes: RFC 6238 TOTP (with `totp-rs`: SHA-1, 6 digits, 30 s, ±1 step), recovery codes,
//! and the QR code of an `otpauth://` URI (SVG with `qrcode`, PNG with `png`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// What a submitted code is, after the original's normalisation: six ASCII digits once
/// spaces are removed is a TOTP code; anything else of the recovery alphabet, in any case,
/// with or without hyphens, is a recovery code. Full-width digits are neither.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Code {
    Totp(String),
    Recovery(String),
}

/// The longest code field looked at (a recovery code is 19 characters with its hyphens).
const MAX_CODE: usize = 64;
/// The recovery codes' alphabet (no 0/o, 1/l/i): about 4.95 bits a character.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

pub(crate) fn parse(input: &str) -> Option<Code> {
    if input.len() > MAX_CODE {
        return None;
    }
    let compact: String = input.chars().filter(|c| *c != ' ').collect();
    if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Code::Totp(compact));
    }
    let recovery: String = compact
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (recovery.len() == 16 && recovery.bytes().all(|b| ALPHABET.contains(&b)))
        .then_some(Code::Recovery(recovery))
}

/// A new recovery code, `xxxx-xxxx-xxxx-xxxx` (16 characters of a 31-letter alphabet: 79
/// bits), drawn by rejection so every letter is equally likely.
pub(crate) fn recovery_code() -> String {
    let mut out = String::with_capacity(19);
    while out.replace('-', "").len() < 16 {
        for b in crate::keys::random_bytes::<32>() {
            // 248 = 8 × 31: bytes above it would favour the first letters.
            if b < 248 && out.replace('-', "").len() < 16 {
                if matches!(out.len(), 4 | 9 | 14) {
                    out.push('-');
                }
                out.push(ALPHABET[(b % 31) as usize] as char);
            }
        }
    }
    out
}

/// A fresh 160-bit TOTP secret.
pub(crate) fn new_secret() -> [u8; 20] {
    crate::keys::random_bytes::<20>()
}

/// The authenticator for a secret (`None` only for a secret shorter than 128 bits, which
/// this module never makes).
pub(crate) fn totp(secret: &[u8], issuer: &str, account: &str) -> Option<Totp> {
    // The otpauth label may not hold a colon.
    let clean = |s: &str| s.replace(':', "");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(Secret::from(secret.to_vec()))
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(account))
        .build()
        .ok()
}

/// The time step a code is valid for at `now` (the previous, current or next one), compared
/// in constant time by `totp-rs`.
pub(crate) fn matching_step(totp: &Totp, code: &str, now: u64) -> Option<u64> {
    totp.check(code, now)
}

/// The base32 form of a secret (what a person types into an authenticator).
pub(crate) fn base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// The QR code of `uri` as an SVG document and as a PNG data URL.
pub(crate) fn qr(uri: &str) -> Option<(String, String)> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let png = png_of(&code)?;
    Some((
        svg,
        format!("data:image/png;base64,{}", STANDARD.encode(png)),
    ))
}

/// A black-on-white PNG of the code's modules, 6 pixels a module, with the 4-module quiet
/// zone readers need.
fn png_of(code: &qrcode::QrCode) -> Option<Vec<u8>> {
    const SCALE: usize = 6;
    const QUIET: usize = 4;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % width + QUIET, i / width + QUIET);
            for dy in 0..SCALE {
                let row = (y * SCALE + dy) * side;
                pixels[row + x * SCALE..row + (x + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().ok()?;
        writer.write_image_data(&pixels).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_ascii_digits_or_a_recovery_code() {
        assert_eq!(parse("123 456"), Some(Code::Totp("123456".into())));
        assert_eq!(parse("１２３４５６"), None, "full-width digits");
        assert_eq!(parse("12345"), None);
        assert_eq!(parse("+12345"), None);
        assert_eq!(parse(&"1".repeat(10_000_000)), None);
        let code = recovery_code();
        assert_eq!(code.len(), 19);
        let expected = Some(Code::Recovery(code.replace('-', "")));
        assert_eq!(parse(&code), expected);
        assert_eq!(parse(&code.to_uppercase()), expected);
        assert_eq!(parse(&code.replace('-', "")), expected);
        assert_ne!(recovery_code(), code);
    }

    #[test]
    fn the_rfc_6238_sha1_vector_checks_with_one_step_of_drift() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082 (8 digits);
        // its last six digits are the 6-digit code.
        let totp = totp(b"12345678901234567890", "crudauth", "ann").unwrap();
        assert_eq!(totp.generate(59).to_string(), "287082");
        assert_eq!(matching_step(&totp, "287082", 59), Some(1));
        assert_eq!(
            matching_step(&totp, "287082", 89),
            Some(1),
            "the next step still takes it"
        );
        assert_eq!(
            matching_step(&totp, "287082", 119),
            None,
            "two steps later it is dead"
        );
        assert!(
            totp.to_url()
                .unwrap()
                .starts_with("otpauth://totp/crudauth:ann?secret=")
        );
    }

    #[test]
    fn the_qr_code_comes_as_svg_and_png() {
        let (svg, png) = qr("otpauth://totp/crudauth:ann?secret=ABC").unwrap();
        assert!(svg.contains("<svg"));
        assert!(png.starts_with("data:image/png;base64,iVBORw0KGgo"));
    }
}
