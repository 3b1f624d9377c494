//! The API key table (feature `api-keys`): `crudauth_api_keys`, one row per key, so the
//! user table needs no column for them.
//!
//! | column | type | |
//! |---|---|---|
//! | `id_key` | char(64) | primary key: SHA-256 hex of the key's public id |
//! | `user_key` | char(64) | indexed: SHA-256 hex of the owner's id |
//! | `key_id` | varchar(32) | the public id (16 hex digits) |
//! | `user_id`, `created_by` | varchar(255) | the owner's and the maker's ids, textual |
//! | `name` | varchar(255) | the name the owner gave it |
//! | `scopes`, `allowed_ips` | text | JSON arrays of strings |
//! | `secret_hash`, `previous_hash` | char(64) | HMAC-SHA256 hex of the key (and of the one a rotation replaced) |
//! | `previous_until` | bigint | unix seconds until which the previous key works |
//! | `epoch` | bigint | the owner's revocation epoch at creation |
//! | `service` | boolean | a service account's key |
//! | `created_at`, `expires_at`, `last_used_at` | bigint | unix seconds |
//! | `tenant` | text, nullable | the tenant the key was made in |
//!
//! Lookups go through the digests, never through text columns (MySQL and MariaDB compare
//! text case-insensitively under their default collations). A rotation is `UPDATE ... WHERE
//! id_key = ? AND secret_hash = ?`: of two rotations of one key, one wins; a use is written
//! only when the last one is older than a minute, whichever process sees it.

use crudauth::api_key::{ApiKeyStore, StoredApiKey};
use crudauth::store::StoreError;
use sea_orm::sea_query::{
    Alias, ColumnDef, Cond, Expr, ExprTrait, Index, IndexCreateStatement, Query, SelectStatement,
    Table, TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, SqlErr};

use crate::digest::digest;

/// The default name of the API key table.
pub const API_KEY_TABLE: &str = "crudauth_api_keys";

/// API keys in the application's database.
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
/// use crudauth_sea::{API_KEY_TABLE, SeaApiKeyStore};
/// SeaApiKeyStore::create_table(&db, API_KEY_TABLE).await?;
/// let store = std::sync::Arc::new(SeaApiKeyStore::new(db, API_KEY_TABLE));
/// let config = crudauth::api_key::ApiKeyConfig::default().store(store);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SeaApiKeyStore {
    db: DatabaseConnection,
    table: String,
}

fn fault(e: DbErr) -> StoreError {
    StoreError::new(format!("api key table: {e}"))
}

fn t(name: &str) -> Alias {
    Alias::new(name)
}

const COLUMNS: [&str; 17] = [
    "id_key",
    "user_key",
    "key_id",
    "user_id",
    "name",
    "scopes",
    "secret_hash",
    "previous_hash",
    "previous_until",
    "allowed_ips",
    "epoch",
    "service",
    "created_by",
    "created_at",
    "expires_at",
    "last_used_at",
    "tenant",
];

fn id_key(id: &str) -> String {
    digest(&["api-key", id])
}

fn user_key(user_id: &str) -> String {
    digest(&["api-key-user", user_id])
}

/// The table and its `user_key` index.
pub(crate) fn api_key_statements(table: &str) -> (TableCreateStatement, IndexCreateStatement) {
    let create = Table::create()
        .table(t(table))
        .if_not_exists()
        .col(
            ColumnDef::new(t("id_key"))
                .char_len(64)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(t("user_key")).char_len(64).not_null())
        .col(ColumnDef::new(t("key_id")).string_len(32).not_null())
        .col(ColumnDef::new(t("user_id")).string_len(255).not_null())
        .col(ColumnDef::new(t("name")).string_len(255).not_null())
        .col(ColumnDef::new(t("scopes")).text().not_null())
        .col(ColumnDef::new(t("secret_hash")).char_len(64).not_null())
        .col(ColumnDef::new(t("previous_hash")).char_len(64).null())
        .col(ColumnDef::new(t("previous_until")).big_integer().null())
        .col(ColumnDef::new(t("allowed_ips")).text().not_null())
        .col(ColumnDef::new(t("epoch")).big_integer().not_null())
        .col(ColumnDef::new(t("service")).boolean().not_null())
        .col(ColumnDef::new(t("created_by")).string_len(255).not_null())
        .col(ColumnDef::new(t("created_at")).big_integer().not_null())
        .col(ColumnDef::new(t("expires_at")).big_integer().null())
        .col(ColumnDef::new(t("last_used_at")).big_integer().null())
        .col(ColumnDef::new(t("tenant")).text().null())
        .to_owned();
    let index = Index::create()
        .name(format!("{table}_user_key"))
        .table(t(table))
        .col(t("user_key"))
        .if_not_exists()
        .to_owned();
    (create, index)
}

