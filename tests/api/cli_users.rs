//! `tessera users ...`: the real binary, run beside a server on the same database, and what it
//! did seen through that server's API and the audit trail. The command line is another
//! process: what it ends reaches the server through the revocation log (polled every second),
//! hence the waits.
//!
//! No command ever prints a password or a password hash: every run is checked for them.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use tessera::config::EmailVerification;

use crate::support::process::{self, tessera};
use crate::support::{Backend, PASSWORD, Reply, TestApp, assert_invalid_token};

on_each_backend!(
    set_password_validates_then_ends_every_credential,
    logout_ends_every_credential_but_keeps_the_account,
    verify_email_lets_an_unverified_account_log_in,
    delete_needs_yes_frees_the_address_and_spares_the_last_superuser,
    list_searches_and_prints_json,
    deactivate_and_activate_under_both_names,
);

const NEW_PASSWORD: &str = "a brand new passphrase 42";
const SECRET_KEY: &str = "test-secret-key-that-is-long-enough-0123456789";
/// The server polls the revocation log every second.
const ACROSS_PROCESSES: Duration = Duration::from_secs(5);
const OPERATOR: &str = "tessera command line";

/// Runs `tessera` against one app's database, and remembers every output so that the end of
/// the test can check no secret was printed.
struct Cli<'a> {
    app: &'a TestApp,
    dir: tempfile::TempDir,
    outputs: Vec<(String, String)>,
}

impl<'a> Cli<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            dir: tempfile::tempdir().unwrap(),
            outputs: Vec::new(),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "TESSERA_DATABASE__URL",
                self.app.config.database.url.clone(),
            ),
            ("TESSERA_SECRET_KEY", SECRET_KEY.into()),
            // The harness's cheap argon2 (test_config).
            ("TESSERA_PASSWORD_HASHING__MEMORY_KIB", "1024".into()),
            ("TESSERA_PASSWORD_HASHING__ITERATIONS", "1".into()),
            ("TESSERA_LOG__LEVEL", "debug".into()),
        ]
    }

    /// `tessera ARGS` with `extra` in the environment; its exit status, stdout, stderr.
    fn run_with(&mut self, args: &[&str], extra: &[(&str, &str)]) -> (bool, String, String) {
        let env = self.env();
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        let output: Output = process::run(self.dir.path(), args, &env);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        self.outputs.push((stdout.clone(), stderr.clone()));
        (output.status.success(), stdout, stderr)
    }

    fn run(&mut self, args: &[&str]) -> (bool, String, String) {
        self.run_with(args, &[])
    }

    /// Runs and fails the test unless it exits 0; its stdout.
    fn ok(&mut self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "tessera {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    /// Runs and fails the test unless it exits non-zero; its stderr.
    fn fails(&mut self, args: &[&str], extra: &[(&str, &str)]) -> String {
        let (ok, stdout, stderr) = self.run_with(args, extra);
        assert!(!ok, "tessera {args:?} succeeded:\n{stdout}\n{stderr}");
        stderr
    }

    /// The audit entries (`tessera audit --json`) of everyone.
    fn audit(&mut self) -> Vec<Value> {
        self.ok(&["audit", "--json", "--limit", "1000"])
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Fails the test if any output so far holds one of `secrets`.
    fn assert_nothing_printed_of(&self, secrets: &[&str]) {
        for (stdout, stderr) in &self.outputs {
            for secret in secrets {
                assert!(
                    !stdout.contains(secret) && !stderr.contains(secret),
                    "a secret was printed: {secret:?}\n{stdout}\n{stderr}"
                );
            }
        }
    }
}

/// The operator's entry of `event` for the account `email`, if the trail has one.
fn operator_entry<'e>(entries: &'e [Value], event: &str, email: Option<&str>) -> Option<&'e Value> {
    entries.iter().find(|entry| {
        entry["event"] == event
            && entry["user_agent"] == OPERATOR
            && entry["ip"].is_null()
            && email.is_none_or(|email| entry["email"] == email)
    })
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + ACROSS_PROCESSES;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "not within {ACROSS_PROCESSES:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn assert_refused_soon(app: &TestApp, key: &str) {
    eventually("the server refuses the token", async || {
        app.get("user/", Some(key)).await.status == 401
    })
    .await;
    assert_invalid_token(&app.get("user/", Some(key)).await);
}

