//! The demo's social sign-in, end to end over real HTTP: the demo process configured from
//! the environment (`CRUDAUTH_OIDC_*`), a local OpenID Connect provider, and a client that
//! follows the redirects and carries the cookies as a browser would.

mod common;

use crudauth_tests::oauth_provider::{CLIENT_ID, CLIENT_SECRET, FakeIdp, Person};

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_demo_signs_in_with_an_oidc_provider_from_the_environment() {
    let idp = FakeIdp::start().await;
    idp.sign_in_as(Person::verified("demo-sub", "oidc-user@example.com"));
    let port = common::free_port();
    let db = std::env::temp_dir().join(format!("crudauth-demo-oauth-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let _demo = common::spawn(
        port,
        &["--database", &url],
        &[
            ("CRUDAUTH_OIDC_ISSUER", &idp.base),
            ("CRUDAUTH_OIDC_CLIENT_ID", CLIENT_ID),
            ("CRUDAUTH_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ],
    )
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let start = http
        .get(format!("{base}/oauth/oidc/authorize?redirect_to=/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 307);
    let state = common::cookie_of(&start, "oauth_state").expect("state cookie");
    let at_idp = http.get(location(&start)).send().await.unwrap();
    assert_eq!(at_idp.status(), 302);
    let back = location(&at_idp);
    assert!(
        back.starts_with(&format!("{base}/oauth/oidc/callback?")),
        "{back}"
    );
    let done = http
        .get(&back)
        .header("cookie", format!("oauth_state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 307);
    assert_eq!(location(&done), "/whoami");
    let session = common::cookie_of(&done, "__Host-session_id")
        .or_else(|| common::cookie_of(&done, "session_id"))
        .expect("a session cookie");
    let name = if common::cookie_of(&done, "__Host-session_id").is_some() {
        "__Host-session_id"
    } else {
        "session_id"
    };
    let me = http
        .get(format!("{base}/me"))
        .header("cookie", format!("{name}={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(body["email"], "oidc-user@example.com");
    let _ = std::fs::remove_file(db);
}
