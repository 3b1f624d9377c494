//! Every semantic check of the mapping against the model, each spanned on the token to change.

use proc_macro2::Span;
use syn::{GenericArgument, PathArguments, Type};

use crate::ast::{Field, Model};
use crate::attr::{COUNT, ColumnRef, Logical, Mapping};

/// The mapping after defaults and checks: a column for each logical field that has one.
pub struct Resolved<'m, 'a> {
    /// Indexed like `Logical::ALL`.
    pub fields: [Option<&'m Field<'a>>; COUNT],
    pub login: Vec<&'m Field<'a>>,
    pub recovery: Option<&'m Field<'a>>,
}

impl<'m, 'a> Resolved<'m, 'a> {
    pub fn get(&self, logical: Logical) -> Option<&'m Field<'a>> {
        self.fields[index(logical)]
    }

    /// The logical field a column is mapped to, if any.
    pub fn logical_of(&self, field: &Field<'_>) -> Option<Logical> {
        Logical::ALL
            .into_iter()
            .find(|l| self.get(*l).is_some_and(|f| f.name == field.name))
    }
}

fn index(logical: Logical) -> usize {
    Logical::ALL.iter().position(|l| *l == logical).unwrap_or(0)
}

/// What a column's Rust type is, as far as the contract cares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    Str,
    Bool,
    Int,
    Other,
}

/// Classifies a field type by its last path segment, looking through one `Option<..>`.
pub fn type_kind(ty: &Type) -> TypeKind {
    let Type::Path(path) = ty else {
        return TypeKind::Other;
    };
    let Some(last) = path.path.segments.last() else {
        return TypeKind::Other;
    };
    if last.ident == "Option" {
        if let PathArguments::AngleBracketed(args) = &last.arguments
            && let Some(GenericArgument::Type(inner)) = args.args.first()
        {
            return type_kind(inner);
        }
        return TypeKind::Other;
    }
    match last.ident.to_string().as_str() {
        "String" => TypeKind::Str,
        "bool" => TypeKind::Bool,
        "i16" | "i32" | "i64" | "u16" | "u32" => TypeKind::Int,
        _ => TypeKind::Other,
    }
}

fn expected_kind(logical: Logical) -> Option<(TypeKind, &'static str)> {
    match logical {
        Logical::Id => None,
        Logical::Email | Logical::Username | Logical::Password | Logical::Phone => {
            Some((TypeKind::Str, "a string (`String` or `Option<String>`)"))
        }
        Logical::IsActive | Logical::IsSuperuser | Logical::EmailVerified => Some((
            TypeKind::Bool,
            "a flag (`bool`), or be read through a function: \
                 flag(column = \"..\", read = \"fn(&ColumnType) -> bool\")",
        )),
        Logical::TokenVersion => Some((TypeKind::Int, "an integer (`i32` or `i64`)")),
        // Checked on its own: a string or an integer.
        Logical::Tenant => None,
    }
}

/// Looks a column up; on a miss records an error on the literal with a did-you-mean hint.
fn lookup<'m, 'a>(
    model: &'m Model<'a>,
    column: &ColumnRef,
    errors: &mut Vec<syn::Error>,
) -> Option<&'m Field<'a>> {
    if let Some(field) = model.field(&column.name) {
        return Some(field);
    }
    let hint = crate::suggest::closest(&column.name, model.fields.iter().map(|f| f.name.as_str()))
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default();
    errors.push(syn::Error::new(
        column.span,
        format!("no field `{}` on `{}`{hint}", column.name, model.ident),
    ));
    None
}

/// Where an error about a resolved field should point: the attribute literal if the mapping
/// was explicit, else the field itself.
fn span_of(field: &Field<'_>, explicit: Option<&ColumnRef>) -> Span {
    explicit.map_or_else(|| field.ident.span(), |c| c.span)
}

