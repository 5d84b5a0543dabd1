//! `emails/`: the user's email addresses (allauth's `EmailAddress`) in mode `M`.

use std::marker::PhantomData;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::{Email, Example};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::endpoints::email_verification::EmailField;
use crate::api::error::ApiError;
use crate::api::input::Input;
use crate::api::mode::Mode;
use crate::api::mode::credentials::Authenticated;
use crate::api::responses::{Detail, NoContent, Success};
use crate::api::tags::Tag;
use crate::messages;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::email_addresses::Address;

/// One of the user's email addresses.
#[derive(Object)]
pub struct EmailAddressInfo {
    email: String,
    /// Confirmed with the key mailed to it.
    verified: bool,
    /// The address of `user/`, of login by email and of password reset; exactly one is.
    primary: bool,
}

impl From<Address> for EmailAddressInfo {
    fn from(address: Address) -> Self {
        Self {
            email: address.email,
            verified: address.verified,
            primary: address.primary,
        }
    }
}

fn listed(addresses: Vec<Address>) -> Vec<EmailAddressInfo> {
    addresses.into_iter().map(EmailAddressInfo::from).collect()
}

/// An email address (one of the user's, except when adding one).
#[derive(Object)]
#[oai(example)]
pub struct EmailAddressRequest {
    #[oai(validator(max_length = 254))]
    email: Email,
}

impl Example for EmailAddressRequest {
    fn example() -> Self {
        Self {
            email: Email("ada@example.org".into()),
        }
    }
}

/// `POST emails/`'s answer.
#[derive(ApiResponse)]
pub enum AddedAddress {
    /// Added, unconfirmed; a confirmation email is on its way to it.
    #[oai(status = 201)]
    Created(Json<EmailAddressInfo>),
}

/// `emails/` in mode `M`.
pub struct EmailAddressesApi<M>(PhantomData<M>);

impl<M> EmailAddressesApi<M> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M> Default for EmailAddressesApi<M> {
    fn default() -> Self {
        Self::new()
    }
}

#[OpenApi]
impl<M: Mode> EmailAddressesApi<M> {
    /// List the email addresses
    ///
    /// The user's addresses, the primary one first.
    #[oai(
        path = "/emails/",
        method = "get",
        operation_id = "listEmailAddresses",
        tag = "Tag::Account"
    )]
    async fn list(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
    ) -> Result<Success<Vec<EmailAddressInfo>>, ApiError> {
        let addresses = accounts.email_addresses(auth.0.user.id).await?;
        Ok(Success::Ok(Json(listed(addresses))))
    }

    /// Add an email address
    ///
    /// Adds an unconfirmed address and mails it a confirmation key, which
    /// `registration/verify-email/` takes. At most `account.max_email_addresses` per user;
    /// with `account.change_email` the new address replaces any pending one and, once
    /// confirmed, the primary address. Needs a recent proof of the password
    /// (`reauthenticate/`).
    #[oai(
        path = "/emails/",
        method = "post",
        operation_id = "addEmailAddress",
        tag = "Tag::Account"
    )]
    async fn add(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        body: Input<EmailAddressRequest, EmailField>,
    ) -> Result<AddedAddress, ApiError> {
        let address = accounts
            .add_email_address(&auth.0, &body.0.0, &caller)
            .await?;
        Ok(AddedAddress::Created(Json(address.into())))
    }

    /// Remove an email address
    ///
    /// Removes one of the user's addresses other than the primary one. Needs a recent proof
    /// of the password (`reauthenticate/`).
    #[oai(
        path = "/emails/",
        method = "delete",
        operation_id = "removeEmailAddress",
        tag = "Tag::Account"
    )]
    async fn remove(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        body: Input<EmailAddressRequest, EmailField>,
    ) -> Result<NoContent, ApiError> {
        accounts
            .remove_email_address(&auth.0, &body.0.0, &caller)
            .await?;
        Ok(NoContent::Done)
    }

    /// Make an email address primary
    ///
    /// One of the user's confirmed addresses becomes the primary one: `user/`'s `email`, the
    /// address login by email and password reset use. The old primary address stays (not
    /// primary) and is mailed a notice of the change. Answers the addresses.
    #[oai(
        path = "/emails/primary/",
        method = "post",
        operation_id = "makeEmailAddressPrimary",
        tag = "Tag::Account"
    )]
    async fn make_primary(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        body: Input<EmailAddressRequest, EmailField>,
    ) -> Result<Success<Vec<EmailAddressInfo>>, ApiError> {
        let addresses = accounts
            .make_primary_email_address(&auth.0, &body.0.0, &caller)
            .await?;
        Ok(Success::Ok(Json(listed(addresses))))
    }

    /// Send a new confirmation email
    ///
    /// Mails a new key to one of the user's unconfirmed addresses, at most once every 180
    /// seconds per address (`rate_limits.confirm_email`, as `registration/resend-email/`);
    /// within that time, and for a confirmed address, nothing is sent and the answer is the
    /// same.
    #[oai(
        path = "/emails/resend/",
        method = "post",
        operation_id = "resendEmailAddressConfirmation",
        tag = "Tag::Account"
    )]
    async fn resend(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        body: Input<EmailAddressRequest, EmailField>,
    ) -> Result<Success<Detail>, ApiError> {
        accounts
            .resend_email_address_confirmation(&auth.0, &body.0.0, &caller)
            .await?;
        Ok(Detail::new(messages::OK))
    }
}
