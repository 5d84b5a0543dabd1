//! The per-instance cache of verified credentials, so an authenticated request needs no
//! database query, and what keeps it honest.
//!
//! - An entry maps a credential (token digest, session digest, JWT refresh family) to the
//!   principal it proved, and is served only while the credential's own expiry (and, for a
//!   session, its idle limit) allows, and at most `credential_cache.ttl_seconds`.
//! - Revocation is per user: each revocation (see `revocations`) stamps the user with the
//!   instant it reached this instance, and an entry loaded before that stamp is never served
//!   again. The load's instant is taken *before* its query, so a load that raced the change
//!   is stale too. A user has few credentials; the others are read again once.
//! - Unknown credentials never enter the main cache (only verified ones do), so a flood of
//!   random tokens cannot push real users out. They are remembered in a small cache of their
//!   own (so the same bad credential costs the database once), and each client address may
//!   present only `credential_cache.failed_checks_per_minute` of them before the rest are
//!   answered 429 without a query.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::Expiry;
use moka::sync::Cache;

use crate::config::Config;
use crate::metrics::SharedMetrics;
use crate::service::error::{Error, Result};
use crate::service::principal::Principal;
use crate::service::rate_limits::client_group;
use crate::store::refresh_tokens::FamilyId;
use crate::store::users::UserId;

/// How long a client address's failed credential checks are counted.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How many unknown credentials are remembered as such.
const UNKNOWN_CAPACITY: u64 = 10_000;
/// How long an unknown credential is remembered: tokens are random, so one that is unknown now
/// stays unknown; the limit keeps memory, not correctness.
const UNKNOWN_TTL: Duration = Duration::from_secs(600);

/// What a credential is known by in the cache. Digests, never the secrets themselves; no
/// `Debug`, so they cannot be printed either.
#[derive(Clone, Hash, PartialEq, Eq)]
pub enum CredentialKey {
    /// Token mode: the SHA-256 digest of the key.
    Token(String),
    /// Session mode: the SHA-256 digest of the cookie value.
    Session(String),
    /// JWT mode: the refresh family an access token was issued with.
    JwtFamily(FamilyId),
    /// JWT mode, an access token without a family (one issued elsewhere, e.g. by SimpleJWT).
    JwtUser(UserId),
}

/// A credential the database just vouched for.
pub struct Verified {
    pub principal: Principal,
    /// When the credential ends (token or session expiry), if it does.
    pub expires_at: Option<DateTime<Utc>>,
    /// A session's last activity and how long it may idle.
    pub idle: Option<(DateTime<Utc>, chrono::Duration)>,
    /// The credential's last recorded use (a token's or refresh family's), so that loading
    /// it again does not count as a use to write.
    pub last_used: Option<DateTime<Utc>>,
}

/// A cached credential.
pub struct Cached {
    pub principal: Principal,
    expires_at: Option<DateTime<Utc>>,
    idle_timeout: Option<chrono::Duration>,
    /// Unix milliseconds of the last activity this instance knows of (sessions).
    last_seen: AtomicI64,
    /// Taken before the query that loaded it.
    loaded_at: Instant,
}

impl Cached {
    fn new(verified: Verified, loaded_at: Instant) -> Self {
        let (last_seen, idle_timeout) = match verified.idle {
            Some((seen, timeout)) => (seen.timestamp_millis(), Some(timeout)),
            None => (
                verified.last_used.map_or(0, |at| at.timestamp_millis()),
                None,
            ),
        };
        Self {
            principal: verified.principal,
            expires_at: verified.expires_at,
            idle_timeout,
            last_seen: AtomicI64::new(last_seen),
            loaded_at,
        }
    }

    fn live_at(&self, now: DateTime<Utc>) -> bool {
        let expired = self.expires_at.is_some_and(|at| at <= now);
        let idled = self.idle_timeout.is_some_and(|timeout| {
            now.timestamp_millis() - self.last_seen.load(Ordering::Relaxed)
                >= timeout.num_milliseconds()
        });
        !expired && !idled
    }

    /// Whether this request should record activity (at most once per `every`); of concurrent
    /// requests only one is told yes.
    pub fn claim_touch(&self, now: DateTime<Utc>, every: chrono::Duration) -> bool {
        let seen = self.last_seen.load(Ordering::Relaxed);
        let now = now.timestamp_millis();
        now - seen > every.num_milliseconds()
            && self
                .last_seen
                .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Entries live until the credential's own expiry or the configured lifetime, whichever
/// comes first.
struct UntilExpiry {
    ttl: Duration,
}

impl Expiry<CredentialKey, Arc<Cached>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &CredentialKey,
        value: &Arc<Cached>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let until_expiry = value
            .expires_at
            .map(|at| (at - Utc::now()).to_std().unwrap_or_default());
        Some(until_expiry.map_or(self.ttl, |left| left.min(self.ttl)))
    }
}

/// The credential cache of one instance. Cheap to share (`Accounts` holds one).
pub struct CredentialCache {
    /// `None` when `credential_cache.capacity = 0`.
    verified: Option<Cache<CredentialKey, Arc<Cached>>>,
    unknown: Option<Cache<CredentialKey, ()>>,
    /// When a revocation of each user reached this instance.
    revoked_at: Cache<UserId, Instant>,
    /// When each user's credentials last ended, by the clock of the instance that ended
    /// them: access tokens without a family issued before then are refused.
    credentials_ended: Cache<UserId, DateTime<Utc>>,
    failures: Cache<IpAddr, Arc<AtomicU32>>,
    failure_limit: u32,
    /// Failures are counted per client group (`rate_limits::client_group`).
    ipv6_prefix: u8,
    metrics: SharedMetrics,
}

