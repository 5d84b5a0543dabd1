//! The email journeys through a real SMTP server (aiosmtpd), and the outbox's promises: an
//! SMTP server that is down, silent or answering 4xx never fails a request and loses no mail;
//! delivery resumes when it comes back; the worker gives up after
//! `email.give_up_after_seconds` saying why; several instances on one database send each
//! message once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use entity::outbox_message;
use futures_util::future::join_all;
use sea_orm::DatabaseConnection;
use serde_json::json;
use tessera::Config;
use tessera::config::EmailBackend;

use crate::support::mail::{ReceivedMail, key_from, outbox_rows, uid_and_token};
use crate::support::smtp::SmtpSink;
use crate::support::{
    Backend, PASSWORD, Reply, TestApp, TestDb, confirm_reset, free_port, test_config,
};

on_each_backend!(
    verification_journey_over_smtp,
    reset_journey_over_smtp,
    smtp_down_at_signup_then_back_delivers_once,
    a_silent_server_holds_up_neither_requests_nor_mail,
    a_4xx_reply_is_retried_until_a_server_accepts,
    the_worker_gives_up_after_the_configured_time,
    two_instances_on_one_database_send_each_message_once,
);

const VERIFY_PREFIX: &str = "https://app.example.com/confirm-email/";
const RESET_PREFIX: &str = "https://app.example.com/reset/";
const NEW_PASSWORD: &str = "a completely different passphrase";
/// How long the outbox may take to notice a change of server (retries are 0.2 s..1 s here).
const PATIENCE: Duration = Duration::from_secs(30);

fn smtp_settings(config: &mut Config, smtp_url: &str) {
    config.email.backend = EmailBackend::Smtp;
    config.email.smtp_url = smtp_url.to_owned();
    config.email.smtp_timeout_seconds = 2;
    config.email.from = "Tessera <no-reply@example.com>".parse().unwrap();
    config.public_url = "https://accounts.example.com".parse().unwrap();
    config.frontend.verify_email_url = Some(format!("{VERIFY_PREFIX}{{key}}/"));
    config.frontend.password_reset_url = Some(format!("{RESET_PREFIX}{{uid}}/{{token}}/"));
}

async fn smtp_app(
    backend: Backend,
    smtp_url: &str,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        smtp_settings(config, smtp_url);
        configure(config);
    })
    .await
}

