//! The credential cache and revocation: cached credentials are served without the database,
//! and every event that ends a credential or changes a user reaches this instance at once and
//! every other instance on the same PostgreSQL within about a second.
//!
//! The two-instance scenarios run two apps in this process, each with its own pool and its
//! own listener, over one PostgreSQL database; they exist on PostgreSQL only (SQLite is one
//! instance). Each first makes the second instance cache the credential, so that only a
//! revocation that really arrives can make it refuse.

use std::future::Future;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};
use serde_json::json;
use tessera::config::AuthMode;

use crate::support::cookies::{Browser, SESSION_COOKIE, with_cookies};
use crate::support::process;
use crate::support::{Backend, PASSWORD, Reply, TestApp, assert_detail, new_passwords};

/// How long a revocation may take to reach another instance (the bound).
const ACROSS_INSTANCES: Duration = Duration::from_secs(2);
const NEW_PASSWORD: &str = "a brand new passphrase 42";
const RESET_PREFIX: &str = "https://app.example.com/reset/";

/// Polls `check` until it holds; fails after `limit`. Returns how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn spawn(backend: Backend, mode: AuthMode) -> TestApp {
    TestApp::spawn_with(backend, |config| config.auth.mode = mode).await
}

/// Instances A and B of one app over one PostgreSQL database (B drops first).
async fn two_instances(mode: AuthMode) -> (TestApp, TestApp) {
    let a = spawn(Backend::Postgres, mode).await;
    let b = a.another_instance().await;
    (a, b)
}

async fn bearer_get(app: &TestApp, path: &str, access: &str) -> Reply {
    let request = app.client.get(app.api(path)).bearer_auth(access);
    app.send(request).await
}

async fn session_get(app: &TestApp, session: &str) -> Reply {
    let request = with_cookies(
        app.client.get(app.api("user/")),
        &[(SESSION_COOKIE, session)],
    );
    app.send(request).await
}

/// `(access, refresh)` of a JWT-mode login or signup.
fn jwt_pair(reply: &Reply) -> (String, String) {
    let text = |field: &str| reply.body[field].as_str().expect(field).to_owned();
    (text("access"), text("refresh"))
}

