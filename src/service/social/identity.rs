//! Who a provider says the user is: the same few facts from an id_token, OpenID Connect's
//! userinfo or GitHub's user API.

use super::IdTokenClaims;

/// A provider's user, as Tessera keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable subject (`sub`, GitHub's numeric id): the social account's key.
    pub uid: String,
    /// Lowercased and trimmed.
    pub email: Option<String>,
    /// The provider vouches that `email` is the user's.
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    /// A username the provider suggests (GitHub's login, `preferred_username`).
    pub username: Option<String>,
}

impl Identity {
    /// What the social account keeps of it (`extra_data`): no token, nothing secret.
    pub fn extra_data(&self) -> String {
        serde_json::json!({
            "email": self.email,
            "email_verified": self.email_verified,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
        })
        .to_string()
    }
}

impl From<IdTokenClaims> for Identity {
    fn from(claims: IdTokenClaims) -> Self {
        let (first_name, last_name) = names(
            claims.given_name,
            claims.family_name,
            claims.name.as_deref(),
        );
        Self {
            uid: claims.sub,
            email: claims
                .email
                .map(|e| crate::service::email_address::normalize_email(&e)),
            email_verified: claims.email_verified,
            first_name,
            last_name,
            username: None,
        }
    }
}

/// First and last names: the provider's own when it splits them, else `name` cut at its
/// last space (what allauth's providers do), each at most the column's 150 characters.
pub(super) fn names(
    given: Option<String>,
    family: Option<String>,
    full: Option<&str>,
) -> (String, String) {
    let cut = |text: String| text.chars().take(150).collect::<String>();
    match (given, family, full) {
        (Some(given), family, _) => (cut(given), cut(family.unwrap_or_default())),
        (None, Some(family), _) => (String::new(), cut(family)),
        (None, None, Some(full)) => match full.trim().rsplit_once(' ') {
            Some((first, last)) => (cut(first.trim().into()), cut(last.into())),
            None => (cut(full.trim().into()), String::new()),
        },
        (None, None, None) => (String::new(), String::new()),
    }
}

/// `email_verified` as providers send it: `true`, or the string `"true"` (some send that);
/// anything else, or nothing, is not verified.
pub(super) fn lenient_bool<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<bool, D::Error> {
    let value = <Option<serde_json::Value> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Bool(verified)) => verified,
        Some(serde_json::Value::String(text)) => text == "true",
        _ => false,
    })
}
