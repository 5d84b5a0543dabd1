//! Two-factor authentication: a TOTP authenticator with recovery codes, on dj-rest-auth 7.2's
//! wire contract, with its weak spots fixed:
//! - the login's second step (`verify_second_factor`) is a challenge stored by digest: single
//!   use, dead after [`MAX_WRONG_CODES`], and limited like `login_failed`;
//! - a TOTP step accepted once is refused again, on every instance (`mfa_accepted_steps`);
//! - the TOTP secret and the recovery-code seed are sealed at rest ([`Sealer`]); a pending
//!   activation travels sealed too, bound to its user;
//! - a password reset leaves MFA on.

pub mod recovery_codes;
pub mod totp;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::messages::*;
use crate::secrets;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::login::login_failed_key;
use crate::service::principal::{Principal, User};
use crate::service::rate_limits::{Action, Subjects};
use crate::service::sealing::{Purpose, Sealer};
use crate::store::{self, users::UserId};

/// Wrong codes a login challenge survives; the next one ends it (the client logs in again).
pub const MAX_WRONG_CODES: i32 = 5;
/// The longest code `mfa/verify/` reads (a recovery code, `xxxx-xxxx`).
pub const MAX_CODE_LENGTH: usize = 9;

/// Whether a user has MFA, and since when.
#[derive(Debug, Clone, Copy)]
pub struct MfaStatus {
    pub enabled: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What `GET mfa/totp/activate/` shows. Holds the new secret: nothing of it in `Debug`.
pub struct TotpSetup {
    pub secret: String,
    pub url: String,
    pub qr_code_data_uri: String,
    pub activation_token: String,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup([redacted])")
    }
}

/// A pending activation, sealed into the activation token.
#[derive(Serialize, Deserialize)]
struct PendingActivation {
    user: i64,
    secret: String,
    expires: i64,
}

impl Accounts {
    /// The sealer built with the service (`None` only without a `secret_key`).
    fn issuer(&self) -> &str {
        self.config
            .mfa
            .totp_issuer
            .as_deref()
            .unwrap_or(&self.config.email.site_name)
    }

    /// Whether logging in as `user` needs a second factor.
    pub async fn mfa_enabled(&self, user: UserId) -> Result<bool> {
        Ok(self.config.mfa.enabled
            && store::mfa::find(&self.db, user, store::mfa::TOTP)
                .await?
                .is_some())
    }

    pub async fn mfa_status(&self, user: UserId) -> Result<MfaStatus> {
        let totp = store::mfa::find(&self.db, user, store::mfa::TOTP).await?;
        Ok(MfaStatus {
            enabled: totp.is_some(),
            created_at: totp.as_ref().map(|t| t.created_at),
            last_used_at: totp.and_then(|t| t.last_used_at),
        })
    }

    /// A new secret for `user`, its URL and QR code, and the token that activates it. Nothing
    /// is stored until the activation.
    pub fn begin_totp_activation(&self, user: &User) -> Result<TotpSetup> {
        let mfa = &self.config.mfa;
        let secret = totp::new_secret();
        let url = totp::url(mfa, &secret, &user.email, self.issuer());
        let pending = PendingActivation {
            user: user.id.0,
            secret: totp::base32(&secret),
            expires: (Utc::now() + seconds(mfa.ephemeral_token_timeout)).timestamp(),
        };
        let pending = serde_json::to_vec(&pending).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(TotpSetup {
            secret: totp::base32(&secret),
            qr_code_data_uri: totp::qr_code_data_uri(&url),
            url,
            activation_token: self.sealer()?.seal(Purpose::TotpActivation, &pending),
        })
    }

    /// Turns TOTP on with the secret of `activation_token`, once `code` proves the app has it;
    /// answers the new recovery codes.
    pub async fn activate_totp(
        &self,
        principal: &Principal,
        activation_token: &str,
        code: &str,
        caller: &Caller,
    ) -> Result<Vec<String>> {
        let user = principal.user.id;
        if self.mfa_status(user).await?.enabled {
            return Err(Error::BadRequest(MFA_ALREADY_ENABLED));
        }
        let sealer = self.sealer()?;
        let pending: PendingActivation = sealer
            .open(Purpose::TotpActivation, activation_token)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .filter(|p: &PendingActivation| p.expires > Utc::now().timestamp())
            .ok_or_else(|| FieldErrors::single("activation_token", ACTIVATION_TOKEN_INVALID))?;
        if pending.user != user.0 {
            return Err(FieldErrors::single(
                "activation_token",
                ACTIVATION_TOKEN_OTHER_USER,
            ));
        }
        let secret = totp::Secret::decode(&pending.secret)
            .ok_or_else(|| FieldErrors::single("activation_token", ACTIVATION_TOKEN_INVALID))?;
        let txn = store::begin_write(&self.db).await?;
        if !self.accept_totp(&txn, user, &secret, code).await? {
            txn.rollback().await?;
            self.audit
                .record(
                    caller,
                    Entry::failure(Event::MfaActivation, "invalid_code", Some(user)),
                )
                .await?;
            return Err(FieldErrors::single("code", ACTIVATION_CODE_INVALID));
        }
        let now = Utc::now();
        let sealed = sealer.seal(Purpose::TotpSecret, &secret.0);
        store::mfa::put(&txn, user, store::mfa::TOTP, &sealed, now).await?;
        let codes = self.new_recovery_codes(&txn, sealer, user, now).await?;
        self.audit
            .record_in(&txn, caller, Entry::success(Event::MfaActivation, user))
            .await?;
        txn.commit().await?;
        Ok(codes)
    }

