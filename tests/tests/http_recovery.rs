//! The email flows end to end through the router with the outbox sender, and their attacks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crudauth::UserRecord;
use crudauth::delivery::{Delivery, DeliveryChannel, DeliveryError, EmailMessage, EmailSender};
use crudauth_tests::http::{
    FRONTEND, Req, TestApp, User, app_with, mails, outbox_path, token_of, with_outbox,
};
use serde_json::json;

const PW: &str = "correct horse 1";

async fn email_app(test: &str) -> (TestApp, std::path::PathBuf) {
    let path = outbox_path(test);
    let t = app_with(test, |b| with_outbox(b, &path)).await;
    (t, path)
}

async fn user(t: &TestApp, email: &str) -> User {
    t.auth
        .repo()
        .find_by_recovery(email)
        .await
        .expect("repo")
        .expect("user exists")
}

#[tokio::test]
async fn verify_flow_end_to_end_and_single_use() {
    let path = outbox_path("verify_flow");
    let verified = Arc::new(AtomicUsize::new(0));
    let hook = verified.clone();
    let t = app_with("verify_flow", |b| {
        with_outbox(b, &path).on_after_recovery_verified(move |_, _| {
            let hook = hook.clone();
            async move {
                hook.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
    })
    .await;
    t.register("ann@example.com", "ann", PW).await;
    let sent = mails(&t.auth, &path).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], "ann@example.com");
    assert_eq!(sent[0]["kind"], "verify_email");
    assert_eq!(sent[0]["subject"], "Verify your email");
    let link = sent[0]["link"].as_str().unwrap();
    assert!(link.starts_with(&format!("{FRONTEND}/verify-email?token=")));
    assert!(!user(&t, "ann@example.com").await.email_verified);

    // A second request retires the first link.
    let r = t
        .send(Req::post("/email/verify-request").json(json!({"email": "ANN@example.com"})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.detail(),
        "If an account exists, a verification email has been sent."
    );
    let sent = mails(&t.auth, &path).await;
    assert_eq!(sent.len(), 2);
    let (old, new) = (token_of(&sent[0]), token_of(&sent[1]));
    let r = t
        .send(Req::post("/email/verify-confirm").json(json!({"token": old})))
        .await;
    assert_eq!(r.status, 400, "a superseded link is dead");
    assert_eq!(r.detail(), "Invalid or expired token");

    let r = t
        .send(Req::post("/email/verify-confirm").json(json!({"token": new})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.detail(), "Verified successfully.");
    assert!(user(&t, "ann@example.com").await.email_verified);
    assert_eq!(verified.load(Ordering::SeqCst), 1);

    let replay = t
        .send(Req::post("/email/verify-confirm").json(json!({"token": new})))
        .await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.detail(), "Invalid or expired token");

    // Already verified: the same answer, and nothing is sent.
    let r = t
        .send(Req::post("/email/verify-request").json(json!({"email": "ann@example.com"})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(mails(&t.auth, &path).await.len(), 2);
    assert_eq!(verified.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn reset_flow_ends_every_session_and_token_and_is_single_use() {
    let path = outbox_path("reset_flow");
    let resets = Arc::new(AtomicUsize::new(0));
    let hook = resets.clone();
    let t = app_with("reset_flow", |b| {
        with_outbox(b, &path).on_after_password_reset(move |_, _| {
            let hook = hook.clone();
            async move {
                hook.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
    })
    .await;
    t.register("ann@example.com", "ann", PW).await;
    let browser = t.login("ann", PW).await;
    let (access, refresh) = t.token("ann", PW, "").await;

    let r = t
        .send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.detail(),
        "If an account exists, a password reset email has been sent."
    );
    let sent = mails(&t.auth, &path).await;
    let mail = sent.last().unwrap();
    assert_eq!(mail["kind"], "reset_password");
    assert_eq!(mail["subject"], "Reset your password");
    assert_eq!(mail["to"], "ann@example.com");
    let token = token_of(mail);

    // A policy failure is a 422 and leaves the link usable.
    let weak = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": token, "new_password": "password1"})),
        )
        .await;
    assert_eq!(weak.status, 422, "{:?}", weak.json);
    assert_eq!(weak.json["detail"][0]["type"], "password_policy");
    assert_eq!(weak.json["detail"][0]["loc"][1], "new_password");

    let r = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": token, "new_password": "correct horse 3"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.detail(), "Password reset successfully.");
    assert_eq!(resets.load(Ordering::SeqCst), 1);

    let replay = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": token, "new_password": "correct horse 4"})),
        )
        .await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.detail(), "Invalid or expired token");

    assert_eq!(
        t.send(Req::get("/me").session(&browser)).await.status,
        401,
        "the old session ended"
    );
    assert_eq!(
        t.send(Req::get("/me").bearer(&access)).await.status,
        401,
        "the old access token ended"
    );
    let r = t
        .send(Req::post("/refresh").json(json!({"refresh_token": refresh})))
        .await;
    assert_eq!(r.status, 401, "the old refresh token ended");
    let r = t
        .send(Req::post("/login").form(&[("username", "ann"), ("password", PW)]))
        .await;
    assert_eq!(r.status, 401, "the old password is gone");
    t.login("ann", "correct horse 3").await;
}

#[tokio::test]
async fn two_concurrent_redemptions_of_one_token_exactly_one_wins() {
    let (t, path) = email_app("reset_race").await;
    t.register("ann@example.com", "ann", PW).await;
    for round in 0..3 {
        t.send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
            .await;
        let token = token_of(mails(&t.auth, &path).await.last().unwrap());
        let confirm = |pw: &str| {
            Req::post("/password/reset-confirm").json(json!({"token": token, "new_password": pw}))
        };
        let (a, b) = tokio::join!(
            t.send(confirm(&format!("first racer wins {round}"))),
            t.send(confirm(&format!("second racer wins {round}")))
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 400],
            "round {round}: {:?} {:?}",
            a.json,
            b.json
        );
    }
}

#[tokio::test]
async fn a_token_for_one_purpose_is_unknown_to_every_other() {
    let (t, path) = email_app("cross_purpose").await;
    t.register("ann@example.com", "ann", PW).await;
    let verify = token_of(&mails(&t.auth, &path).await[0]);
    let r = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": verify, "new_password": "correct horse 9"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = t
        .send(Req::post("/email/change-confirm").json(json!({"token": verify})))
        .await;
    assert_eq!(r.status, 400);
    // Unharmed for its own purpose.
    let r = t
        .send(Req::post("/email/verify-confirm").json(json!({"token": verify})))
        .await;
    assert_eq!(r.status, 200);

    t.send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    let reset = token_of(mails(&t.auth, &path).await.last().unwrap());
    let r = t
        .send(Req::post("/email/verify-confirm").json(json!({"token": reset})))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_token_issued_before_a_password_change_is_dead() {
    let (t, path) = email_app("stale_token").await;
    t.register("ann@example.com", "ann", PW).await;
    t.send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    let token = token_of(mails(&t.auth, &path).await.last().unwrap());
    let s = t.login("ann", PW).await;
    let r = t
        .send(
            Req::post("/change-password")
                .session(&s)
                .json(json!({"current_password": PW, "new_password": "correct horse 2"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": token, "new_password": "correct horse 5"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.detail(), "Invalid or expired token");
    t.login("ann", "correct horse 2").await;
}

#[tokio::test]
async fn links_come_from_the_configured_frontend_never_the_host_header() {
    let (t, path) = email_app("host_poison").await;
    t.register("ann@example.com", "ann", PW).await;
    let r = t
        .send(
            Req::post("/password/reset-request")
                .header("host", "evil.example")
                .header("x-forwarded-host", "evil.example")
                .header("forwarded", "host=evil.example;proto=https")
                .json(json!({"email": "ann@example.com"})),
        )
        .await;
    assert_eq!(r.status, 200);
    for mail in mails(&t.auth, &path).await {
        let link = mail["link"].as_str().unwrap();
        assert!(link.starts_with(&format!("{FRONTEND}/")), "{link}");
        assert!(!link.contains("evil"));
    }
}

/// A sender that holds every message until the test releases it.
struct GatedSender {
    gate: tokio::sync::Semaphore,
    sent: Mutex<Vec<(String, &'static str)>>,
}

#[async_trait::async_trait]
impl EmailSender for GatedSender {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| DeliveryError::new(e.to_string()))?;
        self.sent
            .lock()
            .unwrap()
            .push((message.to.clone(), message.kind().as_str()));
        Ok(())
    }
}

#[tokio::test]
async fn request_routes_answer_alike_for_known_and_unknown_accounts() {
    let sender = Arc::new(GatedSender {
        gate: tokio::sync::Semaphore::new(0),
        sent: Mutex::new(Vec::new()),
    });
    let dyn_sender: Arc<dyn EmailSender> = sender.clone();
    let t = app_with("enumeration", |b| {
        b.recovery(crudauth::RecoveryConfig::new(FRONTEND))
            .email_sender(dyn_sender)
    })
    .await;
    t.register("ann@example.com", "ann", PW).await;
    t.register("bob@example.com", "bob", PW).await;
    let s = t.login("ann", PW).await;
    let hashes_before = t.auth.passwords().verifications();

    // Each request from its own address, so the per-IP counters read the same.
    let mut peer = 10u8;
    let mut next_peer = || {
        peer += 1;
        [10, 0, 0, peer]
    };
    for (path, known, unknown) in [
        (
            "/email/verify-request",
            "ann@example.com",
            "ghost@example.com",
        ),
        (
            "/password/reset-request",
            "ann@example.com",
            "ghost@example.com",
        ),
    ] {
        let a = t
            .send(
                Req::post(path)
                    .peer(next_peer())
                    .json(json!({"email": known})),
            )
            .await;
        let b = t
            .send(
                Req::post(path)
                    .peer(next_peer())
                    .json(json!({"email": unknown})),
            )
            .await;
        assert_eq!((a.status, &a.body), (b.status, &b.body), "{path}");
        let limit = |r: &crudauth_tests::http::Resp| {
            (
                r.headers.get("x-ratelimit-limit").cloned(),
                r.headers.get("x-ratelimit-remaining").cloned(),
            )
        };
        assert_eq!(limit(&a), limit(&b), "{path}: the same headers");
    }
    // Registration of a taken address answers like a new one.
    let a = t
        .send(
            Req::post("/register")
                .peer(next_peer())
                .json(json!({"email": "ann@example.com", "username": "ann2", "password": PW})),
        )
        .await;
    let b = t
        .send(
            Req::post("/register")
                .peer(next_peer())
                .json(json!({"email": "new@example.com", "username": "new1", "password": PW})),
        )
        .await;
    assert_eq!((a.status, &a.body), (b.status, &b.body));
    // An email change to a taken address answers like one to a free address.
    let a = t
        .send(
            Req::post("/email/change-request")
                .session(&s)
                .json(json!({"new_email": "bob@example.com", "password": PW})),
        )
        .await;
    let b = t
        .send(
            Req::post("/email/change-request")
                .session(&s)
                .json(json!({"new_email": "free@example.com", "password": PW})),
        )
        .await;
    assert_eq!((a.status, &a.body), (b.status, &b.body));
    assert_eq!(a.status, 200, "{:?}", a.json);

    // Timing: every answer above came back while the sender was still blocked, so no
    // answer waited on the lookup, the token or the mail; and no route verified a
    // password but the two change requests, which check the caller's own (registration
    // hashes for new and taken addresses alike).
    assert!(sender.sent.lock().unwrap().is_empty());
    assert_eq!(t.auth.passwords().verifications() - hashes_before, 2);
    sender.gate.add_permits(100);
    t.auth.background().flush().await;
    let sent = sender.sent.lock().unwrap().clone();
    for expected in [
        ("ann@example.com", "verify_email"),
        ("ann@example.com", "reset_password"),
        ("ann@example.com", "existing_account"),
        ("free@example.com", "change_email"),
        ("ann@example.com", "email_change_requested"),
    ] {
        assert!(
            sent.iter()
                .any(|(to, kind)| (to.as_str(), *kind) == expected),
            "{expected:?} in {sent:?}"
        );
    }
    assert!(!sent.iter().any(|(to, _)| to.contains("ghost")), "{sent:?}");
    assert!(
        !sent
            .iter()
            .any(|(to, kind)| to == "bob@example.com" && *kind == "change_email"),
        "{sent:?}"
    );
}

struct FailingSender;

#[async_trait::async_trait]
impl EmailSender for FailingSender {
    async fn send(&self, _: &EmailMessage) -> Result<(), DeliveryError> {
        Err(DeliveryError::new("connection refused"))
    }
}

#[derive(Default)]
struct RecordingChannel(Mutex<Vec<(String, Option<String>, bool)>>);

#[async_trait::async_trait]
impl DeliveryChannel for RecordingChannel {
    async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
        let has_db = d.database::<sea_orm::DatabaseConnection>().is_some();
        self.0
            .lock()
            .unwrap()
            .push((d.kind.as_str().to_owned(), d.token.clone(), has_db));
        assert!(d.user.as_ref().is_some_and(|u| u.email.is_some()));
        Ok(())
    }
}

#[tokio::test]
async fn a_failing_sender_is_invisible_to_the_caller_and_never_stops_the_next_channel() {
    let channel = Arc::new(RecordingChannel::default());
    let dyn_channel: Arc<dyn DeliveryChannel> = channel.clone();
    let t = app_with("failing_sender", |b| {
        b.recovery(crudauth::RecoveryConfig::new(FRONTEND))
            .email_sender(Arc::new(FailingSender))
            .delivery_channel(dyn_channel)
    })
    .await;
    t.register("ann@example.com", "ann", PW).await;
    let r = t
        .send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.detail(),
        "If an account exists, a password reset email has been sent."
    );
    t.auth.background().flush().await;
    let got = channel.0.lock().unwrap().clone();
    let kinds: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds, ["verify_email", "reset_password"]);
    // The channel got the bare token and the database handle; the token works.
    let (_, token, has_db) = &got[1];
    assert!(has_db);
    let r = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": token.clone().unwrap(), "new_password": "correct horse 7"})),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn email_change_end_to_end() {
    let path = outbox_path("email_change");
    let changed = Arc::new(AtomicUsize::new(0));
    let hook = changed.clone();
    let t = app_with("email_change", |b| {
        with_outbox(b, &path).on_after_email_changed(move |user, _| {
            let hook = hook.clone();
            async move {
                assert_eq!(user.contract().email.as_deref(), Some("ann@new.example"));
                hook.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
    })
    .await;
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    let other = t.login("ann@example.com", PW).await;

    let r = t
        .send(
            Req::post("/email/change-request")
                .session_cookie_only(&s)
                .json(json!({"new_email": "ann@new.example", "password": PW})),
        )
        .await;
    assert_eq!(r.status, 403, "CSRF applies");
    let r = t
        .send(
            Req::post("/email/change-request")
                .session(&s)
                .json(json!({"new_email": "ann@new.example", "password": "wrong one"})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (400, "Incorrect password"));
    let r = t
        .send(
            Req::post("/email/change-request")
                .session(&s)
                .json(json!({"new_email": "ANN@example.com", "password": PW})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "New email matches current email")
    );
    let r = t
        .send(
            Req::post("/email/change-request")
                .session(&s)
                .json(json!({"new_email": "Ann@New.example", "password": PW})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        r.detail(),
        "If the address is available, a confirmation email has been sent."
    );
    let sent = mails(&t.auth, &path).await;
    let confirm = sent.iter().find(|m| m["kind"] == "change_email").unwrap();
    assert_eq!(confirm["to"], "ann@new.example");
    assert!(
        confirm["link"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{FRONTEND}/confirm-email-change?token="))
    );
    let notice = sent
        .iter()
        .find(|m| m["kind"] == "email_change_requested")
        .unwrap();
    assert_eq!(notice["to"], "ann@example.com");
    assert!(notice["link"].is_null());

    let token = token_of(confirm);
    let r = t
        .send(Req::post("/email/change-confirm").json(json!({"token": token})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.detail(), "Email changed successfully.");
    assert_eq!(changed.load(Ordering::SeqCst), 1);
    let moved = user(&t, "ann@new.example").await;
    assert!(moved.email_verified, "the link reached the new address");
    for old in [&s, &other] {
        assert_eq!(t.send(Req::get("/me").session(old)).await.status, 401);
    }
    t.login("ann@new.example", PW).await;
    let sent = mails(&t.auth, &path).await;
    let done = sent.last().unwrap();
    assert_eq!(
        (done["kind"].as_str(), done["to"].as_str()),
        (Some("email_changed"), Some("ann@example.com"))
    );
    let replay = t
        .send(Req::post("/email/change-confirm").json(json!({"token": token})))
        .await;
    assert_eq!(replay.status, 400);
}

#[tokio::test]
async fn an_email_change_to_a_taken_address_leaks_nothing_and_changes_nothing() {
    let (t, path) = email_app("change_taken").await;
    t.register("ann@example.com", "ann", PW).await;
    t.register("bob@example.com", "bob", PW).await;
    let s = t.login("ann", PW).await;
    let before = mails(&t.auth, &path).await.len();
    let r = t
        .send(
            Req::post("/email/change-request")
                .session(&s)
                .json(json!({"new_email": "bob@example.com", "password": PW})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.detail(),
        "If the address is available, a confirmation email has been sent."
    );
    // The requester's own inbox gets the notice it gets for a free address, and nothing
    // goes to the taken address.
    let after = mails(&t.auth, &path).await;
    let new: Vec<_> = after[before..]
        .iter()
        .map(|m| (m["to"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(new, [("ann@example.com", "email_change_requested")]);

    // The address is taken after the link went out: the confirmation refuses and keeps
    // the link for later.
    let r = t
        .send(
            Req::post("/email/change-request")
                .session(&s)
                .json(json!({"new_email": "carol@example.com", "password": PW})),
        )
        .await;
    assert_eq!(r.status, 200);
    let token = token_of(
        mails(&t.auth, &path)
            .await
            .iter()
            .find(|m| m["kind"] == "change_email")
            .unwrap(),
    );
    t.register("carol@example.com", "carol", PW).await;
    let r = t
        .send(Req::post("/email/change-confirm").json(json!({"token": token})))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (422, "Email already in use")
    );
    assert_eq!(
        user(&t, "ann@example.com").await.username,
        "ann",
        "ann keeps her address"
    );
    assert_eq!(t.send(Req::get("/me").session(&s)).await.status, 200);
}

#[tokio::test]
async fn a_completed_reset_lifts_the_account_lock() {
    let path = outbox_path("reset_unlocks");
    let t = app_with("reset_unlocks", |b| {
        with_outbox(b, &path).lockout(crudauth::LockoutConfig {
            max_attempts: 3,
            account_max_attempts: 3,
            ..Default::default()
        })
    })
    .await;
    t.register("ann@example.com", "ann", PW).await;
    for i in 0..4u8 {
        t.send(
            Req::post("/login")
                .peer([10, 1, 0, i])
                .form(&[("username", "ann"), ("password", "wrong")]),
        )
        .await;
    }
    let locked = t
        .send(
            Req::post("/login")
                .peer([10, 1, 1, 1])
                .form(&[("username", "ann"), ("password", PW)]),
        )
        .await;
    assert_eq!(locked.status, 429);
    t.send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    let token = token_of(mails(&t.auth, &path).await.last().unwrap());
    let r = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": token, "new_password": "correct horse 8"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .send(
            Req::post("/login")
                .peer([10, 1, 1, 2])
                .form(&[("username", "ann"), ("password", "correct horse 8")]),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
}

#[tokio::test]
async fn the_password_policy_applies_on_every_path() {
    let (t, path) = email_app("policy_paths").await;
    let r = t
        .send(
            Req::post("/register").json(
                json!({"email": "ann@example.com", "username": "ann", "password": "iloveyou"}),
            ),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["detail"][0]["type"], "password_policy");
    assert_eq!(r.json["detail"][0]["ctx"]["requirement"], "not_common");
    assert!(!String::from_utf8_lossy(&r.body).contains("iloveyou"));

    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    let r = t
        .send(
            Req::post("/change-password")
                .session(&s)
                .json(json!({"current_password": PW, "new_password": "password123"})),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["detail"][0]["loc"][1], "new_password");

    t.send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    let token = token_of(mails(&t.auth, &path).await.last().unwrap());
    let r = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": token, "new_password": "short"})),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["detail"][0]["type"], "string_too_short");
}

#[tokio::test]
async fn user_validators_and_character_classes_each_give_their_own_entry() {
    let t = app_with("policy_custom", |b| {
        b.password_policy(
            crudauth::policy::PasswordPolicy {
                require_digit: true,
                require_uppercase: true,
                ..Default::default()
            }
            .validator(|pw, ctx| async move {
                match ctx.username {
                    Some(u) if pw.contains(&u) => {
                        Err("Password must not contain the username".into())
                    }
                    _ => Ok(()),
                }
            }),
        )
    })
    .await;
    let r = t
        .send(Req::post("/register").json(
            json!({"email": "ann@example.com", "username": "annie", "password": "annie-long-words"}),
        ))
        .await;
    assert_eq!(r.status, 422);
    let requirements: Vec<&str> = r.json["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ctx"]["requirement"].as_str().unwrap())
        .collect();
    assert_eq!(requirements, ["uppercase", "digit", "custom"]);
}

#[tokio::test]
async fn set_password_needs_a_fresh_session_and_an_account_without_one() {
    let (t, _path) = email_app("set_password").await;
    let repo = t.auth.repo();
    let mut new = crudauth::NewUser::new(crudauth::password::make_unusable_password())
        .email("oauth@example.com")
        .username("oauthy");
    new.email_verified = true;
    let created = repo.create(new).await.unwrap();
    let uid = created.user_id().to_string();
    let epoch = t.auth.revocation().epoch(&created).await.unwrap();
    let sessions = t.auth.sessions().unwrap();
    let fresh = sessions
        .create(&uid, epoch, "127.0.0.1", "test")
        .await
        .unwrap();
    let browser = crudauth_tests::http::Session {
        id: fresh.id.clone(),
        csrf: fresh.csrf_token.clone(),
    };
    let r = t
        .send(
            Req::post("/set-password")
                .session(&browser)
                .json(json!({"new_password": "qwerty123"})),
        )
        .await;
    assert_eq!(r.status, 422, "policy first: {:?}", r.json);
    let r = t
        .send(
            Req::post("/set-password")
                .session(&browser)
                .json(json!({"new_password": "a first passphrase"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.detail(), "Password set.");
    assert_eq!(t.send(Req::get("/me").session(&browser)).await.status, 200);
    t.login("oauthy", "a first passphrase").await;

    let again = t
        .send(
            Req::post("/set-password")
                .session(&browser)
                .json(json!({"new_password": "another passphrase"})),
        )
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.detail(),
        "Account already has a password; use the password reset flow to change it."
    );
    let (access, _) = t.token("oauthy", "a first passphrase", "").await;
    let r = t
        .send(
            Req::post("/set-password")
                .bearer(&access)
                .json(json!({"new_password": "another passphrase"})),
        )
        .await;
    assert_eq!(r.status, 403, "bearer is never a fresh sign-in");
}

#[tokio::test]
async fn hostile_bodies_get_clear_4xx() {
    let (t, _path) = email_app("recovery_hostile").await;
    // Long, but inside the 64 KiB body limit (a larger body is a 413 before it is read).
    let huge = "A".repeat(60_000);
    for (path, body) in [
        (
            "/password/reset-confirm",
            json!({"token": huge, "new_password": "correct horse 1"}),
        ),
        (
            "/password/reset-confirm",
            json!({"token": "../../etc", "new_password": "correct horse 1"}),
        ),
        ("/email/verify-confirm", json!({"token": "x\u{0}y"})),
        ("/email/change-confirm", json!({"token": ""})),
    ] {
        let r = t.send(Req::post(path).json(body)).await;
        assert_eq!(r.status, 400, "{path}: {:?}", r.json);
    }
    for (path, body) in [
        (
            "/password/reset-request",
            json!({"email": format!("{huge}@example.com")}),
        ),
        ("/password/reset-request", json!({"email": "not an email"})),
        (
            "/password/reset-request",
            json!({"email": "x<attacker@evil.example>"}),
        ),
        (
            "/password/reset-request",
            json!({"email": "\"a,b\"@example.com"}),
        ),
        ("/email/verify-request", json!({"email": 42})),
        ("/email/verify-confirm", json!({"token": ["list"]})),
        ("/password/reset-confirm", json!({"token": "abc"})),
    ] {
        let r = t.send(Req::post(path).json(body)).await;
        assert_eq!(r.status, 422, "{path}: {:?}", r.json);
    }
    let r = t
        .send(Req::post("/register").json(json!({
            "email": "x<attacker@evil.example>", "username": "x", "password": PW
        })))
        .await;
    assert_eq!(
        r.status, 422,
        "a mailbox form is not an address: {:?}",
        r.json
    );
    let r = t
        .send(Req::post("/password/reset-request").raw("application/json", "{not json"))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["detail"][0]["type"], "json_invalid");
}

#[tokio::test]
async fn request_routes_are_limited_per_ip_and_silently_per_address() {
    let (t, path) = email_app("recovery_limits").await;
    t.register("ann@example.com", "ann", PW).await;
    let resets = || async {
        mails(&t.auth, &path)
            .await
            .iter()
            .filter(|m| m["kind"] == "reset_password")
            .count()
    };
    let ask = |peer: [u8; 4]| {
        t.send(
            Req::post("/password/reset-request")
                .peer(peer)
                .json(json!({"email": "ann@example.com"})),
        )
    };
    // One stranger asks five times (all a client may per hour: the sixth is the visible
    // per-IP 429, which says nothing about ann): five mails.
    for _ in 0..5 {
        assert_eq!(ask([10, 2, 0, 1]).await.status, 200);
    }
    assert_eq!(ask([10, 2, 0, 1]).await.status, 429);
    assert_eq!(resets().await, 5);
    // That did not silence the owner, asking from elsewhere.
    assert_eq!(ask([10, 2, 0, 2]).await.status, 200);
    assert_eq!(resets().await, 6);
    // The address as a whole gets at most four times the limit (20/h) from strangers,
    // however many ask...
    for i in 0..20u8 {
        assert_eq!(ask([10, 2, 1, i]).await.status, 200);
    }
    assert_eq!(resets().await, 20);
    // ...but a network the owner has signed in from is not held to that cap.
    let r = t
        .send(
            Req::post("/login")
                .peer([10, 2, 9, 9])
                .form(&[("username", "ann"), ("password", PW)]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(ask([10, 2, 9, 9]).await.status, 200);
    assert_eq!(resets().await, 21);
    assert_eq!(ask([10, 2, 2, 1]).await.status, 200);
    assert_eq!(resets().await, 21, "a stranger still is");
    // One address, many targets: the visible per-IP limit (5/h).
    let mut last = None;
    for i in 0..6 {
        last = Some(
            t.send(
                Req::post("/password/reset-request")
                    .peer([10, 3, 0, 1])
                    .json(json!({"email": format!("u{i}@example.com")})),
            )
            .await,
        );
    }
    let last = last.unwrap();
    assert_eq!(last.status, 429);
    assert!(last.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn set_password_refuses_a_session_older_than_the_freshness_window() {
    let path = outbox_path("set_password_stale");
    let t = app_with("set_password_stale", |b| {
        let mut config = crudauth::RecoveryConfig::new(FRONTEND);
        config.fresh_sign_in = std::time::Duration::from_secs(1);
        b.recovery(config)
            .email_sender(Arc::new(crudauth::delivery::OutboxSender::new(&path)))
    })
    .await;
    let created = t
        .auth
        .repo()
        .create(
            crudauth::NewUser::new(crudauth::password::make_unusable_password())
                .email("stale@example.com")
                .username("stale"),
        )
        .await
        .unwrap();
    let epoch = t.auth.revocation().epoch(&created).await.unwrap();
    let new = t
        .auth
        .sessions()
        .unwrap()
        .create(&created.user_id().to_string(), epoch, "127.0.0.1", "test")
        .await
        .unwrap();
    let browser = crudauth_tests::http::Session {
        id: new.id,
        csrf: new.csrf_token,
    };
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = t
        .send(
            Req::post("/set-password")
                .session(&browser)
                .json(json!({"new_password": "a first passphrase"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.detail(),
        "Sign in again to continue: this needs a recent sign-in."
    );
}

#[tokio::test]
async fn verify_and_change_tokens_are_single_use_under_concurrency_too() {
    let (t, path) = email_app("race_verify_change").await;
    t.register("ann@example.com", "ann", PW).await;
    let verify = token_of(&mails(&t.auth, &path).await[0]);
    let body = json!({"token": verify});
    let (a, b) = tokio::join!(
        t.send(Req::post("/email/verify-confirm").json(body.clone())),
        t.send(Req::post("/email/verify-confirm").json(body))
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);

    let s = t.login("ann", PW).await;
    t.send(
        Req::post("/email/change-request")
            .session(&s)
            .json(json!({"new_email": "ann@new.example", "password": PW})),
    )
    .await;
    let sent = mails(&t.auth, &path).await;
    let change = token_of(sent.iter().find(|m| m["kind"] == "change_email").unwrap());
    let body = json!({"token": change});
    let (a, b) = tokio::join!(
        t.send(Req::post("/email/change-confirm").json(body.clone())),
        t.send(Req::post("/email/change-confirm").json(body))
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{:?} {:?}", a.json, b.json);
}

#[tokio::test]
async fn reset_and_verify_links_die_with_an_email_change() {
    let (t, path) = email_app("links_die_on_change").await;
    t.register("ann@example.com", "ann", PW).await;
    let verify = token_of(&mails(&t.auth, &path).await[0]);
    t.send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    let reset = token_of(
        mails(&t.auth, &path)
            .await
            .iter()
            .find(|m| m["kind"] == "reset_password")
            .unwrap(),
    );
    let s = t.login("ann", PW).await;
    t.send(
        Req::post("/email/change-request")
            .session(&s)
            .json(json!({"new_email": "ann@new.example", "password": PW})),
    )
    .await;
    let change = token_of(
        mails(&t.auth, &path)
            .await
            .iter()
            .find(|m| m["kind"] == "change_email")
            .unwrap(),
    );
    let r = t
        .send(Req::post("/email/change-confirm").json(json!({"token": change})))
        .await;
    assert_eq!(r.status, 200);
    // Both links were for the old address and the old epoch.
    let r = t
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({"token": reset, "new_password": "correct horse 6"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = t
        .send(Req::post("/email/verify-confirm").json(json!({"token": verify})))
        .await;
    assert_eq!(r.status, 400);
    t.login("ann@new.example", PW).await;
}

#[tokio::test]
async fn a_pending_change_link_dies_with_the_next_request_whatever_its_address() {
    // Otherwise: get a link for a free address of one's own, ask for a change to X, and see
    // whether the first link still works (X taken) or not (X free).
    let (t, path) = email_app("change_link_oracle").await;
    t.register("ann@example.com", "ann", PW).await;
    t.register("bob@example.com", "bob", PW).await;
    let s = t.login("ann", PW).await;
    let change = |to: &str| {
        Req::post("/email/change-request")
            .session(&s)
            .json(json!({"new_email": to, "password": PW}))
    };
    assert_eq!(t.send(change("ann@own.example")).await.status, 200);
    let first = token_of(
        mails(&t.auth, &path)
            .await
            .iter()
            .find(|m| m["kind"] == "change_email")
            .unwrap(),
    );
    assert_eq!(t.send(change("bob@example.com")).await.status, 200);
    t.auth.background().flush().await;
    let r = t
        .send(Req::post("/email/change-confirm").json(json!({"token": first})))
        .await;
    assert_eq!(r.status, 400, "the earlier link ended with the new request");
}

#[tokio::test]
async fn the_register_hook_runs_after_the_answer() {
    let t = app_with("register_hook_after", |b| {
        b.on_after_register(|_, _| async {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            Ok(())
        })
    })
    .await;
    let started = std::time::Instant::now();
    t.register("ann@example.com", "ann", PW).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "a slow hook must not delay (and so tell apart) a new registration"
    );
    t.auth.background().flush().await;
}
