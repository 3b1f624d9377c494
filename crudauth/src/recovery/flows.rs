//! The flows: verification, password reset and email change, as methods of [`Recovery`].

use std::sync::Arc;

use super::tokens::{Purpose, TokenRecord};
use super::{INVALID_TOKEN, Recovery, log_job};
use crate::client_ip::{ClientMeta, ip_key};
use crate::delivery::{MessageKind, OneTimeLink, delivery};
use crate::error::AuthError;
use crate::hooks::Event;
use crate::policy::{PasswordContext, PasswordSource};
use crate::principal::Principal;
use crate::session::{LiveSession, RotatedSession};
use crate::store::repo_fault;
use crate::user::{LogicalField, RepoError, UserRecord, UserUpdate, normalize_email};

impl<U: UserRecord> Recovery<U> {
    /// The silent throttle of a mail to `user`'s address: per requester, plus an
    /// address-wide cap that requesters the account has signed in from before are exempt
    /// from, so strangers cannot silence the owner's own requests.
    async fn allow_mail(
        &self,
        action: &str,
        email: &str,
        user: &U,
        requester: &str,
    ) -> Result<bool, AuthError> {
        let known = self.login.is_known_requester(user, requester).await?;
        self.core
            .limiter
            .allow_silently_from(action, email, requester, known)
            .await
    }

    /// Issues a token for `user` and delivers its link (in the calling background job) to
    /// the stored address, or for an email change to the new one.
    async fn send_token(
        &self,
        purpose: Purpose,
        user: &U,
        new_email: Option<String>,
    ) -> Result<(), AuthError> {
        let recovery = &*self.parts;
        let config = &recovery.config;
        let (kind, path, ttl) = match purpose {
            Purpose::Verify => (
                MessageKind::VerifyEmail,
                &config.verify_path,
                config.verify_ttl,
            ),
            Purpose::Reset => (
                MessageKind::ResetPassword,
                &config.reset_path,
                config.reset_ttl,
            ),
            Purpose::ChangeEmail => (
                MessageKind::ChangeEmail,
                &config.change_path,
                config.change_ttl,
            ),
        };
        let record = TokenRecord {
            user_id: user.user_id().to_string(),
            epoch: self.core.revocation.epoch(user).await?,
            email: normalize_email(user.email().unwrap_or_default()),
            new_email: new_email.clone(),
            exp: None, // set by `issue`
        };
        let token = recovery.tokens.issue(purpose, &record, ttl).await?;
        let link = config.link(path, &token);
        let to = new_email.unwrap_or_else(|| user.email().unwrap_or_default().to_owned());
        self.core
            .deliveries
            .deliver(delivery(
                kind,
                to,
                Some(user.contract()),
                Some(OneTimeLink {
                    token,
                    link,
                    expires_in: ttl,
                }),
                self.core.repo.database(),
            ))
            .await;
        Ok(())
    }

    /// Delivers a notice (no token) to `recipient`.
    async fn send_notice(&self, kind: MessageKind, user: &U, recipient: String) {
        self.core
            .deliveries
            .deliver(delivery(
                kind,
                recipient,
                Some(user.contract()),
                None,
                self.core.repo.database(),
            ))
            .await;
    }

    /// Starts the verification of an address: if an active, unverified account has it (and
    /// the per-address throttle allows), a verify link is sent. Returns at once, the same
    /// way for every address; the work runs in the background.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// # let (auth, mailbox) = crudauth::doc_fixture::auth_with_mailbox().await;
    /// # let client = crudauth::doc_fixture::client();
    /// auth.recovery().expect("email flows on").request_verification("ann@example.com", &client);
    /// auth.background().flush().await; // the work runs in the background
    /// assert_eq!(mailbox.messages()[0].subject, "Verify your email");
    /// # Ok(()) });
    /// ```
    pub fn request_verification(&self, email: &str, client: &ClientMeta) {
        if self.parts.verifies {
            self.spawn_token_request(Purpose::Verify, email, client, |u| {
                u.is_active() && !u.email_verified()
            });
        }
    }

