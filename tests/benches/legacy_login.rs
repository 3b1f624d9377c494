//! Login timing with old password hash formats on: `POST /token` with a wrong password for
//! an unknown identifier, an account whose hash is bcrypt (cost 10), one whose hash is
//! Django's PBKDF2 (260,000 iterations), and one already on argon2id. Every check is held
//! to the slowest configured format's time (the timing floor), so the four should take the
//! same time; their ratios to the unknown identifier are the timing oracle the login must
//! not have. `cargo bench -p crudauth-tests --bench legacy_login`.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crudauth::LockoutConfig;
use crudauth::password::LegacyHashes;
use crudauth::user::{NewUser, UserRepository};
use crudauth_sea::SeaUserRepository;
use crudauth_tests::http::{Req, User, app_with, send};

#[derive(serde::Deserialize)]
struct Vector {
    format: String,
    hash: String,
}

#[derive(serde::Deserialize)]
struct File {
    bench: Vec<Vector>,
}

fn legacy_login(c: &mut Criterion) {
    let bench = serde_json::from_str::<File>(include_str!("../fixtures/legacy-hashes.json"))
        .expect("fixture")
        .bench;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // With the floor (samples from the table) and without it (only argon2id's dummy sets
    // it): the second shows the timing oracle the floor takes away.
    run(
        c,
        &rt,
        &bench,
        "floor on",
        bench.iter().map(|v| v.hash.clone()).collect(),
    );
    run(c, &rt, &bench, "floor off", Vec::new());
}

fn run(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    bench: &[Vector],
    label: &str,
    samples: Vec<String>,
) {
    let t = rt.block_on(async {
        let t = app_with(
            &format!("bench_legacy_login_{}", label.replace(' ', "_")),
            |b| {
                // Wrong passwords over and over: no lockout in the way of the measurement.
                b.lockout(LockoutConfig {
                    max_attempts: i64::MAX / 4,
                    ip_max_attempts: i64::MAX / 4,
                    account_max_attempts: i64::MAX / 4,
                    account_hourly_max_attempts: i64::MAX / 4,
                    ..LockoutConfig::default()
                })
                .legacy_hashes(LegacyHashes::built_in().timing_samples(samples))
            },
        )
        .await;
        t.register("modern@example.com", "modern", "correct horse 1")
            .await;
        let repo = SeaUserRepository::<User>::new(t.tdb.db.clone());
        for v in bench {
            let mut new = NewUser::new(v.hash.clone()).email(format!("{}@example.com", v.format));
            new.username = Some(v.format.clone());
            repo.create(new).await.expect("seed");
        }
        t
    });
    println!(
        "{label}: timing floor {:.1} ms",
        t.auth.passwords().timing_floor().as_secs_f64() * 1000.0
    );
    let mut g = c.benchmark_group(format!("POST /token, wrong password, {label}"));
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    for (name, login) in [
        ("unknown identifier", "nobody"),
        ("bcrypt cost 10 account", "bcrypt"),
        ("django pbkdf2 260k account", "django"),
        ("argon2id account", "modern"),
    ] {
        g.bench_function(name, |b| {
            b.to_async(rt).iter(|| async {
                let form = [("username", login), ("password", "not the password")];
                let r = send(&t.app, Req::post("/token").form(&form)).await;
                assert_eq!(r.status, 401);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, legacy_login);
criterion_main!(benches);
