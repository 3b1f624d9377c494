//! Signing keys: every algorithm through the router, rotation with overlap, the key set's
//! refusals (unknown or missing kid, algorithm confusion, `none`, an `alg` the kid's key does
//! not use, hostile headers) and the JWKS (public parts only, enough to verify).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;

use crudauth::store::Store;
use crudauth::{BearerConfig, JwtKey, MemoryStore, VerifyKey};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{Req, TestApp, User, app_with, default_builder, demo_routes};
use jsonwebtoken::{Algorithm, EncodingKey};
use p521::ecdsa::signature::{Signer as _, Verifier as _};
use p521::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde_json::{Value, json};

const PW: &str = "correct horse 1";

fn read(name: &str) -> String {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    std::fs::read_to_string(format!("{fixtures}/{name}")).unwrap()
}

/// The fixture key pair `file` (e.g. `es256`) under `kid`, its algorithm read from the key.
fn key(file: &str, kid: &str) -> JwtKey {
    JwtKey::from_pem(
        kid,
        &read(&format!("{file}-private.pem")),
        &read(&format!("{file}-public.pem")),
    )
    .unwrap()
}

/// (fixture, JOSE alg) of every key pair algorithm.
const PAIRS: [(&str, &str); 5] = [
    ("es256", "ES256"),
    ("es384", "ES384"),
    ("es512", "ES512"),
    ("ed25519", "EdDSA"),
    ("rs256", "RS256"),
];

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn part(token: &str, i: usize) -> Value {
    let segment = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// A token with this exact header (serialised as given), signed over the JWS input by
/// `sign` (returning the raw signature).
fn token_with(header: &str, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header), b64(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// A signer for the fixture key `file` (raw JWS signature bytes).
fn signer(file: &str) -> impl Fn(&[u8]) -> Vec<u8> {
    let pem = read(&format!("{file}-private.pem"));
    move |input: &[u8]| {
        if file == "es512" {
            let key = p521::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap();
            let signature: p521::ecdsa::Signature = key.sign(input);
            // Low S, as crudauth mints and alone accepts (the high-S twin is refused).
            return signature.normalize_s().to_bytes().to_vec();
        }
        let (alg, key) = match file {
            "es256-next" => (Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes())),
            "ed25519" => (Algorithm::EdDSA, EncodingKey::from_ed_pem(pem.as_bytes())),
            "rs256" => (Algorithm::RS256, EncodingKey::from_rsa_pem(pem.as_bytes())),
            "es384" => (Algorithm::ES384, EncodingKey::from_ec_pem(pem.as_bytes())),
            _ => (Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes())),
        };
        let b64_signature = jsonwebtoken::crypto::sign(input, &key.unwrap(), alg).unwrap();
        URL_SAFE_NO_PAD.decode(b64_signature).unwrap()
    }
}

fn hmac(secret: Vec<u8>) -> impl Fn(&[u8]) -> Vec<u8> {
    move |input: &[u8]| {
        let key = EncodingKey::from_secret(&secret);
        let b64_signature = jsonwebtoken::crypto::sign(input, &key, Algorithm::HS256).unwrap();
        URL_SAFE_NO_PAD.decode(b64_signature).unwrap()
    }
}

async fn app_signing(test: &str, key: JwtKey, verify_only: Vec<VerifyKey>) -> TestApp {
    app_sharing(test, key, verify_only, Arc::new(MemoryStore::new())).await
}

/// [`app_signing`] with the refresh families in `store`.
async fn app_sharing(
    test: &str,
    key: JwtKey,
    verify_only: Vec<VerifyKey>,
    store: Arc<dyn Store>,
) -> TestApp {
    let t = app_with(test, move |b| {
        b.store(store).bearer(BearerConfig {
            key,
            verify_only,
            default_scopes: ["me:read".to_owned()].into(),
            grantable_scopes: ["me:read".to_owned()].into(),
            ..BearerConfig::default()
        })
    })
    .await;
    t.register("alice@example.com", "alice", PW).await;
    t
}

