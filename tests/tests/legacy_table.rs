//! Adopting a real legacy table (`models::members`) on SQLite, PostgreSQL and MariaDB: flags
//! read (and one written) through functions, columns renamed with
//! `#[sea_orm(column_name = ..)]`, a login column unique only in the database, and the old
//! system's bcrypt hashes signing in and being upgraded.

use axum::Router;
use axum::routing::get;
use crudauth::password::LegacyHashes;
use crudauth::user::{NewUser, RepoError, UserRepository, UserUpdate};
use crudauth::{
    AuthError, BearerConfig, ConfigError, CrudAuth, RecoveryConfig, Superuser, UserRecord,
};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{Req, SECRET, fast_passwords, send};
use crudauth_tests::models::{members, readers};
use crudauth_tests::{Backend, open};
use sea_orm::sea_query::Index;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

type Member = members::Model;

#[derive(serde::Deserialize)]
struct Vector {
    format: String,
    password: String,
    hash: String,
}

fn bcrypt_vector() -> Vector {
    #[derive(serde::Deserialize)]
    struct File {
        vectors: Vec<Vector>,
    }
    let file: File = serde_json::from_str(include_str!("../fixtures/legacy-hashes.json")).unwrap();
    file.vectors
        .into_iter()
        .find(|v| v.format == "bcrypt")
        .unwrap()
}

async fn admin_only(Superuser(p): Superuser<Member>) -> String {
    p.user_id.to_string()
}

async fn token(app: &Router, login: &str, password: &str) -> (u16, String) {
    let r = send(
        app,
        Req::post("/token").form(&[("username", login), ("password", password)]),
    )
    .await;
    let access = r.json["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (r.status.as_u16(), access)
}

#[tokio::test]
async fn a_legacy_table_with_flags_of_any_shape_on_every_database() {
    let old = bcrypt_vector();
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "legacy_members").await else {
            continue;
        };
        tdb.create_table(members::Entity).await;
        // The database has the unique index the entity does not declare.
        let index = Index::create()
            .name("members_email_unique")
            .table(members::Entity)
            .col(members::Column::EmailAddress)
            .unique()
            .to_owned();
        tdb.db.execute(&index).await.expect("unique index");
        let repo = SeaUserRepository::<Member>::new(tdb.db.clone());
        let case = format!("{backend:?}");

        // Rows as the old system left them.
        let seed = async |email: &str, hash: &str| {
            repo.create(NewUser::new(hash).email(email))
                .await
                .expect("seed")
        };
        let fresh = repo_hash(&repo, "correct horse 1").await;
        let legacy = seed("old@example.com", &old.hash).await;
        let gone = seed("gone@example.com", &fresh).await;
        let admin = seed("admin@example.com", &fresh).await;
        assert!(
            legacy.is_active() && !legacy.is_superuser() && !legacy.email_verified(),
            "{case}"
        );
        assert_eq!(
            legacy.status, "pending",
            "{case}: written through set_verified"
        );
        let mut row: members::ActiveModel = gone.clone().into();
        row.deleted_at = Set(Some(1_700_000_000));
        row.update(&tdb.db).await.unwrap();
        let mut row: members::ActiveModel = admin.clone().into();
        row.role = Set(10);
        row.update(&tdb.db).await.unwrap();

        let auth = CrudAuth::builder(repo.clone())
            .secret_key(SECRET.to_vec())
            .password(fast_passwords())
            .bearer(BearerConfig::default())
            .legacy_hashes(LegacyHashes::built_in().timing_samples([old.hash.clone()]))
            .build()
            .expect("valid config");
        let app = Router::new()
            .route("/admin-only", get(admin_only))
            .with_state(auth.clone())
            .merge(auth.router());

        // The old system's bcrypt hash signs in, and the PASSWD column is upgraded.
        let (status, old_token) = token(&app, "old@example.com", &old.password).await;
        assert_eq!(status, 200, "{case}");
        let upgraded = repo
            .find_by_login("old@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(
            upgraded.passwd.starts_with("$argon2id$"),
            "{case}: {}",
            upgraded.passwd
        );
        // A soft-deleted member is disabled: the right password is refused.
        assert_eq!(
            token(&app, "gone@example.com", "correct horse 1").await.0,
            401,
            "{case}"
        );
        // Role 10 reads as a superuser.
        let (status, admin_token) = token(&app, "admin@example.com", "correct horse 1").await;
        assert_eq!(status, 200, "{case}");
        let r = send(&app, Req::get("/admin-only").bearer(&admin_token)).await;
        assert_eq!(r.status, 200, "{case}");
        let r = send(&app, Req::get("/admin-only").bearer(&old_token)).await;
        assert_eq!(r.status, 403, "{case}");

        // A registration writes what it may: no deleted_at (active), no role (the column's
        // default), the status through the write function.
        let r = send(
            &app,
            Req::post("/register").json(serde_json::json!({
                "email": "new@example.com", "password": "correct horse 1"
            })),
        )
        .await;
        assert_eq!(r.status, 202, "{case}: {:?}", r.json);
        let new = repo
            .find_by_login("new@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (new.deleted_at, new.role, new.status.as_str()),
            (None, 0, "pending"),
            "{case}"
        );

        // The written flag goes through its write function; a read-only one is refused.
        let verified = UserUpdate {
            email_verified: Some(true),
            ..Default::default()
        };
        let new = repo.update(&new.user_id(), verified).await.unwrap();
        assert!(new.email_verified() && new.status == "verified", "{case}");
        let promote = UserUpdate {
            is_superuser: Some(true),
            ..Default::default()
        };
        let refused = repo.update(&new.user_id(), promote).await;
        assert!(
            matches!(refused, Err(RepoError::InvalidValue { .. })),
            "{case}: {refused:?}"
        );
        let admin = auth
            .ensure_admin("boss@example.com", "a long admin password")
            .await;
        assert!(matches!(admin, Err(AuthError::BadRequest(_))), "{case}");

        let report = auth.password_hash_report().await.unwrap();
        assert_eq!(report.total, 4, "{case}");
        assert_eq!(
            report.counts.get("bcrypt"),
            None,
            "{case}: the old hash was upgraded"
        );
        tdb.cleanup().await;
    }
}

