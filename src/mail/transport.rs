//! Delivery backends: `console` (stdout, like Django's console backend), `smtp` (lettre) and
//! `file` (one `.eml` per message).
//!
//! Errors are plain words for the outbox's `last_error` column and the logs: they never carry
//! the SMTP password (`email.smtp_url` may hold one) or a message body (bodies hold live links).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Rendered;
use super::inbox::Inbox;
use crate::config::{EmailBackend, EmailConfig, redact_url_password};

/// Why a delivery failed, in plain words, never containing credentials (the smtp_url may carry
/// a password) or message bodies.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    /// 5xx or an unusable address: retrying the same message will not help (the worker still
    /// retries until it gives up; this is informational).
    pub permanent: bool,
}

impl DeliveryError {
    fn transient(message: String) -> Self {
        Self {
            message,
            permanent: false,
        }
    }

    fn permanent(message: String) -> Self {
        Self {
            message,
            permanent: true,
        }
    }
}

/// The configured delivery backend. Cheap to clone (the SMTP transport is shared).
#[derive(Clone)]
pub struct Transport {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Console,
    Smtp(Smtp),
    File(PathBuf),
    Inbox(Inbox),
}

#[derive(Clone)]
struct Smtp {
    transport: Arc<SmtpTransport>,
    /// `email.smtp_url` with the password replaced, for messages.
    url: String,
    /// The password as written and percent-decoded, scrubbed from every error message.
    secrets: Vec<String>,
    /// Bound on a whole attempt: lettre's own timeout covers only the TCP connect, so a
    /// server that accepts and then says nothing would otherwise hang the worker for good.
    timeout: Duration,
}

/// lettre's pool spawns a task when its last handle is dropped, which panics outside a Tokio
/// runtime (e.g. a `Transport` built inside `block_on` and dropped after it). Keep the runtime
/// the transport was made in and enter it for the drop.
struct SmtpTransport {
    inner: Option<AsyncSmtpTransport<Tokio1Executor>>,
    runtime: tokio::runtime::Handle,
}

impl SmtpTransport {
    fn get(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.inner.as_ref().expect("taken only on drop")
    }
}

impl Drop for SmtpTransport {
    fn drop(&mut self) {
        let _runtime = self.runtime.enter();
        drop(self.inner.take());
    }
}

// lettre's Debug output includes the SMTP credentials.
impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Transport").field(&self.describe()).finish()
    }
}

impl Transport {
    /// Builds the configured backend. `smtp` reads `email.smtp_url` with lettre's
    /// `AsyncSmtpTransport::from_url` (`smtp://`, `smtps://`, `?tls=required`, `user:pass@`) and
    /// must be called inside a Tokio runtime (lettre spawns its pool's housekeeping task there);
    /// `file` creates `email.file_dir` when it is missing (`0700`: its messages hold live
    /// links).
    pub fn from_config(config: &EmailConfig) -> Result<Self, DeliveryError> {
        let backend = match config.backend {
            EmailBackend::Console => Backend::Console,
            EmailBackend::Smtp => Backend::Smtp(Smtp::from_config(config)?),
            EmailBackend::File => {
                let dir = config.file_dir.clone();
                crate::private_files::create_dir(&dir).map_err(|err| {
                    DeliveryError::permanent(format!(
                        "cannot create email.file_dir {}: {err}",
                        dir.display()
                    ))
                })?;
                Backend::File(dir)
            }
            EmailBackend::Inbox => Backend::Inbox(Inbox::default()),
        };
        Ok(Self { backend })
    }

