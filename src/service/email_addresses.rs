//! The user's email addresses (`emails/`), managed as allauth manages its `EmailAddress`es:
//! list them, add one (confirmed through the mailed key, as at signup), make a confirmed one
//! primary, remove one that is not primary, mail a new key. (What makes an address valid and
//! its one stored form is `email_address`.)
//!
//! - The primary address is `users.email`: login by email and password reset use it alone.
//! - An address belongs to the account whose primary address it is or that confirmed it.
//!   Several accounts may wait to confirm one address; the first to confirm it keeps it, and
//!   the others' keys answer as an expired key does.
//! - Under `account.prevent_enumeration`, adding an address another account holds is answered
//!   and listed exactly as a free one, but no key is ever mailed for it: its owner is told
//!   someone tried to use it instead.
//! - `account.change_email` (allauth's `ACCOUNT_CHANGE_EMAIL`): one extra address at a time,
//!   which replaces the primary one once confirmed (`email_verification::confirm_email`).

use chrono::{Duration, Utc};
use sea_orm::ConnectionTrait;

use crate::mail::MailKind;
use crate::messages::*;
use crate::service::accounts::{Accounts, user_context};
use crate::service::audit::{Caller, Entry, Event};
use crate::service::email_address::normalize_email;
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::principal::{Principal, User};
use crate::service::rate_limits::{Action, Subjects};
use crate::service::revocations::{Pending, Revoked};
use crate::store;
use crate::store::email_addresses::EmailAddress;
use crate::store::users::UserId;

/// One of the user's addresses, as `emails/` lists it (and `tessera users show --json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Address {
    pub email: String,
    pub verified: bool,
    pub primary: bool,
}

impl From<EmailAddress> for Address {
    fn from(address: EmailAddress) -> Self {
        Self {
            email: address.email,
            verified: address.verified,
            primary: address.is_primary,
        }
    }
}

/// What a switch of the primary address does with the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OldPrimary {
    /// Stays, as an address that is not primary (`emails/primary/`).
    Keep,
    /// Goes, with every other address of the user (`account.change_email`).
    Remove,
}

impl Accounts {
    /// The user's addresses, the primary one first.
    pub async fn email_addresses(&self, user_id: UserId) -> Result<Vec<Address>> {
        let addresses = store::email_addresses::of_user(&self.db, user_id).await?;
        Ok(addresses.into_iter().map(Address::from).collect())
    }

    /// Adds an unconfirmed address and mails its key to it (within `rate_limits.confirm_email`
    /// for that address). Guarded: needs a recent proof of the password. Under
    /// `account.change_email` it replaces the user's pending address, if any.
    pub async fn add_email_address(
        &self,
        principal: &Principal,
        email: &str,
        caller: &Caller,
    ) -> Result<Address> {
        self.require_recent_password(principal).await?;
        let email = normalize_email(email);
        let user_id = principal.user.id;
        // Checked first without a lock, so a refused address spends nothing of the mail limit;
        // checked again under the user's lock below.
        self.check_new_address(&self.db, user_id, &email).await?;
        let subjects = Subjects {
            ip: caller.ip,
            key: Some(&email),
            user: None,
        };
        let may_mail = self.may_mail_address(&subjects, user_id, caller).await?;

        let txn = store::begin_write(&self.db).await?;
        let added = self.insert_address(&txn, user_id, &email, caller).await;
        let (user, address, owner) = match added {
            Ok(added) => added,
            Err(err) => {
                txn.rollback().await?;
                if may_mail {
                    self.limits.release(Action::ConfirmEmail, &subjects).await?;
                }
                return Err(err);
            }
        };
        if may_mail {
            match &owner {
                // No key for an address another account holds: its owner hears of the attempt.
                Some(owner) => self.queue_account_exists(&txn, owner, &email).await?,
                None => self.queue_confirmation(&txn, &user, &address).await?,
            }
        }
        txn.commit().await?;
        self.outbox.wake();
        Ok(address.into())
    }

