//! The account rules of a provider sign-in, in order: a known link signs its user in; else
//! a verified address matching an account links to it (claiming an account whose own
//! address was never verified); else a new account is made. And linking, unlinking and
//! listing for a signed-in user.

use std::sync::Arc;

use super::{Failure, OAuth, OAuthErrorCode, OAuthIdentity, OAuthLink, store_fault};
use crate::client_ip::ClientMeta;
use crate::error::AuthError;
use crate::hooks::Event;
use crate::password::{is_unusable_password, make_unusable_password};
use crate::store::repo_fault;
use unicode_normalization::UnicodeNormalization;

use crate::user::{LogicalField, NewUser, RepoError, UserId, UserRecord, normalize_email};

/// A username from the profile: `username`, `given_name`, `name`, the address's local
/// part, or `user`; lower-cased, runs of anything but `[a-z0-9]` made one `_`.
pub(crate) fn derive_username(identity: &OAuthIdentity, email: Option<&str>) -> String {
    let local = email.and_then(|e| e.split('@').next());
    crate::signup::username_from(&[
        identity.username.as_deref(),
        identity.given_name.as_deref(),
        identity.name.as_deref(),
        local,
    ])
}

fn now() -> i64 {
    crate::clock::system_secs()
}

impl<U: UserRecord> OAuth<U> {
    async fn find_user(&self, id: &str) -> Result<Option<U>, AuthError> {
        self.core.user_by_text_id(id).await
    }

    /// The app's `on_before_login` veto, asked before anything is changed for the sign-in.
    async fn vet(&self, user: &U, client: &ClientMeta) -> Result<Arc<U>, Failure> {
        let user = Arc::new(user.clone());
        let ctx = client.hook_context(Some("oauth"));
        if let Err(veto) = self.core.hooks.before_login(&user, &ctx).await {
            tracing::info!(reason = %veto, "crudauth: OAuth sign-in refused by on_before_login");
            return Err(OAuthErrorCode::SignInRefused.into());
        }
        Ok(user)
    }

