//! What the database keeps of emailed secrets: digests, and no bodies once mail is delivered.

use sea_orm::EntityTrait;

use crate::support::mail::key_from;
use crate::support::{Backend, TestApp};

on_each_backend!(delivered_mail_leaves_no_usable_key_in_the_database);

async fn delivered_mail_leaves_no_usable_key_in_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("keys@example.com").await;
    // The default link: `{public_url}/verify-email/{key}/`.
    let prefix = format!("{}/verify-email/", app.config.public_base());
    let key = key_from(&app.newest_link(1, &prefix).await, &prefix);
    assert!(key.len() >= 32, "a key of at least 128 bits: {key}");

    // The outbox row is marked sent with its bodies scrubbed...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let row = loop {
        let rows = app.outbox_rows().await;
        if rows[0].sent_at.is_some() {
            break rows.into_iter().next().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "never marked sent");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(row.kind, "email_confirmation");
    assert_eq!(row.recipient, "", "the recipient kept after delivery");
    assert!(
        row.text_body.is_empty() && row.html_body.is_empty(),
        "bodies kept after delivery"
    );
    assert!(!row.subject.contains(&key));

    // ...and the confirmation table holds only the digest.
    let confirmations = entity::email_confirmation::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(confirmations.len(), 1);
    assert_ne!(confirmations[0].key_digest, key);
    assert_eq!(confirmations[0].key_digest, tessera::secrets::digest(&key));

    // The key itself still works, exactly once.
    let first = app
        .post(
            "registration/verify-email/",
            serde_json::json!({"key": key}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
}
