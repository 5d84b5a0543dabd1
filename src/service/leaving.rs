//! Leaving: a user takes everything Tessera holds about them (the export) and deletes their
//! account (or, with `account.deletion = "deactivate"`, has it emptied and switched off).

use chrono::{DateTime, Utc};
use entity::audit_event;

use crate::config::AccountDeletion;
use crate::mail::MailKind;
use crate::messages::LAST_SUPERUSER;
use crate::service::accounts::{Accounts, user_context};
use crate::service::audit::{Caller, Entry, Event};
use crate::service::devices::Device;
use crate::service::email_addresses::Address;
use crate::service::error::{Error, Result};
use crate::service::mfa::MfaStatus;
use crate::service::principal::Principal;
use crate::service::revocations::Revoked;
use crate::store::{self, credentials::CredentialRow, users::UserId};

/// Everything Tessera holds about a user, secrets excepted: no password hash, no credential,
/// no digest, no TOTP secret or recovery code.
pub struct Export {
    pub user: entity::user::Model,
    pub email_addresses: Vec<Address>,
    pub sessions: Vec<Device>,
    pub mfa: MfaStatus,
    pub social_accounts: Vec<entity::social_account::Model>,
    pub audit_events: Vec<audit_event::Model>,
    pub exported_at: DateTime<Utc>,
}

impl Accounts {
    /// The caller's data. Guarded: the credential must have proved the password recently.
    pub async fn export(&self, principal: &Principal, caller: &Caller) -> Result<Export> {
        self.require_recent_password(principal).await?;
        let user_id = principal.user.id;
        self.audit
            .record(caller, Entry::success(Event::AccountExported, user_id))
            .await?;
        let user = store::users::find_by_id(&self.db, user_id)
            .await?
            .ok_or(Error::NotAuthenticated)?;
        Ok(Export {
            user,
            email_addresses: self.email_addresses(user_id).await?,
            sessions: self.devices(principal).await?,
            mfa: self.mfa_status(user_id).await?,
            social_accounts: store::social::list_for_user(&self.db, user_id).await?,
            audit_events: store::audit_events::of_user(&self.db, user_id).await?,
            exported_at: Utc::now(),
        })
    }

    /// Deletes the caller's account in one transaction, as `account.deletion` says. Every
    /// instance refuses its credentials at once (revocation events); a goodbye mail goes to
    /// the primary address; the audit trail keeps one `account_deleted` entry without
    /// personal data, and the user's older entries lose their address and user agent.
    /// Guarded; the last active superuser cannot delete itself (403).
    pub async fn delete_account(&self, principal: &Principal, caller: &Caller) -> Result<()> {
        self.require_recent_password(principal).await?;
        // The entry outlives the person: none of their client's details in it.
        let anonymous = Caller {
            ip: None,
            user_agent: None,
            request_id: caller.request_id.clone(),
        };
        let deletion = self.config.account.deletion;
        self.remove_account(principal.user.id, deletion, &anonymous)
            .await
    }

    /// `delete_account` without the guard, for its callers: the account goes as `deletion`
    /// says, and the `account_deleted` entry names `caller` as given. `NotAuthenticated` when
    /// it is gone already; `Forbidden(LAST_SUPERUSER)` for the last active superuser.
    pub(super) async fn remove_account(
        &self,
        user_id: UserId,
        deletion: AccountDeletion,
        caller: &Caller,
    ) -> Result<()> {
        let txn = store::begin_write(&self.db).await?;
        let user = store::users::lock_by_id(&txn, user_id)
            .await?
            .ok_or(Error::NotAuthenticated)?;
        // An inactive superuser is no administrator: removing one leaves the count as it was.
        if user.is_superuser && user.is_active && store::users::active_superusers(&txn).await? <= 1
        {
            return Err(Error::Forbidden(LAST_SUPERUSER));
        }
        let mut addresses: Vec<String> = store::email_addresses::of_user(&txn, user_id)
            .await?
            .into_iter()
            .map(|address| address.email)
            .collect();
        addresses.push(user.email.clone());
        // Mail waiting for (or kept from) the account's addresses goes; the goodbye is queued
        // after, and removed from the outbox once delivered.
        store::outbox::delete_to(&txn, &addresses).await?;
        let now = Utc::now();
        match deletion {
            AccountDeletion::Delete => store::users::delete(&txn, user_id).await?,
            AccountDeletion::Deactivate | AccountDeletion::Disabled => {
                store::credentials::revoke_all(
                    &txn,
                    user_id,
                    CredentialRow::Nothing,
                    now,
                    "account_deleted",
                )
                .await?;
                // Revoked families would keep the address and user agent of each login.
                store::refresh_tokens::delete_families_of_user(&txn, user_id).await?;
                store::email_addresses::delete_all_of_user(&txn, user_id).await?;
                store::mfa::remove_all(&txn, user_id).await?;
                store::social::delete_all_for_user(&txn, user_id).await?;
                store::password_resets::delete_for_user(&txn, user_id).await?;
                store::users::blank(&txn, user_id).await?;
            }
        }
        store::audit_events::forget_client(&txn, user_id).await?;
        let revoked = self
            .revocations
            .record(&txn, user_id, Revoked::Credentials)
            .await?;
        let reason = match deletion {
            AccountDeletion::Delete => "deleted",
            _ => "deactivated",
        };
        let entry = Entry::success(Event::AccountDeleted, user_id).because(reason);
        self.audit.record_in(&txn, caller, entry).await?;
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": user.email,
            "user": user_context(&user.clone().into()),
        });
        self.outbox
            .enqueue(&txn, MailKind::AccountDeleted, &user.email, &context)
            .await?;
        txn.commit().await?;
        revoked.apply();
        self.outbox.wake();
        Ok(())
    }
}
