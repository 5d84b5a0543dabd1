//! An id_token verified in full (OpenID Connect Core 1.0 §3.1.3.7): signature by the
//! provider's key named by `kid`, with the algorithm that key allows; `iss`, `aud`, `azp`,
//! `exp`, `iat`, `nonce`, `sub`.

use std::collections::HashSet;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::provider::{Discovery, OidcProvider, ProviderError};

/// Clock skew allowed between us and the provider, on `exp` and `iat`.
const LEEWAY_SECONDS: u64 = 60;

/// What Tessera takes from a verified id_token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenClaims {
    /// The provider's stable subject: what a social account is keyed by.
    pub sub: String,
    pub email: Option<String>,
    /// The provider asserts `email` belongs to the user (`true`, or the string `"true"` as
    /// some providers send it).
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// Why an id_token was refused: for the logs (never the token itself).
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("algorithm {0} is not one this provider's key allows")]
    Algorithm(String),
    #[error("no key in the provider's JWKS for kid {0:?}")]
    UnknownKey(Option<String>),
    #[error("the provider's key cannot be used: {0}")]
    UnusableKey(String),
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    IssuedInFuture,
    #[error("not yet valid")]
    NotYetValid,
    #[error("issuer is not {0}")]
    Issuer(String),
    #[error("audience does not include this client")]
    Audience,
    #[error("authorized party (azp) is missing or not this client")]
    AuthorizedParty,
    #[error("nonce does not match")]
    Nonce,
    #[error("claim {0} missing or malformed")]
    Claim(String),
    #[error("provider: {0}")]
    Provider(#[from] ProviderError),
}

#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    iat: i64,
    #[serde(default, deserialize_with = "crate::config::one_or_many")]
    aud: Vec<String>,
    azp: Option<String>,
    nonce: Option<String>,
    email: Option<String>,
    #[serde(default, deserialize_with = "super::identity::lenient_bool")]
    email_verified: bool,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

/// Verifies `token` as an id_token `provider` issued to this client. `nonce`: the one sent
/// with the authorization request, required to match when given (the redirect flow); a
/// token handed in by a frontend has none to compare with.
pub async fn verify_id_token(
    provider: &OidcProvider,
    token: &str,
    nonce: Option<&str>,
) -> Result<IdTokenClaims, IdTokenError> {
    // The header is read only to find the key; nothing in it is trusted until the key
    // has said which algorithm it signs with. `alg: none` does not even parse here.
    let header = jsonwebtoken::decode_header(token).map_err(|err| match err.kind() {
        jsonwebtoken::errors::ErrorKind::Json(_) => {
            IdTokenError::Algorithm("unknown or none".into())
        }
        _ => IdTokenError::Malformed(err.to_string()),
    })?;
    let (key, discovery) = provider.key(header.kid.as_deref()).await?;
    let key = key.ok_or_else(|| IdTokenError::UnknownKey(header.kid.clone()))?;
    let allowed = allowed_algorithms(&key, &discovery);
    if !allowed.contains(&header.alg) {
        return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let decoding_key =
        DecodingKey::from_jwk(&key).map_err(|err| IdTokenError::UnusableKey(err.to_string()))?;

    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[&provider.issuer]);
    validation.set_audience(&[&provider.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data =
        jsonwebtoken::decode::<RawClaims>(token, &decoding_key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::InvalidSignature => IdTokenError::Signature,
                ErrorKind::ExpiredSignature => IdTokenError::Expired,
                ErrorKind::ImmatureSignature => IdTokenError::NotYetValid,
                ErrorKind::InvalidIssuer => IdTokenError::Issuer(provider.issuer.clone()),
                ErrorKind::InvalidAudience => IdTokenError::Audience,
                ErrorKind::InvalidAlgorithm => IdTokenError::Algorithm(format!("{:?}", header.alg)),
                ErrorKind::MissingRequiredClaim(claim) => IdTokenError::Claim(claim.clone()),
                ErrorKind::Json(err) => IdTokenError::Claim(err.to_string()),
                _ => IdTokenError::Malformed(err.to_string()),
            }
        })?;
    let claims = data.claims;

    let now = jsonwebtoken::get_current_timestamp() as i64;
    if claims.iat > now + LEEWAY_SECONDS as i64 {
        return Err(IdTokenError::IssuedInFuture);
    }
    // Core §3.1.3.7 items 4-5: with several audiences the token must say it was issued to
    // us (azp); when azp is present at all, it must be us.
    match &claims.azp {
        Some(azp) if azp != &provider.client_id => return Err(IdTokenError::AuthorizedParty),
        None if claims.aud.len() > 1 => return Err(IdTokenError::AuthorizedParty),
        _ => {}
    }
    if let Some(expected) = nonce {
        let matches = claims.nonce.as_deref().is_some_and(|found| {
            subtle::ConstantTimeEq::ct_eq(found.as_bytes(), expected.as_bytes()).into()
        });
        if !matches {
            return Err(IdTokenError::Nonce);
        }
    }
    if claims.sub.is_empty() {
        return Err(IdTokenError::Claim("sub".into()));
    }
    Ok(IdTokenClaims {
        sub: claims.sub,
        email: claims.email,
        email_verified: claims.email_verified,
        name: claims.name,
        given_name: claims.given_name,
        family_name: claims.family_name,
    })
}

/// The algorithms a key may verify: the one its JWK names, or those of its key type that
/// the provider says it signs id_tokens with. Never HMAC: a provider's public key is no
/// shared secret, and a symmetric key in a JWKS is not one we accept signatures from.
fn allowed_algorithms(key: &Jwk, discovery: &Discovery) -> Vec<Algorithm> {
    let by_type: &[Algorithm] = match &key.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => &[],
        },
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        _ => &[],
    };
    if key.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Vec::new();
    }
    match key.common.key_algorithm {
        // A key named for encryption (RSA-OAEP...) signs nothing.
        Some(named) => match Algorithm::try_from(named) {
            Ok(alg) => by_type.iter().copied().filter(|a| *a == alg).collect(),
            Err(_) => Vec::new(),
        },
        None => {
            let supported: HashSet<&str> = discovery
                .id_token_signing_alg_values_supported
                .iter()
                .map(String::as_str)
                .collect();
            by_type
                .iter()
                .copied()
                .filter(|alg| supported.contains(format!("{alg:?}").as_str()))
                .collect()
        }
    }
}
