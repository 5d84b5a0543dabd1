//! `user/` and `password/change/`: what a logged-in user does with their account, in any mode.

use std::marker::PhantomData;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};

use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::api::mode::Mode;
use crate::api::mode::credentials::Authenticated;
use crate::api::responses::{Detail, NoContent, Success, UserDetails};
use crate::api::tags::Tag;
use crate::messages;
use crate::service::accounts::{Accounts, MAX_NAME_LENGTH};
use crate::service::audit::Caller;
use crate::service::password_change::PasswordChangeInput;
use crate::service::profile::ProfileUpdate;
use crate::service::usernames;

/// New values for the user's details; `PUT` requires `username`, `PATCH` requires nothing.
/// `pk` and `email` are ignored if sent.
#[derive(Object)]
#[oai(example)]
pub struct UserDetailsUpdate {
    /// Letters, digits and `@` `.` `+` `-` `_` only (letters and digits from any script).
    #[oai(validator(max_length = 150), skip_serializing_if_is_none)]
    username: Option<String>,
    #[oai(validator(max_length = 150))]
    first_name: Option<String>,
    #[oai(validator(max_length = 150))]
    last_name: Option<String>,
}

impl Example for UserDetailsUpdate {
    fn example() -> Self {
        Self {
            username: Some("ada".into()),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
        }
    }
}

/// New values for all of the user's details (`PUT`): `username` is required.
/// `pk` and `email` are ignored if sent.
#[derive(Object)]
#[oai(example)]
pub struct UserDetailsReplace {
    /// Letters, digits and `@` `.` `+` `-` `_` only (letters and digits from any script).
    #[oai(validator(max_length = 150))]
    username: String,
    #[oai(validator(max_length = 150))]
    first_name: Option<String>,
    #[oai(validator(max_length = 150))]
    last_name: Option<String>,
}

impl Example for UserDetailsReplace {
    fn example() -> Self {
        Self {
            username: "ada".into(),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
        }
    }
}

/// A profile update read as `PUT` (`FULL`: username required) or `PATCH`.
struct ProfileFields<const FULL: bool>(ProfileUpdate);

impl<const FULL: bool> FromFields for ProfileFields<FULL> {
    fn from_fields(fields: &mut Fields) -> Self {
        let username_presence = if FULL {
            Presence::Required
        } else {
            Presence::Optional
        };
        Self(ProfileUpdate {
            username: fields.text("username", username_presence, usernames::MAX_LENGTH),
            first_name: fields.text_allow_blank("first_name", Presence::Optional, MAX_NAME_LENGTH),
            last_name: fields.text_allow_blank("last_name", Presence::Optional, MAX_NAME_LENGTH),
        })
    }
}

/// A new password. `old_password` is required when `auth.old_password_field_enabled`, and
/// checked whenever it is sent.
///
/// Passwords are taken exactly as sent (never trimmed), up to 4096 bytes of UTF-8.
#[derive(Object)]
#[oai(example)]
pub struct PasswordChangeRequest {
    #[oai(validator(max_length = 4096), skip_serializing_if_is_none)]
    old_password: Option<String>,
    #[oai(validator(min_length = 1, max_length = 4096))]
    new_password1: String,
    /// Must equal `new_password1`.
    #[oai(validator(min_length = 1, max_length = 4096))]
    new_password2: String,
}

impl Example for PasswordChangeRequest {
    fn example() -> Self {
        Self {
            old_password: Some("correct horse battery staple".into()),
            new_password1: "a new and longer passphrase".into(),
            new_password2: "a new and longer passphrase".into(),
        }
    }
}

impl FromFields for PasswordChangeInput {
    fn from_fields(fields: &mut Fields) -> Self {
        PasswordChangeInput {
            old_password: fields.password("old_password", Presence::Optional),
            new_password1: Fields::required(fields.password("new_password1", Presence::Required)),
            new_password2: Fields::required(fields.password("new_password2", Presence::Required)),
        }
    }
}

/// `user/` and `password/change/` in mode `M`.
pub struct UserApi<M>(PhantomData<M>);

impl<M> UserApi<M> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M> Default for UserApi<M> {
    fn default() -> Self {
        Self::new()
    }
}

#[OpenApi]
impl<M: Mode> UserApi<M> {
    /// Get the current user
    #[oai(
        path = "/user/",
        method = "get",
        operation_id = "getUser",
        tag = "Tag::User"
    )]
    async fn get_user(&self, auth: Authenticated<M>) -> Result<Success<UserDetails>, ApiError> {
        Ok(Success::Ok(Json(auth.0.user.into())))
    }

    /// Replace the current user's details
    ///
    /// `username` is required; sending your own current username is fine.
    #[oai(
        path = "/user/",
        method = "put",
        operation_id = "updateUser",
        tag = "Tag::User"
    )]
    async fn put_user(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        body: Input<UserDetailsReplace, ProfileFields<true>>,
    ) -> Result<Success<UserDetails>, ApiError> {
        let user = accounts.update_profile(&auth.0, body.0.0).await?;
        Ok(Success::Ok(Json(user.into())))
    }

    /// Update some of the current user's details
    #[oai(
        path = "/user/",
        method = "patch",
        operation_id = "partialUpdateUser",
        tag = "Tag::User"
    )]
    async fn patch_user(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        body: Input<UserDetailsUpdate, ProfileFields<false>>,
    ) -> Result<Success<UserDetails>, ApiError> {
        let user = accounts.update_profile(&auth.0, body.0.0).await?;
        Ok(Success::Ok(Json(user.into())))
    }

    /// Delete my account
    ///
    /// Deletes the account and everything tied to it (or, with `account.deletion =
    /// "deactivate"`, empties and deactivates it); every instance refuses its credentials at
    /// once and a goodbye mail goes to the primary address. Needs a recent proof of the
    /// password; 405 when `account.deletion = "disabled"`; the last administrator cannot
    /// delete itself (403).
    #[oai(
        path = "/user/",
        method = "delete",
        operation_id = "deleteAccount",
        tag = "Tag::Account"
    )]
    async fn delete_account(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
    ) -> Result<NoContent, ApiError> {
        super::leaving::delete_account(&accounts, auth, caller).await
    }

    /// Change the password
    ///
    /// Sets a new password and ends every other token of the user (this one too when
    /// `auth.logout_on_password_change`).
    #[oai(
        path = "/password/change/",
        method = "post",
        operation_id = "changePassword",
        tag = "Tag::Password"
    )]
    async fn change_password(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        body: Input<PasswordChangeRequest, PasswordChangeInput>,
    ) -> Result<Success<Detail>, ApiError> {
        accounts.change_password(&auth.0, body.0, &caller).await?;
        Ok(Detail::new(messages::PASSWORD_SAVED))
    }
}
