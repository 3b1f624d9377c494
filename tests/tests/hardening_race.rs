//! A login racing a password change, forced with a repository wrapper that pauses between
//! steps, on every database and for both places the revocation epoch can live (the
//! `token_version` column, or the store for a table without one).

use std::sync::{Arc, Mutex};

use axum::Router;
use crudauth::user::{NewUser, RepoError, UserId, UserRepository, UserSchema, UserUpdate};
use crudauth::{BearerConfig, CrudAuth, UserRecord};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{Req, SECRET, fast_passwords, send};
use crudauth_tests::models::{accounts, users};
use crudauth_tests::{Backend, open};
use serde_json::json;
use tokio::sync::oneshot;

const OLD: &str = "correct horse 1";
const NEW: &str = "another horse 2";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// A login has read the user row.
    AfterLoginRead,
    /// A password change is about to write the hash (and epoch).
    BeforeReplace,
    /// A password change has written the hash (and, with a column, the epoch).
    AfterReplace,
    /// A login is about to store the rehash of a password it checked.
    BeforeRehash,
}

type Armed = Option<(Point, oneshot::Sender<()>, oneshot::Receiver<()>)>;

/// Delegates to a real repository; when armed, stops once at a point until released.
struct PausingRepo<R> {
    inner: R,
    armed: Arc<Mutex<Armed>>,
}

impl<R> PausingRepo<R> {
    async fn pause(&self, here: Point) {
        let taken = {
            let mut armed = self.armed.lock().unwrap();
            match &*armed {
                Some((point, _, _)) if *point == here => armed.take(),
                _ => None,
            }
        };
        if let Some((_, reached, release)) = taken {
            let _ = reached.send(());
            let _ = release.await;
        }
    }
}

impl<R: UserRepository> UserRepository for PausingRepo<R> {
    type User = R::User;
    fn schema(&self) -> &UserSchema {
        self.inner.schema()
    }
    async fn find_by_id(&self, id: &UserId) -> Result<Option<R::User>, RepoError> {
        self.inner.find_by_id(id).await
    }
    async fn find_by_login(&self, identifier: &str) -> Result<Option<R::User>, RepoError> {
        let found = self.inner.find_by_login(identifier).await;
        self.pause(Point::AfterLoginRead).await;
        found
    }
    async fn find_by_recovery(&self, value: &str) -> Result<Option<R::User>, RepoError> {
        self.inner.find_by_recovery(value).await
    }
    async fn find_by_phone(&self, phone: &str) -> Result<Option<R::User>, RepoError> {
        self.inner.find_by_phone(phone).await
    }
    async fn create(&self, new: NewUser) -> Result<R::User, RepoError> {
        self.inner.create(new).await
    }
    async fn update(&self, id: &UserId, update: UserUpdate) -> Result<R::User, RepoError> {
        self.inner.update(id, update).await
    }
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<(), RepoError> {
        self.inner.set_password_hash(id, hash).await
    }
    async fn bump_token_version(&self, id: &UserId) -> Result<Option<i64>, RepoError> {
        self.inner.bump_token_version(id).await
    }
    async fn compare_and_set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> Result<bool, RepoError> {
        self.pause(Point::BeforeRehash).await;
        self.inner
            .compare_and_set_password_hash(id, expected, hash)
            .await
    }
    async fn replace_password_hash(
        &self,
        id: &UserId,
        hash: &str,
    ) -> Result<Option<i64>, RepoError> {
        self.pause(Point::BeforeReplace).await;
        let done = self.inner.replace_password_hash(id, hash).await;
        self.pause(Point::AfterReplace).await;
        done
    }
}

struct Rig {
    app: Router,
    armed: Arc<Mutex<Armed>>,
    login: &'static str,
}

impl Rig {
    fn arm(&self, point: Point) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.armed.lock().unwrap() = Some((point, reached_tx, release_rx));
        (reached_rx, release_tx)
    }

    async fn token(&self, password: &str) -> crudauth_tests::http::Resp {
        send(
            &self.app,
            Req::post("/token").form(&[("username", self.login), ("password", password)]),
        )
        .await
    }

    async fn change_password(&self, access: &str, from: &str, to: &str) {
        let r = send(
            &self.app,
            Req::post("/change-password").bearer(access).json(json!({
                "current_password": from, "new_password": to
            })),
        )
        .await;
        assert_eq!(r.status, 200, "change-password: {:?}", r.json);
    }

    /// Whether a token pair from a login still grants anything.
    async fn pair_is_dead(&self, r: &crudauth_tests::http::Resp) -> bool {
        if r.status != 200 {
            return true;
        }
        let access = r.json["access_token"].as_str().unwrap();
        let refresh = r.json["refresh_token"].as_str().unwrap();
        let me = send(&self.app, Req::get("/me").bearer(access)).await;
        let refreshed = send(
            &self.app,
            Req::post("/refresh").json(json!({ "refresh_token": refresh })),
        )
        .await;
        me.status == 401 && refreshed.status == 401
    }
}

fn auth_of<R: UserRepository>(repo: R) -> CrudAuth<R::User> {
    CrudAuth::builder(repo)
        .secret_key(SECRET.to_vec())
        .password(fast_passwords())
        .bearer(BearerConfig::default())
        .build()
        .expect("valid config")
}

