//! Who is calling: the user as the rest of the application sees it (no password hash), and
//! the credential the request came with.

use entity::user;

use crate::store::credentials::CredentialRow;
use crate::store::refresh_tokens::FamilyId;
use crate::store::{sessions::SessionId, tokens::TokenId, users::UserId};

/// A user as the rest of the application sees it: no password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

impl From<user::Model> for User {
    fn from(model: user::Model) -> Self {
        Self {
            id: model.id,
            email: model.email,
            username: model.username,
            first_name: model.first_name,
            last_name: model.last_name,
            is_active: model.is_active,
            is_staff: model.is_staff,
            is_superuser: model.is_superuser,
        }
    }
}

/// Who is calling, and with which credential (so logout can end exactly that one).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
}

/// The credential a request was authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An opaque token (token mode).
    Token(TokenId),
    /// A JWT access token; `family` is the refresh family it was issued with.
    Jwt { family: Option<FamilyId> },
    /// A server-side session (session mode).
    Session(SessionId),
}

impl Credential {
    /// The row of this credential: the one to spare when a password change ends the user's
    /// others, and the one a reauthentication renews.
    pub(super) fn row(self) -> CredentialRow {
        match self {
            Credential::Token(id) => CredentialRow::Token(id),
            Credential::Jwt { family: Some(id) } => CredentialRow::RefreshFamily(id),
            Credential::Jwt { family: None } => CredentialRow::Nothing,
            Credential::Session(id) => CredentialRow::Session(id),
        }
    }
}
