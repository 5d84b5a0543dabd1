//! `tessera import-django` against a database a real Django built (Django 5.2, allauth,
//! dj-rest-auth 7.2: `support/django_site/build.py`): users registered with each of Django's
//! hashers, verified and unverified addresses, dj-rest-auth token logins, and MFA from both
//! dj-rest-auth's and allauth's apps. After the import, Tessera's HTTP API shows that every user
//! logs in with the Django password (then stored as argon2id), that the tokens still
//! authenticate, that the addresses kept their flags, and that the authenticator apps and
//! unused recovery codes still work.

use sea_orm::EntityTrait;
use serde_json::{Value, json};
use tessera::messages::BAD_CREDENTIALS;

use crate::support::django::{DjangoFixture, DjangoUser, build_database};
use crate::support::totp::Authenticator;
use crate::support::{Backend, TestApp, TestDb, process, test_config};

on_each_backend!(a_django_database_moves_over);

test_support::postgres_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_django_database_on_postgresql_is_read_too() {
        reading_a_postgresql_django_database().await
    }
}

/// The Django database in `dir`, built by Django: its URL and what was built.
async fn django_sqlite(dir: &std::path::Path) -> (String, DjangoFixture) {
    let url = format!("sqlite:///{}", dir.join("django.db").display());
    let build = url.clone();
    let fixture = tokio::task::spawn_blocking(move || build_database(&build))
        .await
        .unwrap();
    (url, fixture)
}

/// `tessera import-django ARGS` on the app's database and secret key: status, stdout, stderr.
fn import(database: &TestDb, args: &[&str]) -> (bool, String, String) {
    let config = test_config(database);
    let secret = config.secret_key.as_ref().map(|key| {
        use secrecy::ExposeSecret;
        key.expose_secret().to_owned()
    });
    let mut all = vec!["import-django"];
    all.extend_from_slice(args);
    let output = process::run(
        database.dir.path(),
        &all,
        &[
            ("TESSERA_DATABASE__URL", &database.url),
            ("TESSERA_SECRET_KEY", &secret.unwrap()),
            ("TESSERA_LOG__LEVEL", "warn"),
        ],
    );
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn summary(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"))
}

/// No password, hash, token key or MFA secret of any user in what the command printed.
fn assert_no_secrets(fixture: &DjangoFixture, printed: &str) {
    for user in &fixture.users {
        let mut secrets = vec![user.password_hash.clone()];
        secrets.extend(user.password.clone());
        secrets.extend(user.token.clone());
        secrets.extend(user.totp_secret.clone());
        for authenticator in &user.authenticators {
            for value in authenticator
                .data
                .as_object()
                .into_iter()
                .flat_map(|o| o.values())
            {
                if let Some(text) = value.as_str().filter(|t| t.len() > 8) {
                    secrets.push(text.to_owned());
                }
            }
        }
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            assert!(
                !printed.contains(secret.as_str()),
                "a secret of {} was printed",
                user.username
            );
        }
    }
}

/// The harness's configuration, logging in by email or username as the Django site did.
fn as_the_django_site(database: &TestDb) -> tessera::Config {
    use tessera::config::LoginMethod;
    let mut config = test_config(database);
    config.account.login_methods = vec![LoginMethod::Email, LoginMethod::Username];
    config
}

