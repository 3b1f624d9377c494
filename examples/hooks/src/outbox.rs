//! Where the welcome mail "goes": a JSON-lines file (`--outbox FILE`), or only the log. A
//! real app would hand the message to its mailer here; nothing in this recipe speaks SMTP.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crudauth::HookError;
use serde_json::json;

/// The outbox. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    file: Option<Arc<PathBuf>>,
}

impl Outbox {
    /// An outbox appending to `file`, or logging only.
    pub fn new(file: Option<PathBuf>) -> Self {
        Outbox {
            file: file.map(Arc::new),
        }
    }

    /// "Sends" a message: one line `{"to", "subject", "body", "at"}` appended to the file.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), HookError> {
        let Some(file) = self.file.clone() else {
            tracing::info!(to, subject, "mail (no --outbox given: logged only)");
            return Ok(());
        };
        let mut line = json!({
            "to": to,
            "subject": subject,
            "body": body,
            "at": crate::audit::now_secs(),
        })
        .to_string();
        line.push('\n');
        // File I/O blocks: off the async workers. Each mail is one line written at once to a
        // file opened for appending.
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&*file)?
                .write_all(line.as_bytes())
        })
        .await??;
        Ok(())
    }
}