    /// Makes one of the user's confirmed addresses the primary one (`users.email`); the old
    /// primary address stays, as an address that is not primary, and is told of the change.
    pub async fn make_primary_email_address(
        &self,
        principal: &Principal,
        email: &str,
        caller: &Caller,
    ) -> Result<Vec<Address>> {
        let email = normalize_email(email);
        let user_id = principal.user.id;
        let txn = store::begin_write(&self.db).await?;
        let user = lock_user(&txn, user_id).await?;
        let Some(address) = store::email_addresses::find_of_user(&txn, user_id, &email).await?
        else {
            return Err(FieldErrors::single("email", UNKNOWN_EMAIL));
        };
        if !address.verified {
            return Err(FieldErrors::single("email", PRIMARY_EMAIL_UNVERIFIED));
        }
        let mut revoked = None;
        if !address.is_primary {
            let switched = self
                .switch_primary(&txn, &user, &address, OldPrimary::Keep, caller)
                .await?;
            let Some(pending) = switched else {
                // Another account took the address as its primary one meanwhile.
                txn.rollback().await?;
                return Err(FieldErrors::single("email", UNKNOWN_EMAIL));
            };
            revoked = Some(pending);
        }
        let addresses = store::email_addresses::of_user(&txn, user_id).await?;
        txn.commit().await?;
        if let Some(revoked) = revoked {
            revoked.apply();
        }
        self.outbox.wake();
        Ok(addresses.into_iter().map(Address::from).collect())
    }

