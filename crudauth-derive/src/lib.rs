//! `#[derive(AuthUser)]`: maps a SeaORM entity model's columns to the crudauth user contract
//! and checks the mapping at compile time.
//!
//! Use it through `crudauth_sea` (`use crudauth_sea::AuthUser;`), which documents the
//! attribute in full. The macro is split by phase: `ast` reads the struct, `attr` parses
//! `#[auth(...)]`, `valid` checks the mapping against the struct, `expand` emits the code.

mod ast;
mod attr;
mod expand;
mod suggest;
mod valid;

use proc_macro::TokenStream;

/// Derives the crudauth user contract for a SeaORM entity model.
///
/// See the `crudauth_sea` crate documentation for the attribute keys and checks.
#[proc_macro_derive(AuthUser, attributes(auth))]
pub fn derive_auth_user(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
