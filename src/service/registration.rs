//! Registration: a new account from a signup form (or `createsuperuser`), with a unique
//! username, the confirmation email queued in the same transaction, and allauth's
//! enumeration prevention for taken addresses.

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use crate::config::EmailVerification;
use crate::messages::*;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::email_address::normalize_email;
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::password_validation::UserAttributes;
use crate::service::principal::User;
use crate::service::rate_limits::Action;
use crate::service::social::Identity;
use crate::service::usernames;
use crate::store::{self, users::NewUser};

/// A signup form. Fields that failed to parse are `None` and their errors are in
/// `field_errors`; they are reported together with the checks made here, as DRF does.
pub struct RegistrationInput {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password1: Option<SecretString>,
    pub password2: Option<SecretString>,
    pub field_errors: FieldErrors,
}

pub enum Registered {
    /// The account is usable now: the caller issues its first credential.
    Active(User),
    /// The account (or, under enumeration prevention, nothing) waits for email confirmation.
    VerificationSent,
}

/// Who an account is created for: it decides the account's flags and what goes with it.
#[derive(Clone, Copy)]
pub(super) enum Origin<'a> {
    /// A signup over the API: a regular user, audited, maybe with a confirmation email.
    Signup {
        caller: &'a Caller,
        confirmation: Confirmation,
    },
    /// `createsuperuser`: staff and superuser, address verified; no mail, no audit entry.
    Superuser,
    /// A first sign-in through an identity provider: linked to the provider's account in the
    /// same transaction, with the provider's names; the address is verified when the provider
    /// vouches for it, else confirmed by mail like a signup's.
    Social {
        caller: &'a Caller,
        confirmation: Confirmation,
        provider: &'a str,
        identity: &'a Identity,
    },
}

impl Origin<'_> {
    fn is_superuser(self) -> bool {
        matches!(self, Origin::Superuser)
    }

    fn email_verified(self) -> bool {
        match self {
            // The operator who types the address vouches for it.
            Origin::Superuser => true,
            Origin::Social { identity, .. } => identity.email_verified,
            Origin::Signup { .. } => false,
        }
    }
}

/// Whether a signup is sent a confirmation email (`account.email_verification`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Confirmation {
    Send,
    Skip,
}

impl Confirmation {
    /// Every new address is sent a confirmation unless verification is off.
    pub(super) fn as_configured(config: &crate::config::Config) -> Self {
        match config.account.email_verification {
            EmailVerification::None => Confirmation::Skip,
            _ => Confirmation::Send,
        }
    }
}

impl Accounts {
    pub async fn register(&self, input: RegistrationInput, caller: &Caller) -> Result<Registered> {
        self.limit_by_ip(Action::Signup, caller).await?;
        let mandatory = self.config.account.email_verification == EmailVerification::Mandatory;
        // Under mandatory verification the answer to a taken address looks like success; the
        // owner is told by email instead (allauth's enumeration prevention).
        let hide_taken_email = mandatory && self.config.account.prevent_enumeration;

        let mut errors = input.field_errors;
        let email = input.email.as_deref().map(normalize_email);
        let username = input.username.filter(|u| !u.is_empty());
        if let Some(username) = &username
            && let Some(message) = self.username_problem(username, None).await?
        {
            errors.add("username", message);
        }
        let owner = match &email {
            Some(email) => store::users::find_owner_of_email(&self.db, email, None).await?,
            None => None,
        };
        let email_taken = owner.is_some();
        if let Some(owner) = &owner {
            self.audit
                .record(
                    caller,
                    Entry::failure(Event::Registration, "email_taken", Some(owner.id)),
                )
                .await?;
            if !hide_taken_email {
                errors.add("email", EMAIL_TAKEN);
            }
        }
        if let Some(password1) = &input.password1 {
            let attributes = UserAttributes {
                username: username.as_deref().unwrap_or_default(),
                email: email.as_deref().unwrap_or_default(),
                first_name: "",
                last_name: "",
            };
            self.policy
                .check(&mut errors, "password1", password1, &attributes);
        }
        errors.into_result()?;
        let (Some(email), Some(password1), Some(password2)) =
            (email, input.password1, input.password2)
        else {
            return Err(Error::Internal(
                "registration input without errors is complete".into(),
            ));
        };
        if password1.expose_secret() != password2.expose_secret() {
            return Err(FieldErrors::non_field(REGISTRATION_MISMATCH));
        }

        // Hash before branching, so a taken address costs the same time as a new one.
        let password_hash = self.hasher.hash(&password1).await?;
        if email_taken {
            self.tell_owner_account_exists(&email).await?;
            return Ok(Registered::VerificationSent);
        }
        let confirmation = Confirmation::as_configured(&self.config);
        let origin = Origin::Signup {
            caller,
            confirmation,
        };
        let inserted = self
            .insert_user(&email, username.as_deref(), &password_hash, origin)
            .await;
        let user = match inserted {
            Ok(user) => user,
            // Lost a race against a concurrent signup for the same address.
            Err(Error::Invalid(errors)) if errors.has("email") => {
                let owner = store::users::find_owner_of_email(&self.db, &email, None).await?;
                let entry = Entry::failure(Event::Registration, "email_taken", owner.map(|u| u.id));
                self.audit.record(caller, entry).await?;
                if !hide_taken_email {
                    return Err(Error::Invalid(errors));
                }
                self.tell_owner_account_exists(&email).await?;
                return Ok(Registered::VerificationSent);
            }
            Err(err) => return Err(err),
        };
        if mandatory {
            return Ok(Registered::VerificationSent);
        }
        Ok(Registered::Active(user))
    }