    /// Resolves a provider identity to an active account (`created` when it was made now).
    pub(crate) async fn sign_in(
        &self,
        provider: &str,
        identity: &OAuthIdentity,
        client: &ClientMeta,
    ) -> Result<(Arc<U>, bool), Failure> {
        let links = &self.inner.links;
        // 1. A known provider account signs its user in.
        if let Some(link) = links
            .find(provider, &identity.subject)
            .await
            .map_err(store_fault)?
        {
            match self.find_user(&link.user_id).await? {
                Some(user) if !user.is_active() => {
                    return Err(OAuthErrorCode::AccountInactive.into());
                }
                Some(user) => {
                    let user = self.vet(&user, client).await?;
                    links
                        .touch(provider, &identity.subject, now())
                        .await
                        .map_err(store_fault)?;
                    return Ok((user, false));
                }
                None => {
                    // Its user is gone: the link is stale, the identity is new.
                    links
                        .delete(&link.user_id, provider)
                        .await
                        .map_err(store_fault)?;
                }
            }
        }
        // 2. Else only a verified address may link or create.
        let email = identity
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or(OAuthErrorCode::EmailMissing)?;
        if email.chars().count() > crate::user::MAX_IDENTIFIER_CHARS {
            return Err(OAuthErrorCode::EmailTooLong.into());
        }
        if !identity.email_verified {
            return Err(OAuthErrorCode::EmailUnverified.into());
        }
        // The address the provider vouched for must be the one we would store, up to case:
        // a fullwidth or otherwise NFKC-folded look-alike is another mailbox.
        if email.nfkc().collect::<String>() != email {
            tracing::info!(
                provider,
                "crudauth: a provider address that is not in NFKC form is not used to link or create"
            );
            return Err(OAuthErrorCode::EmailUnverified.into());
        }
        let email = normalize_email(email);
        if !crate::user::valid_email(&email) {
            return Err(OAuthErrorCode::EmailMissing.into());
        }
        // A disposable address neither links nor creates: the email field's 422 entry,
        // before any account is looked up by it.
        self.core.refuse_disposable("email", &email)?;
        for attempt in 0..2 {
            // 3. An account with that address: linked (or claimed).
            if let Some(user) = self.find_by_email(&email).await? {
                return self
                    .join(provider, identity, &email, user, client)
                    .await
                    .map(|u| (u, false));
            }
            // 4. Else a new account.
            match self.create(provider, identity, &email, client).await {
                Ok(user) => return Ok((self.vet(&user, client).await?, true)),
                // A concurrent sign-in made the account (or the link) first: look again.
                Err(Failure::Code(OAuthErrorCode::ProviderAlreadyLinked)) if attempt == 0 => {
                    if let Some(link) = links
                        .find(provider, &identity.subject)
                        .await
                        .map_err(store_fault)?
                        && let Some(user) = self.find_user(&link.user_id).await?
                    {
                        return if user.is_active() {
                            Ok((Arc::new(user), false))
                        } else {
                            Err(OAuthErrorCode::AccountInactive.into())
                        };
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(OAuthErrorCode::OAuthFailed.into())
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<U>, AuthError> {
        let schema = self.core.repo.schema();
        let recovery_is_email = schema
            .recovery
            .is_some_and(|f| f.logical == Some(LogicalField::Email));
        let found = if recovery_is_email {
            self.core.repo.find_by_recovery(email).await
        } else {
            self.core.repo.find_by_login(email).await
        };
        let found = found.map_err(repo_fault)?;
        // Only an account whose stored address is this one (not a username that happens to
        // read like it).
        Ok(found.filter(|u| u.email().is_some_and(|e| normalize_email(e) == email)))
    }

    /// Links the provider account to an existing account found by its address. An account
    /// whose own address was never verified is claimed: its password becomes unusable, its
    /// epoch moves (every session and token ends), and the address counts as verified.
    async fn join(
        &self,
        provider: &str,
        identity: &OAuthIdentity,
        email: &str,
        user: U,
        client: &ClientMeta,
    ) -> Result<Arc<U>, Failure> {
        if !user.is_active() {
            return Err(OAuthErrorCode::AccountInactive.into());
        }
        // The veto before anything changes: a refused sign-in claims nothing.
        self.vet(&user, client).await?;
        let uid = user.user_id().to_string();
        let links = &self.inner.links;
        let user = if user.email_verified() {
            let mine = links.for_user(&uid).await.map_err(store_fault)?;
            if mine.iter().any(|l| l.provider == provider) {
                return Err(OAuthErrorCode::ProviderAlreadyLinked.into());
            }
            user
        } else {
            // Whatever the unverified account's holder set up (a password, sessions,
            // tokens, links of their own) ends here.
            self.claim(user).await?
        };
        let link = OAuthLink::new(
            provider,
            &identity.subject,
            &uid,
            Some(email.to_owned()),
            now(),
        );
        if !links.insert(&link).await.map_err(store_fault)? {
            return Err(OAuthErrorCode::ProviderAlreadyLinked.into());
        }
        crate::audit::emit(&crate::audit::AuditEvent {
            user_id: Some(uid.to_string()),
            provider: Some(provider),
            ..crate::audit::AuditEvent::new("oauth_linked", crate::audit::Outcome::Success)
        });
        Ok(Arc::new(user))
    }

    async fn claim(&self, user: U) -> Result<U, AuthError> {
        match &self.claim {
            Some(claim) => claim.claim(user, "oauth").await,
            None => Err(AuthError::Internal),
        }
    }

    async fn create(
        &self,
        provider: &str,
        identity: &OAuthIdentity,
        email: &str,
        client: &ClientMeta,
    ) -> Result<Arc<U>, Failure> {
        let schema = *self.core.repo.schema();
        let mut new = NewUser::new(make_unusable_password()).email(email);
        new.email_verified = true;
        if schema.has(LogicalField::Username) {
            new.username = Some(derive_username(identity, Some(email)));
        }
        let mut ctx = client.hook_context(Some("oauth"));
        ctx.transport = Some("oauth");
        if let Err(veto) = self.core.hooks.before_register(&new, &ctx).await {
            tracing::info!(provider, reason = %veto, "crudauth: OAuth sign-up refused by on_before_register");
            return Err(OAuthErrorCode::SignInRefused.into());
        }
        let created = crate::signup::create_with_free_username(self.repo.as_ref(), new).await;
        let user = match created {
            Ok(user) => user,
            Err(RepoError::TooLong { field, .. }) if field == "email" => {
                return Err(OAuthErrorCode::EmailTooLong.into());
            }
            Err(RepoError::Duplicate { field }) if field == "email" => {
                return Err(OAuthErrorCode::ProviderAlreadyLinked.into());
            }
            Err(e @ RepoError::Backend(_)) => return Err(repo_fault(e).into()),
            Err(e) => {
                tracing::warn!(provider, error = %e, "crudauth: OAuth sign-up could not create the account");
                return Err(OAuthErrorCode::OAuthFailed.into());
            }
        };
        let uid = user.user_id().to_string();
        let link = OAuthLink::new(
            provider,
            &identity.subject,
            &uid,
            Some(email.to_owned()),
            now(),
        );
        if !self.inner.links.insert(&link).await.map_err(store_fault)? {
            // The same provider account was linked concurrently to another user: this new
            // account stays, unused; report the clash.
            return Err(OAuthErrorCode::ProviderAlreadyLinked.into());
        }
        let user = Arc::new(user);
        let core = self.core.clone();
        let registered = user.clone();
        core.background.clone().spawn(async move {
            core.hooks
                .fire_user(Event::AfterRegister, registered, &ctx)
                .await;
        });
        Ok(user)
    }

    /// Links a provider account to the signed-in user who started the flow (still there, at
    /// the same epoch).
    pub(super) async fn link_to(
        &self,
        provider: &str,
        identity: &OAuthIdentity,
        user_id: &str,
        epoch: i64,
    ) -> Result<Arc<U>, Failure> {
        let user = self
            .find_user(user_id)
            .await?
            .ok_or(OAuthErrorCode::InvalidState)?;
        if !user.is_active() {
            return Err(OAuthErrorCode::AccountInactive.into());
        }
        if !user.email_verified() {
            return Err(OAuthErrorCode::EmailUnverified.into());
        }
        if self.core.revocation.epoch(&user).await? != epoch {
            return Err(OAuthErrorCode::InvalidState.into());
        }
        let links = &self.inner.links;
        if let Some(existing) = links
            .find(provider, &identity.subject)
            .await
            .map_err(store_fault)?
        {
            return if existing.user_id == user_id {
                Ok(Arc::new(user))
            } else {
                Err(OAuthErrorCode::ProviderAlreadyLinked.into())
            };
        }
        let email = identity.email.as_deref().map(normalize_email);
        let link = OAuthLink::new(provider, &identity.subject, user_id, email, now());
        if !links.insert(&link).await.map_err(store_fault)? {
            return Err(OAuthErrorCode::ProviderAlreadyLinked.into());
        }
        crate::audit::emit(&crate::audit::AuditEvent {
            user_id: Some(user_id.to_string()),
            provider: Some(provider),
            ..crate::audit::AuditEvent::new("oauth_linked", crate::audit::Outcome::Success)
        });
        Ok(Arc::new(user))
    }

    /// The user's links, oldest first.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.oauth(crudauth::oauth::OAuthConfig::new("https://api.example.com").provider(crudauth::oauth::ProviderConfig::github("id", "s"))).build()?;
    /// let oauth = auth.oauth().unwrap();
    /// assert!(oauth.links_of(&crudauth::UserId::Int(1)).await?.is_empty());
    /// # Ok(()) });
    /// ```
    pub async fn links_of(&self, user: &UserId) -> Result<Vec<OAuthLink>, AuthError> {
        self.inner
            .links
            .for_user(&user.to_string())
            .await
            .map_err(store_fault)
    }

    /// Removes the user's link to `provider`, unless it is the last way left to sign in (no
    /// usable password, no other link): then `400`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.oauth(crudauth::oauth::OAuthConfig::new("https://api.example.com").provider(crudauth::oauth::ProviderConfig::github("id", "s"))).build()?;
    /// # let user = crudauth::doc_fixture::user(&auth).await?;
    /// let oauth = auth.oauth().unwrap();
    /// assert!(matches!(oauth.unlink(&user, "github").await, Err(crudauth::AuthError::NotFound(_))));
    /// # Ok(()) });
    /// ```
    pub async fn unlink(&self, user: &U, provider: &str) -> Result<(), AuthError> {
        let uid = user.user_id().to_string();
        let links = self.inner.links.for_user(&uid).await.map_err(store_fault)?;
        if !links.iter().any(|l| l.provider == provider) {
            return Err(AuthError::NotFound("No such linked account."));
        }
        let has_password = self.other_way_in(user).await?;
        const LAST_WAY: AuthError = AuthError::BadRequest(
            "This is the last way to sign in to this account: set a password or link another provider first.",
        );
        if !has_password && links.len() == 1 {
            return Err(LAST_WAY);
        }
        let store = &self.inner.links;
        let Some(removed) = links.into_iter().find(|l| l.provider == provider) else {
            return Err(AuthError::NotFound("No such linked account."));
        };
        store.delete(&uid, provider).await.map_err(store_fault)?;
        // Two unlinks at once (or an unlink and a passkey removal) could each see the
        // other's way in still there: whoever finds none left after its own delete puts
        // its link back.
        if store.for_user(&uid).await.map_err(store_fault)?.is_empty()
            && !self.other_way_in(user).await?
        {
            store.insert(&removed).await.map_err(store_fault)?;
            return Err(LAST_WAY);
        }
        crate::audit::emit(&crate::audit::AuditEvent {
            user_id: Some(uid.to_string()),
            provider: Some(provider),
            ..crate::audit::AuditEvent::new("oauth_unlinked", crate::audit::Outcome::Success)
        });
        Ok(())
    }

    /// Whether the user has a way in other than a provider link: a usable password, or a
    /// passkey.
    async fn other_way_in(&self, user: &U) -> Result<bool, AuthError> {
        let has_password = user
            .password_hash()
            .is_some_and(|h| !h.is_empty() && !is_unusable_password(h));
        #[cfg(feature = "passkeys")]
        if !has_password && let Some(passkeys) = &self.passkeys {
            let uid = user.user_id().to_string();
            return Ok(!passkeys
                .for_user(&uid)
                .await
                .map_err(store_fault)?
                .is_empty());
        }
        Ok(has_password)
    }

    /// Removes every link of a user: call it when the app deletes a user, so a provider
    /// account can never sign in to whoever gets that id next.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// # let auth = b.oauth(crudauth::oauth::OAuthConfig::new("https://api.example.com").provider(crudauth::oauth::ProviderConfig::github("id", "s"))).build()?;
    /// let removed = auth.oauth().unwrap().forget_user(&crudauth::UserId::Int(1)).await?;
    /// assert_eq!(removed, 0);
    /// # Ok(()) });
    /// ```
    pub async fn forget_user(&self, user: &UserId) -> Result<usize, AuthError> {
        (self.inner.links)
            .delete_all(&user.to_string())
            .await
            .map_err(store_fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(username: Option<&str>, name: Option<&str>) -> OAuthIdentity {
        OAuthIdentity {
            username: username.map(Into::into),
            name: name.map(Into::into),
            ..OAuthIdentity::new("1")
        }
    }

    #[test]
    fn usernames_come_from_the_profile_in_order() {
        assert_eq!(
            derive_username(&who(Some("Ann.Lee"), Some("X")), None),
            "ann_lee"
        );
        assert_eq!(
            derive_username(&who(None, Some("Ann  Lee!")), None),
            "ann_lee"
        );
        assert_eq!(
            derive_username(&who(None, None), Some("bob.smith@example.com")),
            "bob_smith"
        );
        assert_eq!(derive_username(&who(Some("日本"), None), None), "user");
        assert_eq!(
            derive_username(&who(Some(&"a".repeat(80)), None), None).len(),
            32
        );
    }
}
