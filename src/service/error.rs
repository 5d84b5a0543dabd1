//! The one error type of the use-case layer. `api::error` maps it to HTTP.

use std::collections::BTreeMap;

use sea_orm::DbErr;

/// DRF-style validation errors: field name (or `non_field_errors`) to messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

pub const NON_FIELD_ERRORS: &str = "non_field_errors";

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// One field's error, as a ready-made service error.
    pub fn single(field: &str, message: impl Into<String>) -> Error {
        let mut errors = Self::new();
        errors.add(field, message);
        Error::Invalid(errors)
    }

    pub fn non_field(message: impl Into<String>) -> Error {
        Self::single(NON_FIELD_ERRORS, message)
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    pub fn extend(&mut self, field: &str, messages: impl IntoIterator<Item = String>) {
        for message in messages {
            self.add(field, message);
        }
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else the errors as a service error.
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self))
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.0.iter()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input rejected; answered 400 with the field errors.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// A credential was presented but is not valid; the message is DRF's `detail`.
    #[error("authentication failed: {0}")]
    Unauthenticated(&'static str),
    /// A credential is required and none was presented.
    #[error("authentication credentials were not provided")]
    NotAuthenticated,
    /// A request that makes no sense without a credential (DRF answers 400, not 401).
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("not found")]
    NotFound,
    /// Refused whatever the credential (403 with this `detail`).
    #[error("{0}")]
    Forbidden(&'static str),
    /// A guarded action whose credential last proved the password too long ago (403).
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// Over a rate limit; try again in `wait_seconds`.
    #[error("throttled for {wait_seconds} s")]
    Throttled { wait_seconds: u64 },
    /// A JWT was refused; each endpoint answers in its own dj-rest-auth / SimpleJWT shape.
    #[error("token refused: {}", .0.message())]
    TokenRejected(crate::service::jwt::JwtRejection),
    /// Something Tessera depends on outside its database (an identity provider) cannot be
    /// reached: 503, as for the database.
    #[error("a dependency is unavailable")]
    Unavailable,
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::mail::outbox::OutboxError> for Error {
    fn from(err: crate::mail::outbox::OutboxError) -> Self {
        match err {
            crate::mail::outbox::OutboxError::Database(err) => Error::Database(err),
            crate::mail::outbox::OutboxError::Template(err) => Error::Internal(err.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
