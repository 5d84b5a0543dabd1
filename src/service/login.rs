//! Login: checks an identifier and password under the rate limits, and records the
//! attempt. Issuing the credential is the auth mode's business (`api::mode`).

use chrono::Utc;
use secrecy::SecretString;

use crate::config::{EmailVerification, LoginMethod};
use crate::messages::*;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::email_address::normalize_email;
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::principal::User;
use crate::service::rate_limits::{Action, Subjects};
use entity::user;

use crate::store::{self, users::UserId};

/// A login after the password: done, or waiting for the second factor (the token
/// `mfa/verify/` takes with the code; not in `Debug`).
pub enum LoginStep {
    Done(User),
    SecondFactor(String),
}

impl std::fmt::Debug for LoginStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginStep::Done(user) => f.debug_tuple("Done").field(user).finish(),
            LoginStep::SecondFactor(_) => f.write_str("SecondFactor([redacted])"),
        }
    }
}

pub struct LoginInput {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: SecretString,
}

impl Accounts {
    /// Checks email/username + password (and, under mandatory verification, a confirmed
    /// address). Without MFA the login is done and recorded, and the caller issues the
    /// credential of its mode; with MFA it waits for the second factor
    /// (`verify_second_factor`), which records the whole login.
    pub async fn authenticate(&self, input: LoginInput, caller: &Caller) -> Result<LoginStep> {
        // The identifier actually checked (per `account.login_methods`) names the account;
        // it is looked up first, known or not, so both cost the same one query.
        let identifier = self.identifier(&input);
        let found = match &identifier {
            Some(Identifier::Email(email)) => store::users::find_by_email(&self.db, email).await?,
            Some(Identifier::Username(name)) => {
                store::users::find_by_username(&self.db, name).await?
            }
            None => None,
        };
        // allauth: every attempt counts against `login`; failures against `login_failed`, per
        // IP and per key. The key is the account when there is one, so every way of naming it
        // (email or username, any case) shares one budget; otherwise the identifier as
        // checked, so an unknown address is limited alike and the limit reveals nothing.
        // The failure is counted before the password is checked and given back on success:
        // counted after, a burst of parallel guesses would all pass the check first.
        let key = match (&found, &identifier) {
            (Some(user), _) => Some(login_failed_key(user.id)),
            (None, Some(identifier)) => Some(identifier.as_key()),
            (None, None) => None,
        };
        let subjects = Subjects {
            ip: caller.ip,
            key: key.as_deref(),
            user: None,
        };
        let refused = match self.limits.hit(Action::Login, &subjects).await {
            Ok(()) => self
                .limits
                .hit(Action::LoginFailed, &subjects)
                .await
                .err()
                .map(|err| (Action::LoginFailed, err)),
            Err(err) => Some((Action::Login, err)),
        };
        if let Some((action, err)) = refused {
            if matches!(err, Error::Throttled { .. }) {
                // The trail shows whose account is under attack.
                let user_id = found.as_ref().map(|u| u.id);
                self.audit
                    .record(
                        caller,
                        Entry::blocked(Event::RateLimit, action.name(), user_id),
                    )
                    .await?;
            }
            return Err(err);
        }
        match self
            .check_credentials(identifier.is_some(), found, input)
            .await?
        {
            Ok(user) => {
                // The account's failures are forgiven; the IP only gets this attempt back.
                if let Some(key) = &key {
                    self.limits.clear_key(Action::LoginFailed, key).await?;
                }
                let ip_only = Subjects {
                    key: None,
                    ..subjects
                };
                self.limits.release(Action::LoginFailed, &ip_only).await?;
                if self.mfa_enabled(user.id).await? {
                    self.metrics.record_login("mfa_required", None);
                    return Ok(LoginStep::SecondFactor(
                        self.start_second_factor(&user).await?,
                    ));
                }
                self.audit
                    .record(caller, Entry::success(Event::Login, user.id))
                    .await?;
                Ok(LoginStep::Done(user))
            }
            Err(refusal) => {
                self.audit
                    .record(
                        caller,
                        Entry::failure(Event::Login, refusal.reason, refusal.user_id),
                    )
                    .await?;
                Err(FieldErrors::non_field(refusal.message))
            }
        }
    }

