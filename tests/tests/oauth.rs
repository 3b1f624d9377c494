//! OAuth and OpenID Connect over real HTTP: the provider is a small issuer served on
//! loopback (`crudauth_tests::oauth_provider`), the app the real router. Each attack is a
//! test of its own, named after it.

use std::sync::Arc;
use std::time::Duration;

use crudauth::oauth::{OAuthConfig, ProviderConfig, ResponseMode};
use crudauth::{CrudAuthBuilder, UserRecord};
use crudauth_tests::http::{Req, Resp, Session, TestApp, User, app_with};
use crudauth_tests::oauth_provider::{CLIENT_ID, CLIENT_SECRET, FakeIdp, Forge, Person};
use serde_json::json;

/// The app's public base (never served: the app runs in-process).
const BASE: &str = "http://127.0.0.1:8000";

fn providers(idp: &FakeIdp, config: OAuthConfig) -> OAuthConfig {
    config
        .provider(ProviderConfig::oidc(
            "oidc",
            &idp.base,
            CLIENT_ID,
            CLIENT_SECRET,
        ))
        .provider(ProviderConfig::github(CLIENT_ID, CLIENT_SECRET).endpoints(
            format!("{}/login/oauth/authorize", idp.base),
            format!("{}/login/oauth/access_token", idp.base),
            format!("{}/api", idp.base),
        ))
        .provider(
            ProviderConfig::microsoft(CLIENT_ID, CLIENT_SECRET, "common")
                .issuer(idp.microsoft_issuer("common")),
        )
}

async fn setup_with(
    test: &str,
    oauth: impl FnOnce(OAuthConfig) -> OAuthConfig,
    more: impl FnOnce(CrudAuthBuilder<User>) -> CrudAuthBuilder<User>,
) -> (TestApp, FakeIdp) {
    let idp = FakeIdp::start().await;
    let mut config = providers(&idp, OAuthConfig::new(BASE));
    config.http_timeout = Duration::from_secs(2);
    let config = oauth(config);
    let app = app_with(test, move |b| more(b.oauth(config))).await;
    (app, idp)
}

async fn setup(test: &str) -> (TestApp, FakeIdp) {
    setup_with(test, |c| c, |b| b).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(r: &Resp) -> String {
    r.headers["location"].to_str().expect("location").to_owned()
}

fn state_cookie(r: &Resp) -> String {
    r.cookies()["oauth_state"].0.clone()
}

/// Starts a flow: the authorize answer and the `oauth_state` cookie it set.
async fn start(app: &TestApp, provider: &str, query: &str) -> (Resp, String) {
    let r = app
        .send(Req::get(&format!("/oauth/{provider}/authorize{query}")))
        .await;
    assert_eq!(r.status, 307, "authorize: {:?}", r.json);
    let cookie = state_cookie(&r);
    (r, cookie)
}

/// The browser at the provider: it approves and sends the browser back; answers the path
/// and query of the callback.
async fn at_provider(authorize_url: &str) -> String {
    let r = http().get(authorize_url).send().await.expect("provider");
    assert_eq!(r.status(), 302, "provider authorize: {:?}", r.text().await);
    let back = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    back.strip_prefix(BASE).expect("back to the app").to_owned()
}

/// The callback in a browser that is signed in (a link flow ends in its session).
async fn callback_in(app: &TestApp, path: &str, cookie: &str, s: &Session) -> Resp {
    app.send(
        Req::get(path)
            .session(s)
            .header("cookie", format!("oauth_state={cookie}")),
    )
    .await
}

async fn callback(app: &TestApp, path: &str, cookie: &str) -> Resp {
    app.send(Req::get(path).header("cookie", format!("oauth_state={cookie}")))
        .await
}

/// A whole browser sign-in; answers the callback's response.
async fn sign_in(
    app: &TestApp,
    idp: &FakeIdp,
    provider: &str,
    person: Person,
    query: &str,
) -> Resp {
    idp.sign_in_as(person);
    let (r, cookie) = start(app, provider, query).await;
    let back = at_provider(&location(&r)).await;
    callback(app, &back, &cookie).await
}

fn session_of(r: &Resp) -> Session {
    let cookies = r.cookies();
    Session {
        id: cookies["session_id"].0.clone(),
        csrf: cookies["csrf_token"].0.clone(),
    }
}

async fn whoami(app: &TestApp, s: &Session) -> Resp {
    app.send(Req::get("/whoami").session(s)).await
}

fn error_of(r: &Resp) -> String {
    assert_eq!(r.status, 307, "{:?}", r.json);
    let target = location(r);
    let url = url::Url::parse(&format!("{BASE}{target}")).expect("target");
    url.query_pairs()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no error in {target}"))
}

async fn user_by_email(app: &TestApp, email: &str) -> Option<User> {
    app.auth.repo().find_by_login(email).await.expect("repo")
}

#[tokio::test]
async fn a_first_sign_in_creates_the_account_links_it_and_opens_a_session() {
    let (app, idp) = setup("oauth_first_sign_in").await;
    let person = Person {
        username: Some("Ann.Lee".into()),
        ..Person::verified("sub-ann", "ann@example.com")
    };
    let r = sign_in(&app, &idp, "oidc", person, "?redirect_to=/welcome").await;
    assert_eq!(r.status, 307, "{:?}", r.json);
    assert_eq!(location(&r), "/welcome");
    let cookies = r.cookies();
    assert!(
        cookies["oauth_state"].1.contains("Max-Age=0"),
        "the used state leaves the cookie"
    );
    let s = session_of(&r);
    assert_eq!(whoami(&app, &s).await.status, 200);
    let user = user_by_email(&app, "ann@example.com")
        .await
        .expect("created");
    assert_eq!(user.username, "ann_lee");
    assert!(user.email_verified);
    assert!(crudauth::password::is_unusable_password(&user.password));
    let links = app
        .auth
        .oauth()
        .unwrap()
        .links_of(&user.user_id())
        .await
        .unwrap();
    assert_eq!((links.len(), links[0].subject.as_str()), (1, "sub-ann"));
    // The session says how it was made.
    let sessions = app.auth.sessions().unwrap();
    let live = sessions.resolve(&s.id).await.unwrap().expect("live");
    assert_eq!(
        (
            live.record.login_type.as_deref(),
            live.record.provider.as_deref()
        ),
        (Some("oauth"), Some("oidc"))
    );
}

#[tokio::test]
async fn the_authorize_redirect_carries_pkce_s256_a_nonce_and_a_256_bit_state() {
    let (app, _idp) = setup("oauth_authorize_params").await;
    let (r, cookie) = start(&app, "oidc", "").await;
    let url = url::Url::parse(&location(&r)).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], format!("{BASE}/oauth/oidc/callback"));
    assert!(q["scope"].contains("openid") && q["scope"].contains("email"));
    assert_eq!(q["state"].len(), 43);
    assert_eq!(q["nonce"].len(), 43);
    assert_eq!(cookie, q["state"]);
    let full = &r.cookies()["oauth_state"].1;
    for attr in [
        "HttpOnly",
        "Max-Age=1800",
        "Path=/",
        "SameSite=Lax",
        "Secure",
    ] {
        assert!(full.contains(attr), "{attr} in {full}");
    }
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn es256_id_tokens_verify_too() {
    let (app, idp) = setup("oauth_es256").await;
    idp.forge(Forge::Es256);
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s1", "es@example.com"),
        "",
    )
    .await;
    assert_eq!(r.status, 307);
    assert_eq!(location(&r), "/");
    assert!(r.cookies().contains_key("session_id"));
}

