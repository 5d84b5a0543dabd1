//! What an operator does to one account from the command line (`tessera users ...`): list and
//! show accounts, set a password, confirm an address, end every credential, delete. Activation
//! is `account_status`. Each change is in the audit trail under the caller the command line
//! passes (user agent `tessera command line`), with reason `operator` where the event is also
//! one a user causes.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::config::AccountDeletion;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::email_address::normalize_email;
use crate::service::email_addresses::Address;
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::login::login_failed_key;
use crate::service::password_validation::UserAttributes;
use crate::service::principal::User;
use crate::service::rate_limits::Action;
use crate::store::{self, credentials::CredentialRow, users::UserId};

/// One account as `tessera users list` shows it. No password hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountSummary {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Whether the primary address is confirmed.
    pub email_verified: bool,
    pub date_joined: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

impl AccountSummary {
    fn new(user: entity::user::Model, email_verified: bool) -> Self {
        Self {
            id: user.id,
            email: user.email,
            username: user.username,
            first_name: user.first_name,
            last_name: user.last_name,
            is_active: user.is_active,
            is_staff: user.is_staff,
            is_superuser: user.is_superuser,
            email_verified,
            date_joined: user.date_joined,
            last_login: user.last_login,
        }
    }
}

/// One account as `tessera users show` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountDetails {
    #[serde(flatten)]
    pub account: AccountSummary,
    /// The primary one first.
    pub email_addresses: Vec<Address>,
    pub mfa_enabled: bool,
    pub live_credentials: LiveCredentials,
    /// Its links to identity providers, oldest first.
    pub social_accounts: Vec<LinkedProvider>,
}

/// One link to an identity provider, as `users show` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkedProvider {
    pub provider: String,
    pub uid: String,
    pub date_joined: chrono::DateTime<chrono::Utc>,
    pub last_login: Option<chrono::DateTime<chrono::Utc>>,
}

/// How many credentials of each kind still work.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct LiveCredentials {
    pub tokens: usize,
    pub sessions: usize,
    pub refresh_families: usize,
}

impl LiveCredentials {
    pub fn total(&self) -> usize {
        self.tokens + self.sessions + self.refresh_families
    }
}

/// What `verify_email_as_operator` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailVerified {
    /// `address` (normalised) is confirmed now, for the account with the primary address
    /// `account`.
    Now { address: String, account: String },
    /// It was confirmed already, by that account.
    Already { address: String, account: String },
    /// Another account holds the address (its primary one, or confirmed there): nothing
    /// changed.
    TakenByAnother,
    /// No account has it as primary address and several wait to confirm it: which one is
    /// meant cannot be told.
    Ambiguous,
}

impl Accounts {
    /// Every account, oldest first; with `search`, those whose email, username, first or last
    /// name contains it (case-insensitively).
    pub async fn list_accounts(&self, search: Option<&str>) -> Result<Vec<AccountSummary>> {
        let users = store::users::list(&self.db, search).await?;
        Ok(users
            .into_iter()
            .map(|(user, verified)| AccountSummary::new(user, verified))
            .collect())
    }

    /// The account whose primary address is `email`, with its addresses, MFA and live
    /// credentials; `NotFound` when there is none.
    pub async fn account_details(&self, email: &str) -> Result<AccountDetails> {
        let user = self.find_by_primary_email(email).await?;
        let user_id = user.id;
        let email_addresses = self.email_addresses(user.id).await?;
        let verified = email_addresses
            .iter()
            .any(|address| address.email == user.email && address.verified);
        let mfa_enabled = self.mfa_status(user.id).await?.enabled;
        let mut live_credentials = LiveCredentials::default();
        for credential in self.live_credentials(user.id).await? {
            match credential.row {
                CredentialRow::Token(_) => live_credentials.tokens += 1,
                CredentialRow::Session(_) => live_credentials.sessions += 1,
                CredentialRow::RefreshFamily(_) => live_credentials.refresh_families += 1,
                CredentialRow::Nothing => {}
            }
        }
        Ok(AccountDetails {
            account: AccountSummary::new(user, verified),
            email_addresses,
            mfa_enabled,
            live_credentials,
            social_accounts: self
                .social_accounts(user_id)
                .await?
                .into_iter()
                .map(|link| LinkedProvider {
                    provider: link.provider,
                    uid: link.uid,
                    date_joined: link.date_joined,
                    last_login: link.last_login,
                })
                .collect(),
        })
    }

    /// Sets the password of the account with this primary address, as a password reset does:
    /// the API's validators judge it (`Invalid`, field `password`), every credential of the
    /// account ends on every instance, reset links die, the owner is mailed that the password
    /// changed, and the failed-login count starts again.
    pub async fn set_password_as_operator(
        &self,
        email: &str,
        password: &SecretString,
        caller: &Caller,
    ) -> Result<User> {
        let user = self.find_by_primary_email(email).await?;
        let attributes = UserAttributes::from(&user);
        let mut errors = FieldErrors::new();
        self.policy
            .check(&mut errors, "password", password, &attributes);
        errors.into_result()?;
        let hash = self.hasher.hash(password).await?;
        let txn = store::begin_write(&self.db).await?;
        let user = store::users::lock_by_id(&txn, user.id)
            .await?
            .ok_or(Error::NotFound)?;
        let user = User::from(user);
        let revoked = self
            .set_password(
                &txn,
                &user,
                &hash,
                CredentialRow::Nothing,
                "password set by operator",
            )
            .await?;
        let entry = Entry::success(Event::PasswordChange, user.id).because("operator");
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        revoked.apply();
        self.limits
            .clear_key(Action::LoginFailed, &login_failed_key(user.id))
            .await?;
        self.outbox.wake();
        Ok(user)
    }

