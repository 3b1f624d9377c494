//! Passkeys over the real router, with real ceremonies: a software authenticator
//! (`webauthn-authenticator-rs`'s `SoftToken`: P-256 keys, real signatures and counter)
//! against `webauthn-rs` behind the library's routes. Every attack of the issue is a test:
//! a wrong origin, a wrong RP id, a replayed challenge, another user's credential, a counter
//! that goes back (a cloned authenticator), a tampered signature, a removed credential.

use crudauth::passkey::PasskeyConfig;
use crudauth_tests::http::{Req, Resp, Session, TestApp, app_with};
use crudauth_tests::passkey_client::{ORIGIN, RP_ID, SoftAuthenticator, tamper};
use serde_json::{Value, json};

const PW: &str = "a long password 1";

async fn setup(test: &str) -> TestApp {
    app_with(test, |b| b.passkeys(PasskeyConfig::new(RP_ID, ORIGIN))).await
}

/// Registers `name` with a verified address, signs in and elevates the session (sudo), as
/// adding a passkey to an account with a password needs.
async fn member(app: &TestApp, name: &str) -> Session {
    app.register(&format!("{name}@example.com"), name, PW).await;
    app.verify_email(name).await;
    let s = app.login(name, PW).await;
    let r = app
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({ "password": PW })),
        )
        .await;
    assert_eq!(r.status, 200, "sudo: {:?}", r.json);
    s // the harness follows the session's new id, as a browser does
}

/// Starts a registration: (ceremony, options).
async fn register_start(app: &TestApp, s: &Session) -> (String, Value) {
    let r = app
        .send(Req::post("/passkeys/register/start").session(s))
        .await;
    assert_eq!(r.status, 200, "register/start: {:?}", r.json);
    (
        r.json["ceremony"].as_str().unwrap().to_owned(),
        r.json["options"].clone(),
    )
}

async fn register_finish(app: &TestApp, s: &Session, ceremony: &str, credential: Value) -> Resp {
    app.send(
        Req::post("/passkeys/register/finish")
            .session(s)
            .json(json!({ "ceremony": ceremony, "credential": credential, "name": "Laptop" })),
    )
    .await
}

