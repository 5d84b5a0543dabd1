//! argon2id password hashing, kept off the async runtime and bounded in memory. Hashes imported
//! from Django (`django`) are checked through the same permits and replaced at first login.
//!
//! Each hash needs ~19 MiB of working memory for ~20 ms of CPU. Two things keep a burst of
//! logins from growing the heap:
//! - a semaphore admits one hash per core at a time, and the permit moves into the blocking
//!   task (a client that hangs up does not free it while the hash still runs);
//! - each permit owns one working buffer, reused for every hash. Allocating 19 MiB per hash
//!   instead lets glibc's per-thread arenas keep what they grew: under 64 concurrent logins on
//!   2 cores (examples/login_bench.rs) peak RSS was 808-862 MiB that way, 69 MiB this way, at
//!   the same 130 logins/s.

use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::{MaxImportedCost, PasswordHashingConfig};
use crate::metrics::SharedMetrics;
use crate::service::error::{Error, Result};

mod django;

use django::{DjangoHash, Foreign};

/// A stored hash worth verifying, owned so it can move to the blocking pool.
enum Checkable {
    /// Tessera's own PHC string (argon2).
    Phc(Box<str>),
    /// One of Django's formats, its costs within the caps.
    Django(Box<str>),
}

/// The cap an imported argon2 hash exceeds, if any (an unparsable one is left to fail later).
fn argon2_over_cap(phc: &str, caps: &MaxImportedCost) -> Option<&'static str> {
    let params = Params::try_from(&PasswordHash::new(phc).ok()?).ok()?;
    if params.m_cost() > caps.argon2_memory_kib {
        Some("argon2_memory_kib")
    } else if params.t_cost() > caps.argon2_iterations {
        Some("argon2_iterations")
    } else {
        None
    }
}

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
    /// One argon2 working buffer per permit; a permit holder always finds one here.
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A real hash of a random password, verified against when the user does not exist so that
    /// the answer takes as long as for a real account.
    dummy_hash: Arc<str>,
    max_imported_cost: MaxImportedCost,
    metrics: Option<SharedMetrics>,
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
        let mut buffers: Vec<Vec<Block>> = (0..permits)
            .map(|_| vec![Block::default(); params.block_count()])
            .collect();
        let dummy_password = crate::secrets::random_hex(16);
        let dummy_hash = hash_with(&params, dummy_password.as_bytes(), &mut buffers[0])?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(permits)),
            buffers: Arc::new(Mutex::new(buffers)),
            dummy_hash: dummy_hash.into(),
            max_imported_cost: config.max_imported_cost.clone(),
            metrics: None,
        })
    }

    /// Reports permits, waits and hashes in flight to `metrics`.
    pub fn instrumented(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// A PHC string (`$argon2id$v=19$m=...`) for `password`.
    pub async fn hash(&self, password: &SecretString) -> Result<String> {
        let password = password.clone();
        let params = self.params.clone();
        self.run(move |buffer| hash_with(&params, password.expose_secret().as_bytes(), buffer))
            .await?
    }

    /// Checks `password` against `stored`: Tessera's argon2id, or one of Django's formats
    /// (`django`), whose match always asks for a rehash. With no usable hash (unknown user,
    /// unusable password, an unknown format, an imported cost above its cap) it still spends
    /// one verification, then answers "no match".
    pub async fn verify(&self, password: &SecretString, stored: Option<&str>) -> Result<Verified> {
        let password = password.clone();
        let check = match stored.filter(|hash| !hash.is_empty()) {
            Some(hash) => self.checkable(hash),
            None => None,
        };
        let Some(stored) = check else {
            let dummy = self.dummy_hash.clone();
            self.run(move |buffer| {
                if let Ok(parsed) = PasswordHash::new(&dummy) {
                    verify_with(&parsed, password.expose_secret().as_bytes(), buffer);
                }
            })
            .await?;
            return Ok(Verified {
                matches: false,
                needs_rehash: false,
            });
        };
        let params = self.params.clone();
        self.run(move |buffer| {
            let password = password.expose_secret().as_bytes();
            let (phc, imported) = match &stored {
                Checkable::Phc(phc) => (Some(&**phc), false),
                Checkable::Django(hash) => match django::parse(hash) {
                    Foreign::Django(DjangoHash::Argon2 { phc }) => (Some(phc), true),
                    Foreign::Django(other) => {
                        let matches = other.verify(password);
                        return Verified {
                            matches,
                            needs_rehash: matches,
                        };
                    }
                    _ => (None, true),
                },
            };
            let Some(parsed) = phc.and_then(|phc| PasswordHash::new(phc).ok()) else {
                return Verified {
                    matches: false,
                    needs_rehash: false,
                };
            };
            let matches = verify_with(&parsed, password, buffer);
            // Compare the costs only: parsed params also carry an output length we leave unset.
            let costs = |p: &Params| (p.m_cost(), p.t_cost(), p.p_cost());
            let outdated = imported
                || parsed.algorithm.as_str() != "argon2id"
                || Params::try_from(&parsed).map(|p| costs(&p)).ok() != Some(costs(&params));
            Verified {
                matches,
                needs_rehash: matches && outdated,
            }
        })
        .await
    }

    /// What of `stored` is worth a verification: `None` for an unusable password, a format
    /// Tessera does not know, or an imported hash whose cost exceeds
    /// `password_hashing.max_imported_cost` (logged, with the costs but nothing of the hash).
    fn checkable(&self, stored: &str) -> Option<Checkable> {
        if stored.starts_with('$') {
            return Some(Checkable::Phc(stored.into()));
        }
        let hash = match django::parse(stored) {
            Foreign::Django(hash) => hash,
            Foreign::Unusable => return None,
            Foreign::Unknown => {
                tracing::warn!(
                    "a stored password is in a format Tessera does not check; its user must \
                     reset the password"
                );
                return None;
            }
        };
        if let Some(cap) = self.over_cap(&hash) {
            tracing::warn!(
                hash = %hash.describe(),
                "an imported password hash costs more than password_hashing.max_imported_cost.{cap} \
                 allows; it is not checked and its user must reset the password"
            );
            return None;
        }
        Some(Checkable::Django(stored.into()))
    }

    /// The cap of `password_hashing.max_imported_cost` an imported hash exceeds, if any.
    fn over_cap(&self, hash: &DjangoHash<'_>) -> Option<&'static str> {
        match hash {
            DjangoHash::Argon2 { phc } => argon2_over_cap(phc, &self.max_imported_cost),
            other => other.within(&self.max_imported_cost).err(),
        }
    }

    /// How a stored password brought by an import will fare at login, for the import's
    /// summary: Django's hasher name, `unusable`, `above_cap` or `not_checked` (a format
    /// Tessera does not check).
    pub fn imported_kind(&self, stored: &str) -> &'static str {
        if stored.is_empty() {
            return "unusable";
        }
        if stored.starts_with('$') {
            return "argon2";
        }
        match django::parse(stored) {
            Foreign::Django(hash) if self.over_cap(&hash).is_some() => "above_cap",
            Foreign::Django(hash) => hash.algorithm(),
            Foreign::Unusable => "unusable",
            Foreign::Unknown => "not_checked",
        }
    }

    /// Runs `work` on the blocking pool with a permit and that permit's working buffer.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let metrics = self.metrics.clone();
        let waited_from = std::time::Instant::now();
        if let Some(m) = &metrics {
            m.hashes_waiting.inc();
        }
        let permit = self.permits.clone().acquire_owned().await;
        if let Some(m) = &metrics {
            m.hashes_waiting.dec();
            m.hash_wait.observe(waited_from.elapsed().as_secs_f64());
            m.hashes_in_flight.inc();
        }
        let permit = permit.map_err(|_| Error::Internal("password hasher shut down".into()))?;
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut buffer = lock(&buffers).pop().unwrap_or_default();
            let result = work(&mut buffer);
            lock(&buffers).push(buffer);
            if let Some(m) = &metrics {
                m.hashes_in_flight.dec();
            }
            result
        })
        .await
        .map_err(|err| Error::Internal(format!("password hashing task failed: {err}")))
    }
}

