//! The users admin's repository operations on the backend matrix (SQLite always,
//! PostgreSQL and MariaDB when configured; a configured server that cannot be reached fails
//! the test): the filtered, paged listing, the count of active superusers and deletion,
//! through `crudauth-sea`, on the modern `users` model and on the legacy `members` table
//! whose flags are read through functions.

use crudauth::user::{NewUser, RepoError, UserFilter, UserRecord, UserRepository, UserUpdate};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::models::{members, users};
use crudauth_tests::{Backend, open};
use sea_orm::{ActiveModelTrait, Set};

fn names(page: &[users::Model]) -> Vec<&str> {
    page.iter().map(|u| u.username.as_str()).collect()
}

#[tokio::test]
async fn list_filter_page_count_and_delete_on_every_database() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "users_admin_matrix").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        let repo = SeaUserRepository::<users::Model>::new(tdb.db.clone());
        // (username, email, active, superuser)
        let rows = [
            ("root", "root@example.com", true, true),
            ("ann", "ann@example.com", true, false),
            ("anna", "Anna@Example.com", true, false),
            ("pct", "a%b@example.com", true, false),
            ("und", "a_b@example.com", false, false),
            ("ops", "ops@example.com", false, true),
            ("sre", "sre@example.com", true, true),
        ];
        let mut ids = Vec::new();
        for (name, email, active, superuser) in rows {
            let mut new = NewUser::new("$argon2id$x").email(email).username(name);
            new.is_active = active;
            new.is_superuser = superuser;
            ids.push(repo.create(new).await.unwrap().user_id());
        }
        let list = async |filter: UserFilter| {
            let page = repo.list_users(&filter).await.unwrap();
            let mut got = page.users;
            got.sort_by(|a, b| a.username.cmp(&b.username));
            (got, page.total)
        };
        let (all, total) = list(UserFilter::page(0, 100)).await;
        assert_eq!((all.len(), total), (7, 7), "{backend:?}");

        // Pages follow the id order and add up to the whole.
        let mut paged = Vec::new();
        for offset in [0, 3, 6] {
            let page = repo.list_users(&UserFilter::page(offset, 3)).await.unwrap();
            assert_eq!(page.total, 7, "{backend:?}");
            assert!(page.users.len() <= 3);
            paged.extend(page.users.into_iter().map(|u| u.user_id()));
        }
        let mut sorted = paged.clone();
        sorted.sort();
        assert_eq!(paged, sorted, "{backend:?}: ascending ids");
        assert_eq!(paged.len(), 7);
        let beyond = repo.list_users(&UserFilter::page(1000, 10)).await.unwrap();
        assert!(beyond.users.is_empty() && beyond.total == 7, "{backend:?}");

        let prefix = |p: &str| UserFilter {
            email_prefix: Some(p.into()),
            ..UserFilter::page(0, 100)
        };
        let (got, total) = list(prefix("AN")).await;
        assert_eq!(
            (names(&got), total),
            (vec!["ann", "anna"], 2),
            "{backend:?}"
        );
        let (got, _) = list(prefix("a%")).await;
        assert_eq!(names(&got), ["pct"], "{backend:?}: % is a plain character");
        let (got, _) = list(prefix("a_")).await;
        assert_eq!(names(&got), ["und"], "{backend:?}: _ is a plain character");
        let (got, _) = list(prefix("%")).await;
        assert!(got.is_empty(), "{backend:?}");
        let (got, _) = list(prefix("a\\")).await;
        assert!(
            got.is_empty(),
            "{backend:?}: a backslash is a plain character"
        );

        let flags = |active: Option<bool>, superuser: Option<bool>| UserFilter {
            is_active: active,
            is_superuser: superuser,
            ..UserFilter::page(0, 100)
        };
        let (got, _) = list(flags(None, Some(true))).await;
        assert_eq!(names(&got), ["ops", "root", "sre"], "{backend:?}");
        let (got, _) = list(flags(Some(false), None)).await;
        assert_eq!(names(&got), ["ops", "und"], "{backend:?}");
        let (got, total) = list(flags(Some(true), Some(true))).await;
        assert_eq!(
            (names(&got), total),
            (vec!["root", "sre"], 2),
            "{backend:?}"
        );
        let filtered = UserFilter {
            email_prefix: Some("a".into()),
            is_active: Some(true),
            ..UserFilter::page(1, 1)
        };
        let page = repo.list_users(&filtered).await.unwrap();
        assert_eq!((page.users.len(), page.total), (1, 3), "{backend:?}");

        assert_eq!(
            repo.count_active_superusers().await.unwrap(),
            2,
            "{backend:?}"
        );
        let sre = ids[6].clone();
        repo.update(
            &sre,
            UserUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            repo.count_active_superusers().await.unwrap(),
            1,
            "{backend:?}"
        );

        repo.delete_user(&sre).await.unwrap();
        assert!(
            repo.find_by_id(&sre).await.unwrap().is_none(),
            "{backend:?}"
        );
        assert!(
            matches!(repo.delete_user(&sre).await, Err(RepoError::NotFound)),
            "{backend:?}"
        );
        let other_kind = crudauth::UserId::Int(1);
        assert!(matches!(
            repo.delete_user(&other_kind).await,
            Err(RepoError::NotFound)
        ));
        assert_eq!(
            repo.list_users(&UserFilter::page(0, 100))
                .await
                .unwrap()
                .total,
            6
        );

        assert_eq!(repo.extra_columns(), ["bio"], "{backend:?}");
        let ann = repo.find_by_id(&ids[1]).await.unwrap().unwrap();
        assert_eq!(repo.read_extra(&ann, "bio"), Some(serde_json::Value::Null));
        assert_eq!(
            repo.read_extra(&ann, "password"),
            None,
            "never a contract column"
        );
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn flags_read_through_functions_are_counted_in_rust_and_refused_as_filters() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "users_admin_legacy").await else {
            continue;
        };
        tdb.create_table(members::Entity).await;
        // (role, deleted_at): admins have role >= 10; a soft delete deactivates.
        for (i, (role, deleted_at)) in [(10, None), (12, None), (20, Some(1)), (0, None), (3, None)]
            .into_iter()
            .enumerate()
        {
            members::ActiveModel {
                email_address: Set(format!("m{i}@example.com")),
                passwd: Set("$argon2id$x".into()),
                deleted_at: Set(deleted_at),
                role: Set(role),
                status: Set("pending".into()),
                ..Default::default()
            }
            .insert(&tdb.db)
            .await
            .unwrap();
        }
        let repo = SeaUserRepository::<members::Model>::new(tdb.db.clone());
        assert_eq!(
            repo.count_active_superusers().await.unwrap(),
            2,
            "{backend:?}"
        );
        let page = repo.list_users(&UserFilter::page(0, 10)).await.unwrap();
        assert_eq!((page.users.len(), page.total), (5, 5), "{backend:?}");
        for filter in [
            UserFilter {
                is_active: Some(true),
                ..UserFilter::page(0, 10)
            },
            UserFilter {
                is_superuser: Some(true),
                ..UserFilter::page(0, 10)
            },
        ] {
            let refused = repo.list_users(&filter).await;
            assert!(
                matches!(refused, Err(RepoError::InvalidValue { .. })),
                "{backend:?}: {refused:?}"
            );
        }
        tdb.cleanup().await;
    }
}
