//! HTTP: the dj-rest-auth-compatible API, its OpenAPI document, Swagger UI and health checks.
//!
//! Handlers only translate between HTTP and `service`; they never touch the database.

pub mod accounts;
pub mod auth;
pub mod caller;
pub mod cors;
pub mod csrf;
pub mod email_verification;
pub mod error;
pub mod framework_errors;
pub mod header_timeout;
pub mod health;
pub mod input;
pub mod jwt_mode;
pub mod password_reset;
pub mod session_mode;
pub mod token_mode;

use std::collections::BTreeMap;

use poem::middleware::{CatchPanic, CookieJarManager, NormalizePath, TrailingSlash};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get};
use poem_openapi::{OpenApiService, Tags};
use serde_json::Value;

use crate::api::accounts::UserApi;
use crate::api::email_verification::EmailVerificationApi;
use crate::api::error::ApiError;
use crate::api::framework_errors::AllowedMethods;
use crate::api::input::BodyLimit;
use crate::api::jwt_mode::JwtModeApi;
use crate::api::password_reset::PasswordResetApi;
use crate::api::session_mode::SessionModeApi;
use crate::api::token_mode::TokenModeApi;
use crate::config::{AuthMode, Config};
use crate::service::accounts::Accounts;

const TITLE: &str = "Tessera";
const DESCRIPTION: &str = "Account management: registration, email verification, login, \
    logout, user details, password change and reset, wire-compatible with dj-rest-auth. Errors follow Django REST framework's \
    shapes: `{\"detail\": ...}` or `{\"<field>\": [...]}`. Every path also works without its \
    trailing slash, and request bodies may also be form-encoded.";

/// Operation groups in the OpenAPI document.
#[derive(Tags)]
pub(crate) enum Tag {
    /// Log in and out.
    Auth,
    /// Create an account and confirm its email address.
    Registration,
    /// The logged-in user's details.
    User,
    /// Change or reset a password.
    Password,
}

/// A mode's API: its endpoint and its OpenAPI document (before our finishing touches).
struct Mounted {
    endpoint: poem::endpoint::BoxEndpoint<'static>,
    raw_spec: String,
    swagger_html: String,
}

/// The APIs of the configured mode: its own login/logout/registration (and JWT's token
/// endpoints) plus the endpoints every mode shares.
fn mounted(config: &Config) -> Mounted {
    let shared = (UserApi, EmailVerificationApi, PasswordResetApi);
    match config.auth.mode {
        AuthMode::Token => mount(config, (TokenModeApi, shared)),
        AuthMode::Jwt => mount(config, (JwtModeApi, shared)),
        AuthMode::Session => mount(config, (SessionModeApi, shared)),
    }
}

fn mount<T: poem_openapi::OpenApi + 'static>(config: &Config, apis: T) -> Mounted {
    let service = OpenApiService::new(apis, TITLE, env!("CARGO_PKG_VERSION"))
        .description(DESCRIPTION)
        .url_prefix(config.server.prefix.trim_end_matches('/'));
    Mounted {
        raw_spec: service.spec(),
        swagger_html: service.swagger_ui_html(),
        endpoint: poem::IntoEndpoint::into_endpoint(service),
    }
}

/// The OpenAPI document for `config`, as served and as committed in `openapi/openapi.json`.
pub fn openapi_document(config: &Config) -> Value {
    finish_document(&mounted(config).raw_spec, config)
}

/// Our finishing touches on poem-openapi's document:
/// - poem-openapi drops the trailing `/` of paths; dj-rest-auth's paths have it, and generated
///   clients should call the canonical form, so it is put back;
/// - the credential scheme is the configured mode's (the extractors declare token mode's).
fn finish_document(raw: &str, config: &Config) -> Value {
    let mut spec: Value = serde_json::from_str(raw).expect("poem-openapi emits JSON");
    if let Some(Value::Object(paths)) = spec.get_mut("paths") {
        let old = std::mem::take(paths);
        *paths = old
            .into_iter()
            .map(|(path, item)| {
                let path = if path.ends_with('/') {
                    path
                } else {
                    format!("{path}/")
                };
                (path, item)
            })
            .collect();
    }
    match config.auth.mode {
        AuthMode::Token => {}
        AuthMode::Jwt => use_jwt_security(&mut spec, config),
        AuthMode::Session => use_session_security(&mut spec, config),
    }
    optional_empty_bodies(&mut spec);
    spec
}

/// A request body whose schema requires no property may be left out altogether (the server
/// reads a missing body as `{}`), so it is documented as optional.
fn optional_empty_bodies(spec: &mut Value) {
    let schemas = spec["components"]["schemas"].clone();
    let Some(Value::Object(paths)) = spec.get_mut("paths") else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
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

/// The session cookie instead of the token scheme. Every unsafe operation also needs the
/// CSRF header, whether or not it needs a session (login and registration do too).
fn use_session_security(spec: &mut Value, config: &Config) {
    spec["components"]["securitySchemes"] = serde_json::json!({
        "SessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": config.session.cookie_name,
            "description": "The session cookie set by `login/` and `registration/`.",
        },
        "CSRFToken": {
            "type": "apiKey",
            "in": "header",
            "name": crate::api::csrf::HEADER,
            "description": "The value of the readable CSRF cookie (set by any response, e.g. \
                `GET csrf/`), required on every unsafe request.",
        },
    });
    let Some(Value::Object(paths)) = spec.get_mut("paths") else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for (method, operation) in item.iter_mut() {
            let unsafe_method = !matches!(method.as_str(), "get" | "head" | "options" | "trace");
            let mut requirement = serde_json::Map::new();
            if operation.get("security").is_some() {
                requirement.insert("SessionCookie".into(), serde_json::json!([]));
            }
            if unsafe_method {
                requirement.insert("CSRFToken".into(), serde_json::json!([]));
            }
            if requirement.is_empty() {
                continue;
            }
            operation["security"] = serde_json::json!([requirement]);
        }
    }
}

