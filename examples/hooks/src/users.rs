//! The app's `users` table: crudauth's conventional column names (a bare `#[auth]` maps
//! them) plus three columns of the app's own that crudauth knows nothing about, and that the
//! hooks read straight off the model they are given.

use crudauth_sea::AuthUser;
use sea_orm::entity::prelude::*;

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
#[sea_orm(table_name = "users")]
#[auth]
pub struct Model {
    /// The key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The sign-in address.
    #[sea_orm(unique, column_type = "String(StringLen::N(254))")]
    pub email: String,
    /// The password hash.
    #[sea_orm(column_type = "Text")]
    pub password: String,
    /// Whether the account may sign in.
    pub is_active: bool,
    /// Administrators may read `GET /audit`.
    pub is_superuser: bool,
    /// The revocation epoch.
    pub token_version: i64,
    /// The app's own: the name to greet. `/register` may fill it (allow-listed in `main`).
    #[sea_orm(column_type = "String(StringLen::N(80))", nullable)]
    pub display_name: Option<String>,
    /// The app's own: the billing plan. Server-set (not allow-listed), `free` by default.
    #[sea_orm(column_type = "String(StringLen::N(20))", default_value = "free")]
    pub plan: String,
    /// The app's own: an administrator's suspension, in unix seconds. The
    /// `on_before_login` veto refuses a right password until then.
    #[sea_orm(nullable)]
    pub suspended_until: Option<i64>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
