//! JSON Web Tokens shaped as djangorestframework-simplejwt 5.5 issues them.
//!
//! Claims are SimpleJWT's (`token_type`, `exp`, `iat`, `jti`, `user_id` as a string, plus
//! `iss`/`aud` when configured), so a frontend or another service that understands SimpleJWT
//! tokens understands these. HS256 tokens signed with the same `secret_key` are
//! interchangeable with a Django deployment's.
//!
//! Key handling is deliberately strict:
//! - every key is pinned to one algorithm when it is loaded; a token's `alg` header only
//!   selects among keys already pinned to that algorithm, it never decides how a key is used
//!   (no algorithm confusion, no `alg: none`);
//! - a token carrying a `kid` is checked against that key alone, and an unknown `kid` is
//!   refused; a token without `kid` (as SimpleJWT issues) is tried against the keys pinned to
//!   its `alg`;
//! - old keys stay usable for verification only (`jwt.previous_secret_keys`,
//!   `jwt.verification_key_files`), so keys rotate without logging everybody out;
//! - no key material ever appears in `Debug` output or in error messages.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::{Config, JwtAlgorithm, MIN_SECRET_KEY_BYTES};
use crate::messages;

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// Longest token lifetime accepted (100 years); keeps `exp` arithmetic far from overflow.
const MAX_LIFETIME_SECONDS: u64 = 100 * 365 * 86_400;

/// Random bytes in a `jti` (128 bits, as SimpleJWT's `uuid4().hex` length).
const JTI_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    /// The `token_type` claim value.
    fn claim(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

/// SimpleJWT-shaped claims. `user_id` is a STRING (SimpleJWT 5.5). iss/aud only when configured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    pub token_type: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The refresh-token family (login session) the token belongs to. Not a SimpleJWT claim;
    /// extra claims are ignored by other verifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// A freshly signed token.
pub struct Issued {
    pub token: String,
    pub claims: Claims,
    /// The instant of the `exp` claim (whole seconds, as the claim).
    pub expires_at: DateTime<Utc>,
}

/// Why a JWT was refused; `message()` gives SimpleJWT's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtRejection {
    Invalid,
    Expired,
    WrongType,
    /// A refresh token of a revoked (or unknown) family.
    Blacklisted,
}

impl fmt::Display for JwtRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for JwtRejection {}

impl JwtRejection {
    /// SimpleJWT's message for this refusal, byte for byte.
    pub fn message(self) -> &'static str {
        match self {
            Self::Invalid => messages::TOKEN_INVALID,
            Self::Expired => messages::TOKEN_EXPIRED,
            Self::WrongType => messages::TOKEN_WRONG_TYPE,
            Self::Blacklisted => messages::TOKEN_BLACKLISTED,
        }
    }
}

/// The signing key and every key tokens are verified with. Cheap to clone.
#[derive(Clone)]
pub struct JwtKeys {
    inner: Arc<Inner>,
}

struct Inner {
    signing: SigningKey,
    /// The signing key's own verification key comes first, then the older keys.
    verification: Vec<VerificationKey>,
    access_lifetime: i64,
    refresh_lifetime: i64,
    issuer: Option<String>,
    audience: Option<String>,
    jwks: serde_json::Value,
}

struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
}

struct VerificationKey {
    kid: String,
    /// The one algorithm this key verifies; fixed when the key is loaded.
    alg: Algorithm,
    key: DecodingKey,
    /// Validation rules for tokens checked with this key (algorithm pinned to `alg`).
    validation: Validation,
    /// Public JWK (without `kid`/`alg`/`use`) for asymmetric keys; `None` for HMAC secrets.
    public_jwk: Option<Jwk>,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let verification: Vec<String> = inner
            .verification
            .iter()
            .map(|k| format!("{} ({:?})", k.kid, k.alg))
            .collect();
        f.debug_struct("JwtKeys")
            .field("algorithm", &inner.signing.alg)
            .field("signing_kid", &inner.signing.kid)
            .field("verification_keys", &verification)
            .field("access_lifetime_seconds", &inner.access_lifetime)
            .field("refresh_lifetime_seconds", &inner.refresh_lifetime)
            .field("issuer", &inner.issuer)
            .field("audience", &inner.audience)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Loads the signing key and the verification keys named by `config.jwt`.
    ///
    /// Errors are plain words naming the setting (and file) at fault; they never contain key
    /// material.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let jwt = &config.jwt;
        let access_lifetime = lifetime("jwt.access_lifetime_seconds", jwt.access_lifetime_seconds)?;
        let refresh_lifetime =
            lifetime("jwt.refresh_lifetime_seconds", jwt.refresh_lifetime_seconds)?;
        if jwt
            .key_id
            .as_deref()
            .is_some_and(|kid| kid.trim().is_empty())
        {
            return Err("jwt.key_id must not be empty (leave it unset to derive one)".into());
        }
        for (setting, value) in [("jwt.issuer", &jwt.issuer), ("jwt.audience", &jwt.audience)] {
            if value.as_deref().is_some_and(str::is_empty) {
                return Err(format!(
                    "{setting} must not be empty (leave it unset instead)"
                ));
            }
        }

        let validation = |alg: Algorithm| base_validation(alg, &jwt.issuer, &jwt.audience);
        let mut keys = KeyList::default();

        let signing = match jwt.algorithm {
            JwtAlgorithm::HS256 => {
                let secret = config.secret_key.as_ref().ok_or(
                    "secret_key is not set; jwt.algorithm = \"HS256\" signs tokens with it",
                )?;
                let secret = secret.expose_secret().as_bytes();
                if secret.len() < MIN_SECRET_KEY_BYTES {
                    return Err(format!(
                        "secret_key is too short to sign JWTs: use at least \
                         {MIN_SECRET_KEY_BYTES} random bytes"
                    ));
                }
                let fingerprint = hmac_fingerprint(secret);
                let kid = jwt.key_id.clone().unwrap_or_else(|| fingerprint.clone());
                keys.push(
                    fingerprint,
                    VerificationKey {
                        kid: kid.clone(),
                        alg: Algorithm::HS256,
                        key: DecodingKey::from_secret(secret),
                        validation: validation(Algorithm::HS256),
                        public_jwk: None,
                    },
                    "secret_key",
                )?;
                SigningKey {
                    kid,
                    alg: Algorithm::HS256,
                    key: EncodingKey::from_secret(secret),
                }
            }
            JwtAlgorithm::RS256 | JwtAlgorithm::EdDSA => {
                let alg = match jwt.algorithm {
                    JwtAlgorithm::RS256 => Algorithm::RS256,
                    _ => Algorithm::EdDSA,
                };
                let path = jwt.private_key_file.as_deref().ok_or_else(|| {
                    format!(
                        "jwt.private_key_file is not set; jwt.algorithm = \"{alg:?}\" signs \
                         tokens with it (a PEM private key)"
                    )
                })?;
                let (key, public_jwk, fingerprint) = load_private_key(path, alg)?;
                let kid = jwt.key_id.clone().unwrap_or_else(|| fingerprint.clone());
                keys.push(
                    fingerprint,
                    VerificationKey {
                        kid: kid.clone(),
                        alg,
                        key: DecodingKey::from_jwk(&public_jwk).map_err(|_| {
                            format!("jwt.private_key_file ({}): unusable key", path.display())
                        })?,
                        validation: validation(alg),
                        public_jwk: Some(public_jwk),
                    },
                    "jwt.private_key_file",
                )?;
                SigningKey { kid, alg, key }
            }
        };

