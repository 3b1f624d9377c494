//! Two-factor sign-in over the real router: enrolment, the challenge at `/login`, `/token`
//! and the OAuth callback, management, sudo by code, and the attacks, each a test of its own.

use std::time::Duration;

use crudauth::mfa::{MfaConfig, Required};
use crudauth::{CrudAuthBuilder, UserRecord};
use crudauth_tests::http::{Req, Resp, Session, TestApp, User, app_with};
use serde_json::{Value, json};

const PW: &str = "a long password 1";

fn now() -> u64 {
    crudauth_tests::unix_now()
}

/// The code of a base32 secret at a unix time.
fn code_at(secret: &str, time: u64) -> String {
    crudauth_tests::totp_code(secret, time)
}

/// A code of the current step, and one of the next (a step not claimed yet).
fn code(secret: &str) -> String {
    code_at(secret, now())
}

async fn setup_with(
    test: &str,
    config: impl FnOnce(MfaConfig<User>) -> MfaConfig<User>,
    more: impl FnOnce(CrudAuthBuilder<User>) -> CrudAuthBuilder<User>,
) -> TestApp {
    let config = config(MfaConfig::new("crudauth-test"));
    app_with(test, move |b| more(b.mfa(config))).await
}

async fn setup(test: &str) -> TestApp {
    setup_with(test, |c| c, |b| b).await
}

/// Registers and signs in `name`.
async fn member(app: &TestApp, name: &str) -> Session {
    app.register(&format!("{name}@example.com"), name, PW).await;
    app.login(name, PW).await
}

/// Enrols the session's user: answers the base32 secret and the recovery codes.
async fn enrol(app: &TestApp, s: &Session) -> (String, Vec<String>) {
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .session(s)
                .json(json!({ "password": PW })),
        )
        .await;
    assert_eq!(r.status, 200, "setup: {:?}", r.json);
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    // The confirm code is of the previous step, so the current one stays free for a test.
    crudauth_tests::away_from_step_edge().await;
    let confirm = code_at(&secret, now() - 30);
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(s)
                .json(json!({ "code": confirm })),
        )
        .await;
    assert_eq!(r.status, 200, "confirm: {:?}", r.json);
    let codes = r.json["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

async fn login_form(app: &TestApp, name: &str, password: &str) -> Resp {
    app.send(Req::post("/login").form(&[("username", name), ("password", password)]))
        .await
}

/// A password sign-in that must answer a challenge: the challenge token.
async fn challenge(app: &TestApp, name: &str) -> String {
    let r = login_form(app, name, PW).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["mfa_required"], true, "{:?}", r.json);
    assert!(
        !r.cookies().contains_key("session_id"),
        "no session before the code"
    );
    r.json["challenge"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, challenge: &str, code: &str) -> Resp {
    app.send(Req::post("/mfa/verify").json(json!({ "challenge": challenge, "code": code })))
        .await
}

fn session_of(r: &Resp) -> Session {
    let cookies = r.cookies();
    Session {
        id: cookies["session_id"].0.clone(),
        csrf: cookies["csrf_token"].0.clone(),
    }
}

async fn whoami(app: &TestApp, s: &Session) -> u16 {
    app.send(Req::get("/whoami").session(s))
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn enrolment_answers_the_secret_its_uri_and_qr_and_ends_the_other_sessions_and_tokens() {
    let app = setup("mfa_enrol").await;
    let s = member(&app, "ann").await;
    let other = app.login("ann", PW).await;
    let (access, _) = app.token("ann", PW, "").await;
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .session(&s)
                .json(json!({ "password": PW })),
        )
        .await;
    assert_eq!(r.status, 200);
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    let uri = r.json["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/crudauth-test:ann%40example.com?")
            || uri.starts_with("otpauth://totp/crudauth-test:ann@example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")));
    assert!(r.json["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(
        r.json["qr_png"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    // Not enabled until confirmed.
    let status = app.send(Req::get("/mfa").session(&s)).await;
    assert_eq!(
        status.json,
        json!({ "enabled": false, "required": false, "recovery_codes_remaining": 0 })
    );
    let wrong = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": "000000" })),
        )
        .await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.detail()),
        (401, "Invalid code")
    );
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": code(&secret) })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let codes = r.json["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.as_str().unwrap().len() == 19));
    let status = app.send(Req::get("/mfa").session(&s)).await;
    assert_eq!(
        status.json,
        json!({ "enabled": true, "required": false, "recovery_codes_remaining": 10 })
    );
    // Beyond the original: every other session and token of the user ended.
    assert_eq!(whoami(&app, &other).await, 401);
    assert_eq!(
        app.send(Req::get("/whoami").bearer(&access)).await.status,
        401
    );
    assert_eq!(
        whoami(&app, &s).await,
        200,
        "the caller's own session lives on (moved)"
    );
}

