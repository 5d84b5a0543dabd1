//! The development inbox (`email.backend = "inbox"`): messages at `/_inbox/`, escaped, their
//! links clickable in a real browser and working; refused at startup off loopback.

use serde_json::json;
use tessera::Config;
use tessera::config::EmailBackend;

use crate::support::browser;
use crate::support::mail::key_from;
use crate::support::{Backend, TestApp};

const VERIFY_PREFIX: &str = "http://127.0.0.1:8000/verify-email/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_shows_messages_with_links_that_work() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.email.backend = EmailBackend::Inbox;
        config.email.site_name = "<i>Acme</i>".into();
    })
    .await;
    let empty = app.send(app.client.get(app.url("/_inbox/"))).await;
    assert_eq!(empty.status, 200);
    assert!(empty.text.contains("No messages yet."), "{}", empty.text);

    app.register("ada@example.com").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let list = loop {
        let list = app.send(app.client.get(app.url("/_inbox/"))).await;
        if list.text.contains("/_inbox/1") {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "{}", list.text);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(list.text.contains("ada@example.com"), "{}", list.text);
    assert!(
        list.text.contains("Please confirm your email address"),
        "{}",
        list.text
    );
    // What a message says is escaped, never markup.
    assert!(list.text.contains("&lt;i&gt;Acme&lt;"), "{}", list.text);
    assert!(!list.text.contains("<i>"), "{}", list.text);

    // In a browser, the confirmation link is a link; following its key confirms the address.
    let url = app.url("/_inbox/1");
    let page = tokio::task::spawn_blocking(move || browser::render(&url))
        .await
        .unwrap();
    let start = page
        .dom
        .find(&format!("<a href=\"{VERIFY_PREFIX}"))
        .unwrap_or_else(|| panic!("no link in:\n{}", page.dom));
    let href = &page.dom[start + "<a href=\"".len()..];
    let link = &href[..href.find('"').unwrap()];
    let confirmed = app
        .post(
            "registration/verify-email/",
            json!({"key": key_from(link, VERIFY_PREFIX)}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    let missing = app.send(app.client.get(app.url("/_inbox/999"))).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_inbox_backend_there_is_no_inbox() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let reply = app.send(app.client.get(app.url("/_inbox/"))).await;
    assert_eq!(reply.status, 404);
}

#[test]
fn the_inbox_is_refused_off_loopback() {
    let vars = |bind: &str| {
        vec![
            ("TESSERA_EMAIL__BACKEND".to_owned(), "inbox".to_owned()),
            ("TESSERA_BIND".to_owned(), bind.to_owned()),
        ]
    };
    let err = Config::load(None, vars("0.0.0.0:8000"))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("inbox") && err.contains("loopback"), "{err}");
    assert!(Config::load(None, vars("127.0.0.1:8000")).is_ok());
    assert!(Config::load(None, vars("localhost:8000")).is_ok());
}
