//! A client generated from the served OpenAPI document builds without warnings and completes
//! the account journey in every mode: openapi-python-client (pinned, installed by the harness
//! into a virtualenv) generates `tessera_client`, and `support/generated_client_journey.py`
//! walks register, login, user, PATCH, password change and logout through it, checking that
//! every answer parses into the model the document promises.

use std::process::Command;

use tessera::config::AuthMode;

use crate::support::tools;
use crate::support::{Backend, TestApp};

/// The generator and the libraries its clients import, pinned.
const GENERATOR: &[&str] = &[
    "openapi-python-client==0.29.1",
    "httpx==0.28.1",
    "attrs==26.1.0",
];

const JOURNEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/support/generated_client_journey.py"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_client_completes_the_journey_in_every_mode() {
    let python = tokio::task::spawn_blocking(|| tools::python_venv("openapi-client", GENERATOR))
        .await
        .unwrap();
    for mode in [AuthMode::Token, AuthMode::Jwt, AuthMode::Session] {
        let app = TestApp::spawn_with(Backend::Sqlite, |config| config.auth.mode = mode).await;
        let dir = tempfile::tempdir().unwrap();
        let document = app.send(app.client.get(app.url("/openapi.json"))).await;
        assert_eq!(document.status, 200);
        std::fs::write(dir.path().join("openapi.json"), &document.text).unwrap();
        // No formatter hooks: any warning left is about the document.
        std::fs::write(dir.path().join("generator.yaml"), "post_hooks: []\n").unwrap();

        // As a module: the venv's console scripts name the directory it was built in.
        let generated = Command::new(&python)
            .current_dir(dir.path())
            .args([
                "-m",
                "openapi_python_client",
                "generate",
                "--path",
                "openapi.json",
                "--config",
                "generator.yaml",
                "--output-path",
                "tessera_client",
                "--meta",
                "none",
            ])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&generated.stdout).into_owned()
            + &String::from_utf8_lossy(&generated.stderr);
        assert!(
            generated.status.success(),
            "{mode:?}: generation failed:\n{said}"
        );
        assert!(
            !said.to_lowercase().contains("warning"),
            "{mode:?}: the generator could not use all of the document:\n{said}"
        );

        let (email, password, new_password) = (
            "ada@example.com",
            "correct horse battery",
            "a brand new passphrase",
        );
        let mode_name = format!("{mode:?}").to_lowercase();
        let journey = Command::new(&python)
            .arg(JOURNEY)
            .arg(dir.path())
            .args([&app.url(""), &mode_name, email, password, new_password])
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&journey.stdout).into_owned()
            + &String::from_utf8_lossy(&journey.stderr);
        assert!(
            journey.status.success() && printed.contains("journey complete"),
            "{mode:?}: the generated client did not complete the journey:\n{printed}"
        );
        app.assert_journey_done(email, password, new_password).await;
    }
}
