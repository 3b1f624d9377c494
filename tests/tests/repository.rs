//! The SeaORM user repository on both reference models, across the backend matrix.

use crudauth::user::{
    LogicalField, NewUser, RepoError, UserId, UserRecord, UserRepository, UserUpdate,
    normalize_phone,
};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::models::{accounts, users};
use crudauth_tests::{Backend, TestDb, open};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

/// A model that resolves logins by username first, then email.
mod handles {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "handles")]
    #[auth(login = ["username", "email"])]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub email: String,
        #[sea_orm(unique)]
        pub username: String,
        pub password: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

async fn legacy(
    backend: Backend,
    test: &str,
) -> Option<(TestDb, SeaUserRepository<accounts::Model>)> {
    let tdb = open(backend, test).await?;
    tdb.create_table(accounts::Entity).await;
    let repo = SeaUserRepository::new(tdb.db.clone());
    Some((tdb, repo))
}

async fn modern(backend: Backend, test: &str) -> Option<(TestDb, SeaUserRepository<users::Model>)> {
    let tdb = open(backend, test).await?;
    tdb.create_table(users::Entity).await;
    let repo = SeaUserRepository::new(tdb.db.clone());
    Some((tdb, repo))
}

fn new_modern(email: &str, username: &str) -> NewUser {
    NewUser::new(HASH).email(email).username(username)
}

