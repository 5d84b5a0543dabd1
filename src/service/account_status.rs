//! Deactivating and reactivating accounts (`tessera users deactivate` / `activate`).
//!
//! A deactivated account cannot log in and every credential it held ends at once, in every
//! instance (a revocation); reactivating it does not bring those back: the person logs in anew.

use chrono::Utc;
use sea_orm::ConnectionTrait;

use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::email_address::normalize_email;
use crate::service::error::{Error, Result};
use crate::service::principal::User;
use crate::service::revocations::{Pending, Revoked};
use crate::store::credentials::CredentialRow;
use crate::store::{self, users::UserId};

impl Accounts {
    /// Sets whether the account with this email address may be used; `NotFound` when there is
    /// none.
    pub async fn set_active(&self, email: &str, active: bool, caller: &Caller) -> Result<User> {
        let email = normalize_email(email);
        let txn = store::begin_write(&self.db).await?;
        let Some(user) = store::users::lock_by_email(&txn, &email).await? else {
            return Err(Error::NotFound);
        };
        store::users::set_active(&txn, user.id, active).await?;
        let (event, revoked) = match active {
            true => (Event::Reactivation, None),
            false => {
                let revoked = self
                    .end_every_credential(&txn, user.id, "deactivated")
                    .await?;
                (Event::Deactivation, Some(revoked))
            }
        };
        self.audit
            .record_in(&txn, caller, Entry::success(event, user.id))
            .await?;
        txn.commit().await?;
        if let Some(revoked) = revoked {
            revoked.apply();
        }
        let mut user = User::from(user);
        user.is_active = active;
        Ok(user)
    }

    /// Ends every credential of the user in `db`'s transaction (`reason` goes on revoked
    /// refresh families) and records the revocation every instance hears, to apply once
    /// committed.
    pub(super) async fn end_every_credential<C: ConnectionTrait>(
        &self,
        db: &C,
        user_id: UserId,
        reason: &str,
    ) -> Result<Pending> {
        store::credentials::revoke_all(db, user_id, CredentialRow::Nothing, Utc::now(), reason)
            .await?;
        self.revocations
            .record(db, user_id, Revoked::Credentials)
            .await
    }
}
