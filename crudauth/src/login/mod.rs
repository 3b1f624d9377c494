//! The password path: the one credential check behind `/login` and `/token`
//! ([`Login::authenticate_password`]), the re-checks of a signed-in user's password, and the
//! password changes ([`Login::validate_password`], [`Login::set_password`]).
//!
//! Lockout is counted before any hashing, an unknown identifier does the same store and
//! database work as a known one and verifies against a dummy hash, the disabled-account and
//! veto checks come after the password check, and every refusal reaches the hooks once.

mod change;

use std::sync::Arc;
use std::time::Duration;

use crate::client_ip::{ClientMeta, ip_key};
use crate::core::Core;
use crate::error::AuthError;
use crate::hooks::{Event, HookContext, LoginFailure, Payload};
use crate::lockout::{Attempt, LockSubject};
pub(crate) use crate::password::busy;
use crate::store::fail_closed;
pub(crate) use crate::store::repo_fault;
use crate::user::{MAX_IDENTIFIER_CHARS, UserId, UserRecord};

/// A password sign-in whose success waits for a second factor: the attempt is given back
/// to the lockout (as the original's `forget_attempt`: a right password neither counts nor
/// clears the failures before it), and the client is remembered only with the code.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingSuccess {
    requester: String,
}

impl PendingSuccess {
    /// The success of a sign-in from this requester (its `ip_key`).
    #[cfg_attr(not(feature = "passwordless"), allow(dead_code))]
    pub(crate) fn new(requester: String) -> Self {
        PendingSuccess { requester }
    }
}

/// A user whose password was just checked, with the revocation epoch read *before* the
/// check; sessions and tokens made from it carry that epoch.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
/// # use crudauth::doc_fixture::User;
/// let verified: crudauth::VerifiedUser<User> = auth
///     .login()
///     .authenticate_password("ann@example.com", "correct horse battery staple", &client, "session")
///     .await?;
/// println!("signed in at epoch {}", verified.epoch);
/// assert_eq!(verified.user.username, "ann");
/// # Ok(()) });
/// ```
#[derive(Clone, Debug)]
pub struct VerifiedUser<U> {
    /// The user.
    pub user: U,
    /// The revocation epoch at the time of the check.
    pub epoch: i64,
}

/// The password service. Reached as `auth.login()`.
///
/// ```
/// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
/// let verified = auth.login().authenticate_password("ann", "correct horse battery staple", &client, "bearer").await?;
/// assert_eq!(verified.user.email, "ann@example.com");
/// # Ok(()) });
/// ```
pub struct Login<U> {
    core: Arc<Core<U>>,
}

impl<U> Clone for Login<U> {
    fn clone(&self) -> Self {
        Login {
            core: self.core.clone(),
        }
    }
}

impl<U> std::fmt::Debug for Login<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").finish_non_exhaustive()
    }
}

/// Characters no identifier may carry: controls (`\0`, newlines, ...) and invisible
/// formatting characters (bidirectional overrides, zero-width joiners; Unicode category Cf).
fn is_hostile_char(c: char) -> bool {
    c.is_control() || crate::user::is_format_char(c)
}

impl<U: UserRecord> Login<U> {
    pub(crate) fn new(core: Arc<Core<U>>) -> Self {
        Login { core }
    }

    /// The one credential check behind `/login` and `/token`: lockout (counted before any
    /// hashing), lookup by the login fields in order, a dummy-hash verify for unknown
    /// identifiers so time and answer match a wrong password, the disabled-account check
    /// and the `on_before_login` vetoes after the password check (a refusal is answered as
    /// a disabled account is), a rehash when parameters changed, and the hooks.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
    /// let login = auth.login();
    /// let wrong = login.authenticate_password("ann@example.com", "wrong horse", &client, "session").await;
    /// assert!(matches!(wrong, Err(crudauth::AuthError::BadCredentials)));
    /// let verified = login.authenticate_password("Ann@Example.com", "correct horse battery staple", &client, "session").await?;
    /// assert_eq!(verified.user.username, "ann");
    /// # Ok(()) });
    /// ```
    pub async fn authenticate_password(
        &self,
        identifier: &str,
        password: &str,
        client: &ClientMeta,
        transport: &'static str,
    ) -> Result<VerifiedUser<U>, AuthError> {
        let (verified, attempt, pending) = self
            .authenticate_password_deferred(identifier, password, client, transport)
            .await?;
        self.core.lockout.succeeded(attempt).await;
        self.confirm_success(&verified.user.user_id(), verified.epoch, pending)
            .await;
        Ok(verified)
    }

