//! Listing users for the administration routes: the filter and page a repository is asked
//! for ([`UserFilter`]) and what it answers ([`UserPage`]).

/// Which users to list, and which page of them: users whose email starts with
/// `email_prefix` (case-insensitively), with the given flags, ordered by ascending id,
/// `limit` of them after skipping `offset`.
///
/// ```
/// use crudauth::user::UserFilter;
/// let filter = UserFilter { is_superuser: Some(true), ..UserFilter::page(0, 50) };
/// assert_eq!((filter.offset, filter.limit), (0, 50));
/// assert!(filter.email_prefix.is_none() && filter.is_active.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Only users whose (normalised) email starts with this, compared lower-cased. A
    /// repository treats `%`, `_` and `\` in it as plain characters.
    pub email_prefix: Option<String>,
    /// Only active (`Some(true)`) or inactive (`Some(false)`) users.
    pub is_active: Option<bool>,
    /// Only superusers (`Some(true)`) or the others (`Some(false)`).
    pub is_superuser: Option<bool>,
    /// How many matching users to skip.
    pub offset: u64,
    /// How many to answer at most.
    pub limit: u64,
}

impl UserFilter {
    /// Every user, one page of them.
    ///
    /// ```
    /// # use crudauth::user::UserFilter;
    /// assert_eq!(UserFilter::page(100, 20).offset, 100);
    /// ```
    pub fn page(offset: u64, limit: u64) -> Self {
        UserFilter {
            offset,
            limit,
            ..UserFilter::default()
        }
    }

    /// Whether `email` passes the prefix filter (the reference a repository's SQL `LIKE`
    /// must agree with).
    ///
    /// ```
    /// # use crudauth::user::UserFilter;
    /// let f = UserFilter { email_prefix: Some("An".into()), ..UserFilter::page(0, 10) };
    /// assert!(f.email_matches(Some("ann@example.com")));
    /// assert!(!f.email_matches(Some("bob@example.com")) && !f.email_matches(None));
    /// ```
    pub fn email_matches(&self, email: Option<&str>) -> bool {
        match &self.email_prefix {
            None => true,
            Some(prefix) => {
                email.is_some_and(|e| e.to_lowercase().starts_with(prefix.to_lowercase().as_str()))
            }
        }
    }
}

/// One page of users and how many match the filter in all.
///
/// ```
/// use crudauth::user::UserPage;
/// let page: UserPage<()> = UserPage { users: vec![], total: 0 };
/// assert!(page.users.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPage<U> {
    /// The users of the page, by ascending id.
    pub users: Vec<U>,
    /// How many users match the filter (every page together).
    pub total: u64,
}
