//! The audit trail: every authentication event, as a row in `audit_events` and a line in the
//! structured log (target `tessera::audit`).
//!
//! An entry says what happened (event, outcome, a one-word reason), to whom when known, and
//! from where (IP and user agent). It never holds a password, token, key or link, nor an
//! identifier typed at a failed login: people type passwords into the email field.

use crate::metrics::SharedMetrics;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::service::error::Result;
use crate::store;
use crate::store::audit_events::NewAuditEvent;
use crate::store::users::UserId;

/// A caller's user agent is cut to this many characters once, here: the narrowest column that
/// keeps one (credentials' `varchar(255)`, migration 000009; the audit trail's holds 256), so
/// no later write can be refused for its length (PostgreSQL would fail the login).
const USER_AGENT_MAX_CHARS: usize = 255;

/// How often one instance deletes events older than the retention period.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Who is at the other end of a request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The client's address (see `server.trusted_proxies`).
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The HTTP request's id (`X-Request-Id`), when the call came over HTTP.
    pub request_id: Option<String>,
}

impl Caller {
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| ua.chars().take(USER_AGENT_MAX_CHARS).collect::<String>())
            .filter(|ua| !ua.is_empty());
        Self {
            ip,
            user_agent,
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, request_id: Option<&str>) -> Self {
        self.request_id = request_id.map(str::to_owned);
        self
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Event {
    Login,
    Logout,
    Registration,
    /// An address was confirmed (by its key, or by an operator: `tessera users verify-email`,
    /// reason `operator`).
    EmailVerification,
    /// The password changed: by its owner, or set by an operator (`tessera users
    /// set-password`, reason `operator`).
    PasswordChange,
    PasswordReset,
    /// A rotated-out refresh token came back: its family was revoked.
    RefreshTokenReuse,
    /// A request was refused by `rate_limits`; the reason names the action.
    RateLimit,
    /// An operator deactivated the account (`tessera users deactivate`); its credentials ended.
    Deactivation,
    /// An operator reactivated the account (`tessera users activate`).
    Reactivation,
    /// TOTP was switched on (or a code to switch it on was wrong).
    MfaActivation,
    /// MFA was switched off, by the user or an operator (`tessera mfa disable`).
    MfaDeactivation,
    RecoveryCodesRegenerated,
    /// The password was proved again for a guarded action (`reauthenticate/`).
    Reauthentication,
    /// The user added an email address (`emails/`); reason `email_taken` when another account
    /// holds it (the client is not told, under `account.prevent_enumeration`).
    EmailAdded,
    /// The user removed one of their email addresses, or a change (`account.change_email`)
    /// replaced it (reason `changed`).
    EmailRemoved,
    /// Another of the user's addresses became the primary one.
    EmailPrimaryChanged,
    /// The user ended one of their credentials (`sessions/{id}/`; the reason names its kind)
    /// or all but the current one (`sessions/`; reason `all_others`), or an operator ended
    /// them all (`tessera users logout`; reason `operator`).
    SessionEnded,
    /// The user deleted their account (reason `deleted` or `deactivated`, as
    /// `account.deletion` says; the entry carries no address or user agent), or an operator
    /// did (`tessera users delete`; user agent `tessera command line`).
    AccountDeleted,
    /// The user exported their data (`user/export/`).
    AccountExported,
    /// `tessera import-django` brought the account from a Django database.
    AccountImported,
    /// A login through an identity provider (`social/{id}/`, the redirect flow); reason
    /// `signup` when it created the account, `email_link` when it linked the provider's
    /// account to the one holding its verified address; failures say why.
    SocialLogin,
    /// The user linked an identity provider's account (`social/{id}/connect/`).
    SocialAccountConnected,
    /// The user unlinked one (`socialaccounts/{id}/disconnect/`).
    SocialAccountDisconnected,
}

impl Event {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    /// Refused before it was attempted (a rate limit, a revoked token family).
    Blocked,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One entry, before it is written.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub event: Event,
    pub outcome: Outcome,
    pub reason: Option<&'static str>,
    pub user_id: Option<UserId>,
}

impl Entry {
    pub fn success(event: Event, user_id: UserId) -> Self {
        Self {
            event,
            outcome: Outcome::Success,
            reason: None,
            user_id: Some(user_id),
        }
    }

    /// Adds a reason (which credential a logout ended, say).
    pub fn because(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn failure(event: Event, reason: &'static str, user_id: Option<UserId>) -> Self {
        Self {
            event,
            outcome: Outcome::Failure,
            reason: Some(reason),
            user_id,
        }
    }

    pub fn blocked(event: Event, reason: &'static str, user_id: Option<UserId>) -> Self {
        Self {
            event,
            outcome: Outcome::Blocked,
            reason: Some(reason),
            user_id,
        }
    }
}

/// Writes entries; keeps `audit.retention_days` of them.
#[derive(Clone)]
pub struct AuditTrail {
    db: DatabaseConnection,
    retention_days: u32,
    last_sweep: Arc<Mutex<Option<Instant>>>,
    metrics: Option<SharedMetrics>,
}

impl AuditTrail {
    pub fn new(db: DatabaseConnection, retention_days: u32) -> Self {
        Self {
            db,
            retention_days,
            last_sweep: Arc::default(),
            metrics: None,
        }
    }

    /// Counts logins (by outcome and reason) and registrations in `metrics`, as recorded here.
    pub fn instrumented(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Logs the entry and stores it. A failed write is an error: an event that cannot be
    /// recorded does not pass unrecorded.
    pub async fn record(&self, caller: &Caller, entry: Entry) -> Result<()> {
        self.record_in(&self.db, caller, entry).await
    }

    /// As `record`, in the caller's transaction: the entry commits, or not, with the event.
    pub async fn record_in<C: ConnectionTrait>(
        &self,
        db: &C,
        caller: &Caller,
        entry: Entry,
    ) -> Result<()> {
        tracing::info!(
            target: "tessera::audit",
            event = entry.event.name(),
            outcome = entry.outcome.name(),
            reason = entry.reason,
            user_id = entry.user_id.map(|id| id.0),
            ip = caller.ip.map(tracing::field::display),
            // Debug-formatted: a client-chosen string cannot forge log lines.
            user_agent = caller.user_agent.as_deref().map(tracing::field::debug),
            request_id = caller.request_id.as_deref(),
            "audit event"
        );
        if let Some(metrics) = &self.metrics {
            match (entry.event, entry.outcome) {
                (Event::Login, outcome) => metrics.record_login(outcome.name(), entry.reason),
                (Event::Registration, Outcome::Success) => {
                    metrics.registrations.inc();
                }
                // Through an identity provider: one reason label for all of them, so the
                // password logins' reasons keep their meaning.
                (Event::SocialLogin, outcome) => {
                    metrics.record_login(outcome.name(), Some("social"));
                    if outcome == Outcome::Success && entry.reason == Some("signup") {
                        metrics.registrations.inc();
                    }
                }
                _ => {}
            }
        }
        let now = Utc::now();
        store::audit_events::insert(
            db,
            NewAuditEvent {
                at: now,
                event: entry.event.name(),
                outcome: entry.outcome.name(),
                reason: entry.reason,
                user_id: entry.user_id,
                ip: caller.ip.map(|ip| ip.to_string()),
                user_agent: caller.user_agent.as_deref(),
                request_id: caller.request_id.as_deref(),
            },
        )
        .await?;
        // On the same connection: a second one would wait for this transaction's write lock.
        self.sweep_now_and_then(db, now).await
    }

    async fn sweep_now_and_then<C: ConnectionTrait>(
        &self,
        db: &C,
        now: chrono::DateTime<Utc>,
    ) -> Result<()> {
        if self.retention_days == 0 {
            return Ok(());
        }
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let cutoff = now - chrono::Duration::days(i64::from(self.retention_days));
        let deleted = store::audit_events::delete_before(db, cutoff).await?;
        if deleted > 0 {
            tracing::info!(deleted, "audit events past audit.retention_days deleted");
        }
        Ok(())
    }
}

/// An entry as `tessera audit` shows it, with the account's current address.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub at: chrono::DateTime<Utc>,
    pub event: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub user_id: Option<UserId>,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The newest `limit` entries, oldest first: of the account with `email` when given (an error
/// when there is none), of everyone otherwise.
pub async fn history(
    db: &DatabaseConnection,
    email: Option<&str>,
    limit: u64,
) -> Result<Vec<Recorded>> {
    let user_id = match email {
        Some(email) => {
            let email = crate::service::email_address::normalize_email(email);
            let Some(user) = store::users::find_by_email(db, &email).await? else {
                return Err(crate::service::error::Error::NotFound);
            };
            Some(user.id)
        }
        None => None,
    };
    let rows = store::audit_events::latest(db, user_id, limit).await?;
    let mut emails = std::collections::HashMap::new();
    let mut recorded = Vec::with_capacity(rows.len());
    for row in rows {
        let email = match row.user_id {
            Some(id) => match emails.get(&id) {
                Some(email) => Clone::clone(email),
                None => {
                    let email = store::users::find_by_id(db, id).await?.map(|u| u.email);
                    emails.insert(id, email.clone());
                    email
                }
            },
            None => None,
        };
        recorded.push(Recorded {
            at: row.created_at,
            event: row.event,
            outcome: row.outcome,
            reason: row.reason,
            user_id: row.user_id,
            email,
            ip: row.ip,
            user_agent: row.user_agent,
        });
    }
    Ok(recorded)
}
