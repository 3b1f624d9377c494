//! Delivery ports: how verification, reset and email-change messages leave the library.
//!
//! - [`EmailSender`] receives a rendered message (recipient, subject, plain-text body) and a
//!   [`EmailContext`] carrying only library-owned data (kind, link, recipient, expiry), so a
//!   sender can render its own template without ever seeing a password hash or an app column.
//! - [`DeliveryChannel`] is for other media (SMS, push): it receives the bare token, the
//!   recipient, the contract-only user and the repository's database handle.
//!
//! Every channel is fired best-effort, off the request path: a failing or slow channel is
//! logged and never reaches the caller (no enumeration oracle) and never stops the next one.
//! [`crate::Background::flush`] waits for the messages still in flight (for a graceful shutdown).
//!
//! Built in: [`OutboxSender`] (a JSON-lines file, for development and tests) and, with the
//! `smtp` feature, `SmtpSender` (lettre).

mod outbox;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::user::UserContract;

pub use outbox::OutboxSender;

/// What a message is for.
///
/// ```
/// assert_eq!(crudauth::delivery::MessageKind::ResetPassword.as_str(), "reset_password");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A link that proves the recipient owns the address.
    VerifyEmail,
    /// A link to choose a new password.
    ResetPassword,
    /// A link, sent to the *new* address, that confirms an email change.
    ChangeEmail,
    /// A notice to the *old* address that a change to another address was requested.
    EmailChangeRequested,
    /// A notice to the old address that the change was completed.
    EmailChanged,
    /// A notice to the owner of an address someone tried to register again.
    ExistingAccount,
    /// A one-time sign-in code (and, by email, a magic link): passwordless sign-in.
    SignInCode,
    /// A notice that a passkey was added to the account.
    PasskeyAdded,
    /// A code, texted to a new phone number, that confirms it as the account's (the users
    /// admin's `PATCH /users/me`).
    ConfirmPhone,
}

impl MessageKind {
    /// The kind's wire name (as in the outbox's `kind`).
    ///
    /// ```
    /// assert_eq!(crudauth::delivery::MessageKind::VerifyEmail.as_str(), "verify_email");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::VerifyEmail => "verify_email",
            MessageKind::ResetPassword => "reset_password",
            MessageKind::ChangeEmail => "change_email",
            MessageKind::EmailChangeRequested => "email_change_requested",
            MessageKind::EmailChanged => "email_changed",
            MessageKind::ExistingAccount => "existing_account",
            MessageKind::SignInCode => "sign_in_code",
            MessageKind::PasskeyAdded => "passkey_added",
            MessageKind::ConfirmPhone => "confirm_phone",
        }
    }

    /// The default subject line.
    ///
    /// ```
    /// assert_eq!(crudauth::delivery::MessageKind::VerifyEmail.subject(), "Verify your email");
    /// ```
    pub fn subject(self) -> &'static str {
        match self {
            MessageKind::VerifyEmail => "Verify your email",
            MessageKind::ResetPassword => "Reset your password",
            MessageKind::ChangeEmail => "Confirm your new email address",
            MessageKind::EmailChangeRequested => "A change of your email address was requested",
            MessageKind::EmailChanged => "Your email address was changed",
            MessageKind::ExistingAccount => "You already have an account",
            MessageKind::SignInCode => "Your sign-in code",
            MessageKind::PasskeyAdded => "A passkey was added to your account",
            MessageKind::ConfirmPhone => "Confirm your new phone number",
        }
    }
}

/// The library-owned data a message is rendered from.
///
/// ```
/// use crudauth::delivery::{EmailContext, MessageKind};
/// let ctx = EmailContext { kind: MessageKind::ResetPassword, link: Some("https://app.example/reset-password?token=t".into()),
///     recipient: "ann@example.com".into(), expires_in: Some(std::time::Duration::from_secs(3600)), code: None };
/// assert!(ctx.render_body().contains("1 hour"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EmailContext {
    /// What the message is for.
    pub kind: MessageKind,
    /// The assembled link with the token inside (absent for notices).
    pub link: Option<String>,
    /// The address the message goes to (the stored one, never the one a client typed).
    pub recipient: String,
    /// How long the link stays valid.
    pub expires_in: Option<Duration>,
    /// A one-time sign-in code (only in a [`MessageKind::SignInCode`] message).
    pub code: Option<String>,
}

