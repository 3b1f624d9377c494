//! Criterion benches of the primitives and of the per-request cost of `Principal`.
//!
//! `cargo bench -p crudauth`. Figures are reported in the README as ratios: extraction
//! overhead as a multiple of a bare handler measured in the same run, the verification of an
//! access token per signing algorithm as a multiple of HS256's.

use std::hint::black_box;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use crudauth::password::{PasswordConfig, PasswordHasher};
use crudauth::{BearerConfig, CrudAuth, JwtKey, Principal, SessionConfig};
use tower::ServiceExt;

#[path = "support/mod.rs"]
mod support;
use support::{OneUser, User};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn passwords(c: &mut Criterion) {
    let rt = runtime();
    let hasher = PasswordHasher::new(PasswordConfig::default()).expect("hasher");
    let hash = rt
        .block_on(hasher.hash("correct horse battery staple"))
        .expect("hash");
    let mut g = c.benchmark_group("password (argon2id 19 MiB, t=2, p=1)");
    g.sample_size(20);
    g.bench_function("hash", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(hasher.hash("correct horse battery staple").await) })
    });
    g.bench_function("verify", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                hasher
                    .verify("correct horse battery staple", Some(&hash))
                    .await,
            )
        })
    });
    // The whole password sign-in (lookup, lockout counters, verify, known-address record)
    // against the same verify: what the library adds around argon2.
    let user = User {
        id: 1,
        email: "bench@example.com".into(),
        hash,
    };
    let auth = CrudAuth::builder(OneUser(Arc::new(user)))
        .secret_key(vec![7u8; 32])
        .session(SessionConfig::default())
        .build()
        .expect("config");
    let client = crudauth::ClientMeta {
        ip: Some(std::net::IpAddr::from([203, 0, 113, 9])),
        user_agent: "bench".into(),
    };
    g.bench_function("sign-in (authenticate_password)", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                auth.authenticate_password(
                    "bench@example.com",
                    "correct horse battery staple",
                    &client,
                    "session",
                )
                .await
                .is_ok(),
            )
        })
    });
    g.finish();
}

fn fixture(rt: &tokio::runtime::Runtime) -> (CrudAuth<User>, User, String, String) {
    let hasher = PasswordHasher::new(PasswordConfig {
        memory_kib: 64,
        iterations: 1,
        ..Default::default()
    })
    .expect("hasher");
    let hash = rt
        .block_on(hasher.hash("correct horse battery staple"))
        .expect("hash");
    let user = User {
        id: 1,
        email: "bench@example.com".into(),
        hash,
    };
    let auth = CrudAuth::builder(OneUser(Arc::new(user.clone())))
        .secret_key(vec![7u8; 32])
        .session(SessionConfig::default())
        .bearer(BearerConfig::default())
        .build()
        .expect("config");
    let access = rt
        .block_on(auth.issue_tokens(&user, []))
        .expect("tokens")
        .access_token;
    let session = rt
        .block_on(
            auth.sessions()
                .expect("sessions")
                .create("1", 0, "127.0.0.1", "bench"),
        )
        .expect("session")
        .id;
    (auth, user, access, session)
}

fn tokens_and_sessions(c: &mut Criterion) {
    let rt = runtime();
    let (auth, user, access, session) = fixture(&rt);
    let tokens = auth.tokens().expect("bearer");
    let sessions = auth.sessions().expect("sessions");
    let mut g = c.benchmark_group("tokens and sessions");
    g.bench_function("token pair mint (+ family record)", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(auth.issue_tokens(&user, []).await.is_ok()) })
    });
    g.bench_function("access token verify", |b| {
        b.iter(|| black_box(tokens.verify_access(&access).is_ok()))
    });
    g.bench_function("session resolve (memory store)", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(sessions.resolve(&session).await.is_ok()) })
    });
    g.finish();
}

