//! Tenants over the real router: the tenant column (`#[auth(tenant = "org")]`) and the
//! resolver, carried by sessions, bearer tokens, API keys and impersonations; the
//! `tenant_matches` gate (404 across tenants) and the feature gate (403), as route layers
//! and as extractors; and the attacks: another tenant's path on every transport, an edited
//! tenant claim, a user moved to another tenant keeping their old credentials, hostile path
//! values, impersonation across tenants.

use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crudauth::admin::ImpersonationConfig;
use crudauth::api_key::ApiKeyConfig;
use crudauth::tenant::{TenantConfig, TenantFrom};
use crudauth::user::UserUpdate;
use crudauth::{
    BearerConfig, CrudAuth, CrudAuthBuilder, FeatureName, Gate, Principal, RequireFeature,
    SessionConfig, TenantPrincipal, UserId, UserRecord,
};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{Req, Resp, SECRET, Session, app_with, fast_passwords, send};
use crudauth_tests::models::tenant_users;
use crudauth_tests::{Backend, TestDb, open};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};

const PW: &str = "a long password 1";

/// A transport: a request to a path, carrying one credential.
type Way<'a> = &'a dyn Fn(&str) -> Req;

type Member = tenant_users::Model;

struct Billing;
impl FeatureName for Billing {
    const NAME: &'static str = "billing";
}

/// The routes under test: every gate shape, on any user model.
fn routes<U: UserRecord>(auth: &CrudAuth<U>) -> Router {
    async fn whoami<U: UserRecord>(p: Principal<U>) -> Json<Value> {
        Json(json!({ "id": p.user_id, "tenant": p.tenant, "via": p.via.as_str() }))
    }
    async fn typed<U: UserRecord>(TenantPrincipal(p, tenant): TenantPrincipal<U>) -> Json<Value> {
        Json(json!({ "tenant": tenant, "id": p.user_id }))
    }
    async fn billing<U: UserRecord>(
        RequireFeature(p, _): RequireFeature<U, Billing>,
    ) -> Json<Value> {
        Json(json!({ "tenant": p.tenant }))
    }
    let gated = |path: &str, gate: Gate<U>| {
        Router::new()
            .route(path, get(whoami::<U>))
            .route_layer(auth.require(gate).expect("a gate that holds"))
    };
    let in_path = || Gate::new().tenant_matches(TenantFrom::path("tenant"));
    Router::new()
        .route("/whoami", get(whoami::<U>))
        .route("/x/{tenant}/docs", get(typed::<U>))
        .route("/billing-typed", get(billing::<U>))
        .merge(gated("/t/{tenant}/docs", in_path()))
        .merge(gated(
            "/t/{tenant}/admin",
            in_path().superuser().scopes(["reports:read"]),
        ))
        .merge(gated(
            "/t/{tenant}/any",
            in_path().tenant_superuser_bypass(),
        ))
        .merge(gated("/t/{tenant}/billing", in_path().feature("billing")))
        .merge(gated(
            "/t/{tenant}/any-billing",
            in_path().tenant_superuser_bypass().feature("billing"),
        ))
        .route("/x/{tenant}/billing-typed", get(billing::<U>))
        // A nested router names the tenant parameter twice: no one tenant.
        .nest(
            "/n/{tenant}",
            Router::new()
                .route("/x/{tenant}", get(typed::<U>))
                .merge(gated("/t/{tenant}", in_path())),
        )
        .merge(gated("/billing", Gate::new().feature("billing")))
        .merge(gated(
            "/h/docs",
            Gate::new().tenant_matches(TenantFrom::header("x-tenant")),
        ))
        .with_state(auth.clone())
        .merge(auth.router())
}

struct App {
    router: Router,
    auth: CrudAuth<Member>,
    tdb: TestDb,
}

fn builder(db: sea_orm::DatabaseConnection) -> CrudAuthBuilder<Member> {
    CrudAuth::builder(SeaUserRepository::<Member>::new(db))
        .secret_key(SECRET.to_vec())
        .password(fast_passwords())
        .session(SessionConfig {
            host_prefix: false,
            ..SessionConfig::default()
        })
        .bearer(BearerConfig {
            default_scopes: ["me:read".to_owned()].into(),
            grantable_scopes: ["me:read".to_owned(), "reports:read".to_owned()].into(),
            ..BearerConfig::default()
        })
        .api_keys(ApiKeyConfig::default())
        .impersonation(ImpersonationConfig::default())
}

async fn setup_with(test: &str, tenants: TenantConfig<Member>) -> App {
    let tdb = open(Backend::Sqlite, test).await.expect("sqlite");
    tdb.create_table(tenant_users::Entity).await;
    let auth = builder(tdb.db.clone())
        .tenants(tenants)
        .build()
        .expect("config");
    App {
        router: routes(&auth),
        auth,
        tdb,
    }
}

async fn setup(test: &str) -> App {
    setup_with(
        test,
        TenantConfig::new().feature_sets([("acme", ["billing"])]),
    )
    .await
}

impl App {
    async fn send(&self, req: Req) -> Resp {
        send(&self.router, req).await
    }

    /// Registers `name` (verified; a superuser when `root`) in `org`.
    async fn member(&self, name: &str, org: Option<&str>, root: bool) -> i32 {
        let r = self
            .send(Req::post("/register").json(json!({
                "email": format!("{name}@example.com"), "username": name, "password": PW
            })))
            .await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        let user = self.auth.repo().find_by_login(name).await.unwrap().unwrap();
        let update = UserUpdate {
            email_verified: Some(true),
            is_superuser: root.then_some(true),
            ..Default::default()
        };
        self.auth
            .repo()
            .update(&user.user_id(), update)
            .await
            .unwrap();
        self.move_to(user.id, org).await;
        user.id
    }