    /// Removes one of the user's addresses; never the primary one. Guarded.
    pub async fn remove_email_address(
        &self,
        principal: &Principal,
        email: &str,
        caller: &Caller,
    ) -> Result<()> {
        self.require_recent_password(principal).await?;
        let email = normalize_email(email);
        let user_id = principal.user.id;
        let txn = store::begin_write(&self.db).await?;
        lock_user(&txn, user_id).await?;
        let Some(address) = store::email_addresses::find_of_user(&txn, user_id, &email).await?
        else {
            return Err(FieldErrors::single("email", UNKNOWN_EMAIL));
        };
        if address.is_primary {
            return Err(FieldErrors::single("email", CANNOT_REMOVE_PRIMARY_EMAIL));
        }
        store::email_addresses::delete(&txn, address.id).await?;
        self.audit
            .record_in(&txn, caller, Entry::success(Event::EmailRemoved, user_id))
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Mails a new key for one of the user's unconfirmed addresses, within
    /// `rate_limits.confirm_email` for that address (as `registration/resend-email/`: over the
    /// limit nothing is sent, and the answer is the same). A confirmed address gets nothing;
    /// one another account holds gets its owner told again, never a key.
    pub async fn resend_email_address_confirmation(
        &self,
        principal: &Principal,
        email: &str,
        caller: &Caller,
    ) -> Result<()> {
        let email = normalize_email(email);
        let user_id = principal.user.id;
        let Some(address) = store::email_addresses::find_of_user(&self.db, user_id, &email).await?
        else {
            return Err(FieldErrors::single("email", UNKNOWN_EMAIL));
        };
        if address.verified {
            return Ok(());
        }
        let subjects = Subjects {
            ip: caller.ip,
            key: Some(&email),
            user: None,
        };
        if !self.may_mail_address(&subjects, user_id, caller).await? {
            return Ok(());
        }
        let txn = store::begin_write(&self.db).await?;
        let user = lock_user(&txn, user_id).await?;
        let Some(address) = store::email_addresses::find_of_user(&txn, user_id, &email).await?
        else {
            return Ok(());
        };
        let owner = store::users::find_owner_of_email(&txn, &email, Some(user_id)).await?;
        match owner {
            Some(owner) => {
                self.queue_account_exists(&txn, &owner.into(), &email)
                    .await?
            }
            None => {
                // The keys `registration/resend-email/` sent count too.
                if let Some(rule) = self.limits.key_rule(Action::ConfirmEmail) {
                    let since = Utc::now() - Duration::seconds(rule.period_seconds);
                    let sent =
                        store::email_confirmations::count_since(&txn, address.id, since).await?;
                    if sent >= u64::from(rule.amount) {
                        txn.rollback().await?;
                        return Ok(());
                    }
                }
                self.queue_confirmation(&txn, &user, &address).await?;
            }
        }
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Makes `to` (one of the user's confirmed addresses) the primary one, in `db`'s
    /// transaction: `users.email` too, the old primary address kept or removed, the change
    /// audited and mailed to the old address, and cached snapshots of the user refreshed (to
    /// apply once committed). `None` when `users.email` cannot take the address because
    /// another account has it as its primary one: the caller rolls back.
    pub(super) async fn switch_primary<C: ConnectionTrait>(
        &self,
        db: &C,
        user: &User,
        to: &EmailAddress,
        old: OldPrimary,
        caller: &Caller,
    ) -> Result<Option<Pending>> {
        let from = user.email.clone();
        store::email_addresses::set_primary(db, user.id, to.id).await?;
        match store::users::set_email(db, user.id, &to.email).await {
            Ok(()) => {}
            Err(err) if store::is_unique_violation(&err) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        if old == OldPrimary::Remove {
            let removed = store::email_addresses::delete_all_but(db, user.id, to.id).await?;
            if removed > 0 {
                let entry = Entry::success(Event::EmailRemoved, user.id).because("changed");
                self.audit.record_in(db, caller, entry).await?;
            }
        }
        let entry = Entry::success(Event::EmailPrimaryChanged, user.id);
        self.audit.record_in(db, caller, entry).await?;
        let changed = User {
            email: to.email.clone(),
            ..user.clone()
        };
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": from,
            "user": user_context(&changed),
            "from_email": from,
            "to_email": to.email,
        });
        self.outbox
            .enqueue(db, MailKind::EmailChanged, &from, &context)
            .await?;
        let pending = self
            .revocations
            .record(db, user.id, Revoked::Profile)
            .await?;
        Ok(Some(pending))
    }

    /// Why `email` cannot be added by the user (`Err`), or the account that holds it (`None`:
    /// no one does).
    async fn check_new_address<C: ConnectionTrait>(
        &self,
        db: &C,
        user_id: UserId,
        email: &str,
    ) -> Result<Option<entity::user::Model>> {
        let addresses = store::email_addresses::of_user(db, user_id).await?;
        if addresses.iter().any(|address| address.email == email) {
            return Err(FieldErrors::single("email", EMAIL_ALREADY_YOURS));
        }
        let owner = store::users::find_owner_of_email(db, email, Some(user_id)).await?;
        if owner.is_some() && !self.config.account.prevent_enumeration {
            return Err(FieldErrors::single("email", EMAIL_ADDRESS_TAKEN));
        }
        let max = self.config.account.max_email_addresses;
        // A change replaces the pending address: the limit does not apply (as allauth).
        if !self.config.account.change_email && max > 0 && addresses.len() >= max as usize {
            return Err(FieldErrors::single("email", too_many_email_addresses(max)));
        }
        Ok(owner)
    }

    /// Checks the address again under the user's lock and stores it (after the user's
    /// pending address, under `account.change_email`), audited; returns the user, the new
    /// address and the account that holds it, if any.
    async fn insert_address<C: ConnectionTrait>(
        &self,
        db: &C,
        user_id: UserId,
        email: &str,
        caller: &Caller,
    ) -> Result<(User, EmailAddress, Option<User>)> {
        let user = lock_user(db, user_id).await?;
        let owner = self.check_new_address(db, user_id, email).await?;
        if self.config.account.change_email {
            let replaced = store::email_addresses::delete_pending(db, user_id).await?;
            if replaced > 0 {
                let entry = Entry::success(Event::EmailRemoved, user_id).because("replaced");
                self.audit.record_in(db, caller, entry).await?;
            }
        }
        let address = match store::email_addresses::insert(db, user_id, email, Utc::now()).await {
            Ok(address) => address,
            Err(err) if store::is_unique_violation(&err) => {
                return Err(FieldErrors::single("email", EMAIL_ALREADY_YOURS));
            }
            Err(err) => return Err(err.into()),
        };
        let entry = match owner {
            Some(_) => Entry::success(Event::EmailAdded, user_id).because("email_taken"),
            None => Entry::success(Event::EmailAdded, user_id),
        };
        self.audit.record_in(db, caller, entry).await?;
        Ok((user, address, owner.map(User::from)))
    }

    /// Counts a mail about the address against `rate_limits.confirm_email`; `false` when over
    /// the limit (the refusal is audited once per window). Before any transaction: the audit
    /// entry and a database-kept counter write on connections of their own.
    async fn may_mail_address(
        &self,
        subjects: &Subjects<'_>,
        user_id: UserId,
        caller: &Caller,
    ) -> Result<bool> {
        match self
            .limit(Action::ConfirmEmail, subjects, caller, Some(user_id))
            .await
        {
            Ok(()) => Ok(true),
            Err(Error::Throttled { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Tells the owner of `email` (at that address) that someone tried to use it: the mail a
    /// signup for a taken address sends.
    pub(super) async fn queue_account_exists<C: ConnectionTrait>(
        &self,
        db: &C,
        owner: &User,
        email: &str,
    ) -> Result<()> {
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": email,
            "user": user_context(owner),
            "site_url": self.config.public_base(),
        });
        self.outbox
            .enqueue(db, MailKind::AccountAlreadyExists, email, &context)
            .await?;
        Ok(())
    }
}

/// The user, locked until the transaction ends: one change to a user's addresses at a time.
async fn lock_user<C: ConnectionTrait>(db: &C, user_id: UserId) -> Result<User> {
    match store::users::lock_by_id(db, user_id).await? {
        Some(user) => Ok(user.into()),
        None => Err(Error::Unauthenticated(USER_INACTIVE)),
    }
}
