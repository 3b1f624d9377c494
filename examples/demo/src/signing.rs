//! The demo's signing keys: HS256 with the derived key unless `CRUDAUTH_JWT_KEYS` names a
//! directory of PEM files, then key pairs and `GET /.well-known/jwks.json`.
//!
//! In the directory, `<kid>.pub.pem` is a public key of the set, and exactly one
//! `<kid>.key.pem` (PKCS#8) is the private key of the key that signs; every other public key
//! only verifies. The algorithm is read from each key (P-256 → ES256, P-384 → ES384, P-521 →
//! ES512, Ed25519 → EdDSA, RSA → RS256). To rotate: add the new `.pub.pem` (the JWKS then
//! publishes it before it signs), later swap the private key for the new one's, and delete
//! the old `.pub.pem` once the access tokens it signed have expired (the access lifetime;
//! refresh tokens are signed by the derived HS256 key, whatever the set).

use std::error::Error;
use std::path::Path;

use crudauth::{JwtKey, VerifyKey};

/// The signing key and the keys that only verify.
pub type KeySet = (JwtKey, Vec<VerifyKey>);

/// The signing key and the verify-only keys of the directory in `CRUDAUTH_JWT_KEYS`, if set.
pub fn key_set() -> Result<Option<KeySet>, Box<dyn Error>> {
    match std::env::var("CRUDAUTH_JWT_KEYS") {
        Ok(dir) => read_dir(Path::new(&dir)).map(Some),
        Err(_) => Ok(None),
    }
}

/// Refuses a key directory others may write to (a `.pub.pem` dropped there would be
/// trusted) and warns about a private key others may read.
#[cfg(unix)]
fn check_permissions(dir: &Path) -> Result<(), Box<dyn Error>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "CRUDAUTH_JWT_KEYS={}: the directory is writable by group or others (mode {:o})",
            dir.display(),
            mode & 0o777
        )
        .into());
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<(), Box<dyn Error>> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "a private signing key readable by group or others: chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable(_: &Path) {}

fn read_dir(dir: &Path) -> Result<KeySet, Box<dyn Error>> {
    check_permissions(dir)?;
    let mut private = Vec::new();
    let mut public = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(kid) = name.strip_suffix(".key.pem") {
            warn_if_readable(&path);
            private.push((kid.to_owned(), std::fs::read_to_string(&path)?));
        } else if let Some(kid) = name.strip_suffix(".pub.pem") {
            public.push((kid.to_owned(), std::fs::read_to_string(&path)?));
        }
    }
    let [(kid, private_pem)] = <[_; 1]>::try_from(private).map_err(|found| {
        format!(
            "CRUDAUTH_JWT_KEYS={}: expected exactly one <kid>.key.pem, found {}",
            dir.display(),
            found.len()
        )
    })?;
    let own = public
        .iter()
        .position(|(k, _)| *k == kid)
        .ok_or_else(|| format!("CRUDAUTH_JWT_KEYS: {kid}.key.pem has no {kid}.pub.pem"))?;
    let (_, public_pem) = public.remove(own);
    let key = JwtKey::from_pem(&kid, &private_pem, &public_pem)?;
    public.sort();
    let verify_only = public
        .iter()
        .map(|(kid, pem)| VerifyKey::from_public_pem(kid, pem))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::info!(
        signing = kid,
        verify_only = verify_only.len(),
        "asymmetric access tokens; public keys at /.well-known/jwks.json"
    );
    Ok((key, verify_only))
}
