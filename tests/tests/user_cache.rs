//! The user cache: authenticated requests reuse a user read earlier, and every write path
//! retires the cached copy before it answers, in one process and across two processes that
//! share a store (memory, the database store on SQLite/PostgreSQL/MariaDB, Redis).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use crudauth::store::Store;
use crudauth::user::{NewUser, RepoError, UserId, UserRepository, UserSchema, UserUpdate};
use crudauth::{CrudAuth, CrudAuthBuilder, Gate, UserCacheConfig, UserRecord};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{
    FRONTEND, Req, Resp, SECRET, Session, User, fast_passwords, mails, outbox_path, send, token_of,
    with_outbox,
};
use crudauth_tests::models::users;
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, TestDb, open};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;

const PASSWORD: &str = "correct horse 1";

/// Counts the table reads of the request path.
struct Counting {
    inner: SeaUserRepository<User>,
    reads: Arc<AtomicUsize>,
}

impl UserRepository for Counting {
    type User = User;
    fn schema(&self) -> &UserSchema {
        self.inner.schema()
    }
    async fn find_by_id(&self, id: &UserId) -> Result<Option<User>, RepoError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.find_by_id(id).await
    }
    async fn find_by_login(&self, identifier: &str) -> Result<Option<User>, RepoError> {
        self.inner.find_by_login(identifier).await
    }
    async fn find_by_recovery(&self, value: &str) -> Result<Option<User>, RepoError> {
        self.inner.find_by_recovery(value).await
    }
    async fn find_by_phone(&self, phone: &str) -> Result<Option<User>, RepoError> {
        self.inner.find_by_phone(phone).await
    }
    async fn create(&self, new: NewUser) -> Result<User, RepoError> {
        self.inner.create(new).await
    }
    async fn update(&self, id: &UserId, update: UserUpdate) -> Result<User, RepoError> {
        self.inner.update(id, update).await
    }
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<(), RepoError> {
        self.inner.set_password_hash(id, hash).await
    }
    async fn bump_token_version(&self, id: &UserId) -> Result<Option<i64>, RepoError> {
        self.inner.bump_token_version(id).await
    }
    async fn replace_password_hash(
        &self,
        id: &UserId,
        hash: &str,
    ) -> Result<Option<i64>, RepoError> {
        self.inner.replace_password_hash(id, hash).await
    }
    async fn compare_and_set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> Result<bool, RepoError> {
        self.inner
            .compare_and_set_password_hash(id, expected, hash)
            .await
    }
}

/// One process: a facade over the shared table and store, and its router (the library's
/// routes, `/whoami`, `/admin-only` and a verified-only `/verified`).
struct Process {
    auth: CrudAuth<User>,
    app: Router,
    reads: Arc<AtomicUsize>,
}

fn process(
    db: &TestDb,
    store: Arc<dyn Store>,
    configure: impl FnOnce(CrudAuthBuilder<User>) -> CrudAuthBuilder<User>,
) -> Process {
    let reads = Arc::new(AtomicUsize::new(0));
    let repo = Counting {
        inner: SeaUserRepository::<User>::new(db.db.clone()),
        reads: reads.clone(),
    };
    let builder = CrudAuth::builder(repo)
        .secret_key(SECRET.to_vec())
        .password(fast_passwords())
        .store(store)
        .session(crudauth::SessionConfig {
            host_prefix: false,
            ..Default::default()
        })
        .bearer(crudauth::BearerConfig::default());
    let auth = configure(builder).build().expect("valid config");
    async fn whoami(p: crudauth::Principal<User>) -> String {
        p.user.username.clone()
    }
    async fn admin(_: crudauth::Superuser<User>) -> &'static str {
        "admin"
    }
    let verified = Router::new()
        .route("/verified", get(|| async { "verified" }))
        .route_layer(auth.require(Gate::new().verified()).expect("gate"));
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/admin-only", get(admin))
        .with_state(auth.clone())
        .merge(verified)
        .merge(auth.router());
    Process { auth, app, reads }
}