    /// The background job of a request route: the silent per-address throttle, the
    /// lookup, and a token for an account that `wanted` accepts; nothing otherwise.
    fn spawn_token_request(
        &self,
        purpose: Purpose,
        email: &str,
        client: &ClientMeta,
        wanted: fn(&U) -> bool,
    ) {
        let auth = self.clone();
        let email = normalize_email(email);
        let requester = ip_key(client.ip);
        let action = match purpose {
            Purpose::Verify => "email_verify_request",
            Purpose::Reset => "password_reset_request",
            Purpose::ChangeEmail => "email_change_request",
        };
        self.core.background.spawn(async move {
            let job = async {
                // Nothing is sent to an address without a wanted account, so only those
                // count against the throttle.
                let user = auth
                    .core
                    .repo
                    .find_by_recovery(&email)
                    .await
                    .map_err(repo_fault)?;
                let Some(user) = user.filter(wanted) else {
                    return Ok(());
                };
                if !auth.allow_mail(action, &email, &user, &requester).await? {
                    return Ok(());
                }
                auth.send_token(purpose, &user, None).await
            };
            log_job(action, job.await);
        });
    }

    /// Sends the verification link to a user just created (registration).
    pub(crate) fn send_verification_to(&self, user: U) {
        if !self.parts.verifies {
            return;
        }
        let auth = self.clone();
        self.core.background.spawn(async move {
            log_job(
                "register_verify",
                auth.send_token(Purpose::Verify, &user, None).await,
            );
        });
    }

    /// Tells the owner of an address that someone tried to register it again.
    pub(crate) fn send_existing_account_notice(&self, email: &str, client: &ClientMeta) {
        let auth = self.clone();
        let email = normalize_email(email);
        let requester = ip_key(client.ip);
        self.core.background.spawn(async move {
            let job = async {
                if let Some(user) = auth
                    .core
                    .repo
                    .find_by_recovery(&email)
                    .await
                    .map_err(repo_fault)?
                    && auth
                        .allow_mail("existing_account_notice", &email, &user, &requester)
                        .await?
                {
                    // To the stored address, never the one typed.
                    let to = user.email().unwrap_or_default().to_owned();
                    auth.send_notice(MessageKind::ExistingAccount, &user, to)
                        .await;
                }
                Ok(())
            };
            log_job("existing_account_notice", job.await);
        });
    }

    /// Redeems a verify token and marks the address verified; fires
    /// `on_after_recovery_verified` the first time. 400 `Invalid or expired token` for any
    /// token that is not live.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// # let (auth, mailbox) = crudauth::doc_fixture::auth_with_mailbox().await;
    /// # let client = crudauth::doc_fixture::client();
    /// let recovery = auth.recovery().expect("email flows on");
    /// recovery.request_verification("ann@example.com", &client);
    /// auth.background().flush().await;
    /// # let token = mailbox.last_token().expect("a verify link was sent");
    /// let user = recovery.confirm_verification(&token).await?;
    /// assert!(user.email_verified);
    /// # Ok(()) });
    /// ```
    pub async fn confirm_verification(&self, token: &str) -> Result<U, AuthError> {
        let recovery = &*self.parts;
        let record = recovery
            .tokens
            .redeem(Purpose::Verify, token)
            .await?
            .ok_or(INVALID_TOKEN)?;
        let user = self.current_user(&record).await?.ok_or(INVALID_TOKEN)?;
        if user.email_verified() {
            return Ok(user);
        }
        let update = UserUpdate {
            email_verified: Some(true),
            ..Default::default()
        };
        let user = self
            .core
            .repo
            .update(&user.user_id(), update)
            .await
            .map_err(repo_fault)?;
        self.core.revocation.changed(&user.user_id()).await?;
        self.core
            .hooks
            .fire_user(
                Event::AfterRecoveryVerified,
                Arc::new(user.clone()),
                &Default::default(),
            )
            .await;
        Ok(user)
    }

