//! The one place where errors become HTTP: DRF's status codes and body shapes.
//!
//! Bodies are `{"detail": "..."}` (view and auth errors), `{"<field>": ["..."]}` or
//! `{"non_field_errors": ["..."]}` (validation). In the OpenAPI document they are one schema,
//! `Error`, because client generators choke on several error shapes per operation; which
//! statuses each operation documents is `api::documented_errors`.

use std::fmt;

use poem::error::ResponseError;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{MetaResponses, MetaSchema, MetaSchemaRef, Registry};
use serde_json::{Map, Value, json};

use crate::messages;
use crate::service::error::{Error as ServiceError, FieldErrors};
use crate::service::jwt::JwtRejection;

const ERROR_SCHEMA: &str = "Error";

/// An HTTP error with a DRF-shaped JSON body.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
    headers: Vec<(header::HeaderName, String)>,
}

/// The catalogue: one named constructor per DRF error this service answers with. Handlers,
/// extractors and the edge build errors only through these.
impl ApiError {
    fn detail(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "detail": message.into() }),
            headers: Vec::new(),
        }
    }

    /// 400 with field errors (`{"<field>": [...]}`, `non_field_errors`).
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

    /// 400 with one field's error.
    pub fn field(field: &str, message: &str) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        Self::validation(&errors)
    }

    /// 400 `{"detail"}`: a request that makes no sense as sent.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::BAD_REQUEST, message)
    }

    pub fn json_parse_error(reason: impl fmt::Display) -> Self {
        Self::bad_request(messages::json_parse_error(reason))
    }

    pub fn form_parse_error(reason: impl fmt::Display) -> Self {
        Self::bad_request(messages::form_parse_error(reason))
    }

    pub fn unreadable_body() -> Self {
        Self::bad_request(messages::UNREADABLE_BODY)
    }

    /// 400: token-mode `logout/` without a token (dj-rest-auth's answer).
    pub fn not_logged_in() -> Self {
        Self::bad_request(messages::NOT_LOGGED_IN)
    }

    /// 401 (403 in session mode): no credential at all. The edge adds the mode's challenge.
    pub fn not_authenticated() -> Self {
        Self::authentication_failed(messages::NOT_PROVIDED)
    }

    /// 401: a credential was presented and refused, in DRF's words.
    pub fn authentication_failed(message: &str) -> Self {
        Self::detail(StatusCode::UNAUTHORIZED, message)
    }

    /// SimpleJWT's refusal on `token/verify/` and `token/refresh/`:
    /// `{"detail", "code": "token_not_valid"}` (401).
    pub fn token_not_valid(rejection: JwtRejection) -> Self {
        Self::token_not_valid_because(rejection.message())
    }

    /// `token/refresh/` with no refresh token anywhere.
    pub fn no_valid_refresh() -> Self {
        Self::token_not_valid_because(messages::NO_VALID_REFRESH)
    }

    fn token_not_valid_because(message: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: json!({ "detail": message, "code": "token_not_valid" }),
            headers: Vec::new(),
        }
    }

    /// SimpleJWT's answer to a bad access token on an authenticated endpoint.
    pub fn access_token_not_valid(rejection: JwtRejection) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: json!({
                "detail": messages::ACCESS_TOKEN_NOT_VALID,
                "code": "token_not_valid",
                "messages": [{
                    "token_class": "AccessToken",
                    "token_type": "access",
                    "message": rejection.message(),
                }],
            }),
            headers: Vec::new(),
        }
    }

    /// JWT `logout/` with a bad or revoked refresh token: dj-rest-auth answers without
    /// SimpleJWT's `code`, and says "blacklisted" or "invalid", nothing finer.
    pub fn refresh_refused_at_logout(rejection: JwtRejection) -> Self {
        let message = match rejection {
            JwtRejection::Blacklisted => messages::TOKEN_BLACKLISTED,
            _ => messages::TOKEN_INVALID,
        };
        Self::authentication_failed(message)
    }

    /// JWT `logout/` without a refresh token (it is looked for where it is configured to be).
    pub fn refresh_not_included(in_cookie: bool) -> Self {
        Self::authentication_failed(match in_cookie {
            true => messages::NO_REFRESH_IN_COOKIE,
            false => messages::NO_REFRESH_IN_DATA,
        })
    }

    /// 403: Django's CSRF refusal.
    pub fn csrf_failed(message: &str) -> Self {
        Self::detail(StatusCode::FORBIDDEN, message)
    }

    /// 403: a guarded action needs a fresh proof of the password (`reauthenticate/`).
    /// 403 for what no credential may do (DRF's `PermissionDenied` with its own words).
    pub fn forbidden(message: &str) -> Self {
        Self::detail(StatusCode::FORBIDDEN, message)
    }

    pub fn reauthentication_required() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            body: json!({
                "detail": messages::REAUTHENTICATION_REQUIRED,
                "code": "reauthentication_required",
            }),
            headers: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::detail(StatusCode::NOT_FOUND, messages::NOT_FOUND)
    }

    /// 405 with the `Allow` header listing what the path does accept.
    pub fn method_not_allowed(method: &str, allowed: &[String]) -> Self {
        let error = Self::detail(
            StatusCode::METHOD_NOT_ALLOWED,
            messages::method_not_allowed(method),
        );
        if allowed.is_empty() {
            error
        } else {
            error.with_header(header::ALLOW, &allowed.join(", "))
        }
    }

    /// 408: the request (body included) took longer than `server.request_timeout_seconds`.
    pub fn request_timeout() -> Self {
        Self::detail(StatusCode::REQUEST_TIMEOUT, messages::REQUEST_TIMED_OUT)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            messages::body_too_large(limit),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            messages::unsupported_media_type(content_type),
        )
    }

    /// 429 with `Retry-After`.
    pub fn throttled(wait_seconds: u64) -> Self {
        Self::detail(
            StatusCode::TOO_MANY_REQUESTS,
            messages::throttled(wait_seconds),
        )
        .with_header(header::RETRY_AFTER, &wait_seconds.to_string())
    }

    /// 503 with `Retry-After`: the database cannot be reached.
    pub fn service_unavailable() -> Self {
        Self::detail(
            StatusCode::SERVICE_UNAVAILABLE,
            messages::SERVICE_UNAVAILABLE,
        )
        .with_header(header::RETRY_AFTER, "5")
    }

    pub fn internal() -> Self {
        Self::detail(StatusCode::INTERNAL_SERVER_ERROR, messages::SERVER_ERROR)
    }

    /// Any other client error the framework raises, in its standard words.
    pub fn other_client_error(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("Request failed");
        Self::detail(status, format!("{reason}."))
    }

    fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
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
            ServiceError::Unauthenticated(message) => Self::authentication_failed(message),
            ServiceError::NotAuthenticated => Self::not_authenticated(),
            ServiceError::BadRequest(message) => Self::bad_request(message),
            ServiceError::NotFound => Self::not_found(),
            ServiceError::Forbidden(message) => Self::forbidden(message),
            ServiceError::ReauthenticationRequired => Self::reauthentication_required(),
            ServiceError::Throttled { wait_seconds } => Self::throttled(wait_seconds),
            ServiceError::TokenRejected(rejection) => Self::token_not_valid(rejection),
            ServiceError::Unavailable => Self::service_unavailable(),
            ServiceError::Database(err) if crate::store::is_unavailable(&err) => {
                tracing::error!(error = %err, "database unavailable");
                Self::service_unavailable()
            }
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