#[tokio::test]
async fn a_known_link_signs_in_its_user_even_when_the_provider_address_changed() {
    let (app, idp) = setup("oauth_known_link").await;
    sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-bob", "bob@example.com"),
        "",
    )
    .await;
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-bob", "bob@elsewhere.example"),
        "",
    )
    .await;
    let s = session_of(&r);
    let me = app.send(Req::get("/me").session(&s)).await;
    assert_eq!(me.json["email"], "bob@example.com");
    assert!(user_by_email(&app, "bob@elsewhere.example").await.is_none());
}

async fn assert_refused(forge: Forge, test: &str) {
    let (app, idp) = setup(test).await;
    idp.forge(forge);
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-x", "x@example.com"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "oauth_failed", "{forge:?}");
    assert!(!r.cookies().contains_key("session_id"));
    assert!(
        user_by_email(&app, "x@example.com").await.is_none(),
        "{forge:?} made an account"
    );
}

#[tokio::test]
async fn an_id_token_with_a_wrong_nonce_is_refused() {
    assert_refused(Forge::WrongNonce, "oauth_wrong_nonce").await;
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    assert_refused(Forge::WrongAudience, "oauth_wrong_aud").await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    assert_refused(Forge::WrongIssuer, "oauth_wrong_iss").await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    assert_refused(Forge::Expired, "oauth_expired").await;
}

#[tokio::test]
async fn an_unsigned_alg_none_id_token_is_refused() {
    assert_refused(Forge::AlgNone, "oauth_alg_none").await;
}

#[tokio::test]
async fn an_id_token_signed_by_a_key_the_jwks_does_not_hold_is_refused() {
    assert_refused(Forge::UnknownKey, "oauth_unknown_kid").await;
}

#[tokio::test]
async fn an_hs256_id_token_signed_with_the_client_secret_is_refused() {
    assert_refused(Forge::Hs256ClientSecret, "oauth_hs256").await;
}

#[tokio::test]
async fn an_id_token_authorized_for_another_party_is_refused() {
    assert_refused(Forge::OtherAzp, "oauth_azp").await;
}

#[tokio::test]
async fn a_key_rotation_is_followed_by_one_jwks_refetch_and_no_more_within_a_minute() {
    let (app, idp) = setup("oauth_rotation").await;
    sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s1", "r1@example.com"),
        "",
    )
    .await;
    assert_eq!(idp.jwks_fetches(), 1, "fetched at discovery");
    idp.rotate();
    idp.forge(Forge::RotatedKey);
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s2", "r2@example.com"),
        "",
    )
    .await;
    assert_eq!(r.status, 307);
    assert!(r.cookies().contains_key("session_id"), "{}", location(&r));
    assert_eq!(idp.jwks_fetches(), 2, "one refetch for the new kid");
    // A stream of unknown kids does not hammer the provider.
    idp.forge(Forge::UnknownKey);
    for i in 0..3 {
        let r = sign_in(
            &app,
            &idp,
            "oidc",
            Person::verified("s3", &format!("u{i}@example.com")),
            "",
        )
        .await;
        assert_eq!(error_of(&r), "oauth_failed");
    }
    assert_eq!(idp.jwks_fetches(), 2, "no refetch within the minute");
}

#[tokio::test]
async fn a_callback_without_state_is_invalid_state() {
    let (app, idp) = setup("oauth_state_missing").await;
    idp.sign_in_as(Person::verified("s", "s@example.com"));
    let (r, cookie) = start(&app, "oidc", "").await;
    let back = at_provider(&location(&r)).await;
    let without: String = back
        .split('&')
        .filter(|p| !p.starts_with("state="))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        error_of(&callback(&app, &without, &cookie).await),
        "invalid_state"
    );
    // No cookie at all.
    let r = app.send(Req::get(&back)).await;
    assert_eq!(error_of(&r), "invalid_state");
}

#[tokio::test]
async fn a_state_from_another_browser_is_invalid_and_does_not_consume_the_state() {
    let (app, idp) = setup("oauth_state_mismatch").await;
    idp.sign_in_as(Person::verified("s", "m@example.com"));
    let (r, cookie) = start(&app, "oidc", "").await;
    let back = at_provider(&location(&r)).await;
    // The attacker's browser (a cookie of its own flow) presents the victim's callback.
    let (_, attacker_cookie) = start(&app, "oidc", "").await;
    let refused = callback(&app, &back, &attacker_cookie).await;
    assert_eq!(error_of(&refused), "invalid_state");
    assert!(!refused.cookies().contains_key("session_id"));
    // The rightful browser still completes.
    let ok = callback(&app, &back, &cookie).await;
    assert!(ok.cookies().contains_key("session_id"), "{}", location(&ok));
}

#[tokio::test]
async fn a_replayed_state_is_invalid_state() {
    let (app, idp) = setup("oauth_state_replay").await;
    idp.sign_in_as(Person::verified("s", "rp@example.com"));
    let (r, cookie) = start(&app, "oidc", "").await;
    let back = at_provider(&location(&r)).await;
    assert!(
        callback(&app, &back, &cookie)
            .await
            .cookies()
            .contains_key("session_id")
    );
    assert_eq!(
        error_of(&callback(&app, &back, &cookie).await),
        "invalid_state"
    );
}

