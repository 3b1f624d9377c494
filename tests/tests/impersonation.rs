//! Impersonation over the real router: a superuser inside their sudo window acts as another
//! user by a short-lived token or a session, and the attacks: a non-superuser, a session not
//! elevated, a superuser target, an inactive or unknown target; and an impersonation used
//! for each refused action (minting another, sudo, password, email, MFA, passkeys, API keys).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crudauth::admin::ImpersonationConfig;
use crudauth::api_key::ApiKeyConfig;
use crudauth::mfa::MfaConfig;
use crudauth::passkey::PasskeyConfig;
use crudauth::user::UserUpdate;
use crudauth::{CrudAuthBuilder, UserRecord};
use crudauth_tests::http::{Req, Resp, Session, TestApp, User, app_with, outbox_path, with_outbox};
use crudauth_tests::passkey_client::{ORIGIN, RP_ID};
use serde_json::json;

const PW: &str = "a long password 1";

fn everything(b: CrudAuthBuilder<User>, config: ImpersonationConfig) -> CrudAuthBuilder<User> {
    with_outbox(b, &outbox_path("impersonation"))
        .impersonation(config)
        .api_keys(ApiKeyConfig::default())
        .mfa(MfaConfig::new("crudauth-test"))
        .passkeys(PasskeyConfig::new(RP_ID, ORIGIN))
}

async fn setup(test: &str) -> TestApp {
    app_with(test, |b| everything(b, ImpersonationConfig::default())).await
}

async fn id_of(app: &TestApp, name: &str) -> String {
    let user = app.auth.repo().find_by_login(name).await.unwrap().unwrap();
    user.user_id().to_string()
}

async fn set(app: &TestApp, name: &str, update: UserUpdate) {
    let user = app.auth.repo().find_by_login(name).await.unwrap().unwrap();
    app.auth
        .repo()
        .update(&user.user_id(), update)
        .await
        .unwrap();
}

async fn elevate(app: &TestApp, s: &Session) -> Resp {
    app.send(
        Req::post("/sudo")
            .session(s)
            .json(json!({ "password": PW })),
    )
    .await
}

/// A registered, verified user; a superuser when `root`.
async fn user(app: &TestApp, name: &str, root: bool) {
    app.register(&format!("{name}@example.com"), name, PW).await;
    let update = UserUpdate {
        email_verified: Some(true),
        is_superuser: root.then_some(true),
        ..Default::default()
    };
    set(app, name, update).await;
}

/// A superuser `root`, signed in and elevated, and a user `bob`.
async fn cast(app: &TestApp) -> Session {
    user(app, "root", true).await;
    user(app, "bob", false).await;
    let s = app.login("root", PW).await;
    assert_eq!(elevate(app, &s).await.status, 200);
    s
}

async fn mint(app: &TestApp, s: &Session, target: &str) -> Resp {
    app.send(Req::post(&format!("/admin/users/{target}/token")).session(s))
        .await
}

