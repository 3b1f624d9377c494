//! The development outbox: every message as one JSON line in a file.

use std::path::PathBuf;
use std::sync::Arc;

use super::{DeliveryError, EmailMessage, EmailSender};

/// Appends one JSON line per message (`{"to", "subject", "kind", "link"}`) to a file: for
/// development and tests, never for production.
///
/// ```
/// # crudauth::doc_fixture::run(async |_| {
/// use crudauth::delivery::{EmailContext, EmailMessage, EmailSender, MessageKind, OutboxSender};
/// let path = std::env::temp_dir().join(format!("outbox-{}.jsonl", uuid::Uuid::new_v4()));
/// let outbox = OutboxSender::new(&path);
/// let notice = EmailContext { kind: MessageKind::EmailChanged, link: None, recipient: "ann@example.com".into(), expires_in: None, code: None };
/// outbox.send(&EmailMessage::render(notice)).await?;
/// assert!(std::fs::read_to_string(&path)?.contains(r#""kind":"email_changed""#));
/// # std::fs::remove_file(path)?;
/// # Ok(()) });
/// ```
#[derive(Clone, Debug)]
pub struct OutboxSender {
    path: PathBuf,
    lock: Arc<std::sync::Mutex<()>>,
}

impl OutboxSender {
    /// An outbox writing to `path` (created on first use).
    ///
    /// ```
    /// let outbox = crudauth::delivery::OutboxSender::new("/tmp/outbox.jsonl"); // nothing written yet
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OutboxSender {
            path: path.into(),
            lock: Arc::new(std::sync::Mutex::new(())),
        }
    }
}

#[async_trait::async_trait]
impl EmailSender for OutboxSender {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        let mut line = serde_json::to_vec(&serde_json::json!({
            "to": message.to,
            "subject": message.subject,
            "kind": message.kind().as_str(),
            "link": message.context.link,
            "code": message.context.code,
        }))
        .map_err(|e| DeliveryError::new(e.to_string()))?;
        line.push(b'\n');
        let path = self.path.clone();
        let lock = self.lock.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            // One writer at a time, one write per line: lines never interleave.
            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&line))
        })
        .await
        .map_err(|e| DeliveryError::new(e.to_string()))?
        .map_err(|e| DeliveryError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{EmailContext, MessageKind};

    #[tokio::test]
    async fn the_outbox_appends_one_json_line_per_message() {
        let path = std::env::temp_dir().join(format!("outbox-{}.jsonl", uuid::Uuid::new_v4()));
        let outbox = OutboxSender::new(&path);
        for kind in [MessageKind::ResetPassword, MessageKind::EmailChanged] {
            let m = EmailMessage::render(EmailContext {
                kind,
                link: (kind == MessageKind::ResetPassword).then(|| "https://x/r?token=t".into()),
                recipient: "ann@example.com".into(),
                expires_in: None,
                code: None,
            });
            outbox.send(&m).await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["kind"], "reset_password");
        assert_eq!(lines[0]["subject"], "Reset your password");
        assert_eq!(lines[0]["link"], "https://x/r?token=t");
        assert_eq!(lines[1]["link"], serde_json::Value::Null);
        let _ = std::fs::remove_file(path);
    }
}
