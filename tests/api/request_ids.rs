//! Request ids: every answer carries `X-Request-Id` (kept from the request when it is a short
//! printable token, generated otherwise), the audit entry of the request records it, and every
//! log line of the request carries it and, once known, the user id.

use entity::audit_event;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::json;

use crate::support::process::ServeProcess;
use crate::support::{Backend, PASSWORD, TestApp, credentials};

on_each_backend!(every_answer_has_a_request_id_and_the_audit_entry_records_it,);

async fn every_answer_has_a_request_id_and_the_audit_entry_records_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id_of = |reply: &crate::support::Reply| {
        reply
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id: {:?}", reply.headers))
            .to_owned()
    };

    // Generated: 32 hex digits, a new one per request, errors included.
    let first = app.get("user/", None).await;
    let second = app.send(app.client.get(app.url("/nowhere"))).await;
    assert_eq!((first.status, second.status), (401, 404));
    for id in [id_of(&first), id_of(&second)] {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(id_of(&first), id_of(&second));

    // Kept when it is a short printable token; replaced otherwise.
    let sent = "lb-7:req.0042";
    let kept = app
        .send(
            app.client
                .get(app.url("/health/live"))
                .header("X-Request-Id", sent),
        )
        .await;
    assert_eq!(id_of(&kept), sent);
    for forged in ["two words", &"x".repeat(65), "é"] {
        let replaced = app
            .send(
                app.client
                    .get(app.url("/health/live"))
                    .header("X-Request-Id", forged),
            )
            .await;
        assert_ne!(id_of(&replaced), forged);
        assert_eq!(id_of(&replaced).len(), 32);
    }

    // The audit entry of a login names the request that made it.
    app.register("ada@example.com").await;
    let login = app
        .send(
            app.client
                .post(app.api("login/"))
                .header("X-Request-Id", "login-request-1")
                .json(&credentials("ada@example.com", PASSWORD)),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(id_of(&login), "login-request-1");
    let newest = audit_event::Entity::find()
        .order_by_desc(audit_event::Column::Id)
        .one(&app.db)
        .await
        .unwrap()
        .expect("an audit entry");
    assert_eq!(newest.event, "login");
    assert_eq!(newest.request_id.as_deref(), Some("login-request-1"));
}

/// The real binary's logs: the access line and the audit line of one request carry its id, and
/// the access line the id of the user the credential named.
#[tokio::test]
async fn log_lines_of_a_request_carry_its_id_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start(dir.path(), &[("TESSERA_LOG__FORMAT", "text")], None);
    let client = crate::support::http_client();
    server.wait_ready(&client).await;
    let api = |path: &str| format!("{}/auth/{path}", server.base);
    let signup = client
        .post(api("registration/"))
        .json(&json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let key = signup.json::<serde_json::Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = client
        .get(api("user/"))
        .header("Authorization", format!("Token {key}"))
        .header("X-Request-Id", "user-request-7")
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200);
    let user_id = user.json::<serde_json::Value>().await.unwrap()["pk"].to_string();
    let login = client
        .post(api("login/"))
        .header("X-Request-Id", "login-request-8")
        .json(&credentials("ada@example.com", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    let (_, logs, _) = server.stop();
    let access = logs
        .lines()
        .find(|line| line.contains("tessera::access") && line.contains("user-request-7"))
        .unwrap_or_else(|| panic!("no access line with the request id:\n{logs}"));
    assert!(access.contains(&format!("user_id={user_id}")), "{access}");
    assert!(access.contains("status=200"), "{access}");
    assert!(
        logs.lines()
            .any(|line| line.contains("tessera::audit") && line.contains("login-request-8")),
        "no audit line with the request id:\n{logs}"
    );
    assert!(!logs.contains(&key), "a token leaked into the logs");
}
