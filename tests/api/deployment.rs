//! The deployment guide (README, "Deploying to production") and its files in `deploy/`, tried
//! as far as this machine allows:
//! - `deploy/tessera.toml` is served by the real binary on PostgreSQL, with only what is
//!   site-specific overridden (database, key file, ports, and the mail backend: `file`, as no
//!   TLS mail server runs here); its SMTP URL is tried against a scripted SMTP server;
//! - `deploy/tessera.service` passes `systemd-analyze verify` and `security` (no systemd runs
//!   here to start it);
//! - `deploy/nginx.conf` passes `nginx -t` where nginx is installed;
//! - the `Dockerfile` is only read: there is no Docker engine here to build it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::free_port;
use crate::support::process::{BIN, ServeProcess, run};

const PASSWORD: &str = "correct horse battery staple";

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `deploy/tessera.toml` as Tessera loads it, with no environment.
fn production_config() -> tessera::Config {
    tessera::Config::load(Some(&repo_file("deploy/tessera.toml")), Vec::new())
        .expect("deploy/tessera.toml loads")
        .config
}

/// A secret key file as the secret store would leave it: 64 hex characters and a newline.
fn key_file(dir: &Path) -> PathBuf {
    let path = dir.join("credentials").join("secret_key");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("{}\n", "5e".repeat(32))).unwrap();
    path
}

/// The README shows the configuration file as it is, so the two cannot drift apart.
#[test]
fn the_readme_shows_the_production_configuration_as_it_is() {
    let file = read("deploy/tessera.toml");
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("```toml\n{file}```\n")),
        "README.md must show deploy/tessera.toml verbatim in a ```toml block"
    );
    // What the guide promises the file covers.
    let config = production_config();
    assert!(config.database.url.starts_with("postgres://"));
    assert!(config.secret_key.is_none() && config.secret_key_file.is_some());
    assert!(!config.server.trusted_proxies.is_empty());
    assert_eq!(config.email.backend, tessera::config::EmailBackend::Smtp);
    let metrics = config.metrics.bind.expect("metrics.bind is set");
    assert!(
        metrics.port() != config.bind.port() && !metrics.ip().is_unspecified(),
        "metrics.bind {metrics} is one private address"
    );
}

test_support::postgres_test! {
    /// `deploy/tessera.toml` on PostgreSQL, with the key from a file: `check --deploy` finds
    /// nothing to warn about, `serve` gets ready, serves an account, keeps `/metrics` off the
    /// public port and on `metrics.bind`, logs JSON lines and stops cleanly on SIGTERM.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_production_configuration_serves_on_postgresql() {
        serves_on_postgresql().await
    }
}

async fn serves_on_postgresql() {
    let database = test_support::PostgresDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let metrics_bind = format!("127.0.0.1:{}", free_port());
    let mail = dir.path().join("mail");
    let config_path = repo_file("deploy/tessera.toml");
    let config_path = config_path.to_str().unwrap();
    let env = [
        ("TESSERA_DATABASE__URL", database.url()),
        ("TESSERA_SECRET_KEY_FILE", key.to_str().unwrap()),
        ("TESSERA_METRICS__BIND", &metrics_bind),
        // No TLS mail server here; the SMTP URL has its own test below.
        ("TESSERA_EMAIL__BACKEND", "file"),
        ("TESSERA_EMAIL__FILE_DIR", mail.to_str().unwrap()),
    ];

    // As the unit runs it: `--config FILE`.
    let output = run(
        dir.path(),
        &["--config", config_path, "check", "--deploy"],
        &env,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("secret key: ok (from {})", key.display())),
        "{stdout}"
    );
    assert!(stdout.contains("database: ok (postgres://"), "{stdout}");
    assert!(stdout.contains("deploy: 0 warning(s)"), "{stdout}");

    let log = dir.path().join("serve.log");
    let mut env = env.to_vec();
    env.push(("TESSERA_CONFIG", config_path));
    let mut server = ServeProcess::start(dir.path(), &env, Some(&log));
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;

    let registered = client
        .post(format!("{}/auth/registration/", server.base))
        .json(&json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let public = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "no /metrics on the public port");
    let private = client
        .get(format!("http://{metrics_bind}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    let text = private.text().await.unwrap();
    assert!(
        text.lines()
            .any(|line| line == "tessera_registrations_total 1"),
        "{text}"
    );

    let (status, _, _) = server.stop();
    assert!(status.success(), "SIGTERM ends serve with 0: {status}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.trim().is_empty());
    for line in log.lines().filter(|line| !line.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log.format = \"json\", but a line is not ({e}): {line}"));
        assert!(entry.is_object(), "{line}");
    }
}

