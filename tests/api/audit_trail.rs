//! The audit trail (`audit_events`, the `tessera::audit` log target, `tessera audit`): every
//! authentication use case leaves a row saying what happened, to whom and from where, in the
//! order it happened, and nothing secret. Rows are read back through the entity; the tests
//! assert on what the server recorded, never on what they wrote themselves.

use std::process::Output;

use entity::{audit_event, user};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tessera::Config;
use tessera::config::{AuthMode, EmailVerification};

use crate::support::cookies::{Browser, Csrf};
use crate::support::mail::{RESET_PREFIX, VERIFY_PREFIX, frontend_links, key_from, uid_and_token};
use crate::support::process::{ServeProcess, call, run};
use crate::support::{Backend, PASSWORD, Reply, TestApp, confirm_reset, credentials, signup_body};

on_each_backend!(
    token_journey_is_recorded_in_order,
    email_flows_are_recorded,
    jwt_reuse_and_logout_are_recorded,
    session_logout_is_recorded,
    session_login_in_token_mode_records_both_credentials,
    failed_login_limits_are_recorded_with_the_targeted_account,
    other_rate_limits_are_recorded_with_their_action,
    forwarded_for_is_recorded_only_behind_a_trusted_proxy,
    the_trail_holds_no_secrets,
    events_past_the_retention_period_are_deleted,
    racing_signups_are_all_recorded_under_enumeration_prevention,
    racing_signups_are_all_recorded_when_taken_is_refused,
    a_reset_link_used_twice_at_once_records_the_refused_use,
);

const UA: &str = "AuditTest/1.0 (journey; +https://example.com/bot)";
const NEW_PASSWORD: &str = "a completely different passphrase";
const WRONG_PASSWORD: &str = "definitely not the password";
const LOCALHOST: &str = "127.0.0.1";
const FORWARDED_CLIENT: &str = "203.0.113.9";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// What a test checks of a row: (event, outcome, reason, user_id).
type Summary = (String, String, Option<String>, Option<i64>);

fn row(event: &str, outcome: &str, reason: Option<&str>, user_id: Option<i64>) -> Summary {
    (
        event.to_owned(),
        outcome.to_owned(),
        reason.map(str::to_owned),
        user_id,
    )
}

/// Every stored event, in the order it was written.
async fn all_events(app: &TestApp) -> Vec<audit_event::Model> {
    audit_event::Entity::find()
        .order_by_asc(audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

fn summarize(rows: &[audit_event::Model]) -> Vec<Summary> {
    rows.iter()
        .map(|r| {
            (
                r.event.clone(),
                r.outcome.clone(),
                r.reason.clone(),
                r.user_id.map(|id| id.0),
            )
        })
        .collect()
}

async fn summaries(app: &TestApp) -> Vec<Summary> {
    summarize(&all_events(app).await)
}

/// The events written since `before` rows existed.
async fn events_after(app: &TestApp, before: usize) -> Vec<audit_event::Model> {
    let mut rows = all_events(app).await;
    assert!(rows.len() >= before, "rows were deleted: {rows:?}");
    rows.drain(..before);
    rows
}

async fn set_active(app: &TestApp, email: &str, active: bool) {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::IsActive, Expr::value(active))
        .filter(user::Column::Email.eq(email))
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected, 1);
}

/// A POST with a JSON body and a User-Agent header.
async fn post_as(app: &TestApp, user_agent: &str, path: &str, body: Value) -> Reply {
    app.send(
        app.client
            .post(app.api(path))
            .header("User-Agent", user_agent)
            .json(&body),
    )
    .await
}

fn assert_status(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.text);
}

fn rate_limits(config: &mut Config, edit: impl FnOnce(&mut tessera::config::RateLimitsConfig)) {
    config.rate_limits = Default::default();
    config.rate_limits.enabled = true;
    crate::support::unlimit_all_but_confirm_email(&mut config.rate_limits);
    edit(&mut config.rate_limits);
}

// ---------------------------------------------------------------------------------------------
// 1. Token mode
// ---------------------------------------------------------------------------------------------