    /// Sends one multipart/alternative message (text/plain, then text/html) from `from` to
    /// `to`. An unusable address is a permanent error; SMTP 4xx replies and network trouble
    /// are transient, 5xx replies permanent.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        message: &Rendered,
    ) -> Result<(), DeliveryError> {
        let email = build(from, to, message)?;
        match &self.backend {
            Backend::Console => {
                print_to_console(from, to, message);
                Ok(())
            }
            Backend::Smtp(smtp) => smtp.send(email).await,
            Backend::Inbox(inbox) => {
                inbox.deliver(from, to, message);
                Ok(())
            }
            Backend::File(dir) => write_eml(dir, &email.formatted()).await.map_err(|err| {
                DeliveryError::transient(format!(
                    "cannot write the message into {}: {err}",
                    dir.display()
                ))
            }),
        }
    }

    /// SMTP: connects and says EHLO (and logs in when the URL has credentials), then NOOP:
    /// lettre's `test_connection`. Console and file: nothing to check. For `tessera check`.
    pub async fn check(&self) -> Result<(), DeliveryError> {
        match &self.backend {
            Backend::Smtp(smtp) => smtp.check().await,
            Backend::Console | Backend::File(_) | Backend::Inbox(_) => Ok(()),
        }
    }

    /// `console`, `file (DIR)`, or the SMTP URL with any password redacted.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Console => "console".into(),
            Backend::Smtp(smtp) => smtp.url.clone(),
            Backend::File(dir) => format!("file ({})", dir.display()),
            Backend::Inbox(_) => "inbox (/_inbox/)".into(),
        }
    }

    /// The development inbox, with `email.backend = "inbox"`.
    pub fn inbox(&self) -> Option<&Inbox> {
        match &self.backend {
            Backend::Inbox(inbox) => Some(inbox),
            _ => None,
        }
    }
}

impl Smtp {
    fn from_config(config: &EmailConfig) -> Result<Self, DeliveryError> {
        let url = redact_url_password(&config.smtp_url);
        let secrets = url_password(&config.smtp_url);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(DeliveryError::permanent(
                "the SMTP transport must be created inside a Tokio runtime".into(),
            ));
        };
        let timeout = Duration::from_secs(config.smtp_timeout_seconds.max(1));
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|err| {
                let detail = scrub(err.to_string(), &secrets);
                DeliveryError::permanent(format!("invalid email.smtp_url {url}: {detail}"))
            })?
            .timeout(Some(timeout))
            // One connection per attempt: a connection abandoned by our timeout mid-command
            // must never be handed to the next message out of step with the server.
            .pool_config(PoolConfig::new().max_size(0))
            .build();
        Ok(Self {
            transport: Arc::new(SmtpTransport {
                inner: Some(transport),
                runtime,
            }),
            url,
            secrets,
            timeout,
        })
    }

    async fn send(&self, email: Message) -> Result<(), DeliveryError> {
        match tokio::time::timeout(self.timeout, self.transport.get().send(email)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(err)) => Err(self.error("could not deliver through", &err)),
            Err(_elapsed) => Err(self.timed_out()),
        }
    }

    async fn check(&self) -> Result<(), DeliveryError> {
        match tokio::time::timeout(self.timeout, self.transport.get().test_connection()).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(DeliveryError::transient(format!(
                "the SMTP server at {} accepted the connection but did not answer NOOP",
                self.url
            ))),
            Ok(Err(err)) => Err(self.error("cannot reach", &err)),
            Err(_elapsed) => Err(self.timed_out()),
        }
    }

    fn error(&self, doing: &str, err: &lettre::transport::smtp::Error) -> DeliveryError {
        // lettre's Display carries the server's reply text and the I/O error, never the body;
        // the password is scrubbed in case a server echoes it. `url` is redacted already.
        let detail = scrub(err.to_string(), &self.secrets);
        let message = format!("{doing} {}: {detail}", self.url);
        if err.is_permanent() {
            DeliveryError::permanent(message)
        } else {
            DeliveryError::transient(message)
        }
    }

    fn timed_out(&self) -> DeliveryError {
        DeliveryError::transient(format!(
            "no answer from the SMTP server at {} within {} s",
            self.url,
            self.timeout.as_secs()
        ))
    }
}

fn build(from: &str, to: &str, message: &Rendered) -> Result<Message, DeliveryError> {
    let from_mailbox: Mailbox = from.parse().map_err(|err| {
        DeliveryError::permanent(format!("invalid sender address {from:?}: {err}"))
    })?;
    let to_mailbox: Mailbox = to.parse().map_err(|err| {
        DeliveryError::permanent(format!("invalid recipient address {to:?}: {err}"))
    })?;
    Message::builder()
        .from(from_mailbox)
        .to(to_mailbox)
        .subject(message.subject.as_str())
        .date_now()
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(
            message.text.clone(),
            message.html.clone(),
        ))
        .map_err(|err| DeliveryError::permanent(format!("cannot build the message: {err}")))
}

