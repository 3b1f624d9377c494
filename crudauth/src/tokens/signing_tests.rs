//! Unit tests of the key set: the same claim checks on every path, the keys refused at
//! build, algorithm detection.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::store::{MemoryStore, Store};
use crate::tokens::{JwtKey, VerifyKey};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../tests/fixtures/", $name)).to_owned()
    };
}

/// One signing key per algorithm.
fn every_key() -> Vec<JwtKey> {
    vec![
        JwtKey::Hs256Derived,
        JwtKey::Es256 {
            kid: "es256".into(),
            private_pem: fixture!("es256-private.pem"),
            public_pem: fixture!("es256-public.pem"),
        },
        JwtKey::Es384 {
            kid: "es384".into(),
            private_pem: fixture!("es384-private.pem"),
            public_pem: fixture!("es384-public.pem"),
        },
        JwtKey::Es512 {
            kid: "es512".into(),
            private_pem: fixture!("es512-private.pem"),
            public_pem: fixture!("es512-public.pem"),
        },
        JwtKey::EdDsa {
            kid: "ed".into(),
            private_pem: fixture!("ed25519-private.pem"),
            public_pem: fixture!("ed25519-public.pem"),
        },
        JwtKey::Rs256 {
            kid: "rs".into(),
            private_pem: fixture!("rs256-private.pem"),
            public_pem: fixture!("rs256-public.pem"),
        },
    ]
}

fn build(key: JwtKey, verify_only: Vec<VerifyKey>) -> Result<TokenService, ConfigError> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = BearerConfig {
        key,
        verify_only,
        issuer: Some("https://auth.example".into()),
        audience: Some("api".into()),
        ..BearerConfig::default()
    };
    TokenService::new(config, &[9u8; 32], store)
}

#[test]
fn every_algorithm_applies_the_same_claim_checks() {
    let now = jsonwebtoken::get_current_timestamp();
    let control = json!({
        "sub": "7", "ver": 0, "exp": now + 60, "iat": now, "jti": "x", "token_type": "access",
        "scopes": [], "iss": "https://auth.example", "aud": "api"
    });
    type Change = fn(&mut serde_json::Map<String, Value>, u64);
    let cases: [(&str, bool, Change); 13] = [
        ("control", true, |_, _| {}),
        ("expired within the leeway", true, |c, now| {
            c.insert("exp".into(), json!(now - 3));
        }),
        ("expired", false, |c, now| {
            c.insert("exp".into(), json!(now - 30));
        }),
        ("exp a string", false, |c, now| {
            c.insert("exp".into(), json!((now + 60).to_string()));
        }),
        ("exp a float", false, |c, now| {
            c.insert("exp".into(), json!(now as f64 + 60.5));
        }),
        ("no exp", false, |c, _| {
            c.remove("exp");
        }),
        ("no iat", false, |c, _| {
            c.remove("iat");
        }),
        ("no sub", false, |c, _| {
            c.remove("sub");
        }),
        ("no iss", false, |c, _| {
            c.remove("iss");
        }),
        ("another iss", false, |c, _| {
            c.insert("iss".into(), json!("https://evil.example"));
        }),
        ("no aud", false, |c, _| {
            c.remove("aud");
        }),
        ("another aud", false, |c, _| {
            c.insert("aud".into(), json!("other"));
        }),
        ("aud a list", false, |c, _| {
            c.insert("aud".into(), json!(["api"]));
        }),
    ];
    for key in every_key() {
        let alg = key.parts().alg.name();
        let tokens = build(key, vec![]).expect("a valid key");
        for (case, accepted, change) in cases {
            let mut claims = control.clone();
            change(claims.as_object_mut().unwrap(), now);
            let token = tokens.inner.keys.sign(&claims).unwrap();
            assert_eq!(
                tokens.inner.keys.verify(&token).is_ok(),
                accepted,
                "{alg}: {case}"
            );
        }
    }
}

