//! Old password hashes: the formats of the systems a legacy table comes from, verified so
//! their users can sign in, and upgraded to argon2id on the first successful sign-in.
//!
//! Built in (each behind its cargo feature, all on by default through `legacy-hashes`):
//! bcrypt (`$2a$`, `$2b$`, `$2y$`: Rails, PHP; passwords past 72 bytes are cut as bcrypt
//! cuts them), PBKDF2-SHA256 as Django writes it (`pbkdf2_sha256$<iter>$<salt>$<base64>`),
//! as Werkzeug writes it (`pbkdf2:sha256:<iter>$<salt>$<hex>`) and in PHC form
//! (`$pbkdf2-sha256$`), scrypt in PHC form (`$scrypt$`), and argon2 (i, d, id) of any
//! parameters (always on). An app adds its own verifier for anything else; a plain unsalted
//! digest (MD5, SHA-1, SHA-256 hex) is refused unless one of the app's verifiers claims it.

use std::sync::Arc;

/// The format of a stored password hash.
///
/// ```
/// use crudauth::password::HashFormat;
/// assert_eq!(HashFormat::detect("$2b$12$abcdefghijklmnopqrstuu"), HashFormat::Bcrypt);
/// assert_eq!(HashFormat::detect("pbkdf2_sha256$870000$salt$hash"), HashFormat::DjangoPbkdf2);
/// assert_eq!(HashFormat::detect("5f4dcc3b5aa765d61d8327deb882cf99"), HashFormat::UnsaltedDigest);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashFormat {
    /// argon2 (`$argon2id$`, `$argon2i$`, `$argon2d$`), any parameters.
    Argon2,
    /// bcrypt (`$2a$`, `$2b$`, `$2y$`).
    Bcrypt,
    /// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`.
    DjangoPbkdf2,
    /// Werkzeug's `pbkdf2:sha256:<iterations>$<salt>$<hex hash>`.
    WerkzeugPbkdf2,
    /// PBKDF2-SHA256 in PHC form (`$pbkdf2-sha256$i=..,l=..$<salt>$<hash>`).
    PhcPbkdf2,
    /// scrypt in PHC form (`$scrypt$ln=..,r=..,p=..$<salt>$<hash>`).
    Scrypt,
    /// A plain, unsalted hex digest (32, 40 or 64 hex characters): refused unless an app's
    /// own verifier claims it.
    UnsaltedDigest,
    /// No password (empty, or the unusable marker of accounts that sign in another way).
    Unusable,
    /// Anything else (an app's own verifier may still claim it).
    Unknown,
}

impl HashFormat {
    /// Reads the format of a stored hash from its prefix and shape (nothing is verified).
    ///
    /// ```
    /// use crudauth::password::HashFormat;
    /// assert_eq!(HashFormat::detect("$argon2i$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA"), HashFormat::Argon2);
    /// assert_eq!(HashFormat::detect(""), HashFormat::Unusable);
    /// ```
    pub fn detect(stored: &str) -> HashFormat {
        let argon = ["$argon2id$", "$argon2i$", "$argon2d$"];
        if super::is_unusable_password(stored) {
            HashFormat::Unusable
        } else if argon.iter().any(|p| stored.starts_with(p)) {
            HashFormat::Argon2
        } else if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            HashFormat::Bcrypt
        } else if stored.starts_with("pbkdf2_sha256$") {
            HashFormat::DjangoPbkdf2
        } else if stored.starts_with("pbkdf2:sha256:") {
            HashFormat::WerkzeugPbkdf2
        } else if stored.starts_with("$pbkdf2-sha256$") {
            HashFormat::PhcPbkdf2
        } else if stored.starts_with("$scrypt$") {
            HashFormat::Scrypt
        } else if matches!(stored.len(), 32 | 40 | 64)
            && stored.bytes().all(|b| b.is_ascii_hexdigit())
        {
            HashFormat::UnsaltedDigest
        } else {
            HashFormat::Unknown
        }
    }

    /// The format's name, as the hash report counts it.
    ///
    /// ```
    /// assert_eq!(crudauth::password::HashFormat::WerkzeugPbkdf2.as_str(), "pbkdf2_sha256_werkzeug");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            HashFormat::Argon2 => "argon2",
            HashFormat::Bcrypt => "bcrypt",
            HashFormat::DjangoPbkdf2 => "pbkdf2_sha256_django",
            HashFormat::WerkzeugPbkdf2 => "pbkdf2_sha256_werkzeug",
            HashFormat::PhcPbkdf2 => "pbkdf2_sha256_phc",
            HashFormat::Scrypt => "scrypt",
            HashFormat::UnsaltedDigest => "unsalted_digest",
            HashFormat::Unusable => "none",
            HashFormat::Unknown => "unknown",
        }
    }

    /// The built-in formats this build can verify besides argon2 (those whose cargo
    /// feature is on).
    ///
    /// ```
    /// let formats = crudauth::password::HashFormat::built_in();
    /// assert!(!formats.contains(&crudauth::password::HashFormat::UnsaltedDigest));
    /// ```
    pub fn built_in() -> Vec<HashFormat> {
        let mut formats = Vec::new();
        if cfg!(feature = "bcrypt") {
            formats.push(HashFormat::Bcrypt);
        }
        if cfg!(feature = "pbkdf2") {
            formats.extend([
                HashFormat::DjangoPbkdf2,
                HashFormat::WerkzeugPbkdf2,
                HashFormat::PhcPbkdf2,
            ]);
        }
        if cfg!(feature = "scrypt") {
            formats.push(HashFormat::Scrypt);
        }
        formats
    }
}

