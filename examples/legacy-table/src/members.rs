//! The app's `members` table, as it was before crudauth: the entity lists the columns the
//! app reads, and `#[auth(...)]` tells crudauth which of them are its logical fields.

use crudauth_sea::AuthUser;
use sea_orm::entity::prelude::*;

/// A row of `members`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
#[sea_orm(table_name = "members")]
// Logical field = the app's column. Checked at compile time: a typo such as
// `password = "pw_hsh"` is an error on that string, with a did-you-mean.
#[auth(
    id = "member_id",
    email = "email_address",
    password = "pw_hash",
    is_active = "active"
)]
pub struct Model {
    /// The key.
    #[sea_orm(primary_key)]
    pub member_id: i32,
    /// The sign-in (and recovery) address. It must be unique to be a login field.
    #[sea_orm(unique, column_type = "String(StringLen::N(254))")]
    pub email_address: String,
    /// The password hash (an argon2id PHC string).
    #[sea_orm(column_type = "Text")]
    pub pw_hash: String,
    /// `false` for members who left: crudauth refuses them after the password check,
    /// exactly like a wrong password, and ends their sessions.
    pub active: bool,
    /// The app's own column: crudauth never reads it, `/auth/register` may fill it (it is
    /// allow-listed in `main`), and handlers read it off the principal's model.
    #[sea_orm(column_type = "String(StringLen::N(80))", nullable)]
    pub display_name: Option<String>,
    // `joined_on` is in the table but not here: an entity may leave out columns that have a
    // default, and crudauth only ever touches the columns the entity lists.
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