    /// [`Login::authenticate_password`] with the lockout's success left to the caller: it
    /// hands the attempt to `Lockout::succeeded` (no second factor), or gives it back with
    /// `Lockout::refund` and records the success when the code is right (a fresh password
    /// success must not reset the failed codes before it).
    pub(crate) async fn authenticate_password_deferred(
        &self,
        identifier: &str,
        password: &str,
        client: &ClientMeta,
        transport: &'static str,
    ) -> Result<(VerifiedUser<U>, Attempt, PendingSuccess), AuthError> {
        let core = &self.core;
        let ctx = client.hook_context(Some(transport));
        if client.ip.is_none() {
            // Without a client address every client would share one lockout budget, and a
            // stranger could lock everyone out: refuse loudly instead.
            tracing::error!(
                "crudauth: no client address on the request; serve the app with \
                 `into_make_service_with_connect_info::<SocketAddr>()`"
            );
            return Err(AuthError::Internal);
        }
        // No account has an identifier this long, or one with control or invisible
        // formatting characters: refuse before any counter or lookup sees it (such input
        // could otherwise name another key, or spend a budget that is not its own).
        if identifier.chars().nth(MAX_IDENTIFIER_CHARS).is_some()
            || identifier.chars().any(is_hostile_char)
        {
            return Err(AuthError::BadCredentials);
        }
        let user = self.find_login(identifier).await?;
        let requester = ip_key(client.ip);
        let store_kept = core.revocation.store_kept();
        // The epoch as of before the password check (a password change that completes while
        // this check runs revokes what this login creates), and whether this client signed
        // in to the account before (under this epoch). An identifier that names nobody does
        // the same store reads against keys no account has, so the work does not tell.
        let (epoch, known_client) = match &user {
            Some(u) => {
                let epoch = core.revocation.epoch(u).await?;
                let known = self.is_known_at(&u.user_id(), epoch, &requester).await?;
                (epoch, known)
            }
            None => {
                if store_kept {
                    self.store_read("epoch:").await?;
                }
                self.store_read(&self.known_requester_key("", 0, &requester))
                    .await?;
                (0, false)
            }
        };
        let user_id = user.as_ref().map(UserRecord::user_id);
        let folded = self.fold_unknown_identifier(identifier);
        let lock_subject = match &user_id {
            Some(id) => LockSubject::Account { id, known_client },
            None => LockSubject::Unknown(&folded),
        };
        let attempt = match core.lockout.check_and_count(&requester, lock_subject).await {
            Ok(attempt) => attempt,
            Err(err) => {
                if let AuthError::LockedOut { retry_after } = err {
                    let payload = Payload::Lockout {
                        identifier: identifier.to_owned(),
                        retry_after,
                        user_id: user_id.as_ref().map(ToString::to_string),
                    };
                    core.hooks.fire(Event::Lockout, payload, &ctx).await;
                }
                return Err(err);
            }
        };
        // A store-kept epoch is read apart from the row, so the row is read again after it:
        // if the hash moved in between, a password change ran, and the login is refused (it
        // would otherwise check the old hash and carry the new epoch). Unknown identifiers
        // make the same second read.
        let user = match user {
            Some(u) if store_kept => {
                let again = core
                    .repo
                    .find_by_id(&u.user_id())
                    .await
                    .map_err(repo_fault)?;
                match again {
                    Some(fresh) if fresh.password_hash() == u.password_hash() => Some(fresh),
                    _ => {
                        tracing::info!("password changed during a login; the login is refused");
                        None
                    }
                }
            }
            Some(u) => Some(u),
            None => {
                if store_kept {
                    let nobody = core.repo.schema().id_kind.nobody();
                    core.repo.find_by_id(&nobody).await.map_err(repo_fault)?;
                }
                None
            }
        };
        let hash = user.as_ref().and_then(|u| u.password_hash());
        let verification = match core.passwords.try_verify(password, hash).await {
            Ok(v) => v,
            Err(e) => {
                // Refused before any hashing: the attempt is given back, so a flood of the
                // hasher cannot push anyone into a lock.
                core.lockout.refund(attempt).await;
                return Err(busy(e));
            }
        };
        let failure = match &user {
            None => Some(LoginFailure::InvalidCredentials),
            Some(_) if !verification.matched => Some(LoginFailure::InvalidCredentials),
            Some(u) if !u.is_active() => Some(LoginFailure::Inactive),
            Some(u) => self.vetoed(u, &ctx).await,
        };
        if let Some(reason) = failure {
            // Fired whether or not a hook observes it: the dispatcher writes the audit log.
            let payload = Payload::LoginFailed {
                identifier: identifier.to_owned(),
                user: user.map(Arc::new),
                reason,
            };
            core.hooks.fire(Event::LoginFailed, payload, &ctx).await;
            return Err(AuthError::BadCredentials);
        }
        let user = user.ok_or(AuthError::BadCredentials)?;
        if verification.needs_rehash
            && let Some(checked) = user.password_hash()
        {
            self.rehash(&user.user_id(), checked, password).await;
        }
        Ok((
            VerifiedUser { user, epoch },
            attempt,
            PendingSuccess { requester },
        ))
    }