/// Another app over the same users and store, with another key set (a restart after a key
/// change).
fn restarted(
    t: &TestApp,
    store: &Arc<dyn Store>,
    key: JwtKey,
    verify_only: Vec<VerifyKey>,
) -> axum::Router {
    let repo = SeaUserRepository::<User>::new(t.tdb.db.clone());
    let auth = default_builder(repo)
        .store(store.clone())
        .bearer(BearerConfig {
            key,
            verify_only,
            default_scopes: ["me:read".to_owned()].into(),
            grantable_scopes: ["me:read".to_owned()].into(),
            ..BearerConfig::default()
        })
        .build()
        .expect("valid key set");
    demo_routes(&auth)
}

async fn me(app: &axum::Router, access: &str) -> crudauth_tests::http::Resp {
    crudauth_tests::http::send(app, Req::get("/me").bearer(access)).await
}

#[tokio::test]
async fn every_algorithm_signs_tokens_the_router_accepts_with_a_kid_in_the_header() {
    let mut keys: Vec<(JwtKey, &str)> = vec![(JwtKey::Hs256Derived, "HS256")];
    for (file, alg) in PAIRS {
        keys.push((key(file, &format!("{file}-1")), alg));
    }
    for (key, alg) in keys {
        let t = app_signing(&format!("sign_{alg}"), key, vec![]).await;
        let (access, refresh) = t.token("alice", PW, "").await;
        let header = part(&access, 0);
        assert_eq!(header["alg"], alg);
        let kid = header["kid"].as_str().expect("a kid in every header");
        assert_eq!(kid, t.auth.tokens().unwrap().signing_kid());
        assert_eq!(me(&t.app, &access).await.status, 200, "{alg}");
        let r = t
            .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
            .await;
        assert_eq!(r.status, 200, "{alg} refresh");
        let rotated = r.json["access_token"].as_str().unwrap();
        assert_eq!(me(&t.app, rotated).await.status, 200, "{alg} rotated");
    }
}

#[tokio::test]
async fn a_rotation_keeps_old_tokens_while_the_old_key_verifies_and_ends_them_once_removed() {
    let old = key("es256", "2026-01");
    let new = key("es512", "2026-06");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let t = app_sharing("rotation", old.clone(), vec![], store.clone()).await;
    let (old_access, old_refresh) = t.token("alice", PW, "").await;

    // Overlap: the new key signs, the old one only verifies (its public half only).
    let overlap = restarted(&t, &store, new.clone(), vec![old.verify_key()]);
    assert_eq!(me(&overlap, &old_access).await.status, 200, "still valid");
    let r = crudauth_tests::http::send(
        &overlap,
        Req::post("/refresh").json(json!({ "refresh_token": old_refresh })),
    )
    .await;
    // (Refresh tokens are the derived HS256 key's whatever the set: a rotation never touches
    // them.)
    assert_eq!(
        r.status, 200,
        "a refresh token lives through the rotation: {:?}",
        r.json
    );
    let new_access = r.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        part(&new_access, 0)["kid"],
        "2026-06",
        "signed by the new key"
    );
    assert_eq!(me(&overlap, &new_access).await.status, 200);

    // The old key removed: its tokens are refused, the new ones still pass.
    let after = restarted(&t, &store, new, vec![]);
    let r = me(&after, &old_access).await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "Invalid token"));
    assert_eq!(me(&after, &new_access).await.status, 200);
}

