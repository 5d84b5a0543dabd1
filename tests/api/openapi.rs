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
        assert!(
            op["responses"].get("401").is_some(),
            "{method} {path} documents no 401"
        );
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
