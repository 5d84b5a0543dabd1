//! The request's span and the access log. Every request runs inside a `request` span with its
//! id, method, path and (once a credential is read) user id, so every log line of the request
//! carries them; at the end one line at `info` under the `tessera::access` target gives the
//! status and the duration. The path never has its query string, which may carry secrets, nor
//! the key or token of an email-link page.
//! `log.level = "warn"` (or `tessera::access=warn`) turns the line off, not the span.

use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::api::edge::link_paths;
use crate::api::edge::request_id::RequestId;

const TARGET: &str = "tessera::access";

pub async fn log<E: Endpoint>(next: Arc<E>, request: Request) -> poem::Result<Response> {
    let method = request.method().clone();
    // The email-link pages carry their key or token in the path.
    let path = link_paths::redacted(request.uri().path()).into_owned();
    let id = request.data::<RequestId>().map(|id| id.0.clone());
    let span = tracing::info_span!(
        "request",
        request_id = id.as_deref().unwrap_or_default(),
        method = %method,
        path = %path,
        user_id = tracing::field::Empty,
    );
    let started = Instant::now();
    async move {
        let result = next.call(request).await.map(IntoResponse::into_response);
        let status = match &result {
            Ok(response) => response.status(),
            Err(err) => err.status(),
        };
        tracing::info!(
            target: TARGET,
            status = status.as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        result
    }
    .instrument(span)
    .await
}

/// Puts the caller's user id on the current request's span (once a credential is read).
pub fn record_user(user_id: i64) {
    tracing::Span::current().record("user_id", user_id);
}
