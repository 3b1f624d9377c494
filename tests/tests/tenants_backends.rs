//! The tenant backend matrix: an integer tenant column (`org_staff.org_id`) read by the
//! SeaORM repository on SQLite, PostgreSQL and MariaDB, and sessions (their records carry
//! the tenant) and refresh families in the memory, database and Redis stores; on each, a
//! user reads their own tenant's path (200) and not another's (404), and a user moved to
//! another tenant loses their old session, token and API key (401; the key's tenant is kept
//! in the `crudauth_api_keys` table on each database).

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use crudauth::api_key::ApiKeyConfig;
use crudauth::store::Store;
use crudauth::tenant::TenantFrom;
use crudauth::{BearerConfig, CrudAuth, Gate, Principal, SessionConfig, UserId, UserRecord};
use crudauth_sea::{API_KEY_TABLE, SeaApiKeyStore, SeaUserRepository};
use crudauth_tests::http::{Req, SECRET, Session, fast_passwords, send};
use crudauth_tests::models::{org_staff, tenant_users};
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use serde_json::{Value, json};

const PW: &str = "a long password 1";

/// A transport: a request to a path, carrying one credential.
type Way<'a> = &'a dyn Fn(&str) -> Req;

fn routes<U: UserRecord>(auth: &CrudAuth<U>) -> Router {
    async fn whoami<U: UserRecord>(p: Principal<U>) -> Json<Value> {
        Json(json!({ "tenant": p.tenant }))
    }
    let gate = Gate::new().tenant_matches(TenantFrom::path("org"));
    Router::new()
        .route("/orgs/{org}/docs", get(whoami::<U>))
        .route_layer(auth.require(gate).expect("gate"))
        .route("/whoami", get(whoami::<U>))
        .with_state(auth.clone())
        .merge(auth.router())
}

fn configured<U: UserRecord>(
    auth: crudauth::CrudAuthBuilder<U>,
    store: Option<Arc<dyn Store>>,
) -> CrudAuth<U> {
    let auth = auth
        .secret_key(SECRET.to_vec())
        .password(fast_passwords())
        .session(SessionConfig {
            host_prefix: false,
            ..SessionConfig::default()
        })
        .bearer(BearerConfig::default());
    match store {
        Some(store) => auth.store(store),
        None => auth,
    }
    .build()
    .expect("config")
}

async fn register(router: &Router, email: &str) {
    let mut body = json!({ "email": email, "password": PW });
    if email.starts_with("ann.") {
        body["username"] = json!("ann"); // tenant_users has one
    }
    let r = send(router, Req::post("/register").json(body)).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
}

