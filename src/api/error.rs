//! The one place where errors become HTTP: DRF's status codes and body shapes.
//!
//! Bodies are `{"detail": "..."}` (view and auth errors), `{"<field>": ["..."]}` or
//! `{"non_field_errors": ["..."]}` (validation). In the OpenAPI document they are one schema,
//! `Error`, because client generators choke on several error shapes per operation.

use std::fmt;

use poem::error::ResponseError;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use serde_json::{Map, Value, json};

use crate::service::error::{Error as ServiceError, FieldErrors};

pub const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
pub const NOT_FOUND: &str = "Not found.";
pub const SERVER_ERROR: &str = "A server error occurred.";
const ERROR_SCHEMA: &str = "Error";

/// An HTTP error with a DRF-shaped JSON body.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
    headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    /// `{"detail": message}` with `status`.
    pub fn detail(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "detail": message.into() }),
            headers: Vec::new(),
        }
    }

    pub fn validation(errors: &FieldErrors) -> Self {
        let body: Map<String, Value> = errors
            .iter()
            .map(|(field, messages)| (field.clone(), json!(messages)))
            .collect();
        Self {
            status: StatusCode::BAD_REQUEST,
            body: Value::Object(body),
            headers: Vec::new(),
        }
    }

    /// 401 (the edge adds the mode's `WWW-Authenticate`, see `framework_errors::Challenge`).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::UNAUTHORIZED, message)
    }
    /// SimpleJWT's refusal: `{"detail": message, "code": "token_not_valid"}` (401).
    pub fn token_not_valid(message: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: json!({ "detail": message, "code": "token_not_valid" }),
            headers: Vec::new(),
        }
    }

    /// SimpleJWT's answer to a bad access token on an authenticated endpoint.
    pub fn access_token_not_valid(message: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: json!({
                "detail": "Given token not valid for any token type",
                "code": "token_not_valid",
                "messages": [{
                    "token_class": "AccessToken",
                    "token_type": "access",
                    "message": message,
                }],
            }),
            headers: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::detail(StatusCode::NOT_FOUND, NOT_FOUND)
    }

    /// 405 with the `Allow` header listing what the path does accept.
    pub fn method_not_allowed(method: &str, allowed: &[String]) -> Self {
        let error = Self::detail(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method \"{method}\" not allowed."),
        );
        if allowed.is_empty() {
            error
        } else {
            error.with_header(header::ALLOW, &allowed.join(", "))
        }
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported media type \"{content_type}\" in request."),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than the limit of {limit} bytes."),
        )
    }

    pub fn internal() -> Self {
        Self::detail(StatusCode::INTERNAL_SERVER_ERROR, SERVER_ERROR)
    }

    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> &Value {
        &self.body
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(errors) => Self::validation(&errors),
            ServiceError::Unauthenticated(message) => Self::unauthorized(message),
            ServiceError::NotAuthenticated => Self::unauthorized(NOT_PROVIDED),
            ServiceError::BadRequest(message) => Self::detail(StatusCode::BAD_REQUEST, message),
            ServiceError::NotFound => Self::not_found(),
            ServiceError::Throttled { wait_seconds } => Self::detail(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Request was throttled. Expected available in {wait_seconds} seconds."),
            )
            .with_header(header::RETRY_AFTER, &wait_seconds.to_string()),
            ServiceError::TokenRejected(rejection) => Self::token_not_valid(rejection.message()),
            ServiceError::Database(err) => {
                tracing::error!(error = %err, "database error");
                Self::internal()
            }
            ServiceError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                Self::internal()
            }
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.body)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut response = Response::builder()
            .status(self.status)
            .content_type("application/json")
            .body(self.body.to_string());
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(name.clone(), value);
            }
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

/// The error answers any operation can give, documented once for every operation.
const DOCUMENTED: &[(u16, &str)] = &[
    (
        400,
        "Invalid input: field errors, `non_field_errors`, or `detail`.",
    ),
    (
        401,
        "Missing or invalid credentials (`WWW-Authenticate: Token`).",
    ),
    (403, "Not allowed."),
    (404, "Not found."),
    (405, "Method not allowed (see the `Allow` header)."),
    (413, "Request body too large."),
    (415, "Unsupported media type: send JSON."),
    (429, "Too many requests (see `Retry-After`)."),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED
                .iter()
                .map(|&(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json",
                        schema: MetaSchemaRef::Reference(ERROR_SCHEMA.into()),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<ApiError, _>(ERROR_SCHEMA.into(), |_| {
            let text = || MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")));
            MetaSchema {
                description: Some(
                    "A DRF-shaped error. View and authentication errors carry `detail` (and \
                     `code` for JWT errors); validation errors map each field name, or \
                     `non_field_errors`, to a list of messages.",
                ),
                properties: vec![
                    ("detail", text()),
                    ("code", text()),
                    (
                        "messages",
                        MetaSchemaRef::Inline(Box::new(MetaSchema {
                            description: Some("JWT errors: why each token type refused it."),
                            items: Some(Box::new(MetaSchemaRef::Inline(Box::new(
                                MetaSchema::new("object"),
                            )))),
                            ..MetaSchema::new("array")
                        })),
                    ),
                ],
                additional_properties: Some(Box::new(MetaSchemaRef::Inline(Box::new(
                    MetaSchema {
                        items: Some(Box::new(text())),
                        ..MetaSchema::new("array")
                    },
                )))),
                example: Some(json!({ "email": ["Enter a valid email address."] })),
                ..MetaSchema::new("object")
            }
        });
    }
}
