//! The generic SeaORM user repository: every model with `#[derive(AuthUser)]` gets it.

use std::marker::PhantomData;

use crudauth::user::{
    LogicalField, NewUser, RepoError, UserId, UserRecord, UserRepository, UserSchema, UserUpdate,
    normalize_email, normalize_phone,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, ModelTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, Value,
};

use crate::model::{AuthModel, IdType, MapOf, same};
use crate::value::{char_limit, json_to_value};

/// The active-model type of a model.
pub type ActiveModelOf<M> = <<M as ModelTrait>::Entity as EntityTrait>::ActiveModel;
type ColumnOf<M> = <<M as ModelTrait>::Entity as EntityTrait>::Column;

pub use crudauth::user::MAX_IDENTIFIER_CHARS;

/// Reads and writes users of the SeaORM entity whose model is `M`.
///
/// `M` is the model with `#[derive(AuthUser)]`. Cheap to clone (the connection is a pool).
///
/// ```no_run
/// # mod accounts {
/// #     use crudauth_sea::AuthUser;
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
/// #     #[sea_orm(table_name = "accounts")]
/// #     #[auth(id = "account_id", email = "email_address", password = "pw_hash", superuser = "is_admin")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)] pub account_id: i32,
/// #         #[sea_orm(unique)] pub email_address: String,
/// #         pub pw_hash: String,
/// #         pub is_admin: bool,
/// #     }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// use crudauth::user::UserRepository;
/// use crudauth_sea::SeaUserRepository;
///
/// # async fn run(db: sea_orm::DatabaseConnection) -> Result<(), crudauth::RepoError> {
/// let repo = SeaUserRepository::<accounts::Model>::new(db);
/// let user = repo.find_by_login("Ann@Example.com").await?;
/// # Ok(()) }
/// ```
pub struct SeaUserRepository<M> {
    db: DatabaseConnection,
    schema: UserSchema,
    _model: PhantomData<fn() -> M>,
}

impl<M> Clone for SeaUserRepository<M> {
    fn clone(&self) -> Self {
        SeaUserRepository {
            db: self.db.clone(),
            schema: self.schema,
            _model: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for SeaUserRepository<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeaUserRepository").finish_non_exhaustive()
    }
}

impl<M: AuthModel> SeaUserRepository<M> {
    /// A repository over `db`.
    ///
    /// ```no_run
    /// # fn f<M: crudauth_sea::__private::AuthModel>(db: sea_orm::DatabaseConnection) {
    /// let repo = crudauth_sea::SeaUserRepository::<M>::new(db);
    /// # }
    /// ```
    pub fn new(db: DatabaseConnection) -> Self {
        SeaUserRepository {
            db,
            schema: M::MAP.schema,
            _model: PhantomData,
        }
    }

    /// The connection.
    ///
    /// ```no_run
    /// # fn f<M: crudauth_sea::__private::AuthModel>(repo: crudauth_sea::SeaUserRepository<M>) {
    /// let db = repo.connection();
    /// # }
    /// ```
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(crate) fn map() -> MapOf<M> {
        M::MAP
    }
}

pub(crate) fn backend(err: DbErr) -> RepoError {
    RepoError::Backend(err.to_string())
}

/// A write to a flag mapped through a read function only.
fn read_only(logical: LogicalField) -> RepoError {
    let name = logical.name();
    RepoError::InvalidValue {
        field: name.into(),
        reason: format!(
            "{name} is read through a function and has no write function: crudauth does not \
             write it"
        ),
    }
}

/// Refuses a phone number that is not in the E.164 form [`normalize_phone`] makes: lookups by
/// phone are exact, so a number stored in any other form could never be found.
fn check_phone(phone: &str) -> Result<(), RepoError> {
    if normalize_phone(phone).as_deref() == Some(phone) {
        return Ok(());
    }
    Err(RepoError::InvalidValue {
        field: "phone".into(),
        reason: "must be an E.164 number such as +46701234567 (see normalize_phone)".into(),
    })
}

/// The name a client sees for a column: its logical name when mapped, else the field name.
fn display_name<M: AuthModel>(column: ColumnOf<M>) -> String {
    let map = SeaUserRepository::<M>::map();
    if let Some(logical) = map.logical_of(column) {
        return logical.name().to_owned();
    }
    map.columns
        .iter()
        .find(|(_, c)| same(*c, column))
        .map_or_else(|| "value".to_owned(), |(n, _)| (*n).to_owned())
}

/// Refuses a string longer than its column allows, before anything is written.
fn check_len<M: AuthModel>(column: ColumnOf<M>, value: &str) -> Result<(), RepoError> {
    if let Some(max) = char_limit(column.def().get_column_type())
        && value.chars().count() > max
    {
        return Err(RepoError::TooLong {
            field: display_name::<M>(column),
            max,
        });
    }
    Ok(())
}

fn set<M: AuthModel>(
    am: &mut ActiveModelOf<M>,
    column: ColumnOf<M>,
    value: Value,
) -> Result<(), RepoError> {
    am.try_set(column, value)
        .map_err(|_| RepoError::InvalidValue {
            field: display_name::<M>(column),
            reason: "has the wrong type for its column".to_owned(),
        })
}

/// The unique values a write sets (the email already normalised), checked for collisions.
#[derive(Clone, Copy)]
struct Identities<'a> {
    email: Option<&'a str>,
    username: Option<&'a str>,
    phone: Option<&'a str>,
}