    /// Remembers the client of a completed sign-in as one that signed in to the account.
    pub(crate) async fn confirm_success(&self, id: &UserId, epoch: i64, pending: PendingSuccess) {
        self.remember_requester(id, epoch, &pending.requester).await;
    }

    /// The `on_before_login` vetoes for a user whose password (or other credential) was
    /// right: `Some(Refused)` when one refuses. Every sign-in path asks them.
    pub(crate) async fn vetoed(&self, user: &U, ctx: &HookContext) -> Option<LoginFailure> {
        if !self.core.hooks.vets_logins() {
            return None;
        }
        match self
            .core
            .hooks
            .before_login(&Arc::new(user.clone()), ctx)
            .await
        {
            Ok(()) => None,
            Err(veto) => {
                tracing::info!(reason = %veto, "login refused by an on_before_login hook");
                Some(LoginFailure::Refused)
            }
        }
    }

    /// Compare-and-set on the hash that was checked: a password change that landed meanwhile
    /// is never overwritten with a hash of the old password.
    async fn rehash(&self, id: &UserId, checked: &str, password: &str) {
        match self.core.passwords.hash(password).await {
            Ok(hash) => match self
                .core
                .repo
                .compare_and_set_password_hash(id, checked, &hash)
                .await
            {
                Ok(true) => {
                    if let Err(e) = self.core.revocation.changed(id).await {
                        tracing::warn!(error = %e, "could not announce a rehashed password");
                    }
                }
                Ok(false) => tracing::info!("password changed before its rehash; kept"),
                Err(e) => tracing::warn!(error = %e, "could not store a rehashed password"),
            },
            Err(e) => tracing::warn!(error = %e, "rehash failed"),
        }
    }

