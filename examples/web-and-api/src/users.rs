//! A new table written with crudauth's conventional column names: a bare `#[auth]` maps it.

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
    /// The revocation epoch: "sign out everywhere" ends sessions and tokens alike.
    pub token_version: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