#[tokio::test]
async fn an_expired_state_is_invalid_state() {
    let (app, idp) = setup_with(
        "oauth_state_expired",
        |mut c| {
            c.state_ttl = Duration::from_secs(1);
            c
        },
        |b| b,
    )
    .await;
    idp.sign_in_as(Person::verified("s", "ex@example.com"));
    let (r, cookie) = start(&app, "oidc", "").await;
    let back = at_provider(&location(&r)).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        error_of(&callback(&app, &back, &cookie).await),
        "invalid_state"
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_by_the_provider_as_oauth_failed() {
    let (app, idp) = setup("oauth_code_replay").await;
    idp.sign_in_as(Person::verified("s", "cr@example.com"));
    let (r, cookie) = start(&app, "oidc", "").await;
    let back = at_provider(&location(&r)).await;
    assert!(
        callback(&app, &back, &cookie)
            .await
            .cookies()
            .contains_key("session_id")
    );
    // A fresh state of the same browser, with the used code.
    let (r2, cookie2) = start(&app, "oidc", "").await;
    let state2 = url::Url::parse(&location(&r2))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let code = back
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let replay = format!("/oauth/oidc/callback?code={code}&state={state2}");
    assert_eq!(
        error_of(&callback(&app, &replay, &cookie2).await),
        "oauth_failed"
    );
}

#[tokio::test]
async fn two_concurrent_callbacks_for_one_state_exactly_one_wins() {
    let (app, idp) = setup("oauth_concurrent").await;
    idp.sign_in_as(Person::verified("s", "cc@example.com"));
    let (r, cookie) = start(&app, "oidc", "").await;
    let back = at_provider(&location(&r)).await;
    let (a, b) = tokio::join!(
        callback(&app, &back, &cookie),
        callback(&app, &back, &cookie)
    );
    let won = [&a, &b]
        .iter()
        .filter(|r| r.cookies().contains_key("session_id"))
        .count();
    assert_eq!(won, 1);
    let lost = if a.cookies().contains_key("session_id") {
        b
    } else {
        a
    };
    assert_eq!(error_of(&lost), "invalid_state");
}

#[tokio::test]
async fn parallel_flows_in_one_browser_do_not_clobber_each_other() {
    let (app, idp) = setup("oauth_parallel").await;
    idp.sign_in_as(Person::verified("s", "pf@example.com"));
    let (r1, c1) = start(&app, "oidc", "").await;
    let r2 = app
        .send(Req::get("/oauth/github/authorize").header("cookie", format!("oauth_state={c1}")))
        .await;
    let both = state_cookie(&r2);
    assert_eq!(both.split('.').count(), 2);
    let back = at_provider(&location(&r1)).await;
    let r = callback(&app, &back, &both).await;
    assert!(r.cookies().contains_key("session_id"));
    assert_eq!(
        state_cookie(&r).split('.').count(),
        1,
        "the other flow's state stays"
    );
}

#[tokio::test]
async fn an_unverified_provider_address_never_links_or_creates() {
    let (app, idp) = setup("oauth_unverified").await;
    app.register("victim@example.com", "victim", "a long password 1")
        .await;
    let person = Person {
        email_verified: Some(false),
        ..Person::verified("s-att", "victim@example.com")
    };
    let r = sign_in(&app, &idp, "oidc", person, "").await;
    assert_eq!(error_of(&r), "email_unverified");
    let person = Person {
        email_verified: None,
        ..Person::verified("s-att2", "new@example.com")
    };
    let r = sign_in(&app, &idp, "oidc", person, "").await;
    assert_eq!(
        error_of(&r),
        "email_unverified",
        "no claim means unverified"
    );
    let person = Person {
        email: None,
        email_verified: None,
        ..Person::verified("s-none", "")
    };
    let r = sign_in(&app, &idp, "oidc", person, "").await;
    assert_eq!(error_of(&r), "email_missing");
    // The victim's account is as it was: its password works, nothing is linked to it.
    app.login("victim", "a long password 1").await;
    let victim = user_by_email(&app, "victim@example.com").await.unwrap();
    assert!(
        app.auth
            .oauth()
            .unwrap()
            .links_of(&victim.user_id())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_provider_address_in_another_letter_case_links_to_the_same_account() {
    let (app, idp) = setup("oauth_case").await;
    app.register("carol@example.com", "carol", "a long password 1")
        .await;
    let carol = user_by_email(&app, "carol@example.com").await.unwrap();
    mark_verified(&app, &carol).await;
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-c", "Carol@EXAMPLE.com"),
        "",
    )
    .await;
    let me = app.send(Req::get("/me").session(&session_of(&r))).await;
    assert_eq!(me.json["username"], "carol");
    // A verified account is joined, not claimed: its password still works.
    app.login("carol", "a long password 1").await;
}

#[tokio::test]
async fn a_look_alike_provider_address_does_not_link_to_the_account() {
    let (app, idp) = setup("oauth_lookalike").await;
    app.register("dave@example.com", "dave", "a long password 1")
        .await;
    // Cyrillic "а" in place of the Latin "a".
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-d", "d\u{0430}ve@example.com"),
        "",
    )
    .await;
    let me = app.send(Req::get("/me").session(&session_of(&r))).await;
    assert_ne!(me.json["username"], "dave");
    let dave = user_by_email(&app, "dave@example.com").await.unwrap();
    assert!(
        app.auth
            .oauth()
            .unwrap()
            .links_of(&dave.user_id())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn mark_verified(app: &TestApp, user: &User) {
    let update = crudauth::UserUpdate {
        email_verified: Some(true),
        ..Default::default()
    };
    app.auth
        .repo()
        .update(&user.user_id(), update)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unsafe_redirect_to_falls_back_to_the_default() {
    let (app, idp) = setup("oauth_redirects").await;
    for (i, bad) in [
        "https://evil.example/x",
        "//evil.example",
        "/\\evil.example",
        "/ok%0d%0aSet-Cookie:%20x=1",
    ]
    .iter()
    .enumerate()
    {
        let person = Person::verified("s-r", "redir@example.com");
        let query = format!(
            "?redirect_to={}",
            if bad.contains('%') {
                bad.to_string()
            } else {
                url::form_urlencoded::byte_serialize(bad.as_bytes()).collect()
            }
        );
        let r = sign_in(&app, &idp, "oidc", person, &query).await;
        assert_eq!(location(&r), "/", "case {i}: {bad}");
    }
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-r", "redir@example.com"),
        "?redirect_to=http%3A%2F%2F127.0.0.1%3A8000%2Fhome",
    )
    .await;
    assert_eq!(
        location(&r),
        "http://127.0.0.1:8000/home",
        "same origin, absolute"
    );
}

#[tokio::test]
async fn a_provider_that_hangs_times_out_as_oauth_failed() {
    let (app, idp) = setup("oauth_hang").await;
    idp.hang();
    let started = std::time::Instant::now();
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s", "h@example.com"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "oauth_failed");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 2 s timeout held"
    );
}

#[tokio::test]
async fn a_provider_answering_garbage_json_is_oauth_failed() {
    let (app, idp) = setup("oauth_garbage").await;
    idp.garbage();
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s", "g@example.com"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "oauth_failed");
}

#[tokio::test]
async fn a_provider_that_is_down_is_oauth_failed_not_a_500() {
    let idp = FakeIdp::start().await;
    let config = OAuthConfig::new(BASE).provider(ProviderConfig::oidc(
        "down",
        "http://127.0.0.1:9",
        CLIENT_ID,
        CLIENT_SECRET,
    ));
    let app = app_with("oauth_down", move |b| b.oauth(config)).await;
    drop(idp);
    let r = app.send(Req::get("/oauth/down/authorize")).await;
    assert_eq!(error_of(&r), "oauth_failed");
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let (app, idp) = setup("oauth_issuer_mismatch").await;
    idp.publish_issuer("https://evil.example");
    let r = app.send(Req::get("/oauth/oidc/authorize")).await;
    assert_eq!(error_of(&r), "oauth_failed");
}

#[tokio::test]
async fn linking_a_provider_account_already_linked_to_another_user_is_refused() {
    let (app, idp) = setup("oauth_already_linked").await;
    sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-shared", "first@example.com"),
        "",
    )
    .await;
    app.register("second@example.com", "second", "a long password 1")
        .await;
    let account = user_by_email(&app, "second@example.com").await.unwrap();
    mark_verified(&app, &account).await;
    let s = app.login("second", "a long password 1").await;
    idp.sign_in_as(Person::verified("s-shared", "first@example.com"));
    let r = app.send(Req::post("/oauth/oidc/link").session(&s)).await;
    assert_eq!(r.status, 303, "{:?}", r.json);
    let back = at_provider(&location(&r)).await;
    let done = callback_in(&app, &back, &state_cookie(&r), &s).await;
    assert_eq!(error_of(&done), "provider_already_linked");
    // And an account found by its address that already has another account of the provider.
    let (app, idp) = setup("oauth_already_linked_2").await;
    sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-1", "eve@example.com"),
        "",
    )
    .await;
    let other = app.auth.oauth().unwrap();
    let eve = user_by_email(&app, "eve@example.com").await.unwrap();
    assert_eq!(other.links_of(&eve.user_id()).await.unwrap().len(), 1);
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-2", "eve@example.com"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "provider_already_linked");
}

