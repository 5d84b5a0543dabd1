//! Tessera's sea-orm models: data shapes only, no I/O.
//!
//! The schema itself is owned by the `migration` crate; these models mirror it.
//! Ids are newtypes over `i64` (`ids`). Times are UTC.
//!
//! Columns holding password hashes, digests of secret tokens or mail bodies (which carry
//! live links) print as `[redacted]` in `Debug`, so they cannot leak into logs.

pub mod audit_event;
pub mod auth_token;
pub mod credential_revocation;
pub mod email_address;
pub mod email_confirmation;
pub mod ids;
pub mod mfa_accepted_step;
pub mod mfa_authenticator;
pub mod mfa_challenge;
pub mod outbox_message;
pub mod password_reset_token;
pub mod refresh_token;
pub mod refresh_token_family;
pub mod session;
pub mod social_account;
pub mod social_login_code;
pub mod social_login_state;
pub mod user;

pub use ids::{EmailAddressId, FamilyId, SessionId, SocialAccountId, TokenId, UserId};

pub mod prelude {
    pub use crate::audit_event::Entity as AuditEvent;
    pub use crate::auth_token::Entity as AuthToken;
    pub use crate::credential_revocation::Entity as CredentialRevocation;
    pub use crate::email_address::Entity as EmailAddress;
    pub use crate::email_confirmation::Entity as EmailConfirmation;
    pub use crate::mfa_accepted_step::Entity as MfaAcceptedStep;
    pub use crate::mfa_authenticator::Entity as MfaAuthenticator;
    pub use crate::mfa_challenge::Entity as MfaChallenge;
    pub use crate::outbox_message::Entity as OutboxMessage;
    pub use crate::password_reset_token::Entity as PasswordResetToken;
    pub use crate::refresh_token::Entity as RefreshToken;
    pub use crate::refresh_token_family::Entity as RefreshTokenFamily;
    pub use crate::session::Entity as Session;
    pub use crate::social_account::Entity as SocialAccount;
    pub use crate::social_login_code::Entity as SocialLoginCode;
    pub use crate::social_login_state::Entity as SocialLoginState;
    pub use crate::user::Entity as User;
}
