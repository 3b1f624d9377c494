//! Passwordless sign-in over the real router: email codes and magic links (the outbox
//! carries them), SMS codes over a delivery channel, and the attacks: guessing, replay,
//! races, a replaced code, another browser, enumeration by answer, hostile input.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crudauth::delivery::{Delivery, DeliveryChannel, DeliveryError};
use crudauth::passwordless::PasswordlessConfig;
use crudauth::{CrudAuthBuilder, LockoutConfig};
use crudauth_tests::http::{
    FRONTEND, Req, Resp, Session, TestApp, User, app_with, mails, outbox_path, with_outbox,
};
use serde_json::{Value, json};

const PW: &str = "a long password 1";

struct App {
    app: TestApp,
    outbox: PathBuf,
    texts: Arc<Mutex<Vec<Delivery>>>,
}

/// An SMS gateway for the tests: keeps every text message.
struct Texts(Arc<Mutex<Vec<Delivery>>>);

#[async_trait::async_trait]
impl DeliveryChannel for Texts {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        if delivery.medium == crudauth::delivery::Medium::Sms {
            self.0.lock().unwrap().push(delivery.clone());
        }
        Ok(())
    }
}

async fn setup_with(
    test: &str,
    config: impl FnOnce(PasswordlessConfig) -> PasswordlessConfig,
    more: impl FnOnce(CrudAuthBuilder<User>) -> CrudAuthBuilder<User>,
) -> App {
    let outbox = outbox_path(test);
    let texts = Arc::new(Mutex::new(Vec::new()));
    let channel = Texts(texts.clone());
    let config = config(PasswordlessConfig::new(FRONTEND));
    let path = outbox.clone();
    let app = app_with(test, move |b| {
        more(
            with_outbox(b, &path)
                .delivery_channel(Arc::new(channel))
                .passwordless(config),
        )
    })
    .await;
    App { app, outbox, texts }
}

async fn setup(test: &str) -> App {
    setup_with(test, |c| c, |b| b).await
}

impl App {
    async fn send(&self, req: Req) -> Resp {
        self.app.send(req).await
    }

    async fn request(&self, body: Value) -> Resp {
        let r = self.send(Req::post("/otp/request").json(body)).await;
        self.app.auth.background().flush().await;
        r
    }

    /// The last sign-in mail: (code, link token).
    async fn last_mail(&self) -> Option<(String, Option<String>)> {
        let all = mails(&self.app.auth, &self.outbox).await;
        let mail = all.iter().rev().find(|m| m["kind"] == "sign_in_code")?;
        let code = mail["code"].as_str()?.to_owned();
        let token = mail["link"]
            .as_str()
            .and_then(|l| l.split_once("?token=").map(|(_, t)| t.to_owned()));
        Some((code, token))
    }

    async fn mail_count(&self) -> usize {
        mails(&self.app.auth, &self.outbox)
            .await
            .iter()
            .filter(|m| m["kind"] == "sign_in_code")
            .count()
    }

    async fn verify(&self, email: &str, code: &str) -> Resp {
        self.send(Req::post("/otp/verify").json(json!({ "email": email, "code": code })))
            .await
    }

    async fn link(&self, token: &str) -> Resp {
        self.send(Req::post("/magic-link/verify").json(json!({ "token": token })))
            .await
    }

    async fn update(&self, name: &str, update: crudauth::user::UserUpdate) {
        let repo = self.app.auth.repo();
        let user = repo.find_by_login(name).await.unwrap().unwrap();
        let id = crudauth::UserRecord::user_id(&user);
        repo.update(&id, update).await.unwrap();
    }

    /// The codes texted to `phone`, oldest first.
    fn texts_to(&self, phone: &str) -> Vec<String> {
        let texts = self.texts.lock().unwrap();
        texts
            .iter()
            .filter(|d| d.recipient == phone)
            .map(|d| d.code.clone().expect("a code"))
            .collect()
    }

    async fn member(&self, name: &str) {
        self.app
            .register(&format!("{name}@example.com"), name, PW)
            .await;
    }
}

fn session_of(r: &Resp) -> Session {
    let cookies = r.cookies();
    Session {
        id: cookies["session_id"].0.clone(),
        csrf: cookies["csrf_token"].0.clone(),
    }
}

