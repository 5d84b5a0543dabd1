//! Request and response shapes shared by every mode (dj-rest-auth's), and the endpoints that
//! work the same in all of them: `user/` and `password/change/`.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::api::auth::Authenticated;
use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::service::accounts::{
    Accounts, LoginInput, MAX_NAME_LENGTH, PasswordChangeInput, ProfileUpdate, RegistrationInput,
    User,
};
use crate::service::audit::Caller;
use crate::service::usernames;

pub const LOGGED_OUT: &str = "Successfully logged out.";
pub const NOT_LOGGED_IN: &str =
    "You should be logged in to logout. Check whether the token is passed.";
pub const PASSWORD_SAVED: &str = "New password has been saved.";
pub const VERIFICATION_SENT: &str = "Verification e-mail sent.";

/// Credentials for `login/`. Which identifier is needed depends on `account.login_methods`
/// (by default `email`). The password is taken exactly as sent (never trimmed), up to 4096
/// bytes of UTF-8.
#[derive(Object)]
#[oai(example)]
pub struct LoginRequest {
    /// The account's email address.
    #[oai(validator(max_length = 254))]
    email: Option<String>,
    /// The account's username (only when `account.login_methods` includes `username`).
    #[oai(validator(max_length = 150), skip_serializing_if_is_none)]
    username: Option<String>,
    #[oai(validator(min_length = 1, max_length = 4096))]
    password: String,
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            email: Some("ada@example.com".into()),
            username: None,
            password: "correct horse battery staple".into(),
        }
    }
}

impl FromFields for LoginInput {
    fn from_fields(fields: &mut Fields) -> Self {
        LoginInput {
            email: fields.email_allow_blank("email"),
            username: fields.text_allow_blank(
                "username",
                Presence::Optional,
                usernames::MAX_LENGTH,
            ),
            password: Fields::required(fields.password("password", Presence::Required)),
        }
    }
}

/// A confirmation message.
#[derive(Object)]
pub struct Detail {
    detail: String,
}

impl Detail {
    pub fn text(text: &str) -> Self {
        Self {
            detail: text.to_owned(),
        }
    }

    pub fn new(text: &str) -> Success<Self> {
        Success::Ok(Json(Self {
            detail: text.to_owned(),
        }))
    }
}

/// A new account. `username` is optional: without it one is made from the email address.
///
/// Passwords are taken exactly as sent (never trimmed), up to 4096 bytes of UTF-8.
#[derive(Object)]
#[oai(example)]
pub struct RegisterRequest {
    #[oai(validator(max_length = 254))]
    email: String,
    /// Letters, digits and `@` `.` `+` `-` `_` only (letters and digits from any script).
    #[oai(validator(max_length = 150), skip_serializing_if_is_none)]
    username: Option<String>,
    #[oai(validator(min_length = 1, max_length = 4096))]
    password1: String,
    /// Must equal `password1`.
    #[oai(validator(min_length = 1, max_length = 4096))]
    password2: String,
}

impl Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: "ada@example.com".into(),
            username: None,
            password1: "correct horse battery staple".into(),
            password2: "correct horse battery staple".into(),
        }
    }
}

impl FromFields for RegistrationInput {
    fn from_fields(fields: &mut Fields) -> Self {
        let email = fields.email("email", Presence::Required);
        // An empty username means "none": email-only signup forms often send `""`.
        let username = fields
            .text_allow_blank("username", Presence::Optional, usernames::MAX_LENGTH)
            .filter(|u| !u.is_empty());
        let password1 = fields.password("password1", Presence::Required);
        let password2 = fields.password("password2", Presence::Required);
        RegistrationInput {
            email,
            username,
            password1,
            password2,
            field_errors: fields.take_errors(),
        }
    }
}

/// A successful answer with a JSON body.
#[derive(ApiResponse)]
pub enum Success<T: poem_openapi::types::ToJSON> {
    /// Success.
    #[oai(status = 200)]
    Ok(Json<T>),
}

/// A user's details. `pk` and `email` are read-only.
#[derive(Object)]
pub struct UserDetails {
    #[oai(read_only)]
    pk: i64,
    username: String,
    #[oai(read_only)]
    email: String,
    first_name: String,
    last_name: String,
}

impl From<User> for UserDetails {
    fn from(user: User) -> Self {
        Self {
            pk: user.id,
            username: user.username,
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
        }
    }
}

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

/// The endpoints every mode shares; the `Accounts` service comes from request data.
pub struct UserApi;

#[OpenApi]
impl UserApi {
    /// Get the current user
    #[oai(
        path = "/user/",
        method = "get",
        operation_id = "getUser",
        tag = "Tag::User"
    )]
    async fn get_user(&self, auth: Authenticated) -> Result<Success<UserDetails>, ApiError> {
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
        auth: Authenticated,
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
        auth: Authenticated,
        body: Input<UserDetailsUpdate, ProfileFields<false>>,
    ) -> Result<Success<UserDetails>, ApiError> {
        let user = accounts.update_profile(&auth.0, body.0.0).await?;
        Ok(Success::Ok(Json(user.into())))
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
        auth: Authenticated,
        caller: Caller,
        body: Input<PasswordChangeRequest, PasswordChangeInput>,
    ) -> Result<Success<Detail>, ApiError> {
        accounts.change_password(&auth.0, body.0, &caller).await?;
        Ok(Detail::new(PASSWORD_SAVED))
    }
}