#[tokio::test]
async fn a_password_sign_in_answers_a_challenge_that_verify_completes_over_its_transport() {
    let app = setup("mfa_login").await;
    let s = member(&app, "bob").await;
    let (secret, _) = enrol(&app, &s).await;
    // Session.
    let token = challenge(&app, "bob").await;
    let r = verify(&app, &token, &code(&secret)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["username"], "bob");
    assert_eq!(whoami(&app, &session_of(&r)).await, 200);
    // Bearer: `/token` answers a challenge too, and verify answers the pair.
    let r = app
        .send(Req::post("/token").form(&[
            ("username", "bob"),
            ("password", PW),
            ("scope", "me:read"),
        ]))
        .await;
    assert_eq!(r.json["mfa_required"], true, "{:?}", r.json);
    assert!(r.json.get("access_token").is_none());
    let token = r.json["challenge"].as_str().unwrap().to_owned();
    let later = code_at(&secret, now() + 30);
    let r = verify(&app, &token, &later).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access = r.json["access_token"].as_str().unwrap();
    let me = app.send(Req::get("/whoami").bearer(access)).await;
    assert_eq!(
        (me.json["via"].as_str(), me.json["scopes"][0].as_str()),
        (Some("bearer"), Some("me:read"))
    );
}

#[tokio::test]
async fn a_code_replayed_at_verify_is_refused() {
    let app = setup("mfa_replay").await;
    let s = member(&app, "cy").await;
    let (secret, _) = enrol(&app, &s).await;
    let c = code(&secret);
    let first = verify(&app, &challenge(&app, "cy").await, &c).await;
    assert_eq!(first.status, 200);
    let again = verify(&app, &challenge(&app, "cy").await, &c).await;
    assert_eq!(
        (again.status.as_u16(), again.detail()),
        (401, "Invalid code")
    );
}

#[tokio::test]
async fn the_confirm_code_cannot_be_used_again_at_verify() {
    let app = setup("mfa_confirm_replay").await;
    let s = member(&app, "dee").await;
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .session(&s)
                .json(json!({ "password": PW })),
        )
        .await;
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    let c = code(&secret);
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": c })),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = verify(&app, &challenge(&app, "dee").await, &c).await;
    assert_eq!(r.status, 401, "the step confirm used is spent");
}

#[tokio::test]
async fn codes_of_the_previous_and_next_step_count_and_the_one_before_does_not() {
    let app = setup("mfa_drift").await;
    let s = member(&app, "eve").await;
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .session(&s)
                .json(json!({ "password": PW })),
        )
        .await;
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    let t = now();
    // Confirm with the step before the previous one: refused.
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": code_at(&secret, t - 60) })),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": code_at(&secret, t - 30) })),
        )
        .await;
    assert_eq!(r.status, 200, "the previous step");
    let r = verify(
        &app,
        &challenge(&app, "eve").await,
        &code_at(&secret, t + 30),
    )
    .await;
    assert_eq!(r.status, 200, "the next step");
}

