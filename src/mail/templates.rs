//! Email templates: built-in defaults embedded in the binary, each replaceable by a file of the
//! same name in `email.templates_dir`.
//!
//! Every template is compiled and test-rendered with the documented context when the
//! templates are loaded, so a broken override (a syntax error, a misspelt variable) stops
//! startup with the file's name instead of failing each delivery later. Loading is
//! `crate::templates`', shared with the email-link pages.

use minijinja::Value;

use super::{MailKind, Rendered};
use crate::config::EmailConfig;
pub use crate::templates::TemplateError;
use crate::templates::TemplateSet;

/// The built-in templates, by file name. `.html` files are HTML-escaped, `.txt` files are not.
const BUILT_IN: [(&str, &str); 18] = [
    (
        "email_confirmation_subject.txt",
        include_str!("../../templates/email/email_confirmation_subject.txt"),
    ),
    (
        "email_confirmation_message.txt",
        include_str!("../../templates/email/email_confirmation_message.txt"),
    ),
    (
        "email_confirmation_message.html",
        include_str!("../../templates/email/email_confirmation_message.html"),
    ),
    (
        "password_reset_subject.txt",
        include_str!("../../templates/email/password_reset_subject.txt"),
    ),
    (
        "password_reset_message.txt",
        include_str!("../../templates/email/password_reset_message.txt"),
    ),
    (
        "password_reset_message.html",
        include_str!("../../templates/email/password_reset_message.html"),
    ),
    (
        "account_already_exists_subject.txt",
        include_str!("../../templates/email/account_already_exists_subject.txt"),
    ),
    (
        "account_already_exists_message.txt",
        include_str!("../../templates/email/account_already_exists_message.txt"),
    ),
    (
        "account_already_exists_message.html",
        include_str!("../../templates/email/account_already_exists_message.html"),
    ),
    (
        "password_changed_subject.txt",
        include_str!("../../templates/email/password_changed_subject.txt"),
    ),
    (
        "password_changed_message.txt",
        include_str!("../../templates/email/password_changed_message.txt"),
    ),
    (
        "password_changed_message.html",
        include_str!("../../templates/email/password_changed_message.html"),
    ),
    (
        "email_changed_subject.txt",
        include_str!("../../templates/email/email_changed_subject.txt"),
    ),
    (
        "email_changed_message.txt",
        include_str!("../../templates/email/email_changed_message.txt"),
    ),
    (
        "email_changed_message.html",
        include_str!("../../templates/email/email_changed_message.html"),
    ),
    (
        "account_deleted_subject.txt",
        include_str!("../../templates/email/account_deleted_subject.txt"),
    ),
    (
        "account_deleted_message.txt",
        include_str!("../../templates/email/account_deleted_message.txt"),
    ),
    (
        "account_deleted_message.html",
        include_str!("../../templates/email/account_deleted_message.html"),
    ),
];

/// The compiled templates and the subject prefix. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Templates {
    set: TemplateSet,
    subject_prefix: String,
}

impl Templates {
    /// Built-in templates (embedded with `include_str!` from `templates/email/`), each replaced
    /// by `<templates_dir>/<same file name>` when that file exists. Every template is compiled
    /// and test-rendered with [`example_context`] here, so a broken override is a startup
    /// error naming the file.
    pub fn load(config: &EmailConfig) -> Result<Self, TemplateError> {
        let set = TemplateSet::load(
            "email",
            "email.templates_dir",
            &BUILT_IN,
            config.templates_dir.as_deref(),
        )?;
        let templates = Self {
            set,
            subject_prefix: config.subject_prefix.clone(),
        };
        for kind in <MailKind as strum::IntoEnumIterator>::iter() {
            templates.render(kind, &example_context(kind))?;
        }
        Ok(templates)
    }

    /// Subject: rendered, then every run of line breaks, control characters and spaces
    /// collapsed into a single space and trimmed (no header injection), prefixed with
    /// `subject_prefix`. HTML is auto-escaped (templates whose name ends in `.html`); text is
    /// not. An undefined variable is an error.
    pub fn render(
        &self,
        kind: MailKind,
        context: &serde_json::Value,
    ) -> Result<Rendered, TemplateError> {
        let context = Value::from(minijinja::value::Serde(context));
        let kind = kind.as_str();
        let subject = self.set.render(&format!("{kind}_subject.txt"), &context)?;
        Ok(Rendered {
            subject: one_line(&format!("{}{subject}", self.subject_prefix)),
            text: self.set.render(&format!("{kind}_message.txt"), &context)?,
            html: self.set.render(&format!("{kind}_message.html"), &context)?,
        })
    }
}