/// Like Django's console backend, but for reading: the addresses and subject, the text part
/// decoded (not quoted-printable) with every link on a line of its own, so it can be clicked or
/// copied whole; the HTML part only when the log level is `debug`. Then 79 dashes.
fn print_to_console(from: &str, to: &str, message: &Rendered) {
    // Holding stdout's lock for the whole message keeps concurrent messages (and any other
    // output of this process) from interleaving with it.
    let mut out = std::io::stdout().lock();
    // Nowhere to report a closed stdout; the outbox counts the message as sent either way.
    let _ = writeln!(
        out,
        "From: {from}\nTo: {to}\nSubject: {}\n",
        message.subject
    );
    let _ = writeln!(out, "{}", links_on_own_lines(message.text.trim_end()));
    if tracing::enabled!(tracing::Level::DEBUG) {
        let _ = writeln!(out, "\n-- HTML part --\n{}", message.html.trim_end());
    }
    let _ = writeln!(out, "{}", "-".repeat(79));
    let _ = out.flush();
}

/// `text` with each `http://` or `https://` link moved onto a line of its own.
fn links_on_own_lines(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let mut prose: Vec<&str> = Vec::new();
        for word in line.split(' ') {
            if word.starts_with("http://") || word.starts_with("https://") {
                if !prose.is_empty() {
                    lines.push(prose.join(" "));
                    prose.clear();
                }
                lines.push(word.to_owned());
            } else {
                prose.push(word);
            }
        }
        if !prose.is_empty() || line.is_empty() {
            lines.push(prose.join(" "));
        }
    }
    lines.join("\n")
}

/// The password in a URL's userinfo, as written and percent-decoded.
fn url_password(url: &str) -> Vec<String> {
    let Some(password) = url::Url::parse(url)
        .ok()
        .and_then(|url| url.password().map(str::to_owned))
        .filter(|password| !password.is_empty())
    else {
        return Vec::new();
    };
    let decoded = percent_encoding::percent_decode_str(&password)
        .decode_utf8_lossy()
        .into_owned();
    let mut secrets = vec![password];
    if decoded != secrets[0] {
        secrets.push(decoded);
    }
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets
}

fn scrub(mut message: String, secrets: &[String]) -> String {
    for secret in secrets {
        message = message.replace(secret.as_str(), "[redacted]");
    }
    message
}