async fn token_journey_is_recorded_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A spoofed X-Forwarded-For is not believed without trusted proxies.
    let signup = app
        .send(
            app.client
                .post(app.api("registration/"))
                .header("User-Agent", UA)
                .header("X-Forwarded-For", FORWARDED_CLIENT)
                .json(&signup_body("ada@example.com", PASSWORD)),
        )
        .await;
    assert_status(&signup, 201);
    let ada = app.stored_user("ada@example.com").await.id.0;

    assert_status(
        &post_as(
            &app,
            UA,
            "login/",
            credentials("ada@example.com", WRONG_PASSWORD),
        )
        .await,
        400,
    );
    assert_status(
        &post_as(
            &app,
            UA,
            "login/",
            credentials("nobody@example.com", PASSWORD),
        )
        .await,
        400,
    );
    set_active(&app, "ada@example.com", false).await;
    assert_status(
        &post_as(&app, UA, "login/", credentials("ada@example.com", PASSWORD)).await,
        400,
    );
    set_active(&app, "ada@example.com", true).await;
    let login = post_as(&app, UA, "login/", credentials("ada@example.com", PASSWORD)).await;
    assert_status(&login, 200);
    let key = login.body["key"].as_str().unwrap().to_owned();

    let change = |old: &str| json!({"old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD});
    let authorized = |path: &str, body: Value| {
        app.client
            .post(app.api(path))
            .header("Authorization", format!("Token {key}"))
            .header("User-Agent", UA)
            .json(&body)
    };
    assert_status(
        &app.send(authorized("password/change/", change(WRONG_PASSWORD)))
            .await,
        400,
    );
    assert_status(
        &app.send(authorized("password/change/", change(PASSWORD)))
            .await,
        200,
    );
    assert_status(&app.send(authorized("logout/", json!({}))).await, 200);

    let rows = all_events(&app).await;
    assert_eq!(
        summarize(&rows),
        vec![
            row("registration", "success", None, Some(ada)),
            row("login", "failure", Some("wrong_password"), Some(ada)),
            row("login", "failure", Some("unknown_account"), None),
            row("login", "failure", Some("inactive"), Some(ada)),
            row("login", "success", None, Some(ada)),
            row(
                "password_change",
                "failure",
                Some("wrong_old_password"),
                Some(ada)
            ),
            row("password_change", "success", None, Some(ada)),
            row("logout", "success", Some("token"), Some(ada)),
        ],
        "{rows:#?}"
    );
    for row in &rows {
        assert_eq!(row.ip.as_deref(), Some(LOCALHOST), "{row:?}");
        assert_eq!(row.user_agent.as_deref(), Some(UA), "{row:?}");
    }
    let times: Vec<_> = rows.iter().map(|r| r.created_at).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timestamps follow the order of events: {times:?}"
    );
    let now = chrono::Utc::now();
    assert!(
        times.iter().all(|t| (now - *t).num_seconds().abs() < 120),
        "timestamps are the time of the event: {times:?} vs {now}"
    );

    // No User-Agent: none recorded. A long one: kept to 255 characters (the credential columns).
    let before = rows.len();
    assert_status(&app.login("ada@example.com", WRONG_PASSWORD).await, 400);
    let long_agent = format!("LongAgent/{}", "x".repeat(400));
    assert_status(
        &post_as(
            &app,
            &long_agent,
            "login/",
            credentials("ada@example.com", NEW_PASSWORD),
        )
        .await,
        200,
    );
    let new = events_after(&app, before).await;
    assert_eq!(
        summarize(&new),
        vec![
            row("login", "failure", Some("wrong_password"), Some(ada)),
            row("login", "success", None, Some(ada)),
        ]
    );
    assert_eq!(new[0].user_agent, None, "{:?}", new[0]);
    let expected: String = long_agent.chars().take(255).collect();
    assert_eq!(new[1].user_agent.as_deref(), Some(expected.as_str()));

    // Requests refused before any use case ran (no credential) record nothing.
    assert_status(&app.post("logout/", json!({})).await, 400);
    assert_eq!(all_events(&app).await.len(), before + 2);
}

// ---------------------------------------------------------------------------------------------
// 2. Email flows
// ---------------------------------------------------------------------------------------------

