//! The deployment guide (README, "Deploying to production") and its files in `deploy/`, tried
//! as far as this machine allows:
//! - `deploy/tessera.toml` is served by the real binary on PostgreSQL, with only what is
//!   site-specific overridden (database, key file, ports, and the mail backend: `file`, as no
//!   TLS mail server runs here); its SMTP URL is tried against a scripted SMTP server;
//! - `deploy/tessera.service` passes `systemd-analyze verify` and `security` (no systemd runs
//!   here to start it);
//! - `deploy/nginx.conf` runs in nginx (installed on first use, pinned), with TLS and a throwaway
//!   certificate, in front of the real binary with `deploy/tessera.toml`;
//! - the `Dockerfile` is only read: there is no Docker engine here to build it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};

use crate::support::cookies::SetCookie;
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
    let client = crate::support::http_client();
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

// ---------------------------------------------------------------------------------------------
// nginx in front of Tessera
// ---------------------------------------------------------------------------------------------

/// Debian packages this test runs (installed on first use, pinned): nginx, openssl for a
/// throwaway certificate, and curl, a client that speaks TLS and sends from the address it is
/// told to.
const NGINX: [&str; 3] = ["nginx-light", "1.22.1-9+deb12u12", "/usr/sbin/nginx"];
const OPENSSL: [&str; 3] = ["openssl", "3.0.19-1~deb12u2", "/usr/bin/openssl"];
const CURL: [&str; 3] = ["curl", "7.88.1-10+deb12u15", "/usr/bin/curl"];

/// The site's name: the certificate's, and the one the client asks for.
const SITE: &str = "auth.example.com";
/// A client on the internet (any address that is not a trusted proxy's).
const OUTSIDE_CLIENT: &str = "127.0.0.2";
/// A client within `server.trusted_proxies` (the proxy's own address here; a host on the
/// proxies' private network in production).
const INSIDE_CLIENT: &str = "127.0.0.1";
/// What a client claims to be in `X-Forwarded-For`.
const SPOOFED: &str = "203.0.113.7";

fn apt(package: [&str; 3], needs: &str) -> PathBuf {
    let [package, version, program] = package;
    crate::support::tools::apt_package(package, version, program, needs)
}

/// `text` with `from`, which must be there, replaced by `to`.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/nginx.conf no longer has {from:?}"
    );
    text.replace(from, to)
}

