//! Timing does not reveal accounts: login failures for an unknown address, a wrong password
//! and an inactive account take the same time, and so do reset and resend requests for known
//! and unknown addresses.
//!
//! Each case is sent at least 50 times, interleaved in a shuffled order so that whatever else
//! the machine does falls on every case alike; the medians must differ by less than
//! max(5 ms, 10% of one password verification), the verification measured here with the
//! default argon2 parameters the server runs with. This compares cases with each other; it
//! sets no speed target (those live in `examples/login_bench.rs`).
//!
//! A test binary of its own, not a module of `tests/api`: there, hundreds of other tests would
//! run beside these on the same cores while they measure, and the medians would compare noise.
//! Cargo runs test binaries one after another, so here only these run (one at a time, below).

#[macro_use]
#[allow(dead_code, unused_imports)]
#[path = "api/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use serde_json::{Value, json};
use support::{Backend, PASSWORD, TestApp};
use tessera::config::{Config, PasswordHashingConfig};
use tessera::service::password_hashing::PasswordHasher;

on_each_backend!(
    login_failures_take_the_same_time,
    reset_and_resend_take_the_same_time_for_known_and_unknown_addresses,
);

const ROUNDS: usize = 60;
const WARM_UP_ROUNDS: usize = 5;

/// One measurement at a time in this binary: parallel tests would be noise for each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server as deployed: default argon2 parameters, no rate limits in the way.
fn production_like(config: &mut Config) {
    config.password_hashing = PasswordHashingConfig::default();
    config.rate_limits.enabled = false;
}

async fn login_failures_take_the_same_time(backend: Backend) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn_with(backend, production_like).await;
    app.register("known@example.com").await;
    app.register("inactive@example.com").await;
    app.db
        .execute_unprepared(
            "UPDATE users SET is_active = false WHERE email = 'inactive@example.com'",
        )
        .await
        .unwrap();
    let cases = [
        (
            "unknown address",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        ),
        (
            "wrong password",
            json!({"email": "known@example.com", "password": "not the password"}),
        ),
        (
            "inactive account",
            json!({"email": "inactive@example.com", "password": PASSWORD}),
        ),
    ];
    let medians = measure(&app, "login/", &cases, |status, body| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body,
            &json!({"non_field_errors": ["Unable to log in with provided credentials."]})
        );
    })
    .await;
    assert_close(&medians, one_verification().await);
}

async fn reset_and_resend_take_the_same_time_for_known_and_unknown_addresses(backend: Backend) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn_with(backend, |config| {
        production_like(config);
        config.account.email_verification = tessera::config::EmailVerification::Optional;
    })
    .await;
    app.register("verified@example.com").await;
    app.register("unverified@example.com").await;
    app.db
        .execute_unprepared(
            "UPDATE email_addresses SET verified = true WHERE email = 'verified@example.com'",
        )
        .await
        .unwrap();
    let allowance = one_verification().await;
    let ok = |status: u16, body: &Value| {
        assert_eq!(status, 200, "{body}");
    };

    let reset = [
        ("unknown address", json!({"email": "nobody@example.com"})),
        ("known address", json!({"email": "verified@example.com"})),
    ];
    let medians = measure(&app, "password/reset/", &reset, ok).await;
    assert_close(&medians, allowance);

    let resend = [
        ("unknown address", json!({"email": "nobody@example.com"})),
        (
            "unverified address",
            json!({"email": "unverified@example.com"}),
        ),
        ("verified address", json!({"email": "verified@example.com"})),
    ];
    let medians = measure(&app, "registration/resend-email/", &resend, ok).await;
    assert_close(&medians, allowance);
}

/// Sends every case once per round, in a shuffled order, one request at a time; returns each
/// case's median latency. `check` sees every answer (a fast error would prove nothing).
async fn measure(
    app: &TestApp,
    path: &str,
    cases: &[(&'static str, Value)],
    check: impl Fn(u16, &Value),
) -> Vec<(&'static str, Duration)> {
    let mut samples = vec![Vec::with_capacity(ROUNDS); cases.len()];
    let mut order: Vec<usize> = (0..cases.len()).collect();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..WARM_UP_ROUNDS + ROUNDS {
        shuffle(&mut order, &mut seed);
        for &case in &order {
            let request = app.client.post(app.api(path)).json(&cases[case].1);
            let started = Instant::now();
            let reply = app.send(request).await;
            let took = started.elapsed();
            check(reply.status, &reply.body);
            if round >= WARM_UP_ROUNDS {
                samples[case].push(took);
            }
        }
    }
    cases
        .iter()
        .zip(samples)
        .map(|((name, _), mut times)| {
            times.sort();
            (*name, times[times.len() / 2])
        })
        .collect()
}

/// The medians may differ by less than max(5 ms, 10% of one verification).
fn assert_close(medians: &[(&str, Duration)], verification: Duration) {
    let allowed = Duration::from_millis(5).max(verification / 10);
    let report = medians
        .iter()
        .map(|(name, median)| format!("{name}: {:.2} ms", median.as_secs_f64() * 1e3))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "medians {report}; one verification {:.2} ms; allowed spread {:.2} ms",
        verification.as_secs_f64() * 1e3,
        allowed.as_secs_f64() * 1e3
    );
    let fastest = medians.iter().map(|(_, m)| *m).min().unwrap();
    let slowest = medians.iter().map(|(_, m)| *m).max().unwrap();
    assert!(
        slowest - fastest < allowed,
        "timing reveals which case is which: {report} (allowed spread {allowed:?})"
    );
}

/// The median time of one argon2 verification with the default parameters, measured here.
async fn one_verification() -> Duration {
    let hasher = PasswordHasher::new(&PasswordHashingConfig::default()).unwrap();
    let password = SecretString::from(PASSWORD);
    let hash = hasher.hash(&password).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..9 {
        let started = Instant::now();
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap().matches);
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// Fisher-Yates with xorshift64: a different order every round, the same on every run.
fn shuffle(order: &mut [usize], seed: &mut u64) {
    for i in (1..order.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        order.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}