/// The link holds a live token: debug output (and so logs) shows only that there is one.
impl std::fmt::Debug for EmailContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailContext")
            .field("kind", &self.kind)
            .field("link", &self.link.as_ref().map(|_| "<redacted>"))
            .field("recipient", &self.recipient)
            .field("expires_in", &self.expires_in)
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else {
        (secs.div_ceil(60), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

impl EmailContext {
    /// The default plain-text body.
    ///
    /// ```
    /// # use crudauth::delivery::{EmailContext, MessageKind};
    /// let ctx = EmailContext { kind: MessageKind::EmailChanged, link: None, recipient: "a@b.c".into(), expires_in: None, code: None };
    /// assert!(ctx.render_body().contains("changed"));
    /// ```
    pub fn render_body(&self) -> String {
        let valid = self
            .expires_in
            .map(|d| format!("The link is valid for {}. ", human(d)))
            .unwrap_or_default();
        let link = self.link.as_deref().unwrap_or_default();
        let ignore = "If you did not ask for this, you can ignore this message.";
        match self.kind {
            MessageKind::VerifyEmail => format!(
                "Confirm that this is your address by opening this link:\n\n{link}\n\n{valid}{ignore}\n"
            ),
            MessageKind::ResetPassword => format!(
                "Someone asked to reset the password of your account. To choose a new password, open this link:\n\n{link}\n\n{valid}{ignore}\n"
            ),
            MessageKind::ChangeEmail => format!(
                "To make this the email address of your account, open this link:\n\n{link}\n\n{valid}{ignore}\n"
            ),
            MessageKind::EmailChangeRequested => "Someone signed in to your account asked to move it to another email address. \
                 Nothing changes unless the new address confirms. If this was not you, change your password now.\n"
                .to_owned(),
            MessageKind::EmailChanged => "The email address of your account was changed; this address no longer receives \
                 its messages. If this was not you, contact support now.\n"
                .to_owned(),
            MessageKind::ExistingAccount => "Someone tried to sign up with this address, which already has an account. \
                 If it was you, sign in or reset your password instead.\n"
                .to_owned(),
            MessageKind::PasskeyAdded => "A passkey was added to your account: it signs in without your password. \
                 If this was not you, remove it from your account's passkeys and change your password now.\n"
                .to_owned(),
            MessageKind::SignInCode => {
                let code = self.code.as_deref().unwrap_or_default();
                let minutes = self.expires_in.map(|d| format!(" It is valid for {}.", human(d))).unwrap_or_default();
                let link = match &self.link {
                    Some(link) => format!("\nOr sign in by opening this link:\n\n{link}\n"),
                    None => String::new(),
                };
                format!("Your sign-in code is {code}.{minutes}\n{link}\nNever share this code. {ignore}\n")
            }
            MessageKind::ConfirmPhone => {
                let code = self.code.as_deref().unwrap_or_default();
                format!("Your code to confirm this phone number is {code}. Never share this code. {ignore}\n")
            }
        }
    }
}

/// A rendered email.
///
/// ```
/// use crudauth::delivery::{EmailContext, EmailMessage, MessageKind};
/// let ctx = EmailContext { kind: MessageKind::VerifyEmail, link: Some("https://x/verify-email?token=t".into()),
///     recipient: "ann@example.com".into(), expires_in: None, code: None };
/// let message = EmailMessage::render(ctx);
/// assert_eq!(message.subject, "Verify your email");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// The recipient.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
    /// The render context (kind, link, recipient, expiry).
    pub context: EmailContext,
}

/// The body holds the link: debug output shows neither.
impl std::fmt::Debug for EmailMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailMessage")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl EmailMessage {
    /// Renders the default subject and body for a context.
    ///
    /// ```
    /// # use crudauth::delivery::{EmailContext, EmailMessage, MessageKind};
    /// let m = EmailMessage::render(EmailContext { kind: MessageKind::EmailChanged, link: None, recipient: "a@b.c".into(), expires_in: None, code: None });
    /// assert_eq!(m.to, "a@b.c");
    /// ```
    pub fn render(context: EmailContext) -> Self {
        EmailMessage {
            to: context.recipient.clone(),
            subject: context.kind.subject().to_owned(),
            body: context.render_body(),
            context,
        }
    }

    /// The message's kind.
    ///
    /// ```
    /// # use crudauth::delivery::{EmailContext, EmailMessage, MessageKind};
    /// # let m = EmailMessage::render(EmailContext { kind: MessageKind::EmailChanged, link: None, recipient: "a@b.c".into(), expires_in: None, code: None });
    /// assert_eq!(m.kind(), MessageKind::EmailChanged);
    /// ```
    pub fn kind(&self) -> MessageKind {
        self.context.kind
    }
}