#[tokio::test]
async fn legacy_create_reads_back_logical_fields_and_own_columns() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = legacy(backend, "legacy_create").await else {
            continue;
        };
        let user = repo
            .create(
                NewUser::new(HASH)
                    .email("  Ann@Example.COM ")
                    .extra("display_name", "Ann"),
            )
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(
            user.email(),
            Some("ann@example.com"),
            "{backend:?}: stored normalised"
        );
        assert_eq!(user.display_name.as_deref(), Some("Ann"));
        assert_eq!(user.password_hash(), Some(HASH));
        assert!(matches!(user.user_id(), UserId::Int(_)));
        // Absent optional columns degrade as documented.
        assert!(user.is_active(), "no is_active column means active");
        assert!(
            !user.email_verified(),
            "no email_verified column means unverified"
        );
        assert!(!user.is_superuser());
        assert_eq!(
            user.token_version(),
            None,
            "no token_version column: epoch in the store"
        );
        assert_eq!(
            repo.bump_token_version(&user.user_id()).await.unwrap(),
            None
        );
        let found = repo
            .find_by_id(&user.user_id())
            .await
            .unwrap()
            .expect("found by id");
        assert_eq!(found, user);
        let schema = repo.schema();
        assert_eq!(schema.table, "accounts");
        assert!(!schema.has(LogicalField::TokenVersion) && !schema.has(LogicalField::IsActive));
        assert_eq!(schema.login.len(), 1);
        assert_eq!(schema.recovery.map(|r| r.column), Some("email_address"));
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn modern_create_sets_server_defaults_and_a_uuid_key() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "modern_create").await else {
            continue;
        };
        let user = repo
            .create(new_modern("bob@example.com", "bob").extra("bio", "hi"))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert!(matches!(user.user_id(), UserId::Uuid(_)));
        assert!(user.is_active() && !user.is_superuser() && !user.email_verified());
        assert_eq!(user.token_version(), Some(0));
        assert_eq!(user.bio.as_deref(), Some("hi"));
        let contract = user.contract().to_map();
        assert_eq!(contract["username"], "bob");
        assert!(!contract.contains_key("password") && !contract.contains_key("bio"));
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn duplicate_email_in_any_case_is_a_typed_duplicate_and_writes_nothing() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "dup_email").await else {
            continue;
        };
        repo.create(new_modern("carol@example.com", "carol"))
            .await
            .unwrap();
        let err = repo
            .create(new_modern("CAROL@example.com", "carol2"))
            .await
            .expect_err("duplicate email must fail");
        assert!(
            matches!(&err, RepoError::Duplicate { field } if field == "email"),
            "{backend:?}: {err:?}"
        );
        let err = repo
            .create(new_modern("other@example.com", "carol"))
            .await
            .expect_err("duplicate username must fail");
        assert!(
            matches!(&err, RepoError::Duplicate { field } if field == "username"),
            "{backend:?}: {err:?}"
        );
        assert_eq!(users::Entity::find().count(&tdb.db).await.unwrap(), 1);
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_email_give_one_user_and_typed_duplicates() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "dup_race").await else {
            continue;
        };
        let attempts = (0..8).map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                repo.create(new_modern("race@example.com", &format!("racer{i}")))
                    .await
            })
        });
        let mut created = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(_) => created += 1,
                Err(RepoError::Duplicate { field }) => assert_eq!(field, "email", "{backend:?}"),
                Err(other) => panic!("{backend:?}: raw error leaked: {other:?}"),
            }
        }
        assert_eq!(created, 1, "{backend:?}");
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn too_long_values_are_refused_before_anything_is_written() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = legacy(backend, "too_long").await else {
            continue;
        };
        let long_email = format!("{}@example.com", "a".repeat(120));
        let err = repo
            .create(NewUser::new(HASH).email(long_email))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::TooLong { field, max: 120 } if field == "email"),
            "{backend:?}: {err:?}"
        );
        let err = repo
            .create(
                NewUser::new(HASH)
                    .email("d@example.com")
                    .extra("display_name", "x".repeat(41)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::TooLong { field, max: 40 } if field == "display_name"),
            "{backend:?}: {err:?}"
        );
        // Exactly at the limit is fine, counted in characters, not bytes.
        let user = repo
            .create(
                NewUser::new(HASH)
                    .email("d@example.com")
                    .extra("display_name", "é".repeat(40)),
            )
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(accounts::Entity::find().count(&tdb.db).await.unwrap(), 1);
        // An unspecified-length String column takes 255 characters on every backend.
        let err = repo
            .set_password_hash(&user.user_id(), &"h".repeat(256))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RepoError::TooLong { max: 255, .. }),
            "{backend:?}: {err:?}"
        );
        tdb.cleanup().await;
    }
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "too_long_username").await else {
            continue;
        };
        let err = repo
            .create(new_modern("e@example.com", &"u".repeat(33)))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::TooLong { field, max: 32 } if field == "username"),
            "{backend:?}: {err:?}"
        );
        assert_eq!(users::Entity::find().count(&tdb.db).await.unwrap(), 0);
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn email_lookup_is_case_insensitive_and_username_exact() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "lookup_case").await else {
            continue;
        };
        let user = repo
            .create(new_modern("Dave@Example.com", "Dave"))
            .await
            .unwrap();
        for probe in ["dave@example.com", "DAVE@EXAMPLE.COM", " dave@example.com "] {
            let found = repo.find_by_login(probe).await.unwrap();
            assert_eq!(found.map(|u| u.id), Some(user.id), "{backend:?}: {probe}");
        }
        assert_eq!(
            repo.find_by_login("Dave").await.unwrap().map(|u| u.id),
            Some(user.id)
        );
        assert!(
            repo.find_by_login("dave").await.unwrap().is_none(),
            "{backend:?}"
        );
        let by_recovery = repo.find_by_recovery("DAVE@example.com").await.unwrap();
        assert_eq!(by_recovery.map(|u| u.id), Some(user.id));
        assert!(repo.find_by_login("").await.unwrap().is_none());
        assert!(
            repo.find_by_login(&"x".repeat(100_000))
                .await
                .unwrap()
                .is_none()
        );
        assert!(repo.find_by_login("' OR 1=1 --").await.unwrap().is_none());
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn login_resolution_follows_the_configured_order() {
    for backend in Backend::ALL {
        // Default order: email, then username.
        let Some((tdb, repo)) = modern(backend, "login_order").await else {
            continue;
        };
        let alice = repo
            .create(new_modern("alice@example.com", "alice"))
            .await
            .unwrap();
        let squatter = repo
            .create(new_modern("sq@example.com", "alice@example.com"))
            .await;
        // A username may not look like someone's email here (32 chars fit), so it exists:
        let squatter = squatter.unwrap();
        let found = repo
            .find_by_login("alice@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, alice.id, "{backend:?}: email wins over username");
        assert_ne!(found.id, squatter.id);
        tdb.cleanup().await;

        // Reversed order: username, then email.
        let Some(tdb) = open(backend, "login_order_rev").await else {
            continue;
        };
        tdb.create_table(handles::Entity).await;
        let repo = SeaUserRepository::<handles::Model>::new(tdb.db.clone());
        let owner = repo
            .create(NewUser::new(HASH).email("h@example.com").username("hank"))
            .await
            .unwrap();
        let named = repo
            .create(
                NewUser::new(HASH)
                    .email("x@example.com")
                    .username("h@example.com"),
            )
            .await
            .unwrap();
        let found = repo.find_by_login("h@example.com").await.unwrap().unwrap();
        assert_eq!(
            found.id, named.id,
            "{backend:?}: username wins when listed first"
        );
        assert_eq!(
            repo.find_by_login("H@EXAMPLE.COM")
                .await
                .unwrap()
                .unwrap()
                .id,
            owner.id
        );
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn token_version_bumps_atomically_by_one() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "bump").await else {
            continue;
        };
        let user = repo
            .create(new_modern("eve@example.com", "eve"))
            .await
            .unwrap();
        let id = user.user_id();
        assert_eq!(repo.bump_token_version(&id).await.unwrap(), Some(1));
        let bumps = (0..5).map(|_| {
            let repo = repo.clone();
            let id = id.clone();
            tokio::spawn(async move { repo.bump_token_version(&id).await })
        });
        for bump in bumps {
            bump.await.unwrap().unwrap();
        }
        let user = repo.find_by_id(&id).await.unwrap().unwrap();
        assert_eq!(
            user.token_version(),
            Some(6),
            "{backend:?}: no lost increment"
        );
        let ghost = UserId::Uuid(uuid::Uuid::new_v4());
        assert!(matches!(
            repo.bump_token_version(&ghost).await,
            Err(RepoError::NotFound)
        ));
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn privileged_and_unknown_columns_cannot_be_written_through_extra() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = legacy(backend, "privileged").await else {
            continue;
        };
        for (column, value) in [
            ("is_admin", serde_json::json!(true)),
            ("account_id", serde_json::json!(99)),
            ("pw_hash", serde_json::json!("x")),
            ("email_address", serde_json::json!("x@example.com")),
            ("no_such_column", serde_json::json!(1)),
            ("display_name", serde_json::json!(42)),
        ] {
            let err = repo
                .create(
                    NewUser::new(HASH)
                        .email("f@example.com")
                        .extra(column, value),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(&err, RepoError::InvalidValue { field, .. } if field == column),
                "{backend:?}: {column}: {err:?}"
            );
        }
        assert_eq!(accounts::Entity::find().count(&tdb.db).await.unwrap(), 0);
        tdb.cleanup().await;
    }
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "privileged_modern").await else {
            continue;
        };
        let user = repo
            .create(new_modern("g@example.com", "gina"))
            .await
            .unwrap();
        for column in [
            "token_version",
            "is_superuser",
            "email_verified",
            "is_active",
            "id",
        ] {
            let update = UserUpdate {
                extra: [(column.to_owned(), serde_json::json!(1))].into(),
                ..Default::default()
            };
            let err = repo.update(&user.user_id(), update).await.unwrap_err();
            assert!(
                matches!(err, RepoError::InvalidValue { .. }),
                "{backend:?}: {column}"
            );
        }
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn updates_change_fields_and_keep_uniqueness() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "update").await else {
            continue;
        };
        let henry = repo
            .create(new_modern("henry@example.com", "henry"))
            .await
            .unwrap();
        repo.create(new_modern("ida@example.com", "ida"))
            .await
            .unwrap();
        let id = henry.user_id();
        let updated = repo
            .update(
                &id,
                UserUpdate {
                    email_verified: Some(true),
                    email: Some("Henry.New@Example.com".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(updated.email_verified());
        assert_eq!(updated.email(), Some("henry.new@example.com"));
        let taken = UserUpdate {
            email: Some("IDA@example.com".into()),
            ..Default::default()
        };
        let err = repo.update(&id, taken).await.unwrap_err();
        assert!(
            matches!(&err, RepoError::Duplicate { field } if field == "email"),
            "{err:?}"
        );
        // Re-saving one's own address is not a duplicate.
        let same = UserUpdate {
            email: Some("henry.new@example.com".into()),
            ..Default::default()
        };
        repo.update(&id, same).await.unwrap();

        repo.set_password_hash(&id, "$argon2id$new").await.unwrap();
        repo.set_password_hash(&id, "$argon2id$new").await.unwrap(); // unchanged value is fine
        let reread = repo.find_by_id(&id).await.unwrap().unwrap();
        assert_eq!(reread.password_hash(), Some("$argon2id$new"));

        let ghost = UserId::Uuid(uuid::Uuid::new_v4());
        assert!(matches!(
            repo.update(
                &ghost,
                UserUpdate {
                    is_active: Some(false),
                    ..Default::default()
                }
            )
            .await,
            Err(RepoError::NotFound)
        ));
        assert!(matches!(
            repo.set_password_hash(&ghost, "x").await,
            Err(RepoError::NotFound)
        ));
        // An id of the wrong kind is simply not found.
        assert!(repo.find_by_id(&UserId::Int(1)).await.unwrap().is_none());
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn legacy_table_refuses_logical_fields_it_does_not_have() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = legacy(backend, "legacy_missing").await else {
            continue;
        };
        let err = repo
            .create(NewUser::new(HASH).email("j@example.com").username("jay"))
            .await
            .unwrap_err();
        assert!(matches!(&err, RepoError::InvalidValue { field, .. } if field == "username"));
        let user = repo
            .create(NewUser::new(HASH).email("j@example.com"))
            .await
            .unwrap();
        let update = UserUpdate {
            email_verified: Some(true),
            ..Default::default()
        };
        let err = repo.update(&user.user_id(), update).await.unwrap_err();
        assert!(matches!(&err, RepoError::InvalidValue { field, .. } if field == "email_verified"));
        let promote = UserUpdate {
            is_superuser: Some(true),
            ..Default::default()
        };
        assert!(
            repo.update(&user.user_id(), promote)
                .await
                .unwrap()
                .is_superuser()
        );
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn phone_lookup_is_an_exact_match_on_the_stored_e164_number() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "phone_lookup").await else {
            continue;
        };
        assert!(repo.schema().has(LogicalField::Phone), "found by name");
        let ann = repo
            .create(new_modern("ann@example.com", "ann").phone("+46701234567"))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        let bob = repo
            .create(new_modern("bob@example.com", "bob").phone("+15550100199"))
            .await
            .unwrap();
        let carl = repo
            .create(new_modern("carl@example.com", "carl"))
            .await
            .unwrap();
        assert_eq!(ann.phone(), Some("+46701234567"));
        assert_eq!(ann.contract().phone.as_deref(), Some("+46701234567"));
        assert_eq!(carl.phone(), None);

        for (probe, want) in [("+46701234567", &ann), ("+15550100199", &bob)] {
            let found = repo.find_by_phone(probe).await.unwrap();
            assert_eq!(found.map(|u| u.id), Some(want.id), "{backend:?}: {probe}");
        }
        // What the SMS sign-in does with what a user typed: normalise, then look up.
        let typed = normalize_phone("+46 (70) 123-45-67").expect("an E.164 number");
        let found = repo.find_by_phone(&typed).await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(ann.id), "{backend:?}");

        // Exact: any other spelling of the number, a prefix or an extension finds nobody.
        for probe in [
            "+46 70 123 45 67",
            "+46-70-123-45-67",
            "+46 701234567",
            " +46701234567",
            "+46701234567 ",
            "46701234567",
            "0046701234567",
            "+4670123456",
            "+467012345678",
            "+46701234567%",
            "+4670123456_",
            "+４６７０１２３４５６７",
            "",
            "' OR 1=1 --",
        ] {
            assert!(
                repo.find_by_phone(probe).await.unwrap().is_none(),
                "{backend:?}: {probe:?}"
            );
        }
        assert!(
            repo.find_by_phone(&"+4670".repeat(100_000))
                .await
                .unwrap()
                .is_none()
        );
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn phone_lookup_folds_neither_case_nor_accents_whatever_the_collation() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "phone_case").await else {
            continue;
        };
        let user = repo
            .create(new_modern("dora@example.com", "dora"))
            .await
            .unwrap();
        // A value crudauth would not write (it is not E.164), put there by the app itself:
        // MySQL/MariaDB's default collation compares it equal to other cases and accents.
        users::Entity::update_many()
            .col_expr(users::Column::Phone, Expr::value("+1555abcd"))
            .filter(users::Column::Id.eq(user.id))
            .exec(&tdb.db)
            .await
            .unwrap();
        let found = repo.find_by_phone("+1555abcd").await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(user.id), "{backend:?}");
        for probe in ["+1555ABCD", "+1555Abcd", "+1555ábcd", "+1555abcd "] {
            assert!(
                repo.find_by_phone(probe).await.unwrap().is_none(),
                "{backend:?}: {probe:?}"
            );
        }
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn phones_are_unique_and_only_written_in_e164_form() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "phone_write").await else {
            continue;
        };
        let eve = repo
            .create(new_modern("eve@example.com", "eve").phone("+46701234567"))
            .await
            .unwrap();
        let err = repo
            .create(new_modern("eva@example.com", "eva").phone("+46701234567"))
            .await
            .expect_err("a taken phone number");
        assert!(
            matches!(&err, RepoError::Duplicate { field } if field == "phone"),
            "{backend:?}: {err:?}"
        );
        for raw in [
            "+46 70 123 45 67",
            "0701234567",
            "+4670123456x",
            "+０７０",
            "",
        ] {
            let err = repo
                .create(new_modern("eva@example.com", "eva").phone(raw))
                .await
                .expect_err("not E.164");
            assert!(
                matches!(&err, RepoError::InvalidValue { field, .. } if field == "phone"),
                "{backend:?}: {raw:?}: {err:?}"
            );
        }
        // The phone column is a contract field: never written through `extra`.
        let err = repo
            .create(new_modern("eva@example.com", "eva").extra("phone", "+15550100199"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::InvalidValue { field, .. } if field == "phone"),
            "{backend:?}: {err:?}"
        );
        assert_eq!(users::Entity::find().count(&tdb.db).await.unwrap(), 1);

        let fred = repo
            .create(new_modern("fred@example.com", "fred"))
            .await
            .unwrap();
        let set = |phone: &str| UserUpdate {
            phone: Some(phone.to_owned()),
            ..Default::default()
        };
        let fred = repo
            .update(&fred.user_id(), set("+15550100199"))
            .await
            .unwrap();
        assert_eq!(fred.phone(), Some("+15550100199"));
        let found = repo.find_by_phone("+15550100199").await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(fred.id), "{backend:?}");
        let err = repo
            .update(&fred.user_id(), set("+46701234567"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::Duplicate { field } if field == "phone"),
            "{backend:?}: {err:?}"
        );
        let err = repo
            .update(&fred.user_id(), set("+1 555 010 0199"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::InvalidValue { field, .. } if field == "phone"),
            "{backend:?}: {err:?}"
        );
        // Re-saving one's own number is not a duplicate.
        repo.update(&fred.user_id(), set("+15550100199"))
            .await
            .unwrap();
        let reread = repo.find_by_id(&eve.user_id()).await.unwrap().unwrap();
        assert_eq!(reread.phone(), Some("+46701234567"));
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_phone_give_one_user_and_typed_duplicates() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = modern(backend, "phone_race").await else {
            continue;
        };
        let attempts = (0..8).map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let new = new_modern(&format!("racer{i}@example.com"), &format!("racer{i}"));
                repo.create(new.phone("+15550100199")).await
            })
        });
        let mut created = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(_) => created += 1,
                Err(RepoError::Duplicate { field }) => assert_eq!(field, "phone", "{backend:?}"),
                Err(other) => panic!("{backend:?}: raw error leaked: {other:?}"),
            }
        }
        assert_eq!(created, 1, "{backend:?}");
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn a_table_without_a_phone_column_finds_nobody_by_phone_and_refuses_one() {
    for backend in Backend::ALL {
        let Some((tdb, repo)) = legacy(backend, "phone_missing").await else {
            continue;
        };
        assert!(!repo.schema().has(LogicalField::Phone));
        let user = repo
            .create(NewUser::new(HASH).email("kim@example.com"))
            .await
            .unwrap();
        assert_eq!(user.phone(), None);
        assert!(user.contract().phone.is_none());
        assert!(repo.find_by_phone("+46701234567").await.unwrap().is_none());
        let err = repo
            .create(
                NewUser::new(HASH)
                    .email("lee@example.com")
                    .phone("+46701234567"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::InvalidValue { field, .. } if field == "phone"),
            "{backend:?}: {err:?}"
        );
        let update = UserUpdate {
            phone: Some("+46701234567".into()),
            ..Default::default()
        };
        let err = repo.update(&user.user_id(), update).await.unwrap_err();
        assert!(
            matches!(&err, RepoError::InvalidValue { field, .. } if field == "phone"),
            "{backend:?}: {err:?}"
        );
        assert_eq!(accounts::Entity::find().count(&tdb.db).await.unwrap(), 1);
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn the_facade_repository_handle_finds_users_by_phone() {
    // `auth.repo()` is the announcing wrapper around the app's repository: it must forward
    // the lookup, not answer the trait's default `None`.
    let app = crudauth_tests::http::app("phone_facade").await;
    let repo = app.auth.repo();
    let ann = repo
        .create(new_modern("ann@example.com", "ann").phone("+46701234567"))
        .await
        .unwrap();
    let found = repo.find_by_phone("+46701234567").await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(ann.id));
    assert!(repo.find_by_phone("+15550100199").await.unwrap().is_none());
    let update = UserUpdate {
        phone: Some("+15550100199".into()),
        ..Default::default()
    };
    repo.update(&ann.user_id(), update).await.unwrap();
    let found = repo.find_by_phone("+15550100199").await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(ann.id));
    assert!(repo.find_by_phone("+46701234567").await.unwrap().is_none());
}