async fn sign_in(router: &Router, login: &str) -> (Session, String, String) {
    let r = send(
        router,
        Req::post("/login").form(&[("username", login), ("password", PW)]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let cookies = r.cookies();
    let session = Session {
        id: cookies["session_id"].0.clone(),
        csrf: cookies["csrf_token"].0.clone(),
    };
    let r = send(
        router,
        Req::post("/token").form(&[("username", login), ("password", PW)]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access = r.json["access_token"].as_str().unwrap().to_owned();
    let refresh = r.json["refresh_token"].as_str().unwrap().to_owned();
    (session, access, refresh)
}

/// Own tenant 200, another 404, on both transports.
async fn reads_only(
    router: &Router,
    (s, access): (&Session, &str),
    own: &str,
    other: &str,
    at: &str,
) {
    let ways: [(&str, Way<'_>); 2] = [
        ("session", &|p| Req::get(p).session(s)),
        ("bearer", &|p| Req::get(p).bearer(access)),
    ];
    for (way, req) in ways {
        let r = send(router, req(&format!("/orgs/{own}/docs"))).await;
        assert_eq!(r.status, 200, "{at} {way}: {:?}", r.json);
        assert_eq!(r.json["tenant"], own, "{at} {way}");
        let r = send(router, req(&format!("/orgs/{other}/docs"))).await;
        assert_eq!(r.status, 404, "{at} {way}");
    }
}

/// The old credentials after a move: refused everywhere.
async fn refused(router: &Router, (s, access, refresh): (&Session, &str, &str), at: &str) {
    for path in ["/orgs/1/docs", "/orgs/2/docs", "/whoami"] {
        assert_eq!(
            send(router, Req::get(path).session(s)).await.status,
            401,
            "{at} {path}"
        );
        assert_eq!(
            send(router, Req::get(path).bearer(access)).await.status,
            401,
            "{at} {path}"
        );
    }
    let r = send(
        router,
        Req::post("/refresh").json(json!({ "refresh_token": refresh })),
    )
    .await;
    assert_eq!(r.status, 401, "{at}: {:?}", r.json);
}

async fn move_staff(db: &DatabaseConnection, auth: &CrudAuth<org_staff::Model>, id: i64, org: i64) {
    org_staff::ActiveModel {
        id: Set(id),
        org_id: Set(Some(org)),
        ..Default::default()
    }
    .update(db)
    .await
    .unwrap();
    auth.invalidate_user(&UserId::Int(id)).await.unwrap();
}

#[tokio::test]
async fn an_integer_tenant_column_is_checked_on_every_database() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "tenant_column").await else {
            continue;
        };
        tdb.create_table(org_staff::Entity).await;
        let repo = SeaUserRepository::<org_staff::Model>::new(tdb.db.clone());
        SeaApiKeyStore::create_table(&tdb.db, API_KEY_TABLE)
            .await
            .unwrap();
        let keys = Arc::new(SeaApiKeyStore::new(tdb.db.clone(), API_KEY_TABLE));
        let builder = CrudAuth::builder(repo).api_keys(ApiKeyConfig::default().store(keys));
        let auth = configured(builder, None);
        assert!(auth.tenancy().from_column());
        let router = routes(&auth);
        register(&router, "ann@example.com").await;
        register(&router, "bob@example.com").await;
        let ann = auth
            .repo()
            .find_by_login("ann@example.com")
            .await
            .unwrap()
            .unwrap();
        let bob = auth
            .repo()
            .find_by_login("bob@example.com")
            .await
            .unwrap()
            .unwrap();
        move_staff(&tdb.db, &auth, ann.id, 1).await;
        move_staff(&tdb.db, &auth, bob.id, 2).await;
        let at = format!("{backend:?}");
        let (s, access, refresh) = sign_in(&router, "ann@example.com").await;
        reads_only(&router, (&s, &access), "1", "2", &at).await;
        let (bs, baccess, _) = sign_in(&router, "bob@example.com").await;
        reads_only(&router, (&bs, &baccess), "2", "1", &at).await;

        // An API key, its tenant kept in the key table: bound to tenant 1.
        let r = send(
            &router,
            Req::post("/sudo")
                .session(&s)
                .json(json!({ "password": PW })),
        )
        .await;
        assert_eq!(r.status, 200, "{at}: {:?}", r.json);
        let r = send(
            &router,
            Req::post("/api-keys")
                .session(&s)
                .json(json!({ "name": "CI" })),
        )
        .await;
        assert_eq!(r.status, 201, "{at}: {:?}", r.json);
        let key = r.json["key"].as_str().unwrap().to_owned();
        let with_key = |p: &str| Req::get(p).header("x-api-key", &key);
        let r = send(&router, with_key("/orgs/1/docs")).await;
        assert_eq!(
            (r.status.as_u16(), &r.json["tenant"]),
            (200, &json!("1")),
            "{at}"
        );
        assert_eq!(
            send(&router, with_key("/orgs/2/docs")).await.status,
            404,
            "{at}"
        );

        move_staff(&tdb.db, &auth, ann.id, 2).await;
        refused(&router, (&s, &access, &refresh), &at).await;
        for path in ["/orgs/1/docs", "/orgs/2/docs", "/whoami"] {
            let r = send(&router, with_key(path)).await;
            assert_eq!(
                r.status, 401,
                "{at} key after the move {path}: {:?}",
                r.json
            );
        }
        let (s, access, _) = sign_in(&router, "ann@example.com").await;
        reads_only(&router, (&s, &access), "2", "1", &at).await;
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn sessions_and_refresh_families_carry_the_tenant_in_every_store() {
    for matrix in all_stores("tenant_stores").await {
        let tdb = open(Backend::Sqlite, "tenant_stores_users").await.unwrap();
        tdb.create_table(tenant_users::Entity).await;
        let repo = SeaUserRepository::<tenant_users::Model>::new(tdb.db.clone());
        let auth = configured(CrudAuth::builder(repo), Some(matrix.store.clone()));
        let router = routes(&auth);
        register(&router, "ann.t@example.com").await;
        let ann = auth.repo().find_by_login("ann").await.unwrap().unwrap();
        let move_to = async |org: &str| {
            tenant_users::ActiveModel {
                id: Set(ann.id),
                org: Set(Some(org.to_owned())),
                ..Default::default()
            }
            .update(&tdb.db)
            .await
            .unwrap();
            auth.invalidate_user(&UserId::Int(ann.id.into()))
                .await
                .unwrap();
        };
        move_to("1").await;
        let at = matrix.name.clone();
        let (s, access, refresh) = sign_in(&router, "ann").await;
        reads_only(&router, (&s, &access), "1", "2", &at).await;
        // The record as the store keeps it names the tenant.
        let live = auth
            .sessions()
            .unwrap()
            .resolve(&s.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.record.tenant.as_deref(), Some("1"), "{at}");
        // A rotation in this store keeps it.
        let r = send(
            &router,
            Req::post("/refresh").json(json!({ "refresh_token": refresh })),
        )
        .await;
        assert_eq!(r.status, 200, "{at}: {:?}", r.json);
        let refresh = r.json["refresh_token"].as_str().unwrap().to_owned();
        let rotated = r.json["access_token"].as_str().unwrap().to_owned();
        reads_only(&router, (&s, &rotated), "1", "2", &at).await;

        move_to("2").await;
        refused(&router, (&s, &rotated, &refresh), &at).await;
        assert!(
            auth.sessions()
                .unwrap()
                .resolve(&s.id)
                .await
                .unwrap()
                .is_none(),
            "{at}: the old tenant's session is gone from the store"
        );
        tdb.cleanup().await;
        matrix.cleanup().await;
    }
}
