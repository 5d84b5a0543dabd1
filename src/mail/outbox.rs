//! The outbox: render a message and store it inside the caller's transaction; a background
//! worker delivers it after commit, retrying with exponential backoff.
//!
//! A request never waits for mail: an SMTP server that is down, slow or refusing only delays
//! delivery. Nothing is lost while the database keeps the row.

use crate::metrics::SharedMetrics;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::outbox_message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tokio::sync::{Notify, watch};

use crate::config::EmailConfig;
use crate::mail::templates::{TemplateError, Templates};
use crate::mail::transport::{DeliveryError, Transport};
use crate::mail::{MailKind, Rendered};
use crate::store::outbox::{self as store, NewMessage};

/// How long a claimed message is reserved for the worker that claimed it. Longer than any
/// single SMTP attempt may take, so two instances never send the same message at once.
const CLAIM_LEASE: Duration = Duration::from_secs(300);
/// How long a delivered message's worker keeps trying to record it while the database is
/// away (within the 30 s that shutdown gives the worker).
const RECORD_PATIENCE: Duration = Duration::from_secs(20);
/// Messages claimed per round.
const BATCH: u64 = 20;
/// The longest the worker sleeps before looking again (another instance may have queued mail).
const MAX_IDLE: Duration = Duration::from_secs(5);

/// Queues messages. Cheap to clone; shared by the services.
#[derive(Clone)]
pub struct Outbox {
    templates: Arc<Templates>,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(templates: Templates) -> Self {
        Self {
            templates: Arc::new(templates),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Renders `kind` for `recipient` and stores it through `db` (the caller's transaction).
    /// Call `wake` after the transaction commits.
    pub async fn enqueue<C: ConnectionTrait>(
        &self,
        db: &C,
        kind: MailKind,
        recipient: &str,
        context: &serde_json::Value,
    ) -> Result<(), OutboxError> {
        let rendered = self.templates.render(kind, context)?;
        store::enqueue(
            db,
            NewMessage {
                kind: kind.as_str(),
                recipient,
                subject: &rendered.subject,
                text_body: &rendered.text,
                html_body: &rendered.html,
            },
            Utc::now(),
        )
        .await?;
        Ok(())
    }

    /// Tells this instance's worker that new mail is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Retry timing: the delay doubles from `initial` up to `max`; after `give_up_after` since the
/// message was queued, it is marked failed with the last error.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub give_up_after: Duration,
}

impl RetryPolicy {
    pub fn from_config(config: &EmailConfig) -> Self {
        Self {
            initial: Duration::from_secs_f64(config.retry_initial_seconds),
            max: Duration::from_secs_f64(config.retry_max_seconds),
            give_up_after: Duration::from_secs(config.give_up_after_seconds),
        }
    }

    /// The wait after the `attempts`-th failure (1 = first).
    pub fn delay(&self, attempts: i32) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
        self.initial
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max)
    }
}

/// Delivers queued mail until shut down.
pub struct OutboxWorker {
    db: DatabaseConnection,
    transport: Arc<Transport>,
    from: String,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    metrics: Option<SharedMetrics>,
}

impl OutboxWorker {
    /// Counts deliveries and failed attempts in `metrics`.
    pub fn instrumented(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn new(
        db: DatabaseConnection,
        outbox: &Outbox,
        transport: Arc<Transport>,
        config: &EmailConfig,
    ) -> Self {
        Self {
            db,
            transport,
            from: config.from.to_string(),
            policy: RetryPolicy::from_config(config),
            wake: outbox.notifier(),
            metrics: None,
        }
    }

    /// Runs until `shutdown` turns true; a message being sent is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let idle = match self.deliver_due().await {
                Ok(delivered) if delivered as u64 == BATCH => Duration::ZERO,
                Ok(_) => self.idle_time().await,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox: cannot read queued mail");
                    MAX_IDLE
                }
            };
            if idle.is_zero() {
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::debug!("outbox worker stopped");
    }

