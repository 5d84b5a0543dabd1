//! The OpenAPI document: committed copy up to date, served as generated, fit for generators.

use std::collections::BTreeSet;

use crate::support::{Backend, TestApp};
use serde_json::Value;
use tessera::Config;
use tessera::config::AuthMode;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

fn generated() -> Value {
    tessera::api::openapi_document(&Config::default())
}

fn operations(spec: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), operation));
        }
    }
    out
}

/// The committed document of each mode, with the command that regenerates it.
fn committed_documents() -> Vec<(AuthMode, &'static str, &'static str)> {
    vec![
        (
            AuthMode::Token,
            COMMITTED,
            "cargo run -- openapi > openapi/openapi.json",
        ),
        (
            AuthMode::Jwt,
            include_str!("../../openapi/openapi-jwt.json"),
            "TESSERA_AUTH__MODE=jwt cargo run -- openapi > openapi/openapi-jwt.json",
        ),
        (
            AuthMode::Session,
            include_str!("../../openapi/openapi-session.json"),
            "TESSERA_AUTH__MODE=session cargo run -- openapi > openapi/openapi-session.json",
        ),
    ]
}

#[test]
fn committed_documents_match_the_generated_ones() {
    for (mode, committed, regenerate) in committed_documents() {
        let mut config = Config::default();
        config.auth.mode = mode;
        let generated = tessera::api::openapi_json(&config);
        assert!(
            committed == generated,
            "the committed {mode:?} document is out of date; regenerate it with\n\n    {regenerate}\n"
        );
    }
}