        for (i, secret) in jwt.previous_secret_keys.iter().enumerate() {
            let setting = format!("jwt.previous_secret_keys[{i}]");
            let secret = secret.expose_secret().as_bytes();
            if secret.len() < MIN_SECRET_KEY_BYTES {
                return Err(format!(
                    "{setting} is too short: a secret accepted for JWTs needs at least \
                     {MIN_SECRET_KEY_BYTES} bytes"
                ));
            }
            let fingerprint = hmac_fingerprint(secret);
            keys.push(
                fingerprint.clone(),
                VerificationKey {
                    kid: fingerprint,
                    alg: Algorithm::HS256,
                    key: DecodingKey::from_secret(secret),
                    validation: validation(Algorithm::HS256),
                    public_jwk: None,
                },
                &setting,
            )?;
        }

        for path in &jwt.verification_key_files {
            let (alg, key, public_jwk, fingerprint) = load_public_key(path)?;
            keys.push(
                fingerprint.clone(),
                VerificationKey {
                    kid: fingerprint,
                    alg,
                    key,
                    validation: validation(alg),
                    public_jwk: Some(public_jwk),
                },
                &format!("jwt.verification_key_files ({})", path.display()),
            )?;
        }

        let jwks = build_jwks(&keys.keys)?;
        Ok(Self {
            inner: Arc::new(Inner {
                signing,
                verification: keys.keys,
                access_lifetime,
                refresh_lifetime,
                issuer: jwt.issuer.clone(),
                audience: jwt.audience.clone(),
                jwks,
            }),
        })
    }

    /// A new token of `token_type` for `user_id` with a fresh random `jti` (≥128 bits, hex), iat = now, exp = now + lifetime.
    pub fn issue(
        &self,
        token_type: TokenType,
        user_id: i64,
        sid: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Issued, String> {
        let inner = &self.inner;
        let lifetime = match token_type {
            TokenType::Access => inner.access_lifetime,
            TokenType::Refresh => inner.refresh_lifetime,
        };
        let iat = now.timestamp();
        let exp = iat
            .checked_add(lifetime)
            .ok_or("JWT expiry is out of range")?;
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or("JWT expiry is out of range")?;
        let claims = Claims {
            token_type: token_type.claim().to_owned(),
            exp,
            iat,
            jti: new_jti()?,
            user_id: user_id.to_string(),
            iss: inner.issuer.clone(),
            aud: inner.audience.clone(),
            sid,
        };
        let mut header = Header::new(inner.signing.alg);
        header.kid = Some(inner.signing.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &inner.signing.key)
            .map_err(|e| format!("signing a JWT failed: {}", describe(&e)))?;
        Ok(Issued {
            token,
            claims,
            expires_at,
        })
    }

    /// Verifies signature, expiry, iss/aud when configured, and token_type == expected.
    ///
    /// Expiry has no leeway, as SimpleJWT's default `LEEWAY = 0`: a token is expired from the
    /// second of its `exp` claim on. Failures are reported in SimpleJWT's order: anything wrong
    /// with the signature or claims is `Invalid`, then `Expired`, then `WrongType`.
    pub fn decode(&self, token: &str, expected: TokenType) -> Result<Claims, JwtRejection> {
        // The header is read unverified, and only to pick among keys whose algorithm was fixed
        // at load time. `alg: none` and unknown algorithms fail to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtRejection::Invalid)?;
        if header.crit.is_some() {
            // No critical header extension is understood, so none may be required (RFC 7515).
            return Err(JwtRejection::Invalid);
        }
        let keys = &self.inner.verification;
        let candidates: Vec<&VerificationKey> = match &header.kid {
            Some(kid) => match keys.iter().find(|k| &k.kid == kid) {
                Some(key) if key.alg == header.alg => vec![key],
                _ => return Err(JwtRejection::Invalid),
            },
            None => keys.iter().filter(|k| k.alg == header.alg).collect(),
        };
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
                Ok(data) => return check_claims(data.claims, expected, Utc::now()),
                // Not this key; a token without `kid` may belong to the next one.
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                // The signature verified, so this is the token's key: its verdict is final.
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                    return Err(JwtRejection::Expired);
                }
                Err(_) => return Err(JwtRejection::Invalid),
            }
        }
        Err(JwtRejection::Invalid)
    }

    /// `{"keys": [...]}`: the public keys (RS256/EdDSA signing key and verification_key_files) as JWKs with `kid`, `alg`, `use: "sig"`. Empty list for HS256.
    ///
    /// HMAC secrets are never published. (Under HS256 the list is empty unless
    /// `jwt.verification_key_files` names public keys that are still accepted.)
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.jwks.clone()
    }
}

/// Keys in load order, with duplicates (the same key listed twice) dropped.
#[derive(Default)]
struct KeyList {
    keys: Vec<VerificationKey>,
    fingerprints: HashSet<String>,
}

impl KeyList {
    fn push(
        &mut self,
        fingerprint: String,
        key: VerificationKey,
        origin: &str,
    ) -> Result<(), String> {
        if !self.fingerprints.insert(fingerprint) {
            return Ok(());
        }
        if self.keys.iter().any(|k| k.kid == key.kid) {
            return Err(format!(
                "{origin}: its key id {:?} is already used by a different key",
                key.kid
            ));
        }
        self.keys.push(key);
        Ok(())
    }
}

fn lifetime(setting: &str, seconds: u64) -> Result<i64, String> {
    if !(1..=MAX_LIFETIME_SECONDS).contains(&seconds) {
        return Err(format!(
            "{setting} must be between 1 and {MAX_LIFETIME_SECONDS} seconds, got {seconds}"
        ));
    }
    i64::try_from(seconds).map_err(|_| format!("{setting} is out of range"))
}

