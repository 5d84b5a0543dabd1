//! What the benchmarks share: the load generator (`connections` keep-alive HTTP/1.1
//! connections, hyper's bare client connection, cheap next to what it measures, sending one
//! request back to back; one kind of request, or a weighted mix of kinds over several
//! servers), settings from the environment, processes and their memory, scratch PostgreSQL
//! databases.

// Each example compiles this file as its own module and uses a part of it (and so does
// tests/api/two_instances.rs, through examples/two_instances.rs).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use sea_orm::{ConnectionTrait, Database};

/// Text made from a request's number.
pub type Vary = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// What to send. `body` (and `varying_header`) get a number unique to each request of its
/// kind (to vary, say, an address or a credential).
#[derive(Clone, Default)]
pub struct Load {
    pub method: hyper::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub varying_header: Option<(&'static str, Vary)>,
    pub body: Option<Vary>,
}

/// What a run measured (after a one-second warm-up).
pub struct Measured {
    pub requests_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub statuses: BTreeMap<u16, usize>,
}

impl Measured {
    /// The measured answers among `samples` (the warm-up left out), over `seconds`.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>, seconds: f64) -> Self {
        let mut latencies = Vec::new();
        let mut statuses = BTreeMap::new();
        for sample in samples.into_iter().filter(|s| s.measured) {
            latencies.push(sample.latency);
            *statuses.entry(sample.status).or_default() += 1;
        }
        latencies.sort();
        let percentile = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().max(1) - 1))
                .copied()
                .unwrap_or_default()
        };
        Measured {
            requests_per_second: latencies.len() as f64 / seconds,
            p50: percentile(0.50),
            p99: percentile(0.99),
            statuses,
        }
    }
}

/// One answer: to which target, of which kind (indexes into `measure_mix`'s arguments), the
/// request's number within its kind, its latency and status, and whether it came after the
/// warm-up (and so is measured).
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub target: usize,
    pub kind: usize,
    pub number: u64,
    pub latency: Duration,
    pub status: u16,
    pub measured: bool,
}

/// Every answer of a run, the warm-up's included, and the measured seconds after it.
pub struct Run {
    pub samples: Vec<Sample>,
    pub seconds: f64,
}

/// `connections` connections sending `load` to `address` for a one-second warm-up and then
/// `seconds`.
pub async fn measure(address: &str, load: &Load, connections: usize, seconds: u64) -> Measured {
    let run = measure_mix(
        &[address.to_owned()],
        &[(load.clone(), 1)],
        connections,
        seconds,
    )
    .await;
    Measured::of(&run.samples, run.seconds)
}

/// `connections` connections, connection `i` to `targets[i % targets.len()]` (host:port),
/// each sending one request after the other for a one-second warm-up and then `seconds`.
/// Each request is of a kind of `mix` drawn by weight from one sequence shared by all
/// connections (the golden-ratio sequence: the kinds interleave evenly, in the proportions of
/// the weights).
pub async fn measure_mix(
    targets: &[String],
    mix: &[(Load, u32)],
    connections: usize,
    seconds: u64,
) -> Run {
    let total: u32 = mix.iter().map(|(_, weight)| weight).sum();
    assert!(
        total > 0 && !targets.is_empty(),
        "something to send, somewhere"
    );
    // Kind of slot s in 0..total: the kind whose share of the weights holds s.
    let mut slots = Vec::with_capacity(total as usize);
    for (kind, (_, weight)) in mix.iter().enumerate() {
        slots.extend(std::iter::repeat_n(kind, *weight as usize));
    }
    let slots = Arc::new(slots);
    let mix: Arc<Vec<Load>> = Arc::new(mix.iter().map(|(load, _)| load.clone()).collect());
    let numbers: Arc<Vec<AtomicU64>> = Arc::new(mix.iter().map(|_| AtomicU64::new(0)).collect());
    let warm = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let sequence = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..connections)
        .map(|connection| {
            let target = connection % targets.len();
            let address = targets[target].clone();
            let (mix, slots, numbers) = (mix.clone(), slots.clone(), numbers.clone());
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
                    let draw = sequence.fetch_add(1, Ordering::Relaxed) as f64;
                    let slot =
                        ((draw * 0.618_033_988_749_895).fract() * slots.len() as f64) as usize;
                    let kind = slots[slot.min(slots.len() - 1)];
                    let load = &mix[kind];
                    let number = numbers[kind].fetch_add(1, Ordering::Relaxed);
                    let mut request = hyper::Request::builder()
                        .method(load.method.clone())
                        .uri(&load.path)
                        .header("host", &address);
                    for (name, value) in &load.headers {
                        request = request.header(*name, value);
                    }
                    if let Some((name, value)) = &load.varying_header {
                        request = request.header(*name, value(number));
                    }
                    let body = match &load.body {
                        Some(body) => {
                            request = request.header("content-type", "application/json");
                            body(number)
                        }
                        None => String::new(),
                    };
                    let request = request.body(Full::new(Bytes::from(body))).unwrap();
                    let start = Instant::now();
                    let response = sender.send_request(request).await.unwrap();
                    let status = response.status().as_u16();
                    response.into_body().collect().await.unwrap();
                    seen.push(Sample {
                        target,
                        kind,
                        number,
                        latency: start.elapsed(),
                        status,
                        measured: !warm.load(Ordering::Relaxed),
                    });
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
    let mut samples = Vec::new();
    for worker in workers {
        samples.extend(worker.await.unwrap());
    }
    Run {
        samples,
        seconds: elapsed,
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

/// A PostgreSQL database for one run, on the server `admin` names (its user may create
/// databases), dropped by `drop`.
pub struct ScratchDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub async fn create(admin: &str) -> Self {
        let name = format!("tessera_bench_{}", std::process::id());
        let connection = Database::connect(admin).await.unwrap();
        connection
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .unwrap();
        connection
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut url = url::Url::parse(admin).unwrap();
        url.set_path(&name);
        Self {
            admin: admin.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop(self) {
        let connection = Database::connect(&self.admin).await.unwrap();
        connection
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}
