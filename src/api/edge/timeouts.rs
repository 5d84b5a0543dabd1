//! The request deadline: a request (its body included) that takes longer than
//! `server.request_timeout_seconds` gets 408, so a client trickling its body cannot hold a
//! worker. The head's own deadline is enforced per connection (`header_timeout`).

use std::sync::Arc;
use std::time::Duration;

use poem::{Endpoint, IntoResponse, Request, Response};

use crate::api::error::ApiError;

pub async fn request_deadline<E: Endpoint>(
    next: Arc<E>,
    request: Request,
    limit: Duration,
) -> poem::Result<Response> {
    match tokio::time::timeout(limit, next.call(request)).await {
        Ok(result) => Ok(result?.into_response()),
        Err(_) => Err(ApiError::request_timeout().into()),
    }
}
