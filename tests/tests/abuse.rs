//! Disposable-email blocking over the real router, at every place an address enters:
//! `/register`, `/email/change-request`, `PATCH /users/me`, an OAuth sign-up and a
//! passwordless sign-up. Each answers the email field's 422 entry, with the same body
//! whether or not an account has the address, before any lookup (so before the password of
//! an email change is checked). Subdomains of a listed domain, the app's own additions and
//! exceptions, and look-alike spellings (case, trailing dot, punycode, fullwidth).

use std::time::Duration;

use crudauth::admin::UsersAdminConfig;
use crudauth::disposable::{DISPOSABLE_MESSAGE, DisposableEmails};
use crudauth::oauth::{OAuthConfig, ProviderConfig};
use crudauth::passwordless::PasswordlessConfig;
use crudauth::{CrudAuthBuilder, UserRecord};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{
    FRONTEND, Req, Resp, TestApp, User, app_with, default_builder, demo_routes, outbox_path, send,
    with_outbox,
};
use crudauth_tests::oauth_provider::{CLIENT_ID, CLIENT_SECRET, FakeIdp, Person};
use serde_json::{Value, json};

const PW: &str = "a long password 1";

fn blocking(b: CrudAuthBuilder<User>) -> CrudAuthBuilder<User> {
    b.disposable_emails(DisposableEmails::default())
}

/// The one 422 body a disposable address gets for `field`.
fn disposable_body(field: &str) -> Value {
    json!({ "detail": [{ "type": "value_error", "loc": ["body", field], "msg": DISPOSABLE_MESSAGE }] })
}

