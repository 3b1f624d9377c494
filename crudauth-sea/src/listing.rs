//! The users admin's repository operations for SeaORM models: the filtered, paged listing,
//! the count of active superusers, deleting a row, and reading the application's own columns.

use crudauth::user::{LogicalField, RepoError, UserFilter, UserId, UserPage, UserRecord};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Value,
};

use crate::model::AuthModel;
use crate::repo::{ActiveModelOf, SeaUserRepository, backend};

/// Rows read per query when the flags must be read in Rust (a flag mapped through a read
/// function cannot be filtered in SQL).
const SCAN_PAGE: u64 = 500;

/// How a flag filter reads in SQL.
enum FlagCondition {
    /// Every row passes (no filter, or a missing column whose default is the wanted value).
    All,
    /// No row passes (a missing column whose default is not the wanted value).
    None,
    /// Rows that pass this condition.
    Where(Condition),
}

/// A `LIKE` pattern matching values that start with `prefix`, its wildcards escaped.
fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl<M> SeaUserRepository<M>
where
    M: AuthModel + IntoActiveModel<ActiveModelOf<M>> + UserRecord,
    M::Entity: EntityTrait<Model = M>,
    ActiveModelOf<M>: Send + Sync,
{
    /// The SQL form of "the flag `field` is `wanted`": a plain `bool` column compares (a
    /// NULL reads as `false`, as the model reads it); a flag read through a function
    /// cannot be filtered in SQL.
    fn flag_condition(
        field: LogicalField,
        wanted: Option<bool>,
    ) -> Result<FlagCondition, RepoError> {
        let Some(wanted) = wanted else {
            return Ok(FlagCondition::All);
        };
        let Some(column) = Self::map().logical(field) else {
            // No column: the documented default (active, not a superuser).
            let default = field == LogicalField::IsActive;
            return Ok(if wanted == default {
                FlagCondition::All
            } else {
                FlagCondition::None
            });
        };
        let plain = M::flag_value(field, true) == Some(Value::Bool(Some(true)))
            && M::flag_value(field, false) == Some(Value::Bool(Some(false)));
        if !plain {
            return Err(RepoError::InvalidValue {
                field: field.name().into(),
                reason: "is read through a function: users cannot be filtered by it".into(),
            });
        }
        let condition = if wanted {
            Condition::all().add(column.eq(true))
        } else {
            Condition::any().add(column.eq(false)).add(column.is_null())
        };
        Ok(FlagCondition::Where(condition))
    }

    /// See [`crudauth::UserRepository::list_users`]. The email prefix is compared
    /// lower-cased with `LIKE` (wildcards escaped), so on MySQL/MariaDB it also follows the
    /// column's collation (accent-insensitive by default).
    pub(crate) async fn list_matching(
        &self,
        filter: &UserFilter,
    ) -> Result<UserPage<M>, RepoError> {
        let map = Self::map();
        let mut condition = Condition::all();
        for (field, wanted) in [
            (LogicalField::IsActive, filter.is_active),
            (LogicalField::IsSuperuser, filter.is_superuser),
        ] {
            match Self::flag_condition(field, wanted)? {
                FlagCondition::All => {}
                FlagCondition::None => {
                    return Ok(UserPage {
                        users: Vec::new(),
                        total: 0,
                    });
                }
                FlagCondition::Where(c) => condition = condition.add(c),
            }
        }
        if let Some(prefix) = &filter.email_prefix {
            let column = map.email.ok_or_else(|| RepoError::InvalidValue {
                field: "email".into(),
                reason: "this user table has no email column".into(),
            })?;
            let pattern = LikeExpr::new(prefix_pattern(&prefix.to_lowercase())).escape('\\');
            condition = condition.add(Expr::expr(Func::lower(column.into_expr())).like(pattern));
        }
        let total = M::Entity::find()
            .filter(condition.clone())
            .count(self.connection())
            .await
            .map_err(backend)?;
        let users = M::Entity::find()
            .filter(condition)
            .order_by_asc(map.id)
            .offset(filter.offset)
            .limit(filter.limit)
            .all(self.connection())
            .await
            .map_err(backend)?;
        Ok(UserPage { users, total })
    }

    /// See [`crudauth::UserRepository::count_active_superusers`]: one `COUNT` with plain
    /// flag columns, else the superusers (or every row) read in pages of 500 and their
    /// flags read as the model reads them.
    pub(crate) async fn count_superusers(&self) -> Result<u64, RepoError> {
        let superuser = Self::flag_condition(LogicalField::IsSuperuser, Some(true));
        let active = Self::flag_condition(LogicalField::IsActive, Some(true));
        match (&superuser, &active) {
            (Ok(FlagCondition::None), _) | (_, Ok(FlagCondition::None)) => return Ok(0),
            (Ok(s), Ok(a)) => {
                let mut condition = Condition::all();
                for c in [s, a] {
                    if let FlagCondition::Where(c) = c {
                        condition = condition.add(c.clone());
                    }
                }
                return M::Entity::find()
                    .filter(condition)
                    .count(self.connection())
                    .await
                    .map_err(backend);
            }
            _ => {}
        }
        let prefilter = match superuser {
            Ok(FlagCondition::Where(c)) => c,
            _ => Condition::all(),
        };
        let id = Self::map().id;
        let (mut count, mut after) = (0u64, None::<Value>);
        loop {
            let mut query = M::Entity::find().filter(prefilter.clone());
            if let Some(after) = after.take() {
                query = query.filter(id.gt(after));
            }
            let rows = query
                .order_by_asc(id)
                .limit(SCAN_PAGE)
                .all(self.connection())
                .await
                .map_err(backend)?;
            count += rows
                .iter()
                .filter(|u| u.is_superuser() && u.is_active())
                .count() as u64;
            match rows.last() {
                Some(last) if rows.len() as u64 == SCAN_PAGE => {
                    after = Some(last.auth_id().clone().into());
                }
                _ => return Ok(count),
            }
        }
    }

    /// See [`crudauth::UserRepository::delete_user`]: one `DELETE ... WHERE id = ?`.
    pub(crate) async fn delete_row(&self, id: &UserId) -> Result<(), RepoError> {
        let value = Self::id_value(id).ok_or(RepoError::NotFound)?;
        let result = M::Entity::delete_many()
            .filter(Self::map().id.eq(value))
            .exec(self.connection())
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }

    /// See [`crudauth::UserRepository::extra_columns`]: the model's fields that are no
    /// logical field.
    pub(crate) fn own_columns() -> Vec<&'static str> {
        let map = Self::map();
        map.columns
            .iter()
            .filter(|(_, c)| !map.is_privileged(*c))
            .map(|(name, _)| *name)
            .collect()
    }

    /// See [`crudauth::UserRepository::contract_columns`]: the columns mapped to a contract
    /// field.
    pub(crate) fn privileged_columns() -> Vec<&'static str> {
        let map = Self::map();
        map.columns
            .iter()
            .filter(|(_, c)| map.is_privileged(*c))
            .map(|(name, _)| *name)
            .collect()
    }

    /// See [`crudauth::UserRepository::read_extra`].
    pub(crate) fn own_value(row: &M, name: &str) -> Option<serde_json::Value> {
        let map = Self::map();
        let column = map.column(name).filter(|c| !map.is_privileged(*c))?;
        Some(sea_orm::sea_query::sea_value_to_json_value(
            &row.get(column),
        ))
    }
}
