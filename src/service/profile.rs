//! The logged-in user's details (`user/`).

use crate::messages::*;
use crate::service::accounts::{Accounts, MAX_NAME_LENGTH};
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::principal::{Principal, User};
use crate::service::revocations::Revoked;
use crate::store::{self};

/// `None` leaves a field unchanged (PATCH semantics; PUT sends all of them).
pub struct ProfileUpdate {
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl Accounts {
    pub async fn update_profile(
        &self,
        principal: &Principal,
        update: ProfileUpdate,
    ) -> Result<User> {
        let mut errors = FieldErrors::new();
        if let Some(username) = &update.username
            && let Some(message) = self
                .username_problem(username, Some(principal.user.id))
                .await?
        {
            errors.add("username", message);
        }
        for (field, value) in [
            ("first_name", &update.first_name),
            ("last_name", &update.last_name),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_NAME_LENGTH)
            {
                errors.add(field, too_long(MAX_NAME_LENGTH));
            }
        }
        errors.into_result()?;
        let txn = store::begin_write(&self.db).await?;
        let Some(current) = store::users::find_by_id(&txn, principal.user.id).await? else {
            return Err(Error::Unauthenticated(USER_INACTIVE));
        };
        let updated = store::users::update_profile(
            &txn,
            current,
            update.username,
            update.first_name,
            update.last_name,
        )
        .await;
        match updated {
            Ok(user) => {
                let revoked = self
                    .revocations
                    .record(&txn, user.id, Revoked::Profile)
                    .await?;
                txn.commit().await?;
                revoked.apply();
                Ok(user.into())
            }
            Err(err) if store::is_unique_violation(&err) => {
                Err(FieldErrors::single("username", USERNAME_TAKEN))
            }
            Err(err) => Err(err.into()),
        }
    }
}
