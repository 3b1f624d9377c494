//! The CAPTCHA port over real HTTP: the Turnstile, hCaptcha and reCAPTCHA v3 verifiers talk
//! to a local fake of the providers' `siteverify` endpoints
//! (`crudauth_tests::fake_captcha`), the app is the real router. Each attack is a test:
//! a missing token, a replayed one, one solved for another action or site, a low score, a
//! verifier that is down, slow, failing or talking nonsense, a stuffing run from one
//! address (with a spoofed `X-Forwarded-For`), and the secret looked for in the log.

use std::time::{Duration, Instant};

use crudauth::captcha::siteverify::{HCaptcha, RecaptchaV3, Turnstile};
use crudauth::captcha::{Captcha, CaptchaAction, CaptchaConfig};
use crudauth::{CrudAuthBuilder, LockoutConfig};
use crudauth_tests::fake_captcha::{CAPTCHA_SECRET, FakeCaptcha, Mode};
use crudauth_tests::http::{Req, Resp, TestApp, User, app_with, outbox_path, with_outbox};
use crudauth_tests::{LogCapture, global_log};
use serde_json::json;

const PW: &str = "a long password 1";

fn turnstile(fake: &FakeCaptcha) -> Turnstile {
    Turnstile::new(CAPTCHA_SECRET).verify_url(fake.url("turnstile"))
}

async fn app_guarded(
    test: &str,
    config: CaptchaConfig,
    more: impl FnOnce(CrudAuthBuilder<User>) -> CrudAuthBuilder<User>,
) -> TestApp {
    app_with(test, move |b| more(b.captcha(config))).await
}

fn register_req(email: &str, username: &str) -> Req {
    Req::post("/register").json(json!({ "email": email, "username": username, "password": PW }))
}

fn login_req(username: &str, password: &str) -> Req {
    Req::post("/login").form(&[("username", username), ("password", password)])
}

fn assert_refused(r: &Resp, detail: &str, provider: &str) {
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(r.json, json!({ "detail": detail }));
    assert_eq!(r.headers["x-captcha-required"], provider);
}