/// Registers a passkey of `device` for the session's user: its id.
async fn enrol(app: &TestApp, s: &Session, device: &mut SoftAuthenticator) -> String {
    let (ceremony, options) = register_start(app, s).await;
    let credential = device.register(ORIGIN, &options).unwrap();
    let r = register_finish(app, s, &ceremony, credential).await;
    assert_eq!(r.status, 201, "register/finish: {:?}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

/// A member (`member`) with one passkey of a new authenticator: the session and the device.
async fn with_passkey(app: &TestApp, name: &str) -> (Session, SoftAuthenticator) {
    let s = member(app, name).await;
    let mut device = SoftAuthenticator::new();
    enrol(app, &s, &mut device).await;
    (s, device)
}

/// Starts a sign-in (`username` for an allow-list): (ceremony, options).
async fn login_start(app: &TestApp, username: Option<&str>) -> (String, Value) {
    let body = match username {
        Some(u) => json!({ "username": u }),
        None => json!({}),
    };
    let r = app
        .send(Req::post("/passkeys/login/start").json(body))
        .await;
    assert_eq!(r.status, 200, "login/start: {:?}", r.json);
    (
        r.json["ceremony"].as_str().unwrap().to_owned(),
        r.json["options"].clone(),
    )
}

async fn login_finish(app: &TestApp, ceremony: &str, credential: &Value) -> Resp {
    app.send(
        Req::post("/passkeys/login/finish")
            .json(json!({ "ceremony": ceremony, "credential": credential })),
    )
    .await
}

/// A whole discoverable sign-in with `device`.
async fn passkey_login(app: &TestApp, device: &mut SoftAuthenticator) -> Resp {
    let (ceremony, options) = login_start(app, None).await;
    let credential = device.sign(ORIGIN, &options).unwrap();
    login_finish(app, &ceremony, &credential).await
}

fn session_of(r: &Resp) -> Session {
    let cookies = r.cookies();
    Session {
        id: cookies["session_id"].0.clone(),
        csrf: cookies["csrf_token"].0.clone(),
    }
}

#[tokio::test]
async fn a_registered_passkey_signs_in_without_a_username_and_shows_in_the_list() {
    let app = setup("pk_discoverable").await;
    let s = member(&app, "ann").await;
    let mut device = SoftAuthenticator::new();
    let id = enrol(&app, &s, &mut device).await;
    let r = app.send(Req::get("/passkeys").session(&s)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json[0]["id"], id.as_str());
    assert_eq!(r.json[0]["name"], "Laptop");
    assert_eq!(r.json[0]["last_used_at"], Value::Null);
    let r = passkey_login(&app, &mut device).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["username"], "ann");
    let new = session_of(&r);
    let r = app.send(Req::get("/whoami").session(&new)).await;
    assert_eq!(
        (r.status.as_u16(), r.json["via"].as_str()),
        (200, Some("session"))
    );
    let r = app.send(Req::get("/sessions").session(&new)).await;
    let current = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    assert_eq!(current["login_type"], "passkey");
    let r = app.send(Req::get("/passkeys").session(&new)).await;
    assert!(r.json[0]["last_used_at"].is_i64(), "{:?}", r.json);
}

#[tokio::test]
async fn a_username_first_sign_in_lists_the_accounts_credentials_and_can_answer_tokens() {
    let app = setup("pk_allow_list").await;
    let s = member(&app, "ann").await;
    let mut device = SoftAuthenticator::new();
    let id = enrol(&app, &s, &mut device).await;
    let (ceremony, options) = login_start(&app, Some("ann@example.com")).await;
    let allowed: Vec<&str> = options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, [id.as_str()]);
    let credential = device.sign(ORIGIN, &options).unwrap();
    let r = app
        .send(
            Req::post("/passkeys/login/finish").json(
                json!({ "ceremony": ceremony, "credential": credential, "response": "token" }),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(
        !r.cookies().contains_key("session_id"),
        "tokens, no session"
    );
    let access = r.json["access_token"].as_str().unwrap();
    let r = app.send(Req::get("/whoami").bearer(access)).await;
    assert_eq!(
        (r.status.as_u16(), r.json["via"].as_str()),
        (200, Some("bearer"))
    );
}

#[tokio::test]
async fn a_ceremony_from_another_origin_is_refused() {
    let app = setup("pk_origin").await;
    let s = member(&app, "ann").await;
    let mut device = SoftAuthenticator::new();
    let (ceremony, options) = register_start(&app, &s).await;
    let credential = device.register("https://evil.example", &options).unwrap();
    let r = register_finish(&app, &s, &ceremony, credential).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "Passkey registration failed")
    );
    let mut device = SoftAuthenticator::new();
    enrol(&app, &s, &mut device).await;
    let (ceremony, options) = login_start(&app, None).await;
    let credential = device
        .sign("https://app.example.evil.example", &options)
        .unwrap();
    let r = login_finish(&app, &ceremony, &credential).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (401, "Passkey verification failed")
    );
    assert!(!r.cookies().contains_key("session_id"));
}

#[tokio::test]
async fn an_assertion_for_another_relying_party_is_refused() {
    let app = setup("pk_rp_id").await;
    let s = member(&app, "ann").await;
    let mut device = SoftAuthenticator::new();
    // Registration: the authenticator signs for a relying party the options did not name.
    let (ceremony, mut options) = register_start(&app, &s).await;
    options["publicKey"]["rp"]["id"] = json!("evil.example");
    let credential = device.register(ORIGIN, &options).unwrap();
    let r = register_finish(&app, &s, &ceremony, credential).await;
    assert_eq!(r.status, 400);
    let mut device = SoftAuthenticator::new();
    enrol(&app, &s, &mut device).await;
    let (ceremony, options) = login_start(&app, None).await;
    let credential = device
        .sign_for(ORIGIN, &options, Some("evil.example"))
        .unwrap();
    let r = login_finish(&app, &ceremony, &credential).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_ceremony_is_single_use_and_an_answer_fits_only_its_own_challenge() {
    let app = setup("pk_replay").await;
    let (s, mut device) = with_passkey(&app, "ann").await;
    let (ceremony, options) = login_start(&app, None).await;
    let credential = device.sign(ORIGIN, &options).unwrap();
    assert_eq!(login_finish(&app, &ceremony, &credential).await.status, 200);
    // The same answer again: the ceremony is spent.
    let r = login_finish(&app, &ceremony, &credential).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "Invalid or expired passkey ceremony")
    );
    // An answer to one ceremony's challenge, never used, given to another ceremony.
    let (_, options_a) = login_start(&app, None).await;
    let (ceremony_b, _) = login_start(&app, None).await;
    let for_a = device.sign(ORIGIN, &options_a).unwrap();
    let r = login_finish(&app, &ceremony_b, &for_a).await;
    assert_eq!(r.status, 401);
    // A ceremony handle that never was.
    let r = login_finish(&app, "not-a-ceremony", &credential).await;
    assert_eq!(r.status, 400);
    // A registration ceremony is no sign-in ceremony.
    let (registration, _) = register_start(&app, &s).await;
    let r = login_finish(&app, &registration, &credential).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn concurrent_finishes_of_one_ceremony_sign_in_once() {
    let app = setup("pk_race").await;
    let (_, mut device) = with_passkey(&app, "ann").await;
    let (ceremony, options) = login_start(&app, None).await;
    let credential = device.sign(ORIGIN, &options).unwrap();
    let results = futures_join(&app, &ceremony, &credential, 8).await;
    assert_eq!(
        results.iter().filter(|s| **s == 200).count(),
        1,
        "{results:?}"
    );
}

