//! Account use cases: registration, login, logout, profile, password change.
//!
//! Each method owns its transaction and speaks in plain Rust types; `api` turns them into
//! HTTP. Messages are dj-rest-auth's and Django's, byte for byte, because frontends match on
//! them.

use std::sync::Arc;

use chrono::{Duration, Utc};
use entity::user;
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, EmailVerification, LoginMethod};
use crate::mail::MailKind;
use crate::mail::outbox::Outbox;
use crate::service::audit::{AuditTrail, Caller, Entry, Event};
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::password_hashing::PasswordHasher;
use crate::service::password_validation::{PasswordPolicy, UserAttributes};
use crate::service::rate_limits::{Action, RateLimiter, Subjects};
use crate::service::{secrets, usernames};
use crate::store::credentials::Keep;
use crate::store::refresh_tokens::FamilyId;
use crate::store::{self, tokens::TokenId, users::NewUser, users::UserId};

pub const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
pub const EMAIL_NOT_VERIFIED: &str = "E-mail is not verified.";
pub const EMAIL_TAKEN: &str = "User is already registered with this e-mail address.";
pub const REGISTRATION_MISMATCH: &str = "The two password fields didn't match.";
pub const NEW_PASSWORD_MISMATCH: &str = "The two password fields didn\u{2019}t match.";
pub const WRONG_OLD_PASSWORD: &str =
    "Your old password was entered incorrectly. Please enter it again.";
pub const INVALID_TOKEN: &str = "Invalid token.";
pub const USER_INACTIVE: &str = "User inactive or deleted.";
pub const FIELD_REQUIRED: &str = "This field is required.";
pub const MAX_NAME_LENGTH: usize = 150;

/// A user as the rest of the application sees it: no password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

impl From<user::Model> for User {
    fn from(model: user::Model) -> Self {
        Self {
            id: model.id,
            email: model.email,
            username: model.username,
            first_name: model.first_name,
            last_name: model.last_name,
            is_active: model.is_active,
            is_staff: model.is_staff,
            is_superuser: model.is_superuser,
        }
    }
}

/// Who is calling, and with which credential (so logout can end exactly that one).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
}

/// The credential a request was authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An opaque token (token mode).
    Token(TokenId),
    /// A JWT access token; `family` is the refresh family it was issued with.
    Jwt { family: Option<FamilyId> },
    /// A server-side session (session mode).
    Session(i64),
}

impl Credential {
    /// The credential to spare when a password change ends the user's others.
    fn spared(self) -> Keep {
        match self {
            Credential::Token(id) => Keep::Token(id),
            Credential::Jwt { family: Some(id) } => Keep::RefreshFamily(id),
            Credential::Jwt { family: None } => Keep::Nothing,
            Credential::Session(id) => Keep::Session(id),
        }
    }
}

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

pub struct LoginInput {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: SecretString,
}

/// `None` leaves a field unchanged (PATCH semantics; PUT sends all of them).
pub struct ProfileUpdate {
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

pub struct PasswordChangeInput {
    pub old_password: Option<SecretString>,
    pub new_password1: SecretString,
    pub new_password2: SecretString,
}

/// Trims and lowercases an email address: the one form it is stored and compared in.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[derive(Clone)]
pub struct Accounts {
    pub(super) db: DatabaseConnection,
    pub(super) config: Arc<Config>,
    pub(super) hasher: PasswordHasher,
    pub(super) policy: PasswordPolicy,
    pub(super) outbox: Outbox,
    /// Signing and verification keys, in JWT mode.
    pub(super) jwt: Option<crate::service::jwt::JwtKeys>,
    pub(super) limits: RateLimiter,
    pub(super) audit: AuditTrail,
}

impl Accounts {
    pub fn new(
        db: DatabaseConnection,
        config: Arc<Config>,
        hasher: PasswordHasher,
        outbox: Outbox,
    ) -> Result<Self> {
        let policy = PasswordPolicy {
            min_length: config.account.password_min_length,
        };
        let limits = RateLimiter::new(&config.rate_limits, db.clone())?;
        let audit = AuditTrail::new(db.clone(), config.audit.retention_days);
        Ok(Self {
            db,
            config,
            hasher,
            policy,
            outbox,
            jwt: None,
            limits,
            audit,
        })
    }

