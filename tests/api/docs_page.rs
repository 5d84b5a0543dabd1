//! `/docs` in a real browser: Swagger UI renders every operation under its own
//! Content-Security-Policy, which allows its inline script and style by hash and nothing
//! else, and the browser reports no violation; and a person finishes every journey from the
//! page alone, in every mode.

use serde_json::Value;
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

/// The whole journey from Swagger UI alone, in each mode: register, log in, authorize (token
/// and JWT: paste what login answered; a bare key gets its `Token ` prefix from the page),
/// read the user (also after a reload: authorization persists), PATCH, change the password,
/// log out. Then, beside the page, the database shows the name and the new password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_finishes_the_journey_in_every_mode() {
    for mode in [AuthMode::Token, AuthMode::Jwt, AuthMode::Session] {
        let app = TestApp::spawn_with(Backend::Sqlite, |config| config.auth.mode = mode).await;
        let (email, password, new_password) = (
            "ada@example.com",
            "correct horse battery",
            "a brand new passphrase",
        );
        let base = app.url("");
        let mode_name = format!("{mode:?}").to_lowercase();
        let output = tokio::task::spawn_blocking(move || {
            browser::drive(
                "swagger_journey.cjs",
                &[&base, &mode_name, email, password, new_password],
            )
        })
        .await
        .unwrap();
        let steps: Vec<Value> = output
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per step"))
            .collect();
        let step = |name: &str| -> &Value {
            steps
                .iter()
                .find(|s| s["step"] == name)
                .unwrap_or_else(|| panic!("{mode:?}: no step {name:?} in\n{output}"))
        };
        let expect = |name: &str, status: u16| {
            assert_eq!(
                step(name)["status"],
                status,
                "{mode:?}: {name} answered {}",
                step(name)
            );
        };

        // `/` redirected to the page, whose title is the API's.
        assert_eq!(step("title")["body"], "Tessera API");
        expect(
            "register",
            if mode == AuthMode::Session { 204 } else { 201 },
        );
        expect("login", if mode == AuthMode::Session { 204 } else { 200 });
        for name in ["user", "user after reload"] {
            expect(name, 200);
            assert_eq!(step(name)["body"]["email"], email, "{mode:?}: {name}");
        }
        expect("patch", 200);
        assert_eq!(step("patch")["body"]["first_name"], "Ada");
        expect("password change", 200);
        expect("logout", 200);
        expect(
            "user after logout",
            if mode == AuthMode::Session { 403 } else { 401 },
        );

        app.assert_journey_done(email, password, new_password).await;
    }
}