async fn exists(app: &TestApp, login: &str) -> bool {
    app.auth
        .repo()
        .find_by_login(login)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn registration_without_a_token_is_refused_and_with_one_goes_through() {
    let fake = FakeCaptcha::start().await;
    let config = CaptchaConfig::new(turnstile(&fake)).always(CaptchaAction::Register);
    let app = app_guarded("captcha_register", config, |b| b).await;

    let r = app.send(register_req("ann@example.com", "ann")).await;
    assert_refused(&r, "captcha_required", "turnstile");
    assert!(!exists(&app, "ann").await, "nothing written");
    assert!(fake.received().is_empty(), "no token, no call");

    // In the header.
    let token = fake.good("register");
    let r = app
        .send(
            register_req("ann@example.com", "ann")
                .header("x-captcha-token", &token)
                .peer([203, 0, 113, 5]),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert!(exists(&app, "ann").await);
    // The verifier got the secret, the token and the client address.
    let got = fake.received().pop().unwrap();
    assert_eq!(got["secret"], CAPTCHA_SECRET);
    assert_eq!(got["response"], token);
    assert_eq!(got["remoteip"], "203.0.113.5");

    // In the JSON body's `captcha_token`: read for the CAPTCHA only, never a column (the
    // allow-list still drops what it does not name, privileged fields included).
    let token = fake.good("register");
    let r = app
        .send(Req::post("/register").json(json!({
            "email": "bob@example.com", "username": "bob", "password": PW,
            "captcha_token": token, "is_superuser": true
        })))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let bob = app.auth.repo().find_by_login("bob").await.unwrap().unwrap();
    assert!(!bob.is_superuser);
}

#[tokio::test]
async fn a_replayed_token_is_refused() {
    let fake = FakeCaptcha::start().await;
    let config = CaptchaConfig::new(turnstile(&fake)).always(CaptchaAction::Register);
    let app = app_guarded("captcha_replay", config, |b| b).await;
    let token = fake.good("register");
    let r = app
        .send(register_req("ann@example.com", "ann").header("x-captcha-token", &token))
        .await;
    assert_eq!(r.status, 202);
    let r = app
        .send(register_req("bob@example.com", "bob").header("x-captcha-token", &token))
        .await;
    assert_refused(&r, "captcha_failed", "turnstile");
    assert!(!exists(&app, "bob").await);
    // A token nobody issued, and an absurdly long one (never sent on).
    let r = app
        .send(register_req("bob@example.com", "bob").header("x-captcha-token", "forged"))
        .await;
    assert_refused(&r, "captcha_failed", "turnstile");
    let calls = fake.received().len();
    let r = app
        .send(register_req("bob@example.com", "bob").header("x-captcha-token", "x".repeat(9000)))
        .await;
    assert_refused(&r, "captcha_failed", "turnstile");
    assert_eq!(
        fake.received().len(),
        calls,
        "an over-long token is not sent to the verifier"
    );
}

#[tokio::test]
async fn a_turnstile_token_for_another_action_is_refused_when_actions_are_checked() {
    let fake = FakeCaptcha::start().await;
    let config =
        CaptchaConfig::new(turnstile(&fake).check_action(true)).always(CaptchaAction::Register);
    let app = app_guarded("captcha_ts_action", config, |b| b).await;
    let r = app
        .send(register_req("ann@example.com", "ann").header("x-captcha-token", fake.good("login")))
        .await;
    assert_refused(&r, "captcha_failed", "turnstile");
    let r = app
        .send(
            register_req("ann@example.com", "ann").header("x-captcha-token", fake.good("register")),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
}

#[tokio::test]
async fn recaptcha_checks_the_action_and_the_score() {
    let fake = FakeCaptcha::start().await;
    let verifier = RecaptchaV3::new(CAPTCHA_SECRET)
        .verify_url(fake.url("recaptcha"))
        .min_score(0.5);
    let config = CaptchaConfig::new(verifier).always(CaptchaAction::Register);
    let app = app_guarded("captcha_recaptcha", config, |b| b).await;
    for (token, why) in [
        (fake.token("login", 0.9, "app.example"), "another action"),
        (fake.token("register", 0.3, "app.example"), "a low score"),
    ] {
        let r = app
            .send(register_req("ann@example.com", "ann").header("x-captcha-token", token))
            .await;
        assert_refused(&r, "captcha_failed", "recaptcha");
        assert!(!exists(&app, "ann").await, "{why}");
    }
    // The widget's own form field name is read as well (as an HTML form posts it).
    let token = fake.token("register", 0.5, "app.example");
    let r = app
        .send(Req::post("/register").json(json!({
            "email": "ann@example.com", "username": "ann", "password": PW,
            "g-recaptcha-response": token
        })))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
}

#[tokio::test]
async fn hcaptcha_refuses_a_token_solved_on_another_site() {
    let fake = FakeCaptcha::start().await;
    let verifier = HCaptcha::new(CAPTCHA_SECRET)
        .verify_url(fake.url("hcaptcha"))
        .hostname("app.example")
        .sitekey("site-key-1");
    let config = CaptchaConfig::new(verifier).always(CaptchaAction::Login);
    let app = app_guarded("captcha_hcaptcha", config, |b| b).await;
    app.register("ann@example.com", "ann", PW).await;
    let form = |token: &str| {
        Req::post("/login").form(&[
            ("username", "ann"),
            ("password", PW),
            ("h-captcha-response", token),
        ])
    };
    let r = app
        .send(form(&fake.token("login", 1.0, "evil.example")))
        .await;
    assert_refused(&r, "captcha_failed", "hcaptcha");
    assert!(!r.cookies().contains_key("session_id"));
    let r = app
        .send(form(&fake.token("login", 1.0, "APP.example")))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(fake.received().pop().unwrap()["sitekey"], "site-key-1");
}

#[tokio::test]
async fn the_token_is_checked_before_the_password_or_the_lockout() {
    let fake = FakeCaptcha::start().await;
    let config = CaptchaConfig::new(turnstile(&fake)).always(CaptchaAction::Login);
    let app = app_guarded("captcha_before_password", config, |b| b).await;
    app.register("ann@example.com", "ann", PW).await;
    // Ten wrong passwords without a token: refused before the password is looked at, so
    // nothing counts toward the lockout (5 would lock).
    for _ in 0..10 {
        let r = app.send(login_req("ann", "wrong password")).await;
        assert_refused(&r, "captcha_required", "turnstile");
    }
    let r = app.send(login_req("ann", PW)).await;
    assert_refused(&r, "captcha_required", "turnstile");
    let r = app
        .send(login_req("ann", PW).header("x-captcha-token", fake.good("login")))
        .await;
    assert_eq!(r.status, 200, "not locked: {:?}", r.json);
    // /token is guarded alike.
    let r = app
        .send(Req::post("/token").form(&[("username", "ann"), ("password", PW)]))
        .await;
    assert_refused(&r, "captcha_required", "turnstile");
}

#[tokio::test]
async fn the_password_reset_request_is_guarded() {
    let fake = FakeCaptcha::start().await;
    let config = CaptchaConfig::new(turnstile(&fake)).always(CaptchaAction::PasswordReset);
    let outbox = outbox_path("captcha_reset");
    let path = outbox.clone();
    let app = app_guarded("captcha_reset", config, move |b| with_outbox(b, &path)).await;
    app.register("ann@example.com", "ann", PW).await;
    let ask = || Req::post("/password/reset-request").json(json!({ "email": "ann@example.com" }));
    let r = app.send(ask()).await;
    assert_refused(&r, "captcha_required", "turnstile");
    let r = app
        .send(ask().header("x-captcha-token", fake.good("password_reset")))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let mails = crudauth_tests::http::mails(&app.auth, &outbox).await;
    assert!(
        mails.iter().any(|m| m["kind"] == "reset_password"),
        "{mails:?}"
    );
}

/// A port nothing listens on.
async fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/siteverify")
}

#[tokio::test]
async fn an_unreachable_slow_or_failing_verifier_is_a_503_and_a_garbled_one_a_refusal() {
    let fake = FakeCaptcha::start().await;
    let quick = |url: String| {
        Turnstile::new(CAPTCHA_SECRET)
            .verify_url(url)
            .timeouts(Duration::from_millis(300), Duration::from_millis(500))
    };
    // Closed port.
    let config = CaptchaConfig::new(quick(closed_port().await)).always(CaptchaAction::Register);
    let app = app_guarded("captcha_closed", config, |b| b).await;
    let r = app
        .send(register_req("ann@example.com", "ann").header("x-captcha-token", "t"))
        .await;
    assert_eq!(r.status, 503, "{:?}", r.json);
    assert!(!exists(&app, "ann").await);

    // Slow, 500: one app, the fake switched between modes.
    let config = CaptchaConfig::new(quick(fake.url("turnstile"))).always(CaptchaAction::Register);
    let app = app_guarded("captcha_down", config, |b| b).await;
    for mode in [Mode::Slow(Duration::from_secs(3)), Mode::Fails] {
        fake.set_mode(mode);
        let started = Instant::now();
        let r = app
            .send(
                register_req("ann@example.com", "ann")
                    .header("x-captcha-token", fake.good("register")),
            )
            .await;
        assert_eq!(r.status, 503, "{mode:?}: {:?}", r.json);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{mode:?}: bounded by the timeout"
        );
        assert!(!exists(&app, "ann").await, "{mode:?}");
    }
    // An answer that is not the provider's (a 429, a page that is no JSON) is a refusal.
    for mode in [Mode::Garbage, Mode::TooMany] {
        fake.set_mode(mode);
        let r = app
            .send(
                register_req("ann@example.com", "ann")
                    .header("x-captcha-token", fake.good("register")),
            )
            .await;
        assert_refused(&r, "captcha_failed", "turnstile");
        assert!(!exists(&app, "ann").await, "{mode:?}");
    }
    // A verifier that refuses our secret is our fault: 503, not the user's.
    fake.set_mode(Mode::Normal);
    let wrong = Turnstile::new("not-the-secret").verify_url(fake.url("turnstile"));
    let config = CaptchaConfig::new(wrong).always(CaptchaAction::Register);
    let app = app_guarded("captcha_bad_secret", config, |b| b).await;
    let r = app
        .send(
            register_req("ann@example.com", "ann").header("x-captcha-token", fake.good("register")),
        )
        .await;
    assert_eq!(r.status, 503, "{:?}", r.json);
}

#[tokio::test]
async fn fail_open_lets_the_request_through_with_a_warning() {
    let log = LogCapture::start();
    let verifier = Turnstile::new(CAPTCHA_SECRET).verify_url(closed_port().await);
    let config = CaptchaConfig::new(verifier)
        .always(CaptchaAction::Register)
        .fail_open(true);
    let app = app_guarded("captcha_fail_open", config, |b| b).await;
    let r = app
        .send(register_req("ann@example.com", "ann").header("x-captcha-token", "t"))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert!(exists(&app, "ann").await);
    let text = log.text();
    assert!(text.contains("fail open"), "{text}");
    // Fail open never means no token at all.
    let r = app.send(register_req("bob@example.com", "bob")).await;
    assert_refused(&r, "captcha_required", "turnstile");

    // Nor does it let through what an attacker can cause (a flooded provider's 429, an odd
    // answer), a secret the provider refuses, or a secret sent over plain HTTP.
    let fake = FakeCaptcha::start().await;
    let config = CaptchaConfig::new(turnstile(&fake))
        .always(CaptchaAction::Register)
        .fail_open(true);
    let app = app_guarded("captcha_fail_open_odd", config, |b| b).await;
    for mode in [Mode::TooMany, Mode::Garbage] {
        fake.set_mode(mode);
        let r = app
            .send(
                register_req("cy@example.com", "cy")
                    .header("x-captcha-token", fake.good("register")),
            )
            .await;
        assert_refused(&r, "captcha_failed", "turnstile");
    }
    fake.set_mode(Mode::Normal);
    for (verifier, name) in [
        (
            Turnstile::new("not-the-secret").verify_url(fake.url("turnstile")),
            "wrong secret",
        ),
        (
            Turnstile::new(CAPTCHA_SECRET).verify_url("http://203.0.113.9/siteverify"),
            "plain http",
        ),
    ] {
        let config = CaptchaConfig::new(verifier)
            .always(CaptchaAction::Register)
            .fail_open(true);
        let app = app_guarded("captcha_fail_open_misconfigured", config, |b| b).await;
        let r = app
            .send(
                register_req("dee@example.com", "dee")
                    .header("x-captcha-token", fake.good("register")),
            )
            .await;
        assert_eq!(r.status, 503, "{name}: {:?}", r.json);
        assert!(!exists(&app, "dee").await, "{name}");
    }
}

#[tokio::test]
async fn a_parallel_stuffing_burst_from_one_address_is_asked_after_n() {
    let fake = FakeCaptcha::start().await;
    let config =
        CaptchaConfig::new(turnstile(&fake)).after_failed_logins(3, Duration::from_secs(600));
    let app = app_guarded("captcha_burst", config, |b| {
        b.lockout(LockoutConfig {
            max_attempts: 100,
            ip_max_attempts: 100,
            account_max_attempts: 100,
            ..LockoutConfig::default()
        })
    })
    .await;
    app.register("ann@example.com", "ann", PW).await;
    let attacker = [198, 51, 100, 8];
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let router = app.app.clone();
            tokio::spawn(async move {
                let req = login_req("ann", &format!("guess {i}")).peer(attacker);
                crudauth_tests::http::send(&router, req)
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    let mut asked = 0;
    let mut guessed = 0;
    for task in burst {
        match task.await.unwrap() {
            403 => asked += 1,
            401 => guessed += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (guessed, asked),
        (3, 17),
        "only the first three attempts of a parallel burst reach a password check"
    );
}

#[tokio::test]
async fn a_client_sending_junk_tokens_runs_out_of_verifications() {
    let fake = FakeCaptcha::start().await;
    let config = CaptchaConfig::new(turnstile(&fake))
        .always(CaptchaAction::Register)
        .verifications(5, Duration::from_secs(60), 8);
    let app = app_guarded("captcha_budget", config, |b| b).await;
    let junk = || register_req("eve@example.com", "eve").header("x-captcha-token", "junk");
    for _ in 0..5 {
        let r = app.send(junk().peer([203, 0, 113, 50])).await;
        assert_refused(&r, "captcha_failed", "turnstile");
    }
    let before = fake.received().len();
    let r = app.send(junk().peer([203, 0, 113, 50])).await;
    assert_eq!(r.status, 429, "{:?}", r.json);
    assert_eq!(
        fake.received().len(),
        before,
        "no call to the provider once spent"
    );
    // Another client still has its own budget.
    let r = app
        .send(
            register_req("fay@example.com", "fay")
                .header("x-captcha-token", fake.good("register"))
                .peer([192, 0, 2, 60]),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
}

#[tokio::test]
async fn a_route_field_cannot_be_the_token_field() {
    let fake = FakeCaptcha::start().await;
    for field in ["password", "username", "Email", "new_password"] {
        let config = CaptchaConfig::new(turnstile(&fake))
            .always(CaptchaAction::Login)
            .field_name(field);
        let built = app_with_result(config).await;
        assert!(
            built.is_err(),
            "{field}: a password must never reach the provider"
        );
    }
}

async fn app_with_result(
    config: CaptchaConfig,
) -> Result<crudauth::CrudAuth<User>, crudauth::ConfigError> {
    let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "captcha_field_refused")
        .await
        .expect("sqlite");
    let repo = crudauth_sea::SeaUserRepository::<User>::new(tdb.db.clone());
    let built = crudauth_tests::http::default_builder(repo)
        .captcha(config)
        .build();
    tdb.cleanup().await;
    built
}

#[tokio::test]
async fn the_secret_goes_to_the_verifier_and_nowhere_else() {
    let fake = FakeCaptcha::start().await;
    let _ = global_log();
    let log = LogCapture::start();
    let ts = turnstile(&fake);
    let hc = HCaptcha::new(CAPTCHA_SECRET).verify_url(fake.url("hcaptcha"));
    let rc = RecaptchaV3::new(CAPTCHA_SECRET).verify_url(fake.url("recaptcha"));
    for debug in [format!("{ts:?}"), format!("{hc:?}"), format!("{rc:?}")] {
        assert!(!debug.contains(CAPTCHA_SECRET), "{debug}");
    }
    let config = CaptchaConfig::new(ts).always(CaptchaAction::Register);
    assert!(!format!("{config:?}").contains(CAPTCHA_SECRET));
    let app = app_guarded("captcha_secret", config, |b| b).await;
    // A refusal, a pass, and an outage: every log line they write.
    app.send(register_req("a@example.com", "a").header("x-captcha-token", "forged"))
        .await;
    app.send(register_req("a@example.com", "a").header("x-captcha-token", fake.good("register")))
        .await;
    fake.set_mode(Mode::Fails);
    app.send(register_req("b@example.com", "b").header("x-captcha-token", fake.good("register")))
        .await;
    assert!(
        fake.received()
            .iter()
            .all(|f| f["secret"] == CAPTCHA_SECRET),
        "sent every time"
    );
    let text = log.text();
    assert!(
        text.contains("CAPTCHA verifier unavailable"),
        "the outage is logged: {text}"
    );
    assert!(!text.contains(CAPTCHA_SECRET), "{text}");
    assert!(!global_log().contains(CAPTCHA_SECRET));
    // The verifiers work directly too (the port, for an app's own routes).
    fake.set_mode(Mode::Normal);
    let direct = turnstile(&fake);
    let verdict = direct
        .verify(&fake.good("login"), CaptchaAction::Login, None)
        .await
        .unwrap();
    assert!(verdict.passed());
}

#[tokio::test]
async fn after_n_failed_logins_from_an_address_every_login_from_it_is_asked() {
    let fake = FakeCaptcha::start().await;
    let config =
        CaptchaConfig::new(turnstile(&fake)).after_failed_logins(3, Duration::from_secs(600));
    // A generous lockout, so the CAPTCHA rule is what answers.
    let app = app_guarded("captcha_after_n", config, |b| {
        b.lockout(LockoutConfig {
            max_attempts: 50,
            ip_max_attempts: 50,
            account_max_attempts: 50,
            ..LockoutConfig::default()
        })
    })
    .await;
    app.register("ann@example.com", "ann", PW).await;
    let attacker = [198, 51, 100, 7];
    // A real user's first logins are never asked.
    let r = app.send(login_req("ann", PW).peer(attacker)).await;
    assert_eq!(r.status, 200);
    for _ in 0..3 {
        let r = app
            .send(login_req("ann", "wrong password").peer(attacker))
            .await;
        assert_eq!(r.status, 401, "{:?}", r.json);
    }
    // From now on that address is always asked, even with the right password.
    let r = app.send(login_req("ann", PW).peer(attacker)).await;
    assert_refused(&r, "captcha_required", "turnstile");
    let r = app
        .send(
            Req::post("/token")
                .form(&[("username", "ann"), ("password", PW)])
                .peer(attacker),
        )
        .await;
    assert_refused(&r, "captcha_required", "turnstile");
    // A spoofed X-Forwarded-For does not make it another client (no trusted proxies).
    let r = app
        .send(
            login_req("ann", PW)
                .peer(attacker)
                .header("x-forwarded-for", "192.0.2.99"),
        )
        .await;
    assert_refused(&r, "captcha_required", "turnstile");
    // A solved CAPTCHA signs in.
    let r = app
        .send(
            login_req("ann", PW)
                .peer(attacker)
                .header("x-captcha-token", fake.good("login")),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // Another address is not asked.
    let r = app.send(login_req("ann", PW).peer([192, 0, 2, 1])).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
}

#[tokio::test]
async fn the_builder_refuses_a_captcha_field_that_is_a_registration_column() {
    let fake = FakeCaptcha::start().await;
    let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "captcha_cfg")
        .await
        .unwrap();
    let repo = || crudauth_sea::SeaUserRepository::<User>::new(tdb.db.clone());
    let b = crudauth_tests::http::default_builder(repo())
        .register_extra_fields(["captcha_token"])
        .captcha(CaptchaConfig::new(turnstile(&fake)).always(CaptchaAction::Register));
    assert!(b.build().is_err());
    let b = crudauth_tests::http::default_builder(repo())
        .register_extra_fields(["cf-turnstile-response"])
        .captcha(CaptchaConfig::new(turnstile(&fake)).always(CaptchaAction::Register));
    assert!(b.build().is_err());
    let b = crudauth_tests::http::default_builder(repo()).captcha(
        CaptchaConfig::new(turnstile(&fake)).after_failed_logins(0, Duration::from_secs(1)),
    );
    assert!(b.build().is_err());
    let b = crudauth_tests::http::default_builder(repo()).captcha(
        CaptchaConfig::new(turnstile(&fake))
            .always(CaptchaAction::Login)
            .field_name("bad name"),
    );
    assert!(b.build().is_err());
}

/// A memory store whose CAPTCHA counter is down (every other key works).
struct CounterDown(crudauth::store::MemoryStore);

fn down(key: &str) -> Result<(), crudauth::store::StoreError> {
    if key.starts_with("captcha:") {
        Err(crudauth::store::StoreError::new("connection reset"))
    } else {
        Ok(())
    }
}

#[async_trait::async_trait]
impl crudauth::store::Store for CounterDown {
    async fn get(&self, k: &str) -> Result<Option<Vec<u8>>, crudauth::store::StoreError> {
        self.0.get(k).await
    }
    async fn set(
        &self,
        k: &str,
        v: &[u8],
        t: Option<Duration>,
    ) -> Result<(), crudauth::store::StoreError> {
        self.0.set(k, v, t).await
    }
    async fn set_if_absent(
        &self,
        k: &str,
        v: &[u8],
        t: Option<Duration>,
    ) -> Result<bool, crudauth::store::StoreError> {
        self.0.set_if_absent(k, v, t).await
    }
    async fn get_and_delete(
        &self,
        k: &str,
    ) -> Result<Option<Vec<u8>>, crudauth::store::StoreError> {
        self.0.get_and_delete(k).await
    }
    async fn compare_and_set(
        &self,
        k: &str,
        e: &[u8],
        n: &[u8],
        t: Option<Duration>,
    ) -> Result<bool, crudauth::store::StoreError> {
        self.0.compare_and_set(k, e, n, t).await
    }
    async fn delete(&self, k: &str) -> Result<bool, crudauth::store::StoreError> {
        self.0.delete(k).await
    }
    async fn incr(&self, k: &str, d: i64, t: Duration) -> Result<i64, crudauth::store::StoreError> {
        down(k)?;
        self.0.incr(k, d, t).await
    }
    async fn ttl(&self, k: &str) -> Result<Option<Duration>, crudauth::store::StoreError> {
        self.0.ttl(k).await
    }
    async fn index_add(
        &self,
        i: &str,
        m: &str,
        t: Duration,
    ) -> Result<(), crudauth::store::StoreError> {
        self.0.index_add(i, m, t).await
    }
    async fn index_remove(&self, i: &str, m: &str) -> Result<(), crudauth::store::StoreError> {
        self.0.index_remove(i, m).await
    }
    async fn index_members(&self, i: &str) -> Result<Vec<String>, crudauth::store::StoreError> {
        self.0.index_members(i).await
    }
    async fn purge_expired(&self) -> Result<u64, crudauth::store::StoreError> {
        self.0.purge_expired().await
    }
}

#[tokio::test]
async fn a_failed_login_counter_that_cannot_be_read_fails_closed() {
    let fake = FakeCaptcha::start().await;
    let config =
        CaptchaConfig::new(turnstile(&fake)).after_failed_logins(3, Duration::from_secs(60));
    let store = std::sync::Arc::new(CounterDown(crudauth::store::MemoryStore::new()));
    let app = app_guarded("captcha_counter_down", config, move |b| b.store(store)).await;
    app.register("ann@example.com", "ann", PW).await;
    // Nobody is signed in on a guess: the rule cannot be read, so the answer is 503.
    let r = app.send(login_req("ann", PW)).await;
    assert_eq!(r.status, 503, "{:?}", r.json);
    assert!(!r.cookies().contains_key("session_id"));
}