    /// Enables JWT issuing and verification with `keys`.
    pub fn with_jwt(mut self, keys: crate::service::jwt::JwtKeys) -> Self {
        self.jwt = Some(keys);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The public keys that verify issued JWTs (`{"keys": []}` outside JWT mode).
    pub fn jwks(&self) -> serde_json::Value {
        match &self.jwt {
            Some(keys) => keys.jwks(),
            None => serde_json::json!({ "keys": [] }),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn register(&self, input: RegistrationInput, caller: &Caller) -> Result<Registered> {
        let subjects = Subjects {
            ip: caller.ip,
            ..Default::default()
        };
        self.limit(Action::Signup, &subjects, caller, None).await?;
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
            Some(email) => store::users::find_by_email(&self.db, email).await?,
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
            errors.extend(
                "password1",
                self.policy.validate(password1.expose_secret(), &attributes),
            );
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
        let confirm = self.config.account.email_verification != EmailVerification::None;
        let inserted = self
            .insert_user(
                &email,
                username.as_deref(),
                &password_hash,
                false,
                confirm,
                Some(caller),
            )
            .await;
        let user = match inserted {
            Ok(user) => user,
            // Lost a race against a concurrent signup for the same address.
            Err(Error::Invalid(errors)) if errors.has("email") => {
                let owner = store::users::find_by_email(&self.db, &email).await?;
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
        if store::users::find_by_email(&self.db, &email)
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
        errors.extend(
            "password",
            self.policy.validate(password.expose_secret(), &attributes),
        );
        errors.into_result()?;
        let hash = self.hasher.hash(password).await?;
        self.insert_user(&email, None, &hash, true, false, None)
            .await
    }

    /// Inserts a user, generating a unique username from the email when none is given, and
    /// with `confirm` queues the confirmation email in the same transaction. Uniqueness is
    /// settled by the database's unique indexes, not by the earlier checks.
    async fn insert_user(
        &self,
        email: &str,
        username: Option<&str>,
        password_hash: &str,
        superuser: bool,
        confirm: bool,
        signup: Option<&Caller>,
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
                    is_staff: superuser,
                    is_superuser: superuser,
                    email_verified: superuser,
                    now: Utc::now(),
                },
            )
            .await;
            match inserted {
                Ok((user, address)) => {
                    let user = User::from(user);
                    if confirm {
                        self.queue_confirmation(&txn, &user, address.id).await?;
                    }
                    if let Some(caller) = signup {
                        let entry = Entry::success(Event::Registration, user.id);
                        self.audit.record_in(&txn, caller, entry).await?;
                    }
                    txn.commit().await?;
                    self.outbox.wake();
                    return Ok(user);
                }
                Err(err) if store::is_unique_violation(&err) => {
                    txn.rollback().await?;
                    if store::users::find_by_email(&self.db, email)
                        .await?
                        .is_some()
                    {
                        return Err(FieldErrors::single("email", EMAIL_TAKEN));
                    }
                    if username.is_some() {
                        return Err(FieldErrors::single("username", usernames::TAKEN));
                    }
                    // A generated name was taken in between: pick again.
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(Error::Internal("could not find a free username".into()))
    }

    /// Checks email/username + password (and, under mandatory verification, a confirmed
    /// address) and records the login. The caller issues the credential of its mode.
    pub async fn authenticate(&self, input: LoginInput, caller: &Caller) -> Result<User> {
        // allauth: every attempt counts against `login`; failures against `login_failed`, per
        // IP and per address (whether or not it has an account, so the limit reveals nothing).
        // The failure is counted before the password is checked and given back on success:
        // counted after, a burst of parallel guesses would all pass the check first.
        let key = login_key(&input);
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
                // Looked up only now: the trail should show whose account is under attack.
                let user_id = match key.as_deref() {
                    Some(key) => store::users::find_by_email_or_username(&self.db, key)
                        .await?
                        .map(|u| u.id),
                    None => None,
                };
                self.audit
                    .record(
                        caller,
                        Entry::blocked(Event::RateLimit, action.name(), user_id),
                    )
                    .await?;
            }
            return Err(err);
        }
        match self.check_credentials(input).await? {
            Ok(user) => {
                // The address's failures are forgiven; the IP only gets this attempt back.
                if let Some(key) = &key {
                    self.limits.clear_key(Action::LoginFailed, key).await?;
                }
                let ip_only = Subjects {
                    key: None,
                    ..subjects
                };
                self.limits.release(Action::LoginFailed, &ip_only).await?;
                self.audit
                    .record(caller, Entry::success(Event::Login, user.id))
                    .await?;
                Ok(user)
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

    /// Checks a login's credentials. The outer error is a failure of the check itself; the
    /// inner one a refused login, with what the audit trail records about it.
    async fn check_credentials(
        &self,
        input: LoginInput,
    ) -> Result<std::result::Result<User, LoginRefusal>> {
        let methods = &self.config.account.login_methods;
        let by_email = methods.contains(&LoginMethod::Email);
        let by_username = methods.contains(&LoginMethod::Username);
        let email = input.email.filter(|e| !e.trim().is_empty() && by_email);
        let username = input.username.filter(|u| !u.is_empty() && by_username);
        let found = match (&email, &username) {
            (Some(email), _) => {
                store::users::find_by_email(&self.db, &normalize_email(email)).await?
            }
            (None, Some(username)) => store::users::find_by_username(&self.db, username).await?,
            (None, None) => {
                return Ok(Err(LoginRefusal {
                    reason: "incomplete",
                    user_id: None,
                    message: match (by_email, by_username) {
                        (true, false) => r#"Must include "email" and "password"."#,
                        (false, true) => r#"Must include "username" and "password"."#,
                        _ => r#"Must include either "username" or "email" and "password"."#,
                    },
                }));
            }
        };
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
        if self.config.account.email_verification == EmailVerification::Mandatory
            && !store::users::email_verified(&self.db, user.id, &user.email).await?
        {
            return refused("email_not_verified", Some(user.id), EMAIL_NOT_VERIFIED);
        }
        if verified.needs_rehash {
            let hash = self.hasher.hash(&input.password).await?;
            store::users::set_password_hash(&self.db, user.id, &hash).await?;
        }
        store::users::record_login(&self.db, user.id, Utc::now()).await?;
        Ok(Ok(user.into()))
    }

    /// Counts a hit of `action`; a refusal is recorded in the audit trail.
    pub(super) async fn limit(
        &self,
        action: Action,
        subjects: &Subjects<'_>,
        caller: &Caller,
        user_id: Option<UserId>,
    ) -> Result<()> {
        let result = self.limits.hit(action, subjects).await;
        if matches!(result, Err(Error::Throttled { .. })) {
            self.audit
                .record(
                    caller,
                    Entry::blocked(Event::RateLimit, action.name(), user_id),
                )
                .await?;
        }
        result
    }

    /// A new opaque token for the user (token mode): 40 hex characters, shown once, stored
    /// only as a digest.
    pub async fn issue_token(&self, user_id: UserId) -> Result<String> {
        let key = secrets::new_token_key();
        let now = Utc::now();
        let ttl = self.config.auth.token_ttl_seconds;
        let expires_at =
            (ttl > 0).then(|| now + Duration::seconds(ttl.min(i64::MAX as u64) as i64));
        store::tokens::insert(&self.db, user_id, &secrets::digest(&key), now, expires_at).await?;
        Ok(key)
    }

    /// Resolves `Authorization: Token <key>` to its user.
    pub async fn authenticate_token(&self, key: &str) -> Result<Principal> {
        if !secrets::looks_like_token_key(key) {
            return Err(Error::Unauthenticated(INVALID_TOKEN));
        }
        let found = store::tokens::find_live(&self.db, &secrets::digest(key), Utc::now()).await?;
        let Some((token, user)) = found else {
            return Err(Error::Unauthenticated(INVALID_TOKEN));
        };
        if !user.is_active {
            return Err(Error::Unauthenticated(USER_INACTIVE));
        }
        Ok(Principal {
            user: user.into(),
            credential: Credential::Token(token.id),
        })
    }

    /// Ends the presented credential only; the user's other devices stay logged in.
    /// Ends the request's token or session (a JWT ends with its refresh family instead).
    pub async fn logout(&self, principal: &Principal, caller: &Caller) -> Result<()> {
        let ended = match principal.credential {
            Credential::Token(id) => {
                store::tokens::delete(&self.db, id).await?;
                "token"
            }
            Credential::Session(id) => {
                store::sessions::delete(&self.db, id).await?;
                "session"
            }
            Credential::Jwt { .. } => return Ok(()),
        };
        self.audit
            .record(
                caller,
                Entry::success(Event::Logout, principal.user.id).because(ended),
            )
            .await
    }

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
                txn.commit().await?;
                Ok(user.into())
            }
            Err(err) if store::is_unique_violation(&err) => {
                Err(FieldErrors::single("username", usernames::TAKEN))
            }
            Err(err) => Err(err.into()),
        }
    }

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
                errors.add("old_password", FIELD_REQUIRED);
            }
            None => {}
        }
        if input.new_password1.expose_secret() != input.new_password2.expose_secret() {
            errors.add("new_password2", NEW_PASSWORD_MISMATCH);
        } else {
            let attributes = UserAttributes {
                username: &current.username,
                email: &current.email,
                first_name: &current.first_name,
                last_name: &current.last_name,
            };
            errors.extend(
                "new_password2",
                self.policy
                    .validate(input.new_password2.expose_secret(), &attributes),
            );
        }
        errors.into_result()?;

        let hash = self.hasher.hash(&input.new_password1).await?;
        let keep = match self.config.auth.logout_on_password_change {
            true => Keep::Nothing,
            false => principal.credential.spared(),
        };
        let txn = store::begin_write(&self.db).await?;
        self.set_password(&txn, &User::from(current), &hash, keep, "password changed")
            .await?;
        let entry = Entry::success(Event::PasswordChange, user_id);
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Stores a new password hash and does what must go with it, in the caller's transaction:
    /// ends the user's other credentials (all but `keep`), kills outstanding reset links, and
    /// queues the "password changed" notice.
    pub(super) async fn set_password<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        user: &User,
        password_hash: &str,
        keep: Keep,
        reason: &str,
    ) -> Result<()> {
        let now = Utc::now();
        store::users::set_password_hash(db, user.id, password_hash).await?;
        store::credentials::revoke_all(db, user.id, keep, now, reason).await?;
        store::password_resets::delete_for_user(db, user.id).await?;
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": user.email,
            "user": user_context(user),
        });
        self.outbox
            .enqueue(db, MailKind::PasswordChanged, &user.email, &context)
            .await?;
        Ok(())
    }

    /// Under enumeration prevention a signup for a taken address answers as if it were new;
    /// the owner is told by email instead.
    async fn tell_owner_account_exists(&self, email: &str) -> Result<()> {
        let Some(owner) = store::users::find_by_email(&self.db, email).await? else {
            return Ok(());
        };
        let owner = User::from(owner);
        let context = serde_json::json!({
            "site_name": self.config.email.site_name,
            "email": owner.email,
            "user": user_context(&owner),
            "site_url": self.config.public_url,
        });
        let txn = store::begin_write(&self.db).await?;
        self.outbox
            .enqueue(&txn, MailKind::AccountAlreadyExists, &owner.email, &context)
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Why `username` cannot be used by `owner` (None: it can).
    async fn username_problem(
        &self,
        username: &str,
        owner: Option<UserId>,
    ) -> Result<Option<String>> {
        if username.chars().count() > usernames::MAX_LENGTH {
            return Ok(Some(too_long(usernames::MAX_LENGTH)));
        }
        if !usernames::is_valid(username) {
            return Ok(Some(usernames::INVALID.into()));
        }
        if store::users::username_taken(&self.db, username, owner).await? {
            return Ok(Some(usernames::TAKEN.into()));
        }
        Ok(None)
    }
}

/// A refused login: the answer's message, and what the audit trail records.
struct LoginRefusal {
    reason: &'static str,
    user_id: Option<UserId>,
    message: &'static str,
}

/// The address (or username) a login is about: the key of per-key limits.
fn login_key(input: &LoginInput) -> Option<String> {
    let email = input
        .email
        .as_deref()
        .map(normalize_email)
        .filter(|e| !e.is_empty());
    email.or_else(|| {
        input
            .username
            .as_deref()
            .map(|u| u.to_lowercase())
            .filter(|u| !u.is_empty())
    })
}

/// The `user` object templates see.
pub(super) fn user_context(user: &User) -> serde_json::Value {
    serde_json::json!({
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    })
}

/// "3 days", "1 hour", "90 seconds": for "this link expires in ..." sentences.
pub(super) fn human_duration(seconds: u64) -> String {
    let (count, unit) = match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// DRF's `max_length` message.
pub fn too_long(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}