#[tokio::test]
async fn a_logout_with_a_key_pair_ends_the_refresh_family_and_the_access_token() {
    let t = app_signing("logout_pair", key("es256", "k1"), vec![]).await;
    let (access, refresh) = t.token("alice", PW, "").await;
    let r = t
        .send(
            Req::post("/logout")
                .bearer(&access)
                .json(json!({ "refresh_token": refresh })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(me(&t.app, &access).await.status, 401, "access token denied");
    let r = t
        .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (401, "Invalid or expired refresh token"),
        "its family ended"
    );
}

#[tokio::test]
async fn a_move_from_hs256_to_a_key_pair_signs_nobody_out_while_the_derived_key_verifies() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let t = app_sharing("from_hs256", JwtKey::Hs256Derived, vec![], store.clone()).await;
    let (access, _) = t.token("alice", PW, "").await;
    let moved = restarted(
        &t,
        &store,
        key("ed25519", "ed-1"),
        vec![VerifyKey::Hs256Derived],
    );
    assert_eq!(me(&moved, &access).await.status, 200);
    let dropped = restarted(&t, &store, key("ed25519", "ed-1"), vec![]);
    assert_eq!(me(&dropped, &access).await.status, 401);
}

#[tokio::test]
async fn a_kid_not_in_the_set_and_a_token_without_a_kid_are_refused() {
    for (file, alg) in PAIRS {
        let t = app_signing(&format!("kid_{alg}"), key(file, "in-set"), vec![]).await;
        let (access, _) = t.token("alice", PW, "").await;
        let claims = part(&access, 1);
        let sign = signer(file);
        let control = token_with(
            &json!({"alg": alg, "kid": "in-set", "typ": "JWT"}).to_string(),
            &claims,
            &sign,
        );
        assert_eq!(me(&t.app, &control).await.status, 200, "{alg} control");
        for header in [
            json!({"alg": alg, "kid": "not-in-set"}),
            json!({"alg": alg}),
            json!({"alg": alg, "kid": ""}),
        ] {
            let forged = token_with(&header.to_string(), &claims, &sign);
            let r = me(&t.app, &forged).await;
            assert_eq!(
                (r.status.as_u16(), r.detail()),
                (401, "Invalid token"),
                "{header}"
            );
        }
    }
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_and_alg_none_are_refused() {
    for (file, alg) in PAIRS {
        let t = app_signing(&format!("confusion_{alg}"), key(file, "k1"), vec![]).await;
        let (access, _) = t.token("alice", PW, "").await;
        let claims = part(&access, 1);
        let public = read(&format!("{file}-public.pem"));
        let der = public
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        for secret in [public.as_bytes().to_vec(), der.into_bytes()] {
            for header in [
                json!({"alg": "HS256", "kid": "k1"}),
                json!({"alg": "HS256"}),
            ] {
                let forged = token_with(&header.to_string(), &claims, hmac(secret.clone()));
                let r = me(&t.app, &forged).await;
                assert_eq!(
                    (r.status.as_u16(), r.detail()),
                    (401, "Invalid token"),
                    "{alg}"
                );
            }
        }
        for none in ["none", "None", "NONE"] {
            let header = json!({"alg": none, "kid": "k1"}).to_string();
            let unsigned = token_with(&header, &claims, |_| Vec::new());
            assert_eq!(me(&t.app, &unsigned).await.status, 401, "{alg} {none}");
            let signed = token_with(&header, &claims, signer(file));
            assert_eq!(me(&t.app, &signed).await.status, 401, "{alg} {none} signed");
        }
    }
}

#[tokio::test]
async fn a_header_alg_that_is_not_the_kids_keys_algorithm_is_refused() {
    // ES256 signs ("a"), ES384 ("b"), RS256 ("c") and the derived HS256 key verify.
    let verify_only = vec![
        key("es384", "b").verify_key(),
        key("rs256", "c").verify_key(),
        VerifyKey::Hs256Derived,
    ];
    let t = app_signing("alg_mismatch", key("es256", "a"), verify_only).await;
    let (access, _) = t.token("alice", PW, "").await;
    let claims = part(&access, 1);
    let hs_kid = hs_kid(&t);
    let cases = [
        // (header alg, kid, signed by): a real signature by a key of the set each time.
        ("ES384", "a", "es384"),
        ("ES256", "b", "es256"),
        ("ES384", "c", "es384"),
        ("RS256", "a", "rs256"),
        ("ES256", hs_kid.as_str(), "es256"),
        ("PS256", "c", "rs256"),
    ];
    for (alg, kid, by) in cases {
        let header = json!({"alg": alg, "kid": kid}).to_string();
        let forged = token_with(&header, &claims, signer(by));
        let r = me(&t.app, &forged).await;
        assert_eq!(
            (r.status.as_u16(), r.detail()),
            (401, "Invalid token"),
            "{alg} {kid}"
        );
    }
    for (alg, kid, by) in [("ES384", "b", "es384"), ("RS256", "c", "rs256")] {
        let header = json!({"alg": alg, "kid": kid}).to_string();
        let control = token_with(&header, &claims, signer(by));
        assert_eq!(me(&t.app, &control).await.status, 200, "control {alg}");
    }
}

/// The kid of the derived HS256 key of this app's secret (read from an app that signs
/// with it).
fn hs_kid(t: &TestApp) -> String {
    let repo = SeaUserRepository::<User>::new(t.tdb.db.clone());
    let hs = default_builder(repo).build().unwrap();
    hs.tokens().unwrap().signing_kid().to_owned()
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

#[tokio::test]
async fn the_jwks_publishes_public_parts_only_and_is_absent_with_hs256_only() {
    let hs = app_signing("jwks_hs_only", JwtKey::Hs256Derived, vec![]).await;
    assert_eq!(
        hs.send(Req::get("/.well-known/jwks.json")).await.status,
        404
    );
    assert!(hs.auth.tokens().unwrap().jwks().is_none());

    let verify_only = vec![
        key("es256", "es256").verify_key(),
        key("es384", "es384").verify_key(),
        key("es512", "es512").verify_key(),
        key("ed25519", "ed").verify_key(),
        VerifyKey::Hs256Derived,
    ];
    let t = app_signing("jwks_all", key("rs256", "rs"), verify_only).await;
    let r = t.send(Req::get("/.well-known/jwks.json")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "public, max-age=300");
    assert_eq!(&r.json, t.auth.tokens().unwrap().jwks().unwrap());
    let keys = r.json["keys"].as_array().unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(
        kids,
        ["rs", "es256", "es384", "es512", "ed"],
        "no HS256 key"
    );
    for k in keys {
        let members: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
        for private in PRIVATE_MEMBERS {
            assert!(!members.contains(&private), "{private} in {k}");
        }
        let public: &[&str] = match k["kty"].as_str().unwrap() {
            "EC" => &["kty", "crv", "x", "y", "kid", "alg", "use"],
            "RSA" => &["kty", "n", "e", "kid", "alg", "use"],
            _ => &["kty", "crv", "x", "kid", "alg", "use"],
        };
        assert!(members.iter().all(|m| public.contains(m)), "{k}");
        assert_eq!(k["use"], "sig");
    }
    // RFC 7518 sizes: coordinates padded to the curve's size, `n` without a leading zero.
    let len = |k: &Value, m: &str| {
        URL_SAFE_NO_PAD
            .decode(k[m].as_str().unwrap())
            .unwrap()
            .len()
    };
    let n = URL_SAFE_NO_PAD
        .decode(keys[0]["n"].as_str().unwrap())
        .unwrap();
    assert_eq!((n.len(), n[0] != 0), (256, true), "2048-bit n, minimal");
    assert_eq!(keys[0]["e"], "AQAB");
    for (i, crv, size) in [(1, "P-256", 32), (2, "P-384", 48), (3, "P-521", 66)] {
        assert_eq!(keys[i]["crv"], crv);
        assert_eq!(
            (len(&keys[i], "x"), len(&keys[i], "y")),
            (size, size),
            "{crv}"
        );
    }
    assert_eq!(
        (keys[4]["kty"].as_str(), keys[4]["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(len(&keys[4], "x"), 32);
    // No private key material: no run of 16 bytes of a private key that is not also in its
    // public key appears in any decoded member.
    let decoded: Vec<Vec<u8>> = keys
        .iter()
        .flat_map(|k| k.as_object().unwrap().values())
        .filter_map(|v| URL_SAFE_NO_PAD.decode(v.as_str()?).ok())
        .collect();
    let der = |pem: String| {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    for file in ["rs256", "es256", "es384", "es512", "ed25519"] {
        let private = der(read(&format!("{file}-private.pem")));
        let public = der(read(&format!("{file}-public.pem")));
        let secret_runs: Vec<&[u8]> = private
            .windows(16)
            .filter(|w| !public.windows(16).any(|p| p == *w))
            .collect();
        assert!(!secret_runs.is_empty());
        for run in secret_runs {
            assert!(
                !decoded.iter().any(|d| d.windows(16).any(|w| w == run)),
                "{file}: private bytes in the JWKS"
            );
        }
    }
}

#[tokio::test]
async fn an_independent_verifier_checks_minted_tokens_with_the_published_keys() {
    for (file, alg) in PAIRS {
        let t = app_signing(&format!("jwks_verify_{alg}"), key(file, "pub-1"), vec![]).await;
        let (access, refresh) = t.token("alice", PW, "").await;
        // A refresh token is this service's alone: signed with the derived HS256 key, which
        // is never published, so a service trusting the JWKS cannot take it for an access
        // token (and it still rotates here).
        let refresh_header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(refresh.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(refresh_header["alg"], "HS256", "{alg}");
        assert_ne!(refresh_header["kid"], "pub-1", "{alg}");
        let r = t.send(Req::get("/.well-known/jwks.json")).await;
        let jwk = &r.json["keys"][0];
        assert_eq!(
            (jwk["kid"].as_str(), jwk["alg"].as_str()),
            (Some("pub-1"), Some(alg))
        );
        let (input, signature) = access.rsplit_once('.').unwrap();
        if alg == "ES512" {
            // jsonwebtoken has no ES512: p521, from the published x and y alone.
            let coordinate = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
            let point = [vec![4u8], coordinate("x"), coordinate("y")].concat();
            let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            let signature = p521::ecdsa::Signature::from_slice(&signature).unwrap();
            assert!(key.verify(input.as_bytes(), &signature).is_ok());
            // and the public PEM of the fixture is that very key
            let pem = p521::ecdsa::VerifyingKey::from_public_key_pem(&read("es512-public.pem"));
            assert_eq!(pem.unwrap(), key);
            continue;
        }
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&parsed).unwrap();
        let jwt_alg: Algorithm = alg.parse().unwrap();
        let mut validation = jsonwebtoken::Validation::new(jwt_alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Value>(&access, &decoding, &validation)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(data.claims["token_type"], "access");
        assert_eq!(data.header.kid.as_deref(), Some("pub-1"));
        assert!(
            jsonwebtoken::decode::<Value>(&refresh, &decoding, &validation).is_err(),
            "{alg}: the published key does not verify a refresh token"
        );
        let r = t
            .send(Req::post("/refresh").json(serde_json::json!({ "refresh_token": refresh })))
            .await;
        assert_eq!(r.status, 200, "{alg}: {:?}", r.json);
    }
}

#[tokio::test]
async fn hostile_headers_and_signatures_are_refused_without_a_fault() {
    let t = app_signing(
        "hostile",
        key("es512", "k1"),
        vec![key("es256", "k2").verify_key()],
    )
    .await;
    let (access, _) = t.token("alice", PW, "").await;
    let claims = part(&access, 1);
    let (head, rest) = access.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let es512 = signer("es512");
    let signed = |header: &str| token_with(header, &claims, &es512);
    let huge = "k".repeat(6000);
    let mut tampered_signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    tampered_signature[10] ^= 1;
    let mut tokens = vec![
        (
            "huge kid",
            signed(&json!({"alg": "ES512", "kid": huge}).to_string()),
        ),
        ("numeric kid", signed(r#"{"alg":"ES512","kid":1}"#)),
        ("array kid", signed(r#"{"alg":"ES512","kid":["k1"]}"#)),
        ("null kid", signed(r#"{"alg":"ES512","kid":null}"#)),
        ("object kid", signed(r#"{"alg":"ES512","kid":{"k1":1}}"#)),
        (
            "duplicate kid",
            signed(r#"{"alg":"ES512","kid":"zz","kid":"k1"}"#),
        ),
        (
            "duplicate alg",
            signed(r#"{"alg":"none","alg":"ES512","kid":"k1"}"#),
        ),
        ("lowercase alg", signed(r#"{"alg":"es512","kid":"k1"}"#)),
        (
            "numeric typ",
            signed(r#"{"alg":"ES512","kid":"k1","typ":7}"#),
        ),
        (
            "crit",
            signed(r#"{"alg":"ES512","kid":"k1","crit":["exp"]}"#),
        ),
        ("header not JSON", signed("not json")),
        ("header a list", signed(r#"["ES512","k1"]"#)),
        ("no alg", signed(r#"{"kid":"k1"}"#)),
        (
            "bad base64 header",
            format!("{head}!.{payload}.{signature}"),
        ),
        ("padded header", format!("{head}=.{payload}.{signature}")),
        (
            "bad base64 payload",
            format!("{head}.{payload}*.{signature}"),
        ),
        (
            "bad base64 signature",
            format!("{head}.{payload}.{signature}$"),
        ),
        (
            "tampered signature",
            format!("{head}.{payload}.{}", b64(&tampered_signature)),
        ),
        (
            "short signature",
            format!("{head}.{payload}.{}", &signature[..40]),
        ),
        ("empty signature", format!("{head}.{payload}.")),
        ("two segments", format!("{head}.{payload}")),
        ("four segments", format!("{access}.{signature}")),
        ("empty", String::new()),
        ("dots", "...".into()),
        ("oversized", format!("{access}{}", "A".repeat(9000))),
    ];
    // ES512 with a DER-encoded signature (what OpenSSL emits) instead of r || s.
    let key = p521::ecdsa::SigningKey::from_pkcs8_pem(&read("es512-private.pem")).unwrap();
    let input = format!("{head}.{payload}");
    let signature: p521::ecdsa::Signature = key.sign(input.as_bytes());
    tokens.push((
        "DER signature",
        format!("{input}.{}", b64(signature.to_der())),
    ));
    // A key carried in the header (`jwk`, `jku`, `x5u`) is never used: signed by the
    // attacker's own key, naming it inline or by URL, with a kid of the set or none.
    let attacker = signer("es256-next");
    let attacker_public =
        jsonwebtoken::DecodingKey::from_ec_pem(read("es256-next-public.pem").as_bytes()).unwrap();
    let inline = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_decoding_key(&attacker_public, Some(Algorithm::ES256))
            .unwrap(),
    )
    .unwrap();
    for header in [
        json!({"alg": "ES256", "kid": "k2", "jwk": inline}),
        json!({"alg": "ES256", "jwk": inline}),
        json!({"alg": "ES256", "kid": "k2", "jku": "https://evil.example/jwks.json"}),
        json!({"alg": "ES256", "kid": "k2", "x5u": "https://evil.example/cert.pem"}),
    ] {
        tokens.push((
            "a key in the header",
            token_with(&header.to_string(), &claims, &attacker),
        ));
    }
    // The header of one token on another's payload.
    let other = token_with(r#"{"alg":"ES256","kid":"k2"}"#, &claims, signer("es256"));
    let (_, other_rest) = other.split_once('.').unwrap();
    tokens.push(("spliced header", format!("{head}.{other_rest}")));
    for (case, token) in tokens {
        let r = me(&t.app, &token).await;
        assert_eq!(r.status, 401, "{case}");
        assert_eq!(r.detail(), "Invalid token", "{case}");
    }
    assert_eq!(me(&t.app, &access).await.status, 200, "the control");
}
