//! Authenticated-request throughput: `GET user/` with a token, a JWT and a session, on SQLite
//! and on PostgreSQL, each as a ratio to a minimal in-memory reference.
//!
//! The reference is a poem-openapi handler answering the same JSON from a `HashMap` keyed by
//! the credential, run as a process of its own (this example, re-run with `--reference`), as
//! Tessera is. The load is `CONNECTIONS` keep-alive HTTP/1.1 connections (hyper's bare client
//! connection: the load generator must cost little next to what it measures) for `SECONDS`
//! each, after a one-second warm-up.
//!
//!     cargo build --release && cargo run --release --example auth_bench
//!
//! Environment: `CONNECTIONS` (default 64), `SECONDS` (default 5), `MODES` (default
//! `token,jwt,session`), `TESSERA_BIN` (default
//! target/release/tessera), `TESSERA_BENCH_DATABASE_URL` (a PostgreSQL server URL whose user
//! may create databases, default `postgres://postgres@127.0.0.1:5432/test`; `none` skips
//! PostgreSQL). Targets: every ratio at least 0.5, p99 under 5 ms.

#[path = "common/bench.rs"]
mod bench;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;

use poem::middleware::{NormalizePath, TrailingSlash};
use poem::web::Data;
use poem::{EndpointExt, Request, Route, Server, listener::TcpListener};
use poem_openapi::payload::Json;
use poem_openapi::{OpenApi, OpenApiService};
use serde_json::{Value, json};

use bench::{
    Load, Measured, Process, ScratchDatabase, env_or, free_port, measure, ms, wait_listening,
};

const PASSWORD: &str = "correct horse battery staple";
const EMAIL: &str = "bench@example.com";

/// One credential as a request carries it: a header name and value.
#[derive(Clone)]
struct Credential {
    mode: &'static str,
    header: &'static str,
    value: String,
}

fn main() {
    tessera::tls::install();
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let [_, flag, port, credentials] = args.as_slice()
        && flag == "--reference"
    {
        runtime.block_on(reference_server(port.parse().unwrap(), credentials));
        return;
    }
    runtime.block_on(bench());
}

// ---------------------------------------------------------------------------------------------
// The reference: the same JSON from a HashMap
// ---------------------------------------------------------------------------------------------

struct ReferenceApi;

#[OpenApi]
impl ReferenceApi {
    #[oai(path = "/user/", method = "get")]
    async fn user(
        &self,
        request: &Request,
        users: Data<&Arc<HashMap<String, Value>>>,
    ) -> poem::Result<Json<Value>> {
        let presented = ["authorization", "cookie"]
            .iter()
            .find_map(|name| request.headers().get(*name))
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        match users.get(presented) {
            Some(user) => Ok(Json(user.clone())),
            None => Err(poem::Error::from_status(
                poem::http::StatusCode::UNAUTHORIZED,
            )),
        }
    }
}