    /// Looks a login identifier up as typed (trimmed), then, if that finds nobody and its
    /// NFKC form differs, as its NFKC form: a fullwidth or padded variant of an identifier
    /// finds (and counts against) the same account.
    pub(crate) async fn find_login(&self, identifier: &str) -> Result<Option<U>, AuthError> {
        use unicode_normalization::UnicodeNormalization;
        let trimmed = identifier.trim();
        let repo = &self.core.repo;
        if let Some(user) = repo.find_by_login(trimmed).await.map_err(repo_fault)? {
            return Ok(Some(user));
        }
        let nfkc: String = trimmed.nfkc().collect();
        let nfkc = nfkc.trim();
        if nfkc == trimmed || nfkc.is_empty() {
            return Ok(None);
        }
        repo.find_by_login(nfkc).await.map_err(repo_fault)
    }

    /// An identifier that names no account, in the equivalence the lookup itself uses, so
    /// that its variants share one lockout budget exactly when they would share an account:
    /// an address (when a login field is the email) as [`crate::user::normalize_email`]
    /// makes it, anything else as typed after NFKC and trimming (usernames are matched
    /// exactly: `Alice` is not `alice`). Counting unknown identifiers under any other
    /// equivalence would let the lockout tell which accounts exist.
    pub(crate) fn fold_unknown_identifier(&self, identifier: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        let by_email = self
            .core
            .repo
            .schema()
            .login
            .iter()
            .any(crate::user::IdentityField::case_insensitive);
        if by_email && identifier.contains('@') {
            return crate::user::normalize_email(identifier);
        }
        identifier
            .trim()
            .nfkc()
            .collect::<String>()
            .trim()
            .to_owned()
    }

    /// A store read whose value does not matter (equal work for unknown identifiers).
    async fn store_read(&self, key: &str) -> Result<(), AuthError> {
        match self.core.store.get(key).await {
            Ok(_) => Ok(()),
            Err(e) => Err(fail_closed("store", &e)),
        }
    }

    /// Counts a password attempt against an account's lockout budget (for the re-checks of
    /// a signed-in user's password: change-password, email change, sudo).
    pub(crate) async fn count_account_attempt(
        &self,
        user: &U,
        client: &ClientMeta,
    ) -> Result<Attempt, AuthError> {
        let requester = ip_key(client.ip);
        let known_client = self.is_known_requester(user, &requester).await?;
        let id = user.user_id();
        let subject = LockSubject::Account {
            id: &id,
            known_client,
        };
        self.core.lockout.check_and_count(&requester, subject).await
    }

    /// Counts an attempt of a credential other than a password (a one-time code) in the
    /// login lockout: the account's budget when `user` names one, else the identifier's
    /// (given folded as the caller looks it up). The same store reads are made either way,
    /// so the time does not tell whether an account has the identifier. The success is
    /// recorded by the caller once the sign-in completes (`confirm_success`).
    #[cfg_attr(not(feature = "passwordless"), allow(dead_code))]
    pub(crate) async fn count_code_attempt(
        &self,
        user: Option<&U>,
        identifier: &str,
        client: &ClientMeta,
    ) -> Result<(Attempt, PendingSuccess), AuthError> {
        if client.ip.is_none() {
            // As at the password path: without client addresses every client would share
            // one lockout budget.
            tracing::error!(
                "crudauth: no client address on the request; serve the app with \
                 `into_make_service_with_connect_info::<SocketAddr>()`"
            );
            return Err(AuthError::Internal);
        }
        let requester = ip_key(client.ip);
        let core = &self.core;
        let id = user.map(UserRecord::user_id);
        let known_client = match (user, &id) {
            (Some(u), Some(id)) => {
                let epoch = core.revocation.epoch(u).await?;
                self.is_known_at(id, epoch, &requester).await?
            }
            _ => {
                if core.revocation.store_kept() {
                    self.store_read("epoch:").await?;
                }
                self.store_read(&self.known_requester_key("", 0, &requester))
                    .await?;
                false
            }
        };
        let subject = match &id {
            Some(id) => LockSubject::Account { id, known_client },
            None => LockSubject::Unknown(identifier),
        };
        let attempt = core.lockout.check_and_count(&requester, subject).await?;
        Ok((attempt, PendingSuccess { requester }))
    }