#[test]
fn each_mode_documents_its_own_credentials_and_operations() {
    let ids = |mode: AuthMode| {
        let mut config = Config::default();
        config.auth.mode = mode;
        let spec = tessera::api::openapi_document(&config);
        let schemes: BTreeSet<String> = spec["components"]["securitySchemes"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let ids: BTreeSet<String> = operations(&spec)
            .iter()
            .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
            .collect();
        (schemes, ids)
    };
    let (token_schemes, token_ids) = ids(AuthMode::Token);
    let (jwt_schemes, jwt_ids) = ids(AuthMode::Jwt);
    let (session_schemes, session_ids) = ids(AuthMode::Session);
    assert_eq!(token_schemes, BTreeSet::from(["TokenAuth".to_owned()]));
    assert_eq!(jwt_schemes, BTreeSet::from(["JWTAuth".to_owned()]));
    assert_eq!(
        session_schemes,
        BTreeSet::from(["CSRFToken".to_owned(), "SessionCookie".to_owned()])
    );
    assert!(jwt_ids.contains("refreshToken") && jwt_ids.contains("verifyToken"));
    assert!(!token_ids.contains("refreshToken") && !session_ids.contains("refreshToken"));
    assert!(session_ids.contains("getCsrfToken") && !token_ids.contains("getCsrfToken"));
}

#[test]
fn every_operation_has_a_unique_operation_id() {
    let spec = generated();
    let ids: Vec<String> = operations(&spec)
        .iter()
        .map(|(path, method, op)| {
            op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                .to_owned()
        })
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[test]
fn security_is_declared_exactly_where_a_token_is_needed() {
    let spec = generated();
    let secured: BTreeSet<String> = operations(&spec)
        .iter()
        .filter(|(_, _, op)| op.get("security").is_some())
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "logout",
        "getUser",
        "updateUser",
        "partialUpdateUser",
        "changePassword",
        "reauthenticate",
        "startTotpActivation",
        "activateTotp",
        "deactivateTotp",
        "getMfaStatus",
        "listRecoveryCodes",
        "regenerateRecoveryCodes",
        "listEmailAddresses",
        "addEmailAddress",
        "removeEmailAddress",
        "makeEmailAddressPrimary",
        "resendEmailAddressConfirmation",
        "listSessions",
        "endSession",
        "endOtherSessions",
        "exportAccount",
        "deleteAccount",
        "socialConnect",
        "listSocialAccounts",
        "socialDisconnect",
    ]
    .map(String::from)
    .into();
    assert_eq!(secured, expected);
    assert_eq!(
        spec["components"]["securitySchemes"]["TokenAuth"]["in"],
        "header"
    );
}

#[test]
fn bodies_are_json_only_with_examples_and_errors_share_one_schema() {
    let spec = generated();
    for (path, method, op) in operations(&spec) {
        if let Some(body) = op.get("requestBody") {
            let content = body["content"].as_object().unwrap();
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/json"],
                "{method} {path}"
            );
            let reference = content["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap();
            let name = reference.rsplit('/').next().unwrap();
            assert!(
                spec["components"]["schemas"][name].get("example").is_some(),
                "{name} has no example"
            );
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(
                !response["description"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty(),
                "{method} {path} {status}"
            );
            if status.starts_with('4') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

/// Every `$ref` in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference.clone());
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    for mode in [AuthMode::Token, AuthMode::Jwt, AuthMode::Session] {
        let mut config = Config::default();
        config.auth.mode = mode;
        let spec = tessera::api::openapi_document(&config);
        let mut found = Vec::new();
        references(&spec, &mut found);
        assert!(!found.is_empty());
        for reference in found {
            let pointer = reference.trim_start_matches('#');
            assert!(
                spec.pointer(pointer).is_some(),
                "{mode:?}: {reference} points at nothing"
            );
        }
    }
}

#[test]
fn paths_keep_dj_rest_auths_trailing_slash_and_prefix() {
    let mut config = Config::default();
    config.server.prefix = "/api/accounts/".into();
    let spec = tessera::api::openapi_document(&config);
    let paths: Vec<&String> = spec["paths"].as_object().unwrap().keys().collect();
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("/api/accounts/") && p.ends_with('/')),
        "{paths:?}"
    );
    assert!(
        spec["paths"]
            .get("/api/accounts/password/change/")
            .is_some()
    );
}

async fn served_documents_are_the_generated_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let json = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(json.status, 200);
    assert_eq!(json.body, tessera::api::openapi_document(&app.config));
    let yaml = app.send(app.client.get(app.url("/openapi.yaml"))).await;
    assert_eq!(yaml.status, 200);
    assert!(
        yaml.text.contains("operationId: login"),
        "{}",
        &yaml.text[..200.min(yaml.text.len())]
    );
    let docs = app.send(app.client.get(app.url("/docs/"))).await;
    assert_eq!(docs.status, 200);
    assert!(
        docs.text.contains("SwaggerUIBundle"),
        "Swagger UI is served inline (offline)"
    );
    assert!(
        docs.text.contains("/auth/login/"),
        "with the canonical paths"
    );
}

on_each_backend!(served_documents_are_the_generated_one);

/// The examples documented for `status` of an operation.
fn documented_examples(operation: &Value, status: u16) -> Vec<Value> {
    operation["responses"][status.to_string()]["content"]["application/json"]["examples"]
        .as_object()
        .map(|examples| examples.values().map(|e| e["value"].clone()).collect())
        .unwrap_or_default()
}

fn documents(operation: &Value, status: u16) -> bool {
    operation["responses"].get(status.to_string()).is_some()
}

/// Every error answer the document promises that a request can provoke without setup is the
/// server's real answer: the status, a body among the documented examples and the documented
/// headers. (The converse, that the server answers nothing undocumented, is schemathesis's
/// `status_code_conformance` check in CI.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_error_answers_are_the_servers_answers() {
    for mode in [AuthMode::Token, AuthMode::Jwt, AuthMode::Session] {
        let app = TestApp::spawn_with(Backend::Sqlite, |config| {
            config.auth.mode = mode;
            config.credential_cache.failed_checks_per_minute = 2;
        })
        .await;
        let spec = tessera::api::openapi_document(&app.config);
        // Session mode: a CSRF cookie and its header, so that the check passes where a test
        // is about something else.
        let csrf = app.send(app.client.get(app.url("/health/live"))).await;
        let csrf_token = csrf
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("csrftoken="))
            .map(|c| c.split(';').next().unwrap().to_owned());
        // A logged-in user, for the refusals that come after authentication.
        let mut signup = app.client.post(app.api("registration/"));
        if let Some(token) = &csrf_token {
            signup = signup
                .header("Cookie", format!("csrftoken={token}"))
                .header("X-CSRFToken", token);
        }
        let signup = signup.json(&crate::support::signup_body(
            "ada@example.com",
            crate::support::PASSWORD,
        ));
        let signed_up = app.send(signup).await;
        assert!(signed_up.status < 300, "{}", signed_up.text);
        let (mut authorization, mut session) = (None, None);
        match mode {
            AuthMode::Token => {
                let key = app
                    .login_key("ada@example.com", crate::support::PASSWORD)
                    .await;
                authorization = Some(format!("Token {key}"));
            }
            AuthMode::Jwt => {
                let login = app.login("ada@example.com", crate::support::PASSWORD).await;
                authorization = Some(format!("Bearer {}", login.body["access"].as_str().unwrap()));
            }
            AuthMode::Session => {
                let token = csrf_token.as_deref().unwrap();
                let login = app
                    .send(
                        app.client
                            .post(app.api("login/"))
                            .header("Cookie", format!("csrftoken={token}"))
                            .header("X-CSRFToken", token)
                            .json(&crate::support::credentials(
                                "ada@example.com",
                                crate::support::PASSWORD,
                            )),
                    )
                    .await;
                assert_eq!(login.status, 204, "{}", login.text);
                session = login
                    .headers
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(|c| c.strip_prefix("sessionid="))
                    .map(|c| c.split(';').next().unwrap().to_owned());
            }
        }
        // The per-address limit on failed credential checks (2 here) must not refuse the
        // user's own: checked once now, their credential is served from the cache after.
        // `csrf`: send the CSRF cookie and header; `authed`: send the user's credential.
        let request = |method: &str, path: &str, csrf: bool, authed: bool| {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut builder = app.client.request(method, app.url(path));
            let mut cookies = Vec::new();
            if let (true, Some(token)) = (csrf, &csrf_token) {
                cookies.push(format!("csrftoken={token}"));
                builder = builder.header("X-CSRFToken", token);
            }
            if authed {
                if let Some(id) = &session {
                    cookies.push(format!("sessionid={id}"));
                }
                if let Some(value) = &authorization {
                    builder = builder.header("Authorization", value);
                }
            }
            if !cookies.is_empty() {
                builder = builder.header("Cookie", cookies.join("; "));
            }
            builder
        };
        let warm = app.send(request("get", "/auth/user/", false, true)).await;
        assert_eq!(warm.status, 200, "{mode:?}: {}", warm.text);
        let bogus = match mode {
            AuthMode::Jwt => "Bearer not.a.jwt",
            _ => "Token 0000000000000000000000000000000000000000",
        };

        let mut checked = 0;
        for (path, method, op) in operations(&spec) {
            let what = format!("{mode:?} {method} {path}");
            let check = |reply: crate::support::Reply, status: u16, exact: bool| {
                assert_eq!(reply.status, status, "{what}: {}", reply.text);
                let examples = documented_examples(op, status);
                assert!(!examples.is_empty(), "{what}: {status} has no example");
                if exact {
                    assert!(
                        examples.contains(&reply.body),
                        "{what}: {status} answered {} but documents {examples:?}",
                        reply.body
                    );
                } else {
                    let keys = |v: &Value| {
                        v.as_object()
                            .map(|o| o.keys().cloned().collect::<BTreeSet<_>>())
                    };
                    assert!(
                        examples.iter().any(|e| keys(e) == keys(&reply.body)),
                        "{what}: {status} answered {} but documents {examples:?}",
                        reply.body
                    );
                }
                let headers = op["responses"][status.to_string()]["headers"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for header in headers.keys() {
                    assert!(
                        reply.headers.get(header).is_some(),
                        "{what}: {status} lacks {header}"
                    );
                }
            };
            if op.get("requestBody").is_some() {
                let limit = app.config.server.max_body_bytes;
                let big = format!("{{\"x\": \"{}\"}}", "a".repeat(limit));
                let reply = app
                    .send(
                        request(&method, &path, true, true)
                            .header("Content-Type", "application/json")
                            .body(big),
                    )
                    .await;
                check(reply, 413, true);
                let reply = app
                    .send(
                        request(&method, &path, true, true)
                            .header("Content-Type", "text/plain")
                            .body("x"),
                    )
                    .await;
                check(reply, 415, true);
                let reply = app
                    .send(
                        request(&method, &path, true, true)
                            .header("Content-Type", "application/json")
                            .body("{"),
                    )
                    .await;
                check(reply, 400, false);
                checked += 3;
            }
            let secured = op["security"].as_array().cloned().unwrap_or_default();
            let required = secured.iter().any(|r| {
                r.as_object()
                    .is_some_and(|r| r.keys().any(|k| k != "CSRFToken"))
            }) && secured
                .iter()
                .all(|r| r.as_object().is_some_and(|r| !r.is_empty()));
            if required {
                let status = if mode == AuthMode::Session { 403 } else { 401 };
                let reply = app
                    .send(request(&method, &path, true, false).json(&serde_json::json!({})))
                    .await;
                check(reply, status, true);
                checked += 1;
            }
            if documents(op, 401) && mode != AuthMode::Session && required {
                let reply = app
                    .send(
                        request(&method, &path, true, false)
                            .header("Authorization", bogus)
                            .json(&serde_json::json!({})),
                    )
                    .await;
                check(reply, 401, false);
                checked += 1;
            }
            let csrf_checked =
                secured.iter().any(|r| r.get("CSRFToken").is_some()) && method != "get";
            if csrf_checked {
                let token = csrf_token.as_deref().unwrap();
                let reply = app
                    .send(
                        request(&method, &path, false, false)
                            .header("Cookie", format!("csrftoken={token}"))
                            .json(&serde_json::json!({})),
                    )
                    .await;
                assert!(
                    documents(op, 403),
                    "{what}: the CSRF refusal is undocumented"
                );
                check(reply, 403, true);
                checked += 1;
            }
            if documents(op, 404) {
                // With the user's credential: `sessions/{id}/` finds no such id of theirs.
                let reply = app
                    .send(
                        request(&method, &path, true, true)
                            .json(&serde_json::json!({"key": "unknown"})),
                    )
                    .await;
                check(reply, 404, true);
                checked += 1;
            }
        }
        // The failed-check limit (2 a minute here): distinct unknown credentials, then 429.
        // (A JWT that fails its signature check is refused before any lookup and never
        // counts; a validly signed token of an ended session does.)
        let user = &spec["paths"]["/auth/user/"]["get"];
        assert!(
            documents(user, 429),
            "{mode:?}: GET user/ does not document 429"
        );
        if mode != AuthMode::Jwt {
            let mut last = None;
            for attempt in 1..=4 {
                // Shaped as the mode's credential (40 or 64 hex digits), so it is looked up.
                let unknown = format!("{attempt:040x}");
                let unknown_session = format!("{attempt:064x}");
                let builder = request("get", "/auth/user/", false, false);
                let builder = match mode {
                    AuthMode::Session => {
                        builder.header("Cookie", format!("sessionid={unknown_session}"))
                    }
                    _ => builder.header("Authorization", format!("Token {unknown}")),
                };
                last = Some(app.send(builder).await);
            }
            let reply = last.unwrap();
            assert_eq!(reply.status, 429, "{mode:?}: {}", reply.text);
            assert!(reply.headers.get("retry-after").is_some());
            let examples = documented_examples(user, 429);
            let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
            assert!(examples.iter().any(|e| keys(e) == keys(&reply.body)));
        }
        assert!(checked > 10, "{mode:?}: only {checked} answers checked");
    }
}

