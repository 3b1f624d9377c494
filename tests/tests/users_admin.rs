//! The users admin routes (`/users/me`, `/users`, `/users/{id}`) through the real router:
//! every route, and the attacks on them (a user writing their own privileged fields, a
//! non-superuser on the admin routes, the last superuser removed, a deleted or deactivated
//! user's credentials used again, hostile query strings and ids, own columns outside the
//! allow-list).

use std::sync::{Arc, Mutex};

use crudauth::UserRecord;
use crudauth::admin::UsersAdminConfig;
use crudauth::delivery::{Delivery, DeliveryChannel, DeliveryError, Medium};
use crudauth::mfa::MfaConfig;
use crudauth::user::UserUpdate;
use crudauth_tests::LogCapture;
use crudauth_tests::http::{
    Req, Session, TestApp, User, app_with, default_builder, demo_routes, mails, outbox_path, send,
    token_of, with_outbox,
};
use crudauth_tests::models::users;
use crudauth_tests::{Backend, open};
use serde_json::json;

const PW: &str = "a long enough password";
const ADMIN_PW: &str = "the admin's own long password";

async fn admin_app(test: &str, config: UsersAdminConfig) -> TestApp {
    app_with(test, move |b| b.users_admin(config)).await
}

/// Registers `name` and makes them a verified superuser.
async fn make_admin(t: &TestApp, name: &str) -> String {
    let email = format!("{name}@example.com");
    t.register(&email, name, ADMIN_PW).await;
    let user = t.auth.repo().find_by_login(name).await.unwrap().unwrap();
    let update = UserUpdate {
        is_superuser: Some(true),
        email_verified: Some(true),
        ..Default::default()
    };
    t.auth.repo().update(&user.user_id(), update).await.unwrap();
    user.id.to_string()
}

/// Creates `name` (password [`PW`]) through the repository (no `/register` rate limit);
/// answers the id.
async fn make_user(t: &TestApp, name: &str) -> String {
    let hash = t.auth.passwords().hash(PW).await.unwrap();
    let new = crudauth::NewUser::new(hash)
        .email(format!("{name}@example.com"))
        .username(name);
    t.auth.repo().create(new).await.unwrap().id.to_string()
}

async fn id_of(t: &TestApp, name: &str) -> String {
    let user = t.auth.repo().find_by_login(name).await.unwrap().unwrap();
    user.id.to_string()
}

async fn stored(t: &TestApp, name: &str) -> Option<User> {
    t.auth.repo().find_by_login(name).await.unwrap()
}

/// A session of `name`, elevated by `/sudo`.
async fn elevated(t: &TestApp, name: &str, password: &str) -> Session {
    let s = t.login(name, password).await;
    let r = t
        .send(
            Req::post("/sudo")
                .session(&s)
                .json(json!({ "password": password })),
        )
        .await;
    assert_eq!(r.status, 200, "sudo: {:?}", r.json);
    s
}

fn patch(path: &str, body: serde_json::Value) -> Req {
    Req::new(axum::http::Method::PATCH, path).json(body)
}

fn delete(path: &str) -> Req {
    Req::new(axum::http::Method::DELETE, path)
}

