//! argon2id password hashing, kept off the async runtime and bounded in concurrency.
//!
//! Each hash holds ~19 MiB for ~20 ms of CPU. Unbounded, a burst of logins grows the heap by
//! gigabytes; so every hash waits for a semaphore permit, and the permit moves into the
//! blocking task (a client that hangs up does not free it while the hash still runs).

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::PasswordHashingConfig;
use crate::service::error::{Error, Result};

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash uses other parameters than the configured ones: store a new one.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the user does not exist so that
    /// the answer takes as long as for a real account.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(config: &PasswordHashingConfig) -> Result<Self> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|err| Error::Internal(format!("argon2 parameters: {err}")))?;
        let permits = match config.max_concurrent {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let dummy_password = super::secrets::random_hex(16);
        let dummy_hash = hash_blocking(&params, dummy_password.as_bytes())?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// A PHC string (`$argon2id$v=19$m=...`) for `password`.
    pub async fn hash(&self, password: &SecretString) -> Result<String> {
        let password = password.clone();
        let params = self.params.clone();
        self.run(move || hash_blocking(&params, password.expose_secret().as_bytes()))
            .await?
    }

    /// Checks `password` against `stored`; with no stored hash (unknown user or unusable
    /// password) it still spends one verification, then answers "no match".
    pub async fn verify(&self, password: &SecretString, stored: Option<&str>) -> Result<Verified> {
        let usable = stored.filter(|hash| !hash.is_empty());
        let phc: Arc<str> = match usable {
            Some(hash) => hash.into(),
            None => self.dummy_hash.clone(),
        };
        let is_real = usable.is_some();
        let password = password.clone();
        let params = self.params.clone();
        self.run(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Verified {
                    matches: false,
                    needs_rehash: false,
                };
            };
            let matches = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            // Compare the costs only: parsed params also carry an output length we leave unset.
            let costs = |p: &Params| (p.m_cost(), p.t_cost(), p.p_cost());
            let outdated = parsed.algorithm.as_str() != "argon2id"
                || Params::try_from(&parsed).map(|p| costs(&p)).ok() != Some(costs(&params));
            let needs_rehash = matches && outdated;
            Verified {
                matches: matches && is_real,
                needs_rehash: needs_rehash && is_real,
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("password hasher shut down".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|err| Error::Internal(format!("password hashing task failed: {err}")))
    }
}

fn hash_blocking(params: &Params, password: &[u8]) -> Result<String> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|err| Error::Internal(format!("password hashing failed: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(memory_kib: u32) -> PasswordHashingConfig {
        PasswordHashingConfig {
            memory_kib,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
        }
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn hashes_verify_and_reject() {
        let hasher = PasswordHasher::new(&cheap(1024)).unwrap();
        let hash = hasher.hash(&secret("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        let ok = hasher
            .verify(&secret("correct horse"), Some(&hash))
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        let bad = hasher
            .verify(&secret("wrong horse"), Some(&hash))
            .await
            .unwrap();
        assert!(!bad.matches);
    }

    #[tokio::test]
    async fn missing_or_garbled_hash_never_matches() {
        let hasher = PasswordHasher::new(&cheap(1024)).unwrap();
        for stored in [None, Some(""), Some("not a phc string")] {
            let result = hasher.verify(&secret("anything"), stored).await.unwrap();
            assert!(!result.matches, "{stored:?}");
        }
    }

    #[tokio::test]
    async fn changed_parameters_ask_for_a_rehash() {
        let old = PasswordHasher::new(&cheap(1024)).unwrap();
        let hash = old.hash(&secret("pw")).await.unwrap();
        let new = PasswordHasher::new(&cheap(2048)).unwrap();
        let result = new.verify(&secret("pw"), Some(&hash)).await.unwrap();
        assert_eq!(
            result,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
    }
}
