//! What happens outside the happy path of any one endpoint: unknown paths, wrong methods, bad
//! bodies, limits, the prefix, and the documents and probes served beside the API. Every
//! error is DRF-shaped JSON; bad input never yields a 500.

use crate::support::{Backend, PASSWORD, Reply, TestApp};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_each_backend!(
    unknown_paths_are_json_404s,
    wrong_method_is_a_json_405_with_allow,
    malformed_json_is_a_parse_error,
    non_object_json_is_a_non_field_error,
    other_content_types_are_415,
    body_over_the_limit_is_413,
    chunked_body_over_the_limit_is_413,
    passwords_over_4096_bytes_are_refused_not_truncated,
    nul_bytes_are_refused,
    wrong_json_types_are_field_errors,
    deeply_nested_json_is_a_400,
    custom_prefix_moves_the_api,
    health_probes_answer_json,
    a_read_only_database_is_not_ready_and_writes_get_503,
    swagger_ui_is_served,
    openapi_document_is_served_as_json_and_yaml,
);

const LIMIT: usize = 1024;

/// An error answer: the status, and a JSON body in one of DRF's shapes.
fn assert_json_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "Content-Type {content_type:?} for {}",
        reply.text
    );
    assert!(reply.body.is_object(), "a JSON object: {}", reply.text);
}

/// `{"field": ["message", ...]}` with exactly `fields`, each holding at least one message.
fn assert_field_errors(reply: &Reply, fields: &[&str]) {
    assert_json_error(reply, 400);
    let object = reply.body.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = fields.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{}", reply.text);
    for messages in object.values() {
        let messages = messages.as_array().expect("a list of messages");
        assert!(!messages.is_empty() && messages.iter().all(Value::is_string));
    }
}

fn login_body(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

/// A raw HTTP/1.1 POST whose body is sent with `Transfer-Encoding: chunked` (no
/// `Content-Length`), as a streaming client would. Returns the status and the decoded body.
async fn post_chunked(app: &TestApp, path: &str, chunks: &[&[u8]]) -> (u16, String, String) {
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.prefix
    )
    .into_bytes();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).expect("a UTF-8 response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let head_lower = head.to_ascii_lowercase();
    let body = if head_lower.contains("transfer-encoding: chunked") {
        decode_chunked(body)
    } else {
        body.to_owned()
    };
    (status, head_lower, body)
}

fn decode_chunked(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

async fn unknown_paths_are_json_404s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let expected = json!({"detail": "Not found."});
    let replies = [
        app.get("nothing-here/", None).await,
        app.post("nothing-here/", json!({})).await,
        app.send(app.client.get(app.url("/nowhere"))).await,
        app.send(app.client.get(app.url("/docs/nothing"))).await,
    ];
    for reply in &replies {
        assert_json_error(reply, 404);
        assert_eq!(reply.body, expected);
    }
}

async fn wrong_method_is_a_json_405_with_allow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["login/", "login"] {
        let reply = app.get(path, None).await;
        assert_json_error(&reply, 405);
        assert_eq!(reply.body, json!({"detail": "Method \"GET\" not allowed."}));
        let allow = reply.header("allow").expect("an Allow header");
        assert!(allow.contains("POST"), "Allow: {allow}");
        assert!(!allow.contains("GET"), "Allow: {allow}");
    }
    let post = app.send(app.client.post(app.api("user/"))).await;
    assert_json_error(&post, 405);
    assert_eq!(post.body, json!({"detail": "Method \"POST\" not allowed."}));
    let allow = post.header("allow").expect("an Allow header");
    let allowed: Vec<&str> = allow.split(", ").collect();
    for method in ["GET", "HEAD", "PUT", "PATCH", "DELETE"] {
        assert!(allowed.contains(&method), "Allow: {allow}");
    }
    assert!(!allowed.contains(&"POST"), "Allow: {allow}");
    // HEAD is listed because it is served: the headers of GET, no body.
    let head = app.send(app.client.head(app.api("user/"))).await;
    assert_eq!(head.status, 401, "{head:?}");
    assert!(head.text.is_empty());
}