#[tokio::test]
async fn users_me_answers_the_user_read_shape_without_secrets() {
    let t = admin_app("ua_me", UsersAdminConfig::default()).await;
    let id = make_user(&t, "ann").await;
    let s = t.login("ann", PW).await;
    let r = t.send(Req::get("/users/me").session(&s)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json,
        json!({ "id": id, "email": "ann@example.com", "username": "ann", "is_active": true,
                "is_superuser": false, "is_verified": false, "phone": null })
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = t.send(Req::get("/users/me")).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_user_patching_their_own_privileged_fields_is_refused_and_nothing_is_written() {
    let t = admin_app("ua_own_priv", UsersAdminConfig::default().writable(["bio"])).await;
    make_user(&t, "ann").await;
    let s = t.login("ann", PW).await;
    let (access, _) = t.token("ann", PW, "me:read").await;
    for (field, value) in [
        ("is_superuser", json!(true)),
        ("is_active", json!(true)),
        ("is_verified", json!(true)),
        ("email_verified", json!(true)),
        ("token_version", json!(0)),
        ("id", json!("00000000-0000-0000-0000-000000000000")),
        ("password_hash", json!("$argon2id$forged")),
        ("hashed_password", json!("$argon2id$forged")),
    ] {
        // With a harmless allowed field beside it: the whole request is refused.
        let body = json!({ field: value, "bio": "sneaky" });
        let r = t.send(patch("/users/me", body.clone()).session(&s)).await;
        assert_eq!(r.status, 403, "{field} by session: {:?}", r.json);
        let r = t.send(patch("/users/me", body).bearer(&access)).await;
        assert_eq!(r.status, 403, "{field} by bearer: {:?}", r.json);
    }
    let ann = stored(&t, "ann").await.unwrap();
    assert!(!ann.is_superuser && !ann.email_verified && ann.bio.is_none());
    assert_eq!(ann.token_version, 0);
    let r = t.send(Req::get("/admin-only").session(&s)).await;
    assert_eq!(r.status, 403, "still no superuser");
}

#[tokio::test]
async fn a_user_patches_an_allow_listed_own_column_and_an_unknown_field_is_422() {
    let t = admin_app(
        "ua_own_extra",
        UsersAdminConfig::default().writable(["bio"]),
    )
    .await;
    make_user(&t, "ann").await;
    let s = t.login("ann", PW).await;
    let r = t
        .send(patch("/users/me", json!({ "bio": "hello" })).session(&s))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["bio"], "hello");
    assert_eq!(
        stored(&t, "ann").await.unwrap().bio.as_deref(),
        Some("hello")
    );
    for body in [
        json!({ "nickname": "x" }),
        json!({ "bio": 42 }),
        json!({ "bio": "x".repeat(5000) }),
        json!({ "email": "not an address", "current_password": PW }),
        json!({ "password": 12, "current_password": PW }),
        json!(["not", "an", "object"]),
    ] {
        let r = t.send(patch("/users/me", body.clone()).session(&s)).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.json);
    }
    assert_eq!(
        stored(&t, "ann").await.unwrap().bio.as_deref(),
        Some("hello")
    );
}

#[tokio::test]
async fn patching_my_password_needs_the_current_one_and_ends_my_other_sign_ins() {
    let t = admin_app("ua_own_pw", UsersAdminConfig::default()).await;
    make_user(&t, "ann").await;
    let s = t.login("ann", PW).await;
    let other = t.login("ann", PW).await;
    let (access, _) = t.token("ann", PW, "me:read").await;
    let new = "a brand new long password";

    let r = t
        .send(patch("/users/me", json!({ "password": new })).session(&s))
        .await;
    assert_eq!(r.status, 422, "current_password is required");
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "password": new, "current_password": "wrong one" }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "password": "short", "current_password": PW }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 422, "the policy applies");
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "password": new, "current_password": PW }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);

    assert_eq!(
        t.send(Req::get("/whoami").session(&s)).await.status,
        200,
        "this session moved on"
    );
    assert_eq!(
        t.send(Req::get("/whoami").session(&other)).await.status,
        401
    );
    assert_eq!(
        t.send(Req::get("/whoami").bearer(&access)).await.status,
        401
    );
    t.login("ann", new).await;
}

#[tokio::test]
async fn patching_my_email_sends_a_confirmation_and_never_writes_the_address() {
    let outbox = outbox_path("ua_own_email");
    let path = outbox.clone();
    let t = app_with("ua_own_email", move |b| {
        with_outbox(b, &path).users_admin(UsersAdminConfig::default())
    })
    .await;
    make_user(&t, "ann").await;
    let s = t.login("ann", PW).await;
    let r = t
        .send(patch("/users/me", json!({ "email": "ann@new.example" })).session(&s))
        .await;
    assert_eq!(r.status, 422, "current_password is required");
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "email": "ann@new.example", "current_password": PW }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["email"], "ann@example.com");
    assert_eq!(stored(&t, "ann").await.unwrap().email, "ann@example.com");
    let sent = mails(&t.auth, &outbox).await;
    let link = sent
        .iter()
        .find(|m| m["to"] == "ann@new.example")
        .expect("a confirmation to the new address");
    let r = t
        .send(Req::post("/email/change-confirm").json(json!({ "token": token_of(link) })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(stored(&t, "ann").await.unwrap().email, "ann@new.example");
}

#[tokio::test]
async fn patching_my_email_without_email_flows_is_refused() {
    let t = admin_app("ua_own_email_off", UsersAdminConfig::default()).await;
    make_user(&t, "ann").await;
    let s = t.login("ann", PW).await;
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "email": "ann@new.example", "current_password": PW }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert_eq!(stored(&t, "ann").await.unwrap().email, "ann@example.com");
}