#[tokio::test]
async fn brute_force_across_challenges_of_one_user_hits_the_shared_lockout() {
    let app = setup("mfa_brute").await;
    let s = member(&app, "fay").await;
    let (secret, _) = enrol(&app, &s).await;
    let right = code(&secret);
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    let mut guesses = 0;
    let mut locked = false;
    'outer: for _ in 0..5 {
        let r = login_form(&app, "fay", PW).await;
        if r.status == 429 {
            locked = true;
            break;
        }
        let token = r.json["challenge"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            let r = verify(&app, &token, wrong).await;
            match r.status.as_u16() {
                401 => guesses += 1,
                429 => {
                    locked = true;
                    break 'outer;
                }
                other => panic!("unexpected {other}: {:?}", r.json),
            }
        }
    }
    assert!(locked, "the login lockout engaged");
    assert!(
        guesses <= 5,
        "{guesses} code guesses before the lock (a right password neither counts nor clears)"
    );
    // Locked, even the right code is refused.
    let r = login_form(&app, "fay", PW).await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn the_lockout_deletes_the_challenge_and_five_wrong_codes_kill_it() {
    // With the login lockout out of the way, the challenge's own cap: 5 codes.
    let app = setup_with(
        "mfa_attempts",
        |c| c,
        |b| {
            b.lockout(crudauth::LockoutConfig {
                max_attempts: 50,
                ip_max_attempts: 500,
                account_max_attempts: 500,
                account_hourly_max_attempts: 500,
                ..Default::default()
            })
        },
    )
    .await;
    let s = member(&app, "gil").await;
    let (secret, _) = enrol(&app, &s).await;
    let token = challenge(&app, "gil").await;
    for _ in 0..5 {
        assert_eq!(verify(&app, &token, "000000").await.status, 401);
    }
    let r = verify(&app, &token, &code(&secret)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "Invalid or expired MFA challenge")
    );
    // With the default lockout: the 6th attempt on the account is a 429, which deletes the
    // challenge (the right password before did not count).
    let app = setup("mfa_lockout_deletes").await;
    let s = member(&app, "gus").await;
    let (secret, _) = enrol(&app, &s).await;
    let token = challenge(&app, "gus").await;
    for _ in 0..5 {
        assert_eq!(verify(&app, &token, "000000").await.status, 401);
    }
    let token2 = {
        let r = login_form(&app, "gus", PW).await;
        assert_eq!(r.status, 429, "the password's attempt is the 6th");
        token
    };
    let r = app
        .send(Req::post("/mfa/challenge").json(json!({ "challenge": token2 })))
        .await;
    assert_eq!(r.status, 400);
    let r = verify(&app, &token2, &code(&secret)).await;
    assert!(r.status == 400 || r.status == 429, "{}", r.status);
}

#[tokio::test]
async fn a_challenge_is_not_a_credential_anywhere() {
    let app = setup("mfa_not_a_credential").await;
    let s = member(&app, "hal").await;
    enrol(&app, &s).await;
    let token = challenge(&app, "hal").await;
    for path in [
        "/me",
        "/whoami",
        "/sessions",
        "/tokens",
        "/admin-only",
        "/mfa",
    ] {
        let as_cookie = app
            .send(Req::get(path).header("cookie", format!("session_id={token}")))
            .await;
        assert_eq!(as_cookie.status, 401, "{path} as a session cookie");
        let as_bearer = app.send(Req::get(path).bearer(&token)).await;
        assert_eq!(as_bearer.status, 401, "{path} as a bearer token");
        let as_header = app
            .send(Req::get(path).header("x-mfa-challenge", &token))
            .await;
        assert_eq!(as_header.status, 401, "{path} as a header");
    }
    let r = app
        .send(Req::post("/refresh").json(json!({ "refresh_token": token })))
        .await;
    assert_eq!(r.status, 401);
    let r = app
        .send(Req::post("/refresh").header("cookie", format!("__Host-refresh_token={token}")))
        .await;
    assert!(r.status == 401 || r.status == 422, "{}", r.status);
}

#[tokio::test]
async fn a_challenge_of_one_user_is_not_completed_with_another_users_code() {
    let app = setup("mfa_cross_user").await;
    let a = member(&app, "ida").await;
    let b = member(&app, "jon").await;
    enrol(&app, &a).await;
    let (secret_b, _) = enrol(&app, &b).await;
    let token = challenge(&app, "ida").await;
    assert_eq!(verify(&app, &token, &code(&secret_b)).await.status, 401);
}

