//! A small identity provider served in-process on loopback, for the OAuth tests: an OpenID
//! Connect issuer (discovery, JWKS with an RS256 and an ES256 key, authorize, token,
//! userinfo; real signatures), its Microsoft-shaped multi-tenant form, and a plain OAuth 2.0
//! provider shaped like GitHub's API. The `authorize` endpoints approve at once as the
//! configured person; what the next ID token looks like is set with [`Forge`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The client id the tests register.
pub const CLIENT_ID: &str = "crudauth-test-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "a-client-secret-of-the-test-provider";

const RSA_PEM: &[u8] = include_bytes!("../fixtures/rsa-private.pem");
const EC_PEM: &[u8] = include_bytes!("../fixtures/es256-private.pem");

/// The person who signs in at the provider.
#[derive(Clone, Debug)]
pub struct Person {
    /// The subject (`sub`, or GitHub's numeric id).
    pub sub: String,
    /// The address.
    pub email: Option<String>,
    /// `email_verified` (left out of the token when `None`).
    pub email_verified: Option<bool>,
    /// `preferred_username` / GitHub `login`.
    pub username: Option<String>,
    /// Microsoft's tenant id claim.
    pub tid: Option<String>,
    /// Microsoft's "email domain owner verified" claim.
    pub xms_edov: Option<bool>,
}

impl Person {
    /// A person with a verified address.
    pub fn verified(sub: &str, email: &str) -> Self {
        Person {
            sub: sub.into(),
            email: Some(email.into()),
            email_verified: Some(true),
            username: None,
            tid: None,
            xms_edov: None,
        }
    }
}

/// How the next ID token is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Forge {
    /// Honest, RS256.
    #[default]
    Honest,
    /// Honest, ES256.
    Es256,
    /// Another nonce than the one asked for.
    WrongNonce,
    /// Another audience.
    WrongAudience,
    /// Another issuer.
    WrongIssuer,
    /// Expired an hour ago.
    Expired,
    /// `alg: none`, no signature.
    AlgNone,
    /// Signed by a key the JWKS does not publish.
    UnknownKey,
    /// HS256 with the client secret as the key.
    Hs256ClientSecret,
    /// Signed by the second RSA key, which the JWKS publishes only after [`FakeIdp::rotate`].
    RotatedKey,
    /// Another tenant in `iss` than in `tid`.
    TenantMismatch,
    /// An `azp` naming another client.
    OtherAzp,
}

struct Grant {
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    person: Person,
}

#[derive(Default)]
struct Inner {
    person: Option<Person>,
    forge: Forge,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Person>,
    jwks_fetches: usize,
    rotated: bool,
    hang: bool,
    garbage: bool,
    huge: bool,
    issuer_override: Option<String>,
    github_emails: Vec<Value>,
}

/// The running provider.
#[derive(Clone)]
pub struct FakeIdp {
    /// `http://127.0.0.1:{port}`: the issuer of the generic provider.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn random() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PEM).expect("rsa fixture")
}

/// A second RSA key: the first one's PEM is reused with another `kid` would not test a
/// rotation, so a second key is derived by generating it at first use.
fn rsa_key_2() -> &'static (EncodingKey, Jwk) {
    static KEY: std::sync::OnceLock<(EncodingKey, Jwk)> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let pem = std::process::Command::new("openssl")
            .args(["genrsa", "2048"])
            .output()
            .expect("openssl makes the rotated key")
            .stdout;
        let key = EncodingKey::from_rsa_pem(&pem).expect("rotated key");
        let jwk = jwk(&key, Algorithm::RS256, "rsa-2");
        (key, jwk)
    })
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("jwk");
    jwk.common.key_id = Some(kid.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(match alg {
        Algorithm::ES256 => KeyAlgorithm::ES256,
        _ => KeyAlgorithm::RS256,
    });
    jwk
}

impl FakeIdp {
    /// Starts the provider on a free loopback port.
    pub async fn start() -> FakeIdp {
        Self::start_at("127.0.0.1:0").await
    }