impl std::fmt::Display for HashFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many accounts hold a password hash of each format (`auth.password_hash_report()`):
/// when no row is left in an old format, that format can be switched off.
///
/// ```
/// let mut report = crudauth::password::HashReport::default();
/// report.count("$2b$12$abcdefghijklmnopqrstuu");
/// assert_eq!(report.counts["bcrypt"], 1);
/// assert_eq!(report.total, 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HashReport {
    /// Accounts per format ([`HashFormat::as_str`]).
    pub counts: std::collections::BTreeMap<&'static str, u64>,
    /// Accounts counted.
    pub total: u64,
}

impl HashReport {
    /// Counts one stored hash.
    pub fn count(&mut self, stored: &str) {
        *self
            .counts
            .entry(HashFormat::detect(stored).as_str())
            .or_default() += 1;
        self.total += 1;
    }
}

/// An app's own verifier: `Some(matched)` for a stored hash it recognises, `None` for one it
/// does not (the next verifier, then the built-in ones, are asked).
pub type Verifier = Arc<dyn Fn(&str, &str) -> Option<bool> + Send + Sync>;

/// Which old hash formats verify, and how long every password check must take while they
/// do (set with `CrudAuthBuilder::legacy_hashes`).
///
/// Timing: a check against a slow old format (bcrypt at cost 12, PBKDF2 at a million
/// iterations) takes longer than an argon2id check, and an unknown identifier is checked
/// against an argon2id dummy. So that neither tells which accounts exist or which still hold
/// an old hash, every password check (known or unknown account, any format) is held until it
/// took as long as the slowest configured format: the *floor*, measured when the hasher is
/// built by hashing once in each enabled format at [`LegacyHashes::costs`] (the frameworks'
/// defaults), or by verifying the app's own [`LegacyHashes::timing_samples`] (hashes from
/// its table, which is what a table with costlier rows should give). The hold is a timer,
/// not work: it holds no hashing slot.
///
/// ```
/// use crudauth::password::{HashFormat, LegacyHashes};
/// let legacy = LegacyHashes::built_in()
///     .verifier("sha1-salted", |password, stored| {
///         let (salt, _digest) = stored.strip_prefix("sha1$")?.split_once('$')?;
///         Some(!salt.is_empty() && password.is_empty()) // the app's own check goes here
///     });
/// assert!(legacy.enables(HashFormat::Bcrypt) || !cfg!(feature = "bcrypt"));
/// ```
#[derive(Clone, Default)]
pub struct LegacyHashes {
    formats: Vec<HashFormat>,
    verifiers: Vec<(String, Verifier)>,
    timing_samples: Option<Vec<String>>,
    /// The costs of the built-in timing samples.
    pub costs: SampleCosts,
}