#[tokio::test]
async fn a_superuser_in_sudo_mints_a_short_token_that_names_them() {
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;
    let seen: Seen = Arc::default();
    let hook = seen.clone();
    let app = app_with("imp_token", move |b| {
        everything(b, ImpersonationConfig::default()).on_impersonation(move |user, ctx| {
            let hook = hook.clone();
            async move {
                hook.lock()
                    .unwrap()
                    .push((user.username.clone(), ctx.impersonated_by));
                Ok(())
            }
        })
    })
    .await;
    crudauth_tests::global_log();
    let s = cast(&app).await;
    let bob = id_of(&app, "bob").await;
    let root = id_of(&app, "root").await;
    let r = mint(&app, &s, &bob).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.json.get("refresh_token").is_none(), "no refresh token");
    assert_eq!(r.json["expires_in"], 900);
    assert_eq!(r.json["impersonated_by"], root.as_str());
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let text = crudauth_tests::global_log();
    assert!(
        text.contains("impersonation_started") && text.contains(&bob),
        "{text}"
    );
    assert!(!text.contains(&token), "no token in the log");
    app.auth.background().flush().await;
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [("bob".to_owned(), Some(root.clone()))]
    );

    let r = app.send(Req::get("/me").bearer(&token)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        (
            r.json["username"].as_str(),
            r.json["impersonated_by"].as_str()
        ),
        (Some("bob"), Some(root.as_str()))
    );
    // An ordinary sign-in's /me keeps the 0.8 shape.
    let (own, _) = app.token("bob", PW, "me:read").await;
    assert!(
        app.send(Req::get("/me").bearer(&own))
            .await
            .json
            .get("impersonated_by")
            .is_none()
    );
    // It is an access token: /refresh takes none.
    let r = app
        .send(Req::post("/refresh").json(json!({ "refresh_token": token })))
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn only_an_elevated_superuser_may_impersonate_an_active_ordinary_user() {
    let app = setup("imp_rules").await;
    let s = cast(&app).await;
    user(&app, "eve", false).await;
    user(&app, "root2", true).await;
    user(&app, "gone", false).await;
    set(
        &app,
        "gone",
        UserUpdate {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await;
    let bob = id_of(&app, "bob").await;
    // A user who is no superuser, even elevated.
    let eve = app.login("eve", PW).await;
    assert_eq!(elevate(&app, &eve).await.status, 200);
    assert_eq!(mint(&app, &eve, &bob).await.status, 403);
    // A superuser outside the sudo window, and with a bearer token (never elevated).
    let plain = app.login("root", PW).await;
    let r = mint(&app, &plain, &bob).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Re-authentication required.")
    );
    let (access, _) = app.token("root", PW, "me:read").await;
    let r = app
        .send(Req::post(&format!("/admin/users/{bob}/token")).bearer(&access))
        .await;
    assert_eq!(r.status, 403);
    // Targets.
    let cases = [
        (id_of(&app, "root2").await, 403),
        (id_of(&app, "gone").await, 400),
        (id_of(&app, "root").await, 400),
        (uuid::Uuid::new_v4().to_string(), 404),
        ("not-an-id".to_owned(), 404),
        ("%00".to_owned(), 404),
    ];
    for (target, status) in cases {
        let r = mint(&app, &s, &target).await;
        assert_eq!(r.status, status, "{target}: {:?}", r.json);
    }
    let r = app
        .send(Req::post("/admin/users/x/impersonate").session(&eve))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn another_superuser_only_when_allowed_and_an_impersonation_never_mints_another() {
    let app = app_with("imp_superusers", |b| {
        everything(b, ImpersonationConfig::default().allow_superusers(true))
    })
    .await;
    let s = cast(&app).await;
    user(&app, "root2", true).await;
    let r = mint(&app, &s, &id_of(&app, "root2").await).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let bob = id_of(&app, "bob").await;
    let r = app
        .send(Req::post(&format!("/admin/users/{bob}/token")).bearer(&token))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
}

#[tokio::test]
async fn an_impersonation_token_is_refused_every_credential_change() {
    let app = setup("imp_refused").await;
    let s = cast(&app).await;
    let r = mint(&app, &s, &id_of(&app, "bob").await).await;
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let refused = [
        Req::post("/sudo").json(json!({ "password": PW })),
        Req::post("/change-password")
            .json(json!({ "current_password": PW, "new_password": "another long password 9" })),
        Req::post("/set-password").json(json!({ "new_password": "another long password 9" })),
        Req::post("/email/change-request")
            .json(json!({ "new_email": "evil@example.com", "password": PW })),
        Req::post("/mfa/totp/setup").json(json!({ "password": PW })),
        Req::post("/mfa/totp/disable").json(json!({ "code": "123456" })),
        Req::post("/passkeys/register/start"),
        Req::post("/passkeys/sudo/start"),
        Req::new(axum::http::Method::DELETE, "/passkeys/AAAA"),
        Req::post("/api-keys").json(json!({ "name": "backdoor" })),
        Req::get("/api-keys"),
    ];
    for (i, req) in refused.into_iter().enumerate() {
        let r = app.send(req.bearer(&token)).await;
        assert_eq!(r.status, 403, "request {i}: {:?}", r.json);
    }
    // Nothing changed: Bob's password still works, his address is his.
    let bob = app.login("bob", PW).await;
    let r = app.send(Req::get("/me").session(&bob)).await;
    assert_eq!(r.json["email"], "bob@example.com");
}

#[tokio::test]
async fn an_impersonation_ends_when_its_superuser_may_no_longer_act() {
    let app = setup("imp_demoted").await;
    let s = cast(&app).await;
    let bob = id_of(&app, "bob").await;
    let token = mint(&app, &s, &bob).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.send(Req::get("/me").bearer(&token)).await.status, 200);
    set(
        &app,
        "root",
        UserUpdate {
            is_superuser: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(app.send(Req::get("/me").bearer(&token)).await.status, 401);
    set(
        &app,
        "root",
        UserUpdate {
            is_superuser: Some(true),
            ..Default::default()
        },
    )
    .await;
    // Restored, it works again; the superuser signing out everywhere ends it for good.
    assert_eq!(app.send(Req::get("/me").bearer(&token)).await.status, 200);
    let r = app.send(Req::post("/logout-all").session(&s)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(app.send(Req::get("/me").bearer(&token)).await.status, 401);
    // A user promoted to superuser meanwhile is no longer the user it began with.
    let s2 = app.login("root", PW).await;
    elevate(&app, &s2).await;
    let token = mint(&app, &s2, &bob).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    set(
        &app,
        "bob",
        UserUpdate {
            is_superuser: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(app.send(Req::get("/me").bearer(&token)).await.status, 401);
    set(
        &app,
        "bob",
        UserUpdate {
            is_superuser: Some(false),
            ..Default::default()
        },
    )
    .await;
    // And so does the user's own revocation.
    let s = app.login("root", PW).await;
    elevate(&app, &s).await;
    let token = mint(&app, &s, &bob).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = app.login("bob", PW).await;
    app.send(Req::post("/logout-all").session(&own)).await;
    assert_eq!(app.send(Req::get("/me").bearer(&token)).await.status, 401);
}

/// Starts an impersonation session of `target` from the superuser's session `s`: the
/// answer, the impersonation session and the parked cookie's value.
async fn impersonate(app: &TestApp, s: &Session, target: &str) -> (Resp, Session, String) {
    let r = app
        .send(Req::post(&format!("/admin/users/{target}/impersonate")).session(s))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let imp = Session {
        id: cookie_of(&r, "session_id").unwrap(),
        csrf: cookie_of(&r, "csrf_token").unwrap(),
    };
    let parked = cookie_of(&r, "session_id_admin").unwrap();
    (r, imp, parked)
}

fn cookie_of(r: &Resp, name: &str) -> Option<String> {
    r.cookies().get(name).map(|(v, _)| v.clone())
}

#[tokio::test]
async fn an_impersonation_session_parks_the_superusers_session_and_gives_it_back() {
    let app = setup("imp_session").await;
    let s = cast(&app).await;
    let bob = id_of(&app, "bob").await;
    let root_sid = crudauth_tests::http::current_id(&s);
    let (r, imp, parked) = impersonate(&app, &s, &bob).await;
    assert_eq!(
        parked, root_sid,
        "the superuser's own session waits in its cookie"
    );
    assert!(r.headers.get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("session_id_admin=") && c.contains("HttpOnly")
    }));
    let me = app.send(Req::get("/me").session(&imp)).await;
    assert_eq!(
        (me.json["username"].as_str(), me.json["via"].as_str()),
        (Some("bob"), Some("session"))
    );
    assert!(me.json["impersonated_by"].is_string());
    // The parked cookie is no credential.
    let r = app
        .send(Req::get("/me").header("cookie", format!("session_id_admin={parked}")))
        .await;
    assert_eq!(r.status, 401);
    // The session is never elevated, and refuses what a token refuses.
    assert_eq!(elevate(&app, &imp).await.status, 403);
    let r = app
        .send(
            Req::post("/change-password")
                .session(&imp)
                .json(json!({ "current_password": PW, "new_password": "another long password 9" })),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .send(Req::post(&format!("/admin/users/{bob}/impersonate")).session(&imp))
        .await;
    assert_eq!(r.status, 403);
    // Bob sees it among his sessions (and could end it).
    let own = app.login("bob", PW).await;
    let r = app.send(Req::get("/sessions").session(&own)).await;
    assert_eq!(r.json.as_array().unwrap().len(), 2);

    // Stop: a forged CSRF header is refused; the right one gives the superuser back.
    let forged = Session {
        id: imp.id.clone(),
        csrf: "forged".into(),
    };
    let stop = |s: &Session| {
        Req::post("/admin/impersonation/stop").session(s).header(
            "cookie",
            format!("session_id={}; session_id_admin={parked}", s.id),
        )
    };
    assert_eq!(app.send(stop(&forged)).await.status, 403);
    let r = app.send(stop(&imp)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["detail"], "Impersonation stopped.");
    // The superuser's session comes back under a new id, out of its sudo window.
    let back_id = cookie_of(&r, "session_id").unwrap();
    assert_ne!(back_id, root_sid);
    let csrf = cookie_of(&r, "csrf_token").unwrap();
    let back = Session { id: back_id, csrf };
    let me = app.send(Req::get("/me").session(&back)).await;
    assert_eq!(me.json["username"], "root");
    let old = Req::get("/me").header("cookie", format!("session_id={root_sid}"));
    assert_eq!(app.send(old).await.status, 401, "the parked id is spent");
    let danger = app.send(Req::post("/danger").session(&back)).await;
    assert_eq!(danger.status, 403, "no longer in sudo");
    // The old CSRF token of the superuser's session was replaced; the impersonation is over.
    let old = Req::get("/me").header("cookie", format!("session_id={}", imp.id));
    assert_eq!(app.send(old).await.status, 401);
    let r = app.send(Req::post("/logout").session(&back)).await;
    assert_eq!(r.status, 200, "the fresh CSRF token works: {:?}", r.json);
}

#[tokio::test]
async fn an_expired_impersonation_session_ends_and_the_parked_session_still_comes_back() {
    let app = app_with("imp_expiry", |b| {
        everything(
            b,
            ImpersonationConfig::default().lifetime(Duration::from_secs(1)),
        )
    })
    .await;
    let s = cast(&app).await;
    let bob = id_of(&app, "bob").await;
    let (_, imp, parked) = impersonate(&app, &s, &bob).await;
    let imp = imp.id;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = app
        .send(Req::get("/me").header("cookie", format!("session_id={imp}")))
        .await;
    assert_eq!(r.status, 401, "over");
    let stop = Req::post("/admin/impersonation/stop").header(
        "cookie",
        format!("session_id={imp}; session_id_admin={parked}"),
    );
    // Cross-site, the parked cookie alone does nothing.
    let r = app
        .send(stop.clone_req().header("sec-fetch-site", "cross-site"))
        .await;
    assert_eq!(r.status, 403);
    let r = app.send(stop).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["detail"], "Impersonation stopped.");
    let back = cookie_of(&r, "session_id").unwrap();
    let me = Req::get("/me").header("cookie", format!("session_id={back}"));
    assert_eq!(app.send(me).await.json["username"], "root");
    // A parked cookie that is not a superuser's live session gives nothing back.
    let bob_s = app.login("bob", PW).await;
    let r = app
        .send(
            Req::post("/admin/impersonation/stop")
                .header("cookie", format!("session_id_admin={}", bob_s.id)),
        )
        .await;
    assert_eq!(r.json["detail"], "Impersonation stopped; signed out.");
    assert_eq!(cookie_of(&r, "session_id").as_deref(), Some(""));
}

#[tokio::test]
async fn signing_out_of_an_impersonation_ends_the_parked_session_too() {
    let app = setup("imp_logout").await;
    let s = cast(&app).await;
    let bob = id_of(&app, "bob").await;
    let (r, imp, parked) = impersonate(&app, &s, &bob).await;
    let set = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("session_id_admin="))
        .unwrap();
    assert!(
        set.contains("Max-Age=1200"),
        "the lifetime and 5 minutes: {set}"
    );
    let r = app
        .send(
            Req::post("/logout")
                .header(
                    "cookie",
                    format!("session_id={}; session_id_admin={parked}", imp.id),
                )
                .header("x-csrf-token", &imp.csrf),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(cookie_of(&r, "session_id_admin").as_deref(), Some(""));
    // Whoever comes to the browser next finds nothing to go back to.
    let r = app
        .send(
            Req::post("/admin/impersonation/stop")
                .header("cookie", format!("session_id_admin={parked}")),
        )
        .await;
    assert_eq!(r.json["detail"], "Impersonation stopped; signed out.");
    let r = app
        .send(Req::get("/me").header("cookie", format!("session_id={parked}")))
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn an_impersonation_changes_no_way_in_through_the_users_admin_routes() {
    let app = app_with("imp_users_me", |b| {
        everything(b, ImpersonationConfig::default())
            .users_admin(crudauth::admin::UsersAdminConfig::default())
    })
    .await;
    let s = cast(&app).await;
    let bob = id_of(&app, "bob").await;
    let token = mint(&app, &s, &bob).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.send(Req::get("/users/me").bearer(&token)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    for body in [
        json!({ "password": "another long password 9", "current_password": PW }),
        json!({ "email": "evil@example.com", "current_password": PW }),
    ] {
        let r = app
            .send(
                Req::new(axum::http::Method::PATCH, "/users/me")
                    .bearer(&token)
                    .json(body),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.json);
    }
    // Nor the superuser's own admin routes, which need a session in sudo.
    let r = app
        .send(Req::new(axum::http::Method::DELETE, &format!("/users/{bob}")).bearer(&token))
        .await;
    assert_eq!(r.status, 403);
}
