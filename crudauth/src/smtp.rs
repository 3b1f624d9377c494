//! An [`EmailSender`] over SMTP, on `lettre` (feature `smtp`): STARTTLS (default, port 587),
//! implicit TLS (port 465) with rustls and the webpki roots, or plain SMTP for a local
//! relay or a test sink; optional credentials; a pooled async transport.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::delivery::{DeliveryError, EmailMessage, EmailSender};
use crate::error::ConfigError;

/// How the connection to the SMTP server is secured.
///
/// ```
/// assert_eq!(crudauth::smtp::SmtpSecurity::default(), crudauth::smtp::SmtpSecurity::StartTls);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (default; port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption at all: only for a relay on the same host or a test sink.
    Plain,
}

/// SMTP settings.
///
/// ```
/// let c = crudauth::smtp::SmtpConfig::new("smtp.example.com", "Example <no-reply@example.com>");
/// assert_eq!(c.port, None);
/// ```
#[derive(Clone)]
pub struct SmtpConfig {
    /// The server's host name (also the name its TLS certificate must carry).
    pub host: String,
    /// The port; `None` uses the security mode's standard port (587, 465, or 25).
    pub port: Option<u16>,
    /// Transport security.
    pub security: SmtpSecurity,
    /// User name and password, if the server wants them.
    pub credentials: Option<(String, String)>,
    /// The `From` mailbox (`Name <address>` or a bare address).
    pub from: String,
    /// Connection and command timeout (default 10 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    /// STARTTLS to `host`, no credentials, 10 s timeout.
    ///
    /// ```
    /// let c = crudauth::smtp::SmtpConfig::new("smtp.example.com", "no-reply@example.com");
    /// assert_eq!(c.security, crudauth::smtp::SmtpSecurity::StartTls);
    /// ```
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        SmtpConfig {
            host: host.into(),
            port: None,
            security: SmtpSecurity::StartTls,
            credentials: None,
            from: from.into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Sends messages over SMTP.
///
/// ```no_run
/// use crudauth::smtp::{SmtpConfig, SmtpSender};
/// let mut config = SmtpConfig::new("smtp.example.com", "Example <no-reply@example.com>");
/// config.credentials = Some(("mailer".into(), std::env::var("SMTP_PASSWORD").unwrap()));
/// let sender = SmtpSender::new(config).expect("valid SMTP settings");
/// ```
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Builds the (lazily connecting) transport; refuses a bad `from` or host.
    ///
    /// ```
    /// let bad = crudauth::smtp::SmtpSender::new(crudauth::smtp::SmtpConfig::new("localhost", "not a mailbox"));
    /// assert!(bad.is_err());
    /// ```
    pub fn new(config: SmtpConfig) -> Result<Self, ConfigError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("smtp from {:?}: {e}", config.from)))?;
        let bad_host = |e: lettre::transport::smtp::Error| {
            ConfigError::Invalid(format!("smtp host {:?}: {e}", config.host))
        };
        let builder = match config.security {
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(bad_host)?
            }
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host).map_err(bad_host)?
            }
            SmtpSecurity::Plain => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host).port(25)
            }
        };
        let mut builder = builder.timeout(Some(config.timeout));
        if let Some(port) = config.port {
            builder = builder.port(port);
        }
        if let Some((user, password)) = config.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait::async_trait]
impl EmailSender for SmtpSender {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        // A bare address only, never a `Name <address>` form: a stored string can never
        // redirect the mail to an address hidden inside it.
        let address: lettre::Address = message
            .to
            .parse()
            .map_err(|e| DeliveryError::new(format!("recipient: {e}")))?;
        let to = Mailbox::new(None, address);
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| DeliveryError::new(e.to_string()))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| DeliveryError::new(e.to_string()))
    }
}