/// A delivery failed (for logs; it never reaches a client).
///
/// ```
/// let e = crudauth::delivery::DeliveryError::new("connection refused");
/// assert!(e.to_string().contains("refused"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("delivery failed: {0}")]
pub struct DeliveryError(pub String);

impl DeliveryError {
    /// A failure with this message.
    ///
    /// ```
    /// let _ = crudauth::delivery::DeliveryError::new("timeout");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        DeliveryError(message.into())
    }
}

/// Sends rendered emails.
///
/// ```
/// use crudauth::delivery::{DeliveryError, EmailMessage, EmailSender};
/// struct Stdout;
/// #[async_trait::async_trait]
/// impl EmailSender for Stdout {
///     async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
///         println!("to {}: {}", message.to, message.subject);
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait EmailSender: Send + Sync + 'static {
    /// Sends one message.
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError>;
}

/// The medium a message goes over.
///
/// ```
/// assert_eq!(crudauth::delivery::Medium::Sms.as_str(), "sms");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Medium {
    /// An email address: the email sender, then every channel.
    Email,
    /// A phone number (E.164): the channels only (an SMS gateway is one).
    Sms,
}

impl Medium {
    /// The medium's wire name.
    ///
    /// ```
    /// assert_eq!(crudauth::delivery::Medium::Email.as_str(), "email");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Email => "email",
            Medium::Sms => "sms",
        }
    }
}

/// One message for a [`DeliveryChannel`].
///
/// ```
/// # use crudauth::delivery::Delivery;
/// fn describe(d: &Delivery) -> String {
///     format!("{} to {} (token: {})", d.kind.as_str(), d.recipient, d.token.is_some())
/// }
/// ```
#[derive(Clone)]
pub struct Delivery {
    /// What the message is for.
    pub kind: MessageKind,
    /// The bare one-time token (absent for notices).
    pub token: Option<String>,
    /// The link built from the configured frontend URL (absent for notices).
    pub link: Option<String>,
    /// The address (or number) the message goes to.
    pub recipient: String,
    /// The contract-only view of the user (absent for a sign-in code to an address that has
    /// no account yet, when passwordless sign-up is on).
    pub user: Option<UserContract>,
    /// How long the token stays valid.
    pub expires_in: Option<Duration>,
    /// The one-time sign-in code of a [`MessageKind::SignInCode`] message.
    pub code: Option<String>,
    /// Whether `recipient` is an email address or a phone number.
    pub medium: Medium,
    database: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("kind", &self.kind)
            .field("recipient", &self.recipient)
            .field("medium", &self.medium)
            .field("user", &self.user.as_ref().map(|u| &u.id))
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// The repository's database handle, if it offers one of type `T` (with `crudauth-sea`,
    /// a `sea_orm::DatabaseConnection`).
    ///
    /// ```
    /// use crudauth::delivery::Delivery;
    /// // With `crudauth-sea` the handle is a `sea_orm::DatabaseConnection`; any other type answers `None`.
    /// fn connection(delivery: &Delivery) -> Option<&String> {
    ///     delivery.database::<String>()
    /// }
    /// # let _ = connection;
    /// ```
    pub fn database<T: Any>(&self) -> Option<&T> {
        self.database.as_deref()?.downcast_ref::<T>()
    }
}

/// Delivers messages over another medium (SMS, push, a queue).
///
/// ```
/// use crudauth::delivery::{Delivery, DeliveryChannel, DeliveryError};
/// struct Sms;
/// #[async_trait::async_trait]
/// impl DeliveryChannel for Sms {
///     async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
///         if let Some(token) = &delivery.token { println!("code for {}: {token}", delivery.recipient); }
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait DeliveryChannel: Send + Sync + 'static {
    /// Delivers one message.
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError>;
}

/// The configured sender and channels, fired off the request path (in the tasks of
/// `auth.background()`, whose `flush` waits for mail in flight).
#[derive(Clone, Default)]
pub(crate) struct Deliveries {
    sender: Option<Arc<dyn EmailSender>>,
    channels: Vec<Arc<dyn DeliveryChannel>>,
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries")
            .field("email", &self.sender.is_some())
            .field("channels", &self.channels.len())
            .finish()
    }
}

