//! Administration (feature `admin`): the users admin routes in fastapi-users' shape
//! (`/users/me`, `/users`, `/users/{id}`), switched on by
//! [`crate::CrudAuthBuilder::users_admin`].
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! use crudauth::admin::UsersAdminConfig;
//! let auth = b.users_admin(UsersAdminConfig::default()).build()?;
//! assert!(auth.users_admin().is_some());
//! # Ok(()) });
//! ```

mod config;
mod patch;
mod phone;
mod users;

pub use config::UsersAdminConfig;
pub use patch::{AdminPatch, OwnPatch};
pub(crate) use patch::{admin_patch, own_patch};
pub use users::UsersAdmin;