    /// Which identifier a login is checked by: the email when email login is on and one was
    /// sent, else the username when username login is on; what is sent for a method that is
    /// off is ignored.
    fn identifier(&self, input: &LoginInput) -> Option<Identifier> {
        let methods = &self.config.account.login_methods;
        let email = input
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty() && methods.contains(&LoginMethod::Email))
            .map(|e| Identifier::Email(normalize_email(e)));
        email.or_else(|| {
            input
                .username
                .as_deref()
                .filter(|u| !u.is_empty() && methods.contains(&LoginMethod::Username))
                .map(|u| Identifier::Username(u.to_owned()))
        })
    }

    /// Checks a login's password against the account found (or a dummy hash when none was).
    /// The outer error is a failure of the check itself; the inner one a refused login, with
    /// what the audit trail records about it.
    async fn check_credentials(
        &self,
        identified: bool,
        found: Option<user::Model>,
        input: LoginInput,
    ) -> Result<std::result::Result<User, LoginRefusal>> {
        if !identified {
            let methods = &self.config.account.login_methods;
            let by_email = methods.contains(&LoginMethod::Email);
            let by_username = methods.contains(&LoginMethod::Username);
            return Ok(Err(LoginRefusal {
                reason: "incomplete",
                user_id: None,
                message: match (by_email, by_username) {
                    (true, false) => MUST_INCLUDE_EMAIL,
                    (false, true) => MUST_INCLUDE_USERNAME,
                    _ => MUST_INCLUDE_EITHER,
                },
            }));
        }
        // Unknown users still cost one argon2 verification (against a dummy hash).
        let verified = self
            .hasher
            .verify(
                &input.password,
                found.as_ref().map(|u| u.password_hash.as_str()),
            )
            .await?;
        let refused = |reason, user_id, message| {
            Ok(Err(LoginRefusal {
                reason,
                user_id,
                message,
            }))
        };
        let user = match found {
            Some(user) if verified.matches && user.is_active => user,
            // One answer for all three; only the trail tells them apart.
            None => return refused("unknown_account", None, BAD_CREDENTIALS),
            Some(user) if !verified.matches => {
                return refused("wrong_password", Some(user.id), BAD_CREDENTIALS);
            }
            Some(user) => return refused("inactive", Some(user.id), BAD_CREDENTIALS),
        };
        if self.held_back_for_confirmation(&user).await? {
            return refused("email_not_verified", Some(user.id), EMAIL_NOT_VERIFIED);
        }
        if verified.needs_rehash {
            let hash = self.hasher.hash(&input.password).await?;
            store::users::set_password_hash(&self.db, user.id, &hash).await?;
        }
        store::users::record_login(&self.db, user.id, Utc::now()).await?;
        Ok(Ok(user.into()))
    }
}

impl Accounts {
    /// Under mandatory verification, an account whose primary address is unconfirmed does
    /// not log in, whichever way it proves who it is.
    pub(super) async fn held_back_for_confirmation(&self, user: &user::Model) -> Result<bool> {
        Ok(
            self.config.account.email_verification == EmailVerification::Mandatory
                && !store::users::email_verified(&self.db, user.id, &user.email).await?,
        )
    }
}

/// A refused login: the answer's message, and what the audit trail records.
struct LoginRefusal {
    reason: &'static str,
    user_id: Option<UserId>,
    message: &'static str,
}

/// The identifier a login is checked by.
enum Identifier {
    /// Normalised (trimmed, lowercased).
    Email(String),
    /// As sent; usernames compare case-insensitively.
    Username(String),
}

impl Identifier {
    /// The per-key limit's key for an identifier that names no account.
    fn as_key(&self) -> String {
        match self {
            Identifier::Email(email) => email.clone(),
            Identifier::Username(name) => format!("username:{}", name.to_lowercase()),
        }
    }
}

/// The per-key failed-login limit's key for an account, however the login named it; a
/// password reset clears it.
pub(super) fn login_failed_key(user_id: UserId) -> String {
    format!("account:{user_id}")
}
