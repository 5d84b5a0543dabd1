//! Two instances on one PostgreSQL under one load generator, and what must hold across them.
//!
//! Creates a scratch database, runs `tessera migrate up` once and starts two `tessera serve`
//! (A and B) on it, each mailing with the `file` backend into a directory of its own. Seeds
//! `USERS` accounts, then sends the mixed workload from one load generator, its `CONNECTIONS`
//! split evenly over A and B, for `SECONDS` after a one-second warm-up: 89.5% `GET user/`
//! (a token of a seeded account), 8% `login/` (a seeded account), 2% `registration/` (a new
//! address each) and 0.5% `password/reset/` (a seeded account). Then it checks:
//!
//! - **mail, exactly once**: when the shared outbox has drained, the two directories together
//!   hold, per address, one confirmation per registration answered 201 and one reset mail per
//!   reset answered 200; none twice, none missing, nothing else;
//! - **a rate limit across both instances**: `login_failed` is `5/m/key`; twelve wrong
//!   passwords for one account, sent alternately to A and B, get exactly five answers that are
//!   not 429 (the counters live in the database, `rate_limits.store = "database"`);
//! - every answer of the workload is the one its kind should get (a reset may also be refused
//!   429 by its per-address rule);
//!
//! and prints requests per second with p50 and p99 latency per instance and per kind of
//! request. It exits non-zero when a check fails.
//!
//!     cargo build --release --bin tessera --examples && target/release/examples/two_instances
//!
//! Environment: `CONNECTIONS` (default 32), `SECONDS` (default 10), `USERS` (default 100),
//! `TESSERA_BIN` (default target/release/tessera), `TESSERA_BENCH_DATABASE_URL` (a PostgreSQL
//! server URL whose user may create databases, default
//! `postgres://postgres@127.0.0.1:5432/test`).
//!
//! All the load comes from one client address, so per-IP limits would measure the limiter, not
//! the service: the workload's actions are limited per address only (`login` and `signup`
//! unlimited, `reset_password = "5/m/key"`, `login_failed = "5/m/key"`, `confirm_email`
//! allauth's `1/180s/key`), each a shared counter in the database as in production.
//!
//! `tests/api/two_instances.rs` runs the same scenario briefly (this file is compiled into the
//! test), so CI exercises it on every PostgreSQL run.

#[path = "common/bench.rs"]
mod bench;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};

use bench::{
    Load, Measured, Process, Run, ScratchDatabase, Vary, env_or, free_port, measure_mix, ms,
};

const PASSWORD: &str = "correct horse battery staple";
const SECRET_KEY: &str = "two-instances-secret-key-that-is-long-enough-0123456789";
/// The account the rate-limit check guesses the password of (not used by the workload, whose
/// logins would clear its count).
const VICTIM: &str = "victim@example.com";
/// `rate_limits.login_failed` during the run.
const LOGIN_FAILED_LIMIT: usize = 5;
const INSTANCES: [&str; 2] = ["A", "B"];

/// The workload's kinds of request, their names and weights (per 1000).
const USER: usize = 0;
const LOGIN: usize = 1;
const REGISTRATION: usize = 2;
const RESET: usize = 3;
const KINDS: [(&str, u32); 4] = [
    ("user/", 895),
    ("login/", 80),
    ("registration/", 20),
    ("password/reset/", 5),
];

fn main() {
    tessera::tls::install();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let passed = runtime.block_on(async {
        let bin = std::env::var("TESSERA_BIN").unwrap_or_else(|_| "target/release/tessera".into());
        let bin = std::fs::canonicalize(&bin).unwrap_or_else(|err| {
            panic!("cannot find {bin}: {err} (run `cargo build --release --bin tessera`)")
        });
        let admin = std::env::var("TESSERA_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let database = ScratchDatabase::create(&admin).await;
        let scenario = Scenario {
            bin,
            database_url: database.url.clone(),
            seconds: env_or("SECONDS", 10),
            connections: env_or("CONNECTIONS", 32),
            users: env_or("USERS", 100),
            env: Vec::new(),
        };
        // A panic inside still drops the database.
        let report = tokio::spawn(async move { run(&scenario).await }).await;
        database.drop().await;
        let report = report.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
        print!("{report}");
        report.passed()
    });
    if !passed {
        std::process::exit(1);
    }
}

/// What to run: the binary, an empty PostgreSQL database, the size of the run.
pub struct Scenario {
    pub bin: PathBuf,
    pub database_url: String,
    pub seconds: u64,
    pub connections: usize,
    pub users: usize,
    /// More `TESSERA_*` settings for both instances (the test's cheap password hashing).
    pub env: Vec<(String, String)>,
}

/// The figures and the checks of one run.
pub struct Report {
    pub table: String,
    pub checks: Vec<Check>,
}

pub struct Check {
    pub what: &'static str,
    pub passed: bool,
    pub detail: String,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.table)?;
        for check in &self.checks {
            let verdict = if check.passed { "ok" } else { "FAILED" };
            writeln!(f, "{verdict:6} {}: {}", check.what, check.detail)?;
        }
        Ok(())
    }
}