fn show(cli: &mut Cli<'_>, email: &str) -> Value {
    serde_json::from_str(&cli.ok(&["users", "show", email, "--json"])).unwrap()
}

async fn patch_user(app: &TestApp, key: &str, body: Value) -> Reply {
    let request = app
        .client
        .patch(app.api("user/"))
        .header("Authorization", format!("Token {key}"))
        .json(&body);
    app.send(request).await
}

/// Refused passwords change nothing and say why; an accepted one replaces the old one, ends
/// every credential (tokens and their cached copies on the server), and is audited as the
/// command line's.
async fn set_password_validates_then_ends_every_credential(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let other = app.login_key("ada@example.com", PASSWORD).await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    let old_hash = app.stored_user("ada@example.com").await.password_hash;
    let mut cli = Cli::new(&app);

    let set = ["users", "set-password", "ada@example.com"];
    let refused = cli.fails(&set, &[("TESSERA_PASSWORD", "password")]);
    assert!(
        refused.contains("This password is too common."),
        "{refused}"
    );
    let refused = cli.fails(&set, &[("TESSERA_PASSWORD", "ada@example.com")]);
    assert!(
        refused.contains("too similar to the email address"),
        "{refused}"
    );
    assert_eq!(
        app.stored_user("ada@example.com").await.password_hash,
        old_hash
    );
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    // No terminal and no TESSERA_PASSWORD: nothing to read the password from.
    let unasked = cli.fails(&set, &[]);
    assert!(unasked.contains("TESSERA_PASSWORD"), "{unasked}");

    let (ok, stdout, stderr) = cli.run_with(&set, &[("TESSERA_PASSWORD", NEW_PASSWORD)]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("ada@example.com"), "{stdout}");
    assert_refused_soon(&app, &key).await;
    assert_refused_soon(&app, &other).await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 400);
    app.login_key("ada@example.com", NEW_PASSWORD).await;
    let new_hash = app.stored_user("ada@example.com").await.password_hash;
    assert!(new_hash.starts_with("$argon2id$"), "hashed with argon2id");

    let entries = cli.audit();
    let entry = operator_entry(&entries, "password_change", Some("ada@example.com"))
        .expect("the command line's password change is audited");
    assert_eq!(
        (&entry["outcome"], &entry["reason"]),
        (&json!("success"), &json!("operator"))
    );
    let unknown = cli.fails(
        &["users", "set-password", "nobody@example.com"],
        &[("TESSERA_PASSWORD", NEW_PASSWORD)],
    );
    assert!(
        unknown.contains("error: no account has the email address nobody@example.com"),
        "{unknown}"
    );
    cli.assert_nothing_printed_of(&[PASSWORD, NEW_PASSWORD, &old_hash, &new_hash, "$argon2"]);
}

/// `users logout` ends every credential on every instance; the account stays and logs in.
async fn logout_ends_every_credential_but_keeps_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let other = app.login_key("ada@example.com", PASSWORD).await;
    let bob = app.register("bob@example.com").await;
    let mut cli = Cli::new(&app);
    assert_eq!(
        show(&mut cli, "ada@example.com")["live_credentials"]["tokens"],
        2
    );

    let stdout = cli.ok(&["users", "logout", "Ada@Example.com"]);
    assert!(stdout.contains("2 live credential(s)"), "{stdout}");
    assert_refused_soon(&app, &key).await;
    assert_refused_soon(&app, &other).await;
    assert_eq!(app.get("user/", Some(&bob)).await.status, 200, "only Ada's");
    let again = app.login_key("ada@example.com", PASSWORD).await;
    assert_eq!(app.get("user/", Some(&again)).await.status, 200);
    let shown = show(&mut cli, "ada@example.com");
    assert_eq!(shown["is_active"], true);
    assert_eq!(shown["live_credentials"]["tokens"], 1);

    let entries = cli.audit();
    let entry = operator_entry(&entries, "session_ended", Some("ada@example.com"))
        .expect("the command line's logout is audited");
    assert_eq!(entry["reason"], "operator");
    let unknown = cli.fails(&["users", "logout", "nobody@example.com"], &[]);
    assert!(unknown.contains("no account has the email address nobody@example.com"));
    let hash = app.stored_user("ada@example.com").await.password_hash;
    cli.assert_nothing_printed_of(&[PASSWORD, &hash]);
}