fn strings(r: &QueryResult, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = r.try_get("", column).map_err(fault)?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::new(format!("api key table: {column}: {e}")))
}

fn row(r: &QueryResult) -> Result<StoredApiKey, StoreError> {
    Ok(StoredApiKey {
        id: r.try_get("", "key_id").map_err(fault)?,
        user_id: r.try_get("", "user_id").map_err(fault)?,
        name: r.try_get("", "name").map_err(fault)?,
        scopes: strings(r, "scopes")?,
        secret_hash: r.try_get("", "secret_hash").map_err(fault)?,
        previous_hash: r.try_get("", "previous_hash").map_err(fault)?,
        previous_until: r.try_get("", "previous_until").map_err(fault)?,
        allowed_ips: strings(r, "allowed_ips")?,
        epoch: r.try_get("", "epoch").map_err(fault)?,
        service: r.try_get("", "service").map_err(fault)?,
        created_by: r.try_get("", "created_by").map_err(fault)?,
        created_at: r.try_get("", "created_at").map_err(fault)?,
        expires_at: r.try_get("", "expires_at").map_err(fault)?,
        last_used_at: r.try_get("", "last_used_at").map_err(fault)?,
        tenant: r.try_get("", "tenant").map_err(fault)?,
    })
}

fn json(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

impl SeaApiKeyStore {
    /// API keys in `table` of `db` (create it first with [`SeaApiKeyStore::create_table`]
    /// or the migration).
    pub fn new(db: DatabaseConnection, table: impl Into<String>) -> Self {
        SeaApiKeyStore {
            db,
            table: table.into(),
        }
    }

    /// Creates the table and its index if they do not exist.
    pub async fn create_table(db: &DatabaseConnection, table: &str) -> Result<(), DbErr> {
        let (create, index) = api_key_statements(table);
        db.execute(&create).await?;
        db.execute(&index).await?;
        Ok(())
    }

    fn select(&self) -> SelectStatement {
        Query::select()
            .columns(COLUMNS.map(t))
            .from(t(&self.table))
            .to_owned()
    }
}

#[async_trait::async_trait]
impl ApiKeyStore for SeaApiKeyStore {
    async fn find(&self, id: &str) -> Result<Option<StoredApiKey>, StoreError> {
        let query = self
            .select()
            .and_where(Expr::col(t("id_key")).eq(id_key(id)))
            .to_owned();
        match self.db.query_one(&query).await.map_err(fault)? {
            Some(r) => Ok(Some(row(&r)?).filter(|k| k.id == id)),
            None => Ok(None),
        }
    }

    async fn for_user(&self, user_id: &str) -> Result<Vec<StoredApiKey>, StoreError> {
        let query = self
            .select()
            .and_where(Expr::col(t("user_key")).eq(user_key(user_id)))
            .order_by(t("created_at"), sea_orm::sea_query::Order::Asc)
            .to_owned();
        let rows = self.db.query_all(&query).await.map_err(fault)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let key = row(r)?;
            if key.user_id == user_id {
                out.push(key);
            }
        }
        Ok(out)
    }

    async fn insert(&self, key: &StoredApiKey) -> Result<bool, StoreError> {
        let query = Query::insert()
            .into_table(t(&self.table))
            .columns(COLUMNS.map(t))
            .values_panic([
                id_key(&key.id).into(),
                user_key(&key.user_id).into(),
                key.id.clone().into(),
                key.user_id.clone().into(),
                key.name.clone().into(),
                json(&key.scopes).into(),
                key.secret_hash.clone().into(),
                key.previous_hash.clone().into(),
                key.previous_until.into(),
                json(&key.allowed_ips).into(),
                key.epoch.into(),
                key.service.into(),
                key.created_by.clone().into(),
                key.created_at.into(),
                key.expires_at.into(),
                key.last_used_at.into(),
                key.tenant.clone().into(),
            ])
            .to_owned();
        match self.db.execute(&query).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(fault(e)),
        }
    }

    async fn rotate(
        &self,
        id: &str,
        old_hash: &str,
        new_hash: &str,
        previous_until: Option<i64>,
    ) -> Result<bool, StoreError> {
        let previous = previous_until.map(|_| old_hash.to_owned());
        let query = Query::update()
            .table(t(&self.table))
            .value(t("secret_hash"), new_hash)
            .value(t("previous_hash"), previous)
            .value(t("previous_until"), previous_until)
            .and_where(Expr::col(t("id_key")).eq(id_key(id)))
            .and_where(Expr::col(t("secret_hash")).eq(old_hash))
            .to_owned();
        let done = self.db.execute(&query).await.map_err(fault)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch(&self, id: &str, at: i64, after: i64) -> Result<bool, StoreError> {
        let query = Query::update()
            .table(t(&self.table))
            .value(t("last_used_at"), at)
            .and_where(Expr::col(t("id_key")).eq(id_key(id)))
            .cond_where(
                Cond::any()
                    .add(Expr::col(t("last_used_at")).is_null())
                    .add(Expr::col(t("last_used_at")).lte(after)),
            )
            .to_owned();
        let done = self.db.execute(&query).await.map_err(fault)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let query = Query::delete()
            .from_table(t(&self.table))
            .and_where(Expr::col(t("id_key")).eq(id_key(id)))
            .and_where(Expr::col(t("user_key")).eq(user_key(user_id)))
            .to_owned();
        let done = self.db.execute(&query).await.map_err(fault)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_all(&self, user_id: &str) -> Result<usize, StoreError> {
        let query = Query::delete()
            .from_table(t(&self.table))
            .and_where(Expr::col(t("user_key")).eq(user_key(user_id)))
            .to_owned();
        let done = self.db.execute(&query).await.map_err(fault)?;
        Ok(done.rows_affected() as usize)
    }
}

/// The API key table as a SeaORM migration (features `api-keys` and `migration`).
///
/// ```no_run
/// use sea_orm_migration::prelude::*;
/// struct Migrator;
/// #[async_trait::async_trait]
/// impl MigratorTrait for Migrator {
///     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
///         vec![Box::new(crudauth_sea::CreateApiKeyTable::default())]
///     }
/// }
/// ```
#[cfg(feature = "migration")]
pub mod migration {
    use sea_orm_migration::prelude::*;

    use super::{API_KEY_TABLE, api_key_statements};

    /// Creates (and on `down`, drops) the API key table.
    #[derive(Debug)]
    pub struct CreateApiKeyTable {
        /// The table name.
        pub table: String,
    }

    impl Default for CreateApiKeyTable {
        fn default() -> Self {
            CreateApiKeyTable {
                table: API_KEY_TABLE.into(),
            }
        }
    }

    impl MigrationName for CreateApiKeyTable {
        fn name(&self) -> &str {
            "m20261204_000001_crudauth_api_keys"
        }
    }

    // See the store tables' migration for why the lint is allowed.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateApiKeyTable {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let (create, index) = api_key_statements(&self.table);
            manager.create_table(create).await?;
            manager.create_index(index).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let drop = Table::drop()
                .table(Alias::new(&self.table))
                .if_exists()
                .to_owned();
            manager.drop_table(drop).await
        }
    }
}
