//! The passkey table (feature `passkeys`): `crudauth_passkeys`, one row per registered
//! credential, so the user table needs no passkey column.
//!
//! | column | type | |
//! |---|---|---|
//! | `cred_key` | char(64) | primary key: SHA-256 hex of the credential id |
//! | `user_key` | char(64) | indexed: SHA-256 hex of the user id |
//! | `credential_id` | text | base64url, as clients send it |
//! | `user_id` | varchar(255) | the owner's key in text form |
//! | `user_handle` | char(36) | the owner's WebAuthn user handle (a UUID) |
//! | `name` | varchar(255) | the name the owner gave it |
//! | `passkey` | text | the serialized `webauthn_rs` passkey (public key, algorithm) |
//! | `counter` | bigint | the last signature counter accepted |
//! | `created_at`, `last_used_at` | bigint | unix seconds (`last_used_at` null until used) |
//!
//! Lookups and uniqueness go through the two digests, never through text columns (MySQL and
//! MariaDB compare text case- and trailing-space-insensitively under their default
//! collations, and credential ids are case-sensitive base64). A use is recorded by
//! `UPDATE ... WHERE cred_key = ? AND counter = ?`: of two uses of one counter value, one
//! is recorded.

use crudauth::passkey::{PasskeyStore, StoredPasskey};
use crudauth::store::StoreError;
use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, Query, SelectStatement, Table,
    TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, SqlErr};

use crate::digest::digest;

/// The default name of the passkey table.
pub const PASSKEY_TABLE: &str = "crudauth_passkeys";

/// Passkeys in the application's database.
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
/// use crudauth_sea::{PASSKEY_TABLE, SeaPasskeyStore};
/// SeaPasskeyStore::create_table(&db, PASSKEY_TABLE).await?;
/// let store = std::sync::Arc::new(SeaPasskeyStore::new(db, PASSKEY_TABLE));
/// let config = crudauth::passkey::PasskeyConfig::new("example.com", "https://example.com").store(store);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SeaPasskeyStore {
    db: DatabaseConnection,
    table: String,
}

fn fault(e: DbErr) -> StoreError {
    StoreError::new(format!("passkey table: {e}"))
}

fn t(name: &str) -> Alias {
    Alias::new(name)
}

const COLUMNS: [&str; 10] = [
    "cred_key",
    "user_key",
    "credential_id",
    "user_id",
    "user_handle",
    "name",
    "passkey",
    "counter",
    "created_at",
    "last_used_at",
];

fn cred_key(credential_id: &str) -> String {
    digest(&["passkey", credential_id])
}

fn user_key(user_id: &str) -> String {
    digest(&["passkey-user", user_id])
}

/// The table and its `user_key` index.
pub(crate) fn passkey_statements(table: &str) -> (TableCreateStatement, IndexCreateStatement) {
    let create = Table::create()
        .table(t(table))
        .if_not_exists()
        .col(
            ColumnDef::new(t("cred_key"))
                .char_len(64)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(t("user_key")).char_len(64).not_null())
        .col(ColumnDef::new(t("credential_id")).text().not_null())
        .col(ColumnDef::new(t("user_id")).string_len(255).not_null())
        .col(ColumnDef::new(t("user_handle")).char_len(36).not_null())
        .col(ColumnDef::new(t("name")).string_len(255).not_null())
        .col(ColumnDef::new(t("passkey")).text().not_null())
        .col(ColumnDef::new(t("counter")).big_integer().not_null())
        .col(ColumnDef::new(t("created_at")).big_integer().not_null())
        .col(ColumnDef::new(t("last_used_at")).big_integer().null())
        .to_owned();
    let index = Index::create()
        .name(format!("{table}_user_key"))
        .table(t(table))
        .col(t("user_key"))
        .if_not_exists()
        .to_owned();
    (create, index)
}

fn row(r: &QueryResult) -> Result<StoredPasskey, StoreError> {
    let handle: String = r.try_get("", "user_handle").map_err(fault)?;
    let counter: i64 = r.try_get("", "counter").map_err(fault)?;
    Ok(StoredPasskey {
        credential_id: r.try_get("", "credential_id").map_err(fault)?,
        user_id: r.try_get("", "user_id").map_err(fault)?,
        user_handle: uuid::Uuid::parse_str(&handle)
            .map_err(|e| StoreError::new(format!("passkey table: user_handle: {e}")))?,
        name: r.try_get("", "name").map_err(fault)?,
        passkey: r.try_get("", "passkey").map_err(fault)?,
        counter: u32::try_from(counter)
            .map_err(|_| StoreError::new("passkey table: counter out of range"))?,
        created_at: r.try_get("", "created_at").map_err(fault)?,
        last_used_at: r.try_get("", "last_used_at").map_err(fault)?,
    })
}

impl SeaPasskeyStore {
    /// Passkeys in `table` of `db` (create it first with [`SeaPasskeyStore::create_table`]
    /// or the migration).
    pub fn new(db: DatabaseConnection, table: impl Into<String>) -> Self {
        SeaPasskeyStore {
            db,
            table: table.into(),
        }
    }

