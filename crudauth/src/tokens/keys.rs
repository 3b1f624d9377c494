//! The keys of bearer tokens: the signing key ([`JwtKey`]) and the keys that only verify
//! ([`VerifyKey`]), which together make the key set.

use crate::error::ConfigError;

/// The algorithm of a key (internal; the public types name it by their variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    Hs256,
    Es256,
    Es384,
    Es512,
    EdDsa,
    Rs256,
}

impl Alg {
    /// The JOSE name (`alg` of the header and the JWK).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
        }
    }
}

/// The signing key of bearer tokens: it signs every new access token (refresh tokens are
/// the derived HS256 key's, never published), and verifies like every key
/// of the set (it and [`BearerConfig::verify_only`](crate::BearerConfig::verify_only)).
///
/// Every token names its key in the header's `kid`. The HS256 key is derived from the
/// secret key, and so is its `kid` (an HKDF output that tells nothing about the key). A key
/// pair's private key is PKCS#8 PEM (`openssl genpkey`), its public key SPKI PEM
/// (`openssl pkey -pubout`); `RS256` keys need at least 2048 bits.
///
/// ```
/// let key = crudauth::JwtKey::Hs256Derived;
/// assert!(matches!(key, crudauth::JwtKey::Hs256Derived));
/// assert_eq!(crudauth::JwtKey::default().kid(), None); // derived at build
/// ```
#[derive(Clone, Default)]
pub enum JwtKey {
    /// HS256 with a key derived from the secret key (default).
    #[default]
    Hs256Derived,
    /// ES256 (P-256, SHA-256).
    Es256 {
        /// Key id placed in the header.
        kid: String,
        /// PKCS#8 private key, PEM.
        private_pem: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// ES384 (P-384, SHA-384).
    Es384 {
        /// Key id placed in the header.
        kid: String,
        /// PKCS#8 private key, PEM.
        private_pem: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// ES512 (P-521, SHA-512).
    Es512 {
        /// Key id placed in the header.
        kid: String,
        /// PKCS#8 private key, PEM.
        private_pem: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// EdDSA (Ed25519).
    EdDsa {
        /// Key id placed in the header.
        kid: String,
        /// PKCS#8 private key, PEM.
        private_pem: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// RS256 (RSASSA-PKCS1-v1_5, SHA-256; at least 2048 bits).
    Rs256 {
        /// Key id placed in the header.
        kid: String,
        /// PKCS#8 (or PKCS#1) private key, PEM.
        private_pem: String,
        /// Public key, PEM.
        public_pem: String,
    },
}

/// A key that only verifies: a retired signing key kept so the tokens it signed stay valid
/// until they expire. It needs only the public PEM. Put it in
/// [`BearerConfig::verify_only`](crate::BearerConfig::verify_only).
///
/// ```
/// # let public_pem = include_str!("../../../tests/fixtures/es256-public.pem").to_owned();
/// let retired = crudauth::VerifyKey::from_public_pem("2026-01", &public_pem)?;
/// assert!(matches!(retired, crudauth::VerifyKey::Es256 { .. })); // detected from the key
/// # Ok::<(), crudauth::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyKey {
    /// The HS256 key derived from the secret key: keeps tokens signed before a move to a key
    /// pair valid (it is never published).
    Hs256Derived,
    /// ES256 (P-256).
    Es256 {
        /// Key id of its tokens.
        kid: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// ES384 (P-384).
    Es384 {
        /// Key id of its tokens.
        kid: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// ES512 (P-521).
    Es512 {
        /// Key id of its tokens.
        kid: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// EdDSA (Ed25519).
    EdDsa {
        /// Key id of its tokens.
        kid: String,
        /// Public key, PEM.
        public_pem: String,
    },
    /// RS256 (at least 2048 bits).
    Rs256 {
        /// Key id of its tokens.
        kid: String,
        /// Public key, PEM.
        public_pem: String,
    },
}

/// The parts of a key: algorithm, kid (none for the derived HS256 key), private PEM (for a
/// signing key pair), public PEM.
pub(crate) struct Parts<'a> {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<&'a str>,
    pub(crate) private_pem: Option<&'a str>,
    pub(crate) public_pem: Option<&'a str>,
}

impl JwtKey {
    /// A signing key pair whose algorithm is read from the public key (P-256 → ES256,
    /// P-384 → ES384, P-521 → ES512, Ed25519 → EdDSA, RSA → RS256).
    ///
    /// ```
    /// # let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    /// # let read = |n: &str| std::fs::read_to_string(format!("{fixtures}/{n}")).unwrap();
    /// let key = crudauth::JwtKey::from_pem("ed-1", &read("ed25519-private.pem"), &read("ed25519-public.pem"))?;
    /// assert!(matches!(key, crudauth::JwtKey::EdDsa { .. }));
    /// assert!(crudauth::JwtKey::from_pem("x", "nope", "nope").is_err());
    /// # Ok::<(), crudauth::ConfigError>(())
    /// ```
    pub fn from_pem(kid: &str, private_pem: &str, public_pem: &str) -> Result<JwtKey, ConfigError> {
        let (kid, private_pem, public_pem) = (
            kid.to_owned(),
            private_pem.to_owned(),
            public_pem.to_owned(),
        );
        Ok(match super::signing::detect(&public_pem)? {
            Alg::Es256 => JwtKey::Es256 {
                kid,
                private_pem,
                public_pem,
            },
            Alg::Es384 => JwtKey::Es384 {
                kid,
                private_pem,
                public_pem,
            },
            Alg::Es512 => JwtKey::Es512 {
                kid,
                private_pem,
                public_pem,
            },
            Alg::EdDsa => JwtKey::EdDsa {
                kid,
                private_pem,
                public_pem,
            },
            Alg::Rs256 | Alg::Hs256 => JwtKey::Rs256 {
                kid,
                private_pem,
                public_pem,
            },
        })
    }

    /// The key id, if chosen by the app (the derived HS256 key's is derived at build: see
    /// [`TokenService::signing_kid`](crate::TokenService::signing_kid)).
    ///
    /// ```
    /// let key = crudauth::JwtKey::Es256 { kid: "2026-06".into(), private_pem: String::new(), public_pem: String::new() };
    /// assert_eq!(key.kid(), Some("2026-06"));
    /// ```
    pub fn kid(&self) -> Option<&str> {
        self.parts().kid
    }

    /// The public half, to keep in [`BearerConfig::verify_only`](crate::BearerConfig::verify_only)
    /// once this key is retired.
    ///
    /// ```
    /// let old = crudauth::JwtKey::Es256 { kid: "2026-01".into(), private_pem: "…".into(), public_pem: "PUB".into() };
    /// assert_eq!(old.verify_key(), crudauth::VerifyKey::Es256 { kid: "2026-01".into(), public_pem: "PUB".into() });
    /// ```
    pub fn verify_key(&self) -> VerifyKey {
        let p = self.parts();
        let (kid, public_pem) = (
            p.kid.unwrap_or_default().to_owned(),
            p.public_pem.unwrap_or_default().to_owned(),
        );
        match p.alg {
            Alg::Hs256 => VerifyKey::Hs256Derived,
            Alg::Es256 => VerifyKey::Es256 { kid, public_pem },
            Alg::Es384 => VerifyKey::Es384 { kid, public_pem },
            Alg::Es512 => VerifyKey::Es512 { kid, public_pem },
            Alg::EdDsa => VerifyKey::EdDsa { kid, public_pem },
            Alg::Rs256 => VerifyKey::Rs256 { kid, public_pem },
        }
    }

    pub(crate) fn parts(&self) -> Parts<'_> {
        let (alg, kid, private, public) = match self {
            JwtKey::Hs256Derived => {
                return Parts {
                    alg: Alg::Hs256,
                    kid: None,
                    private_pem: None,
                    public_pem: None,
                };
            }
            JwtKey::Es256 {
                kid,
                private_pem,
                public_pem,
            } => (Alg::Es256, kid, private_pem, public_pem),
            JwtKey::Es384 {
                kid,
                private_pem,
                public_pem,
            } => (Alg::Es384, kid, private_pem, public_pem),
            JwtKey::Es512 {
                kid,
                private_pem,
                public_pem,
            } => (Alg::Es512, kid, private_pem, public_pem),
            JwtKey::EdDsa {
                kid,
                private_pem,
                public_pem,
            } => (Alg::EdDsa, kid, private_pem, public_pem),
            JwtKey::Rs256 {
                kid,
                private_pem,
                public_pem,
            } => (Alg::Rs256, kid, private_pem, public_pem),
        };
        Parts {
            alg,
            kid: Some(kid),
            private_pem: Some(private),
            public_pem: Some(public),
        }
    }
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.parts() {
            Parts {
                kid: Some(kid),
                alg,
                ..
            } => write!(f, "JwtKey {{ alg: {}, kid: {kid:?}, .. }}", alg.name()),
            _ => f.write_str("Hs256Derived"),
        }
    }
}

impl VerifyKey {
    /// A verify-only key whose algorithm is read from the public key (P-256 → ES256,
    /// P-384 → ES384, P-521 → ES512, Ed25519 → EdDSA, RSA → RS256).
    ///
    /// ```
    /// assert!(crudauth::VerifyKey::from_public_pem("k", "-----BEGIN PUBLIC KEY-----").is_err());
    /// ```
    pub fn from_public_pem(kid: &str, public_pem: &str) -> Result<VerifyKey, ConfigError> {
        let (kid, public_pem) = (kid.to_owned(), public_pem.to_owned());
        Ok(match super::signing::detect(&public_pem)? {
            Alg::Es256 => VerifyKey::Es256 { kid, public_pem },
            Alg::Es384 => VerifyKey::Es384 { kid, public_pem },
            Alg::Es512 => VerifyKey::Es512 { kid, public_pem },
            Alg::EdDsa => VerifyKey::EdDsa { kid, public_pem },
            Alg::Rs256 | Alg::Hs256 => VerifyKey::Rs256 { kid, public_pem },
        })
    }

    pub(crate) fn parts(&self) -> Parts<'_> {
        let (alg, kid, public) = match self {
            VerifyKey::Hs256Derived => {
                return Parts {
                    alg: Alg::Hs256,
                    kid: None,
                    private_pem: None,
                    public_pem: None,
                };
            }
            VerifyKey::Es256 { kid, public_pem } => (Alg::Es256, kid, public_pem),
            VerifyKey::Es384 { kid, public_pem } => (Alg::Es384, kid, public_pem),
            VerifyKey::Es512 { kid, public_pem } => (Alg::Es512, kid, public_pem),
            VerifyKey::EdDsa { kid, public_pem } => (Alg::EdDsa, kid, public_pem),
            VerifyKey::Rs256 { kid, public_pem } => (Alg::Rs256, kid, public_pem),
        };
        Parts {
            alg,
            kid: Some(kid),
            private_pem: None,
            public_pem: Some(public),
        }
    }
}