async fn malformed_json_is_a_parse_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for body in [
        &b"{\"email\": \"a@example.com\","[..],
        b"{email: 1}",
        b"{\"email\": \"\xff\xfe\"}",
    ] {
        let reply = app
            .post_raw("login/", Some("application/json"), body.to_vec())
            .await;
        assert_json_error(&reply, 400);
        let object = reply.body.as_object().unwrap();
        assert_eq!(object.len(), 1, "only detail: {}", reply.text);
        let detail = reply.body["detail"].as_str().expect("a detail string");
        assert!(
            detail.starts_with("JSON parse error - ") && detail.len() > "JSON parse error - ".len(),
            "{detail}"
        );
    }
}

async fn non_object_json_is_a_non_field_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (body, type_name) in [
        ("[]", "list"),
        ("[{\"email\": \"a@example.com\"}]", "list"),
        ("\"a string\"", "str"),
        ("42", "int"),
    ] {
        let reply = app.post_raw("login/", Some("application/json"), body).await;
        assert_json_error(&reply, 400);
        assert_eq!(
            reply.body,
            json!({"non_field_errors": [format!("Invalid data. Expected a dictionary, but got {type_name}.")]}),
            "{body}"
        );
    }
}

async fn other_content_types_are_415(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = r#"{"email": "a@example.com", "password": "x"}"#;
    let reply = app.post_raw("login/", Some("text/plain"), body).await;
    assert_json_error(&reply, 415);
    assert_eq!(
        reply.body,
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
    let xml = app
        .post_raw("registration/", Some("application/xml"), "<a/>")
        .await;
    assert_json_error(&xml, 415);
    assert_eq!(
        xml.body,
        json!({"detail": "Unsupported media type \"application/xml\" in request."})
    );
}

async fn body_over_the_limit_is_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.server.max_body_bytes = LIMIT).await;
    app.register("ada@example.com").await;
    let padding = "x".repeat(2 * LIMIT);
    let reply = app
        .post(
            "login/",
            json!({"email": "ada@example.com", "password": PASSWORD, "padding": padding}),
        )
        .await;
    assert_json_error(&reply, 413);
    assert!(reply.body["detail"].is_string(), "{}", reply.text);
    // Under the limit, the same endpoint works.
    app.login_key("ada@example.com", PASSWORD).await;
}

