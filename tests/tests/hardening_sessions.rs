//! Session hardening, each test named after its attack: a session id is rotated at every
//! privilege change (password change or set, sudo, email change) so a copy of the cookie
//! taken before it dies; idle and absolute timeouts hold (tested with a movable clock, no
//! sleeping); the `__Host-` cookie prefix; `/me` is never cached.
//!
//! Every test that involves server-side state runs on every store: memory, the database
//! store of crudauth-sea on SQLite (always), PostgreSQL and MariaDB (when
//! `CRUDAUTH_TEST_POSTGRES_URL` / `CRUDAUTH_TEST_MYSQL_URL` are set), and Redis (when
//! `CRUDAUTH_TEST_REDIS_URL` is set). A backend that is not configured is reported as
//! SKIPPED on stderr; one that is configured but unreachable fails the test.

use std::sync::Arc;
use std::time::Duration;

use crudauth::clock::Clock;
use crudauth::store::Store;
use crudauth::{SessionConfig, UserRecord};
use crudauth_tests::http::{
    Req, Session, app_with, current_id, mails, outbox_path, token_of, with_outbox,
};
use crudauth_tests::stores::all_stores;
use crudauth_tests::{Backend, open};
use serde_json::json;

const PW: &str = "correct horse 1";

/// A request carrying a copy of a session cookie taken earlier (an attacker's copy: it does
/// not follow the cookie the browser is given later), with the CSRF header for unsafe
/// methods.
fn with_copy(req: Req, id: &str, csrf: &str) -> Req {
    req.header("cookie", format!("session_id={id}; csrf_token={csrf}"))
        .header("x-csrf-token", csrf)
}

/// The session cookie a response set: (value, full header).
fn new_session_cookie(r: &crudauth_tests::http::Resp) -> (String, String) {
    r.cookies()
        .get("session_id")
        .cloned()
        .expect("a new session cookie")
}

#[tokio::test]
async fn a_session_cookie_copied_before_a_password_change_dies_with_the_change() {
    for case in all_stores("rotate_on_change_pw").await {
        let store = case.store.clone();
        let t = app_with("rotate_on_change_pw", move |b| b.store(store)).await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let s = t.login("ann", PW).await;
        let copy = s.id.clone();
        let r = t
            .send(
                Req::post("/change-password")
                    .session(&s)
                    .json(json!({"current_password": PW, "new_password": "correct horse 2"})),
            )
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        assert_eq!(
            r.json,
            json!({"detail": "Password changed."}),
            "{who}: body as before"
        );
        let (moved, header) = new_session_cookie(&r);
        assert_ne!(moved, copy, "{who}: a new id");
        assert!(
            header.contains("HttpOnly") && header.contains("Path=/"),
            "{who}: {header}"
        );
        assert_eq!(r.headers["cache-control"], "no-store", "{who}");
        assert_eq!(current_id(&s), moved, "{who}: the browser took it");

        let stolen = t.send(with_copy(Req::get("/me"), &copy, &s.csrf)).await;
        assert_eq!(stolen.status, 401, "{who}: the copy died with the change");
        let r = t.send(Req::get("/me").session(&s)).await;
        assert_eq!(r.status, 200, "{who}: the browser lives on");
        // One session, the moved one: the old handle left the user's index.
        let r = t.send(Req::get("/sessions").session(&s)).await;
        let listed = r.json.as_array().expect("a list");
        assert_eq!(listed.len(), 1, "{who}: {listed:?}");
        assert_eq!(listed[0]["current"], true, "{who}");
        // The CSRF token carried over: a page's open forms keep working.
        let r = t
            .send(
                Req::post("/sudo")
                    .session(&s)
                    .json(json!({"password": "correct horse 2"})),
            )
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        case.cleanup().await;
    }
}

