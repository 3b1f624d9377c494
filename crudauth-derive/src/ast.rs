//! The user's model, re-shaped: its named fields, their types and their `#[sea_orm]` flags.

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Type};

/// The model struct as the macro sees it.
pub struct Model<'a> {
    pub ident: &'a Ident,
    pub table_name: Option<String>,
    pub fields: Vec<Field<'a>>,
}

/// One column of the model.
pub struct Field<'a> {
    pub ident: &'a Ident,
    /// The field name without a raw-identifier prefix.
    pub name: String,
    pub ty: &'a Type,
    pub primary_key: bool,
    pub unique: bool,
}

impl<'a> Model<'a> {
    pub fn from_input(input: &'a DeriveInput) -> syn::Result<Self> {
        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named,
                Fields::Unnamed(fields) => {
                    return Err(syn::Error::new(
                        fields.span(),
                        "#[derive(AuthUser)] needs a struct with named fields (a SeaORM entity \
                         model), not a tuple struct",
                    ));
                }
                Fields::Unit => {
                    return Err(syn::Error::new(
                        input.ident.span(),
                        "#[derive(AuthUser)] needs a struct with named fields (a SeaORM entity \
                         model), not a unit struct",
                    ));
                }
            },
            Data::Enum(data) => {
                return Err(syn::Error::new(
                    data.enum_token.span,
                    "#[derive(AuthUser)] can only be used on a struct (a SeaORM entity model), \
                     not an enum",
                ));
            }
            Data::Union(data) => {
                return Err(syn::Error::new(
                    data.union_token.span,
                    "#[derive(AuthUser)] can only be used on a struct (a SeaORM entity model), \
                     not a union",
                ));
            }
        };

        let mut table_name = None;
        for attr in input.attrs.iter().filter(|a| a.path().is_ident("sea_orm")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table_name") {
                    table_name = Some(meta.value()?.parse::<LitStr>()?.value());
                } else {
                    skip_meta_value(&meta)?;
                }
                Ok(())
            })?;
        }

        let mut fields = Vec::new();
        for field in &named.named {
            let Some(ident) = &field.ident else { continue };
            let mut flags = SeaOrmFlags::default();
            for attr in field.attrs.iter().filter(|a| a.path().is_ident("sea_orm")) {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("primary_key") {
                        flags.primary_key = true;
                    } else if meta.path.is_ident("unique") {
                        flags.unique = true;
                    } else if meta.path.is_ident("ignore")
                        || meta.path.is_ident("has_one")
                        || meta.path.is_ident("has_many")
                        || meta.path.is_ident("belongs_to")
                        || meta.path.is_ident("self_ref")
                    {
                        flags.not_a_column = true;
                    }
                    skip_meta_value(&meta)
                })?;
            }
            if flags.not_a_column {
                continue;
            }
            let name = ident.to_string();
            let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
            fields.push(Field {
                ident,
                name,
                ty: &field.ty,
                primary_key: flags.primary_key,
                unique: flags.unique,
            });
        }

        Ok(Model {
            ident: &input.ident,
            table_name,
            fields,
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn primary_keys(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| f.primary_key)
    }
}

#[derive(Default)]
struct SeaOrmFlags {
    primary_key: bool,
    unique: bool,
    not_a_column: bool,
}

/// Consumes whatever follows a `#[sea_orm(...)]` key we do not interpret: `= value`, a
/// parenthesised list, or nothing. SeaORM validates these itself.
fn skip_meta_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}
