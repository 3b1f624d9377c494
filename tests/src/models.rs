//! The reference models used throughout the tests and docs.

/// (a) A legacy `accounts` table adopted as it is: an integer key named `account_id`, the
/// email in `email_address`, the hash in `pw_hash`, the admin flag in `is_admin`, an own
/// column `display_name`, and neither `token_version` nor `is_active`.
pub mod accounts {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    /// A row of `accounts`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "accounts")]
    #[auth(
        id = "account_id",
        email = "email_address",
        password = "pw_hash",
        superuser = "is_admin"
    )]
    pub struct Model {
        /// The key.
        #[sea_orm(primary_key)]
        pub account_id: i32,
        /// The login and recovery address.
        #[sea_orm(unique, column_type = "String(StringLen::N(120))")]
        pub email_address: String,
        /// The password hash.
        pub pw_hash: String,
        /// The administrator flag.
        pub is_admin: bool,
        /// The application's own column.
        #[sea_orm(column_type = "String(StringLen::N(40))", nullable)]
        pub display_name: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// (b) A new model written with the conventional names: a UUID key, every bookkeeping column
/// and a nullable unique `phone`, so it needs only a bare `#[auth]`.
pub mod users {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    /// A row of `users`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "users")]
    #[auth]
    pub struct Model {
        /// The key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The email address.
        #[sea_orm(unique, column_type = "String(StringLen::N(254))")]
        pub email: String,
        /// The username.
        #[sea_orm(unique, column_type = "String(StringLen::N(32))")]
        pub username: String,
        /// The password hash.
        pub password: String,
        /// May the account log in.
        pub is_active: bool,
        /// Administrator.
        pub is_superuser: bool,
        /// Email verified.
        pub email_verified: bool,
        /// The revocation epoch.
        pub token_version: i32,
        /// The phone number (E.164: `+` and at most 15 digits).
        #[sea_orm(unique, nullable, column_type = "String(StringLen::N(16))")]
        pub phone: Option<String>,
        /// The application's own column.
        #[sea_orm(nullable)]
        pub bio: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// (c) A legacy `members` table whose flags are not booleans and whose columns have other
/// names in the database: a soft-delete timestamp read as `is_active`, an integer role read
/// as `is_superuser` (never written), a status string read and written as `email_verified`,
/// `EmailAddress` and `PASSWD` columns behind Rust fields, and a login column the entity does
/// not declare unique (the database has the unique index: `assume_unique`).
pub mod members {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    /// A row of `members`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "members")]
    #[auth(
        id = "member_id",
        email = "email_address",
        password = "passwd",
        is_active(column = "deleted_at", read = "crate::models::members::not_deleted"),
        superuser(column = "role", read = "crate::models::members::is_admin_role"),
        email_verified(column = "status", read = "crate::models::members::verified", write = "crate::models::members::set_verified"),
        assume_unique = ["email_address"]
    )]
    pub struct Model {
        /// The key.
        #[sea_orm(primary_key)]
        pub member_id: i32,
        /// The address, in a column named `EmailAddress` (unique in the database only).
        #[sea_orm(
            column_name = "EmailAddress",
            column_type = "String(StringLen::N(254))"
        )]
        pub email_address: String,
        /// The password hash, in a column named `PASSWD`.
        #[sea_orm(column_name = "PASSWD")]
        pub passwd: String,
        /// Unix seconds of the soft delete; `None` while the member is active.
        #[sea_orm(nullable)]
        pub deleted_at: Option<i64>,
        /// 10 and up: an administrator.
        #[sea_orm(default_value = 0)]
        pub role: i32,
        /// `verified` or `pending`.
        #[sea_orm(column_type = "String(StringLen::N(16))")]
        pub status: String,
    }

    /// Active until soft-deleted.
    pub fn not_deleted(deleted_at: &Option<i64>) -> bool {
        deleted_at.is_none()
    }

    /// Role 10 and up administers.
    pub fn is_admin_role(role: &i32) -> bool {
        *role >= 10
    }

    /// The status says the address was verified.
    pub fn verified(status: &String) -> bool {
        status == "verified"
    }

    /// The status that records a verified (or not yet verified) address.
    pub fn set_verified(verified: bool) -> String {
        if verified { "verified" } else { "pending" }.to_owned()
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// (d) A table whose verified flag is a timestamp read through a function and never written:
/// the email flows (which mark addresses verified) refuse to build over it.
pub mod readers {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    /// A row of `readers`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "readers")]
    #[auth(email_verified(column = "verified_at", read = "crate::models::readers::is_set"))]
    pub struct Model {
        /// The key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// The address.
        #[sea_orm(unique)]
        pub email: String,
        /// The password hash.
        pub password: String,
        /// When the address was verified.
        #[sea_orm(nullable)]
        pub verified_at: Option<i64>,
    }

    /// Verified once a time is recorded.
    pub fn is_set(at: &Option<i64>) -> bool {
        at.is_some()
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// (e) A multi-tenant `tenant_users` table: the modern names, and the tenant in a nullable
/// string column `org` (mapped explicitly: a tenant is never taken from a name alone).
pub mod tenant_users {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    /// A row of `tenant_users`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "tenant_users")]
    #[auth(tenant = "org")]
    pub struct Model {
        /// The key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// The email address.
        #[sea_orm(unique, column_type = "String(StringLen::N(254))")]
        pub email: String,
        /// The username.
        #[sea_orm(unique, column_type = "String(StringLen::N(32))")]
        pub username: String,
        /// The password hash.
        pub password: String,
        /// May the account log in.
        pub is_active: bool,
        /// Administrator.
        pub is_superuser: bool,
        /// Email verified.
        pub email_verified: bool,
        /// The revocation epoch.
        pub token_version: i32,
        /// The tenant.
        #[sea_orm(nullable, column_type = "String(StringLen::N(64))")]
        pub org: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// (f) A multi-tenant `org_staff` table whose tenant is an integer column `org_id`, and whose
/// revocation epoch lives in the store (no `token_version`).
pub mod org_staff {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    /// A row of `org_staff`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "org_staff")]
    #[auth(tenant = "org_id")]
    pub struct Model {
        /// The key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The email address.
        #[sea_orm(unique, column_type = "String(StringLen::N(254))")]
        pub email: String,
        /// The password hash.
        pub password: String,
        /// Administrator.
        pub is_superuser: bool,
        /// The tenant.
        #[sea_orm(nullable)]
        pub org_id: Option<i64>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
