//! Users of a legacy table sign in with the hashes the old system wrote (vectors made by the
//! reference implementations: `tests/fixtures/legacy-hashes.py`), on SQLite, PostgreSQL and
//! MariaDB; the first sign-in upgrades the hash to argon2id, under a compare-and-set.

use crudauth::password::{HashFormat, LegacyHashes};
use crudauth::user::{NewUser, RepoError, UserId, UserRepository, UserSchema, UserUpdate};
use crudauth::{CrudAuth, UserRecord};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{Req, User, default_builder, send};
use crudauth_tests::models::users;
use crudauth_tests::{Backend, TestDb, open};

#[derive(serde::Deserialize)]
struct Vector {
    format: String,
    password: String,
    hash: String,
}

fn vectors() -> Vec<Vector> {
    #[derive(serde::Deserialize)]
    struct File {
        vectors: Vec<Vector>,
    }
    let text = include_str!("../fixtures/legacy-hashes.json");
    serde_json::from_str::<File>(text).expect("fixture").vectors
}

/// The built-in formats, the timing floor set by the table's own (cheap) vectors.
fn legacy() -> LegacyHashes {
    LegacyHashes::built_in().timing_samples(vectors().into_iter().map(|v| v.hash))
}

async fn seed(repo: &SeaUserRepository<User>, name: &str, hash: &str, active: bool) -> User {
    let mut new = NewUser::new(hash).email(format!("{name}@example.com"));
    new.username = Some(name.to_owned());
    new.is_active = active;
    repo.create(new).await.expect("seed a legacy row")
}

async fn stored_hash(repo: &SeaUserRepository<User>, name: &str) -> String {
    let user = repo.find_by_login(name).await.unwrap().expect("the row");
    user.password.clone()
}

async fn token(app: &axum::Router, name: &str, password: &str) -> u16 {
    let form = [("username", name), ("password", password)];
    send(app, Req::post("/token").form(&form))
        .await
        .status
        .as_u16()
}

async fn each_backend(test: &str, run: impl AsyncFn(TestDb)) {
    for backend in Backend::ALL {
        if let Some(tdb) = open(backend, test).await {
            tdb.create_table(users::Entity).await;
            run(tdb).await;
        }
    }
}

#[tokio::test]
async fn every_old_format_signs_in_and_is_upgraded_on_every_database() {
    each_backend("legacy_formats", async |tdb| {
        let repo = SeaUserRepository::<User>::new(tdb.db.clone());
        let auth: CrudAuth<User> = default_builder(repo.clone())
            .legacy_hashes(legacy())
            .build()
            .unwrap();
        let app = auth.router();
        for (i, v) in vectors().iter().enumerate() {
            let name = format!("old{i}");
            seed(&repo, &name, &v.hash, true).await;
            let case = format!("{:?} {}", tdb.backend, v.format);
            // A wrong password keeps the old hash.
            assert_eq!(token(&app, &name, "not the password").await, 401, "{case}");
            assert_eq!(stored_hash(&repo, &name).await, v.hash, "{case}: kept");
            // The right one signs in and upgrades it in the same request.
            assert_eq!(token(&app, &name, &v.password).await, 200, "{case}");
            let upgraded = stored_hash(&repo, &name).await;
            assert!(
                upgraded.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
                "{case}: {upgraded}"
            );
            // And the new hash signs in.
            assert_eq!(token(&app, &name, &v.password).await, 200, "{case}: again");
            assert_eq!(
                stored_hash(&repo, &name).await,
                upgraded,
                "{case}: upgraded once"
            );
        }
        let report = auth.password_hash_report().await.unwrap();
        assert_eq!(report.counts.get("argon2"), Some(&(vectors().len() as u64)));
        tdb.cleanup().await;
    })
    .await;
}