async fn jwt_signup(app: &TestApp, email: &str) -> (String, String) {
    let reply = app
        .post(
            "registration/",
            json!({"email": email, "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    jwt_pair(&reply)
}

async fn jwt_login(app: &TestApp, email: &str) -> (String, String) {
    let reply = app.login(email, PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    jwt_pair(&reply)
}

/// SimpleJWT's answer to an access token that is no longer valid.
fn assert_access_refused(reply: &Reply) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.body["code"], "token_not_valid", "{}", reply.text);
}

// ---------------------------------------------------------------------------------------------
// Two instances on one PostgreSQL database
// ---------------------------------------------------------------------------------------------

mod two_instances {
    use super::*;

    test_support::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_logout_on_one_instance_reaches_the_other() {
            let (a, b) = two_instances(AuthMode::Token).await;
            let key = a.register("ada@example.com").await;
            assert_eq!(b.get("user/", Some(&key)).await.status, 200);

            let out = a.post_with_token("logout/", &key, json!({})).await;
            assert_eq!(out.status, 200, "{}", out.text);
            // On A there is no window at all.
            assert_eq!(a.get("user/", Some(&key)).await.status, 401);
            within(ACROSS_INSTANCES, "B refuses the logged-out token", || async {
                b.get("user/", Some(&key)).await.status == 401
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_password_change_ends_the_other_tokens_on_the_other_instance() {
            let (a, b) = two_instances(AuthMode::Token).await;
            let changer = a.register("ada@example.com").await;
            let other = a.login_key("ada@example.com", PASSWORD).await;
            for key in [&changer, &other] {
                assert_eq!(b.get("user/", Some(key)).await.status, 200);
            }

            let changed = a
                .post_with_token("password/change/", &changer, new_passwords(NEW_PASSWORD))
                .await;
            assert_eq!(changed.status, 200, "{}", changed.text);
            within(ACROSS_INSTANCES, "B refuses the other token", || async {
                b.get("user/", Some(&other)).await.status == 401
            })
            .await;
            assert_eq!(b.get("user/", Some(&changer)).await.status, 200);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_password_change_ends_the_other_sessions_on_the_other_instance() {
            let (a, b) = two_instances(AuthMode::Session).await;
            let mut changer = Browser::new(&a);
            let signup = changer
                .post(
                    "registration/",
                    json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
                )
                .await;
            assert_eq!(signup.status, 204, "{}", signup.text);
            changer.login_ok("ada@example.com").await;
            let mut other = Browser::new(&a);
            other.login_ok("ada@example.com").await;
            let (changer_session, other_session) = (changer.session(), other.session());
            for session in [&changer_session, &other_session] {
                assert_eq!(session_get(&b, session).await.status, 200);
            }

            let changed = changer
                .post("password/change/", new_passwords(NEW_PASSWORD))
                .await;
            assert_eq!(changed.status, 200, "{}", changed.text);
            within(ACROSS_INSTANCES, "B no longer knows the other session", || async {
                session_get(&b, &other_session).await.status == 403
            })
            .await;
            assert_eq!(session_get(&b, &changer_session).await.status, 200);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_password_change_ends_the_other_jwt_families_on_the_other_instance() {
            let (a, b) = two_instances(AuthMode::Jwt).await;
            let (changer_access, changer_refresh) = jwt_signup(&a, "ada@example.com").await;
            let (other_access, other_refresh) = jwt_login(&a, "ada@example.com").await;
            for access in [&changer_access, &other_access] {
                assert_eq!(bearer_get(&b, "user/", access).await.status, 200);
            }

            let request = a
                .client
                .post(a.api("password/change/"))
                .bearer_auth(&changer_access)
                .json(&new_passwords(NEW_PASSWORD));
            let changed = a.send(request).await;
            assert_eq!(changed.status, 200, "{}", changed.text);
            within(ACROSS_INSTANCES, "B refuses the other access token", || async {
                bearer_get(&b, "user/", &other_access).await.status == 401
            })
            .await;
            assert_access_refused(&bearer_get(&b, "user/", &other_access).await);
            let refreshed = b.post("token/refresh/", json!({"refresh": other_refresh})).await;
            assert_eq!(refreshed.status, 401, "{}", refreshed.text);

            assert_eq!(bearer_get(&b, "user/", &changer_access).await.status, 200);
            let refreshed = b
                .post("token/refresh/", json!({"refresh": changer_refresh}))
                .await;
            assert_eq!(refreshed.status, 200, "{}", refreshed.text);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_profile_edit_on_one_instance_shows_on_the_other() {
            let (a, b) = two_instances(AuthMode::Token).await;
            let key = a.register("ada@example.com").await;
            assert_eq!(b.get("user/", Some(&key)).await.body["first_name"], "");

            let request = a
                .client
                .patch(a.api("user/"))
                .header("Authorization", format!("Token {key}"))
                .json(&json!({"first_name": "Ada"}));
            let edited = a.send(request).await;
            assert_eq!(edited.status, 200, "{}", edited.text);
            within(ACROSS_INSTANCES, "B shows the new first name", || async {
                b.get("user/", Some(&key)).await.body["first_name"] == "Ada"
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn revocations_reach_an_instance_whose_listener_was_killed() {
            let (a, b) = two_instances(AuthMode::Token).await;
            let first = a.register("ada@example.com").await;
            let second = a.login_key("ada@example.com", PASSWORD).await;
            let before = within(Duration::from_secs(10), "both listeners connect", || async {
                listeners(&a).await.len() == 2
            })
            .await;
            let killed = listeners(&a).await;
            assert!(before < Duration::from_secs(10));
            let terminated: Vec<bool> = query_column(
                &a,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'tessera-listener' AND datname = current_database()",
            )
            .await;
            assert_eq!(terminated, [true, true]);

            // At once: the listeners are down, the poll of the log must carry it.
            assert_eq!(b.get("user/", Some(&first)).await.status, 200);
            let out = a.post_with_token("logout/", &first, json!({})).await;
            assert_eq!(out.status, 200, "{}", out.text);
            within(ACROSS_INSTANCES, "B refuses the first token", || async {
                b.get("user/", Some(&first)).await.status == 401
            })
            .await;

            // The listeners come back by themselves, as new connections.
            within(Duration::from_secs(10), "the listeners reconnect", || async {
                let now = listeners(&a).await;
                now.len() == 2 && now.iter().all(|pid| !killed.contains(pid))
            })
            .await;
            assert_eq!(b.get("user/", Some(&second)).await.status, 200);
            let out = a.post_with_token("logout/", &second, json!({})).await;
            assert_eq!(out.status, 200, "{}", out.text);
            within(ACROSS_INSTANCES, "B refuses the second token", || async {
                b.get("user/", Some(&second)).await.status == 401
            })
            .await;
        }
    }

    /// The process ids of the listening connections on the test's database.
    async fn listeners(app: &TestApp) -> Vec<i32> {
        query_column(
            app,
            "SELECT pid FROM pg_stat_activity \
             WHERE application_name = 'tessera-listener' AND datname = current_database() \
             ORDER BY pid",
        )
        .await
    }

    async fn query_column<T: sea_orm::TryGetable>(app: &TestApp, sql: &str) -> Vec<T> {
        let rows = app
            .db
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.try_get_by_index(0).unwrap())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// One instance, each backend
// ---------------------------------------------------------------------------------------------

on_each_backend!(
    a_logged_out_credential_is_refused_by_the_very_next_request,
    a_jwt_access_token_dies_with_its_family_at_once,
    a_password_reset_ends_jwt_access_tokens_at_once,
    a_deactivated_users_cached_credential_is_refused,
    cached_credentials_are_served_without_the_database,
    a_cache_of_capacity_zero_reads_the_database_every_time,
    a_token_expiry_is_honoured_exactly,
    a_jwt_access_token_expiry_is_honoured_exactly,
    unknown_credentials_are_limited_per_client_and_evict_nothing,
);

async fn a_logged_out_credential_is_refused_by_the_very_next_request(backend: Backend) {
    let app = spawn(backend.clone(), AuthMode::Token).await;
    let key = app.register("ada@example.com").await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    app.post_with_token("logout/", &key, json!({})).await;
    assert_detail(&app.get("user/", Some(&key)).await, 401, "Invalid token.");

    let app = spawn(backend, AuthMode::Session).await;
    let mut browser = Browser::new(&app);
    browser
        .post(
            "registration/",
            json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    browser.login_ok("ada@example.com").await;
    let session = browser.session();
    assert_eq!(session_get(&app, &session).await.status, 200);
    let out = browser.post("logout/", json!({})).await;
    assert_eq!(out.status, 200, "{}", out.text);
    // The old cookie value, replayed, is nobody's session any more.
    assert_eq!(session_get(&app, &session).await.status, 403);
}

async fn a_jwt_access_token_dies_with_its_family_at_once(backend: Backend) {
    let app = spawn(backend, AuthMode::Jwt).await;
    let (access, refresh) = jwt_signup(&app, "ada@example.com").await;
    let (other_access, _) = jwt_login(&app, "ada@example.com").await;
    assert_eq!(bearer_get(&app, "user/", &access).await.status, 200);

    let out = app.post("logout/", json!({"refresh": refresh})).await;
    assert_eq!(out.status, 200, "{}", out.text);
    assert_access_refused(&bearer_get(&app, "user/", &access).await);
    // Another login's family is untouched.
    assert_eq!(bearer_get(&app, "user/", &other_access).await.status, 200);

    // Reuse detection ends a family too: its access tokens die with it.
    let (access, refresh) = jwt_login(&app, "ada@example.com").await;
    assert_eq!(bearer_get(&app, "user/", &access).await.status, 200);
    let rotated = app
        .post("token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let reused = app
        .post("token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(reused.status, 401, "{}", reused.text);
    assert_access_refused(&bearer_get(&app, "user/", &access).await);
    let new_access = rotated.body["access"].as_str().unwrap();
    assert_access_refused(&bearer_get(&app, "user/", new_access).await);
}

async fn a_password_reset_ends_jwt_access_tokens_at_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.auth.mode = AuthMode::Jwt;
        config.account.email_verification = tessera::config::EmailVerification::None;
        config.frontend.password_reset_url = Some(format!("{RESET_PREFIX}{{uid}}/{{token}}/"));
    })
    .await;
    let (access, _) = jwt_signup(&app, "ada@example.com").await;
    assert_eq!(bearer_get(&app, "user/", &access).await.status, 200);

    let requested = app
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(requested.status, 200, "{}", requested.text);
    let (uid, token) = app.reset_link(RESET_PREFIX).await;
    let reset = crate::support::confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_access_refused(&bearer_get(&app, "user/", &access).await);
}

async fn a_deactivated_users_cached_credential_is_refused(backend: Backend) {
    let app = spawn(backend, AuthMode::Token).await;
    let key = app.register("ada@example.com").await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);

    // The command line is another process: only the revocation log can tell the server.
    let env = [
        ("TESSERA_DATABASE__URL", app.config.database.url.as_str()),
        (
            "TESSERA_SECRET_KEY",
            "test-secret-key-that-is-long-enough-0123456789",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = process::run(dir.path(), &["deactivate", "ada@example.com"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    within(ACROSS_INSTANCES, "the server refuses the token", || async {
        app.get("user/", Some(&key)).await.status == 401
    })
    .await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 400);

    let out = process::run(dir.path(), &["activate", "ada@example.com"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_again = app.login_key("ada@example.com", PASSWORD).await;
    assert_eq!(app.get("user/", Some(&key_again)).await.status, 200);
    // Reactivation does not bring back what deactivation ended.
    assert_eq!(app.get("user/", Some(&key)).await.status, 401);
    let missing = process::run(dir.path(), &["deactivate", "nobody@example.com"], &env);
    assert!(!missing.status.success());
}

/// Deleting a token behind the server's back (no revocation) shows what the cache serves:
/// the cached token keeps working, which it could not if each request read the database.
async fn cached_credentials_are_served_without_the_database(backend: Backend) {
    let app = spawn(backend, AuthMode::Token).await;
    let key = app.register("ada@example.com").await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    entity::auth_token::Entity::delete_many()
        .exec(&app.db)
        .await
        .unwrap();
    let reply = app.get("user/", Some(&key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["email"], "ada@example.com");
}

async fn a_cache_of_capacity_zero_reads_the_database_every_time(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.credential_cache.capacity = 0).await;
    let key = app.register("ada@example.com").await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    entity::auth_token::Entity::delete_many()
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(app.get("user/", Some(&key)).await.status, 401);
}

async fn a_token_expiry_is_honoured_exactly(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.auth.token_ttl_seconds = 2).await;
    let key = app.register("ada@example.com").await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    let token = entity::auth_token::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let expires_at = token.expires_at.expect("tokens expire");
    while chrono::Utc::now() <= expires_at {
        assert_eq!(app.get("user/", Some(&key)).await.status, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.get("user/", Some(&key)).await.status, 401);
}

/// A verified access token is remembered (its signature is not checked again), but not a
/// second past its `exp`.
async fn a_jwt_access_token_expiry_is_honoured_exactly(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.auth.mode = AuthMode::Jwt;
        config.jwt.access_lifetime_seconds = 2;
    })
    .await;
    let (access, _) = jwt_signup(&app, "ada@example.com").await;
    let exp = crate::support::jwt::claims_of(&access)["exp"]
        .as_i64()
        .unwrap();
    while chrono::Utc::now().timestamp() < exp {
        let reply = bearer_get(&app, "user/", &access).await;
        if chrono::Utc::now().timestamp() < exp {
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expired = bearer_get(&app, "user/", &access).await;
    assert_access_refused(&expired);
    assert_eq!(
        expired.body["messages"][0]["message"], "Token is expired",
        "{}",
        expired.text
    );
}

async fn unknown_credentials_are_limited_per_client_and_evict_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.credential_cache.capacity = 4;
        config.credential_cache.failed_checks_per_minute = 50;
    })
    .await;
    let key = app.register("ada@example.com").await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);

    for n in 0..50 {
        let random = format!("{n:040x}");
        assert_detail(
            &app.get("user/", Some(&random)).await,
            401,
            "Invalid token.",
        );
    }
    let throttled = app.get("user/", Some(&format!("{:040x}", 1234))).await;
    assert_eq!(throttled.status, 429, "{}", throttled.text);

    // The real user's entry is still there: served even with its row gone (see above), and
    // not throttled.
    entity::auth_token::Entity::delete_many()
        .exec(&app.db)
        .await
        .unwrap();
    let reply = app.get("user/", Some(&key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}
