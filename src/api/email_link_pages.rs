//! The pages the links in emails open when no frontend of its own takes them
//! (`frontend.verify_email_url` / `password_reset_url` unset): `/verify-email/{key}/` and
//! `/password-reset/confirm/{uid}/{token}/`, outside the API and its document.
//!
//! A GET only shows (mail scanners open links): the address the key confirms, or the form for
//! a new password when the link is live. The POST of the page's form does what the API's
//! `registration/verify-email/` and `password/reset/confirm/` do, through the same service
//! calls, and shows the API's messages. Forms carry the CSRF token in Django's
//! `csrfmiddlewaretoken` field and pass `Csrf`'s one check in every auth mode. No script;
//! HTML escaped; templates overridable from `frontend.pages_templates_dir` like the emails'.

use std::sync::Arc;

use minijinja::{Value, context};
use poem::http::{StatusCode, header};
use poem::web::cookie::CookieJar;
use poem::web::{Data, Path};
use poem::{Body, IntoResponse, Request, Response, Route, get, handler};
use serde_json::Map;

use crate::api::edge::body_limit::BodyLimit;
use crate::api::edge::csrf::{self, Csrf};
use crate::api::edge::link_paths::{PASSWORD_RESET, VERIFY_EMAIL};
use crate::api::edge::security_headers;
use crate::api::endpoints::email_verification::MAX_KEY_LENGTH;
use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Presence};
use crate::config::Config;
use crate::messages;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::error::Error;
use crate::service::password_reset::ResetConfirmation;
use crate::templates::{TemplateError, TemplateSet};

const VERIFY_EMAIL_PAGE: &str = "verify_email.html";
const PASSWORD_RESET_PAGE: &str = "password_reset.html";
const BUILT_IN: [(&str, &str); 2] = [
    (
        VERIFY_EMAIL_PAGE,
        include_str!("../../templates/pages/verify_email.html"),
    ),
    (
        PASSWORD_RESET_PAGE,
        include_str!("../../templates/pages/password_reset.html"),
    ),
];

/// Adds the pages whose links no configured frontend takes. The templates load (and are
/// test-rendered) here, so a broken override stops startup.
pub fn mount(route: Route, config: &Config) -> Result<Route, TemplateError> {
    let pages = Pages::load(config)?;
    let route = match config.frontend.verify_email_url {
        Some(_) => route,
        None => route.at(
            format!("{VERIFY_EMAIL}:key"),
            poem::EndpointExt::data(get(show_address).post(confirm_address), pages.clone()),
        ),
    };
    Ok(match config.frontend.password_reset_url {
        Some(_) => route,
        None => route.at(
            format!("{PASSWORD_RESET}:uid/:token"),
            poem::EndpointExt::data(get(show_reset_form).post(reset_password), pages),
        ),
    })
}

/// What a page shows: the form, the result, an invalid link, or a refusal (`error`).
#[derive(Clone, Copy)]
enum State {
    Form,
    Done,
    Invalid,
    Error,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Form => "form",
            State::Done => "done",
            State::Invalid => "invalid",
            State::Error => "error",
        }
    }
}

/// The variables of a page, every one always defined (templates run with strict undefined).
#[derive(Default)]
struct Content {
    email: String,
    csrf_token: String,
    error: String,
    /// The API's error body whose field errors the reset form shows (`Null`: none).
    errors: serde_json::Value,
    message: &'static str,
}

#[derive(Clone)]
struct Pages {
    templates: Arc<TemplateSet>,
    site_name: Arc<str>,
}

impl Pages {
    fn load(config: &Config) -> Result<Self, TemplateError> {
        let templates = TemplateSet::load(
            "page",
            "frontend.pages_templates_dir",
            &BUILT_IN,
            config.frontend.pages_templates_dir.as_deref(),
        )?;
        let pages = Self {
            templates: Arc::new(templates),
            site_name: config.email.site_name.as_str().into(),
        };
        // Every state of every page, so a misspelt variable in any branch fails now.
        let sample = Content {
            email: "ada@example.com".into(),
            csrf_token: "TOKEN".into(),
            error: messages::NOT_FOUND.into(),
            errors: serde_json::json!({"new_password2": ["This password is too common."]}),
            message: messages::RESET_DONE,
        };
        for page in [VERIFY_EMAIL_PAGE, PASSWORD_RESET_PAGE] {
            for state in [State::Form, State::Done, State::Invalid, State::Error] {
                pages
                    .templates
                    .render(page, &pages.context(state, &sample))?;
            }
        }
        Ok(pages)
    }

