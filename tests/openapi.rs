//! The OpenAPI document: committed copy up to date, served as generated, fit for generators.

mod common;

use std::collections::BTreeSet;

use common::{Backend, TestApp};
use serde_json::Value;
use tessera::Config;

const COMMITTED: &str = include_str!("../openapi/openapi.json");

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

#[test]
fn committed_document_matches_the_generated_one() {
    let generated = tessera::api::openapi_json(&Config::default());
    assert!(
        COMMITTED == generated,
        "openapi/openapi.json is out of date; regenerate it with\n\n    \
         cargo run -- openapi > openapi/openapi.json\n"
    );
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
