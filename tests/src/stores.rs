//! The store matrix for HTTP-level attack tests: the memory store always, the database
//! store on every database of the matrix, Redis when `CRUDAUTH_TEST_REDIS_URL` is set. A
//! configured service that cannot be reached is a failure, never a skip; an unconfigured one
//! is reported loudly on stderr.

use std::io::Write;
use std::sync::Arc;

use crudauth::store::{MemoryStore, RedisStore, Store};
use crudauth_sea::{DatabaseStore, StoreTables};

use crate::{Backend, TestDb, open};

/// One store of the matrix, with the database it lives in (if any) to clean up.
pub struct MatrixStore {
    /// A name for assertion messages ("memory", "database:Postgres", "redis").
    pub name: String,
    /// The store.
    pub store: Arc<dyn Store>,
    db: Option<TestDb>,
}

impl MatrixStore {
    /// Drops the store's database, if it has one.
    pub async fn cleanup(self) {
        if let Some(db) = self.db {
            db.cleanup().await;
        }
    }
}

/// Every store of the matrix for the test `test`.
pub async fn all_stores(test: &str) -> Vec<MatrixStore> {
    let mut out = vec![MatrixStore {
        name: "memory".into(),
        store: Arc::new(MemoryStore::new()),
        db: None,
    }];
    for backend in Backend::ALL {
        let Some(tdb) = open(backend, test).await else {
            continue;
        };
        let tables = StoreTables::default();
        DatabaseStore::create_tables(&tdb.db, &tables)
            .await
            .expect("create the store tables");
        out.push(MatrixStore {
            name: format!("database:{backend:?}"),
            store: Arc::new(DatabaseStore::new(tdb.db.clone(), tables)),
            db: Some(tdb),
        });
    }
    match std::env::var("CRUDAUTH_TEST_REDIS_URL") {
        Ok(url) => {
            let prefix = format!("crudauth-test:{test}:{}:", uuid::Uuid::new_v4().simple());
            let store = RedisStore::connect(&url, &prefix)
                .await
                .unwrap_or_else(|e| {
                    panic!("CRUDAUTH_TEST_REDIS_URL is set but Redis is unreachable: {e}")
                });
            out.push(MatrixStore {
                name: "redis".into(),
                store: Arc::new(store),
                db: None,
            });
        }
        Err(_) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test} on Redis: CRUDAUTH_TEST_REDIS_URL is not set (set it to run Redis)"
            );
        }
    }
    out
}