/// The costs at which the built-in timing samples are made (the frameworks' defaults).
///
/// ```
/// let c = crudauth::password::SampleCosts::default();
/// assert_eq!((c.bcrypt, c.pbkdf2_iterations, c.scrypt_log_n), (12, 1_000_000, 15));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleCosts {
    /// bcrypt cost (Rails/Devise: 12; PHP: 10).
    pub bcrypt: u32,
    /// PBKDF2-SHA256 iterations (Django 5.2: 1,000,000; Werkzeug 3.0: 600,000).
    pub pbkdf2_iterations: u32,
    /// scrypt log2(N), with r = 8, p = 1 (Werkzeug 3.1: 15).
    pub scrypt_log_n: u8,
}

impl Default for SampleCosts {
    fn default() -> Self {
        SampleCosts {
            bcrypt: 12,
            pbkdf2_iterations: 1_000_000,
            scrypt_log_n: 15,
        }
    }
}

impl std::fmt::Debug for LegacyHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verifiers: Vec<&str> = self.verifiers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("LegacyHashes")
            .field("formats", &self.formats)
            .field("verifiers", &verifiers)
            .field(
                "timing_samples",
                &self.timing_samples.as_ref().map(Vec::len),
            )
            .field("costs", &self.costs)
            .finish()
    }
}

impl LegacyHashes {
    /// Every built-in format of this build ([`HashFormat::built_in`]).
    ///
    /// ```
    /// assert!(!crudauth::password::LegacyHashes::built_in().is_empty() || !cfg!(feature = "bcrypt"));
    /// ```
    pub fn built_in() -> Self {
        LegacyHashes {
            formats: HashFormat::built_in(),
            ..Default::default()
        }
    }

    /// Only these built-in formats (those this build can verify).
    ///
    /// ```
    /// use crudauth::password::{HashFormat, LegacyHashes};
    /// let legacy = LegacyHashes::only([HashFormat::Bcrypt]);
    /// assert!(!legacy.enables(HashFormat::Scrypt));
    /// ```
    pub fn only(formats: impl IntoIterator<Item = HashFormat>) -> Self {
        let built = HashFormat::built_in();
        LegacyHashes {
            formats: formats.into_iter().filter(|f| built.contains(f)).collect(),
            ..Default::default()
        }
    }

    /// Adds an app's own verifier (tried before the built-in ones): from the password as
    /// typed and the stored value to `Some(matched)`, or `None` for a value it does not
    /// recognise. A match is upgraded to argon2id like any old hash.
    ///
    /// ```
    /// let legacy = crudauth::password::LegacyHashes::default()
    ///     .verifier("never", |_password, _stored| None);
    /// assert!(!legacy.is_empty());
    /// ```
    pub fn verifier(
        mut self,
        name: impl Into<String>,
        verify: impl Fn(&str, &str) -> Option<bool> + Send + Sync + 'static,
    ) -> Self {
        self.verifiers.push((name.into(), Arc::new(verify)));
        self
    }

    /// Stored hashes from the table itself (say one per format and cost found there): the
    /// timing floor is the longest time to verify one of them (or the argon2id dummy), instead
    /// of the built-in samples. An empty list means the table holds no old hash yet: argon2id
    /// sets the floor.
    ///
    /// ```
    /// let legacy = crudauth::password::LegacyHashes::built_in()
    ///     .timing_samples(["$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie"]);
    /// ```
    pub fn timing_samples<I: IntoIterator<Item = S>, S: Into<String>>(mut self, stored: I) -> Self {
        self.timing_samples = Some(stored.into_iter().map(Into::into).collect());
        self
    }