/// A `secret_key_file` that does not exist would have `serve` generate a key for this machine
/// alone: `check --deploy` says so (and, like every check, creates nothing).
#[test]
fn check_deploy_warns_about_a_missing_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("secret_key");
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mail = dir.path().join("mail");
    let output = run(
        dir.path(),
        &[
            "--config",
            repo_file("deploy/tessera.toml").to_str().unwrap(),
            "check",
            "--deploy",
        ],
        &[
            ("TESSERA_DATABASE__URL", &sqlite),
            ("TESSERA_SECRET_KEY_FILE", missing.to_str().unwrap()),
            ("TESSERA_EMAIL__BACKEND", "file"),
            ("TESSERA_EMAIL__FILE_DIR", mail.to_str().unwrap()),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "deploy: secret_key_file {} does not exist",
            missing.display()
        )),
        "{stdout}"
    );
    assert!(!missing.exists(), "check created the key file");
}

/// What a scripted SMTP server saw of one client: the command lines, and the first byte sent
/// after the server agreed to STARTTLS (0x16 opens a TLS handshake).
#[derive(Debug, Default)]
struct SmtpTranscript {
    commands: Vec<String>,
    after_starttls: Option<u8>,
}

/// An SMTP server for one connection that offers STARTTLS or not, then agrees to it and reads
/// the first byte of what follows. It speaks no TLS: the client's handshake fails there.
fn scripted_smtp_server(offer_starttls: bool) -> (u16, std::thread::JoinHandle<SmtpTranscript>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut transcript = SmtpTranscript::default();
        // A client that never comes (the check failed before the mail) ends the wait.
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return transcript,
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        writer.write_all(b"220 smtp.test ESMTP\r\n").unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let command = line.trim_end().to_owned();
            transcript.commands.push(command.clone());
            let verb = command
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" if offer_starttls => b"250-smtp.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
                "EHLO" => b"250-smtp.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
                "STARTTLS" => {
                    writer
                        .write_all(b"220 2.0.0 Ready to start TLS\r\n")
                        .unwrap();
                    let mut first = [0u8; 1];
                    if reader.read_exact(&mut first).is_ok() {
                        transcript.after_starttls = Some(first[0]);
                    }
                    break;
                }
                "QUIT" => {
                    writer.write_all(b"221 2.0.0 Bye\r\n").ok();
                    break;
                }
                _ => b"250 2.0.0 OK\r\n",
            };
            if writer.write_all(reply).is_err() {
                break;
            }
        }
        transcript
    });
    (port, handle)
}

/// `tessera check` (which connects to the mail server) with the production `smtp_url`
/// pointed at `port`; the database is a SQLite file `check` does not create.
fn check_mail_against(port: u16) -> std::process::Output {
    let mut url = url::Url::parse(&production_config().email.smtp_url).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(port)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    run(
        dir.path(),
        &[
            "--config",
            repo_file("deploy/tessera.toml").to_str().unwrap(),
            "check",
        ],
        &[
            ("TESSERA_DATABASE__URL", &sqlite),
            ("TESSERA_SECRET_KEY_FILE", key.to_str().unwrap()),
            ("TESSERA_EMAIL__SMTP_URL", url.as_str()),
        ],
    )
}