fn base_validation(
    alg: Algorithm,
    issuer: &Option<String>,
    audience: &Option<String>,
) -> Validation {
    let mut validation = Validation::new(alg);
    // SimpleJWT's default LEEWAY is 0; `check_claims` also treats `exp == now` as expired.
    validation.leeway = 0;
    let mut required = vec!["exp"];
    if let Some(iss) = issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    if let Some(aud) = audience {
        validation.set_audience(&[aud]);
        required.push("aud");
    }
    // Without a configured audience, a token that names one is refused (`validate_aud` stays
    // on): it was meant for somebody else.
    validation.set_required_spec_claims(&required);
    validation
}

/// Checks made after the signature and the registered claims passed, in SimpleJWT's order:
/// expiry before type.
fn check_claims(
    claims: Claims,
    expected: TokenType,
    now: DateTime<Utc>,
) -> Result<Claims, JwtRejection> {
    if claims.exp <= now.timestamp() {
        return Err(JwtRejection::Expired);
    }
    if claims.token_type != expected.claim() {
        return Err(JwtRejection::WrongType);
    }
    Ok(claims)
}

fn new_jti() -> Result<String, String> {
    let mut bytes = [0u8; JTI_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a JWT id: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Key id derived from an HMAC secret: a domain-separated digest, never the secret itself.
fn hmac_fingerprint(secret: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tessera jwt kid\0");
    hasher.update(secret);
    hex::encode(hasher.finalize())[..16].to_owned()
}

/// RFC 7638 thumbprint (base64url SHA-256) of a public JWK: any JOSE library recomputes it.
fn thumbprint(jwk: &Jwk) -> Option<String> {
    jwk.thumbprint(ThumbprintHash::SHA256).ok()
}

/// A short, key-free description of a jsonwebtoken error.
fn describe(err: &jsonwebtoken::errors::Error) -> String {
    match err.kind() {
        ErrorKind::InvalidRsaKey(_) => "invalid RSA key".into(),
        ErrorKind::InvalidEddsaKey => "invalid Ed25519 key".into(),
        ErrorKind::InvalidKeyFormat => "invalid key format".into(),
        ErrorKind::Signing(_) | ErrorKind::RsaFailedSigning => "signature failed".into(),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

fn read_pem(setting: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{setting}: cannot read {}: {e}", path.display()))
}

/// Loads a PEM private key for `alg`, derives its public JWK and proves the pair signs and
/// verifies. Returns the signing key, the public JWK and its thumbprint.
fn load_private_key(path: &Path, alg: Algorithm) -> Result<(EncodingKey, Jwk, String), String> {
    const SETTING: &str = "jwt.private_key_file";
    let shown = path.display();
    let pem = read_pem(SETTING, path)?;
    let (kind, needs) = match alg {
        Algorithm::RS256 => ("an RSA private key", "RS256"),
        _ => ("an Ed25519 private key", "EdDSA"),
    };
    let wrong_kind = || {
        format!(
            "{SETTING} ({shown}) is not {kind} in PEM form, which jwt.algorithm = \"{needs}\" \
             needs (PKCS#8 \"BEGIN PRIVATE KEY\"{})",
            if alg == Algorithm::RS256 {
                " or PKCS#1 \"BEGIN RSA PRIVATE KEY\""
            } else {
                ""
            }
        )
    };
    if !contains(&pem, b"PRIVATE KEY-----") {
        return Err(wrong_kind());
    }
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .map_err(|_| wrong_kind())?;
    // Deriving the public half parses the whole private key: a truncated or foreign key fails
    // here, at startup, rather than at the first login.
    let public_jwk = Jwk::from_encoding_key(&key, alg).map_err(|_| wrong_kind())?;
    check_rsa_size(&public_jwk, || format!("{SETTING} ({shown})"))?;
    let public = DecodingKey::from_jwk(&public_jwk).map_err(|_| wrong_kind())?;
    let probe = b"tessera key self-test";
    let signed = jsonwebtoken::crypto::sign(probe, &key, alg)
        .and_then(|sig| jsonwebtoken::crypto::verify(&sig, probe, &public, alg));
    if !matches!(signed, Ok(true)) {
        return Err(format!(
            "{SETTING} ({shown}): the key cannot sign {needs} tokens"
        ));
    }
    let fingerprint =
        thumbprint(&public_jwk).ok_or_else(|| format!("{SETTING} ({shown}): unusable key"))?;
    Ok((key, public_jwk, fingerprint))
}

/// Loads a PEM public key; its type fixes its algorithm (RSA → RS256, Ed25519 → EdDSA).
fn load_public_key(path: &Path) -> Result<(Algorithm, DecodingKey, Jwk, String), String> {
    const SETTING: &str = "jwt.verification_key_files";
    let shown = path.display();
    let pem = read_pem(SETTING, path)?;
    if contains(&pem, b"PRIVATE KEY-----") {
        return Err(format!(
            "{SETTING}: {shown} holds a private key; list public keys here \
             (`openssl pkey -in KEY -pubout`)"
        ));
    }
    let not_public =
        || format!("{SETTING}: {shown} is not an RSA or Ed25519 public key in PEM form");
    let (alg, key) = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        (Algorithm::RS256, key)
    } else if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
        (Algorithm::EdDSA, key)
    } else {
        return Err(not_public());
    };
    // Building the JWK parses the key fully (RSA modulus/exponent, 32-byte Ed25519 point).
    let public_jwk = Jwk::from_decoding_key(&key, None).map_err(|_| not_public())?;
    check_rsa_size(&public_jwk, || format!("{SETTING}: {shown}"))?;
    // Verify with the key rebuilt from its JWK: exactly what JWKS consumers will use.
    let key = DecodingKey::from_jwk(&public_jwk).map_err(|_| not_public())?;
    let fingerprint = thumbprint(&public_jwk).ok_or_else(not_public)?;
    Ok((alg, key, public_jwk, fingerprint))
}

fn check_rsa_size(jwk: &Jwk, origin: impl Fn() -> String) -> Result<(), String> {
    if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
        // `n` is unpadded base64url of the big-endian modulus without leading zeros.
        let bits = rsa.n.len() * 6 / 8 * 8;
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "{}: the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required",
                origin()
            ));
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn build_jwks(keys: &[VerificationKey]) -> Result<serde_json::Value, String> {
    let keys = keys
        .iter()
        .filter_map(|key| {
            let mut jwk = key.public_jwk.clone()?;
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(key.alg.into());
            jwk.common.key_id = Some(key.kid.clone());
            Some(jwk)
        })
        .collect();
    serde_json::to_value(JwkSet { keys }).map_err(|e| format!("building the JWKS failed: {e}"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::Duration;
    use jsonwebtoken::jwk::JwkSet;
    use secrecy::SecretString;
    use serde_json::json;

    use super::*;

    const SECRET: &str = "test-secret-key-0123456789abcdef-0123456789abcdef";
    const OLD_SECRET: &str = "older-secret-key-0123456789abcdef-0123456789abcd";

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwt")
            .join(name)
    }

    fn read_fixture(name: &str) -> Vec<u8> {
        std::fs::read(fixture(name)).unwrap()
    }

    fn hs_config() -> Config {
        Config {
            secret_key: Some(SecretString::from(SECRET)),
            ..Config::default()
        }
    }

    fn rs_config() -> Config {
        let mut config = hs_config();
        config.jwt.algorithm = JwtAlgorithm::RS256;
        config.jwt.private_key_file = Some(fixture("rsa_private.pem"));
        config
    }

    fn ed_config() -> Config {
        let mut config = hs_config();
        config.jwt.algorithm = JwtAlgorithm::EdDSA;
        config.jwt.private_key_file = Some(fixture("ed25519_private.pem"));
        config
    }

    fn keys(config: &Config) -> JwtKeys {
        JwtKeys::from_config(config).unwrap()
    }

    fn access(keys: &JwtKeys) -> String {
        keys.issue(TokenType::Access, 42, None, Utc::now())
            .unwrap()
            .token
    }

    fn valid_claims() -> serde_json::Value {
        json!({
            "token_type": "access",
            "exp": Utc::now().timestamp() + 300,
            "iat": Utc::now().timestamp(),
            "jti": "0123456789abcdef0123456789abcdef",
            "user_id": "42",
        })
    }

    /// Signs arbitrary claims with `key` under `alg`, with an optional `kid`.
    fn forge(
        claims: &serde_json::Value,
        alg: Algorithm,
        kid: Option<&str>,
        key: &EncodingKey,
    ) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    /// An HS256 token without a `kid`, signed with `secret`.
    fn forge_hs(claims: &serde_json::Value, secret: &str) -> String {
        forge(
            claims,
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
    }

    fn b64url(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn header_of(token: &str) -> Header {
        jsonwebtoken::decode_header(token).unwrap()
    }

    fn payload_of(token: &str) -> serde_json::Value {
        jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap()
    }

    fn signing_kid(keys: &JwtKeys) -> String {
        keys.inner.signing.kid.clone()
    }

    fn config_error(config: &Config) -> String {
        JwtKeys::from_config(config).unwrap_err()
    }

    // ----- issuing -------------------------------------------------------------------------

    #[test]
    fn issued_tokens_have_simplejwt_claims_and_a_kid() {
        let keys = keys(&hs_config());
        let now = Utc::now();
        let issued = keys.issue(TokenType::Refresh, 42, None, now).unwrap();
        let payload = payload_of(&issued.token);
        let fields: Vec<&str> = payload
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = fields.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["exp", "iat", "jti", "token_type", "user_id"],
            "no iss/aud unless set"
        );
        assert_eq!(payload["token_type"], "refresh");
        assert_eq!(
            payload["user_id"],
            json!("42"),
            "user_id is a string, as SimpleJWT 5.5"
        );
        assert_eq!(payload["iat"], json!(now.timestamp()));
        assert_eq!(payload["exp"], json!(now.timestamp() + 86_400));
        assert_eq!(issued.expires_at.timestamp(), issued.claims.exp);
        assert_eq!(
            issued.claims,
            serde_json::from_value::<Claims>(payload).unwrap()
        );

        let header = header_of(&issued.token);
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(signing_kid(&keys).as_str()));

        let access = keys.issue(TokenType::Access, 42, None, now).unwrap();
        assert_eq!(access.claims.exp, now.timestamp() + 300);
        assert_eq!(access.claims.token_type, "access");
    }

    #[test]
    fn jti_is_128_bit_random_hex() {
        let keys = keys(&hs_config());
        let a = keys
            .issue(TokenType::Access, 1, None, Utc::now())
            .unwrap()
            .claims
            .jti;
        let b = keys
            .issue(TokenType::Access, 1, None, Utc::now())
            .unwrap()
            .claims
            .jti;
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn issued_tokens_round_trip_for_every_algorithm() {
        for config in [hs_config(), rs_config(), ed_config()] {
            let keys = keys(&config);
            for token_type in [TokenType::Access, TokenType::Refresh] {
                let issued = keys.issue(token_type, 7, None, Utc::now()).unwrap();
                assert_eq!(keys.decode(&issued.token, token_type), Ok(issued.claims));
            }
        }
        assert_eq!(
            header_of(&access(&keys(&rs_config()))).alg,
            Algorithm::RS256
        );
        assert_eq!(
            header_of(&access(&keys(&ed_config()))).alg,
            Algorithm::EdDSA
        );
    }

    #[test]
    fn configured_key_id_is_put_in_the_header() {
        let mut config = rs_config();
        config.jwt.key_id = Some("2025-key".into());
        let keys = keys(&config);
        let token = access(&keys);
        assert_eq!(header_of(&token).kid.as_deref(), Some("2025-key"));
        assert!(keys.decode(&token, TokenType::Access).is_ok());
        assert_eq!(keys.jwks()["keys"][0]["kid"], "2025-key");
    }

    #[test]
    fn derived_kids_are_rfc7638_thumbprints_and_stable_across_pem_forms() {
        let pkcs8 = keys(&rs_config());
        let mut config = rs_config();
        config.jwt.private_key_file = Some(fixture("rsa_private_pkcs1.pem"));
        let pkcs1 = keys(&config);
        assert_eq!(signing_kid(&pkcs8), signing_kid(&pkcs1));
        let jwk: Jwk = serde_json::from_value(pkcs8.jwks()["keys"][0].clone()).unwrap();
        assert_eq!(
            signing_kid(&pkcs8),
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
        );
    }

    // ----- HS256 and secret rotation -------------------------------------------------------

    #[test]
    fn hs256_signs_with_secret_key_only() {
        let mut config = hs_config();
        config.jwt.previous_secret_keys = vec![SecretString::from(OLD_SECRET)];
        let token = access(&keys(&config));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        let with = |secret: &str| {
            jsonwebtoken::decode::<Claims>(
                &token,
                &DecodingKey::from_secret(secret.as_bytes()),
                &validation,
            )
        };
        assert!(with(SECRET).is_ok(), "signed with secret_key");
        assert!(with(OLD_SECRET).is_err(), "a previous secret never signs");
    }

    #[test]
    fn simplejwt_hs256_token_without_kid_is_accepted() {
        // Made with Python's hmac exactly as PyJWT 2 / SimpleJWT 5.5 encode: sorted header
        // without `kid`, compact JSON, `user_id` a string. Expires in 2100.
        const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6IjVmMGM3ZTBlOGE1YzRiMWY5YTNkMmU2YjdjOGQ5ZTBmIiwidXNlcl9pZCI6IjQyIn0.hQkf2pLRcL-TkxGn_j2QjyeW0OrL1MkAK1pP3ITpbdc";
        let config = Config {
            secret_key: Some(SecretString::from(
                "django-insecure-tessera-interop-test-secret-0123456789",
            )),
            ..Config::default()
        };
        let claims = keys(&config).decode(TOKEN, TokenType::Access).unwrap();
        assert_eq!(claims.user_id, "42");
        assert_eq!(claims.exp, 4_102_444_800);
        assert_eq!(claims.jti, "5f0c7e0e8a5c4b1f9a3d2e6b7c8d9e0f");
        // The same token under another secret is refused.
        assert_eq!(
            keys(&hs_config()).decode(TOKEN, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn rotated_hs256_secret_still_verifies() {
        let mut old = hs_config();
        old.secret_key = Some(SecretString::from(OLD_SECRET));
        let old_keys = keys(&old);
        let with_kid = access(&old_keys);
        let without_kid = forge_hs(&valid_claims(), OLD_SECRET);

        let mut new = hs_config();
        assert_eq!(
            keys(&new).decode(&with_kid, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
        new.jwt.previous_secret_keys = vec![SecretString::from(OLD_SECRET)];
        let new_keys = keys(&new);
        assert!(new_keys.decode(&with_kid, TokenType::Access).is_ok());
        assert!(new_keys.decode(&without_kid, TokenType::Access).is_ok());
        assert_ne!(signing_kid(&new_keys), signing_kid(&old_keys));
        assert_eq!(
            header_of(&access(&new_keys)).kid,
            Some(signing_kid(&new_keys))
        );
    }

    #[test]
    fn short_previous_secret_is_a_startup_error_without_the_secret() {
        let mut config = hs_config();
        config.jwt.previous_secret_keys = vec![SecretString::from("tooshort-s3cr3t")];
        let err = config_error(&config);
        assert!(err.contains("jwt.previous_secret_keys[0]"), "{err}");
        assert!(!err.contains("tooshort-s3cr3t"), "{err}");
    }

    // ----- kid and algorithm pinning -------------------------------------------------------

    #[test]
    fn unknown_kid_is_invalid_even_with_a_good_signature() {
        let config = hs_config();
        let token = forge(
            &valid_claims(),
            Algorithm::HS256,
            Some("no-such-key"),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        );
        assert_eq!(
            keys(&config).decode(&token, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn a_kid_restricts_verification_to_that_key() {
        // Signed with a configured (previous) secret but naming the current key: refused,
        // because only the named key is tried.
        let mut config = hs_config();
        config.jwt.previous_secret_keys = vec![SecretString::from(OLD_SECRET)];
        let keys = keys(&config);
        let token = forge(
            &valid_claims(),
            Algorithm::HS256,
            Some(&signing_kid(&keys)),
            &EncodingKey::from_secret(OLD_SECRET.as_bytes()),
        );
        assert_eq!(
            keys.decode(&token, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn kid_with_a_different_alg_is_invalid() {
        // An EdDSA-signed token that names the RSA key, from a key that is also configured.
        let mut config = rs_config();
        config.jwt.verification_key_files = vec![fixture("ed25519_public.pem")];
        let keys = keys(&config);
        let ed = EncodingKey::from_ed_pem(&read_fixture("ed25519_private.pem")).unwrap();
        let token = forge(
            &valid_claims(),
            Algorithm::EdDSA,
            Some(&signing_kid(&keys)),
            &ed,
        );
        assert_eq!(
            keys.decode(&token, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
        // Without the misleading kid the same token is fine: the Ed25519 key is configured.
        let token = forge(&valid_claims(), Algorithm::EdDSA, None, &ed);
        assert!(keys.decode(&token, TokenType::Access).is_ok());
    }

    #[test]
    fn tokens_without_kid_only_meet_keys_of_their_alg() {
        let mut config = rs_config();
        config.jwt.verification_key_files = vec![fixture("ed25519_public.pem")];
        let keys = keys(&config);
        let rsa = EncodingKey::from_rsa_pem(&read_fixture("rsa_private.pem")).unwrap();
        let rs = forge(&valid_claims(), Algorithm::RS256, None, &rsa);
        assert!(
            keys.decode(&rs, TokenType::Access).is_ok(),
            "SimpleJWT RS256 has no kid"
        );
        // RS512 is RSA too, but no key is pinned to it.
        let rs512 = forge(&valid_claims(), Algorithm::RS512, None, &rsa);
        assert_eq!(
            keys.decode(&rs512, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
        let ps256 = forge(&valid_claims(), Algorithm::PS256, None, &rsa);
        assert_eq!(
            keys.decode(&ps256, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn alg_none_is_invalid() {
        let keys = keys(&rs_config());
        let good = access(&keys);
        let payload = good.split('.').nth(1).unwrap();
        assert_eq!(
            b64url(br#"{"alg":"none","typ":"JWT"}"#),
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"
        );
        for header in [
            json!({"alg": "none", "typ": "JWT"}),
            json!({"alg": "none", "typ": "JWT", "kid": signing_kid(&keys)}),
            json!({"alg": "None"}),
        ] {
            let header = b64url(header.to_string().as_bytes());
            for signature in ["", good.split('.').nth(2).unwrap()] {
                let token = format!("{header}.{payload}.{signature}");
                assert_eq!(
                    keys.decode(&token, TokenType::Access),
                    Err(JwtRejection::Invalid)
                );
            }
        }
    }

    #[test]
    fn algorithm_confusion_with_the_public_key_as_hmac_secret_is_invalid() {
        for (config, public_pem) in [
            (rs_config(), read_fixture("rsa_public.pem")),
            (ed_config(), read_fixture("ed25519_public.pem")),
        ] {
            let keys = keys(&config);
            let hmac = EncodingKey::from_secret(&public_pem);
            for kid in [Some(signing_kid(&keys)), None] {
                let token = forge(&valid_claims(), Algorithm::HS256, kid.as_deref(), &hmac);
                assert_eq!(
                    keys.decode(&token, TokenType::Access),
                    Err(JwtRejection::Invalid)
                );
            }
            // The JWK form of the public key as a secret fares no better.
            let n_or_x = keys.jwks()["keys"][0].to_string();
            let token = forge_hs(&valid_claims(), &n_or_x);
            assert_eq!(
                keys.decode(&token, TokenType::Access),
                Err(JwtRejection::Invalid)
            );
        }
    }

    #[test]
    fn token_from_an_unconfigured_key_is_invalid() {
        let keys = keys(&rs_config());
        let other = EncodingKey::from_rsa_pem(&read_fixture("rsa2_private.pem")).unwrap();
        let mut other_config = rs_config();
        other_config.jwt.private_key_file = Some(fixture("rsa2_private.pem"));
        let other_kid = signing_kid(&JwtKeys::from_config(&other_config).unwrap());
        for kid in [None, Some(signing_kid(&keys)), Some(other_kid)] {
            let token = forge(&valid_claims(), Algorithm::RS256, kid.as_deref(), &other);
            assert_eq!(
                keys.decode(&token, TokenType::Access),
                Err(JwtRejection::Invalid)
            );
        }
        let hs = forge(
            &valid_claims(),
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(b"an attacker's secret that is long enough"),
        );
        assert_eq!(
            keys.decode(&hs, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn tampered_payload_is_invalid() {
        let keys = keys(&ed_config());
        let token = access(&keys);
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = payload_of(&token);
        claims["user_id"] = json!("1");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64url(claims.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(
            keys.decode(&forged, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn garbage_is_invalid() {
        let keys = keys(&hs_config());
        for token in [
            "",
            "abc",
            "a.b.c",
            "a.b",
            "....",
            "eyJhbGciOiJIUzI1NiJ9..",
            "\u{0}.\u{0}.\u{0}",
        ] {
            assert_eq!(
                keys.decode(token, TokenType::Access),
                Err(JwtRejection::Invalid),
                "{token:?}"
            );
        }
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        let keys = keys(&hs_config());
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["b64".into()]);
        let token = jsonwebtoken::encode(
            &header,
            &valid_claims(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            keys.decode(&token, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    // ----- claims --------------------------------------------------------------------------

    #[test]
    fn missing_or_malformed_claims_are_invalid() {
        let keys = keys(&hs_config());
        let secret = EncodingKey::from_secret(SECRET.as_bytes());
        let mut cases = Vec::new();
        for claim in ["exp", "token_type", "jti", "iat", "user_id"] {
            let mut claims = valid_claims();
            claims.as_object_mut().unwrap().remove(claim);
            cases.push((format!("missing {claim}"), claims));
        }
        let mut claims = valid_claims();
        claims["exp"] = json!((Utc::now().timestamp() + 300).to_string());
        cases.push(("exp as a string".into(), claims));
        let mut claims = valid_claims();
        claims["exp"] = json!(null);
        cases.push(("exp null".into(), claims));
        let mut claims = valid_claims();
        claims["user_id"] = json!(42);
        cases.push(("numeric user_id".into(), claims));
        for (what, claims) in cases {
            for kid in [None, Some(signing_kid(&keys))] {
                let token = forge(&claims, Algorithm::HS256, kid.as_deref(), &secret);
                assert_eq!(
                    keys.decode(&token, TokenType::Access),
                    Err(JwtRejection::Invalid),
                    "{what}"
                );
            }
        }
        // Extra claims (SimpleJWT allows custom ones) are fine.
        let mut claims = valid_claims();
        claims["scope"] = json!("x");
        let token = forge(&claims, Algorithm::HS256, None, &secret);
        assert!(keys.decode(&token, TokenType::Access).is_ok());
    }

    #[test]
    fn expired_tokens_are_expired() {
        let keys = keys(&rs_config());
        let issued = keys
            .issue(TokenType::Access, 42, None, Utc::now() - Duration::hours(1))
            .unwrap();
        assert_eq!(
            keys.decode(&issued.token, TokenType::Access),
            Err(JwtRejection::Expired)
        );
        // Expiry is reported before the type, as SimpleJWT does.
        assert_eq!(
            keys.decode(&issued.token, TokenType::Refresh),
            Err(JwtRejection::Expired)
        );
    }

    #[test]
    fn expiry_has_no_leeway() {
        let keys = keys(&hs_config());
        let secret = EncodingKey::from_secret(SECRET.as_bytes());
        for offset in [-30, -1, 0] {
            let mut claims = valid_claims();
            claims["exp"] = json!(Utc::now().timestamp() + offset);
            let token = forge(&claims, Algorithm::HS256, None, &secret);
            assert_eq!(
                keys.decode(&token, TokenType::Access),
                Err(JwtRejection::Expired),
                "exp = now {offset:+}"
            );
        }
        let mut claims = valid_claims();
        claims["exp"] = json!(Utc::now().timestamp() + 5);
        let token = forge(&claims, Algorithm::HS256, None, &secret);
        assert!(keys.decode(&token, TokenType::Access).is_ok());
    }

    #[test]
    fn expired_token_from_another_key_is_invalid_not_expired() {
        let keys = keys(&hs_config());
        let mut claims = valid_claims();
        claims["exp"] = json!(Utc::now().timestamp() - 100);
        let token = forge_hs(&claims, OLD_SECRET);
        assert_eq!(
            keys.decode(&token, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn access_and_refresh_are_not_interchangeable() {
        let keys = keys(&hs_config());
        let access = keys
            .issue(TokenType::Access, 1, None, Utc::now())
            .unwrap()
            .token;
        let refresh = keys
            .issue(TokenType::Refresh, 1, None, Utc::now())
            .unwrap()
            .token;
        assert_eq!(
            keys.decode(&access, TokenType::Refresh),
            Err(JwtRejection::WrongType)
        );
        assert_eq!(
            keys.decode(&refresh, TokenType::Access),
            Err(JwtRejection::WrongType)
        );
        let mut claims = valid_claims();
        claims["token_type"] = json!("sliding");
        let token = forge_hs(&claims, SECRET);
        assert_eq!(
            keys.decode(&token, TokenType::Access),
            Err(JwtRejection::WrongType)
        );
    }

    #[test]
    fn issuer_and_audience_are_set_and_required_when_configured() {
        let mut config = hs_config();
        config.jwt.issuer = Some("https://auth.example.com".into());
        config.jwt.audience = Some("api.example.com".into());
        let keys = keys(&config);
        let issued = keys.issue(TokenType::Access, 42, None, Utc::now()).unwrap();
        let payload = payload_of(&issued.token);
        assert_eq!(payload["iss"], "https://auth.example.com");
        assert_eq!(payload["aud"], "api.example.com");
        assert!(keys.decode(&issued.token, TokenType::Access).is_ok());

        let secret = EncodingKey::from_secret(SECRET.as_bytes());
        let with = |iss: Option<&str>, aud: Option<&str>| {
            let mut claims = valid_claims();
            if let Some(iss) = iss {
                claims["iss"] = json!(iss);
            }
            if let Some(aud) = aud {
                claims["aud"] = json!(aud);
            }
            keys.decode(
                &forge(&claims, Algorithm::HS256, None, &secret),
                TokenType::Access,
            )
        };
        assert!(with(Some("https://auth.example.com"), Some("api.example.com")).is_ok());
        assert_eq!(
            with(Some("https://evil.example"), Some("api.example.com")),
            Err(JwtRejection::Invalid)
        );
        assert_eq!(
            with(Some("https://auth.example.com"), Some("other")),
            Err(JwtRejection::Invalid)
        );
        assert_eq!(
            with(None, Some("api.example.com")),
            Err(JwtRejection::Invalid),
            "missing iss"
        );
        assert_eq!(
            with(Some("https://auth.example.com"), None),
            Err(JwtRejection::Invalid),
            "missing aud"
        );
        assert_eq!(with(None, None), Err(JwtRejection::Invalid));
        // A token of the same keys issued without iss/aud (configuration before) is refused.
        let plain = access(&self::keys(&hs_config()));
        assert_eq!(
            keys.decode(&plain, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn token_for_an_audience_is_refused_when_none_is_configured() {
        let keys = keys(&hs_config());
        let mut claims = valid_claims();
        claims["aud"] = json!("someone-else");
        let token = forge_hs(&claims, SECRET);
        assert_eq!(
            keys.decode(&token, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    // ----- asymmetric keys, rotation, JWKS -------------------------------------------------

    #[test]
    fn rotated_rsa_key_listed_in_verification_files_still_verifies() {
        let old_keys = keys(&rs_config());
        let old_token = access(&old_keys);
        let old_without_kid = forge(
            &valid_claims(),
            Algorithm::RS256,
            None,
            &EncodingKey::from_rsa_pem(&read_fixture("rsa_private.pem")).unwrap(),
        );

        let mut config = rs_config();
        config.jwt.private_key_file = Some(fixture("rsa2_private.pem"));
        assert_eq!(
            keys(&config).decode(&old_token, TokenType::Access),
            Err(JwtRejection::Invalid)
        );

        config.jwt.verification_key_files = vec![fixture("rsa_public.pem")];
        let new_keys = keys(&config);
        assert!(new_keys.decode(&old_token, TokenType::Access).is_ok());
        assert!(new_keys.decode(&old_without_kid, TokenType::Access).is_ok());
        let new_token = access(&new_keys);
        assert_ne!(header_of(&new_token).kid, header_of(&old_token).kid);
        assert!(new_keys.decode(&new_token, TokenType::Access).is_ok());
        // The old service does not know the new key.
        assert_eq!(
            old_keys.decode(&new_token, TokenType::Access),
            Err(JwtRejection::Invalid)
        );
    }

    #[test]
    fn algorithm_of_a_verification_key_follows_its_type() {
        let mut config = hs_config();
        config.jwt.verification_key_files =
            vec![fixture("rsa_public.pem"), fixture("ed25519_public.pem")];
        let keys = keys(&config);
        let algs: Vec<Algorithm> = keys.inner.verification.iter().map(|k| k.alg).collect();
        assert_eq!(algs, [Algorithm::HS256, Algorithm::RS256, Algorithm::EdDSA]);
        let ed_token = access(&self::keys(&ed_config()));
        let rs_token = access(&self::keys(&rs_config()));
        assert!(keys.decode(&ed_token, TokenType::Access).is_ok());
        assert!(keys.decode(&rs_token, TokenType::Access).is_ok());
    }

    #[test]
    fn jwks_publishes_rsa_public_key_that_verifies_offline() {
        let keys = keys(&rs_config());
        let jwks = keys.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["e"], "AQAB");
        assert_eq!(key["kid"], json!(signing_kid(&keys)));
        let n = key["n"].as_str().unwrap();
        assert_eq!(n.len(), 342, "2048-bit modulus, base64url without padding");
        assert!(!n.contains(['=', '+', '/']));
        let mut fields: Vec<&String> = key.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            ["alg", "e", "kid", "kty", "n", "use"],
            "no private parameters"
        );
        verify_offline(&jwks, &access(&keys), Algorithm::RS256);
    }

    #[test]
    fn jwks_publishes_ed25519_public_key_that_verifies_offline() {
        let keys = keys(&ed_config());
        let jwks = keys.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], json!(signing_kid(&keys)));
        assert_eq!(
            key["x"].as_str().unwrap().len(),
            43,
            "32 bytes, base64url without padding"
        );
        let mut fields: Vec<&String> = key.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            ["alg", "crv", "kid", "kty", "use", "x"],
            "no private parameters"
        );
        verify_offline(&jwks, &access(&keys), Algorithm::EdDSA);
    }

    /// What another service does: fetch the JWKS, pick the key by `kid`, verify.
    fn verify_offline(jwks: &serde_json::Value, token: &str, alg: Algorithm) {
        let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
        let kid = header_of(token).kid.unwrap();
        let jwk = set.find(&kid).expect("the token's kid is in the JWKS");
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &Validation::new(alg))
            .unwrap()
            .claims;
        assert_eq!(claims.user_id, "42");
    }

    #[test]
    fn jwks_lists_verification_keys_and_no_duplicates() {
        let mut config = rs_config();
        config.jwt.verification_key_files = vec![
            fixture("rsa2_public.pem"),
            fixture("ed25519_public.pem"),
            fixture("rsa_public.pem"), // the signing key's own public half
            fixture("rsa2_public.pem"),
        ];
        let keys = keys(&config);
        let jwks = keys.jwks();
        let listed: Vec<(&str, &str)> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["kty"].as_str().unwrap(), k["alg"].as_str().unwrap()))
            .collect();
        assert_eq!(
            listed,
            [("RSA", "RS256"), ("RSA", "RS256"), ("OKP", "EdDSA")]
        );
        assert_eq!(jwks["keys"][0]["kid"], json!(signing_kid(&keys)));
        // A token of the rotated-out key verifies offline through the published set.
        let mut old = rs_config();
        old.jwt.private_key_file = Some(fixture("rsa2_private.pem"));
        verify_offline(&jwks, &access(&self::keys(&old)), Algorithm::RS256);
    }

    #[test]
    fn jwks_is_empty_for_hs256() {
        let mut config = hs_config();
        config.jwt.previous_secret_keys = vec![SecretString::from(OLD_SECRET)];
        assert_eq!(keys(&config).jwks(), json!({"keys": []}));
    }

    // ----- startup errors ------------------------------------------------------------------

    #[test]
    fn pem_of_the_wrong_kind_is_a_startup_error_naming_the_file() {
        for (alg, file) in [
            (JwtAlgorithm::RS256, "ed25519_private.pem"),
            (JwtAlgorithm::EdDSA, "rsa_private.pem"),
            (JwtAlgorithm::EdDSA, "rsa_private_pkcs1.pem"),
            (JwtAlgorithm::RS256, "rsa_public.pem"),
            (JwtAlgorithm::EdDSA, "ed25519_public.pem"),
        ] {
            let mut config = hs_config();
            config.jwt.algorithm = alg;
            config.jwt.private_key_file = Some(fixture(file));
            let err = config_error(&config);
            assert!(err.contains("jwt.private_key_file"), "{err}");
            assert!(err.contains(file), "{err}");
            assert_no_key_material(&err, &read_fixture(file));
        }
    }

    #[test]
    fn asymmetric_algorithm_without_private_key_file_is_an_error() {
        let mut config = hs_config();
        config.jwt.algorithm = JwtAlgorithm::EdDSA;
        let err = config_error(&config);
        assert!(err.contains("jwt.private_key_file is not set"), "{err}");
    }

    #[test]
    fn unreadable_or_corrupt_key_files_are_errors_without_their_content() {
        let mut config = rs_config();
        config.jwt.private_key_file = Some(fixture("missing.pem"));
        let err = config_error(&config);
        assert!(
            err.contains("jwt.private_key_file") && err.contains("missing.pem"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let corrupt = dir.path().join("corrupt.pem");
        let body = "-----BEGIN PRIVATE KEY-----\nTUlJU0VDUkVUU0FVQ0VTRUNSRVRTQVVDRQ==\n-----END PRIVATE KEY-----\n";
        std::fs::write(&corrupt, body).unwrap();
        config.jwt.private_key_file = Some(corrupt.clone());
        let err = config_error(&config);
        assert!(err.contains("corrupt.pem"), "{err}");
        assert_no_key_material(&err, body.as_bytes());

        let mut config = rs_config();
        config.jwt.verification_key_files = vec![corrupt];
        let err = config_error(&config);
        assert!(
            err.contains("jwt.verification_key_files") && err.contains("corrupt.pem"),
            "{err}"
        );
        assert_no_key_material(&err, body.as_bytes());
    }

    #[test]
    fn private_key_in_verification_key_files_is_an_error() {
        let mut config = rs_config();
        config.jwt.verification_key_files = vec![fixture("rsa2_private.pem")];
        let err = config_error(&config);
        assert!(
            err.contains("jwt.verification_key_files") && err.contains("rsa2_private.pem"),
            "{err}"
        );
        assert!(err.contains("private key"), "{err}");
        assert_no_key_material(&err, &read_fixture("rsa2_private.pem"));
    }

    #[test]
    fn small_rsa_keys_are_refused() {
        let mut config = rs_config();
        config.jwt.private_key_file = Some(fixture("rsa1024_private.pem"));
        let err = config_error(&config);
        assert!(
            err.contains("1024 bits") && err.contains("rsa1024_private.pem"),
            "{err}"
        );
    }

    #[test]
    fn hs256_without_a_usable_secret_is_an_error() {
        let mut config = hs_config();
        config.secret_key = None;
        assert!(config_error(&config).contains("secret_key is not set"));
        config.secret_key = Some(SecretString::from("short-s3cr3t"));
        let err = config_error(&config);
        assert!(
            err.contains("secret_key is too short") && !err.contains("short-s3cr3t"),
            "{err}"
        );
    }

    #[test]
    fn bad_lifetimes_and_empty_settings_are_errors() {
        let mut config = hs_config();
        config.jwt.access_lifetime_seconds = 0;
        assert!(config_error(&config).contains("jwt.access_lifetime_seconds"));
        let mut config = hs_config();
        config.jwt.refresh_lifetime_seconds = u64::MAX;
        assert!(config_error(&config).contains("jwt.refresh_lifetime_seconds"));
        let mut config = hs_config();
        config.jwt.key_id = Some(String::new());
        assert!(config_error(&config).contains("jwt.key_id"));
        let mut config = hs_config();
        config.jwt.audience = Some(String::new());
        assert!(config_error(&config).contains("jwt.audience"));
    }

    // ----- no secrets in output ------------------------------------------------------------

    fn assert_no_key_material(text: &str, pem: &[u8]) {
        let pem = String::from_utf8_lossy(pem);
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 8)
        {
            assert!(!text.contains(&line[..8]), "key material in {text:?}");
        }
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let mut config = rs_config();
        config.jwt.previous_secret_keys = vec![SecretString::from(OLD_SECRET)];
        config.jwt.verification_key_files = vec![fixture("ed25519_public.pem")];
        let keys = keys(&config);
        let debug = format!("{keys:?} {:?}", keys.clone());
        assert!(
            debug.contains("RS256") && debug.contains(&signing_kid(&keys)),
            "{debug}"
        );
        assert!(
            !debug.contains(SECRET) && !debug.contains(OLD_SECRET),
            "{debug}"
        );
        assert!(!debug.contains(&OLD_SECRET[..12]), "{debug}");
        let jwks = keys.jwks();
        assert!(
            !debug.contains(&jwks["keys"][0]["n"].as_str().unwrap()[..16]),
            "{debug}"
        );
        assert!(
            !debug.contains(&jwks["keys"][1]["x"].as_str().unwrap()[..16]),
            "{debug}"
        );
        assert_no_key_material(&debug, &read_fixture("rsa_private.pem"));

        let hs = self::keys(&hs_config());
        let debug = format!("{hs:?}");
        assert!(
            !debug.contains(SECRET) && !debug.contains(&SECRET[..12]),
            "{debug}"
        );
    }

    #[test]
    fn token_error_messages_are_simplejwt_s() {
        assert_eq!(JwtRejection::Invalid.message(), "Token is invalid");
        assert_eq!(JwtRejection::Expired.message(), "Token is expired");
        assert_eq!(JwtRejection::WrongType.message(), "Token has wrong type");
        for e in [
            JwtRejection::Invalid,
            JwtRejection::Expired,
            JwtRejection::WrongType,
        ] {
            assert_eq!(e.to_string(), e.message());
        }
    }

    #[test]
    fn keys_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<JwtKeys>();
    }
}
