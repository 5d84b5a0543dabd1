//! Django's password hash formats, checked natively so that users brought over by
//! `tessera import-django` log in with the passwords they have; their first login replaces the
//! hash with Tessera's argon2id.
//!
//! As Django's hashers write them (`django/contrib/auth/hashers.py`):
//! - `pbkdf2_sha256$ITERATIONS$SALT$BASE64` (Django's default) and `pbkdf2_sha1$...`;
//! - `argon2$argon2id$v=19$m=...,t=...,p=...$SALT$HASH`: a PHC string behind the name;
//! - `bcrypt_sha256$$2b$12$...` (bcrypt of the hex SHA-256 of the password) and `bcrypt$$2b$...`;
//! - `scrypt$N$SALT$R$P$BASE64`;
//! - `!...`: an unusable password, which matches nothing.
//!
//! Each cost read from a hash is checked against `password_hashing.max_imported_cost` before
//! any work is done.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::MaxImportedCost;

/// A parsed Django hash; `Debug` names the algorithm and costs, never the salt or hash.
pub enum DjangoHash<'a> {
    Pbkdf2 {
        digest: Pbkdf2Digest,
        iterations: u32,
        salt: &'a str,
        expected: Vec<u8>,
    },
    /// The PHC string after Django's `argon2` name, checked as Tessera's own hashes are.
    Argon2 { phc: &'a str },
    Bcrypt {
        /// `bcrypt_sha256`: the password goes through SHA-256 first (no 72-byte limit).
        sha256_first: bool,
        cost: u32,
        /// The `$2b$...` part, as the bcrypt crate reads it.
        modular: &'a str,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: &'a str,
        expected: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbkdf2Digest {
    Sha256,
    Sha1,
}

impl std::fmt::Debug for DjangoHash<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What a stored password that is not Tessera's own PHC string turned out to be.
pub enum Foreign<'a> {
    Django(DjangoHash<'a>),
    /// Django's `!` prefix: the account has no password.
    Unusable,
    /// A format Tessera does not check (Django's legacy MD5/SHA1 hashers, anything else).
    Unknown,
}

/// Reads a stored password in one of Django's formats.
pub fn parse(stored: &str) -> Foreign<'_> {
    if stored.starts_with('!') {
        return Foreign::Unusable;
    }
    let Some((algorithm, rest)) = stored.split_once('$') else {
        return Foreign::Unknown;
    };
    let parsed = match algorithm {
        "pbkdf2_sha256" => pbkdf2(Pbkdf2Digest::Sha256, rest),
        "pbkdf2_sha1" => pbkdf2(Pbkdf2Digest::Sha1, rest),
        // Django keeps argon2's own leading `$`: `argon2$argon2id$v=19$...`.
        "argon2" => Some(DjangoHash::Argon2 { phc: &stored[6..] }),
        "bcrypt_sha256" => bcrypt(true, rest),
        "bcrypt" => bcrypt(false, rest),
        "scrypt" => scrypt(rest),
        _ => None,
    };
    parsed.map_or(Foreign::Unknown, Foreign::Django)
}

fn pbkdf2(digest: Pbkdf2Digest, rest: &str) -> Option<DjangoHash<'_>> {
    let mut parts = rest.splitn(3, '$');
    let iterations = parts.next()?.parse().ok().filter(|&n| n > 0)?;
    let salt = parts.next()?;
    let expected = BASE64.decode(parts.next()?).ok()?;
    Some(DjangoHash::Pbkdf2 {
        digest,
        iterations,
        salt,
        expected,
    })
}

fn bcrypt(sha256_first: bool, rest: &str) -> Option<DjangoHash<'_>> {
    // `$2b$12$` + 53 characters of salt and hash.
    let modular = rest.starts_with('$').then_some(rest)?;
    let cost = modular.get(4..6)?.parse().ok()?;
    Some(DjangoHash::Bcrypt {
        sha256_first,
        cost,
        modular,
    })
}

fn scrypt(rest: &str) -> Option<DjangoHash<'_>> {
    let mut parts = rest.splitn(5, '$');
    let n: u64 = parts.next()?.parse().ok()?;
    let salt = parts.next()?;
    let r = parts.next()?.parse().ok()?;
    let p = parts.next()?.parse().ok()?;
    let expected = BASE64.decode(parts.next()?).ok()?;
    if !n.is_power_of_two() || n < 2 {
        return None;
    }
    Some(DjangoHash::Scrypt {
        log_n: u8::try_from(n.trailing_zeros()).ok()?,
        r,
        p,
        salt,
        expected,
    })
}