/// `deploy/nginx.conf` run by nginx in the foreground (one process: no workers to outlive it)
/// in `dir`, on `port` of loopback, with a throwaway certificate for [`SITE`] and `upstream` as
/// its only Tessera. Its access log lines are `REQUEST-ID CLIENT-ADDRESS "REQUEST" STATUS`.
struct Nginx {
    child: std::process::Child,
    dir: PathBuf,
    port: u16,
    curl: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, upstream: &str) -> Self {
        let nginx = apt(NGINX, "nginx, to run deploy/nginx.conf");
        let openssl = apt(OPENSSL, "openssl, for a throwaway certificate");
        let at = |name: &str| dir.join(name).display().to_string();
        let certificate = Command::new(openssl)
            .args(["req", "-x509", "-nodes", "-days", "1", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", &format!("/CN={SITE}")])
            .args(["-addext", &format!("subjectAltName=DNS:{SITE}")])
            .args(["-keyout", &at("key.pem"), "-out", &at("cert.pem")])
            .output()
            .unwrap();
        assert!(certificate.status.success(), "{certificate:?}");

        // Only what is site-specific: the listener (a free port of loopback, no IPv6), the
        // certificate, and the upstream.
        let port = free_port();
        let mut site = read("deploy/nginx.conf");
        for (from, to) in [
            (
                "    listen 443 ssl;",
                format!("    listen 127.0.0.1:{port} ssl;"),
            ),
            ("    listen [::]:443 ssl;\n", String::new()),
            ("/etc/ssl/auth.example.com/fullchain.pem", at("cert.pem")),
            ("/etc/ssl/auth.example.com/privkey.pem", at("key.pem")),
            (
                "    server 10.0.0.10:8000;\n    server 10.0.0.11:8000;",
                format!("    server {upstream};"),
            ),
        ] {
            site = replaced(&site, from, &to);
        }
        std::fs::write(at("site.conf"), site).unwrap();
        let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|kind| format!("    {kind}_temp_path {};\n", at(kind)))
            .collect();
        std::fs::write(
            at("nginx.conf"),
            format!(
                "daemon off;\nmaster_process off;\npid {pid};\nerror_log stderr;\nevents {{}}\n\
                 http {{\n    log_format ids '$request_id $remote_addr \"$request\" $status';\n    \
                 access_log {log} ids;\n{temp}    include {site};\n}}\n",
                pid = at("nginx.pid"),
                log = at("access.log"),
                site = at("site.conf"),
            ),
        )
        .unwrap();
        let child = Command::new(nginx)
            .args(["-p", &at(""), "-e", "stderr", "-c", &at("nginx.conf")])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(at("nginx.stderr")).unwrap())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Self {
            child,
            dir: dir.to_owned(),
            port,
            curl: apt(CURL, "curl, an HTTPS client, to call nginx"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                panic!("nginx exited with {status}: {}", nginx.stderr());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not listen on {port}: {}",
                nginx.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("nginx.stderr")).unwrap_or_default()
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// One HTTPS request to the site with curl, from the loopback address `from`, the
    /// certificate checked against the throwaway one: the status, the headers (lowercase
    /// names), the body.
    fn request(
        &self,
        from: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> CurlReply {
        let mut command = Command::new(&self.curl);
        command
            .args(["--silent", "--show-error", "--include", "--http1.1"])
            .args(["--max-time", "30", "--interface", from])
            .args(["--cacert", &self.dir.join("cert.pem").display().to_string()])
            .args(["--resolve", &format!("{SITE}:{}:127.0.0.1", self.port)])
            .args(["--request", method])
            // No `Expect: 100-continue`: one answer per request.
            .args(["--header", "Expect:"]);
        for (name, value) in headers {
            command.args(["--header", &format!("{name}: {value}")]);
        }
        if body.is_some() {
            command.args([
                "--header",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        command.arg(format!("https://{SITE}:{}{path}", self.port));
        command.stdin(std::process::Stdio::piped());
        command.stdout(std::process::Stdio::piped());
        command.stderr(std::process::Stdio::piped());
        let output = tokio::task::block_in_place(|| {
            let mut child = command.spawn().expect("curl runs");
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(body.unwrap_or_default().as_bytes())
                .unwrap();
            drop(stdin);
            child.wait_with_output().unwrap()
        });
        assert!(
            output.status.success(),
            "curl {method} {path}: {}\nnginx: {}",
            String::from_utf8_lossy(&output.stderr),
            self.stderr()
        );
        CurlReply::parse(&String::from_utf8_lossy(&output.stdout))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct CurlReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl CurlReply {
    fn parse(output: &str) -> Self {
        let (head, body) = output
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("an HTTP answer: {output}"));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {output}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Self {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON ({e}): {self:?}"))
    }

    fn cookie(&self, name: &str) -> SetCookie {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, value)| SetCookie::parse(value))
            .find(|cookie| cookie.name == name)
            .unwrap_or_else(|| panic!("a {name} cookie: {self:?}"))
    }

    /// The `X-Request-Id` nginx made: 32 hex digits (`$request_id`).
    fn request_id(&self) -> String {
        let id = self.header("x-request-id").unwrap_or_default();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "nginx's $request_id in X-Request-Id: {self:?}"
        );
        id.to_owned()
    }
}

/// `deploy/nginx.conf` run by nginx (TLS on a free port with a throwaway certificate; only the
/// listener, the certificate and the upstream changed) in front of `tessera serve` with
/// `deploy/tessera.toml`, on SQLite, trusting the proxy's address. Through it, over HTTPS: the
/// client's own address reaches the audit trail and a forged `X-Forwarded-For` never does, from
/// outside the trusted network or inside it; `X-Forwarded-Proto` makes Tessera see https (an
/// `http://` origin is refused through the proxy, and accepted when the same request goes to
/// Tessera directly); nginx's request id is the one in its log, in the answer and in the audit
/// row; `/metrics` is not served; a body over 64 KiB is refused by nginx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nginx_site_serves_tessera_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let metrics_bind = format!("127.0.0.1:{}", free_port());
    let mail = dir.path().join("mail");
    let config_path = repo_file("deploy/tessera.toml");
    let env = [
        ("TESSERA_CONFIG", config_path.to_str().unwrap()),
        ("TESSERA_DATABASE__URL", &database),
        ("TESSERA_SECRET_KEY_FILE", key.to_str().unwrap()),
        ("TESSERA_METRICS__BIND", &metrics_bind),
        ("TESSERA_EMAIL__BACKEND", "file"),
        ("TESSERA_EMAIL__FILE_DIR", mail.to_str().unwrap()),
        // nginx reaches Tessera from loopback.
        ("TESSERA_SERVER__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]"),
        // A cookie session at login, so that the CSRF origin check (the one place the scheme
        // matters) can be seen.
        ("TESSERA_AUTH__SESSION_LOGIN", "true"),
    ];
    let mut server = ServeProcess::start(dir.path(), &env, Some(&dir.path().join("serve.log")));
    let client = crate::support::http_client();
    server.wait_ready(&client).await;
    let upstream = server.base.strip_prefix("http://").unwrap().to_owned();
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir(&nginx_dir).unwrap();
    let nginx = tokio::task::block_in_place(|| Nginx::start(&nginx_dir, &upstream));

    // A client outside the trusted network, forging its address and a request id.
    let signup = json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD})
        .to_string();
    let registered = nginx.request(
        OUTSIDE_CLIENT,
        "POST",
        "/auth/registration/",
        &[("X-Forwarded-For", SPOOFED), ("X-Request-Id", "forged-id")],
        Some(&signup),
    );
    assert_eq!(registered.status, 201, "{registered:?}");
    let registered_id = registered.request_id();

    // A client inside the trusted network, forging its address: the proxy's X-Forwarded-For
    // must not carry the forged entry, or Tessera would walk past this trusted address to it.
    let login = json!({"email": "ada@example.com", "password": PASSWORD}).to_string();
    let logged_in = nginx.request(
        INSIDE_CLIENT,
        "POST",
        "/auth/login/",
        &[("X-Forwarded-For", SPOOFED)],
        Some(&login),
    );
    assert_eq!(logged_in.status, 200, "{logged_in:?}");
    let login_id = logged_in.request_id();
    assert!(logged_in.json()["key"].is_string(), "{logged_in:?}");
    let session = logged_in.cookie("sessionid");
    assert!(session.secure() && session.http_only(), "{}", session.raw);
    let csrf = logged_in.cookie("csrftoken");

    // The session changes the account only with the CSRF token and an origin Tessera trusts:
    // through the proxy the request is https, so a page served over http is another origin.
    let cookies = format!("sessionid={}; csrftoken={}", session.value, csrf.value);
    let patch = |origin: &str| -> Vec<(&str, String)> {
        vec![
            ("Cookie", cookies.clone()),
            ("X-CSRFToken", csrf.value.clone()),
            ("Origin", origin.to_owned()),
        ]
    };
    let through_nginx = |origin: &str| {
        let headers = patch(origin);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        nginx.request(
            OUTSIDE_CLIENT,
            "PATCH",
            "/auth/user/",
            &headers,
            Some(r#"{"first_name": "Ada"}"#),
        )
    };
    let http_page = format!("http://{SITE}");
    let refused = through_nginx(&http_page);
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(
        refused.json()["detail"],
        format!(
            "CSRF Failed: Origin checking failed - {http_page} does not match any trusted origins."
        )
    );
    let accepted = through_nginx(&format!("https://{SITE}"));
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(accepted.json()["first_name"], "Ada");
    // The same request straight to Tessera (from a trusted address, but with no
    // X-Forwarded-Proto) is plain http, where that origin is the request's own.
    let mut direct = client
        .patch(format!("{}/auth/user/", server.base))
        .header("Host", SITE)
        .json(&json!({"first_name": "Ada"}));
    for (name, value) in patch(&http_page) {
        direct = direct.header(name, value);
    }
    let direct = direct.send().await.unwrap();
    assert_eq!(direct.status(), 200, "{:?}", direct.text().await);

    // /metrics is for metrics.bind only.
    let metrics = nginx.request(OUTSIDE_CLIENT, "GET", "/metrics", &[], None);
    assert_eq!(metrics.status, 404, "{metrics:?}");
    assert!(!metrics.body.contains("tessera_"), "{metrics:?}");

    // client_max_body_size: nginx refuses the body before Tessera sees it.
    let huge = format!(r#"{{"email": "{}@example.com"}}"#, "a".repeat(100 * 1024));
    let too_large = nginx.request(OUTSIDE_CLIENT, "POST", "/auth/login/", &[], Some(&huge));
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert!(
        too_large.header("x-request-id").is_none() && too_large.body.contains("nginx"),
        "nginx's own 413, not Tessera's: {too_large:?}"
    );

    // The audit trail: the address each client connected from, never the forged one, and
    // nginx's request id.
    let db = sea_orm::Database::connect(&database).await.unwrap();
    let events = entity::audit_event::Entity::find()
        .order_by_asc(entity::audit_event::Column::Id)
        .all(&db)
        .await
        .unwrap();
    let recorded: Vec<(&str, Option<&str>, Option<&str>)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.ip.as_deref(), e.request_id.as_deref()))
        .collect();
    assert_eq!(
        recorded[..2],
        [
            (
                "registration",
                Some(OUTSIDE_CLIENT),
                Some(registered_id.as_str())
            ),
            ("login", Some(INSIDE_CLIENT), Some(login_id.as_str())),
        ],
        "{events:#?}"
    );
    assert!(
        events.iter().all(|e| e.ip.as_deref() != Some(SPOOFED)),
        "{events:#?}"
    );
    // nginx logged the same ids, with the addresses it saw.
    let log = nginx.access_log();
    for (id, from, request) in [
        (&registered_id, OUTSIDE_CLIENT, "POST /auth/registration/"),
        (&login_id, INSIDE_CLIENT, "POST /auth/login/"),
    ] {
        assert!(
            log.lines()
                .any(|line| line.starts_with(&format!("{id} {from} \"{request} "))),
            "{id} {from} {request} in nginx's log:\n{log}"
        );
    }

    drop(nginx);
    let (status, _, _) = server.stop();
    assert!(status.success(), "SIGTERM ends serve with 0: {status}");
}