async fn email_flows_are_recorded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        frontend_links(config);
        config.account.email_verification = EmailVerification::Mandatory;
    })
    .await;
    assert!(app.config.account.prevent_enumeration);

    let first = app
        .post("registration/", signup_body("ada@example.com", PASSWORD))
        .await;
    assert_status(&first, 201);
    let ada = app.stored_user("ada@example.com").await.id.0;
    // Someone else tries the same address: answered as new, recorded against the owner.
    let taken = app
        .post(
            "registration/",
            signup_body(" ADA@Example.com ", "an intruder's passphrase"),
        )
        .await;
    assert_status(&taken, 201);
    assert_eq!(taken.body, first.body, "enumeration prevention");

    let unverified = app.login("ada@example.com", PASSWORD).await;
    assert_status(&unverified, 400);

    let key = key_from(&app.newest_link(2, VERIFY_PREFIX).await, VERIFY_PREFIX);
    assert_status(
        &app.post("registration/verify-email/", json!({"key": key}))
            .await,
        200,
    );
    // A used key is not found and records nothing.
    assert_status(
        &app.post("registration/verify-email/", json!({"key": key}))
            .await,
        404,
    );
    app.login_key("ada@example.com", PASSWORD).await;

    assert_status(
        &app.post("password/reset/", json!({"email": "ada@example.com"}))
            .await,
        200,
    );
    let (uid, token) = uid_and_token(&app.newest_link(3, RESET_PREFIX).await, RESET_PREFIX);
    // A valid uid with a wrong token, while the real link is live.
    let forged = "0123456789abcdef0123456789abcdef";
    assert_ne!(forged, token);
    assert_status(
        &confirm_reset(&app, &uid, forged, NEW_PASSWORD, NEW_PASSWORD).await,
        400,
    );
    // An unknown uid is not an account: nothing to record.
    assert_status(
        &confirm_reset(&app, "zzzzzz", forged, NEW_PASSWORD, NEW_PASSWORD).await,
        400,
    );
    assert_status(
        &confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD).await,
        200,
    );
    // The used link is dead now: a second use is an invalid link.
    assert_status(
        &confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD).await,
        400,
    );
    app.login_key("ada@example.com", NEW_PASSWORD).await;

    let rows = all_events(&app).await;
    assert_eq!(
        summarize(&rows),
        vec![
            row("registration", "success", None, Some(ada)),
            row("registration", "failure", Some("email_taken"), Some(ada)),
            row("login", "failure", Some("email_not_verified"), Some(ada)),
            row("email_verification", "success", None, Some(ada)),
            row("login", "success", None, Some(ada)),
            row("password_reset", "failure", Some("invalid_link"), Some(ada)),
            row("password_reset", "success", None, Some(ada)),
            row("password_reset", "failure", Some("invalid_link"), Some(ada)),
            row("login", "success", None, Some(ada)),
        ],
        "{rows:#?}"
    );
    for row in &rows {
        assert_eq!(row.ip.as_deref(), Some(LOCALHOST), "{row:?}");
        assert_eq!(row.user_agent, None, "the test client sends no User-Agent");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. JWT mode
// ---------------------------------------------------------------------------------------------

async fn jwt_reuse_and_logout_are_recorded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.auth.mode = AuthMode::Jwt).await;
    assert!(app.config.jwt.rotate_refresh, "rotation is on by default");
    let signup = app
        .post("registration/", signup_body("ada@example.com", PASSWORD))
        .await;
    assert_status(&signup, 201);
    let ada = app.stored_user("ada@example.com").await.id.0;
    let login = post_as(&app, UA, "login/", credentials("ada@example.com", PASSWORD)).await;
    assert_status(&login, 200);
    let refresh = login.body["refresh"].as_str().unwrap().to_owned();

    let refresh_with =
        |token: &str| post_as(&app, UA, "token/refresh/", json!({ "refresh": token }));
    assert_status(&refresh_with(&refresh).await, 200);
    let reused = refresh_with(&refresh).await;
    assert_status(&reused, 401);
    // Once the family is revoked, its tokens are merely refused: no second reuse entry.
    assert_status(&refresh_with(&refresh).await, 401);

    let fresh = post_as(&app, UA, "login/", credentials("ada@example.com", PASSWORD)).await;
    assert_status(&fresh, 200);
    let fresh_refresh = fresh.body["refresh"].as_str().unwrap().to_owned();
    assert_status(
        &post_as(&app, UA, "logout/", json!({ "refresh": fresh_refresh })).await,
        200,
    );
    // Logging out again with the revoked family's token fails and records no logout.
    assert_status(
        &post_as(&app, UA, "logout/", json!({ "refresh": fresh_refresh })).await,
        401,
    );

    let rows = all_events(&app).await;
    assert_eq!(
        summarize(&rows),
        vec![
            row("registration", "success", None, Some(ada)),
            row("login", "success", None, Some(ada)),
            row(
                "refresh_token_reuse",
                "blocked",
                Some("family_revoked"),
                Some(ada)
            ),
            row("login", "success", None, Some(ada)),
            row("logout", "success", Some("refresh_family"), Some(ada)),
        ],
        "{rows:#?}"
    );
    for row in &rows[1..] {
        assert_eq!(row.ip.as_deref(), Some(LOCALHOST), "{row:?}");
        assert_eq!(row.user_agent.as_deref(), Some(UA), "{row:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Session mode
// ---------------------------------------------------------------------------------------------

/// A browser (cookies kept, `csrftoken` echoed) that names itself `UA`.
fn browser(app: &TestApp) -> Browser<'_> {
    let mut browser = Browser::new(app);
    browser.user_agent = Some(UA);
    browser
}

async fn session_logout_is_recorded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.auth.mode = AuthMode::Session).await;
    let mut browser = browser(&app);
    let signup = browser
        .post("registration/", signup_body("ada@example.com", PASSWORD))
        .await;
    assert_status(&signup, 204);
    let ada = app.stored_user("ada@example.com").await.id.0;
    assert!(browser.has_session());
    assert_status(&browser.post("logout/", json!({})).await, 200);
    assert!(!browser.has_session());
    // A logout without a session answers the same and records nothing.
    assert_status(&browser.post("logout/", json!({})).await, 200);

    assert_status(
        &browser
            .post("login/", credentials("ada@example.com", WRONG_PASSWORD))
            .await,
        400,
    );
    assert_status(
        &browser
            .post("login/", credentials("ada@example.com", PASSWORD))
            .await,
        204,
    );
    assert!(browser.has_session());
    assert_status(&browser.post("logout/", json!({})).await, 200);

    let rows = all_events(&app).await;
    assert_eq!(
        summarize(&rows),
        vec![
            row("registration", "success", None, Some(ada)),
            row("logout", "success", Some("session"), Some(ada)),
            row("login", "failure", Some("wrong_password"), Some(ada)),
            row("login", "success", None, Some(ada)),
            row("logout", "success", Some("session"), Some(ada)),
        ],
        "{rows:#?}"
    );
    for row in &rows {
        assert_eq!(row.ip.as_deref(), Some(LOCALHOST), "{row:?}");
        assert_eq!(row.user_agent.as_deref(), Some(UA), "{row:?}");
    }
}

