//! The second-factor tables (feature `mfa`): `crudauth_mfa` (one row per user: the sealed
//! TOTP secret, a pending one, the last accepted time step) and `crudauth_mfa_recovery`
//! (one row per unused recovery code, as a keyed hash). Single use is one statement each:
//! a step is claimed by `UPDATE ... WHERE last_step IS NULL OR last_step < ?`, a recovery
//! code by a `DELETE` that removes one row for exactly one caller.
//!
//! Rows are keyed on the SHA-256 hex of the user id (`user_key`), never on the id's text:
//! MySQL and MariaDB compare text case-, accent- and trailing-space-insensitively under their
//! default collations, which would merge `José`'s row with `jose`'s.

use crudauth::mfa::{FactorStore, TotpFactor};
use crudauth::store::StoreError;
use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, Query, Table, TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use crate::digest::digest;

/// The default table names.
///
/// ```
/// assert_eq!(crudauth_sea::FactorTables::default().factors, "crudauth_mfa");
/// ```
#[derive(Clone, Debug)]
pub struct FactorTables {
    /// One row per user (default `crudauth_mfa`).
    pub factors: String,
    /// One row per unused recovery code (default `crudauth_mfa_recovery`).
    pub recovery: String,
}

impl Default for FactorTables {
    fn default() -> Self {
        FactorTables {
            factors: "crudauth_mfa".into(),
            recovery: "crudauth_mfa_recovery".into(),
        }
    }
}

/// Second factors in the application's database.
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
/// use crudauth_sea::{FactorTables, SeaFactorStore};
/// let tables = FactorTables::default();
/// SeaFactorStore::create_tables(&db, &tables).await?;
/// let factors = std::sync::Arc::new(SeaFactorStore::new(db, tables));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SeaFactorStore {
    db: DatabaseConnection,
    tables: FactorTables,
}

fn fault(e: DbErr) -> StoreError {
    StoreError::new(format!("factor table: {e}"))
}

/// The row key of a user.
fn key_of(user_id: &str) -> String {
    digest(&["mfa", user_id])
}

fn t(name: &str) -> Alias {
    Alias::new(name)
}

/// The two tables.
pub(crate) fn factor_statements(tables: &FactorTables) -> [TableCreateStatement; 2] {
    let factors = Table::create()
        .table(t(&tables.factors))
        .if_not_exists()
        .col(
            ColumnDef::new(t("user_key"))
                .char_len(64)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(t("user_id")).string_len(255).not_null())
        .col(ColumnDef::new(t("secret")).string_len(255).null())
        .col(ColumnDef::new(t("pending")).string_len(255).null())
        .col(ColumnDef::new(t("pending_expires_at")).big_integer().null())
        .col(ColumnDef::new(t("confirmed_at")).big_integer().null())
        .col(ColumnDef::new(t("last_step")).big_integer().null())
        .to_owned();
    let recovery = Table::create()
        .table(t(&tables.recovery))
        .if_not_exists()
        .col(ColumnDef::new(t("user_key")).char_len(64).not_null())
        .col(ColumnDef::new(t("code_hash")).char_len(64).not_null())
        .primary_key(Index::create().col(t("user_key")).col(t("code_hash")))
        .to_owned();
    [factors, recovery]
}

impl SeaFactorStore {
    /// Factors in `tables` of `db` (create them with [`SeaFactorStore::create_tables`] or
    /// the migration).
    pub fn new(db: DatabaseConnection, tables: FactorTables) -> Self {
        SeaFactorStore { db, tables }
    }

    /// Creates the two tables if they do not exist.
    pub async fn create_tables(
        db: &DatabaseConnection,
        tables: &FactorTables,
    ) -> Result<(), DbErr> {
        for statement in factor_statements(tables) {
            db.execute(&statement).await?;
        }
        Ok(())
    }

    /// Makes sure the user's row exists (a duplicate means it does).
    async fn ensure_row(&self, user_id: &str) -> Result<(), StoreError> {
        if self.get(user_id).await?.is_some() {
            return Ok(());
        }
        let insert = Query::insert()
            .into_table(t(&self.tables.factors))
            .columns([t("user_key"), t("user_id")])
            .values_panic([key_of(user_id).into(), user_id.into()])
            .to_owned();
        match self.db.execute(&insert).await {
            Ok(_) => Ok(()),
            // A concurrent call made it first.
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(fault(e)),
        }
    }

    fn by_user(&self, user_id: &str) -> sea_orm::sea_query::SimpleExpr {
        Expr::col(t("user_key")).eq(key_of(user_id))
    }
}