/// Migrates, starts both instances, seeds, loads, checks.
pub async fn run(scenario: &Scenario) -> Report {
    let scratch = tempfile::tempdir().unwrap();
    let migrated = tessera(scenario, scratch.path(), &[])
        .args(["migrate", "up"])
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "tessera migrate up: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let mut instances = Vec::new();
    for name in INSTANCES {
        instances.push(Instance::start(scenario, &scratch.path().join(name)).await);
    }
    let client = reqwest::Client::new();
    let tokens = seed(&client, &instances, scenario.users).await;

    let targets: Vec<String> = instances.iter().map(|i| i.address.clone()).collect();
    let run = measure_mix(
        &targets,
        &workload(tokens, scenario.users),
        scenario.connections,
        scenario.seconds,
    )
    .await;

    let mut checks = vec![expected_answers(&run)];
    checks.push(mail_exactly_once(scenario, &instances, &run).await);
    checks.push(failed_logins_limited(&client, &instances).await);
    Report {
        table: table(scenario, &run),
        checks,
    }
}

/// `tessera` with a clean environment: only `PATH`, the shared settings and `env`.
fn tessera(scenario: &Scenario, dir: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(&scenario.bin);
    command.current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command
        .env("TESSERA_DATABASE__URL", &scenario.database_url)
        .env("TESSERA_SECRET_KEY", SECRET_KEY)
        .env("TESSERA_LOG__LEVEL", "error");
    for (key, value) in env {
        command.env(key, value);
    }
    for (key, value) in &scenario.env {
        command.env(key, value);
    }
    command
}

/// One `tessera serve`, mailing into a directory of its own.
struct Instance {
    address: String,
    base: String,
    mail_dir: PathBuf,
    _process: Process,
}

impl Instance {
    async fn start(scenario: &Scenario, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let mail_dir = dir.join("mail");
        let env = [
            ("TESSERA_BIND", address.clone()),
            ("TESSERA_DATABASE__AUTO_MIGRATE", "false".into()),
            ("TESSERA_EMAIL__BACKEND", "file".into()),
            ("TESSERA_EMAIL__FILE_DIR", mail_dir.display().to_string()),
            // Shared by both instances: the point of the rate-limit check.
            ("TESSERA_RATE_LIMITS__STORE", "database".into()),
            // One client address sends everything: per-address rules only (see the top).
            ("TESSERA_RATE_LIMITS__LOGIN", "".into()),
            ("TESSERA_RATE_LIMITS__SIGNUP", "".into()),
            ("TESSERA_RATE_LIMITS__LOGIN_FAILED", "5/m/key".into()),
            ("TESSERA_RATE_LIMITS__RESET_PASSWORD", "5/m/key".into()),
        ];
        let mut child = Process(
            tessera(scenario, dir, &env)
                .arg("serve")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|err| panic!("cannot start {}: {err}", scenario.bin.display())),
        );
        let base = format!("http://{address}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!("tessera serve exited early: {status}");
            }
            let ready = client.get(format!("{base}/health/ready")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "{base} did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            address,
            base,
            mail_dir,
            _process: child,
        }
    }
}

fn user_email(n: u64, users: usize) -> String {
    format!("user{}@example.com", n % users as u64)
}