/// With `auth.session_login` a token-mode logout ends the session and the token: both are
/// recorded.
async fn session_login_in_token_mode_records_both_credentials(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.auth.session_login = true).await;
    app.register("ada@example.com").await;
    let ada = app.stored_user("ada@example.com").await.id.0;
    let mut browser = browser(&app);
    // A cookie-less login needs no CSRF token.
    let login = browser
        .send_request(
            app.client
                .post(app.api("login/"))
                .json(&credentials("ada@example.com", PASSWORD)),
            Csrf::FromCookie,
        )
        .await;
    assert_status(&login, 200);
    assert!(browser.has_session(), "{login:?}");
    let key = login.body["key"].as_str().unwrap().to_owned();
    let logout = browser
        .send_request(
            app.client
                .post(app.api("logout/"))
                .header("Authorization", format!("Token {key}"))
                .json(&json!({})),
            Csrf::FromCookie,
        )
        .await;
    assert_status(&logout, 200);

    let rows = summaries(&app).await;
    assert_eq!(
        rows[..2],
        [
            row("registration", "success", None, Some(ada)),
            row("login", "success", None, Some(ada)),
        ]
    );
    let mut logouts = rows[2..].to_vec();
    logouts.sort();
    assert_eq!(
        logouts,
        vec![
            row("logout", "success", Some("session"), Some(ada)),
            row("logout", "success", Some("token"), Some(ada)),
        ],
        "{rows:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Rate limits
// ---------------------------------------------------------------------------------------------

async fn failed_login_limits_are_recorded_with_the_targeted_account(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |config| {
        rate_limits(config, |l| {
            l.login_failed = "100/m/ip,2/300s/key".parse().unwrap()
        })
    })
    .await;
    app.register("known@example.com").await;
    let known = app.stored_user("known@example.com").await.id.0;
    for email in ["known@example.com", "unknown@example.com"] {
        for _ in 0..2 {
            assert_status(&app.login(email, WRONG_PASSWORD).await, 400);
        }
        // Even the right password is refused now.
        assert_status(&app.login(email, PASSWORD).await, 429);
    }
    // The limit is per normalised address: it names the same account.
    assert_status(&app.login("  KNOWN@Example.com ", PASSWORD).await, 429);

    let rows = all_events(&app).await;
    assert_eq!(
        summarize(&rows),
        vec![
            row("registration", "success", None, Some(known)),
            row("login", "failure", Some("wrong_password"), Some(known)),
            row("login", "failure", Some("wrong_password"), Some(known)),
            row("rate_limit", "blocked", Some("login_failed"), Some(known)),
            row("login", "failure", Some("unknown_account"), None),
            row("login", "failure", Some("unknown_account"), None),
            row("rate_limit", "blocked", Some("login_failed"), None),
            row("rate_limit", "blocked", Some("login_failed"), Some(known)),
        ],
        "{rows:#?}"
    );
    for row in &rows {
        assert_eq!(row.ip.as_deref(), Some(LOCALHOST), "{row:?}");
    }
}