    /// Starts the provider at `addr` (`127.0.0.1:9000`).
    pub async fn start_at(addr: &str) -> FakeIdp {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let idp = FakeIdp {
            base,
            inner: Arc::new(Mutex::new(Inner::default())),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(tenant_discovery),
            )
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(github_token))
            .route("/api/user", get(github_user))
            .route("/api/user/emails", get(github_emails))
            .with_state(idp.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        idp
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().expect("idp lock"))
    }

    /// Who signs in next.
    pub fn sign_in_as(&self, person: Person) {
        self.with(|i| i.person = Some(person));
    }

    /// How the ID tokens are made from now on.
    pub fn forge(&self, forge: Forge) {
        self.with(|i| i.forge = forge);
    }

    /// The JWKS publishes the second RSA key from now on.
    pub fn rotate(&self) {
        self.with(|i| i.rotated = true);
    }

    /// How often the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.with(|i| i.jwks_fetches)
    }

    /// The token endpoint hangs (longer than any test's client timeout).
    pub fn hang(&self) {
        self.with(|i| i.hang = true);
    }

    /// The token endpoint answers 2 MiB of JSON.
    pub fn huge(&self) {
        self.with(|i| i.huge = true);
    }

    /// The token endpoint answers garbage instead of JSON.
    pub fn garbage(&self) {
        self.with(|i| i.garbage = true);
    }

    /// The discovery document names another issuer.
    pub fn publish_issuer(&self, issuer: &str) {
        self.with(|i| i.issuer_override = Some(issuer.into()));
    }

    /// The addresses GitHub's `/user/emails` lists: (email, primary, verified).
    pub fn github_emails(&self, emails: &[(&str, bool, bool)]) {
        let list = emails
            .iter()
            .map(|(e, p, v)| json!({ "email": e, "primary": p, "verified": v, "visibility": null }))
            .collect();
        self.with(|i| i.github_emails = list);
    }

    /// The Microsoft-shaped issuer of a tenant path (`common`, `organizations`, an id).
    pub fn microsoft_issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base)
    }

    fn metadata(&self, issuer: &str) -> Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{}/authorize", self.base),
            "token_endpoint": format!("{}/token", self.base),
            "userinfo_endpoint": format!("{}/userinfo", self.base),
            "jwks_uri": format!("{}/jwks", self.base),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        })
    }

    fn id_token(&self, person: &Person, nonce: Option<&str>, forge: Forge) -> String {
        let issuer = match &person.tid {
            Some(tid) if forge == Forge::TenantMismatch => format!("{}/{}x/v2.0", self.base, tid),
            Some(tid) => format!("{}/{tid}/v2.0", self.base),
            None => self.base.clone(),
        };
        let t = now();
        let mut claims = json!({
            "iss": if forge == Forge::WrongIssuer { "https://evil.example".to_owned() } else { issuer },
            "sub": person.sub,
            "aud": if forge == Forge::WrongAudience { "another-client" } else { CLIENT_ID },
            // An expired token with a recent `iat`, so only the `exp` check can refuse it.
            "iat": if forge == Forge::Expired { t - 120 } else { t },
            "exp": if forge == Forge::Expired { t - 60 } else { t + 300 },
        });
        let o = claims.as_object_mut().expect("object");
        if let Some(nonce) = nonce {
            let nonce = if forge == Forge::WrongNonce {
                "another-nonce"
            } else {
                nonce
            };
            o.insert("nonce".into(), json!(nonce));
        }
        if let Some(e) = &person.email {
            o.insert("email".into(), json!(e));
        }
        if let Some(v) = person.email_verified {
            o.insert("email_verified".into(), json!(v));
        }
        if let Some(u) = &person.username {
            o.insert("preferred_username".into(), json!(u));
        }
        if let Some(tid) = &person.tid {
            o.insert("tid".into(), json!(tid));
        }
        if let Some(edov) = person.xms_edov {
            o.insert("xms_edov".into(), json!(edov));
        }
        if forge == Forge::OtherAzp {
            o.insert("azp".into(), json!("another-client"));
        }
        let sign = |alg: Algorithm, kid: &str, key: &EncodingKey| {
            let mut header = Header::new(alg);
            header.kid = Some(kid.into());
            jsonwebtoken::encode(&header, &claims, key).expect("sign")
        };
        match forge {
            Forge::Es256 => sign(
                Algorithm::ES256,
                "ec-1",
                &EncodingKey::from_ec_pem(EC_PEM).expect("ec"),
            ),
            Forge::AlgNone => {
                let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
                let body = URL_SAFE_NO_PAD.encode(claims.to_string());
                format!("{head}.{body}.")
            }
            Forge::UnknownKey => sign(Algorithm::RS256, "not-published", &rsa_key_2().0),
            Forge::RotatedKey => sign(Algorithm::RS256, "rsa-2", &rsa_key_2().0),
            Forge::Hs256ClientSecret => sign(
                Algorithm::HS256,
                "rsa-1",
                &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
            ),
            _ => sign(Algorithm::RS256, "rsa-1", &rsa_key()),
        }
    }
}

async fn discovery(State(idp): State<FakeIdp>) -> Json<Value> {
    let issuer = idp
        .with(|i| i.issuer_override.clone())
        .unwrap_or_else(|| idp.base.clone());
    Json(idp.metadata(&issuer))
}

/// Microsoft's shape: the multi-tenant endpoints publish the `{tenantid}` template.
async fn tenant_discovery(State(idp): State<FakeIdp>, Path(tenant): Path<String>) -> Json<Value> {
    let issuer = match tenant.as_str() {
        "common" | "organizations" => format!("{}/{{tenantid}}/v2.0", idp.base),
        other => format!("{}/{other}/v2.0", idp.base),
    };
    Json(idp.metadata(&issuer))
}

