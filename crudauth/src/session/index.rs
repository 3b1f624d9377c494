//! Each user's sessions: the per-user index, listing, revoking, the cap, and the user
//! generation the records carry (see `crate::generation`).

use super::{LiveSession, SessionRecord, Sessions, index_key, session_key, store_fault};
use crate::error::AuthError;

impl Sessions {
    pub(super) async fn evict_beyond_cap(
        &self,
        user_id: &str,
        keep: &str,
    ) -> Result<(), AuthError> {
        let mut sessions = self.list(user_id).await?;
        if sessions.len() <= self.config.max_sessions_per_user {
            return Ok(());
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.record.last_seen));
        let excess = sessions.len() - self.config.max_sessions_per_user;
        let mut victims: Vec<_> = sessions.into_iter().filter(|s| s.handle != keep).collect();
        victims.sort_by_key(|s| s.record.last_seen);
        for victim in victims.into_iter().take(excess) {
            self.delete(&victim.handle, user_id).await?;
        }
        Ok(())
    }

    /// Ends one session.
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, new, _| {
    /// assert!(sessions.delete(&new.handle, "1").await?);
    /// assert!(sessions.resolve(&new.id).await?.is_none());
    /// # Ok(()) });
    /// ```
    pub async fn delete(&self, handle: &str, user_id: &str) -> Result<bool, AuthError> {
        let removed = self
            .store
            .delete(&session_key(handle))
            .await
            .map_err(store_fault)?;
        self.store
            .index_remove(&index_key(user_id), handle)
            .await
            .map_err(store_fault)?;
        Ok(removed)
    }

    /// A user's live sessions.
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, _, _| {
    /// for s in sessions.list("1").await? { println!("{} {}", s.handle, s.record.ip); }
    /// assert_eq!(sessions.list("1").await?.len(), 1); // Ann is signed in once
    /// # Ok(()) });
    /// ```
    pub async fn list(&self, user_id: &str) -> Result<Vec<LiveSession>, AuthError> {
        let handles = self
            .store
            .index_members(&index_key(user_id))
            .await
            .map_err(store_fault)?;
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            let bytes = self
                .store
                .get(&session_key(&handle))
                .await
                .map_err(store_fault)?;
            match bytes.and_then(|b| serde_json::from_slice::<SessionRecord>(&b).ok()) {
                Some(record) if record.user_id == user_id => {
                    out.push(LiveSession { handle, record })
                }
                _ => {
                    // Expired or gone: keep the index consistent.
                    self.store
                        .index_remove(&index_key(user_id), &handle)
                        .await
                        .map_err(store_fault)?;
                }
            }
        }
        Ok(out)
    }

    /// Ends every session of a user except `keep`; returns how many ended.
    ///
    /// ```
    /// # crudauth::doc_fixture::run_with_session(async |sessions, current, _| {
    /// sessions.create("1", 0, "198.51.100.4", "curl/8").await?; // another device
    /// assert_eq!(sessions.revoke_all("1", Some(&current.handle)).await?, 1); // the other one
    /// # Ok(()) });
    /// ```
    pub async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<usize, AuthError> {
        let mut revoked = 0;
        for session in self.list(user_id).await? {
            if Some(session.handle.as_str()) == keep {
                continue;
            }
            if self.delete(&session.handle, user_id).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Tells every live session of the user its generation moved to `generation` (kept as
    /// the larger of the two, so a late stamp never winds it back).
    pub(crate) async fn set_generation(
        &self,
        user_id: &str,
        generation: i64,
    ) -> Result<(), AuthError> {
        for session in self.list(user_id).await? {
            self.modify(&session.handle, |r| {
                r.generation = r.generation.max(generation);
            })
            .await?;
        }
        Ok(())
    }
}