fn other_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn an_emailed_code_signs_in_and_the_session_says_how() {
    let app = setup("pl_code").await;
    app.member("ann").await;
    let r = app.request(json!({ "email": "Ann@Example.com" })).await;
    assert_eq!(r.status, 200);
    let (code, token) = app.last_mail().await.expect("a sign-in mail");
    assert_eq!(code.len(), 6);
    assert!(token.is_some(), "an email carries a magic link");
    let r = app.verify("ann@example.com", &code).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["username"], "ann");
    let s = session_of(&r);
    let r = app.send(Req::get("/sessions").session(&s)).await;
    let current = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(
        (current["login_type"].as_str(), current["provider"].as_str()),
        (Some("otp"), Some("email"))
    );
    // Single use.
    assert_eq!(app.verify("ann@example.com", &code).await.status, 401);
}

#[tokio::test]
async fn the_request_answers_alike_for_every_address_and_sends_only_to_accounts() {
    let app = setup("pl_uniform").await;
    app.member("ann").await;
    let known = app.request(json!({ "email": "ann@example.com" })).await;
    let unknown = app.request(json!({ "email": "nobody@example.com" })).await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.json, unknown.json);
    assert_eq!(
        app.mail_count().await,
        1,
        "nothing to an address without an account"
    );
    let r = app.verify("nobody@example.com", "123456").await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (401, "Invalid or expired code")
    );
}

#[tokio::test]
async fn a_code_dies_after_five_wrong_attempts() {
    let app = setup_with(
        "pl_attempts",
        |c| c,
        |b| {
            b.lockout(LockoutConfig {
                max_attempts: 50,
                ip_max_attempts: 100,
                ..LockoutConfig::default()
            })
        },
    )
    .await;
    app.member("ann").await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, token) = app.last_mail().await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            app.verify("ann@example.com", &other_code(&code))
                .await
                .status,
            401
        );
    }
    assert_eq!(
        app.verify("ann@example.com", &code).await.status,
        401,
        "dead after 5"
    );
    assert_eq!(
        app.link(&token.unwrap()).await.status,
        400,
        "its link died with it"
    );
}

#[tokio::test]
async fn wrong_codes_count_in_the_login_lockout() {
    let app = setup("pl_lockout").await;
    app.member("ann").await;
    for _ in 0..2 {
        app.request(json!({ "email": "ann@example.com" })).await;
        let (code, _) = app.last_mail().await.unwrap();
        for _ in 0..3 {
            let status = app
                .verify("ann@example.com", &other_code(&code))
                .await
                .status;
            if status == 429 {
                return;
            }
            assert_eq!(status, 401);
        }
    }
    let r = app.verify("ann@example.com", "000000").await;
    assert_eq!(r.status, 429, "{:?}", r.json);
}

#[tokio::test]
async fn a_new_request_replaces_the_old_code_and_its_link() {
    let app = setup("pl_replace").await;
    app.member("ann").await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (old_code, old_token) = app.last_mail().await.unwrap();
    app.request(json!({ "email": "ann@example.com" })).await;
    let (new_code, _) = app.last_mail().await.unwrap();
    if old_code != new_code {
        assert_eq!(app.verify("ann@example.com", &old_code).await.status, 401);
    }
    assert_eq!(app.link(&old_token.unwrap()).await.status, 400);
    assert_eq!(app.verify("ann@example.com", &new_code).await.status, 200);
}

#[tokio::test]
async fn concurrent_verifies_of_one_code_sign_in_once() {
    let app = setup("pl_race").await;
    app.member("ann").await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, token) = app.last_mail().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let router = app.app.app.clone();
        let body = if i % 2 == 0 {
            (
                "/otp/verify",
                json!({ "email": "ann@example.com", "code": code }),
            )
        } else {
            ("/magic-link/verify", json!({ "token": token }))
        };
        tasks.push(tokio::spawn(async move {
            crudauth_tests::http::send(&router, Req::post(body.0).json(body.1))
                .await
                .status
                .as_u16()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap() == 200);
    }
    assert_eq!(won, 1, "a code and its link are one credential");
}