impl CredentialCache {
    pub fn new(config: &Config, metrics: SharedMetrics) -> Self {
        let settings = &config.credential_cache;
        let ttl = Duration::from_secs(settings.ttl_seconds.max(1));
        let enabled = settings.capacity > 0;
        let evictions = metrics.cache_evictions.clone();
        let verified = enabled.then(|| {
            Cache::builder()
                .max_capacity(settings.capacity)
                .expire_after(UntilExpiry { ttl })
                // Only evictions for room: expiry and revocation are the cache working.
                .eviction_listener(move |_, _, cause| {
                    if cause == moka::notification::RemovalCause::Size {
                        evictions.inc();
                    }
                })
                .build()
        });
        let unknown = enabled.then(|| {
            Cache::builder()
                .max_capacity(UNKNOWN_CAPACITY)
                .time_to_live(UNKNOWN_TTL)
                .build()
        });
        // A stamp matters while an entry loaded before it may live: one lifetime. Unbounded in
        // count, so no stamp is ever dropped early; bounded in memory by the revocation rate.
        let revoked_at = Cache::builder().time_to_live(ttl).build();
        // Access tokens outlive no more than their lifetime.
        let access_lifetime = Duration::from_secs(config.jwt.access_lifetime_seconds.max(1));
        let credentials_ended = Cache::builder().time_to_live(access_lifetime).build();
        let failures = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(FAILURE_WINDOW)
            .build();
        Self {
            verified,
            unknown,
            revoked_at,
            credentials_ended,
            failures,
            failure_limit: settings.failed_checks_per_minute,
            ipv6_prefix: config.rate_limits.ipv6_prefix,
            metrics,
        }
    }

    /// The principal behind `key`: from the cache when it holds a live entry, otherwise from
    /// `load` (`Ok(None)`: the credential is unknown). `client` is the caller's address, for
    /// the limit on failed checks.
    pub async fn authenticate<F>(
        &self,
        key: CredentialKey,
        client: Option<IpAddr>,
        load: F,
    ) -> Result<Option<Arc<Cached>>>
    where
        F: Future<Output = Result<Option<Verified>>>,
    {
        if let Some(verified) = &self.verified
            && let Some(entry) = verified.get(&key)
        {
            if self.fresh(&entry) {
                self.metrics.cache_hits.inc();
                return Ok(Some(entry));
            }
            verified.invalidate(&key);
        }
        if self.unknown.as_ref().is_some_and(|u| u.contains_key(&key)) {
            self.count_failure(client);
            return Ok(None);
        }
        self.check_failures(client)?;
        self.metrics.cache_misses.inc();
        let loaded_at = Instant::now();
        match load.await {
            Ok(Some(found)) => {
                let entry = Arc::new(Cached::new(found, loaded_at));
                if let Some(verified) = &self.verified {
                    verified.insert(key, entry.clone());
                }
                Ok(Some(entry))
            }
            Ok(None) => {
                if let Some(unknown) = &self.unknown {
                    unknown.insert(key, ());
                }
                self.count_failure(client);
                Ok(None)
            }
            Err(err) => {
                if matches!(err, Error::Unauthenticated(_) | Error::TokenRejected(_)) {
                    self.count_failure(client);
                }
                Err(err)
            }
        }
    }

    /// Applies a revocation of `user`: nothing cached for them before now is served again.
    /// `credentials_ended_at` is set when some of their credentials ended (not for a profile
    /// edit), by the clock of the instance where that happened.
    pub fn revoke(&self, user: UserId, credentials_ended_at: Option<DateTime<Utc>>) {
        self.revoked_at.insert(user, Instant::now());
        if let Some(at) = credentials_ended_at {
            let latest = self
                .credentials_ended
                .get(&user)
                .map_or(at, |known| known.max(at));
            self.credentials_ended.insert(user, latest);
        }
    }

    /// When the user's credentials last ended, if within an access token's lifetime.
    pub fn credentials_ended_at(&self, user: UserId) -> Option<DateTime<Utc>> {
        self.credentials_ended.get(&user)
    }

    fn fresh(&self, entry: &Cached) -> bool {
        let revoked = self
            .revoked_at
            .get(&entry.principal.user.id)
            .is_some_and(|at| at >= entry.loaded_at);
        !revoked && entry.live_at(Utc::now())
    }

    fn check_failures(&self, client: Option<IpAddr>) -> Result<()> {
        let over = client
            .filter(|_| self.failure_limit > 0)
            .and_then(|ip| self.failures.get(&client_group(ip, self.ipv6_prefix)))
            .is_some_and(|count| count.load(Ordering::Relaxed) >= self.failure_limit);
        if over {
            self.metrics
                .rate_limit_refusals
                .get_or_create(&crate::metrics::ActionLabels {
                    action: "failed_credential_checks",
                })
                .inc();
        }
        match over {
            true => Err(Error::Throttled {
                wait_seconds: FAILURE_WINDOW.as_secs(),
            }),
            false => Ok(()),
        }
    }

    fn count_failure(&self, client: Option<IpAddr>) {
        if let Some(ip) = client.filter(|_| self.failure_limit > 0) {
            self.failures
                .get_with(client_group(ip, self.ipv6_prefix), || {
                    Arc::new(AtomicU32::new(0))
                })
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