#[tokio::test]
async fn bcrypt_cuts_at_72_bytes_as_bcrypt_does() {
    let tdb = open(Backend::Sqlite, "legacy_bcrypt_72").await.unwrap();
    tdb.create_table(users::Entity).await;
    let repo = SeaUserRepository::<User>::new(tdb.db.clone());
    let app = default_builder(repo.clone())
        .legacy_hashes(legacy())
        .build()
        .unwrap()
        .router();
    let v = vectors()
        .into_iter()
        .find(|v| v.format == "bcrypt-72")
        .unwrap();
    seed(&repo, "long", &v.hash, true).await;
    let first_72 = &v.password[..72];
    let other_tail = format!("{first_72}yyyyyyyy");
    assert_eq!(
        token(&app, "long", &v.password[..71]).await,
        401,
        "71 bytes differ"
    );
    assert_eq!(
        token(&app, "long", &other_tail).await,
        200,
        "bytes past 72 never counted"
    );
}

#[tokio::test]
async fn a_disabled_account_is_not_upgraded_and_unsalted_digests_are_refused() {
    let tdb = open(Backend::Sqlite, "legacy_refusals").await.unwrap();
    tdb.create_table(users::Entity).await;
    let repo = SeaUserRepository::<User>::new(tdb.db.clone());
    let app = default_builder(repo.clone())
        .legacy_hashes(legacy())
        .build()
        .unwrap()
        .router();
    let v = vectors()
        .into_iter()
        .find(|v| v.format == "bcrypt")
        .unwrap();
    seed(&repo, "off", &v.hash, false).await;
    assert_eq!(token(&app, "off", &v.password).await, 401);
    assert_eq!(
        stored_hash(&repo, "off").await,
        v.hash,
        "a disabled account keeps its hash"
    );

    // md5("correct horse 1"): a plain digest never verifies by default.
    let md5 = "26cddb9f7d28f3d57a5a7c824b1216b7";
    assert_eq!(HashFormat::detect(md5), HashFormat::UnsaltedDigest);
    seed(&repo, "md5", md5, true).await;
    assert_eq!(token(&app, "md5", "correct horse 1").await, 401);
    assert_eq!(stored_hash(&repo, "md5").await, md5);
}

#[tokio::test]
async fn an_apps_own_verifier_opts_in_and_its_hashes_are_upgraded() {
    let tdb = open(Backend::Sqlite, "legacy_custom").await.unwrap();
    tdb.create_table(users::Entity).await;
    let repo = SeaUserRepository::<User>::new(tdb.db.clone());
    // An in-house format: `house$<password reversed>` (a stand-in for a company's own
    // salted digest; the point is the verifier's contract, not its cryptography).
    let custom = legacy().verifier("house", |password, stored| {
        let rest = stored.strip_prefix("house$")?;
        Some(rest.chars().rev().collect::<String>() == password)
    });
    let app = default_builder(repo.clone())
        .legacy_hashes(custom)
        .build()
        .unwrap()
        .router();
    seed(&repo, "house", "house$1 esroh tcerroc", true).await;
    assert_eq!(token(&app, "house", "wrong").await, 401);
    assert_eq!(token(&app, "house", "correct horse 1").await, 200);
    assert!(stored_hash(&repo, "house").await.starts_with("$argon2id$"));
}

#[tokio::test]
async fn without_legacy_hashes_old_formats_do_not_verify() {
    let tdb = open(Backend::Sqlite, "legacy_off").await.unwrap();
    tdb.create_table(users::Entity).await;
    let repo = SeaUserRepository::<User>::new(tdb.db.clone());
    let auth = default_builder(repo.clone()).build().unwrap();
    assert!(auth.passwords().timing_floor().is_zero());
    let app = auth.router();
    let v = vectors()
        .into_iter()
        .find(|v| v.format == "django")
        .unwrap();
    seed(&repo, "dj", &v.hash, true).await;
    assert_eq!(token(&app, "dj", &v.password).await, 401);
    assert_eq!(stored_hash(&repo, "dj").await, v.hash);
}