/// The context each kind is rendered with, with sample values: the contract between the
/// services and the templates (documented in `templates/email/README.md`).
pub fn example_context(kind: MailKind) -> serde_json::Value {
    let mut context = serde_json::json!({
        "site_name": "Tessera",
        "email": "ada@example.com",
        "user": {
            "username": "ada",
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
        },
    });
    let extra = match kind {
        MailKind::EmailConfirmation => serde_json::json!({
            "activate_url": "https://example.com/verify-email/KEY/",
            "key": "KEY",
            "expires_in": "3 days",
        }),
        MailKind::PasswordReset => serde_json::json!({
            "password_reset_url": "https://example.com/password-reset/confirm/UID/TOKEN/",
            "uid": "UID",
            "token": "TOKEN",
            "expires_in": "1 hour",
        }),
        MailKind::AccountAlreadyExists => serde_json::json!({
            "site_url": "https://example.com",
        }),
        MailKind::PasswordChanged | MailKind::AccountDeleted => serde_json::json!({}),
        MailKind::EmailChanged => serde_json::json!({
            "from_email": "ada@example.com",
            "to_email": "ada@example.org",
        }),
    };
    if let (Some(context), serde_json::Value::Object(extra)) = (context.as_object_mut(), extra) {
        context.extend(extra);
    }
    context
}