impl Process {
    async fn send(&self, req: Req) -> Resp {
        send(&self.app, req).await
    }
    async fn login(&self, name: &str, password: &str) -> Session {
        let r = self
            .send(Req::post("/login").form(&[("username", name), ("password", password)]))
            .await;
        assert_eq!(r.status, 200, "login {name}: {:?}", r.json);
        let cookies = r.cookies();
        Session {
            id: cookies["session_id"].0.clone(),
            csrf: cookies["csrf_token"].0.clone(),
        }
    }
    async fn token(&self, name: &str, password: &str) -> String {
        let r = self
            .send(Req::post("/token").form(&[("username", name), ("password", password)]))
            .await;
        assert_eq!(r.status, 200, "token {name}: {:?}", r.json);
        r.json["access_token"].as_str().unwrap().to_owned()
    }
    /// The status of `/whoami` with a session and with a token.
    async fn whoami(&self, s: &Session, token: &str) -> (u16, u16) {
        let a = self
            .send(Req::get("/whoami").session(s))
            .await
            .status
            .as_u16();
        let b = self
            .send(Req::get("/whoami").bearer(token))
            .await
            .status
            .as_u16();
        (a, b)
    }
}

async fn sqlite(test: &str) -> TestDb {
    let tdb = open(Backend::Sqlite, test).await.expect("sqlite");
    tdb.create_table(users::Entity).await;
    tdb
}

async fn register(p: &Process, email: &str, name: &str) {
    let r = p
        .send(Req::post("/register").json(json!({
            "email": email, "username": name, "password": PASSWORD
        })))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
}

/// Deactivates a user the way an admin panel would: plain SeaORM, outside crudauth.
async fn deactivate_outside(db: &TestDb, p: &Process, name: &str) -> UserId {
    let user = p.auth.repo().find_by_login(name).await.unwrap().unwrap();
    let mut row: users::ActiveModel = user.clone().into();
    row.is_active = Set(false);
    row.update(&db.db).await.unwrap();
    user.user_id()
}

#[tokio::test]
async fn a_cached_user_serves_requests_without_reading_the_table() {
    let db = sqlite("cache_hits").await;
    let p = process(&db, Arc::new(crudauth::MemoryStore::new()), |b| b);
    register(&p, "ann@example.com", "ann").await;
    let (s, token) = (
        p.login("ann", PASSWORD).await,
        p.token("ann", PASSWORD).await,
    );
    assert_eq!(p.whoami(&s, &token).await, (200, 200));
    let before = p.reads.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(p.whoami(&s, &token).await, (200, 200));
    }
    assert_eq!(
        p.reads.load(Ordering::SeqCst),
        before,
        "no table read once cached"
    );

    // Switched off, every request reads the row.
    let off = process(&db, Arc::new(crudauth::MemoryStore::new()), |b| {
        b.user_cache(UserCacheConfig {
            capacity: 0,
            ..Default::default()
        })
    });
    let (s, token) = (
        off.login("ann", PASSWORD).await,
        off.token("ann", PASSWORD).await,
    );
    let before = off.reads.load(Ordering::SeqCst);
    assert_eq!(off.whoami(&s, &token).await, (200, 200));
    assert_eq!(off.reads.load(Ordering::SeqCst), before + 2);
}

