//! Prometheus metrics: after a scripted journey, the counters at `/metrics` moved by exactly
//! what the journey did, and no label carries a user, an address or a credential. Each app has
//! its own registry, so the counts are this test's alone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Backend, PASSWORD, TestApp, free_port};

on_each_backend!(
    a_scripted_journey_moves_the_counters_by_what_it_did,
    metrics_can_have_a_listener_of_their_own_or_none,
);

/// `name{labels}` → value, from the text exposition.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(app: &TestApp) -> (String, BTreeMap<String, f64>) {
    let reply = app.send(app.client.get(app.url("/metrics"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "{:?}",
        reply.headers
    );
    let parsed = samples(&reply.text);
    (reply.text, parsed)
}

async fn a_scripted_journey_moves_the_counters_by_what_it_did(backend: Backend) {
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |config| {
        config.rate_limits.login = "3/m/ip".parse().unwrap();
    })
    .await;
    let email = "ada@example.com";
    // One registration, and one refused (the passwords differ).
    app.register(email).await;
    let refused = app
        .post(
            "registration/",
            json!({"email": "bob@example.com", "password1": PASSWORD, "password2": "other one"}),
        )
        .await;
    assert_eq!(refused.status, 400);
    // Two logins, one wrong password, then the limit (3 a minute) refuses the fourth.
    let key = app.login_key(email, PASSWORD).await;
    app.login_key(email, PASSWORD).await;
    assert_eq!(app.login(email, "wrong password").await.status, 400);
    assert_eq!(app.login(email, PASSWORD).await.status, 429);
    // Three reads of the user: the first loads the token, the next two come from the cache.
    for _ in 0..3 {
        assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    }
    assert_eq!(app.get("user/", None).await.status, 401);

    // The confirmation mail is delivered by the worker: wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (text, m) = loop {
        let (text, m) = scrape(&app).await;
        if m.get("tessera_outbox_deliveries_total") == Some(&1.0) || Instant::now() > deadline {
            break (text, m);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let value = |key: &str| {
        m.get(key)
            .copied()
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    let http = |operation: &str, method: &str, status: &str| {
        value(&format!(
            "tessera_http_requests_total{{operation=\"{operation}\",method=\"{method}\",status=\"{status}\"}}"
        ))
    };
    assert_eq!(http("register", "POST", "2xx"), 1.0);
    assert_eq!(http("register", "POST", "4xx"), 1.0);
    assert_eq!(http("login", "POST", "2xx"), 2.0);
    assert_eq!(http("login", "POST", "4xx"), 2.0);
    assert_eq!(http("getUser", "GET", "2xx"), 3.0);
    assert_eq!(http("getUser", "GET", "4xx"), 1.0);
    assert_eq!(
        value("tessera_http_request_duration_seconds_count{operation=\"getUser\"}"),
        4.0
    );
    assert_eq!(value("tessera_registrations_total"), 1.0);
    assert_eq!(
        value("tessera_logins_total{outcome=\"success\",reason=\"\"}"),
        2.0
    );
    assert_eq!(
        value("tessera_logins_total{outcome=\"failure\",reason=\"wrong_password\"}"),
        1.0
    );
    assert_eq!(
        value("tessera_rate_limit_refusals_total{action=\"login\"}"),
        1.0
    );
    assert_eq!(value("tessera_credential_cache_misses_total"), 1.0);
    assert_eq!(value("tessera_credential_cache_hits_total"), 2.0);
    assert_eq!(value("tessera_credential_cache_evictions_total"), 0.0);
    assert_eq!(value("tessera_outbox_deliveries_total"), 1.0);
    assert_eq!(value("tessera_outbox_pending"), 0.0);
    // Every hash and verification went through the permits; none is left in flight.
    assert!(value("tessera_password_hash_wait_seconds_count") >= 4.0);
    assert_eq!(value("tessera_password_hashes_in_flight"), 0.0);
    assert_eq!(value("tessera_password_hashes_waiting"), 0.0);
    assert!(value("tessera_db_pool_connections") >= 1.0);
    assert_eq!(
        value(&format!(
            "tessera_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    for secret in [email, "127.0.0.1", key.as_str(), PASSWORD] {
        assert!(!text.contains(secret), "{secret} appears in the metrics");
    }
    // Scraping is not counted as an API operation.
    assert!(!text.contains("operation=\"metrics\""));
}

async fn metrics_can_have_a_listener_of_their_own_or_none(backend: Backend) {
    let port = free_port();
    let private = TestApp::spawn_with(backend.clone(), |config| {
        config.metrics.bind = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    let public = private
        .send(private.client.get(private.url("/metrics")))
        .await;
    assert_eq!(public.status, 404, "not on the public listener");
    let own = private
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("tessera_build_info"));

    let off = TestApp::spawn_with(backend, |config| config.metrics.enabled = false).await;
    let reply = off.send(off.client.get(off.url("/metrics"))).await;
    assert_eq!(reply.status, 404);
}