/// Bearer JWT (and the access cookie when configured) instead of the token scheme.
fn use_jwt_security(spec: &mut Value, config: &Config) {
    let mut schemes = serde_json::Map::new();
    schemes.insert(
        "JWTAuth".into(),
        serde_json::json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from `login/`, `registration/` or `token/refresh/`, \
                sent as `Authorization: Bearer <access>`.",
        }),
    );
    let mut requirement = vec![serde_json::json!({ "JWTAuth": [] })];
    if let Some(cookie) = &config.jwt.auth_cookie {
        schemes.insert(
            "JWTCookie".into(),
            serde_json::json!({
                "type": "apiKey",
                "in": "cookie",
                "name": cookie,
                "description": "The access token in its cookie (set by `login/`).",
            }),
        );
        requirement.push(serde_json::json!({ "JWTCookie": [] }));
    }
    spec["components"]["securitySchemes"] = Value::Object(schemes);
    if let Some(Value::Object(paths)) = spec.get_mut("paths") {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            if operation.get("security").is_some() {
                let mut requirements = requirement.clone();
                // `logout/` needs the refresh token (body or cookie), not an access token.
                if operation["operationId"] == "logout" {
                    requirements.push(serde_json::json!({}));
                }
                operation["security"] = Value::Array(requirements);
            }
        }
    }
}

/// The document as pretty JSON with a final newline (the committed file's exact form).
pub fn openapi_json(config: &Config) -> String {
    serde_json::to_string_pretty(&openapi_document(config)).expect("a JSON value serializes") + "\n"
}

pub fn openapi_yaml(config: &Config) -> String {
    serde_yaml::to_string(&openapi_document(config)).expect("a JSON value converts to YAML")
}

/// Methods per path, for the `Allow` header of 405 answers.
fn allowed_methods(spec: &Value) -> AllowedMethods {
    let mut map = BTreeMap::new();
    if let Some(Value::Object(paths)) = spec.get("paths") {
        for (path, item) in paths {
            let methods = item
                .as_object()
                .map(|ops| {
                    ops.keys()
                        .map(|m| m.to_ascii_uppercase())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            map.insert(path.trim_end_matches('/').to_owned(), methods);
        }
    }
    AllowedMethods::new(map)
}

/// The whole HTTP application.
pub fn routes(accounts: Accounts, config: &Config) -> impl Endpoint + 'static {
    let mounted = mounted(config);
    let spec = finish_document(&mounted.raw_spec, config);
    let allowed = allowed_methods(&spec);
    let spec_json = serde_json::to_string_pretty(&spec).expect("a JSON value serializes");
    let spec_yaml = serde_yaml::to_string(&spec).expect("a JSON value converts to YAML");
    // Swagger UI embeds its document; hand it ours.
    let swagger = mounted.swagger_html.replace(&mounted.raw_spec, &spec_json);
    let prefix = config.server.prefix.trim_end_matches('/').to_owned();
    let edge = std::sync::Arc::new(framework_errors::Edge {
        allowed,
        api_prefix: config.server.prefix.trim_end_matches('/').to_owned(),
        challenge: framework_errors::Challenge::for_mode(config.auth.mode),
        csrf: csrf_cookie(config),
        request_timeout: std::time::Duration::from_secs(config.server.request_timeout_seconds),
    });

    let mut route = Route::new()
        .nest(prefix, mounted.endpoint)
        .at(
            "/openapi.json",
            get(static_body(spec_json, "application/json")),
        )
        .at(
            "/openapi.yaml",
            get(static_body(spec_yaml, "application/yaml")),
        )
        .at("/docs", get(swagger_ui(swagger)))
        .nest("/health", health::routes());
    if config.auth.mode == AuthMode::Jwt {
        route = route.at("/.well-known/jwks.json", get(jwks));
    }
    route
        .with(NormalizePath::new(TrailingSlash::Trim))
        .data(accounts)
        .data(BodyLimit(config.server.max_body_bytes))
        .data(caller::TrustedProxies::from_config(
            &config.server.trusted_proxies,
        ))
        .with(CatchPanic::new().with_handler(|_| ApiError::internal().into_response()))
        .around(move |next, request| framework_errors::reshape(next, request, edge.clone()))
        // Outside the edge, which enforces CSRF in session mode.
        .data(csrf::TrustedOrigins::from_config(config))
        // So the cookie jar exists at the edge and its cookies reach every answer.
        .with(CookieJarManager::new())
        .with(cors::layer(config))
}

/// The readable CSRF cookie, wherever cookies authenticate: session mode (which enforces it
/// on every unsafe request), `auth.session_login`, and JWT access cookies with CSRF on.
fn csrf_cookie(config: &Config) -> Option<framework_errors::CsrfCookie> {
    let session = config.auth.mode == AuthMode::Session;
    let wanted = session
        || config.auth.session_login
        || (config.auth.mode == AuthMode::Jwt && config.jwt.cookie_use_csrf);
    wanted.then(|| framework_errors::CsrfCookie {
        session: config.session.clone(),
        enforce: session,
    })
}

/// The public keys that verify this service's JWTs, for other services to verify offline.
#[poem::handler]
fn jwks(accounts: poem::web::Data<&Accounts>) -> poem::web::Json<Value> {
    poem::web::Json(accounts.jwks())
}

fn static_body(body: String, content_type: &'static str) -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .body(body.clone())
    })
}

fn swagger_ui(html: String) -> impl Endpoint<Output = Html<String>> {
    poem::endpoint::make_sync(move |_| Html(html.clone()))
}
