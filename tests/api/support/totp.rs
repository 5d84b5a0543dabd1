//! An authenticator app, written here from the RFCs so that the codes a test sends never come
//! from the code under test: the base32 secret the API hands out (RFC 4648) decoded, and TOTP
//! codes (RFC 6238: HOTP of RFC 4226 with HMAC-SHA-1, 30-second steps, 6 digits).
//!
//! The server accepts a code one step either side of its clock and each step once per user, so
//! a test that needs two different valid codes takes the current step's and the next one's
//! from one reading of the clock ([`Authenticator`]): both stay valid for at least 30 seconds
//! after that reading, wherever it falls in its step.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per step (`mfa.totp_period`'s default).
pub const PERIOD: u64 = 30;
/// Digits per code (`mfa.totp_digits`'s default).
pub const DIGITS: u32 = 6;

/// RFC 4648 base32 (either case, padding optional); `None` for any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// RFC 4226: HMAC-SHA-1 of the big-endian counter, dynamically truncated to `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

/// RFC 6238: the code of the step `unix_seconds` falls in.
pub fn totp(secret: &[u8], unix_seconds: u64, digits: u32) -> String {
    hotp(secret, unix_seconds / PERIOD, digits)
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

/// An authenticator app holding one secret, whose clock was read once, when it was set up.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub secret: Vec<u8>,
    step: u64,
}

impl Authenticator {
    /// Set up with the base32 `secret` of `GET mfa/totp/activate/`; reads the clock now.
    pub fn new(base32_secret: &str) -> Self {
        let secret = base32_decode(base32_secret)
            .unwrap_or_else(|| panic!("a base32 secret: {base32_secret:?}"));
        Self {
            secret,
            step: unix_now() / PERIOD,
        }
    }

    fn code_of_step(&self, step: u64) -> String {
        hotp(&self.secret, step, DIGITS)
    }

    /// The code of the step the clock was read in.
    pub fn current(&self) -> String {
        self.code_of_step(self.step)
    }

    /// The code of the step after it: a second valid code, different from [`Self::current`].
    pub fn next(&self) -> String {
        self.code_of_step(self.step + 1)
    }

    /// A well-formed code that no step from two before to two after the reading matches (so
    /// it is wrong whenever the server checks it within the next 30 seconds).
    pub fn wrong(&self) -> String {
        let near: Vec<String> = (self.step - 2..=self.step + 3)
            .map(|step| self.code_of_step(step))
            .collect();
        (0..)
            .map(|n: u32| format!("{:06}", 123_456 + n))
            .find(|code| !near.contains(code))
            .expect("some six digits are no near step's code")
    }
}