async fn jwks(State(idp): State<FakeIdp>) -> Json<JwkSet> {
    let rotated = idp.with(|i| {
        i.jwks_fetches += 1;
        i.rotated
    });
    let mut keys = vec![
        jwk(&rsa_key(), Algorithm::RS256, "rsa-1"),
        jwk(
            &EncodingKey::from_ec_pem(EC_PEM).expect("ec"),
            Algorithm::ES256,
            "ec-1",
        ),
    ];
    if rotated {
        keys.push(rsa_key_2().1.clone());
    }
    Json(JwkSet { keys })
}

async fn authorize(
    State(idp): State<FakeIdp>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(person) = idp.with(|i| i.person.clone()) else {
        return (StatusCode::UNAUTHORIZED, "nobody signs in").into_response();
    };
    let (Some(redirect_uri), Some(state), Some(challenge)) = (
        q.get("redirect_uri"),
        q.get("state"),
        q.get("code_challenge"),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing parameters").into_response();
    };
    if q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
    {
        return (StatusCode::BAD_REQUEST, "bad client or PKCE method").into_response();
    }
    let code = random();
    let grant = Grant {
        redirect_uri: redirect_uri.clone(),
        challenge: challenge.clone(),
        nonce: q.get("nonce").cloned(),
        person,
    };
    idp.with(|i| i.codes.insert(code.clone(), grant));
    let target = url::Url::parse_with_params(
        redirect_uri,
        [("code", code.as_str()), ("state", state.as_str())],
    )
    .expect("redirect uri");
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// Checks a code grant: single use, same redirect URI, the PKCE verifier, the client.
/// (The refusal is the response itself, sent at once.)
#[allow(clippy::result_large_err)]
fn redeem(
    idp: &FakeIdp,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Grant, Response> {
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": why })),
        )
            .into_response()
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let secret_ok = form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        || basic.is_some_and(|b| b.ends_with(&format!(":{CLIENT_SECRET}")));
    if !secret_ok {
        return Err(refuse("client authentication"));
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let Some(grant) = idp.with(|i| i.codes.remove(&code)) else {
        return Err(refuse("unknown or used code"));
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return Err(refuse("redirect_uri"));
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes());
    if URL_SAFE_NO_PAD.encode(digest) != grant.challenge {
        return Err(refuse("PKCE"));
    }
    Ok(grant)
}

async fn token(
    State(idp): State<FakeIdp>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (hang, garbage, forge, huge) = idp.with(|i| (i.hang, i.garbage, i.forge, i.huge));
    if hang {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    if garbage {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{not json",
        )
            .into_response();
    }
    let grant = match redeem(&idp, &headers, &form) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let access = random();
    let id_token = idp.id_token(&grant.person, grant.nonce.as_deref(), forge);
    idp.with(|i| i.tokens.insert(access.clone(), grant.person.clone()));
    let body = json!({ "access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token });
    if huge {
        // A valid answer but for its size (2 MiB of trailing whitespace, still valid JSON):
        // only the 1 MiB cap refuses it.
        let text = format!("{body}{}", " ".repeat(2 << 20));
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response();
    }
    Json(body).into_response()
}

fn bearer_person(idp: &FakeIdp, headers: &HeaderMap) -> Option<Person> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .to_owned();
    idp.with(|i| i.tokens.get(&token).cloned())
}

async fn userinfo(State(idp): State<FakeIdp>, headers: HeaderMap) -> Response {
    match bearer_person(&idp, &headers) {
        Some(p) => {
            Json(json!({ "sub": p.sub, "email": p.email, "email_verified": p.email_verified }))
                .into_response()
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn github_token(
    State(idp): State<FakeIdp>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant = match redeem(&idp, &headers, &form) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let access = random();
    idp.with(|i| i.tokens.insert(access.clone(), grant.person.clone()));
    Json(json!({ "access_token": access, "token_type": "bearer", "scope": "read:user,user:email" }))
        .into_response()
}

async fn github_user(State(idp): State<FakeIdp>, headers: HeaderMap) -> Response {
    if headers.get(header::USER_AGENT).is_none() {
        return (StatusCode::FORBIDDEN, "GitHub requires a User-Agent").into_response();
    }
    match bearer_person(&idp, &headers) {
        Some(p) => {
            let id: u64 = p.sub.parse().unwrap_or(1);
            Json(json!({ "id": id, "login": p.username, "name": "Octo Cat", "email": null }))
                .into_response()
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn github_emails(State(idp): State<FakeIdp>, headers: HeaderMap) -> Response {
    match bearer_person(&idp, &headers) {
        Some(_) => Json(Value::Array(idp.with(|i| i.github_emails.clone()))).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