#[tokio::test]
async fn claiming_an_unverified_local_account_ends_its_sessions_tokens_and_password() {
    let (app, idp) = setup("oauth_claim").await;
    app.register("frank@example.com", "frank", "squatter password 1")
        .await;
    let squatter_session = app.login("frank", "squatter password 1").await;
    let (access, refresh) = app.token("frank", "squatter password 1", "").await;
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-frank", "frank@example.com"),
        "",
    )
    .await;
    let owner = session_of(&r);
    assert_eq!(whoami(&app, &owner).await.status, 200);
    assert_eq!(
        whoami(&app, &squatter_session).await.status,
        401,
        "the squatter's session ended"
    );
    assert_eq!(
        app.send(Req::get("/whoami").bearer(&access)).await.status,
        401,
        "the access token died"
    );
    let refreshed = app
        .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
        .await;
    assert_eq!(refreshed.status, 401, "the refresh family died");
    let login = app
        .send(
            Req::post("/login").form(&[("username", "frank"), ("password", "squatter password 1")]),
        )
        .await;
    assert_eq!(login.status, 401, "the squatter's password is unusable");
    assert!(
        user_by_email(&app, "frank@example.com")
            .await
            .unwrap()
            .email_verified
    );
}

#[tokio::test]
async fn an_inactive_account_is_account_inactive() {
    let (app, idp) = setup("oauth_inactive").await;
    sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-in", "in@example.com"),
        "",
    )
    .await;
    let user = user_by_email(&app, "in@example.com").await.unwrap();
    let update = crudauth::UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    app.auth
        .repo()
        .update(&user.user_id(), update)
        .await
        .unwrap();
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-in", "in@example.com"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "account_inactive");
}

#[tokio::test]
async fn github_uses_the_primary_verified_address_and_never_an_unverified_one() {
    let (app, idp) = setup("oauth_github").await;
    idp.github_emails(&[
        ("old@example.com", false, true),
        ("octo@example.com", true, true),
    ]);
    let person = Person {
        username: Some("octocat".into()),
        ..Person::verified("583231", "ignored@example.com")
    };
    let r = sign_in(&app, &idp, "github", person.clone(), "").await;
    let me = app.send(Req::get("/me").session(&session_of(&r))).await;
    assert_eq!(
        (me.json["email"].as_str(), me.json["username"].as_str()),
        (Some("octo@example.com"), Some("octocat"))
    );
    idp.github_emails(&[("unverified@example.com", true, false)]);
    let person = Person {
        username: Some("other".into()),
        ..Person::verified("999", "x@example.com")
    };
    let r = sign_in(&app, &idp, "github", person, "").await;
    assert_eq!(error_of(&r), "email_unverified");
}

#[tokio::test]
async fn microsoft_multi_tenant_tokens_are_checked_against_their_own_tenant() {
    let (app, idp) = setup("oauth_microsoft").await;
    // A tenant writes its users' `email` itself: `email_verified` alone is not Microsoft's
    // word on it, `xms_edov` is.
    let unproven = Person {
        tid: Some("9f1a6a4b-0000-4000-8000-000000000001".into()),
        ..Person::verified("ms-0", "ceo@victim.example")
    };
    let r = sign_in(&app, &idp, "microsoft", unproven, "").await;
    assert_eq!(error_of(&r), "email_unverified");
    let person = Person {
        tid: Some("9f1a6a4b-0000-4000-8000-000000000001".into()),
        xms_edov: Some(true),
        ..Person::verified("ms-1", "ms@example.com")
    };
    let r = sign_in(&app, &idp, "microsoft", person.clone(), "").await;
    assert!(r.cookies().contains_key("session_id"), "{}", location(&r));
    idp.forge(Forge::TenantMismatch);
    let r = sign_in(&app, &idp, "microsoft", person, "").await;
    assert_eq!(error_of(&r), "oauth_failed");
}

#[tokio::test]
async fn json_mode_answers_the_url_the_user_and_errors_as_400() {
    let (app, idp) = setup_with(
        "oauth_json",
        |mut c| {
            c.response_mode = ResponseMode::Json;
            c
        },
        |b| b,
    )
    .await;
    idp.sign_in_as(Person::verified("s-j", "json@example.com"));
    let r = app
        .send(Req::get("/oauth/oidc/authorize?redirect_to=/next"))
        .await;
    assert_eq!(r.status, 200);
    let cookie = state_cookie(&r);
    let back = at_provider(r.json["url"].as_str().unwrap()).await;
    let done = callback(&app, &back, &cookie).await;
    assert_eq!(done.status, 200, "{:?}", done.json);
    assert_eq!(done.json["user"]["email"], "json@example.com");
    assert_eq!(done.json["redirect_to"], "/next");
    assert_eq!(done.json["csrf_token"], done.cookies()["csrf_token"].0);
    let again = callback(&app, &back, &cookie).await;
    assert_eq!(
        (again.status.as_u16(), again.detail()),
        (400, "Invalid or expired OAuth state")
    );
}

