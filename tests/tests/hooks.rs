//! Hooks that an app can use: they receive the app's own model, fire once per event through
//! one table, and the two vetoes refuse on every path that creates an account
//! (`/register`) or signs one in (`/login`, `/token`).

use std::sync::{Arc, Mutex};

use crudauth::{UserRepository, UserUpdate, Veto};
use crudauth_tests::http::{Req, TestApp, User, app_with};

/// Everything the hooks saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn log_of(log: &Log) -> Vec<String> {
    log.lock().expect("log").clone()
}

const PASSWORD: &str = "correct horse 1";

/// An app whose hooks write to `log`: every observing hook, reading the app's own `bio`
/// column (unknown to the library) from the model it receives, and the two vetoes: no
/// sign-up from `@blocked.example`, no sign-in for a user whose bio is `suspended`.
async fn app(test: &str, log: &Log) -> TestApp {
    let (a, b, c, d, e, f, g) = (
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
    );
    app_with(test, move |builder| {
        builder
            .on_before_register(move |new, ctx| {
                let log = a.clone();
                async move {
                    let email = new.email.clone().unwrap_or_default();
                    let bio = new.extra.get("bio").cloned().unwrap_or_default();
                    log.lock().expect("log").push(format!(
                        "before_register {email} bio={bio} ip={}",
                        ctx.ip.unwrap_or_default()
                    ));
                    if email.ends_with("@blocked.example") {
                        return Err(
                            Veto::new("Sign-ups from this domain are closed").on_field("email")
                        );
                    }
                    Ok(())
                }
            })
            .on_before_login(move |user: Arc<User>, ctx| {
                let log = b.clone();
                async move {
                    log.lock().expect("log").push(format!(
                        "before_login {} via {}",
                        user.username,
                        ctx.transport.unwrap_or_default()
                    ));
                    if user.bio.as_deref() == Some("suspended") {
                        return Err(Veto::new("suspended by the app"));
                    }
                    Ok(())
                }
            })
            .on_after_register(move |user: Arc<User>, _| {
                let log = c.clone();
                async move {
                    let bio = user.bio.clone().unwrap_or_default();
                    log.lock()
                        .expect("log")
                        .push(format!("after_register {} bio={bio}", user.username));
                    Ok(())
                }
            })
            .on_after_login(move |user: Arc<User>, ctx| {
                let log = d.clone();
                async move {
                    log.lock().expect("log").push(format!(
                        "after_login {} bio={} via {}",
                        user.username,
                        user.bio.clone().unwrap_or_default(),
                        ctx.transport.unwrap_or_default()
                    ));
                    Ok(())
                }
            })
            .on_login_failed(move |identifier, user: Option<Arc<User>>, reason, ctx| {
                let log = e.clone();
                async move {
                    let who = user.map_or("nobody".to_owned(), |u| u.username.clone());
                    log.lock().expect("log").push(format!(
                        "login_failed {identifier} {who} {} via {}",
                        reason.as_str(),
                        ctx.transport.unwrap_or_default()
                    ));
                    Ok(())
                }
            })
            .on_lockout(move |identifier, _retry_after, _| {
                let log = f.clone();
                async move {
                    log.lock()
                        .expect("log")
                        .push(format!("lockout {identifier}"));
                    Ok(())
                }
            })
            .on_after_logout(move |user: Arc<User>, _| {
                let log = g.clone();
                async move {
                    log.lock()
                        .expect("log")
                        .push(format!("after_logout {}", user.username));
                    Ok(())
                }
            })
    })
    .await
}

async fn register(
    t: &TestApp,
    email: &str,
    username: &str,
    bio: &str,
) -> crudauth_tests::http::Resp {
    t.send(Req::post("/register").json(serde_json::json!({
        "email": email, "username": username, "password": PASSWORD, "bio": bio
    })))
    .await
}

#[tokio::test]
async fn hooks_receive_the_apps_own_model_once_per_event() {
    let log = Log::default();
    let t = app("hooks_model", &log).await;
    let r = register(&t, "ann@example.com", "ann", "writes poems").await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    t.auth.background().flush().await;
    let s = t.login("ann", PASSWORD).await;
    t.token("ann@example.com", PASSWORD, "").await;
    let r = t.send(Req::post("/logout").session(&s)).await;
    assert_eq!(r.status, 200);
    let r = t
        .send(Req::post("/login").form(&[("username", "ann"), ("password", "wrong")]))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        log_of(&log),
        [
            "before_register ann@example.com bio=\"writes poems\" ip=127.0.0.1",
            "after_register ann bio=writes poems",
            "before_login ann via session",
            "after_login ann bio=writes poems via session",
            "before_login ann via bearer",
            "after_login ann bio=writes poems via bearer",
            "after_logout ann",
            "login_failed ann ann invalid_credentials via session",
        ],
        "each event once, in order, with the model's own column"
    );
}

