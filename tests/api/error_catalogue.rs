//! The whole catalogue of error answers, per mode, as a client sees them over HTTP: for each,
//! the status, the headers that matter and the body, held in a reviewed snapshot
//! (`snapshots/`). A change to any message, status or header shows up as a snapshot diff.
//!
//! The catalogue is the HTTP layer's, which does not depend on the database, so it runs on
//! SQLite only. To accept an intended change: `cargo insta review` (or run with
//! `INSTA_UPDATE=always` and read the diff before committing).

use reqwest::Method;
use serde_json::{Value, json};
use tessera::config::{AuthMode, Config};

use crate::support::{Backend, PASSWORD, Reply, TestApp, credentials};

/// Headers a client acts on; the others (date, security headers) are tested elsewhere.
const HEADERS: &[&str] = &["allow", "content-type", "retry-after", "www-authenticate"];

/// The catalogue being built: one entry per error, in the order written.
struct Catalogue(Vec<(String, Value)>);

impl Catalogue {
    fn add(&mut self, name: &str, reply: &Reply) {
        assert!(
            reply.status >= 400,
            "{name}: expected an error, got {} {}",
            reply.status,
            reply.text
        );
        let headers: serde_json::Map<String, Value> = HEADERS
            .iter()
            .filter_map(|h| reply.header(h).map(|v| (h.to_string(), json!(v))))
            .collect();
        let body: Value = serde_json::from_str(&reply.text)
            .unwrap_or_else(|_| panic!("{name}: a JSON body, got {:?}", reply.text));
        self.0.push((
            name.to_owned(),
            json!({ "status": reply.status, "headers": headers, "body": body }),
        ));
    }

    fn snapshot(self) -> Value {
        Value::Object(self.0.into_iter().collect())
    }
}

/// Digit runs become `N`: for answers that name a wait that depends on the clock.
fn without_numbers(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match (c.is_ascii_digit(), out.ends_with('N')) {
            (true, true) => {}
            (true, false) => out.push('N'),
            (false, _) => out.push(c),
        }
    }
    out
}

async fn spawn(mode: AuthMode, extra: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |config| {
        config.auth.mode = mode;
        // One reset request per day from an address: the second one shows the 429.
        config.rate_limits.reset_password = "1/d/ip".parse().unwrap();
        extra(config);
    })
    .await
}

fn request(app: &TestApp, method: &str, path: &str) -> reqwest::RequestBuilder {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    app.client.request(method, app.api(path))
}

/// `GET user/`, with `Authorization: <authorization>` when given.
fn get_user(app: &TestApp, authorization: Option<&str>) -> reqwest::RequestBuilder {
    let builder = request(app, "GET", "user/");
    match authorization {
        Some(value) => builder.header("authorization", value),
        None => builder,
    }
}

