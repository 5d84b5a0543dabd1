//! A scripted credential-stuffing run against `login/`, tried as a new user would: the default
//! rate limits (allauth's `login = "30/m/ip"`, `login_failed = "10/m/ip,5/300s/key"`) stop it
//! per IP and per account, every answer is the same whether or not the account exists, and
//! the audit trail shows what happened.
//!
//! Doubles as a demonstration: `cargo test --test api credential_stuffing:: -- --nocapture`
//! prints a summary of each run.

use std::fmt::Write as _;

use crate::support::{Backend, PASSWORD, Reply, TestApp};
use entity::audit_event;
use reqwest::header::{CONTENT_LENGTH, DATE, RETRY_AFTER};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use tessera::Config;
use tessera::config::RateLimitStore;

on_each_backend!(
    stuffing_from_one_ip_is_stopped_per_ip,
    stuffing_from_one_ip_is_stopped_per_ip_with_database_counters,
    distributed_stuffing_is_stopped_per_account,
    distributed_stuffing_is_stopped_per_account_with_database_counters,
    a_parallel_burst_gets_exactly_the_allowed_guesses,
    a_parallel_burst_gets_exactly_the_allowed_guesses_with_database_counters,
);

const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
const ATTACKER_AGENT: &str = "stuffer/0.1";
const OWNER_AGENT: &str = "Mozilla/5.0 (the account's owner)";

/// Passwords from "a leak": none is any account's password.
const LEAKED: [&str; 7] = [
    "Summer2023!",
    "password123",
    "qwerty-uiop",
    "iloveyou99",
    "letmein-now",
    "Dragon#2020",
    "monkey-business",
];

// The default rules, as the numbers this demonstration expects (checked against the config).
const LOGIN_PER_IP: usize = 30;
const FAILED_PER_IP: usize = 10;
const FAILED_PER_KEY: usize = 5;
const KEY_PERIOD: u64 = 300;

/// Default rate limits (and the given counter store); `X-Forwarded-For` believed from the
/// test's own address, so that one test can be many attackers.
fn configure(config: &mut Config, store: RateLimitStore) {
    config.rate_limits = Default::default();
    assert_eq!(config.rate_limits.login, "30/m/ip", "default rules changed");
    assert_eq!(
        config.rate_limits.login_failed, "10/m/ip,5/300s/key",
        "default rules changed"
    );
    config.rate_limits.store = store;
    config.server.trusted_proxies = vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap().into()];
}

fn label(backend: &Backend, store: RateLimitStore) -> String {
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let store = match store {
        RateLimitStore::Memory => "memory counters",
        RateLimitStore::Database => "database counters",
    };
    format!("{backend}, {store}")
}

