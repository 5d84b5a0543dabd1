//! Email verification: confirmation keys sent at signup and on request, confirmed by POST.

use chrono::{Duration, Utc};
use entity::EmailAddressId;
use sea_orm::ConnectionTrait;

use crate::mail::MailKind;
use crate::secrets;
use crate::service::accounts::{Accounts, human_duration, user_context};
use crate::service::audit::{Caller, Entry, Event};
use crate::service::email_address::normalize_email;
use crate::service::error::{Error, Result};
use crate::service::principal::User;
use crate::service::rate_limits::Action;
use crate::store;

impl Accounts {
    /// Makes a new confirmation key for the address and queues its email, in `db`'s transaction.
    pub(super) async fn queue_confirmation<C: ConnectionTrait>(
        &self,
        db: &C,
        user: &User,
        email_address_id: EmailAddressId,
    ) -> Result<()> {
        let key = secrets::random_hex(32);
        let now = Utc::now();
        let days = self.config.account.email_confirmation_expire_days;
        let expires_at = now + Duration::days(i64::from(days));
        store::email_confirmations::insert(
            db,
            email_address_id,
            &secrets::digest(&key),
            now,
            expires_at,
        )
        .await?;
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": user.email,
            "user": user_context(user),
            "activate_url": self.config.verify_email_link(&key),
            "key": key,
            "expires_in": human_duration(u64::from(days) * 86_400),
        });
        self.outbox
            .enqueue(db, MailKind::EmailConfirmation, &user.email, &context)
            .await?;
        Ok(())
    }

    /// Confirms the address a key was sent to. Unknown, expired and used keys are `NotFound`.
    pub async fn confirm_email(&self, key: &str, caller: &Caller) -> Result<()> {
        let txn = store::begin_write(&self.db).await?;
        let now = Utc::now();
        let Some(address_id) =
            store::email_confirmations::consume(&txn, &secrets::digest(key.trim()), now).await?
        else {
            return Err(Error::NotFound);
        };
        if let Some(user_id) = store::users::mark_email_verified(&txn, address_id).await? {
            let entry = Entry::success(Event::EmailVerification, user_id);
            self.audit.record_in(&txn, caller, entry).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Sends a new confirmation key when the address belongs to an account and is unconfirmed,
    /// within `rate_limits.confirm_email` per address. The caller answers the same in every case.
    pub async fn resend_confirmation(&self, email: &str, caller: &Caller) -> Result<()> {
        let email = normalize_email(email);
        // Check and send under the address's row lock: concurrent resends take turns, so the
        // limit holds however many arrive at once.
        let txn = store::begin_write(&self.db).await?;
        let Some(address) = store::users::lock_email_address(&txn, &email).await? else {
            return Ok(());
        };
        if address.verified {
            return Ok(());
        }
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
        self.queue_confirmation(&txn, &user.into(), address.id)
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}
