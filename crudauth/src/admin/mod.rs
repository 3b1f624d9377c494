//! Administration (feature `admin`):
//!
//! - the users admin routes in fastapi-users' shape (`/users/me`, `/users`, `/users/{id}`),
//!   switched on by [`crate::CrudAuthBuilder::users_admin`];
//! - [`Impersonation`]: a superuser, inside their sudo window, acts as another user through a
//!   short-lived access token (`POST /admin/users/{id}/token`) or a session
//!   (`POST /admin/users/{id}/impersonate`, back with `POST /admin/impersonation/stop`),
//!   switched on by [`crate::CrudAuthBuilder::impersonation`].
//!
//! ```
//! # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
//! use crudauth::admin::UsersAdminConfig;
//! let auth = b.users_admin(UsersAdminConfig::default()).build()?;
//! assert!(auth.users_admin().is_some());
//! # Ok(()) });
//! ```

mod config;
mod impersonate;
mod patch;
mod phone;
mod users;

pub use config::UsersAdminConfig;
pub use impersonate::{Impersonation, ImpersonationConfig, ImpersonationToken};
pub use patch::{AdminPatch, OwnPatch};
pub(crate) use patch::{admin_patch, own_patch};
pub use users::UsersAdmin;
