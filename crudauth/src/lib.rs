//! # crudauth
//!
//! Authentication for axum applications: one [`user::UserRepository`] trait between the
//! runtime and the application's user table, so the runtime never depends on an ORM.
//!
//! This crate holds the ORM-free contract. `crudauth-sea` implements it for any SeaORM entity
//! with `#[derive(AuthUser)]`:
//!
//! ```
//! use crudauth::user::{normalize_email, UserId};
//! assert_eq!(normalize_email("Ann@Example.com"), "ann@example.com");
//! assert_eq!(UserId::Int(1).to_string(), "1");
//! ```

pub mod user;

pub use user::{
    IdKind, IdentityField, LogicalField, NewUser, RepoError, UserContract, UserId, UserRecord,
    UserRepository, UserSchema, UserUpdate,
};