impl ApiError {
    /// The `Error` schema as JSON, for the document: poem-openapi drops a schema no operation
    /// references, and the operations reference it only once `api::documented_errors` has run.
    pub fn schema() -> (&'static str, Value) {
        let mut registry = Registry::new();
        <Self as ApiResponse>::register(&mut registry);
        let schema =
            serde_json::to_value(&registry.schemas[ERROR_SCHEMA]).expect("a schema serializes");
        (ERROR_SCHEMA, schema)
    }
}

impl ApiResponse for ApiError {
    /// None here: `api::documented_errors` documents each operation's own error answers.
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: Vec::new(),
        }
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<ApiError, _>(ERROR_SCHEMA.into(), |_| {
            let text = || MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")));
            let texts = || {
                MetaSchemaRef::Inline(Box::new(MetaSchema {
                    items: Some(Box::new(text())),
                    ..MetaSchema::new("array")
                }))
            };
            // `detail` and `code` are a text for view and JWT errors, and a list of messages
            // when they are the names of fields in error (`code` of `mfa/verify/`, `detail`
            // of its disabled-account answer).
            let text_or_texts = |description| {
                MetaSchemaRef::Inline(Box::new(MetaSchema {
                    description: Some(description),
                    any_of: vec![text(), texts()],
                    ..MetaSchema::ANY
                }))
            };
            MetaSchema {
                description: Some(
                    "A DRF-shaped error. View and authentication errors carry `detail` (and \
                     `code` for JWT errors); validation errors map each field name, or \
                     `non_field_errors`, to a list of messages.",
                ),
                properties: vec![
                    (
                        "detail",
                        text_or_texts("Why the request was refused (a list in field errors)."),
                    ),
                    (
                        "code",
                        text_or_texts("A machine-readable reason, or the `code` field's errors."),
                    ),
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
