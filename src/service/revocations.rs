//! Revocations: how a change to a user's credentials or details reaches every instance's
//! credential cache.
//!
//! A use case that ends a credential or changes a user records a revocation in its own
//! transaction ([`Revocations::record`]) and applies it to this instance's cache once that
//! transaction has committed ([`Pending::apply`]): the very next request here reads the
//! database again. Other instances learn of it from the [`RevocationFeed`]: PostgreSQL's
//! `NOTIFY`, delivered at commit, within milliseconds; and a poll of the revocation log every
//! second, which covers the moments the listening connection is down. SQLite has one
//! instance, and the poll picks up what the command line (`tessera users deactivate`) records.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::{mpsc, watch};

use crate::service::credential_cache::CredentialCache;
use crate::service::error::Result;
use crate::store::revocations::{self, Revocation};
use crate::store::users::UserId;

/// How often the revocation log is read.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How far back each poll reads: a transaction may commit a little after its row's time, and
/// instances' clocks differ a little. Rows seen before are recognised by id.
const LOOKBACK: chrono::Duration = chrono::Duration::seconds(10);
/// How often old rows are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What a revocation says about the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Revoked {
    /// Their details changed: cached snapshots are stale, credentials still good.
    Profile,
    /// Some or all of their credentials ended (logout, password change or reset,
    /// deactivation, refresh-token reuse).
    Credentials,
}

/// Records revocations and applies them to this instance's cache.
#[derive(Clone)]
pub struct Revocations {
    cache: Arc<CredentialCache>,
}

/// A recorded revocation, to apply once its transaction has committed (before that, a
/// request could reload the old state and cache it as new).
#[must_use = "apply it once the transaction has committed"]
pub struct Pending {
    cache: Arc<CredentialCache>,
    user: UserId,
    ended_at: Option<DateTime<Utc>>,
}

impl Pending {
    pub fn apply(self) {
        self.cache.revoke(self.user, self.ended_at);
    }
}

impl Revocations {
    pub fn new(cache: Arc<CredentialCache>) -> Self {
        Self { cache }
    }

    pub fn cache(&self) -> &CredentialCache {
        &self.cache
    }

    /// Writes the revocation into `db` (a transaction, usually) for every instance to see.
    pub async fn record<C: ConnectionTrait>(
        &self,
        db: &C,
        user: UserId,
        what: Revoked,
    ) -> Result<Pending> {
        let now = Utc::now();
        revocations::record(db, user, what.into(), now).await?;
        Ok(Pending {
            cache: self.cache.clone(),
            user,
            ended_at: (what == Revoked::Credentials).then_some(now),
        })
    }

    fn apply(&self, row: &Revocation) {
        // A kind this version does not know is treated as the stronger one.
        let what = row.kind.parse().unwrap_or(Revoked::Credentials);
        let ended_at = (what == Revoked::Credentials).then_some(row.created_at);
        self.cache.revoke(row.user_id, ended_at);
    }
}

/// The background task that applies other instances' revocations to this one.
pub struct RevocationFeed {
    db: DatabaseConnection,
    database_url: String,
    revocations: Revocations,
    /// Rows older than this are deleted: the longest any of them can matter (an access token's
    /// lifetime, for tokens without a family), with a margin.
    retention: chrono::Duration,
    /// Rows applied recently, by id, so poll and notification apply each once.
    applied: HashMap<i64, Instant>,
}

impl RevocationFeed {
    pub fn new(
        db: DatabaseConnection,
        database_url: &str,
        revocations: Revocations,
        access_lifetime_seconds: u64,
    ) -> Self {
        let lifetime = chrono::Duration::seconds(access_lifetime_seconds.min(86_400 * 365) as i64);
        Self {
            db,
            database_url: database_url.to_owned(),
            revocations,
            retention: lifetime.max(chrono::Duration::minutes(10)) + chrono::Duration::minutes(1),
            applied: HashMap::new(),
        }
    }

    /// Applies what was recorded within the retention period (before this instance started):
    /// an access token without a family may still be refused for a password changed then.
    pub async fn replay(&mut self) -> Result<()> {
        let rows = revocations::since(&self.db, Utc::now() - self.retention).await?;
        for row in &rows {
            self.apply(row);
        }
        Ok(())
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let (notified, mut notifications) = mpsc::channel(1024);
        let listener = (self.db.get_database_backend() == DbBackend::Postgres)
            .then(|| tokio::spawn(listen(self.database_url.clone(), notified)));
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                Some(row) = notifications.recv() => self.apply(&row),
                _ = poll.tick() => {
                    if let Err(err) = self.poll().await {
                        tracing::warn!(error = %err, "could not read the revocation log");
                    }
                }
                _ = prune.tick() => {
                    let before = Utc::now() - self.retention;
                    if let Err(err) = revocations::prune(&self.db, before).await {
                        tracing::warn!(error = %err, "could not prune the revocation log");
                    }
                    let forget = Instant::now() - Duration::from_secs(60);
                    self.applied.retain(|_, at| *at > forget);
                }
            }
        }
        if let Some(listener) = listener {
            listener.abort();
        }
    }

    async fn poll(&mut self) -> Result<()> {
        for row in revocations::since(&self.db, Utc::now() - LOOKBACK).await? {
            self.apply(&row);
        }
        Ok(())
    }

    fn apply(&mut self, row: &Revocation) {
        if self.applied.insert(row.id, Instant::now()).is_none() {
            self.revocations.apply(row);
        }
    }
}

/// Forwards notifications to `notified`, reconnecting whenever the connection fails.
async fn listen(url: String, notified: mpsc::Sender<Revocation>) {
    loop {
        match revocations::listen(&url).await {
            Ok(mut listener) => loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Some(row) = revocations::parse_payload(notification.payload())
                            && notified.send(row).await.is_err()
                        {
                            return;
                        }
                    }
                    // The connection dropped; the listener has reconnected (or will on the
                    // next call). What was sent meanwhile, the poll finds.
                    Ok(None) => tracing::warn!("revocation listener reconnected"),
                    Err(err) => {
                        tracing::warn!(error = %err, "revocation listener failed; reconnecting");
                        break;
                    }
                }
            },
            Err(err) => tracing::warn!(error = %err, "revocation listener could not connect"),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