#[tokio::test]
async fn a_magic_link_signs_in_once_by_post_or_get() {
    let app = setup("pl_link").await;
    app.member("ann").await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (_, token) = app.last_mail().await.unwrap();
    let token = token.unwrap();
    let mail = mails(&app.app.auth, &app.outbox).await;
    let link = mail.last().unwrap()["link"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{FRONTEND}/magic-link?token=")),
        "{link}"
    );
    let r = app.link(&token).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(r.cookies().contains_key("session_id"));
    assert_eq!(app.link(&token).await.status, 400, "single use");
    app.request(json!({ "email": "ann@example.com" })).await;
    let (_, token) = app.last_mail().await.unwrap();
    let r = app
        .send(Req::get(&format!(
            "/magic-link/verify?token={}&response=token",
            token.unwrap()
        )))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(r.json["access_token"].is_string());
    for bad in ["", "x", "not a token!", &"a".repeat(500)] {
        let r = app.link(bad).await;
        assert_eq!(r.status, 400, "{bad:?}");
    }
    assert_eq!(app.send(Req::get("/magic-link/verify")).await.status, 422);
}

#[tokio::test]
async fn in_same_browser_mode_a_link_opens_only_where_it_was_asked_for() {
    let app = setup_with(
        "pl_browser",
        |c| PasswordlessConfig {
            same_browser: true,
            ..c
        },
        |b| b,
    )
    .await;
    app.member("ann").await;
    let r = app.request(json!({ "email": "ann@example.com" })).await;
    let (name, (nonce, full)) = r
        .cookies()
        .into_iter()
        .find(|(k, _)| k.ends_with("otp_browser"))
        .expect("the browser cookie");
    assert!(
        full.contains("HttpOnly") && full.contains("SameSite=Lax"),
        "{full}"
    );
    let (_, token) = app.last_mail().await.unwrap();
    let token = token.unwrap();
    let r = app.link(&token).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "Open the link in the browser that asked for it.")
    );
    let wrong = Req::post("/magic-link/verify")
        .header("cookie", format!("{name}=not-the-nonce"))
        .json(json!({ "token": token }));
    assert_eq!(app.send(wrong).await.status, 400);
    // Not spent by the wrong browsers: the right one signs in.
    let right = Req::post("/magic-link/verify")
        .header("cookie", format!("{name}={nonce}"))
        .json(json!({ "token": token }));
    assert_eq!(app.send(right).await.status, 200);
}