/// A login as sent from `ip` (through the trusted proxy at 127.0.0.1).
async fn login_from(app: &TestApp, ip: &str, agent: &str, email: &str, password: &str) -> Reply {
    app.send(
        app.client
            .post(app.api("login/"))
            .header("X-Forwarded-For", ip)
            .header("User-Agent", agent)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

async fn user_id(app: &TestApp, token: &str) -> i64 {
    let me = app.get("user/", Some(token)).await;
    me.body["pk"].as_i64().expect("user/ gives pk")
}

/// One request of the run and its answer.
struct Attempt {
    /// 1-based, in the order sent.
    n: usize,
    ip: String,
    email: &'static str,
    /// The account behind the address, if there is one.
    user_id: Option<i64>,
    /// Whether the password tried was the account's real one.
    right_password: bool,
    reply: Reply,
}

/// What a client sees of an answer but for the clock: status, body and every header except
/// Date and Retry-After (compared separately, within a second).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

fn seen(reply: &Reply) -> Seen {
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        // The wait (and so the length of a 429's body) may tick by a second between two
        // attempts; it is compared on its own, within a second, where it matters. Every
        // request has its own id.
        .filter(|(name, _)| {
            **name != DATE
                && **name != RETRY_AFTER
                && **name != CONTENT_LENGTH
                && name.as_str() != "x-request-id"
        })
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    let body = match retry_after(reply) {
        Some(wait) => reply
            .text
            .replace(&format!(" {wait} seconds"), " N seconds"),
        None => reply.text.clone(),
    };
    Seen {
        status: reply.status,
        body,
        headers,
    }
}

fn retry_after(reply: &Reply) -> Option<u64> {
    reply
        .header("retry-after")
        .map(|value| value.parse().expect("Retry-After is whole seconds"))
}

/// Asserts DRF's bad-credentials answer, without Retry-After.
fn assert_refused(attempt: &Attempt) {
    let reply = &attempt.reply;
    assert_eq!(
        reply.status, 400,
        "attempt {} ({}): {}",
        attempt.n, attempt.email, reply.text
    );
    assert_eq!(
        reply.body,
        json!({"non_field_errors": [BAD_CREDENTIALS]}),
        "attempt {}",
        attempt.n
    );
    assert_eq!(retry_after(reply), None, "attempt {}", attempt.n);
}

/// Asserts DRF's throttled answer, with Retry-After in `1..=max_wait` matching the message;
/// returns the wait.
fn assert_throttled(attempt: &Attempt, max_wait: u64) -> u64 {
    let reply = &attempt.reply;
    assert_eq!(
        reply.status, 429,
        "attempt {} ({}): {}",
        attempt.n, attempt.email, reply.text
    );
    let wait = retry_after(reply).expect("a 429 carries Retry-After");
    assert!(
        (1..=max_wait).contains(&wait),
        "attempt {}: {wait}",
        attempt.n
    );
    assert_eq!(
        reply.body,
        json!({"detail": format!("Request was throttled. Expected available in {wait} seconds.")}),
        "attempt {}",
        attempt.n
    );
    wait
}

/// The attempts at one address, in order.
fn at<'a>(attempts: &'a [Attempt], email: &str) -> Vec<&'a Attempt> {
    attempts.iter().filter(|a| a.email == email).collect()
}

/// The enumeration check: the k-th answer about an existing account and the k-th about a
/// non-existing one look the same (status, body, headers; Retry-After within a second, as a
/// second may tick between the two requests).
fn assert_indistinguishable(attempts: &[Attempt], real: &str, fake: &str) {
    let (real_seen, fake_seen) = (at(attempts, real), at(attempts, fake));
    assert_eq!(real_seen.len(), fake_seen.len());
    assert!(real_seen[0].user_id.is_some() && fake_seen[0].user_id.is_none());
    for (k, (r, f)) in real_seen.iter().zip(&fake_seen).enumerate() {
        let step = format!(
            "try {} at {real} (attempt {}) vs {fake} (attempt {})",
            k + 1,
            r.n,
            f.n
        );
        assert_eq!(seen(&r.reply), seen(&f.reply), "{step}");
        match (retry_after(&r.reply), retry_after(&f.reply)) {
            (None, None) => {}
            (Some(a), Some(b)) => assert!(a.abs_diff(b) <= 1, "{step}: {a} vs {b}"),
            other => panic!("{step}: Retry-After {other:?}"),
        }
    }
}

