//! Turns every error that reaches the edge into DRF-shaped JSON, and gives 401s the mode's
//! challenge.
//!
//! Our own handlers already answer with `ApiError`. What is left is what poem and
//! poem-openapi produce before our code runs: unknown paths, wrong methods, missing content
//! types, panics. Each gets DRF's status and message, so a client only ever parses one shape.

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::api::edge::methods::AllowedMethods;
use crate::api::error::ApiError;

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
    /// The `WWW-Authenticate` value of a 401; `None` where there is no 401, only 403.
    pub const fn header(self) -> Option<&'static str> {
        match self {
            Challenge::Token => Some("Token"),
            Challenge::Bearer => Some("Bearer realm=\"api\""),
            Challenge::Forbidden => None,
        }
    }
}

/// What reshaping needs to know: the mode's challenge and, for 405s, each path's methods.
#[derive(Debug, Clone)]
pub struct Reshape {
    pub challenge: Challenge,
    pub allowed: AllowedMethods,
    /// For a 413 raised by the framework rather than by our body reader.
    pub body_limit: usize,
}

/// Runs the request; any error becomes its DRF answer, and a 401 gets the challenge.
pub async fn reshape<E: Endpoint>(
    next: Arc<E>,
    request: Request,
    edge: Arc<Reshape>,
) -> poem::Result<Response> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let mut response = match next.call(request).await {
        Ok(response) => response.into_response(),
        Err(err) => to_drf(err, &method, &path, &edge).into_response(),
    };
    if response.status() == StatusCode::UNAUTHORIZED {
        let headers = response.headers_mut();
        match edge.challenge.header() {
            Some(challenge) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            None => {
                headers.remove(header::WWW_AUTHENTICATE);
                response.set_status(StatusCode::FORBIDDEN);
            }
        }
    }
    Ok(response)
}

fn to_drf(err: poem::Error, method: &str, path: &str, edge: &Reshape) -> ApiError {
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
        return ApiError::json_parse_error(&parse.reason);
    }
    match err.status() {
        StatusCode::NOT_FOUND => ApiError::not_found(),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::method_not_allowed(method, &edge.allowed.for_path(path))
        }
        StatusCode::UNAUTHORIZED => ApiError::not_authenticated(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(edge.body_limit),
        status if status.is_server_error() => {
            tracing::error!(%status, error = %err, "request failed");
            ApiError::internal()
        }
        status => ApiError::other_client_error(status),
    }
}