    /// Creates the table and its index if they do not exist.
    pub async fn create_table(db: &DatabaseConnection, table: &str) -> Result<(), DbErr> {
        let (create, index) = passkey_statements(table);
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
impl PasskeyStore for SeaPasskeyStore {
    async fn find(&self, credential_id: &str) -> Result<Option<StoredPasskey>, StoreError> {
        let query = self
            .select()
            .and_where(Expr::col(t("cred_key")).eq(cred_key(credential_id)))
            .to_owned();
        match self.db.query_one(&query).await.map_err(fault)? {
            Some(r) => Ok(Some(row(&r)?).filter(|p| p.credential_id == credential_id)),
            None => Ok(None),
        }
    }

    async fn for_user(&self, user_id: &str) -> Result<Vec<StoredPasskey>, StoreError> {
        let query = self
            .select()
            .and_where(Expr::col(t("user_key")).eq(user_key(user_id)))
            .order_by(t("created_at"), sea_orm::sea_query::Order::Asc)
            .to_owned();
        let rows = self.db.query_all(&query).await.map_err(fault)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let passkey = row(r)?;
            if passkey.user_id == user_id {
                out.push(passkey);
            }
        }
        Ok(out)
    }

    async fn insert(&self, passkey: &StoredPasskey) -> Result<bool, StoreError> {
        let query = Query::insert()
            .into_table(t(&self.table))
            .columns(COLUMNS.map(t))
            .values_panic([
                cred_key(&passkey.credential_id).into(),
                user_key(&passkey.user_id).into(),
                passkey.credential_id.clone().into(),
                passkey.user_id.clone().into(),
                passkey.user_handle.to_string().into(),
                passkey.name.clone().into(),
                passkey.passkey.clone().into(),
                i64::from(passkey.counter).into(),
                passkey.created_at.into(),
                passkey.last_used_at.into(),
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

    async fn record_use(
        &self,
        credential_id: &str,
        old_counter: u32,
        new_counter: u32,
        passkey: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let query = Query::update()
            .table(t(&self.table))
            .value(t("counter"), i64::from(new_counter))
            .value(t("passkey"), passkey)
            .value(t("last_used_at"), at)
            .and_where(Expr::col(t("cred_key")).eq(cred_key(credential_id)))
            .and_where(Expr::col(t("counter")).eq(i64::from(old_counter)))
            .to_owned();
        let done = self.db.execute(&query).await.map_err(fault)?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        // MySQL counts only rows it changed: an authenticator without a counter (0 stays
        // 0) used twice in one second changes nothing the second time. Then the row being
        // there, at that counter, is the answer.
        if old_counter == new_counter {
            return Ok(self
                .find(credential_id)
                .await?
                .is_some_and(|p| p.counter == old_counter));
        }
        Ok(false)
    }

    async fn rename(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let query = Query::update()
            .table(t(&self.table))
            .value(t("name"), name)
            .and_where(Expr::col(t("cred_key")).eq(cred_key(credential_id)))
            .and_where(Expr::col(t("user_key")).eq(user_key(user_id)))
            .to_owned();
        let done = self.db.execute(&query).await.map_err(fault)?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        // The same name again changes nothing (MySQL then counts no row).
        Ok(self
            .find(credential_id)
            .await?
            .is_some_and(|p| p.user_id == user_id && p.name == name))
    }

    async fn delete(&self, user_id: &str, credential_id: &str) -> Result<bool, StoreError> {
        let query = Query::delete()
            .from_table(t(&self.table))
            .and_where(Expr::col(t("cred_key")).eq(cred_key(credential_id)))
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

/// The passkey table as a SeaORM migration (features `passkeys` and `migration`).
///
/// ```no_run
/// use sea_orm_migration::prelude::*;
/// struct Migrator;
/// #[async_trait::async_trait]
/// impl MigratorTrait for Migrator {
///     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
///         vec![Box::new(crudauth_sea::CreatePasskeyTable::default())]
///     }
/// }
/// ```
#[cfg(feature = "migration")]
pub mod migration {
    use sea_orm_migration::prelude::*;

    use super::{PASSKEY_TABLE, passkey_statements};

    /// Creates (and on `down`, drops) the passkey table.
    #[derive(Debug)]
    pub struct CreatePasskeyTable {
        /// The table name.
        pub table: String,
    }

    impl Default for CreatePasskeyTable {
        fn default() -> Self {
            CreatePasskeyTable {
                table: PASSKEY_TABLE.into(),
            }
        }
    }

    impl MigrationName for CreatePasskeyTable {
        fn name(&self) -> &str {
            "m20261203_000001_crudauth_passkeys"
        }
    }

    // See the store tables' migration for why the lint is allowed.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreatePasskeyTable {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let (create, index) = passkey_statements(&self.table);
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