/// `400 400 429 429*` (* the right password).
fn timeline(attempts: &[Attempt], email: &str) -> String {
    at(attempts, email)
        .iter()
        .map(|a| {
            format!(
                "{}{}",
                a.reply.status,
                if a.right_password { "*" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first throttled attempt at an address: (attempt number, which try at the address).
fn first_throttled(attempts: &[Attempt], email: &str) -> Option<(usize, usize)> {
    at(attempts, email)
        .iter()
        .enumerate()
        .find(|(_, a)| a.reply.status == 429)
        .map(|(k, a)| (a.n, k + 1))
}

/// An audit row as compared here: (event, outcome, reason, user_id, ip, user agent).
type Row = (
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn row(
    event: &str,
    outcome: &str,
    reason: Option<&str>,
    user_id: Option<i64>,
    ip: &str,
    agent: &str,
) -> Row {
    (
        event.into(),
        outcome.into(),
        reason.map(Into::into),
        user_id,
        Some(ip.into()),
        Some(agent.into()),
    )
}

/// The trail written after the row with id `after`, oldest first.
async fn trail_after(app: &TestApp, after: i64) -> Vec<audit_event::Model> {
    audit_event::Entity::find()
        .filter(audit_event::Column::Id.gt(after))
        .order_by_asc(audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

async fn last_audit_id(app: &TestApp) -> i64 {
    audit_event::Entity::find()
        .order_by_desc(audit_event::Column::Id)
        .one(&app.db)
        .await
        .unwrap()
        .map_or(0, |row| row.id)
}

fn as_row(model: &audit_event::Model) -> Row {
    (
        model.event.clone(),
        model.outcome.clone(),
        model.reason.clone(),
        model.user_id.map(|id| id.0),
        model.ip.clone(),
        model.user_agent.clone(),
    )
}

/// Nothing an attacker typed (an unknown address, a password) is kept in the trail.
fn assert_trail_keeps_nothing_typed(trail: &[audit_event::Model], typed: &[&str]) {
    for model in trail {
        let fields = [&model.reason, &model.ip, &model.user_agent];
        for field in fields.into_iter().flatten() {
            for text in typed {
                assert!(!field.contains(text), "{model:?} holds {text:?}");
            }
        }
    }
}

fn count_rows(trail: &[audit_event::Model], event: &str, outcome: &str, reason: &str) -> usize {
    trail
        .iter()
        .filter(|m| m.event == event && m.outcome == outcome && m.reason.as_deref() == Some(reason))
        .count()
}

async fn stuffing_from_one_ip_is_stopped_per_ip(backend: Backend) {
    stuffing_from_one_ip(backend, RateLimitStore::Memory).await
}

async fn stuffing_from_one_ip_is_stopped_per_ip_with_database_counters(backend: Backend) {
    stuffing_from_one_ip(backend, RateLimitStore::Database).await
}

async fn distributed_stuffing_is_stopped_per_account(backend: Backend) {
    distributed_stuffing(backend, RateLimitStore::Memory).await
}

async fn distributed_stuffing_is_stopped_per_account_with_database_counters(backend: Backend) {
    distributed_stuffing(backend, RateLimitStore::Database).await
}

/// One attacker IP works through a combo list of three real and three unknown addresses:
/// after 10 failures every answer is 429 (`login_failed` per IP), after 30 attempts too
/// (`login` per IP), even for a right password; the owner elsewhere still logs in.
async fn stuffing_from_one_ip(backend: Backend, store: RateLimitStore) {
    const ATTACKER: &str = "203.0.113.7";
    const OWNER: &str = "192.0.2.10";
    // Each real address next to an unknown one, so that their k-th tries are neighbours.
    const PAIRS: [(&str, &str); 3] = [
        ("alice@example.com", "dave@example.com"),
        ("bob@example.com", "erin@example.com"),
        ("carol@example.com", "frank@example.com"),
    ];
    const ROUNDS: usize = 6;
    // In round 4 the list holds bob's real password: by then it cannot tell.
    const BOB_REAL_ROUND: usize = 4;

    let app = TestApp::spawn_with(backend.clone(), |c| configure(c, store)).await;
    let mut ids = std::collections::HashMap::new();
    for (real, _) in PAIRS {
        let token = app.register(real).await;
        ids.insert(real, user_id(&app, &token).await);
    }
    let before = last_audit_id(&app).await;

    crate::support::clear_of_window_end(60, 15).await;
    let mut attempts = Vec::new();
    for round in 1..=ROUNDS {
        for (pair, (real, fake)) in PAIRS.into_iter().enumerate() {
            for email in [real, fake] {
                let right = email == "bob@example.com" && round == BOB_REAL_ROUND;
                let password = if right {
                    PASSWORD
                } else {
                    LEAKED[(round + pair) % LEAKED.len()]
                };
                let reply = login_from(&app, ATTACKER, ATTACKER_AGENT, email, password).await;
                attempts.push(Attempt {
                    n: attempts.len() + 1,
                    ip: ATTACKER.into(),
                    email,
                    user_id: ids.get(email).copied(),
                    right_password: right,
                    reply,
                });
            }
        }
    }
    assert_eq!(attempts.len(), 36);

    // The first 10 are told apart by nothing; from the 11th the IP is throttled.
    for attempt in &attempts {
        if attempt.n <= FAILED_PER_IP {
            assert_refused(attempt);
        } else {
            assert_throttled(attempt, 60);
        }
    }
    let bob_real = attempts.iter().find(|a| a.right_password).unwrap();
    assert!(bob_real.n > FAILED_PER_IP, "attempt {}", bob_real.n);
    // None of the addresses reached its own limit: the IP is what stopped the run.
    for (real, fake) in PAIRS {
        for email in [real, fake] {
            let failed = at(&attempts, email)
                .iter()
                .filter(|a| a.reply.status == 400)
                .count();
            assert!(failed < FAILED_PER_KEY, "{email}: {failed}");
        }
        assert_indistinguishable(&attempts, real, fake);
    }

    // Alice, from her own IP with her password, is not locked out by the attack.
    let owner = login_from(&app, OWNER, OWNER_AGENT, "alice@example.com", PASSWORD).await;
    assert_eq!(owner.status, 200, "{}", owner.text);
    assert!(owner.body["key"].is_string(), "{}", owner.text);

    // The trail: each attempt as it was answered, whose account it was aimed at, from where.
    let trail = trail_after(&app, before).await;
    let mut expected: Vec<Row> = attempts
        .iter()
        .map(|a| {
            let (event, outcome, reason) = if a.n <= FAILED_PER_IP {
                let reason = match a.user_id {
                    Some(_) => "wrong_password",
                    None => "unknown_account",
                };
                ("login", "failure", reason)
            } else if a.n <= LOGIN_PER_IP {
                ("rate_limit", "blocked", "login_failed")
            } else {
                ("rate_limit", "blocked", "login")
            };
            row(
                event,
                outcome,
                Some(reason),
                a.user_id,
                &a.ip,
                ATTACKER_AGENT,
            )
        })
        .collect();
    expected.push(row(
        "login",
        "success",
        None,
        Some(ids["alice@example.com"]),
        OWNER,
        OWNER_AGENT,
    ));
    let actual: Vec<Row> = trail.iter().map(as_row).collect();
    assert_eq!(actual, expected);
    let mut typed: Vec<&str> = LEAKED.to_vec();
    typed.push(PASSWORD);
    typed.extend(PAIRS.iter().map(|(_, fake)| *fake));
    assert_trail_keeps_nothing_typed(&trail, &typed);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n=== credential stuffing from one IP ({}) ===",
        label(&backend, store)
    );
    let _ = writeln!(
        out,
        "{} attempts from {ATTACKER} at 6 addresses (3 with an account, 3 without): {} x 400, {} x 429",
        attempts.len(),
        attempts.iter().filter(|a| a.reply.status == 400).count(),
        attempts.iter().filter(|a| a.reply.status == 429).count(),
    );
    let _ = writeln!(
        out,
        "per IP: throttled from attempt {} (login_failed 10/m/ip), by login 30/m/ip from attempt {}",
        attempts.iter().find(|a| a.reply.status == 429).unwrap().n,
        LOGIN_PER_IP + 1
    );
    for (real, fake) in PAIRS {
        for (email, what) in [(real, "account"), (fake, "no account")] {
            let (n, k) = first_throttled(&attempts, email).unwrap();
            let _ = writeln!(
                out,
                "  {email:<19} ({what:<10}): {}   first 429: attempt {n} (its try {k})",
                timeline(&attempts, email)
            );
        }
    }
    let _ = writeln!(
        out,
        "  (* bob's real password, attempt {}: refused like the rest)",
        bob_real.n
    );
    let _ = writeln!(
        out,
        "owner alice@example.com from {OWNER} with her password: {}",
        owner.status
    );
    let _ = writeln!(
        out,
        "audit: {} login failure (wrong_password), {} (unknown_account, no user), {} rate_limit blocked (login_failed), {} (login), {} login success",
        count_rows(&trail, "login", "failure", "wrong_password"),
        count_rows(&trail, "login", "failure", "unknown_account"),
        count_rows(&trail, "rate_limit", "blocked", "login_failed"),
        count_rows(&trail, "rate_limit", "blocked", "login"),
        trail.iter().filter(|m| m.outcome == "success").count(),
    );
    println!("{out}");
}

/// Many IPs, one attempt each, at one real and one unknown address: each address is
/// throttled from its 6th try (`login_failed` 5/300s per key), alike; then even the right
/// password from a fresh IP is refused. Other accounts are untouched.
async fn distributed_stuffing(backend: Backend, store: RateLimitStore) {
    const REAL: &str = "victim@example.com";
    const FAKE: &str = "ghost@example.com";
    const BYSTANDER: &str = "bystander@example.com";
    const ROUNDS: usize = 7;

    let app = TestApp::spawn_with(backend.clone(), |c| configure(c, store)).await;
    let token = app.register(REAL).await;
    let victim = user_id(&app, &token).await;
    let token = app.register(BYSTANDER).await;
    let bystander = user_id(&app, &token).await;
    let before = last_audit_id(&app).await;

    crate::support::clear_of_window_end(KEY_PERIOD, 30).await;
    let mut attempts = Vec::new();
    for round in 1..=ROUNDS {
        for (email, user_id) in [(REAL, Some(victim)), (FAKE, None)] {
            // The last round tries the victim's real password (for the ghost, one more guess).
            let right = round == ROUNDS;
            let password = if right { PASSWORD } else { LEAKED[round - 1] };
            let ip = format!("198.51.100.{}", attempts.len() + 1);
            let reply = login_from(&app, &ip, ATTACKER_AGENT, email, password).await;
            attempts.push(Attempt {
                n: attempts.len() + 1,
                ip,
                email,
                user_id,
                right_password: right && user_id.is_some(),
                reply,
            });
        }
    }

    for attempt in &attempts {
        let try_at_address = attempt.n.div_ceil(2);
        if try_at_address <= FAILED_PER_KEY {
            assert_refused(attempt);
        } else {
            assert_throttled(attempt, KEY_PERIOD);
        }
    }
    let refused_right = attempts.iter().find(|a| a.right_password).unwrap();
    assert_eq!(refused_right.reply.status, 429);
    assert_indistinguishable(&attempts, REAL, FAKE);

    // The limit is the address's: another account, from one of the same IPs, logs in.
    let other = login_from(&app, "198.51.100.1", OWNER_AGENT, BYSTANDER, PASSWORD).await;
    assert_eq!(other.status, 200, "{}", other.text);

    let trail = trail_after(&app, before).await;
    let mut expected: Vec<Row> = attempts
        .iter()
        .map(|a| {
            let (event, outcome, reason) = match (a.n.div_ceil(2) <= FAILED_PER_KEY, a.user_id) {
                (true, Some(_)) => ("login", "failure", "wrong_password"),
                (true, None) => ("login", "failure", "unknown_account"),
                (false, _) => ("rate_limit", "blocked", "login_failed"),
            };
            row(
                event,
                outcome,
                Some(reason),
                a.user_id,
                &a.ip,
                ATTACKER_AGENT,
            )
        })
        .collect();
    expected.push(row(
        "login",
        "success",
        None,
        Some(bystander),
        "198.51.100.1",
        OWNER_AGENT,
    ));
    let actual: Vec<Row> = trail.iter().map(as_row).collect();
    assert_eq!(actual, expected);
    let mut typed: Vec<&str> = LEAKED.to_vec();
    typed.extend([PASSWORD, FAKE]);
    assert_trail_keeps_nothing_typed(&trail, &typed);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n=== distributed credential stuffing ({}) ===",
        label(&backend, store)
    );
    let _ = writeln!(
        out,
        "{} attempts, each from its own IP (198.51.100.1-{}): {} x 400, {} x 429",
        attempts.len(),
        attempts.len(),
        attempts.iter().filter(|a| a.reply.status == 400).count(),
        attempts.iter().filter(|a| a.reply.status == 429).count(),
    );
    for (email, what) in [(REAL, "account"), (FAKE, "no account")] {
        let (n, k) = first_throttled(&attempts, email).unwrap();
        let _ = writeln!(
            out,
            "  {email:<18} ({what:<10}): {}   first 429: attempt {n} (its try {k}, login_failed 5/300s/key)",
            timeline(&attempts, email)
        );
    }
    let waits: Vec<String> = attempts
        .iter()
        .filter_map(|a| retry_after(&a.reply))
        .map(|w| w.to_string())
        .collect();
    let _ = writeln!(
        out,
        "  (* the victim's real password, from fresh IP {}: 429) answers identical at every step; Retry-After: {}",
        refused_right.ip,
        waits.join(", ")
    );
    let _ = writeln!(
        out,
        "bystander@example.com from 198.51.100.1 with its password: {}",
        other.status
    );
    let _ = writeln!(
        out,
        "audit: {} login failure (wrong_password, user {victim}), {} (unknown_account, no user), {} rate_limit blocked (login_failed) from {} IPs",
        count_rows(&trail, "login", "failure", "wrong_password"),
        count_rows(&trail, "login", "failure", "unknown_account"),
        count_rows(&trail, "rate_limit", "blocked", "login_failed"),
        trail
            .iter()
            .filter(|m| m.event == "rate_limit")
            .filter_map(|m| m.ip.as_deref())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    );
    println!("{out}");
}

async fn a_parallel_burst_gets_exactly_the_allowed_guesses(backend: Backend) {
    parallel_burst(backend, RateLimitStore::Memory).await
}

async fn a_parallel_burst_gets_exactly_the_allowed_guesses_with_database_counters(
    backend: Backend,
) {
    parallel_burst(backend, RateLimitStore::Database).await
}

/// A stuffing script that fires its guesses all at once: the failed-login limits still let
/// exactly their amount through (each attempt reserves its slot before the password check).
async fn parallel_burst(backend: Backend, store: RateLimitStore) {
    const BURST: usize = 30;
    let label = label(&backend, store);
    let app = TestApp::spawn_with(backend, |c| configure(c, store)).await;
    app.register("victim@example.com").await;
    crate::support::clear_of_window_end(60, 20).await;

    // At one account from as many addresses: 5 guesses per 300 s, however they arrive.
    let per_account = futures_util::future::join_all((1..=BURST).map(|i| {
        let ip = format!("198.51.100.{i}");
        let app = &app;
        async move {
            login_from(
                app,
                &ip,
                ATTACKER_AGENT,
                "victim@example.com",
                LEAKED[i % 7],
            )
            .await
        }
    }))
    .await;
    let guessed = per_account.iter().filter(|r| r.status == 400).count();
    let throttled = per_account.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (guessed, throttled),
        (FAILED_PER_KEY, BURST - FAILED_PER_KEY)
    );

    // From one address at as many accounts: 10 guesses per minute.
    let per_ip =
        futures_util::future::join_all(
            (1..=BURST).map(|i| {
                let email = format!("target{i}@example.com");
                let app = &app;
                async move {
                    login_from(app, "203.0.113.99", ATTACKER_AGENT, &email, LEAKED[i % 7]).await
                }
            }),
        )
        .await;
    let guessed_ip = per_ip.iter().filter(|r| r.status == 400).count();
    let throttled_ip = per_ip.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (guessed_ip, throttled_ip),
        (FAILED_PER_IP, BURST - FAILED_PER_IP)
    );
    println!(
        "=== parallel burst ({label}) ===\n{BURST} guesses at once at one account from {BURST} \
         IPs: {guessed} x 400, {throttled} x 429\n{BURST} guesses at once from one IP at {BURST} \
         accounts: {guessed_ip} x 400, {throttled_ip} x 429"
    );
}
