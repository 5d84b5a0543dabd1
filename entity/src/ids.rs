//! Row ids as types of their own, so a user id cannot be passed where a token id is meant.
//! Each is the table's `i64` primary key (`bigint` identity on PostgreSQL, `integer PRIMARY
//! KEY AUTOINCREMENT` on SQLite).

use sea_orm::DeriveValueType;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, DeriveValueType,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

ids! {
    /// `users.id`.
    UserId,
    /// `auth_tokens.id`: one opaque token (token mode).
    TokenId,
    /// `sessions.id`: one server-side session.
    SessionId,
    /// `refresh_token_families.id`: the refresh tokens of one JWT login.
    FamilyId,
    /// `email_addresses.id`.
    EmailAddressId,
    /// `social_accounts.id`: a user's account at an identity provider.
    SocialAccountId,
}
