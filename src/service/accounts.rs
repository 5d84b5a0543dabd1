//! The account service: what every use case shares (database, configuration, hasher, mail,
//! limits, audit trail). The user and the caller's credential are in `principal`.
//!
//! The use cases themselves live in files named for them (`registration`, `login`, `profile`,
//! `password_change`, `password_reset`, `email_verification`, and the credentials: `tokens`,
//! `sessions`, `jwt`). Each owns its transaction and speaks in plain Rust types; `api` turns
//! them into HTTP.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::mail::outbox::Outbox;
use crate::messages::*;
use crate::metrics::SharedMetrics;
use crate::service::audit::{AuditTrail, Caller, Entry, Event};
use crate::service::credential_cache::CredentialCache;
use crate::service::error::{Error, Result};
use crate::service::password_hashing::PasswordHasher;
use crate::service::password_validation::PasswordPolicy;
use crate::service::principal::User;
use crate::service::rate_limits::{Action, RateLimiter, Subjects};
use crate::service::revocations::Revocations;
use crate::service::sealing::Sealer;
use crate::service::social::{FetchOptions, SocialClients};
use crate::service::usernames;
use crate::store::{self, users::UserId};

pub const MAX_NAME_LENGTH: usize = 150;

/// The account service. Cheap to clone (one shared reference): the HTTP layer hands a copy
/// to every request.
#[derive(Clone)]
pub struct Accounts(Arc<Shared>);

/// What every use case works with; reached through `Accounts` by `Deref`.
pub struct Shared {
    pub(super) db: DatabaseConnection,
    pub(super) config: Arc<Config>,
    pub(super) hasher: PasswordHasher,
    pub(super) policy: PasswordPolicy,
    pub(super) outbox: Outbox,
    pub(super) limits: RateLimiter,
    pub(super) audit: AuditTrail,
    pub(super) revocations: Revocations,
    pub(super) metrics: SharedMetrics,
    /// Seals MFA secrets; its key is derived from `secret_key` once, here.
    pub(super) sealer: Option<Sealer>,
    /// The identity providers of `social.providers`.
    pub(super) social: SocialClients,
}

impl std::ops::Deref for Accounts {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Accounts {
    pub fn new(
        db: DatabaseConnection,
        config: Arc<Config>,
        hasher: PasswordHasher,
        outbox: Outbox,
        metrics: SharedMetrics,
    ) -> Result<Self> {
        let policy = PasswordPolicy {
            min_length: config.account.password_min_length,
        };
        let limits =
            RateLimiter::new(&config.rate_limits, db.clone()).instrumented(metrics.clone());
        let audit =
            AuditTrail::new(db.clone(), config.audit.retention_days).instrumented(metrics.clone());
        let revocations =
            Revocations::new(Arc::new(CredentialCache::new(&config, metrics.clone())));
        let hasher = hasher.instrumented(metrics.clone());
        let sealer = config
            .secret_key
            .as_ref()
            .map(|key| Sealer::new(secrecy::ExposeSecret::expose_secret(key).as_bytes()));
        let social = SocialClients::new(&config.social.providers, FetchOptions::default());
        Ok(Self(Arc::new(Shared {
            db,
            config,
            hasher,
            policy,
            outbox,
            limits,
            audit,
            revocations,
            metrics,
            sealer,
            social,
        })))
    }

    /// Seals secrets and names rows in public; its key is `secret_key`'s.
    pub(super) fn sealer(&self) -> Result<&Sealer> {
        self.sealer
            .as_ref()
            .ok_or_else(|| Error::Internal("secret_key is not set".into()))
    }

    /// This instance's metrics (`/metrics`).
    pub fn metrics(&self) -> &SharedMetrics {
        &self.metrics
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Fetches the identity providers' documents ahead of the first sign-in.
    pub async fn warm_up_social_providers(&self) {
        self.social.warm_up().await;
    }

    /// Where this instance records revocations and keeps its credential cache.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Counts a hit of `action`; a refusal is recorded in the audit trail, once per action,
    /// caller and window (a flood of refusals writes nothing more).
    pub(super) async fn limit(
        &self,
        action: Action,
        subjects: &Subjects<'_>,
        caller: &Caller,
        user_id: Option<UserId>,
    ) -> Result<()> {
        let result = self.limits.hit(action, subjects).await;
        if let Err(Error::Throttled { wait_seconds }) = result
            && self
                .limits
                .first_refusal(action, caller.ip, user_id, wait_seconds)
        {
            self.audit
                .record(
                    caller,
                    Entry::blocked(Event::RateLimit, action.name(), user_id),
                )
                .await?;
        }
        result
    }

    /// `limit` for an action counted by the caller's address alone.
    pub(super) async fn limit_by_ip(&self, action: Action, caller: &Caller) -> Result<()> {
        let subjects = Subjects {
            ip: caller.ip,
            ..Default::default()
        };
        self.limit(action, &subjects, caller, None).await
    }

    /// Why `username` cannot be used by `owner` (None: it can).
    pub(super) async fn username_problem(
        &self,
        username: &str,
        owner: Option<UserId>,
    ) -> Result<Option<String>> {
        if username.chars().count() > usernames::MAX_LENGTH {
            return Ok(Some(too_long(usernames::MAX_LENGTH)));
        }
        if !usernames::is_valid(username) {
            return Ok(Some(USERNAME_INVALID.into()));
        }
        if store::users::username_taken(&self.db, username, owner).await? {
            return Ok(Some(USERNAME_TAKEN.into()));
        }
        Ok(None)
    }
}

/// The `user` object templates see.
pub(super) fn user_context(user: &User) -> serde_json::Value {
    serde_json::json!({
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    })
}

/// "3 days", "1 hour", "90 seconds": for "this link expires in ..." sentences.
pub(super) fn human_duration(seconds: u64) -> String {
    let (count, unit) = match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}