/// The production `smtp_url` asks for STARTTLS right after EHLO and begins a TLS handshake, and
/// to a server that does not offer STARTTLS it says nothing more: no AUTH, no mail in the
/// clear. (A real TLS mail server was not tried: none runs here.)
#[test]
fn the_production_smtp_url_insists_on_tls() {
    let (port, server) = scripted_smtp_server(true);
    let output = check_mail_against(port);
    let transcript = server.join().unwrap();
    assert!(
        !output.status.success(),
        "the scripted server speaks no TLS, so the check must fail"
    );
    assert!(
        transcript.commands.len() == 2
            && transcript.commands[0].starts_with("EHLO ")
            && transcript.commands[1] == "STARTTLS",
        "{transcript:?}"
    );
    assert_eq!(
        transcript.after_starttls,
        Some(0x16),
        "a TLS handshake follows STARTTLS"
    );

    let (port, server) = scripted_smtp_server(false);
    let output = check_mail_against(port);
    let transcript = server.join().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("STARTTLS"), "{stderr}");
    assert!(
        transcript
            .commands
            .iter()
            .all(|c| c.starts_with("EHLO ") || c == "QUIT"),
        "nothing but EHLO (and QUIT) in the clear: {transcript:?}"
    );
}

/// Seconds of a systemd time span like `45s` or `45`.
fn seconds(span: &str) -> u64 {
    span.trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("a time span in seconds, not {span:?}"))
}

/// The unit agrees with the configuration (the key's credential path, the stop timeout), and
/// `systemd-analyze` accepts it and rates its hardening. systemd itself does not run here, so
/// the unit was never started.
#[test]
fn the_systemd_unit_passes_systemd_analyze() {
    let unit = read("deploy/tessera.service");
    let value = |key: &str| -> Vec<&str> {
        unit.lines()
            .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .collect()
    };
    let config = production_config();
    let [credential] = value("LoadCredential")[..] else {
        panic!("one LoadCredential= line")
    };
    let name = credential.split(':').next().unwrap();
    assert_eq!(
        config.secret_key_file.as_deref(),
        Some(Path::new(&format!(
            "/run/credentials/tessera.service/{name}"
        ))),
        "secret_key_file is where systemd puts the credential"
    );
    let [stop] = value("TimeoutStopSec")[..] else {
        panic!("one TimeoutStopSec= line")
    };
    // The grace for requests, then up to 30 s for the mail worker's message in hand.
    assert!(
        seconds(stop) > config.server.shutdown_grace_seconds + 30,
        "TimeoutStopSec={stop} leaves no room for a graceful stop"
    );
    let [exec] = value("ExecStart")[..] else {
        panic!("one ExecStart= line")
    };
    assert_eq!(
        exec,
        "/usr/local/bin/tessera --config /etc/tessera/tessera.toml serve"
    );
    assert_eq!(value("DynamicUser"), ["yes"]);
    assert_eq!(value("Restart"), ["on-failure"]);

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the unit file was not verified");
        return;
    }
    // verify wants ExecStart's program to exist: the binary under test stands in for it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/tessera", BIN)).unwrap();
    let path = path.to_str().unwrap();
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no", path])
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
    // Exposure on systemd's 0-10 scale, times ten: at most 2.0 ("OK").
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", path])
        .output()
        .unwrap();
    assert!(
        security.status.success(),
        "systemd-analyze security rates the unit worse than 2.0:\n{}{}",
        String::from_utf8_lossy(&security.stdout),
        String::from_utf8_lossy(&security.stderr)
    );
}