    /// Marks `email` confirmed for the account that has it: the one whose primary address it
    /// is, else the one account with it among its addresses. The rules of confirmation by key
    /// hold: an address another account holds stays theirs (`TakenByAnother`).
    pub async fn verify_email_as_operator(
        &self,
        email: &str,
        caller: &Caller,
    ) -> Result<EmailVerified> {
        let email = normalize_email(email);
        let txn = store::begin_write(&self.db).await?;
        let rows = store::email_addresses::lock_all_with_email(&txn, &email).await?;
        let user = match store::users::lock_by_email(&txn, &email).await? {
            Some(user) => user,
            None => {
                let mut owners: Vec<UserId> = rows.iter().map(|row| row.user_id).collect();
                owners.sort();
                owners.dedup();
                let confirmed_by = rows.iter().find(|row| row.verified).map(|row| row.user_id);
                let owner = match (owners.as_slice(), confirmed_by) {
                    ([], _) => return Err(Error::NotFound),
                    ([one], _) => *one,
                    (_, Some(owner)) => owner,
                    (_, None) => return Ok(EmailVerified::Ambiguous),
                };
                store::users::lock_by_id(&txn, owner)
                    .await?
                    .ok_or(Error::NotFound)?
            }
        };
        let account = user.email.clone();
        let own = rows.iter().find(|row| row.user_id == user.id);
        if own.is_some_and(|row| row.verified) {
            return Ok(EmailVerified::Already {
                address: email,
                account,
            });
        }
        let taken = Entry::failure(Event::EmailVerification, "email_taken", Some(user.id));
        let held_elsewhere = store::users::find_owner_of_email(&txn, &email, Some(user.id))
            .await?
            .is_some();
        let marked = match (held_elsewhere, own) {
            (true, _) => Ok(false),
            (false, Some(row)) => mark_verified(&txn, row.id).await,
            // An account brought in without address rows (`import-django`): its primary
            // address gets one, confirmed.
            (false, None) => {
                let row = store::email_addresses::insert(&txn, user.id, &email, Utc::now()).await?;
                store::email_addresses::set_primary(&txn, user.id, row.id).await?;
                mark_verified(&txn, row.id).await
            }
        };
        if !marked? {
            txn.rollback().await?;
            self.audit.record(caller, taken).await?;
            return Ok(EmailVerified::TakenByAnother);
        }
        let entry = Entry::success(Event::EmailVerification, user.id).because("operator");
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        Ok(EmailVerified::Now {
            address: email,
            account,
        })
    }

    /// Ends every credential of the account with this primary address, on every instance,
    /// without deactivating it: its owner logs in again. Returns how many were live.
    pub async fn log_out_everywhere(&self, email: &str, caller: &Caller) -> Result<usize> {
        let user = self.find_by_primary_email(email).await?;
        let live = self.live_credentials(user.id).await?.len();
        let txn = store::begin_write(&self.db).await?;
        let user = store::users::lock_by_id(&txn, user.id)
            .await?
            .ok_or(Error::NotFound)?;
        let revoked = self
            .end_every_credential(&txn, user.id, "ended_by_operator")
            .await?;
        let entry = Entry::success(Event::SessionEnded, user.id).because("operator");
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        revoked.apply();
        Ok(live)
    }

    /// Deletes the account with this primary address and everything tied to it, as `DELETE
    /// user/` does under `account.deletion = "delete"`, whatever that setting says: it governs
    /// what users may do to themselves, and an operator who deletes means it (`users
    /// deactivate` keeps the row). The owner gets the goodbye mail.
    ///
    /// The last active superuser is refused here too (`Forbidden(LAST_SUPERUSER)`): deleting
    /// it leaves no one to administer the service from the API, and the way round is one
    /// `tessera createsuperuser` away, so a slip of the keyboard costs nothing.
    pub async fn delete_account_as_operator(&self, email: &str, caller: &Caller) -> Result<()> {
        let user = self.find_by_primary_email(email).await?;
        match self
            .remove_account(user.id, AccountDeletion::Delete, caller)
            .await
        {
            // Deleted by someone else in between.
            Err(Error::NotAuthenticated) => Err(Error::NotFound),
            result => result,
        }
    }

    /// The account whose primary address is `email` (normalised here); `NotFound` when none.
    async fn find_by_primary_email(&self, email: &str) -> Result<entity::user::Model> {
        store::users::find_by_email(&self.db, &normalize_email(email))
            .await?
            .ok_or(Error::NotFound)
    }
}

/// Marks the row confirmed: `false` when another account confirmed the address first (the
/// unique index of confirmed addresses says so).
async fn mark_verified<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: entity::EmailAddressId,
) -> Result<bool> {
    match store::email_addresses::mark_verified(db, id).await {
        Ok(()) => Ok(true),
        Err(err) if store::is_unique_violation(&err) => Ok(false),
        Err(err) => Err(err.into()),
    }
}
