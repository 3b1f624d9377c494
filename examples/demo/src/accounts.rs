//! The legacy `accounts` table, adopted as it is.

use crudauth_sea::AuthUser;
use sea_orm::entity::prelude::*;

/// A row of `accounts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
#[sea_orm(table_name = "accounts")]
#[auth(
    id = "account_id",
    email = "email_address",
    password = "pw_hash",
    superuser = "is_admin",
    email_verified = "email_confirmed",
    is_active = "enabled"
)]
pub struct Model {
    /// The key.
    #[sea_orm(primary_key)]
    pub account_id: i32,
    /// Login and recovery address.
    #[sea_orm(unique, column_type = "String(StringLen::N(254))")]
    pub email_address: String,
    /// Login name. The Python demo's clients log in by username, so this legacy table has
    /// grown one (unique, nullable for the rows that predate it).
    #[sea_orm(unique, column_type = "String(StringLen::N(32))", nullable)]
    pub username: Option<String>,
    /// The password hash.
    pub pw_hash: String,
    /// Administrator flag.
    pub is_admin: bool,
    /// Whether the address was confirmed by a verify link. Added for the email flows;
    /// `main` adds the column to a database made before it existed.
    #[sea_orm(default_value = false)]
    pub email_confirmed: bool,
    /// Whether the account may sign in. Added for the admin's deactivation
    /// (`POST /admin/users/{id}/deactivate`); `main` adds the column to an older database.
    #[sea_orm(default_value = true)]
    pub enabled: bool,
    /// The app's own column, writable at registration.
    #[sea_orm(column_type = "String(StringLen::N(80))", nullable)]
    pub display_name: Option<String>,
    /// The phone number (E.164) texted sign-in codes go to: picked up by name as the
    /// `phone` field. Set by an administrator (`POST /admin/users/{id}/phone`); `main`
    /// adds the column to an older database.
    #[sea_orm(unique, column_type = "String(StringLen::N(16))", nullable)]
    pub phone: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