/// No Docker engine runs here, so the image is never built; what can be checked by reading:
/// the build is locked and builds the binary the runtime stage copies and runs, on a Rust new
/// enough for the workspace, as a user that is not root, exposing the ports it listens on.
#[test]
fn the_dockerfile_reads_right() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect();
    let instructions = |name: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(str::trim)
            .collect()
    };
    let bin = Path::new(BIN).file_name().unwrap().to_str().unwrap();
    assert!(
        instructions("RUN")
            .iter()
            .any(|run| *run == format!("cargo build --release --locked --bin {bin}")),
        "the build runs `cargo build --release --locked --bin {bin}`"
    );

    let from = instructions("FROM");
    let [builder, _runtime] = from[..] else {
        panic!("two stages: {from:?}")
    };
    let (image, stage) = builder.split_once(" AS ").expect("a named build stage");
    let version = image
        .strip_prefix("rust:")
        .and_then(|tag| tag.split('-').next())
        .expect("the build stage is a rust image");
    let manifest = read("Cargo.toml");
    let required = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .expect("rust-version in Cargo.toml")
        .trim_matches('"');
    let numbers = |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().unwrap()).collect() };
    assert!(
        numbers(version) >= numbers(required),
        "{image} is older than rust-version {required}"
    );

    let workdir = instructions("WORKDIR")[0];
    let built = format!("{workdir}/target/release/{bin}");
    let copy = instructions("COPY")
        .into_iter()
        .find(|copy| copy.starts_with(&format!("--from={stage} ")))
        .expect("the runtime stage copies from the build");
    let [_, source, destination] = copy.split_whitespace().collect::<Vec<_>>()[..] else {
        panic!("COPY --from={stage} SOURCE DESTINATION: {copy}")
    };
    assert_eq!(source, built, "the binary cargo builds");
    assert_eq!(
        instructions("ENTRYPOINT"),
        [format!("[\"{destination}\"]")],
        "the entrypoint is the binary copied"
    );

    let user = *instructions("USER").last().expect("a USER instruction");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid != 0),
        "USER {user}: a numeric user that is not root"
    );

    let exposed: Vec<u16> = instructions("EXPOSE")
        .iter()
        .flat_map(|ports| ports.split_whitespace())
        .map(|port| port.parse().unwrap())
        .collect();
    let config = production_config();
    let metrics_port = lines
        .join("\n")
        .split("TESSERA_METRICS__BIND=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|bind| bind.parse::<std::net::SocketAddr>().ok())
        .expect("the image sets TESSERA_METRICS__BIND=IP:PORT")
        .port();
    assert_eq!(exposed, [config.bind.port(), metrics_port]);

    let ignored = read(".dockerignore");
    for entry in ["target/", ".git/"] {
        assert!(
            ignored.lines().any(|line| line == entry),
            ".dockerignore leaves out {entry}"
        );
    }
}

/// `nginx -t` on the site, with a throwaway certificate in place of the real one, where nginx
/// (and openssl) are installed; no nginx is run in front of Tessera.
#[test]
fn the_nginx_site_passes_nginx_t() {
    let installed = |program: &str| Command::new(program).arg("-v").output().is_ok();
    if !installed("nginx") || !installed("openssl") {
        eprintln!("nginx or openssl is not installed: deploy/nginx.conf was not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).display().to_string();
    let certificate = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=auth.example.com", "-keyout", &at("key.pem")])
        .args(["-out", &at("cert.pem")])
        .output()
        .unwrap();
    assert!(certificate.status.success(), "{certificate:?}");
    let site = read("deploy/nginx.conf")
        .replace("/etc/ssl/auth.example.com/fullchain.pem", &at("cert.pem"))
        .replace("/etc/ssl/auth.example.com/privkey.pem", &at("key.pem"));
    std::fs::write(at("site.conf"), site).unwrap();
    std::fs::write(
        at("nginx.conf"),
        format!(
            "pid {};\nerror_log stderr;\nevents {{}}\nhttp {{\n    access_log off;\n    \
             client_body_temp_path {};\n    proxy_temp_path {};\n    include {};\n}}\n",
            at("nginx.pid"),
            at("body"),
            at("proxy"),
            at("site.conf")
        ),
    )
    .unwrap();
    let prefix = dir.path().display().to_string();
    let test = Command::new("nginx")
        .args(["-t", "-p", &prefix, "-e", "stderr", "-c", &at("nginx.conf")])
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );
}
