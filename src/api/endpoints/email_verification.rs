//! `registration/verify-email/` and `registration/resend-email/`.

use poem::web::Data;
use poem_openapi::types::{Email, Example};
use poem_openapi::{Object, OpenApi};

use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::api::responses::{Detail, Success};
use crate::api::tags::Tag;
use crate::messages;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;

/// The longest confirmation key read (ours are 64 hex characters).
pub(crate) const MAX_KEY_LENGTH: usize = 256;

/// The key from a confirmation email.
#[derive(Object)]
#[oai(example)]
pub struct VerifyEmailRequest {
    #[oai(validator(min_length = 1, max_length = 256))]
    key: String,
}

impl Example for VerifyEmailRequest {
    fn example() -> Self {
        Self {
            key: "3f1c0a9e6b2d4f8a7c5e1b3d9f0a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b1d3f5a".into(),
        }
    }
}

struct VerifyEmailFields(String);

impl FromFields for VerifyEmailFields {
    fn from_fields(fields: &mut Fields) -> Self {
        Self(Fields::required(fields.text(
            "key",
            Presence::Required,
            MAX_KEY_LENGTH,
        )))
    }
}

/// An address to send a new confirmation email to.
#[derive(Object)]
#[oai(example)]
pub struct ResendEmailRequest {
    #[oai(validator(max_length = 254))]
    email: Email,
}

impl Example for ResendEmailRequest {
    fn example() -> Self {
        Self {
            email: Email("ada@example.com".into()),
        }
    }
}

/// A required, well-formed email field (resend-email, password reset).
pub(crate) struct EmailField(pub String);

impl FromFields for EmailField {
    fn from_fields(fields: &mut Fields) -> Self {
        Self(Fields::required(fields.email("email", Presence::Required)))
    }
}

pub struct EmailVerificationApi;

#[OpenApi]
impl EmailVerificationApi {
    /// Confirm an email address
    ///
    /// Confirms the address a key was mailed to. Each key works once, until it expires
    /// (`account.email_confirmation_expire_days`); an unknown, used or expired key is 404.
    #[oai(
        path = "/registration/verify-email/",
        method = "post",
        operation_id = "verifyEmail",
        tag = "Tag::Registration"
    )]
    async fn verify_email(
        &self,
        accounts: Data<&Accounts>,
        caller: Caller,
        body: Input<VerifyEmailRequest, VerifyEmailFields>,
    ) -> Result<Success<Detail>, ApiError> {
        accounts.confirm_email(&body.0.0, &caller).await?;
        Ok(Detail::new(messages::OK))
    }

    /// Send a new confirmation email
    ///
    /// Always answers `{"detail": "ok"}` for a well-formed address, whether or not it has an
    /// account, so the answer reveals nothing. A new email goes out when the address has an
    /// unconfirmed account, at most once every 180 seconds.
    #[oai(
        path = "/registration/resend-email/",
        method = "post",
        operation_id = "resendEmail",
        tag = "Tag::Registration"
    )]
    async fn resend_email(
        &self,
        accounts: Data<&Accounts>,
        caller: Caller,
        body: Input<ResendEmailRequest, EmailField>,
    ) -> Result<Success<Detail>, ApiError> {
        accounts.resend_confirmation(&body.0.0, &caller).await?;
        Ok(Detail::new(messages::OK))
    }
}