#[tokio::test]
async fn a_session_cookie_copied_before_sudo_never_opens_a_sudo_gated_route() {
    for case in all_stores("rotate_on_sudo").await {
        let store = case.store.clone();
        let t = app_with("rotate_on_sudo", move |b| b.store(store)).await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let s = t.login("ann", PW).await;
        let copy = s.id.clone();
        let r = t
            .send(with_copy(Req::post("/danger"), &copy, &s.csrf))
            .await;
        assert_eq!(r.status, 403, "{who}: not elevated yet");

        let r = t
            .send(Req::post("/sudo").session(&s).json(json!({"password": PW})))
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        assert_eq!(r.json, json!({"detail": "elevated"}), "{who}");
        let (moved, _) = new_session_cookie(&r);
        assert_ne!(moved, copy, "{who}");

        let r = t
            .send(with_copy(Req::post("/danger"), &copy, &s.csrf))
            .await;
        assert_eq!(
            r.status, 401,
            "{who}: the copy taken before sudo is dead, not elevated"
        );
        let r = t.send(Req::post("/danger").session(&s)).await;
        assert_eq!(r.status, 200, "{who}: the elevated browser is in");
        let r = t.send(Req::get("/sessions").session(&s)).await;
        assert_eq!(r.json.as_array().map(Vec::len), Some(1), "{who}");
        case.cleanup().await;
    }
}

#[tokio::test]
async fn a_session_cookie_copied_before_set_password_dies_with_it() {
    for case in all_stores("rotate_on_set_pw").await {
        let store = case.store.clone();
        let t = app_with("rotate_on_set_pw", move |b| b.store(store)).await;
        let who = &case.name;
        let mut new = crudauth::NewUser::new(crudauth::password::make_unusable_password())
            .email("oauth@example.com")
            .username("oauthy");
        new.email_verified = true;
        let created = t.auth.repo().create(new).await.unwrap();
        let epoch = t.auth.revocation().epoch(&created).await.unwrap();
        let fresh = t
            .auth
            .sessions()
            .unwrap()
            .create(&created.user_id().to_string(), epoch, "127.0.0.1", "test")
            .await
            .unwrap();
        let s = Session {
            id: fresh.id.clone(),
            csrf: fresh.csrf_token.clone(),
        };
        let r = t
            .send(
                Req::post("/set-password")
                    .session(&s)
                    .json(json!({"new_password": "a first passphrase"})),
            )
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        assert_eq!(r.json, json!({"detail": "Password set."}), "{who}");
        let (moved, _) = new_session_cookie(&r);
        assert_ne!(moved, fresh.id, "{who}");
        let r = t.send(with_copy(Req::get("/me"), &fresh.id, &s.csrf)).await;
        assert_eq!(r.status, 401, "{who}: the copy is dead");
        assert_eq!(
            t.send(Req::get("/me").session(&s)).await.status,
            200,
            "{who}"
        );
        case.cleanup().await;
    }
}

#[tokio::test]
async fn a_session_cookie_copied_before_an_email_change_dies_and_only_the_proven_confirmer_moves() {
    for case in all_stores("rotate_on_email_change").await {
        let path = outbox_path("rotate_on_email_change");
        let store = case.store.clone();
        let t = app_with("rotate_on_email_change", |b| {
            with_outbox(b.store(store), &path)
        })
        .await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let s = t.login("ann", PW).await;
        let other = t.login("ann", PW).await;
        let copy = s.id.clone();
        let r = t
            .send(
                Req::post("/email/change-request")
                    .session(&s)
                    .json(json!({"new_email": "ann@new.example", "password": PW})),
            )
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        let sent = mails(&t.auth, &path).await;
        let token = token_of(sent.iter().find(|m| m["kind"] == "change_email").unwrap());

        // Confirmed from the requester's own page: cookie and CSRF token.
        let r = t
            .send(
                Req::post("/email/change-confirm")
                    .session(&s)
                    .json(json!({"token": token})),
            )
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        assert_eq!(r.json, json!({"detail": "Email changed successfully."}));
        let (moved, _) = new_session_cookie(&r);
        assert_ne!(moved, copy, "{who}");
        let r = t.send(with_copy(Req::get("/me"), &copy, &s.csrf)).await;
        assert_eq!(r.status, 401, "{who}: the copy died with the change");
        let r = t.send(Req::get("/me").session(&s)).await;
        assert_eq!(r.status, 200, "{who}: the confirming browser moved on");
        assert_eq!(r.json["email"], "ann@new.example", "{who}");
        assert_eq!(
            t.send(Req::get("/me").session(&other)).await.status,
            401,
            "{who}: every other session ended"
        );

        // The cookie without its CSRF token proves nothing: the change happens, the
        // session ends with the others.
        let s2 = t.login("ann@new.example", PW).await;
        let r = t
            .send(
                Req::post("/email/change-request")
                    .session(&s2)
                    .json(json!({"new_email": "ann@third.example", "password": PW})),
            )
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        let sent = mails(&t.auth, &path).await;
        let token = token_of(
            sent.iter()
                .rev()
                .find(|m| m["kind"] == "change_email")
                .unwrap(),
        );
        let r = t
            .send(
                Req::post("/email/change-confirm")
                    .session_cookie_only(&s2)
                    .json(json!({"token": token})),
            )
            .await;
        assert_eq!(r.status, 200, "{who}: {:?}", r.json);
        assert!(!r.cookies().contains_key("session_id"), "{who}");
        assert_eq!(t.send(Req::get("/me").session(&s2)).await.status, 401);
        t.login("ann@third.example", PW).await;
        case.cleanup().await;
    }
}

