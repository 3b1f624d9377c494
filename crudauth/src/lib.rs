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
//! ```
//! # crudauth::doc_fixture::run(async |_| {
//! use axum::{Router, routing::get};
//! use crudauth::{BearerConfig, CrudAuth, Principal, SessionConfig};
//! use tower::ServiceExt; // `oneshot`: one request, no server
//! # use crudauth::doc_fixture::User;
//! # let repo = crudauth::doc_fixture::Repo::new();
//!
//! // From the environment in production; a fresh key for this example.
//! let secret = std::env::var("CRUDAUTH_SECRET_KEY").unwrap_or_else(|_| crudauth::generate_secret_key());
//! let auth = CrudAuth::builder(repo)
//!     .secret_key(secret)
//!     .session(SessionConfig::default())
//!     .bearer(BearerConfig::default())
//!     .build()?;
//!
//! async fn whoami(p: Principal<User>) -> String {
//!     format!("{} via {}", p.user_id, p.via.as_str())
//! }
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .with_state(auth.clone())
//!     .merge(auth.router());
//! let request = axum::http::Request::get("/whoami").body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 401); // nobody signed in yet
//! # Ok(()) });
//! ```
//!
//! ## Layout
//!
//! Imports run one way, from the plain types up to the routes:
//!
//! - plain types and stores: [`error`], [`clock`], [`user`], [`store`], [`password`],
//!   [`policy`], [`lockout`], [`ratelimit`], [`delivery`], [`hooks`], [`session`],
//!   [`tokens`], [`principal`];
//! - services, each holding the shared parts it needs (never the facade): [`login`] (the
//!   password path), [`revocation`] (the epoch), [`sudo`], [`Recovery`] (the email flows),
//!   the default admin (`auth.ensure_admin`), and the [`transport`]s (session and bearer:
//!   each credential read, resolved, issued and cleared in one place);
//! - the facade, [`CrudAuth`] (the composition root) and its [`CrudAuthBuilder`];
//! - above it: [`extract`] (the extractors), the route layers ([`CrudAuth::require`],
//!   [`CrudAuth::rate_limit`]) and the routes ([`CrudAuth::router`]).
//!
//! Each later sign-in method gets a folder of its own beside `login`, switched on by one
//! builder call and one cargo feature: `oauth` (social sign-in, feature `oauth`) and
//! `mfa` (two-factor sign-in, feature `mfa`); passkeys, passwordless codes, API keys and
//! device login follow.

// The development switch signs requests in without a credential: it must never reach a
// release build (see `dev`).
#[cfg(all(feature = "dev-bypass", not(debug_assertions)))]
compile_error!(
    "crudauth's `dev-bypass` feature signs every request in without a credential; it is \
     refused in a release build. Turn the feature off for this build."
);

#[cfg(feature = "admin")]
pub mod admin;
mod announce;
#[cfg(feature = "api-keys")]
pub mod api_key;
mod audit;
mod background;
mod body;
mod bootstrap;
mod builder;
mod cache;
pub mod captcha;
#[cfg(any(feature = "oauth", feature = "passwordless", feature = "admin"))]
mod claim;
pub mod client_ip;
pub mod clock;
mod core;
pub mod delivery;
#[cfg(feature = "dev-bypass")]
pub mod dev;
pub mod device;
#[cfg(feature = "device-login")]
pub mod device_login;
pub mod disposable;
#[doc(hidden)]
pub mod doc_fixture;
pub mod error;
pub mod extract;
mod facade;
mod generation;
mod guards;
pub mod hooks;
mod keys;
mod layers;
pub mod lockout;
pub mod login;
mod methods;
#[cfg(feature = "mfa")]
pub mod mfa;
#[cfg(feature = "oauth")]
pub mod oauth;
#[cfg(feature = "passkeys")]
pub mod passkey;
pub mod password;
#[cfg(feature = "passwordless")]
pub mod passwordless;
pub mod policy;
pub mod principal;
mod quota;
pub mod ratelimit;
mod recovery;
pub mod revocation;
mod routes;
pub mod session;
#[cfg(any(feature = "oauth", feature = "passwordless"))]
mod signup;
#[cfg(feature = "smtp")]
pub mod smtp;
pub mod store;
pub mod sudo;
pub mod tenant;
pub mod tokens;
pub mod transport;
pub mod user;

pub use background::Background;
pub use builder::CrudAuthBuilder;
pub use cache::UserCacheConfig;
pub use client_ip::ClientMeta;
pub use error::{AuthError, ConfigError, ValidationIssue};
pub use facade::CrudAuth;
pub use guards::{FeatureName, RequireFeature, TenantPrincipal};
pub use hooks::{HookContext, HookError, LoginFailure, Veto};
pub use keys::generate_secret_key;
pub use layers::{RateLimitLayer, RequireLayer};
pub use lockout::LockoutConfig;
pub use login::{Login, VerifiedUser};
pub use password::PasswordConfig;
pub use policy::PasswordPolicy;
pub use principal::{Gate, Principal, RequireSudo, Superuser, Transport};
pub use ratelimit::{KeyBy, RateLimit};
pub use recovery::{Recovery, RecoveryConfig};
pub use revocation::Revocation;
pub use routes::BODY_LIMIT;
pub use session::{SameSite, SessionConfig, Sessions};
pub use store::MemoryStore;
pub use sudo::{Elevated, Sudo, SudoConfig};
pub use tokens::{
    BearerConfig, JwtKey, RefreshMode, TokenFamily, TokenPair, TokenService, VerifyKey,
};
pub use user::{
    DynUserRepository, IdKind, IdentityField, LogicalField, MAX_IDENTIFIER_CHARS, NewUser,
    RepoError, UserContract, UserId, UserRecord, UserRepository, UserSchema, UserUpdate,
};
