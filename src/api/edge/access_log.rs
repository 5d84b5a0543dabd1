//! The access log: one line per request at `info` under the `tessera::access` target, with
//! the method, the path (never the query string, which may carry secrets), the status and the
//! duration. `log.level = "warn"` (or `tessera::access=warn`) turns it off.

use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response};

const TARGET: &str = "tessera::access";

pub async fn log<E: Endpoint>(next: Arc<E>, request: Request) -> poem::Result<Response> {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return next.call(request).await.map(IntoResponse::into_response);
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let result = next.call(request).await.map(IntoResponse::into_response);
    let status = match &result {
        Ok(response) => response.status(),
        Err(err) => err.status(),
    };
    tracing::info!(
        target: TARGET,
        method = %method,
        path = %path,
        status = status.as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    result
}