#[tokio::test]
async fn a_rotation_is_atomic_one_winner_and_never_a_resurrected_session() {
    for case in all_stores("rotate_atomic").await {
        let store = case.store.clone();
        let t = app_with("rotate_atomic", move |b| b.store(store)).await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let user = t.auth.repo().find_by_login("ann").await.unwrap().unwrap();
        let uid = user.user_id().to_string();
        let epoch = t.auth.revocation().epoch(&user).await.unwrap();
        let sessions = t.auth.sessions().unwrap();
        let handles = |list: Vec<crudauth::session::LiveSession>| {
            list.into_iter().map(|s| s.handle).collect::<Vec<_>>()
        };
        for round in 0..3 {
            sessions.revoke_all(&uid, None).await.unwrap();
            // Two rotations of one session: exactly one wins.
            let s = sessions
                .create(&uid, epoch, "127.0.0.1", "ua")
                .await
                .unwrap();
            let (a, b) = tokio::join!(sessions.rotate(&s.handle), sessions.rotate(&s.handle));
            let winners: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
            assert_eq!(winners.len(), 1, "{who} round {round}");
            let winner = &winners[0];
            assert!(sessions.resolve(&s.id).await.unwrap().is_none(), "{who}");
            let live = sessions.resolve(&winner.id).await.unwrap().expect("moved");
            assert_eq!(
                handles(sessions.list(&uid).await.unwrap()),
                std::slice::from_ref(&winner.handle),
                "{who}"
            );
            let original = &winner.record;
            assert!(
                sessions.csrf_matches(&live, &s.csrf_token),
                "{who}: CSRF kept"
            );
            assert_eq!(
                live.record.created, original.created,
                "{who}: login time kept"
            );

            // A rotation racing a logout never brings the session back.
            sessions.revoke_all(&uid, None).await.unwrap();
            let s = sessions
                .create(&uid, epoch, "127.0.0.1", "ua")
                .await
                .unwrap();
            let (moved, _) =
                tokio::join!(sessions.rotate(&s.handle), sessions.delete(&s.handle, &uid));
            let left = handles(sessions.list(&uid).await.unwrap());
            match moved.unwrap() {
                Some(m) => assert_eq!(left, [m.handle], "{who} round {round}"),
                None => assert!(left.is_empty(), "{who} round {round}: {left:?}"),
            }

            // A change written while the session moves is carried over, never lost.
            sessions.revoke_all(&uid, None).await.unwrap();
            let s = sessions
                .create(&uid, epoch, "127.0.0.1", "ua")
                .await
                .unwrap();
            let (moved, stamped) = tokio::join!(
                sessions.rotate(&s.handle),
                sessions.modify(&s.handle, |r| r.sudo_until = Some(4_000_000_000))
            );
            if let (Some(m), Ok(true)) = (moved.unwrap(), stamped) {
                let live = sessions.load(&m.handle).await.unwrap().expect("moved");
                assert_eq!(live.record.sudo_until, Some(4_000_000_000), "{who}");
            }
        }
        case.cleanup().await;
    }
}