#[tokio::test]
async fn token_mode_hands_a_pair_through_a_pkce_bound_one_time_code() {
    let (app, idp) = setup("oauth_token_mode").await;
    idp.sign_in_as(Person::verified("s-t", "cli@example.com"));
    let verifier = "a-client-verifier-of-at-least-forty-three-characters-0123";
    let digest = <sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes());
    use base64::Engine;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    // Without a challenge, refused.
    let r = app
        .send(Req::get("/oauth/oidc/authorize?response=token"))
        .await;
    assert_eq!(r.status, 400);
    let (r, cookie) = start(
        &app,
        "oidc",
        &format!(
            "?response=token&code_challenge={challenge}&code_challenge_method=S256&redirect_to=/app"
        ),
    )
    .await;
    let back = at_provider(&location(&r)).await;
    let done = callback(&app, &back, &cookie).await;
    assert!(
        !done.cookies().contains_key("session_id"),
        "no session in token mode"
    );
    let target = location(&done);
    let code = target
        .strip_prefix("/app#oauth_code=")
        .expect("code in the fragment")
        .to_owned();
    let wrong = app
        .send(
            Req::post("/oauth/exchange")
                .json(json!({ "code": code, "code_verifier": "x".repeat(50) })),
        )
        .await;
    assert_eq!(wrong.status, 400);
    let right = app
        .send(Req::post("/oauth/exchange").json(json!({ "code": code, "code_verifier": verifier })))
        .await;
    assert_eq!(right.status, 400, "a wrong verifier burnt the code");
    // A fresh flow, redeemed properly, once.
    let (r, cookie) = start(
        &app,
        "oidc",
        &format!("?response=token&code_challenge={challenge}&code_challenge_method=S256"),
    )
    .await;
    let done = callback(&app, &at_provider(&location(&r)).await, &cookie).await;
    let code = location(&done)
        .split("#oauth_code=")
        .nth(1)
        .unwrap()
        .to_owned();
    let body = json!({ "code": code, "code_verifier": verifier });
    let pair = app
        .send(Req::post("/oauth/exchange").json(body.clone()))
        .await;
    assert_eq!(pair.status, 200, "{:?}", pair.json);
    let access = pair.json["access_token"].as_str().unwrap();
    assert_eq!(
        app.send(Req::get("/whoami").bearer(access)).await.json["via"],
        "bearer"
    );
    assert_eq!(
        app.send(Req::post("/oauth/exchange").json(body))
            .await
            .status,
        400,
        "single use"
    );
}

#[tokio::test]
async fn link_and_unlink_need_a_recent_sign_in_and_never_remove_the_last_way_in() {
    let (app, idp) = setup("oauth_links").await;
    // An OAuth-only account: its one link is its only way in.
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-o", "only@example.com"),
        "",
    )
    .await;
    let only = session_of(&r);
    let refused = app
        .send(Req::new(axum::http::Method::DELETE, "/oauth/links/oidc").session(&only))
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.json);
    // A password account links GitHub, lists it, unlinks it.
    app.register("gina@example.com", "gina", "a long password 1")
        .await;
    let account = user_by_email(&app, "gina@example.com").await.unwrap();
    mark_verified(&app, &account).await;
    let s = app.login("gina", "a long password 1").await;
    idp.github_emails(&[("gina@github.example", true, true)]);
    idp.sign_in_as(Person {
        username: Some("gina".into()),
        ..Person::verified("4242", "x@example.com")
    });
    let r = app
        .send(Req::post("/oauth/github/link?redirect_to=/settings").session(&s))
        .await;
    assert_eq!(r.status, 303);
    let done = callback_in(
        &app,
        &at_provider(&location(&r)).await,
        &state_cookie(&r),
        &s,
    )
    .await;
    assert_eq!(location(&done), "/settings?linked=github");
    let listed = app.send(Req::get("/oauth/links").session(&s)).await;
    assert_eq!(listed.json[0]["provider"], "github");
    assert_eq!(listed.json[0]["email"], "gina@github.example");
    let gone = app
        .send(Req::new(axum::http::Method::DELETE, "/oauth/links/github").session(&s))
        .await;
    assert_eq!(gone.status, 200, "{:?}", gone.json);
    let missing = app
        .send(Req::new(axum::http::Method::DELETE, "/oauth/links/github").session(&s))
        .await;
    assert_eq!(missing.status, 404);
    // Linking needs a session, and its CSRF token.
    let forged = app
        .send(Req::post("/oauth/github/link").session_cookie_only(&s))
        .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn linking_outside_the_fresh_sign_in_window_is_refused() {
    let (app, _idp) = setup_with(
        "oauth_link_stale",
        |c| c,
        |b| {
            b.recovery(crudauth::RecoveryConfig {
                fresh_sign_in: Duration::from_secs(0),
                ..crudauth::RecoveryConfig::new("https://app.example")
            })
            .email_sender(Arc::new(crudauth::delivery::OutboxSender::new(
                std::env::temp_dir().join("crudauth-oauth-stale.jsonl"),
            )))
        },
    )
    .await;
    app.register("hal@example.com", "hal", "a long password 1")
        .await;
    let s = app.login("hal", "a long password 1").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app.send(Req::post("/oauth/github/link").session(&s)).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    let r = app
        .send(Req::new(axum::http::Method::DELETE, "/oauth/links/github").session(&s))
        .await;
    assert_eq!(
        r.status, 403,
        "unlinking needs a recent sign-in too: {:?}",
        r.json
    );
}

#[tokio::test]
async fn set_password_works_once_for_an_account_made_by_a_provider() {
    let (app, idp) = setup("oauth_set_password").await;
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-p", "pw@example.com"),
        "",
    )
    .await;
    let s = session_of(&r);
    let first = app
        .send(
            Req::post("/set-password")
                .session(&s)
                .json(json!({ "new_password": "a brand new password" })),
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.json);
    let user = user_by_email(&app, "pw@example.com").await.unwrap();
    let s = app.login(&user.username, "a brand new password").await;
    let again = app
        .send(
            Req::post("/set-password")
                .session(&s)
                .json(json!({ "new_password": "another new password" })),
        )
        .await;
    assert_eq!(again.status, 400);
}

#[tokio::test]
async fn an_unknown_provider_is_400_and_authorize_is_rate_limited_per_ip() {
    let (app, _idp) = setup("oauth_unknown_and_limit").await;
    let r = app.send(Req::get("/oauth/nope/authorize")).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (400, "Unknown or unconfigured OAuth provider: 'nope'")
    );
    let r = app
        .send(Req::get("/oauth/nope/callback?code=x&state=y"))
        .await;
    assert_eq!(r.status, 400);
    for _ in 0..30 {
        let r = app.send(Req::get("/oauth/oidc/authorize")).await;
        assert_eq!(r.status, 307);
    }
    let r = app.send(Req::get("/oauth/oidc/authorize")).await;
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
    // Another client is not affected.
    assert_eq!(
        app.send(Req::get("/oauth/oidc/authorize").peer([10, 0, 0, 2]))
            .await
            .status,
        307
    );
}

