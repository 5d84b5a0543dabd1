//! Rate limits as allauth's `ACCOUNT_RATE_LIMITS`: per action, rules `AMOUNT/PERIOD/PER`.
//!
//! Each rule counts hits in fixed windows of its period, per subject: the client IP, a key
//! (the email address the request is about, as a digest, whether or not it has an account, so
//! the answer reveals nothing) or the user. A hit beyond the amount is refused until the window
//! ends. Counters live in this process or, for several instances, in the database, where a
//! single upsert increments them atomically.
//!
//! A refusal is the cheapest answer there is: once a counter is over its amount, this
//! instance remembers it until the window ends and refuses further hits on it without counting
//! (no query, no write). In memory, counters expire with their window, each hit costs O(1),
//! and their number is bounded.

use crate::metrics::{ActionLabels, SharedMetrics};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache;
use sea_orm::DatabaseConnection;

use crate::config::{Per, RateLimitStore, RateLimitsConfig, Rule};
use crate::secrets;
use crate::service::error::{Error, Result};
use crate::store;
use crate::store::users::UserId;

/// The limited actions (allauth's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    Login,
    LoginFailed,
    Signup,
    ConfirmEmail,
    ResetPassword,
    ResetPasswordFromKey,
    ChangePassword,
}

impl Action {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Whom a request counts against.
#[derive(Debug, Clone, Default)]
pub struct Subjects<'a> {
    pub ip: Option<IpAddr>,
    /// The email address the request is about (normalised by the caller).
    pub key: Option<&'a str>,
    pub user: Option<UserId>,
}

/// Most counters (or counters known to be over) held in memory at once.
const MAX_COUNTERS: u64 = 500_000;

#[derive(Clone)]
enum Counters {
    Memory(Cache<String, Window>),
    Database(DatabaseConnection),
}

/// One bucket's count in one fixed window.
#[derive(Clone, Copy)]
struct Window {
    start: i64,
    /// Unix seconds at which the window ends (and the entry with it).
    end: i64,
    count: u32,
}

/// A window's entry lives until the window ends.
struct UntilWindowEnd;

impl UntilWindowEnd {
    fn left(end: i64) -> Option<Duration> {
        Some(Duration::from_secs(
            (end - Utc::now().timestamp()).max(1) as u64
        ))
    }
}

impl<K> Expiry<K, Window> for UntilWindowEnd {
    fn expire_after_create(&self, _: &K, window: &Window, _: Instant) -> Option<Duration> {
        Self::left(window.end)
    }

    fn expire_after_update(
        &self,
        _: &K,
        window: &Window,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Self::left(window.end)
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    rules: Arc<HashMap<Action, Vec<Rule>>>,
    counters: Counters,
    /// Buckets known to be over their amount, with the end of that window.
    over: Cache<String, Window>,
    /// Refusals already reported (audit trail) in their window, by action and subject.
    reported: Cache<(Action, Option<IpAddr>, Option<UserId>), Window>,
    /// IPv6 clients are counted by this prefix (`rate_limits.ipv6_prefix`).
    ipv6_prefix: u8,
    metrics: Option<SharedMetrics>,
}

/// The address a client is counted under: IPv4 as it is, IPv6 by its first `ipv6_prefix` bits
/// (one host is handed a whole /64 and can rotate through it), as allauth does since 65.17.
/// An IPv4-mapped IPv6 address counts as its IPv4 address.
pub fn client_group(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ipnet::Ipv6Net::new(v6, ipv6_prefix.min(128))
                .map(|net| IpAddr::V6(net.trunc().addr()))
                .unwrap_or(ip),
        },
    }
}

fn windows<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> Cache<K, Window> {
    Cache::builder()
        .max_capacity(MAX_COUNTERS)
        .expire_after(UntilWindowEnd)
        .build()
}

