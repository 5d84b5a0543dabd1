//! The HTTP edge: the layers every request passes through around the API, one concern a file.
//!
//! From the outside in:
//! 0. `request_id`: the request's id (kept from `X-Request-Id` or made), echoed in the answer;
//!    `access_log`: the request's span, and one line per request (status, duration);
//!    `http_metrics`: requests and latency by operation;
//! 1. `cors`: CORS for the listed origins, nothing for others;
//! 2. poem's cookie jar, so cookies set anywhere inside reach the answer;
//! 3. `csrf::hand_out_cookie`: every answer gives a cookie-less client a CSRF cookie;
//! 4. `security_headers`: on every answer, errors included;
//! 5. `methods`: 405 for an unsafe method a path does not take, before CSRF;
//! 6. `csrf::enforce`: session mode's check on every unsafe request;
//! 7. `reshape`: every error becomes DRF-shaped JSON, 401s get the mode's challenge;
//! 8. `timeouts`: the request deadline (408);
//! 9. panics become a 500 in DRF's shape.
//!
//! `body_limit` and `header_timeout` are the limits enforced where bytes are read.

pub mod access_log;
pub mod body_limit;
pub mod cors;
pub mod csrf;
pub mod header_timeout;
pub mod http_metrics;
pub mod link_paths;
pub mod methods;
pub mod request_id;
pub mod reshape;
pub mod security_headers;
pub mod timeouts;

use std::sync::Arc;
use std::time::Duration;

use poem::middleware::{CatchPanic, CookieJarManager};
use poem::{Endpoint, EndpointExt, IntoResponse};

use crate::api::error::ApiError;
use crate::config::Config;
use methods::AllowedMethods;
use reshape::{Challenge, Reshape};

/// Wraps the application's routes in the edge's layers.
pub fn wrap(
    inner: impl Endpoint + 'static,
    config: &Config,
    challenge: Challenge,
    allowed: AllowedMethods,
    metrics: crate::metrics::SharedMetrics,
) -> impl Endpoint<Output = poem::Response> + 'static {
    let operations = allowed.clone();
    let reshaping = Arc::new(Reshape {
        challenge,
        allowed: allowed.clone(),
        body_limit: config.server.max_body_bytes,
    });
    let deadline = Duration::from_secs(config.server.request_timeout_seconds);
    let api_prefix: Arc<str> = config.server.prefix.trim_end_matches('/').into();
    inner
        .with(CatchPanic::new().with_handler(|_| ApiError::internal().into_response()))
        .around(move |next, request| timeouts::request_deadline(next, request, deadline))
        .around(move |next, request| reshape::reshape(next, request, reshaping.clone()))
        .around(csrf::enforce)
        .around(move |next, request| {
            methods::refuse_unknown_methods(next, request, allowed.clone())
        })
        .around(move |next, request| security_headers::add(next, request, api_prefix.clone()))
        .around(csrf::hand_out_cookie)
        // One dynamic call here keeps the type of the whole stack shallow enough for the
        // compiler to lay out, also inside a product that adds layers of its own.
        .boxed()
        .data(csrf::Csrf::from_config(config))
        // The client's address (rate limits, audit) and the scheme a proxy ended (CSRF).
        .data(crate::api::caller::TrustedProxies::from_config(
            &config.server.trusted_proxies,
        ))
        .with(CookieJarManager::new())
        .with(cors::layer(config))
        .around(move |next, request| {
            http_metrics::observe(next, request, metrics.clone(), operations.clone())
        })
        .around(access_log::log)
        .around(request_id::assign)
}
