//! TOTP (RFC 6238, HMAC-SHA-1 as authenticator apps expect) through `totp-rs`: new secrets,
//! the `otpauth://` URL and its QR code, and checking a code, which gives the time step it
//! matched so that the caller can refuse a step accepted before.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use totp_rs::{Algorithm, Builder, Secret as Base32, Totp};

use crate::config::MfaConfig;

/// 160 bits, as RFC 4226 recommends (and allauth uses).
const SECRET_BYTES: usize = 20;
/// One step either side of now is accepted (clock drift, a code typed as it turned).
const SKEW: u16 = 1;

/// A TOTP secret's bytes; `Debug` redacts them.
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    /// From its base32 form; `None` when it is not base32.
    pub fn decode(base32: &str) -> Option<Self> {
        Base32::try_from_base32(base32)
            .ok()
            .map(|s| Self(s.as_bytes().to_vec()))
    }
}

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).expect("the operating system's random source is available");
    secret
}

/// The secret as authenticator apps take it when typed in: base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    Base32::from(secret.to_vec()).to_base32()
}

fn totp(config: &MfaConfig, secret: &[u8], account: &str, issuer: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(config.totp_digits)
        .with_skew(SKEW)
        .with_step_duration(config.totp_period)
        .with_secret(secret.to_vec())
        // `:` separates issuer and account in the URL's label.
        .with_account_name(account.replace(':', ""))
        .with_issuer(Some(issuer.replace(':', "")))
        .build()
        .ok()
}

/// `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER`.
pub fn url(config: &MfaConfig, secret: &[u8], account: &str, issuer: &str) -> String {
    totp(config, secret, account, issuer)
        .and_then(|totp| totp.to_url().ok())
        .unwrap_or_default()
}

/// `url` as an SVG QR code in a `data:` URI.
pub fn qr_code_data_uri(url: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(url.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    format!("data:image/svg+xml;base64,{}", BASE64.encode(svg))
}

/// The time step `code` matches at `unix_seconds` (whitespace ignored), if any.
pub fn matching_step(
    config: &MfaConfig,
    secret: &[u8],
    code: &str,
    unix_seconds: u64,
) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    totp(config, secret, "", "")?.check(&code, unix_seconds)
}

/// The code for `unix_seconds` (tests and the RFC vectors).
pub fn code_at(config: &MfaConfig, secret: &[u8], unix_seconds: u64) -> Option<String> {
    Some(
        totp(config, secret, "", "")?
            .generate(unix_seconds)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(digits: u8) -> MfaConfig {
        MfaConfig {
            totp_digits: digits,
            ..MfaConfig::default()
        }
    }

    /// RFC 6238, appendix B (SHA-1, 8 digits, 30 s steps).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(
                code_at(&config(8), secret, time).as_deref(),
                Some(code),
                "{time}"
            );
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_next_but_not_later() {
        let config = config(6);
        let secret = new_secret();
        let code = code_at(&config, &secret, 1_000_000_000).unwrap();
        let step = 1_000_000_000 / 30;
        assert_eq!(
            matching_step(&config, &secret, &code, 1_000_000_000),
            Some(step)
        );
        assert_eq!(
            matching_step(&config, &secret, &code, 1_000_000_030),
            Some(step)
        );
        assert_eq!(matching_step(&config, &secret, &code, 1_000_000_090), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(
            matching_step(&config, &secret, &spaced, 1_000_000_000),
            Some(step)
        );
    }
}
