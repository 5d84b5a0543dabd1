//! Security headers on every answer (errors included) and CORS for listed origins only.

use crate::support::{Backend, TestApp};
use serde_json::json;

on_each_backend!(
    every_answer_carries_the_security_headers,
    cors_answers_listed_origins_only,
);

fn assert_secured(reply: &crate::support::Reply, what: &str) {
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        reply.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
}

async fn every_answer_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("headers@example.com").await;
    let answers = [
        (
            "login (credential)",
            app.login("headers@example.com", crate::support::PASSWORD)
                .await,
        ),
        ("user/", app.get("user/", Some(&key)).await),
        ("401", app.get("user/", None).await),
        ("400", app.post("login/", json!({})).await),
        ("404 under the API", app.get("nowhere/", None).await),
    ];
    for (what, reply) in &answers {
        assert_secured(reply, what);
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(
            reply.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'"),
            "{what}"
        );
    }
    let health = app.send(app.client.get(app.url("/health/live"))).await;
    assert_secured(&health, "health");
    let docs = app.send(app.client.get(app.url("/docs"))).await;
    assert_eq!(docs.status, 200);
    assert_secured(&docs, "docs");
    // Swagger UI: framing only by itself, and a policy of its own (docs_page.rs shows a
    // browser runs the page under it).
    assert_eq!(docs.header("x-frame-options"), Some("SAMEORIGIN"));
    let policy = docs.header("content-security-policy").expect("a policy");
    assert!(
        policy.starts_with("default-src 'none'; script-src 'sha256-"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe"), "{policy}");
    // CORS is off by default: no Access-Control headers for anyone.
    let cross = app
        .send(
            app.client
                .get(app.url("/health/live"))
                .header("Origin", "https://app.example.com"),
        )
        .await;
    assert_eq!(cross.header("access-control-allow-origin"), None);
}

async fn cors_answers_listed_origins_only(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        // As an operator might write it; browsers send `https://app.example.com`.
        c.cors.allowed_origins = vec!["https://App.Example.com/".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        let app = &app;
        async move {
            app.send(
                app.client
                    .request(reqwest::Method::OPTIONS, app.api("login/"))
                    .header("Origin", origin)
                    .header("Access-Control-Request-Method", "POST")
                    .header(
                        "Access-Control-Request-Headers",
                        "content-type, x-csrftoken",
                    ),
            )
            .await
        }
    };
    let allowed = preflight("https://app.example.com").await;
    assert!(allowed.status < 300, "{} {}", allowed.status, allowed.text);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    let allowed_headers = allowed
        .header("access-control-allow-headers")
        .unwrap_or_default();
    assert!(allowed_headers.contains("x-csrftoken"), "{allowed_headers}");

    let refused = preflight("https://evil.example").await;
    assert_eq!(refused.header("access-control-allow-origin"), None);

    // Requests from other origins (this service's own pages among them: Swagger UI sends
    // `Origin` too) are served as without CORS: a normal answer, no CORS headers.
    for origin in ["https://evil.example", app.base.as_str()] {
        let plain = app
            .send(
                app.client
                    .post(app.api("login/"))
                    .header("Origin", origin)
                    .json(&json!({})),
            )
            .await;
        assert_eq!(plain.status, 400, "{origin}: {}", plain.text);
        assert_eq!(
            plain.body,
            json!({"password": ["This field is required."]}),
            "{origin}"
        );
        assert_eq!(plain.header("access-control-allow-origin"), None);
        assert_eq!(plain.header("x-content-type-options"), Some("nosniff"));
    }

    // A real cross-origin request from the listed origin, answered with an error, still
    // carries the CORS headers so the page can read the error.
    let error = app
        .send(
            app.client
                .post(app.api("login/"))
                .header("Origin", "https://app.example.com")
                .json(&json!({})),
        )
        .await;
    assert_eq!(error.status, 400);
    assert_eq!(
        error.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
}

/// A client that sends its headers and then trickles the body gets 408 when the request
/// timeout passes, instead of holding the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_off_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.server.request_timeout_seconds = 1).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /auth/login/ HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"email\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Never send the rest; the answer must come anyway.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&answer).contains("timed out") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled request");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains(r#"{"detail":"Request timed out."}"#),
        "{text}"
    );
}

/// Headers are capped (hyper's limits: 100 fields, about 400 KB in all): more gets 431 before
/// any work is done, and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let many: String = (0..150).map(|i| format!("X-Field-{i}: v\r\n")).collect();
    let huge = format!("X-Huge: {}\r\n", "a".repeat(500_000));
    for extra in [many, huge] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "GET /health/live HTTP/1.1\r\nHost: {address}\r\n{extra}Connection: close\r\n\r\n"
        );
        // The server may stop reading once over the limit; what it answers is what counts.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    }
    let live = app.send(app.client.get(app.url("/health/live"))).await;
    assert_eq!(live.status, 200);
}

/// Reads one HTTP/1.1 response (head and `Content-Length` body) from a raw connection.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "connection closed mid-answer: {text}");
        data.extend_from_slice(&buf[..n]);
    }
}

/// Slowloris: a client that trickles its request head is cut off once
/// `server.header_read_timeout_seconds` has passed since the head began, bytes or no bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_head_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.server.header_read_timeout_seconds = 1
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = std::time::Instant::now();
    let trickle = tokio::spawn(async move {
        let head = format!("GET /health/live HTTP/1.1\r\nHost: {address}\r\nX-Slow: ");
        writer.write_all(head.as_bytes()).await.ok();
        // A byte every 200 ms, for up to 10 s: each would reset an idle timeout.
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if writer.write_all(b"a").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        reader.read_to_end(&mut answer),
    )
    .await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "the trickling connection was still open after 8 s"
    );
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "{waited:?}"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "{answer:?}"
    );
}

/// The head deadline times heads only: a keep-alive connection may rest between requests, and
/// a body may take longer than the head timeout (it has `request_timeout_seconds`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_between_requests_and_slow_bodies_are_not_cut_off() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.server.header_read_timeout_seconds = 1
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let get = format!("GET /health/live HTTP/1.1\r\nHost: {address}\r\n\r\n");
    for _ in 0..2 {
        stream.write_all(get.as_bytes()).await.unwrap();
        let answer = read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    }
    let body = r#"{"email": "nobody@example.com", "password": "x"}"#;
    let head = format!(
        "POST /auth/login/ HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    stream.write_all(body.as_bytes()).await.unwrap();
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("Unable to log in with provided credentials."),
        "{answer}"
    );
}
