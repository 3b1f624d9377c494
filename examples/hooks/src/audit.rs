//! The audit log the hooks write to: kept in memory (it ends with the process) and read at
//! `GET /audit`. A real app would insert into a table of its own from the same hooks; the
//! hooks would be the same closures with an `await` on the insert.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crudauth::HookContext;
use serde_json::{Map, Value, json};

use crate::users::Model as User;

/// How many entries are kept: the newest win, so a flood of failed logins cannot grow the
/// process without bound.
const KEEP: usize = 1000;

/// The log, shared by the hooks (which append) and `GET /audit` (which reads). Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct AuditLog(Arc<Mutex<VecDeque<Value>>>);

impl AuditLog {
    /// Appends one entry: the event, the account when there is one (with the app's own
    /// `display_name` and `plan`, read off the model the hook was given), where the request
    /// came from, and the event's own `details`.
    pub fn record(&self, event: &str, user: Option<&User>, ctx: &HookContext, details: Value) {
        let mut entry = Map::new();
        entry.insert("at".into(), json!(now_secs()));
        entry.insert("event".into(), json!(event));
        if let Some(user) = user {
            entry.insert("user_id".into(), json!(user.id));
            entry.insert("email".into(), json!(user.email));
            entry.insert("display_name".into(), json!(user.display_name));
            entry.insert("plan".into(), json!(user.plan));
        }
        entry.insert("ip".into(), json!(ctx.ip));
        entry.insert("transport".into(), json!(ctx.transport));
        if let Value::Object(details) = details {
            entry.extend(details);
        }
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == KEEP {
            log.pop_front();
        }
        log.push_back(Value::Object(entry));
    }

    /// Every kept entry, oldest first.
    pub fn entries(&self) -> Vec<Value> {
        let log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().cloned().collect()
    }
}

/// Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().try_into().unwrap_or(i64::MAX))
}