pub fn check<'m, 'a>(
    model: &'m Model<'a>,
    mapping: &Mapping,
    errors: &mut Vec<syn::Error>,
) -> Resolved<'m, 'a> {
    // When the attribute itself had errors, checks for what is *missing* would only echo
    // them (a misspelt key leaves its field unmapped), so they are skipped.
    let attribute_ok = errors.is_empty();
    let mut resolved = Resolved {
        fields: [None; COUNT],
        login: Vec::new(),
        recovery: None,
    };
    let mut explicit_of: [Option<&ColumnRef>; COUNT] = [None; COUNT];

    // Explicit mappings: the column exists, and no column is mapped twice.
    for (logical, column) in &mapping.explicit {
        let Some(field) = lookup(model, column, errors) else {
            continue;
        };
        if let Some(other) = Logical::ALL
            .into_iter()
            .find(|l| resolved.get(*l).is_some_and(|f| f.name == field.name))
        {
            errors.push(syn::Error::new(
                column.span,
                format!(
                    "column `{}` is already mapped to `{}`; each column can back one logical field",
                    column.name,
                    other.name()
                ),
            ));
            continue;
        }
        resolved.fields[index(*logical)] = Some(field);
        explicit_of[index(*logical)] = Some(column);
    }

    // Defaults: a field named like the logical field, unless that column is taken already.
    for logical in Logical::ALL {
        if resolved.get(logical).is_some() || explicit_of[index(logical)].is_some() {
            continue;
        }
        let candidate = match logical {
            // Turning tenants on changes who may read what: never by a column's name alone.
            Logical::Tenant => None,
            Logical::Id => model.field("id").or_else(|| {
                let mut keys = model.primary_keys();
                match (keys.next(), keys.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }),
            other => model.field(other.name()),
        };
        if let Some(field) = candidate {
            let taken = resolved
                .fields
                .iter()
                .flatten()
                .any(|f| f.name == field.name);
            if !taken {
                resolved.fields[index(logical)] = Some(field);
            }
        }
    }

    // Types (a flag read through a function is checked against that function's signature
    // by the generated code, on the attribute's span).
    for logical in Logical::ALL {
        let (Some(field), Some((kind, what))) = (resolved.get(logical), expected_kind(logical))
        else {
            continue;
        };
        if mapping.flag_fns(logical).is_some() {
            continue;
        }
        if type_kind(field.ty) != kind {
            errors.push(syn::Error::new_spanned(
                field.ty,
                format!(
                    "`{}` is mapped to `{}`, which must be {what}",
                    logical.name(),
                    field.name
                ),
            ));
        }
    }

    // The tenant: a string or an integer column.
    if let Some(tenant) = resolved.get(Logical::Tenant)
        && !matches!(type_kind(tenant.ty), TypeKind::Str | TypeKind::Int)
    {
        errors.push(syn::Error::new_spanned(
            tenant.ty,
            format!(
                "`tenant` is mapped to `{}`, which must be a string or an integer column \
                 (`String`, `i16`..`i64`, `u16`, `u32`, or an `Option` of one)",
                tenant.name
            ),
        ));
    }

    // Required fields.
    let attempted = |l: Logical| mapping.explicit.iter().any(|(m, _)| *m == l);
    for logical in [Logical::Id, Logical::Password] {
        if attribute_ok && resolved.get(logical).is_none() && !attempted(logical) {
            errors.push(syn::Error::new(
                model.ident.span(),
                format!(
                    "`{}` has no column for the required field `{}`: add a field named `{}` or \
                     map one with #[auth({} = \"column\")]",
                    model.ident,
                    logical.name(),
                    logical.name(),
                    logical.name()
                ),
            ));
        }
    }

    // The id is the (single) primary key.
    if let Some(id) = resolved.get(Logical::Id) {
        let span = span_of(id, explicit_of[index(Logical::Id)]);
        if !id.primary_key {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`id` is mapped to `{}`, which is not the primary key: mark it \
                     #[sea_orm(primary_key)] or map `id` to the primary key",
                    id.name
                ),
            ));
        } else if model.primary_keys().count() > 1 {
            errors.push(syn::Error::new(
                span,
                "composite primary keys are not supported: the user table needs a single-column key",
            ));
        }
    }

    // Columns the app vouches are unique in the database (not declared so in the entity).
    for column in &mapping.assume_unique {
        lookup(model, column, errors);
    }
    let assumed = |field: &Field<'_>| mapping.assume_unique.iter().any(|c| c.name == field.name);

    // Login fields: explicit list or [email, username]; each a unique string column.
    match &mapping.login {
        Some((columns, span)) => {
            if columns.is_empty() {
                errors.push(syn::Error::new(*span, "`login` needs at least one column"));
            }
            for column in columns {
                let Some(field) = lookup(model, column, errors) else {
                    continue;
                };
                if resolved.login.iter().any(|f| f.name == field.name) {
                    errors.push(syn::Error::new(
                        column.span,
                        format!("`{}` is listed twice in `login`", column.name),
                    ));
                    continue;
                }
                check_identity(field, column.span, "login", assumed(field), errors);
                resolved.login.push(field);
            }
        }
        None => {
            for logical in [Logical::Email, Logical::Username] {
                if let Some(field) = resolved.get(logical) {
                    let span = span_of(field, explicit_of[index(logical)]);
                    check_identity(field, span, "login", assumed(field), errors);
                    resolved.login.push(field);
                }
            }
            let login_attempted = attempted(Logical::Email) || attempted(Logical::Username);
            if attribute_ok && resolved.login.is_empty() && !login_attempted {
                errors.push(syn::Error::new(
                    model.ident.span(),
                    format!(
                        "`{}` has no login field: add an `email` or `username` column, or list \
                         the login columns with #[auth(login = [\"...\"])]",
                        model.ident
                    ),
                ));
            }
        }
    }

    // Recovery: explicit or the email column.
    match &mapping.recovery {
        Some(column) => {
            if let Some(field) = lookup(model, column, errors) {
                check_identity(field, column.span, "recovery", assumed(field), errors);
                resolved.recovery = Some(field);
            }
        }
        None => {
            if let Some(email) = resolved.get(Logical::Email) {
                // Uniqueness was checked above when email is a login field.
                if !resolved.login.iter().any(|f| f.name == email.name) {
                    let span = span_of(email, explicit_of[index(Logical::Email)]);
                    check_identity(email, span, "recovery", assumed(email), errors);
                }
                resolved.recovery = Some(email);
            }
        }
    }

    // The phone number finds one user (passwordless sign-in by SMS): unique, like a login
    // field. A wrong type was reported above, and a login or recovery column was checked
    // there already.
    if let Some(phone) = resolved.get(Logical::Phone)
        && type_kind(phone.ty) == TypeKind::Str
        && !resolved.login.iter().any(|f| f.name == phone.name)
        && resolved.recovery.is_none_or(|f| f.name != phone.name)
    {
        let span = span_of(phone, explicit_of[index(Logical::Phone)]);
        check_identity(phone, span, "phone", assumed(phone), errors);
    }

    resolved
}

/// A login, recovery or phone column identifies one user: a unique (or primary key) string
/// column.
fn check_identity(
    field: &Field<'_>,
    span: Span,
    role: &str,
    assumed_unique: bool,
    errors: &mut Vec<syn::Error>,
) {
    if type_kind(field.ty) != TypeKind::Str {
        errors.push(syn::Error::new(
            span,
            format!(
                "{role} field `{}` must be a string column (`String` or `Option<String>`)",
                field.name
            ),
        ));
    } else if !field.unique && !field.primary_key && !assumed_unique {
        errors.push(syn::Error::new(
            span,
            format!(
                "{role} field `{}` must identify one user: mark it #[sea_orm(unique)], or, when \
                 the database has the unique index the entity does not declare, \
                 #[auth(assume_unique = [\"{}\"])]",
                field.name, field.name
            ),
        ));
    }
}
