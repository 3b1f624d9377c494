//! The development switch (feature `dev-bypass`) and its three guards: a compile error in a
//! release build, a refusal to build unless bound to loopback, and a loopback-only, logged
//! request path. Run with `cargo test -p crudauth-tests --features dev-bypass --test
//! dev_bypass` (`.ci/run` does).
#![cfg(feature = "dev-bypass")]

use std::net::SocketAddr;

use crudauth::ConfigError;
use crudauth::dev::DevBypass;
use crudauth_tests::global_log;
use crudauth_tests::http::{Req, TestApp, User, app, app_with};

const PW: &str = "correct horse 1";

/// A request as a browser on this machine sends it to the dev server.
fn local(req: Req) -> Req {
    req.header("host", "127.0.0.1:3000")
}

fn loopback() -> SocketAddr {
    "127.0.0.1:3000".parse().unwrap()
}

/// An app whose bypass signs in `alice`, who exists.
async fn bypassed(test: &str) -> TestApp {
    // Alice is registered through a normal app on the same database first.
    let plain = app(test).await;
    plain.register("alice@example.com", "alice", PW).await;
    let db = plain.tdb.db.clone();
    let repo = crudauth_sea::SeaUserRepository::<User>::new(db);
    let auth = crudauth_tests::http::default_builder(repo)
        .dev_bypass(DevBypass::login("alice@example.com", loopback()).scopes(["me:read"]))
        .build()
        .expect("a loopback bypass builds");
    TestApp {
        app: crudauth_tests::http::demo_routes(&auth),
        auth,
        tdb: plain.tdb,
    }
}

