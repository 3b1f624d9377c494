//! The database store: crudauth's server-side state in two tables of the application's own
//! database (SQLite, PostgreSQL, MySQL/MariaDB).
//!
//! - `crudauth_records` (`k` binary key, `v` blob, `expires_at` unix ms or NULL) holds TTL'd
//!   records and the per-user index (as records under an index prefix);
//! - `crudauth_counters` (`k`, `n`, `expires_at`) holds fixed-window counters.
//!
//! Every operation is one atomic statement, or a short transaction on MySQL/MariaDB where
//! the dialect lacks `RETURNING`; MySQL deadlocks are retried. Expired rows are never
//! returned and are purged in the background now and then; a failed purge is logged and
//! never fails a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crudauth::store::{Store, StoreError};
use sea_orm::sea_query::{Alias, ColumnDef, Table};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement, TransactionTrait, Value,
};

/// Table names of the database store.
///
/// ```
/// let names = crudauth_sea::StoreTables::default();
/// assert_eq!(names.records, "crudauth_records");
/// ```
#[derive(Clone, Debug)]
pub struct StoreTables {
    /// The records table (default `crudauth_records`).
    pub records: String,
    /// The counters table (default `crudauth_counters`).
    pub counters: String,
}

impl Default for StoreTables {
    fn default() -> Self {
        StoreTables {
            records: "crudauth_records".into(),
            counters: "crudauth_counters".into(),
        }
    }
}

/// A [`Store`] in the application's database.
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
/// use crudauth_sea::{DatabaseStore, StoreTables};
/// let tables = StoreTables::default();
/// DatabaseStore::create_tables(&db, &tables).await?;
/// let store = DatabaseStore::new(db, tables);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DatabaseStore {
    db: DatabaseConnection,
    tables: Arc<StoreTables>,
    writes: Arc<AtomicU64>,
}

impl std::fmt::Debug for DatabaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseStore")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

/// Every this many writes, expired rows are purged in the background.
const PURGE_EVERY: u64 = 2000;
const INDEX: &[u8] = b"\x00idx\x00";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn deadline(ttl: Option<Duration>) -> Value {
    match ttl {
        Some(t) => Value::BigInt(Some(
            now_ms().saturating_add(t.as_millis().min(i64::MAX as u128) as i64),
        )),
        None => Value::BigInt(None),
    }
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(Some(b.to_vec()))
}

fn fault(e: DbErr) -> StoreError {
    StoreError::new(format!("database store: {e}"))
}

fn is_deadlock(e: &DbErr) -> bool {
    let text = e.to_string();
    text.contains("Deadlock") || text.contains("deadlock") || text.contains("1213")
}

impl DatabaseStore {
    /// A store over `db` using `tables` (create them first with [`DatabaseStore::create_tables`]).
    pub fn new(db: DatabaseConnection, tables: StoreTables) -> Self {
        DatabaseStore {
            db,
            tables: Arc::new(tables),
            writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Creates the two tables if they do not exist.
    pub async fn create_tables(db: &DatabaseConnection, tables: &StoreTables) -> Result<(), DbErr> {
        let [records, counters] = table_statements(tables);
        db.execute(&records).await?;
        db.execute(&counters).await?;
        Ok(())
    }
    fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// SQL with `?` placeholders rewritten to `$n` on PostgreSQL, `{r}`/`{c}` to the tables.
    fn stmt(&self, sql: &str, values: Vec<Value>) -> Statement {
        let sql = sql
            .replace("{r}", &self.quote(&self.tables.records))
            .replace("{c}", &self.quote(&self.tables.counters));
        let sql = if self.backend() == DatabaseBackend::Postgres {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for ch in sql.chars() {
                if ch == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(ch);
                }
            }
            out
        } else {
            sql
        };
        Statement::from_sql_and_values(self.backend(), sql, values)
    }

    fn quote(&self, name: &str) -> String {
        match self.backend() {
            DatabaseBackend::MySql => format!("`{}`", name.replace('`', "")),
            _ => format!("\"{}\"", name.replace('"', "")),
        }
    }

    async fn retry<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, DbErr>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < 3 && is_deadlock(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
                }
                Err(e) => return Err(fault(e)),
            }
        }
    }

    fn wrote(&self) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            let store = self.clone();
            tokio::spawn(async move {
                if let Err(e) = store.purge_expired().await {
                    tracing::warn!(error = %e, "purging expired crudauth rows failed; will retry later");
                }
            });
        }
    }

    async fn upsert_record(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let sql = if self.backend() == DatabaseBackend::MySql {
            "INSERT INTO {r} (k, v, expires_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v), expires_at = VALUES(expires_at)"
        } else {
            "INSERT INTO {r} (k, v, expires_at) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at"
        };
        self.retry(|| {
            self.db
                .execute_raw(self.stmt(sql, vec![bytes(key), bytes(value), deadline(ttl)]))
        })
        .await?;
        self.wrote();
        Ok(())
    }
}

