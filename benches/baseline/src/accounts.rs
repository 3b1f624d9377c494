//! The demo's `accounts` table, read-only: the columns the baseline and the axum-login peer
//! (`benches/peer-axum-login`, which includes this file) read.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    /// Key.
    #[sea_orm(primary_key)]
    pub account_id: i32,
    /// Email.
    pub email_address: String,
    /// Username.
    pub username: Option<String>,
    /// Hash.
    pub pw_hash: String,
    /// Admin flag.
    pub is_admin: bool,
    /// Own column.
    pub display_name: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