/// An app whose sessions read the adjustable `clock`.
async fn clocked(
    test: &str,
    store: Arc<dyn Store>,
    clock: &Clock,
) -> crudauth_tests::http::TestApp {
    let clock = clock.clone();
    app_with(test, move |b| {
        b.store(store).session(SessionConfig {
            host_prefix: false,
            clock,
            ..SessionConfig::default()
        })
    })
    .await
}

#[tokio::test]
async fn an_idle_session_times_out_without_anyone_sleeping() {
    const MINUTE: Duration = Duration::from_secs(60);
    for case in all_stores("idle_timeout").await {
        let clock = Clock::adjustable();
        let t = clocked("idle_timeout", case.store.clone(), &clock).await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let s = t.login("ann", PW).await;
        // Activity within the 30-minute idle window keeps it alive...
        for _ in 0..3 {
            clock.advance(29 * MINUTE);
            assert_eq!(
                t.send(Req::get("/me").session(&s)).await.status,
                200,
                "{who}"
            );
        }
        // ...31 quiet minutes end it, and it is gone from the user's list.
        clock.advance(31 * MINUTE);
        assert_eq!(
            t.send(Req::get("/me").session(&s)).await.status,
            401,
            "{who}: idle timeout"
        );
        let user = t.auth.repo().find_by_login("ann").await.unwrap().unwrap();
        let left = t
            .auth
            .sessions()
            .unwrap()
            .list(&user.user_id().to_string())
            .await
            .unwrap();
        assert!(left.is_empty(), "{who}");
        case.cleanup().await;
    }
}

#[tokio::test]
async fn a_session_in_constant_use_still_ends_at_its_absolute_timeout() {
    const MINUTE: Duration = Duration::from_secs(60);
    for case in all_stores("absolute_timeout").await {
        let clock = Clock::adjustable();
        let t = clocked("absolute_timeout", case.store.clone(), &clock).await;
        let who = &case.name;
        t.register("ann@example.com", "ann", PW).await;
        let s = t.login("ann", PW).await;
        // A request every 25 minutes (inside the idle window) for 12 hours; a sudo
        // elevation (a rotation) half-way must not restart the absolute clock.
        let mut elapsed = 0;
        loop {
            clock.advance(25 * MINUTE);
            elapsed += 25;
            if elapsed == 350 {
                let r = t
                    .send(Req::post("/sudo").session(&s).json(json!({"password": PW})))
                    .await;
                assert_eq!(r.status, 200, "{who}: {:?}", r.json);
            }
            let status = t.send(Req::get("/me").session(&s)).await.status;
            if elapsed < 12 * 60 {
                assert_eq!(status, 200, "{who}: alive at {elapsed} min");
            } else {
                assert_eq!(status, 401, "{who}: absolute timeout at {elapsed} min");
                break;
            }
        }
        case.cleanup().await;
    }
}