impl DjangoHash<'_> {
    /// Django's name for the hasher.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Pbkdf2 {
                digest: Pbkdf2Digest::Sha256,
                ..
            } => "pbkdf2_sha256",
            Self::Pbkdf2 {
                digest: Pbkdf2Digest::Sha1,
                ..
            } => "pbkdf2_sha1",
            Self::Argon2 { .. } => "argon2",
            Self::Bcrypt {
                sha256_first: true, ..
            } => "bcrypt_sha256",
            Self::Bcrypt { .. } => "bcrypt",
            Self::Scrypt { .. } => "scrypt",
        }
    }

    /// The algorithm and its costs, for logs: nothing of the salt or hash.
    pub fn describe(&self) -> String {
        match self {
            Self::Pbkdf2 {
                digest, iterations, ..
            } => format!("pbkdf2 ({digest:?}) with {iterations} iterations"),
            Self::Argon2 { phc } => {
                let params = phc.split('$').find(|part| part.starts_with("m="));
                format!("argon2 ({})", params.unwrap_or("no parameters"))
            }
            Self::Bcrypt {
                sha256_first, cost, ..
            } => format!(
                "{} with cost {cost}",
                if *sha256_first {
                    "bcrypt_sha256"
                } else {
                    "bcrypt"
                }
            ),
            Self::Scrypt { log_n, r, p, .. } => format!("scrypt with n=2^{log_n}, r={r}, p={p}"),
        }
    }

    /// `Err` with the cap it exceeds when checking this hash would cost more than `caps`
    /// allow. argon2's own costs are checked by the caller, which parses its PHC string.
    pub fn within(&self, caps: &MaxImportedCost) -> Result<(), &'static str> {
        match self {
            Self::Pbkdf2 { iterations, .. } if *iterations > caps.pbkdf2_iterations => {
                Err("pbkdf2_iterations")
            }
            Self::Bcrypt { cost, .. } if *cost > caps.bcrypt_cost => Err("bcrypt_cost"),
            Self::Scrypt { log_n, r, p, .. } => {
                let memory_kib = (128u64 << log_n).saturating_mul(u64::from(*r)) / 1024;
                if memory_kib > caps.scrypt_memory_kib {
                    Err("scrypt_memory_kib")
                } else if *p > caps.scrypt_parallelism {
                    Err("scrypt_parallelism")
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether `password` matches, for every kind but argon2 (which the caller checks with its
    /// pooled memory). Comparisons are constant-time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Pbkdf2 {
                digest,
                iterations,
                salt,
                expected,
            } => {
                let algorithm = match digest {
                    Pbkdf2Digest::Sha256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
                    Pbkdf2Digest::Sha1 => ring::pbkdf2::PBKDF2_HMAC_SHA1,
                };
                let Some(iterations) = std::num::NonZeroU32::new(*iterations) else {
                    return false;
                };
                // Compares in constant time.
                !expected.is_empty()
                    && ring::pbkdf2::verify(
                        algorithm,
                        iterations,
                        salt.as_bytes(),
                        password,
                        expected,
                    )
                    .is_ok()
            }
            Self::Bcrypt {
                sha256_first,
                modular,
                ..
            } => {
                if *sha256_first {
                    let hex = hex::encode(Sha256::digest(password));
                    bcrypt::verify(hex.as_bytes(), modular).unwrap_or(false)
                } else {
                    bcrypt::verify(password, modular).unwrap_or(false)
                }
            }
            Self::Scrypt {
                log_n,
                r,
                p,
                salt,
                expected,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, expected.len()) else {
                    return false;
                };
                let mut out = vec![0u8; expected.len()];
                scrypt::scrypt(password, salt.as_bytes(), &params, &mut out).is_ok()
                    && bool::from(out.ct_eq(expected))
            }
            Self::Argon2 { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(stored: &str, password: &str) -> bool {
        match parse(stored) {
            Foreign::Django(hash) => hash.verify(password.as_bytes()),
            _ => panic!("not a Django hash: {stored}"),
        }
    }

    /// Django's own vectors (tests/auth_tests/test_hashers.py, Django 5.2), and bcrypt ones
    /// made by Django 5.2 (its tests have none with a fixed salt).
    const VECTORS: &[(&str, &str)] = &[
        (
            "pbkdf2_sha256$1000000$seasalt$r1uLUxoxpP2Ued/qxvmje7UH9PUJBkRrvf9gGPL7Cps=",
            "lètmein",
        ),
        (
            "pbkdf2_sha256$216000$seasalt$youGZxOw6ZOcfrXv2i8/AhrnpZflJJ9EshS9XmUJTUg=",
            "lètmein",
        ),
        (
            "pbkdf2_sha1$1000000$seasalt2$3R9hvSAiAy5ARspAFy5GJ/2rjXo=",
            "lètmein",
        ),
        (
            "scrypt$16384$seasalt$8$5$ECMIUp+LMxMSK8xB/IVyba+KYGTI7FTnet025q/1f/vBAVnnP3hdYqJuRi+mJn6ji6ze3Fbb7JEFPKGpuEf5vw==",
            "lètmein",
        ),
        (
            "bcrypt$$2b$12$seasaltseasaltseasalteQm3Vs.h8t/nvG3FIu1zl47mo0M.GunK",
            "lètmein",
        ),
        (
            "bcrypt_sha256$$2b$12$seasaltseasaltseasalteyiqcBmu8dcbMW7Pn7/cFmWfYOPkPZ5S",
            "lètmein",
        ),
    ];

    #[test]
    fn django_test_vectors() {
        for (stored, password) in VECTORS {
            assert!(check(stored, password), "{stored}");
            assert!(!check(stored, "letmein"), "{stored}");
        }
    }

    #[test]
    fn unusable_and_unknown_never_parse_as_hashes() {
        assert!(matches!(
            parse("!abcdefghijklmnopqrstuvwxyz"),
            Foreign::Unusable
        ));
        for stored in [
            // Django's legacy salted MD5, not checked (its users reset their password).
            "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3",
            "pbkdf2_sha256$many$salt$aGFzaA==",
            "pbkdf2_sha256$0$salt$aGFzaA==",
            "scrypt$1000$salt$8$1$aGFzaA==",
            "bcrypt$2b$12$short",
            "nonsense",
        ] {
            assert!(matches!(parse(stored), Foreign::Unknown), "{stored}");
        }
    }

    #[test]
    fn costs_above_the_caps_are_refused_before_any_work() {
        let caps = MaxImportedCost::default();
        let Foreign::Django(hash) = parse("pbkdf2_sha256$2000001$salt$aGFzaA==") else {
            panic!()
        };
        assert_eq!(hash.within(&caps), Err("pbkdf2_iterations"));
        let costly = format!("bcrypt$$2b$14${}", "a".repeat(53));
        let Foreign::Django(hash) = parse(&costly) else {
            panic!()
        };
        assert_eq!(hash.within(&caps), Err("bcrypt_cost"));
        let Foreign::Django(hash) = parse("scrypt$1048576$salt$8$1$aGFzaA==") else {
            panic!()
        };
        assert_eq!(hash.within(&caps), Err("scrypt_memory_kib"));
        let Foreign::Django(hash) = parse("scrypt$16384$salt$8$9$aGFzaA==") else {
            panic!()
        };
        assert_eq!(hash.within(&caps), Err("scrypt_parallelism"));
        // Django's own defaults pass.
        let Foreign::Django(hash) = parse("scrypt$16384$salt$8$5$aGFzaA==") else {
            panic!()
        };
        assert_eq!(hash.within(&caps), Ok(()));
    }

    #[test]
    fn debug_shows_costs_not_salt_or_hash() {
        let Foreign::Django(hash) =
            parse("pbkdf2_sha256$216000$seasalt$youGZxOw6ZOcfrXv2i8/AhrnpZflJJ9EshS9XmUJTUg=")
        else {
            panic!()
        };
        let shown = format!("{hash:?}");
        assert!(shown.contains("216000"), "{shown}");
        assert!(
            !shown.contains("seasalt") && !shown.contains("youGZ"),
            "{shown}"
        );
    }
}