async fn register(app: &TestApp, email: &str) -> Reply {
    let reply = app
        .post(
            "registration/",
            json!({"email": email, "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201, "registration failed: {}", reply.text);
    reply
}

fn message_id(mail: &ReceivedMail) -> String {
    mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .expect("a parseable message")
        .message_id()
        .expect("a Message-ID header")
        .to_owned()
}

/// Polls the outbox until `done` holds for its rows; panics with `what` and the rows otherwise.
async fn wait_for_rows(
    db: &DatabaseConnection,
    what: &str,
    done: impl Fn(&[outbox_message::Model]) -> bool,
) -> Vec<outbox_message::Model> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = outbox_rows(db).await;
        if done(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "{what}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_sent(rows: &[outbox_message::Model]) -> bool {
    !rows.is_empty() && rows.iter().all(|r| r.sent_at.is_some())
}

/// For `window`, checks that the sink never holds more than `count` messages (a duplicate sent
/// by a worker that had not finished yet would show up here).
async fn assert_stays_at(sink: &SmtpSink, count: usize, window: Duration) {
    let end = Instant::now() + window;
    while Instant::now() < end {
        let got = sink.messages();
        assert_eq!(
            got.len(),
            count,
            "{:?}",
            got.iter().map(|m| (&m.to, &m.subject)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn verification_journey_over_smtp(backend: Backend) {
    let sink = SmtpSink::start();
    let app = smtp_app(backend, &sink.url(), |config| {
        config.email.site_name = "Tessera Café".parse().unwrap();
        config.email.subject_prefix = "[Tessera ☕] ".parse().unwrap();
    })
    .await;
    let reply = app
        .post(
            "registration/",
            json!({"email": "zoe@example.com", "username": "zoë", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);

    let messages = sink.wait_for(1, PATIENCE).await;
    let mail = &messages[0];
    assert_eq!(mail.to, ["zoe@example.com"]);
    assert_eq!(mail.from, "no-reply@example.com");
    assert_eq!(
        mail.subject,
        "[Tessera ☕] Please confirm your email address"
    );
    assert_eq!(mail.content_type, "multipart/alternative");
    assert!(
        mail.text.contains(
            "because user zoë has given your email address to register an account on Tessera Café."
        ),
        "{}",
        mail.text
    );
    assert!(
        mail.html.contains("<strong>zoë</strong>")
            && mail.html.contains("Hello from Tessera Café!"),
        "{}",
        mail.html
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .unwrap();
    use mail_parser::MimeHeaders;
    let types: Vec<String> = parsed
        .parts
        .iter()
        .filter_map(|part| part.content_type())
        .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
        .collect();
    assert_eq!(types, ["multipart/alternative", "text/plain", "text/html"]);
    message_id(mail);

    let key = key_from(&mail.link(VERIFY_PREFIX), VERIFY_PREFIX);
    let verified = app
        .post("registration/verify-email/", json!({"key": key}))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.body, json!({"detail": "ok"}));

    let row = &wait_for_rows(&app.db, "the row is marked sent", all_sent).await[0];
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error.is_none() && row.failed_at.is_none(),
        "{row:?}"
    );
    assert_eq!(sink.messages().len(), 1);
}

async fn reset_journey_over_smtp(backend: Backend) {
    let sink = SmtpSink::start();
    let app = smtp_app(backend, &sink.url(), |config| {
        config.account.email_verification = tessera::config::EmailVerification::None;
    })
    .await;
    let token = register(&app, "ada@example.com").await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = app
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"detail": "Password reset e-mail has been sent."})
    );

    let reset = sink.wait_for(1, PATIENCE).await.remove(0);
    assert_eq!(reset.to, ["ada@example.com"]);
    assert_eq!(reset.subject, "[Tessera] Password reset");
    assert_eq!(reset.content_type, "multipart/alternative");
    let (uid, reset_token) = uid_and_token(&reset.link(RESET_PREFIX), RESET_PREFIX);
    let done = confirm_reset(&app, &uid, &reset_token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(
        done.body,
        json!({"detail": "Password has been reset with the new password."})
    );
    assert_eq!(app.get("user/", Some(&token)).await.status, 401);
    app.login_key("ada@example.com", NEW_PASSWORD).await;

    let messages = sink.wait_for(2, PATIENCE).await;
    assert_eq!(messages[1].to, ["ada@example.com"]);
    assert_eq!(
        messages[1].subject,
        "[Tessera] Your password has been changed"
    );
    assert!(!messages[1].text.is_empty() && !messages[1].html.is_empty());
    wait_for_rows(&app.db, "both rows sent", |rows| {
        rows.len() == 2 && all_sent(rows)
    })
    .await;
    assert_eq!(sink.messages().len(), 2);
}

async fn smtp_down_at_signup_then_back_delivers_once(backend: Backend) {
    let port = free_port();
    let app = smtp_app(backend, &format!("smtp://127.0.0.1:{port}"), |_| {}).await;

    // Nothing listens: the request succeeds all the same, and so do the other mailing ones.
    register(&app, "ada@example.com").await;
    let reset = app
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);

    let failing = wait_for_rows(&app.db, "failed attempts are recorded", |rows| {
        rows.len() == 2
            && rows
                .iter()
                .all(|r| r.attempts >= 1 && r.last_error.as_deref().is_some_and(|e| !e.is_empty()))
    })
    .await;
    for row in &failing {
        assert!(row.sent_at.is_none() && row.failed_at.is_none(), "{row:?}");
    }

    let sink = SmtpSink::start_on(port);
    let messages = sink.wait_for(2, PATIENCE).await;
    let mut subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        [
            "[Tessera] Password reset",
            "[Tessera] Please confirm your email address"
        ]
    );
    wait_for_rows(&app.db, "both rows sent", all_sent).await;
    assert_stays_at(&sink, 2, Duration::from_secs(1)).await;

    // What was queued while the server was down still works.
    let confirmation = messages
        .iter()
        .find(|m| m.subject.contains("confirm"))
        .unwrap();
    let key = key_from(&confirmation.link(VERIFY_PREFIX), VERIFY_PREFIX);
    let verified = app
        .post("registration/verify-email/", json!({"key": key}))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
}

async fn a_silent_server_holds_up_neither_requests_nor_mail(backend: Backend) {
    // Accepts connections and never says a word (no SMTP greeting).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let app = smtp_app(backend, &format!("smtp://127.0.0.1:{port}"), |_| {}).await;

    register(&app, "ada@example.com").await;
    let reset = app
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    wait_for_rows(&app.db, "a timed-out attempt is recorded", |rows| {
        rows.iter()
            .any(|r| r.attempts >= 1 && r.last_error.is_some())
    })
    .await;

    silent.abort();
    let _ = silent.await; // the listener and its connections are closed
    let sink = SmtpSink::start_on(port);
    sink.wait_for(2, PATIENCE).await;
    wait_for_rows(&app.db, "both rows sent", |rows| {
        rows.len() == 2 && all_sent(rows)
    })
    .await;
    assert_stays_at(&sink, 2, Duration::from_secs(1)).await;
}

async fn a_4xx_reply_is_retried_until_a_server_accepts(backend: Backend) {
    let refusing = SmtpSink::start_with_reply("451 4.3.0 Try again later");
    let port = refusing.port;
    let app = smtp_app(backend, &refusing.url(), |_| {}).await;

    register(&app, "ada@example.com").await;
    let refused = wait_for_rows(&app.db, "the 451 is recorded", |rows| {
        rows.len() == 1
            && rows[0].attempts >= 1
            && rows[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("451"))
    })
    .await;
    assert!(
        refused[0].sent_at.is_none() && refused[0].failed_at.is_none(),
        "{:?}",
        refused[0]
    );
    assert!(refusing.messages().is_empty());

    refusing.stop();
    let sink = SmtpSink::start_on(port);
    let messages = sink.wait_for(1, PATIENCE).await;
    assert_eq!(messages[0].to, ["ada@example.com"]);
    let sent = wait_for_rows(&app.db, "the row is sent", all_sent).await;
    assert!(sent[0].attempts >= 2, "{:?}", sent[0]);
    assert_stays_at(&sink, 1, Duration::from_secs(1)).await;
}

async fn the_worker_gives_up_after_the_configured_time(backend: Backend) {
    let port = free_port();
    let app = smtp_app(backend, &format!("smtp://127.0.0.1:{port}"), |config| {
        config.email.give_up_after_seconds = 1;
    })
    .await;
    register(&app, "ada@example.com").await;

    let given_up = wait_for_rows(&app.db, "the message is given up", |rows| {
        rows.len() == 1 && rows[0].failed_at.is_some()
    })
    .await;
    let row = given_up[0].clone();
    assert!(row.sent_at.is_none(), "{row:?}");
    assert!(row.attempts >= 1, "{row:?}");
    let error = row.last_error.clone().expect("why it gave up");
    assert!(error.contains("gave up"), "{error}");

    // With a server back, new mail goes out, but the given-up message is not tried again.
    let sink = SmtpSink::start_on(port);
    let reset = app
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let messages = sink.wait_for(1, PATIENCE).await;
    assert_eq!(messages[0].subject, "[Tessera] Password reset");
    wait_for_rows(&app.db, "the reset is sent", |rows| {
        rows.len() == 2 && rows[1].sent_at.is_some()
    })
    .await;
    // Longer than the longest retry delay (1 s here).
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        let now = app.outbox_rows().await;
        assert_eq!(now[0], row, "a given-up message stays as it was");
        assert_eq!(sink.messages().len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One more instance of the application over an existing database, with its own mail worker.
struct Instance {
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Instance {
    async fn start(config: Config) -> Self {
        let app = tessera::App::build(config).await.expect("the app builds");
        let (addr, server) = app.spawn().await.expect("the app listens");
        Self {
            base: format!("http://{addr}/auth/"),
            server,
        }
    }
}

async fn two_instances_on_one_database_send_each_message_once(backend: Backend) {
    const COUNT: usize = 20;
    crate::support::init_tracing();
    let sink = SmtpSink::start();
    let database = TestDb::create(&backend).await;
    let mut config = test_config(&database);
    smtp_settings(&mut config, &sink.url());
    let instances = [
        Instance::start(config.clone()).await,
        Instance::start(config.clone()).await,
    ];
    let db = tessera::store::connect(&database.url, 2, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let client = crate::support::http_client();

    let emails: Vec<String> = (0..COUNT).map(|n| format!("user{n}@example.com")).collect();
    let signups = emails.iter().enumerate().map(|(n, email)| {
        let url = format!("{}registration/", instances[n % 2].base);
        let client = client.clone();
        async move {
            let response = client
                .post(url)
                .json(&json!({"email": email, "password1": PASSWORD, "password2": PASSWORD}))
                .send()
                .await
                .unwrap();
            Reply::from(response).await
        }
    });
    for reply in join_all(signups).await {
        assert_eq!(reply.status, 201, "{}", reply.text);
    }

    sink.wait_for(COUNT, Duration::from_secs(60)).await;
    let sent = wait_for_rows(&db, "every row sent", |rows| {
        rows.len() == COUNT && all_sent(rows)
    })
    .await;
    assert!(sent.iter().all(|r| r.failed_at.is_none()), "{sent:?}");
    assert_stays_at(&sink, COUNT, Duration::from_secs(2)).await;

    let messages = sink.messages();
    let ids: HashSet<String> = messages.iter().map(message_id).collect();
    assert_eq!(ids.len(), COUNT, "distinct Message-IDs");
    let recipients: HashSet<String> = messages.iter().flat_map(|m| m.to.clone()).collect();
    let expected: HashSet<String> = emails.into_iter().collect();
    assert_eq!(recipients, expected, "one message per new account");
    drop(instances);
}