async fn other_rate_limits_are_recorded_with_their_action(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |config| {
        frontend_links(config);
        rate_limits(config, |l| {
            l.login = "2/m/ip".parse().unwrap();
            l.signup = "1/m/ip".parse().unwrap();
            l.reset_password = "100/m/ip,1/m/key".parse().unwrap();
            l.reset_password_from_key = "1/m/ip".parse().unwrap();
            l.change_password = "1/m/user".parse().unwrap();
            l.confirm_email = "1/180s/key".parse().unwrap();
        })
    })
    .await;
    let key = app.register("ada@example.com").await;
    let ada = app.stored_user("ada@example.com").await.id.0;
    assert_status(
        &app.post("registration/", signup_body("bob@example.com", PASSWORD))
            .await,
        429,
    );
    // Signup mailed a confirmation a moment ago: a resend is over the limit (answered 200).
    assert_status(
        &app.post(
            "registration/resend-email/",
            json!({"email": "ada@example.com"}),
        )
        .await,
        200,
    );

    app.login_key("ada@example.com", PASSWORD).await;
    assert_status(&app.login("ada@example.com", PASSWORD).await, 200);
    assert_status(&app.login("ada@example.com", PASSWORD).await, 429);

    let change = json!({"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD});
    assert_status(
        &app.post_with_token("password/change/", &key, change.clone())
            .await,
        200,
    );
    assert_status(
        &app.post_with_token("password/change/", &key, change).await,
        429,
    );

    let reset = json!({"email": "ada@example.com"});
    assert_status(&app.post("password/reset/", reset.clone()).await, 200);
    assert_status(&app.post("password/reset/", reset).await, 429);
    let garbage = "0123456789abcdef0123456789abcdef";
    assert_status(
        &confirm_reset(&app, "zzzzzz", garbage, PASSWORD, PASSWORD).await,
        400,
    );
    assert_status(
        &confirm_reset(&app, "zzzzzz", garbage, PASSWORD, PASSWORD).await,
        429,
    );

    let rows = all_events(&app).await;
    assert_eq!(
        summarize(&rows),
        vec![
            row("registration", "success", None, Some(ada)),
            row("rate_limit", "blocked", Some("signup"), None),
            row("rate_limit", "blocked", Some("confirm_email"), Some(ada)),
            row("login", "success", None, Some(ada)),
            row("login", "success", None, Some(ada)),
            row("rate_limit", "blocked", Some("login"), Some(ada)),
            row("password_change", "success", None, Some(ada)),
            row("rate_limit", "blocked", Some("change_password"), Some(ada)),
            row("rate_limit", "blocked", Some("reset_password"), None),
            row(
                "rate_limit",
                "blocked",
                Some("reset_password_from_key"),
                None
            ),
        ],
        "{rows:#?}"
    );
}

async fn forwarded_for_is_recorded_only_behind_a_trusted_proxy(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |config| {
        config.server.trusted_proxies = vec![LOCALHOST.parse::<std::net::IpAddr>().unwrap().into()];
        rate_limits(config, |l| {
            l.login_failed = "100/m/ip,2/300s/key".parse().unwrap()
        })
    })
    .await;
    app.register("proxy@example.com").await;
    let proxied = app.stored_user("proxy@example.com").await.id.0;
    let login_via_proxy = |password: &str| {
        app.client
            .post(app.api("login/"))
            .header("X-Forwarded-For", format!("6.6.6.6, {FORWARDED_CLIENT}"))
            .header("User-Agent", UA)
            .json(&credentials("proxy@example.com", password))
    };
    for _ in 0..2 {
        assert_status(&app.send(login_via_proxy(WRONG_PASSWORD)).await, 400);
    }
    assert_status(&app.send(login_via_proxy(PASSWORD)).await, 429);

    let rows = all_events(&app).await;
    assert_eq!(
        summarize(&rows),
        vec![
            row("registration", "success", None, Some(proxied)),
            row("login", "failure", Some("wrong_password"), Some(proxied)),
            row("login", "failure", Some("wrong_password"), Some(proxied)),
            row("rate_limit", "blocked", Some("login_failed"), Some(proxied)),
        ],
        "{rows:#?}"
    );
    assert_eq!(
        rows[0].ip.as_deref(),
        Some(LOCALHOST),
        "no header: the peer"
    );
    for row in &rows[1..] {
        assert_eq!(
            row.ip.as_deref(),
            Some(FORWARDED_CLIENT),
            "the address the trusted proxy saw, not the spoofed one before it: {row:?}"
        );
        assert_eq!(row.user_agent.as_deref(), Some(UA));
    }
}

// ---------------------------------------------------------------------------------------------
// 6. No secrets
// ---------------------------------------------------------------------------------------------

