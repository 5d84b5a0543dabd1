//! Mail: templates (embedded defaults, overridable file by file) and delivery backends
//! (console, SMTP, file). Messages reach a backend only through the outbox worker
//! (`service::outbox`), never from a request.

pub mod inbox;
pub mod outbox;
pub mod templates;
pub mod transport;

/// The kinds of message Tessera sends; each has a subject, a text body and an HTML body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum MailKind {
    /// Confirm an email address (at signup and on resend).
    EmailConfirmation,
    /// A link to set a new password.
    PasswordReset,
    /// Someone tried to sign up with an address that already has an account.
    AccountAlreadyExists,
    /// The account's password was changed or reset.
    PasswordChanged,
    /// The account's primary address changed; sent to the old one.
    EmailChanged,
    /// The account was deleted (`DELETE user/`); sent to its primary address. Its outbox row
    /// is removed once delivered, so nothing naming the user is left.
    AccountDeleted,
}

impl MailKind {
    /// The name used for template files and the outbox `kind` column.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A rendered message, ready to store in the outbox.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rendered {
    /// One line, prefixed with `email.subject_prefix`.
    pub subject: String,
    pub text: String,
    pub html: String,
}

// Bodies carry live confirmation and reset links: keep them out of Debug output.
impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .field("text", &"[redacted]")
            .field("html", &"[redacted]")
            .finish()
    }
}
