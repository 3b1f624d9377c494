//! `#[auth(...)]` parsed into plain data: which column each logical field maps to.

use proc_macro2::Span;
use syn::{DeriveInput, LitStr};

/// The logical fields of the contract, as they appear as attribute keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logical {
    Id,
    Email,
    Username,
    Password,
    IsActive,
    IsSuperuser,
    EmailVerified,
    TokenVersion,
}

impl Logical {
    pub const ALL: [Logical; 8] = [
        Logical::Id,
        Logical::Email,
        Logical::Username,
        Logical::Password,
        Logical::IsActive,
        Logical::IsSuperuser,
        Logical::EmailVerified,
        Logical::TokenVersion,
    ];

    /// The contract name, which is also the default column name.
    pub fn name(self) -> &'static str {
        match self {
            Logical::Id => "id",
            Logical::Email => "email",
            Logical::Username => "username",
            Logical::Password => "password",
            Logical::IsActive => "is_active",
            Logical::IsSuperuser => "is_superuser",
            Logical::EmailVerified => "email_verified",
            Logical::TokenVersion => "token_version",
        }
    }

    /// The attribute keys that name this field (the contract name plus a short alias).
    fn from_key(key: &str) -> Option<Logical> {
        Some(match key {
            "id" => Logical::Id,
            "email" => Logical::Email,
            "username" => Logical::Username,
            "password" => Logical::Password,
            "is_active" | "active" => Logical::IsActive,
            "is_superuser" | "superuser" => Logical::IsSuperuser,
            "email_verified" | "verified" => Logical::EmailVerified,
            "token_version" => Logical::TokenVersion,
            _ => return None,
        })
    }
}

/// Every key `#[auth(...)]` accepts, for the did-you-mean hint.
pub const KEYS: &[&str] = &[
    "id",
    "email",
    "username",
    "password",
    "is_active",
    "active",
    "is_superuser",
    "superuser",
    "email_verified",
    "verified",
    "token_version",
    "login",
    "recovery",
];

/// A column name as written in the attribute, with its span for errors.
#[derive(Clone)]
pub struct ColumnRef {
    pub name: String,
    pub span: Span,
}

impl From<&LitStr> for ColumnRef {
    fn from(lit: &LitStr) -> Self {
        ColumnRef {
            name: lit.value(),
            span: lit.span(),
        }
    }
}

/// The parsed attribute: explicit mappings only; defaults are resolved in `valid`.
#[derive(Default)]
pub struct Mapping {
    pub explicit: Vec<(Logical, ColumnRef)>,
    pub login: Option<(Vec<ColumnRef>, Span)>,
    pub recovery: Option<ColumnRef>,
}

/// Parses every `#[auth(...)]` on the struct, collecting all errors rather than the first.
pub fn parse(input: &DeriveInput, errors: &mut Vec<syn::Error>) -> Mapping {
    let mut mapping = Mapping::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("auth")) {
        if matches!(attr.meta, syn::Meta::Path(_)) {
            continue; // a bare `#[auth]`: all defaults
        }
        let result = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            if key == "login" {
                let value = meta.value()?;
                let span = value.span();
                let list: syn::ExprArray = value.parse().map_err(|_| {
                    syn::Error::new(
                        span,
                        "expected a list of column names: login = [\"email\", \"username\"]",
                    )
                })?;
                let mut columns = Vec::new();
                for elem in &list.elems {
                    match elem {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(lit),
                            ..
                        }) => columns.push(ColumnRef::from(lit)),
                        other => errors.push(syn::Error::new_spanned(
                            other,
                            "expected a string literal naming a column",
                        )),
                    }
                }
                if mapping.login.is_some() {
                    errors.push(meta.error("`login` is given twice"));
                }
                mapping.login = Some((columns, list.bracket_token.span.join()));
                return Ok(());
            }
            let logical = Logical::from_key(&key);
            if logical.is_none() && key != "recovery" {
                let hint = crate::suggest::closest(&key, KEYS.iter().copied())
                    .map(|k| format!(": did you mean `{k}`?"))
                    .unwrap_or_default();
                // Consume a value so the remaining keys still parse.
                if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<syn::Expr>()?;
                }
                errors.push(syn::Error::new_spanned(
                    &meta.path,
                    format!(
                        "unknown key `{key}` in #[auth(...)]{hint} (the keys are: {})",
                        KEYS.join(", ")
                    ),
                ));
                return Ok(());
            }
            let value = meta.value()?;
            let expr: syn::Expr = value.parse()?;
            let lit = match &expr {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(lit),
                    ..
                }) => lit,
                other => {
                    errors.push(syn::Error::new_spanned(
                        other,
                        format!(
                            "expected a string literal naming a column: {key} = \"column_name\""
                        ),
                    ));
                    return Ok(());
                }
            };
            match logical {
                Some(logical) => {
                    if mapping.explicit.iter().any(|(l, _)| *l == logical) {
                        errors.push(syn::Error::new(
                            lit.span(),
                            format!("`{}` is mapped twice", logical.name()),
                        ));
                    } else {
                        mapping.explicit.push((logical, lit.into()));
                    }
                }
                None => {
                    if mapping.recovery.is_some() {
                        errors.push(syn::Error::new(lit.span(), "`recovery` is given twice"));
                    }
                    mapping.recovery = Some(lit.into());
                }
            }
            Ok(())
        });
        if let Err(err) = result {
            errors.push(err);
        }
    }
    mapping
}
