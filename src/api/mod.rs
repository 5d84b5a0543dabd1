//! HTTP: the dj-rest-auth-compatible API, its OpenAPI document, Swagger UI and health checks.
//!
//! A request travels `edge/` (CORS, cookies, security headers, CSRF, error reshaping,
//! timeouts) → an operation in `endpoints/` (shared by every mode) or in `mode/` (what exists
//! in one mode alone), which reads its body with `input`, its credential with `credentials`
//! (as the mode `mode::Mode` reads it) and calls `service`. Handlers never touch the database.

pub mod caller;
pub mod cookies;
pub mod docs_page;
pub mod document;
pub mod documented_errors;
pub mod edge;
pub mod email_link_pages;
pub mod endpoints;
pub mod error;
pub mod guard;
pub mod health;
pub mod inbox_pages;
pub mod input;
pub mod mode;
pub mod responses;
pub mod session_cookie;
pub mod tags;

use anyhow::Context;
use poem::middleware::{NormalizePath, TrailingSlash};
use poem::web::Redirect;
use poem::{Endpoint, EndpointExt, Response, Route, get};
use serde_json::Value;

use crate::api::edge::body_limit::BodyLimit;
use crate::api::edge::methods::AllowedMethods;
use crate::api::edge::reshape::Challenge;
use crate::api::endpoints::{
    AuthApi, EmailAddressesApi, EmailVerificationApi, LeavingApi, MfaApi, PasswordResetApi,
    ReauthenticateApi, SessionsApi, SocialApi, UserApi, description,
};
use crate::api::guard::Guard;
use crate::api::mode::credentials::Authenticate;
use crate::api::mode::{Jwt, Mode, Session, Token};
use crate::api::session_cookie::CookieSessions;
use crate::config::{AuthMode, Config};
use crate::service::accounts::Accounts;

/// The document's title, and the Swagger UI page's.
pub(crate) const TITLE: &str = "Tessera API";

/// The OpenAPI document for `config`, as served and as committed in `openapi/openapi.json`.
pub fn openapi_document(config: &Config) -> Value {
    let mounted = mounted(config, None).expect("a document needs no services");
    document::finish(&mounted.raw_spec, config, mounted.challenge)
}

/// The document as pretty JSON with a final newline (the committed file's exact form).
pub fn openapi_json(config: &Config) -> String {
    serde_json::to_string_pretty(&openapi_document(config)).expect("a JSON value serializes") + "\n"
}

pub fn openapi_yaml(config: &Config) -> String {
    serde_yaml::to_string(&openapi_document(config)).expect("a JSON value converts to YAML")
}

/// The whole HTTP application, and the guard that lets other routes read its credentials;
/// fails when the mode's credentials cannot be set up (a bad JWT key, say).
pub fn routes(
    accounts: Accounts,
    config: &Config,
    inbox: Option<crate::mail::inbox::Inbox>,
) -> anyhow::Result<(impl Endpoint<Output = Response> + 'static, Guard)> {
    let mounted = mounted(config, Some(&accounts))?;
    let spec = document::finish(&mounted.raw_spec, config, mounted.challenge);
    let mut allowed = AllowedMethods::from_document(&spec);
    if config.account.deletion == crate::config::AccountDeletion::Disabled {
        // The document still describes `DELETE user/` (and its 405); no answer offers it.
        let user = format!("{}/user", config.server.prefix.trim_end_matches('/'));
        allowed = allowed.without(&user, "DELETE");
    }
    let spec_json = serde_json::to_string_pretty(&spec).expect("a JSON value serializes");
    let spec_yaml = serde_yaml::to_string(&spec).expect("a JSON value converts to YAML");
    let docs = docs_page::html(&mounted.swagger_html, &spec_json, config);
    let prefix = config.server.prefix.trim_end_matches('/').to_owned();
    let api = mounted
        .endpoint
        .expect("mounted with services has an endpoint");

    let route = Route::new()
        .nest(prefix.as_str(), api)
        .at(
            "/openapi.json",
            get(static_body(spec_json, "application/json")),
        )
        .at(
            "/openapi.yaml",
            get(static_body(spec_yaml, "application/yaml")),
        )
        .at("/docs", get(docs_page::endpoint(docs)))
        .nest("/health", health::routes());
    // A newcomer opening the server's address lands on the documentation (unless the API
    // itself sits at the root).
    let route = match prefix.is_empty() {
        true => route,
        false => route.at(
            "/",
            get(poem::endpoint::make_sync(|_| Redirect::see_other("/docs"))),
        ),
    };
    // `/metrics` on the public listener, unless it has a listener of its own.
    let route = match config.metrics.enabled && config.metrics.bind.is_none() {
        true => route.at("/metrics", metrics_endpoint(accounts.clone())),
        false => route,
    };
    let route = match inbox {
        Some(inbox) => route.nest(
            "/_inbox",
            inbox_pages::routes(inbox, &config.email.site_name),
        ),
        None => route,
    };
    let route = (mounted.outside_prefix)(route);
    let route = email_link_pages::mount(route, config).context("loading page templates")?;
    let csrf = edge::csrf::Csrf::from_config(config);
    let sessions = CookieSessions::new(accounts.clone(), csrf.clone());
    let guard = {
        let attach_mode = mounted.attach_mode;
        let (accounts, sessions) = (accounts.clone(), sessions.clone());
        let proxies = caller::TrustedProxies::from_config(&config.server.trusted_proxies);
        Guard::new(move |request| {
            attach_mode(request);
            request.set_data(accounts.clone());
            request.set_data(sessions.clone());
            request.set_data(csrf.clone());
            request.set_data(proxies.clone());
        })
    };
    let metrics = accounts.metrics().clone();
    let app = route
        .with(NormalizePath::new(TrailingSlash::Trim))
        .data(accounts)
        .data(sessions)
        .data(BodyLimit(config.server.max_body_bytes));
    Ok((
        edge::wrap(app, config, mounted.challenge, allowed, metrics),
        guard,
    ))
}

