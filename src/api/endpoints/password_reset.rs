//! `password/reset/` and `password/reset/confirm/`.

use poem::web::Data;
use poem_openapi::types::{Email, Example};
use poem_openapi::{Object, OpenApi};

use crate::api::endpoints::email_verification::EmailField;
use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::api::responses::{Detail, Success};
use crate::api::tags::Tag;
use crate::messages;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::password_reset::ResetConfirmation;

/// The longest `uid` read (base 36 of an `i64` is 13 characters).
const MAX_UID_LENGTH: usize = 64;
/// The longest reset `token` read (ours are 64 hex characters).
const MAX_TOKEN_LENGTH: usize = 256;

/// The address of the account whose password is forgotten.
#[derive(Object)]
#[oai(example)]
pub struct PasswordResetRequest {
    #[oai(validator(max_length = 254))]
    email: Email,
}

impl Example for PasswordResetRequest {
    fn example() -> Self {
        Self {
            email: Email("ada@example.com".into()),
        }
    }
}

/// The `uid` and `token` from a reset link, and the new password twice.
///
/// Passwords are taken exactly as sent (never trimmed), up to 4096 bytes of UTF-8.
#[derive(Object)]
#[oai(example)]
pub struct PasswordResetConfirmRequest {
    /// The user's id in base 36, from the link.
    #[oai(validator(min_length = 1, max_length = 64))]
    uid: String,
    /// The secret from the link.
    #[oai(validator(min_length = 1, max_length = 256))]
    token: String,
    #[oai(validator(min_length = 1, max_length = 4096))]
    new_password1: String,
    /// Must equal `new_password1`.
    #[oai(validator(min_length = 1, max_length = 4096))]
    new_password2: String,
}

impl Example for PasswordResetConfirmRequest {
    fn example() -> Self {
        Self {
            uid: "1z".into(),
            token: "9b2e4d6f8a0c1e3b5d7f9a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b".into(),
            new_password1: "a new and longer passphrase".into(),
            new_password2: "a new and longer passphrase".into(),
        }
    }
}

impl FromFields for ResetConfirmation {
    fn from_fields(fields: &mut Fields) -> Self {
        let uid = fields.text("uid", Presence::Required, MAX_UID_LENGTH);
        let token = fields.text("token", Presence::Required, MAX_TOKEN_LENGTH);
        let new_password1 = fields.password("new_password1", Presence::Required);
        let new_password2 = fields.password("new_password2", Presence::Required);
        ResetConfirmation {
            uid,
            token,
            new_password1,
            new_password2,
            field_errors: fields.take_errors(),
        }
    }
}

pub struct PasswordResetApi;

#[OpenApi]
impl PasswordResetApi {
    /// Request a password reset
    ///
    /// Mails a single-use reset link when the address has an active account. The answer is the
    /// same whether or not it does, so it reveals nothing about who has an account.
    #[oai(
        path = "/password/reset/",
        method = "post",
        operation_id = "requestPasswordReset",
        tag = "Tag::Password"
    )]
    async fn request_reset(
        &self,
        accounts: Data<&Accounts>,
        caller: Caller,
        body: Input<PasswordResetRequest, EmailField>,
    ) -> Result<Success<Detail>, ApiError> {
        accounts.request_password_reset(&body.0.0, &caller).await?;
        Ok(Detail::new(messages::RESET_SENT))
    }

    /// Set a new password from a reset link
    ///
    /// The link works once, until it expires (`account.password_reset_timeout`), and only while
    /// it is the newest one and the password is unchanged. Success ends every credential of
    /// the user and mails a notice.
    #[oai(
        path = "/password/reset/confirm/",
        method = "post",
        operation_id = "confirmPasswordReset",
        tag = "Tag::Password"
    )]
    async fn confirm_reset(
        &self,
        accounts: Data<&Accounts>,
        caller: Caller,
        body: Input<PasswordResetConfirmRequest, ResetConfirmation>,
    ) -> Result<Success<Detail>, ApiError> {
        accounts.confirm_password_reset(body.0, &caller).await?;
        Ok(Detail::new(messages::RESET_DONE))
    }
}
