//! Rate limits (allauth's ACCOUNT_RATE_LIMITS): 429 with DRF's message and Retry-After, per IP,
//! per address (identically for unknown addresses) and per user; counters cleared on success
//! and reset; shared through the database; client IPs from trusted proxies only.

use serde_json::json;
use tessera::config::{Config, LoginMethod, RateLimitStore};

use crate::support::mail::uid_and_token;
use crate::support::{Backend, PASSWORD, Reply, TestApp, TestDb, confirm_reset};

on_each_backend!(
    login_is_limited_per_ip_with_drf_message_and_retry_after,
    failed_logins_are_limited_per_address_alike_for_unknown_ones,
    success_and_reset_clear_the_failed_login_count,
    signup_reset_and_password_change_are_limited,
    disabled_or_empty_rules_do_not_limit,
    database_counters_survive_a_restart_memory_ones_do_not,
    forwarded_for_is_believed_only_from_trusted_proxies,
    rotating_ipv6_addresses_inside_a_64_share_one_budget,
    username_logins_are_limited_per_account_whatever_email_is_sent,
    every_way_of_naming_an_account_shares_one_budget,
    a_flood_of_refusals_writes_nothing_per_request,
);

fn limits(config: &mut Config, edit: impl FnOnce(&mut tessera::config::RateLimitsConfig)) {
    config.rate_limits = Default::default();
    config.rate_limits.enabled = true;
    edit(&mut config.rate_limits);
}

fn assert_throttled(reply: &Reply) -> u64 {
    assert_eq!(reply.status, 429, "{}", reply.text);
    let wait: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    assert_eq!(
        reply.body,
        json!({"detail": format!("Request was throttled. Expected available in {wait} seconds.")})
    );
    wait
}

/// Refusing is the cheapest answer: a flood of refused requests (each naming another
/// address) makes one audit entry, and, with database counters, no counter rows and no writes
/// after the first refusal.
async fn a_flood_of_refusals_writes_nothing_per_request(backend: Backend) {
    crate::support::clear_of_window_end(60, 20).await;
    for store in [RateLimitStore::Memory, RateLimitStore::Database] {
        let app = TestApp::spawn_with(backend.clone(), |c| {
            limits(c, |l| {
                l.store = store;
                l.reset_password = "2/m/ip".parse().unwrap();
            })
        })
        .await;
        let reset = |n: usize| {
            app.post(
                "password/reset/",
                json!({"email": format!("victim{n}@example.com")}),
            )
        };
        for n in 0..2 {
            assert_eq!(reset(n).await.status, 200);
        }
        assert_throttled(&reset(2).await);
        let count = |sql: &'static str| scalar(&app.db, sql);
        // Rows and their total count, in one number.
        let counters =
            "SELECT COUNT(*) * 1000000 + COALESCE(SUM(count), 0) FROM rate_limit_counters";
        let counters_before = count(counters).await;
        for n in 3..103 {
            assert_throttled(&reset(n).await);
        }
        let refusals = count(
            "SELECT COUNT(*) FROM audit_events WHERE event = 'rate_limit' AND outcome = 'blocked'",
        )
        .await;
        assert_eq!(
            refusals, 1,
            "{store:?}: one audit entry for the whole flood"
        );
        assert_eq!(count(counters).await, counters_before, "{store:?}");
    }
}

/// The one number a query answers.
async fn scalar(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let statement = Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(statement).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn login_is_limited_per_ip_with_drf_message_and_retry_after(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |c| {
        limits(c, |l| l.login = "3/m/ip".parse().unwrap())
    })
    .await;
    app.register("ip@example.com").await;
    for _ in 0..3 {
        assert_eq!(app.login("ip@example.com", PASSWORD).await.status, 200);
    }
    let wait = assert_throttled(&app.login("ip@example.com", PASSWORD).await);
    assert!(wait <= 60);
}

async fn failed_logins_are_limited_per_address_alike_for_unknown_ones(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |c| {
        limits(c, |l| {
            l.login = Default::default();
            l.login_failed = "100/m/ip,2/300s/key".parse().unwrap();
        })
    })
    .await;
    app.register("known@example.com").await;
    for email in ["known@example.com", "unknown@example.com"] {
        for _ in 0..2 {
            assert_eq!(app.login(email, "wrong password!").await.status, 400);
        }
        // Even the right password is refused now: the limit is checked before the password.
        let third = app.login(email, PASSWORD).await;
        assert_throttled(&third);
    }
    // Another address from the same IP is unaffected (the per-IP rule is generous here).
    app.register("other@example.com").await;
    assert_eq!(app.login("other@example.com", PASSWORD).await.status, 200);
    // Addresses are compared normalised.
    assert_throttled(&app.login("  KNOWN@example.com ", PASSWORD).await);
}

