//! What the app mailed, read back as the recipient would: the `file` backend's messages (or
//! an SMTP sink's) parsed, waiting for the outbox to deliver them, and the links in them.

use std::time::{Duration, Instant};

use entity::outbox_message;
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};
use tessera::Config;

use super::TestApp;

impl TestApp {
    /// Every message the `file` mail backend has written so far, oldest first.
    pub fn sent_mail(&self) -> Vec<ReceivedMail> {
        let Ok(entries) = std::fs::read_dir(&self.config.email.file_dir) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|ext| ext == "eml"))
            .map(|p| (std::fs::metadata(&p).and_then(|m| m.modified()).unwrap(), p))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| ReceivedMail::parse(std::fs::read(path).unwrap()))
            .collect()
    }

    /// Waits until the outbox holds at least `count` messages and every one of them is marked
    /// sent, then returns what the `file` backend wrote. Waiting for the outbox rather than for
    /// files means no message is read while the backend is still writing it.
    pub async fn delivered(&self, count: usize) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let rows = self.outbox_rows().await;
            if rows.len() >= count && rows.iter().all(|r| r.sent_at.is_some()) {
                let mail = self.sent_mail();
                assert_eq!(mail.len(), rows.len(), "one file per sent message");
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} sent message(s): {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Once `count` messages are delivered: the newest link (a message's first) that starts
    /// with `prefix`.
    pub async fn newest_link(&self, count: usize, prefix: &str) -> String {
        let mail = self.delivered(count).await;
        mail.iter()
            .rev()
            .filter_map(ReceivedMail::first_link)
            .find(|link| link.starts_with(prefix))
            .unwrap_or_else(|| panic!("a link starting with {prefix} in {} message(s)", mail.len()))
    }

    /// `(uid, token)` from the newest password-reset link, for `frontend.password_reset_url`
    /// = `{prefix}{uid}/{token}/`, once every queued message is delivered.
    pub async fn reset_link(&self, prefix: &str) -> (String, String) {
        uid_and_token(&self.newest_link(1, prefix).await, prefix)
    }

    /// What the outbox table holds, oldest first.
    pub async fn outbox_rows(&self) -> Vec<outbox_message::Model> {
        outbox_rows(&self.db).await
    }
}

/// What the outbox table of `db` holds, oldest first.
pub async fn outbox_rows(db: &DatabaseConnection) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .order_by_asc(outbox_message::Column::Id)
        .all(db)
        .await
        .unwrap()
}

/// Links to a frontend on another host (`/account/confirm-email/{key}/`,
/// `/account/reset/{uid}/{token}/`), so that keys and reset links can be taken apart.
pub fn frontend_links(config: &mut Config) {
    config.public_url = PUBLIC_URL.parse().unwrap();
    config.frontend.verify_email_url = Some(format!("{VERIFY_PREFIX}{{key}}/"));
    config.frontend.password_reset_url = Some(format!("{RESET_PREFIX}{{uid}}/{{token}}/"));
}

/// `public_url` under [`frontend_links`].
pub const PUBLIC_URL: &str = "https://accounts.example.com";
/// Confirmation links under [`frontend_links`]: this, the key, `/`.
pub const VERIFY_PREFIX: &str = "https://app.example.com/account/confirm-email/";
/// Reset links under [`frontend_links`]: this, the uid, `/`, the token, `/`.
pub const RESET_PREFIX: &str = "https://app.example.com/account/reset/";

/// The key from a confirmation link `{prefix}{key}/`: at least 128 random bits.
pub fn key_from(link: &str, prefix: &str) -> String {
    let key = link
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{link} follows {prefix}{{key}}/"));
    assert!(
        key.len() >= 32 && key.chars().all(|c| c.is_ascii_alphanumeric()),
        "a key of at least 128 random bits: {key:?}"
    );
    key.to_owned()
}

/// `(uid, token)` from a reset link `{prefix}{uid}/{token}/`; the token has at least 128
/// random bits.
pub fn uid_and_token(link: &str, prefix: &str) -> (String, String) {
    let rest = link
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{link} follows {prefix}{{uid}}/{{token}}/"));
    let (uid, token) = rest
        .split_once('/')
        .unwrap_or_else(|| panic!("uid/token in {link}"));
    assert!(
        token.len() >= 32 && token.chars().all(|c| c.is_ascii_alphanumeric()),
        "a token of at least 128 random bits: {token:?}"
    );
    (uid.to_owned(), token.to_owned())
}

/// One received message, parsed.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub raw: Vec<u8>,
    /// The `To:` addresses.
    pub to: Vec<String>,
    /// The `From:` address (without display name).
    pub from: String,
    /// Decoded (RFC 2047) subject.
    pub subject: String,
    /// The first `text/plain` part, decoded; empty when there is none.
    pub text: String,
    /// The first `text/html` part, decoded; empty when there is none.
    pub html: String,
    /// The top-level content type, e.g. `multipart/alternative`.
    pub content_type: String,
}

impl ReceivedMail {
    /// Parses an RFC 5322 message (from the sink or the `file` backend).
    pub fn parse(raw: Vec<u8>) -> Self {
        use mail_parser::MimeHeaders;

        let parser = mail_parser::MessageParser::default();
        let message = parser.parse(&raw).expect("a parseable message");
        let addresses = |list: Option<&mail_parser::Address>| -> Vec<String> {
            list.map(|list| {
                list.iter()
                    .filter_map(|addr| addr.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
        };
        let to = addresses(message.to());
        let from = addresses(message.from())
            .into_iter()
            .next()
            .unwrap_or_default();
        let part_text = |subtype: &str| {
            message
                .parts
                .iter()
                .find(|part| part.is_content_type("text", subtype))
                .and_then(|part| part.text_contents().map(str::to_owned))
                .unwrap_or_default()
        };
        let content_type = message
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_lowercase())
            .unwrap_or_else(|| "text/plain".into());
        let subject = message.subject().unwrap_or_default().to_owned();
        let text = part_text("plain");
        let html = part_text("html");
        Self {
            raw,
            to,
            from,
            subject,
            text,
            html,
            content_type,
        }
    }

    /// The first http(s) URL in the text body, e.g. a confirmation or reset link.
    pub fn first_link(&self) -> Option<String> {
        let start = ["https://", "http://"]
            .iter()
            .filter_map(|scheme| self.text.find(scheme))
            .min()?;
        let link: String = self.text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '<' | '>' | '"' | '\''))
            .collect();
        Some(
            link.trim_end_matches(['.', ',', ';', ':', '!', '?', ')'])
                .to_owned(),
        )
    }

    /// The message's link: the first URL of its text part, which starts with `prefix` and is
    /// also an `href` in its HTML part.
    pub fn link(&self, prefix: &str) -> String {
        let link = self
            .first_link()
            .unwrap_or_else(|| panic!("a link in the text part: {}", self.text));
        assert!(
            link.starts_with(prefix),
            "the link {link} comes from configuration ({prefix}...)"
        );
        assert!(
            self.html.contains(&format!("href=\"{link}\"")),
            "the HTML part links to {link}: {}",
            self.html
        );
        link
    }
}