/// Validates and applies the application's own columns from `extra`.
fn apply_extra<M: AuthModel>(
    am: &mut ActiveModelOf<M>,
    extra: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), RepoError> {
    let map = SeaUserRepository::<M>::map();
    for (name, json) in extra {
        let invalid = |reason: &str| RepoError::InvalidValue {
            field: name.clone(),
            reason: reason.to_owned(),
        };
        let column = map.column(name).ok_or_else(|| invalid("is not a column"))?;
        if map.is_privileged(column) {
            return Err(invalid("cannot be set this way"));
        }
        if let serde_json::Value::String(s) = json {
            check_len::<M>(column, s)?;
        }
        let def = column.def();
        let value = json_to_value(def.get_column_type(), json)
            .ok_or_else(|| invalid("has the wrong type"))?;
        set::<M>(am, column, value)?;
    }
    Ok(())
}

impl<M> SeaUserRepository<M>
where
    M: AuthModel + IntoActiveModel<ActiveModelOf<M>>,
    M::Entity: EntityTrait<Model = M>,
    ActiveModelOf<M>: Send + Sync,
{
    pub(crate) fn id_value(id: &UserId) -> Option<Value> {
        M::Id::from_user_id(id).map(Into::into)
    }

    /// The row with this key. Without `.one()`: it binds a `LIMIT 1` parameter, and SQLite
    /// plans a bound `LIMIT` into the statement, so its statement cache missed on every
    /// lookup. A primary-key match returns at most one row without it, on every backend.
    async fn fetch(&self, id: &UserId) -> Result<Option<M>, RepoError> {
        let Some(value) = Self::id_value(id) else {
            return Ok(None);
        };
        let rows = M::Entity::find()
            .filter(Self::map().id.eq(value))
            .all(&self.db)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().next())
    }

    /// A condition matching `value` in `column`: case-insensitive for the email column.
    fn identity_match(column: ColumnOf<M>, value: &str) -> Expr {
        if Self::map().is_email(column) {
            Expr::expr(Func::lower(column.into_expr())).eq(normalize_email(value))
        } else {
            column.into_expr().eq(value)
        }
    }

    /// Whether `row` holds exactly `value` in `column` (the email compared in its normalised
    /// form). The SQL condition of [`Self::identity_match`] is only a prefilter: under a
    /// case- and accent-insensitive collation (MySQL/MariaDB's defaults) `ann@exämple.com`
    /// equals `ann@example.com` in SQL, and must not find that account.
    fn exact_match(row: &M, column: ColumnOf<M>, value: &str) -> bool {
        match row.get(column) {
            Value::String(Some(v)) if Self::map().is_email(column) => {
                normalize_email(&v) == normalize_email(value)
            }
            Value::String(Some(v)) => v.as_str() == value,
            _ => false,
        }
    }

    /// The rows matching `value` in `column` exactly (prefiltered in SQL, then compared
    /// in Rust, see [`Self::exact_match`]).
    async fn find_exact(
        &self,
        column: ColumnOf<M>,
        value: &str,
        except: Option<&Value>,
    ) -> Result<Option<M>, RepoError> {
        let mut query = M::Entity::find().filter(Self::identity_match(column, value));
        if let Some(except) = except {
            query = query.filter(Self::map().id.ne(except.clone()));
        }
        // A collation can fold only so many stored values onto one input; 16 is plenty.
        let rows = query.limit(16).all(&self.db).await.map_err(backend)?;
        Ok(rows
            .into_iter()
            .find(|row| Self::exact_match(row, column, value)))
    }

    /// The unique field a value collides on, excluding the user `except`: the username
    /// first, then the email (case-insensitively), then the phone number (exactly). The order
    /// matters to `/register`, which answers a taken email like a new one but a taken
    /// username with 422: checking the username first makes that 422 independent of whether
    /// the email exists.
    async fn find_duplicate(
        &self,
        values: Identities<'_>,
        except: Option<&Value>,
    ) -> Result<Option<RepoError>, RepoError> {
        let map = Self::map();
        let checks = [
            (map.username, values.username, "username"),
            (map.email, values.email, "email"),
            (map.phone, values.phone, "phone"),
        ];
        for (column, value, field) in checks {
            let (Some(column), Some(value)) = (column, value) else {
                continue;
            };
            if self.find_exact(column, value, except).await?.is_some() {
                return Ok(Some(RepoError::Duplicate {
                    field: field.to_owned(),
                }));
            }
        }
        Ok(None)
    }

    /// Turns a unique violation that won a race with our pre-check into the typed error.
    async fn classify(
        &self,
        err: DbErr,
        values: Identities<'_>,
        except: Option<&Value>,
    ) -> RepoError {
        if !matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            return backend(err);
        }
        match self.find_duplicate(values, except).await {
            Ok(Some(dup)) => dup,
            // Another unique column of the application's own.
            _ => RepoError::Duplicate {
                field: "value".to_owned(),
            },
        }
    }
}