#[test]
fn every_algorithm_signs_with_its_kid_and_alg_and_verifies_its_own_tokens() {
    for key in every_key() {
        let (alg, kid) = (key.parts().alg.name(), key.kid().map(str::to_owned));
        let tokens = build(key, vec![]).unwrap();
        let (token, _) = tokens
            .sign(
                "7",
                0,
                vec![],
                "access",
                None,
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        let head: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(head["alg"], alg);
        assert_eq!(head["kid"], kid.as_deref().unwrap_or(tokens.signing_kid()));
        assert_eq!(tokens.verify_access(&token).unwrap().sub, "7", "{alg}");
        if alg == "ES512" {
            let signature = URL_SAFE_NO_PAD
                .decode(token.rsplit('.').next().unwrap())
                .unwrap();
            assert_eq!(signature.len(), 132, "fixed-size r || s");
        }
    }
}

#[test]
fn the_derived_kid_depends_on_the_key_and_is_not_the_key() {
    let a = derived_kid(&[9u8; 32]).unwrap();
    let b = derived_kid(&[8u8; 32]).unwrap();
    assert_ne!(a, b);
    assert!(!a.contains(&URL_SAFE_NO_PAD.encode([9u8; 32])[..8]));
    assert_eq!(
        a,
        derived_kid(&[9u8; 32]).unwrap(),
        "stable across restarts"
    );
}

#[test]
fn bad_key_sets_are_refused_at_build() {
    let es256 = || JwtKey::Es256 {
        kid: "a".into(),
        private_pem: fixture!("es256-private.pem"),
        public_pem: fixture!("es256-public.pem"),
    };
    let refused = |key: JwtKey, verify_only: Vec<VerifyKey>, why: &str| {
        assert!(build(key, verify_only).is_err(), "{why}");
    };
    refused(
        es256(),
        vec![VerifyKey::Es384 {
            kid: "a".into(),
            public_pem: fixture!("es384-public.pem"),
        }],
        "a kid twice",
    );
    refused(
        JwtKey::Hs256Derived,
        vec![VerifyKey::Hs256Derived],
        "the derived key twice",
    );
    refused(
        JwtKey::Es384 {
            kid: "a".into(),
            private_pem: fixture!("es256-private.pem"),
            public_pem: fixture!("es256-public.pem"),
        },
        vec![],
        "a P-256 key as ES384",
    );
    refused(
        JwtKey::Es256 {
            kid: "a".into(),
            private_pem: fixture!("es256-private.pem"),
            public_pem: fixture!("es256-next-public.pem"),
        },
        vec![],
        "a private key that is not the public key's",
    );
    refused(
        JwtKey::Rs256 {
            kid: "a".into(),
            private_pem: fixture!("rsa1024-private.pem"),
            public_pem: fixture!("rsa1024-public.pem"),
        },
        vec![],
        "a 1024-bit RSA key",
    );
    refused(
        es256(),
        vec![VerifyKey::Es512 {
            kid: "b".into(),
            public_pem: fixture!("es512-private.pem"),
        }],
        "a private PEM as a public key",
    );
    for kid in ["", "a\nb", &"k".repeat(129)] {
        refused(
            JwtKey::Es256 {
                kid: kid.into(),
                private_pem: fixture!("es256-private.pem"),
                public_pem: fixture!("es256-public.pem"),
            },
            vec![],
            "a bad kid",
        );
    }
    assert!(build(es256(), vec![VerifyKey::Hs256Derived]).is_ok());
}

#[test]
fn the_algorithm_is_read_from_the_public_key() {
    for key in every_key().into_iter().skip(1) {
        let p = key.parts();
        let detected = JwtKey::from_pem(
            p.kid.unwrap(),
            p.private_pem.unwrap(),
            p.public_pem.unwrap(),
        )
        .unwrap();
        assert_eq!(detected.parts().alg, p.alg);
        assert_eq!(
            VerifyKey::from_public_pem("k", p.public_pem.unwrap())
                .unwrap()
                .parts()
                .alg,
            p.alg
        );
    }
    assert!(VerifyKey::from_public_pem("k", &fixture!("rsa1024-public.pem")).is_err());
    assert!(VerifyKey::from_public_pem("k", &fixture!("es256-private.pem")).is_err());
}

#[test]
fn debug_never_prints_a_private_key() {
    for key in every_key() {
        let printed = format!(
            "{key:?} {:?}",
            BearerConfig {
                key: key.clone(),
                ..BearerConfig::default()
            }
        );
        assert!(!printed.contains("PRIVATE"), "{printed}");
        if let Some(pem) = key.parts().private_pem {
            let line = pem.lines().nth(1).unwrap();
            assert!(!printed.contains(line), "{printed}");
        }
    }
}

/// A token minted before tokens named their key (no `kid`): the derived HS256 key takes it
/// while it is in the set, so the upgrade signs nobody out; a set of key pairs never does.
#[test]
fn a_token_without_a_kid_is_only_ever_the_derived_hs256_keys() {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "sub": "1", "ver": 0, "exp": now + 600, "iat": now, "jti": "old",
        "token_type": "access", "scopes": [], "iss": "https://auth.example", "aud": "api",
    });
    let old = |secret: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let hs = build(JwtKey::Hs256Derived, vec![]).unwrap();
    assert!(
        hs.verify_access(&old(&[9u8; 32])).is_ok(),
        "the derived key's own"
    );
    assert!(hs.verify_access(&old(&[8u8; 32])).is_err(), "another key's");
    // A move to a key pair keeps them only while the derived key is verify-only.
    let pair = every_key().remove(1);
    let moving = build(pair.clone(), vec![VerifyKey::Hs256Derived]).unwrap();
    assert!(moving.verify_access(&old(&[9u8; 32])).is_ok());
    let moved = build(pair, vec![]).unwrap();
    assert!(moved.verify_access(&old(&[9u8; 32])).is_err());
}

/// An ES512 token's signature is low-S, and its high-S twin (r, n - s), which verifies
/// mathematically, is refused: a token has one string.
#[test]
fn an_es512_signature_has_one_form() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let es512 = every_key().remove(3);
    let tokens = build(es512, vec![]).unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "sub": "1", "ver": 0, "exp": now + 600, "iat": now, "jti": "j",
        "token_type": "access", "scopes": [], "iss": "https://auth.example", "aud": "api",
    });
    for _ in 0..8 {
        let token = tokens.inner.keys.sign(&claims).unwrap();
        assert!(tokens.verify_access(&token).is_ok());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let signature = p521::ecdsa::Signature::from_slice(&bytes).unwrap();
        assert_eq!(signature.normalize_s(), signature, "minted low-S");
        let (r, s) = signature.split_scalars();
        let twin = p521::ecdsa::Signature::from_scalars(r, -s).unwrap();
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(twin.to_bytes()));
        assert!(tokens.verify_access(&forged).is_err(), "the high-S twin");
    }
}
