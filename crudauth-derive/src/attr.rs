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
    Phone,
    Tenant,
}

/// One logical field of the contract: every fact the derive knows about it, in one row.
pub struct Spec {
    pub logical: Logical,
    /// The contract name: the attribute key, and the default column name.
    pub name: &'static str,
    /// A short attribute key accepted beside the name (`active = "..."`).
    pub alias: Option<&'static str>,
    /// The variant of `crudauth::user::LogicalField` the generated code names.
    pub variant: &'static str,
}

/// How many logical fields there are.
pub const COUNT: usize = 10;

/// The one table of logical fields, in the declaration order of [`Logical`] (which indexes
/// it).
pub const TABLE: [Spec; COUNT] = [
    spec(Logical::Id, "id", None, "Id"),
    spec(Logical::Email, "email", None, "Email"),
    spec(Logical::Username, "username", None, "Username"),
    spec(Logical::Password, "password", None, "Password"),
    spec(Logical::IsActive, "is_active", Some("active"), "IsActive"),
    spec(
        Logical::IsSuperuser,
        "is_superuser",
        Some("superuser"),
        "IsSuperuser",
    ),
    spec(
        Logical::EmailVerified,
        "email_verified",
        Some("verified"),
        "EmailVerified",
    ),
    spec(Logical::TokenVersion, "token_version", None, "TokenVersion"),
    spec(Logical::Phone, "phone", None, "Phone"),
    spec(Logical::Tenant, "tenant", None, "Tenant"),
];

const fn spec(
    logical: Logical,
    name: &'static str,
    alias: Option<&'static str>,
    variant: &'static str,
) -> Spec {
    Spec {
        logical,
        name,
        alias,
        variant,
    }
}

/// The keys `#[auth(...)]` takes besides the logical fields.
const OTHER_KEYS: [&str; 3] = ["login", "recovery", "assume_unique"];

impl Logical {
    /// Every logical field, in table order.
    pub const ALL: [Logical; COUNT] = {
        let mut all = [Logical::Id; COUNT];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].logical;
            i += 1;
        }
        all
    };

    /// This field's row of [`TABLE`].
    pub fn spec(self) -> &'static Spec {
        &TABLE[self as usize]
    }

    /// The contract name, which is also the default column name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The attribute keys that name this field (the contract name plus a short alias).
    fn from_key(key: &str) -> Option<Logical> {
        TABLE
            .iter()
            .find(|s| s.name == key || s.alias == Some(key))
            .map(|s| s.logical)
    }
}

/// Every key `#[auth(...)]` accepts, for the did-you-mean hint and the error message.
pub fn keys() -> Vec<&'static str> {
    TABLE
        .iter()
        .flat_map(|s| std::iter::once(s.name).chain(s.alias))
        .chain(OTHER_KEYS)
        .collect()
}

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

/// The functions a flag of another shape is read (and maybe written) through:
/// `is_active(column = "deleted_at", read = "path::to::fn", write = "path::to::fn")`.
pub struct FlagFns {
    /// `fn(&ColumnType) -> bool`.
    pub read: syn::Path,
    /// `fn(bool) -> ColumnType`; without it crudauth never writes the column.
    pub write: Option<syn::Path>,
}

/// The parsed attribute: explicit mappings only; defaults are resolved in `valid`.
#[derive(Default)]
pub struct Mapping {
    pub explicit: Vec<(Logical, ColumnRef)>,
    pub login: Option<(Vec<ColumnRef>, Span)>,
    pub recovery: Option<ColumnRef>,
    /// Flags mapped through functions.
    pub flag_fns: Vec<(Logical, FlagFns)>,
    /// Columns unique in the database though not declared so in the entity.
    pub assume_unique: Vec<ColumnRef>,
}

impl Mapping {
    /// The functions of a flag mapped through them.
    pub fn flag_fns(&self, logical: Logical) -> Option<&FlagFns> {
        self.flag_fns
            .iter()
            .find(|(l, _)| *l == logical)
            .map(|(_, f)| f)
    }
}