/// Serves `GET /auth/user/` for the credentials in `credentials` (JSON: value -> user).
async fn reference_server(port: u16, credentials: &str) {
    let users: HashMap<String, Value> = serde_json::from_str(credentials).unwrap();
    let api = OpenApiService::new(ReferenceApi, "reference", "1");
    // poem-openapi drops trailing slashes from paths; Tessera trims them off requests as here.
    let app = Route::new()
        .nest("/auth", api)
        .with(NormalizePath::new(TrailingSlash::Trim))
        .data(Arc::new(users));
    Server::new(TcpListener::bind(format!("127.0.0.1:{port}")))
        .run(app)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The runs
// ---------------------------------------------------------------------------------------------

async fn bench() {
    let bin = std::env::var("TESSERA_BIN").unwrap_or_else(|_| "target/release/tessera".into());
    let bin = std::fs::canonicalize(&bin)
        .unwrap_or_else(|err| panic!("cannot find {bin}: {err} (run `cargo build --release`)"));
    let postgres = std::env::var("TESSERA_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let modes = std::env::var("MODES").unwrap_or_else(|_| "token,jwt,session".into());
    let mut backends = vec![("SQLite", None)];
    if postgres != "none" {
        backends.push(("PostgreSQL", Some(postgres)));
    }

    let mut rows = Vec::new();
    let mut reference_users = HashMap::new();
    let mut reference_credential = None;
    let mut rows_credential: Option<Credential> = None;
    for (backend, admin_url) in &backends {
        for mode in ["token", "jwt", "session"] {
            if !modes.split(',').any(|m| m == mode) {
                continue;
            }
            let scratch = tempfile::tempdir().unwrap();
            let database = match admin_url {
                Some(admin) => Some(ScratchDatabase::create(admin).await),
                None => None,
            };
            let url = match &database {
                Some(db) => db.url.clone(),
                None => format!(
                    "sqlite://{}?mode=rwc",
                    scratch.path().join("bench.db").display()
                ),
            };
            let server = Tessera::start(&bin, scratch.path(), mode, &url).await;
            let (credential, user) = log_in(&server.base, mode).await;
            reference_users.insert(credential.value.clone(), user);
            if mode == "token" && reference_credential.is_none() {
                reference_credential = Some(credential.clone());
            }
            rows_credential.get_or_insert_with(|| credential.clone());
            let measured = run(&server.base, &credential).await;
            drop(server);
            if let Some(database) = database {
                database.drop().await;
            }
            rows.push((*backend, credential.mode, measured));
        }
    }

    let port = free_port();
    let users = serde_json::to_string(&reference_users).unwrap();
    let reference = Process(
        Command::new(std::env::current_exe().unwrap())
            .args(["--reference", &port.to_string(), &users])
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_listening(&base, "/auth/user/").await;
    // The reference serves every credential alike: measure it with the token (or the first).
    let reference_credential =
        reference_credential.unwrap_or_else(|| rows_credential.clone().expect("at least one mode"));
    let reference_run = run(&base, &reference_credential).await;
    drop(reference);

    let connections: usize = env_or("CONNECTIONS", 64);
    println!(
        "\nGET user/, {connections} connections, {} s each",
        env_or("SECONDS", 5u64)
    );
    println!("| | req/s | ratio | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| reference (HashMap) | {:.0} | 1.00 | {:.2} ms | {:.2} ms |",
        reference_run.requests_per_second,
        ms(reference_run.p50),
        ms(reference_run.p99)
    );
    for (backend, mode, m) in &rows {
        println!(
            "| {mode}, {backend} | {:.0} | {:.2} | {:.2} ms | {:.2} ms |",
            m.requests_per_second,
            m.requests_per_second / reference_run.requests_per_second,
            ms(m.p50),
            ms(m.p99)
        );
    }
}

/// `tessera serve` in one mode over one database.
struct Tessera {
    base: String,
    _process: Process,
}

impl Tessera {
    async fn start(bin: &std::path::Path, dir: &std::path::Path, mode: &str, url: &str) -> Self {
        let port = free_port();
        let child = Command::new(bin)
            .arg("serve")
            .env_remove("TESSERA_BIN")
            .current_dir(dir)
            .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
            .env("TESSERA_DATABASE__URL", url)
            .env("TESSERA_AUTH__MODE", mode)
            .env("TESSERA_LOG__LEVEL", "warn")
            .env("TESSERA_RATE_LIMITS__ENABLED", "false")
            .env("TESSERA_ACCOUNT__EMAIL_VERIFICATION", "none")
            .env(
                "TESSERA_SECRET_KEY",
                "bench-secret-key-that-is-long-enough-0123456789",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
        let base = format!("http://127.0.0.1:{port}");
        let process = Process(child);
        wait_listening(&base, "/health/ready").await;
        Self {
            base,
            _process: process,
        }
    }
}

/// Registers the bench user and returns its credential and `user/` answer.
async fn log_in(base: &str, mode: &'static str) -> (Credential, Value) {
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{base}/auth/{path}");
    let body = json!({"email": EMAIL, "password1": PASSWORD, "password2": PASSWORD});
    let credential = match mode {
        "token" | "jwt" => {
            let reply: Value = client
                .post(api("registration/"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let value = match mode {
                "token" => format!("Token {}", reply["key"].as_str().unwrap()),
                _ => format!("Bearer {}", reply["access"].as_str().unwrap()),
            };
            Credential {
                mode,
                header: "authorization",
                value,
            }
        }
        _ => {
            let csrf = client.get(api("csrf/")).send().await.unwrap();
            let csrf = cookie_value(&csrf, "csrftoken");
            let with_csrf = |request: reqwest::RequestBuilder| {
                request
                    .header("Cookie", format!("csrftoken={csrf}"))
                    .header("X-CSRFToken", &csrf)
            };
            with_csrf(client.post(api("registration/")))
                .json(&body)
                .send()
                .await
                .unwrap();
            let login = with_csrf(client.post(api("login/")))
                .json(&json!({"email": EMAIL, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            // A browser sends the CSRF cookie back with the session cookie.
            Credential {
                mode,
                header: "cookie",
                value: format!(
                    "sessionid={}; csrftoken={csrf}",
                    cookie_value(&login, "sessionid")
                ),
            }
        }
    };
    let user: Value = client
        .get(api("user/"))
        .header(credential.header, &credential.value)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["email"], EMAIL, "{mode}: {user}");
    (credential, user)
}

fn cookie_value(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// `CONNECTIONS` connections sending `GET /auth/user/` with `credential` for `SECONDS`; every
/// answer must be a 200.
async fn run(base: &str, credential: &Credential) -> Measured {
    let load = Load {
        method: hyper::Method::GET,
        path: "/auth/user/".into(),
        headers: vec![(credential.header, credential.value.clone())],
        ..Load::default()
    };
    let address = base.trim_start_matches("http://");
    let measured = measure(
        address,
        &load,
        env_or("CONNECTIONS", 64),
        env_or("SECONDS", 5),
    )
    .await;
    assert_eq!(
        measured.statuses.keys().collect::<Vec<_>>(),
        [&200],
        "{}: {:?}",
        credential.mode,
        measured.statuses
    );
    measured
}