async fn the_trail_holds_no_secrets(backend: Backend) {
    let mut secrets: Vec<String> = vec![
        PASSWORD.into(),
        NEW_PASSWORD.into(),
        WRONG_PASSWORD.into(),
        "an intruder's passphrase".into(),
        // An identifier typed at a failed login is not kept either.
        "typo-ada@example.org".into(),
    ];
    let dumps = {
        let app = TestApp::spawn_with(backend.clone(), frontend_links).await;
        let signup_key = app.register("ada@example.com").await;
        assert_status(
            &app.post(
                "registration/",
                signup_body("ada@example.com", "an intruder's passphrase"),
            )
            .await,
            400,
        );
        let verification_key = key_from(&app.newest_link(1, VERIFY_PREFIX).await, VERIFY_PREFIX);
        assert_status(
            &app.post(
                "registration/verify-email/",
                json!({ "key": verification_key }),
            )
            .await,
            200,
        );
        assert_status(&app.login("ada@example.com", WRONG_PASSWORD).await, 400);
        assert_status(
            &app.login("typo-ada@example.org", WRONG_PASSWORD).await,
            400,
        );
        let login_key = app.login_key("ada@example.com", PASSWORD).await;
        assert_status(
            &app.post_with_token(
                "password/change/",
                &login_key,
                json!({"old_password": WRONG_PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
            )
            .await,
            400,
        );
        assert_status(
            &app.post("password/reset/", json!({"email": "ada@example.com"}))
                .await,
            200,
        );
        let link = app.newest_link(2, RESET_PREFIX).await;
        let (uid, token) = uid_and_token(&link, RESET_PREFIX);
        assert_status(
            &confirm_reset(
                &app,
                &uid,
                &token[..token.len() - 1],
                NEW_PASSWORD,
                NEW_PASSWORD,
            )
            .await,
            400,
        );
        assert_status(
            &confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD).await,
            200,
        );
        let after_reset = app.login_key("ada@example.com", NEW_PASSWORD).await;
        assert_status(
            &app.post_with_token("logout/", &after_reset, json!({}))
                .await,
            200,
        );
        secrets.extend([
            signup_key,
            login_key,
            after_reset,
            verification_key,
            link,
            format!("{uid}/{token}"),
            token,
        ]);
        let rows = all_events(&app).await;
        assert!(rows.len() >= 10, "the journey was recorded: {rows:#?}");
        assert!(
            rows.iter()
                .any(|r| r.reason.as_deref() == Some("invalid_link")),
            "{rows:#?}"
        );
        vec![format!("{rows:?}")]
    };

    let jwt_dump = {
        let app = TestApp::spawn_with(backend, |config| config.auth.mode = AuthMode::Jwt).await;
        let signup = app
            .post("registration/", signup_body("ada@example.com", PASSWORD))
            .await;
        assert_status(&signup, 201);
        let login = app.login("ada@example.com", PASSWORD).await;
        assert_status(&login, 200);
        let refresh = login.body["refresh"].as_str().unwrap().to_owned();
        let access = login.body["access"].as_str().unwrap().to_owned();
        let rotated = app
            .post("token/refresh/", json!({ "refresh": refresh }))
            .await;
        assert_status(&rotated, 200);
        assert_status(
            &app.post("token/refresh/", json!({ "refresh": refresh }))
                .await,
            401,
        );
        let again = app.login("ada@example.com", PASSWORD).await;
        assert_status(&again, 200);
        let last_refresh = again.body["refresh"].as_str().unwrap().to_owned();
        assert_status(
            &app.post("logout/", json!({ "refresh": last_refresh }))
                .await,
            200,
        );
        for reply in [&signup, &login, &rotated, &again] {
            for field in ["access", "refresh"] {
                if let Some(token) = reply.body[field].as_str() {
                    secrets.push(token.to_owned());
                    // The signature alone, and the claims part (it holds the jti).
                    let parts: Vec<&str> = token.split('.').collect();
                    assert_eq!(parts.len(), 3, "{token}");
                    secrets.push(parts[1].to_owned());
                    secrets.push(parts[2].to_owned());
                }
            }
        }
        secrets.extend([access, refresh, last_refresh]);
        let rows = all_events(&app).await;
        assert!(
            rows.iter().any(|r| r.event == "refresh_token_reuse"),
            "{rows:#?}"
        );
        format!("{rows:?}")
    };

    for dump in dumps.iter().chain([&jwt_dump]) {
        for secret in &secrets {
            assert!(secret.len() >= 8, "a secret worth looking for: {secret:?}");
            assert!(
                !dump.contains(secret.as_str()),
                "{secret:?} is in the audit trail:\n{dump}"
            );
        }
    }
}

/// Signups for one address racing each other: one creates the account, every other one is an
/// attempt on a taken address and must be recorded as such (`email_taken`, against the owner),
/// whether it lost at the early lookup or at the unique index.
async fn racing_signups(backend: Backend, verification: EmailVerification) {
    const ATTEMPTS: usize = 6;
    let app = TestApp::spawn_with(backend, |config| {
        config.account.email_verification = verification;
    })
    .await;
    let replies = futures_util::future::join_all(
        (0..ATTEMPTS).map(|_| app.post("registration/", signup_body("race@example.com", PASSWORD))),
    )
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    match verification {
        // Enumeration prevention: every attempt is answered as a new signup.
        EmailVerification::Mandatory => assert_eq!(created, ATTEMPTS, "{replies:#?}"),
        // Otherwise the others are told the address is taken.
        _ => {
            assert_eq!(created, 1, "{replies:#?}");
            for reply in replies.iter().filter(|r| r.status != 201) {
                assert_status(reply, 400);
                assert!(reply.body.get("email").is_some(), "{}", reply.text);
            }
        }
    }
    let owner = app.stored_user("race@example.com").await.id.0;
    let mut rows = summaries(&app).await;
    rows.sort();
    let mut expected =
        vec![row("registration", "failure", Some("email_taken"), Some(owner)); ATTEMPTS - 1];
    expected.push(row("registration", "success", None, Some(owner)));
    assert_eq!(
        rows,
        expected,
        "{verification:?}: one success and {} taken-address failures",
        ATTEMPTS - 1
    );
}

async fn racing_signups_are_all_recorded_under_enumeration_prevention(backend: Backend) {
    racing_signups(backend, EmailVerification::Mandatory).await;
}

async fn racing_signups_are_all_recorded_when_taken_is_refused(backend: Backend) {
    racing_signups(backend, EmailVerification::Optional).await;
}

/// A reset link used twice one after the other records `invalid_link` for the second use (see
/// `email_flows_are_recorded`); used twice at once, the refused use must be recorded the same.
async fn a_reset_link_used_twice_at_once_records_the_refused_use(backend: Backend) {
    const USES: usize = 8;
    let app = TestApp::spawn_with(backend, frontend_links).await;
    app.register("ada@example.com").await;
    let ada = app.stored_user("ada@example.com").await.id.0;
    assert_status(
        &app.post("password/reset/", json!({"email": "ada@example.com"}))
            .await,
        200,
    );
    let (uid, token) = uid_and_token(&app.newest_link(2, RESET_PREFIX).await, RESET_PREFIX);
    let before = all_events(&app).await.len();
    let replies = futures_util::future::join_all(
        (0..USES).map(|_| confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD)),
    )
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "one use wins: {replies:#?}"
    );
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_status(reply, 400);
        assert_eq!(
            reply.body,
            json!({"token": ["Invalid value"]}),
            "{}",
            reply.text
        );
    }
    let mut rows = summarize(&events_after(&app, before).await);
    rows.sort();
    let mut expected =
        vec![row("password_reset", "failure", Some("invalid_link"), Some(ada)); USES - 1];
    expected.push(row("password_reset", "success", None, Some(ada)));
    assert_eq!(rows, expected, "every refused use of the link is recorded");
}

