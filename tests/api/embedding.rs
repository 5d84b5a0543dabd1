//! Tessera embedded in a product's poem app, as `examples/embed.rs` does it (the test compiles
//! that very file): a signup through the product's app gets its mail delivered, and the
//! product's own routes see the user behind a Tessera credential.

#[allow(dead_code)]
#[path = "../../examples/embed.rs"]
mod embed;

use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use serde_json::json;
use tessera::App;

use crate::support::mail::ReceivedMail;
use crate::support::{Backend, PASSWORD, TestDb, signup_body, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_tessera_mails_and_guards_the_products_routes() {
    let database = TestDb::create(&Backend::Sqlite).await;
    let config = test_config(&database);
    let mail_dir = config.email.file_dir.clone();
    let tessera = App::build(config).await.unwrap();
    let background = tessera.start_background().await;
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let address = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let routes = embed::product_routes(&tessera);
    let server = tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(routes));
    let base = format!("http://{address}");
    let client = crate::support::http_client();

    let signup = client
        .post(format!("{base}/auth/registration/"))
        .json(&signup_body("ada@example.com", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let key = signup.json::<serde_json::Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // The confirmation mail leaves the outbox: the background work runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = loop {
        let written: Vec<_> = std::fs::read_dir(&mail_dir)
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(eml) = written
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "eml"))
        {
            break ReceivedMail::parse(std::fs::read(eml).unwrap());
        }
        assert!(Instant::now() < deadline, "no mail was delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(mail.to, ["ada@example.com"]);

    let get = |path: &str, key: Option<&str>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(key) = key {
            request = request.header("Authorization", format!("Token {key}"));
        }
        request.send()
    };
    let page = get("/app/dashboard", Some(&key)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "Hello, ada@example.com!");
    let refused = get("/app/dashboard", None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.json::<serde_json::Value>().await.unwrap(),
        json!({"detail": "Authentication credentials were not provided."})
    );
    let bad = get("/app/dashboard", Some(&"0".repeat(40))).await.unwrap();
    assert_eq!(bad.status(), 401);
    let home = get("/app/", Some(&key)).await.unwrap();
    assert_eq!(home.text().await.unwrap(), "Welcome back, ada.");
    assert_eq!(
        get("/app/", None).await.unwrap().text().await.unwrap(),
        "Welcome."
    );

    // A logout through Tessera's routes ends the credential for the product's routes at once.
    let out = client
        .post(format!("{base}/auth/logout/"))
        .header("Authorization", format!("Token {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(
        get("/app/dashboard", Some(&key)).await.unwrap().status(),
        401
    );

    server.abort();
    background.stop().await;
}