#[tokio::test]
async fn a_non_superuser_gets_403_on_every_admin_route_and_anonymous_401() {
    let t = admin_app("ua_non_admin", UsersAdminConfig::default()).await;
    make_admin(&t, "root").await;
    let bob = make_user(&t, "bob").await;
    make_user(&t, "ann").await;
    let s = elevated(&t, "ann", PW).await;
    let (access, _) = t.token("ann", PW, "me:read").await;
    let path = format!("/users/{bob}");
    let requests = || {
        [
            Req::get("/users"),
            Req::get(&path),
            patch(&path, json!({ "is_active": false })),
            delete(&path),
        ]
    };
    for req in requests() {
        let r = t.send(req.clone_req().session(&s)).await;
        assert_eq!(r.status, 403, "{:?}", r.json);
        let r = t.send(req.clone_req().bearer(&access)).await;
        assert_eq!(r.status, 403, "{:?}", r.json);
        let r = t.send(req).await;
        assert_eq!(r.status, 401, "{:?}", r.json);
    }
    assert!(stored(&t, "bob").await.unwrap().is_active);
}

#[tokio::test]
async fn admin_writes_need_an_elevated_session_and_a_bearer_admin_can_only_read() {
    let t = admin_app("ua_sudo", UsersAdminConfig::default()).await;
    make_admin(&t, "root").await;
    let bob = make_user(&t, "bob").await;
    let path = format!("/users/{bob}");
    let s = t.login("root", ADMIN_PW).await;
    let r = t
        .send(patch(&path, json!({ "is_active": false })).session(&s))
        .await;
    assert_eq!(r.status, 403, "not elevated: {:?}", r.json);
    let r = t.send(delete(&path).session(&s)).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        t.send(Req::get(&path).session(&s)).await.status,
        200,
        "reads need no sudo"
    );

    let (access, _) = t.token("root", ADMIN_PW, "me:read").await;
    assert_eq!(t.send(Req::get("/users").bearer(&access)).await.status, 200);
    let r = t
        .send(patch(&path, json!({ "is_active": false })).bearer(&access))
        .await;
    assert_eq!(r.status, 403, "a bearer token is never elevated");
    assert_eq!(t.send(delete(&path).bearer(&access)).await.status, 403);
    assert!(stored(&t, "bob").await.is_some_and(|b| b.is_active));
}

#[tokio::test]
async fn listing_pages_and_filters() {
    let t = admin_app("ua_list", UsersAdminConfig::default()).await;
    make_admin(&t, "root").await;
    for name in ["ann", "anna", "bob", "carl", "dora"] {
        make_user(&t, name).await;
    }
    let dora = id_of(&t, "dora").await;
    t.auth
        .repo()
        .update(
            &t.auth
                .repo()
                .find_by_login("dora")
                .await
                .unwrap()
                .unwrap()
                .user_id(),
            UserUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let s = t.login("root", ADMIN_PW).await;
    let list = async |query: &str| {
        let r = t
            .send(Req::get(&format!("/users{query}")).session(&s))
            .await;
        assert_eq!(r.status, 200, "{query}: {:?}", r.json);
        r.json
    };
    let all = list("").await;
    assert_eq!(
        (
            all["total"].as_u64(),
            all["limit"].as_u64(),
            all["offset"].as_u64()
        ),
        (Some(6), Some(50), Some(0))
    );
    let page = list("?limit=2&offset=2").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0], all["items"][2]);
    assert_eq!(page["total"], 6);
    let names = |v: &serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&list("?email=AN").await), ["ann", "anna"]);
    assert_eq!(
        names(&list("?email=%25").await),
        Vec::<String>::new(),
        "% is no wildcard"
    );
    assert_eq!(
        names(&list("?email=_nn").await),
        Vec::<String>::new(),
        "_ is no wildcard"
    );
    assert_eq!(names(&list("?is_superuser=true").await), ["root"]);
    assert_eq!(names(&list("?is_active=false").await), ["dora"]);
    assert_eq!(list("?is_active=false").await["items"][0]["id"], dora);
    assert_eq!(
        names(&list("?is_active=true&is_superuser=false&email=a").await),
        ["ann", "anna"]
    );
    assert_eq!(list("?offset=100").await["items"], json!([]));
    assert_eq!(
        list("?limit=1&limit=500").await["limit"],
        1,
        "the first of a repeated parameter"
    );
}

