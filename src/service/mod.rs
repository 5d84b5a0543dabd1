//! Use cases. They own their transactions and know nothing of HTTP.

pub mod accounts;
pub mod audit;
pub mod email_verification;
pub mod error;
pub mod jwt;
pub mod jwt_auth;
pub mod password_hashing;
pub mod password_reset;
pub mod password_validation;
pub mod rate_limits;
pub mod secrets;
pub mod sessions;
pub mod usernames;
