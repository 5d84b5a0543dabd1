//! Secrets Tessera must read back (a TOTP secret, the seed of recovery codes, a pending
//! activation), sealed with AES-256-GCM under a key derived from `secret_key` by HKDF-SHA256.
//! A sealed value is `base64url(nonce || ciphertext)`, bound to its purpose (the associated
//! data), so a value sealed for one use cannot be passed off as another.
//!
//! Changing `secret_key` makes what was sealed under the old one unreadable: MFA users then
//! set up their authenticator again (an operator can switch it off: `tessera mfa disable`).
//!
//! Beside sealing, the same key names private rows in public: [`Sealer::public_id`].

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const NONCE_BYTES: usize = 12;

/// What a sealed value is for; part of the associated data.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    TotpSecret,
    RecoveryCodeSeed,
    TotpActivation,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::TotpSecret => b"tessera totp secret",
            Purpose::RecoveryCodeSeed => b"tessera recovery code seed",
            Purpose::TotpActivation => b"tessera totp activation",
        }
    }
}

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    naming: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    pub fn new(secret_key: &[u8]) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"tessera sealing"), secret_key)
            .expand(b"aes-256-gcm v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut naming = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"tessera public ids"), secret_key)
            .expand(b"hmac-sha256 v1", &mut naming)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: Aes256Gcm::new(&key.into()),
            naming,
        }
    }

    /// An opaque, stable public name for row `id` of kind `kind` (a credential in
    /// `sessions/`): 22 URL-safe characters of an HMAC, so it reveals neither the row id nor
    /// how many rows there are, and cannot be guessed or walked.
    pub fn public_id(&self, kind: &str, id: i64) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.naming)
            .expect("HMAC-SHA256 takes a key of any length");
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(&id.to_be_bytes());
        BASE64URL.encode(&mac.finalize().into_bytes()[..16])
    }

    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the operating system's random source is available");
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.label(),
                },
            )
            .expect("AES-GCM encrypts any message of this size");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        BASE64URL.encode(out)
    }

    /// The plaintext, or `None` for anything not sealed by this key for this purpose.
    pub fn open(&self, purpose: Purpose, sealed: &str) -> Option<Vec<u8>> {
        let bytes = BASE64URL.decode(sealed).ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.label(),
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_are_stable_per_key_and_differ_by_kind_and_row() {
        let sealer = Sealer::new(b"a secret key of at least thirty-two bytes");
        let id = sealer.public_id("token", 7);
        assert_eq!(id.len(), 22);
        assert_eq!(id, sealer.public_id("token", 7));
        assert_ne!(id, sealer.public_id("token", 8));
        assert_ne!(id, sealer.public_id("session", 7));
        let other = Sealer::new(b"another secret key of thirty-two bytes!");
        assert_ne!(id, other.public_id("token", 7));
    }

    #[test]
    fn opens_what_it_sealed_for_the_same_purpose_only() {
        let sealer = Sealer::new(b"a secret key of at least thirty-two bytes");
        let sealed = sealer.seal(Purpose::TotpSecret, b"JBSWY3DPEHPK3PXP");
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            sealer.open(Purpose::TotpSecret, &sealed).as_deref(),
            Some(&b"JBSWY3DPEHPK3PXP"[..])
        );
        assert_eq!(sealer.open(Purpose::RecoveryCodeSeed, &sealed), None);
        let other = Sealer::new(b"another secret key of thirty-two bytes!");
        assert_eq!(other.open(Purpose::TotpSecret, &sealed), None);
        // Two seals of one value differ (fresh nonce).
        assert_ne!(
            sealed,
            sealer.seal(Purpose::TotpSecret, b"JBSWY3DPEHPK3PXP")
        );
    }
}