    /// The app moves a user to another tenant with plain SeaORM, and says so.
    async fn move_to(&self, id: i32, org: Option<&str>) {
        tenant_users::ActiveModel {
            id: Set(id),
            org: Set(org.map(str::to_owned)),
            ..Default::default()
        }
        .update(&self.tdb.db)
        .await
        .unwrap();
        self.auth
            .invalidate_user(&UserId::Int(id.into()))
            .await
            .unwrap();
    }

    async fn login(&self, name: &str) -> Session {
        login(&self.router, name).await
    }

    async fn token(&self, name: &str, scope: &str) -> (String, String) {
        token(&self.router, name, scope).await
    }

    async fn elevate(&self, s: &Session) {
        let r = self
            .send(
                Req::post("/sudo")
                    .session(s)
                    .json(json!({ "password": PW })),
            )
            .await;
        assert_eq!(r.status, 200, "sudo: {:?}", r.json);
    }
}

async fn login(router: &Router, name: &str) -> Session {
    let r = send(
        router,
        Req::post("/login").form(&[("username", name), ("password", PW)]),
    )
    .await;
    assert_eq!(r.status, 200, "login {name}: {:?}", r.json);
    let cookies = r.cookies();
    Session {
        id: cookies["session_id"].0.clone(),
        csrf: cookies["csrf_token"].0.clone(),
    }
}

