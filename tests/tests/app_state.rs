//! The extractors work under an application's own state, not only with `CrudAuth` as the
//! whole state: `Principal`, `Option<Principal>` and `ClientMeta` (which honours the
//! configured `trusted_proxy_hops` through `extract::TrustedHops`).

use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::get;
use crudauth::extract::TrustedHops;
use crudauth::{ClientMeta, CrudAuth, Principal};
use crudauth_tests::http::{Req, User, app_with, send};

#[derive(Clone)]
struct AppState {
    auth: CrudAuth<User>,
    hops: TrustedHops,
    greeting: &'static str,
}

impl FromRef<AppState> for CrudAuth<User> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for TrustedHops {
    fn from_ref(state: &AppState) -> Self {
        state.hops
    }
}

async fn hello(
    State(state): State<AppState>,
    principal: Option<Principal<User>>,
    client: ClientMeta,
) -> String {
    let who = principal.map_or("anonymous".to_owned(), |p| p.user.username.clone());
    let ip = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
    format!("{} {who} from {ip}", state.greeting)
}

#[tokio::test]
async fn extractors_work_under_the_apps_own_state() {
    let t = app_with("app_state", |b| b.trusted_proxy_hops(1)).await;
    t.register("ann@example.com", "ann", "correct horse 1")
        .await;
    let (token, _) = t.token("ann", "correct horse 1", "").await;
    let state = AppState {
        hops: TrustedHops::from_ref(&t.auth),
        auth: t.auth.clone(),
        greeting: "hello",
    };
    let app = Router::new().route("/hello", get(hello)).with_state(state);
    let text = |r: crudauth_tests::http::Resp| String::from_utf8(r.body).expect("utf-8");

    // One trusted proxy: the client is the address it appended, not the socket peer.
    let r = send(
        &app,
        Req::get("/hello")
            .bearer(&token)
            .header("x-forwarded-for", "198.51.100.9"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(text(r), "hello ann from 198.51.100.9");

    let r = send(&app, Req::get("/hello")).await;
    assert_eq!(text(r), "hello anonymous from 127.0.0.1");

    // A bad credential still fails the request under the app's state.
    let r = send(&app, Req::get("/hello").bearer("not-a-token")).await;
    assert_eq!(r.status, 401);
}