    fn context(&self, state: State, content: &Content) -> Value {
        context! {
            site_name => &*self.site_name,
            state => state.name(),
            email => &content.email,
            csrf_field => csrf::FORM_FIELD,
            csrf_token => &content.csrf_token,
            error => &content.error,
            errors => Value::from(minijinja::value::Serde(reset_errors(&content.errors))),
            message => content.message,
        }
    }

    /// The page `name` in `state`, with its own Content-Security-Policy (its style by hash).
    fn render(&self, name: &str, status: StatusCode, state: State, content: Content) -> Response {
        match self.templates.render(name, &self.context(state, &content)) {
            Ok(html) => Response::builder()
                .status(status)
                .content_type("text/html; charset=utf-8")
                .header(
                    header::CONTENT_SECURITY_POLICY,
                    security_headers::page_policy(&html),
                )
                .body(html),
            Err(err) => {
                tracing::error!(error = %err, "rendering a page");
                ApiError::internal().into_response()
            }
        }
    }

    /// The page `name` saying why `refusal` was refused (the API's words and status).
    fn refusal(&self, name: &str, refusal: ApiError) -> Response {
        let content = Content {
            error: detail(&refusal),
            ..Content::default()
        };
        self.render(name, refusal.status(), State::Error, content)
    }
}

/// An error's `detail`, or else its messages joined.
fn detail(error: &ApiError) -> String {
    match error.body().get("detail").and_then(|d| d.as_str()) {
        Some(detail) => detail.to_owned(),
        None => error
            .body()
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(_, messages)| messages.as_array().into_iter().flatten())
            .filter_map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The reset form's errors from an API error body: every field the form shows, defined.
fn reset_errors(body: &serde_json::Value) -> Map<String, serde_json::Value> {
    ["new_password1", "new_password2", "non_field_errors"]
        .into_iter()
        .map(|field| {
            let messages = body.get(field).cloned();
            let messages = messages.unwrap_or(serde_json::Value::Array(Vec::new()));
            (field.to_owned(), messages)
        })
        .collect()
}

/// The fields of the page's form post (`application/x-www-form-urlencoded`; a repeated name
/// keeps its last value, as Django's `QueryDict`). Anything else reads as no fields.
async fn form_fields(
    request: &Request,
    body: Body,
) -> Result<Map<String, serde_json::Value>, ApiError> {
    let limit = request.data::<BodyLimit>().unwrap_or(&BodyLimit::DEFAULT).0;
    let bytes = body
        .into_bytes_limit(limit)
        .await
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => ApiError::payload_too_large(limit),
            _ => ApiError::unreadable_body(),
        })?;
    let is_form = request
        .content_type()
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok(Map::new());
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&bytes).map_err(ApiError::form_parse_error)?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect())
}

/// The form's CSRF check: `Csrf`'s, with the token from the form's field.
fn check_csrf(request: &Request, fields: &Map<String, serde_json::Value>) -> Result<(), ApiError> {
    let csrf = request.data::<Csrf>().ok_or_else(ApiError::internal)?;
    let token = fields.get(csrf::FORM_FIELD).and_then(|v| v.as_str());
    csrf.check_form(request, token)
}

/// The key as the API reads it: `None` for one no key can be (then the link is invalid).
fn key_of(key: &str) -> Option<String> {
    let mut fields = Fields::new(Map::from_iter([("key".to_owned(), key.into())]));
    fields.text("key", Presence::Required, MAX_KEY_LENGTH)
}

/// GET: the address the key confirms and a Confirm button; confirming is the POST's.
#[handler]
async fn show_address(
    Path(key): Path<String>,
    accounts: Data<&Accounts>,
    pages: Data<&Pages>,
    csrf: Data<&Csrf>,
    jar: &CookieJar,
) -> Response {
    let address = match key_of(&key) {
        Some(key) => accounts.address_to_confirm(&key).await,
        None => Ok(None),
    };
    match address {
        Ok(Some(email)) => {
            let content = Content {
                email,
                csrf_token: csrf.token(jar),
                ..Content::default()
            };
            pages.render(VERIFY_EMAIL_PAGE, StatusCode::OK, State::Form, content)
        }
        Ok(None) => invalid_key(&pages),
        Err(err) => pages.refusal(VERIFY_EMAIL_PAGE, err.into()),
    }
}

