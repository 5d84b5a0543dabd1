//! Graceful shutdown of the real binary: SIGTERM during a burst of logins stops the listener,
//! lets every request already accepted finish with its answer, and exits 0.

use std::time::Duration;

use crate::support::process::ServeProcess;
use crate::support::{PASSWORD, credentials};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_of_logins_answers_every_accepted_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start(
        dir.path(),
        &[
            ("TESSERA_RATE_LIMITS__ENABLED", "false"),
            ("TESSERA_SERVER__SHUTDOWN_GRACE_SECONDS", "20"),
            // Four times argon2's default passes: the burst below must still be hashing well
            // after the wait, on a fast machine too (at the default, 40 logins were sometimes
            // all answered within it). More logins instead would overflow the listen queue,
            // whose connections the closing listener resets unaccepted.
            ("TESSERA_PASSWORD_HASHING__ITERATIONS", "8"),
        ],
        None,
    );
    let client = crate::support::http_client();
    server.wait_ready(&client).await;
    let base = server.base.clone();
    let signup = client
        .post(format!("{base}/auth/registration/"))
        .json(&serde_json::json!({
            "email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);

    // Each login costs a full argon2 hash, one per core at a time, so a burst keeps the
    // server busy while the signal arrives.
    let burst: Vec<_> = (0..40)
        .map(|_| {
            let client = crate::support::http_client();
            let url = format!("{base}/auth/login/");
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&credentials("ada@example.com", PASSWORD))
                    .send()
                    .await?;
                let status = response.status().as_u16();
                let body = response.text().await?;
                Ok::<_, reqwest::Error>((status, body, std::time::Instant::now()))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let signalled = std::time::Instant::now();
    let (status, logs, _) = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();

    let (mut answered, mut after_signal) = (0, 0);
    for request in burst {
        match request.await.unwrap() {
            Ok((status, body, at)) => {
                assert_eq!(status, 200, "{body}");
                assert!(body.contains("\"key\""), "{body}");
                answered += 1;
                after_signal += usize::from(at > signalled);
            }
            // Never accepted: the listener had already closed.
            Err(err) if err.is_connect() => {}
            Err(err) => panic!("an accepted request lost its answer: {err:?}\n{logs}"),
        }
    }
    assert!(
        answered > 0,
        "the signal came before any login was accepted"
    );
    assert!(
        after_signal > 0,
        "no login was still in flight at the signal ({answered} answered before it)"
    );
    assert!(status.success(), "exit status {status}:\n{logs}");
}