fn lock(buffers: &Mutex<Vec<Vec<Block>>>) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
    // A panic while holding the lock cannot leave the Vec inconsistent: keep using it.
    buffers
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The working memory the configured `params` need, from `buffer` (sized for them when the
/// permit's buffer was made).
fn memory<'a>(params: &Params, buffer: &'a mut Vec<Block>) -> &'a mut [Block] {
    let needed = params.block_count();
    if buffer.len() < needed {
        buffer.resize(needed, Block::default());
    }
    &mut buffer[..needed]
}

fn hash_with(params: &Params, password: &[u8], buffer: &mut Vec<Block>) -> Result<String> {
    let failed =
        |err: &dyn std::fmt::Display| Error::Internal(format!("password hashing failed: {err}"));
    let salt = argon2::password_hash::generate_salt();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, memory(params, buffer))
        .map_err(|err| failed(&err))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|err| failed(&err))?,
        salt: Some(Salt::new(&salt).map_err(|err| failed(&err))?),
        hash: Some(Output::new(&out).map_err(|err| failed(&err))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the stored hash's function over `password` and compares in constant time
/// (`Output`'s equality), as argon2's own verifier does, but in the caller's memory.
fn verify_with(stored: &PasswordHash, password: &[u8], buffer: &mut [Block]) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm.as_str()) else {
        return false;
    };
    // A PHC string without `v=` is argon2 1.0 (0x10), as Django's oldest argon2 hashes are.
    let Ok(version) = Version::try_from(stored.version.unwrap_or(Version::V0x10.into())) else {
        return false;
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    // A stored hash that needs more memory than the configured cost (an imported one, or one
    // from before the cost was lowered) gets memory of its own for this check, so the pooled
    // buffers stay at the configured size.
    let mut own = Vec::new();
    let memory = if params.block_count() <= buffer.len() {
        &mut buffer[..params.block_count()]
    } else {
        own.resize(params.block_count(), Block::default());
        &mut own[..]
    };
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        &mut out,
        memory,
    );
    computed.is_ok() && Output::new(&out).is_ok_and(|out| &out == expected)
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
            max_imported_cost: Default::default(),
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

    #[tokio::test]
    async fn hashes_are_standard_phc_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(&cheap(1024)).unwrap();
        // Ours verify with argon2's own verifier...
        let ours = hasher.hash(&secret("interop")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"interop", &parsed)
                .is_ok()
        );
        // ...and hashes made by argon2's standard API (other costs, argon2i) verify with ours.
        for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i] {
            let params = Params::new(2048, 1, 1, None).unwrap();
            let theirs = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"imported")
                .unwrap()
                .to_string();
            let result = hasher
                .verify(&secret("imported"), Some(&theirs))
                .await
                .unwrap();
            assert_eq!(
                result,
                Verified {
                    matches: true,
                    needs_rehash: true
                },
                "{theirs}"
            );
            let wrong = hasher
                .verify(&secret("imported!"), Some(&theirs))
                .await
                .unwrap();
            assert!(!wrong.matches);
        }
    }
}
