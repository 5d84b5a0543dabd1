//! Turns every error that reaches the edge into DRF-shaped JSON.
//!
//! Our own handlers already answer with `ApiError`. What is left is what poem and
//! poem-openapi produce before our code runs: unknown paths, wrong methods, missing content
//! types, panics. Each gets DRF's status and message, so a client only ever parses one shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::api::error::{ApiError, NOT_PROVIDED};
use crate::config::AuthMode;

/// For 405 answers: the methods each API path accepts (from the OpenAPI document).
#[derive(Debug, Clone)]
pub struct AllowedMethods(Arc<BTreeMap<String, Vec<String>>>);

impl AllowedMethods {
    pub fn new(paths: BTreeMap<String, Vec<String>>) -> Self {
        Self(Arc::new(paths))
    }

    fn for_path(&self, path: &str) -> Vec<String> {
        let path = path.trim_end_matches('/');
        self.0.get(path).cloned().unwrap_or_default()
    }
}

/// How a 401 asks for credentials, per mode (DRF's `authenticate_header`).
#[derive(Debug, Clone, Copy)]
pub enum Challenge {
    /// `WWW-Authenticate: Token`.
    Token,
    /// `WWW-Authenticate: Bearer realm="api"`.
    Bearer,
    /// Session authentication has no challenge, so DRF answers 403 instead of 401.
    Forbidden,
}

impl Challenge {
    pub fn for_mode(mode: AuthMode) -> Self {
        match mode {
            AuthMode::Token => Challenge::Token,
            AuthMode::Jwt => Challenge::Bearer,
            AuthMode::Session => Challenge::Forbidden,
        }
    }
}

/// The readable CSRF cookie's settings, and whether the edge itself requires the token.
#[derive(Debug, Clone)]
pub struct CsrfCookie {
    pub session: crate::config::SessionConfig,
    /// Session mode: every unsafe request needs `X-CSRFToken`, login and registration included.
    pub enforce: bool,
}

/// What the outermost layer does to every exchange.
#[derive(Debug, Clone)]
pub struct Edge {
    pub allowed: AllowedMethods,
    /// The account API's path prefix: its answers carry credentials or account data.
    pub api_prefix: String,
    pub challenge: Challenge,
    /// Set when cookies authenticate in this configuration.
    pub csrf: Option<CsrfCookie>,
    /// The longest a request may take, body included.
    pub request_timeout: std::time::Duration,
}

/// Runs the request and reshapes any error it ends in (the outermost layer, so it sees
/// errors from every other one); enforces CSRF and hands out its cookie where cookies
/// authenticate; gives 401s the mode's challenge.
pub async fn reshape<E: Endpoint>(
    next: E,
    request: Request,
    edge: std::sync::Arc<Edge>,
) -> poem::Result<Response> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let jar = request.cookie().clone();
    let refused = match &edge.csrf {
        Some(csrf) if csrf.enforce => {
            crate::api::csrf::check(&request, &csrf.session.csrf_cookie_name).err()
        }
        _ => None,
    };
    let mut response = match refused {
        Some(refusal) => refusal.into_response(),
        None => match tokio::time::timeout(edge.request_timeout, next.call(request)).await {
            Ok(Ok(response)) => response.into_response(),
            Ok(Err(err)) => to_drf(err, &method, &path, &edge.allowed).into_response(),
            // A client trickling its body must not hold a worker: give up and say so.
            Err(_) => {
                ApiError::detail(StatusCode::REQUEST_TIMEOUT, "Request timed out.").into_response()
            }
        },
    };
    // Any answer to a request without the cookie sets one (unless the handler just did).
    if let Some(csrf) = &edge.csrf
        && jar.get(&csrf.session.csrf_cookie_name).is_none()
    {
        jar.add(crate::api::csrf::new_cookie(&csrf.session));
    }
    secure_headers(&path, &edge, response.headers_mut());
    if response.status() == StatusCode::UNAUTHORIZED {
        let headers = response.headers_mut();
        match edge.challenge {
            Challenge::Token => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
            }
            Challenge::Bearer => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"api\""),
                );
            }
            Challenge::Forbidden => {
                headers.remove(header::WWW_AUTHENTICATE);
                response.set_status(StatusCode::FORBIDDEN);
            }
        }
    }
    Ok(response)
}

/// Headers every answer carries, errors included. Account data is never cached, never framed
/// and never sniffed as something else; Swagger UI (inline script and style) gets a looser
/// policy than the JSON API.
fn secure_headers(path: &str, edge: &Edge, headers: &mut poem::http::HeaderMap) {
    let fixed = |value: &'static str| HeaderValue::from_static(value);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, fixed("nosniff"));
    headers.insert(header::REFERRER_POLICY, fixed("no-referrer"));
    let docs = path == "/docs" || path.starts_with("/docs/");
    if docs {
        headers.insert(header::X_FRAME_OPTIONS, fixed("SAMEORIGIN"));
    } else {
        headers.insert(header::X_FRAME_OPTIONS, fixed("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            fixed("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if path.starts_with(edge.api_prefix.as_str()) {
        headers.insert(header::CACHE_CONTROL, fixed("no-store"));
    }
}

fn to_drf(err: poem::Error, method: &str, path: &str, allowed: &AllowedMethods) -> ApiError {
    if let Some(ours) = err.downcast_ref::<ApiError>() {
        return ours.clone();
    }
    if let Some(content) = err.downcast_ref::<poem_openapi::error::ContentTypeError>() {
        return match content {
            poem_openapi::error::ContentTypeError::NotSupported { content_type } => {
                ApiError::unsupported_media_type(content_type)
            }
            _ => ApiError::unsupported_media_type(""),
        };
    }
    if let Some(parse) = err.downcast_ref::<poem_openapi::error::ParseRequestPayloadError>() {
        return ApiError::detail(
            StatusCode::BAD_REQUEST,
            format!("JSON parse error - {}", parse.reason),
        );
    }
    match err.status() {
        StatusCode::NOT_FOUND => ApiError::not_found(),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::method_not_allowed(method, &allowed.for_path(path))
        }
        StatusCode::UNAUTHORIZED => ApiError::unauthorized(NOT_PROVIDED),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large.")
        }
        status if status.is_server_error() => {
            tracing::error!(%status, error = %err, "request failed");
            ApiError::internal()
        }
        status => ApiError::detail(
            status,
            status
                .canonical_reason()
                .unwrap_or("Request failed.")
                .to_owned()
                + ".",
        ),
    }
}
