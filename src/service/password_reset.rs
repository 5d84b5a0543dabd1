//! Password reset: a single-use link mailed on request, then a new password set with it.

use chrono::{Duration, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::mail::MailKind;
use crate::messages::*;
use crate::secrets;
use crate::service::accounts::{Accounts, human_duration, user_context};
use crate::service::audit::{Caller, Entry, Event};
use crate::service::email_address::normalize_email;
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::login::login_failed_key;
use crate::service::password_validation::UserAttributes;
use crate::service::principal::User;
use crate::service::rate_limits::{Action, Subjects};
use crate::store;
use crate::store::credentials::CredentialRow;
use crate::store::users::UserId;

/// The confirm form. Fields that failed to parse are `None`; their errors are in
/// `field_errors` and are reported first, as DRF does.
pub struct ResetConfirmation {
    pub uid: Option<String>,
    pub token: Option<String>,
    pub new_password1: Option<SecretString>,
    pub new_password2: Option<SecretString>,
    pub field_errors: FieldErrors,
}

/// Django's `int_to_base36`: the `uid` of reset links.
pub fn uid_for(user_id: UserId) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = user_id.0.unsigned_abs();
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

/// Django's `base36_to_int`, refusing signs, padding and anything too long to be a pk.
pub fn user_id_from_uid(uid: &str) -> Option<UserId> {
    if uid.is_empty() || uid.len() > 13 || !uid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    i64::from_str_radix(&uid.to_ascii_lowercase(), 36)
        .ok()
        .map(UserId)
}

impl Accounts {
    /// Mails a reset link when an active account has this address; otherwise does nothing.
    /// The caller answers the same either way, and the mail leaves through the outbox.
    pub async fn request_password_reset(&self, email: &str, caller: &Caller) -> Result<()> {
        let email = normalize_email(email);
        let subjects = Subjects {
            ip: caller.ip,
            key: Some(&email),
            user: None,
        };
        self.limit(Action::ResetPassword, &subjects, caller, None)
            .await?;
        // Under the user's row lock, so of concurrent requests only the newest link survives.
        let txn = store::begin_write(&self.db).await?;
        let Some(user) = store::users::lock_by_email(&txn, &email).await? else {
            return Ok(());
        };
        if !user.is_active {
            return Ok(());
        }
        let user = User::from(user);
        let token = secrets::random_hex(32);
        let uid = uid_for(user.id);
        let timeout = self.config.account.password_reset_timeout;
        let now = Utc::now();
        let expires_at = now + Duration::seconds(timeout.min(i64::MAX as u64) as i64);
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": user.email,
            "user": user_context(&user),
            "password_reset_url": self.config.password_reset_link(&uid, &token),
            "uid": uid,
            "token": token,
            "expires_in": human_duration(timeout),
        });
        store::password_resets::replace(&txn, user.id, &secrets::digest(&token), now, expires_at)
            .await?;
        self.outbox
            .enqueue(&txn, MailKind::PasswordReset, &user.email, &context)
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Whether `uid` and `token` form a live reset link of an active account, leaving it
    /// unused: what the reset page checks before it shows its form. Not audited: only a use of
    /// the link (`confirm_password_reset`) is.
    pub async fn reset_link_is_live(&self, uid: &str, token: &str) -> Result<bool> {
        let Some(user_id) = user_id_from_uid(uid) else {
            return Ok(false);
        };
        let user = store::users::find_by_id(&self.db, user_id).await?;
        if !user.is_some_and(|u| u.is_active) {
            return Ok(false);
        }
        let digest = secrets::digest(token);
        Ok(store::password_resets::is_live(&self.db, user_id, &digest, Utc::now()).await?)
    }

    /// Sets the new password if `uid` and `token` form a live reset link; ends every credential
    /// of the user and mails a notice.
    pub async fn confirm_password_reset(
        &self,
        form: ResetConfirmation,
        caller: &Caller,
    ) -> Result<()> {
        self.limit_by_ip(Action::ResetPasswordFromKey, caller)
            .await?;
        form.field_errors.into_result()?;
        let (Some(uid), Some(token), Some(password1), Some(password2)) =
            (form.uid, form.token, form.new_password1, form.new_password2)
        else {
            return Err(Error::Internal(
                "reset form without errors is complete".into(),
            ));
        };
        let Some(user_id) = user_id_from_uid(&uid) else {
            return Err(FieldErrors::single("uid", INVALID_VALUE));
        };
        let user = store::users::find_by_id(&self.db, user_id).await?;
        let Some(user) = user.filter(|u| u.is_active) else {
            // dj-rest-auth says `uid` here, which tells sequential ids that exist from ones
            // that do not; under enumeration prevention a well-formed uid of no (active) user
            // is answered as an existing user's with a wrong token.
            let field = match self.config.account.prevent_enumeration {
                true => "token",
                false => "uid",
            };
            return Err(FieldErrors::single(field, INVALID_VALUE));
        };
        let digest = secrets::digest(&token);
        let now = Utc::now();
        // Someone holds a uid but not a live link for it: worth a line in the trail.
        let invalid_link = Entry::failure(Event::PasswordReset, "invalid_link", Some(user.id));
        if !store::password_resets::is_live(&self.db, user.id, &digest, now).await? {
            self.audit.record(caller, invalid_link).await?;
            return Err(FieldErrors::single("token", INVALID_VALUE));
        }
        if password1.expose_secret() != password2.expose_secret() {
            return Err(FieldErrors::single("new_password2", NEW_PASSWORD_MISMATCH));
        }
        let attributes = UserAttributes::from(&user);
        let mut errors = FieldErrors::new();
        self.policy
            .check(&mut errors, "new_password2", &password2, &attributes);
        errors.into_result()?;

        let hash = self.hasher.hash(&password1).await?;
        let user = User::from(user);
        let txn = store::begin_write(&self.db).await?;
        // The conditional update settles races: of two uses of one link, one wins.
        if !store::password_resets::consume(&txn, user.id, &digest, Utc::now()).await? {
            txn.rollback().await?;
            self.audit.record(caller, invalid_link).await?;
            return Err(FieldErrors::single("token", INVALID_VALUE));
        }
        let revoked = self
            .set_password(&txn, &user, &hash, CredentialRow::Nothing, "password reset")
            .await?;
        let entry = Entry::success(Event::PasswordReset, user.id);
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        revoked.apply();
        // A reset proves the address: the account's failed-login count starts again.
        self.limits
            .clear_key(Action::LoginFailed, &login_failed_key(user.id))
            .await?;
        self.outbox.wake();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_djangos_base36() {
        // Django: int_to_base36(0) == "0", (35) == "z", (36) == "10", (1234567) == "qglj".
        for (id, uid) in [(0, "0"), (35, "z"), (36, "10"), (1_234_567, "qglj")] {
            assert_eq!(uid_for(UserId(id)), uid);
            assert_eq!(user_id_from_uid(uid), Some(UserId(id)));
        }
        for bad in ["", "-1", "+1", " 1", "1.0", "zzzzzzzzzzzzzz", "é"] {
            assert_eq!(user_id_from_uid(bad), None, "{bad:?}");
        }
    }
}
