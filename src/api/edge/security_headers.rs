//! Headers every answer carries, errors included. Account data is never cached, never framed
//! and never sniffed as something else; Swagger UI (inline script and style) gets a looser
//! policy than the JSON API.

use std::sync::Arc;

use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response};

pub async fn add<E: Endpoint>(
    next: Arc<E>,
    request: Request,
    api_prefix: Arc<str>,
) -> poem::Result<Response> {
    let path = request.uri().path().to_owned();
    let mut response = next.call(request).await?.into_response();
    let headers = response.headers_mut();
    let fixed = HeaderValue::from_static;
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
    // The account API's answers carry credentials or account data.
    if path.starts_with(&*api_prefix) {
        headers.insert(header::CACHE_CONTROL, fixed("no-store"));
    }
    Ok(response)
}