#[tokio::test]
async fn a_tossed_cookie_cannot_shadow_the_host_prefixed_session_cookie() {
    use crudauth_tests::http::{SECRET, demo_routes, fast_passwords, send};
    let build = |config: SessionConfig| {
        let tdb_name = format!("host_prefix_{}", uuid::Uuid::new_v4().simple());
        async move {
            let tdb = open(Backend::Sqlite, &tdb_name).await.unwrap();
            tdb.create_table(crudauth_tests::models::users::Entity)
                .await;
            let repo =
                crudauth_sea::SeaUserRepository::<crudauth_tests::http::User>::new(tdb.db.clone());
            crudauth::CrudAuth::builder(repo)
                .secret_key(SECRET.to_vec())
                .password(fast_passwords())
                .session(config)
                .build()
                .map(|auth| (demo_routes(&auth), tdb))
        }
    };
    let register = json!({"email": "ann@example.com", "username": "ann", "password": PW});
    let login = || Req::post("/login").form(&[("username", "ann"), ("password", PW)]);

    // The default: Secure, so the session cookie is `__Host-session_id`; the CSRF cookie
    // keeps the name scripts read, and stays readable by them.
    let (app, _tdb) = build(SessionConfig::default()).await.unwrap();
    assert_eq!(
        send(&app, Req::post("/register").json(register.clone()))
            .await
            .status,
        202
    );
    let r = send(&app, login()).await;
    assert_eq!(r.status, 200);
    let cookies = r.cookies();
    let (sid, session_header) = cookies["__Host-session_id"].clone();
    assert!(!cookies.contains_key("session_id"));
    for part in ["HttpOnly", "Secure", "Path=/"] {
        assert!(session_header.contains(part), "{session_header}");
    }
    assert!(!session_header.contains("Domain"), "{session_header}");
    let (csrf, csrf_header) = cookies["csrf_token"].clone();
    assert!(!csrf_header.contains("HttpOnly"), "{csrf_header}");
    assert_eq!(r.json["csrf_token"], csrf);
    let me = |cookie: String| Req::get("/me").header("cookie", cookie);
    assert_eq!(
        send(&app, me(format!("__Host-session_id={sid}")))
            .await
            .status,
        200
    );
    // A cookie without the prefix (what a sibling subdomain can set) is not the session.
    assert_eq!(
        send(&app, me(format!("session_id={sid}"))).await.status,
        401
    );
    // A rotation sets the prefixed name too.
    let r = send(
        &app,
        Req::post("/sudo")
            .header(
                "cookie",
                format!("__Host-session_id={sid}; csrf_token={csrf}"),
            )
            .header("x-csrf-token", csrf.clone())
            .json(json!({"password": PW})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let (moved, header) = r.cookies()["__Host-session_id"].clone();
    assert!(
        header.contains("Secure") && header.contains("Path=/"),
        "{header}"
    );
    assert_eq!(
        send(&app, me(format!("__Host-session_id={moved}")))
            .await
            .status,
        200
    );
    // Logout clears the prefixed cookie.
    let r = send(
        &app,
        Req::post("/logout")
            .header(
                "cookie",
                format!("__Host-session_id={moved}; csrf_token={csrf}"),
            )
            .header("x-csrf-token", csrf.clone()),
    )
    .await;
    assert!(r.cookies()["__Host-session_id"].1.contains("Max-Age=0"));

    // Both prefixed on request; the CSRF cookie still readable by scripts.
    let (app, _tdb) = build(SessionConfig {
        csrf_host_prefix: true,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    send(&app, Req::post("/register").json(register.clone())).await;
    let cookies = send(&app, login()).await.cookies();
    assert!(cookies.contains_key("__Host-session_id"));
    assert!(!cookies["__Host-csrf_token"].1.contains("HttpOnly"));

    // Plain-http development (not Secure) and a narrower path: the names of 0.8.
    for config in [
        SessionConfig {
            secure: false,
            ..SessionConfig::default()
        },
        SessionConfig {
            path: "/app".into(),
            ..SessionConfig::default()
        },
        SessionConfig {
            host_prefix: false,
            ..SessionConfig::default()
        },
    ] {
        let (app, _tdb) = build(config).await.unwrap();
        send(&app, Req::post("/register").json(register.clone())).await;
        let cookies = send(&app, login()).await.cookies();
        assert!(cookies.contains_key("session_id") && cookies.contains_key("csrf_token"));
    }

    // A name the application prefixed itself must be able to meet the prefix's rules.
    let refused = build(SessionConfig {
        cookie_name: "__Host-sid".into(),
        secure: false,
        ..SessionConfig::default()
    })
    .await;
    assert!(matches!(refused, Err(crudauth::ConfigError::Invalid(_))));
}

#[tokio::test]
async fn me_is_never_stored_by_a_shared_cache() {
    let t = app_with("me_no_store", |b| b).await;
    t.register("ann@example.com", "ann", PW).await;
    let s = t.login("ann", PW).await;
    let r = t.send(Req::get("/me").session(&s)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let (access, _) = t.token("ann", PW, "").await;
    let r = t.send(Req::get("/me").bearer(&access)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(
        r.json,
        json!({"user_id": r.json["user_id"], "username": "ann", "email": "ann@example.com",
               "is_superuser": false, "scopes": ["me:read"], "via": "bearer"})
    );
}