    /// Creates an active staff superuser with a verified address (the `createsuperuser` command).
    pub async fn create_superuser(&self, email: &str, password: &SecretString) -> Result<User> {
        let email = normalize_email(email);
        let mut errors = FieldErrors::new();
        if store::users::find_owner_of_email(&self.db, &email, None)
            .await?
            .is_some()
        {
            errors.add("email", EMAIL_TAKEN);
        }
        let attributes = UserAttributes {
            username: "",
            email: &email,
            first_name: "",
            last_name: "",
        };
        self.policy
            .check(&mut errors, "password", password, &attributes);
        errors.into_result()?;
        let hash = self.hasher.hash(password).await?;
        self.insert_user(&email, None, &hash, Origin::Superuser)
            .await
    }

    /// Inserts a user, generating a unique username from the email when none is given, and
    /// for a signup that asks for it queues the confirmation email in the same transaction
    /// (and records the signup in the audit trail there). Uniqueness is
    /// settled by the database's unique indexes, not by the earlier checks.
    pub(super) async fn insert_user(
        &self,
        email: &str,
        username: Option<&str>,
        password_hash: &str,
        origin: Origin<'_>,
    ) -> Result<User> {
        const ATTEMPTS: usize = 5;
        for _ in 0..ATTEMPTS {
            let candidate = match username {
                Some(name) => name.to_owned(),
                None => {
                    let base = usernames::base_from_email(email);
                    let taken = store::users::usernames_starting_with(&self.db, &base).await?;
                    usernames::first_free(&base, &taken)
                }
            };
            let txn = store::begin_write(&self.db).await?;
            let inserted = store::users::insert(
                &txn,
                NewUser {
                    email,
                    username: &candidate,
                    password_hash,
                    is_staff: origin.is_superuser(),
                    is_superuser: origin.is_superuser(),
                    email_verified: origin.email_verified(),
                    now: Utc::now(),
                },
            )
            .await;
            match inserted {
                Ok((user, address)) => {
                    let user = match origin {
                        Origin::Social {
                            provider, identity, ..
                        } => {
                            let extra = identity.extra_data();
                            let now = user.date_joined;
                            store::social::insert(
                                &txn,
                                user.id,
                                provider,
                                &identity.uid,
                                &extra,
                                now,
                            )
                            .await?;
                            let first = Some(identity.first_name.clone());
                            let last = Some(identity.last_name.clone());
                            store::users::update_profile(&txn, user, None, first, last).await?
                        }
                        _ => user,
                    };
                    let user = User::from(user);
                    let (caller, confirmation, entry) = match origin {
                        Origin::Signup {
                            caller,
                            confirmation,
                        } => (
                            caller,
                            confirmation,
                            Entry::success(Event::Registration, user.id),
                        ),
                        Origin::Social {
                            caller,
                            confirmation,
                            ..
                        } => (
                            caller,
                            confirmation,
                            Entry::success(Event::SocialLogin, user.id).because("signup"),
                        ),
                        Origin::Superuser => {
                            txn.commit().await?;
                            return Ok(user);
                        }
                    };
                    if confirmation == Confirmation::Send && !address.verified {
                        self.queue_confirmation(&txn, &user, &address).await?;
                    }
                    self.audit.record_in(&txn, caller, entry).await?;
                    txn.commit().await?;
                    self.outbox.wake();
                    return Ok(user);
                }
                Err(err) if store::is_unique_violation(&err) => {
                    txn.rollback().await?;
                    if store::users::find_owner_of_email(&self.db, email, None)
                        .await?
                        .is_some()
                    {
                        return Err(FieldErrors::single("email", EMAIL_TAKEN));
                    }
                    if username.is_some() {
                        return Err(FieldErrors::single("username", USERNAME_TAKEN));
                    }
                    // A generated name was taken in between: pick again.
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(Error::Internal("could not find a free username".into()))
    }

    /// Under enumeration prevention a signup for a taken address answers as if it were new;
    /// the owner is told by email instead, at that address.
    async fn tell_owner_account_exists(&self, email: &str) -> Result<()> {
        let Some(owner) = store::users::find_owner_of_email(&self.db, email, None).await? else {
            return Ok(());
        };
        let txn = store::begin_write(&self.db).await?;
        self.queue_account_exists(&txn, &User::from(owner), email)
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}
