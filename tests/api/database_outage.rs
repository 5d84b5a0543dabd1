//! The database goes away and comes back (issue 14, item 3): requests that need it get DRF's
//! 503 with `Retry-After` within `database.acquire_timeout_seconds` (never a 500, never a
//! hang), readiness says so while liveness does not, and the instance recovers by itself: no
//! restart, no lost mail, no half-written account.
//!
//! PostgreSQL is reached through a TCP proxy the test cuts and restores; SQLite's files are
//! made immutable (`chattr +i`, which refuses writes even through descriptors already open),
//! as a failing or read-only disk would.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use tessera::store::outbox::NewMessage;

use crate::support::mail::outbox_rows;
use crate::support::tcp_proxy::TcpProxy;
use crate::support::{
    Backend, PASSWORD, Reply, TestApp, TestDb, credentials, init_tracing, signup_body, test_config,
};

/// `database.acquire_timeout_seconds` in these tests.
const ACQUIRE_TIMEOUT: u64 = 2;
/// The longest an answer may take while the database is away: the acquire timeout, plus
/// slack for a busy CI machine. A hang (a connect with no timeout) takes far longer.
const LONGEST_ANSWER: Duration = Duration::from_secs(ACQUIRE_TIMEOUT + 3);

mod postgres {
    test_support::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_cut_connection_is_503_and_the_instance_recovers_by_itself() {
            super::postgres_cut_and_restored().await
        }
    }
}

async fn postgres_cut_and_restored() {
    init_tracing();
    let database = TestDb::create(&Backend::Postgres).await;
    let server = postgres_address(&database.url);
    let proxy = TcpProxy::start(server).await;
    let mut config = test_config(&database);
    config.database.url = database
        .url
        .replacen(&server.to_string(), &proxy.address.to_string(), 1);
    config.database.acquire_timeout_seconds = ACQUIRE_TIMEOUT;
    // `app.db` (what the test inspects) connects directly, around the proxy.
    let app = TestApp::start(database, config).await;
    let key = app.register("ada@example.com").await;
    let mail_before = app.delivered(1).await.len();

    proxy.cut();
    every_database_request_is_503(&app).await;
    let ready = timed(app.send(app.client.get(app.url("/health/ready")))).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.body["database"], "unavailable");
    let live = app.send(app.client.get(app.url("/health/live"))).await;
    assert_eq!(live.status, 200, "{}", live.text);

    // Another instance, which still reaches the database, queues a message meanwhile: this
    // one cannot deliver it while cut off, and must once the database is back.
    tessera::store::outbox::enqueue(
        &app.db,
        NewMessage {
            kind: "notice",
            recipient: "carol@example.com",
            subject: "Queued during the outage",
            text_body: "Delivered after it.",
            html_body: "<p>Delivered after it.</p>",
        },
        Utc::now(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let queued = outbox_rows(&app.db).await;
    assert!(
        queued.last().unwrap().sent_at.is_none(),
        "the proxy was cut, yet the message was delivered"
    );

    proxy.restore();
    recovers_by_itself(&app, &key, mail_before + 1).await;
    let delivered = app.sent_mail();
    assert_eq!(
        delivered
            .iter()
            .filter(|mail| mail.subject == "Queued during the outage")
            .count(),
        1,
        "the message queued during the outage is delivered once"
    );
}

/// Makes files immutable until dropped (also when the test fails, so its directory can go).
struct Immutable(Vec<PathBuf>);

impl Immutable {
    /// `None` when this machine cannot (`chattr` missing, not root, a file system without
    /// the flag).
    fn set(paths: Vec<PathBuf>) -> Option<Self> {
        let done = Command::new("chattr")
            .arg("+i")
            .args(&paths)
            .status()
            .is_ok_and(|status| status.success());
        done.then_some(Self(paths))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_file_that_becomes_unwritable_is_503_until_it_is_writable_again() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.database.acquire_timeout_seconds = ACQUIRE_TIMEOUT;
    })
    .await;
    let key = app.register("ada@example.com").await;
    let mail_before = app.delivered(1).await.len();
    let file = app.config.sqlite_path().expect("an SQLite database file");
    let wal = PathBuf::from(format!("{}-wal", file.display()));
    let Some(immutable) = Immutable::set(vec![file, wal]) else {
        let ci = std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1");
        assert!(!ci, "chattr +i must work under CI (run as root on ext4)");
        eprintln!("skipped: chattr +i is not possible here (needs root and ext2/3/4)");
        return;
    };

    every_database_request_is_503(&app).await;
    let ready = timed(app.send(app.client.get(app.url("/health/ready")))).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    let live = app.send(app.client.get(app.url("/health/live"))).await;
    assert_eq!(live.status, 200, "{}", live.text);
    // A read is served while a pooled connection can serve it, and is a 503 when it needs a
    // new one (a connection that cannot write is not pooled): never a 500.
    let read = timed(app.get("user/", Some(&key))).await;
    assert!(matches!(read.status, 200 | 503), "{}", read.text);

    drop(immutable);
    recovers_by_itself(&app, &key, mail_before).await;
}

