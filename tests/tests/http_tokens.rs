//! Bearer tokens: every attack on the token invariants.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crudauth::{BearerConfig, JwtKey, RefreshMode};
use crudauth_tests::http::{Req, app, app_with};
use serde_json::json;

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The `kid` of a token's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// Re-signs `claims` with HS256 under `key`, naming key `kid` (so only the signature, not a
/// missing or unknown kid, is what a verifier can refuse).
fn forge(claims: &serde_json::Value, kid: &str, key: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_carry_the_claims_and_clamp_scopes() {
    let t = app("token_claims").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let (access, refresh) = t
        .token("alice", "correct horse 1", "me:read reports:read admin:all")
        .await;
    let c = claims_of(&access);
    for claim in ["sub", "ver", "exp", "iat", "jti", "token_type", "scopes"] {
        assert!(c.get(claim).is_some(), "access token lacks {claim}");
    }
    assert_eq!(c["token_type"], "access");
    assert_eq!(
        c["scopes"],
        json!(["me:read", "reports:read"]),
        "admin:all is not grantable"
    );
    assert_eq!(claims_of(&refresh)["token_type"], "refresh");
    let r = t
        .send(Req::post("/token").form(&[("username", "alice"), ("password", "correct horse 1")]))
        .await;
    assert_eq!(r.json["token_type"], "bearer");
    assert_eq!(r.json["expires_in"], 900);
    assert_eq!(
        claims_of(r.json["access_token"].as_str().unwrap())["scopes"],
        json!(["me:read"])
    );
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn tampered_unsigned_and_foreign_tokens_are_invalid_even_where_auth_is_optional() {
    let t = app("token_tampering").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let (access, _) = t.token("alice", "correct horse 1", "").await;
    let mut claims = claims_of(&access);
    let parts: Vec<&str> = access.split('.').collect();

    // A changed payload under the original signature.
    claims["scopes"] = json!(["me:read", "reports:read"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid_of(&access)})),
        parts[1]
    );
    // Signed with another key.
    let foreign = forge(
        &claims_of(&access),
        &kid_of(&access),
        b"another key that is also 32 bytes long!!",
    );
    // Signed with the raw secret (the derived JWT key is what verifies).
    let raw_secret = forge(
        &claims_of(&access),
        &kid_of(&access),
        crudauth_tests::http::SECRET,
    );
    // A string `exp` is a rejected token, not one without expiry.
    let mut string_exp = claims_of(&access);
    string_exp["exp"] = json!("9999999999");
    let string_exp = format!("{}.{}.{}", parts[0], b64(&string_exp), parts[2]);

    for (name, token) in [
        ("tampered", tampered),
        ("alg none", none),
        ("foreign key", foreign),
        ("raw secret", raw_secret),
        ("string exp", string_exp),
        ("garbage", "abc.def".to_owned()),
        ("empty", String::new()),
        ("huge", "a".repeat(20_000)),
    ] {
        let r = t.send(Req::get("/me").bearer(&token)).await;
        assert_eq!(
            (r.status.as_u16(), r.detail()),
            (401, "Invalid token"),
            "{name}"
        );
        assert!(r.headers.contains_key("www-authenticate"), "{name}");
        let optional = t.send(Req::get("/maybe").bearer(&token)).await;
        assert_eq!(
            optional.status, 401,
            "{name}: present but invalid fails optional auth too"
        );
    }
    assert_eq!(t.send(Req::get("/maybe")).await.json["anonymous"], true);
    assert_eq!(
        t.send(Req::get("/me").header("authorization", "Basic Zm9vOmJhcg=="))
            .await
            .detail(),
        "Not authenticated"
    );
    assert_eq!(
        t.send(Req::get("/me").header("authorization", [0xffu8, 0xfe]))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn refresh_and_access_tokens_cannot_stand_in_for_each_other() {
    let t = app("token_types").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let (access, refresh) = t.token("alice", "correct horse 1", "").await;
    let r = t.send(Req::get("/me").bearer(&refresh)).await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "Invalid token"));
    let r = t
        .send(Req::post("/refresh").json(json!({"refresh_token": access})))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (401, "Invalid or expired refresh token")
    );
    let r = t.send(Req::post("/refresh").json(json!({}))).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (401, "Refresh token missing")
    );
    assert_eq!(
        t.send(Req::post("/refresh")).await.detail(),
        "Refresh token missing"
    );
    assert_eq!(
        t.send(Req::post("/refresh").raw("application/json", "{oops"))
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let t = app("token_rotation").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let (_, first) = t
        .token("alice", "correct horse 1", "me:read reports:read")
        .await;
    let r = t
        .send(Req::post("/refresh").json(json!({"refresh_token": first})))
        .await;
    assert_eq!(r.status, 200);
    let second = r.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(
        claims_of(r.json["access_token"].as_str().unwrap())["scopes"],
        json!(["me:read", "reports:read"])
    );
    assert_eq!(claims_of(&second)["fam"], claims_of(&first)["fam"]);

    // The first token again: reuse. It fails, and so does the legitimate latest one.
    let replay = t
        .send(Req::post("/refresh").json(json!({"refresh_token": first})))
        .await;
    assert_eq!(replay.status, 401);
    let r = t
        .send(Req::post("/refresh").json(json!({"refresh_token": second})))
        .await;
    assert_eq!(r.status, 401, "the family is revoked");

    // Another family of the same user is untouched.
    let (_, other) = t.token("alice", "correct horse 1", "").await;
    assert_eq!(
        t.send(Req::post("/refresh").json(json!({"refresh_token": other})))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn two_concurrent_refreshes_of_one_token_yield_at_most_one_pair() {
    let t = app("token_refresh_race").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let (_, refresh) = t.token("alice", "correct horse 1", "").await;
    let a = t.send(Req::post("/refresh").json(json!({"refresh_token": refresh.clone()})));
    let b = t.send(Req::post("/refresh").json(json!({"refresh_token": refresh})));
    let (a, b) = tokio::join!(a, b);
    let ok = [a.status, b.status].iter().filter(|s| **s == 200).count();
    assert!(ok <= 1, "both concurrent refreshes succeeded");
}

#[tokio::test]
async fn scopes_are_clamped_again_at_refresh() {
    use crudauth::store::MemoryStore;
    use std::sync::Arc;
    let store: Arc<dyn crudauth::store::Store> = Arc::new(MemoryStore::new());
    let wide = app_with("clamp_refresh", {
        let store = store.clone();
        move |b| b.store(store)
    })
    .await;
    wide.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let (_, refresh) = wide
        .token("alice", "correct horse 1", "me:read reports:read")
        .await;
    // The same deployment, restarted with a narrower ceiling (same database, store and key).
    let narrow = crudauth_tests::http::default_builder(crudauth_sea::SeaUserRepository::new(
        wide.tdb.db.clone(),
    ))
    .store(store)
    .bearer(BearerConfig {
        default_scopes: ["me:read".to_owned()].into(),
        grantable_scopes: ["me:read".to_owned()].into(),
        ..BearerConfig::default()
    })
    .build()
    .unwrap();
    let app = crudauth_tests::http::demo_routes(&narrow);
    let r = crudauth_tests::http::send(
        &app,
        Req::post("/refresh").json(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        claims_of(r.json["access_token"].as_str().unwrap())["scopes"],
        json!(["me:read"])
    );
}

#[tokio::test]
async fn es256_and_eddsa_keys_sign_with_a_kid_and_refuse_hs256_forgeries() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let read = |name: &str| std::fs::read_to_string(format!("{fixtures}/{name}")).unwrap();
    let keys = [
        (
            "ES256",
            JwtKey::Es256 {
                kid: "ec-1".into(),
                private_pem: read("es256-private.pem"),
                public_pem: read("es256-public.pem"),
            },
        ),
        (
            "EdDSA",
            JwtKey::EdDsa {
                kid: "ed-1".into(),
                private_pem: read("ed25519-private.pem"),
                public_pem: read("ed25519-public.pem"),
            },
        ),
    ];
    for (alg, key) in keys {
        let t = app_with(&format!("keys_{alg}"), move |b| {
            b.bearer(BearerConfig {
                key,
                ..BearerConfig::default()
            })
        })
        .await;
        t.register("alice@example.com", "alice", "correct horse 1")
            .await;
        let (access, _) = t.token("alice", "correct horse 1", "").await;
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(access.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg);
        assert!(header["kid"].as_str().is_some_and(|k| k.ends_with("-1")));
        assert_eq!(t.send(Req::get("/me").bearer(&access)).await.status, 200);
        // Algorithm confusion: an HS256 token keyed with the public key is refused.
        let public = read(if alg == "ES256" {
            "es256-public.pem"
        } else {
            "ed25519-public.pem"
        });
        let confused = forge(&claims_of(&access), &kid_of(&access), public.as_bytes());
        assert_eq!(
            t.send(Req::get("/me").bearer(&confused)).await.detail(),
            "Invalid token",
            "{alg}"
        );
    }
}

#[tokio::test]
async fn a_refresh_cookie_mode_keeps_the_refresh_token_out_of_the_body() {
    let t = app_with("refresh_cookie", |b| {
        b.bearer(BearerConfig {
            refresh: RefreshMode::Cookie,
            ..BearerConfig::default()
        })
    })
    .await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let r = t
        .send(Req::post("/token").form(&[("username", "alice"), ("password", "correct horse 1")]))
        .await;
    assert!(r.json.get("refresh_token").is_none());
    let (value, header) = r.cookies()["__Host-refresh_token"].clone();
    assert!(header.contains("HttpOnly") && header.contains("Secure"));
    let r = t
        .send(Req::post("/refresh").header("cookie", format!("__Host-refresh_token={value}")))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.cookies().contains_key("__Host-refresh_token"), "rotated");
}

#[tokio::test]
async fn bad_configurations_are_refused_at_build_time() {
    use crudauth::{ConfigError, CrudAuth, SessionConfig};
    use crudauth_sea::SeaUserRepository;
    use crudauth_tests::models::{accounts, users};
    let db = sea_orm::DatabaseConnection::default();
    let repo = || SeaUserRepository::<users::Model>::new(db.clone());
    let short = CrudAuth::builder(repo())
        .secret_key(b"too short".to_vec())
        .session(SessionConfig::default())
        .build();
    assert_eq!(short.unwrap_err(), ConfigError::SecretTooShort);
    let none = CrudAuth::builder(repo()).secret_key(vec![1u8; 32]).build();
    assert_eq!(none.unwrap_err(), ConfigError::NoTransport);
    let same_cookies = CrudAuth::builder(repo())
        .secret_key(vec![1u8; 32])
        .session(SessionConfig {
            csrf_cookie_name: "session_id".into(),
            ..SessionConfig::default()
        })
        .build();
    assert!(matches!(same_cookies, Err(ConfigError::Invalid(_))));
    let bad_scopes = CrudAuth::builder(repo())
        .secret_key(vec![1u8; 32])
        .bearer(BearerConfig {
            default_scopes: ["x".to_owned()].into(),
            ..BearerConfig::default()
        })
        .build();
    assert!(matches!(bad_scopes, Err(ConfigError::Invalid(_))));
    let privileged_extra = CrudAuth::builder(repo())
        .secret_key(vec![1u8; 32])
        .session(SessionConfig::default())
        .register_extra_fields(["is_superuser"])
        .build();
    assert!(matches!(privileged_extra, Err(ConfigError::Invalid(_))));
    let bad_key = CrudAuth::builder(repo())
        .secret_key(vec![1u8; 32])
        .bearer(BearerConfig {
            key: JwtKey::Es256 {
                kid: "k".into(),
                private_pem: "nope".into(),
                public_pem: "nope".into(),
            },
            ..BearerConfig::default()
        })
        .build();
    assert!(matches!(bad_key, Err(ConfigError::Invalid(_))));
    // A verified gate cannot be built on a table without email_verified.
    let legacy = CrudAuth::builder(SeaUserRepository::<accounts::Model>::new(db.clone()))
        .secret_key(vec![1u8; 32])
        .session(SessionConfig::default())
        .build()
        .unwrap();
    assert!(legacy.require(crudauth::Gate::new().verified()).is_err());
    assert!(
        legacy
            .require(crudauth::Gate::new().transport(crudauth::Transport::Bearer))
            .is_err()
    );
}

#[tokio::test]
async fn a_configured_issuer_and_audience_are_required_not_just_checked_when_present() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let private = std::fs::read_to_string(format!("{fixtures}/es256-private.pem")).unwrap();
    let public = std::fs::read_to_string(format!("{fixtures}/es256-public.pem")).unwrap();
    let key = JwtKey::Es256 {
        kid: "ec-1".into(),
        private_pem: private.clone(),
        public_pem: public,
    };
    let t = app_with("iss_aud_required", move |b| {
        b.bearer(BearerConfig {
            key,
            issuer: Some("https://auth.example".into()),
            audience: Some("api".into()),
            ..BearerConfig::default()
        })
    })
    .await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let (access, _) = t.token("alice", "correct horse 1", "").await;
    assert_eq!(claims_of(&access)["iss"], "https://auth.example");
    assert_eq!(t.send(Req::get("/me").bearer(&access)).await.status, 200);
    // Another service sharing the key mints tokens without iss/aud: refused.
    let mut foreign = claims_of(&access);
    foreign.as_object_mut().unwrap().remove("iss");
    foreign.as_object_mut().unwrap().remove("aud");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let signed = jsonwebtoken::encode(
        &header,
        &foreign,
        &jsonwebtoken::EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        t.send(Req::get("/me").bearer(&signed)).await.detail(),
        "Invalid token"
    );
}
