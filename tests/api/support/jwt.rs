//! JWTs as a test handles them: compact tokens taken apart (base64url by the `base64` crate,
//! no JWT library, so the app's own decoding is not what checks it), tokens forged (signed
//! with any key, or `alg: none`), claims edited, and the key fixtures in `tests/fixtures/jwt`.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// A key file under `tests/fixtures/jwt` (see its README).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Unpadded base64url, as JWS segments are written.
pub fn b64url_decode(input: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(input)
        .unwrap_or_else(|err| panic!("not base64url (unpadded): {input}: {err}"))
}

pub fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Segment `index` (0: header, 1: claims) of a compact JWS, as JSON.
pub fn segment(token: &str, index: usize) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS: {token}");
    serde_json::from_slice(&b64url_decode(parts[index]))
        .unwrap_or_else(|e| panic!("segment {index} of {token} is JSON: {e}"))
}

pub fn header_of(token: &str) -> Value {
    segment(token, 0)
}

pub fn claims_of(token: &str) -> Value {
    segment(token, 1)
}

pub fn kid_of(token: &str) -> String {
    header_of(token)["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("a kid header: {token}"))
        .to_owned()
}

/// A token with these claims, signed by `key` under `alg`, with `kid` if given.
pub fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("the test token signs")
}

/// An HS256 key from a shared secret.
pub fn hs256(secret: &str) -> EncodingKey {
    EncodingKey::from_secret(secret.as_bytes())
}

/// `alg: none`: a header that names no algorithm and an empty signature.
pub fn unsigned(header: Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(claims.to_string().as_bytes())
    )
}

/// `claims` without the claim `name`.
pub fn without(claims: &Value, name: &str) -> Value {
    let mut claims = claims.clone();
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// `claims` with the claim `name` set to `value`.
pub fn with(claims: &Value, name: &str, value: Value) -> Value {
    let mut claims = claims.clone();
    claims[name] = value;
    claims
}

/// The current time as a JWT `NumericDate`.
pub fn now() -> i64 {
    Utc::now().timestamp()
}