async fn chunked_body_over_the_limit_is_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.server.max_body_bytes = LIMIT).await;
    app.register("ada@example.com").await;

    // A streamed body within the limit is read normally...
    let login = format!(r#"{{"email": "ada@example.com", "password": "{PASSWORD}"}}"#);
    let (first, second) = login.as_bytes().split_at(10);
    let (status, _, body) = post_chunked(&app, "login/", &[first, second]).await;
    assert_eq!(status, 200, "{body}");
    let key: Value = serde_json::from_str(&body).unwrap();
    assert!(key["key"].is_string(), "{body}");

    // ...and one that grows past it, without any Content-Length to warn, is cut off.
    let padding = format!(r#", "padding": "{}"}}"#, "x".repeat(3 * LIMIT));
    let opening = br#"{"email": "ada@example.com", "password": "x""#;
    let chunks: Vec<&[u8]> = std::iter::once(&opening[..])
        .chain(padding.as_bytes().chunks(500))
        .collect();
    let (status, head, body) = post_chunked(&app, "login/", &chunks).await;
    assert_eq!(status, 413, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    assert!(body["detail"].is_string(), "{body}");
}

async fn passwords_over_4096_bytes_are_refused_not_truncated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Exactly 4096 bytes, multi-byte characters included: the longest password accepted.
    let mut longest = String::new();
    while longest.len() + "é horse ".len() <= 4096 {
        longest.push_str("é horse ");
    }
    while longest.len() < 4096 {
        longest.push('x');
    }
    assert_eq!(longest.len(), 4096);
    let reply = app
        .post(
            "registration/",
            json!({"email": "long@example.com", "password1": longest, "password2": longest}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    app.login_key("long@example.com", &longest).await;

    // One byte more is refused on `password`, not cut down to the stored password.
    let over = format!("{longest}x");
    let reply = app.login("long@example.com", &over).await;
    assert_field_errors(&reply, &["password"]);
    let much_longer = format!("{longest}{}", "y".repeat(1000));
    let reply = app.login("long@example.com", &much_longer).await;
    assert_field_errors(&reply, &["password"]);

    // Signing up with a too-long password fails, so its 4096-byte prefix never logs in.
    let reply = app
        .post(
            "registration/",
            json!({"email": "over@example.com", "password1": much_longer, "password2": much_longer}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.body.get("password1").is_some(), "{}", reply.text);
    assert!(reply.body.get("key").is_none());
    let prefix = &much_longer[..4096];
    let reply = app.login("over@example.com", prefix).await;
    assert_json_error(&reply, 400);
    assert_eq!(
        reply.body,
        json!({"non_field_errors": ["Unable to log in with provided credentials."]})
    );
}

async fn nul_bytes_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let in_password = app
        .post("login/", login_body("ada@example.com", "correct\u{0}horse"))
        .await;
    assert_json_error(&in_password, 400);
    assert_eq!(
        in_password.body,
        json!({"password": ["Null characters are not allowed."]})
    );
    let in_email = app
        .post("login/", login_body("ada\u{0}@example.com", PASSWORD))
        .await;
    assert_field_errors(&in_email, &["email"]);
    let in_form = app
        .post_raw(
            "login/",
            Some("application/x-www-form-urlencoded"),
            "email=ada%40example.com&password=correct%00horse",
        )
        .await;
    assert_json_error(&in_form, 400);
    assert_eq!(in_form.body, in_password.body);
    let in_signup = app
        .post(
            "registration/",
            json!({"email": "nul@example.com", "username": "a\u{0}b", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_field_errors(&in_signup, &["username"]);
}

async fn wrong_json_types_are_field_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let reply = app
        .post("login/", json!({"email": ["x"], "password": {"a": 1}}))
        .await;
    assert_field_errors(&reply, &["email", "password"]);
    assert_eq!(reply.body["password"], json!(["Not a valid string."]));

    let key = app.login_key("ada@example.com", PASSWORD).await;
    for body in [
        json!({"username": true}),
        json!({"first_name": ["Ada"]}),
        json!({"last_name": {"x": 1}}),
    ] {
        let request = app
            .client
            .patch(app.api("user/"))
            .header("Authorization", format!("Token {key}"))
            .json(&body);
        let reply = app.send(request).await;
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_field_errors(&reply, &[field.as_str()]);
    }
    let change = app
        .post_with_token(
            "password/change/",
            &key,
            json!({"new_password1": 12345678, "new_password2": [1]}),
        )
        .await;
    // A number is not a string (the documented type), unlike DRF's lenient CharField.
    assert_field_errors(&change, &["new_password1", "new_password2"]);
    assert_eq!(change.body["new_password1"], json!(["Not a valid string."]));
    // Nothing of the above changed the password.
    app.login_key("ada@example.com", PASSWORD).await;
}

async fn deeply_nested_json_is_a_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let opening = "[".repeat(10_000);
    let balanced = format!(
        r#"{{"email": {}{}, "password": "x"}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for body in [opening, balanced] {
        let reply = app.post_raw("login/", Some("application/json"), body).await;
        assert_json_error(&reply, 400);
        assert!(
            reply.body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("JSON parse error - ")),
            "{}",
            reply.text
        );
    }
    // The server is still up and well.
    app.register("ada@example.com").await;
}

async fn custom_prefix_moves_the_api(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.server.prefix = "/api/v1/auth/".into()).await;
    assert_eq!(app.prefix, "/api/v1/auth/");
    app.register("ada@example.com").await;
    let at_prefix = app
        .send(
            app.client
                .post(app.url("/api/v1/auth/login/"))
                .json(&login_body("ada@example.com", PASSWORD)),
        )
        .await;
    assert_eq!(at_prefix.status, 200, "{}", at_prefix.text);
    assert!(at_prefix.body["key"].is_string());

    let old_place = app
        .send(
            app.client
                .post(app.url("/auth/login/"))
                .json(&login_body("ada@example.com", PASSWORD)),
        )
        .await;
    assert_json_error(&old_place, 404);
    assert_eq!(old_place.body, json!({"detail": "Not found."}));

    let spec = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert!(
        spec.body["paths"]["/api/v1/auth/login/"]["post"].is_object(),
        "{}",
        spec.text
    );
    assert!(spec.body["paths"].get("/auth/login/").is_none());
}

/// A database that answers reads but takes no writes (a read-only SQLite file; a PostgreSQL
/// database whose transactions default to read-only, as on a standby): readiness says so, and
/// a request that writes gets DRF's 503, not a 500.
async fn a_read_only_database_is_not_ready_and_writes_get_503(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    let key = app.register("ada@example.com").await;
    let (database, mut config) = app.stop().await;
    config.database.auto_migrate = false;
    match backend {
        Backend::Sqlite => config.database.url = config.database.url.replace("mode=rwc", "mode=ro"),
        Backend::Postgres => {
            let name = config.database.url.rsplit('/').next().unwrap().to_owned();
            let admin = tessera::store::connect(
                &config.database.url,
                1,
                std::time::Duration::from_secs(10),
            )
            .await
            .unwrap();
            admin
                .execute_unprepared(&format!(
                    "ALTER DATABASE \"{name}\" SET default_transaction_read_only = on"
                ))
                .await
                .unwrap();
        }
    }
    let app = TestApp::start(database, config).await;

    let ready = app.send(app.client.get(app.url("/health/ready"))).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.body["database"], "unavailable");
    // Reads still work.
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    let signup = app
        .post(
            "registration/",
            crate::support::signup_body("bob@example.com", PASSWORD),
        )
        .await;
    assert_json_error(&signup, 503);
    assert_eq!(
        signup.body,
        json!({"detail": "Service temporarily unavailable, try again later."})
    );
    assert_eq!(signup.header("retry-after"), Some("5"));
}

async fn health_probes_answer_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/health/live", "/health/ready"] {
        let reply = app.send(app.client.get(app.url(path))).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert!(
            reply
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{path}: {:?}",
            reply.headers
        );
        assert!(reply.body.is_object(), "{path}: {}", reply.text);
    }
}

