//! Two demo processes sharing Redis (and one user database): state moves with the store.
//! Runs when `CRUDAUTH_TEST_REDIS_URL` is set; says so when it is not.

mod common;

use std::io::Write;

use common::{Demo, FORM, JSON, cookie, field, free_port, http, spawn};

const ADMIN_PASSWORD: &str = "multi process admin 1";

/// Where the demos keep their state.
enum Shared<'a> {
    Redis { url: &'a str, prefix: &'a str },
    Database,
}

async fn start(port: u16, database: &str, shared: &Shared<'_>, secret: &str, outbox: &str) -> Demo {
    let mut args = vec!["--database", database];
    match shared {
        Shared::Redis { url, prefix } => {
            args.extend([
                "--store",
                "redis",
                "--redis-url",
                url,
                "--redis-prefix",
                prefix,
            ]);
        }
        Shared::Database => args.extend(["--store", "database"]),
    }
    spawn(
        port,
        &args,
        &[
            ("CRUDAUTH_SECRET_KEY", secret),
            ("CRUDAUTH_DEMO_OUTBOX", outbox),
            // The first process makes the admin before it listens; the second finds it.
            ("CRUDAUTH_DEFAULT_ADMIN_EMAIL", "admin@example.com"),
            ("CRUDAUTH_DEFAULT_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    )
    .await
}

#[tokio::test]
async fn two_processes_share_sessions_lockout_and_refresh_families_through_redis() {
    let Ok(redis) = std::env::var("CRUDAUTH_TEST_REDIS_URL") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED multi-process on Redis: CRUDAUTH_TEST_REDIS_URL is not set"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("crudauth-mp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}/users.db?mode=rwc", dir.display());
    let prefix = format!("crudauth-mp:{}:", uuid::Uuid::new_v4().simple());
    let shared = Shared::Redis {
        url: &redis,
        prefix: &prefix,
    };
    let secret = format!("multi-process-secret-{}", uuid::Uuid::new_v4().simple());
    let (pa, pb) = (free_port(), free_port());
    let outbox = dir.join("outbox.jsonl");
    let outbox = outbox.to_str().unwrap();
    let _a = start(pa, &database, &shared, &secret, outbox).await;
    let _b = start(pb, &database, &shared, &secret, outbox).await;
    exercise(pa, pb, outbox).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn two_processes_share_state_through_the_database_store_on_postgres() {
    use sea_orm::{ConnectionTrait, Database};
    let Ok(url) = std::env::var("CRUDAUTH_TEST_POSTGRES_URL") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED multi-process on the database store: CRUDAUTH_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let schema = format!("ca_mp_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let admin = Database::connect(&url).await.expect("PostgreSQL reachable");
    admin
        .execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let database = format!("{url}{sep}options[search_path]={schema}");
    let secret = format!("multi-process-secret-{}", uuid::Uuid::new_v4().simple());
    let (pa, pb) = (free_port(), free_port());
    let outbox = std::env::temp_dir().join(format!("crudauth-mp-{schema}.jsonl"));
    let outbox = outbox.to_str().unwrap();
    {
        let _a = start(pa, &database, &Shared::Database, &secret, outbox).await;
        let _b = start(pb, &database, &Shared::Database, &secret, outbox).await;
        exercise(pa, pb, outbox).await;
    }
    let _ = std::fs::remove_file(outbox);
    admin
        .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .ok();
}

/// Session shared, logout on one ends it on the other, a refresh token used on one is dead
/// on the other, a reset link mailed by one works once on the other, a deactivation on one
/// (the app's own write, announced) ends the account on the other, and failures spread
/// over both trip the lockout.
async fn exercise(pa: u16, pb: u16, outbox: &str) {
    deactivation(pa, pb).await;
    let (status, _, _) = http(
        pa,
        "POST",
        "/register",
        &[JSON],
        r#"{"email":"mp@example.com","username":"mp","password":"correct horse 1"}"#,
    )
    .await;
    assert_eq!(status, 202);

    // A session made on A is valid on B; logout on B ends it on A.
    let (status, head, body) = http(
        pa,
        "POST",
        "/login",
        &[FORM],
        "username=mp&password=correct+horse+1",
    )
    .await;
    assert_eq!(status, 200);
    let sid = cookie(&head, "session_id");
    let csrf = field(&body, "csrf_token");
    let jar = format!("session_id={sid}");
    assert_eq!(
        http(pb, "GET", "/me", &[("cookie", &jar)], "").await.0,
        200,
        "session known on B"
    );
    assert_eq!(
        http(
            pb,
            "POST",
            "/logout",
            &[("cookie", &jar), ("x-csrf-token", &csrf)],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        http(pa, "GET", "/me", &[("cookie", &jar)], "").await.0,
        401,
        "logged out on A too"
    );

    // A refresh token used on A is dead on B (and its reuse revokes the family).
    let (_, _, body) = http(
        pa,
        "POST",
        "/token",
        &[FORM],
        "username=mp&password=correct+horse+1",
    )
    .await;
    let refresh = field(&body, "refresh_token");
    let payload = format!("{{\"refresh_token\":\"{refresh}\"}}");
    assert_eq!(http(pa, "POST", "/refresh", &[JSON], &payload).await.0, 200);
    assert_eq!(http(pb, "POST", "/refresh", &[JSON], &payload).await.0, 401);

    // A's user cache is warm with a token and a session of mp; the reset redeemed on B below
    // must end both on A's very next request.
    let (_, _, body) = http(
        pa,
        "POST",
        "/token",
        &[FORM],
        "username=mp&password=correct+horse+1",
    )
    .await;
    let access = field(&body, "access_token");
    let bearer = format!("Bearer {access}");
    assert_eq!(
        http(pa, "GET", "/me", &[("authorization", &bearer)], "")
            .await
            .0,
        200
    );
    let (_, head, _) = http(
        pa,
        "POST",
        "/login",
        &[FORM],
        "username=mp&password=correct+horse+1",
    )
    .await;
    let session = format!("session_id={}", cookie(&head, "session_id"));
    assert_eq!(
        http(pa, "GET", "/me", &[("cookie", &session)], "").await.0,
        200
    );

    // A reset link mailed by A is redeemed on B, once.
    let (status, _, _) = http(
        pa,
        "POST",
        "/password/reset-request",
        &[JSON],
        r#"{"email":"mp@example.com"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let token = common::last_token(outbox, "reset_password").await;
    let payload = format!("{{\"token\":\"{token}\",\"new_password\":\"correct horse 2\"}}");
    assert_eq!(
        http(pb, "POST", "/password/reset-confirm", &[JSON], &payload)
            .await
            .0,
        200
    );
    assert_eq!(
        http(pa, "POST", "/password/reset-confirm", &[JSON], &payload)
            .await
            .0,
        400,
        "used on B, dead on A"
    );
    assert_eq!(
        http(pa, "GET", "/me", &[("authorization", &bearer)], "")
            .await
            .0,
        401,
        "reset on B: A's cached user no longer serves the old token"
    );
    assert_eq!(
        http(pa, "GET", "/me", &[("cookie", &session)], "").await.0,
        401,
        "reset on B: nor the old session"
    );

    // Five wrong passwords spread over both processes trip the lockout on either.
    for i in 0..5 {
        let port = if i % 2 == 0 { pa } else { pb };
        assert_eq!(
            http(
                port,
                "POST",
                "/login",
                &[FORM],
                "username=mp&password=wrong"
            )
            .await
            .0,
            401
        );
    }
    assert_eq!(
        http(
            pb,
            "POST",
            "/login",
            &[FORM],
            "username=mp&password=correct+horse+2"
        )
        .await
        .0,
        429
    );
    assert_eq!(
        http(
            pa,
            "POST",
            "/token",
            &[FORM],
            "username=mp&password=correct+horse+2"
        )
        .await
        .0,
        429
    );
}

/// The demo's `POST /admin/users/{id}/deactivate` writes the table with plain SeaORM and
/// calls `auth.invalidate_user`: made on A, B refuses the account's session and token on the
/// very next request although its cache is warm with the user; only superusers may call it.
async fn deactivation(pa: u16, pb: u16) {
    let (status, _, _) = http(
        pa,
        "POST",
        "/register",
        &[JSON],
        r#"{"email":"off@example.com","username":"off","password":"correct horse 1"}"#,
    )
    .await;
    assert_eq!(status, 202);
    let sign_in = async |port: u16, user: &str, password: &str| {
        let form = format!("username={user}&password={}", password.replace(' ', "+"));
        let (status, head, body) = http(port, "POST", "/login", &[FORM], &form).await;
        assert_eq!(status, 200, "{user} signs in");
        (
            format!("session_id={}", cookie(&head, "session_id")),
            field(&body, "csrf_token"),
        )
    };
    let (session, csrf) = sign_in(pb, "off", "correct horse 1").await;
    let (_, _, body) = http(
        pb,
        "POST",
        "/token",
        &[FORM],
        "username=off&password=correct+horse+1",
    )
    .await;
    let bearer = format!("Bearer {}", field(&body, "access_token"));
    let (status, _, body) = http(pb, "GET", "/me", &[("cookie", &session)], "").await;
    assert_eq!(status, 200, "B's cache is warm with the user");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["user_id"].clone();
    assert_eq!(
        http(pb, "GET", "/me", &[("authorization", &bearer)], "")
            .await
            .0,
        200
    );
    let path = format!("/admin/users/{id}/deactivate");
    assert_eq!(
        http(
            pb,
            "POST",
            &path,
            &[("cookie", &session), ("x-csrf-token", &csrf)],
            ""
        )
        .await
        .0,
        403,
        "not a superuser"
    );
    let (admin, admin_csrf) = sign_in(pa, "admin@example.com", ADMIN_PASSWORD).await;
    let admin_headers = [
        ("cookie", admin.as_str()),
        ("x-csrf-token", admin_csrf.as_str()),
    ];
    assert_eq!(
        http(
            pa,
            "POST",
            "/admin/users/999999/deactivate",
            &admin_headers,
            ""
        )
        .await
        .0,
        404,
        "no such account"
    );
    assert_eq!(
        http(pa, "POST", &path, &[("cookie", &admin)], "").await.0,
        403,
        "a cookie without its CSRF header changes nothing"
    );
    assert_eq!(
        http(pb, "GET", "/me", &[("cookie", &session)], "").await.0,
        200,
        "still active"
    );
    assert_eq!(http(pa, "POST", &path, &admin_headers, "").await.0, 204);
    assert_eq!(
        http(pb, "GET", "/me", &[("cookie", &session)], "").await.0,
        401,
        "deactivated on A: B refuses the session at once"
    );
    assert_eq!(
        http(pb, "GET", "/me", &[("authorization", &bearer)], "")
            .await
            .0,
        401,
        "and the token"
    );
    assert_ne!(
        http(
            pa,
            "POST",
            "/login",
            &[FORM],
            "username=off&password=correct+horse+1"
        )
        .await
        .0,
        200,
        "and no new sign-in"
    );
}
