//! Headers every answer carries, errors included. Account data is never cached, never framed
//! and never sniffed as something else. Swagger UI (`/docs`, one page with its script and style
//! inline) brings its own Content-Security-Policy ([`swagger_ui_policy`]), which allows exactly
//! those inline blocks, by hash.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};

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

/// The Content-Security-Policy of the Swagger UI page `html`: its inline `<script>` and
/// `<style>` blocks by SHA-256 (nothing else runs), its icons as `data:` images, and "Try it
/// out" requests to this origin only.
pub fn swagger_ui_policy(html: &str) -> String {
    let hashes = |tag: &str| {
        inline_blocks(html, tag)
            .map(|block| {
                format!(
                    "'sha256-{}'",
                    BASE64.encode(Sha256::digest(block.as_bytes()))
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
        hashes("script"),
        hashes("style"),
    )
}

/// The contents of each `<tag ...>...</tag>` in `html`.
fn inline_blocks<'a>(html: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = html;
    std::iter::from_fn(move || {
        let start = rest.find(&open)?;
        let after_open = &rest[start..];
        let body_start = after_open.find('>')? + 1;
        let body = &after_open[body_start..];
        let end = body.find(&close)?;
        rest = &body[end + close.len()..];
        Some(&body[..end])
    })
}
