//! Recovery codes, derived as dj-rest-auth's MFA package derives them: code `i` is the first 8
//! hex digits of HMAC-SHA256(seed, "i"), shown as `xxxx-xxxx`. Only the seed is kept (sealed),
//! with a bit mask of the codes used, so the unused codes can be shown again and a
//! dj-rest-auth `Authenticator` row (seed and mask) carries over as it is.
//!
//! allauth derives its codes from its seed another way ([`allauth_codes`]); an imported allauth
//! seed is kept as [`ALLAUTH_SEED`] followed by its hex text, and its codes stay allauth's.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// 256 bits, as dj-rest-auth.
const SEED_BYTES: usize = 32;

pub fn new_seed() -> Vec<u8> {
    let mut seed = vec![0u8; SEED_BYTES];
    getrandom::fill(&mut seed).expect("the operating system's random source is available");
    seed
}

/// How a seed imported from allauth starts (a seed of Tessera's is 32 random bytes, never this
/// prefix and 80 more).
pub const ALLAUTH_SEED: &[u8] = b"allauth:";

/// The first `count` codes of `seed`, in the order they were issued.
pub fn codes(seed: &[u8], count: u32) -> Vec<String> {
    if let Some(key) = seed.strip_prefix(ALLAUTH_SEED) {
        return allauth_codes(key, count);
    }
    (0..count)
        .map(|i| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(seed).expect("HMAC takes a key of any length");
            mac.update(i.to_string().as_bytes());
            let digest = hex::encode(mac.finalize().into_bytes());
            format!("{}-{}", &digest[..4], &digest[4..8])
        })
        .collect()
}

/// allauth's codes (`allauth/mfa/recovery_codes/internal/auth.py`): one HMAC-SHA1 keyed with the
/// seed's hex text is fed `"{i:3},"` for each code in turn; code `i` is the first four bytes of
/// the digest so far, big-endian, modulo 10^8, as eight digits.
fn allauth_codes(key: &[u8], count: u32) -> Vec<String> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
    (0..count)
        .map(|i| {
            mac.update(format!("{i:3},").as_bytes());
            let digest = mac.clone().finalize().into_bytes();
            let number = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
            format!("{:08}", number % 100_000_000)
        })
        .collect()
}

/// The codes whose bit in `used_mask` is not set.
pub fn unused(seed: &[u8], count: u32, used_mask: i64) -> Vec<String> {
    codes(seed, count)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| used_mask & (1 << i) == 0)
        .map(|(_, code)| code)
        .collect()
}

/// The index of the unused code `candidate` is (trimmed, any case), compared in constant time.
pub fn match_unused(seed: &[u8], count: u32, used_mask: i64, candidate: &str) -> Option<usize> {
    let candidate = candidate.trim().to_lowercase();
    let mut found = None;
    for (i, code) in codes(seed, count).iter().enumerate() {
        let same: bool = code.as_bytes().ct_eq(candidate.as_bytes()).into();
        if same && used_mask & (1 << i) == 0 {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dj_rest_auths() {
        // hmac.new(bytes.fromhex("00" * 32), b"0", sha256).hexdigest()[:8], by Python.
        assert_eq!(codes(&[0u8; 32], 2), ["9979-e4c3", "41e0-a944"]);
    }

    #[test]
    fn imported_allauth_seeds_give_allauths_codes() {
        // A seed allauth 65.22 stored and the codes it showed for it (tests/api/support/
        // django_site/build.py made both).
        let seed =
            b"83fe1741200a342a460e4f2f80eba6d7cf8b09d25f1b878e1caf72aecec658a56662dc5c1d3d90d0";
        let sealed = [ALLAUTH_SEED, &seed[..]].concat();
        let all = codes(&sealed, 10);
        assert_eq!(&all[..3], ["11953977", "18920985", "36086980"]);
        assert_eq!(match_unused(&sealed, 10, 0b10, "11953977"), Some(0));
        assert_eq!(match_unused(&sealed, 10, 0b10, "18920985"), None, "used");
    }

    #[test]
    fn used_codes_stop_matching() {
        let seed = new_seed();
        let all = codes(&seed, 10);
        assert_eq!(match_unused(&seed, 10, 0, &all[3].to_uppercase()), Some(3));
        assert_eq!(match_unused(&seed, 10, 1 << 3, &all[3]), None);
        assert_eq!(unused(&seed, 10, 1 << 3).len(), 9);
        assert_eq!(match_unused(&seed, 10, 0, "0000-0000"), None);
    }
}