#[tokio::test]
async fn a_challenge_dies_with_a_password_change() {
    let app = setup("mfa_epoch").await;
    let s = member(&app, "kim").await;
    let (secret, _) = enrol(&app, &s).await;
    let token = challenge(&app, "kim").await;
    let r = app
        .send(
            Req::post("/change-password")
                .session(&s)
                .json(json!({ "current_password": PW, "new_password": "another long password" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = verify(&app, &token, &code(&secret)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "Invalid or expired MFA challenge")
    );
}

#[tokio::test]
async fn concurrent_verifies_of_one_challenge_exactly_one_wins() {
    let app = setup("mfa_concurrent_verify").await;
    let s = member(&app, "lea").await;
    let (secret, codes) = enrol(&app, &s).await;
    let token = challenge(&app, "lea").await;
    let totp = code(&secret);
    let (a, b) = tokio::join!(verify(&app, &token, &totp), verify(&app, &token, &codes[0]));
    let won = [&a, &b].iter().filter(|r| r.status == 200).count();
    assert_eq!(won, 1, "{:?} {:?}", a.json, b.json);
}

#[tokio::test]
async fn a_recovery_code_used_twice_concurrently_works_once() {
    let app = setup("mfa_recovery_race").await;
    let s = member(&app, "max").await;
    let (_, codes) = enrol(&app, &s).await;
    let (t1, t2) = (challenge(&app, "max").await, challenge(&app, "max").await);
    let upper = codes[3].to_uppercase().replace('-', "");
    let (a, b) = tokio::join!(verify(&app, &t1, &codes[3]), verify(&app, &t2, &upper));
    let won = [&a, &b].iter().filter(|r| r.status == 200).count();
    assert_eq!(won, 1, "{:?} {:?}", a.json, b.json);
    let status = app
        .send(Req::get("/mfa").session(&session_of(if a.status == 200 { &a } else { &b })))
        .await;
    assert_eq!(status.json["recovery_codes_remaining"], 9);
}

#[tokio::test]
async fn a_secret_ciphertext_moved_to_another_user_does_not_open() {
    let app = setup("mfa_moved_ciphertext").await;
    let a = member(&app, "ned").await;
    let b = member(&app, "ola").await;
    let (secret_a, _) = enrol(&app, &a).await;
    let (_, codes_b) = enrol(&app, &b).await;
    let factors = app.auth.mfa().unwrap().factors().clone();
    let ned = app.auth.repo().find_by_login("ned").await.unwrap().unwrap();
    let ola = app.auth.repo().find_by_login("ola").await.unwrap().unwrap();
    let sealed = factors
        .get(&ned.user_id().to_string())
        .await
        .unwrap()
        .unwrap()
        .secret
        .unwrap();
    // The attacker copies Ned's sealed secret into Ola's row (as a database writer could).
    let ola_id = ola.user_id().to_string();
    factors.remove(&ola_id).await.unwrap();
    assert!(factors.activate(&ola_id, &sealed, 0, 0).await.unwrap());
    let r = verify(&app, &challenge(&app, "ola").await, &code(&secret_a)).await;
    assert_eq!(r.status, 401, "Ned's secret does not open for Ola");
    let _ = codes_b; // Ola's codes went with her row; recovery after a failed open: the rotation test
}

#[tokio::test]
async fn a_wrong_rotation_key_fails_closed_and_recovery_codes_still_work() {
    let factors: std::sync::Arc<dyn crudauth::mfa::FactorStore> =
        std::sync::Arc::new(crudauth::mfa::MemoryFactorStore::default());
    let f1 = factors.clone();
    let app = setup_with(
        "mfa_rotation",
        move |c| {
            let mut c = c.factors(f1);
            c.encryption_keys = vec![[1; 32]];
            c
        },
        |b| b,
    )
    .await;
    let s = member(&app, "pia").await;
    let (secret, codes) = enrol(&app, &s).await;
    let pia = app.auth.repo().find_by_login("pia").await.unwrap().unwrap();
    let before = factors
        .get(&pia.user_id().to_string())
        .await
        .unwrap()
        .unwrap()
        .secret
        .unwrap();
    // The same database and factors, a configuration whose keys no longer hold [1; 32].
    let f2 = factors.clone();
    let db = app.tdb.db.clone();
    let config = {
        let mut c = MfaConfig::new("crudauth-test").factors(f2);
        c.encryption_keys = vec![[2; 32]];
        c
    };
    let repo = crudauth_sea::SeaUserRepository::<User>::new(db.clone());
    let auth = crudauth_tests::http::default_builder(repo)
        .mfa(config)
        .build()
        .unwrap();
    let wrong_keys = TestApp {
        app: crudauth_tests::http::demo_routes(&auth),
        auth,
        tdb: app.tdb,
    };
    let r = verify(
        &wrong_keys,
        &challenge(&wrong_keys, "pia").await,
        &code(&secret),
    )
    .await;
    assert_eq!(
        r.status, 401,
        "a secret that does not open refuses every TOTP code"
    );
    let r = verify(&wrong_keys, &challenge(&wrong_keys, "pia").await, &codes[0]).await;
    assert_eq!(r.status, 200, "recovery codes still work");
    // Rotation done right: the new key first, the old one still listed.
    let config = {
        let mut c = MfaConfig::new("crudauth-test").factors(factors.clone());
        c.encryption_keys = vec![[2; 32], [1; 32]];
        c
    };
    let repo = crudauth_sea::SeaUserRepository::<User>::new(db);
    let auth = crudauth_tests::http::default_builder(repo)
        .mfa(config)
        .build()
        .unwrap();
    let rotated = TestApp {
        app: crudauth_tests::http::demo_routes(&auth),
        auth,
        tdb: wrong_keys.tdb,
    };
    let r = verify(
        &rotated,
        &challenge(&rotated, "pia").await,
        &code_at(&secret, now() + 30),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // The secret opened with the old key was sealed again under the new one (its key id
    // changed), so the old key can be dropped.
    let pia = rotated
        .auth
        .repo()
        .find_by_login("pia")
        .await
        .unwrap()
        .unwrap();
    let after = factors
        .get(&pia.user_id().to_string())
        .await
        .unwrap()
        .unwrap()
        .secret
        .unwrap();
    let key_id = |sealed: &str| sealed.split('.').nth(1).unwrap().to_owned();
    assert_ne!(
        key_id(&after),
        key_id(&before),
        "sealed again under the first key"
    );
}

#[tokio::test]
async fn full_width_digits_and_a_10_mb_code_field_are_refused_cleanly() {
    let app = setup("mfa_hostile_codes").await;
    let s = member(&app, "quinn").await;
    let (secret, _) = enrol(&app, &s).await;
    let token = challenge(&app, "quinn").await;
    let full_width: String = code(&secret)
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap())
        .collect();
    assert_eq!(verify(&app, &token, &full_width).await.status, 401);
    let huge = "1".repeat(10 * 1024 * 1024);
    let r = verify(&app, &token, &huge).await;
    assert_eq!(r.status, 413);
    let r = app
        .send(Req::post("/mfa/verify").raw("application/json", "{\"challenge\": 5"))
        .await;
    assert_eq!(r.status, 422);
    let r = verify(&app, &"x".repeat(5000), "123456").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn disable_and_regenerate_need_a_code_and_a_required_account_cannot_disable() {
    let app = setup("mfa_manage").await;
    let s = member(&app, "rae").await;
    let (secret, codes) = enrol(&app, &s).await;
    let r = app
        .send(
            Req::post("/mfa/totp/disable")
                .session(&s)
                .json(json!({ "code": "000000" })),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = app
        .send(
            Req::post("/mfa/recovery-codes/regenerate")
                .session(&s)
                .json(json!({ "code": codes[1] })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let fresh = r.json["recovery_codes"].as_array().unwrap().clone();
    let r = app
        .send(
            Req::post("/mfa/totp/disable")
                .session(&s)
                .json(json!({ "code": codes[2] })),
        )
        .await;
    assert_eq!(r.status, 401, "the old codes died with the regeneration");
    let r = app
        .send(
            Req::post("/mfa/totp/disable")
                .session(&s)
                .json(json!({ "code": fresh[0] })),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["detail"].as_str()),
        (200, Some("Two-factor authentication disabled."))
    );
    let r = login_form(&app, "rae", PW).await;
    assert!(
        r.cookies().contains_key("session_id"),
        "no challenge once disabled"
    );
    let _ = secret;
    // Required accounts.
    let app = setup_with(
        "mfa_required_disable",
        |c| {
            c.required(Required::when(|u: std::sync::Arc<User>| async move {
                u.username == "sam"
            }))
        },
        |b| b,
    )
    .await;
    app.register("sam@example.com", "sam", PW).await;
    let r = login_form(&app, "sam", PW).await;
    assert!(
        r.json["setup"]["secret"].is_string(),
        "enrols during sign-in: {:?}",
        r.json
    );
    let token = r.json["challenge"].as_str().unwrap().to_owned();
    let secret = r.json["setup"]["secret"].as_str().unwrap().to_owned();
    let again = app
        .send(Req::post("/mfa/challenge").json(json!({ "challenge": token })))
        .await;
    assert_eq!(
        again.json["setup"]["secret"].as_str(),
        Some(secret.as_str()),
        "/mfa/challenge shows it too"
    );
    let r = verify(&app, &token, &code(&secret)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["recovery_codes"].as_array().map(Vec::len), Some(10));
    let s = session_of(&r);
    let status = app.send(Req::get("/mfa").session(&s)).await;
    assert_eq!(status.json["enabled"], true);
    assert_eq!(status.json["required"], true);
    let r = app
        .send(
            Req::post("/mfa/totp/disable")
                .session(&s)
                .json(json!({ "code": code_at(&secret, now() + 30) })),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (
            403,
            "Two-factor authentication is required for this account."
        )
    );
}

#[tokio::test]
async fn setup_needs_the_password_again_and_a_pending_secret_dies_with_a_password_change() {
    let app = setup("mfa_setup_rules").await;
    let s = member(&app, "tom").await;
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .session(&s)
                .json(json!({ "password": "wrong" })),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "Incorrect password"));
    let r = app
        .send(Req::post("/mfa/totp/setup").session(&s).json(json!({})))
        .await;
    assert_eq!(r.status, 401);
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .session(&s)
                .json(json!({ "password": PW })),
        )
        .await;
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    let r = app
        .send(
            Req::post("/change-password")
                .session(&s)
                .json(json!({ "current_password": PW, "new_password": "another long password" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": code(&secret) })),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "No authenticator setup is pending.")
    );
}

#[tokio::test]
async fn the_manage_routes_share_a_rate_limit_per_user() {
    let app = setup("mfa_manage_limit").await;
    let s = member(&app, "uma").await;
    for i in 0..10u8 {
        let path = if i % 2 == 0 {
            "/mfa/totp/confirm"
        } else {
            "/mfa/totp/disable"
        };
        let r = app
            .send(
                Req::post(path)
                    .peer([10, 0, 0, i])
                    .session(&s)
                    .json(json!({ "code": "000000" })),
            )
            .await;
        assert_ne!(r.status, 429, "{path} from 10.0.0.{i}");
    }
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .peer([10, 0, 1, 1])
                .session(&s)
                .json(json!({ "password": PW })),
        )
        .await;
    assert_eq!(
        r.status, 429,
        "per user, whatever the address and the route"
    );
}

#[tokio::test]
async fn sudo_takes_a_code_instead_of_the_password() {
    let app = setup("mfa_sudo").await;
    let s = member(&app, "val").await;
    let (secret, _) = enrol(&app, &s).await;
    let r = app.send(Req::post("/danger").session(&s)).await;
    assert_eq!(r.status, 403);
    let r = app
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({ "code": "000000" })),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (401, "Invalid code"));
    let r = app
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({ "code": code(&secret) })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(app.send(Req::post("/danger").session(&s)).await.status, 200);
}

#[tokio::test]
async fn a_remembered_device_skips_the_second_factor_until_the_epoch_moves() {
    let app = setup_with(
        "mfa_remember",
        |mut c| {
            c.remember_device = Some(Duration::from_secs(3600));
            c
        },
        |b| b,
    )
    .await;
    let s = member(&app, "wes").await;
    let (secret, _) = enrol(&app, &s).await;
    let token = challenge(&app, "wes").await;
    let r = app
        .send(
            Req::post("/mfa/verify").json(
                json!({ "challenge": token, "code": code(&secret), "remember_device": true }),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    let device = r.cookies()["mfa_device"].0.clone();
    let cookie = format!("mfa_device={device}");
    let r = app
        .send(
            Req::post("/login")
                .header("cookie", &cookie)
                .form(&[("username", "wes"), ("password", PW)]),
        )
        .await;
    assert!(
        r.cookies().contains_key("session_id"),
        "remembered: {:?}",
        r.json
    );
    // Another user's remembered device is not this user's.
    let z = member(&app, "zed").await;
    enrol(&app, &z).await;
    let r = app
        .send(
            Req::post("/login")
                .header("cookie", &cookie)
                .form(&[("username", "zed"), ("password", PW)]),
        )
        .await;
    assert_eq!(
        r.json["mfa_required"], true,
        "wes's device cookie does not skip zed's factor"
    );
    // Another device, or a forged cookie, still gets the challenge.
    let forged = format!("mfa_device={}x", device);
    let r = app
        .send(
            Req::post("/login")
                .header("cookie", forged)
                .form(&[("username", "wes"), ("password", PW)]),
        )
        .await;
    assert_eq!(r.json["mfa_required"], true);
    // Sign out everywhere: the device is forgotten.
    let user = app.auth.repo().find_by_login("wes").await.unwrap().unwrap();
    app.auth.revocation().bump(&user).await.unwrap();
    let r = app
        .send(
            Req::post("/login")
                .header("cookie", &cookie)
                .form(&[("username", "wes"), ("password", PW)]),
        )
        .await;
    assert_eq!(r.json["mfa_required"], true);
}

#[tokio::test]
async fn hooks_fire_on_enable_and_disable() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (a, b) = (seen.clone(), seen.clone());
    let app = setup_with(
        "mfa_hooks",
        |c| c,
        move |bl| {
            bl.on_after_mfa_enabled(move |u, _| {
                let a = a.clone();
                async move {
                    a.lock().unwrap().push(format!("on:{}", u.username));
                    Ok(())
                }
            })
            .on_after_mfa_disabled(move |u, _| {
                let b = b.clone();
                async move {
                    b.lock().unwrap().push(format!("off:{}", u.username));
                    Ok(())
                }
            })
        },
    )
    .await;
    let s = member(&app, "xia").await;
    let (_, codes) = enrol(&app, &s).await;
    let r = app
        .send(
            Req::post("/mfa/totp/disable")
                .session(&s)
                .json(json!({ "code": codes[0] })),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(*seen.lock().unwrap(), ["on:xia", "off:xia"]);
}

#[tokio::test]
async fn the_challenge_answer_keeps_the_originals_shape() {
    let app = setup("mfa_shape").await;
    let s = member(&app, "yan").await;
    enrol(&app, &s).await;
    let r = login_form(&app, "yan", PW).await;
    let keys: Vec<&str> = r
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["challenge", "expires_in", "mfa_required"]);
    assert_eq!(r.json["expires_in"], 300);
    assert_eq!(r.json["challenge"].as_str().unwrap().len(), 43);
    let cross = app
        .send(
            Req::post("/mfa/verify")
                .header("sec-fetch-site", "cross-site")
                .json(json!({ "challenge": r.json["challenge"], "code": "000000" })),
        )
        .await;
    assert_eq!(cross.status, 403);
    let token = r.json["challenge"].as_str().unwrap().to_owned();
    for _ in 0..6 {
        let cross = app
            .send(
                Req::post("/mfa/verify")
                    .header("sec-fetch-site", "cross-site")
                    .json(json!({ "challenge": token, "code": "000000" })),
            )
            .await;
        assert_eq!(cross.status, 403);
    }
    let user = app.auth.repo().find_by_login("yan").await.unwrap().unwrap();
    let _ = user;
    let _: Value = r.json;
}

#[tokio::test]
async fn cross_site_verifies_count_no_attempt() {
    let app = setup("mfa_cross_site_budget").await;
    let s = member(&app, "abe").await;
    let (secret, _) = enrol(&app, &s).await;
    let token = challenge(&app, "abe").await;
    for _ in 0..8 {
        let r = app
            .send(
                Req::post("/mfa/verify")
                    .header("sec-fetch-site", "cross-site")
                    .json(json!({ "challenge": token, "code": "000000" })),
            )
            .await;
        assert_eq!(r.status, 403);
    }
    assert_eq!(verify(&app, &token, &code(&secret)).await.status, 200);
}

#[tokio::test]
async fn enrolling_during_sign_in_ends_the_accounts_other_sessions_and_tokens() {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    let app = setup_with(
        "mfa_enrol_at_sign_in",
        move |c| {
            c.required(Required::when(move |_u: std::sync::Arc<User>| {
                let f = f.clone();
                async move { f.load(std::sync::atomic::Ordering::SeqCst) }
            }))
        },
        |b| b,
    )
    .await;
    let before = member(&app, "bea").await;
    let (access, _) = app.token("bea", PW, "").await;
    flag.store(true, std::sync::atomic::Ordering::SeqCst); // MFA becomes required
    let r = login_form(&app, "bea", PW).await;
    let token = r.json["challenge"].as_str().unwrap().to_owned();
    let secret = r.json["setup"]["secret"].as_str().unwrap().to_owned();
    let done = verify(&app, &token, &code(&secret)).await;
    assert_eq!(done.status, 200, "{:?}", done.json);
    assert_eq!(
        whoami(&app, &before).await,
        401,
        "the session from before enrolment ended"
    );
    assert_eq!(
        app.send(Req::get("/whoami").bearer(&access)).await.status,
        401
    );
    assert_eq!(whoami(&app, &session_of(&done)).await, 200);
}

#[tokio::test]
async fn codes_draw_on_a_per_user_budget_a_password_reset_does_not_refill() {
    let outbox = crudauth_tests::http::outbox_path("mfa_code_budget");
    let path = outbox.clone();
    let app = setup_with(
        "mfa_code_budget",
        |c| c,
        move |b| {
            crudauth_tests::http::with_outbox(b, &path).lockout(crudauth::LockoutConfig {
                max_attempts: 500,
                ip_max_attempts: 5000,
                account_max_attempts: 5000,
                account_hourly_max_attempts: 5000,
                ..Default::default()
            })
        },
    )
    .await;
    let s = member(&app, "cal").await;
    let (secret, _) = enrol(&app, &s).await;
    let mut refused = None;
    for i in 0..30 {
        let token = challenge(&app, "cal").await;
        let r = verify(&app, &token, "000000").await;
        if r.status == 429 {
            refused = Some(i);
            break;
        }
        assert_eq!(r.status, 401);
    }
    assert_eq!(refused, Some(20), "20 codes an hour per user");
    // A completed password reset (which clears the login lockout) does not refill it.
    let r = app
        .send(Req::post("/password/reset-request").json(json!({ "email": "cal@example.com" })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let mails = crudauth_tests::http::mails(&app.auth, &outbox).await;
    let reset = mails
        .iter()
        .rev()
        .find(|m| m["link"].as_str().is_some_and(|l| l.contains("reset")))
        .expect("a reset mail");
    let token = crudauth_tests::http::token_of(reset);
    let new_pw = "cal has a brand new pass";
    let r = app
        .send(
            Req::post("/password/reset-confirm")
                .json(json!({ "token": token, "new_password": new_pw })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = login_form(&app, "cal", new_pw).await;
    let token = r.json["challenge"].as_str().unwrap().to_owned();
    assert_eq!(verify(&app, &token, &code(&secret)).await.status, 429);
}

#[tokio::test]
async fn recovery_codes_open_nothing_once_the_factor_is_gone() {
    let app = setup("mfa_orphan_codes").await;
    let s = member(&app, "dan").await;
    let (_, codes) = enrol(&app, &s).await;
    let r = app
        .send(
            Req::post("/mfa/totp/disable")
                .session(&s)
                .json(json!({ "code": codes[0] })),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({ "code": codes[1] })),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_bearer_caller_that_enables_mfa_gets_new_tokens_and_its_old_ones_die() {
    let app = setup("mfa_bearer_manage").await;
    member(&app, "fox").await;
    let (access, _) = app.token("fox", PW, "me:read").await;
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .bearer(&access)
                .json(json!({ "password": PW })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .bearer(&access)
                .json(json!({ "code": code(&secret) })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["recovery_codes"].as_array().map(Vec::len), Some(10));
    let fresh = r.json["access_token"]
        .as_str()
        .expect("a new pair")
        .to_owned();
    assert_eq!(
        app.send(Req::get("/whoami").bearer(&access)).await.status,
        401,
        "the old token died"
    );
    let me = app.send(Req::get("/whoami").bearer(&fresh)).await;
    assert_eq!(
        (me.status.as_u16(), me.json["scopes"][0].as_str()),
        (200, Some("me:read"))
    );
}

/// DESIGN 6.12: a privilege change (enabling MFA) moves the caller's session to a new id;
/// a copy of the old cookie dies at once.
#[tokio::test]
async fn a_copy_of_the_session_cookie_taken_before_enabling_mfa_dies() {
    let app = setup("mfa_old_cookie").await;
    let s = member(&app, "gia").await;
    let stolen = s.id.clone();
    enrol(&app, &s).await;
    let old = app
        .send(Req::get("/whoami").header("cookie", format!("session_id={stolen}")))
        .await;
    assert_eq!(old.status, 401, "the pre-change id is dead");
    assert_eq!(whoami(&app, &s).await, 200, "the browser holds the new id");
}

/// DESIGN 6.4: a sign-in completed by `/mfa/verify` draws a new session id and ends the
/// session the browser presented (no fixation).
#[tokio::test]
async fn a_second_factor_sign_in_ends_the_presented_session() {
    let app = setup("mfa_fixation").await;
    let s = member(&app, "hux").await;
    let (secret, _) = enrol(&app, &s).await;
    let planted = crudauth_tests::http::current_id(&s);
    let token = challenge(&app, "hux").await;
    let r = app
        .send(
            Req::post("/mfa/verify")
                .header("cookie", format!("session_id={planted}"))
                .json(json!({ "challenge": token, "code": code(&secret) })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_ne!(session_of(&r).id, planted);
    let old = app
        .send(Req::get("/whoami").header("cookie", format!("session_id={planted}")))
        .await;
    assert_eq!(old.status, 401);
}
