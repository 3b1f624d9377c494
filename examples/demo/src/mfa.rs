//! The demo's two-factor sign-in: on for every account that enrols (nobody is required to),
//! factors in the `crudauth_mfa` tables of the demo's database; and two helper commands so
//! the README's curl walk-through needs no authenticator app:
//!
//! - `crudauth-demo totp <base32 secret>` prints the current code;
//! - `crudauth-demo qr <otpauth URI>` prints the QR code in the terminal.

use std::sync::Arc;

use crudauth::mfa::MfaConfig;
use crudauth_sea::{FactorTables, SeaFactorStore};
use sea_orm::DatabaseConnection;

use crate::User;

/// The second-factor settings, its tables created if missing.
pub async fn config(db: &DatabaseConnection) -> Result<MfaConfig<User>, sea_orm::DbErr> {
    let tables = FactorTables::default();
    SeaFactorStore::create_tables(db, &tables).await?;
    let factors = Arc::new(SeaFactorStore::new(db.clone(), tables));
    Ok(MfaConfig::new("crudauth demo").factors(factors))
}

/// Runs `totp` or `qr` when the command line names one; `None` otherwise.
pub fn command(args: &[String]) -> Option<Result<(), String>> {
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("totp"), Some(secret)) => Some(totp(secret)),
        (Some("qr"), Some(uri)) => Some(qr(uri)),
        (Some("totp" | "qr"), None) => Some(Err(
            "usage: crudauth-demo totp <base32 secret> | qr <otpauth URI>".into(),
        )),
        _ => None,
    }
}

fn totp(secret: &str) -> Result<(), String> {
    let raw =
        totp_rs::Secret::try_from_base32(secret.trim()).map_err(|e| format!("secret: {e:?}"))?;
    let totp = totp_rs::Builder::new()
        .with_secret(raw)
        .with_account_name("demo")
        .build()
        .map_err(|e| format!("secret: {e:?}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    print_out(&totp.generate(now).to_string())
}

fn qr(uri: &str) -> Result<(), String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| e.to_string())?;
    let text = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    print_out(&text)
}

/// Prints a line; a closed pipe (`| head`) is not an error worth a panic.
fn print_out(text: &str) -> Result<(), String> {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
    Ok(())
}
