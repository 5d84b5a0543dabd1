//! Finishing touches on poem-openapi's document, for what poem-openapi cannot express:
//! - it drops the trailing `/` of paths; dj-rest-auth's paths have it, and generated clients
//!   should call the canonical form, so it is put back;
//! - security schemes are registered statically, without the configuration, so cookie names
//!   (`session.cookie_name`, `jwt.auth_cookie`) are filled in here;
//! - an operation's security alternatives are an OR-list, but session mode needs an AND
//!   (session cookie *and* `X-CSRFToken`), and the CSRF header on every unsafe operation,
//!   login and registration included;
//! - the shortest new password (`account.password_min_length`) is configuration, so the new
//!   password fields get their `minLength` here;
//! - a request body whose schema requires nothing may be left out (the server reads a
//!   missing body as `{}`), so it is documented as optional;
//! - each operation's error answers depend on the mode and the configuration
//!   (`documented_errors`);
//! - poem-openapi sorts the tags by name; they are put in journey order (`Tag::JOURNEY`).

use serde_json::{Map, Value, json};

use poem_openapi::Tags;

use crate::api::documented_errors::{self, CSRF_SCHEME};
use crate::api::edge::csrf;
use crate::api::edge::reshape::Challenge;
use crate::api::mode::{Mode, Session, jwt};
use crate::api::tags::Tag;
use crate::config::{AuthMode, Config};

pub fn finish(raw: &str, config: &Config, challenge: Challenge) -> Value {
    let mut spec: Value = serde_json::from_str(raw).expect("poem-openapi emits JSON");
    trailing_slashes(&mut spec);
    match config.auth.mode {
        AuthMode::Token => {}
        AuthMode::Jwt => jwt_access_cookie(&mut spec, config),
        AuthMode::Session => session_and_csrf(&mut spec, config),
    }
    // After the security requirements are final: they say who may get a 401 or a 403.
    documented_errors::document(&mut spec, config, challenge);
    new_password_min_length(&mut spec, config.account.password_min_length);
    optional_empty_bodies(&mut spec);
    tags_in_journey_order(&mut spec);
    spec
}

fn tags_in_journey_order(spec: &mut Value) {
    let Some(Value::Array(tags)) = spec.get_mut("tags") else {
        return;
    };
    let rank = |tag: &Value| {
        Tag::JOURNEY
            .iter()
            .position(|t| Some(t.name()) == tag["name"].as_str())
            .unwrap_or(usize::MAX)
    };
    tags.sort_by_key(rank);
}

/// The fields that set a new password (dj-rest-auth's names), wherever a schema has them.
const NEW_PASSWORD_FIELDS: &[&str] = &["password1", "password2", "new_password1", "new_password2"];

fn new_password_min_length(spec: &mut Value, min_length: usize) {
    let Some(Value::Object(schemas)) = spec.pointer_mut("/components/schemas") else {
        return;
    };
    for schema in schemas.values_mut() {
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for field in NEW_PASSWORD_FIELDS {
            if let Some(property) = properties.get_mut(*field) {
                property["minLength"] = json!(min_length);
            }
        }
    }
}

fn trailing_slashes(spec: &mut Value) {
    if let Some(Value::Object(paths)) = spec.get_mut("paths") {
        let old = std::mem::take(paths);
        *paths = old
            .into_iter()
            .map(|(path, item)| match path.ends_with('/') {
                true => (path, item),
                false => (format!("{path}/"), item),
            })
            .collect();
    }
}

/// Every operation of the document.
fn operations(spec: &mut Value) -> impl Iterator<Item = (&String, &mut Value)> {
    spec.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.iter_mut())
}

fn optional_empty_bodies(spec: &mut Value) {
    let schemas = spec["components"]["schemas"].clone();
    for (_, operation) in operations(spec) {
        let Some(body) = operation.get_mut("requestBody") else {
            continue;
        };
        let schema = &body["content"]["application/json"]["schema"];
        let schema = match schema["$ref"].as_str() {
            Some(reference) => &schemas[reference.trim_start_matches("#/components/schemas/")],
            None => schema,
        };
        let requires_nothing = schema["required"]
            .as_array()
            .is_none_or(|required| required.is_empty());
        if requires_nothing {
            body["required"] = Value::Bool(false);
        }
    }
}

/// The configured session cookie, and the AND of cookie and CSRF header.
fn session_and_csrf(spec: &mut Value, config: &Config) {
    let schemes = &mut spec["components"]["securitySchemes"];
    schemes[<Session as Mode>::SCHEME]["name"] = json!(config.session.cookie_name);
    schemes[CSRF_SCHEME] = json!({
        "type": "apiKey",
        "in": "header",
        "name": csrf::HEADER,
        "description": "The value of the readable CSRF cookie (set by any response, e.g. \
            `GET csrf/`), required on every unsafe request.",
    });
    for (method, operation) in operations(spec) {
        let unsafe_method = !matches!(method.as_str(), "get" | "head" | "options" | "trace");
        let mut requirement = Map::new();
        if operation.get("security").is_some() {
            requirement.insert(<Session as Mode>::SCHEME.into(), json!([]));
        }
        if unsafe_method {
            requirement.insert(CSRF_SCHEME.into(), json!([]));
        }
        if !requirement.is_empty() {
            operation["security"] = json!([requirement]);
        }
    }
}

/// With `jwt.auth_cookie`, the access token may also come in that cookie.
fn jwt_access_cookie(spec: &mut Value, config: &Config) {
    let Some(cookie) = &config.jwt.auth_cookie else {
        return;
    };
    spec["components"]["securitySchemes"][jwt::COOKIE_SCHEME] = json!({
        "type": "apiKey",
        "in": "cookie",
        "name": cookie,
        "description": "The access token in its cookie (set by `login/`).",
    });
    for (_, operation) in operations(spec) {
        let Some(Value::Array(requirements)) = operation.get_mut("security") else {
            continue;
        };
        // Beside the bearer alternative, before an optional `{}`.
        let at = requirements
            .iter()
            .position(|r| r.as_object().is_some_and(Map::is_empty))
            .unwrap_or(requirements.len());
        requirements.insert(at, json!({ jwt::COOKIE_SCHEME: [] }));
    }
}