#[tokio::test]
async fn the_register_veto_answers_a_field_entry_and_writes_nothing() {
    let log = Log::default();
    let t = app("hooks_register_veto", &log).await;
    let r = register(&t, "eve@blocked.example", "eve", "").await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert_eq!(
        r.json["detail"],
        serde_json::json!([{
            "type": "value_error",
            "loc": ["body", "email"],
            "msg": "Sign-ups from this domain are closed",
        }])
    );
    let repo = t.auth.repo();
    assert!(
        repo.find_by_login("eve").await.unwrap().is_none(),
        "nothing written"
    );
    t.auth.background().flush().await;
    assert!(
        !log_of(&log).iter().any(|l| l.starts_with("after_register")),
        "no after-register hook for a refused sign-up"
    );
    // An address that is already taken gets the very same answer: the veto runs before the
    // uniqueness check, so it tells nothing about existing accounts.
    let created = crudauth::NewUser::new(t.auth.passwords().hash(PASSWORD).await.unwrap())
        .email("old@blocked.example");
    let mut created = created;
    created.username = Some("old".into());
    UserRepository::create(
        &crudauth_sea::SeaUserRepository::<User>::new(t.tdb.db.clone()),
        created,
    )
    .await
    .unwrap();
    let taken = register(&t, "old@blocked.example", "someone", "").await;
    assert_eq!((taken.status, &taken.json), (r.status, &r.json));
    // Other addresses are unaffected.
    assert_eq!(register(&t, "ann@example.com", "ann", "").await.status, 202);
}

/// The login veto is answered exactly as a disabled account is, on `/login` and `/token`,
/// and reported to `on_login_failed` as `refused`.
#[tokio::test]
async fn the_login_veto_answers_like_a_disabled_account_on_login_and_token() {
    let log = Log::default();
    let t = app("hooks_login_veto", &log).await;
    assert_eq!(
        register(&t, "sam@example.com", "sam", "suspended")
            .await
            .status,
        202
    );
    assert_eq!(register(&t, "dan@example.com", "dan", "").await.status, 202);
    let repo = crudauth_sea::SeaUserRepository::<User>::new(t.tdb.db.clone());
    let dan = repo.find_by_login("dan").await.unwrap().unwrap();
    let off = UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    repo.update(&crudauth::UserRecord::user_id(&dan), off)
        .await
        .unwrap();
    for (path, transport) in [("/login", "session"), ("/token", "bearer")] {
        let vetoed = t
            .send(Req::post(path).form(&[("username", "sam"), ("password", PASSWORD)]))
            .await;
        let disabled = t
            .send(Req::post(path).form(&[("username", "dan"), ("password", PASSWORD)]))
            .await;
        let wrong = t
            .send(Req::post(path).form(&[("username", "sam"), ("password", "not it")]))
            .await;
        assert_eq!(vetoed.status, 401, "{path}");
        assert_eq!(
            (vetoed.status, &vetoed.json),
            (disabled.status, &disabled.json),
            "{path}"
        );
        assert_eq!(
            (vetoed.status, &vetoed.json),
            (wrong.status, &wrong.json),
            "{path}"
        );
        assert!(vetoed.cookies().is_empty(), "{path}: no credential set");
        assert!(vetoed.json.get("access_token").is_none(), "{path}");
        let log = log_of(&log);
        assert!(
            log.contains(&format!("login_failed sam sam refused via {transport}")),
            "{path}: {log:?}"
        );
        assert!(log.contains(&format!("login_failed dan dan inactive via {transport}")));
    }
    let seen = log_of(&log);
    // The veto is asked only once the password was right and the account active.
    assert_eq!(
        seen.iter()
            .filter(|l| l.starts_with("before_login"))
            .count(),
        2,
        "{seen:?}"
    );
    assert!(!seen.iter().any(|l| l.starts_with("after_login")));
}

/// A lockout refusal reaches `on_lockout` through the same table, once per refused attempt.
#[tokio::test]
async fn lockout_hooks_fire_through_the_table_once_per_refusal() {
    let log = Log::default();
    let t = app("hooks_lockout", &log).await;
    assert_eq!(register(&t, "lou@example.com", "lou", "").await.status, 202);
    let mut refused = 0;
    for _ in 0..8 {
        let r = t
            .send(Req::post("/login").form(&[("username", "lou"), ("password", "wrong")]))
            .await;
        if r.status == 429 {
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "the default lockout locks within 8 wrong passwords"
    );
    let seen = log_of(&log);
    assert_eq!(
        seen.iter().filter(|l| *l == "lockout lou").count(),
        refused,
        "{seen:?}"
    );
}