// ---------------------------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------------------------

/// Stores an event as if it had been recorded `days` ago.
async fn backdated_event(app: &TestApp, days: i64, reason: &str) {
    use sea_orm::{ActiveModelTrait, Set};
    audit_event::ActiveModel {
        created_at: Set(chrono::Utc::now() - chrono::Duration::days(days)),
        event: Set("login".into()),
        outcome: Set("failure".into()),
        reason: Set(Some(reason.into())),
        user_id: Set(None),
        ip: Set(Some("192.0.2.1".into())),
        user_agent: Set(None),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
}

async fn events_past_the_retention_period_are_deleted(backend: Backend) {
    let app = TestApp::spawn_with(backend.clone(), |config| config.audit.retention_days = 30).await;
    backdated_event(&app, 31, "old").await;
    backdated_event(&app, 29, "recent").await;
    app.register("ada@example.com").await;
    let ada = app.stored_user("ada@example.com").await.id.0;
    assert_eq!(
        summaries(&app).await,
        vec![
            row("login", "failure", Some("recent"), None),
            row("registration", "success", None, Some(ada)),
        ],
        "the event older than audit.retention_days is gone, the others stay"
    );

    // 0 keeps everything.
    let forever = TestApp::spawn_with(backend, |config| config.audit.retention_days = 0).await;
    backdated_event(&forever, 3650, "ancient").await;
    forever.register("ada@example.com").await;
    let ada = forever.stored_user("ada@example.com").await.id.0;
    assert_eq!(
        summaries(&forever).await,
        vec![
            row("login", "failure", Some("ancient"), None),
            row("registration", "success", None, Some(ada)),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 7. The binary: the log target and `tessera audit`
// ---------------------------------------------------------------------------------------------

const BIN_UA: &str = "audit-binary-test/1.0";

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test]
async fn serve_logs_audit_events_and_tessera_audit_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("serve.log");
    let client = crate::support::http_client_builder()
        .user_agent(BIN_UA)
        .build()
        .unwrap();
    let mut server = ServeProcess::start(
        dir.path(),
        &[("TESSERA_LOG__FORMAT", "json")],
        Some(&log_file),
    );
    server.wait_ready(&client).await;
    let api = |path: &str| format!("{}/auth/{path}", server.base);
    let email = "audit.user@example.com";

    let (status, body) = call(
        &client,
        Method::POST,
        api("registration/"),
        None,
        Some(signup_body(email, PASSWORD)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let signup_token = body["key"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &client,
        Method::POST,
        api("login/"),
        None,
        Some(credentials(email, WRONG_PASSWORD)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &client,
        Method::POST,
        api("login/"),
        None,
        Some(credentials("stranger@example.com", WRONG_PASSWORD)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &client,
        Method::POST,
        api("login/"),
        None,
        Some(credentials(email, PASSWORD)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["key"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &client,
        Method::POST,
        api("logout/"),
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (exit, _, _) = server.stop();
    let logs = std::fs::read_to_string(&log_file).unwrap();
    assert!(exit.success(), "a graceful stop exits 0: {exit}\n{logs}");

    // The log: one `tessera::audit` line per event, in order, as JSON.
    let audit_lines: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "tessera::audit")
        .collect();
    let logged: Vec<(String, String, Option<String>)> = audit_lines
        .iter()
        .map(|line| {
            let fields = &line["fields"];
            (
                fields["event"].as_str().unwrap_or_default().to_owned(),
                fields["outcome"].as_str().unwrap_or_default().to_owned(),
                fields["reason"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let text = |s: &str| s.to_owned();
    assert_eq!(
        logged,
        vec![
            (text("registration"), text("success"), None),
            (text("login"), text("failure"), Some(text("wrong_password"))),
            (
                text("login"),
                text("failure"),
                Some(text("unknown_account"))
            ),
            (text("login"), text("success"), None),
            (text("logout"), text("success"), Some(text("token"))),
        ],
        "{logs}"
    );
    let user_ids: Vec<Option<i64>> = audit_lines
        .iter()
        .map(|line| line["fields"]["user_id"].as_i64())
        .collect();
    let id = user_ids[0].expect("the registration names the account");
    assert_eq!(
        user_ids,
        [Some(id), Some(id), None, Some(id), Some(id)],
        "{logs}"
    );
    for line in &audit_lines {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["fields"]["ip"], LOCALHOST, "{line}");
        let agent = line["fields"]["user_agent"].as_str().unwrap_or_default();
        assert!(agent.contains(BIN_UA), "{line}");
    }
    for secret in [
        PASSWORD,
        WRONG_PASSWORD,
        token.as_str(),
        signup_token.as_str(),
        "stranger@example.com",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the logs:\n{logs}"
        );
    }

    // `tessera audit --user`: that account's events, oldest first, as a table.
    let table = stdout_of(&run(dir.path(), &["audit", "--user", email], &[]));
    let mut lines = table.lines();
    let header = lines.next().expect("a header line");
    for column in ["EVENT", "OUTCOME", "REASON", "ACCOUNT", "IP", "USER AGENT"] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let quoted_agent = format!("{BIN_UA:?}");
    let expected = [
        ("registration", "success", "-"),
        ("login", "failure", "wrong_password"),
        ("login", "success", "-"),
        ("logout", "success", "token"),
    ];
    assert_eq!(rows.len(), expected.len(), "{table}");
    for (row, (event, outcome, reason)) in rows.iter().zip(expected) {
        assert_eq!(
            row[1..],
            [
                event,
                outcome,
                reason,
                email,
                LOCALHOST,
                quoted_agent.as_str()
            ],
            "{table}"
        );
        assert!(
            chrono::NaiveDateTime::parse_from_str(row[0], "%Y-%m-%dT%H:%M:%SZ").is_ok(),
            "{table}"
        );
    }

    // The same as JSON lines; addresses are normalised.
    let json_out = stdout_of(&run(
        dir.path(),
        &["audit", "--user", " Audit.User@Example.com ", "--json"],
        &[],
    ));
    let entries: Vec<Value> = json_out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(entries.len(), 4, "{json_out}");
    for (entry, (event, outcome, reason)) in entries.iter().zip(expected) {
        let reason = (reason != "-").then_some(reason);
        assert_eq!(entry["event"], event, "{entry}");
        assert_eq!(entry["outcome"], outcome, "{entry}");
        assert_eq!(entry["reason"].as_str(), reason, "{entry}");
        assert_eq!(entry["user_id"].as_i64(), Some(id), "{entry}");
        assert_eq!(entry["email"], email, "{entry}");
        assert_eq!(entry["ip"], LOCALHOST, "{entry}");
        assert_eq!(entry["user_agent"], BIN_UA, "{entry}");
        let at = entry["at"].as_str().expect("a timestamp");
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{entry}");
    }
    let keys: Vec<&String> = entries[0].as_object().unwrap().keys().collect();
    let mut expected_keys = [
        "at",
        "event",
        "outcome",
        "reason",
        "user_id",
        "email",
        "ip",
        "user_agent",
    ];
    expected_keys.sort_unstable();
    let mut keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, expected_keys);

    // Everyone's events include the unknown address's failure, with no account; --limit keeps
    // the newest, oldest first.
    let everyone = stdout_of(&run(dir.path(), &["audit", "--json"], &[]));
    let everyone: Vec<Value> = everyone
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(everyone.len(), 5);
    assert_eq!(everyone[2]["reason"], "unknown_account");
    assert_eq!(everyone[2]["user_id"], Value::Null);
    assert_eq!(everyone[2]["email"], Value::Null);
    let newest = stdout_of(&run(dir.path(), &["audit", "--json", "--limit", "2"], &[]));
    let newest: Vec<Value> = newest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<(&str, &str)> = newest
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(events, [("login", "success"), ("logout", "success")]);

    let unknown = run(dir.path(), &["audit", "--user", "nobody@example.com"], &[]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("no account has the email address nobody@example.com"),
        "{stderr}"
    );
    assert!(unknown.stdout.is_empty(), "no table for an unknown account");
}