/// `GET /metrics`: Prometheus' text exposition format.
pub fn metrics_endpoint(accounts: Accounts) -> impl Endpoint<Output = Response> {
    get(poem::endpoint::make(move |_| {
        let accounts = accounts.clone();
        async move {
            Response::builder()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(accounts.metrics_text().await)
        }
    }))
}

fn static_body(body: String, content_type: &'static str) -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .body(body.clone())
    })
}

/// The configured mode's API, ready to serve (`endpoint` is `None` for a document only).
struct Mounted {
    pub endpoint: Option<poem::endpoint::BoxEndpoint<'static>>,
    /// poem-openapi's document, before `api::document` finishes it.
    pub raw_spec: String,
    pub swagger_html: String,
    pub challenge: Challenge,
    /// Adds the mode's routes outside the API prefix.
    pub outside_prefix: Box<dyn FnOnce(Route) -> Route + Send>,
    /// Attaches the mode's state and way of reading credentials to a request (for `Guard`).
    pub attach_mode: Box<dyn Fn(&mut poem::Request) + Send + Sync>,
}

/// The one place that turns `auth.mode` into a credential strategy. Without `accounts` only
/// the document is built (`tessera openapi` needs no database).
fn mounted(config: &Config, accounts: Option<&Accounts>) -> anyhow::Result<Mounted> {
    match config.auth.mode {
        AuthMode::Token => mount::<Token>(config, accounts),
        AuthMode::Jwt => mount::<Jwt>(config, accounts),
        AuthMode::Session => mount::<Session>(config, accounts),
    }
}

fn mount<M: Mode>(config: &Config, accounts: Option<&Accounts>) -> anyhow::Result<Mounted> {
    let apis = (
        AuthApi::<M>::new(),
        UserApi::<M>::new(),
        EmailVerificationApi,
        PasswordResetApi,
        ReauthenticateApi::<M>::new(),
        SessionsApi::<M>::new(),
        EmailAddressesApi::<M>::new(),
        LeavingApi::<M>::new(),
        SocialApi::<M>::new(),
        M::own_api(),
    );
    // `mfa.enabled = false` removes the `mfa/` operations from the routes and the document.
    match config.mfa.enabled {
        true => mount_apis::<M, _>(config, accounts, (apis, MfaApi::<M>::new())),
        false => mount_apis::<M, _>(config, accounts, apis),
    }
}

fn mount_apis<M: Mode, A: poem_openapi::OpenApi + 'static>(
    config: &Config,
    accounts: Option<&Accounts>,
    apis: A,
) -> anyhow::Result<Mounted> {
    let service = poem_openapi::OpenApiService::new(apis, TITLE, env!("CARGO_PKG_VERSION"))
        .description(description(M::AUTHORIZE))
        .url_prefix(config.server.prefix.trim_end_matches('/'));
    let raw_spec = service.spec();
    let swagger_html = service.swagger_ui_html();
    type AttachMode = Box<dyn Fn(&mut poem::Request) + Send + Sync>;
    let (endpoint, outside_prefix, attach_mode): (
        _,
        Box<dyn FnOnce(Route) -> Route + Send>,
        AttachMode,
    ) = match accounts {
        Some(accounts) => {
            let state = M::state(accounts, config)?;
            let (outside, guarded) = (state.clone(), state.clone());
            let endpoint = poem::EndpointExt::data(service, state);
            (
                Some(poem::EndpointExt::boxed(endpoint)),
                Box::new(move |route| M::outside_prefix(route, &outside)),
                Box::new(move |request| {
                    request.set_data(guarded.clone());
                    request.set_data(Authenticate::of::<M>());
                }),
            )
        }
        None => (None, Box::new(|route| route), Box::new(|_| {})),
    };
    Ok(Mounted {
        endpoint,
        raw_spec,
        swagger_html,
        challenge: M::CHALLENGE,
        outside_prefix,
        attach_mode,
    })
}