fn is_flag(logical: Logical) -> bool {
    matches!(
        logical,
        Logical::IsActive | Logical::IsSuperuser | Logical::EmailVerified
    )
}

/// A list of string literals naming columns: `["a", "b"]`.
fn column_list(
    meta: &syn::meta::ParseNestedMeta<'_>,
    key: &str,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<(Vec<ColumnRef>, Span)> {
    let value = meta.value()?;
    let span = value.span();
    let list: syn::ExprArray = value.parse().map_err(|_| {
        syn::Error::new(
            span,
            format!("expected a list of column names: {key} = [\"email\", \"username\"]"),
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
    Ok((columns, list.bracket_token.span.join()))
}

/// `flag(column = "..", read = "..", write = "..")`: the column and its functions.
fn flag_list(
    meta: &syn::meta::ParseNestedMeta<'_>,
    logical: Logical,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<Option<(ColumnRef, FlagFns)>> {
    let (mut column, mut read, mut write) = (None, None, None);
    meta.parse_nested_meta(|inner| {
        let key = inner.path.get_ident().map(ToString::to_string).unwrap_or_default();
        let lit: LitStr = inner.value()?.parse()?;
        match key.as_str() {
            "column" => column = Some(ColumnRef::from(&lit)),
            "read" | "write" => {
                let path: syn::Path = lit.parse()?;
                if key == "read" { read = Some(path) } else { write = Some(path) }
            }
            _ => errors.push(syn::Error::new_spanned(
                &inner.path,
                format!("unknown key `{key}`: a flag takes column = \"..\", read = \"fn\", write = \"fn\""),
            )),
        }
        Ok(())
    })?;
    let (Some(column), Some(read)) = (column, read) else {
        errors.push(meta.error(format!(
            "`{}(...)` needs column = \"..\" and read = \"a fn(&ColumnType) -> bool\" \
             (and write = \"a fn(bool) -> ColumnType\" if crudauth may write the flag)",
            logical.name()
        )));
        return Ok(None);
    };
    Ok(Some((column, FlagFns { read, write })))
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
                let list = column_list(&meta, "login", errors)?;
                if mapping.login.is_some() {
                    errors.push(meta.error("`login` is given twice"));
                }
                mapping.login = Some(list);
                return Ok(());
            }
            if key == "assume_unique" {
                let (columns, _) = column_list(&meta, "assume_unique", errors)?;
                mapping.assume_unique.extend(columns);
                return Ok(());
            }
            let logical = Logical::from_key(&key);
            if let Some(logical) = logical
                && meta.input.peek(syn::token::Paren)
            {
                if !is_flag(logical) {
                    errors.push(syn::Error::new_spanned(
                        &meta.path,
                        format!(
                            "only the flags (is_active, is_superuser, email_verified) map through \
                             functions; `{}` takes a column: {key} = \"column_name\"",
                            logical.name()
                        ),
                    ));
                    meta.parse_nested_meta(|inner| {
                        let _: syn::Expr = inner.value()?.parse()?;
                        Ok(())
                    })?;
                    return Ok(());
                }
                if let Some((column, fns)) = flag_list(&meta, logical, errors)? {
                    if mapping.explicit.iter().any(|(l, _)| *l == logical) {
                        errors.push(syn::Error::new(
                            column.span,
                            format!("`{}` is mapped twice", logical.name()),
                        ));
                    } else {
                        mapping.explicit.push((logical, column));
                        mapping.flag_fns.push((logical, fns));
                    }
                }
                return Ok(());
            }
            if logical.is_none() && key != "recovery" {
                let keys = keys();
                let hint = crate::suggest::closest(&key, keys.iter().copied())
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
                        keys.join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_indexed_by_declaration_order() {
        for (i, spec) in TABLE.iter().enumerate() {
            assert_eq!(spec.logical as usize, i, "{}", spec.name);
            assert_eq!(Logical::from_key(spec.name), Some(spec.logical));
        }
        assert_eq!(keys().len(), TABLE.len() + 3 + OTHER_KEYS.len());
    }
}
