//! The email flows' request path: the handler's own time for a known and an unknown
//! address (their ratio is the timing oracle the route must not have), and the password
//! policy against one argon2id hash. `cargo bench -p crudauth-tests --bench recovery`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crudauth::delivery::{DeliveryError, EmailMessage, EmailSender};
use crudauth::policy::{PasswordContext, PasswordSource};
use crudauth::{RateLimit, RecoveryConfig};
use crudauth_tests::http::{Req, app_with, send};

/// Delivers nowhere: the bench measures the route, not a mail server.
struct NullSender;

#[async_trait::async_trait]
impl EmailSender for NullSender {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        black_box(message);
        Ok(())
    }
}

fn recovery(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = rt.block_on(async {
        let t = app_with("bench_recovery", |b| {
            let mut config = RecoveryConfig::new("https://app.example");
            config.answer_after = Duration::ZERO; // measure the handler, not the floor
            b.recovery(config)
                .email_sender(Arc::new(NullSender))
                .rate_limit("password_reset_request", RateLimit::OFF)
                .rate_limit("email_verify_request", RateLimit::OFF)
        })
        .await;
        t.register("known@example.com", "known", "correct horse 1")
            .await;
        t.auth.background().flush().await;
        t
    });
    let peer = AtomicU32::new(0);
    let next_peer = || {
        let n = peer.fetch_add(1, Ordering::Relaxed);
        [10, (n >> 16) as u8, (n >> 8) as u8, n as u8]
    };

    let mut g = c.benchmark_group("reset-request (handler time, answer_after 0)");
    g.sample_size(30);
    for (label, email) in [
        ("unknown address", "ghost@example.com"),
        ("known address", "known@example.com"),
    ] {
        g.bench_function(label, |b| {
            b.to_async(&rt).iter(|| async {
                let r = send(
                    &t.app,
                    Req::post("/password/reset-request")
                        .peer(next_peer())
                        .json(serde_json::json!({ "email": email })),
                )
                .await;
                assert_eq!(r.status, 200);
            });
        });
        // Let the background jobs of this run finish before the next is measured.
        rt.block_on(t.auth.background().flush());
    }
    g.finish();

    let mut g = c.benchmark_group("password policy");
    g.sample_size(20);
    let ctx = PasswordContext {
        source: PasswordSource::Register,
        username: Some("ann".into()),
        email: Some("ann@example.com".into()),
    };
    let owasp = crudauth::password::PasswordHasher::new(Default::default()).unwrap();
    g.bench_function("argon2id hash (baseline, default OWASP parameters)", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(owasp.hash("mauve staple orbit").await) })
    });
    for (label, pw) in [
        ("policy: accepted", "mauve staple orbit"),
        ("policy: common password", "iloveyou123"),
    ] {
        g.bench_function(label, |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    t.auth
                        .login()
                        .validate_password(pw, &ctx, "password")
                        .await
                        .is_ok(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, recovery);
criterion_main!(benches);
