//! Email verification: confirmation keys sent at signup and on request, confirmed by POST.

use chrono::{Duration, Utc};
use sea_orm::ConnectionTrait;

use crate::mail::MailKind;
use crate::secrets;
use crate::service::accounts::{Accounts, human_duration, user_context};
use crate::service::audit::{Caller, Entry, Event};
use crate::service::email_address::normalize_email;
use crate::service::email_addresses::OldPrimary;
use crate::service::error::{Error, Result};
use crate::service::principal::User;
use crate::service::rate_limits::Action;
use crate::store;
use crate::store::email_addresses::EmailAddress;

impl Accounts {
    /// Makes a new confirmation key for the address and queues its email to that address, in
    /// `db`'s transaction. `user` is the address's owner.
    pub(super) async fn queue_confirmation<C: ConnectionTrait>(
        &self,
        db: &C,
        user: &User,
        address: &EmailAddress,
    ) -> Result<()> {
        let key = secrets::random_hex(32);
        let now = Utc::now();
        let days = self.config.account.email_confirmation_expire_days;
        let expires_at = now + Duration::days(i64::from(days));
        store::email_confirmations::insert(db, address.id, &secrets::digest(&key), now, expires_at)
            .await?;
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": address.email,
            "user": user_context(user),
            "activate_url": self.config.verify_email_link(&key),
            "key": key,
            "expires_in": human_duration(u64::from(days) * 86_400),
        });
        self.outbox
            .enqueue(db, MailKind::EmailConfirmation, &address.email, &context)
            .await?;
        Ok(())
    }

    /// Confirms the address a key was sent to. Unknown, expired and used keys are `NotFound`,
    /// and so is a key for an address another account holds by now (its primary address, or
    /// confirmed first): the key is not spent. Under `account.change_email` a confirmed
    /// address that is not primary replaces the primary one.
    pub async fn confirm_email(&self, key: &str, caller: &Caller) -> Result<()> {
        let txn = store::begin_write(&self.db).await?;
        let now = Utc::now();
        let Some(address_id) =
            store::email_confirmations::consume(&txn, &secrets::digest(key.trim()), now).await?
        else {
            return Err(Error::NotFound);
        };
        let Some(address) = store::email_addresses::find_by_id(&txn, address_id).await? else {
            return Err(Error::NotFound);
        };
        let user_id = address.user_id;
        let taken = Entry::failure(Event::EmailVerification, "email_taken", Some(user_id));
        if !address.verified {
            let owner =
                store::users::find_owner_of_email(&txn, &address.email, Some(user_id)).await?;
            let verified = match owner {
                Some(_) => false,
                None => match store::email_addresses::mark_verified(&txn, address.id).await {
                    Ok(()) => true,
                    // Another account confirmed it at the same moment.
                    Err(err) if store::is_unique_violation(&err) => false,
                    Err(err) => return Err(err.into()),
                },
            };
            if !verified {
                txn.rollback().await?;
                self.audit.record(caller, taken).await?;
                return Err(Error::NotFound);
            }
        }
        let entry = Entry::success(Event::EmailVerification, user_id);
        self.audit.record_in(&txn, caller, entry).await?;
        let mut revoked = None;
        if self.config.account.change_email && !address.is_primary {
            let Some(user) = store::users::lock_by_id(&txn, user_id).await? else {
                return Err(Error::NotFound);
            };
            let switched = self
                .switch_primary(&txn, &user.into(), &address, OldPrimary::Remove, caller)
                .await?;
            let Some(pending) = switched else {
                txn.rollback().await?;
                self.audit.record(caller, taken).await?;
                return Err(Error::NotFound);
            };
            revoked = Some(pending);
        }
        txn.commit().await?;
        if let Some(revoked) = revoked {
            revoked.apply();
        }
        self.outbox.wake();
        Ok(())
    }

    /// The address a live key was sent to, leaving the key unused: what the confirmation page
    /// shows before its POST confirms (mail scanners open links, so opening one must not
    /// confirm). `None` for an unknown, expired or used key.
    pub async fn address_to_confirm(&self, key: &str) -> Result<Option<String>> {
        let digest = secrets::digest(key.trim());
        let Some(address_id) =
            store::email_confirmations::find_live(&self.db, &digest, Utc::now()).await?
        else {
            return Ok(None);
        };
        let address = store::email_addresses::find_by_id(&self.db, address_id).await?;
        Ok(address.map(|address| address.email))
    }

    /// Sends a new confirmation key when the address is waiting to be confirmed, within
    /// `rate_limits.confirm_email` per address. The caller answers the same in every case.
    ///
    /// The key goes to the account whose primary address it is, else to the one that added it
    /// first; nothing is sent once any account has confirmed it.
    pub async fn resend_confirmation(&self, email: &str, caller: &Caller) -> Result<()> {
        let email = normalize_email(email);
        // Check and send under the address's row locks: concurrent resends take turns, so the
        // limit holds however many arrive at once.
        let txn = store::begin_write(&self.db).await?;
        let rows = store::email_addresses::lock_all_with_email(&txn, &email).await?;
        if rows.iter().any(|address| address.verified) {
            return Ok(());
        }
        let Some(address) = rows.into_iter().next() else {
            return Ok(());
        };
        // `confirm_email` (allauth: 1/180s/key), counted from the confirmations actually sent
        // (signup's included) under the row lock, so it holds across instances and races.
        if let Some(rule) = self.limits.key_rule(Action::ConfirmEmail) {
            let since = Utc::now() - Duration::seconds(rule.period_seconds);
            let sent = store::email_confirmations::count_since(&txn, address.id, since).await?;
            if sent >= u64::from(rule.amount) {
                txn.rollback().await?;
                let entry = Entry::blocked(
                    Event::RateLimit,
                    Action::ConfirmEmail.name(),
                    Some(address.user_id),
                );
                return self.audit.record(caller, entry).await;
            }
        }
        let Some(user) = store::users::find_by_id(&txn, address.user_id).await? else {
            return Ok(());
        };
        self.queue_confirmation(&txn, &user.into(), &address)
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}
