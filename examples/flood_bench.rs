//! A flood of throttled requests: what refusing costs. One client floods `password/reset/`
//! (allauth's default `20/m/ip,5/m/key`: nearly every request is refused 429), each request
//! naming another address, on the embedded SQLite database with the default settings.
//!
//!     cargo build --release && cargo run --release --example flood_bench
//!
//! Reports throughput and latency of the refusals, the audit rows written, the WAL file during
//! and after the flood, and the server's peak memory. Environment: `CONNECTIONS` (default 64),
//! `SECONDS` (default 30), `TESSERA_BIN` (default target/release/tessera).

#[path = "common/bench.rs"]
mod bench;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

use bench::{Load, Process, env_or, free_port, measure, ms, peak_rss_kib, wait_listening};

fn file_mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1_048_576.0)
}

#[tokio::main]
async fn main() {
    tessera::tls::install();
    let seconds: u64 = env_or("SECONDS", 30);
    let connections: usize = env_or("CONNECTIONS", 64);
    let bin = std::env::var("TESSERA_BIN").unwrap_or_else(|_| "target/release/tessera".into());
    let bin = std::fs::canonicalize(&bin)
        .unwrap_or_else(|err| panic!("cannot find {bin}: {err} (run `cargo build --release`)"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Process(
        Command::new(&bin)
            .arg("serve")
            .current_dir(dir.path())
            .env_remove("TESSERA_BIN")
            .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
            .env("TESSERA_LOG__LEVEL", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_listening(&base, "/health/ready").await;

    let flood = Load {
        method: hyper::Method::POST,
        path: "/auth/password/reset/".into(),
        body: Some(Arc::new(|n| {
            format!("{{\"email\": \"victim{n}@example.com\"}}")
        })),
        ..Load::default()
    };
    let wal = dir.path().join("tessera.db-wal");
    let measured = measure(&format!("127.0.0.1:{port}"), &flood, connections, seconds).await;
    let wal_during = file_mib(&wal);
    let rss = peak_rss_kib(server.0.id()).map(|kib| kib as f64 / 1024.0);
    // One checkpoint period later.
    tokio::time::sleep(Duration::from_secs(65)).await;
    let wal_after = file_mib(&wal);

    let db = Database::connect(format!(
        "sqlite://{}?mode=ro",
        dir.path().join("tessera.db").display()
    ))
    .await
    .unwrap();
    let rows = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT COUNT(*) AS n FROM audit_events",
        ))
        .await
        .unwrap()
        .unwrap();
    let audit_rows: i64 = rows.try_get("", "n").unwrap();
    drop(server);

    let total: usize = measured.statuses.values().sum();
    println!("\nPOST password/reset/ flood, {connections} connections, {seconds} s, one client");
    println!(
        "requests    {total} ({:.0}/s), statuses {:?}",
        measured.requests_per_second, measured.statuses
    );
    println!(
        "latency     p50 {:.2} ms, p99 {:.2} ms",
        ms(measured.p50),
        ms(measured.p99)
    );
    println!("audit rows  {audit_rows}");
    println!(
        "WAL         {wal_during:.1} MiB at the end of the flood, {wal_after:.1} MiB a minute later"
    );
    println!(
        "server RSS  peak {}",
        rss.map_or("?".into(), |m| format!("{m:.0} MiB"))
    );
}
