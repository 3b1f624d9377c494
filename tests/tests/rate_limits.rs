//! Rate limits: the built-in defaults, overrides, the off switch, headers, the public layer,
//! silent per-target throttles, and sharing through the store.

use std::time::Duration;

use crudauth::{KeyBy, RateLimit};
use crudauth_tests::http::{Req, app, app_with, send};
use serde_json::json;

fn reg(i: usize) -> Req {
    Req::post("/register").json(json!({
        "email": format!("user{i}@example.com"), "username": format!("user{i}"), "password": "correct horse 1"
    }))
}

#[tokio::test]
async fn register_allows_five_an_hour_per_ip_with_headers() {
    let t = app("rl_register").await;
    for i in 0..5 {
        let r = t.send(reg(i)).await;
        assert_eq!(r.status, 202);
        assert_eq!(r.headers["x-ratelimit-limit"], "5");
        assert_eq!(
            r.headers["ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let r = t.send(reg(5)).await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (429, "Too many requests. Try again later.")
    );
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Another client is not affected; invalid bodies are not counted.
    assert_eq!(t.send(reg(6).peer([10, 0, 0, 2])).await.status, 202);
    let bad = Req::post("/register")
        .peer([10, 0, 0, 3])
        .json(json!({"email": "x"}));
    for _ in 0..10 {
        assert_eq!(t.send(bad.clone_req()).await.status, 422);
    }
    assert_eq!(t.send(reg(7).peer([10, 0, 0, 3])).await.status, 202);
}

#[tokio::test]
async fn limits_can_be_overridden_and_switched_off() {
    let t = app_with("rl_override", |b| b.rate_limit("register", RateLimit::OFF)).await;
    for i in 0..8 {
        let r = t.send(reg(i)).await;
        assert_eq!(r.status, 202);
        assert!(
            !r.headers.contains_key("x-ratelimit-limit"),
            "an off limit sets no headers"
        );
    }
    let t = app_with("rl_override_2", |b| {
        b.rate_limit("register", RateLimit::new(2, Duration::from_secs(60)))
    })
    .await;
    assert_eq!(t.send(reg(0)).await.status, 202);
    assert_eq!(t.send(reg(1)).await.status, 202);
    assert_eq!(t.send(reg(2)).await.status, 429);
}

#[tokio::test]
async fn user_keyed_limits_follow_the_user_not_the_address() {
    let t = app_with("rl_user", |b| {
        b.rate_limit("logout_all", RateLimit::new(2, Duration::from_secs(3600)))
    })
    .await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let s = t.login("alice", "correct horse 1").await;
    for _ in 0..2 {
        let r = t
            .send(Req::post("/logout-all?keep_current=true").session(&s))
            .await;
        assert_eq!(r.status, 200);
    }
    let r = t
        .send(
            Req::post("/logout-all?keep_current=true")
                .session(&s)
                .peer([10, 9, 9, 9]),
        )
        .await;
    assert_eq!(
        r.status, 429,
        "a new address does not reset a per-user limit"
    );
}

#[tokio::test]
async fn the_public_layer_limits_an_apps_own_routes() {
    use axum::Router;
    use axum::routing::post;
    let t = app("rl_layer").await;
    t.register("alice@example.com", "alice", "correct horse 1")
        .await;
    let app: Router = Router::new()
        .route("/export", post(|| async { "ok" }))
        .route_layer(t.auth.rate_limit(
            "export",
            RateLimit::new(2, Duration::from_secs(60)),
            KeyBy::UserOrIp,
        ));
    let users: Router = Router::new()
        .route("/mine", post(|| async { "ok" }))
        .route_layer(t.auth.rate_limit(
            "mine",
            RateLimit::new(1, Duration::from_secs(60)),
            KeyBy::User,
        ));
    assert_eq!(send(&app, Req::post("/export")).await.status, 200);
    let r = send(&app, Req::post("/export")).await;
    assert_eq!(
        (
            r.status.as_u16(),
            r.headers["ratelimit-remaining"].to_str().unwrap()
        ),
        (200, "0")
    );
    assert_eq!(send(&app, Req::post("/export")).await.status, 429);
    let (token, _) = t.token("alice", "correct horse 1", "").await;
    assert_eq!(
        send(&app, Req::post("/export").bearer(&token)).await.status,
        200,
        "the user has a budget of their own"
    );
    assert_eq!(
        send(&users, Req::post("/mine")).await.status,
        401,
        "user-keyed needs a user"
    );
    assert_eq!(
        send(&users, Req::post("/mine").bearer(&token)).await.status,
        200
    );
    assert_eq!(
        send(&users, Req::post("/mine").bearer(&token)).await.status,
        429
    );
    let off: Router = Router::new()
        .route("/free", post(|| async { "ok" }))
        .route_layer(t.auth.rate_limit("free", RateLimit::OFF, KeyBy::Ip));
    for _ in 0..5 {
        assert_eq!(send(&off, Req::post("/free")).await.status, 200);
    }
}

#[tokio::test]
async fn per_target_throttles_fail_silently() {
    let t = app("rl_silent").await;
    let limiter = t.auth.rate_limiter();
    let mut allowed = 0;
    for _ in 0..8 {
        if limiter
            .allow_silently("password_reset_request", "alice@example.com")
            .await
            .unwrap()
        {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 5,
        "five sends an hour per target, then silently nothing"
    );
    assert!(
        limiter
            .allow_silently("password_reset_request", "bob@example.com")
            .await
            .unwrap()
    );
    assert!(
        limiter
            .allow_silently("not_a_limited_action", "x")
            .await
            .unwrap()
    );
}
