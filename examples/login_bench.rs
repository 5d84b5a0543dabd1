//! Login throughput and server memory under concurrent logins.
//!
//! Starts `target/release/tessera serve` on a scratch SQLite database with the default argon2id
//! parameters, registers one user, then keeps `CONCURRENCY` logins in flight for `SECONDS` and
//! reports logins per second, latency percentiles and the server's peak resident memory.
//!
//!     cargo build --release && cargo run --release --example login_bench
//!
//! Environment: `CONCURRENCY` (default 64), `SECONDS` (default 10), `TESSERA_BIN` (default
//! target/release/tessera). Measured on the 2-core development machine, default argon2id
//! (m=19456, t=2, p=1): 130 logins/s at 4 or 64 in flight; peak server RSS 63 MiB at 4 and
//! 69 MiB at 64. Memory must stay flat however many requests wait: hashing is bounded and
//! reuses its working buffers.

#[path = "common/bench.rs"]
mod bench;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use bench::{env_or, peak_rss_kib};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() {
    tessera::tls::install();
    let concurrency: usize = env_or("CONCURRENCY", 64);
    let seconds: u64 = env_or("SECONDS", 10);
    let bin = std::env::var("TESSERA_BIN").unwrap_or_else(|_| "target/release/tessera".into());
    // The server runs in a scratch directory, so resolve the path before moving there.
    let bin = std::fs::canonicalize(&bin)
        .unwrap_or_else(|err| panic!("cannot find {bin}: {err} (run `cargo build --release`)"));
    let dir = tempfile::tempdir().expect("scratch directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/auth");

    let mut server = Command::new(&bin)
        .arg("serve")
        .current_dir(dir.path())
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .env("TESSERA_LOG__LEVEL", "warn")
        // One client address at hundreds of logins a second: allauth's `login = "30/m/ip"`
        // would turn nearly all into 429s. This measures the login path, limits aside.
        .env("TESSERA_RATE_LIMITS__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("http://127.0.0.1:{port}/health/ready"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registered = client
        .post(format!("{base}/registration/"))
        .json(&json!({"email": "bench@example.com", "password1": PASSWORD, "password2": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let idle_rss = peak_rss_kib(server.id());

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let stop = stop.clone();
            let url = format!("{base}/login/");
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let response = client
                        .post(&url)
                        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak_rss = peak_rss_kib(server.id());
    server.kill().ok();
    server.wait().ok();

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "concurrency {concurrency}, {seconds} s, {} logins",
        latencies.len()
    );
    println!(
        "throughput  {:.1} logins/s",
        latencies.len() as f64 / elapsed
    );
    println!(
        "latency     p50 {:?}  p90 {:?}  p99 {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99)
    );
    println!(
        "server RSS  idle peak {} MiB, peak under load {} MiB",
        idle_rss.map_or("?".into(), |k| (k / 1024).to_string()),
        peak_rss.map_or("?".into(), |k| (k / 1024).to_string())
    );
}