async fn swagger_ui_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app.send(app.client.get(app.url("/docs"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("text/html")),
        "{:?}",
        reply.headers
    );
    assert!(reply.text.contains("swagger"), "{}", reply.text);
    assert!(
        reply.text.contains("/auth/login/"),
        "the UI embeds our document"
    );
}

async fn openapi_document_is_served_as_json_and_yaml(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let json_reply = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(json_reply.status, 200, "{}", json_reply.text);
    assert!(
        json_reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json"))
    );
    let spec = &json_reply.body;
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{}",
        json_reply.text
    );
    assert!(spec["paths"]["/auth/login/"]["post"].is_object());
    for path in ["/auth/logout/", "/auth/user/", "/auth/password/change/"] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }

    let yaml_reply = app.send(app.client.get(app.url("/openapi.yaml"))).await;
    assert_eq!(yaml_reply.status, 200, "{}", yaml_reply.text);
    assert!(
        yaml_reply
            .header("content-type")
            .is_some_and(|ct| ct.contains("yaml")),
        "{:?}",
        yaml_reply.headers
    );
    assert!(yaml_reply.body.is_null(), "YAML text, not JSON");
    let from_yaml: Value = serde_yaml::from_str(&yaml_reply.text).expect("valid YAML");
    assert_eq!(&from_yaml, spec, "the same document in both forms");
}