fn extraction(c: &mut Criterion) {
    let rt = runtime();
    let (auth, _, access, session) = fixture(&rt);
    async fn me(p: Principal<User>) -> String {
        p.user_id.to_string()
    }
    let app: Router = Router::new()
        .route("/bare", get(|| async { "1" }))
        .route("/me", get(me))
        .with_state(auth);
    let send = |req: Request<Body>| {
        let app = app.clone();
        async move { black_box(app.oneshot(req).await.expect("infallible").status()) }
    };
    let mut g = c.benchmark_group("per-request cost");
    g.bench_function("bare handler", |b| {
        b.to_async(&rt)
            .iter(|| send(Request::get("/bare").body(Body::empty()).expect("req")))
    });
    g.bench_function("Principal via bearer", |b| {
        b.to_async(&rt).iter(|| {
            send(
                Request::get("/me")
                    .header("authorization", format!("Bearer {access}"))
                    .body(Body::empty())
                    .expect("req"),
            )
        })
    });
    g.bench_function("Principal via session (memory store)", |b| {
        b.to_async(&rt).iter(|| {
            send(
                Request::get("/me")
                    .header("cookie", format!("session_id={session}"))
                    .body(Body::empty())
                    .expect("req"),
            )
        })
    });
    g.finish();
}

/// One access token verified (`TokenService::verify_access`: header, kid, signature,
/// claims) per signing algorithm; the test fixtures' keys.
fn signing_keys(c: &mut Criterion) {
    let rt = runtime();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let read = |name: &str| std::fs::read_to_string(format!("{fixtures}/{name}")).expect("fixture");
    let pair = |file: &str| {
        JwtKey::from_pem(
            file,
            &read(&format!("{file}-private.pem")),
            &read(&format!("{file}-public.pem")),
        )
        .expect("fixture key")
    };
    let keys = [
        ("HS256 (baseline)", JwtKey::Hs256Derived),
        ("ES256", pair("es256")),
        ("ES384", pair("es384")),
        ("ES512", pair("es512")),
        ("EdDSA", pair("ed25519")),
        ("RS256 (2048)", pair("rs256")),
    ];
    let mut g = c.benchmark_group("signing keys: access token verify");
    for (name, key) in keys {
        let user = User {
            id: 1,
            email: "bench@example.com".into(),
            hash: String::new(),
        };
        let auth = CrudAuth::builder(OneUser(Arc::new(user.clone())))
            .secret_key(vec![7u8; 32])
            .bearer(BearerConfig {
                key,
                ..BearerConfig::default()
            })
            .build()
            .expect("config");
        let access = rt
            .block_on(auth.issue_tokens(&user, []))
            .expect("tokens")
            .access_token;
        let tokens = auth.tokens().expect("bearer");
        g.bench_function(name, |b| {
            b.iter(|| black_box(tokens.verify_access(&access).is_ok()))
        });
    }
    g.finish();
}

/// The disposable-email check (with `--features disposable-email`: the shipped list, parsed
/// once before the timed loop).
fn disposable(c: &mut Criterion) {
    use crudauth::disposable::DisposableEmails;
    let list = DisposableEmails::default().block(["trash.example"]);
    let started = std::time::Instant::now();
    let _ = list.is_disposable("warm@up.example");
    eprintln!(
        "disposable list: {} shipped domains parsed in {:?}",
        DisposableEmails::shipped_len(),
        started.elapsed()
    );
    let mut g = c.benchmark_group("disposable");
    g.bench_function("is_disposable (ordinary address, 3 labels)", |b| {
        b.iter(|| list.is_disposable(std::hint::black_box("ann@mail.example.com")))
    });
    g.bench_function("is_disposable (listed parent, 4 labels)", |b| {
        b.iter(|| list.is_disposable(std::hint::black_box("ann@a.b.mailinator.com")))
    });
    g.bench_function("is_disposable (IDN, punycode)", |b| {
        b.iter(|| list.is_disposable(std::hint::black_box("ann@bücher.example")))
    });
    g.finish();
}

criterion_group!(
    benches,
    passwords,
    tokens_and_sessions,
    extraction,
    signing_keys,
    disposable
);
criterion_main!(benches);
