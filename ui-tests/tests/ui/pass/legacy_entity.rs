use crudauth_sea::AuthUser;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
#[sea_orm(table_name = "accounts")]
#[auth(id = "account_id", email = "email_address", password = "pw_hash", superuser = "is_admin")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub account_id: i32,
    #[sea_orm(unique)]
    pub email_address: String,
    pub pw_hash: String,
    pub is_admin: bool,
    pub display_name: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

fn main() {}

// The generated contract is usable as the runtime sees it.
#[allow(dead_code)]
fn reads_logical_fields(user: &Model) -> (Option<&str>, bool, Option<i64>) {
    use crudauth_sea::__private::crudauth::user::UserRecord;
    (user.email(), user.is_superuser(), user.token_version())
}