/// Registers `users` accounts (and the victim), alternately on each instance; their tokens.
async fn seed(client: &reqwest::Client, instances: &[Instance], users: usize) -> Vec<String> {
    let emails: Vec<String> = (0..users as u64)
        .map(|n| user_email(n, users))
        .chain([VICTIM.to_owned()])
        .collect();
    let mut tokens: Vec<(usize, String)> =
        futures_util::stream::iter(emails.into_iter().enumerate())
            .map(|(n, email)| {
                let url = format!("{}/auth/registration/", instances[n % 2].base);
                let body = json!({"email": email, "password1": PASSWORD, "password2": PASSWORD});
                let client = client.clone();
                async move {
                    let reply = client.post(url).json(&body).send().await.unwrap();
                    assert_eq!(reply.status(), 201, "registering {email}");
                    let reply: Value = reply.json().await.unwrap();
                    (n, reply["key"].as_str().unwrap().to_owned())
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
    tokens.sort();
    tokens.truncate(users);
    tokens.into_iter().map(|(_, token)| token).collect()
}

/// The mixed workload, in the order of [`KINDS`].
fn workload(tokens: Vec<String>, users: usize) -> Vec<(Load, u32)> {
    let tokens = Arc::new(tokens);
    let user = Load {
        method: hyper::Method::GET,
        path: "/auth/user/".into(),
        varying_header: Some((
            "authorization",
            Arc::new(move |n| format!("Token {}", tokens[n as usize % tokens.len()])),
        )),
        ..Load::default()
    };
    let post = |path: &str, body: Vary| Load {
        method: hyper::Method::POST,
        path: format!("/auth/{path}"),
        body: Some(body),
        ..Load::default()
    };
    let login = post(
        "login/",
        Arc::new(move |n| json!({"email": user_email(n, users), "password": PASSWORD}).to_string()),
    );
    let registration = post(
        "registration/",
        Arc::new(|n| {
            json!({"email": new_email(n), "password1": PASSWORD, "password2": PASSWORD}).to_string()
        }),
    );
    let reset = post(
        "password/reset/",
        Arc::new(move |n| json!({"email": user_email(n, users)}).to_string()),
    );
    vec![user, login, registration, reset]
        .into_iter()
        .zip(KINDS.map(|(_, weight)| weight))
        .collect()
}

fn new_email(n: u64) -> String {
    format!("new{n}@example.com")
}

/// Every answer of the run (the warm-up's too) was the one its kind should get.
fn expected_answers(run: &Run) -> Check {
    let mut unexpected: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for sample in &run.samples {
        let expected: &[u16] = match sample.kind {
            USER | LOGIN => &[200],
            REGISTRATION => &[201],
            _ => &[200, 429],
        };
        if !expected.contains(&sample.status) {
            *unexpected
                .entry((KINDS[sample.kind].0, sample.status))
                .or_default() += 1;
        }
    }
    Check {
        what: "answers",
        passed: unexpected.is_empty(),
        detail: if unexpected.is_empty() {
            format!("all {} as expected", run.samples.len())
        } else {
            format!("unexpected (kind, status): count {unexpected:?}")
        },
    }
}

/// Once the outbox has drained: per address, one confirmation per registration answered 201
/// (the seeded ones too) and one reset mail per reset answered 200, across both directories.
async fn mail_exactly_once(scenario: &Scenario, instances: &[Instance], run: &Run) -> Check {
    let fail = |detail: String| Check {
        what: "mail exactly once",
        passed: false,
        detail,
    };
    let mut expected: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for n in 0..scenario.users as u64 {
        *expected
            .entry(("confirmation", user_email(n, scenario.users)))
            .or_default() += 1;
    }
    *expected
        .entry(("confirmation", VICTIM.to_owned()))
        .or_default() += 1;
    let mut resets = (0, 0);
    for sample in &run.samples {
        match (sample.kind, sample.status) {
            (REGISTRATION, 201) => {
                *expected
                    .entry(("confirmation", new_email(sample.number)))
                    .or_default() += 1;
            }
            (RESET, 200) => {
                resets.0 += 1;
                *expected
                    .entry(("reset", user_email(sample.number, scenario.users)))
                    .or_default() += 1;
            }
            (RESET, _) => resets.1 += 1,
            _ => {}
        }
    }
    if resets.0 == 0 {
        return fail("the run sent no password reset that was answered 200: run longer".into());
    }

    let db = Database::connect(&scenario.database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (total, failed) = loop {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT COUNT(*) AS total, \
                 COUNT(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL) AS pending, \
                 COUNT(*) FILTER (WHERE failed_at IS NOT NULL) AS failed FROM outbox",
            ))
            .await
            .unwrap()
            .unwrap();
        let count = |column: &str| row.try_get::<i64>("", column).unwrap() as usize;
        if count("pending") == 0 {
            break (count("total"), count("failed"));
        }
        if Instant::now() > deadline {
            return fail(format!(
                "{} message(s) still pending a minute after the run",
                count("pending")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    db.close().await.ok();

    let mut delivered: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut per_instance = Vec::new();
    for instance in instances {
        let mut files = 0;
        for entry in std::fs::read_dir(&instance.mail_dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "eml") {
                continue;
            }
            files += 1;
            let raw = std::fs::read(&path).unwrap();
            let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let subject = message.subject().unwrap_or_default();
            let kind = if subject.ends_with("Password reset") {
                "reset"
            } else if subject.ends_with("Please confirm your email address") {
                "confirmation"
            } else {
                "other"
            };
            for to in message.to().iter().flat_map(|to| to.iter()) {
                let to = to.address().unwrap_or_default().to_owned();
                *delivered.entry((kind, to)).or_default() += 1;
            }
        }
        per_instance.push(files);
    }

    let expected_total: usize = expected.values().sum();
    let mut wrong = Vec::new();
    let addressed: BTreeSet<_> = expected.keys().chain(delivered.keys()).collect();
    for key in addressed {
        let (want, got) = (
            expected.get(key).copied().unwrap_or(0),
            delivered.get(key).copied().unwrap_or(0),
        );
        if want != got && wrong.len() < 10 {
            wrong.push(format!("{} to {}: {got} for {want}", key.0, key.1));
        }
    }
    let confirmations = expected_total - resets.0;
    let detail = format!(
        "{confirmations} confirmations and {} resets to {} addresses asked for ({} resets \
         refused 429), {} delivered (A {}, B {}), outbox {total} rows, {failed} failed",
        resets.0,
        expected.len(),
        resets.1,
        per_instance.iter().sum::<usize>(),
        per_instance[0],
        per_instance[1],
    );
    if wrong.is_empty() && failed == 0 && total == expected_total {
        Check {
            what: "mail exactly once",
            passed: true,
            detail: format!("{detail}; each once, none twice, none lost"),
        }
    } else {
        fail(format!("{detail}; wrong: {}", wrong.join(", ")))
    }
}

/// Wrong passwords for one account, alternately to each instance: exactly the limit of them
/// is answered (400), the rest refused 429, whichever instance they reach.
async fn failed_logins_limited(client: &reqwest::Client, instances: &[Instance]) -> Check {
    // The limiter counts in windows aligned to the epoch: start with a few seconds of this
    // minute's window left at least, so that all attempts land in one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let left =
        Duration::from_secs(60) - Duration::from_nanos((now.as_nanos() % 60_000_000_000) as u64);
    if left < Duration::from_secs(5) {
        tokio::time::sleep(left + Duration::from_millis(200)).await;
    }
    let attempts = 2 * LOGIN_FAILED_LIMIT + 2;
    // (answered, refused) per instance.
    let mut counts = [(0, 0); 2];
    let mut other = Vec::new();
    for attempt in 0..attempts {
        let reply = client
            .post(format!("{}/auth/login/", instances[attempt % 2].base))
            .json(&json!({"email": VICTIM, "password": "not the password"}))
            .send()
            .await
            .unwrap();
        match reply.status().as_u16() {
            429 => counts[attempt % 2].1 += 1,
            400 => counts[attempt % 2].0 += 1,
            status => other.push(status),
        }
    }
    let answered = counts[0].0 + counts[1].0;
    Check {
        what: "failed-login limit across instances",
        passed: answered == LOGIN_FAILED_LIMIT && other.is_empty(),
        detail: format!(
            "login_failed {LOGIN_FAILED_LIMIT}/m/key, {attempts} wrong passwords alternately \
             to A and B: {answered} answered 400 (A {}, B {}), {} refused 429 (A {}, B {}){}",
            counts[0].0,
            counts[1].0,
            counts[0].1 + counts[1].1,
            counts[0].1,
            counts[1].1,
            if other.is_empty() {
                String::new()
            } else {
                format!(", other answers {other:?}")
            },
        ),
    }
}

/// Requests per second, p50 and p99 per instance, per kind and in all.
fn table(scenario: &Scenario, run: &Run) -> String {
    let mut out = format!(
        "\nMixed workload on two instances, one PostgreSQL: {} connections ({} each), {} s \
         after a 1 s warm-up\n| | req/s | p50 | p99 | answers |\n|---|---:|---:|---:|---|\n",
        scenario.connections,
        scenario.connections / 2,
        scenario.seconds
    );
    let mut row = |name: String, measured: Measured| {
        let answers: Vec<String> = measured
            .statuses
            .iter()
            .map(|(status, count)| format!("{count} × {status}"))
            .collect();
        let rate = measured.requests_per_second;
        let decimals = if rate < 10.0 { 1 } else { 0 };
        out.push_str(&format!(
            "| {name} | {rate:.decimals$} | {:.2} ms | {:.2} ms | {} |\n",
            ms(measured.p50),
            ms(measured.p99),
            answers.join(", ")
        ));
    };
    for (target, instance) in INSTANCES.iter().enumerate() {
        let of_instance = || run.samples.iter().filter(move |s| s.target == target);
        row(
            format!("**{instance}**, all"),
            Measured::of(of_instance(), run.seconds),
        );
        for (kind, (name, _)) in KINDS.iter().enumerate() {
            row(
                format!("{instance}, {name}"),
                Measured::of(of_instance().filter(|s| s.kind == kind), run.seconds),
            );
        }
    }
    row("**both**".into(), Measured::of(&run.samples, run.seconds));
    out
}
