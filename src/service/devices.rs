//! Devices and sessions: every live credential of a user (a token, a cookie session, a JWT
//! refresh family), listed under an opaque public id, with where it was issued and when it
//! was last used; ending one, or all but the one making the request.

use chrono::{DateTime, Duration, Utc};

use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::credential_cache::Cached;
use crate::service::error::{Error, Result};
use crate::service::principal::Principal;
use crate::service::revocations::Revoked;
use crate::store::{
    self,
    credentials::{CredentialRow, LiveCredential, Origin, TOUCH_EVERY},
    users::UserId,
};

/// What kind of credential a device holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Token,
    Session,
    /// A JWT refresh family: its refresh token and the access tokens it mints.
    Jwt,
}

impl DeviceKind {
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Token => "token",
            DeviceKind::Session => "session",
            DeviceKind::Jwt => "jwt",
        }
    }
}

/// One live credential as its owner sees it. No secret: `id` is a public name.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub kind: DeviceKind,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The client address and user agent of the login that created it.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The credential of the request that asked.
    pub current: bool,
}

/// The caller's user agent fits the credential columns already (`Caller::new` cuts it).
impl From<&Caller> for Origin {
    fn from(caller: &Caller) -> Self {
        Origin {
            ip: caller.ip.map(|ip| ip.to_string()),
            user_agent: caller.user_agent.clone(),
        }
    }
}

fn kind_and_row_id(row: CredentialRow) -> Option<(DeviceKind, i64)> {
    match row {
        CredentialRow::Nothing => None,
        CredentialRow::Token(id) => Some((DeviceKind::Token, id.0)),
        CredentialRow::Session(id) => Some((DeviceKind::Session, id.0)),
        CredentialRow::RefreshFamily(id) => Some((DeviceKind::Jwt, id.0)),
    }
}

/// Which credentials a request ends.
enum Ending {
    One(CredentialRow),
    AllBut(CredentialRow),
}

/// A refresh family's `revoked_reason` when its owner ended it here.
const ENDED: &str = "ended_by_user";

impl Accounts {
    /// Records that a cached credential was used, at most once a minute per credential and
    /// instance: `last_used_at` costs no write per request. Bookkeeping, not the request's
    /// work: a database that takes no writes (read-only, full) must not refuse a read, so a
    /// failed write is logged and the request goes on.
    pub(crate) async fn record_use(&self, cached: &Cached) {
        let now = Utc::now();
        if cached.claim_touch(now, TOUCH_EVERY) {
            let row = cached.principal.credential.row();
            if let Err(err) = store::credentials::touch(&self.db, row, now).await {
                tracing::warn!(error = %err, "could not record a credential's last use");
            }
        }
    }

    /// Every live credential of the caller, newest first.
    pub async fn devices(&self, principal: &Principal) -> Result<Vec<Device>> {
        let live = self.live_credentials(principal.user.id).await?;
        let sealer = self.sealer()?;
        let current = principal.credential.row();
        Ok(live
            .into_iter()
            .filter_map(|credential| {
                let (kind, row_id) = kind_and_row_id(credential.row)?;
                Some(Device {
                    id: sealer.public_id(kind.name(), row_id),
                    kind,
                    created_at: credential.created_at,
                    last_used_at: credential.last_used_at,
                    ip: credential.origin.ip,
                    user_agent: credential.origin.user_agent,
                    current: credential.row == current,
                })
            })
            .collect())
    }

    /// Ends the caller's credential named `id` in every instance (a JWT family: its refresh
    /// token and its access tokens). `NotFound` for an id that is not one of the caller's live
    /// credentials.
    pub async fn end_device(&self, principal: &Principal, id: &str, caller: &Caller) -> Result<()> {
        let sealer = self.sealer()?;
        let found = self
            .live_credentials(principal.user.id)
            .await?
            .into_iter()
            .find_map(|credential| {
                let (kind, row_id) = kind_and_row_id(credential.row)?;
                (sealer.public_id(kind.name(), row_id) == id).then_some((kind, credential.row))
            });
        let Some((kind, row)) = found else {
            return Err(Error::NotFound);
        };
        self.end_credentials(principal, caller, Ending::One(row), kind.name())
            .await
    }

    /// Ends every credential of the caller but the one making the request. Guarded: the
    /// credential must have proved the password recently.
    pub async fn end_other_devices(&self, principal: &Principal, caller: &Caller) -> Result<()> {
        self.require_recent_password(principal).await?;
        let keep = principal.credential.row();
        self.end_credentials(principal, caller, Ending::AllBut(keep), "all_others")
            .await
    }

    /// Every live credential of the user, newest first.
    pub(super) async fn live_credentials(&self, user_id: UserId) -> Result<Vec<LiveCredential>> {
        let idle = self.config.session.idle_timeout_seconds;
        let idle = Duration::seconds(idle.min(i64::MAX as u64 / 1000) as i64);
        Ok(store::credentials::live_for_user(&self.db, user_id, Utc::now(), idle).await?)
    }

    /// Ends credentials in a transaction with the revocation every instance hears and the
    /// audit entry (`reason`: the kind ended, or `all_others`).
    async fn end_credentials(
        &self,
        principal: &Principal,
        caller: &Caller,
        ending: Ending,
        reason: &'static str,
    ) -> Result<()> {
        let user_id = principal.user.id;
        let txn = store::begin_write(&self.db).await?;
        let now = Utc::now();
        match ending {
            Ending::One(row) => store::credentials::end(&txn, row, now, ENDED).await?,
            Ending::AllBut(keep) => {
                store::credentials::revoke_all(&txn, user_id, keep, now, ENDED).await?
            }
        }
        let revoked = self
            .revocations
            .record(&txn, user_id, Revoked::Credentials)
            .await?;
        let entry = Entry::success(Event::SessionEnded, user_id).because(reason);
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        revoked.apply();
        Ok(())
    }
}
