//! # crudauth-sea
//!
//! The SeaORM adapter for `crudauth`: put `#[derive(AuthUser)]` on an entity model and
//! [`SeaUserRepository`] reads and writes that table as users.
//!
//! ## Adopting a legacy table
//!
//! ```
//! mod accounts {
//!     use crudauth_sea::AuthUser;
//!     use sea_orm::entity::prelude::*;
//!
//!     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
//!     #[sea_orm(table_name = "accounts")]
//!     #[auth(id = "account_id", email = "email_address", password = "pw_hash", superuser = "is_admin")]
//!     pub struct Model {
//!         #[sea_orm(primary_key)]
//!         pub account_id: i32,
//!         #[sea_orm(unique)]
//!         pub email_address: String,
//!         pub pw_hash: String,
//!         pub is_admin: bool,
//!         pub display_name: Option<String>, // the app's own columns ride along untouched
//!     }
//!
//!     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//!     pub enum Relation {}
//!     impl ActiveModelBehavior for ActiveModel {}
//! }
//!
//! use crudauth::user::{LogicalField, UserRepository};
//! let schema = <crudauth_sea::SeaUserRepository<accounts::Model>>::new(Default::default())
//!     .schema()
//!     .clone();
//! assert_eq!(schema.login[0].column, "email_address");
//! assert!(!schema.has(LogicalField::TokenVersion)); // the epoch lives in the store
//! ```
//!
//! ## The attribute
//!
//! `#[auth(...)]` maps logical fields to columns (Rust field names). Every key is optional:
//! a logical field whose name is also a field of the model needs no mapping, and `id`
//! defaults to the single primary key.
//!
//! | key | column type | when absent |
//! |---|---|---|
//! | `id` | integer, `Uuid` or `String`; the primary key | the `id` field or the primary key |
//! | `email` | `String` / `Option<String>` | no email |
//! | `username` | `String` / `Option<String>` | no username |
//! | `password` | `String` / `Option<String>` (the hash) | required |
//! | `is_active` (`active`) | `bool` | every account is active |
//! | `is_superuser` (`superuser`) | `bool` | nobody is a superuser |
//! | `email_verified` (`verified`) | `bool` | nobody is verified (the verified gate refuses to build) |
//! | `token_version` | integer | the revocation epoch lives in the configured store |
//! | `phone` | `String` / `Option<String>`; unique (E.164, matched exactly) | nobody is found by phone |
//! | `tenant` | `String` or integer, maybe `Option`; mapped only explicitly, read only | nobody has a tenant |
//! | `login = ["..", ..]` | unique string columns, in resolution order | `[email, username]` |
//! | `recovery = ".."` | a unique string column | the email column |
//! | `assume_unique = ["..", ..]` | columns unique in the database though the entity does not say so | none |
//!
//! A flag whose column is not a `bool` (a soft-delete timestamp, a status string, an integer
//! role) maps through functions: `is_active(column = "deleted_at", read = "not_deleted")`
//! with `fn not_deleted(at: &Option<i64>) -> bool`, and optionally `write = "fn"` with
//! `fn(bool) -> ColumnType`. Without a write function crudauth never writes the column
//! (creating a user leaves it to its default; an update of it is refused). Columns renamed
//! with `#[sea_orm(column_name = "..")]` work as they are: the attribute names the Rust field.
//!
//! ```
//! mod members {
//!     use crudauth_sea::AuthUser;
//!     use sea_orm::entity::prelude::*;
//!
//!     pub fn not_deleted(at: &Option<i64>) -> bool { at.is_none() }
//!
//!     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
//!     #[sea_orm(table_name = "members")]
//!     #[auth(password = "passwd", is_active(column = "deleted_at", read = "not_deleted"))]
//!     pub struct Model {
//!         #[sea_orm(primary_key)]
//!         pub id: i32,
//!         #[sea_orm(unique)]
//!         pub email: String,
//!         #[sea_orm(column_name = "PASSWD")]
//!         pub passwd: String,
//!         pub deleted_at: Option<i64>,
//!     }
//!
//!     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//!     pub enum Relation {}
//!     impl ActiveModelBehavior for ActiveModel {}
//! }
//! use crudauth::UserRecord;
//! let gone = members::Model { id: 1, email: "a@example.com".into(), passwd: String::new(), deleted_at: Some(1) };
//! assert!(!gone.is_active());
//! ```
//!
//! A phone number column (`phone`, or mapped with `phone = "column"`) lets passwordless SMS
//! sign-in find a user by number: like a login field it must be unique (`#[sea_orm(unique)]`
//! or `assume_unique`), and it holds numbers in E.164 form, matched exactly.
//!
//! ```
//! mod members {
//!     use crudauth_sea::AuthUser;
//!     use sea_orm::entity::prelude::*;
//!
//!     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
//!     #[sea_orm(table_name = "members")]
//!     #[auth(phone = "mobile")]
//!     pub struct Model {
//!         #[sea_orm(primary_key)]
//!         pub id: i32,
//!         #[sea_orm(unique)]
//!         pub email: String,
//!         pub password: String,
//!         #[sea_orm(unique, nullable)]
//!         pub mobile: Option<String>,
//!     }
//!
//!     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//!     pub enum Relation {}
//!     impl ActiveModelBehavior for ActiveModel {}
//! }
//! use crudauth::user::{LogicalField, UserRecord, UserRepository};
//! let repo = crudauth_sea::SeaUserRepository::<members::Model>::new(Default::default());
//! assert!(repo.schema().has(LogicalField::Phone));
//! let ann = members::Model { id: 1, email: "ann@example.com".into(), password: String::new(),
//!     mobile: Some("+46701234567".into()) };
//! assert_eq!(ann.phone(), Some("+46701234567"));
//! ```
//!
//! Checked at compile time, each error pointing at the token to change: unknown keys, missing
//! columns (with a did-you-mean hint), column types, a flag function's signature against its
//! column, `id` being the primary key, login, recovery and phone fields being unique, a
//! column mapped twice, and required fields without a column.
//!
//! ## Writing to the table outside crudauth
//!
//! crudauth keeps the users it loaded in a per-process cache (see `crudauth::UserCacheConfig`)
//! and retires a cached copy on every write it makes. A write the app makes itself (an admin
//! panel deactivating a user with plain SeaORM, a script promoting one) must be announced with
//! `auth.invalidate_user(&id).await?`, which every process sharing the store sees on its next
//! request; unannounced, the old copy is used for at most `max_age` (5 s by default).
//!
//! ## Behaviour
//!
//! - Emails are stored trimmed and lower-cased and matched case-insensitively.
//! - Phone numbers are stored and matched exactly, in E.164 form: a write of any other form
//!   (see `crudauth::user::normalize_phone`) is refused, and `find_by_phone` never folds case
//!   or accents, whatever the database's collation.
//! - Lengths are checked against the column type before anything is written: a
//!   `String(StringLen::N(n))` column takes `n` characters, a `String` column without a length
//!   255 on every backend, `Text` any.
//! - A unique violation is [`crudauth::RepoError::Duplicate`] naming the field, even when a
//!   concurrent insert wins the race against the pre-check.
//! - `extra` values in [`crudauth::NewUser`] and [`crudauth::UserUpdate`] may only name the
//!   application's own columns; the key and every mapped logical column are refused.