/// `postgres://user@HOST:PORT/db` → `HOST:PORT`.
fn postgres_address(url: &str) -> std::net::SocketAddr {
    let authority = url
        .split_once('@')
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap();
    std::net::ToSocketAddrs::to_socket_addrs(authority)
        .unwrap()
        .next()
        .unwrap()
}

/// Awaits a request, failing if it took longer than [`LONGEST_ANSWER`].
async fn timed(request: impl Future<Output = Reply>) -> Reply {
    let started = Instant::now();
    let reply = request.await;
    assert!(
        started.elapsed() <= LONGEST_ANSWER,
        "answered after {:?}, more than the acquire timeout allows",
        started.elapsed()
    );
    reply
}

/// Signup, login and a password reset (each writes) get DRF's 503 with `Retry-After`, and
/// leave nothing behind: `bob` does not exist afterwards.
async fn every_database_request_is_503(app: &TestApp) {
    let requests = [
        ("registration/", signup_body("bob@example.com", PASSWORD)),
        ("login/", credentials("ada@example.com", PASSWORD)),
        ("password/reset/", json!({"email": "ada@example.com"})),
    ];
    for (path, body) in requests {
        let reply = timed(app.post(path, body)).await;
        assert_eq!(reply.status, 503, "{path}: {}", reply.text);
        assert_eq!(
            reply.body,
            json!({"detail": "Service temporarily unavailable, try again later."}),
            "{path}"
        );
        assert_eq!(reply.header("retry-after"), Some("5"), "{path}");
    }
}

/// Once the database is back: ready again without a restart, the old credential still
/// works, nothing of the refused signup exists (so it succeeds now), and mail flows: the
/// queued messages (`mail_before` of them) and a new password reset each delivered once.
async fn recovers_by_itself(app: &TestApp, key: &str, mail_before: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = app.send(app.client.get(app.url("/health/ready"))).await;
        if ready.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready 20 s after the database came back: {}",
            ready.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bob_rows = outbox_rows(&app.db)
        .await
        .into_iter()
        .filter(|row| row.recipient == "bob@example.com")
        .count();
    assert_eq!(bob_rows, 0, "the refused signup queued mail");
    let signup = app
        .post("registration/", signup_body("bob@example.com", PASSWORD))
        .await;
    assert_eq!(signup.status, 201, "{}", signup.text);
    assert_eq!(app.get("user/", Some(key)).await.status, 200);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        200,
        "login works again"
    );
    let reset = app
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    // Bob's confirmation and Ada's reset, after what was queued before.
    let mail = app.delivered(mail_before + 2).await;
    assert_eq!(mail.len(), mail_before + 2, "no message lost or sent twice");
    let to_ada_reset = mail
        .iter()
        .filter(|mail| mail.to == ["ada@example.com"] && mail.subject.contains("Password reset"))
        .count();
    assert_eq!(to_ada_reset, 1, "one reset mail: the one asked for after");
}
