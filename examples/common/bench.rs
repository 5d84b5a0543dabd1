//! What the benchmarks share: the load generator (`connections` keep-alive HTTP/1.1
//! connections, hyper's bare client connection, cheap next to what it measures, sending one
//! request back to back), settings from the environment, processes and their memory.

// Each example compiles this file as its own module and uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// What to send. `body` gets a number unique to each request (to vary, say, an address).
#[derive(Clone)]
pub struct Load {
    pub method: hyper::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Arc<dyn Fn(u64) -> String + Send + Sync>>,
}

/// What a run measured (after a one-second warm-up).
pub struct Measured {
    pub requests_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub statuses: BTreeMap<u16, usize>,
}

pub async fn measure(address: &str, load: &Load, connections: usize, seconds: u64) -> Measured {
    let warm = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let sequence = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (address, load) = (address.to_owned(), load.clone());
            let (warm, stop, sequence) = (warm.clone(), stop.clone(), sequence.clone());
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(connection);
                let mut seen = Vec::with_capacity(100_000);
                while !stop.load(Ordering::Relaxed) {
                    let mut request = hyper::Request::builder()
                        .method(load.method.clone())
                        .uri(&load.path)
                        .header("host", &address);
                    for (name, value) in &load.headers {
                        request = request.header(*name, value);
                    }
                    let body = match &load.body {
                        Some(body) => {
                            request = request.header("content-type", "application/json");
                            body(sequence.fetch_add(1, Ordering::Relaxed))
                        }
                        None => String::new(),
                    };
                    let request = request.body(Full::new(Bytes::from(body))).unwrap();
                    let start = Instant::now();
                    let response = sender.send_request(request).await.unwrap();
                    let status = response.status().as_u16();
                    response.into_body().collect().await.unwrap();
                    if !warm.load(Ordering::Relaxed) {
                        seen.push((start.elapsed(), status));
                    }
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    warm.store(false, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut statuses = BTreeMap::new();
    for worker in workers {
        for (latency, status) in worker.await.unwrap() {
            latencies.push(latency);
            *statuses.entry(status).or_default() += 1;
        }
    }
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Measured {
        requests_per_second: latencies.len() as f64 / elapsed,
        p50: percentile(0.50),
        p99: percentile(0.99),
        statuses,
    }
}

/// The variable `name` parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A process's peak resident memory, in KiB (Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `base` answers `path` (any status).
pub async fn wait_listening(base: &str, path: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}{path}")).send().await.is_err() {
        assert!(Instant::now() < deadline, "{base} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running process, killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}
