//! The operation groups of the OpenAPI document.

use poem_openapi::Tags;

/// Operation groups in the OpenAPI document.
#[derive(Tags)]
pub enum Tag {
    /// Log in and out.
    Auth,
    /// Create an account and confirm its email address.
    Registration,
    /// The logged-in user's details.
    User,
    /// Change or reset a password.
    Password,
}