#[tokio::test]
async fn hooks_see_the_user_the_provider_and_the_client() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let (app, idp) = setup_with(
        "oauth_hooks",
        |c| c,
        move |b| {
            b.on_oauth_login(move |user, provider, created, ctx| {
                let seen = s1.clone();
                async move {
                    seen.lock().unwrap().push(format!(
                        "oauth:{}:{provider}:{created}:{}",
                        user.email,
                        ctx.ip.unwrap_or_default()
                    ));
                    Ok(())
                }
            })
            .on_after_login(move |user, ctx| {
                let seen = s2.clone();
                async move {
                    seen.lock().unwrap().push(format!(
                        "login:{}:{}",
                        user.email,
                        ctx.transport.unwrap_or_default()
                    ));
                    Ok(())
                }
            })
            .on_after_register(move |user, _ctx| {
                let seen = s3.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(format!("register:{}", user.email));
                    Ok(())
                }
            })
        },
    )
    .await;
    sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-h", "hook@example.com"),
        "",
    )
    .await;
    app.auth.background().flush().await;
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&"oauth:hook@example.com:oidc:true:127.0.0.1".to_owned()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"login:hook@example.com:oauth".to_owned()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"register:hook@example.com".to_owned()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn the_register_veto_refuses_a_provider_sign_up() {
    let (app, idp) = setup_with(
        "oauth_veto",
        |c| c,
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
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-v", "v@blocked.example"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "sign_in_refused");
    assert!(user_by_email(&app, "v@blocked.example").await.is_none());
}

/// An app's own provider: the trait's two calls, nothing else.
struct Corp;

#[async_trait::async_trait]
impl crudauth::oauth::OAuthProvider for Corp {
    async fn authorize_url(
        &self,
        req: &crudauth::oauth::AuthorizeRequest<'_>,
    ) -> Result<String, crudauth::oauth::ProviderError> {
        assert_eq!(req.pkce.method().as_str(), "S256");
        Ok(format!(
            "https://sso.corp.example/authorize?state={}",
            req.state
        ))
    }

    async fn identity(
        &self,
        ex: &crudauth::oauth::CodeExchange<'_>,
    ) -> Result<crudauth::oauth::OAuthIdentity, crudauth::oauth::ProviderError> {
        if ex.code != "good-code" || ex.pkce_verifier.len() < 43 {
            return Err(crudauth::oauth::ProviderError::Rejected("bad code".into()));
        }
        Ok(crudauth::oauth::OAuthIdentity {
            email: Some("corp@example.com".into()),
            email_verified: true,
            ..crudauth::oauth::OAuthIdentity::new("corp-7")
        })
    }
}

#[tokio::test]
async fn a_custom_provider_signs_in_through_the_same_flow() {
    let (app, _idp) = setup_with(
        "oauth_custom",
        |c| c.provider(ProviderConfig::custom("corp", Arc::new(Corp))),
        |b| b,
    )
    .await;
    let (r, cookie) = start(&app, "corp", "").await;
    let state = location(&r).split("state=").nth(1).unwrap().to_owned();
    let bad = callback(
        &app,
        &format!("/oauth/corp/callback?code=bad&state={state}"),
        &cookie,
    )
    .await;
    assert_eq!(error_of(&bad), "oauth_failed");
    let (r, cookie) = start(&app, "corp", "").await;
    let state = location(&r).split("state=").nth(1).unwrap().to_owned();
    let ok = callback(
        &app,
        &format!("/oauth/corp/callback?code=good-code&state={state}"),
        &cookie,
    )
    .await;
    let me = app.send(Req::get("/me").session(&session_of(&ok))).await;
    assert_eq!(me.json["email"], "corp@example.com");
    let sessions = app
        .send(Req::get("/sessions").session(&session_of(&ok)))
        .await;
    assert_eq!(
        (
            sessions.json[0]["login_type"].as_str(),
            sessions.json[0]["provider"].as_str()
        ),
        (Some("oauth"), Some("corp"))
    );
}

#[tokio::test]
async fn unsafe_configurations_are_refused_at_build() {
    let refused = |config: OAuthConfig| async move {
        let app = std::panic::AssertUnwindSafe(async move {
            let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "oauth_config")
                .await
                .unwrap();
            let repo = crudauth_sea::SeaUserRepository::<User>::new(tdb.db.clone());
            crudauth_tests::http::default_builder(repo)
                .oauth(config)
                .build()
                .is_err()
        });
        app.await
    };
    let google = || ProviderConfig::google("id", "secret");
    assert!(
        refused(OAuthConfig::new("http://api.example.com").provider(google())).await,
        "http off loopback"
    );
    assert!(
        refused(OAuthConfig::new(BASE).provider(ProviderConfig::oidc(
            "x",
            "http://idp.example.com",
            "id",
            "s"
        )))
        .await,
        "an http issuer"
    );
    assert!(refused(OAuthConfig::new(BASE)).await, "no provider");
    assert!(
        refused(OAuthConfig::new(BASE).provider(google()).provider(google())).await,
        "twice"
    );
    assert!(
        refused(OAuthConfig::new(BASE).provider(ProviderConfig::oidc(
            "Bad Name",
            "https://idp.example",
            "id",
            "s"
        )))
        .await,
        "name"
    );
    let mut unsafe_default = OAuthConfig::new(BASE).provider(google());
    unsafe_default.default_redirect = "//evil.example".into();
    assert!(refused(unsafe_default).await, "default redirect");
    let mut script = OAuthConfig::new(BASE).provider(google());
    script.default_redirect = "javascript:alert(1)".into();
    assert!(refused(script).await, "a script URL as the default");
    let mut frontend = OAuthConfig::new(BASE).provider(google());
    frontend.default_redirect = "https://app.example.com/signed-in".into();
    assert!(
        !refused(frontend).await,
        "a frontend on another origin is the app's choice"
    );
    assert!(
        !refused(OAuthConfig::new(BASE).provider(google())).await,
        "the sane one builds"
    );
}

#[tokio::test]
async fn a_fullwidth_look_alike_address_does_not_link_to_the_account() {
    let (app, idp) = setup("oauth_fullwidth").await;
    app.register("dave@example.com", "dave", "a long password 1")
        .await;
    let dave = user_by_email(&app, "dave@example.com").await.unwrap();
    mark_verified(&app, &dave).await;
    // A fullwidth "ｄ": NFKC folds it to "d", but the provider proved another mailbox.
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-fw", "\u{ff44}ave@example.com"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "email_unverified");
    assert!(
        app.auth
            .oauth()
            .unwrap()
            .links_of(&dave.user_id())
            .await
            .unwrap()
            .is_empty()
    );
    app.login("dave", "a long password 1").await;
}

#[tokio::test]
async fn a_squatters_own_link_does_not_survive_the_owner_claiming_the_account() {
    let (app, idp) = setup("oauth_squatter_link").await;
    // The squatter registers the victim's address (never verified) and cannot link a
    // provider to it: linking needs a verified address.
    app.register("victim@example.com", "victim", "squatter password 1")
        .await;
    let squatter = app.login("victim", "squatter password 1").await;
    idp.github_emails(&[("attacker@evil.example", true, true)]);
    let r = app
        .send(Req::post("/oauth/github/link").session(&squatter))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    // Even a link that exists (made before a policy change, or by the app) is removed by the
    // claim.
    let victim = user_by_email(&app, "victim@example.com").await.unwrap();
    let planted =
        crudauth::oauth::OAuthLink::new("github", "666", victim.user_id().to_string(), None, 0);
    assert!(
        app.auth
            .oauth()
            .unwrap()
            .links()
            .insert(&planted)
            .await
            .unwrap()
    );
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-owner", "victim@example.com"),
        "",
    )
    .await;
    assert!(r.cookies().contains_key("session_id"), "{}", location(&r));
    let links = app
        .auth
        .oauth()
        .unwrap()
        .links_of(&victim.user_id())
        .await
        .unwrap();
    assert_eq!(
        links
            .iter()
            .map(|l| l.provider.as_str())
            .collect::<Vec<_>>(),
        ["oidc"]
    );
    // The squatter's GitHub account no longer reaches the owner's account.
    let person = Person {
        username: Some("attacker".into()),
        ..Person::verified("666", "x@example.com")
    };
    let r = sign_in(&app, &idp, "github", person, "").await;
    if r.cookies().contains_key("session_id") {
        let me = app.send(Req::get("/me").session(&session_of(&r))).await;
        assert_ne!(me.json["email"], "victim@example.com");
    }
}

