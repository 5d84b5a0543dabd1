//! Random credentials and their stored digests.
//!
//! Every bearer secret (token, reset key, session id) is random and at least 128 bits, so a
//! plain SHA-256 is a sound way to store it: a database leak yields nothing usable.

use sha2::{Digest, Sha256};

/// `bytes` of OS randomness as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source is available");
    hex::encode(buf)
}

/// The digest under which a secret is stored and looked up.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new opaque API token: 160 bits, 40 lowercase hex characters (DRF's `Token.key` format).
pub fn new_token_key() -> String {
    random_hex(20)
}

/// True when `candidate` has the shape of a token key; cheap rejection before any lookup.
pub fn looks_like_token_key(candidate: &str) -> bool {
    candidate.len() == 40 && candidate.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_keys_are_40_lowercase_hex_and_distinct() {
        let a = new_token_key();
        let b = new_token_key();
        assert_eq!(a.len(), 40);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_ne!(a, b);
        assert!(looks_like_token_key(&a));
        assert!(!looks_like_token_key(&a[1..]));
    }

    #[test]
    fn digest_is_sha256_hex() {
        // Known answer: SHA-256("abc").
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