#[tokio::test]
async fn hostile_query_parameters_are_422_never_500() {
    let t = admin_app("ua_hostile_query", UsersAdminConfig::default()).await;
    make_admin(&t, "root").await;
    let s = t.login("root", ADMIN_PW).await;
    let long = "a".repeat(300);
    for query in [
        "limit=-1",
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=1.5",
        "limit=99999999999999999999999999",
        "offset=-5",
        "offset=10000000000",
        "offset=x",
        "is_active=yes",
        "is_superuser=1",
        &format!("email={long}"),
        "email=%00",
    ] {
        let r = t
            .send(Req::get(&format!("/users?{query}")).session(&s))
            .await;
        assert_eq!(r.status, 422, "{query}: {:?}", r.json);
    }
    let r = t
        .send(Req::get("/users?unknown=1&limit=100").session(&s))
        .await;
    assert_eq!(
        r.status, 200,
        "unknown parameters are ignored; 100 is the maximum"
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let t = admin_app("ua_ids", UsersAdminConfig::default()).await;
    make_admin(&t, "root").await;
    let s = elevated(&t, "root", ADMIN_PW).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let long = "9".repeat(400);
    for id in [unknown.as_str(), "not-a-uuid", "1", "%00", long.as_str()] {
        let path = format!("/users/{id}");
        assert_eq!(
            t.send(Req::get(&path).session(&s)).await.status,
            404,
            "GET {id}"
        );
        let r = t
            .send(patch(&path, json!({ "is_active": false })).session(&s))
            .await;
        assert_eq!(r.status, 404, "PATCH {id}");
        assert_eq!(
            t.send(delete(&path).session(&s)).await.status,
            404,
            "DELETE {id}"
        );
    }
}

#[tokio::test]
async fn an_admin_reads_and_patches_a_user_and_every_write_is_logged_without_secrets() {
    let log = LogCapture::start();
    let t = admin_app("ua_patch", UsersAdminConfig::default().writable(["bio"])).await;
    let root = make_admin(&t, "root").await;
    let bob = make_user(&t, "bob").await;
    let s = elevated(&t, "root", ADMIN_PW).await;
    let path = format!("/users/{bob}");
    let r = t.send(Req::get(&path).session(&s)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["email"], "bob@example.com");
    assert_eq!(r.json["bio"], serde_json::Value::Null);

    let r = t
        .send(
            patch(
                &path,
                json!({ "is_verified": true, "is_superuser": true, "bio": "ops" }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        (
            r.json["is_verified"].as_bool(),
            r.json["is_superuser"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(r.json["bio"], "ops");
    let r = t
        .send(patch(&path, json!({ "email": "Bobby@Example.com" })).session(&s))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["email"], "bobby@example.com");
    assert_eq!(
        r.json["is_verified"], false,
        "a new address is unverified (as fastapi-users)"
    );
    for (body, status) in [
        (json!({ "token_version": 5 }), 403),
        (json!({ "id": bob }), 403),
        (json!({ "hashed_password": "$argon2id$x" }), 403),
        (json!({ "nickname": "x" }), 422),
        (json!({ "is_active": "no" }), 422),
        (json!({ "password": "short" }), 422),
    ] {
        let r = t.send(patch(&path, body.clone()).session(&s)).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.json);
    }
    let secret = "a secret new password 42";
    let r = t
        .send(patch(&path, json!({ "password": secret })).session(&s))
        .await;
    assert_eq!(r.status, 200);
    let text = log.text();
    assert!(text.contains("users admin updated an account"), "{text}");
    assert!(
        text.contains(&format!("actor={root}")) && text.contains(&format!("target={bob}")),
        "{text}"
    );
    assert!(text.contains("fields=password"), "{text}");
    assert!(
        !text.contains(secret) && !text.contains("argon2"),
        "no secret in the log: {text}"
    );
}

#[tokio::test]
async fn an_email_taken_by_another_user_is_400_update_user_email_already_exists() {
    let t = admin_app("ua_email_taken", UsersAdminConfig::default()).await;
    make_admin(&t, "root").await;
    let bob = make_user(&t, "bob").await;
    make_user(&t, "ann").await;
    let s = elevated(&t, "root", ADMIN_PW).await;
    let path = format!("/users/{bob}");
    for email in ["ann@example.com", "ANN@example.com"] {
        let r = t
            .send(patch(&path, json!({ "email": email, "is_superuser": true })).session(&s))
            .await;
        assert_eq!(r.status, 400, "{email}");
        assert_eq!(r.json["detail"], "UPDATE_USER_EMAIL_ALREADY_EXISTS");
    }
    let bob = stored(&t, "bob").await.unwrap();
    assert_eq!(bob.email, "bob@example.com");
    assert!(
        !bob.is_superuser,
        "nothing of the refused patch was written"
    );
}

#[tokio::test]
async fn deactivation_and_an_admin_set_password_end_the_users_sessions_and_tokens() {
    for (change, body) in [
        ("deactivation", json!({ "is_active": false })),
        (
            "password",
            json!({ "password": "set by the admin, long enough" }),
        ),
    ] {
        let t = admin_app("ua_revoke", UsersAdminConfig::default()).await;
        make_admin(&t, "root").await;
        let bob = make_user(&t, "bob").await;
        let bob_s = t.login("bob", PW).await;
        let (access, refresh) = t.token("bob", PW, "me:read").await;
        let s = elevated(&t, "root", ADMIN_PW).await;
        let r = t
            .send(patch(&format!("/users/{bob}"), body).session(&s))
            .await;
        assert_eq!(r.status, 200, "{change}: {:?}", r.json);
        assert_eq!(
            t.send(Req::get("/whoami").session(&bob_s)).await.status,
            401,
            "{change}: session"
        );
        assert_eq!(
            t.send(Req::get("/whoami").bearer(&access)).await.status,
            401,
            "{change}: token"
        );
        let r = t
            .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
            .await;
        assert_eq!(r.status, 401, "{change}: refresh family: {:?}", r.json);
        if change == "password" {
            t.login("bob", "set by the admin, long enough").await;
        }
    }
}

#[tokio::test]
async fn deleting_a_user_ends_their_session_token_and_second_factor_at_once() {
    let t = app_with("ua_delete", |b| {
        b.users_admin(UsersAdminConfig::default())
            .mfa(MfaConfig::new("crudauth-test"))
    })
    .await;
    make_admin(&t, "root").await;
    let bob = make_user(&t, "bob").await;
    let bob_s = t.login("bob", PW).await;
    t.enrol_totp(&bob_s, PW).await;
    let (access, refresh) = {
        // A token pair taken before the second factor was on would not exist now; take a
        // fresh one through the store-backed API instead.
        let user = stored(&t, "bob").await.unwrap();
        let pair = t.auth.issue_tokens(&user, ["me:read"]).await.unwrap();
        (pair.access_token, pair.refresh_token)
    };
    assert_eq!(
        t.send(Req::get("/whoami").bearer(&access)).await.status,
        200
    );
    let factors = t.auth.mfa().unwrap().factors().clone();
    assert!(factors.get(&bob).await.unwrap().is_some());

    let s = elevated(&t, "root", ADMIN_PW).await;
    let path = format!("/users/{bob}");
    let r = t.send(delete(&path).session(&s)).await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    assert_eq!(
        t.send(Req::get("/whoami").session(&bob_s)).await.status,
        401
    );
    assert_eq!(
        t.send(Req::get("/whoami").bearer(&access)).await.status,
        401
    );
    let r = t
        .send(Req::post("/refresh").json(json!({ "refresh_token": refresh })))
        .await;
    assert_eq!(r.status, 401);
    assert!(
        factors.get(&bob).await.unwrap().is_none(),
        "the second factor went too"
    );
    assert_eq!(t.send(Req::get(&path).session(&s)).await.status, 404);
    assert_eq!(t.send(delete(&path).session(&s)).await.status, 404);
    assert!(stored(&t, "bob").await.is_none());
}

#[tokio::test]
async fn the_last_active_superuser_cannot_be_demoted_deactivated_or_deleted() {
    let t = admin_app("ua_last", UsersAdminConfig::default()).await;
    let root = make_admin(&t, "root").await;
    let s = elevated(&t, "root", ADMIN_PW).await;
    let path = format!("/users/{root}");
    for body in [
        json!({ "is_superuser": false }),
        json!({ "is_active": false }),
        json!({ "is_active": false, "is_superuser": false }),
    ] {
        let r = t.send(patch(&path, body.clone()).session(&s)).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.json);
        assert_eq!(r.json["detail"], "Cannot remove the last active superuser.");
    }
    let r = t.send(delete(&path).session(&s)).await;
    assert_eq!(r.status, 400);
    let root_row = stored(&t, "root").await.unwrap();
    assert!(root_row.is_superuser && root_row.is_active, "undone");
    assert_eq!(
        t.send(Req::get("/users").session(&s)).await.status,
        200,
        "still in"
    );

    // An inactive superuser does not count: still the last active one.
    let ops = make_admin(&t, "ops").await;
    let r = t
        .send(patch(&format!("/users/{ops}"), json!({ "is_active": false })).session(&s))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        t.send(patch(&path, json!({ "is_superuser": false })).session(&s))
            .await
            .status,
        400
    );

    // With a second active superuser, the first may step down.
    let r = t
        .send(patch(&format!("/users/{ops}"), json!({ "is_active": true })).session(&s))
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .send(patch(&path, json!({ "is_superuser": false })).session(&s))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(!stored(&t, "root").await.unwrap().is_superuser);
    assert_eq!(
        t.send(Req::get("/whoami").session(&s)).await.status,
        401,
        "demotion ends the sessions"
    );
    let ops_s = elevated(&t, "ops", ADMIN_PW).await;
    let r = t
        .send(delete(&format!("/users/{ops}")).session(&ops_s))
        .await;
    assert_eq!(r.status, 400, "ops is the last one now");
}

#[tokio::test]
async fn concurrent_demotions_of_the_last_two_superusers_leave_one() {
    let t = admin_app("ua_race", UsersAdminConfig::default()).await;
    let a = make_admin(&t, "root").await;
    let b = make_admin(&t, "ops").await;
    let sa = elevated(&t, "root", ADMIN_PW).await;
    let sb = elevated(&t, "ops", ADMIN_PW).await;
    let (ra, rb) = tokio::join!(
        t.send(patch(&format!("/users/{b}"), json!({ "is_superuser": false })).session(&sa)),
        t.send(patch(&format!("/users/{a}"), json!({ "is_superuser": false })).session(&sb)),
    );
    let ok = [ra.status, rb.status].iter().filter(|s| **s == 200).count();
    assert!(ok <= 1, "{:?} {:?}", ra.json, rb.json);
    let left = t.auth.repo().count_active_superusers().await.unwrap();
    assert!(left >= 1, "never nobody");
}

#[tokio::test]
async fn two_processes_demoting_each_others_superuser_at_once_leave_one() {
    // Two facades over one database, each with its own store and its own lock: the
    // in-process serialisation cannot help, only the count after the write can.
    let t = admin_app("ua_race_processes", UsersAdminConfig::default()).await;
    let a = make_admin(&t, "root").await;
    let b = make_admin(&t, "ops").await;
    let repo = crudauth_sea::SeaUserRepository::<User>::new(t.tdb.db.clone());
    let other = default_builder(repo)
        .users_admin(UsersAdminConfig::default())
        .build()
        .unwrap();
    let other_app = demo_routes(&other);
    let other_t = TestApp {
        app: other_app.clone(),
        auth: other.clone(),
        tdb: open(Backend::Sqlite, "ua_race_unused").await.unwrap(),
    };
    let sa = elevated(&t, "root", ADMIN_PW).await;
    let sb = elevated(&other_t, "ops", ADMIN_PW).await;
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(
            t.send(patch(&format!("/users/{b}"), json!({ "is_superuser": false })).session(&sa)),
            send(
                &other_app,
                patch(&format!("/users/{a}"), json!({ "is_superuser": false })).session(&sb)
            ),
        );
        let left = t.auth.repo().count_active_superusers().await.unwrap();
        assert!(left >= 1, "never nobody: {:?} {:?}", ra.json, rb.json);
        if ra.status == 200 || rb.status == 200 {
            break;
        }
    }
}

#[tokio::test]
async fn session_writes_without_the_csrf_token_are_refused() {
    let t = admin_app("ua_csrf", UsersAdminConfig::default().writable(["bio"])).await;
    make_admin(&t, "root").await;
    let bob = make_user(&t, "bob").await;
    let s = elevated(&t, "root", ADMIN_PW).await;
    let path = format!("/users/{bob}");
    let r = t
        .send(patch(&path, json!({ "is_active": false })).session_cookie_only(&s))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(
        t.send(delete(&path).session_cookie_only(&s)).await.status,
        403
    );
    let bob_s = t.login("bob", PW).await;
    let r = t
        .send(patch("/users/me", json!({ "bio": "x" })).session_cookie_only(&bob_s))
        .await;
    assert_eq!(r.status, 403);
    let row = stored(&t, "bob").await.unwrap();
    assert!(row.is_active && row.bio.is_none());
}

#[tokio::test]
async fn a_refused_removal_of_the_last_superuser_writes_none_of_the_request() {
    let t = admin_app(
        "ua_last_nothing",
        UsersAdminConfig::default().writable(["bio"]),
    )
    .await;
    let root = make_admin(&t, "root").await;
    let s = elevated(&t, "root", ADMIN_PW).await;
    let body = json!({ "is_superuser": false, "bio": "stepping down", "email": "r2@example.com" });
    let r = t
        .send(patch(&format!("/users/{root}"), body).session(&s))
        .await;
    assert_eq!(r.status, 400);
    let row = stored(&t, "root").await.unwrap();
    assert!(row.is_superuser && row.bio.is_none() && row.email == "root@example.com");
}

#[tokio::test]
async fn own_columns_outside_the_allow_list_are_never_shown_or_written() {
    // Readable only: shown, a write is 403 (for the user and the admin).
    let t = admin_app("ua_readable", UsersAdminConfig::default().readable(["bio"])).await;
    make_admin(&t, "root").await;
    let bob = make_user(&t, "bob").await;
    let bob_s = t.login("bob", PW).await;
    let r = t.send(Req::get("/users/me").session(&bob_s)).await;
    assert!(r.json.as_object().unwrap().contains_key("bio"));
    let r = t
        .send(patch("/users/me", json!({ "bio": "x" })).session(&bob_s))
        .await;
    assert_eq!(r.status, 403);
    let s = elevated(&t, "root", ADMIN_PW).await;
    let r = t
        .send(patch(&format!("/users/{bob}"), json!({ "bio": "x" })).session(&s))
        .await;
    assert_eq!(r.status, 403);

    // Not allow-listed: not shown, a write is 422 like any unknown name.
    let t = admin_app("ua_hidden", UsersAdminConfig::default()).await;
    make_admin(&t, "root").await;
    let bob = make_user(&t, "bob").await;
    let bob_s = t.login("bob", PW).await;
    let r = t.send(Req::get("/users/me").session(&bob_s)).await;
    assert!(!r.json.as_object().unwrap().contains_key("bio"));
    let r = t
        .send(patch("/users/me", json!({ "bio": "x" })).session(&bob_s))
        .await;
    assert_eq!(r.status, 422);
    let s = elevated(&t, "root", ADMIN_PW).await;
    let r = t
        .send(patch(&format!("/users/{bob}"), json!({ "bio": "x" })).session(&s))
        .await;
    assert_eq!(r.status, 422);
    assert!(stored(&t, "bob").await.unwrap().bio.is_none());
}

#[tokio::test]
async fn an_allow_list_naming_a_contract_field_or_no_column_is_refused_at_build() {
    let tdb = open(Backend::Sqlite, "ua_config").await.unwrap();
    tdb.create_table(users::Entity).await;
    for config in [
        UsersAdminConfig::default().readable(["nickname"]),
        UsersAdminConfig::default().writable(["is_superuser"]),
        UsersAdminConfig::default().writable(["password"]),
        UsersAdminConfig::default().readable(["token_version"]),
        UsersAdminConfig {
            max_page_size: 0,
            ..Default::default()
        },
        UsersAdminConfig {
            default_page_size: 500,
            ..Default::default()
        },
    ] {
        let repo = crudauth_sea::SeaUserRepository::<User>::new(tdb.db.clone());
        let built = default_builder(repo).users_admin(config.clone()).build();
        assert!(built.is_err(), "{config:?}");
    }
    let repo = crudauth_sea::SeaUserRepository::<User>::new(tdb.db.clone());
    let built = default_builder(repo)
        .users_admin(UsersAdminConfig::default().writable(["bio"]))
        .build();
    assert!(built.is_ok());
}

/// An SMS gateway for the tests: keeps every text message.
struct Texts(Arc<Mutex<Vec<Delivery>>>);

#[async_trait::async_trait]
impl DeliveryChannel for Texts {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        if delivery.medium == Medium::Sms {
            self.0.lock().unwrap().push(delivery.clone());
        }
        Ok(())
    }
}