/// POST: confirms as `registration/verify-email/` does, and shows the outcome.
#[handler]
async fn confirm_address(
    Path(key): Path<String>,
    accounts: Data<&Accounts>,
    pages: Data<&Pages>,
    caller: Caller,
    request: &Request,
    body: Body,
) -> Response {
    let checked = match form_fields(request, body).await {
        Ok(fields) => check_csrf(request, &fields),
        Err(err) => Err(err),
    };
    if let Err(refusal) = checked {
        return pages.refusal(VERIFY_EMAIL_PAGE, refusal);
    }
    let Some(key) = key_of(&key) else {
        return invalid_key(&pages);
    };
    // Read before the key is spent, to say which address is now confirmed.
    let email = accounts.address_to_confirm(&key).await;
    match accounts.confirm_email(&key, &caller).await {
        Ok(()) => {
            let content = Content {
                email: email.ok().flatten().unwrap_or_default(),
                ..Content::default()
            };
            pages.render(VERIFY_EMAIL_PAGE, StatusCode::OK, State::Done, content)
        }
        // The API's 404: the key is unknown, used or expired (or its address taken by now).
        Err(Error::NotFound) => invalid_key(&pages),
        Err(err) => pages.refusal(VERIFY_EMAIL_PAGE, err.into()),
    }
}

/// 404, as the API answers a key that is unknown, used or expired.
fn invalid_key(pages: &Pages) -> Response {
    let status = StatusCode::NOT_FOUND;
    pages.render(
        VERIFY_EMAIL_PAGE,
        status,
        State::Invalid,
        Content::default(),
    )
}

/// GET: the form for a new password, when the link is live; it is used up only by the POST.
#[handler]
async fn show_reset_form(
    Path((uid, token)): Path<(String, String)>,
    accounts: Data<&Accounts>,
    pages: Data<&Pages>,
    csrf: Data<&Csrf>,
    jar: &CookieJar,
) -> Response {
    match accounts.reset_link_is_live(&uid, &token).await {
        Ok(true) => {
            let content = Content {
                csrf_token: csrf.token(jar),
                ..Content::default()
            };
            pages.render(PASSWORD_RESET_PAGE, StatusCode::OK, State::Form, content)
        }
        // 404: as for a confirmation key, there is nothing behind this link.
        Ok(false) => invalid_reset_link(&pages, StatusCode::NOT_FOUND),
        Err(err) => pages.refusal(PASSWORD_RESET_PAGE, err.into()),
    }
}

/// POST: sets the password as `password/reset/confirm/` does; on the validators' refusal the
/// form again, with their messages.
#[handler]
async fn reset_password(
    Path((uid, token)): Path<(String, String)>,
    accounts: Data<&Accounts>,
    pages: Data<&Pages>,
    csrf: Data<&Csrf>,
    caller: Caller,
    request: &Request,
    body: Body,
) -> Response {
    let mut fields = match form_fields(request, body).await {
        Ok(fields) => fields,
        Err(refusal) => return pages.refusal(PASSWORD_RESET_PAGE, refusal),
    };
    if let Err(refusal) = check_csrf(request, &fields) {
        return pages.refusal(PASSWORD_RESET_PAGE, refusal);
    }
    // The API's body, with the link's uid and token, read by the API's own parser.
    fields.insert("uid".into(), uid.into());
    fields.insert("token".into(), token.into());
    let form = ResetConfirmation::from_fields(&mut Fields::new(fields));
    let refusal: ApiError = match accounts.confirm_password_reset(form, &caller).await {
        Ok(()) => {
            let content = Content {
                message: messages::RESET_DONE,
                ..Content::default()
            };
            return pages.render(PASSWORD_RESET_PAGE, StatusCode::OK, State::Done, content);
        }
        Err(err) => err.into(),
    };
    let body = refusal.body();
    let field_errors = body.is_object() && body.get("detail").is_none();
    if field_errors && (body.get("uid").is_some() || body.get("token").is_some()) {
        return invalid_reset_link(&pages, refusal.status());
    }
    if !field_errors {
        return pages.refusal(PASSWORD_RESET_PAGE, refusal);
    }
    let content = Content {
        csrf_token: csrf.token(request.cookie()),
        errors: body.clone(),
        ..Content::default()
    };
    pages.render(PASSWORD_RESET_PAGE, refusal.status(), State::Form, content)
}

fn invalid_reset_link(pages: &Pages, status: StatusCode) -> Response {
    pages.render(
        PASSWORD_RESET_PAGE,
        status,
        State::Invalid,
        Content::default(),
    )
}
