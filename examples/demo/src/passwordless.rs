//! The demo's passwordless sign-in: a six-digit code by email (with a magic link, opened by
//! the demo's `/magic-link` page) or by SMS to the account's phone number. Texts go to the
//! JSON-lines file named by `CRUDAUTH_DEMO_SMS_OUTBOX` (beside the email outbox), else to
//! the log. `CRUDAUTH_PASSWORDLESS_SIGNUP=1` lets a code for an unknown address create the
//! account; `CRUDAUTH_PASSWORDLESS_SAME_BROWSER=1` binds links to the browser that asked.

use std::path::PathBuf;
use std::sync::Arc;

use crudauth::delivery::{Delivery, DeliveryChannel, DeliveryError, Medium};
use crudauth::passwordless::PasswordlessConfig;

/// The passwordless settings, links under `frontend_url`.
pub fn config(frontend_url: &str) -> PasswordlessConfig {
    let on = |name: &str| std::env::var(name).is_ok_and(|v| v == "1" || v == "true");
    PasswordlessConfig {
        create_accounts: on("CRUDAUTH_PASSWORDLESS_SIGNUP"),
        same_browser: on("CRUDAUTH_PASSWORDLESS_SAME_BROWSER"),
        ..PasswordlessConfig::new(frontend_url)
    }
}

/// The SMS channel of the demo: an outbox file, or the log.
pub fn sms_channel() -> Arc<dyn DeliveryChannel> {
    match std::env::var("CRUDAUTH_DEMO_SMS_OUTBOX") {
        Ok(path) => {
            tracing::info!(%path, "text messages go to the SMS outbox file");
            Arc::new(SmsOutbox::new(path))
        }
        Err(_) => {
            tracing::warn!(
                "text messages go to the log, codes included: development only \
                 (set CRUDAUTH_DEMO_SMS_OUTBOX)"
            );
            Arc::new(SmsLog)
        }
    }
}

/// Appends one JSON line per text message (`{"to", "kind", "code"}`): for development and
/// tests, never for production (a real channel calls an SMS gateway).
pub struct SmsOutbox {
    path: PathBuf,
    lock: std::sync::Mutex<()>,
}

impl SmsOutbox {
    fn new(path: impl Into<PathBuf>) -> Self {
        SmsOutbox {
            path: path.into(),
            lock: std::sync::Mutex::new(()),
        }
    }
}

fn text_of(delivery: &Delivery) -> serde_json::Value {
    serde_json::json!({
        "to": delivery.recipient,
        "kind": delivery.kind.as_str(),
        "code": delivery.code,
        "text": format!(
            "crudauth demo code: {}. Never share it.",
            delivery.code.as_deref().unwrap_or_default()
        ),
    })
}

#[async_trait::async_trait]
impl DeliveryChannel for SmsOutbox {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        use std::io::Write;
        if delivery.medium != Medium::Sms {
            return Ok(()); // emails have their own sender
        }
        let mut line = serde_json::to_vec(&text_of(delivery))
            .map_err(|e| DeliveryError::new(e.to_string()))?;
        line.push(b'\n');
        // One writer at a time, one write per line (a short local append).
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(&line))
            .map_err(|e| DeliveryError::new(e.to_string()))
    }
}

/// Writes text messages to the log.
struct SmsLog;

#[async_trait::async_trait]
impl DeliveryChannel for SmsLog {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        if delivery.medium == Medium::Sms {
            tracing::info!(message = %text_of(delivery), "text message (not sent)");
        }
        Ok(())
    }
}