async fn a_django_database_moves_over(backend: Backend) {
    let database = TestDb::create(&backend).await;
    let (django, fixture) = django_sqlite(database.dir.path()).await;
    let users = fixture.users.len() as u64;

    // A dry run reports everything and writes nothing.
    let (ok, stdout, stderr) = import(&database, &["--from", &django, "--dry-run", "--json"]);
    assert!(ok, "{stderr}");
    let dry = summary(&stdout);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["users"]["imported"], users);
    assert_no_secrets(&fixture, &(stdout + &stderr));

    let (ok, stdout, stderr) = import(&database, &["--from", &django, "--json"]);
    assert!(ok, "{stderr}");
    let done = summary(&stdout);
    assert_eq!(
        done["users"]["imported"], users,
        "the dry run wrote nothing: {done}"
    );
    assert_eq!(done["users"]["skipped"], json!([]));
    assert_eq!(done["new_ids"], json!([]), "every Django id was free");
    // Each user counted under the hasher Django used.
    for user in &fixture.users {
        let kind = user.hasher.as_deref().unwrap_or("unusable");
        let expected = fixture
            .users
            .iter()
            .filter(|u| u.hasher.as_deref().unwrap_or("unusable") == kind)
            .count();
        assert_eq!(done["passwords"][kind], expected, "{kind}: {done}");
    }
    assert_eq!(
        done["tokens"]["imported"],
        fixture.users.iter().filter(|u| u.token.is_some()).count()
    );
    assert_no_secrets(&fixture, &(stdout + &stderr));

    let config = as_the_django_site(&database);
    let app = TestApp::start(database, config).await;
    for user in &fixture.users {
        the_user_came_over(&app, user).await;
    }
    mfa_came_over(&app, fixture.user("carol")).await;
    mfa_came_over(&app, fixture.user("ivan")).await;
    // Django's ids were kept (with the gap where a user was deleted), and Tessera's own
    // sign-ups continue after them.
    let key = app.register("new@example.com").await;
    let new = app.get("user/", Some(&key)).await;
    let highest = fixture.users.iter().map(|u| u.id).max().unwrap();
    assert!(new.body["pk"].as_i64().unwrap() > highest, "{}", new.body);
    // The gap stays a gap: no imported user took a deleted user's id.
    assert!(!fixture.deleted_user_ids.is_empty());
    for deleted in &fixture.deleted_user_ids {
        let taken = entity::user::Entity::find_by_id(entity::UserId(*deleted))
            .one(&app.db)
            .await
            .unwrap();
        assert_eq!(taken, None, "Django's deleted id {deleted} was given out");
    }

    // A second run changes nothing, and says so; a Tessera user of its own now stands in the
    // way unless --merge, which again finds everything here.
    let (database, config) = app.stop().await;
    let (ok, _, stderr) = import(&database, &["--from", &django]);
    assert!(!ok, "a database with its own users needs --merge");
    assert!(stderr.contains("--merge"), "{stderr}");
    let (ok, stdout, stderr) = import(&database, &["--from", &django, "--merge"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("nothing to import"), "{stdout}");
    let (ok, stdout, _) = import(&database, &["--from", &django, "--merge", "--json"]);
    assert!(ok);
    let again = summary(&stdout);
    assert_eq!(again["users"]["imported"], 0);
    assert_eq!(again["users"]["already_present"], users);
    assert_eq!(again["tokens"]["imported"], 0);
    let app = TestApp::start(database, config).await;
    // The re-runs did not undo the upgrade of a hash at first login.
    let alice = fixture.user("alice");
    assert!(
        app.stored_user(&alice.email)
            .await
            .password_hash
            .starts_with("$argon2id$")
    );
}