/// The `CREATE TABLE IF NOT EXISTS` statements of the two tables.
pub(crate) fn table_statements(
    tables: &StoreTables,
) -> [sea_orm::sea_query::TableCreateStatement; 2] {
    // Both tables: a binary key and an expiry in unix milliseconds, around one payload column.
    let table = |name: &str, payload: &mut ColumnDef, expiry_nullable: bool| {
        let mut expires_at = ColumnDef::new(Alias::new("expires_at"));
        expires_at.big_integer();
        if expiry_nullable {
            expires_at.null();
        } else {
            expires_at.not_null();
        }
        Table::create()
            .table(Alias::new(name))
            .if_not_exists()
            .col(
                ColumnDef::new(Alias::new("k"))
                    .var_binary(255)
                    .not_null()
                    .primary_key(),
            )
            .col(payload.not_null())
            .col(&mut expires_at)
            .to_owned()
    };
    let records = table(
        &tables.records,
        ColumnDef::new(Alias::new("v")).blob(),
        true,
    );
    let counters = table(
        &tables.counters,
        ColumnDef::new(Alias::new("n")).big_integer(),
        false,
    );
    [records, counters]
}

fn live(expires: Option<i64>) -> bool {
    expires.is_none_or(|e| e > now_ms())
}

#[async_trait::async_trait]
impl Store for DatabaseStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .retry(|| {
                self.db.query_one_raw(self.stmt(
                    "SELECT v, expires_at FROM {r} WHERE k = ?",
                    vec![bytes(key.as_bytes())],
                ))
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let v: Vec<u8> = row.try_get("", "v").map_err(fault)?;
        let e: Option<i64> = row.try_get("", "expires_at").map_err(fault)?;
        Ok(live(e).then_some(v))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; keys.len()].join(", ");
        let sql = format!("SELECT k, v, expires_at FROM {{r}} WHERE k IN ({marks})");
        let rows = self
            .retry(|| {
                let values = keys.iter().map(|k| bytes(k.as_bytes())).collect();
                self.db.query_all_raw(self.stmt(&sql, values))
            })
            .await?;
        let mut out = vec![None; keys.len()];
        for row in rows {
            let k: Vec<u8> = row.try_get("", "k").map_err(fault)?;
            let v: Vec<u8> = row.try_get("", "v").map_err(fault)?;
            let e: Option<i64> = row.try_get("", "expires_at").map_err(fault)?;
            if !live(e) {
                continue;
            }
            for (slot, key) in out.iter_mut().zip(keys) {
                if key.as_bytes() == k.as_slice() {
                    *slot = Some(v.clone());
                }
            }
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.upsert_record(key.as_bytes(), value, ttl).await
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let k = key.as_bytes();
        // An expired row does not count as present.
        self.retry(|| {
            self.db.execute_raw(self.stmt(
                "DELETE FROM {r} WHERE k = ? AND expires_at IS NOT NULL AND expires_at <= ?",
                vec![bytes(k), Value::BigInt(Some(now_ms()))],
            ))
        })
        .await?;
        let sql = if self.backend() == DatabaseBackend::MySql {
            "INSERT IGNORE INTO {r} (k, v, expires_at) VALUES (?, ?, ?)"
        } else {
            "INSERT INTO {r} (k, v, expires_at) VALUES (?, ?, ?) ON CONFLICT (k) DO NOTHING"
        };
        let result = self
            .retry(|| {
                self.db
                    .execute_raw(self.stmt(sql, vec![bytes(k), bytes(value), deadline(ttl)]))
            })
            .await?;
        self.wrote();
        Ok(result.rows_affected() == 1)
    }

    async fn get_and_delete(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = key.as_bytes();
        if self.backend() == DatabaseBackend::MySql {
            // No RETURNING on MySQL: lock the row, read it, delete it, in one transaction.
            return self
                .retry(|| async {
                    let txn = self.db.begin().await?;
                    let row = txn
                        .query_one_raw(self.stmt(
                            "SELECT v, expires_at FROM {r} WHERE k = ? FOR UPDATE",
                            vec![bytes(k)],
                        ))
                        .await?;
                    let out = match row {
                        Some(row) => {
                            txn.execute_raw(
                                self.stmt("DELETE FROM {r} WHERE k = ?", vec![bytes(k)]),
                            )
                            .await?;
                            let v: Vec<u8> = row.try_get("", "v")?;
                            let e: Option<i64> = row.try_get("", "expires_at")?;
                            live(e).then_some(v)
                        }
                        None => None,
                    };
                    txn.commit().await?;
                    Ok(out)
                })
                .await;
        }
        let row = self
            .retry(|| {
                self.db.query_one_raw(self.stmt(
                    "DELETE FROM {r} WHERE k = ? RETURNING v, expires_at",
                    vec![bytes(k)],
                ))
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let v: Vec<u8> = row.try_get("", "v").map_err(fault)?;
        let e: Option<i64> = row.try_get("", "expires_at").map_err(fault)?;
        Ok(live(e).then_some(v))
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let result = self
            .retry(|| {
                self.db.execute_raw(self.stmt(
                    "UPDATE {r} SET v = ?, expires_at = ? WHERE k = ? AND v = ? AND (expires_at IS NULL OR expires_at > ?)",
                    vec![bytes(new), deadline(ttl), bytes(key.as_bytes()), bytes(expected), Value::BigInt(Some(now_ms()))],
                ))
            })
            .await?;
        self.wrote();
        Ok(result.rows_affected() == 1)
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let k = key.as_bytes();
        let a = self
            .retry(|| {
                self.db
                    .execute_raw(self.stmt("DELETE FROM {r} WHERE k = ?", vec![bytes(k)]))
            })
            .await?;
        let b = self
            .retry(|| {
                self.db
                    .execute_raw(self.stmt("DELETE FROM {c} WHERE k = ?", vec![bytes(k)]))
            })
            .await?;
        Ok(a.rows_affected() + b.rows_affected() > 0)
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
        let k = key.as_bytes();
        let now = now_ms();
        let end = deadline(Some(ttl));
        let n = if self.backend() == DatabaseBackend::MySql {
            self.retry(|| async {
                let txn = self.db.begin().await?;
                txn.execute_raw(self.stmt(
                    "INSERT INTO {c} (k, n, expires_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE \
                     n = IF(expires_at <= ?, VALUES(n), n + VALUES(n)), \
                     expires_at = IF(expires_at <= ?, VALUES(expires_at), expires_at)",
                    vec![
                        bytes(k),
                        Value::BigInt(Some(delta)),
                        end.clone(),
                        Value::BigInt(Some(now)),
                        Value::BigInt(Some(now)),
                    ],
                ))
                .await?;
                let row = txn
                    .query_one_raw(self.stmt("SELECT n FROM {c} WHERE k = ?", vec![bytes(k)]))
                    .await?;
                txn.commit().await?;
                row.ok_or_else(|| DbErr::RecordNotFound("counter".into()))?
                    .try_get::<i64>("", "n")
            })
            .await?
        } else {
            let table = self.quote(&self.tables.counters);
            let sql = format!(
                "INSERT INTO {{c}} (k, n, expires_at) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET \
                 n = CASE WHEN {table}.expires_at <= ? THEN excluded.n ELSE {table}.n + excluded.n END, \
                 expires_at = CASE WHEN {table}.expires_at <= ? THEN excluded.expires_at ELSE {table}.expires_at END \
                 RETURNING n"
            );
            let row = self
                .retry(|| {
                    self.db.query_one_raw(self.stmt(
                        &sql,
                        vec![
                            bytes(k),
                            Value::BigInt(Some(delta)),
                            end.clone(),
                            Value::BigInt(Some(now)),
                            Value::BigInt(Some(now)),
                        ],
                    ))
                })
                .await?;
            row.ok_or_else(|| StoreError::new("counter upsert returned no row"))?
                .try_get::<i64>("", "n")
                .map_err(fault)?
        };
        self.wrote();
        Ok(n)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let k = key.as_bytes();
        let now = now_ms();
        let left = |e: i64| Duration::from_millis((e - now).max(0) as u64);
        let row = self
            .retry(|| {
                self.db.query_one_raw(
                    self.stmt("SELECT expires_at FROM {r} WHERE k = ?", vec![bytes(k)]),
                )
            })
            .await?;
        if let Some(row) = row {
            let e: Option<i64> = row.try_get("", "expires_at").map_err(fault)?;
            match e {
                None => return Ok(Some(Duration::MAX)),
                Some(e) if e > now => return Ok(Some(left(e))),
                Some(_) => {}
            }
        }
        let row = self
            .retry(|| {
                self.db.query_one_raw(
                    self.stmt("SELECT expires_at FROM {c} WHERE k = ?", vec![bytes(k)]),
                )
            })
            .await?;
        Ok(match row {
            Some(row) => {
                let e: i64 = row.try_get("", "expires_at").map_err(fault)?;
                (e > now).then(|| left(e))
            }
            None => None,
        })
    }

    async fn index_add(&self, index: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let key = [INDEX, index.as_bytes(), b"\x00", member.as_bytes()].concat();
        self.upsert_record(&key, b"", Some(ttl)).await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        let key = [INDEX, index.as_bytes(), b"\x00", member.as_bytes()].concat();
        self.retry(|| {
            self.db
                .execute_raw(self.stmt("DELETE FROM {r} WHERE k = ?", vec![bytes(&key)]))
        })
        .await?;
        Ok(())
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let start = [INDEX, index.as_bytes(), b"\x00"].concat();
        let end = [INDEX, index.as_bytes(), b"\x01"].concat();
        let rows = self
            .retry(|| {
                self.db.query_all_raw(self.stmt(
                    "SELECT k FROM {r} WHERE k >= ? AND k < ? AND (expires_at IS NULL OR expires_at > ?)",
                    vec![bytes(&start), bytes(&end), Value::BigInt(Some(now_ms()))],
                ))
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let k: Vec<u8> = row.try_get("", "k").map_err(fault)?;
            if let Some(member) = k.get(start.len()..) {
                out.push(String::from_utf8_lossy(member).into_owned());
            }
        }
        Ok(out)
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = Value::BigInt(Some(now_ms()));
        let a = self
            .retry(|| {
                self.db.execute_raw(self.stmt(
                    "DELETE FROM {r} WHERE expires_at IS NOT NULL AND expires_at <= ?",
                    vec![now.clone()],
                ))
            })
            .await?;
        let b = self
            .retry(|| {
                self.db.execute_raw(
                    self.stmt("DELETE FROM {c} WHERE expires_at <= ?", vec![now.clone()]),
                )
            })
            .await?;
        Ok(a.rows_affected() + b.rows_affected())
    }
}

/// The database store's tables as a SeaORM migration (feature `migration`), for apps that
/// manage their schema with a migrator.
///
/// ```no_run
/// use sea_orm_migration::prelude::*;
/// struct Migrator;
/// #[async_trait::async_trait]
/// impl MigratorTrait for Migrator {
///     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
///         vec![Box::new(crudauth_sea::migration::CreateStoreTables::default())]
///     }
/// }
/// ```
#[cfg(feature = "migration")]
pub mod migration {
    use sea_orm_migration::prelude::*;

    use super::{StoreTables, table_statements};

    /// Creates (and on `down`, drops) the records and counters tables.
    #[derive(Debug, Default)]
    pub struct CreateStoreTables {
        /// The table names.
        pub tables: StoreTables,
    }

    impl MigrationName for CreateStoreTables {
        fn name(&self) -> &str {
            "m20261123_000001_crudauth_store_tables"
        }
    }

    // The trait's signatures elide SchemaManager's lifetime; spelling it out breaks the
    // async-trait expansion, so the lint is allowed here.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateStoreTables {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let [records, counters] = table_statements(&self.tables);
            manager.create_table(records).await?;
            manager.create_table(counters).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for name in [&self.tables.counters, &self.tables.records] {
                manager
                    .drop_table(Table::drop().table(Alias::new(name)).if_exists().to_owned())
                    .await?;
            }
            Ok(())
        }
    }
}