#[tokio::test]
async fn a_squatters_link_of_the_owners_provider_does_not_lock_the_owner_out() {
    let (app, idp) = setup("oauth_squatter_same_provider").await;
    app.register("olga@example.com", "olga", "squatter password 1")
        .await;
    let olga = user_by_email(&app, "olga@example.com").await.unwrap();
    let planted = crudauth::oauth::OAuthLink::new(
        "oidc",
        "squatter-sub",
        olga.user_id().to_string(),
        None,
        0,
    );
    assert!(
        app.auth
            .oauth()
            .unwrap()
            .links()
            .insert(&planted)
            .await
            .unwrap()
    );
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("owner-sub", "olga@example.com"),
        "",
    )
    .await;
    assert!(
        r.cookies().contains_key("session_id"),
        "claimed, not provider_already_linked: {}",
        location(&r)
    );
}

#[tokio::test]
async fn a_link_flow_ends_only_in_the_session_that_started_it() {
    let (app, idp) = setup("oauth_link_session").await;
    app.register("amy@example.com", "amy", "a long password 1")
        .await;
    let amy = user_by_email(&app, "amy@example.com").await.unwrap();
    mark_verified(&app, &amy).await;
    let s = app.login("amy", "a long password 1").await;
    idp.github_emails(&[("bob@github.example", true, true)]);
    idp.sign_in_as(Person {
        username: Some("bob".into()),
        ..Person::verified("7777", "x@example.com")
    });
    let r = app.send(Req::post("/oauth/github/link").session(&s)).await;
    assert_eq!(r.status, 303, "{:?}", r.json);
    let cookie = state_cookie(&r);
    let back = at_provider(&location(&r)).await;
    // Amy signed out; Bob finishes the provider step in that browser.
    let out = app.send(Req::post("/logout").session(&s)).await;
    assert_eq!(out.status, 200);
    let done = callback(&app, &back, &cookie).await;
    assert_eq!(error_of(&done), "invalid_state");
    assert!(
        app.auth
            .oauth()
            .unwrap()
            .links_of(&amy.user_id())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_before_login_veto_refuses_before_an_account_is_claimed() {
    let (app, idp) = setup_with(
        "oauth_veto_claim",
        |c| c,
        |b| {
            b.on_before_login(|_user, ctx| async move {
                if ctx.transport == Some("oauth") {
                    Err(crudauth::Veto::new("no social sign-in today"))
                } else {
                    Ok(())
                }
            })
        },
    )
    .await;
    app.register("ivy@example.com", "ivy", "a long password 1")
        .await;
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-ivy", "ivy@example.com"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "sign_in_refused");
    // Nothing was claimed: the password still works, the address is still unverified.
    app.login("ivy", "a long password 1").await;
    assert!(
        !user_by_email(&app, "ivy@example.com")
            .await
            .unwrap()
            .email_verified
    );
}

#[tokio::test]
async fn an_exchange_code_dies_with_its_users_epoch() {
    let (app, idp) = setup("oauth_exchange_epoch").await;
    idp.sign_in_as(Person::verified("s-e", "epoch@example.com"));
    let verifier = "another-client-verifier-of-at-least-forty-three-characters";
    let digest = <sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes());
    use base64::Engine;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    let q = format!("?response=token&code_challenge={challenge}&code_challenge_method=S256");
    let (r, cookie) = start(&app, "oidc", &q).await;
    let done = callback(&app, &at_provider(&location(&r)).await, &cookie).await;
    let code = location(&done)
        .split("#oauth_code=")
        .nth(1)
        .unwrap()
        .to_owned();
    let user = user_by_email(&app, "epoch@example.com").await.unwrap();
    app.auth.revocation().bump(&user).await.unwrap(); // "sign out everywhere" meanwhile
    let r = app
        .send(Req::post("/oauth/exchange").json(json!({ "code": code, "code_verifier": verifier })))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn the_state_cookie_is_host_prefixed_and_a_planted_plain_one_is_ignored() {
    let (app, idp) = setup_with(
        "oauth_host_cookie",
        |c| c,
        |b| b.session(crudauth::SessionConfig::default()),
    )
    .await;
    idp.sign_in_as(Person::verified("s-hc", "hc@example.com"));
    let r = app.send(Req::get("/oauth/oidc/authorize")).await;
    let cookies = r.cookies();
    assert!(cookies.contains_key("__Host-oauth_state"), "{cookies:?}");
    assert!(!cookies.contains_key("oauth_state"));
    let state = cookies["__Host-oauth_state"].0.clone();
    let back = at_provider(&location(&r)).await;
    // A sibling subdomain can plant `oauth_state`, never `__Host-oauth_state`.
    let planted = app
        .send(Req::get(&back).header("cookie", format!("oauth_state={state}")))
        .await;
    assert_eq!(error_of(&planted), "invalid_state");
    let ok = app
        .send(Req::get(&back).header("cookie", format!("__Host-oauth_state={state}")))
        .await;
    assert!(
        ok.cookies().contains_key("__Host-session_id"),
        "{}",
        location(&ok)
    );
}

#[tokio::test]
async fn a_table_without_a_writable_email_verified_column_is_refused() {
    let tdb = crudauth_tests::open(crudauth_tests::Backend::Sqlite, "oauth_no_verified")
        .await
        .unwrap();
    let repo = crudauth_sea::SeaUserRepository::<crudauth_tests::models::accounts::Model>::new(
        tdb.db.clone(),
    );
    let built = crudauth::CrudAuth::builder(repo)
        .secret_key(crudauth_tests::http::SECRET.to_vec())
        .session(crudauth::SessionConfig::default())
        .oauth(OAuthConfig::new(BASE).provider(ProviderConfig::google("id", "s")))
        .build();
    assert!(built.is_err());
}

#[tokio::test]
async fn a_provider_answering_megabytes_is_oauth_failed() {
    let (app, idp) = setup("oauth_huge").await;
    idp.huge();
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s", "huge@example.com"),
        "",
    )
    .await;
    assert_eq!(error_of(&r), "oauth_failed");
}

#[tokio::test]
async fn two_concurrent_unlinks_never_remove_the_last_way_in() {
    let (app, idp) = setup("oauth_unlink_race").await;
    idp.github_emails(&[("race@example.com", true, true)]);
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-race", "race@example.com"),
        "",
    )
    .await;
    let s = session_of(&r);
    idp.sign_in_as(Person {
        username: Some("racer".into()),
        ..Person::verified("31337", "x@example.com")
    });
    let r = app.send(Req::post("/oauth/github/link").session(&s)).await;
    let done = callback_in(
        &app,
        &at_provider(&location(&r)).await,
        &state_cookie(&r),
        &s,
    )
    .await;
    assert!(
        location(&done).contains("linked=github"),
        "{}",
        location(&done)
    );
    let user = user_by_email(&app, "race@example.com").await.unwrap();
    for _ in 0..5 {
        let del = |p: &'static str| {
            app.send(Req::new(axum::http::Method::DELETE, &format!("/oauth/links/{p}")).session(&s))
        };
        let (a, b) = tokio::join!(del("oidc"), del("github"));
        let left = app
            .auth
            .oauth()
            .unwrap()
            .links_of(&user.user_id())
            .await
            .unwrap();
        assert!(!left.is_empty(), "{:?} {:?}", a.json, b.json);
        if left.len() == 1 {
            break; // one unlink won; the other was refused
        }
    }
}

