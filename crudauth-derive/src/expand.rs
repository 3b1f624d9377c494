//! Code generation, only after validation passed: constants and accessors, one trait impl
//! each for `AuthModel` (the column map) and `UserRecord` (the logical fields).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::DeriveInput;
use syn::spanned::Spanned;

use crate::ast::{Field, Model};
use crate::attr::{self, Logical};
use crate::valid::{self, Resolved};

pub fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let model = Model::from_input(input)?;
    let mut errors = Vec::new();
    let mapping = attr::parse(input, &mut errors);
    let resolved = valid::check(&model, &mapping, &mut errors);
    if let Some(combined) = errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    }) {
        return Err(combined);
    }
    Ok(emit(&model, &resolved, &mapping))
}

/// The `Column` variant SeaORM's `DeriveEntityModel` generates for a field: the field name in
/// UpperCamelCase.
fn variant(field: &Field<'_>) -> syn::Ident {
    let mut out = String::with_capacity(field.name.len());
    let mut upper_next = true;
    let mut prev_lower = false;
    for c in field.name.chars() {
        if c == '_' {
            upper_next = true;
            prev_lower = false;
            continue;
        }
        if upper_next || (c.is_uppercase() && prev_lower) {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.extend(c.to_lowercase());
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    format_ident!("{}", out, span = field.ident.span())
}

fn logical_path(logical: Logical) -> TokenStream {
    let ident = format_ident!("{}", logical.spec().variant);
    quote!(__ca::crudauth::user::LogicalField::#ident)
}

fn emit(model: &Model<'_>, resolved: &Resolved<'_, '_>, mapping: &attr::Mapping) -> TokenStream {
    let ident = model.ident;
    let table = model
        .table_name
        .clone()
        .unwrap_or_else(|| ident.to_string());
    // Validation guarantees both exist.
    let (Some(id), Some(password)) = (resolved.get(Logical::Id), resolved.get(Logical::Password))
    else {
        return TokenStream::new();
    };
    let id_ty = id.ty;
    let id_ident = id.ident;
    let id_col = variant(id);
    let password_col = variant(password);

    let opt_col = |l: Logical| match resolved.get(l) {
        Some(f) => {
            let v = variant(f);
            quote!(::core::option::Option::Some(Column::#v))
        }
        None => quote!(::core::option::Option::None),
    };
    let email_col = opt_col(Logical::Email);
    let username_col = opt_col(Logical::Username);
    let active_col = opt_col(Logical::IsActive);
    let superuser_col = opt_col(Logical::IsSuperuser);
    let verified_col = opt_col(Logical::EmailVerified);
    let version_col = opt_col(Logical::TokenVersion);
    let phone_col = opt_col(Logical::Phone);
    let tenant_col = opt_col(Logical::Tenant);

    let present = Logical::ALL
        .into_iter()
        .filter(|l| resolved.get(*l).is_some())
        .map(logical_path);
    let identity = |f: &Field<'_>| {
        let column = &f.name;
        let logical = match resolved.logical_of(f) {
            Some(l) => {
                let p = logical_path(l);
                quote!(::core::option::Option::Some(#p))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(__ca::crudauth::user::IdentityField { column: #column, logical: #logical })
    };
    let login_identity = resolved.login.iter().map(|f| identity(f));
    let login_cols = resolved.login.iter().map(|f| variant(f));
    let (recovery_identity, recovery_col) = match resolved.recovery {
        Some(f) => {
            let i = identity(f);
            let v = variant(f);
            (
                quote!(::core::option::Option::Some(#i)),
                quote!(::core::option::Option::Some(Column::#v)),
            )
        }
        None => (
            quote!(::core::option::Option::None),
            quote!(::core::option::Option::None),
        ),
    };
    let all_names = model.fields.iter().map(|f| &f.name);
    let all_cols = model.fields.iter().map(variant);

    let str_accessor = |l: Logical| match resolved.get(l) {
        Some(f) => {
            let fi = f.ident;
            quote!(__ca::AsOptStr::as_opt_str(&self.#fi))
        }
        None => quote!(::core::option::Option::None),
    };
    // A flag of another shape is read through the attribute's function; its signature is
    // checked here, on the attribute's span, against the column's type.
    let flag_accessor = |l: Logical, absent: bool| match (resolved.get(l), mapping.flag_fns(l)) {
        (Some(f), Some(fns)) => {
            let (fi, ty, read) = (f.ident, f.ty, &fns.read);
            quote_spanned!(read.span()=> {
                let read: fn(&#ty) -> bool = #read;
                read(&self.#fi)
            })
        }
        (Some(f), None) => {
            let fi = f.ident;
            quote!(__ca::AsFlag::as_flag(&self.#fi))
        }
        (None, _) => quote!(#absent),
    };
    // How each flag is stored: a bool, the attribute's write function, or not at all.
    let flag_values = [
        Logical::IsActive,
        Logical::IsSuperuser,
        Logical::EmailVerified,
    ]
    .into_iter()
    .filter_map(|l| {
        let f = resolved.get(l)?;
        let path = logical_path(l);
        let value = match mapping.flag_fns(l) {
            None => quote!(::core::option::Option::Some(__ca::Value::Bool(
                ::core::option::Option::Some(value)
            ))),
            Some(attr::FlagFns {
                write: Some(write), ..
            }) => {
                let ty = f.ty;
                quote_spanned!(write.span()=> {
                    let write: fn(bool) -> #ty = #write;
                    ::core::option::Option::Some(::core::convert::Into::into(write(value)))
                })
            }
            Some(_) => quote!(::core::option::Option::None),
        };
        Some(quote!(#path => #value,))
    });
    let read_only = [
        Logical::IsActive,
        Logical::IsSuperuser,
        Logical::EmailVerified,
    ]
    .into_iter()
    .filter(|l| {
        resolved.get(*l).is_some() && mapping.flag_fns(*l).is_some_and(|fns| fns.write.is_none())
    })
    .map(logical_path);
    let email = str_accessor(Logical::Email);
    let username = str_accessor(Logical::Username);
    let phone = str_accessor(Logical::Phone);
    let password_ident = password.ident;
    let is_active = flag_accessor(Logical::IsActive, true);
    let is_superuser = flag_accessor(Logical::IsSuperuser, false);
    let email_verified = flag_accessor(Logical::EmailVerified, false);
    let token_version = match resolved.get(Logical::TokenVersion) {
        Some(f) => {
            let fi = f.ident;
            quote!(__ca::AsEpoch::as_epoch(&self.#fi))
        }
        None => quote!(::core::option::Option::None),
    };
    let tenant = match resolved.get(Logical::Tenant) {
        Some(f) => {
            let fi = f.ident;
            quote!(__ca::AsTenant::as_tenant(&self.#fi))
        }
        None => quote!(::core::option::Option::None),
    };
    let id_type = quote_spanned!(id_ty.span()=> type Id = #id_ty;);
    let to_user_id =
        quote_spanned!(id_ty.span()=> <#id_ty as __ca::IdType>::to_user_id(&self.#id_ident));
    let id_kind = quote_spanned!(id_ty.span()=> <#id_ty as __ca::IdType>::KIND);

    quote! {
        #[doc(hidden)]
        #[allow(clippy::all, non_local_definitions)]
        const _: () = {
            use ::crudauth_sea::__private as __ca;

            #[automatically_derived]
            impl __ca::AuthModel for #ident {
                #id_type
                const MAP: __ca::MapOf<Self> = __ca::ColumnMap {
                    schema: __ca::crudauth::user::UserSchema {
                        table: #table,
                        id_kind: #id_kind,
                        present: &[#(#present),*],
                        login: &[#(#login_identity),*],
                        recovery: #recovery_identity,
                        read_only: &[#(#read_only),*],
                    },
                    id: Column::#id_col,
                    email: #email_col,
                    username: #username_col,
                    password: Column::#password_col,
                    is_active: #active_col,
                    is_superuser: #superuser_col,
                    email_verified: #verified_col,
                    token_version: #version_col,
                    phone: #phone_col,
                    tenant: #tenant_col,
                    login: &[#(Column::#login_cols),*],
                    recovery: #recovery_col,
                    columns: &[#((#all_names, Column::#all_cols)),*],
                };
                fn auth_id(&self) -> &Self::Id {
                    &self.#id_ident
                }
                fn flag_value(
                    field: __ca::crudauth::user::LogicalField,
                    value: bool,
                ) -> ::core::option::Option<__ca::Value> {
                    match field {
                        #(#flag_values)*
                        _ => ::core::option::Option::None,
                    }
                }
            }

            #[automatically_derived]
            impl __ca::crudauth::user::UserRecord for #ident {
                fn user_id(&self) -> __ca::crudauth::user::UserId {
                    #to_user_id
                }
                fn email(&self) -> ::core::option::Option<&str> {
                    #email
                }
                fn username(&self) -> ::core::option::Option<&str> {
                    #username
                }
                fn password_hash(&self) -> ::core::option::Option<&str> {
                    __ca::AsOptStr::as_opt_str(&self.#password_ident)
                }
                fn is_active(&self) -> bool {
                    #is_active
                }
                fn is_superuser(&self) -> bool {
                    #is_superuser
                }
                fn email_verified(&self) -> bool {
                    #email_verified
                }
                fn token_version(&self) -> ::core::option::Option<i64> {
                    #token_version
                }
                fn phone(&self) -> ::core::option::Option<&str> {
                    #phone
                }
                fn tenant(&self) -> ::core::option::Option<::std::string::String> {
                    #tenant
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn column_variants_follow_sea_orm_naming() {
        let cases = [
            ("account_id", "AccountId"),
            ("pw_hash", "PwHash"),
            ("email", "Email"),
            ("address_v2", "AddressV2"),
            ("token_version", "TokenVersion"),
        ];
        for (field, want) in cases {
            let ty: syn::Type = syn::parse_quote!(String);
            let ident = syn::Ident::new(field, proc_macro2::Span::call_site());
            let f = crate::ast::Field {
                ident: &ident,
                name: field.to_owned(),
                ty: &ty,
                primary_key: false,
                unique: false,
            };
            assert_eq!(super::variant(&f), want);
        }
    }
}