impl Deliveries {
    pub(crate) fn new(
        sender: Option<Arc<dyn EmailSender>>,
        channels: Vec<Arc<dyn DeliveryChannel>>,
    ) -> Self {
        Deliveries { sender, channels }
    }

    /// Whether anything can deliver at all.
    pub(crate) fn is_configured(&self) -> bool {
        self.sender.is_some() || !self.channels.is_empty()
    }

    /// Whether an email sender is configured.
    pub(crate) fn sends_email(&self) -> bool {
        self.sender.is_some()
    }

    /// Whether a delivery channel (an SMS gateway, say) is configured.
    #[cfg_attr(not(feature = "passwordless"), allow(dead_code))]
    pub(crate) fn has_channels(&self) -> bool {
        !self.channels.is_empty()
    }

    /// Sends one message through every channel, in order, logging each failure: an email
    /// through the sender and the channels, a text message through the channels only.
    pub(crate) async fn deliver(&self, delivery: Delivery) {
        if delivery.medium == Medium::Sms {
            if !is_e164(&delivery.recipient) {
                tracing::warn!(
                    kind = delivery.kind.as_str(),
                    "not delivered: the stored phone number is not E.164"
                );
                return;
            }
            self.to_channels(&delivery).await;
            return;
        }
        // Whatever wrote the stored address (an import, an admin tool), a mailbox form or a
        // junk value is never handed to a sender.
        if !crate::user::valid_email(&delivery.recipient) {
            tracing::warn!(
                kind = delivery.kind.as_str(),
                "not delivered: the stored address is not a plain email address"
            );
            return;
        }
        if let Some(sender) = &self.sender {
            let message = EmailMessage::render(EmailContext {
                kind: delivery.kind,
                link: delivery.link.clone(),
                recipient: delivery.recipient.clone(),
                expires_in: delivery.expires_in,
                code: delivery.code.clone(),
            });
            if let Err(e) = sender.send(&message).await {
                tracing::warn!(kind = delivery.kind.as_str(), error = %e, "email delivery failed");
            }
        }
        self.to_channels(&delivery).await;
    }

    async fn to_channels(&self, delivery: &Delivery) {
        for channel in &self.channels {
            if let Err(e) = channel.deliver(delivery).await {
                tracing::warn!(kind = delivery.kind.as_str(), error = %e, "delivery channel failed");
            }
        }
    }
}

/// The one-time link a message carries: the bare token (for channels), the link built from
/// it (for the email) and how long it stays valid.
#[derive(Clone)]
pub(crate) struct OneTimeLink {
    pub token: String,
    pub link: String,
    pub expires_in: Duration,
}

/// Builds a [`Delivery`] (crate-internal: the database handle comes from the repository).
pub(crate) fn delivery(
    kind: MessageKind,
    recipient: String,
    user: Option<UserContract>,
    link: Option<OneTimeLink>,
    database: Option<Arc<dyn Any + Send + Sync>>,
) -> Delivery {
    let (token, link, expires_in) = match link {
        Some(l) => (Some(l.token), Some(l.link), Some(l.expires_in)),
        None => (None, None, None),
    };
    Delivery {
        kind,
        token,
        link,
        recipient,
        user,
        expires_in,
        code: None,
        medium: Medium::Email,
        database,
    }
}

/// A phone number as stored for SMS: `+` and 8 to 15 digits, the first not 0.
fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let m = EmailMessage::render(EmailContext {
            kind: MessageKind::ResetPassword,
            link: Some("https://x/reset-password?token=SECRET".into()),
            recipient: "ann@example.com".into(),
            expires_in: None,
            code: None,
        });
        assert!(!format!("{m:?}").contains("SECRET"));
    }

    #[test]
    fn bodies_carry_the_link_and_expiry() {
        let ctx = EmailContext {
            kind: MessageKind::VerifyEmail,
            link: Some("https://app.example/verify-email?token=abc".into()),
            recipient: "ann@example.com".into(),
            expires_in: Some(Duration::from_secs(24 * 3600)),
            code: None,
        };
        let m = EmailMessage::render(ctx);
        assert!(
            m.body
                .contains("https://app.example/verify-email?token=abc")
        );
        assert!(m.body.contains("24 hours"));
        assert_eq!(human(Duration::from_secs(90)), "2 minutes");
    }
}