    /// The record that a client address signed in to an account, under one revocation
    /// epoch: a password change or reset, or "sign out everywhere", forgets every address.
    fn known_requester_key(&self, id: &str, epoch: i64, requester: &str) -> String {
        let who = crate::keys::hmac_hex(
            &self.core.keys.store,
            format!("{id}\u{0}{epoch}\u{0}{requester}").as_bytes(),
        );
        format!("seen:{who}")
    }

    /// Remembers (for 90 days, as an HMAC, until the epoch moves) that the user signed in
    /// from this client address: such requesters are exempt from the address-wide mail
    /// throttle and the account-wide lockout bounds. Best effort.
    pub(crate) async fn remember_requester(&self, id: &UserId, epoch: i64, requester: &str) {
        let key = self.known_requester_key(&id.to_string(), epoch, requester);
        let ttl = Duration::from_secs(90 * 24 * 3600);
        if let Err(e) = self.core.store.set(&key, b"1", Some(ttl)).await {
            tracing::warn!(error = %e, "could not remember a sign-in address");
        }
    }

    async fn is_known_at(
        &self,
        id: &UserId,
        epoch: i64,
        requester: &str,
    ) -> Result<bool, AuthError> {
        let key = self.known_requester_key(&id.to_string(), epoch, requester);
        match self.core.store.get(&key).await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(fail_closed("known-requester store", &e)),
        }
    }

    /// Whether the user has signed in from this client address within 90 days, since the
    /// last password change, reset or sign-out-everywhere.
    pub(crate) async fn is_known_requester(
        &self,
        user: &U,
        requester: &str,
    ) -> Result<bool, AuthError> {
        let epoch = self.core.revocation.epoch(user).await?;
        self.is_known_at(&user.user_id(), epoch, requester).await
    }

    /// The user as stored now (for hooks after a write), or as given if it cannot be read.
    pub(crate) async fn reload(&self, user: &U) -> U {
        match self.core.repo.find_by_id(&user.user_id()).await {
            Ok(Some(fresh)) => fresh,
            _ => user.clone(),
        }
    }

    /// Issues an access + refresh pair for a just-verified user at the epoch read *before*
    /// its password check (a password change that completed meanwhile revokes the pair),
    /// scopes clamped to the grantable set. 500 without the bearer transport.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| { let client = crudauth::doc_fixture::client();
    /// let verified = auth.login().authenticate_password("ann", "correct horse battery staple", &client, "bearer").await?;
    /// let pair = auth.login().issue_tokens(&verified, ["me:read"]).await?;
    /// let claims = auth.tokens().expect("bearer transport on").verify_access(&pair.access_token)?;
    /// assert_eq!(claims.scopes, ["me:read"]);
    /// # Ok(()) });
    /// ```
    pub async fn issue_tokens<'a>(
        &self,
        verified: &VerifiedUser<U>,
        requested_scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<crate::tokens::TokenPair, AuthError> {
        let (user, epoch) = (&verified.user, verified.epoch);
        crate::transport::bearer::issue(&self.core, user, epoch, requested_scopes).await
    }

    /// Counts the accounts per stored hash format ([`crate::password::HashReport`]): when no
    /// account holds an old format any more, that format can be switched off. Reads the table
    /// in pages of 1,000; 503 when the repository cannot list its users.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let report = auth.login().password_hash_report().await?;
    /// assert_eq!(report.counts["argon2"], 1);
    /// # Ok(()) });
    /// ```
    pub async fn password_hash_report(&self) -> Result<crate::password::HashReport, AuthError> {
        const PAGE: u64 = 1000;
        let mut report = crate::password::HashReport::default();
        let mut after: Option<UserId> = None;
        loop {
            let page = self.core.repo.password_hashes(after.as_ref(), PAGE);
            let page = page.await.map_err(repo_fault)?;
            for (_, hash) in &page {
                report.count(hash);
            }
            match page.last() {
                Some((last, _)) if page.len() as u64 == PAGE => after = Some(last.clone()),
                _ => return Ok(report),
            }
        }
    }
}