/// A login by username with a throw-away `email` beside it: the email is not what is checked
/// (`login_methods = ["username"]`), so it must not be what is counted either.
async fn username_logins_are_limited_per_account_whatever_email_is_sent(backend: Backend) {
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |c| {
        c.account.login_methods = vec![LoginMethod::Username];
        limits(c, |l| {
            l.login = Default::default();
            l.login_failed = "100/m/ip,3/300s/key".parse().unwrap();
        })
    })
    .await;
    app.register_with_username("linus@example.com", "linus")
        .await;
    let guess = |n: usize, password: &str| json!({"username": "linus", "email": format!("decoy{n}@example.com"), "password": password});
    for n in 0..3 {
        let reply = app.post("login/", guess(n, "wrong password!")).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
    }
    // The account is locked for this window, whatever fresh email rides along.
    assert_throttled(&app.post("login/", guess(3, PASSWORD)).await);
    assert_throttled(&app.post("login/", guess(4, "another guess")).await);
}

/// With email and username login both on, guesses by email and by username (in any case)
/// draw on the same per-account budget.
async fn every_way_of_naming_an_account_shares_one_budget(backend: Backend) {
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |c| {
        c.account.login_methods = vec![LoginMethod::Email, LoginMethod::Username];
        limits(c, |l| {
            l.login = Default::default();
            l.login_failed = "100/m/ip,3/300s/key".parse().unwrap();
        })
    })
    .await;
    app.register_with_username("ada@example.com", "Ada").await;
    let by_email = json!({"email": "ADA@example.com", "password": "wrong password!"});
    let by_username = json!({"username": "ada", "password": "wrong password!"});
    for body in [&by_email, &by_username, &by_email] {
        let reply = app.post("login/", body.clone()).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
    }
    let right = json!({"username": "ADA", "password": PASSWORD});
    assert_throttled(&app.post("login/", right).await);
    assert_throttled(&app.login("ada@example.com", PASSWORD).await);
}

async fn success_and_reset_clear_the_failed_login_count(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |c| {
        limits(c, |l| {
            l.login = Default::default();
            l.login_failed = "2/300s/key".parse().unwrap();
        })
    })
    .await;
    app.register("clear@example.com").await;
    assert_eq!(
        app.login("clear@example.com", "nope nope nope")
            .await
            .status,
        400
    );
    assert_eq!(app.login("clear@example.com", PASSWORD).await.status, 200);
    // The success cleared the count: two more failures fit before the limit.
    for _ in 0..2 {
        assert_eq!(
            app.login("clear@example.com", "nope nope nope")
                .await
                .status,
            400
        );
    }
    assert_throttled(&app.login("clear@example.com", PASSWORD).await);

    // A password reset also clears it.
    assert_eq!(
        app.post("password/reset/", json!({"email": "clear@example.com"}))
            .await
            .status,
        200
    );
    // The default link: `{public_url}/password-reset/confirm/{uid}/{token}/`.
    let prefix = format!("{}/password-reset/confirm/", app.config.public_base());
    let link = app.newest_link(2, &prefix).await; // confirmation + reset
    let (uid, token) = uid_and_token(&link, &prefix);
    let new_password = "a completely new passphrase";
    let confirm = confirm_reset(&app, &uid, &token, new_password, new_password).await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert_eq!(
        app.login("clear@example.com", new_password).await.status,
        200
    );
}