async fn token(router: &Router, name: &str, scope: &str) -> (String, String) {
    let r = send(
        router,
        Req::post("/token").form(&[("username", name), ("password", PW), ("scope", scope)]),
    )
    .await;
    assert_eq!(r.status, 200, "token {name}: {:?}", r.json);
    (
        r.json["access_token"].as_str().unwrap().to_owned(),
        r.json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// The JSON payload of a JWT.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn a_user_of_one_tenant_reads_only_their_own_tenants_paths_on_every_transport() {
    let app = setup("tenant_transports").await;
    app.member("ann", Some("acme"), false).await;
    app.member("bob", Some("globex"), false).await;
    let root = app.member("root", None, true).await;
    let ann_id = app
        .auth
        .repo()
        .find_by_login("ann")
        .await
        .unwrap()
        .unwrap()
        .id;

    let session = app.login("ann").await;
    let (bearer, _) = app.token("ann", "me:read").await;
    assert_eq!(payload(&bearer)["tid"], "acme", "the claim is in the token");
    app.elevate(&session).await;
    let r = app
        .send(
            Req::post("/api-keys")
                .session(&session)
                .json(json!({ "name": "CI" })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let key = r.json["key"].as_str().unwrap().to_owned();
    let admin = app.login("root").await;
    app.elevate(&admin).await;
    let r = app
        .send(Req::post(&format!("/admin/users/{ann_id}/token")).session(&admin))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let impersonation = r.json["access_token"].as_str().unwrap().to_owned();
    let r = app
        .send(Req::post(&format!("/admin/users/{ann_id}/impersonate")).session(&admin))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let cookies = r.cookies();
    let imp_session = Session {
        id: cookies["session_id"].0.clone(),
        csrf: cookies["csrf_token"].0.clone(),
    };

    let ways: [(&str, Way<'_>); 5] = [
        ("session", &|p| Req::get(p).session(&session)),
        ("bearer", &|p| Req::get(p).bearer(&bearer)),
        ("api key", &|p| Req::get(p).header("x-api-key", &key)),
        ("impersonation token", &|p| {
            Req::get(p).bearer(&impersonation)
        }),
        ("impersonation session", &|p| {
            Req::get(p).session(&imp_session)
        }),
    ];
    for (way, req) in ways {
        let r = app.send(req("/t/acme/docs")).await;
        assert_eq!(r.status, 200, "{way}: {:?}", r.json);
        assert_eq!(r.json["tenant"], "acme", "{way}");
        let r = app.send(req("/x/acme/docs")).await;
        assert_eq!(
            (r.status.as_u16(), &r.json["tenant"]),
            (200, &json!("acme")),
            "{way}"
        );
        for path in ["/t/globex/docs", "/x/globex/docs", "/t/nobody/docs"] {
            let r = app.send(req(path)).await;
            assert_eq!(r.status, 404, "{way} {path}: {:?}", r.json);
            assert_eq!(
                r.json,
                json!({ "detail": "Not Found" }),
                "{way}: nothing told"
            );
        }
    }
    // The superuser acting as Ann is Ann, in Ann's tenant; as themselves (no tenant) they
    // see no tenant's paths unless a gate lets superusers through. (The admin's browser holds
    // the impersonation session now: a new sign-in.)
    let r = app.send(Req::get("/whoami").bearer(&impersonation)).await;
    assert_eq!(r.json["tenant"], "acme");
    let admin = app.login("root").await;
    let r = app.send(Req::get("/t/acme/docs").session(&admin)).await;
    assert_eq!(r.status, 404);
    let r = app.send(Req::get("/t/globex/any").session(&admin)).await;
    assert_eq!(r.status, 200, "the opt-in bypass");
    let r = app
        .send(Req::get("/t/globex/any").bearer(&impersonation))
        .await;
    assert_eq!(r.status, 404, "an impersonation is no superuser's bypass");
    let _ = root;
}

#[tokio::test]
async fn features_follow_the_tenant_as_a_layer_and_as_an_extractor() {
    let app = setup("tenant_features").await;
    app.member("ann", Some("acme"), false).await;
    app.member("bob", Some("globex"), false).await;
    app.member("root", None, true).await;
    for (name, status) in [("ann", 200), ("bob", 403), ("root", 403)] {
        let s = app.login(name).await;
        for path in ["/billing", "/billing-typed"] {
            let r = app.send(Req::get(path).session(&s)).await;
            assert_eq!(r.status, status, "{name} {path}: {:?}", r.json);
            if status == 403 {
                assert_eq!(r.detail(), "Feature not available for this tenant.");
            }
        }
    }
    // Switched off for acme by the app's own rule: a closure over its plan table.
    let plans = std::sync::Arc::new(std::sync::Mutex::new(vec!["acme".to_owned()]));
    let seen = plans.clone();
    let app = setup_with(
        "tenant_features_closure",
        TenantConfig::new().features(move |tenant, feature| {
            feature == "billing"
                && tenant.is_some_and(|t| seen.lock().unwrap().iter().any(|p| p == t))
        }),
    )
    .await;
    app.member("ann", Some("acme"), false).await;
    let s = app.login("ann").await;
    assert_eq!(app.send(Req::get("/billing").session(&s)).await.status, 200);
    plans.lock().unwrap().clear();
    assert_eq!(app.send(Req::get("/billing").session(&s)).await.status, 403);
    assert_eq!(
        app.send(Req::get("/billing-typed").session(&s))
            .await
            .status,
        403
    );
    assert_eq!(
        app.send(Req::get("/billing")).await.status,
        401,
        "nobody signed in"
    );
}

#[tokio::test]
async fn an_edited_tenant_claim_fails_the_signature() {
    let app = setup("tenant_tampered").await;
    app.member("ann", Some("acme"), false).await;
    app.member("bob", Some("globex"), false).await;
    let (token, _) = app.token("ann", "me:read").await;
    assert_eq!(
        app.send(Req::get("/t/acme/docs").bearer(&token))
            .await
            .status,
        200
    );
    let mut claims = payload(&token);
    claims["tid"] = json!("globex");
    let edited = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let parts: Vec<&str> = token.split('.').collect();
    // The original signature over an edited payload.
    let spliced = format!("{}.{edited}.{}", parts[0], parts[2]);
    // Signed again with a key that is not the app's (naming the app's key, so the signature
    // is what is refused, not the kid).
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid;
    let resigned = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: kid.clone(),
            ..jsonwebtoken::Header::default()
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"not the app's key, long enough to pass"),
    )
    .unwrap();
    // Unsigned (`alg: none`).
    let none = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let unsigned = format!("{none}.{edited}.");
    // Dropped: a token of no tenant is not one of acme's or globex's either.
    claims.as_object_mut().unwrap().remove("tid");
    let dropped = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    for (what, forged) in [
        ("spliced", spliced),
        ("resigned", resigned),
        ("unsigned", unsigned),
        ("dropped", dropped),
    ] {
        for path in ["/t/globex/docs", "/t/acme/docs", "/whoami"] {
            let r = app.send(Req::get(path).bearer(&forged)).await;
            assert_eq!(r.status, 401, "{what} {path}: {:?}", r.json);
        }
    }
}

#[tokio::test]
async fn a_user_moved_to_another_tenant_loses_the_old_tenants_tokens_and_sessions() {
    let app = setup("tenant_moved").await;
    let ann = app.member("ann", Some("acme"), false).await;
    let session = app.login("ann").await;
    let (access, refresh) = app.token("ann", "me:read").await;
    app.elevate(&session).await;
    let r = app
        .send(
            Req::post("/api-keys")
                .session(&session)
                .json(json!({ "name": "CI" })),
        )
        .await;
    let key = r.json["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.send(Req::get("/t/acme/docs").session(&session))
            .await
            .status,
        200
    );
    assert_eq!(
        app.send(Req::get("/t/acme/docs").bearer(&access))
            .await
            .status,
        200
    );

    app.move_to(ann, Some("globex")).await;
    for path in ["/t/acme/docs", "/t/globex/docs", "/whoami"] {
        let r = app.send(Req::get(path).session(&session)).await;
        assert_eq!(r.status, 401, "old session {path}: {:?}", r.json);
        let r = app.send(Req::get(path).bearer(&access)).await;
        assert_eq!(r.status, 401, "old token {path}: {:?}", r.json);
    }
    let r = app
        .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
        .await;
    assert_eq!(
        r.status, 401,
        "the old tenant's refresh family ends: {:?}",
        r.json
    );
    // An API key is bound to the tenant it was made in: it does not follow its owner to
    // the new tenant, and is refused while the row is elsewhere.
    for path in ["/t/globex/docs", "/t/acme/docs", "/whoami"] {
        let r = app.send(Req::get(path).header("x-api-key", &key)).await;
        assert_eq!(r.status, 401, "old key {path}: {:?}", r.json);
    }
    // A new sign-in is in the new tenant only.
    let (access, _) = app.token("ann", "me:read").await;
    assert_eq!(
        app.send(Req::get("/t/globex/docs").bearer(&access))
            .await
            .status,
        200
    );
    assert_eq!(
        app.send(Req::get("/t/acme/docs").bearer(&access))
            .await
            .status,
        404
    );
    let session = app.login("ann").await;
    assert_eq!(
        app.send(Req::get("/t/globex/docs").session(&session))
            .await
            .status,
        200
    );
    // Out of every tenant: no tenant's paths at all.
    app.move_to(ann, None).await;
    assert_eq!(
        app.send(Req::get("/whoami").session(&session)).await.status,
        401
    );
    let session = app.login("ann").await;
    let r = app.send(Req::get("/whoami").session(&session)).await;
    assert_eq!((r.status.as_u16(), &r.json["tenant"]), (200, &Value::Null));
    assert_eq!(
        app.send(Req::get("/t/globex/docs").session(&session))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_resolver_tenant_is_chosen_at_sign_in_and_carried() {
    // The tenant is the email domain, unless the sign-in names one of the user's others.
    let t = app_with("tenant_resolver", |b| {
        b.api_keys(ApiKeyConfig::default())
            .tenants(
                TenantConfig::new().resolver(|user: &crudauth_tests::http::User, headers| {
                    // Only a verified address proves membership of its domain.
                    if !user.email_verified() {
                        return None;
                    }
                    let domain = user.email.split_once('@').map(|(_, d)| d.to_owned())?;
                    let asked = headers.get("x-tenant").and_then(|v| v.to_str().ok());
                    match asked {
                        Some("sandbox") if domain == "acme.test" => Some("sandbox".to_owned()),
                        _ => Some(domain),
                    }
                }),
            )
    })
    .await;
    let router = routes(&t.auth);
    t.register("ann@acme.test", "ann", PW).await;
    t.register("bob@globex.test", "bob", PW).await;
    t.verify_email("ann").await;
    t.verify_email("bob").await;
    let s = login(&router, "ann").await;
    let (access, refresh) = token(&router, "ann", "me:read").await;
    assert_eq!(payload(&access)["tid"], "acme.test");
    for req in [
        Req::get("/t/acme.test/docs").session(&s),
        Req::get("/t/acme.test/docs").bearer(&access),
    ] {
        assert_eq!(send(&router, req).await.status, 200);
    }
    for req in [
        Req::get("/t/globex.test/docs").session(&s),
        Req::get("/t/globex.test/docs").bearer(&access),
    ] {
        assert_eq!(send(&router, req).await.status, 404);
    }
    // A rotation keeps the tenant it was signed in under.
    let r = send(
        &router,
        Req::post("/refresh").json(json!({ "refresh_token": refresh })),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let rotated = r.json["access_token"].as_str().unwrap();
    assert_eq!(payload(rotated)["tid"], "acme.test");
    // The sign-in request chooses among the user's tenants, and only among them.
    let r = send(
        &router,
        Req::post("/token")
            .header("x-tenant", "sandbox")
            .form(&[("username", "ann"), ("password", PW)]),
    )
    .await;
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["tid"],
        "sandbox"
    );
    let r = send(
        &router,
        Req::post("/token")
            .header("x-tenant", "sandbox")
            .form(&[("username", "bob"), ("password", PW)]),
    )
    .await;
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["tid"],
        "globex.test"
    );
    // An API key: the tenant of the sign-in that made it, for good.
    let r = send(
        &router,
        Req::post("/sudo")
            .session(&s)
            .json(json!({ "password": PW })),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = send(
        &router,
        Req::post("/api-keys")
            .session(&s)
            .json(json!({ "name": "CI" })),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let key = r.json["key"].as_str().unwrap();
    let with_key = |p: &str| Req::get(p).header("x-api-key", key);
    assert_eq!(
        send(&router, with_key("/t/acme.test/docs")).await.status,
        200
    );
    assert_eq!(
        send(&router, with_key("/t/globex.test/docs")).await.status,
        404
    );
    // The key holder cannot pick another of the owner's tenants per request: the key acts
    // in the tenant it was made in.
    let r = send(&router, with_key("/whoami").header("x-tenant", "sandbox")).await;
    assert_eq!(r.json["tenant"], "acme.test", "{:?}", r.json);
    let r = send(
        &router,
        with_key("/t/sandbox/docs").header("x-tenant", "sandbox"),
    )
    .await;
    assert_eq!(r.status, 404, "{:?}", r.json);
    // A resolver beside a tenant column is a contradiction the builder refuses.
    let tdb = open(Backend::Sqlite, "tenant_resolver_column")
        .await
        .unwrap();
    let refused = builder(tdb.db.clone())
        .tenants(TenantConfig::new().resolver(|_: &Member, _| None))
        .build();
    assert!(refused.is_err());
}

#[tokio::test]
async fn hostile_tenant_values_are_answered_404_never_an_error() {
    let app = setup("tenant_hostile").await;
    app.member("ann", Some("acme"), false).await;
    app.member("nul", Some("acme\u{0}"), false).await;
    let s = app.login("ann").await;
    let huge = "a".repeat(60_000); // near the longest URI the client side sends
    for path in [
        format!("/t/{huge}/docs"),
        "/t/acme%00/docs".into(),
        "/t/ACME/docs".into(),
        "/t/acme%20/docs".into(),
        "/t/acme%2Fdocs/docs".into(),
        "/t/%FF%FE/docs".into(),
        "/t/%/docs".into(),
    ] {
        let r = app.send(Req::get(&path).session(&s)).await;
        assert_eq!(
            r.status,
            404,
            "{}: {:?}",
            &path[..path.len().min(40)],
            r.json
        );
    }
    // Percent-encoding of the very name is the name.
    assert_eq!(
        app.send(Req::get("/t/%61cme/docs").session(&s))
            .await
            .status,
        200
    );
    // The NUL tenant matches itself only, and a longer name is never compared.
    let nul = app.login("nul").await;
    assert_eq!(
        app.send(Req::get("/t/acme%00/docs").session(&nul))
            .await
            .status,
        200
    );
    assert_eq!(
        app.send(Req::get("/t/acme/docs").session(&nul))
            .await
            .status,
        404
    );
    // By header: absent, empty, twice or not text.
    for req in [
        Req::get("/h/docs"),
        Req::get("/h/docs").header("x-tenant", ""),
        Req::get("/h/docs")
            .header("x-tenant", "acme")
            .header("x-tenant", "acme"),
        Req::get("/h/docs").header("x-tenant", b"acme\xff".as_slice()),
        Req::get("/h/docs").header("x-tenant", "globex"),
    ] {
        assert_eq!(app.send(req.session(&s)).await.status, 404);
    }
    let r = app
        .send(Req::get("/h/docs").header("x-tenant", "acme").session(&s))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn gates_compose_tenant_first_then_superuser_scopes_and_features() {
    let app = setup("tenant_compose").await;
    app.member("ann", Some("acme"), false).await;
    app.member("boss", Some("acme"), true).await;
    app.member("bob", Some("globex"), false).await;
    let ann = app.login("ann").await;
    let boss = app.login("boss").await;
    let (boss_plain, _) = app.token("boss", "me:read").await;
    let (boss_reports, _) = app.token("boss", "reports:read").await;
    // Another tenant: 404 before anything else is asked.
    for req in [
        Req::get("/t/globex/admin").session(&ann),
        Req::get("/t/globex/admin").session(&boss),
        Req::get("/t/globex/admin").bearer(&boss_reports),
        Req::get("/t/globex/billing").session(&ann),
    ] {
        assert_eq!(app.send(req).await.status, 404);
    }
    // Own tenant: then the superuser gate, then the scopes, then the feature.
    let r = app.send(Req::get("/t/acme/admin").session(&ann)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Insufficient privileges")
    );
    let r = app
        .send(Req::get("/t/acme/admin").bearer(&boss_plain))
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (403, "Insufficient scope"));
    assert_eq!(
        app.send(Req::get("/t/acme/admin").bearer(&boss_reports))
            .await
            .status,
        200
    );
    assert_eq!(
        app.send(Req::get("/t/acme/billing").session(&ann))
            .await
            .status,
        200
    );
    let bob = app.login("bob").await;
    let r = app.send(Req::get("/t/globex/billing").session(&bob)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Feature not available for this tenant.")
    );
    // Nobody: 401 first.
    assert_eq!(app.send(Req::get("/t/globex/admin")).await.status, 401);
}

#[tokio::test]
async fn impersonation_across_tenants_is_refused_unless_allowed() {
    for (allowed, across) in [(false, 404), (true, 200)] {
        let app = setup_with(
            &format!("tenant_imp_{allowed}"),
            TenantConfig::new().impersonation_across_tenants(allowed),
        )
        .await;
        app.member("boss", Some("acme"), true).await;
        let ann = app.member("ann", Some("acme"), false).await;
        let bob = app.member("bob", Some("globex"), false).await;
        app.member("root", None, true).await;
        let boss = app.login("boss").await;
        app.elevate(&boss).await;
        let mint = |target: i32, s: Session| {
            let app = &app;
            async move {
                app.send(Req::post(&format!("/admin/users/{target}/token")).session(&s))
                    .await
            }
        };
        assert_eq!(mint(ann, boss.clone()).await.status, 200, "own tenant");
        let r = mint(bob, boss.clone()).await;
        assert_eq!(r.status, across, "{:?}", r.json);
        if !allowed {
            // Not found, as an id nobody has: nothing tells that the user exists.
            let unknown = mint(987_654, boss.clone()).await;
            assert_eq!((r.status, r.json.clone()), (unknown.status, unknown.json));
            let r = app
                .send(Req::post(&format!("/admin/users/{bob}/impersonate")).session(&boss))
                .await;
            assert_eq!(r.status, 404, "nor by a session");
        }
        // The platform's superuser (no tenant) may act in any tenant, as that tenant's user.
        let root = app.login("root").await;
        app.elevate(&root).await;
        let r = mint(bob, root).await;
        assert_eq!(r.status, 200);
        let token = r.json["access_token"].as_str().unwrap();
        assert_eq!(payload(token)["tid"], "globex");
        assert_eq!(
            app.send(Req::get("/t/globex/docs").bearer(token))
                .await
                .status,
            200
        );
        assert_eq!(
            app.send(Req::get("/t/acme/docs").bearer(token))
                .await
                .status,
            404
        );
    }
}

#[tokio::test]
async fn nobody_writes_the_tenant_column_through_crudauth() {
    // The users admin cannot show it as an own column, nor let anyone write it.
    let tdb = open(Backend::Sqlite, "tenant_not_writable").await.unwrap();
    tdb.create_table(tenant_users::Entity).await;
    let admin = crudauth::admin::UsersAdminConfig::default().writable(["org"]);
    assert!(builder(tdb.db.clone()).users_admin(admin).build().is_err());
    // Nor can the registration's extra fields name it: the build refuses the mapped
    // column (its logical name, `tenant`, too), and an own column is still fine.
    for field in ["org", "tenant"] {
        let refused = builder(tdb.db.clone())
            .register_extra_fields([field])
            .build();
        assert!(
            matches!(&refused, Err(crudauth::ConfigError::Invalid(m)) if m.contains("contract field")),
            "{field}"
        );
    }
    assert!(
        builder(tdb.db.clone())
            .register_extra_fields(["display_name"])
            .build()
            .is_ok()
    );
    // Sent to /register anyway, it is dropped: the account is made in no tenant.
    let auth = builder(tdb.db.clone())
        .users_admin(crudauth::admin::UsersAdminConfig::default())
        .build()
        .unwrap();
    let router = routes(&auth);
    let r = send(
        &router,
        Req::post("/register").json(json!({
            "email": "eve@example.com", "username": "eve", "password": PW, "org": "acme"
        })),
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let eve = auth.repo().find_by_login("eve").await.unwrap().unwrap();
    assert_eq!(eve.org, None);
    // Nor by PATCH /users/me.
    let app = App { router, auth, tdb };
    app.member("ann", Some("globex"), false).await;
    let s = app.login("ann").await;
    app.elevate(&s).await;
    let r = app
        .send(
            Req::new(axum::http::Method::PATCH, "/users/me")
                .session(&s)
                .json(json!({ "org": "acme" })),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    let ann = app.auth.repo().find_by_login("ann").await.unwrap().unwrap();
    assert_eq!(ann.org.as_deref(), Some("globex"));
}

/// Counts store calls, to pin the per-request cost.
struct Counting(crudauth::MemoryStore, std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl crudauth::store::Store for Counting {
    async fn get(&self, k: &str) -> Result<Option<Vec<u8>>, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.get(k).await
    }
    async fn get_many(
        &self,
        k: &[&str],
    ) -> Result<Vec<Option<Vec<u8>>>, crudauth::store::StoreError> {
        // One round trip, as the networked stores make it.
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.get_many(k).await
    }
    async fn set(
        &self,
        k: &str,
        v: &[u8],
        t: Option<std::time::Duration>,
    ) -> Result<(), crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.set(k, v, t).await
    }
    async fn set_if_absent(
        &self,
        k: &str,
        v: &[u8],
        t: Option<std::time::Duration>,
    ) -> Result<bool, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.set_if_absent(k, v, t).await
    }
    async fn get_and_delete(
        &self,
        k: &str,
    ) -> Result<Option<Vec<u8>>, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.get_and_delete(k).await
    }
    async fn compare_and_set(
        &self,
        k: &str,
        e: &[u8],
        n: &[u8],
        t: Option<std::time::Duration>,
    ) -> Result<bool, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.compare_and_set(k, e, n, t).await
    }
    async fn delete(&self, k: &str) -> Result<bool, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.delete(k).await
    }
    async fn incr(
        &self,
        k: &str,
        d: i64,
        t: std::time::Duration,
    ) -> Result<i64, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.incr(k, d, t).await
    }
    async fn ttl(
        &self,
        k: &str,
    ) -> Result<Option<std::time::Duration>, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.ttl(k).await
    }
    async fn index_add(
        &self,
        i: &str,
        m: &str,
        t: std::time::Duration,
    ) -> Result<(), crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.index_add(i, m, t).await
    }
    async fn index_remove(&self, i: &str, m: &str) -> Result<(), crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.index_remove(i, m).await
    }
    async fn index_members(&self, i: &str) -> Result<Vec<String>, crudauth::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.index_members(i).await
    }
    async fn purge_expired(&self) -> Result<u64, crudauth::store::StoreError> {
        self.0.purge_expired().await
    }
}

