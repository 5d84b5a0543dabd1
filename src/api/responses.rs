//! Response bodies more than one area answers with: a confirmation message, a success
//! wrapper, the user's details, and the second-factor step of a login.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::service::principal::User;

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

/// `login/` for a user with MFA: no credential yet; `mfa/verify/` takes the token with a code.
#[derive(Object)]
pub struct MfaRequired {
    ephemeral_token: String,
    /// Always `true`.
    mfa_required: bool,
}

impl MfaRequired {
    pub fn new(ephemeral_token: String) -> Self {
        Self {
            ephemeral_token,
            mfa_required: true,
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

/// A success without a body (204).
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
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
            pk: user.id.0,
            username: user.username,
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
        }
    }
}