#[tokio::test]
async fn a_loopback_request_is_signed_in_as_the_configured_user_with_a_warning_each_time() {
    let t = bypassed("dev_bypass_signs_in").await;
    // The process-wide log (a scoped subscriber can miss a call site another test's thread
    // reached first); this test's lines are told apart by Alice's id, a fresh UUID.
    let _ = global_log();
    let mut user_id = String::new();
    for _ in 0..3 {
        let me = t.send(local(Req::get("/me"))).await;
        assert_eq!(me.status, 200, "{:?}", me.json);
        assert_eq!(me.json["email"], "alice@example.com");
        assert_eq!(me.json["via"], "session");
        user_id = me.json["user_id"].to_string().trim_matches('"').to_owned();
    }
    let log = global_log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("dev-bypass: request signed in without a credential"))
        .filter(|l| l.contains(&user_id))
        .count();
    assert_eq!(warnings, 3, "one warning per request for {user_id}: {log}");
    // ... and over IPv6 loopback.
    let me = t
        .send(local(Req::get("/me")).peer_addr("[::1]:40000".parse().unwrap()))
        .await;
    assert_eq!(me.status, 200);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn a_remote_or_forwarded_client_is_refused() {
    let t = bypassed("dev_bypass_remote").await;
    let remote = t.send(local(Req::get("/me")).peer([203, 0, 113, 9])).await;
    assert_eq!(
        (remote.status.as_u16(), remote.detail()),
        (403, "The development bypass serves loopback clients only."),
    );
    // A proxy on this machine forwarding someone else: not a loopback client.
    for header in [
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "via",
        "x-forwarded-host",
        "cf-connecting-ip",
        "true-client-ip",
        "x-client-ip",
    ] {
        let r = t
            .send(local(Req::get("/me")).header(header, "203.0.113.9"))
            .await;
        assert_eq!(r.status, 403, "{header}");
    }
    // A credential does not get around the refusal either: the bypass is all there is.
    let r = t
        .send(
            local(Req::get("/me"))
                .peer([10, 0, 0, 2])
                .bearer("anything"),
        )
        .await;
    assert_eq!(r.status, 403);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn a_web_page_cannot_use_the_bypass() {
    let t = bypassed("dev_bypass_web_page").await;
    // DNS rebinding: evil.example resolved to 127.0.0.1, the browser sends its own Host.
    for host in [
        "evil.example",
        "evil.example:3000",
        "127.0.0.1.evil.example",
        "10.0.0.1",
    ] {
        let r = t.send(Req::get("/me").header("host", host)).await;
        assert_eq!(r.status, 403, "Host {host}");
    }
    for host in ["localhost:3000", "LOCALHOST", "127.0.0.1", "[::1]:3000"] {
        let r = t.send(Req::get("/me").header("host", host)).await;
        assert_eq!(r.status, 200, "Host {host}");
    }
    // No Host at all.
    assert_eq!(t.send(Req::get("/me")).await.status, 403);
    // A cross-site fetch, and a cross-origin write (no CSRF token protects the bypass).
    let r = t
        .send(local(Req::get("/me")).header("sec-fetch-site", "cross-site"))
        .await;
    assert_eq!(r.status, 403);
    let sudo = || local(Req::post("/sudo")).json(serde_json::json!({"password": PW}));
    let r = t
        .send(sudo().header("origin", "https://evil.example"))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "The development bypass serves loopback clients only."),
    );
    let r = t.send(sudo().header("origin", "null")).await;
    assert_eq!(
        r.detail(),
        "The development bypass serves loopback clients only."
    );
    // The dev front end itself, on another loopback port, gets through the bypass (and then
    // meets sudo's own refusal).
    let r = t
        .send(sudo().header("origin", "http://localhost:5173"))
        .await;
    assert_eq!(r.detail(), "Sudo requires a session-backed login.");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn a_request_without_a_known_peer_or_from_a_mapped_address_is_refused() {
    use tower::ServiceExt;
    let t = bypassed("dev_bypass_no_peer").await;
    // No `ConnectInfo`: served without `into_make_service_with_connect_info`.
    let request = axum::http::Request::get("/me")
        .header("host", "127.0.0.1:3000")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = t.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 403);
    // An IPv4-mapped IPv6 peer is not loopback to the standard library, nor to the bypass.
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:40000".parse().unwrap();
    let r = t.send(local(Req::get("/me")).peer_addr(mapped)).await;
    assert_eq!(r.status, 403);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn a_server_bound_beyond_loopback_does_not_start() {
    for bound in [
        "0.0.0.0:3000",
        "[::]:3000",
        "192.168.1.5:3000",
        "203.0.113.1:80",
    ] {
        let addr: SocketAddr = bound.parse().unwrap();
        let t = app("dev_bypass_bind").await;
        let repo = crudauth_sea::SeaUserRepository::<User>::new(t.tdb.db.clone());
        let built = crudauth_tests::http::default_builder(repo)
            .dev_bypass(DevBypass::login("alice@example.com", addr))
            .build();
        assert!(
            matches!(&built, Err(ConfigError::Invalid(m)) if m.contains("loopback")),
            "{bound}: {:?}",
            built.err()
        );
        t.tdb.cleanup().await;
    }
    for bound in ["127.0.0.1:3000", "127.1.2.3:8080", "[::1]:3000"] {
        let t = app("dev_bypass_bind_ok").await;
        let repo = crudauth_sea::SeaUserRepository::<User>::new(t.tdb.db.clone());
        let built = crudauth_tests::http::default_builder(repo)
            .dev_bypass(DevBypass::login(
                "alice@example.com",
                bound.parse().unwrap(),
            ))
            .build();
        assert!(built.is_ok(), "{bound}");
        t.tdb.cleanup().await;
    }
}

