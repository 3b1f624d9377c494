//! The demo's signing keys over real HTTP: with `CRUDAUTH_JWT_KEYS` it signs with the
//! directory's key pair, publishes the set at `/.well-known/jwks.json`, and a token it mints
//! verifies against the published key alone; without it, HS256 and no JWKS.

mod common;

use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
    std::fs::read_to_string(format!("{dir}/{name}")).unwrap()
}

async fn access_token(http: &reqwest::Client, base: &str) -> String {
    let pw = "erin has a long pass";
    let r = http
        .post(format!("{base}/register"))
        .json(&json!({ "email": "erin@example.com", "username": "erin", "password": pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = http
        .post(format!("{base}/token"))
        .form(&[("username", "erin"), ("password", pw)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pair: Value = r.json().await.unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_demo_publishes_its_keys_and_a_minted_token_verifies_against_them() {
    let dir = std::env::temp_dir().join(format!("crudauth-demo-jwks-{}", uuid::Uuid::new_v4()));
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    // The signing key (ES256) and a retired ES512 key, public half only.
    std::fs::write(keys.join("2026-06.key.pem"), fixture("es256-private.pem")).unwrap();
    std::fs::write(keys.join("2026-06.pub.pem"), fixture("es256-public.pem")).unwrap();
    std::fs::write(keys.join("2026-01.pub.pem"), fixture("es512-public.pem")).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let keys_dir = keys.display().to_string();
    let env = [
        (
            "CRUDAUTH_SECRET_KEY",
            "a demo secret key that is long enough for keys",
        ),
        ("CRUDAUTH_JWT_KEYS", keys_dir.as_str()),
    ];
    let http = reqwest::Client::new();
    let port = common::free_port();
    let _demo = common::spawn(port, &["--database", &url], &env).await;
    let base = format!("http://127.0.0.1:{port}");

    let r = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let set: Value = r.json().await.unwrap();
    let kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["2026-06", "2026-01"], "the signer first");
    assert_eq!(set["keys"][1]["crv"], "P-521");
    assert!(set["keys"][0].get("d").is_none(), "no private part");

    let access = access_token(&http, &base).await;
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.kid.as_deref(), Some("2026-06"));
    // Another service: only the JWKS, no secret.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(set["keys"][0].clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(&access, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["token_type"], "access");
    let r = http
        .get(format!("{base}/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn without_key_pairs_the_demo_signs_hs256_and_serves_no_jwks() {
    let dir = std::env::temp_dir().join(format!("crudauth-demo-hs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let env = [(
        "CRUDAUTH_SECRET_KEY",
        "a demo secret key that is long enough for keys",
    )];
    let http = reqwest::Client::new();
    let port = common::free_port();
    let _demo = common::spawn(port, &["--database", &url], &env).await;
    let base = format!("http://127.0.0.1:{port}");
    let r = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let access = access_token(&http, &base).await;
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert!(header.kid.is_some_and(|k| k.starts_with("hs-")));
}