/// What every mode answers alike: bodies, paths, methods, limits.
async fn common_errors(app: &TestApp, catalogue: &mut Catalogue, csrf: &[(&str, &str)]) {
    let with_csrf = |builder: reqwest::RequestBuilder| {
        csrf.iter().fold(builder, |builder, (name, value)| {
            builder.header(*name, *value)
        })
    };
    let post = |path: &str| with_csrf(request(app, "POST", path));
    let json_post = |path: &str, body: &str| {
        post(path)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };

    let reply = app.send(json_post("registration/", "{}")).await;
    catalogue.add("required_fields", &reply);
    let reply = app
        .send(json_post(
            "registration/",
            r#"{"email": "not an address", "password1": "123", "password2": "123"}"#,
        ))
        .await;
    catalogue.add("invalid_email_and_weak_password", &reply);
    let reply = app
        .send(json_post(
            "registration/",
            r#"{"email": "ada@example.com", "password1": "correct horse battery staple", "password2": "another horse"}"#,
        ))
        .await;
    catalogue.add("registration_mismatch", &reply);
    let reply = app
        .send(json_post(
            "login/",
            &credentials("nobody@example.com", PASSWORD).to_string(),
        ))
        .await;
    catalogue.add("bad_credentials", &reply);
    let reply = app
        .send(json_post(
            "login/",
            &json!({"password": PASSWORD}).to_string(),
        ))
        .await;
    catalogue.add("login_without_email", &reply);
    let reply = app
        .send(json_post(
            "registration/verify-email/",
            r#"{"key": "unknown"}"#,
        ))
        .await;
    catalogue.add("unknown_confirmation_key", &reply);
    let reply = app
        .send(json_post(
            "password/reset/confirm/",
            r#"{"uid": "zz", "token": "nope", "new_password1": "a long new passphrase", "new_password2": "a long new passphrase"}"#,
        ))
        .await;
    catalogue.add("reset_link_invalid", &reply);
    let reply = app.send(json_post("login/", "{")).await;
    catalogue.add("malformed_json", &reply);
    let reply = app.send(json_post("login/", "[]")).await;
    catalogue.add("json_not_an_object", &reply);
    let reply = app
        .send(
            post("login/")
                .header("content-type", "text/plain")
                .body("email=ada"),
        )
        .await;
    catalogue.add("unsupported_media_type", &reply);
    let reply = app
        .send(json_post(
            "login/",
            &format!(r#"{{"email": "{}"}}"#, "a".repeat(70_000)),
        ))
        .await;
    catalogue.add("body_too_large", &reply);
    let reply = app.send(request(app, "GET", "nowhere/")).await;
    catalogue.add("unknown_path", &reply);
    let reply = app.send(request(app, "GET", "login/")).await;
    catalogue.add("method_not_allowed", &reply);
    let reply = app.send(with_csrf(request(app, "PUT", "login/"))).await;
    catalogue.add("unsafe_method_not_allowed", &reply);

    // The second reset request from this address today.
    for email in ["first@example.com", "second@example.com"] {
        let reply = app
            .send(json_post(
                "password/reset/",
                &json!({ "email": email }).to_string(),
            ))
            .await;
        if email.starts_with("second") {
            let mut reply = reply;
            reply.text = without_numbers(&reply.text);
            let wait = reply.header("retry-after").map(without_numbers);
            if let Some(wait) = wait {
                reply.headers.insert("retry-after", wait.parse().unwrap());
            }
            catalogue.add("throttled", &reply);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode() {
    let app = spawn(AuthMode::Token, |_| {}).await;
    let mut catalogue = Catalogue(Vec::new());
    common_errors(&app, &mut catalogue, &[]).await;
    let user = |authorization: Option<&str>| get_user(&app, authorization);
    catalogue.add("not_authenticated", &app.send(user(None)).await);
    let unknown = format!("Token {}", "0".repeat(40));
    catalogue.add("invalid_token", &app.send(user(Some(&unknown))).await);
    catalogue.add("token_header_empty", &app.send(user(Some("Token"))).await);
    catalogue.add(
        "token_header_spaces",
        &app.send(user(Some("Token a b"))).await,
    );
    let reply = app.send(request(&app, "POST", "logout/")).await;
    catalogue.add("logout_without_token", &reply);
    insta::assert_json_snapshot!("token", catalogue.snapshot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode() {
    let app = spawn(AuthMode::Jwt, |_| {}).await;
    let mut catalogue = Catalogue(Vec::new());
    common_errors(&app, &mut catalogue, &[]).await;
    let user = |authorization: Option<&str>| get_user(&app, authorization);
    catalogue.add("not_authenticated", &app.send(user(None)).await);
    let reply = app.send(user(Some("Bearer not.a.jwt"))).await;
    catalogue.add("access_token_not_valid", &reply);
    let reply = app.send(user(Some("Bearer a b"))).await;
    catalogue.add("bearer_header_parts", &reply);
    let reply = app.post("token/verify/", json!({"token": "garbage"})).await;
    catalogue.add("verify_garbage", &reply);
    let reply = app.post("token/verify/", json!({})).await;
    catalogue.add("verify_without_token", &reply);
    let reply = app.post("token/refresh/", json!({})).await;
    catalogue.add("refresh_without_token", &reply);
    let reply = app
        .post("token/refresh/", json!({"refresh": "garbage"}))
        .await;
    catalogue.add("refresh_garbage", &reply);
    let reply = app.post("logout/", json!({})).await;
    catalogue.add("logout_without_refresh", &reply);
    let reply = app.post("logout/", json!({"refresh": "garbage"})).await;
    catalogue.add("logout_with_bad_refresh", &reply);
    insta::assert_json_snapshot!("jwt", catalogue.snapshot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode() {
    let app = spawn(AuthMode::Session, |_| {}).await;
    const SECRET: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";
    let cookie = format!("csrftoken={SECRET}");
    let mut catalogue = Catalogue(Vec::new());
    let csrf = [("cookie", cookie.as_str()), ("x-csrftoken", SECRET)];
    common_errors(&app, &mut catalogue, &csrf).await;

    catalogue.add(
        "not_authenticated",
        &app.send(request(&app, "GET", "user/")).await,
    );
    let login = || {
        request(&app, "POST", "login/")
            .header("content-type", "application/json")
            .body(credentials("ada@example.com", PASSWORD).to_string())
    };
    catalogue.add("csrf_cookie_not_set", &app.send(login()).await);
    let reply = app.send(login().header("cookie", &cookie)).await;
    catalogue.add("csrf_token_missing", &reply);
    let wrong = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvu";
    let reply = app
        .send(
            login()
                .header("cookie", &cookie)
                .header("x-csrftoken", wrong),
        )
        .await;
    catalogue.add("csrf_token_incorrect", &reply);
    let reply = app
        .send(
            login()
                .header("cookie", &cookie)
                .header("x-csrftoken", SECRET)
                .header("origin", "https://evil.example"),
        )
        .await;
    catalogue.add("csrf_bad_origin", &reply);
    // A method no operation takes is a wrong method, not a forgery: 405 before CSRF.
    let reply = app.send(request(&app, "QUERY", "csrf/")).await;
    catalogue.add("query_on_csrf", &reply);
    insta::assert_json_snapshot!("session", catalogue.snapshot());
}