#[tokio::test]
async fn the_configured_user_is_read_each_request_and_an_unknown_or_disabled_one_is_a_401() {
    let t = app_with("dev_bypass_unknown", |b| {
        b.dev_bypass(DevBypass::login("nobody@example.com", loopback()))
    })
    .await;
    assert_eq!(t.send(local(Req::get("/me"))).await.status, 401);
    t.tdb.cleanup().await;

    let t = bypassed("dev_bypass_disabled").await;
    assert_eq!(t.send(local(Req::get("/me"))).await.status, 200);
    let alice = t
        .auth
        .repo()
        .find_by_login("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    let off = crudauth::user::UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    let id = crudauth::UserRecord::user_id(&alice);
    t.auth.repo().update(&id, off).await.unwrap();
    assert_eq!(
        t.send(local(Req::get("/me"))).await.status,
        401,
        "read each request"
    );
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn the_bypass_is_never_elevated_and_a_fixed_user_needs_no_row() {
    let t = bypassed("dev_bypass_no_sudo").await;
    // Sudo-gated routes refuse it: the bypass has no session to elevate.
    let r = t
        .send(local(Req::post("/sudo")).json(serde_json::json!({"password": PW})))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.detail()),
        (403, "Sudo requires a session-backed login."),
    );
    // Nor is it a recent sign-in: what needs one (here `/set-password`) refuses it.
    let r = t
        .send(
            local(Req::post("/set-password"))
                .json(serde_json::json!({"new_password": "another horse 22"})),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);

    // A fixed user: any value of the model, with no row behind it.
    let mut developer = t
        .auth
        .repo()
        .find_by_login("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    developer.id = uuid::Uuid::new_v4();
    developer.email = "developer@localhost".into();
    let repo = crudauth_sea::SeaUserRepository::<User>::new(t.tdb.db.clone());
    let auth = crudauth_tests::http::default_builder(repo)
        .dev_bypass(DevBypass::fixed(developer, loopback()))
        .build()
        .unwrap();
    let app = crudauth_tests::http::demo_routes(&auth);
    let me = crudauth_tests::http::send(&app, local(Req::get("/me"))).await;
    assert_eq!(me.status, 200, "{:?}", me.json);
    assert_eq!(me.json["email"], "developer@localhost");
    t.tdb.cleanup().await;
}

/// The first guard: the feature does not compile without `debug_assertions`. Checks
/// crudauth alone in the release profile, in a target directory of its own (a metadata-only
/// build of its dependencies, a few minutes cold).
#[test]
fn a_release_build_with_the_feature_is_a_compile_error() {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("dev-bypass-release-check");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS")
        .env_remove("CARGO_PROFILE_DEV_DEBUG_ASSERTIONS")
        .args([
            "check",
            "--release",
            "--quiet",
            "-p",
            "crudauth",
            "--no-default-features",
            "--features",
            "dev-bypass",
        ])
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a release build must fail: {stderr}");
    assert!(
        stderr.contains("`dev-bypass` feature signs every request in without a credential"),
        "it fails on the guard, not on something else: {stderr}"
    );
    // The same check in the dev profile passes: the failure is the guard's.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let dev = std::process::Command::new(cargo)
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS")
        .env_remove("CARGO_PROFILE_DEV_DEBUG_ASSERTIONS")
        .args([
            "check",
            "--quiet",
            "-p",
            "crudauth",
            "--no-default-features",
            "--features",
            "dev-bypass",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        dev.status.success(),
        "the debug build compiles: {}",
        String::from_utf8_lossy(&dev.stderr)
    );
}

#[tokio::test]
async fn a_gate_narrowed_to_another_transport_is_not_served_by_the_bypass() {
    use axum::routing::get;
    use crudauth::{Gate, Transport};
    let t = bypassed("dev_bypass_bearer_gate").await;
    let bearer_only: axum::Router = axum::Router::new()
        .route("/api", get(|| async { "ok" }))
        .route_layer(
            t.auth
                .require(Gate::new().transport(Transport::Bearer))
                .unwrap(),
        );
    let r = crudauth_tests::http::send(&bearer_only, local(Req::get("/api"))).await;
    assert_eq!(r.status, 401, "the bypass stands in for sessions only");
    let session_only: axum::Router = axum::Router::new()
        .route("/web", get(|| async { "ok" }))
        .route_layer(
            t.auth
                .require(Gate::new().transport(Transport::Session))
                .unwrap(),
        );
    let r = crudauth_tests::http::send(&session_only, local(Req::get("/web"))).await;
    assert_eq!(r.status, 200);
    t.tdb.cleanup().await;
}