    /// One stored hash per old format and cost among `hashes` (salt and digest aside): what
    /// [`LegacyHashes::timing_samples`] wants from a table, found by reading its hashes once
    /// (argon2 and unrecognised values are left out).
    ///
    /// ```
    /// use crudauth::password::LegacyHashes;
    /// let found = LegacyHashes::distinct_costs([
    ///     "$2b$12$aaaaaaaaaaaaaaaaaaaaaa", "$2b$12$bbbbbbbbbbbbbbbbbbbbbb", "$2b$10$cccc",
    ///     "pbkdf2_sha256$870000$salt$hash", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
    /// ]);
    /// assert_eq!(found.len(), 3);
    /// ```
    pub fn distinct_costs<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut samples = Vec::new();
        for stored in hashes {
            let fields = match HashFormat::detect(stored) {
                HashFormat::Bcrypt => 3,
                HashFormat::DjangoPbkdf2 => 2,
                HashFormat::WerkzeugPbkdf2 => 1,
                HashFormat::PhcPbkdf2 | HashFormat::Scrypt => 3,
                _ => continue,
            };
            let key: Vec<&str> = stored.splitn(fields + 1, '$').take(fields).collect();
            if seen.insert(key.join("$")) {
                samples.push(stored.to_owned());
            }
        }
        samples
    }

    /// Whether `format` verifies.
    ///
    /// ```
    /// assert!(!crudauth::password::LegacyHashes::default().enables(crudauth::password::HashFormat::Bcrypt));
    /// ```
    pub fn enables(&self, format: HashFormat) -> bool {
        self.formats.contains(&format)
    }

    /// Whether nothing but argon2 verifies (no format, no verifier of the app's).
    ///
    /// ```
    /// assert!(crudauth::password::LegacyHashes::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.formats.is_empty() && self.verifiers.is_empty()
    }

    /// Verifies `password` against an old `stored` hash: the app's verifiers first, then the
    /// enabled built-in format. `None` when nothing here recognises the value.
    pub(crate) fn verify(&self, stored: &str, password: &str) -> Option<bool> {
        for (_, verifier) in &self.verifiers {
            if let Some(verdict) = verifier(password, stored) {
                return Some(verdict);
            }
        }
        let format = HashFormat::detect(stored);
        if !self.enables(format) {
            return None;
        }
        builtin::verify(format, stored, password.as_bytes())
    }

    /// The stored hashes whose verification sets the timing floor: the app's sample, or one
    /// made now in each enabled built-in format at [`LegacyHashes::costs`].
    pub(crate) fn samples(&self) -> Vec<String> {
        if let Some(samples) = &self.timing_samples {
            return samples.clone();
        }
        let password = crate::keys::random_token();
        self.formats
            .iter()
            .filter_map(|f| builtin::sample(*f, &password, &self.costs))
            .collect()
    }
}

/// The built-in verifiers, on the RustCrypto crates and the `bcrypt` crate.
mod builtin {
    use super::{HashFormat, SampleCosts};

    /// The most PBKDF2 iterations a stored hash may ask for (bounds the work one stored
    /// value can cost).
    #[cfg(feature = "pbkdf2")]
    const MAX_ITERATIONS: u32 = 20_000_000;

    pub(super) fn verify(format: HashFormat, stored: &str, password: &[u8]) -> Option<bool> {
        // Without any built-in verifier (no default features) nothing reads them.
        #[cfg(not(any(feature = "bcrypt", feature = "pbkdf2", feature = "scrypt")))]
        let _ = (stored, password);
        match format {
            #[cfg(feature = "bcrypt")]
            HashFormat::Bcrypt => bcrypt::verify(password, stored).ok(),
            #[cfg(feature = "pbkdf2")]
            HashFormat::DjangoPbkdf2 => django(stored, password),
            #[cfg(feature = "pbkdf2")]
            HashFormat::WerkzeugPbkdf2 => werkzeug(stored, password),
            #[cfg(feature = "pbkdf2")]
            HashFormat::PhcPbkdf2 => phc(&pbkdf2::Pbkdf2::default(), stored, password),
            #[cfg(feature = "scrypt")]
            HashFormat::Scrypt => phc(&scrypt::Scrypt::new(), stored, password),
            _ => None,
        }
    }