#[tokio::test]
async fn a_provider_sign_in_of_an_account_with_a_second_factor_answers_a_challenge() {
    let (app, idp) = setup_with(
        "oauth_mfa",
        |c| c,
        |b| b.mfa(crudauth::mfa::MfaConfig::new("crudauth-test")),
    )
    .await;
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-m", "mfa@example.com"),
        "?redirect_to=/home",
    )
    .await;
    let s = session_of(&r);
    // An account made by the provider has no password: the fresh sign-in lets it enrol.
    let setup = app
        .send(Req::post("/mfa/totp/setup").session(&s).json(json!({})))
        .await;
    assert_eq!(setup.status, 200, "{:?}", setup.json);
    let secret = setup.json["secret"].as_str().unwrap().to_owned();
    let at = |t: u64| crudauth_tests::totp_code(&secret, t);
    let now = crudauth_tests::unix_now();
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": at(now - 30) })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // The next provider sign-in stops at the second factor.
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-m", "mfa@example.com"),
        "?redirect_to=/home",
    )
    .await;
    assert!(
        !r.cookies().contains_key("session_id"),
        "no session before the code"
    );
    let target = location(&r);
    let challenge = target
        .strip_prefix("/#mfa_challenge=")
        .unwrap_or_else(|| panic!("{target}"))
        .to_owned();
    let done = app
        .send(Req::post("/mfa/verify").json(json!({ "challenge": challenge, "code": at(now) })))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.json);
    assert_eq!(done.json["redirect_to"], "/home");
    let s = session_of(&done);
    let sessions = app.send(Req::get("/sessions").session(&s)).await;
    let current = sessions
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(
        (current["login_type"].as_str(), current["provider"].as_str()),
        (Some("oauth"), Some("oidc"))
    );
}

#[tokio::test]
async fn a_squatters_second_factor_does_not_survive_the_owners_claim() {
    let (app, idp) = setup_with(
        "oauth_mfa_claim",
        |c| c,
        |b| b.mfa(crudauth::mfa::MfaConfig::new("crudauth-test")),
    )
    .await;
    // The squatter registers the owner's address (unverified) and enrols a TOTP of their own.
    app.register("nina@example.com", "nina", "squatter password 1")
        .await;
    let s = app.login("nina", "squatter password 1").await;
    let r = app
        .send(
            Req::post("/mfa/totp/setup")
                .session(&s)
                .json(json!({ "password": "squatter password 1" })),
        )
        .await;
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    let code = crudauth_tests::totp_code(&secret, crudauth_tests::unix_now());
    let r = app
        .send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": code })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // The owner proves the address with a provider: the claim removes the squatter's factor.
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-nina", "nina@example.com"),
        "",
    )
    .await;
    assert!(
        r.cookies().contains_key("session_id"),
        "signed in, no squatter's challenge: {}",
        location(&r)
    );
    let status = app.send(Req::get("/mfa").session(&session_of(&r))).await;
    assert_eq!(status.json["enabled"], false);
}

#[tokio::test]
async fn token_mode_with_a_second_factor_ends_in_a_pkce_bound_exchange_code() {
    let (app, idp) = setup_with(
        "oauth_mfa_token",
        |mut c| {
            c.app_redirects = vec!["com.example.app:/oauth".into()];
            c
        },
        |b| b.mfa(crudauth::mfa::MfaConfig::new("crudauth-test")),
    )
    .await;
    let r = sign_in(
        &app,
        &idp,
        "oidc",
        Person::verified("s-t2", "tok@example.com"),
        "",
    )
    .await;
    let s = session_of(&r);
    let setup = app
        .send(Req::post("/mfa/totp/setup").session(&s).json(json!({})))
        .await;
    let secret = setup.json["secret"].as_str().unwrap().to_owned();
    let at = |t: u64| crudauth_tests::totp_code(&secret, t);
    let now = crudauth_tests::unix_now();
    assert_eq!(
        app.send(
            Req::post("/mfa/totp/confirm")
                .session(&s)
                .json(json!({ "code": at(now - 30) }))
        )
        .await
        .status,
        200
    );
    let verifier = "a-native-app-verifier-of-at-least-forty-three-characters-000";
    let digest = <sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes());
    use base64::Engine;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    idp.sign_in_as(Person::verified("s-t2", "tok@example.com"));
    let q = format!(
        "?response=token&code_challenge={challenge}&code_challenge_method=S256&redirect_to=com.example.app%3A%2Foauth"
    );
    let (r, cookie) = start(&app, "oidc", &q).await;
    let done = callback(&app, &at_provider(&location(&r)).await, &cookie).await;
    let target = location(&done);
    let mfa = target
        .strip_prefix("com.example.app:/oauth#mfa_challenge=")
        .unwrap_or_else(|| panic!("{target}"))
        .to_owned();
    let r = app
        .send(Req::post("/mfa/verify").json(json!({ "challenge": mfa, "code": at(now) })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(
        r.json.get("access_token").is_none(),
        "no tokens to whoever holds the challenge"
    );
    let code = r.json["oauth_code"].as_str().unwrap().to_owned();
    let wrong = app
        .send(
            Req::post("/oauth/exchange")
                .json(json!({ "code": code, "code_verifier": "x".repeat(50) })),
        )
        .await;
    assert_eq!(wrong.status, 400);
    let _ = wrong;
}

/// DESIGN 6.4: a provider sign-in draws a new session id and ends the session the browser
/// presented (no fixation).
#[tokio::test]
async fn a_provider_sign_in_ends_the_presented_session() {
    let (app, idp) = setup("oauth_fixation").await;
    app.register("fix@example.com", "fix", "a long password 1")
        .await;
    let planted = app.login("fix", "a long password 1").await;
    idp.sign_in_as(Person::verified("s-fix", "other@example.com"));
    let (r, cookie) = start(&app, "oidc", "").await;
    let back = at_provider(&location(&r)).await;
    let done = app
        .send(Req::get(&back).header(
            "cookie",
            format!("oauth_state={cookie}; session_id={}", planted.id),
        ))
        .await;
    let fresh = session_of(&done);
    assert_ne!(fresh.id, planted.id);
    let old = app
        .send(Req::get("/whoami").header("cookie", format!("session_id={}", planted.id)))
        .await;
    assert_eq!(old.status, 401, "the presented session ended");
}