/// Every write crudauth makes retires the cached copy before it answers: the next request
/// with an old credential is refused (or sees the new state).
#[tokio::test]
async fn every_write_path_takes_effect_on_the_next_request() {
    let db = sqlite("cache_write_paths").await;
    let outbox = outbox_path("cache_write_paths");
    let p = process(&db, Arc::new(crudauth::MemoryStore::new()), |b| {
        with_outbox(b, &outbox).rate_limit("register", crudauth::RateLimit::OFF)
    });
    for name in ["pw", "all", "reset", "mail", "verify", "boss"] {
        register(&p, &format!("{name}@example.com"), name).await;
    }
    p.auth.background().flush().await;

    // A password change ends the other sessions and the tokens.
    let (other, token) = (p.login("pw", PASSWORD).await, p.token("pw", PASSWORD).await);
    let me = p.login("pw", PASSWORD).await;
    assert_eq!(p.whoami(&other, &token).await, (200, 200));
    let r = p
        .send(Req::post("/change-password").session(&me).json(json!({
            "current_password": PASSWORD, "new_password": "another horse 2"
        })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        p.whoami(&other, &token).await,
        (401, 401),
        "password change"
    );

    // Sign out everywhere.
    let (s, token) = (
        p.login("all", PASSWORD).await,
        p.token("all", PASSWORD).await,
    );
    assert_eq!(p.whoami(&s, &token).await, (200, 200));
    let r = p.send(Req::post("/logout-all").session(&s)).await;
    assert_eq!(r.status, 200);
    assert_eq!(p.whoami(&s, &token).await, (401, 401), "logout-all");

    // A password reset.
    let (s, token) = (
        p.login("reset", PASSWORD).await,
        p.token("reset", PASSWORD).await,
    );
    assert_eq!(p.whoami(&s, &token).await, (200, 200));
    let r = p
        .send(Req::post("/password/reset-request").json(json!({ "email": "reset@example.com" })))
        .await;
    assert_eq!(r.status, 200);
    let mail = mails(&p.auth, &outbox).await;
    let link = mail
        .iter()
        .rev()
        .find(|m| m["kind"] == "reset_password")
        .unwrap();
    let r = p
        .send(Req::post("/password/reset-confirm").json(json!({
            "token": token_of(link), "new_password": "another horse 2"
        })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(p.whoami(&s, &token).await, (401, 401), "password reset");

    // An email change.
    let (s, token) = (
        p.login("mail", PASSWORD).await,
        p.token("mail", PASSWORD).await,
    );
    assert_eq!(p.whoami(&s, &token).await, (200, 200));
    let r = p
        .send(Req::post("/email/change-request").session(&s).json(json!({
            "new_email": "mail2@example.com", "password": PASSWORD
        })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let mail = mails(&p.auth, &outbox).await;
    let link = mail
        .iter()
        .rev()
        .find(|m| m["kind"] == "change_email")
        .unwrap();
    let r = p
        .send(Req::post("/email/change-confirm").json(json!({ "token": token_of(link) })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(p.whoami(&s, &token).await, (401, 401), "email change");

    // A verification: the flag is seen by the very next request of the same session.
    let s = p.login("verify", PASSWORD).await;
    assert_eq!(p.send(Req::get("/verified").session(&s)).await.status, 403);
    let r = p
        .send(Req::post("/email/verify-request").json(json!({ "email": "verify@example.com" })))
        .await;
    assert_eq!(r.status, 200);
    let mail = mails(&p.auth, &outbox).await;
    let link = mail
        .iter()
        .rev()
        .find(|m| m["kind"] == "verify_email" && m["to"] == "verify@example.com")
        .unwrap();
    let r = p
        .send(Req::post("/email/verify-confirm").json(json!({ "token": token_of(link) })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        p.send(Req::get("/verified").session(&s)).await.status,
        200,
        "verified"
    );

    // A promotion by ensure_admin.
    let s = p.login("boss", PASSWORD).await;
    assert_eq!(
        p.send(Req::get("/admin-only").session(&s)).await.status,
        403
    );
    p.auth
        .ensure_admin("boss@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        p.send(Req::get("/admin-only").session(&s)).await.status,
        200,
        "promoted"
    );
    let _ = FRONTEND;
}

/// Writes the app makes outside crudauth: `invalidate_user` takes effect at once; without it,
/// `max_age` bounds how long the old copy is used (and with `max_age: None`, it stays).
#[tokio::test]
async fn writes_outside_crudauth_take_invalidate_user_or_max_age() {
    let db = sqlite("cache_outside").await;
    let store: Arc<dyn Store> = Arc::new(crudauth::MemoryStore::new());
    let p = process(&db, store.clone(), |b| b);
    register(&p, "eve@example.com", "eve").await;
    let (s, token) = (
        p.login("eve", PASSWORD).await,
        p.token("eve", PASSWORD).await,
    );
    assert_eq!(p.whoami(&s, &token).await, (200, 200));
    let id = deactivate_outside(&db, &p, "eve").await;
    p.auth.invalidate_user(&id).await.unwrap();
    assert_eq!(p.whoami(&s, &token).await, (401, 401), "invalidate_user");

    // Without invalidate_user: the copy is used until max_age, then read again.
    let short = process(&db, store.clone(), |b| {
        b.user_cache(UserCacheConfig {
            max_age: Some(Duration::from_millis(300)),
            ..Default::default()
        })
    });
    register(&short, "fay@example.com", "fay").await;
    let (s, token) = (
        short.login("fay", PASSWORD).await,
        short.token("fay", PASSWORD).await,
    );
    assert_eq!(short.whoami(&s, &token).await, (200, 200));
    deactivate_outside(&db, &short, "fay").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(short.whoami(&s, &token).await, (401, 401), "max_age");

    let forever = process(&db, store, |b| {
        b.user_cache(UserCacheConfig {
            max_age: None,
            ..Default::default()
        })
    });
    register(&forever, "gus@example.com", "gus").await;
    let (s, token) = (
        forever.login("gus", PASSWORD).await,
        forever.token("gus", PASSWORD).await,
    );
    assert_eq!(forever.whoami(&s, &token).await, (200, 200));
    deactivate_outside(&db, &forever, "gus").await;
    assert_eq!(
        forever.whoami(&s, &token).await,
        (200, 200),
        "max_age None: an outside write unannounced stays unseen (the documented trade-off)"
    );
}

/// Two processes sharing a store and the table: a revocation on A is refused by B on its
/// next request, for sessions and tokens, on every store.
#[tokio::test]
async fn a_revocation_on_one_process_takes_effect_on_the_other() {
    for case in all_stores("cache_two_processes").await {
        let db = sqlite(&format!("cache_two_{}", case.name.replace(':', "_"))).await;
        let a = process(&db, case.store.clone(), |b| b);
        let b = process(&db, case.store.clone(), |b| b);
        let name = &case.name;
        register(&a, "ida@example.com", "ida").await;
        register(&a, "joe@example.com", "joe").await;

        // A password change on A: B refuses the old session and token.
        let (s, token) = (
            a.login("ida", PASSWORD).await,
            a.token("ida", PASSWORD).await,
        );
        assert_eq!(
            b.whoami(&s, &token).await,
            (200, 200),
            "{name}: B serves A's session"
        );
        let me = a.login("ida", PASSWORD).await;
        let r = a
            .send(Req::post("/change-password").session(&me).json(json!({
                "current_password": PASSWORD, "new_password": "another horse 2"
            })))
            .await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(
            b.whoami(&s, &token).await,
            (401, 401),
            "{name}: password change on A"
        );

        // A deactivation made outside crudauth, announced on A.
        let (s, token) = (
            b.login("joe", PASSWORD).await,
            b.token("joe", PASSWORD).await,
        );
        assert_eq!(b.whoami(&s, &token).await, (200, 200), "{name}");
        let id = deactivate_outside(&db, &a, "joe").await;
        a.auth.invalidate_user(&id).await.unwrap();
        assert_eq!(
            b.whoami(&s, &token).await,
            (401, 401),
            "{name}: deactivation on A"
        );
        case.cleanup().await;
    }
}

/// Writes through `auth.repo()` are announced like crudauth's own; a process without the
/// session transport still tells the session records of every process.
#[tokio::test]
async fn repo_writes_and_bearer_only_processes_announce_too() {
    let db = sqlite("cache_repo_writes").await;
    let store: Arc<dyn Store> = Arc::new(crudauth::MemoryStore::new());
    let web = process(&db, store.clone(), |b| b);
    register(&web, "kim@example.com", "kim").await;
    register(&web, "lou@example.com", "lou").await;

    let (s, token) = (
        web.login("kim", PASSWORD).await,
        web.token("kim", PASSWORD).await,
    );
    assert_eq!(web.whoami(&s, &token).await, (200, 200));
    let kim = web.auth.repo().find_by_login("kim").await.unwrap().unwrap();
    let off = UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    web.auth.repo().update(&kim.user_id(), off).await.unwrap();
    assert_eq!(
        web.whoami(&s, &token).await,
        (401, 401),
        "a write through auth.repo()"
    );

    // A bearer-only process (an API, an admin worker) sharing the store.
    let api = CrudAuth::builder(SeaUserRepository::<User>::new(db.db.clone()))
        .secret_key(SECRET.to_vec())
        .password(fast_passwords())
        .store(store)
        .bearer(crudauth::BearerConfig::default())
        .build()
        .unwrap();
    let s = web.login("lou", PASSWORD).await;
    assert_eq!(web.send(Req::get("/whoami").session(&s)).await.status, 200);
    let lou = deactivate_outside(&db, &web, "lou").await;
    api.invalidate_user(&lou).await.unwrap();
    assert_eq!(
        web.send(Req::get("/whoami").session(&s)).await.status,
        401,
        "announced by a process without sessions"
    );
}
