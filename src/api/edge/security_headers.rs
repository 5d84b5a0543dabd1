//! Headers every answer carries, errors included. Account data is never cached, never framed
//! and never sniffed as something else. Swagger UI (`/docs`, one page with its script and style
//! inline) brings its own Content-Security-Policy ([`swagger_ui_policy`]), which allows exactly
//! those inline blocks, by hash. So do the email-link pages ([`page_policy`]: their style, and
//! a form that posts to themselves), which also keep a same-origin `Referer` for the form.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};

use crate::api::edge::link_paths;

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
    let page = link_paths::is_page_path(&path);
    // A form posted from a `no-referrer` page says `Origin: null`, which the CSRF check
    // refuses; `same-origin` still tells no other site the secret in the page's URL.
    let referrer = if page { "same-origin" } else { "no-referrer" };
    headers.insert(header::REFERRER_POLICY, fixed(referrer));
    let docs = path == "/docs" || path.starts_with("/docs/");
    if docs {
        headers.insert(header::X_FRAME_OPTIONS, fixed("SAMEORIGIN"));
    } else {
        headers.insert(header::X_FRAME_OPTIONS, fixed("DENY"));
        // A rendered email-link page brings its own ([`page_policy`]); its errors do not.
        if !(page && headers.contains_key(header::CONTENT_SECURITY_POLICY)) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                fixed("default-src 'none'; frame-ancestors 'none'"),
            );
        }
    }
    // The account API's answers carry credentials or account data; the pages' URLs a key.
    if path.starts_with(&*api_prefix) || page {
        headers.insert(header::CACHE_CONTROL, fixed("no-store"));
    }
    Ok(response)
}

/// The Content-Security-Policy of an email-link page `html`: no script at all, its inline
/// `<style>` blocks by SHA-256, and its form may post to this origin only.
pub fn page_policy(html: &str) -> String {
    format!(
        "default-src 'none'; style-src {}; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'",
        hashes(html, "style"),
    )
}

/// The Content-Security-Policy of the Swagger UI page `html`: its inline `<script>` and
/// `<style>` blocks by SHA-256 (nothing else runs), its icons as `data:` images, and "Try it
/// out" requests to this origin only.
pub fn swagger_ui_policy(html: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
        hashes(html, "script"),
        hashes(html, "style"),
    )
}

/// CSP sources allowing each inline `<tag>` block of `html` by its SHA-256 (`'none'` when
/// there is none: an empty source list would allow nothing either, but reads as a mistake).
fn hashes(html: &str, tag: &str) -> String {
    let hashes: Vec<String> = inline_blocks(html, tag)
        .map(|block| {
            format!(
                "'sha256-{}'",
                BASE64.encode(Sha256::digest(block.as_bytes()))
            )
        })
        .collect();
    match hashes.is_empty() {
        true => "'none'".to_owned(),
        false => hashes.join(" "),
    }
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
