//! CORS for the origins in `cors.allowed_origins`, with credentials, and nothing for anyone
//! else: a request from an unlisted origin is served as if CORS did not exist (no CORS
//! headers, so the browser keeps the answer from the page), as django-cors-headers does.
//!
//! poem's `Cors` alone would answer such requests with its own plain-text 403, which would
//! also refuse this service's own pages (Swagger UI's requests carry `Origin` too).

use std::collections::HashSet;
use std::sync::Arc;

use poem::http::header::ORIGIN;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use crate::config::Config;

/// With no origins listed, every request passes straight through.
pub fn layer(config: &Config) -> ListedOrigins {
    let listed: HashSet<String> = config
        .cors
        .allowed_origins
        .iter()
        // Browsers send origins in lowercase, without a trailing slash.
        .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
        .collect();
    let cors = poem::middleware::Cors::new()
        .allow_origins(listed.iter().map(String::as_str))
        .allow_credentials(true)
        .allow_methods(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allow_headers(["authorization", "content-type", "x-csrftoken"])
        .max_age(config.cors.max_age_seconds.min(i32::MAX as u32) as i32);
    ListedOrigins { listed, cors }
}

pub struct ListedOrigins {
    listed: HashSet<String>,
    cors: poem::middleware::Cors,
}

impl<E: Endpoint + 'static> Middleware<E> for ListedOrigins {
    type Output = ListedOriginsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        let inner = Arc::new(inner);
        ListedOriginsEndpoint {
            listed: self.listed.clone(),
            with_cors: self.cors.transform(inner.clone()),
            inner,
        }
    }
}

pub struct ListedOriginsEndpoint<E: Endpoint> {
    listed: HashSet<String>,
    inner: Arc<E>,
    with_cors: <poem::middleware::Cors as Middleware<Arc<E>>>::Output,
}

impl<E: Endpoint + 'static> Endpoint for ListedOriginsEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> Result<Response> {
        let listed = request
            .headers()
            .get(ORIGIN)
            .and_then(|origin| origin.to_str().ok())
            .is_some_and(|origin| self.listed.contains(origin));
        if listed {
            self.with_cors.call(request).await
        } else {
            self.inner
                .call(request)
                .await
                .map(IntoResponse::into_response)
        }
    }
}
