//! What one sign-in costs the server, by method, through the real router (in-process): a
//! password at the default argon2id cost (the baseline), a passkey assertion (only the
//! finish is timed: the start, and the software authenticator's signature, are the
//! client's), and a one-time code (only the verify is timed: the request and its delivery
//! run before). Report each as a ratio to the password in the same run.
//! `cargo bench -p crudauth-tests --bench sign_in_methods`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crudauth::delivery::{DeliveryError, EmailMessage, EmailSender};
use crudauth::passkey::PasskeyConfig;
use crudauth::passwordless::PasswordlessConfig;
use crudauth::{PasswordConfig, RateLimit};
use crudauth_tests::http::{FRONTEND, Req, app_with, send};
use crudauth_tests::passkey_client::{ORIGIN, RP_ID, SoftAuthenticator};
use serde_json::json;

/// Keeps the last sign-in code mailed.
#[derive(Clone, Default)]
struct LastCode(Arc<Mutex<Option<String>>>);

#[async_trait::async_trait]
impl EmailSender for LastCode {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        if let Some(code) = &message.context.code {
            *self.0.lock().unwrap() = Some(code.clone());
        }
        Ok(())
    }
}

const PW: &str = "a long password 1";

fn sign_in_methods(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mailbox = LastCode::default();
    let sender = mailbox.clone();
    let (t, device) = rt.block_on(async move {
        let t = app_with("bench_sign_in_methods", move |b| {
            let mut config = PasswordlessConfig::new(FRONTEND);
            config.answer_after = Duration::ZERO;
            let mut b = b
                .password(PasswordConfig::default()) // the real cost, not the tests' fast one
                .email_sender(Arc::new(sender))
                .passkeys(PasskeyConfig::new(RP_ID, ORIGIN))
                .passwordless(config);
            for action in [
                "passkey_login",
                "passkey_manage",
                "otp_request",
                "otp_verify",
            ] {
                b = b.rate_limit(action, RateLimit::OFF);
            }
            b
        })
        .await;
        t.register("ann@example.com", "ann", PW).await;
        t.verify_email("ann").await;
        let s = t.login("ann", PW).await;
        let r = t
            .send(
                Req::post("/sudo")
                    .session(&s)
                    .json(json!({ "password": PW })),
            )
            .await;
        assert_eq!(r.status, 200);
        let r = t
            .send(Req::post("/passkeys/register/start").session(&s))
            .await;
        let mut device = SoftAuthenticator::new();
        let credential = device.register(ORIGIN, &r.json["options"]).unwrap();
        let body = json!({ "ceremony": r.json["ceremony"], "credential": credential });
        let r = t
            .send(
                Req::post("/passkeys/register/finish")
                    .session(&s)
                    .json(body),
            )
            .await;
        assert_eq!(r.status, 201);
        (t, Arc::new(Mutex::new(device)))
    });

    let mut g = c.benchmark_group("one sign-in, server side");
    g.sample_size(20);
    g.bench_function("password (argon2id default cost)", |b| {
        b.to_async(&rt).iter(|| async {
            let r = send(
                &t.app,
                Req::post("/login").form(&[("username", "ann"), ("password", PW)]),
            )
            .await;
            assert_eq!(r.status, 200);
        })
    });
    g.bench_function("passkey assertion (finish)", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let app = t.app.clone();
            let device = device.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let r = send(&app, Req::post("/passkeys/login/start").json(json!({}))).await;
                    let credential = device
                        .lock()
                        .unwrap()
                        .sign(ORIGIN, &r.json["options"])
                        .unwrap();
                    let body = json!({ "ceremony": r.json["ceremony"], "credential": credential });
                    let start = Instant::now();
                    let r = send(&app, Req::post("/passkeys/login/finish").json(body)).await;
                    total += start.elapsed();
                    assert_eq!(r.status, 200);
                }
                total
            }
        })
    });
    g.bench_function("one-time code (verify)", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let app = t.app.clone();
            let auth = t.auth.clone();
            let mailbox = mailbox.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let r = send(
                        &app,
                        Req::post("/otp/request").json(json!({ "email": "ann@example.com" })),
                    )
                    .await;
                    assert_eq!(r.status, 200);
                    auth.background().flush().await;
                    let code = mailbox.0.lock().unwrap().take().expect("a code");
                    let body = json!({ "email": "ann@example.com", "code": code });
                    let start = Instant::now();
                    let r = send(&app, Req::post("/otp/verify").json(body)).await;
                    total += start.elapsed();
                    assert_eq!(r.status, 200);
                }
                total
            }
        })
    });
    g.finish();
}

criterion_group!(benches, sign_in_methods);
criterion_main!(benches);
