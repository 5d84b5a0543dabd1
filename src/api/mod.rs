//! HTTP: the dj-rest-auth-compatible API, its OpenAPI document, Swagger UI and health checks.
//!
//! Handlers only translate between HTTP and `service`; they never touch the database.

pub mod accounts;
pub mod auth;
pub mod email_verification;
pub mod error;
pub mod framework_errors;
pub mod health;
pub mod input;
pub mod password_reset;
pub mod token_mode;

use std::collections::BTreeMap;

use poem::middleware::{CatchPanic, NormalizePath, TrailingSlash};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get};
use poem_openapi::{OpenApiService, Tags};
use serde_json::Value;

use crate::api::accounts::UserApi;
use crate::api::email_verification::EmailVerificationApi;
use crate::api::error::ApiError;
use crate::api::framework_errors::AllowedMethods;
use crate::api::input::BodyLimit;
use crate::api::password_reset::PasswordResetApi;
use crate::api::token_mode::TokenModeApi;
use crate::config::Config;
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

type Apis = (
    TokenModeApi,
    UserApi,
    EmailVerificationApi,
    PasswordResetApi,
);

fn service(config: &Config) -> OpenApiService<Apis, ()> {
    let apis = (
        TokenModeApi,
        UserApi,
        EmailVerificationApi,
        PasswordResetApi,
    );
    OpenApiService::new(apis, TITLE, env!("CARGO_PKG_VERSION"))
        .description(DESCRIPTION)
        .url_prefix(config.server.prefix.trim_end_matches('/'))
}

/// The OpenAPI document for `config`, as served and as committed in `openapi/openapi.json`.
///
/// poem-openapi drops the trailing `/` of paths; dj-rest-auth's paths have it, and generated
/// clients should call the canonical form, so it is put back here.
pub fn openapi_document(config: &Config) -> Value {
    let spec: Value =
        serde_json::from_str(&service(config).spec()).expect("poem-openapi emits JSON");
    with_trailing_slashes(spec)
}

fn with_trailing_slashes(mut spec: Value) -> Value {
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
    spec
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
    let api = service(config);
    let spec = openapi_document(config);
    let allowed = allowed_methods(&spec);
    let spec_json = serde_json::to_string_pretty(&spec).expect("a JSON value serializes");
    let spec_yaml = openapi_yaml(config);
    // Swagger UI embeds its document; hand it ours (with the canonical trailing slashes).
    let swagger = api.swagger_ui_html().replace(&api.spec(), &spec_json);
    let prefix = config.server.prefix.trim_end_matches('/').to_owned();

    Route::new()
        .nest(prefix, api)
        .at(
            "/openapi.json",
            get(static_body(spec_json, "application/json")),
        )
        .at(
            "/openapi.yaml",
            get(static_body(spec_yaml, "application/yaml")),
        )
        .at("/docs", get(swagger_ui(swagger)))
        .nest("/health", health::routes())
        .with(NormalizePath::new(TrailingSlash::Trim))
        .data(accounts)
        .data(BodyLimit(config.server.max_body_bytes))
        .with(CatchPanic::new().with_handler(|_| ApiError::internal().into_response()))
        .around(move |next, request| framework_errors::reshape(next, request, allowed.clone()))
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
