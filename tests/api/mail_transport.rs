//! The mail transports against a real SMTP server (aiosmtpd) and the file system.

use std::time::{Duration, Instant};

use mail_parser::MimeHeaders;
use tessera::config::{EmailBackend, EmailConfig};
use tessera::mail::Rendered;
use tessera::mail::transport::Transport;

use crate::support::free_port;
use crate::support::mail::ReceivedMail;
use crate::support::smtp::SmtpSink;

const LINK: &str = "https://app.example.com/verify-email/k3y/";

fn rendered() -> Rendered {
    Rendered {
        subject: "[Tessera] Bienvenue à Tessera".into(),
        text: format!("Hello from Tessera! Café ☕\n\nTo confirm, go to {LINK}\n"),
        html: format!("<p>Hello from Tessera! Café ☕</p><p><a href=\"{LINK}\">Confirm</a></p>"),
    }
}

fn smtp_config(url: &str, timeout_seconds: u64) -> EmailConfig {
    EmailConfig {
        backend: EmailBackend::Smtp,
        smtp_url: url.to_owned(),
        smtp_timeout_seconds: timeout_seconds,
        ..EmailConfig::default()
    }
}

#[tokio::test]
async fn smtp_delivers_a_multipart_alternative_message() {
    let sink = SmtpSink::start();
    let transport = Transport::from_config(&smtp_config(&sink.url(), 10)).unwrap();
    assert_eq!(transport.describe(), sink.url());

    transport
        .send(
            "Tessera <no-reply@example.com>",
            "ada@example.com",
            &rendered(),
        )
        .await
        .unwrap();

    let messages = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    assert_eq!(mail.from, "no-reply@example.com");
    assert_eq!(mail.to, ["ada@example.com"]);
    assert_eq!(mail.subject, "[Tessera] Bienvenue à Tessera");
    assert_eq!(mail.content_type, "multipart/alternative");
    assert!(mail.text.contains("Café ☕"), "{}", mail.text);
    assert!(
        mail.html.contains(&format!("href=\"{LINK}\"")),
        "{}",
        mail.html
    );
    assert_eq!(mail.first_link().as_deref(), Some(LINK));

    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .unwrap();
    assert!(parsed.date().is_some(), "a Date header");
    assert!(parsed.message_id().is_some(), "a Message-ID header");
    let types: Vec<String> = parsed
        .parts
        .iter()
        .filter_map(|part| part.content_type())
        .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
        .collect();
    assert_eq!(types, ["multipart/alternative", "text/plain", "text/html"]);
}

#[tokio::test]
async fn concurrent_sends_all_arrive() {
    let sink = SmtpSink::start();
    let transport = Transport::from_config(&smtp_config(&sink.url(), 10)).unwrap();
    let sends = (0..5).map(|n| {
        let transport = transport.clone();
        async move {
            let to = format!("user{n}@example.com");
            transport
                .send("no-reply@example.com", &to, &rendered())
                .await
        }
    });
    for result in futures_util::future::join_all(sends).await {
        result.unwrap();
    }
    let mut to: Vec<String> = sink
        .wait_for(5, Duration::from_secs(10))
        .await
        .into_iter()
        .flat_map(|mail| mail.to)
        .collect();
    to.sort();
    assert_eq!(to.len(), 5);
    assert_eq!(to[0], "user0@example.com");
}

