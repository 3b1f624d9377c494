//! The OAuth backend matrix: the link table (`SeaLinkStore`) on SQLite, PostgreSQL and
//! MariaDB, migrated up and down by an app's migrator; and a whole sign-in with the pending
//! state in every store of the matrix (memory, the database store, Redis) and the links in
//! the database.

use std::sync::Arc;

use crudauth::UserRecord;
use crudauth::oauth::{LinkStore, OAuthConfig, OAuthLink, ProviderConfig};
use crudauth_sea::{CreateLinkTable, LINK_TABLE, SeaLinkStore, SeaUserRepository};
use crudauth_tests::http::{Req, User, default_builder, demo_routes};
use crudauth_tests::models::users;
use crudauth_tests::oauth_provider::{CLIENT_ID, CLIENT_SECRET, FakeIdp, Person};
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use sea_orm_migration::prelude::*;

struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateLinkTable::default())]
    }
}

#[tokio::test]
async fn the_link_table_keeps_one_user_per_provider_account_on_every_database() {
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "oauth_link_table").await else {
            continue;
        };
        Migrator::up(&tdb.db, None).await.unwrap();
        let links = SeaLinkStore::new(tdb.db.clone(), LINK_TABLE);
        let ann = OAuthLink::new("github", "583231", "7", Some("ann@example.com".into()), 100);
        assert!(links.insert(&ann).await.unwrap(), "{backend:?}");
        // The provider account is taken, whoever asks.
        let thief = OAuthLink::new("github", "583231", "8", None, 101);
        assert!(
            !links.insert(&thief).await.unwrap(),
            "{backend:?}: (provider, subject) is unique"
        );
        // One link per provider per user.
        let second = OAuthLink::new("github", "999", "7", None, 102);
        assert!(
            !links.insert(&second).await.unwrap(),
            "{backend:?}: (user, provider) is unique"
        );
        let google = OAuthLink::new("google", "g-1", "7", None, 103);
        assert!(links.insert(&google).await.unwrap());
        assert_eq!(
            links.find("github", "583231").await.unwrap(),
            Some(ann.clone())
        );
        assert_eq!(links.find("github", "nope").await.unwrap(), None);
        links.touch("github", "583231", 500).await.unwrap();
        let mine = links.for_user("7").await.unwrap();
        assert_eq!(
            mine.iter().map(|l| l.provider.as_str()).collect::<Vec<_>>(),
            ["github", "google"]
        );
        assert_eq!(mine[0].last_used_at, 500);
        assert_eq!(mine[0].email.as_deref(), Some("ann@example.com"));
        assert!(links.delete("7", "github").await.unwrap());
        assert!(!links.delete("7", "github").await.unwrap());
        assert!(
            links.insert(&thief).await.unwrap(),
            "{backend:?}: free again after the delete"
        );
        // Subjects are compared exactly: not case-, accent- or trailing-space-insensitively
        // as MariaDB's default collation would.
        let alice = OAuthLink::new("oidc", "alice", "1", None, 1);
        assert!(links.insert(&alice).await.unwrap());
        for variant in ["ALICE", "Alice", "alice ", "al\u{ee}ce"] {
            assert_eq!(
                links.find("oidc", variant).await.unwrap(),
                None,
                "{backend:?}: {variant:?}"
            );
        }
        let other = OAuthLink::new("oidc", "Alice", "2", None, 2);
        assert!(
            links.insert(&other).await.unwrap(),
            "{backend:?}: another subject, another link"
        );
        assert_eq!(
            links
                .find("oidc", "Alice")
                .await
                .unwrap()
                .map(|l| l.user_id),
            Some("2".into())
        );
        assert_eq!(links.delete_all("1").await.unwrap(), 1);
        assert_eq!(links.find("oidc", "alice").await.unwrap(), None);
        Migrator::down(&tdb.db, None).await.unwrap();
        assert!(
            links.find("github", "583231").await.is_err(),
            "{backend:?}: the table is gone"
        );
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn a_provider_sign_in_works_with_every_store_and_database_of_the_matrix() {
    let idp = FakeIdp::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, "oauth_matrix_db").await else {
            continue;
        };
        tdb.create_table(users::Entity).await;
        SeaLinkStore::create_table(&tdb.db, LINK_TABLE)
            .await
            .unwrap();
        for store in all_stores("oauth_matrix").await {
            let links = Arc::new(SeaLinkStore::new(tdb.db.clone(), LINK_TABLE));
            let config = OAuthConfig::new("http://127.0.0.1:8000")
                .provider(ProviderConfig::oidc(
                    "oidc",
                    &idp.base,
                    CLIENT_ID,
                    CLIENT_SECRET,
                ))
                .links(links);
            let repo = SeaUserRepository::<User>::new(tdb.db.clone());
            let auth = default_builder(repo)
                .store(store.store.clone())
                .oauth(config)
                .build()
                .unwrap();
            let app = demo_routes(&auth);
            let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
            idp.sign_in_as(Person::verified(&email, &email));
            let r = crudauth_tests::http::send(&app, Req::get("/oauth/oidc/authorize")).await;
            assert_eq!(r.status, 307, "{backend:?}/{}", store.name);
            let cookie = r.cookies()["oauth_state"].0.clone();
            let at = http
                .get(r.headers["location"].to_str().unwrap())
                .send()
                .await
                .unwrap();
            let back = at.headers()["location"]
                .to_str()
                .unwrap()
                .replace("http://127.0.0.1:8000", "");
            let done = crudauth_tests::http::send(
                &app,
                Req::get(&back).header("cookie", format!("oauth_state={cookie}")),
            )
            .await;
            assert!(
                done.cookies().contains_key("session_id"),
                "{backend:?}/{}: {:?}",
                store.name,
                done.headers.get("location")
            );
            let user = auth
                .repo()
                .find_by_login(&email)
                .await
                .unwrap()
                .expect("created");
            let linked = auth
                .oauth()
                .unwrap()
                .links_of(&user.user_id())
                .await
                .unwrap();
            assert_eq!(linked.len(), 1, "{backend:?}/{}", store.name);
            // The state was single use in this store too.
            let again = crudauth_tests::http::send(
                &app,
                Req::get(&back).header("cookie", format!("oauth_state={cookie}")),
            )
            .await;
            assert!(
                again.headers["location"]
                    .to_str()
                    .unwrap()
                    .contains("error=invalid_state"),
                "{backend:?}/{}",
                store.name
            );
            store.cleanup().await;
        }
        tdb.cleanup().await;
    }
}
