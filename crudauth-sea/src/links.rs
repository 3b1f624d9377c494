//! The OAuth link table (feature `oauth`): `crudauth_oauth_links`, one row per provider
//! account tied to a user, so the user table needs no OAuth column.
//!
//! | column | type | |
//! |---|---|---|
//! | `link_key` | char(64) | primary key: SHA-256 hex of (provider, subject) |
//! | `user_slot` | char(64) | unique: SHA-256 hex of (user id, provider) |
//! | `provider` | varchar(64) | |
//! | `subject` | varchar(255) | the provider's stable account id |
//! | `user_id` | varchar(64) | the user's key in text form (indexed) |
//! | `email` | varchar(320), null | the provider's address at link time |
//! | `created_at`, `last_used_at` | bigint | unix seconds |
//!
//! Uniqueness and lookups go through the two hex digests, never through the text columns:
//! MySQL and MariaDB compare `varchar`s case-, accent- and trailing-space-insensitively under
//! their default collations, so `Alice`, `alice ` and `alîce` would be one subject there.
//! Rows found are compared exactly once more in Rust.

use crudauth::oauth::{LinkStore, OAuthLink};

use crate::digest::digest;
use crudauth::store::StoreError;
use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, Query, Table,
    TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, SqlErr};

/// The default name of the link table.
pub const LINK_TABLE: &str = "crudauth_oauth_links";

/// OAuth links in the application's database.
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
/// use crudauth_sea::SeaLinkStore;
/// SeaLinkStore::create_table(&db, crudauth_sea::LINK_TABLE).await?;
/// let links = std::sync::Arc::new(SeaLinkStore::new(db, crudauth_sea::LINK_TABLE));
/// let config = crudauth::oauth::OAuthConfig::new("https://api.example.com").links(links);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SeaLinkStore {
    db: DatabaseConnection,
    table: String,
}

fn fault(e: DbErr) -> StoreError {
    StoreError::new(format!("link table: {e}"))
}

const COLUMNS: [&str; 8] = [
    "link_key",
    "user_slot",
    "provider",
    "subject",
    "user_id",
    "email",
    "created_at",
    "last_used_at",
];

fn link_key(provider: &str, subject: &str) -> String {
    digest(&[provider, subject])
}

fn user_slot(user_id: &str, provider: &str) -> String {
    digest(&[user_id, provider])
}

/// The table, its `user_slot` unique index and its `user_id` index.
pub(crate) fn link_statements(table: &str) -> (TableCreateStatement, [IndexCreateStatement; 2]) {
    let create = Table::create()
        .table(Alias::new(table))
        .if_not_exists()
        .col(
            ColumnDef::new(Alias::new("link_key"))
                .char_len(64)
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(Alias::new("user_slot"))
                .char_len(64)
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("provider"))
                .string_len(64)
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("subject"))
                .string_len(255)
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("user_id"))
                .string_len(64)
                .not_null(),
        )
        .col(ColumnDef::new(Alias::new("email")).string_len(320).null())
        .col(
            ColumnDef::new(Alias::new("created_at"))
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("last_used_at"))
                .big_integer()
                .not_null(),
        )
        .to_owned();
    let slot = Index::create()
        .name(format!("{table}_user_slot"))
        .table(Alias::new(table))
        .col(Alias::new("user_slot"))
        .unique()
        .if_not_exists()
        .to_owned();
    let user = Index::create()
        .name(format!("{table}_user_id"))
        .table(Alias::new(table))
        .col(Alias::new("user_id"))
        .if_not_exists()
        .to_owned();
    (create, [slot, user])
}

fn row(r: &QueryResult) -> Result<Option<OAuthLink>, StoreError> {
    Ok(Some(OAuthLink {
        provider: r.try_get("", "provider").map_err(fault)?,
        subject: r.try_get("", "subject").map_err(fault)?,
        user_id: r.try_get("", "user_id").map_err(fault)?,
        email: r.try_get("", "email").map_err(fault)?,
        created_at: r.try_get("", "created_at").map_err(fault)?,
        last_used_at: r.try_get("", "last_used_at").map_err(fault)?,
    }))
}

impl SeaLinkStore {
    /// Links in `table` of `db` (create it first with [`SeaLinkStore::create_table`] or
    /// the migration).
    pub fn new(db: DatabaseConnection, table: impl Into<String>) -> Self {
        SeaLinkStore {
            db,
            table: table.into(),
        }
    }

