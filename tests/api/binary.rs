//! The real `tessera` binary, run as a new user would: no configuration, an empty directory.

use std::process::Output;

use crate::support::process::{ServeProcess as Server, call, run};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "an even longer passphrase";

#[tokio::test]
async fn serve_with_no_configuration_runs_the_whole_token_journey() {
    let dir = tempfile::tempdir().unwrap();
    let client = crate::support::http_client();
    let mut server = Server::start(dir.path(), &[], None);
    server.wait_ready(&client).await;
    let api = |path: &str| format!("{}/auth/{path}", server.base);
    use reqwest::Method;

    let (status, body) = call(
        &client,
        Method::GET,
        format!("{}/docs", server.base),
        None,
        None,
    )
    .await;
    assert_eq!((status, body), (200, Value::Null), "Swagger UI is HTML");
    // A query string may carry a secret: the access log never shows it.
    let (status, _) = call(
        &client,
        Method::GET,
        format!("{}/auth/user/?key=query-secret-1234", server.base),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);

    let (status, body) = call(
        &client,
        Method::POST,
        api("registration/"),
        None,
        Some(
            json!({"email": "new.user@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &client,
        Method::POST,
        api("login/"),
        None,
        Some(json!({"email": "new.user@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["key"].as_str().unwrap().to_owned();

    let (status, user) = call(&client, Method::GET, api("user/"), Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(user["email"], "new.user@example.com");

    let (status, body) = call(
        &client,
        Method::POST,
        api("password/change/"),
        Some(&token),
        Some(json!({"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"detail": "New password has been saved."}))
    );

    let (status, body) = call(&client, Method::POST, api("logout/"), Some(&token), None).await;
    assert_eq!(
        (status, body),
        (200, json!({"detail": "Successfully logged out."}))
    );
    let (status, body) = call(&client, Method::GET, api("user/"), Some(&token), None).await;
    assert_eq!((status, body), (401, json!({"detail": "Invalid token."})));

    let (status, _) = call(
        &client,
        Method::POST,
        api("login/"),
        None,
        Some(json!({"email": "new.user@example.com", "password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "the new password works");

    let base = server.base.clone();
    let (exit, logs, stdout) = server.stop();
    assert!(exit.success(), "a graceful stop exits 0: {exit}\n{logs}");
    // The default console backend printed the confirmation email, decoded, its link whole on
    // a line of its own (not cut by quoted-printable soft breaks), pointing at the port served
    // (no `public_url` is set: it follows `bind`)...
    assert!(stdout.contains("To: new.user@example.com"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with(&format!("{base}/verify-email/"))
                && line.ends_with('/')
                && !line.contains(' ')
                && !line.contains("=\n")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("<html"),
        "the HTML part only at debug level: {stdout}"
    );
    // ...and the password-change notice; the logs carry neither.
    assert!(
        !logs.contains("verify-email/"),
        "a confirmation link leaked into the logs"
    );
    assert!(
        logs.contains("/docs"),
        "the Swagger UI URL is logged: {logs}"
    );
    assert!(logs.contains("no secret_key configured"), "{logs}");
    for secret in [PASSWORD, NEW_PASSWORD, token.as_str(), "query-secret-1234"] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
    // The access log: one line per request, method, path, status.
    assert!(
        logs.lines().any(|line| line.contains("tessera::access")
            && line.contains("method=GET")
            && line.contains("path=/auth/user/")
            && line.contains("status=401")),
        "{logs}"
    );

    assert!(
        dir.path().join("tessera.db").exists(),
        "embedded SQLite by default"
    );
    let key_file = dir.path().join("tessera.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = std::fs::read_to_string(&key_file).unwrap();

    // A restart keeps the key, so credentials stay valid.
    let mut again = Server::start(dir.path(), &[], None);
    again.wait_ready(&client).await;
    let (status, _) = call(
        &client,
        Method::POST,
        format!("{}/auth/login/", again.base),
        None,
        Some(json!({"email": "new.user@example.com", "password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200);
    drop(again);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
}

#[test]
fn openapi_needs_no_database_and_prints_the_committed_document() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["openapi"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = include_str!("../../openapi/openapi.json");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
    assert!(
        !dir.path().join("tessera.db").exists(),
        "no database was touched"
    );

    let yaml = run(dir.path(), &["openapi", "--yaml"], &[]);
    let yaml: Value = serde_yaml::from_slice(&yaml.stdout).expect("valid YAML");
    let json: Value = serde_json::from_str(committed).unwrap();
    assert_eq!(yaml, json, "YAML and JSON carry the same document");
}

/// `check` catches what `serve` would refuse, says what `serve` would create without creating
/// it, repeats the warnings in its own output, and with `--deploy` lists production mistakes.
#[test]
fn check_creates_nothing_and_catches_what_serve_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["check", "--deploy"],
        &[("TESSERA_NOT_A_SETTING", "1")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("warning: ignoring environment variable TESSERA_NOT_A_SETTING"),
        "{stdout}"
    );
    assert!(
        stdout.contains("secret key: none yet; serve will generate one"),
        "{stdout}"
    );
    assert!(
        stdout.contains("database: none yet; serve will create"),
        "{stdout}"
    );
    assert!(
        stdout.contains("deploy: email.backend = Console"),
        "{stdout}"
    );
    assert!(stdout.contains("deploy: no secret_key is set"), "{stdout}");
    assert!(
        stdout.contains("deploy: the database is SQLite"),
        "{stdout}"
    );
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(created.is_empty(), "check created {created:?}");

    // A JWT key serve would refuse is refused here, naming the setting.
    let output = run(
        dir.path(),
        &["check"],
        &[
            ("TESSERA_AUTH__MODE", "jwt"),
            ("TESSERA_JWT__ALGORITHM", "RS256"),
            ("TESSERA_JWT__PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("JWT keys") && stderr.contains("key.pem"),
        "{stderr}"
    );

    // A production-shaped setup has nothing to warn about.
    let output = run(
        dir.path(),
        &["check", "--deploy"],
        &[
            ("TESSERA_BIND", "127.0.0.1:8000"),
            ("TESSERA_PUBLIC_URL", "https://accounts.example.com"),
            ("TESSERA_SESSION__COOKIE_SECURE", "true"),
            (
                "TESSERA_SECRET_KEY",
                "a-production-secret-key-of-enough-length-0123",
            ),
            ("TESSERA_EMAIL__BACKEND", "file"),
            ("TESSERA_EMAIL__FILE_DIR", "mail"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("deploy: 1 warning(s)"),
        "only SQLite remains: {stdout}"
    );
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(created.is_empty(), "check created {created:?}");
}

/// A database that cannot be reached is named with its root cause, once, at once (not a pool
/// timeout after ten seconds).
#[test]
fn database_failures_say_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = (
        "TESSERA_SECRET_KEY",
        "a-production-secret-key-of-enough-length-0123",
    );
    let port = crate::support::free_port().to_string();
    let refused = format!("postgres://postgres@127.0.0.1:{port}/x");
    let started = std::time::Instant::now();
    let output = run(
        dir.path(),
        &["check"],
        &[key, ("TESSERA_DATABASE__URL", &refused)],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "at once"
    );

    if let Ok(admin) = std::env::var("TESSERA_TEST_DATABASE_URL") {
        let mut missing = url::Url::parse(&admin).unwrap();
        missing.set_path("tessera_no_such_database");
        let output = run(
            dir.path(),
            &["check"],
            &[key, ("TESSERA_DATABASE__URL", missing.as_str())],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.matches("does not exist").count(),
            1,
            "said once: {stderr}"
        );
    }
}

#[test]
fn configuration_errors_stop_startup_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tessera.toml"),
        "[server]\nprefx = \"/x/\"\n",
    )
    .unwrap();
    let output = run(dir.path(), &["check"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("prefx"), "{stderr}");

    let empty = tempfile::tempdir().unwrap();
    let output = run(
        empty.path(),
        &["check"],
        &[("TESSERA_ACCOUNT__EMAIL_VERIFICATION", "sometimes")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TESSERA_ACCOUNT__EMAIL_VERIFICATION"),
        "{stderr}"
    );

    let output = run(
        empty.path(),
        &["check"],
        &[("TESSERA_SECRET_KEY", "tooshort")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("too short") && !stderr.contains("tooshort"),
        "{stderr}"
    );

    let output = run(
        empty.path(),
        &["openapi"],
        &[("TESSERA_NOT_A_SETTING", "1")],
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TESSERA_NOT_A_SETTING"),
        "an unknown variable is a warning: {stderr}"
    );
}

#[test]
fn migrate_createsuperuser_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let text = |output: Output| {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    use migration::MigratorTrait;
    let all = migration::Migrator::migrations().len();
    let status = text(run(path, &["migrate", "status"], &[]));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("pending")).count(),
        all,
        "{status}"
    );
    assert!(text(run(path, &["migrate"], &[])).contains(&format!("applied {all} migration(s)")));
    let status = text(run(path, &["migrate", "status"], &[]));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("applied")).count(),
        all,
        "{status}"
    );

    let created = text(run(
        path,
        &["createsuperuser", "--email", "Admin@Example.com"],
        &[("TESSERA_PASSWORD", PASSWORD)],
    ));
    assert!(created.contains("admin@example.com"), "{created}");
    let weak = run(
        path,
        &["createsuperuser", "--email", "b@example.com"],
        &[("TESSERA_PASSWORD", "123")],
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("This password is too short."));
    // No terminal (stdin is not one here) and no TESSERA_PASSWORD: say what to do.
    let unasked = run(path, &["createsuperuser", "--email", "c@example.com"], &[]);
    assert!(!unasked.status.success());
    assert!(
        String::from_utf8_lossy(&unasked.stderr).contains("set TESSERA_PASSWORD"),
        "{}",
        String::from_utf8_lossy(&unasked.stderr)
    );

    let check = text(run(path, &["check"], &[]));
    assert!(check.contains("database: ok"), "{check}");

    let fresh = run(path, &["migrate", "fresh"], &[]);
    assert!(!fresh.status.success(), "fresh needs --yes");
    assert!(text(run(path, &["migrate", "down"], &[])).contains("reverted"));
    let status = text(run(path, &["migrate", "status"], &[]));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("pending")).count(),
        1,
        "{status}"
    );
}

#[test]
fn sendtestemail_and_check_report_the_mail_backend() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("outgoing");
    let file_backend = [
        ("TESSERA_EMAIL__BACKEND", "file"),
        ("TESSERA_EMAIL__FILE_DIR", out.to_str().unwrap()),
    ];
    let sent = run(
        dir.path(),
        &["sendtestemail", "someone@example.com"],
        &file_backend,
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(
        eml.contains("To: someone@example.com") && eml.contains("Test email from"),
        "{eml}"
    );

    // Nothing listens on this port: both commands fail and say so in plain words.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://mailer:s3cret-pw@127.0.0.1:{port}");
    let smtp = [
        ("TESSERA_EMAIL__BACKEND", "smtp"),
        ("TESSERA_EMAIL__SMTP_URL", url.as_str()),
    ];
    let failed = run(dir.path(), &["sendtestemail", "someone@example.com"], &smtp);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(
        !stderr.contains("s3cret-pw"),
        "the SMTP password leaked: {stderr}"
    );

    let check = run(dir.path(), &["check"], &smtp);
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("mail backend"), "{stderr}");
    assert!(
        !stderr.contains("s3cret-pw"),
        "the SMTP password leaked: {stderr}"
    );
}
