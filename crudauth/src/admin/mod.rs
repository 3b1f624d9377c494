//! Administration (feature `admin`): superusers acting on other accounts.
//!
//! - [`Impersonation`]: a superuser, inside their sudo window, acts as another user through a
//!   short-lived access token (`POST /admin/users/{id}/token`) or a session
//!   (`POST /admin/users/{id}/impersonate`, back with `POST /admin/impersonation/stop`).

mod impersonate;

pub use impersonate::{Impersonation, ImpersonationConfig, ImpersonationToken};
