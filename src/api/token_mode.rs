//! Token mode (`auth.mode = "token"`): `login/`, `logout/` and `registration/` hand out and end
//! opaque tokens, as dj-rest-auth with DRF's `TokenAuthentication`.

use poem::http::StatusCode;
use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::api::accounts::{
    Detail, LOGGED_OUT, LoginRequest, NOT_LOGGED_IN, RegisterRequest, Success, VERIFICATION_SENT,
};
use crate::api::auth::MaybeAuthenticated;
use crate::api::error::ApiError;
use crate::api::input::Input;
use crate::api::session_mode::{authenticate_login, close_session};
use crate::service::accounts::{Accounts, LoginInput, Registered, RegistrationInput};
use crate::service::audit::Caller;

/// An opaque API token, to send as `Authorization: Token <key>`.
#[derive(Object)]
pub struct TokenKey {
    /// 40 lowercase hexadecimal characters.
    key: String,
}

/// `{"key"}` when the account can log in at once; `{"detail"}` when it must first confirm its
/// email address (`account.email_verification = "mandatory"`).
#[derive(Object)]
pub struct RegisterResult {
    #[oai(skip_serializing_if_is_none)]
    key: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    detail: Option<String>,
}

#[derive(ApiResponse)]
enum RegisterResponse {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<RegisterResult>),
}

pub struct TokenModeApi;

#[OpenApi]
impl TokenModeApi {
    /// Log in
    ///
    /// Checks the credentials and returns a new token for this device. Every login gets its own
    /// token, so logging out on one device leaves the others logged in. Wrong email, wrong
    /// password and inactive account all get the same answer.
    #[oai(
        path = "/login/",
        method = "post",
        operation_id = "login",
        tag = "Tag::Auth"
    )]
    async fn login(
        &self,
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<LoginRequest, LoginInput>,
    ) -> Result<Success<TokenKey>, ApiError> {
        let user = authenticate_login(&accounts, jar, body.0, &caller).await?;
        let key = accounts.issue_token(user.id).await?;
        Ok(Success::Ok(Json(TokenKey { key })))
    }

    /// Log out
    ///
    /// Ends the token sent with the request, and only that one.
    #[oai(
        path = "/logout/",
        method = "post",
        operation_id = "logout",
        tag = "Tag::Auth"
    )]
    async fn logout(
        &self,
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        auth: MaybeAuthenticated,
    ) -> Result<Success<Detail>, ApiError> {
        // With `auth.session_login` the login's session ends too, and (as dj-rest-auth) a
        // logout without a token is no error then.
        let session_login = accounts.config().auth.session_login;
        if session_login {
            close_session(&accounts, jar, &caller).await?;
        }
        match auth.0 {
            Some(principal) => accounts.logout(&principal, &caller).await?,
            None if session_login => {}
            None => return Err(ApiError::detail(StatusCode::BAD_REQUEST, NOT_LOGGED_IN)),
        }
        Ok(Detail::new(LOGGED_OUT))
    }

    /// Register
    ///
    /// Creates an account. Unless email verification is mandatory, the answer carries the first
    /// token; otherwise a confirmation email is sent and the answer says so.
    #[oai(
        path = "/registration/",
        method = "post",
        operation_id = "register",
        tag = "Tag::Registration"
    )]
    async fn register(
        &self,
        accounts: Data<&Accounts>,
        caller: Caller,
        body: Input<RegisterRequest, RegistrationInput>,
    ) -> Result<RegisterResponse, ApiError> {
        let result = match accounts.register(body.0, &caller).await? {
            Registered::Active(user) => RegisterResult {
                key: Some(accounts.issue_token(user.id).await?),
                detail: None,
            },
            Registered::VerificationSent => RegisterResult {
                key: None,
                detail: Some(VERIFICATION_SENT.into()),
            },
        };
        Ok(RegisterResponse::Created(Json(result)))
    }
}