impl RateLimiter {
    pub fn new(config: &RateLimitsConfig, db: DatabaseConnection) -> Self {
        let mut rules = HashMap::new();
        if config.enabled {
            for action in <Action as strum::IntoEnumIterator>::iter() {
                let parsed = config
                    .actions()
                    .into_iter()
                    .find(|(name, _)| *name == action.name())
                    .map(|(_, rules)| rules.rules().to_vec())
                    .unwrap_or_default();
                rules.insert(action, parsed);
            }
        }
        let counters = match config.store {
            RateLimitStore::Memory => Counters::Memory(windows()),
            RateLimitStore::Database => Counters::Database(db),
        };
        Self {
            rules: Arc::new(rules),
            counters,
            over: windows(),
            reported: windows(),
            ipv6_prefix: config.ipv6_prefix,
            metrics: None,
        }
    }

    /// Counts refusals per action in `metrics`.
    pub fn instrumented(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The action's per-key rule, if limits are on and it has one (`confirm_email`).
    pub fn key_rule(&self, action: Action) -> Option<Rule> {
        self.rules
            .get(&action)?
            .iter()
            .copied()
            .find(|rule| rule.per == Per::Key)
    }

    /// Counts a hit of `action`; refuses it (`Error::Throttled`) when a rule's amount for its
    /// window is exceeded.
    pub async fn hit(&self, action: Action, subjects: &Subjects<'_>) -> Result<()> {
        let result = self.apply(action, subjects).await;
        if let (Err(Error::Throttled { .. }), Some(metrics)) = (&result, &self.metrics) {
            metrics
                .rate_limit_refusals
                .get_or_create(&ActionLabels {
                    action: action.name(),
                })
                .inc();
        }
        result
    }

    /// Whether a refusal of `action` for this caller is the first in its window (`wait_seconds`
    /// long), so that a flood of refusals makes one audit entry, not one per request.
    pub fn first_refusal(
        &self,
        action: Action,
        ip: Option<IpAddr>,
        user: Option<UserId>,
        wait_seconds: u64,
    ) -> bool {
        let now = Utc::now().timestamp();
        let end = now + wait_seconds.min(i64::MAX as u64 / 2) as i64;
        let ip = ip.map(|ip| client_group(ip, self.ipv6_prefix));
        let entry = self
            .reported
            .entry((action, ip, user))
            .or_insert_with(|| Window {
                start: now,
                end,
                count: 0,
            });
        entry.is_fresh()
    }

    /// Takes back a hit of `action` from every rule that counted it, in the current windows
    /// (a login reserves a failed-login slot before checking the password, and returns it when
    /// the password was right).
    pub async fn release(&self, action: Action, subjects: &Subjects<'_>) -> Result<()> {
        let now = Utc::now().timestamp();
        for counter in self.counters_of(action, subjects, now) {
            self.uncount(&counter.bucket, counter.window).await?;
        }
        Ok(())
    }

    /// Forgets the key's counts for `action` (a successful login or a password reset clears
    /// the failed-login counters of that address).
    pub async fn clear_key(&self, action: Action, key: &str) -> Result<()> {
        let Some(rules) = self.rules.get(&action) else {
            return Ok(());
        };
        for rule in rules.iter().filter(|r| r.per == Per::Key) {
            let bucket = bucket(action, rule, &secrets::digest(key));
            self.over.invalidate(&bucket);
            match &self.counters {
                Counters::Memory(map) => map.invalidate(&bucket),
                Counters::Database(db) => store::rate_limits::clear(db, &bucket).await?,
            }
        }
        Ok(())
    }

    async fn apply(&self, action: Action, subjects: &Subjects<'_>) -> Result<()> {
        let now = Utc::now().timestamp();
        let counters = self.counters_of(action, subjects, now);
        // Already over in this window: refused without counting.
        let known_over = counters
            .iter()
            .filter_map(|counter| self.over.get(&counter.bucket))
            .filter(|window| window.end > now)
            .map(|window| window.end - now)
            .max();
        if let Some(wait) = known_over {
            return Err(Error::Throttled {
                wait_seconds: wait.max(1) as u64,
            });
        }
        let mut longest_wait = None;
        for counter in &counters {
            // Counting first and deciding on the count this hit produced is what keeps a burst
            // of parallel requests to exactly `amount`.
            let used = self
                .count(
                    &counter.bucket,
                    counter.window,
                    now,
                    counter.rule.period_seconds,
                )
                .await?;
            if used > counter.rule.amount {
                let end = counter.window + counter.rule.period_seconds;
                self.over.insert(
                    counter.bucket.clone(),
                    Window {
                        start: counter.window,
                        end,
                        count: used,
                    },
                );
                longest_wait = longest_wait.max(Some(end - now));
            }
        }
        match longest_wait {
            Some(wait) => {
                // A refused request uses up nothing: refused by its IP's limit, it must not
                // also eat into the quota of the address it named.
                for counter in &counters {
                    self.uncount(&counter.bucket, counter.window).await?;
                }
                tracing::debug!(action = action.name(), wait, "rate limit hit");
                Err(Error::Throttled {
                    wait_seconds: wait.max(1) as u64,
                })
            }
            None => Ok(()),
        }
    }

    /// The counters a request of `action` counts against: one per rule whose subject the
    /// request has, in the rule's window at `now`.
    fn counters_of(&self, action: Action, subjects: &Subjects<'_>, now: i64) -> Vec<Counter> {
        let Some(rules) = self.rules.get(&action) else {
            return Vec::new();
        };
        rules
            .iter()
            .filter_map(|rule| {
                let subject = subject_of(rule, subjects, self.ipv6_prefix)?;
                Some(Counter {
                    bucket: bucket(action, rule, &subject),
                    window: now - now.rem_euclid(rule.period_seconds),
                    rule: *rule,
                })
            })
            .collect()
    }

    /// Takes one back from a window's count.
    async fn uncount(&self, bucket: &str, window: i64) -> Result<()> {
        match &self.counters {
            Counters::Memory(map) => {
                map.entry_by_ref(bucket)
                    .and_compute_with(|current| match current {
                        Some(entry) if entry.value().start == window => Op::Put(Window {
                            count: entry.value().count.saturating_sub(1),
                            ..*entry.value()
                        }),
                        _ => Op::Nop,
                    });
            }
            Counters::Database(db) => store::rate_limits::decrement(db, bucket, window).await?,
        }
        Ok(())
    }

    /// The window's count, this hit included.
    async fn count(&self, bucket: &str, window: i64, now: i64, period: i64) -> Result<u32> {
        match &self.counters {
            Counters::Memory(map) => {
                let entry = map.entry_by_ref(bucket).and_upsert_with(|current| {
                    let count = match current {
                        Some(entry) if entry.value().start == window => entry.value().count,
                        _ => 0,
                    };
                    Window {
                        start: window,
                        end: window + period,
                        count: count.saturating_add(1),
                    }
                });
                Ok(entry.into_value().count)
            }
            Counters::Database(db) => {
                let count = store::rate_limits::increment(db, bucket, window).await?;
                if count == 1 {
                    // First hit of a new window: sweep windows that ended long ago.
                    store::rate_limits::sweep(db, now - period.max(86_400)).await?;
                }
                Ok(count)
            }
        }
    }
}

/// One rule's count for one subject, in one fixed window.
struct Counter {
    bucket: String,
    /// Start of the window, in Unix seconds.
    window: i64,
    rule: Rule,
}

/// What a rule counts this request against, if the request has it.
fn subject_of(rule: &Rule, subjects: &Subjects<'_>, ipv6_prefix: u8) -> Option<String> {
    match rule.per {
        Per::Ip => subjects
            .ip
            .map(|ip| client_group(ip, ipv6_prefix).to_string()),
        Per::Key => subjects.key.map(secrets::digest),
        Per::User => subjects.user.map(|id| id.to_string()),
    }
}

fn bucket(action: Action, rule: &Rule, subject: &str) -> String {
    let per = match rule.per {
        Per::Ip => "ip",
        Per::Key => "key",
        Per::User => "user",
    };
    format!(
        "{}:{}/{}s/{per}:{subject}",
        action.name(),
        rule.amount,
        rule.period_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_grouped_by_prefix() {
        let group = |ip: &str, prefix| client_group(ip.parse().unwrap(), prefix).to_string();
        assert_eq!(group("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::");
        assert_eq!(group("2001:db8:1:2:3:4:5:6", 48), "2001:db8:1::");
        assert_eq!(group("2001:db8:1:2:3:4:5:6", 128), "2001:db8:1:2:3:4:5:6");
        assert_eq!(group("192.0.2.7", 64), "192.0.2.7");
        assert_eq!(group("::ffff:192.0.2.7", 64), "192.0.2.7");
    }
}