#[cfg(feature = "api-keys")]
mod api_keys;
#[cfg(any(
    feature = "mfa",
    feature = "oauth",
    feature = "passkeys",
    feature = "api-keys"
))]
mod digest;
#[cfg(feature = "mfa")]
mod factors;
#[cfg(feature = "oauth")]
mod links;
mod listing;
mod model;
#[cfg(feature = "passkeys")]
mod passkeys;
mod repo;
mod store;
mod value;

#[cfg(all(feature = "api-keys", feature = "migration"))]
pub use api_keys::migration::CreateApiKeyTable;
#[cfg(feature = "api-keys")]
pub use api_keys::{API_KEY_TABLE, SeaApiKeyStore};
pub use crudauth_derive::AuthUser;
#[cfg(all(feature = "mfa", feature = "migration"))]
pub use factors::migration::CreateFactorTables;
#[cfg(feature = "mfa")]
pub use factors::{FactorTables, SeaFactorStore};
#[cfg(all(feature = "oauth", feature = "migration"))]
pub use links::migration::CreateLinkTable;
#[cfg(feature = "oauth")]
pub use links::{LINK_TABLE, SeaLinkStore};
#[cfg(all(feature = "passkeys", feature = "migration"))]
pub use passkeys::migration::CreatePasskeyTable;
#[cfg(feature = "passkeys")]
pub use passkeys::{PASSKEY_TABLE, SeaPasskeyStore};
pub use repo::{ActiveModelOf, MAX_IDENTIFIER_CHARS, SeaUserRepository};
#[cfg(feature = "migration")]
pub use store::migration;
pub use store::{DatabaseStore, StoreTables};

/// What the generated code reaches. Not a public API: paths here may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::model::{
        AsEpoch, AsFlag, AsOptStr, AsTenant, AuthModel, ColumnMap, IdType, MapOf,
    };
    pub use crudauth;
    pub use sea_orm;
    pub use sea_orm::Value;
}