async fn texting_app(test: &str) -> (TestApp, Arc<Mutex<Vec<Delivery>>>) {
    let texts = Arc::new(Mutex::new(Vec::new()));
    let channel = Texts(texts.clone());
    let t = app_with(test, move |b| {
        b.delivery_channel(Arc::new(channel))
            .users_admin(UsersAdminConfig::default())
    })
    .await;
    (t, texts)
}

fn last_code(texts: &Mutex<Vec<Delivery>>, phone: &str) -> String {
    let texts = texts.lock().unwrap();
    let text = texts
        .iter()
        .rev()
        .find(|d| d.recipient == phone)
        .expect("a text");
    assert_eq!(text.kind.as_str(), "confirm_phone");
    text.code.clone().expect("a code")
}

#[tokio::test]
async fn a_new_phone_number_is_written_only_after_the_texted_code() {
    let (t, texts) = texting_app("ua_phone").await;
    make_user(&t, "ann").await;
    let s = t.login("ann", PW).await;
    let r = t
        .send(patch("/users/me", json!({ "phone": "+46 70 123 45 67" })).session(&s))
        .await;
    assert_eq!(r.status, 422, "current_password is required: {:?}", r.json);
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "phone": "not a number", "current_password": PW }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "phone": "+46 70 123 45 67", "current_password": "wrong" }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "phone": "+46 70 123 45 67", "current_password": PW }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["phone"], serde_json::Value::Null, "not written yet");
    assert!(stored(&t, "ann").await.unwrap().phone.is_none());
    let code = last_code(&texts, "+46701234567");

    let confirm = |code: &str| Req::post("/users/me/phone/confirm").json(json!({ "code": code }));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = t.send(confirm(wrong).session(&s)).await;
    assert_eq!(r.status, 400, "a wrong code");
    assert!(stored(&t, "ann").await.unwrap().phone.is_none());
    let r = t.send(confirm(&code).session(&s)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["phone"], "+46701234567");
    assert_eq!(
        stored(&t, "ann").await.unwrap().phone.as_deref(),
        Some("+46701234567")
    );
    let r = t.send(confirm(&code).session(&s)).await;
    assert_eq!(r.status, 400, "a code is spent once");
}

