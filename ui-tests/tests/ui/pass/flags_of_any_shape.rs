//! A legacy table: a soft-delete timestamp as `is_active`, an integer role as
//! `is_superuser`, a status string read and written as `email_verified`, renamed columns,
//! and a login column unique only in the database.
use crudauth_sea::AuthUser;
use sea_orm::entity::prelude::*;

pub fn not_deleted(at: &Option<i64>) -> bool {
    at.is_none()
}

pub mod roles {
    pub fn admin(role: &i32) -> bool {
        *role >= 10
    }
}

pub fn verified(status: &String) -> bool {
    status == "verified"
}

pub fn set_verified(verified: bool) -> String {
    if verified { "verified" } else { "pending" }.to_owned()
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
#[sea_orm(table_name = "members")]
#[auth(
    email = "email_address",
    password = "passwd",
    active(column = "deleted_at", read = "not_deleted"),
    superuser(column = "role", read = "roles::admin"),
    verified(column = "status", read = "verified", write = "set_verified"),
    assume_unique = ["email_address"]
)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(column_name = "EmailAddress")]
    pub email_address: String,
    #[sea_orm(column_name = "PASSWD")]
    pub passwd: String,
    pub deleted_at: Option<i64>,
    pub role: i32,
    pub status: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

fn main() {
    use crudauth_sea::__private::crudauth::UserRecord;
    let m = Model {
        id: 1,
        email_address: "a@example.com".into(),
        passwd: String::new(),
        deleted_at: None,
        role: 10,
        status: "pending".into(),
    };
    assert!(m.is_active() && m.is_superuser() && !m.email_verified());
}