#[async_trait::async_trait]
impl FactorStore for SeaFactorStore {
    async fn get(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError> {
        let query = Query::select()
            .columns(
                [
                    "user_id",
                    "secret",
                    "pending",
                    "pending_expires_at",
                    "confirmed_at",
                    "last_step",
                ]
                .map(t),
            )
            .from(t(&self.tables.factors))
            .and_where(self.by_user(user_id))
            .to_owned();
        let Some(row) = self.db.query_one(&query).await.map_err(fault)? else {
            return Ok(None);
        };
        let stored: String = row.try_get("", "user_id").map_err(fault)?;
        if stored != user_id {
            return Ok(None);
        }
        Ok(Some(TotpFactor {
            secret: row.try_get("", "secret").map_err(fault)?,
            pending: row.try_get("", "pending").map_err(fault)?,
            pending_expires_at: row.try_get("", "pending_expires_at").map_err(fault)?,
            confirmed_at: row.try_get("", "confirmed_at").map_err(fault)?,
            last_step: row.try_get("", "last_step").map_err(fault)?,
        }))
    }

    async fn set_pending(
        &self,
        user_id: &str,
        sealed: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.ensure_row(user_id).await?;
        let update = Query::update()
            .table(t(&self.tables.factors))
            .value(t("pending"), sealed)
            .value(t("pending_expires_at"), expires_at)
            .and_where(self.by_user(user_id))
            .to_owned();
        self.db.execute(&update).await.map_err(fault)?;
        Ok(())
    }

    async fn activate(
        &self,
        user_id: &str,
        sealed: &str,
        step: i64,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.ensure_row(user_id).await?;
        let update = Query::update()
            .table(t(&self.tables.factors))
            .value(t("secret"), sealed)
            .value(t("pending"), Option::<String>::None)
            .value(t("pending_expires_at"), Option::<i64>::None)
            .value(t("confirmed_at"), at)
            .value(t("last_step"), step)
            .and_where(self.by_user(user_id))
            .and_where(Expr::col(t("secret")).is_null())
            .to_owned();
        let done = self.db.execute(&update).await.map_err(fault)?;
        Ok(done.rows_affected() == 1)
    }

    async fn reseal(&self, user_id: &str, old: &str, new: &str) -> Result<bool, StoreError> {
        let update = Query::update()
            .table(t(&self.tables.factors))
            .value(t("secret"), new)
            .and_where(self.by_user(user_id))
            .and_where(Expr::col(t("secret")).eq(old))
            .to_owned();
        let done = self.db.execute(&update).await.map_err(fault)?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let update = Query::update()
            .table(t(&self.tables.factors))
            .value(t("last_step"), step)
            .and_where(self.by_user(user_id))
            .and_where(
                Expr::col(t("last_step"))
                    .is_null()
                    .or(Expr::col(t("last_step")).lt(step)),
            )
            .to_owned();
        let done = self.db.execute(&update).await.map_err(fault)?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove(&self, user_id: &str) -> Result<bool, StoreError> {
        let enabled = self.get(user_id).await?.is_some_and(|f| f.enabled());
        let codes = Query::delete()
            .from_table(t(&self.tables.recovery))
            .and_where(self.by_user(user_id))
            .to_owned();
        let row = Query::delete()
            .from_table(t(&self.tables.factors))
            .and_where(self.by_user(user_id))
            .to_owned();
        let txn = self.db.begin().await.map_err(fault)?;
        txn.execute(&codes).await.map_err(fault)?;
        txn.execute(&row).await.map_err(fault)?;
        txn.commit().await.map_err(fault)?;
        Ok(enabled)
    }

    async fn set_recovery(&self, user_id: &str, hashes: &[String]) -> Result<(), StoreError> {
        let recovery = t(&self.tables.recovery);
        let clear = Query::delete()
            .from_table(recovery.clone())
            .and_where(self.by_user(user_id))
            .to_owned();
        if hashes.is_empty() {
            self.db.execute(&clear).await.map_err(fault)?;
            return Ok(());
        }
        let mut insert = Query::insert()
            .into_table(recovery)
            .columns([t("user_key"), t("code_hash")])
            .to_owned();
        for hash in hashes {
            insert.values_panic([key_of(user_id).into(), hash.clone().into()]);
        }
        // One transaction: concurrent regenerations leave one set, never both.
        let txn = self.db.begin().await.map_err(fault)?;
        txn.execute(&clear).await.map_err(fault)?;
        txn.execute(&insert).await.map_err(fault)?;
        txn.commit().await.map_err(fault)
    }

    async fn use_recovery(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        let delete = Query::delete()
            .from_table(t(&self.tables.recovery))
            .and_where(self.by_user(user_id))
            .and_where(Expr::col(t("code_hash")).eq(hash))
            .to_owned();
        let done = self.db.execute(&delete).await.map_err(fault)?;
        Ok(done.rows_affected() == 1)
    }

    async fn recovery_left(&self, user_id: &str) -> Result<usize, StoreError> {
        let query = Query::select()
            .column(t("code_hash"))
            .from(t(&self.tables.recovery))
            .and_where(self.by_user(user_id))
            .to_owned();
        let rows = self.db.query_all(&query).await.map_err(fault)?;
        Ok(rows.len())
    }
}

/// The second-factor tables as a SeaORM migration (features `mfa` and `migration`).
///
/// ```no_run
/// use sea_orm_migration::prelude::*;
/// struct Migrator;
/// #[async_trait::async_trait]
/// impl MigratorTrait for Migrator {
///     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
///         vec![Box::new(crudauth_sea::CreateFactorTables::default())]
///     }
/// }
/// ```
#[cfg(feature = "migration")]
pub mod migration {
    use sea_orm_migration::prelude::*;

    use super::{FactorTables, factor_statements};

    /// Creates (and on `down`, drops) the factor and recovery-code tables.
    #[derive(Debug, Default)]
    pub struct CreateFactorTables {
        /// The table names.
        pub tables: FactorTables,
    }

    impl MigrationName for CreateFactorTables {
        fn name(&self) -> &str {
            "m20261202_000002_crudauth_mfa"
        }
    }

    // See the store tables' migration for why the lint is allowed.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateFactorTables {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for statement in factor_statements(&self.tables) {
                manager.create_table(statement).await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for name in [&self.tables.recovery, &self.tables.factors] {
                let drop = Table::drop().table(Alias::new(name)).if_exists().to_owned();
                manager.drop_table(drop).await?;
            }
            Ok(())
        }
    }
}
