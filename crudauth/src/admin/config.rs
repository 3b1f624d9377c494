//! The users admin's settings: which of the application's own columns it shows and lets
//! be written, and the page sizes of the listing.

use std::collections::BTreeSet;

use crate::error::ConfigError;

/// Settings of the users admin routes.
///
/// The application's own columns (those of its model that are no logical field) are
/// never shown or written unless allow-listed here: `readable` ones appear in every user
/// JSON the routes answer, `writable` ones (readable too) may be set by `PATCH /users/me`
/// and `PATCH /users/{id}`. `build` refuses a name that is not such a column.
///
/// ```
/// use crudauth::admin::UsersAdminConfig;
/// let c = UsersAdminConfig::default().readable(["created_at"]).writable(["display_name"]);
/// assert!(c.is_readable("created_at") && !c.is_writable("created_at"));
/// assert!(c.is_readable("display_name") && c.is_writable("display_name"));
/// assert_eq!((c.default_page_size, c.max_page_size), (50, 100));
/// ```
#[derive(Clone, Debug)]
pub struct UsersAdminConfig {
    /// Own columns shown (read-only).
    pub readable: BTreeSet<String>,
    /// Own columns shown and writable.
    pub writable: BTreeSet<String>,
    /// Users per page of `GET /users` when no `limit` is given (default 50).
    pub default_page_size: u64,
    /// The largest `limit` accepted (default 100); a larger one is answered 422.
    pub max_page_size: u64,
}

impl Default for UsersAdminConfig {
    fn default() -> Self {
        UsersAdminConfig {
            readable: BTreeSet::new(),
            writable: BTreeSet::new(),
            default_page_size: 50,
            max_page_size: 100,
        }
    }
}

impl UsersAdminConfig {
    /// Adds own columns shown read-only.
    ///
    /// ```
    /// let c = crudauth::admin::UsersAdminConfig::default().readable(["bio"]);
    /// assert!(c.is_readable("bio"));
    /// ```
    pub fn readable<I: IntoIterator<Item = S>, S: Into<String>>(mut self, columns: I) -> Self {
        self.readable.extend(columns.into_iter().map(Into::into));
        self
    }

    /// Adds own columns shown and writable.
    ///
    /// ```
    /// let c = crudauth::admin::UsersAdminConfig::default().writable(["bio"]);
    /// assert!(c.is_writable("bio"));
    /// ```
    pub fn writable<I: IntoIterator<Item = S>, S: Into<String>>(mut self, columns: I) -> Self {
        self.writable.extend(columns.into_iter().map(Into::into));
        self
    }

    /// Whether the own column `name` is shown.
    ///
    /// ```
    /// assert!(!crudauth::admin::UsersAdminConfig::default().is_readable("bio"));
    /// ```
    pub fn is_readable(&self, name: &str) -> bool {
        self.readable.contains(name) || self.writable.contains(name)
    }

    /// Whether the own column `name` may be written.
    ///
    /// ```
    /// assert!(!crudauth::admin::UsersAdminConfig::default().is_writable("bio"));
    /// ```
    pub fn is_writable(&self, name: &str) -> bool {
        self.writable.contains(name)
    }

    /// Every shown own column (readable and writable), in name order.
    pub(crate) fn shown(&self) -> impl Iterator<Item = &str> {
        self.readable.union(&self.writable).map(String::as_str)
    }

    /// Refuses page sizes out of range and any allow-listed name that is not one of the
    /// table's own columns (`own`, from the repository).
    pub(crate) fn validate(&self, own: &[&'static str]) -> Result<(), ConfigError> {
        if self.max_page_size == 0 || self.max_page_size > 1000 {
            return Err(ConfigError::Invalid(
                "users_admin: max_page_size must be between 1 and 1000".into(),
            ));
        }
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            return Err(ConfigError::Invalid(
                "users_admin: default_page_size must be between 1 and max_page_size".into(),
            ));
        }
        if let Some(unknown) = self.shown().find(|name| !own.contains(name)) {
            return Err(ConfigError::Invalid(format!(
                "users_admin: `{unknown}` is not one of the user table's own columns (a \
                 contract field or a name the model does not have); own columns: {own:?}"
            )));
        }
        Ok(())
    }
}
