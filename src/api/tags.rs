//! The operation groups of the OpenAPI document, in the order a newcomer meets them.

use poem_openapi::Tags;

/// Operation groups in the OpenAPI document.
#[derive(Tags, Clone, Copy)]
pub enum Tag {
    /// Create an account and confirm its email address.
    Registration,
    /// Log in and out.
    Auth,
    /// The logged-in user's details.
    User,
    /// Change or reset a password.
    Password,
    /// Two-factor authentication: TOTP and recovery codes.
    Mfa,
    /// The account's self-service: devices and sessions, email addresses, export, deletion.
    Account,
    /// Sign in with an identity provider (OpenID Connect, Google, GitHub), link and unlink.
    Social,
}

impl Tag {
    /// Journey order: Swagger UI shows the groups in the order of the document's `tags`.
    pub const JOURNEY: [Tag; 7] = [
        Tag::Registration,
        Tag::Auth,
        Tag::User,
        Tag::Password,
        Tag::Mfa,
        Tag::Account,
        Tag::Social,
    ];
}