#[tokio::test]
async fn the_tenant_gate_costs_no_store_round_trip() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let counting = Arc::new(Counting(crudauth::MemoryStore::new(), Default::default()));
    let tdb = open(Backend::Sqlite, "tenant_round_trips").await.unwrap();
    tdb.create_table(tenant_users::Entity).await;
    let store: Arc<dyn crudauth::store::Store> = counting.clone();
    let auth = builder(tdb.db.clone()).store(store).build().unwrap();
    let app = App {
        router: routes(&auth),
        auth,
        tdb,
    };
    app.member("ann", Some("acme"), false).await;
    let s = app.login("ann").await;
    let (access, _) = app.token("ann", "me:read").await;
    let ways: [(&str, Way<'_>); 2] = [
        ("session", &|p| Req::get(p).session(&s)),
        ("bearer", &|p| Req::get(p).bearer(&access)),
    ];
    for (way, req) in ways {
        let mut cost = Vec::new();
        for path in ["/whoami", "/t/acme/docs", "/t/globex/docs", "/x/acme/docs"] {
            app.send(req(path)).await; // warm: the user in the cache
            let before = counting.1.load(Ordering::SeqCst);
            let started = std::time::Instant::now();
            for _ in 0..400 {
                app.send(req(path)).await;
            }
            let took = started.elapsed() / 400;
            cost.push((path, counting.1.load(Ordering::SeqCst) - before, took));
        }
        eprintln!("{way}: {cost:?}");
        let plain = cost[0].1;
        assert!(
            cost.iter().all(|(_, calls, _)| *calls == plain),
            "{way}: {cost:?}"
        );
        assert_eq!(plain, 400, "{way}: one store round trip a request");
    }
}