/// An account with `email` registered through an app on the same database that does not
/// block (as one registered before the list blocked its domain).
async fn existing(app: &TestApp, email: &str, username: &str) {
    let repo = SeaUserRepository::<User>::new(app.tdb.db.clone());
    let open = default_builder(repo).build().expect("config");
    let r = send(
        &demo_routes(&open),
        Req::post("/register")
            .json(json!({ "email": email, "username": username, "password": PW })),
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert!(exists(app, email).await);
}

async fn exists(app: &TestApp, email: &str) -> bool {
    app.auth
        .repo()
        .find_by_login(email)
        .await
        .expect("repo")
        .is_some()
}

async fn register(app: &TestApp, email: &str, username: &str) -> Resp {
    app.send(Req::post("/register").json(json!({
        "email": email, "username": username, "password": PW
    })))
    .await
}

#[tokio::test]
async fn registering_a_disposable_address_is_the_email_fields_422_whether_or_not_it_exists() {
    let app = app_with("abuse_register", blocking).await;
    existing(&app, "taken@mailinator.com", "taken").await;
    let taken = register(&app, "taken@mailinator.com", "mallory").await;
    let free = register(&app, "free@mailinator.com", "mallory2").await;
    assert_eq!(taken.status, 422, "{:?}", taken.json);
    assert_eq!(taken.json, disposable_body("email"));
    assert_eq!((taken.status, &taken.body), (free.status, &free.body));
    assert!(
        !exists(&app, "free@mailinator.com").await,
        "nothing written"
    );
    // Listed with the body's other issues, in the same shape.
    let r = app
        .send(
            Req::post("/register")
                .json(json!({ "email": "x@mailinator.com", "username": "x", "password": "short" })),
        )
        .await;
    assert_eq!(r.status, 422);
    let locs: Vec<&Value> = r.json["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["loc"])
        .collect();
    assert!(
        locs.contains(&&json!(["body", "email"])) && locs.contains(&&json!(["body", "password"])),
        "{:?}",
        r.json
    );
    // An ordinary address registers.
    assert_eq!(register(&app, "ann@example.com", "ann").await.status, 202);
}

#[tokio::test]
async fn a_subdomain_or_another_spelling_of_a_listed_domain_is_refused_too() {
    let app = app_with("abuse_spellings", blocking).await;
    for (i, email) in [
        "a@sub.mailinator.com",
        "a@deep.sub.mailinator.com",
        "a@MAILINATOR.COM",
        "a@ｍａｉｌｉｎａｔｏｒ.com", // fullwidth folds to the listed domain
    ]
    .into_iter()
    .enumerate()
    {
        let r = register(&app, email, &format!("u{i}")).await;
        assert_eq!(r.status, 422, "{email}: {:?}", r.json);
        assert_eq!(r.json, disposable_body("email"), "{email}");
    }
    // A domain that merely ends in the same letters is another domain (`zmailinator.com`
    // is on no list).
    assert_eq!(register(&app, "a@zmailinator.com", "ok").await.status, 202);
}

#[tokio::test]
async fn the_app_adds_its_own_domains_and_exceptions() {
    let app = app_with("abuse_app_lists", |b| {
        b.disposable_emails(
            DisposableEmails::default()
                .block(["trash.example", "bücher.example"])
                .allow(["mailinator.com", "ok.trash.example"]),
        )
    })
    .await;
    for (email, status) in [
        ("a@trash.example", 422),
        ("b@x.trash.example", 422),
        ("c@ok.trash.example", 202),
        ("d@xn--bcher-kva.example", 422), // the addition in its punycode form
        ("e@shop.bücher.example", 422),
        ("f@mailinator.com", 202), // the exception beats the shipped list
        ("g@sub.mailinator.com", 202),
        ("h@guerrillamail.com", 422), // the rest of the shipped list still holds
    ] {
        let name = email.split('@').next().unwrap();
        let r = register(&app, email, name).await;
        assert_eq!(r.status, status, "{email}: {:?}", r.json);
    }
}

#[tokio::test]
async fn without_a_config_nothing_is_blocked() {
    let app = app_with("abuse_off", |b| b).await;
    assert_eq!(register(&app, "a@mailinator.com", "a").await.status, 202);
}

#[tokio::test]
async fn an_email_change_to_a_disposable_address_is_refused_before_the_password_is_checked() {
    let outbox = outbox_path("abuse_change");
    let path = outbox.clone();
    let app = app_with("abuse_change", move |b| {
        blocking(with_outbox(b, &path)).rate_limit("email_change_request", crudauth::RateLimit::OFF)
    })
    .await;
    app.register("ann@example.com", "ann", PW).await;
    existing(&app, "bob@mailinator.com", "bob").await;
    let s = app.login("ann", PW).await;
    let ask = |new_email: &'static str, password: &'static str| {
        Req::post("/email/change-request")
            .session(&s)
            .json(json!({ "new_email": new_email, "password": password }))
    };
    let taken = app.send(ask("bob@mailinator.com", PW)).await;
    let free = app.send(ask("free@mailinator.com", PW)).await;
    // A wrong password still gets the 422: nothing was looked up or checked before it.
    let wrong = app
        .send(ask("free@mailinator.com", "not the password"))
        .await;
    assert_eq!(taken.status, 422, "{:?}", taken.json);
    assert_eq!(taken.json, disposable_body("new_email"));
    assert_eq!(taken.body, free.body);
    assert_eq!(wrong.body, free.body);
    assert!(
        crudauth_tests::http::mails(&app.auth, &outbox)
            .await
            .iter()
            .all(|m| m["kind"] != "email_change_requested"),
        "no notice, no link"
    );
    let ok = app.send(ask("ann@new.example", PW)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.json);
}

#[tokio::test]
async fn patching_my_email_to_a_disposable_address_is_the_email_fields_422() {
    let outbox = outbox_path("abuse_patch_me");
    let path = outbox.clone();
    let app = app_with("abuse_patch_me", move |b| {
        blocking(with_outbox(b, &path)).users_admin(UsersAdminConfig::default())
    })
    .await;
    app.register("ann@example.com", "ann", PW).await;
    existing(&app, "bob@mailinator.com", "bob").await;
    let s = app.login("ann", PW).await;
    let patch = |email: &str, password: &str| {
        Req::new(axum::http::Method::PATCH, "/users/me")
            .session(&s)
            .json(json!({ "email": email, "current_password": password }))
    };
    let taken = app.send(patch("bob@mailinator.com", PW)).await;
    let free = app
        .send(patch("x@sub.mailinator.com", "wrong password"))
        .await;
    assert_eq!(taken.status, 422, "{:?}", taken.json);
    assert_eq!(taken.json, disposable_body("email"));
    assert_eq!(taken.body, free.body);
    let me = app.auth.repo().find_by_login("ann").await.unwrap().unwrap();
    assert_eq!(me.email(), Some("ann@example.com"));
}

async fn oauth_app(test: &str) -> (TestApp, FakeIdp) {
    let idp = FakeIdp::start().await;
    let mut config = OAuthConfig::new("http://127.0.0.1:8000").provider(ProviderConfig::oidc(
        "oidc",
        &idp.base,
        CLIENT_ID,
        CLIENT_SECRET,
    ));
    config.http_timeout = Duration::from_secs(2);
    let app = app_with(test, move |b| blocking(b.oauth(config))).await;
    (app, idp)
}

/// A whole OAuth browser sign-in as `person`; the callback's answer.
async fn oauth_sign_in(app: &TestApp, idp: &FakeIdp, person: Person) -> Resp {
    idp.sign_in_as(person);
    let r = app.send(Req::get("/oauth/oidc/authorize")).await;
    assert_eq!(r.status, 307, "authorize: {:?}", r.json);
    let cookie = r.cookies()["oauth_state"].0.clone();
    let at = r.headers["location"].to_str().unwrap().to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let back = http.get(&at).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let back = back.headers()["location"].to_str().unwrap().to_owned();
    let path = back
        .strip_prefix("http://127.0.0.1:8000")
        .unwrap()
        .to_owned();
    app.send(Req::get(&path).header("cookie", format!("oauth_state={cookie}")))
        .await
}

#[tokio::test]
async fn an_oauth_sign_up_with_a_disposable_address_creates_and_links_nothing() {
    let (app, idp) = oauth_app("abuse_oauth").await;
    existing(&app, "bob@mailinator.com", "bob").await;
    let free = oauth_sign_in(&app, &idp, Person::verified("sub-1", "new@mailinator.com")).await;
    let taken = oauth_sign_in(&app, &idp, Person::verified("sub-2", "bob@mailinator.com")).await;
    assert_eq!(free.status, 422, "{:?}", free.json);
    assert_eq!(free.json, disposable_body("email"));
    assert_eq!(
        free.body, taken.body,
        "the same answer for an existing account"
    );
    assert!(!free.cookies().contains_key("session_id"));
    assert!(!exists(&app, "new@mailinator.com").await);
    // An ordinary address signs up.
    let ok = oauth_sign_in(&app, &idp, Person::verified("sub-3", "ann@example.com")).await;
    assert_eq!(ok.status, 307, "{:?}", ok.json);
    assert!(exists(&app, "ann@example.com").await);
}

#[tokio::test]
async fn a_passwordless_sign_up_with_a_disposable_address_is_refused_alike_for_every_address() {
    let outbox = outbox_path("abuse_otp");
    let path = outbox.clone();
    let app = app_with("abuse_otp", move |b| {
        blocking(with_outbox(b, &path)).passwordless(PasswordlessConfig {
            create_accounts: true,
            answer_after: Duration::from_millis(10),
            ..PasswordlessConfig::new(FRONTEND)
        })
    })
    .await;
    existing(&app, "bob@mailinator.com", "bob").await;
    let ask = |email: &str| Req::post("/otp/request").json(json!({ "email": email }));
    let taken = app.send(ask("bob@mailinator.com")).await;
    let free = app.send(ask("new@sub.mailinator.com")).await;
    assert_eq!(taken.status, 422, "{:?}", taken.json);
    assert_eq!(taken.json, disposable_body("email"));
    assert_eq!(taken.body, free.body);
    assert!(
        crudauth_tests::http::mails(&app.auth, &outbox)
            .await
            .is_empty(),
        "no code sent"
    );
    assert_eq!(app.send(ask("ann@example.com")).await.status, 200);
}

#[tokio::test]
async fn without_passwordless_sign_up_a_disposable_address_gets_the_uniform_answer() {
    let app = app_with("abuse_otp_no_signup", move |b| {
        blocking(with_outbox(b, &outbox_path("abuse_otp_no_signup"))).passwordless(
            PasswordlessConfig {
                answer_after: Duration::from_millis(10),
                ..PasswordlessConfig::new(FRONTEND)
            },
        )
    })
    .await;
    existing(&app, "bob@mailinator.com", "bob").await;
    let r = app
        .send(Req::post("/otp/request").json(json!({ "email": "bob@mailinator.com" })))
        .await;
    assert_eq!(
        r.status, 200,
        "an existing account still signs in: {:?}",
        r.json
    );
}
