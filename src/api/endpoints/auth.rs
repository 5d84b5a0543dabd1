//! `login/` and `registration/`: the credentials are checked (or the account created) by the
//! service, then the mode `M` hands out its credential.

use std::marker::PhantomData;

use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem_openapi::Object;
use poem_openapi::OpenApi;
use poem_openapi::types::{Email, Example};

use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::api::mode::{Mode, finish_login};
use crate::api::session_cookie::CookieSessions;
use crate::api::tags::Tag;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::login::LoginInput;
use crate::service::registration::RegistrationInput;
use crate::service::usernames;

/// Credentials for `login/`. Which identifier is needed depends on `account.login_methods`
/// (by default `email`). The password is taken exactly as sent (never trimmed), up to 4096
/// bytes of UTF-8.
#[derive(Object)]
#[oai(example)]
pub struct LoginRequest {
    /// The account's email address.
    #[oai(validator(max_length = 254))]
    email: Option<Email>,
    /// The account's username (only when `account.login_methods` includes `username`).
    #[oai(validator(max_length = 150), skip_serializing_if_is_none)]
    username: Option<String>,
    #[oai(validator(min_length = 1, max_length = 4096))]
    password: String,
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            email: Some(Email("ada@example.com".into())),
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

/// A new account. `username` is optional: without it one is made from the email address.
///
/// Passwords are taken exactly as sent (never trimmed), up to 4096 bytes of UTF-8.
#[derive(Object)]
#[oai(example)]
pub struct RegisterRequest {
    #[oai(validator(max_length = 254))]
    email: Email,
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
            email: Email("ada@example.com".into()),
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

/// `login/` and `registration/` in mode `M`.
pub struct AuthApi<M>(PhantomData<M>);

impl<M> AuthApi<M> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M> Default for AuthApi<M> {
    fn default() -> Self {
        Self::new()
    }
}

#[OpenApi]
impl<M: Mode> AuthApi<M> {
    /// Log in
    ///
    /// Checks the credentials and hands out this mode's credential (see the success answer).
    /// For a user with MFA the answer is `{"ephemeral_token", "mfa_required": true}` instead,
    /// and `mfa/verify/` hands out the credential for a code.
    /// Every login gets its own credential, so logging out on one device leaves the others
    /// logged in. Wrong email, wrong password and inactive account all get the same answer.
    #[oai(
        path = "/login/",
        method = "post",
        operation_id = "login",
        tag = "Tag::Auth"
    )]
    async fn login(
        &self,
        accounts: Data<&Accounts>,
        state: Data<&M::State>,
        sessions: Data<&CookieSessions>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<LoginRequest, LoginInput>,
    ) -> Result<M::LoggedIn, ApiError> {
        let step = accounts.authenticate(body.0, &caller).await?;
        finish_login::<M>(step, &state, &sessions, jar, &caller).await
    }

    /// Register
    ///
    /// Creates an account. Unless email verification is mandatory, the answer carries this
    /// mode's first credential; otherwise a confirmation email is sent and the answer says so.
    #[oai(
        path = "/registration/",
        method = "post",
        operation_id = "register",
        tag = "Tag::Registration"
    )]
    async fn register(
        &self,
        accounts: Data<&Accounts>,
        state: Data<&M::State>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<RegisterRequest, RegistrationInput>,
    ) -> Result<M::SignedUp, ApiError> {
        let registered = accounts.register(body.0, &caller).await?;
        M::signed_up(&state, jar, registered, &caller).await
    }
}