    /// Starts a password reset: if an active account has this address (and the
    /// per-address throttle allows), a reset link is sent. Returns at once, the same way for
    /// every address; the work runs in the background.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// # let (auth, mailbox) = crudauth::doc_fixture::auth_with_mailbox().await;
    /// # let client = crudauth::doc_fixture::client();
    /// let recovery = auth.recovery().expect("email flows on");
    /// recovery.request_password_reset("ann@example.com", &client);
    /// recovery.request_password_reset("nobody@example.com", &client); // answered alike
    /// auth.background().flush().await;
    /// let sent: Vec<_> = mailbox.messages().into_iter().map(|m| (m.to, m.subject)).collect();
    /// assert_eq!(sent, [("ann@example.com".to_owned(), "Reset your password".to_owned())]);
    /// # Ok(()) });
    /// ```
    pub fn request_password_reset(&self, email: &str, client: &ClientMeta) {
        self.spawn_token_request(Purpose::Reset, email, client, U::is_active);
    }

    /// Redeems a reset token and sets the new password. The token is claimed (atomically)
    /// before anything is done for it: of concurrent confirmations with one token exactly one
    /// gets past this point, so one token costs at most one password hash. The password is
    /// then checked against the policy; a refused password (422) puts the token back for the
    /// rest of its lifetime, so a typo does not burn the link (a confirmation racing with the
    /// refused one meanwhile was answered 400, and did no work). Every session and token of
    /// the user ends, the account's login lock is cleared, and `on_after_password_reset`
    /// fires.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// # let (auth, mailbox) = crudauth::doc_fixture::auth_with_mailbox().await;
    /// # let client = crudauth::doc_fixture::client();
    /// let recovery = auth.recovery().expect("email flows on");
    /// # recovery.request_password_reset("ann@example.com", &client);
    /// # auth.background().flush().await;
    /// # let token = mailbox.last_token().expect("a reset link was sent");
    /// recovery.confirm_password_reset(&token, "a new long passphrase").await?;
    /// // The link is spent.
    /// assert!(recovery.confirm_password_reset(&token, "a new long passphrase").await.is_err());
    /// # Ok(()) });
    /// ```
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: &str,
    ) -> Result<U, AuthError> {
        let recovery = &*self.parts;
        let record = recovery
            .tokens
            .redeem(Purpose::Reset, token)
            .await?
            .ok_or(INVALID_TOKEN)?;
        let user = self.current_user(&record).await?.ok_or(INVALID_TOKEN)?;
        let ctx = PasswordContext::for_user(PasswordSource::Reset, &user);
        let checked = self
            .login
            .validate_password(new_password, &ctx, "new_password")
            .await;
        let hashed = match checked {
            Ok(()) => {
                self.login
                    .hash_new_password(new_password, "new_password")
                    .await
            }
            Err(e) => Err(e),
        };
        let hash = match hashed {
            Ok(hash) => hash,
            Err(e) => {
                // Nothing was spent on the password: the link stays usable (a 503 from a
                // full hashing queue too). Only this request held the token meanwhile.
                recovery
                    .tokens
                    .restore(Purpose::Reset, token, &record)
                    .await?;
                return Err(e);
            }
        };
        self.login.replace_password(&user, &hash, None).await?;
        // The reset proves the owner: lift the account-wide login locks (kept by account, and
        // any kept for its identifiers).
        self.core.lockout.clear_account(&user.user_id()).await?;
        for identifier in [user.email(), user.username()].into_iter().flatten() {
            self.core.lockout.clear_identifier(identifier).await?;
        }
        let user = self.login.reload(&user).await;
        self.core
            .hooks
            .fire_user(
                Event::AfterPasswordReset,
                Arc::new(user.clone()),
                &Default::default(),
            )
            .await;
        Ok(user)
    }

    /// Starts an email change for the signed-in user: checks the password (sharing the
    /// login lockout), then, in the background, sends a notice to the current address and a
    /// confirmation link to the new one (unless another account has it: nothing tells the
    /// requester, not even their own inbox). 400 `Incorrect password`, 400 `New email
    /// matches current email`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// # let (auth, mailbox) = crudauth::doc_fixture::auth_with_mailbox().await;
    /// # let client = crudauth::doc_fixture::client();
    /// # let p = crudauth::doc_fixture::session_principal(&auth).await?;
    /// let recovery = auth.recovery().expect("email flows on");
    /// recovery.request_email_change(&p, "ann@new.example", "correct horse battery staple", &client).await?;
    /// auth.background().flush().await;
    /// // A notice to the current address, a confirmation link to the new one.
    /// let sent: Vec<_> = mailbox.messages().into_iter().map(|m| m.to).collect();
    /// assert_eq!(sent, ["ann@example.com", "ann@new.example"]);
    /// # Ok(()) });
    /// ```
    pub async fn request_email_change(
        &self,
        principal: &Principal<U>,
        new_email: &str,
        password: &str,
        client: &ClientMeta,
    ) -> Result<(), AuthError> {
        // Before the password and any lookup: the answer says nothing about accounts.
        let new_email = normalize_email(new_email);
        self.core.refuse_disposable("new_email", &new_email)?;
        self.login
            .check_current_password(
                principal,
                password,
                client,
                AuthError::BadRequest("Incorrect password"),
            )
            .await?;
        let user = principal.user.as_ref().clone();
        if user.email().map(normalize_email).as_deref() == Some(new_email.as_str()) {
            return Err(AuthError::BadRequest("New email matches current email"));
        }
        let auth = self.clone();
        let requester = ip_key(client.ip);
        self.core.background.spawn(async move {
            let job = async {
                // Every request retires the pending change and notifies the current
                // address, before anything depends on the new address: neither the
                // requester's own inbox nor their earlier link may tell a free address
                // from a taken one.
                auth.parts
                    .tokens
                    .retire(Purpose::ChangeEmail, &user.user_id().to_string())
                    .await?;
                let old = user.email().unwrap_or_default().to_owned();
                auth.send_notice(MessageKind::EmailChangeRequested, &user, old.clone())
                    .await;
                if !auth
                    .core
                    .limiter
                    .allow_silently_from("email_change_request", &new_email, &requester, false)
                    .await?
                {
                    return Ok(());
                }
                if auth
                    .core
                    .repo
                    .find_by_recovery(&new_email)
                    .await
                    .map_err(repo_fault)?
                    .is_some()
                {
                    return Ok(());
                }
                auth.send_token(Purpose::ChangeEmail, &user, Some(new_email))
                    .await
            };
            log_job("email_change_request", job.await);
        });
        Ok(())
    }

    /// Redeems an email-change token: the account's address becomes the new one (verified,
    /// since the link reached it, as a verify link would have), every session and token of
    /// the user ends, the old address gets a notice, and `on_after_email_changed` fires.
    /// 422 `Email already in use` if another account took the address meanwhile; the token
    /// stays usable when that is found before it is consumed, and in the rare race where the
    /// address is taken between that check and the write, the token is spent and the
    /// sessions have ended (revocation comes first: the safe side).
    ///
    /// The token binds the address: the new address is the one recorded when the link was
    /// issued, never one from the confirming request, and only the user's latest link is
    /// live (a second change request retires the first one's link).
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// # let (auth, mailbox) = crudauth::doc_fixture::auth_with_mailbox().await;
    /// # let client = crudauth::doc_fixture::client();
    /// # let p = crudauth::doc_fixture::session_principal(&auth).await?;
    /// let recovery = auth.recovery().expect("email flows on");
    /// # recovery.request_email_change(&p, "ann@new.example", "correct horse battery staple", &client).await?;
    /// # auth.background().flush().await;
    /// # let token = mailbox.last_token().expect("a confirmation link was sent");
    /// let user = recovery.confirm_email_change(&token).await?;
    /// assert_eq!((user.email.as_str(), user.email_verified), ("ann@new.example", true));
    /// # Ok(()) });
    /// ```
    pub async fn confirm_email_change(&self, token: &str) -> Result<U, AuthError> {
        self.confirm_email_change_keeping(token, None)
            .await
            .map(|(user, _)| user)
    }

    /// [`Recovery::confirm_email_change`], keeping one session alive: `keep`, when it is a
    /// session of the user whose address changed, is not ended with the others but moved to
    /// a new id (bound to the new epoch; the CSRF token carries over), returned for the
    /// response's cookie. The caller vouches that the confirming request proved it holds
    /// `keep` (its cookie *and* its CSRF token); any other session of the user ends.
    pub(crate) async fn confirm_email_change_keeping(
        &self,
        token: &str,
        keep: Option<&LiveSession>,
    ) -> Result<(U, Option<RotatedSession>), AuthError> {
        let recovery = &*self.parts;
        let peeked = recovery
            .tokens
            .peek(Purpose::ChangeEmail, token)
            .await?
            .ok_or(INVALID_TOKEN)?;
        self.current_user(&peeked).await?.ok_or(INVALID_TOKEN)?;
        let new_email = peeked.new_email.clone().ok_or(INVALID_TOKEN)?;
        let taken = self
            .core
            .repo
            .find_by_recovery(&new_email)
            .await
            .map_err(repo_fault)?;
        if taken.is_some() {
            return Err(AuthError::Taken("Email already in use"));
        }
        let record = recovery
            .tokens
            .redeem(Purpose::ChangeEmail, token)
            .await?
            .ok_or(INVALID_TOKEN)?;
        let user = self.current_user(&record).await?.ok_or(INVALID_TOKEN)?;
        let new_email = record.new_email.ok_or(INVALID_TOKEN)?;
        let user_id = user.user_id().to_string();
        let keep = keep.filter(|live| live.record.user_id == user_id);
        // Revoke first: if the write then fails, old sessions are gone (the safe side). The
        // kept session is left out here, but the epoch moves past it: it lives on only if
        // it is rebound and moved to a new id below.
        let epoch = self.core.revocation.bump(&user).await?;
        if let Some(sessions) = self.core.sessions.as_ref() {
            sessions
                .revoke_all(&user_id, keep.map(|live| live.handle.as_str()))
                .await?;
        }
        let update = UserUpdate {
            email: Some(new_email),
            email_verified: self
                .core
                .repo
                .schema()
                .has(LogicalField::EmailVerified)
                .then_some(true),
            ..Default::default()
        };
        let updated = match self.core.repo.update(&user.user_id(), update).await {
            Ok(updated) => updated,
            Err(RepoError::Duplicate { .. }) => {
                return Err(AuthError::Taken("Email already in use"));
            }
            Err(e) => return Err(repo_fault(e)),
        };
        self.core.revocation.changed(&updated.user_id()).await?;
        let rotated = match (self.core.sessions.as_ref(), keep) {
            (Some(sessions), Some(live)) => {
                sessions
                    .rotate_with(&live.handle, |r| r.epoch = epoch)
                    .await?
            }
            _ => None,
        };
        let old = user.email().unwrap_or_default().to_owned();
        let auth = self.clone();
        let notified = updated.clone();
        self.core.background.spawn(async move {
            auth.send_notice(MessageKind::EmailChanged, &notified, old)
                .await;
        });
        self.core
            .hooks
            .fire_user(
                Event::AfterEmailChanged,
                Arc::new(updated.clone()),
                &Default::default(),
            )
            .await;
        Ok((updated, rotated))
    }
}