#[tokio::test]
async fn a_phone_code_dies_after_five_wrong_guesses_and_binds_the_user() {
    let (t, texts) = texting_app("ua_phone_guess").await;
    make_user(&t, "ann").await;
    make_user(&t, "bob").await;
    let s = t.login("ann", PW).await;
    let bob_s = t.login("bob", PW).await;
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "phone": "+15551234567", "current_password": PW }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 202);
    let code = last_code(&texts, "+15551234567");
    let confirm = |code: &str| Req::post("/users/me/phone/confirm").json(json!({ "code": code }));
    // Another account cannot redeem Ann's code for itself.
    let r = t.send(confirm(&code).session(&bob_s)).await;
    assert_eq!(r.status, 400);
    assert!(stored(&t, "bob").await.unwrap().phone.is_none());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(t.send(confirm(wrong).session(&s)).await.status, 400);
    }
    let r = t.send(confirm(&code).session(&s)).await;
    assert_eq!(r.status, 400, "dead after five wrong codes");
    assert!(stored(&t, "ann").await.unwrap().phone.is_none());
}

#[tokio::test]
async fn a_phone_change_without_an_sms_channel_is_refused() {
    let t = admin_app("ua_phone_off", UsersAdminConfig::default()).await;
    make_user(&t, "ann").await;
    let s = t.login("ann", PW).await;
    let r = t
        .send(
            patch(
                "/users/me",
                json!({ "phone": "+15551234567", "current_password": PW }),
            )
            .session(&s),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert!(stored(&t, "ann").await.unwrap().phone.is_none());
}

/// A table that signs in by a `handle` column besides the address (a login column that is
/// no logical field).
mod handles {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    /// A row of `handles`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "handles")]
    #[auth(login = ["handle", "email"])]
    pub struct Model {
        /// The key.
        #[sea_orm(primary_key)]
        pub id: i32,
        /// The address.
        #[sea_orm(unique)]
        pub email: String,
        /// A sign-in name of the app's own.
        #[sea_orm(unique)]
        pub handle: String,
        /// The password hash.
        pub password: String,
        /// A column of the app's own.
        #[sea_orm(nullable)]
        pub nickname: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[tokio::test]
async fn a_login_column_is_never_an_own_column_to_write() {
    let tdb = open(Backend::Sqlite, "users_admin_handles").await.unwrap();
    let build = |config: UsersAdminConfig| {
        let repo = crudauth_sea::SeaUserRepository::<handles::Model>::new(tdb.db.clone());
        crudauth::CrudAuth::builder(repo)
            .secret_key(b"a test secret key that is long enough for this".to_vec())
            .session(crudauth::SessionConfig::default())
            .users_admin(config)
            .build()
    };
    // Writing `handle` as a plain column would skip its normalisation and its uniqueness
    // check: another user's address as a handle would capture their sign-ins.
    assert!(build(UsersAdminConfig::default().writable(["handle"])).is_err());
    assert!(build(UsersAdminConfig::default().readable(["handle"])).is_err());
    assert!(build(UsersAdminConfig::default().writable(["nickname"])).is_ok());
}