    /// Turns MFA off (TOTP and recovery codes) once `code`, a TOTP code, proves the device.
    pub async fn deactivate_totp(
        &self,
        principal: &Principal,
        code: &str,
        caller: &Caller,
    ) -> Result<()> {
        let user = principal.user.id;
        let txn = store::begin_write(&self.db).await?;
        let Some(authenticator) = store::mfa::lock(&txn, user, store::mfa::TOTP).await? else {
            txn.rollback().await?;
            return Err(Error::BadRequest(MFA_NOT_ENABLED));
        };
        let secret = self.open_totp(&authenticator.secret)?;
        if !self.accept_totp(&txn, user, &secret, code).await? {
            txn.rollback().await?;
            self.audit
                .record(
                    caller,
                    Entry::failure(Event::MfaDeactivation, "invalid_code", Some(user)),
                )
                .await?;
            return Err(FieldErrors::single("code", CODE_INVALID));
        }
        store::mfa::remove_all(&txn, user).await?;
        self.audit
            .record_in(&txn, caller, Entry::success(Event::MfaDeactivation, user))
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The unused recovery codes, in the order they were issued (none without MFA).
    pub async fn recovery_codes(&self, user: UserId) -> Result<Vec<String>> {
        let Some(row) = store::mfa::find(&self.db, user, store::mfa::RECOVERY_CODES).await? else {
            return Ok(Vec::new());
        };
        let seed = self.open_seed(&row.secret)?;
        Ok(recovery_codes::unused(
            &seed,
            self.config.mfa.recovery_code_count,
            row.used_mask,
        ))
    }

    /// New recovery codes; the old ones stop working.
    pub async fn regenerate_recovery_codes(
        &self,
        user: UserId,
        caller: &Caller,
    ) -> Result<Vec<String>> {
        if !self.mfa_status(user).await?.enabled {
            return Err(Error::BadRequest(MFA_NOT_ENABLED));
        }
        let txn = store::begin_write(&self.db).await?;
        let codes = self
            .new_recovery_codes(&txn, self.sealer()?, user, Utc::now())
            .await?;
        self.audit
            .record_in(
                &txn,
                caller,
                Entry::success(Event::RecoveryCodesRegenerated, user),
            )
            .await?;
        txn.commit().await?;
        Ok(codes)
    }

    /// After a correct password: the login's second step, as a challenge token.
    pub(crate) async fn start_second_factor(&self, user: &User) -> Result<String> {
        let token = secrets::random_hex(32);
        let now = Utc::now();
        let expires = now + seconds(self.config.mfa.ephemeral_token_timeout);
        store::mfa::prune_challenges(&self.db, now).await?;
        store::mfa::insert_challenge(&self.db, &secrets::digest(&token), user.id, now, expires)
            .await?;
        Ok(token)
    }

    /// The login's second step: the challenge and a TOTP or recovery code. Answers the user
    /// to hand a credential to; the challenge is spent.
    pub async fn verify_second_factor(
        &self,
        token: &str,
        code: &str,
        caller: &Caller,
    ) -> Result<User> {
        let digest = secrets::digest(token);
        let invalid_token = || FieldErrors::single("ephemeral_token", EPHEMERAL_TOKEN_INVALID);
        // The limit first, outside the transaction: its counters and its audit entry are
        // written on other connections, which on SQLite would wait for this one's lock.
        let Some(seen) = store::mfa::find_challenge(&self.db, &digest, Utc::now()).await? else {
            return Err(invalid_token());
        };
        let key = login_failed_key(seen.user_id);
        let subjects = Subjects {
            ip: caller.ip,
            key: Some(&key),
            user: None,
        };
        self.limit(Action::LoginFailed, &subjects, caller, Some(seen.user_id))
            .await?;
        let txn = store::begin_write(&self.db).await?;
        // Locked now: a concurrent verify of the same challenge waits, then finds it spent.
        let Some(challenge) = store::mfa::lock_challenge(&txn, &digest, Utc::now()).await? else {
            txn.rollback().await?;
            return Err(invalid_token());
        };
        let user_id = challenge.user_id;
        let Some(user) = store::users::find_by_id(&txn, user_id).await? else {
            txn.rollback().await?;
            return Err(invalid_token());
        };
        // MFA switched off meanwhile: the password was enough.
        let accepted = self
            .accept_second_factor(&txn, user_id, code)
            .await?
            .unwrap_or(true);
        if !accepted {
            if challenge.failures + 1 >= MAX_WRONG_CODES {
                store::mfa::end_challenge(&txn, &digest).await?;
            } else {
                store::mfa::count_failure(&txn, &digest).await?;
            }
            self.audit
                .record_in(
                    &txn,
                    caller,
                    Entry::failure(Event::Login, "invalid_code", Some(user_id)),
                )
                .await?;
            txn.commit().await?;
            return Err(FieldErrors::single("code", CODE_INVALID));
        }
        store::mfa::end_challenge(&txn, &digest).await?;
        if !user.is_active {
            txn.commit().await?;
            return Err(FieldErrors::single("detail", USER_ACCOUNT_DISABLED));
        }
        self.audit
            .record_in(
                &txn,
                caller,
                Entry::success(Event::Login, user_id).because("mfa"),
            )
            .await?;
        txn.commit().await?;
        self.limits.clear_key(Action::LoginFailed, &key).await?;
        Ok(user.into())
    }

    /// Support: switches MFA off for the account with this address (a lost device and lost
    /// codes). The user sets it up again after logging in with the password.
    pub async fn disable_mfa(&self, email: &str) -> Result<()> {
        let email = crate::service::email_address::normalize_email(email);
        let Some(user) = store::users::find_by_email(&self.db, &email).await? else {
            return Err(Error::NotFound);
        };
        let txn = store::begin_write(&self.db).await?;
        store::mfa::remove_all(&txn, user.id).await?;
        self.audit
            .record_in(
                &txn,
                &Caller::new(None, Some("tessera mfa disable")),
                Entry::success(Event::MfaDeactivation, user.id).because("operator"),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Whether `code` is the user's current TOTP code (not accepted before) or one of their
    /// unused recovery codes; spends it when it is. `None` when the user has no MFA.
    pub(super) async fn accept_second_factor<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        user: UserId,
        code: &str,
    ) -> Result<Option<bool>> {
        let Some(authenticator) = store::mfa::lock(db, user, store::mfa::TOTP).await? else {
            return Ok(None);
        };
        let secret = self.open_totp(&authenticator.secret)?;
        if self.accept_totp(db, user, &secret, code).await? {
            store::mfa::mark_used(db, authenticator.id, 0, Utc::now()).await?;
            return Ok(Some(true));
        }
        Ok(Some(self.use_recovery_code(db, user, code).await?))
    }

    /// Whether `code` is a TOTP code of `secret` for a step not accepted before; claims the
    /// step when it is.
    async fn accept_totp<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        user: UserId,
        secret: &totp::Secret,
        code: &str,
    ) -> Result<bool> {
        let now = Utc::now();
        let Ok(unix) = u64::try_from(now.timestamp()) else {
            return Ok(false);
        };
        let Some(step) = totp::matching_step(&self.config.mfa, &secret.0, code, unix) else {
            return Ok(false);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        // Steps older than the accepted window can never match again: forget them.
        let forget_before = step - 2;
        Ok(store::mfa::claim_step(db, user, step, now, forget_before).await?)
    }

    async fn use_recovery_code<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        user: UserId,
        code: &str,
    ) -> Result<bool> {
        let Some(row) = store::mfa::lock(db, user, store::mfa::RECOVERY_CODES).await? else {
            return Ok(false);
        };
        let seed = self.open_seed(&row.secret)?;
        let count = self.config.mfa.recovery_code_count;
        match recovery_codes::match_unused(&seed, count, row.used_mask, code) {
            Some(index) => {
                store::mfa::mark_used(db, row.id, row.used_mask | (1 << index), Utc::now()).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn new_recovery_codes<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        sealer: &Sealer,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let seed = recovery_codes::new_seed();
        let sealed = sealer.seal(Purpose::RecoveryCodeSeed, &seed);
        store::mfa::put(db, user, store::mfa::RECOVERY_CODES, &sealed, now).await?;
        Ok(recovery_codes::codes(
            &seed,
            self.config.mfa.recovery_code_count,
        ))
    }

    fn open_totp(&self, sealed: &str) -> Result<totp::Secret> {
        self.sealer()?
            .open(Purpose::TotpSecret, sealed)
            .map(totp::Secret)
            .ok_or_else(unreadable)
    }

    fn open_seed(&self, sealed: &str) -> Result<Vec<u8>> {
        self.sealer()?
            .open(Purpose::RecoveryCodeSeed, sealed)
            .ok_or_else(unreadable)
    }
}

/// A sealed secret this `secret_key` cannot open (the key changed since it was sealed).
fn unreadable() -> Error {
    Error::Internal("an MFA secret cannot be opened with the current secret_key".into())
}

fn seconds(value: u64) -> Duration {
    Duration::seconds(i64::try_from(value).unwrap_or(i64::MAX / 1000))
}
