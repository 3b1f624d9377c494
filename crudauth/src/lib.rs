//! # crudauth
//!
//! Authentication for axum applications, hardened by default: cookie sessions with
//! synchronizer-token CSRF, bearer JWTs with rotating refresh tokens, one [`Principal`] for
//! every transport, escalating lockout, timing-equalised password checks and revocation by a
//! `token_version` epoch; the email flows (verify, reset, email change) over pluggable
//! delivery ports ([`delivery`], and `smtp` with the `smtp` feature), a password
//! [`policy`], and [`sudo`] mode.
//!
//! The runtime speaks to the application's user table through one trait,
//! [`UserRepository`] (implemented for SeaORM entities by `crudauth-sea`'s
//! `#[derive(AuthUser)]`), and to server-side state through one [`store::Store`] trait.
//!
//! ```no_run
//! # async fn demo<R: crudauth::UserRepository>(repo: R) -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::get};
//! use crudauth::{BearerConfig, CrudAuth, Principal, SessionConfig};
//!
//! let auth = CrudAuth::builder(repo)
//!     .secret_key(std::env::var("CRUDAUTH_SECRET_KEY")?.into_bytes())
//!     .session(SessionConfig::default())
//!     .bearer(BearerConfig::default())
//!     .build()?;
//!
//! async fn whoami<U: crudauth::UserRecord>(p: Principal<U>) -> String {
//!     format!("{} via {}", p.user_id, p.via.as_str())
//! }
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami::<R::User>))
//!     .with_state(auth.clone())
//!     .merge(auth.router());
//! # Ok(()) }
//! ```

mod background;
pub mod client_ip;
pub mod clock;
pub mod delivery;
pub mod device;
pub mod error;
mod facade;
pub mod hooks;
mod keys;
pub mod lockout;
pub mod password;
pub mod policy;
pub mod principal;
mod quota;
pub mod ratelimit;
mod recovery;
mod routes;
pub mod session;
#[cfg(feature = "smtp")]
pub mod smtp;
pub mod store;
pub mod sudo;
pub mod tokens;
pub mod user;

pub use background::Background;
pub use error::{AuthError, ConfigError, ValidationIssue};
pub use facade::{
    ClientMeta, CrudAuth, CrudAuthBuilder, DynUserRepository, MAX_IDENTIFIER_CHARS, VerifiedUser,
};
pub use hooks::{HookContext, HookError, LoginFailure};
pub use keys::generate_secret_key;
pub use lockout::LockoutConfig;
pub use principal::{Gate, Principal, Superuser, Transport};
pub use ratelimit::{KeyBy, RateLimit};
pub use recovery::RecoveryConfig;
pub use routes::BODY_LIMIT;
pub use session::{SameSite, SessionConfig, Sessions};
pub use sudo::{RequireSudo, SudoConfig};
pub use tokens::{BearerConfig, JwtKey, RefreshMode, TokenFamily, TokenPair, TokenService};
pub use user::{
    IdKind, IdentityField, LogicalField, NewUser, RepoError, UserContract, UserId, UserRecord,
    UserRepository, UserSchema, UserUpdate,
};
