//! Unit tests of the hasher.

mod unit {
    use super::super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            ..Default::default()
        })
        .unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_workers_run_at_the_configured_niceness() {
        let caller = rustix::process::getpriority_process(None).unwrap();
        for (niceness, expected) in [(0u8, caller), (7, (caller + 7).min(19))] {
            let h = PasswordHasher::new(PasswordConfig {
                memory_kib: 64,
                iterations: 1,
                worker_niceness: niceness,
                ..Default::default()
            })
            .unwrap();
            let seen = h
                .run(|_| rustix::process::getpriority_process(None).unwrap())
                .await
                .unwrap();
            assert_eq!(seen, expected, "a worker at niceness {niceness}");
        }
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            caller,
            "only the workers yield, never the caller's thread"
        );
    }

    #[tokio::test]
    async fn a_password_typed_in_another_unicode_form_verifies() {
        let h = fast();
        let hash = h.hash("caf\u{e9} horse").await.unwrap();
        assert!(h.verify("cafe\u{301} horse", Some(&hash)).await.matched);
    }

    #[tokio::test]
    async fn changed_parameters_ask_for_a_rehash() {
        let old = fast();
        let hash = old.hash("correct horse").await.unwrap();
        let new = PasswordHasher::new(PasswordConfig {
            memory_kib: 128,
            iterations: 1,
            ..Default::default()
        })
        .unwrap();
        let v = new.verify("correct horse", Some(&hash)).await;
        assert!(v.matched && v.needs_rehash);
        assert!(!old.verify("correct horse", Some(&hash)).await.needs_rehash);
    }

    #[tokio::test]
    async fn unusable_malformed_and_oversized_never_match() {
        let h = fast();
        assert!(!h.verify("x", Some(&make_unusable_password())).await.matched);
        assert!(!h.verify("x", Some("not a hash")).await.matched);
        assert!(!h.verify("x", Some("")).await.matched);
        let huge = "a".repeat(1_000_000);
        assert_eq!(
            h.hash(&huge).await,
            Err(PasswordError::TooLong { max: 1024 })
        );
        let hash = h.hash("short").await.unwrap();
        assert!(!h.verify(&huge, Some(&hash)).await.matched);
    }
}

mod queue_tests {
    use super::super::*;

    #[tokio::test]
    async fn a_full_hash_queue_refuses_at_once_instead_of_queueing() {
        // Slow enough (tens of milliseconds) that the first is still running.
        let h = PasswordHasher::new(PasswordConfig {
            memory_kib: 4 * 1024,
            iterations: 1,
            concurrency: 1,
            max_waiting: 0,
            ..Default::default()
        })
        .unwrap();
        let first = {
            let h = h.clone();
            tokio::spawn(async move { h.try_verify("a", None).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        // The first holds the only slot; the second finds the line full.
        assert_eq!(h.try_verify("b", None).await, Err(PasswordError::Busy));
        assert!(first.await.unwrap().is_ok());
        assert_eq!(
            h.hash("c").await.map(|_| ()),
            Ok(()),
            "the slot is free again"
        );
        // With room to wait, both run.
        let h = PasswordHasher::new(PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            concurrency: 1,
            max_waiting: 1,
            ..Default::default()
        })
        .unwrap();
        let (first, second) = tokio::join!(h.try_verify("a", None), h.try_verify("b", None));
        assert!(first.is_ok() && second.is_ok());
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_mid_hash_keeps_its_slot_until_the_hash_ends() {
        let h = PasswordHasher::new(PasswordConfig {
            memory_kib: 4 * 1024,
            iterations: 1,
            concurrency: 1,
            max_waiting: 0,
            ..Default::default()
        })
        .unwrap();
        // Started, then dropped (the client went away) while argon2 runs.
        let cancelled =
            tokio::time::timeout(std::time::Duration::from_millis(2), h.try_verify("a", None))
                .await;
        assert!(cancelled.is_err(), "the hash was still running");
        // The abandoned hash still holds the only slot.
        assert_eq!(h.try_verify("b", None).await, Err(PasswordError::Busy));
        // Once it has finished, the slot is free.
        for _ in 0..200 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            if h.try_verify("c", None).await.is_ok() {
                return;
            }
        }
        panic!("the slot was never given back");
    }

    #[test]
    fn a_busy_hasher_answers_503() {
        assert_eq!(
            busy(PasswordError::Busy).status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