async fn signup_reset_and_password_change_are_limited(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend, |c| {
        limits(c, |l| {
            l.signup = "2/m/ip".parse().unwrap();
            l.reset_password = "100/m/ip,1/m/key".parse().unwrap();
            l.change_password = "1/m/user".parse().unwrap();
        })
    })
    .await;
    let key = app.register("s1@example.com").await;
    app.register("s2@example.com").await;
    let third = app
        .post(
            "registration/",
            json!({"email": "s3@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_throttled(&third);

    for email in ["s1@example.com", "nobody@example.com"] {
        assert_eq!(
            app.post("password/reset/", json!({"email": email}))
                .await
                .status,
            200
        );
        assert_throttled(&app.post("password/reset/", json!({"email": email})).await);
    }

    let change =
        json!({"new_password1": "brand new passphrase", "new_password2": "brand new passphrase"});
    assert_eq!(
        app.post_with_token("password/change/", &key, change.clone())
            .await
            .status,
        200
    );
    assert_throttled(&app.post_with_token("password/change/", &key, change).await);
}

async fn disabled_or_empty_rules_do_not_limit(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let off = TestApp::spawn_with(backend.clone(), |c| {
        limits(c, |l| {
            l.enabled = false;
            l.login = "1/m/ip".parse().unwrap();
        })
    })
    .await;
    off.register("off@example.com").await;
    for _ in 0..3 {
        assert_eq!(off.login("off@example.com", PASSWORD).await.status, 200);
    }
    let empty = TestApp::spawn_with(backend, |c| limits(c, |l| l.login = Default::default())).await;
    empty.register("empty@example.com").await;
    for _ in 0..3 {
        assert_eq!(empty.login("empty@example.com", PASSWORD).await.status, 200);
    }
}

async fn database_counters_survive_a_restart_memory_ones_do_not(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    for store in [RateLimitStore::Database, RateLimitStore::Memory] {
        let database = TestDb::create(&backend).await;
        let mut config = crate::support::test_config(&database);
        limits(&mut config, |l| {
            l.store = store;
            l.login = "2/m/ip".parse().unwrap();
        });
        let app = TestApp::start(database, config).await;
        app.register("restart@example.com").await;
        for _ in 0..2 {
            assert_eq!(app.login("restart@example.com", PASSWORD).await.status, 200);
        }
        let (database, config) = app.stop().await;
        // A new instance over the same database (as another instance would be).
        let again = TestApp::start(database, config).await;
        let reply = again.login("restart@example.com", PASSWORD).await;
        match store {
            RateLimitStore::Database => {
                assert_throttled(&reply);
            }
            RateLimitStore::Memory => assert_eq!(reply.status, 200, "{}", reply.text),
        }
    }
}

async fn login_as(app: &TestApp, client: &str) -> Reply {
    let request = app
        .client
        .post(app.api("login/"))
        .header("X-Forwarded-For", client)
        .json(&json!({"email": "proxy@example.com", "password": PASSWORD}));
    app.send(request).await
}

async fn forwarded_for_is_believed_only_from_trusted_proxies(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(60, 10).await;
    let trusting = TestApp::spawn_with(backend.clone(), |c| {
        limits(c, |l| l.login = "1/m/ip".parse().unwrap());
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    trusting.register("proxy@example.com").await;
    assert_eq!(login_as(&trusting, "198.51.100.1").await.status, 200);
    assert_throttled(&login_as(&trusting, "198.51.100.1").await);
    // Another client behind the same proxy has its own budget.
    assert_eq!(login_as(&trusting, "198.51.100.2").await.status, 200);

    // Without trusted proxies the header is the client's own word and changes nothing.
    let plain = TestApp::spawn_with(backend, |c| {
        limits(c, |l| l.login = "1/m/ip".parse().unwrap())
    })
    .await;
    plain.register("proxy@example.com").await;
    assert_eq!(login_as(&plain, "198.51.100.1").await.status, 200);
    assert_throttled(&login_as(&plain, "198.51.100.2").await);
}

/// A host holds a whole IPv6 /64: rotating addresses inside it does not escape a per-IP limit,
/// while another /64 has its own budget, and `rate_limits.ipv6_prefix` sets the grouping.
async fn rotating_ipv6_addresses_inside_a_64_share_one_budget(backend: Backend) {
    crate::support::clear_of_window_end(60, 10).await;
    let app = TestApp::spawn_with(backend.clone(), |c| {
        limits(c, |l| l.login = "3/m/ip".parse().unwrap());
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    app.register("proxy@example.com").await;
    for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
        assert_eq!(login_as(&app, host).await.status, 200, "{host}");
    }
    assert_throttled(&login_as(&app, "2001:db8:1:2:abcd::1").await);
    // The neighbouring /64 is another client.
    assert_eq!(login_as(&app, "2001:db8:1:3::1").await.status, 200);

    // A /128 grouping counts each address apart.
    let exact = TestApp::spawn_with(backend, |c| {
        limits(c, |l| l.login = "1/m/ip".parse().unwrap());
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.rate_limits.ipv6_prefix = 128;
    })
    .await;
    exact.register("proxy@example.com").await;
    assert_eq!(login_as(&exact, "2001:db8:1:2::1").await.status, 200);
    assert_eq!(login_as(&exact, "2001:db8:1:2::2").await.status, 200);
    assert_throttled(&login_as(&exact, "2001:db8:1:2::2").await);
}