    /// A hash of `password` in `format` at the sample costs (for the timing floor).
    pub(super) fn sample(
        format: HashFormat,
        password: &str,
        costs: &SampleCosts,
    ) -> Option<String> {
        let _ = (password, costs);
        match format {
            #[cfg(feature = "bcrypt")]
            HashFormat::Bcrypt => bcrypt::hash(password, costs.bcrypt).ok(),
            #[cfg(feature = "pbkdf2")]
            HashFormat::DjangoPbkdf2 | HashFormat::WerkzeugPbkdf2 | HashFormat::PhcPbkdf2 => {
                use base64::Engine as _;
                let mut out = [0u8; 32];
                let salt = "timingsample";
                let n = costs.pbkdf2_iterations.max(1);
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    n,
                    &mut out,
                );
                let hash = base64::engine::general_purpose::STANDARD.encode(out);
                Some(format!("pbkdf2_sha256${n}${salt}${hash}"))
            }
            #[cfg(feature = "scrypt")]
            HashFormat::Scrypt => {
                use argon2::password_hash::PasswordHasher as _;
                let params = scrypt::Params::new(costs.scrypt_log_n, 8, 1).ok()?;
                let hasher = scrypt::Scrypt::new_with_params(params);
                hasher
                    .hash_password_with_salt(password.as_bytes(), b"timing-sample-salt")
                    .ok()
                    .map(|h| h.to_string())
            }
            _ => None,
        }
    }

    /// A PHC string verified by a password-hash implementation (scrypt, PBKDF2), unless its
    /// own parameters ask for more work than any real system stores (an import gone wrong,
    /// a planted row): PBKDF2 past `MAX_ITERATIONS`, scrypt past N = 2^20, r = 32, p = 16.
    #[cfg(any(feature = "pbkdf2", feature = "scrypt"))]
    fn phc<H>(hasher: &H, stored: &str, password: &[u8]) -> Option<bool>
    where
        H: argon2::password_hash::PasswordVerifier<argon2::password_hash::phc::PasswordHash>,
    {
        let parsed = argon2::password_hash::phc::PasswordHash::new(stored).ok()?;
        let over =
            |name: &str, most: u32| parsed.params.get_decimal(name).is_some_and(|v| v > most);
        if over("i", 20_000_000) || over("ln", 20) || over("r", 32) || over("p", 16) {
            tracing::warn!("a stored hash asks for more work than crudauth computes; refused");
            return None;
        }
        Some(hasher.verify_password(password, &parsed).is_ok())
    }

    /// PBKDF2-HMAC-SHA256 of `password`, compared in constant time with `expected`.
    #[cfg(feature = "pbkdf2")]
    fn pbkdf2_matches(
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        expected: &[u8],
    ) -> Option<bool> {
        use subtle::ConstantTimeEq;
        if iterations == 0
            || iterations > MAX_ITERATIONS
            || expected.is_empty()
            || expected.len() > 64
        {
            return None;
        }
        let mut out = vec![0u8; expected.len()];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
        Some(bool::from(out.ct_eq(expected)))
    }

    /// Django: `pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte key>`.
    #[cfg(feature = "pbkdf2")]
    fn django(stored: &str, password: &[u8]) -> Option<bool> {
        use base64::Engine as _;
        let mut parts = stored.split('$');
        let (Some("pbkdf2_sha256"), Some(iterations), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let expected = base64::engine::general_purpose::STANDARD
            .decode(hash)
            .ok()?;
        pbkdf2_matches(
            password,
            salt.as_bytes(),
            iterations.parse().ok()?,
            &expected,
        )
    }

    /// Werkzeug: `pbkdf2:sha256:<iterations>$<salt>$<hex of the 32-byte key>`.
    #[cfg(feature = "pbkdf2")]
    fn werkzeug(stored: &str, password: &[u8]) -> Option<bool> {
        let mut parts = stored.split('$');
        let (Some(method), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let iterations = method.strip_prefix("pbkdf2:sha256:")?.parse().ok()?;
        let expected = hex(hash)?;
        pbkdf2_matches(password, salt.as_bytes(), iterations, &expected)
    }

    /// Lower- or upper-case hex to bytes.
    #[cfg(feature = "pbkdf2")]
    fn hex(text: &str) -> Option<Vec<u8>> {
        if !text.len().is_multiple_of(2) {
            return None;
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect()
    }
}
