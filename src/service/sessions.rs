//! Session mode: a server-side session per login, identified by a random cookie value whose
//! digest is stored. Every login gets a new id (no fixation); logout deletes the session.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use crate::secrets;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::credential_cache::{CredentialKey, Verified};
use crate::service::error::Result;
use crate::service::principal::{Credential, Principal, User};
use crate::service::revocations::Revoked;
use crate::store;

/// A session just opened: the cookie value (shown once) and when it ends at the latest.
pub struct OpenedSession {
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

impl Accounts {
    /// Opens a new session for the user. A session the client presented (`previous`) is
    /// deleted, so an id planted before login never becomes a logged-in one.
    pub async fn start_session(
        &self,
        user: &User,
        previous: Option<&str>,
        caller: &Caller,
    ) -> Result<OpenedSession> {
        let key = secrets::random_hex(32);
        let now = Utc::now();
        let lifetime = self.config.session.absolute_timeout_seconds;
        let expires_at = now + Duration::seconds(lifetime.min(i64::MAX as u64) as i64);
        let txn = store::begin_write(&self.db).await?;
        let mut revoked = None;
        if let Some(previous) = previous
            && let Some(owner) =
                store::sessions::delete_by_digest(&txn, &secrets::digest(previous)).await?
        {
            revoked = Some(
                self.revocations
                    .record(&txn, owner, Revoked::Credentials)
                    .await?,
            );
        }
        let digest = secrets::digest(&key);
        store::sessions::create(&txn, user.id, &digest, now, expires_at, &caller.into()).await?;
        txn.commit().await?;
        if let Some(revoked) = revoked {
            revoked.apply();
        }
        Ok(OpenedSession { key, expires_at })
    }

    /// The session's user, or `None` for an unknown, expired or idle session (DRF's
    /// `SessionAuthentication` treats those as anonymous, not as errors). From the credential
    /// cache when it can; activity is still written at most once a minute, for the idle limit.
    pub async fn authenticate_session(
        &self,
        key: &str,
        client: Option<IpAddr>,
    ) -> Result<Option<Principal>> {
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let idle = self.config.session.idle_timeout_seconds;
        let idle = Duration::seconds(idle.min(i64::MAX as u64 / 1000) as i64);
        let digest = secrets::digest(key);
        let load = async {
            let found = store::sessions::find_live(&self.db, &digest, Utc::now(), idle).await?;
            Ok(found
                .filter(|(_, user)| user.is_active)
                .map(|(session, user)| Verified {
                    principal: Principal {
                        user: user.into(),
                        credential: Credential::Session(session.id),
                    },
                    expires_at: Some(session.expires_at),
                    idle: Some((session.last_seen_at, idle)),
                    last_used: None,
                }))
        };
        let cache = self.revocations.cache();
        let Some(cached) = cache
            .authenticate(CredentialKey::Session(digest.clone()), client, load)
            .await?
        else {
            return Ok(None);
        };
        self.record_use(&cached).await;
        Ok(Some(cached.principal.clone()))
    }

    /// Deletes the session behind a cookie value (unknown values are ignored).
    pub async fn end_session(&self, key: &str, caller: &Caller) -> Result<()> {
        let txn = store::begin_write(&self.db).await?;
        let Some(user_id) = store::sessions::delete_by_digest(&txn, &secrets::digest(key)).await?
        else {
            return Ok(());
        };
        let revoked = self
            .revocations
            .record(&txn, user_id, Revoked::Credentials)
            .await?;
        let entry = Entry::success(Event::Logout, user_id).because("session");
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        revoked.apply();
        Ok(())
    }
}