async fn repo_hash(_: &SeaUserRepository<Member>, password: &str) -> String {
    crudauth::password::PasswordHasher::new(fast_passwords())
        .unwrap()
        .hash(password)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_email_flows_refuse_a_verified_flag_they_cannot_write() {
    let tdb = open(Backend::Sqlite, "legacy_readers").await.unwrap();
    tdb.create_table(readers::Entity).await;
    let repo = SeaUserRepository::<readers::Model>::new(tdb.db.clone());
    let outbox = crudauth::delivery::OutboxSender::new(std::env::temp_dir().join("readers.jsonl"));
    let built = CrudAuth::builder(repo.clone())
        .secret_key(SECRET.to_vec())
        .bearer(BearerConfig::default())
        .recovery(RecoveryConfig::new("https://app.example"))
        .email_sender(std::sync::Arc::new(outbox))
        .build();
    match built {
        Err(ConfigError::Invalid(why)) => assert!(why.contains("email_verified"), "{why}"),
        other => panic!(
            "expected a configuration error, got {:?}",
            other.map(|_| ())
        ),
    }
    // Without the email flows the table is fine, and the flag reads through its function.
    let auth = CrudAuth::builder(repo.clone())
        .secret_key(SECRET.to_vec())
        .password(fast_passwords())
        .bearer(BearerConfig::default())
        .build()
        .unwrap();
    let hash = auth.passwords().hash("correct horse 1").await.unwrap();
    let reader = repo
        .create(NewUser::new(hash).email("r@example.com"))
        .await
        .unwrap();
    assert!(!reader.email_verified());
    let mut row: readers::ActiveModel = reader.into();
    row.verified_at = Set(Some(1));
    let reader = row.update(&tdb.db).await.unwrap();
    assert!(reader.email_verified());
    let _ = readers::Entity::find().all(&tdb.db).await.unwrap();
}