async fn rig<M>(repo: SeaUserRepository<M>, login: &'static str, register: serde_json::Value) -> Rig
where
    SeaUserRepository<M>: UserRepository<User = M>,
    M: UserRecord,
{
    let armed = Arc::new(Mutex::new(None));
    let auth = auth_of(PausingRepo {
        inner: repo,
        armed: armed.clone(),
    });
    let app = auth.router();
    let r = send(&app, Req::post("/register").json(register)).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    Rig { app, armed, login }
}

/// Every interleaving of one login with the old password and one password change: the
/// login never ends with a credential that works after the change.
async fn race_everywhere(r: &Rig) {
    let mut password = OLD;
    let mut next = NEW;
    for point in [
        Point::AfterLoginRead,
        Point::BeforeReplace,
        Point::AfterReplace,
    ] {
        let first = r.token(password).await;
        assert_eq!(first.status, 200, "{:?}", first.json);
        let access = first.json["access_token"].as_str().unwrap().to_owned();
        let (reached, release) = r.arm(point);
        let racing = if point == Point::AfterLoginRead {
            // The login reads the row, then stops; the change runs to its end.
            let login = r.token(password);
            let change = async {
                reached.await.unwrap();
                r.change_password(&access, password, next).await;
                release.send(()).unwrap();
            };
            tokio::join!(login, change).0
        } else {
            // The change stops inside its write; the login runs to its end.
            let change = r.change_password(&access, password, next);
            let login = async {
                reached.await.unwrap();
                let login = r.token(password).await;
                release.send(()).unwrap();
                login
            };
            tokio::join!(change, login).1
        };
        assert!(
            r.pair_is_dead(&racing).await,
            "{point:?}: a login with the old password kept access after the change ({:?})",
            racing.json
        );
        assert_eq!(
            r.token(password).await.status,
            401,
            "{point:?}: the old password is gone"
        );
        std::mem::swap(&mut password, &mut next);
    }
}

#[tokio::test]
async fn a_login_racing_a_password_change_never_keeps_access_with_the_old_password() {
    for backend in Backend::ALL {
        // The epoch in the token_version column (one UPDATE with the hash).
        if let Some(tdb) = open(backend, "race_column").await {
            tdb.create_table(users::Entity).await;
            let repo = SeaUserRepository::<users::Model>::new(tdb.db.clone());
            let r = rig(
                repo,
                "ann",
                json!({ "email": "ann@example.com", "username": "ann", "password": OLD }),
            )
            .await;
            race_everywhere(&r).await;
            tdb.cleanup().await;
        }
        // The epoch in the store (a legacy table without token_version).
        if let Some(tdb) = open(backend, "race_store").await {
            tdb.create_table(accounts::Entity).await;
            let repo = SeaUserRepository::<accounts::Model>::new(tdb.db.clone());
            let r = rig(
                repo,
                "ann@example.com",
                json!({ "email": "ann@example.com", "password": OLD }),
            )
            .await;
            race_everywhere(&r).await;
            tdb.cleanup().await;
        }
    }
}

#[tokio::test]
async fn a_rehash_racing_a_password_change_never_brings_the_old_password_back() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "race_rehash").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        // The account is made under older argon2 parameters...
        let old_params = CrudAuth::builder(SeaUserRepository::<users::Model>::new(tdb.db.clone()))
            .secret_key(SECRET.to_vec())
            .password(crudauth::password::PasswordConfig {
                memory_kib: 32,
                iterations: 1,
                ..crudauth::password::PasswordConfig::default()
            })
            .bearer(BearerConfig::default())
            .build()
            .unwrap();
        let r = send(
            &old_params.router(),
            Req::post("/register")
                .json(json!({ "email": "ann@example.com", "username": "ann", "password": OLD })),
        )
        .await;
        assert_eq!(r.status, 202);
        // ...so the app (current parameters) rehashes at the next login.
        let armed = Arc::new(Mutex::new(None));
        let auth = auth_of(PausingRepo {
            inner: SeaUserRepository::<users::Model>::new(tdb.db.clone()),
            armed: armed.clone(),
        });
        let r = Rig {
            app: auth.router(),
            armed,
            login: "ann",
        };
        let (reached, release) = r.arm(Point::BeforeRehash);
        let login = r.token(OLD);
        let change = async {
            reached.await.unwrap();
            // The login has checked OLD and is about to store its rehash; the password
            // changes now (through a second app on the same database, unpaused).
            let plain = auth_of(SeaUserRepository::<users::Model>::new(tdb.db.clone()));
            let app = plain.router();
            let t = send(
                &app,
                Req::post("/token").form(&[("username", "ann"), ("password", OLD)]),
            )
            .await;
            let token = t.json["access_token"].as_str().unwrap().to_owned();
            let c = send(
                &app,
                Req::post("/change-password").bearer(&token).json(json!({
                    "current_password": OLD, "new_password": NEW
                })),
            )
            .await;
            assert_eq!(c.status, 200, "{:?}", c.json);
            release.send(()).unwrap();
        };
        let (racing, ()) = tokio::join!(login, change);
        assert!(r.pair_is_dead(&racing).await, "{backend:?}");
        assert_eq!(
            r.token(OLD).await.status,
            401,
            "{backend:?}: OLD stays gone"
        );
        assert_eq!(r.token(NEW).await.status, 200, "{backend:?}: NEW stays");
        tdb.cleanup().await;
    }
}
