//! The two reference models used throughout the tests and docs.

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

/// (b) A new model written with the conventional names: a UUID key and every bookkeeping
/// column, so it needs only a bare `#[auth]`.
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
        /// The application's own column.
        #[sea_orm(nullable)]
        pub bio: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