    /// Creates the table and its index if they do not exist.
    pub async fn create_table(db: &DatabaseConnection, table: &str) -> Result<(), DbErr> {
        let (create, indexes) = link_statements(table);
        db.execute(&create).await?;
        for index in &indexes {
            db.execute(index).await?;
        }
        Ok(())
    }

    fn select(&self) -> sea_orm::sea_query::SelectStatement {
        Query::select()
            .columns(COLUMNS.map(Alias::new))
            .from(Alias::new(&self.table))
            .to_owned()
    }
}

#[async_trait::async_trait]
impl LinkStore for SeaLinkStore {
    async fn find(&self, provider: &str, subject: &str) -> Result<Option<OAuthLink>, StoreError> {
        let query = self
            .select()
            .and_where(Expr::col(Alias::new("link_key")).eq(link_key(provider, subject)))
            .to_owned();
        match self.db.query_one(&query).await.map_err(fault)? {
            Some(r) => Ok(row(&r)?.filter(|l| l.provider == provider && l.subject == subject)),
            None => Ok(None),
        }
    }

    async fn for_user(&self, user_id: &str) -> Result<Vec<OAuthLink>, StoreError> {
        let query = self
            .select()
            .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
            .order_by(Alias::new("created_at"), sea_orm::sea_query::Order::Asc)
            .to_owned();
        let rows = self.db.query_all(&query).await.map_err(fault)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.extend(row(r)?.filter(|l| l.user_id == user_id));
        }
        Ok(out)
    }

    async fn insert(&self, link: &OAuthLink) -> Result<bool, StoreError> {
        let query = Query::insert()
            .into_table(Alias::new(&self.table))
            .columns(COLUMNS.map(Alias::new))
            .values_panic([
                link_key(&link.provider, &link.subject).into(),
                user_slot(&link.user_id, &link.provider).into(),
                link.provider.clone().into(),
                link.subject.clone().into(),
                link.user_id.clone().into(),
                link.email.clone().into(),
                link.created_at.into(),
                link.last_used_at.into(),
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

    async fn touch(&self, provider: &str, subject: &str, at: i64) -> Result<(), StoreError> {
        let query = Query::update()
            .table(Alias::new(&self.table))
            .value(Alias::new("last_used_at"), at)
            .and_where(Expr::col(Alias::new("link_key")).eq(link_key(provider, subject)))
            .to_owned();
        self.db.execute(&query).await.map_err(fault)?;
        Ok(())
    }

    async fn delete(&self, user_id: &str, provider: &str) -> Result<bool, StoreError> {
        let query = Query::delete()
            .from_table(Alias::new(&self.table))
            .and_where(Expr::col(Alias::new("user_slot")).eq(user_slot(user_id, provider)))
            .to_owned();
        let done = self.db.execute(&query).await.map_err(fault)?;
        Ok(done.rows_affected() > 0)
    }
}

/// The link table as a SeaORM migration (features `oauth` and `migration`).
///
/// ```no_run
/// use sea_orm_migration::prelude::*;
/// struct Migrator;
/// #[async_trait::async_trait]
/// impl MigratorTrait for Migrator {
///     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
///         vec![Box::new(crudauth_sea::CreateLinkTable::default())]
///     }
/// }
/// ```
#[cfg(feature = "migration")]
pub mod migration {
    use sea_orm_migration::prelude::*;

    use super::{LINK_TABLE, link_statements};

    /// Creates (and on `down`, drops) the OAuth link table.
    #[derive(Debug)]
    pub struct CreateLinkTable {
        /// The table name.
        pub table: String,
    }

    impl Default for CreateLinkTable {
        fn default() -> Self {
            CreateLinkTable {
                table: LINK_TABLE.into(),
            }
        }
    }

    impl MigrationName for CreateLinkTable {
        fn name(&self) -> &str {
            "m20261202_000001_crudauth_oauth_links"
        }
    }

    // See the store tables' migration for why the lint is allowed.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateLinkTable {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let (create, indexes) = link_statements(&self.table);
            manager.create_table(create).await?;
            for index in indexes {
                manager.create_index(index).await?;
            }
            Ok(())
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