impl<M> UserRepository for SeaUserRepository<M>
where
    M: AuthModel + IntoActiveModel<ActiveModelOf<M>>,
    M::Entity: EntityTrait<Model = M>,
    ActiveModelOf<M>: Send + Sync,
    M: UserRecord,
{
    type User = M;

    fn schema(&self) -> &UserSchema {
        &self.schema
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<M>, RepoError> {
        self.fetch(id).await
    }

    async fn password_hashes(
        &self,
        after: Option<&UserId>,
        limit: u64,
    ) -> Result<Vec<(UserId, String)>, RepoError> {
        let id = Self::map().id;
        let mut query = M::Entity::find();
        if let Some(after) = after {
            let value = Self::id_value(after).ok_or(RepoError::NotFound)?;
            query = query.filter(id.gt(value));
        }
        let rows = query
            .order_by_asc(id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| {
                let hash = row.password_hash().unwrap_or_default().to_owned();
                (row.user_id(), hash)
            })
            .collect())
    }

    async fn find_by_login(&self, identifier: &str) -> Result<Option<M>, RepoError> {
        let map = Self::map();
        if identifier.is_empty() || identifier.chars().count() > MAX_IDENTIFIER_CHARS {
            return Ok(None);
        }
        let mut any = Condition::any();
        for column in map.login {
            any = any.add(Self::identity_match(*column, identifier));
        }
        // One query for all login fields; the configured order picks the winner.
        let rows = M::Entity::find()
            .filter(any)
            .limit(map.login.len() as u64 + 1)
            .all(&self.db)
            .await
            .map_err(backend)?;
        for column in map.login {
            let found = rows
                .iter()
                .find(|row| Self::exact_match(row, *column, identifier));
            if let Some(user) = found {
                return Ok(Some(user.clone()));
            }
        }
        Ok(None)
    }

    async fn find_by_recovery(&self, value: &str) -> Result<Option<M>, RepoError> {
        let Some(column) = Self::map().recovery else {
            return Ok(None);
        };
        if value.is_empty() || value.chars().count() > MAX_IDENTIFIER_CHARS {
            return Ok(None);
        }
        self.find_exact(column, value, None).await
    }

    /// An exact match on the phone column (never case- or accent-folded, whatever the
    /// database's collation); `Ok(None)` without a phone column.
    async fn find_by_phone(&self, phone: &str) -> Result<Option<M>, RepoError> {
        let Some(column) = Self::map().phone else {
            return Ok(None);
        };
        if phone.is_empty() || phone.chars().count() > MAX_IDENTIFIER_CHARS {
            return Ok(None);
        }
        self.find_exact(column, phone, None).await
    }

    async fn create(&self, new: NewUser) -> Result<M, RepoError> {
        let map = Self::map();
        let mut am = <ActiveModelOf<M> as ActiveModelTrait>::default();
        let email = new.email.as_deref().map(normalize_email);

        if let Some(key) = M::Id::generate() {
            set::<M>(&mut am, map.id, key.into())?;
        }
        match (map.email, &email) {
            (Some(col), Some(email)) => {
                check_len::<M>(col, email)?;
                set::<M>(&mut am, col, Value::String(Some(email.clone())))?;
            }
            (None, Some(_)) => {
                return Err(RepoError::InvalidValue {
                    field: "email".into(),
                    reason: "this user table has no email column".into(),
                });
            }
            _ => {}
        }
        match (map.username, &new.username) {
            (Some(col), Some(username)) => {
                check_len::<M>(col, username)?;
                set::<M>(&mut am, col, Value::String(Some(username.clone())))?;
            }
            (None, Some(_)) => {
                return Err(RepoError::InvalidValue {
                    field: "username".into(),
                    reason: "this user table has no username column".into(),
                });
            }
            _ => {}
        }
        match (map.phone, &new.phone) {
            (Some(col), Some(phone)) => {
                check_phone(phone)?;
                check_len::<M>(col, phone)?;
                set::<M>(&mut am, col, Value::String(Some(phone.clone())))?;
            }
            (None, Some(_)) => {
                return Err(RepoError::InvalidValue {
                    field: "phone".into(),
                    reason: "this user table has no phone column".into(),
                });
            }
            _ => {}
        }
        check_len::<M>(map.password, &new.password_hash)?;
        set::<M>(
            &mut am,
            map.password,
            Value::String(Some(new.password_hash)),
        )?;
        // A flag mapped read-only is never written: the row's own default stands, which is
        // only right when the new user asks for the ordinary value (active, not a superuser,
        // not verified).
        for (logical, flag, ordinary) in [
            (LogicalField::IsActive, new.is_active, true),
            (LogicalField::IsSuperuser, new.is_superuser, false),
            (LogicalField::EmailVerified, new.email_verified, false),
        ] {
            let Some(column) = map.logical(logical) else {
                continue;
            };
            match M::flag_value(logical, flag) {
                Some(value) => set::<M>(&mut am, column, value)?,
                None if flag == ordinary => {}
                None => return Err(read_only(logical)),
            }
        }
        apply_extra::<M>(&mut am, &new.extra)?;
        if let Some(column) = map.token_version {
            // The column's own integer width: try the narrow types first.
            let zero = [
                Value::Int(Some(0)),
                Value::BigInt(Some(0)),
                Value::SmallInt(Some(0)),
            ]
            .into_iter()
            .find(|v| am.clone().try_set(column, v.clone()).is_ok())
            .unwrap_or(Value::Int(Some(0)));
            set::<M>(&mut am, column, zero)?;
        }

        let identities = Identities {
            email: email.as_deref(),
            username: new.username.as_deref(),
            phone: new.phone.as_deref(),
        };
        if let Some(dup) = self.find_duplicate(identities, None).await? {
            return Err(dup);
        }
        match am.insert(&self.db).await {
            Ok(model) => Ok(model),
            Err(err) => Err(self.classify(err, identities, None).await),
        }
    }

    async fn update(&self, id: &UserId, update: UserUpdate) -> Result<M, RepoError> {
        let map = Self::map();
        let current = self.fetch(id).await?.ok_or(RepoError::NotFound)?;
        if update.is_empty() {
            return Ok(current);
        }
        let id_value: Value = current.auth_id().clone().into();
        let mut am: ActiveModelOf<M> = current.into_active_model();
        let email = update.email.as_deref().map(normalize_email);
        for (logical, value) in [
            (LogicalField::Email, email.as_deref()),
            (LogicalField::Username, update.username.as_deref()),
            (LogicalField::Phone, update.phone.as_deref()),
        ] {
            let Some(value) = value else { continue };
            let name = logical.name();
            let column = map
                .logical(logical)
                .ok_or_else(|| RepoError::InvalidValue {
                    field: name.into(),
                    reason: format!("this user table has no {name} column"),
                })?;
            if logical == LogicalField::Phone && value.is_empty() {
                // Removed (a nullable column; a NOT NULL one refuses it at the database).
                set::<M>(&mut am, column, Value::String(None))?;
                continue;
            }
            if logical == LogicalField::Phone {
                check_phone(value)?;
            }
            check_len::<M>(column, value)?;
            set::<M>(&mut am, column, Value::String(Some(value.to_owned())))?;
        }
        for (logical, flag) in [
            (LogicalField::IsActive, update.is_active),
            (LogicalField::IsSuperuser, update.is_superuser),
            (LogicalField::EmailVerified, update.email_verified),
        ] {
            let (column, name) = (map.logical(logical), logical.name());
            let Some(flag) = flag else { continue };
            let column = column.ok_or_else(|| RepoError::InvalidValue {
                field: name.into(),
                reason: format!("this user table has no {name} column"),
            })?;
            let value = M::flag_value(logical, flag).ok_or_else(|| read_only(logical))?;
            set::<M>(&mut am, column, value)?;
        }
        apply_extra::<M>(&mut am, &update.extra)?;
        let identities = Identities {
            email: email.as_deref(),
            username: update.username.as_deref(),
            phone: update.phone.as_deref().filter(|p| !p.is_empty()),
        };
        if let Some(dup) = self.find_duplicate(identities, Some(&id_value)).await? {
            return Err(dup);
        }
        match am.update(&self.db).await {
            Ok(model) => Ok(model),
            Err(DbErr::RecordNotUpdated) => Err(RepoError::NotFound),
            Err(err) => Err(self.classify(err, identities, Some(&id_value)).await),
        }
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<(), RepoError> {
        let map = Self::map();
        check_len::<M>(map.password, hash)?;
        let value = Self::id_value(id).ok_or(RepoError::NotFound)?;
        let result = M::Entity::update_many()
            .col_expr(map.password, Expr::value(hash.to_owned()))
            .filter(map.id.eq(value))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        // MySQL counts changed rows, not matched ones: an unchanged hash affects none.
        if result.rows_affected == 0 && self.fetch(id).await?.is_none() {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }

    /// One conditional `UPDATE ... WHERE id = ? AND password = <expected>`.
    async fn compare_and_set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> Result<bool, RepoError> {
        let map = Self::map();
        check_len::<M>(map.password, hash)?;
        let value = Self::id_value(id).ok_or(RepoError::NotFound)?;
        let result = M::Entity::update_many()
            .col_expr(map.password, Expr::value(hash.to_owned()))
            .filter(map.id.eq(value))
            .filter(map.password.eq(expected.to_owned()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(result.rows_affected == 1)
    }

    fn database(&self) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        Some(std::sync::Arc::new(self.db.clone()))
    }

    async fn list_users(
        &self,
        filter: &crudauth::user::UserFilter,
    ) -> Result<crudauth::user::UserPage<M>, RepoError> {
        self.list_matching(filter).await
    }

    async fn count_active_superusers(&self) -> Result<u64, RepoError> {
        self.count_superusers().await
    }

    async fn delete_user(&self, id: &UserId) -> Result<(), RepoError> {
        self.delete_row(id).await
    }

    fn extra_columns(&self) -> Vec<&'static str> {
        Self::own_columns()
    }

    fn contract_columns(&self) -> Vec<&'static str> {
        Self::privileged_columns()
    }

    fn read_extra(&self, user: &M, column: &str) -> Option<serde_json::Value> {
        Self::own_value(user, column)
    }

    /// One `UPDATE` writes the hash and increments `token_version` together (inside a
    /// transaction that then reads the new epoch back, so the value returned is the one this
    /// write made, not a later one); without a `token_version` column, only the hash.
    async fn replace_password_hash(
        &self,
        id: &UserId,
        hash: &str,
    ) -> Result<Option<i64>, RepoError> {
        use sea_orm::TransactionTrait;
        let map = Self::map();
        let Some(column) = map.token_version else {
            self.set_password_hash(id, hash).await?;
            return Ok(None);
        };
        check_len::<M>(map.password, hash)?;
        let value = Self::id_value(id).ok_or(RepoError::NotFound)?;
        let txn = self.db.begin().await.map_err(backend)?;
        let result = M::Entity::update_many()
            .col_expr(map.password, Expr::value(hash.to_owned()))
            .col_expr(column, column.into_expr().add(1))
            .filter(map.id.eq(value.clone()))
            .exec(&txn)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound);
        }
        let user = M::Entity::find()
            .filter(map.id.eq(value))
            .one(&txn)
            .await
            .map_err(backend)?
            .ok_or(RepoError::NotFound)?;
        txn.commit().await.map_err(backend)?;
        Ok(user.token_version())
    }

    async fn bump_token_version(&self, id: &UserId) -> Result<Option<i64>, RepoError> {
        let map = Self::map();
        let Some(column) = map.token_version else {
            return Ok(None);
        };
        let value = Self::id_value(id).ok_or(RepoError::NotFound)?;
        let result = M::Entity::update_many()
            .col_expr(column, column.into_expr().add(1))
            .filter(map.id.eq(value))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound);
        }
        let user = self.fetch(id).await?.ok_or(RepoError::NotFound)?;
        Ok(user.token_version())
    }
}