/// Under mandatory verification an unconfirmed account cannot log in until `users
/// verify-email`; an address another account confirmed stays theirs; any of a user's
/// addresses can be named, and only that one is marked.
async fn verify_email_lets_an_unverified_account_log_in(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.account.email_verification = EmailVerification::Mandatory;
    })
    .await;
    for email in ["ada@example.com", "bob@example.com"] {
        let signup = app
            .post(
                "registration/",
                crate::support::signup_body(email, PASSWORD),
            )
            .await;
        assert_eq!(signup.status, 201, "{}", signup.text);
    }
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 400);
    let mut cli = Cli::new(&app);
    assert_eq!(show(&mut cli, "ada@example.com")["email_verified"], false);

    let stdout = cli.ok(&["users", "verify-email", " ADA@example.com "]);
    assert!(stdout.contains("ada@example.com is verified"), "{stdout}");
    app.login_key("ada@example.com", PASSWORD).await;
    assert_eq!(show(&mut cli, "ada@example.com")["email_verified"], true);
    let again = cli.ok(&["users", "verify-email", "ada@example.com"]);
    assert!(again.contains("verified already"), "{again}");

    // Bob added an address of his own, and one that Ada has confirmed meanwhile.
    let bob = app.stored_user("bob@example.com").await;
    let ada = app.stored_user("ada@example.com").await;
    for (user_id, email, verified) in [
        (bob.id, "bob.work@example.com", false),
        (ada.id, "shared@example.com", true),
        (bob.id, "shared@example.com", false),
    ] {
        entity::email_address::ActiveModel {
            user_id: Set(user_id),
            email: Set(email.into()),
            verified: Set(verified),
            is_primary: Set(false),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    cli.ok(&["users", "verify-email", "bob.work@example.com"]);
    let shown = show(&mut cli, "bob@example.com");
    assert_eq!(
        shown["email_verified"], false,
        "Bob's primary address is not the one named"
    );
    assert_eq!(
        shown["email_addresses"],
        json!([
            {"email": "bob@example.com", "verified": false, "primary": true},
            {"email": "bob.work@example.com", "verified": true, "primary": false},
            {"email": "shared@example.com", "verified": false, "primary": false},
        ])
    );
    assert_eq!(app.login("bob@example.com", PASSWORD).await.status, 400);
    let shared = cli.ok(&["users", "verify-email", "shared@example.com"]);
    assert!(
        shared.contains("verified already (account ada@example.com)"),
        "{shared}"
    );

    // Carol's primary address, which Ada confirmed first: it stays Ada's.
    let carol_signup = app
        .post(
            "registration/",
            crate::support::signup_body("carol@example.com", PASSWORD),
        )
        .await;
    assert_eq!(carol_signup.status, 201);
    entity::email_address::ActiveModel {
        user_id: Set(ada.id),
        email: Set("carol@example.com".into()),
        verified: Set(true),
        is_primary: Set(false),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    let taken = cli.fails(&["users", "verify-email", "carol@example.com"], &[]);
    assert!(
        taken.contains("another account has verified carol@example.com"),
        "{taken}"
    );
    assert_eq!(show(&mut cli, "carol@example.com")["email_verified"], false);
    assert_eq!(app.login("carol@example.com", PASSWORD).await.status, 400);

    // An account without address rows (as `import-django` may bring one) gets its primary
    // address as a confirmed row.
    let dave = app
        .post(
            "registration/",
            crate::support::signup_body("dave@example.com", PASSWORD),
        )
        .await;
    assert_eq!(dave.status, 201);
    let dave = app.stored_user("dave@example.com").await;
    entity::email_address::Entity::delete_many()
        .filter(entity::email_address::Column::UserId.eq(dave.id))
        .exec(&app.db)
        .await
        .unwrap();
    cli.ok(&["users", "verify-email", "dave@example.com"]);
    assert_eq!(
        show(&mut cli, "dave@example.com")["email_addresses"],
        json!([{"email": "dave@example.com", "verified": true, "primary": true}])
    );
    app.login_key("dave@example.com", PASSWORD).await;

    let entries = cli.audit();
    let entry = operator_entry(&entries, "email_verification", Some("ada@example.com"))
        .expect("the command line's verification is audited");
    assert_eq!(entry["reason"], "operator");
    assert!(
        entries
            .iter()
            .any(|entry| entry["event"] == "email_verification"
                && entry["outcome"] == "failure"
                && entry["reason"] == "email_taken"
                && entry["email"] == "carol@example.com"
                && entry["user_agent"] == OPERATOR),
        "{entries:#?}"
    );
    let unknown = cli.fails(&["users", "verify-email", "nobody@example.com"], &[]);
    assert!(unknown.contains("error: no account has the email address nobody@example.com"));
    cli.assert_nothing_printed_of(&[PASSWORD, &ada.password_hash, &bob.password_hash]);
}

/// Without `--yes` nothing happens; with it the account and its credentials are gone and its
/// address signs up again. The last active superuser stays.
async fn delete_needs_yes_frees_the_address_and_spares_the_last_superuser(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let hash = app.stored_user("ada@example.com").await.password_hash;
    let mut cli = Cli::new(&app);

    let refused = cli.fails(&["users", "delete", "ada@example.com"], &[]);
    assert!(refused.contains("--yes"), "{refused}");
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    app.login_key("ada@example.com", PASSWORD).await;

    let stdout = cli.ok(&["users", "delete", "ada@example.com", "--yes"]);
    assert!(stdout.contains("ada@example.com is deleted"), "{stdout}");
    assert_refused_soon(&app, &key).await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 400);
    let gone = cli.fails(&["users", "show", "ada@example.com"], &[]);
    assert!(
        gone.contains("error: no account has the email address ada@example.com"),
        "{gone}"
    );
    let entries = cli.audit();
    let entry = operator_entry(&entries, "account_deleted", None)
        .expect("the command line's deletion is audited");
    assert_eq!(entry["reason"], "deleted");
    assert!(entry["email"].is_null(), "the account is gone: {entry}");
    app.register("ada@example.com").await;

    // The last active superuser cannot be deleted, from here either.
    let (ok, stdout, stderr) = cli.run_with(
        &["createsuperuser", "--email", "root@example.com"],
        &[("TESSERA_PASSWORD", NEW_PASSWORD)],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let refused = cli.fails(&["users", "delete", "root@example.com", "--yes"], &[]);
    assert!(refused.contains("last active superuser"), "{refused}");
    assert!(app.stored_user("root@example.com").await.is_superuser);
    let unknown = cli.fails(&["users", "delete", "nobody@example.com", "--yes"], &[]);
    assert!(unknown.contains("no account has the email address nobody@example.com"));
    let root_hash = app.stored_user("root@example.com").await.password_hash;
    cli.assert_nothing_printed_of(&[PASSWORD, NEW_PASSWORD, &hash, &root_hash]);
}

/// `list` finds by email, username, first and last name, case-insensitively, and prints a
/// table or JSON lines; a reader that hangs up early is no failure.
async fn list_searches_and_prints_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app
        .register_with_username("ada@example.com", "countess")
        .await;
    app.register_with_username("bob@example.net", "builder")
        .await;
    let named = patch_user(
        &app,
        &ada,
        json!({"first_name": "Ada", "last_name": "Lovelace"}),
    )
    .await;
    assert_eq!(named.status, 200, "{}", named.text);
    let mut cli = Cli::new(&app);

    let emails = |cli: &mut Cli<'_>, search: &str| -> Vec<String> {
        cli.ok(&["users", "list", "--search", search, "--json"])
            .lines()
            .map(|line| {
                let account: Value = serde_json::from_str(line).unwrap();
                account["email"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(emails(&mut cli, "LOVE"), ["ada@example.com"], "last name");
    assert_eq!(
        emails(&mut cli, "ada"),
        ["ada@example.com"],
        "first name, email"
    );
    assert_eq!(emails(&mut cli, "Build"), ["bob@example.net"], "username");
    assert_eq!(
        emails(&mut cli, "@EXAMPLE."),
        ["ada@example.com", "bob@example.net"]
    );
    assert!(
        emails(&mut cli, "%").is_empty(),
        "a wildcard is a plain character"
    );
    assert!(emails(&mut cli, "nobody").is_empty());

    let all = cli.ok(&["users", "list", "--json"]);
    let first: Value = serde_json::from_str(all.lines().next().unwrap()).unwrap();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "id",
            "email",
            "username",
            "first_name",
            "last_name",
            "is_active",
            "is_staff",
            "is_superuser",
            "email_verified",
            "date_joined",
            "last_login",
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        (
            &first["first_name"],
            &first["last_name"],
            &first["is_active"],
            &first["is_staff"]
        ),
        (
            &json!("Ada"),
            &json!("Lovelace"),
            &json!(true),
            &json!(false)
        )
    );
    let table = cli.ok(&["users", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("    ID  EMAIL"), "{table}");
    assert!(lines[1].contains("ada@example.com") && lines[1].contains("Ada Lovelace"));

    // `| head`: the reader is gone before anything is written.
    let mut child = tessera(
        cli.dir.path(),
        &["users", "list"],
        &cli.env()
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");

    let shown = show(&mut cli, "ada@example.com");
    assert_eq!(shown["mfa_enabled"], false);
    assert_eq!(shown["social_accounts"], json!([]));
    let text = cli.ok(&["users", "show", "ada@example.com"]);
    for line in [
        "username:        countess",
        "name:            Ada Lovelace",
        "mfa:             off",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    let hash = app.stored_user("ada@example.com").await.password_hash;
    cli.assert_nothing_printed_of(&[PASSWORD, &hash, "$argon2"]);
}

/// `users deactivate` / `activate`, and the old top-level names, hidden from `--help`.
async fn deactivate_and_activate_under_both_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let mut cli = Cli::new(&app);

    cli.ok(&["users", "deactivate", "ada@example.com"]);
    assert_refused_soon(&app, &key).await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 400);
    assert_eq!(show(&mut cli, "ada@example.com")["is_active"], false);
    cli.ok(&["users", "activate", "ada@example.com"]);
    let again = app.login_key("ada@example.com", PASSWORD).await;

    cli.ok(&["deactivate", "ada@example.com"]);
    assert_refused_soon(&app, &again).await;
    cli.ok(&["activate", "ada@example.com"]);
    app.login_key("ada@example.com", PASSWORD).await;
    let help = cli.ok(&["--help"]);
    assert!(help.contains("\n  users "), "{help}");
    assert!(!help.contains("\n  deactivate "), "{help}");

    let entries = cli.audit();
    for event in ["deactivation", "reactivation"] {
        assert!(
            operator_entry(&entries, event, Some("ada@example.com")).is_some(),
            "{event} by the command line: {entries:#?}"
        );
    }
    for command in ["deactivate", "activate"] {
        let unknown = cli.fails(&["users", command, "nobody@example.com"], &[]);
        assert!(unknown.contains("error: no account has the email address nobody@example.com"));
    }
    let hash = app.stored_user("ada@example.com").await.password_hash;
    cli.assert_nothing_printed_of(&[PASSWORD, &hash]);
}