#[tokio::test]
async fn sign_up_is_off_by_default_and_on_creates_a_verified_account_unless_vetoed() {
    let app = setup_with(
        "pl_signup",
        |c| PasswordlessConfig {
            create_accounts: true,
            ..c
        },
        |b| {
            b.on_before_register(|new, _| async move {
                if new
                    .email
                    .as_deref()
                    .is_some_and(|e| e.ends_with("@blocked.example"))
                {
                    Err(crudauth::Veto::new("blocked domain"))
                } else {
                    Ok(())
                }
            })
        },
    )
    .await;
    app.request(json!({ "email": "New.Person@Example.com" }))
        .await;
    let (code, _) = app.last_mail().await.expect("a code for a new address");
    let r = app.verify("new.person@example.com", &code).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let user = app
        .app
        .auth
        .repo()
        .find_by_login("new.person@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.email_verified);
    assert!(user.username.starts_with("new_person"), "{}", user.username);
    let r = app
        .send(Req::post("/login").form(&[("username", "new.person@example.com"), ("password", "")]))
        .await;
    assert_ne!(r.status, 200, "no usable password");
    app.request(json!({ "email": "x@blocked.example" })).await;
    let (code, _) = app.last_mail().await.unwrap();
    let r = app.verify("x@blocked.example", &code).await;
    assert_eq!(r.status, 403);
    assert!(
        app.app
            .auth
            .repo()
            .find_by_login("x@blocked.example")
            .await
            .unwrap()
            .is_none()
    );
    // Off (the default): no code to a new address, no account.
    let off = setup("pl_signup_off").await;
    off.request(json!({ "email": "new@example.com" })).await;
    assert_eq!(off.mail_count().await, 0);
}

#[tokio::test]
async fn a_code_verifies_the_address_and_can_answer_tokens() {
    let app = setup("pl_verified").await;
    app.member("ann").await;
    let before = app
        .app
        .auth
        .repo()
        .find_by_login("ann")
        .await
        .unwrap()
        .unwrap();
    assert!(!before.email_verified);
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, _) = app.last_mail().await.unwrap();
    let r = app
        .send(
            Req::post("/otp/verify")
                .json(json!({ "email": "ann@example.com", "code": code, "response": "token" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access = r.json["access_token"].as_str().unwrap();
    assert_eq!(
        app.send(Req::get("/whoami").bearer(access)).await.status,
        200
    );
    let after = app
        .app
        .auth
        .repo()
        .find_by_login("ann")
        .await
        .unwrap()
        .unwrap();
    assert!(after.email_verified);
}

#[tokio::test]
async fn an_account_with_a_second_factor_gets_its_challenge() {
    let app = setup_with(
        "pl_mfa",
        |c| c,
        |b| b.mfa(crudauth::mfa::MfaConfig::new("test")),
    )
    .await;
    app.member("ann").await;
    app.app.verify_email("ann").await;
    let s = app.app.login("ann", PW).await;
    let secret = app.app.enrol_totp(&s, PW).await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, _) = app.last_mail().await.unwrap();
    let r = app.verify("ann@example.com", &code).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["mfa_required"], true, "{:?}", r.json);
    assert!(!r.cookies().contains_key("session_id"));
    let challenge = r.json["challenge"].as_str().unwrap();
    let totp = crudauth_tests::totp_code(&secret, crudauth_tests::unix_now());
    let r = app
        .send(Req::post("/mfa/verify").json(json!({ "challenge": challenge, "code": totp })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(r.cookies().contains_key("session_id"));
}

#[tokio::test]
async fn a_code_dies_with_a_deactivation_or_a_sign_out_everywhere() {
    let app = setup("pl_epoch").await;
    app.member("ann").await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, _) = app.last_mail().await.unwrap();
    let s = app.app.login("ann", PW).await;
    assert_eq!(
        app.send(Req::post("/logout-all").session(&s)).await.status,
        200
    );
    assert_eq!(app.verify("ann@example.com", &code).await.status, 401);
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, token) = app.last_mail().await.unwrap();
    let user = app
        .app
        .auth
        .repo()
        .find_by_login("ann")
        .await
        .unwrap()
        .unwrap();
    let update = crudauth::user::UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    app.app
        .auth
        .repo()
        .update(&crudauth::UserRecord::user_id(&user), update)
        .await
        .unwrap();
    // The link first (a right credential for a deactivated account), then the code.
    assert_eq!(app.link(&token.unwrap()).await.status, 400);
    assert_eq!(app.verify("ann@example.com", &code).await.status, 401);
}

#[tokio::test]
async fn malformed_and_hostile_bodies_get_clear_errors() {
    let app = setup("pl_bodies").await;
    for body in [
        json!({}),
        json!({ "email": "not an address" }),
        json!({ "email": format!("{}@example.com", "a".repeat(400)) }),
        json!({ "email": "ann@example.com", "phone": "+15551234567" }),
        json!({ "email": 7 }),
    ] {
        let r = app.send(Req::post("/otp/request").json(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.json);
    }
    for code in ["12345", "1234567", "12345a", "１２３４５６", " ", ""] {
        let r = app.verify("ann@example.com", code).await;
        assert_eq!(r.status, 422, "{code:?}");
    }
    let r = app
        .send(
            Req::post("/otp/verify").json(
                json!({ "email": "ann@example.com", "code": "123456", "response": "pigeon" }),
            ),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .send(Req::post("/otp/request").raw("application/json", "{"))
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn a_cross_site_verify_is_refused_before_the_code_is_spent() {
    let app = setup("pl_cross_site").await;
    app.member("ann").await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, _) = app.last_mail().await.unwrap();
    let r = app
        .send(
            Req::post("/otp/verify")
                .header("sec-fetch-site", "cross-site")
                .json(json!({ "email": "ann@example.com", "code": code })),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.verify("ann@example.com", &code).await.status, 200);
}

#[tokio::test]
async fn the_request_route_is_rate_limited_per_client() {
    let app = setup("pl_rate").await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let r = app
            .request(json!({ "email": format!("u{i}@example.com") }))
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_unverified_account_is_claimed_by_the_owner_of_its_address() {
    let app = setup_with(
        "pl_claim",
        |c| c,
        |b| b.mfa(crudauth::mfa::MfaConfig::new("test")),
    )
    .await;
    // A squatter registers the victim's address with a password of their own, a second
    // factor of their own, and keeps a session open.
    app.app.register("victim@example.com", "squatter", PW).await;
    let squatter = app.app.login("squatter", PW).await;
    let secret = app.app.enrol_totp(&squatter, PW).await;

    let r = app
        .send(Req::post("/token").form(&[("username", "squatter"), ("password", PW)]))
        .await;
    assert_eq!(r.json["mfa_required"], true);
    let totp = crudauth_tests::totp_code(&secret, crudauth_tests::unix_now());
    let r = app
        .send(
            Req::post("/mfa/verify")
                .json(json!({ "challenge": r.json["challenge"], "code": totp })),
        )
        .await;
    let access = r.json["access_token"].as_str().unwrap().to_owned();
    let refresh = r.json["refresh_token"].as_str().unwrap().to_owned();
    // The owner of the address signs in with a code sent to it.
    app.request(json!({ "email": "victim@example.com" })).await;
    let (code, _) = app.last_mail().await.unwrap();
    let r = app.verify("victim@example.com", &code).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // The squatter's second factor went with the claim: no challenge, a session.
    assert_eq!(r.json.get("mfa_required"), None, "{:?}", r.json);
    assert!(r.cookies().contains_key("session_id"));
    // Whatever the squatter set up is over: password, session, tokens.
    let r = app
        .send(Req::post("/login").form(&[("username", "squatter"), ("password", PW)]))
        .await;
    assert_eq!(r.status, 401, "the squatter's password is gone");
    assert_eq!(
        app.send(Req::get("/whoami").session(&squatter))
            .await
            .status,
        401
    );
    assert_eq!(
        app.send(Req::get("/whoami").bearer(&access)).await.status,
        401
    );
    let r = app
        .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
        .await;
    assert_eq!(r.status, 401);
    let user = app
        .app
        .auth
        .repo()
        .find_by_login("victim@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.email_verified);
}

async fn with_phone(app: &App, name: &str, phone: &str) {
    app.member(name).await;
    let update = crudauth::user::UserUpdate {
        phone: Some(phone.into()),
        ..Default::default()
    };
    app.update(name, update).await;
}

#[tokio::test]
async fn a_texted_code_signs_in_by_phone_number() {
    let app = setup("pl_sms").await;
    with_phone(&app, "ann", "+15551234567").await;
    let r = app.request(json!({ "phone": "+1 (555) 123-4567" })).await;
    assert_eq!(r.status, 200);
    let codes = app.texts_to("+15551234567");
    assert_eq!(codes.len(), 1, "one text, to the stored number");
    assert_eq!(app.mail_count().await, 0, "no mail for a phone request");
    let r = app
        .send(Req::post("/otp/verify").json(json!({ "phone": "+15551234567", "code": codes[0] })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let s = session_of(&r);
    let r = app.send(Req::get("/sessions").session(&s)).await;
    let current = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(
        (current["login_type"].as_str(), current["provider"].as_str()),
        (Some("otp"), Some("sms"))
    );
    // An unknown number gets the same answer and no text.
    let unknown = app.request(json!({ "phone": "+15559999999" })).await;
    assert_eq!(
        (unknown.status, &unknown.json),
        (
            200.try_into().unwrap(),
            &json!({ "detail": "If the address can sign in, a code has been sent." })
        )
    );
    assert!(app.texts_to("+15559999999").is_empty());
}

#[tokio::test]
async fn a_code_is_bound_to_its_medium_and_address() {
    let app = setup("pl_bound").await;
    with_phone(&app, "ann", "+15551234567").await;
    with_phone(&app, "bob", "+15557654321").await;
    // A code texted to Ann's phone is no code for her email address, nor for Bob's phone.
    app.request(json!({ "phone": "+15551234567" })).await;
    let code = app.texts_to("+15551234567")[0].clone();
    assert_eq!(app.verify("ann@example.com", &code).await.status, 401);
    let r = app
        .send(Req::post("/otp/verify").json(json!({ "phone": "+15557654321", "code": code })))
        .await;
    assert_eq!(r.status, 401);
    // A code mailed to Ann is no code for her phone.
    app.request(json!({ "email": "ann@example.com" })).await;
    let (mailed, _) = app.last_mail().await.unwrap();
    let r = app
        .send(Req::post("/otp/verify").json(json!({ "phone": "+15551234567", "code": mailed })))
        .await;
    assert_eq!(r.status, 401);
    // And each still works for its own address.
    let r = app
        .send(Req::post("/otp/verify").json(json!({ "phone": "+15551234567", "code": code })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(app.verify("ann@example.com", &mailed).await.status, 200);
}

#[tokio::test]
async fn malformed_phone_numbers_are_refused() {
    let app = setup("pl_phone_bodies").await;
    for phone in [
        "5551234567",
        "+0551234567",
        "+1555abc4567",
        "++15551234567",
        "+1234567",
        "+1234567890123456",
        "＋15551234567",
        "",
    ] {
        let r = app.request(json!({ "phone": phone })).await;
        assert_eq!(r.status, 422, "{phone:?}: {:?}", r.json);
    }
    assert!(app.texts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_right_code_before_a_challenge_neither_clears_nor_counts_in_the_lockout() {
    let app = setup_with(
        "pl_mfa_lockout",
        |c| c,
        |b| b.mfa(crudauth::mfa::MfaConfig::new("test")),
    )
    .await;
    app.member("ann").await;
    app.app.verify_email("ann").await;
    let s = app.app.login("ann", PW).await;
    app.app.enrol_totp(&s, PW).await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, _) = app.last_mail().await.unwrap();
    for _ in 0..4 {
        assert_eq!(
            app.verify("ann@example.com", &other_code(&code))
                .await
                .status,
            401
        );
    }
    // The right code stops at the challenge: it is given back to the lockout, not a success
    // that would wipe the four failures.
    let r = app.verify("ann@example.com", &code).await;
    assert_eq!(r.json["mfa_required"], true, "{:?}", r.json);
    app.request(json!({ "email": "ann@example.com" })).await;
    let (code, _) = app.last_mail().await.unwrap();
    assert_eq!(
        app.verify("ann@example.com", &other_code(&code))
            .await
            .status,
        401
    );
    assert_eq!(app.verify("ann@example.com", &code).await.status, 429);
}

#[tokio::test]
async fn a_get_link_signs_a_browser_in_only_in_same_browser_mode() {
    let app = setup("pl_get").await;
    app.member("ann").await;
    app.request(json!({ "email": "ann@example.com" })).await;
    let (_, token) = app.last_mail().await.unwrap();
    let token = token.unwrap();
    let r = app
        .send(Req::get(&format!("/magic-link/verify?token={token}")))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert!(!r.cookies().contains_key("session_id"));
    // Not spent: the app's page can still post it.
    assert_eq!(app.link(&token).await.status, 200);
}

#[tokio::test]
async fn sign_up_texts_are_capped_over_all_clients() {
    let app = setup_with(
        "pl_sms_cap",
        |c| PasswordlessConfig {
            create_accounts: true,
            ..c
        },
        |b| {
            b.rate_limit(
                "otp_sms_signup",
                crudauth::RateLimit::new(2, std::time::Duration::from_secs(3600)),
            )
        },
    )
    .await;
    for (i, ip) in [[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3], [10, 0, 0, 4]]
        .iter()
        .enumerate()
    {
        let r = app
            .send(
                Req::post("/otp/request")
                    .peer(*ip)
                    .json(json!({ "phone": format!("+1555000000{i}") })),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    app.app.auth.background().flush().await;
    assert_eq!(
        app.texts.lock().unwrap().len(),
        2,
        "two texts, then the cap"
    );
}

#[tokio::test]
async fn passwordless_by_email_needs_a_writable_verified_column() {
    use crudauth_tests::models::accounts;
    let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "pl_no_verified")
        .await
        .unwrap();
    tdb.create_table(accounts::Entity).await;
    let repo = crudauth_sea::SeaUserRepository::<accounts::Model>::new(tdb.db.clone());
    let built = crudauth::CrudAuth::builder(repo)
        .secret_key(crudauth_tests::http::SECRET.to_vec())
        .session(crudauth::SessionConfig::default())
        .email_sender(Arc::new(crudauth::delivery::OutboxSender::new(
            outbox_path("pl_no_verified"),
        )))
        .passwordless(PasswordlessConfig::new(FRONTEND))
        .build();
    match built {
        Err(crudauth::ConfigError::Invalid(m)) => assert!(m.contains("email_verified"), "{m}"),
        other => panic!("built: {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_removed_phone_number_signs_nobody_in() {
    let app = setup("pl_phone_removed").await;
    with_phone(&app, "ann", "+15551234567").await;
    app.request(json!({ "phone": "+15551234567" })).await;
    let code = app.texts_to("+15551234567")[0].clone();
    let removed = crudauth::user::UserUpdate {
        phone: Some(String::new()),
        ..Default::default()
    };
    app.update("ann", removed).await;
    let user = app
        .app
        .auth
        .repo()
        .find_by_login("ann")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.phone, None);
    // The code sent before the removal dies with it, and no new one is sent.
    let r = app
        .send(Req::post("/otp/verify").json(json!({ "phone": "+15551234567", "code": code })))
        .await;
    assert_eq!(r.status, 401);
    app.request(json!({ "phone": "+15551234567" })).await;
    assert_eq!(app.texts_to("+15551234567").len(), 1);
}
