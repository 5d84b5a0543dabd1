//! `/docs` in a real browser: Swagger UI renders every operation under its own
//! Content-Security-Policy, which allows its inline script and style by hash and nothing
//! else, and the browser reports no violation.

use tessera::config::AuthMode;

use crate::support::browser;
use crate::support::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_runs_under_its_content_security_policy() {
    for mode in [AuthMode::Token, AuthMode::Session] {
        let app = TestApp::spawn_with(Backend::Sqlite, |config| config.auth.mode = mode).await;
        let url = app.url("/docs");
        let page = tokio::task::spawn_blocking(move || browser::render(&url))
            .await
            .unwrap();
        for path in [
            "/auth/login/",
            "/auth/user/",
            "/auth/password/reset/confirm/",
        ] {
            assert!(
                page.dom.contains(&format!("data-path=\"{path}\"")),
                "{mode:?}: Swagger UI did not render {path}; console:\n{}",
                page.console
            );
        }
        assert!(
            !page.console.contains("Content Security Policy"),
            "{mode:?}: the browser refused part of the page:\n{}",
            page.console
        );
    }
}
