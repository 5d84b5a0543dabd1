//! Reauthentication: actions that could hurt the account if a stolen credential did them
//! (showing recovery codes, switching MFA off, and later changing addresses or deleting the
//! account) need a recent proof of the password. Each credential remembers its owner's last
//! proof: its login, then each `reauthenticate/`.

use chrono::{Duration, Utc};
use secrecy::SecretString;

use crate::messages::*;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::login::login_failed_key;
use crate::service::principal::Principal;
use crate::service::rate_limits::{Action, Subjects};
use crate::store;

impl Accounts {
    /// `Err(ReauthenticationRequired)` when the request's credential last proved the password
    /// more than `account.reauthentication_timeout` ago.
    pub async fn require_recent_password(&self, principal: &Principal) -> Result<()> {
        let proved =
            store::credentials::password_proved_at(&self.db, principal.credential.row()).await?;
        let timeout =
            i64::try_from(self.config.account.reauthentication_timeout).unwrap_or(i64::MAX);
        let recent = proved.is_some_and(|at| Utc::now() - at <= Duration::seconds(timeout));
        match recent {
            true => Ok(()),
            false => Err(Error::ReauthenticationRequired),
        }
    }

    /// Proves the password again (and the second factor, when the user has MFA) for the
    /// request's credential. Limited and audited like a login.
    pub async fn reauthenticate(
        &self,
        principal: &Principal,
        password: SecretString,
        code: Option<String>,
        caller: &Caller,
    ) -> Result<()> {
        let user_id = principal.user.id;
        let key = login_failed_key(user_id);
        let subjects = Subjects {
            ip: caller.ip,
            key: Some(&key),
            user: None,
        };
        self.limit(Action::LoginFailed, &subjects, caller, Some(user_id))
            .await?;
        let stored = store::users::find_by_id(&self.db, user_id)
            .await?
            .ok_or(Error::NotAuthenticated)?;
        let verified = self
            .hasher
            .verify(&password, Some(&stored.password_hash))
            .await?;
        let fail = |reason| Entry::failure(Event::Reauthentication, reason, Some(user_id));
        if !verified.matches {
            self.audit.record(caller, fail("wrong_password")).await?;
            return Err(FieldErrors::single("password", INCORRECT_PASSWORD));
        }
        let txn = store::begin_write(&self.db).await?;
        if self.mfa_enabled(user_id).await? {
            let accepted = match code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
                Some(code) => self.accept_second_factor(&txn, user_id, code).await?,
                None => {
                    txn.rollback().await?;
                    return Err(FieldErrors::single("code", REQUIRED));
                }
            };
            if accepted == Some(false) {
                txn.rollback().await?;
                self.audit.record(caller, fail("invalid_code")).await?;
                return Err(FieldErrors::single("code", CODE_INVALID));
            }
        }
        store::credentials::mark_reauthenticated(&txn, principal.credential.row(), Utc::now())
            .await?;
        self.audit
            .record_in(
                &txn,
                caller,
                Entry::success(Event::Reauthentication, user_id),
            )
            .await?;
        txn.commit().await?;
        self.limits.clear_key(Action::LoginFailed, &key).await?;
        Ok(())
    }
}
