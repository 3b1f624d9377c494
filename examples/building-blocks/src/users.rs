//! The least a user table needs: a key, a login field and a password hash. Without
//! `token_version` the revocation epoch lives in crudauth's store.

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
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