/// Statuses an operation cannot give are not documented.
#[test]
fn operations_document_only_what_they_can_answer() {
    let documented = |mode: AuthMode, path: &str, method: &str| {
        let mut config = Config::default();
        config.auth.mode = mode;
        let spec = tessera::api::openapi_document(&config);
        spec["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    // No body, so no 400/413/415; a credential, so the mode's refusal.
    assert_eq!(
        documented(AuthMode::Token, "/auth/user/", "get"),
        ["200", "401", "429", "503"]
    );
    assert_eq!(
        documented(AuthMode::Session, "/auth/user/", "get"),
        ["200", "403", "429", "503"]
    );
    // Registration needs no credential: no 401.
    assert!(
        !documented(AuthMode::Token, "/auth/registration/", "post").contains(&"401".to_owned())
    );
    // The JWT 401 names the Bearer challenge, not Token.
    let mut config = Config::default();
    config.auth.mode = AuthMode::Jwt;
    let spec = tessera::api::openapi_document(&config);
    let challenge = spec["paths"]["/auth/user/"]["get"]["responses"]["401"]["headers"]["WWW-Authenticate"]["description"]
        .as_str()
        .unwrap();
    assert!(challenge.contains("Bearer"), "{challenge}");
    // Registration answers one of two shapes.
    let created = spec["paths"]["/auth/registration/"]["post"]["responses"]["201"]["content"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["schema"]
        .clone();
    let reference = created["$ref"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let one_of = spec["components"]["schemas"][reference]["oneOf"]
        .as_array()
        .unwrap();
    assert_eq!(one_of.len(), 2, "{created}");
}