/// One imported user, over HTTP: id, password (then upgraded), token, addresses.
async fn the_user_came_over(app: &TestApp, user: &DjangoUser) {
    let stored = app.stored_user(&user.email).await;
    assert_eq!(
        stored.id.0, user.id,
        "{}: the Django id is kept",
        user.username
    );
    assert_eq!(stored.username, user.username);
    assert_eq!(
        (stored.is_active, stored.is_staff, stored.is_superuser),
        (user.is_active, user.is_staff, user.is_superuser),
        "{}",
        user.username
    );
    assert_eq!(
        (stored.first_name.as_str(), stored.last_name.as_str()),
        (user.first_name.as_str(), user.last_name.as_str())
    );
    assert_eq!(stored.date_joined.timestamp(), user.date_joined.timestamp());
    assert_eq!(
        stored.last_login.map(|at| at.timestamp()),
        user.last_login.map(|at| at.timestamp()),
        "{}",
        user.username
    );

    let Some(password) = user.password.as_deref() else {
        // An unusable Django password matches nothing, not even its own stored form.
        for attempt in [user.password_hash.as_str(), "", "password"] {
            assert_eq!(app.login(&user.email, attempt).await.status, 400);
        }
        return;
    };
    if !user.is_active {
        let reply = app.login(&user.email, password).await;
        assert_eq!(reply.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
        return;
    }
    let wrong = app.login(&user.email, &format!("{password}x")).await;
    assert_eq!(wrong.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
    assert_eq!(
        app.stored_user(&user.email).await.password_hash,
        user.password_hash,
        "a failed login leaves the Django hash"
    );
    let reply = app.login(&user.email, password).await;
    assert_eq!(reply.status, 200, "{}: {}", user.username, reply.text);
    let upgraded = app.stored_user(&user.email).await.password_hash;
    assert!(
        upgraded.starts_with("$argon2id$"),
        "{} ({:?}): {upgraded}",
        user.username,
        user.hasher
    );
    // The username logs in too (dj-rest-auth's username login).
    let by_username = app
        .post(
            "login/",
            json!({"username": user.username, "password": password}),
        )
        .await;
    assert_eq!(by_username.status, reply.status, "{}", by_username.text);

    if let Some(token) = &user.token {
        // dj-rest-auth's key, kept by the client across the switch.
        let me = app.get("user/", Some(token)).await;
        assert_eq!(me.status, 200, "{}: {}", user.username, me.text);
        assert_eq!(me.body["pk"], user.id);
        assert_eq!(me.body["email"], user.email);
        assert_eq!(me.body["first_name"], user.first_name);
        let addresses = app.get("emails/", Some(token)).await;
        assert_eq!(addresses.status, 200, "{}", addresses.text);
        let mut got: Vec<(String, bool, bool)> = addresses
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["email"].as_str().unwrap().to_owned(),
                    a["verified"].as_bool().unwrap(),
                    a["primary"].as_bool().unwrap(),
                )
            })
            .collect();
        let mut expected: Vec<(String, bool, bool)> = user
            .emails
            .iter()
            .map(|e| (e.email.to_lowercase(), e.verified, e.primary))
            .collect();
        got.sort();
        expected.sort();
        assert_eq!(
            got, expected,
            "{}: addresses and their flags",
            user.username
        );
    }
}

/// A user with MFA in Django: the password asks for the second step, which the same
/// authenticator app passes; the unused recovery codes (dj-rest-auth's or allauth's) work, the
/// used ones do not.
async fn mfa_came_over(app: &TestApp, user: &DjangoUser) {
    let password = user.password.as_deref().unwrap();
    let step = app.login(&user.email, password).await;
    assert_eq!(
        step.body["mfa_required"], true,
        "{}: {}",
        user.username, step.text
    );
    let app_codes = Authenticator::new(user.totp_secret.as_deref().unwrap());
    let reply = app
        .post(
            "mfa/verify/",
            json!({"ephemeral_token": step.body["ephemeral_token"], "code": app_codes.current()}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}: {}", user.username, reply.text);

    let used = &user.recovery_codes_used.as_ref().unwrap()[0];
    let unused = &user.recovery_codes_unused.as_ref().unwrap()[0];
    for (code, works) in [(used, false), (unused, true)] {
        let step = app.login(&user.email, password).await;
        let reply = app
            .post(
                "mfa/verify/",
                json!({"ephemeral_token": step.body["ephemeral_token"], "code": code}),
            )
            .await;
        assert_eq!(
            reply.status == 200,
            works,
            "{}: {code}: {}",
            user.username,
            reply.text
        );
    }
}

async fn reading_a_postgresql_django_database() {
    let django = test_support::PostgresDatabase::create().await;
    let url = django.url().to_owned();
    let build = url.clone();
    let fixture = tokio::task::spawn_blocking(move || build_database(&build))
        .await
        .unwrap();
    let database = TestDb::create(&Backend::Sqlite).await;
    let (ok, stdout, stderr) = import(&database, &["--from", &url, "--json"]);
    assert!(ok, "{stderr}");
    assert_eq!(summary(&stdout)["users"]["imported"], fixture.users.len());
    let config = as_the_django_site(&database);
    let app = TestApp::start(database, config).await;
    // PostgreSQL's types (timestamptz, integer ids, jsonb) read as SQLite's do.
    for name in ["alice", "erin", "frank", "heidi"] {
        the_user_came_over(&app, fixture.user(name)).await;
    }
    mfa_came_over(&app, fixture.user("carol")).await;
}