#[tokio::test]
async fn a_device_login_hands_the_cli_the_approvers_tenant() {
    let tdb = open(Backend::Sqlite, "tenant_device_login").await.unwrap();
    tdb.create_table(tenant_users::Entity).await;
    let auth = builder(tdb.db.clone())
        .device_login(crudauth::device_login::DeviceLoginConfig::default())
        .build()
        .unwrap();
    let app = App {
        router: routes(&auth),
        auth,
        tdb,
    };
    app.member("ann", Some("acme"), false).await;
    let c = app.send(Req::post("/auth/cli-login")).await.json;
    let code = c["code"].as_str().unwrap();
    let s = app.login("ann").await;
    let r = app
        .send(
            Req::new(
                axum::http::Method::PATCH,
                &format!("/auth/cli-login/{code}"),
            )
            .session(&s)
            .json(json!({ "user_code": c["user_code"] })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let secret = c["secret"].as_str().unwrap();
    let r = app
        .send(Req::get(&format!("/auth/cli-login/{code}?secret={secret}")))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access = r.json["access_token"].as_str().unwrap();
    assert_eq!(payload(access)["tid"], "acme");
    assert_eq!(
        app.send(Req::get("/t/acme/docs").bearer(access))
            .await
            .status,
        200
    );
    assert_eq!(
        app.send(Req::get("/t/globex/docs").bearer(access))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_tenant_parameter_named_twice_names_no_tenant() {
    let app = setup("tenant_param_twice").await;
    app.member("ann", Some("acme"), false).await;
    let s = app.login("ann").await;
    // The first value is hers, the second another tenant's (and the other way round): the
    // gate and the extractor refuse both, and also when both are hers.
    for path in [
        "/n/acme/x/globex",
        "/n/globex/x/acme",
        "/n/acme/x/acme",
        "/n/acme/t/globex",
        "/n/globex/t/acme",
        "/n/acme/t/acme",
    ] {
        let r = app.send(Req::get(path).session(&s)).await;
        assert_eq!(r.status, 404, "{path}: {:?}", r.json);
    }
    // The same routes are reached and answer the gate's 401 to nobody.
    assert_eq!(app.send(Req::get("/n/acme/t/acme")).await.status, 401);
    assert_eq!(app.send(Req::get("/n/acme/x/acme")).await.status, 401);
}

#[tokio::test]
async fn a_superuser_in_another_tenant_gets_that_tenants_features() {
    let app = setup_with(
        "tenant_bypass_features",
        TenantConfig::new()
            .feature_sets([("acme", ["billing"])])
            .superusers_any_tenant(),
    )
    .await;
    app.member("root", None, true).await;
    app.member("boss", Some("acme"), true).await;
    for name in ["root", "boss"] {
        let s = app.login(name).await;
        // Acting in acme, which has billing: let through.
        for path in ["/t/acme/any-billing", "/x/acme/billing-typed"] {
            let r = app.send(Req::get(path).session(&s)).await;
            assert_eq!(r.status, 200, "{name} {path}: {:?}", r.json);
        }
        // Acting in a tenant without it: refused, whatever their own tenant has.
        for path in ["/t/initech/any-billing", "/x/initech/billing-typed"] {
            let r = app.send(Req::get(path).session(&s)).await;
            assert_eq!(r.status, 403, "{name} {path}: {:?}", r.json);
        }
    }
}

#[tokio::test]
async fn an_unverified_address_joins_no_tenant() {
    // The documented resolver: the domain of a verified address.
    let t = app_with("tenant_unverified", |b| {
        b.tenants(
            TenantConfig::new().resolver(|user: &crudauth_tests::http::User, _| {
                if !user.email_verified() {
                    return None;
                }
                user.email.split_once('@').map(|(_, d)| d.to_owned())
            }),
        )
    })
    .await;
    let router = routes(&t.auth);
    // Mallory registers at acme's domain without owning an address there.
    t.register("mallory@acme.test", "mallory", PW).await;
    let s = login(&router, "mallory").await;
    let (access, _) = token(&router, "mallory", "me:read").await;
    assert_eq!(payload(&access)["tid"], Value::Null);
    for req in [
        Req::get("/t/acme.test/docs").session(&s),
        Req::get("/t/acme.test/docs").bearer(&access),
        Req::get("/x/acme.test/docs").session(&s),
    ] {
        let r = send(&router, req).await;
        assert_eq!(r.status, 404, "{:?}", r.json);
    }
    // Once the address is verified, a new sign-in is in the tenant.
    t.verify_email("mallory").await;
    let s = login(&router, "mallory").await;
    let r = send(&router, Req::get("/t/acme.test/docs").session(&s)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
}

type Bots = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// The tenant test app with the users admin, and service accounts: the ids in `Bots`.
async fn admin_app(test: &str, tenants: TenantConfig<Member>) -> (App, Bots) {
    let tdb = open(Backend::Sqlite, test).await.expect("sqlite");
    tdb.create_table(tenant_users::Entity).await;
    let bots: Bots = Bots::default();
    let named = bots.clone();
    let auth = builder(tdb.db.clone())
        .rate_limit("register", crudauth::RateLimit::OFF)
        .users_admin(crudauth::admin::UsersAdminConfig::default())
        .api_keys(
            ApiKeyConfig::default()
                .service_accounts(move |id| named.lock().unwrap().iter().any(|b| b == id)),
        )
        .tenants(tenants)
        .build()
        .expect("config");
    let app = App {
        router: routes(&auth),
        auth,
        tdb,
    };
    (app, bots)
}

#[tokio::test]
async fn a_superuser_of_one_tenant_administers_only_their_tenants_users() {
    for allowed in [false, true] {
        let (app, bots) = admin_app(
            &format!("tenant_admin_{allowed}"),
            TenantConfig::new().administration_across_tenants(allowed),
        )
        .await;
        let boss_id = app.member("boss", Some("acme"), true).await;
        let ann = app.member("ann", Some("acme"), false).await;
        let bob = app.member("bob", Some("globex"), false).await;
        app.member("root", None, true).await;
        let bot_a = app.member("bota", Some("acme"), false).await;
        let bot_b = app.member("botb", Some("globex"), false).await;
        bots.lock()
            .unwrap()
            .extend([bot_a.to_string(), bot_b.to_string()]);
        let boss = app.login("boss").await;
        app.elevate(&boss).await;
        let at = |id: i32| format!("/users/{id}");
        let hidden = if allowed { 200 } else { 404 };

        // Bob makes a key of his own (before anything is done to his account).
        let bob_s = app.login("bob").await;
        app.elevate(&bob_s).await;
        let r = app
            .send(
                Req::post("/api-keys")
                    .session(&bob_s)
                    .json(json!({ "name": "CI" })),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        let bob_key = r.json["id"].as_str().unwrap().to_owned();
        // Reading, changing and deleting another tenant's user: as if there were none.
        let missing = app.send(Req::get("/users/999999").session(&boss)).await;
        let r = app.send(Req::get(&at(bob)).session(&boss)).await;
        assert_eq!(r.status, hidden, "{:?}", r.json);
        if !allowed {
            assert_eq!(r.json, missing.json, "no different from a missing user");
        }
        assert_eq!(
            app.send(Req::get(&at(ann)).session(&boss)).await.status,
            200
        );
        let r = app
            .send(
                Req::new(axum::http::Method::PATCH, &at(bob))
                    .session(&boss)
                    .json(json!({ "is_active": false })),
            )
            .await;
        assert_eq!(r.status, hidden, "{:?}", r.json);
        let bob_row = app.auth.repo().find_by_login("bob").await.unwrap().unwrap();
        assert_eq!(bob_row.is_active(), !allowed, "written only when allowed");
        if !allowed {
            let r = app
                .send(Req::new(axum::http::Method::DELETE, &at(bob)).session(&boss))
                .await;
            assert_eq!(r.status, 404, "{:?}", r.json);
            assert!(
                app.auth
                    .repo()
                    .find_by_login("bob")
                    .await
                    .unwrap()
                    .is_some()
            );
        }

        // The listing: their tenant's users only, paged and counted among them.
        let r = app.send(Req::get("/users").session(&boss)).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        let ids: Vec<i64> = r.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_i64().unwrap())
            .collect();
        if allowed {
            assert_eq!(r.json["total"], 6);
        } else {
            let acme = [boss_id, ann, bot_a].map(i64::from);
            assert_eq!(ids, acme.to_vec());
            assert_eq!(r.json["total"], 3);
            let r = app
                .send(Req::get("/users?offset=1&limit=1").session(&boss))
                .await;
            assert_eq!(r.json["items"][0]["id"], ann);
            assert_eq!(r.json["total"], 3);
            let r = app.send(Req::get("/users?email=bob").session(&boss)).await;
            assert_eq!(
                (
                    r.json["total"].as_u64(),
                    r.json["items"].as_array().map(Vec::len)
                ),
                (Some(0), Some(0))
            );
        }

        // A key for another tenant's service account: no such account.
        let make = |owner: i32| {
            Req::post("/api-keys")
                .session(&boss)
                .json(json!({ "name": "svc", "owner": owner.to_string(), "service": true }))
        };
        let r = app.send(make(bot_a)).await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        let r = app.send(make(bot_b)).await;
        assert_eq!(r.status, if allowed { 201 } else { 404 }, "{:?}", r.json);

        // Another tenant's user's own key: not listed, not revocable.
        let r = app
            .send(Req::get(&format!("/api-keys?owner={bob}")).session(&boss))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        let listed = r.json.as_array().map_or(0, Vec::len);
        assert_eq!(listed, usize::from(allowed), "{:?}", r.json);
        let revoke = Req::new(axum::http::Method::DELETE, &format!("/api-keys/{bob_key}"));
        if !allowed {
            let r = app.send(revoke.clone_req().session(&boss)).await;
            assert_eq!(r.status, 404, "{:?}", r.json);
        }

        // The platform's operator (a superuser whose row has no tenant): every tenant.
        let root = app.login("root").await;
        app.elevate(&root).await;
        let r = app.send(revoke.session(&root)).await;
        assert_eq!(r.status, 204, "{:?}", r.json);
        assert_eq!(
            app.send(Req::get(&at(bob)).session(&root)).await.status,
            200
        );
        let r = app.send(Req::get("/users").session(&root)).await;
        assert_eq!(r.json["total"], 6);
    }
}

#[tokio::test]
async fn with_a_resolver_a_superuser_without_a_tenant_is_an_operator_only_when_named() {
    for named in [false, true] {
        // Staff addresses (ops.test) resolve to no tenant, as a sign-in without headers or
        // a resolver that finds nothing would.
        let mut tenants = TenantConfig::new().resolver(|user: &crudauth_tests::http::User, _| {
            let domain = user.email.split_once('@').map(|(_, d)| d.to_owned())?;
            (user.email_verified() && domain != "ops.test").then_some(domain)
        });
        if named {
            tenants = tenants.platform_operators(|user: &crudauth_tests::http::User| {
                user.email == "root@ops.test"
            });
        }
        let t = app_with(&format!("tenant_operator_{named}"), move |b| {
            b.impersonation(ImpersonationConfig::default())
                .users_admin(crudauth::admin::UsersAdminConfig::default())
                .tenants(tenants)
        })
        .await;
        for (email, name, root) in [
            ("root@ops.test", "root", true),
            ("eve@ops.test", "eve", true),
            ("bob@globex.test", "bob", false),
            ("tim@ops.test", "tim", false),
        ] {
            t.register(email, name, PW).await;
            t.verify_email(name).await;
            let user = t.auth.repo().find_by_login(name).await.unwrap().unwrap();
            let update = UserUpdate {
                is_superuser: Some(root),
                ..Default::default()
            };
            t.auth.repo().update(&user.user_id(), update).await.unwrap();
        }
        let id = |name: &'static str| {
            let auth = t.auth.clone();
            async move {
                let user = auth.repo().find_by_login(name).await.unwrap().unwrap();
                user.user_id().to_string()
            }
        };
        let (bob, tim) = (id("bob").await, id("tim").await);
        for (admin, operator) in [("root", named), ("eve", false)] {
            let s = t.login(admin, PW).await;
            let r = t
                .send(
                    Req::post("/sudo")
                        .session(&s)
                        .json(json!({ "password": PW })),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json);
            let r = t
                .send(Req::post(&format!("/admin/users/{bob}/token")).session(&s))
                .await;
            assert_eq!(
                r.status,
                if operator { 200 } else { 404 },
                "{admin}: {:?}",
                r.json
            );
            let r = t.send(Req::get(&format!("/users/{bob}")).session(&s)).await;
            assert_eq!(
                r.status,
                if operator { 200 } else { 404 },
                "{admin}: {:?}",
                r.json
            );
            // A resolver asked without a request may answer "no tenant" for anyone, so a
            // tenant-less superuser who is no operator administers nobody, not even the
            // users who look tenant-less.
            let r = t.send(Req::get("/users").session(&s)).await;
            let total = if operator { 4 } else { 0 };
            assert_eq!(r.json["total"], total, "{admin}: {:?}", r.json);
            let r = t
                .send(Req::post(&format!("/admin/users/{tim}/token")).session(&s))
                .await;
            assert_eq!(
                r.status,
                if operator { 200 } else { 404 },
                "{admin}: {:?}",
                r.json
            );
        }
    }
}