/// One header-safe line: runs of whitespace and control characters (CR, LF, NEL, the Unicode
/// line and paragraph separators) become a single space.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config_with_dir(dir: Option<&Path>) -> EmailConfig {
        EmailConfig {
            templates_dir: dir.map(Path::to_owned),
            ..EmailConfig::default()
        }
    }

    fn built_in() -> Templates {
        Templates::load(&config_with_dir(None)).expect("built-in templates load")
    }

    #[test]
    fn every_kind_renders_with_its_link_in_text_and_as_href() {
        let templates = built_in();
        for kind in <MailKind as strum::IntoEnumIterator>::iter() {
            let context = example_context(kind);
            let rendered = templates.render(kind, &context).unwrap();
            assert!(
                rendered.subject.starts_with("[Tessera] "),
                "{kind:?}: {}",
                rendered.subject
            );
            assert!(rendered.text.contains("Hello from Tessera!"), "{kind:?}");
            assert!(rendered.html.starts_with("<!DOCTYPE html>"), "{kind:?}");
            let link = match kind {
                MailKind::EmailConfirmation => context["activate_url"].as_str(),
                MailKind::PasswordReset => context["password_reset_url"].as_str(),
                MailKind::AccountAlreadyExists => context["site_url"].as_str(),
                MailKind::PasswordChanged | MailKind::EmailChanged | MailKind::AccountDeleted => {
                    None
                }
            };
            if let Some(link) = link {
                assert!(
                    rendered.text.contains(link),
                    "{kind:?} text: {}",
                    rendered.text
                );
                assert!(
                    rendered.html.contains(&format!("href=\"{link}\"")),
                    "{kind:?} html: {}",
                    rendered.html
                );
            }
        }
    }

    #[test]
    fn wording_follows_allauth() {
        let templates = built_in();
        let confirmation = templates
            .render(
                MailKind::EmailConfirmation,
                &example_context(MailKind::EmailConfirmation),
            )
            .unwrap();
        assert_eq!(
            confirmation.subject,
            "[Tessera] Please confirm your email address"
        );
        assert!(confirmation.text.contains(
            "You're receiving this email because user ada has given your email address to \
             register an account on Tessera."
        ));
        assert!(confirmation.text.contains("expires in 3 days"));
        let reset = templates
            .render(
                MailKind::PasswordReset,
                &example_context(MailKind::PasswordReset),
            )
            .unwrap();
        assert!(
            reset
                .text
                .contains("It can be safely ignored if you did not request a password reset.")
        );
        assert!(reset.text.contains("expires in 1 hour"));
        assert!(reset.text.contains("your username is ada."));
    }

    #[test]
    fn a_user_without_username_is_named_by_email_and_not_reminded_of_one() {
        let templates = built_in();
        let mut context = example_context(MailKind::PasswordReset);
        context["user"]["username"] = "".into();
        let reset = templates.render(MailKind::PasswordReset, &context).unwrap();
        assert!(!reset.text.contains("your username is"), "{}", reset.text);
        assert!(!reset.html.contains("your username is"));

        let mut context = example_context(MailKind::EmailConfirmation);
        context["user"]["username"] = "".into();
        let confirmation = templates
            .render(MailKind::EmailConfirmation, &context)
            .unwrap();
        assert!(
            confirmation
                .text
                .contains("because user ada@example.com has given")
        );
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let templates = built_in();
        let mut context = example_context(MailKind::EmailConfirmation);
        context["user"]["username"] = "<script>alert('x')</script>".into();
        context["activate_url"] = "https://example.com/verify?a=1&b=\"2\"".into();
        let rendered = templates
            .render(MailKind::EmailConfirmation, &context)
            .unwrap();
        assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
        assert!(
            rendered
                .html
                .contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;")
        );
        assert!(
            rendered
                .html
                .contains("href=\"https://example.com/verify?a=1&amp;b=&quot;2&quot;\"")
        );
        assert!(
            rendered
                .text
                .contains("user <script>alert('x')</script> has")
        );
        assert!(
            rendered
                .text
                .contains("https://example.com/verify?a=1&b=\"2\"")
        );
    }

    #[test]
    fn the_subject_stays_one_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("password_changed_subject.txt"),
            "Changed for {{ user.username }}\n",
        )
        .unwrap();
        let templates = Templates::load(&config_with_dir(Some(dir.path()))).unwrap();
        let mut context = example_context(MailKind::PasswordChanged);
        context["user"]["username"] = "ada\r\nBcc: victim@example.com\u{2028}\u{85}\t x".into();
        let rendered = templates
            .render(MailKind::PasswordChanged, &context)
            .unwrap();
        assert_eq!(
            rendered.subject,
            "[Tessera] Changed for ada Bcc: victim@example.com x"
        );
    }

    #[test]
    fn an_override_replaces_just_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("password_reset_message.txt"),
            "Reset here: {{ password_reset_url }} ({{ uid }}/{{ token }})",
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a template").unwrap();
        let templates = Templates::load(&config_with_dir(Some(dir.path()))).unwrap();
        let context = example_context(MailKind::PasswordReset);
        let rendered = templates.render(MailKind::PasswordReset, &context).unwrap();
        assert_eq!(
            rendered.text,
            "Reset here: https://example.com/password-reset/confirm/UID/TOKEN/ (UID/TOKEN)"
        );
        assert_eq!(
            rendered.subject, "[Tessera] Password reset",
            "built-in subject"
        );
        assert!(rendered.html.contains("Reset my password"), "built-in HTML");
    }

    #[test]
    fn a_broken_override_is_a_load_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email_confirmation_message.html");
        std::fs::write(&path, "<p>{% if %}</p>").unwrap();
        let err = Templates::load(&config_with_dir(Some(dir.path()))).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("syntax error"), "{message}");
    }

    #[test]
    fn an_undefined_variable_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email_confirmation_message.txt");
        std::fs::write(&path, "Go to {{ activation_url }}").unwrap();
        let err = Templates::load(&config_with_dir(Some(dir.path()))).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("undefined value"), "{message}");

        // And at render time, when the caller leaves out a variable.
        let templates = built_in();
        let mut context = example_context(MailKind::PasswordReset);
        context
            .as_object_mut()
            .unwrap()
            .remove("password_reset_url");
        let err = templates
            .render(MailKind::PasswordReset, &context)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("built-in password_reset_message.txt"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_templates_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Templates::load(&config_with_dir(Some(&missing))).unwrap_err();
        assert!(err.to_string().contains("email.templates_dir"), "{err}");
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn errors_do_not_carry_the_context() {
        let templates = built_in();
        let mut context = example_context(MailKind::PasswordReset);
        context["token"] = "SECRET-TOKEN".into();
        context.as_object_mut().unwrap().remove("expires_in");
        let err = templates
            .render(MailKind::PasswordReset, &context)
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("SECRET-TOKEN"));
    }
}
