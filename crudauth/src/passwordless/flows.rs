//! The flows: request a code (and link), verify a code, redeem a link; each sign-in ends
//! with the account it proved (created on the spot when sign-up is on).

use std::sync::Arc;

use super::Passwordless;
use super::codes::{Codes, INVALID, INVALID_LINK, Redeemed};
use crate::client_ip::{ClientMeta, ip_key};
use crate::delivery::{Medium, MessageKind, OneTimeLink, delivery};
use crate::error::AuthError;
use crate::hooks::Event;
use crate::lockout::Attempt;
use crate::login::{PendingSuccess, VerifiedUser};
use crate::password::make_unusable_password;
use crate::store::repo_fault;
use crate::user::{LogicalField, NewUser, RepoError, UserRecord, normalize_email};

/// Where a code goes: an email address (normalised as stored) or a phone number (E.164).
///
/// ```
/// use crudauth::passwordless::Address;
/// let a = Address::Email("ann@example.com".into());
/// assert_eq!(a.medium(), crudauth::delivery::Medium::Email);
/// assert_eq!(a.as_str(), "ann@example.com");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// An email address, normalised (`crudauth::user::normalize_email`).
    Email(String),
    /// A phone number in E.164 form (`crudauth::user::normalize_phone`).
    Phone(String),
}

impl Address {
    /// The medium a code to this address goes over.
    ///
    /// ```
    /// # use crudauth::passwordless::Address;
    /// assert_eq!(Address::Phone("+15551234567".into()).medium(), crudauth::delivery::Medium::Sms);
    /// ```
    pub fn medium(&self) -> Medium {
        match self {
            Address::Email(_) => Medium::Email,
            Address::Phone(_) => Medium::Sms,
        }
    }

    /// The address itself.
    ///
    /// ```
    /// # use crudauth::passwordless::Address;
    /// assert_eq!(Address::Phone("+15551234567".into()).as_str(), "+15551234567");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Address::Email(a) | Address::Phone(a) => a,
        }
    }

    fn of(medium: Medium, address: String) -> Self {
        match medium {
            Medium::Sms => Address::Phone(address),
            _ => Address::Email(address),
        }
    }
}

/// A sign-in whose code or link was right: the account, and the lockout attempt and
/// success to record once the sign-in completes (at once, or after its second factor).
pub(crate) struct Proven<U> {
    pub verified: VerifiedUser<U>,
    pub attempt: Option<Attempt>,
    pub pending: PendingSuccess,
}

