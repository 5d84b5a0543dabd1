//! Password change by a logged-in user, and what goes with every new password (also used by
//! password reset): other credentials end, reset links die, the owner is told by email.

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use crate::mail::MailKind;
use crate::messages::*;
use crate::service::accounts::{Accounts, user_context};
use crate::service::audit::{Caller, Entry, Event};
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::password_validation::UserAttributes;
use crate::service::principal::{Principal, User};
use crate::service::rate_limits::{Action, Subjects};
use crate::service::revocations::{Pending, Revoked};
use crate::store::credentials::CredentialRow;
use crate::store::{self};

pub struct PasswordChangeInput {
    pub old_password: Option<SecretString>,
    pub new_password1: SecretString,
    pub new_password2: SecretString,
}

impl Accounts {
    /// Sets a new password and ends the user's other credentials (all of them when
    /// `auth.logout_on_password_change`).
    pub async fn change_password(
        &self,
        principal: &Principal,
        input: PasswordChangeInput,
        caller: &Caller,
    ) -> Result<()> {
        let user_id = principal.user.id;
        let subjects = Subjects {
            user: Some(user_id),
            ..Default::default()
        };
        self.limit(Action::ChangePassword, &subjects, caller, Some(user_id))
            .await?;
        let Some(current) = store::users::find_by_id(&self.db, principal.user.id).await? else {
            return Err(Error::Unauthenticated(USER_INACTIVE));
        };
        let mut errors = FieldErrors::new();
        match &input.old_password {
            // An old password that is sent is always checked, even when not required.
            Some(old) => {
                let verified = self
                    .hasher
                    .verify(old, Some(&current.password_hash))
                    .await?;
                if !verified.matches {
                    self.audit
                        .record(
                            caller,
                            Entry::failure(
                                Event::PasswordChange,
                                "wrong_old_password",
                                Some(user_id),
                            ),
                        )
                        .await?;
                    errors.add("old_password", WRONG_OLD_PASSWORD);
                }
            }
            None if self.config.auth.old_password_field_enabled => {
                errors.add("old_password", REQUIRED);
            }
            None => {}
        }
        if input.new_password1.expose_secret() != input.new_password2.expose_secret() {
            errors.add("new_password2", NEW_PASSWORD_MISMATCH);
        } else {
            let attributes = UserAttributes::from(&current);
            self.policy.check(
                &mut errors,
                "new_password2",
                &input.new_password2,
                &attributes,
            );
        }
        errors.into_result()?;

        let hash = self.hasher.hash(&input.new_password1).await?;
        let keep = match self.config.auth.logout_on_password_change {
            true => CredentialRow::Nothing,
            false => principal.credential.row(),
        };
        let txn = store::begin_write(&self.db).await?;
        let revoked = self
            .set_password(&txn, &User::from(current), &hash, keep, "password changed")
            .await?;
        let entry = Entry::success(Event::PasswordChange, user_id);
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        revoked.apply();
        self.outbox.wake();
        Ok(())
    }

    /// Stores a new password hash and does what must go with it, in the caller's transaction:
    /// ends the user's other credentials (all but `keep`) and records that revocation (to apply
    /// after commit), kills outstanding reset links, and queues the "password changed" notice.
    pub(super) async fn set_password<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        user: &User,
        password_hash: &str,
        keep: CredentialRow,
        reason: &str,
    ) -> Result<Pending> {
        let now = Utc::now();
        store::users::set_password_hash(db, user.id, password_hash).await?;
        store::credentials::revoke_all(db, user.id, keep, now, reason).await?;
        let revoked = self
            .revocations
            .record(db, user.id, Revoked::Credentials)
            .await?;
        store::password_resets::delete_for_user(db, user.id).await?;
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": user.email,
            "user": user_context(user),
        });
        self.outbox
            .enqueue(db, MailKind::PasswordChanged, &user.email, &context)
            .await?;
        Ok(revoked)
    }
}