/// The upgrade is a compare-and-set on the old hash: a password change that lands between
/// the check and the upgrade is never overwritten with a hash of the old password.
#[tokio::test]
async fn an_upgrade_racing_a_password_change_keeps_the_change() {
    struct Racing {
        inner: SeaUserRepository<User>,
        changed_to: String,
    }
    impl UserRepository for Racing {
        type User = User;
        fn schema(&self) -> &UserSchema {
            self.inner.schema()
        }
        async fn find_by_id(&self, id: &UserId) -> Result<Option<User>, RepoError> {
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
        async fn compare_and_set_password_hash(
            &self,
            id: &UserId,
            expected: &str,
            hash: &str,
        ) -> Result<bool, RepoError> {
            // The owner changes the password right between the check and the upgrade.
            self.inner
                .replace_password_hash(id, &self.changed_to)
                .await?;
            self.inner
                .compare_and_set_password_hash(id, expected, hash)
                .await
        }
    }
    each_backend("legacy_race", async |tdb| {
        let inner = SeaUserRepository::<User>::new(tdb.db.clone());
        let v = vectors()
            .into_iter()
            .find(|v| v.format == "werkzeug")
            .unwrap();
        let user = seed(&inner, "racer", &v.hash, true).await;
        let changed_to =
            "$argon2id$v=19$m=64,t=1,p=1$bmV3c2FsdA$changedchangedchangedchangedchangedchangedc"
                .to_owned();
        let repo = Racing {
            inner: inner.clone(),
            changed_to: changed_to.clone(),
        };
        let auth = CrudAuth::builder(repo)
            .secret_key(crudauth_tests::http::SECRET.to_vec())
            .password(crudauth_tests::http::fast_passwords())
            .bearer(crudauth::BearerConfig::default())
            .legacy_hashes(legacy())
            .build()
            .unwrap();
        let app = auth.router();
        let r = send(
            &app,
            Req::post("/token").form(&[("username", "racer"), ("password", &v.password)]),
        )
        .await;
        let case = format!("{:?}", tdb.backend);
        assert_eq!(
            stored_hash(&inner, "racer").await,
            changed_to,
            "{case}: the change stands"
        );
        // The sign-in that raced the change carries the old epoch: its token is dead.
        if r.status == 200 {
            let access = r.json["access_token"].as_str().unwrap();
            let me = send(&app, Req::get("/me").bearer(access)).await;
            assert_eq!(
                me.status, 401,
                "{case}: the racing sign-in is revoked by the change"
            );
        }
        let _ = user.user_id();
        tdb.cleanup().await;
    })
    .await;
}

/// With old formats on, every password check (an unknown identifier, an argon2id account,
/// an old-format account) lasts at least the timing floor, which is at least the slowest
/// sample's verification: a lower bound, so this never depends on the machine's speed. The
/// ratios between them are measured in `tests/benches/legacy_login.rs`.
#[tokio::test]
async fn every_password_check_lasts_the_timing_floor() {
    let tdb = open(Backend::Sqlite, "legacy_floor").await.unwrap();
    tdb.create_table(users::Entity).await;
    let repo = SeaUserRepository::<User>::new(tdb.db.clone());
    let bcrypt = vectors()
        .into_iter()
        .find(|v| v.format == "bcrypt")
        .unwrap();
    let auth = default_builder(repo.clone())
        .legacy_hashes(LegacyHashes::built_in().timing_samples([bcrypt.hash.clone()]))
        .build()
        .unwrap();
    let floor = auth.passwords().timing_floor();
    assert!(!floor.is_zero());
    let app = auth.router();
    seed(&repo, "old", &bcrypt.hash, true).await;
    let modern = auth.passwords().hash("correct horse 1").await.unwrap();
    seed(&repo, "modern", &modern, true).await;
    for login in ["nobody", "modern", "old"] {
        let started = std::time::Instant::now();
        assert_eq!(token(&app, login, "not the password").await, 401);
        assert!(
            started.elapsed() >= floor,
            "{login}: {:?} < {floor:?}",
            started.elapsed()
        );
    }
}