async fn futures_join(app: &TestApp, ceremony: &str, credential: &Value, n: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let router = app.app.clone();
        let body = json!({ "ceremony": ceremony, "credential": credential });
        tasks.push(tokio::spawn(async move {
            crudauth_tests::http::send(&router, Req::post("/passkeys/login/finish").json(body))
                .await
                .status
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn user_a_credential_does_not_answer_user_b_allow_list() {
    let app = setup("pk_other_user").await;
    let ann = member(&app, "ann").await;
    let bob = member(&app, "bob").await;
    let mut anns = SoftAuthenticator::new();
    let mut bobs = SoftAuthenticator::new();
    enrol(&app, &ann, &mut anns).await;
    enrol(&app, &bob, &mut bobs).await;
    let (ceremony, mut options) = login_start(&app, Some("bob")).await;
    // Ann's authenticator answers Bob's ceremony with her own credential.
    options["publicKey"]["allowCredentials"] = json!([]);
    let credential = anns.sign(ORIGIN, &options).unwrap();
    let r = login_finish(&app, &ceremony, &credential).await;
    assert_eq!(r.status, 401);
    // And in a discoverable ceremony, Ann's credential under Bob's user handle.
    let (ceremony, options) = login_start(&app, None).await;
    let mut credential = anns.sign(ORIGIN, &options).unwrap();
    let bob_handle = {
        let (c, o) = login_start(&app, None).await;
        let _ = c;
        bobs.sign(ORIGIN, &o).unwrap()["response"]["userHandle"].clone()
    };
    credential["response"]["userHandle"] = bob_handle;
    let r = login_finish(&app, &ceremony, &credential).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_signature_counter_that_goes_back_is_refused_as_a_clone() {
    let app = setup("pk_clone").await;
    let (_, mut device) = with_passkey(&app, "ann").await;
    let mut clone = device.clone_device();
    assert_eq!(passkey_login(&app, &mut device).await.status, 200);
    assert_eq!(passkey_login(&app, &mut device).await.status, 200);
    // The clone signs with a counter the original already used.
    let r = passkey_login(&app, &mut clone).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (401, "Passkey verification failed")
    );
    // The original goes on.
    assert_eq!(passkey_login(&app, &mut device).await.status, 200);
}

#[tokio::test]
async fn a_tampered_signature_or_authenticator_data_is_refused() {
    let app = setup("pk_tamper").await;
    let (_, mut device) = with_passkey(&app, "ann").await;
    for field in ["signature", "authenticatorData", "clientDataJSON"] {
        let (ceremony, options) = login_start(&app, None).await;
        let mut credential = device.sign(ORIGIN, &options).unwrap();
        tamper(&mut credential, field);
        let r = login_finish(&app, &ceremony, &credential).await;
        assert_eq!(r.status, 401, "{field}: {:?}", r.json);
    }
}

#[tokio::test]
async fn a_removed_passkey_no_longer_signs_in() {
    let app = setup("pk_removed").await;
    let s = member(&app, "ann").await;
    let mut device = SoftAuthenticator::new();
    let id = enrol(&app, &s, &mut device).await;
    let (ceremony, options) = login_start(&app, None).await;
    let credential = device.sign(ORIGIN, &options).unwrap();
    let r = app
        .send(Req::new(axum::http::Method::DELETE, &format!("/passkeys/{id}")).session(&s))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = login_finish(&app, &ceremony, &credential).await;
    assert_eq!(r.status, 401);
    assert_eq!(passkey_login(&app, &mut device).await.status, 401);
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_removed() {
    let app = setup("pk_last_way").await;
    let s = member(&app, "ann").await;
    let mut one = SoftAuthenticator::new();
    let mut two = SoftAuthenticator::new();
    let first = enrol(&app, &s, &mut one).await;
    let second = enrol(&app, &s, &mut two).await;
    // The password goes: the passkeys are the only ways in now.
    let user = app.auth.repo().find_by_login("ann").await.unwrap().unwrap();
    let unusable = crudauth::password::make_unusable_password();
    assert!(
        app.auth
            .repo()
            .compare_and_set_password_hash(
                &crudauth::UserRecord::user_id(&user),
                &user.password,
                &unusable
            )
            .await
            .unwrap()
    );
    let delete =
        |id: &str| Req::new(axum::http::Method::DELETE, &format!("/passkeys/{id}")).session(&s);
    assert_eq!(app.send(delete(&first)).await.status, 200);
    let r = app.send(delete(&second)).await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert!(r.detail().contains("last way to sign in"));
    assert_eq!(passkey_login(&app, &mut two).await.status, 200);
}

#[tokio::test]
async fn passkeys_are_renamed_and_managed_only_by_their_owner() {
    let app = setup("pk_manage").await;
    let ann = member(&app, "ann").await;
    let bob = member(&app, "bob").await;
    let mut device = SoftAuthenticator::new();
    let id = enrol(&app, &ann, &mut device).await;
    let rename = |s: &Session, name: Value| {
        Req::new(axum::http::Method::PATCH, &format!("/passkeys/{id}"))
            .session(s)
            .json(json!({ "name": name }))
    };
    let r = app.send(rename(&ann, json!("  Work phone "))).await;
    assert_eq!(
        (r.status.as_u16(), r.json["name"].as_str()),
        (200, Some("Work phone"))
    );
    assert_eq!(app.send(rename(&bob, json!("mine"))).await.status, 404);
    assert_eq!(
        app.send(rename(&ann, json!("x".repeat(65)))).await.status,
        400
    );
    assert_eq!(app.send(rename(&ann, json!("a\u{7}b"))).await.status, 400);
    assert_eq!(app.send(rename(&ann, json!(7))).await.status, 422);
    let delete = Req::new(axum::http::Method::DELETE, &format!("/passkeys/{id}")).session(&bob);
    assert_eq!(app.send(delete).await.status, 404);
    let r = app.send(Req::get("/passkeys").session(&bob)).await;
    assert_eq!(r.json, json!([]));
    // Nobody signed in: 401 for every management route.
    assert_eq!(app.send(Req::get("/passkeys")).await.status, 401);
    assert_eq!(
        app.send(Req::post("/passkeys/register/start")).await.status,
        401
    );
}

#[tokio::test]
async fn registration_needs_sudo_and_a_verified_address() {
    let app = setup("pk_recent").await;
    member(&app, "ann").await;
    // A fresh password sign-in is not enough: the password again (sudo) is.
    let plain = app.login("ann", PW).await;
    let r = app
        .send(Req::post("/passkeys/register/start").session(&plain))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Re-authentication required.")
    );
    let (access, _) = app.token("ann", PW, "").await;
    let r = app
        .send(Req::post("/passkeys/register/start").bearer(&access))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    // An unproven address: its rightful owner could claim the account, and the passkey
    // would survive that.
    app.register("bob@example.com", "bob", PW).await;
    let bob = app.login("bob", PW).await;
    let r = app
        .send(
            Req::post("/sudo")
                .session(&bob)
                .json(json!({ "password": PW })),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .send(Req::post("/passkeys/register/start").session(&bob))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Verify your email address before adding a passkey.")
    );
    // Elevation that ended between start and finish: the finish refuses.
    let s = member(&app, "cy").await;
    let (ceremony, options) = register_start(&app, &s).await;
    let handle = app
        .auth
        .sessions()
        .unwrap()
        .resolve(&crudauth_tests::http::current_id(&s))
        .await
        .unwrap()
        .unwrap()
        .handle;
    app.auth
        .sessions()
        .unwrap()
        .modify(&handle, |r| r.sudo_until = None)
        .await
        .unwrap();
    let credential = SoftAuthenticator::new().register(ORIGIN, &options).unwrap();
    let r = register_finish(&app, &s, &ceremony, credential).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
}

#[tokio::test]
async fn a_registration_ceremony_belongs_to_the_user_who_started_it() {
    let app = setup("pk_register_other").await;
    let ann = member(&app, "ann").await;
    let bob = member(&app, "bob").await;
    let mut device = SoftAuthenticator::new();
    let (ceremony, options) = register_start(&app, &ann).await;
    let credential = device.register(ORIGIN, &options).unwrap();
    let r = register_finish(&app, &bob, &ceremony, credential).await;
    assert_eq!(r.status, 400);
    let r = app.send(Req::get("/passkeys").session(&ann)).await;
    assert_eq!(r.json, json!([]));
}

#[tokio::test]
async fn a_credential_is_registered_once() {
    let app = setup("pk_register_twice").await;
    let s = member(&app, "ann").await;
    let mut device = SoftAuthenticator::new();
    let (c1, o1) = register_start(&app, &s).await;
    let credential = device.register(ORIGIN, &o1).unwrap();
    assert_eq!(
        register_finish(&app, &s, &c1, credential.clone())
            .await
            .status,
        201
    );
    // The same answer replayed against the spent ceremony, then against a new one.
    assert_eq!(
        register_finish(&app, &s, &c1, credential.clone())
            .await
            .status,
        400
    );
    let (c2, _) = register_start(&app, &s).await;
    assert_eq!(register_finish(&app, &s, &c2, credential).await.status, 400);
    let r = app.send(Req::get("/passkeys").session(&s)).await;
    assert_eq!(r.json.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_and_hostile_bodies_get_clear_errors() {
    let app = setup("pk_bodies").await;
    let (ceremony, _) = login_start(&app, None).await;
    let r = app
        .send(Req::post("/passkeys/login/finish").json(json!({ "ceremony": ceremony })))
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .send(
            Req::post("/passkeys/login/finish")
                .json(json!({ "ceremony": ceremony, "credential": { "id": 1 } })),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .send(Req::post("/passkeys/login/finish").raw("application/json", "{not json"))
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .send(
            Req::post("/passkeys/login/finish").json(
                json!({ "ceremony": ceremony, "credential": {}, "response": "carrier-pigeon" }),
            ),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .send(Req::post("/passkeys/login/start").json(json!({ "username": "x".repeat(10_000) })))
        .await;
    assert_eq!(
        r.status, 200,
        "an absurd username starts a ceremony like any other"
    );
    let allowed = r.json["options"]["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1);
}

#[tokio::test]
async fn a_cross_site_passkey_sign_in_is_refused_before_the_ceremony_is_spent() {
    let app = setup("pk_cross_site").await;
    let (_, mut device) = with_passkey(&app, "ann").await;
    let (ceremony, options) = login_start(&app, None).await;
    let credential = device.sign(ORIGIN, &options).unwrap();
    let r = app
        .send(
            Req::post("/passkeys/login/finish")
                .header("sec-fetch-site", "cross-site")
                .json(json!({ "ceremony": ceremony, "credential": credential })),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(login_finish(&app, &ceremony, &credential).await.status, 200);
}

#[tokio::test]
async fn a_passkey_elevates_the_session_to_sudo() {
    let app = setup("pk_sudo").await;
    let elevated_once = member(&app, "ann").await;
    let mut device = SoftAuthenticator::new();
    enrol(&app, &elevated_once, &mut device).await;
    let s = app.login("ann", PW).await;
    assert_eq!(app.send(Req::post("/danger").session(&s)).await.status, 403);
    let r = app
        .send(Req::post("/passkeys/sudo/start").session(&s))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let ceremony = r.json["ceremony"].as_str().unwrap().to_owned();
    let credential = device.sign(ORIGIN, &r.json["options"]).unwrap();
    let r = app
        .send(
            Req::post("/passkeys/sudo/finish")
                .session(&s)
                .json(json!({ "ceremony": ceremony, "credential": credential })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let elevated = Session {
        id: r.cookies()["session_id"].0.clone(),
        csrf: s.csrf.clone(),
    };
    assert_eq!(
        app.send(Req::post("/danger").session(&elevated))
            .await
            .status,
        200
    );
    // The pre-elevation cookie is dead.
    let old = Req::get("/whoami").header("cookie", format!("session_id={}", s.id));
    assert_eq!(app.send(old).await.status, 401);
    // Another user's passkey does not elevate Ann's session.
    let bob = member(&app, "bob").await;
    let mut bobs = SoftAuthenticator::new();
    enrol(&app, &bob, &mut bobs).await;
    let r = app
        .send(Req::post("/passkeys/sudo/start").session(&elevated))
        .await;
    let ceremony = r.json["ceremony"].as_str().unwrap().to_owned();
    let mut options = r.json["options"].clone();
    options["publicKey"]["allowCredentials"] = json!([]);
    let credential = bobs.sign(ORIGIN, &options).unwrap();
    let r = app
        .send(
            Req::post("/passkeys/sudo/finish")
                .session(&elevated)
                .json(json!({ "ceremony": ceremony, "credential": credential })),
        )
        .await;
    assert_eq!(r.status, 401, "{:?}", r.json);
}

#[tokio::test]
async fn a_passkey_sign_in_needs_no_second_factor() {
    let app = app_with("pk_mfa", |b| {
        b.passkeys(PasskeyConfig::new(RP_ID, ORIGIN))
            .mfa(crudauth::mfa::MfaConfig::new("test"))
    })
    .await;
    let (s, mut device) = with_passkey(&app, "ann").await;
    app.enrol_totp(&s, PW).await;
    let r = app
        .send(Req::post("/login").form(&[("username", "ann"), ("password", PW)]))
        .await;
    assert_eq!(
        r.json["mfa_required"], true,
        "the password alone stops at the challenge"
    );
    let r = passkey_login(&app, &mut device).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json.get("mfa_required"), None);
    assert!(r.cookies().contains_key("session_id"));
}

#[tokio::test]
async fn a_deactivated_account_cannot_sign_in_with_its_passkey() {
    let app = setup("pk_inactive").await;
    let (_, mut device) = with_passkey(&app, "ann").await;
    let user = app.auth.repo().find_by_login("ann").await.unwrap().unwrap();
    let id = crudauth::UserRecord::user_id(&user);
    app.auth
        .repo()
        .update(
            &id,
            crudauth::user::UserUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(passkey_login(&app, &mut device).await.status, 401);
}

#[tokio::test]
async fn a_passkey_answers_the_second_factor_of_a_password_sign_in() {
    let app = app_with("pk_as_mfa", |b| {
        b.passkeys(PasskeyConfig::new(RP_ID, ORIGIN))
            .mfa(crudauth::mfa::MfaConfig::new("test"))
    })
    .await;
    let (s, mut device) = with_passkey(&app, "ann").await;
    app.enrol_totp(&s, PW).await;
    let challenge = || async {
        let r = app
            .send(Req::post("/login").form(&[("username", "ann"), ("password", PW)]))
            .await;
        assert_eq!(r.json["mfa_required"], true, "{:?}", r.json);
        r.json["challenge"].as_str().unwrap().to_owned()
    };
    let start = |challenge: String| {
        let app = &app;
        async move {
            let r = app
                .send(Req::post("/passkeys/mfa/start").json(json!({ "challenge": challenge })))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json);
            (
                r.json["ceremony"].as_str().unwrap().to_owned(),
                r.json["options"].clone(),
            )
        }
    };
    let finish = |challenge: &str, ceremony: &str, credential: &Value| {
        Req::post("/passkeys/mfa/finish")
            .json(json!({ "challenge": challenge, "ceremony": ceremony, "credential": credential }))
    };
    // A ceremony started for one challenge does not answer another.
    let first = challenge().await;
    let second = challenge().await;
    let (ceremony, options) = start(first.clone()).await;
    let credential = device.sign(ORIGIN, &options).unwrap();
    let r = app.send(finish(&second, &ceremony, &credential)).await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    // Another user's passkey does not answer Ann's challenge.
    let bob = member(&app, "bob").await;
    let mut bobs = SoftAuthenticator::new();
    enrol(&app, &bob, &mut bobs).await;
    let (ceremony, mut options) = start(first.clone()).await;
    options["publicKey"]["allowCredentials"] = json!([]);
    let credential = bobs.sign(ORIGIN, &options).unwrap();
    let r = app.send(finish(&first, &ceremony, &credential)).await;
    assert_eq!(r.status, 401, "{:?}", r.json);
    // Ann's passkey completes the sign-in, once.
    let (ceremony, options) = start(first.clone()).await;
    let credential = device.sign(ORIGIN, &options).unwrap();
    let r = app.send(finish(&first, &ceremony, &credential)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let signed_in = session_of(&r);
    assert_eq!(
        app.send(Req::get("/whoami").session(&signed_in))
            .await
            .status,
        200
    );
    let r = app
        .send(Req::post("/passkeys/mfa/start").json(json!({ "challenge": first })))
        .await;
    assert_eq!(r.status, 400, "the challenge is spent");
}

#[tokio::test]
async fn a_username_first_start_tells_nothing_about_the_account() {
    let app = setup("pk_enumeration").await;
    with_passkey(&app, "ann").await;
    member(&app, "bob").await; // an account without passkeys
    let shape = |options: &Value| {
        let mut keys: Vec<String> = options["publicKey"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.extend(options.as_object().unwrap().keys().cloned());
        keys.sort();
        let allowed = options["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len();
        (keys, allowed)
    };
    let (_, with_passkey) = login_start(&app, Some("ann")).await;
    let (_, without) = login_start(&app, Some("bob")).await;
    let (_, nobody) = login_start(&app, Some("nobody@example.com")).await;
    assert_eq!(shape(&with_passkey), shape(&without));
    assert_eq!(shape(&with_passkey), shape(&nobody));
    // Asking again shows the same made-up credential, as a real one would be.
    let (_, again) = login_start(&app, Some("nobody@example.com")).await;
    assert_eq!(
        nobody["publicKey"]["allowCredentials"],
        again["publicKey"]["allowCredentials"]
    );
    assert_ne!(
        nobody["publicKey"]["allowCredentials"],
        without["publicKey"]["allowCredentials"]
    );
}

#[tokio::test]
async fn two_removals_at_once_keep_the_last_passkey() {
    // The passkeys in the database (SQLite): each store call yields, so the two removals
    // interleave (with the memory store they would run one after the other).
    let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "pk_last_way_race")
        .await
        .unwrap();
    tdb.create_table(crudauth_tests::models::users::Entity)
        .await;
    crudauth_sea::SeaPasskeyStore::create_table(&tdb.db, crudauth_sea::PASSKEY_TABLE)
        .await
        .unwrap();
    let store = std::sync::Arc::new(crudauth_sea::SeaPasskeyStore::new(
        tdb.db.clone(),
        crudauth_sea::PASSKEY_TABLE,
    ));
    let repo = crudauth_sea::SeaUserRepository::new(tdb.db.clone());
    let auth = crudauth_tests::http::default_builder(repo)
        .passkeys(PasskeyConfig::new(RP_ID, ORIGIN).store(store))
        .build()
        .unwrap();
    let app = TestApp {
        app: crudauth_tests::http::demo_routes(&auth),
        auth,
        tdb,
    };

    let s = member(&app, "ann").await;
    let mut device = SoftAuthenticator::new();
    let id = enrol(&app, &s, &mut device).await;
    let mut other = SoftAuthenticator::new();
    let second = enrol(&app, &s, &mut other).await;
    let user = app.auth.repo().find_by_login("ann").await.unwrap().unwrap();
    let unusable = crudauth::password::make_unusable_password();
    app.auth
        .repo()
        .compare_and_set_password_hash(
            &crudauth::UserRecord::user_id(&user),
            &user.password,
            &unusable,
        )
        .await
        .unwrap();
    // Two removals at once of the last two passkeys: never both (when they interleave,
    // each may find none left after its delete and put its own back: both refused).
    let delete =
        |id: &str| Req::new(axum::http::Method::DELETE, &format!("/passkeys/{id}")).session(&s);
    let (a, b) = tokio::join!(app.send(delete(&id)), app.send(delete(&second)));
    let statuses = [a.status.as_u16(), b.status.as_u16()];
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    let r = app.send(Req::get("/passkeys").session(&s)).await;
    let left = r.json.as_array().unwrap().len();
    let removed = statuses.iter().filter(|s| **s == 200).count();
    assert!(left >= 1, "the last way in survives: {statuses:?}");
    assert_eq!(
        left + removed,
        2,
        "each answer tells the truth: {statuses:?}"
    );
}

#[tokio::test]
async fn a_decoy_ceremony_fails_whatever_answers_it() {
    let app = setup("pk_decoy").await;
    let (_, mut device) = with_passkey(&app, "ann").await;
    member(&app, "bob").await; // no passkeys
    for name in ["bob", "nobody@example.com"] {
        // Ann answers a start for another name with her own passkey: a decoy refuses it
        // as a wrong answer, so the answer cannot tell that the name has no passkey.
        let (ceremony, mut options) = login_start(&app, Some(name)).await;
        options["publicKey"]["allowCredentials"] = json!([]);
        let credential = device.sign(ORIGIN, &options).unwrap();
        let r = login_finish(&app, &ceremony, &credential).await;
        assert_eq!(
            (r.status.as_u16(), r.detail()),
            (401, "Passkey verification failed"),
            "{name}"
        );
    }
    // The made-up credential follows the lookup's equivalence: one address, one id.
    let (_, lower) = login_start(&app, Some("nobody@example.com")).await;
    let (_, upper) = login_start(&app, Some("NoBody@Example.COM")).await;
    assert_eq!(
        lower["publicKey"]["allowCredentials"],
        upper["publicKey"]["allowCredentials"]
    );
    // Control: the same passkey in a usernameless ceremony signs Ann in.
    assert_eq!(passkey_login(&app, &mut device).await.status, 200);
}

#[tokio::test]
async fn the_owner_is_mailed_when_a_passkey_is_added() {
    let outbox = crudauth_tests::http::outbox_path("pk_notice");
    let path = outbox.clone();
    let app = app_with("pk_notice", move |b| {
        crudauth_tests::http::with_outbox(b, &path).passkeys(PasskeyConfig::new(RP_ID, ORIGIN))
    })
    .await;
    let s = member(&app, "ann").await;
    enrol(&app, &s, &mut SoftAuthenticator::new()).await;
    let mails = crudauth_tests::http::mails(&app.auth, &outbox).await;
    let notice = mails
        .iter()
        .find(|m| m["kind"] == "passkey_added")
        .expect("a notice");
    assert_eq!(notice["to"], "ann@example.com");
    assert_eq!(notice["link"], Value::Null);
}

#[tokio::test]
async fn an_account_without_a_password_adds_its_first_passkey_from_a_fresh_sign_in() {
    let outbox = crudauth_tests::http::outbox_path("pk_first");
    let path = outbox.clone();
    let app = app_with("pk_first", move |b| {
        crudauth_tests::http::with_outbox(b, &path)
            .passkeys(PasskeyConfig::new(RP_ID, ORIGIN))
            .passwordless(crudauth::passwordless::PasswordlessConfig {
                create_accounts: true,
                ..crudauth::passwordless::PasswordlessConfig::new(crudauth_tests::http::FRONTEND)
            })
    })
    .await;
    // Signed up by an emailed code: no password, a proven address, a fresh session.
    let r = app
        .send(Req::post("/otp/request").json(json!({ "email": "fay@example.com" })))
        .await;
    assert_eq!(r.status, 200);
    let mails = crudauth_tests::http::mails(&app.auth, &outbox).await;
    let code = mails
        .iter()
        .rev()
        .find(|m| m["kind"] == "sign_in_code")
        .unwrap()["code"]
        .clone();
    let r = app
        .send(Req::post("/otp/verify").json(json!({ "email": "fay@example.com", "code": code })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let s = session_of(&r);
    let mut device = SoftAuthenticator::new();
    enrol(&app, &s, &mut device).await;
    // A second one needs sudo: there is a passkey to re-check now.
    let r = app
        .send(Req::post("/passkeys/register/start").session(&s))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Re-authentication required.")
    );
    assert_eq!(passkey_login(&app, &mut device).await.status, 200);
}