    /// Time until the next message falls due, within `MAX_IDLE`.
    async fn idle_time(&self) -> Duration {
        match store::next_due_at(&self.db).await {
            Ok(Some(due)) => (due - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_IDLE),
            _ => MAX_IDLE,
        }
        // A message claimed by a crashed instance is due again when its lease ends; MAX_IDLE
        // bounds the wait for that too.
        .max(Duration::from_millis(20))
    }

    /// Claims and attempts every message due now (up to a batch); returns how many it tried.
    pub async fn deliver_due(&self) -> Result<usize, DbErr> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(CLAIM_LEASE).unwrap_or_default();
        let mut tried = 0;
        for id in store::due(&self.db, now, BATCH).await? {
            let Some(message) = store::claim(&self.db, id, now, now + lease).await? else {
                continue; // another instance took it
            };
            tried += 1;
            self.attempt(message).await?;
        }
        Ok(tried)
    }

    async fn attempt(&self, message: outbox_message::Model) -> Result<(), DbErr> {
        let rendered = Rendered {
            subject: message.subject.clone(),
            text: message.text_body.clone(),
            html: message.html_body.clone(),
        };
        let attempts = message.attempts + 1;
        let result = self
            .transport
            .send(&self.from, &message.recipient, &rendered)
            .await;
        let now = Utc::now();
        match result {
            Ok(()) => {
                tracing::info!(id = message.id, kind = %message.kind, attempts, "mail delivered");
                let recorded = self.record_sent(&message, attempts).await;
                // Counted once recorded, so a scrape that sees the delivery also sees the
                // backlog without it (the mail is out either way).
                if let Some(metrics) = &self.metrics {
                    metrics.outbox_deliveries.inc();
                }
                recorded
            }
            Err(err) => {
                if let Some(metrics) = &self.metrics {
                    metrics.outbox_failed_attempts.inc();
                }
                self.failed(&message, attempts, now, &err).await
            }
        }
    }

    /// Records a delivery. The message is already out, so while the database is unreachable
    /// this keeps trying for [`RECORD_PATIENCE`]: a short outage must not become a second copy
    /// when the claim lapses. A goodbye to a deleted account is removed instead: nothing that
    /// names the user may stay behind.
    async fn record_sent(
        &self,
        message: &outbox_message::Model,
        attempts: i32,
    ) -> Result<(), DbErr> {
        let id = message.id;
        let goodbye = message.kind == MailKind::AccountDeleted.as_str();
        let deadline = std::time::Instant::now() + RECORD_PATIENCE;
        loop {
            let recorded = match goodbye {
                true => store::delete(&self.db, id).await,
                false => store::mark_sent(&self.db, id, attempts, Utc::now()).await,
            };
            match recorded {
                Err(err)
                    if crate::store::is_unavailable(&err)
                        && std::time::Instant::now() < deadline =>
                {
                    tracing::warn!(id, error = %err, "cannot record a delivered message yet");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                recorded => return recorded,
            }
        }
    }

    async fn failed(
        &self,
        message: &outbox_message::Model,
        attempts: i32,
        now: DateTime<Utc>,
        err: &DeliveryError,
    ) -> Result<(), DbErr> {
        let age = (now - message.created_at).to_std().unwrap_or_default();
        if age >= self.policy.give_up_after {
            let reason = format!(
                "gave up after {attempts} attempt(s) over {}s: {err}",
                age.as_secs()
            );
            tracing::error!(id = message.id, kind = %message.kind, attempts, error = %err, "mail undeliverable; giving up");
            return store::give_up(&self.db, message.id, attempts, now, &reason).await;
        }
        let delay = self.policy.delay(attempts);
        tracing::warn!(
            id = message.id,
            kind = %message.kind,
            attempts,
            retry_in_seconds = delay.as_secs_f64(),
            error = %err,
            "mail delivery failed; will retry"
        );
        let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
        store::reschedule(&self.db, message.id, attempts, next, &err.to_string()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(60),
            give_up_after: Duration::from_secs(3600),
        };
        let delays: Vec<u64> = (1..=6).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(policy.delay(1000), Duration::from_secs(60), "no overflow");
    }
}