impl<U: UserRecord> Passwordless<U> {
    fn codes(&self) -> Codes<'_> {
        Codes {
            store: self.core.store.as_ref(),
            key: &self.core.keys.one_time,
            max_attempts: self.parts.config.max_attempts,
        }
    }

    /// Whether codes can go over this medium here (the columns and the delivery exist).
    pub(crate) fn supports(&self, medium: Medium) -> bool {
        match medium {
            Medium::Email => self.parts.email,
            Medium::Sms => self.parts.sms,
        }
    }

    /// The account with this address, if any.
    async fn find(&self, address: &Address) -> Result<Option<U>, AuthError> {
        let found = match address {
            Address::Email(email) => self.core.repo.find_by_recovery(email).await,
            Address::Phone(phone) => self.core.repo.find_by_phone(phone).await,
        };
        found.map_err(repo_fault)
    }

    /// Whether the account still has this address.
    fn has_address(user: &U, address: &Address) -> bool {
        match address {
            Address::Email(email) => user.email().map(normalize_email).as_deref() == Some(email),
            Address::Phone(phone) => user.phone() == Some(phone.as_str()),
        }
    }

    /// Starts a sign-in by code: returns at once, the same way for every address; the
    /// lookup, the silent per-address throttle, the code and its delivery run in the
    /// background. Answers the browser nonce to set as a cookie in same-browser mode.
    pub(crate) fn request(&self, address: Address, client: &ClientMeta) -> Option<String> {
        let nonce = self
            .parts
            .config
            .same_browser
            .then(crate::keys::random_token);
        let browser = nonce.as_deref().map(|n| self.codes().browser_digest(n));
        let this = self.clone();
        let requester = ip_key(client.ip);
        self.core.background.spawn(async move {
            if let Err(e) = this.send_code(&address, &requester, browser).await {
                tracing::warn!(error = %e, medium = address.medium().as_str(), "passwordless code request failed");
            }
        });
        nonce
    }

    async fn send_code(
        &self,
        address: &Address,
        requester: &str,
        browser: Option<String>,
    ) -> Result<(), AuthError> {
        let config = &self.parts.config;
        let user = self.find(address).await?.filter(UserRecord::is_active);
        if user.is_none() && !config.create_accounts {
            return Ok(()); // nothing is sent to an address without an account
        }
        let known = match &user {
            Some(u) => self.login.is_known_requester(u, requester).await?,
            None => false,
        };
        let limiter = &self.core.limiter;
        if !limiter
            .allow_silently_from("otp_request", address.as_str(), requester, known)
            .await?
        {
            return Ok(());
        }
        // Sign-up texts to numbers nobody has: capped as a whole, against toll fraud
        // ("SMS pumping") from many client addresses.
        if user.is_none()
            && address.medium() == Medium::Sms
            && !limiter.allow_silently("otp_sms_signup", "all").await?
        {
            tracing::warn!("passwordless sign-up texts over their hourly cap; not sent");
            return Ok(());
        }
        let account = match &user {
            Some(u) => (
                Some(u.user_id().to_string()),
                self.core.revocation.epoch(u).await?,
            ),
            None => (None, 0),
        };
        let medium = address.medium();
        let with_link = config.magic_links && medium == Medium::Email;
        let (code, token) = self
            .codes()
            .issue(
                (medium, address.as_str()),
                account,
                browser,
                (config.code_ttl, with_link),
            )
            .await?;
        // To the address as stored, never as typed (for a sign-up: as normalised).
        let recipient = match (&user, address) {
            (Some(u), Address::Email(_)) => u.email().unwrap_or_default().to_owned(),
            _ => address.as_str().to_owned(),
        };
        let link = token.map(|token| OneTimeLink {
            link: format!(
                "{}{}?token={token}",
                config.frontend_url.trim_end_matches('/'),
                config.link_path
            ),
            token,
            expires_in: config.code_ttl,
        });
        let mut message = delivery(
            MessageKind::SignInCode,
            recipient,
            user.as_ref().map(UserRecord::contract),
            link,
            self.core.repo.database(),
        );
        message.code = Some(code);
        message.expires_in = Some(config.code_ttl);
        message.medium = medium;
        self.core.deliveries.deliver(message).await;
        Ok(())
    }

    /// Verifies a code for the address: counted in the login lockout (the account's, or the
    /// address's when it has none), with the same store reads either way.
    pub(crate) async fn verify_code(
        &self,
        address: &Address,
        code: &str,
        client: &ClientMeta,
    ) -> Result<Proven<U>, AuthError> {
        let user = self.find(address).await?;
        let (attempt, pending) = self
            .login
            .count_code_attempt(user.as_ref(), address.as_str(), client)
            .await?;
        let record = self
            .codes()
            .check(address.medium(), address.as_str(), code)
            .await?;
        let redeemed = Redeemed {
            address: address.as_str().to_owned(),
            record,
        };
        let verified = self.signed_in(address.medium(), redeemed, client).await?;
        Ok(Proven {
            verified,
            attempt: Some(attempt),
            pending,
        })
    }

    /// Redeems a magic link (`nonce`: the same-browser cookie, if any).
    pub(crate) async fn verify_link(
        &self,
        token: &str,
        nonce: Option<&str>,
        client: &ClientMeta,
    ) -> Result<Proven<U>, AuthError> {
        let (medium, redeemed) = self.codes().redeem_link(token, nonce).await?;
        let verified = self
            .signed_in(medium, redeemed, client)
            .await
            .map_err(|e| match e {
                AuthError::Unauthorized(_) => INVALID_LINK,
                e => e,
            })?;
        Ok(Proven {
            verified,
            attempt: None,
            pending: PendingSuccess::new(ip_key(client.ip)),
        })
    }

    /// The account a spent code or link signs in to: the one it was sent for (still active,
    /// at the same epoch, still with this address), or for a sign-up code the account now
    /// holding the address, else a new one. The address is proven: an unverified email
    /// becomes verified.
    async fn signed_in(
        &self,
        medium: Medium,
        redeemed: Redeemed,
        client: &ClientMeta,
    ) -> Result<VerifiedUser<U>, AuthError> {
        let Redeemed { address, record } = redeemed;
        let address = Address::of(medium, address);
        let user = match &record.user_id {
            Some(uid) => {
                let user = self.core.user_by_text_id(uid).await?.ok_or(INVALID)?;
                if !user.is_active()
                    || self.core.revocation.epoch(&user).await? != record.epoch
                    || !Self::has_address(&user, &address)
                {
                    return Err(INVALID);
                }
                user
            }
            None => match self.find(&address).await? {
                Some(user) if user.is_active() => user,
                Some(_) => return Err(INVALID),
                None => self.create(&address, client).await?,
            },
        };
        let ctx = client.hook_context(None);
        if self.login.vetoed(&user, &ctx).await.is_some() {
            return Err(AuthError::Forbidden("Sign-in refused."));
        }
        let user = self.proven(user, &address).await?;
        let epoch = self.core.revocation.epoch(&user).await?;
        Ok(VerifiedUser { user, epoch })
    }

    /// An account whose email address a code or link just proved: if it was never
    /// verified, whoever registered it may not be its owner, and what they set up (a
    /// password, sessions, tokens, provider links, second factors, passkeys) ends before
    /// the owner signs in (the claim, as a provider sign-in makes it).
    async fn proven(&self, user: U, address: &Address) -> Result<U, AuthError> {
        let schema = self.core.repo.schema();
        if !matches!(address, Address::Email(_))
            || user.email_verified()
            || !schema.has(LogicalField::EmailVerified)
        {
            return Ok(user);
        }
        match &self.claim {
            Some(claim) => claim.claim(user, "passwordless").await,
            None => Err(AuthError::Internal),
        }
    }

    /// A new account for a proven address (sign-up on): no usable password, a username
    /// derived from the address, `on_before_register` asked first.
    async fn create(&self, address: &Address, client: &ClientMeta) -> Result<U, AuthError> {
        if !self.parts.config.create_accounts {
            return Err(INVALID);
        }
        let schema = *self.core.repo.schema();
        let mut new = NewUser::new(make_unusable_password());
        let local = match address {
            Address::Email(email) => {
                self.core.refuse_disposable("email", email)?;
                new = new.email(email);
                new.email_verified = true;
                email.split('@').next()
            }
            Address::Phone(phone) => {
                new = new.phone(phone);
                None
            }
        };
        if schema.has(LogicalField::Username) {
            new.username = Some(crate::signup::username_from(&[local]));
        }
        let ctx = client.hook_context(None);
        if let Err(veto) = self.core.hooks.before_register(&new, &ctx).await {
            tracing::info!(reason = %veto, "crudauth: passwordless sign-up refused by on_before_register");
            return Err(AuthError::Forbidden("Sign-up refused."));
        }
        let user = match crate::signup::create_with_free_username(self.repo.as_ref(), new).await {
            Ok(user) => user,
            Err(e @ RepoError::Backend(_)) => return Err(repo_fault(e)),
            // Created meanwhile by a concurrent redemption, or a column the table cannot
            // fill: the code does not sign in.
            Err(e) => {
                tracing::warn!(error = %e, "crudauth: passwordless sign-up could not create the account");
                return Err(INVALID);
            }
        };
        let registered = Arc::new(user.clone());
        let core = self.core.clone();
        self.core.background.spawn(async move {
            core.hooks
                .fire_user(Event::AfterRegister, registered, &ctx)
                .await;
        });
        tracing::info!(user_id = %user.user_id(), medium = address.medium().as_str(), "crudauth: account created by a passwordless sign-in");
        Ok(user)
    }
}
