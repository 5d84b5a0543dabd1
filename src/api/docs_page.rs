//! `/docs`: Swagger UI (poem-openapi's bundled copy, served from the binary), set up so that
//! every journey can be finished from the page alone:
//! - the page is titled after the API and remembers what was pasted into *Authorize*;
//! - a request interceptor copies the CSRF cookie into the CSRF header on every request (so
//!   session mode works, also after login rotates the cookie), and in token mode puts the
//!   `Token ` prefix before a bare key pasted into *Authorize*.
//!
//! poem-openapi's page template cannot be configured, so its head (the bundled script and
//! style) is kept and its body replaced. The page's Content-Security-Policy allows exactly its
//! inline blocks, by hash.

use poem::http::header;
use poem::{Endpoint, Response};
use serde_json::json;

use crate::api::TITLE;
use crate::api::edge::{csrf, security_headers};
use crate::config::{AuthMode, Config};

/// Where poem-openapi's template starts its body (`<body>` alone also occurs in the bundle).
const BODY_START: &str = "<body>\n\n<div id=\"ui\"></div>";
const POEM_TITLE: &str = "<title>Swagger UI</title>";

/// The page for `spec_json`, from poem-openapi's page `poem_html`.
pub fn html(poem_html: &str, spec_json: &str, config: &Config) -> String {
    let head_end = poem_html
        .find(BODY_START)
        .expect("poem-openapi's Swagger UI template has a <body>");
    assert!(
        poem_html.contains(POEM_TITLE),
        "poem-openapi's Swagger UI template changed its title"
    );
    let head = poem_html[..head_end].replace(POEM_TITLE, &format!("<title>{TITLE}</title>"));
    let settings = json!({
        "csrfCookie": config.session.csrf_cookie_name,
        "csrfHeader": csrf::HEADER,
        "tokenPrefix": (config.auth.mode == AuthMode::Token).then_some("Token "),
    });
    // `</` may not appear inside a <script> block; JSON allows escaping its `/`.
    let script_safe = |json: &str| json.replace("</", "<\\/");
    format!(
        "{head}{BODY_START}\n<script>\n\
         const settings = {settings};\n\
         const spec = {spec};\n{SETUP}</script>\n</body>\n</html>\n",
        settings = script_safe(&settings.to_string()),
        spec = script_safe(spec_json),
    )
}

/// Starts Swagger UI with `spec` and `settings` (defined just before it).
const SETUP: &str = r##"
function readCookie(name) {
    for (const pair of document.cookie.split(";")) {
        const at = pair.indexOf("=");
        if (at > 0 && pair.slice(0, at).trim() === name) {
            return decodeURIComponent(pair.slice(at + 1).trim());
        }
    }
    return null;
}

function headerNamed(headers, name) {
    return Object.keys(headers).find((key) => key.toLowerCase() === name.toLowerCase());
}

function prepare(request) {
    const csrf = readCookie(settings.csrfCookie);
    if (csrf !== null) {
        request.headers[headerNamed(request.headers, settings.csrfHeader) || settings.csrfHeader] = csrf;
    }
    const authorization = headerNamed(request.headers, "Authorization");
    if (settings.tokenPrefix && authorization) {
        const value = request.headers[authorization].trim();
        if (value !== "" && !/^\S+\s/.test(value)) {
            request.headers[authorization] = settings.tokenPrefix + value;
        }
    }
    return request;
}

window.ui = SwaggerUIBundle({
    dom_id: "#ui",
    spec: spec,
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    filter: false,
    requestInterceptor: prepare,
});
"##;

/// Serves the page with its own Content-Security-Policy.
pub fn endpoint(html: String) -> impl Endpoint<Output = Response> {
    let policy = security_headers::swagger_ui_policy(&html);
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type("text/html; charset=utf-8")
            .header(header::CONTENT_SECURITY_POLICY, policy.as_str())
            .body(html.clone())
    })
}
