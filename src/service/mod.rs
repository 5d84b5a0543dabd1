//! Use cases. They own their transactions and know nothing of HTTP.

pub mod accounts;
pub mod error;
pub mod password_hashing;
pub mod password_validation;
pub mod secrets;
pub mod usernames;