/// Writes one `<time>-<random>.eml` file whole: first under a hidden temporary name, then
/// renamed, so whoever watches the directory never reads half a message.
async fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
        crate::secrets::random_hex(6)
    );
    let partial = dir.join(format!(".{name}.partial"));
    let (path, bytes) = (partial.clone(), bytes.to_vec());
    tokio::task::spawn_blocking(move || crate::private_files::create_new(&path, &bytes))
        .await
        .map_err(std::io::Error::other)??;
    tokio::fs::rename(&partial, dir.join(format!("{name}.eml"))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> Rendered {
        Rendered {
            subject: "[Tessera] Bienvenue à Tessera".into(),
            text: "Hello\nhttps://example.com/x/\n".into(),
            html: "<p>Hello <a href=\"https://example.com/x/\">link</a></p>".into(),
        }
    }

    #[test]
    fn console_links_stand_on_lines_of_their_own() {
        let text = "Hello!\n\nTo confirm this is correct, go to https://example.com/verify-email/abc=def/ now\n\nBye";
        assert_eq!(
            links_on_own_lines(text),
            "Hello!\n\nTo confirm this is correct, go to\nhttps://example.com/verify-email/abc=def/\nnow\n\nBye"
        );
    }

    #[test]
    fn the_message_is_multipart_alternative_with_the_standard_headers() {
        let email = build(
            "Tessera <no-reply@example.com>",
            "ada@example.com",
            &rendered(),
        )
        .unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        for header in [
            "From: ",
            "To: ",
            "Subject: ",
            "Date: ",
            "Message-ID: ",
            "MIME-Version: 1.0",
        ] {
            assert!(headers.contains(header), "missing {header}: {headers}");
        }
        assert!(
            headers.contains("Content-Type: multipart/alternative"),
            "{headers}"
        );
        let plain = raw.find("Content-Type: text/plain; charset=utf-8").unwrap();
        let html = raw.find("Content-Type: text/html; charset=utf-8").unwrap();
        assert!(plain < html, "text/plain comes first");
        assert!(raw.is_ascii(), "non-ASCII subject is encoded");
    }

    #[test]
    fn bad_addresses_are_permanent_errors() {
        for (from, to) in [
            ("not an address", "ada@example.com"),
            ("no-reply@example.com", "ada"),
            (
                "no-reply@example.com",
                "ada@example.com\r\nBcc: eve@example.com",
            ),
        ] {
            let err = build(from, to, &rendered()).unwrap_err();
            assert!(err.permanent, "{from} → {to}: {err}");
        }
        assert!(build("webmaster@localhost", "ada@example.com", &rendered()).is_ok());
    }

    #[test]
    fn passwords_are_found_and_scrubbed() {
        assert_eq!(url_password("smtp://user:s3cret@host:25"), ["s3cret"]);
        assert_eq!(
            url_password("smtps://u:p%40ss@host:465?tls=required"),
            ["p%40ss", "p@ss"]
        );
        assert!(url_password("smtp://host:25").is_empty());
        assert!(url_password("smtp://user@host:25").is_empty());
        let secrets = url_password("smtp://u:p%40ss@host");
        assert_eq!(
            scrub("login p@ss and p%40ss failed".into(), &secrets),
            "login [redacted] and [redacted] failed"
        );
    }

    #[tokio::test]
    async fn an_invalid_smtp_url_names_no_password() {
        let config = EmailConfig {
            backend: EmailBackend::Smtp,
            smtp_url: "ftp://user:s3cret@127.0.0.1:25".into(),
            ..EmailConfig::default()
        };
        let err = Transport::from_config(&config).unwrap_err();
        assert!(err.permanent);
        assert!(err.to_string().contains("invalid email.smtp_url"), "{err}");
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{err}");
    }

    #[test]
    fn smtp_needs_a_runtime_and_says_so() {
        let config = EmailConfig {
            backend: EmailBackend::Smtp,
            ..EmailConfig::default()
        };
        let err = Transport::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("Tokio runtime"), "{err}");
    }

    #[test]
    fn smtp_can_be_dropped_outside_the_runtime() {
        let config = EmailConfig {
            backend: EmailBackend::Smtp,
            smtp_url: "smtp://127.0.0.1:1".into(),
            ..EmailConfig::default()
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let transport = runtime.block_on(async { Transport::from_config(&config).unwrap() });
        let clone = transport.clone();
        drop(transport); // outside the runtime's context
        drop(runtime);
        drop(clone); // the last handle, after the runtime is gone
    }

    #[tokio::test]
    async fn describe_and_debug_redact_the_password() {
        let config = EmailConfig {
            backend: EmailBackend::Smtp,
            smtp_url: "smtp://user:s3cret@127.0.0.1:2525".into(),
            ..EmailConfig::default()
        };
        let transport = Transport::from_config(&config).unwrap();
        assert_eq!(
            transport.describe(),
            "smtp://user:[redacted]@127.0.0.1:2525"
        );
        assert!(!format!("{transport:?}").contains("s3cret"));
        let console = Transport::from_config(&EmailConfig::default()).unwrap();
        assert_eq!(console.describe(), "console");
    }

    #[tokio::test]
    async fn console_prints_and_succeeds() {
        let transport = Transport::from_config(&EmailConfig::default()).unwrap();
        transport
            .send("webmaster@localhost", "ada@example.com", &rendered())
            .await
            .unwrap();
        transport.check().await.unwrap();
    }
}
