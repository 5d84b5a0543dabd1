//! Rate limits as allauth's `ACCOUNT_RATE_LIMITS`: per action, rules `AMOUNT/PERIOD/PER`.
//!
//! Each rule counts hits in fixed windows of its period, per subject: the client IP, a key
//! (the email address the request is about, as a digest, whether or not it has an account, so
//! the answer reveals nothing) or the user. A hit beyond the amount is refused until the window
//! ends. Counters live in this process or, for several instances, in the database, where a
//! single upsert increments them atomically.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use sea_orm::DatabaseConnection;

use crate::config::{Per, RateLimitStore, RateLimitsConfig, Rule};
use crate::secrets;
use crate::service::error::{Error, Result};
use crate::store;

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
    pub user: Option<crate::store::users::UserId>,
}

#[derive(Clone)]
enum Counters {
    Memory(Arc<Mutex<HashMap<String, (i64, u32)>>>),
    Database(DatabaseConnection),
}

#[derive(Clone)]
pub struct RateLimiter {
    rules: Arc<HashMap<Action, Vec<Rule>>>,
    counters: Counters,
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
            RateLimitStore::Memory => Counters::Memory(Arc::default()),
            RateLimitStore::Database => Counters::Database(db),
        };
        Self {
            rules: Arc::new(rules),
            counters,
        }
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
        self.apply(action, subjects).await
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
            match &self.counters {
                Counters::Memory(map) => {
                    lock(map).remove(&bucket);
                }
                Counters::Database(db) => store::rate_limits::clear(db, &bucket).await?,
            }
        }
        Ok(())
    }

    async fn apply(&self, action: Action, subjects: &Subjects<'_>) -> Result<()> {
        let now = Utc::now().timestamp();
        let counters = self.counters_of(action, subjects, now);
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
                let wait = counter.window + counter.rule.period_seconds - now;
                longest_wait = longest_wait.max(Some(wait));
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
                let subject = subject_of(rule, subjects)?;
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
                if let Some((start, count)) = lock(map).get_mut(bucket)
                    && *start == window
                {
                    *count = count.saturating_sub(1);
                }
            }
            Counters::Database(db) => store::rate_limits::decrement(db, bucket, window).await?,
        }
        Ok(())
    }

    /// The window's count, this hit included.
    async fn count(&self, bucket: &str, window: i64, now: i64, period: i64) -> Result<u32> {
        match &self.counters {
            Counters::Memory(map) => {
                let mut map = lock(map);
                // Forget ended windows now and then, so the map stays as small as the traffic.
                if map.len() > 10_000 {
                    map.retain(|_, (start, _)| *start + 86_400 > now);
                }
                let entry = map.entry(bucket.to_owned()).or_insert((window, 0));
                if entry.0 != window {
                    *entry = (window, 0);
                }
                entry.1 = entry.1.saturating_add(1);
                Ok(entry.1)
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
fn subject_of(rule: &Rule, subjects: &Subjects<'_>) -> Option<String> {
    match rule.per {
        Per::Ip => subjects.ip.map(|ip| ip.to_string()),
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
