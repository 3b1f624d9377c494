use crudauth_sea::AuthUser;
use sea_orm::entity::prelude::*;

pub fn verified(status: &String) -> bool {
    status == "verified"
}

/// Returns a number, but the column is a string.
pub fn set_verified(verified: bool) -> i32 {
    i32::from(verified)
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
#[sea_orm(table_name = "members")]
#[auth(email_verified(column = "status", read = "verified", write = "set_verified"))]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub email: String,
    pub password: String,
    pub status: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

fn main() {}
