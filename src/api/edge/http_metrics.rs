//! The HTTP metrics: every request counted by operation (`operationId`, or `other` for pages,
//! health checks and unknown paths), method and status class, with its latency. The method is
//! one of the standard ones or `other`, so a client cannot make up label values.

use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response};

use crate::api::edge::methods::AllowedMethods;
use crate::metrics::SharedMetrics;

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub async fn observe<E: Endpoint>(
    next: Arc<E>,
    request: Request,
    metrics: SharedMetrics,
    operations: AllowedMethods,
) -> poem::Result<Response> {
    let method = request.method().as_str();
    let method = METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other");
    let operation = operations
        .operation_id(method, request.uri().path())
        .unwrap_or("other")
        .to_owned();
    let started = Instant::now();
    let response = match next.call(request).await {
        Ok(response) => response.into_response(),
        Err(err) => err.into_response(),
    };
    metrics.observe_request(
        &operation,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    Ok(response)
}
