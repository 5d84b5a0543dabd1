//! Use cases. They own their transactions and know nothing of HTTP.
//!
//! `accounts` is the service every use case hangs off; the rest are named for what they do.

pub mod account_status;
pub mod accounts;
pub mod audit;
pub mod credential_cache;
pub mod devices;
pub mod django_import;
pub mod email_address;
pub mod email_addresses;
pub mod email_verification;
pub mod error;
pub mod health;
pub mod jwt;
pub mod leaving;
pub mod login;
pub mod mfa;
pub mod operator;
pub mod password_change;
pub mod password_hashing;
pub mod password_reset;
pub mod password_validation;
pub mod principal;
pub mod profile;
pub mod rate_limits;
pub mod reauthentication;
pub mod registration;
pub mod revocations;
pub mod sealing;
pub mod sessions;
pub mod social;
pub mod social_login;
pub mod tokens;
pub mod usernames;
