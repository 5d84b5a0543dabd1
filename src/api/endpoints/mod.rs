//! The endpoints every mode shares, written once over the mode's credential strategy
//! (`M: Mode`), and the response shapes they share.

pub mod auth;
pub mod email_addresses;
pub mod email_verification;
pub mod leaving;
pub mod mfa;
pub mod password_reset;
pub mod sessions;
pub mod social;
pub mod user;

pub use auth::AuthApi;
pub use email_addresses::EmailAddressesApi;
pub use email_verification::EmailVerificationApi;
pub use leaving::LeavingApi;
pub use mfa::{MfaApi, ReauthenticateApi};
pub use password_reset::PasswordResetApi;
pub use sessions::SessionsApi;
pub use social::SocialApi;
pub use user::UserApi;

/// The document's opening paragraphs: what the API is, then how to authorize in the mode
/// the server runs (`authorize`, from the mode).
pub fn description(authorize: &str) -> String {
    format!(
        "Account management: registration, email verification, login, logout, user details, \
         password change and reset, wire-compatible with dj-rest-auth. Errors follow Django \
         REST framework's shapes: `{{\"detail\": ...}}` or `{{\"<field>\": [...]}}`. Every \
         path also works without its trailing slash, and request bodies may also be \
         form-encoded.\n\n{authorize}"
    )
}