#[tokio::test]
async fn a_4xx_reply_is_a_transient_failure() {
    let sink = SmtpSink::start_with_reply("451 4.3.0 Try again later");
    let transport = Transport::from_config(&smtp_config(&sink.url(), 10)).unwrap();
    let err = transport
        .send("no-reply@example.com", "ada@example.com", &rendered())
        .await
        .unwrap_err();
    assert!(!err.permanent, "{err}");
    assert!(err.message.contains("451"), "{err}");
    assert!(!err.message.contains("Café"), "no body in errors: {err}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_5xx_reply_is_a_permanent_failure() {
    let sink = SmtpSink::start_with_reply("550 5.1.1 No such user");
    let transport = Transport::from_config(&smtp_config(&sink.url(), 10)).unwrap();
    let err = transport
        .send("no-reply@example.com", "ada@example.com", &rendered())
        .await
        .unwrap_err();
    assert!(err.permanent, "{err}");
    assert!(err.message.contains("550"), "{err}");
    assert!(err.message.contains("No such user"), "{err}");
}

#[tokio::test]
async fn nothing_listening_fails_fast() {
    let url = format!("smtp://127.0.0.1:{}", free_port());
    let transport = Transport::from_config(&smtp_config(&url, 5)).unwrap();
    let started = Instant::now();
    let err = transport
        .send("no-reply@example.com", "ada@example.com", &rendered())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!err.permanent, "{err}");
    assert!(err.message.contains(&url), "{err}");
    assert!(transport.check().await.is_err());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // The kernel completes the TCP handshake; nobody ever sends the SMTP greeting.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let transport = Transport::from_config(&smtp_config(&url, 1)).unwrap();

    let started = Instant::now();
    let err = transport
        .send("no-reply@example.com", "ada@example.com", &rendered())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!err.permanent, "{err}");
    assert!(err.message.contains("within 1 s"), "{err}");

    let started = Instant::now();
    assert!(transport.check().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn check_succeeds_against_a_server_and_fails_without_one() {
    let sink = SmtpSink::start();
    let port = sink.port;
    let transport = Transport::from_config(&smtp_config(&sink.url(), 5)).unwrap();
    transport.check().await.unwrap();

    sink.stop();
    let err = transport.check().await.unwrap_err();
    assert!(err.message.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn delivery_resumes_when_the_server_comes_back_on_the_same_port() {
    let sink = SmtpSink::start();
    let port = sink.port;
    let transport = Transport::from_config(&smtp_config(&sink.url(), 5)).unwrap();
    transport
        .send("no-reply@example.com", "ada@example.com", &rendered())
        .await
        .unwrap();
    sink.wait_for(1, Duration::from_secs(10)).await;

    sink.stop();
    assert!(
        transport
            .send("no-reply@example.com", "ada@example.com", &rendered())
            .await
            .is_err(),
        "nobody is listening"
    );

    let sink = SmtpSink::start_on(port);
    transport
        .send("no-reply@example.com", "bob@example.com", &rendered())
        .await
        .unwrap();
    let messages = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages[0].to, ["bob@example.com"]);
}

#[tokio::test]
async fn errors_never_contain_the_smtp_password() {
    let sink = SmtpSink::start();
    let closed = free_port();
    for url in [
        // The sink offers no AUTH, so logging in fails.
        format!("smtp://user:s3cret@127.0.0.1:{}", sink.port),
        format!("smtp://user:s3cret@127.0.0.1:{closed}"),
        format!("smtp://user:s3cret@127.0.0.1:{closed}?tls=required"),
        format!("smtps://user:s3cret@127.0.0.1:{closed}"),
    ] {
        let transport = Transport::from_config(&smtp_config(&url, 5)).unwrap();
        assert!(!transport.describe().contains("s3cret"));
        assert!(!format!("{transport:?}").contains("s3cret"));
        let err = transport
            .send("no-reply@example.com", "ada@example.com", &rendered())
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{url}: {err}");
        assert!(err.message.contains("[redacted]"), "{url}: {err}");
        let err = transport.check().await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{url}: {err}");
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn bad_addresses_are_permanent_failures() {
    let sink = SmtpSink::start();
    let transport = Transport::from_config(&smtp_config(&sink.url(), 5)).unwrap();
    let err = transport
        .send("no-reply@example.com", "not an address", &rendered())
        .await
        .unwrap_err();
    assert!(err.permanent, "{err}");
    let err = transport
        .send("", "ada@example.com", &rendered())
        .await
        .unwrap_err();
    assert!(err.permanent, "{err}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn the_file_backend_writes_a_parseable_eml() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sent").join("mail");
    let config = EmailConfig {
        backend: EmailBackend::File,
        file_dir: out.clone(),
        ..EmailConfig::default()
    };
    let transport = Transport::from_config(&config).unwrap();
    assert!(out.is_dir(), "created when missing");
    assert_eq!(transport.describe(), format!("file ({})", out.display()));
    transport.check().await.unwrap();

    transport
        .send(
            "Tessera <no-reply@example.com>",
            "ada@example.com",
            &rendered(),
        )
        .await
        .unwrap();

    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let mail = ReceivedMail::parse(std::fs::read(&files[0]).unwrap());
    assert_eq!(mail.subject, "[Tessera] Bienvenue à Tessera");
    assert_eq!(mail.to, ["ada@example.com"]);
    assert_eq!(mail.content_type, "multipart/alternative");
    assert_eq!(mail.first_link().as_deref(), Some(LINK));
}
