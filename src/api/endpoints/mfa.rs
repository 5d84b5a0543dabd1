//! `mfa/...` (dj-rest-auth 7.2's MFA package) and `reauthenticate/`, in mode `M`.
//!
//! As in dj-rest-auth, the "already enabled" / "not enabled" answers come before the body is
//! validated, so the bodies here carry their field errors to the handler instead of failing
//! in the extractor.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};

use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::api::mode::credentials::Authenticated;
use crate::api::mode::{Mode, finish_login};
use crate::api::responses::{Detail, Success};
use crate::api::session_cookie::CookieSessions;
use crate::api::tags::Tag;
use crate::messages;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::error::FieldErrors;
use crate::service::login::LoginStep;
use crate::service::mfa::MAX_CODE_LENGTH;
use crate::service::principal::Principal;

/// The login's second step: the `ephemeral_token` `login/` answered, and a code from the
/// authenticator app or one of the recovery codes.
#[derive(Object)]
#[oai(example)]
pub struct MfaVerifyRequest {
    #[oai(validator(max_length = 128))]
    ephemeral_token: String,
    /// A TOTP code (spaces ignored) or a recovery code (`xxxx-xxxx`, any case).
    #[oai(validator(max_length = 9))]
    code: String,
}

impl Example for MfaVerifyRequest {
    fn example() -> Self {
        Self {
            ephemeral_token: "6f1c…".into(),
            code: "123456".into(),
        }
    }
}

/// A code and, for activation, the `activation_token` of `GET mfa/totp/activate/`.
struct CodeInput {
    token: Option<String>,
    code: Option<String>,
    errors: FieldErrors,
}

/// Reads `code` and the token field `TOKEN` (empty: none).
struct Code<const ACTIVATION: bool>(CodeInput);

impl<const ACTIVATION: bool> FromFields for Code<ACTIVATION> {
    fn from_fields(fields: &mut Fields) -> Self {
        let token = match ACTIVATION {
            true => fields.text("activation_token", Presence::Required, 1024),
            false => None,
        };
        let code = fields.text("code", Presence::Required, 64);
        Self(CodeInput {
            token,
            code,
            errors: fields.take_errors(),
        })
    }
}

struct VerifyInput {
    token: String,
    code: String,
}

impl FromFields for VerifyInput {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            token: Fields::required(fields.text("ephemeral_token", Presence::Required, 1024)),
            code: Fields::required(fields.text("code", Presence::Required, MAX_CODE_LENGTH)),
        }
    }
}

/// Confirms TOTP activation.
#[derive(Object)]
#[oai(example)]
pub struct TotpActivateRequest {
    activation_token: String,
    /// The code the authenticator app shows now.
    code: String,
}

impl Example for TotpActivateRequest {
    fn example() -> Self {
        Self {
            activation_token: "…".into(),
            code: "123456".into(),
        }
    }
}

/// A TOTP code from the authenticator app (recovery codes cannot switch MFA off).
#[derive(Object)]
#[oai(example)]
pub struct TotpCodeRequest {
    code: String,
}

impl Example for TotpCodeRequest {
    fn example() -> Self {
        Self {
            code: "123456".into(),
        }
    }
}

/// A new TOTP secret, to put into the authenticator app, and the token that activates it.
#[derive(Object)]
pub struct TotpSetup {
    /// The secret in base32, for typing in.
    secret: String,
    /// `otpauth://totp/...`, for a QR code the client draws itself.
    totp_url: String,
    /// The same URL as an SVG QR code (`data:image/svg+xml;base64,...`).
    qr_code_data_uri: String,
    /// For `POST mfa/totp/activate/`; expires after `mfa.ephemeral_token_timeout`.
    activation_token: String,
}

/// The recovery codes of a new activation.
#[derive(Object)]
pub struct RecoveryCodesActivated {
    recovery_codes: Vec<String>,
}

/// Recovery codes (`xxxx-xxxx`), each usable once instead of a TOTP code.
#[derive(Object)]
pub struct RecoveryCodes {
    codes: Vec<String>,
}

/// Whether the user has MFA, since when, and when a code was last accepted.
#[derive(Object)]
pub struct MfaStatus {
    mfa_enabled: bool,
    /// `null` without MFA.
    #[oai(nullable)]
    created_at: Option<DateTime<Utc>>,
    /// `null` until a code was accepted.
    #[oai(nullable)]
    last_used_at: Option<DateTime<Utc>>,
}

impl From<crate::service::mfa::MfaStatus> for MfaStatus {
    fn from(status: crate::service::mfa::MfaStatus) -> Self {
        Self {
            mfa_enabled: status.enabled,
            created_at: status.created_at,
            last_used_at: status.last_used_at,
        }
    }
}

/// The password again (and a code, when the user has MFA).
#[derive(Object)]
#[oai(example)]
pub struct ReauthenticateRequest {
    #[oai(validator(min_length = 1, max_length = 4096))]
    password: String,
    /// Required when the user has MFA: a TOTP or recovery code.
    #[oai(validator(max_length = 9), skip_serializing_if_is_none)]
    code: Option<String>,
}

impl Example for ReauthenticateRequest {
    fn example() -> Self {
        Self {
            password: "correct horse battery staple".into(),
            code: None,
        }
    }
}

struct ReauthenticateInput {
    password: secrecy::SecretString,
    code: Option<String>,
}

impl FromFields for ReauthenticateInput {
    fn from_fields(fields: &mut Fields) -> Self {
        Self {
            password: Fields::required(fields.password("password", Presence::Required)),
            code: fields.text_allow_blank("code", Presence::Optional, MAX_CODE_LENGTH),
        }
    }
}

/// `mfa/...` in mode `M`.
pub struct MfaApi<M>(PhantomData<M>);

impl<M> MfaApi<M> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M> Default for MfaApi<M> {
    fn default() -> Self {
        Self::new()
    }
}

/// `Ok` when the guard is off or the credential proved the password recently.
async fn guard(accounts: &Accounts, principal: &Principal, on: bool) -> Result<(), ApiError> {
    if on {
        accounts.require_recent_password(principal).await?;
    }
    Ok(())
}

#[OpenApi]
impl<M: Mode> MfaApi<M> {
    /// Complete a login with a second factor
    ///
    /// Exchanges the `ephemeral_token` of `login/` and a TOTP or recovery code for this mode's
    /// credential (the answer `login/` gives a user without MFA). The token is single use and
    /// dies after five wrong codes; a code is accepted once.
    #[oai(
        path = "/mfa/verify/",
        method = "post",
        operation_id = "verifyMfa",
        tag = "Tag::Mfa"
    )]
    async fn verify(
        &self,
        accounts: Data<&Accounts>,
        state: Data<&M::State>,
        sessions: Data<&CookieSessions>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<MfaVerifyRequest, VerifyInput>,
    ) -> Result<M::LoggedIn, ApiError> {
        let input = body.0;
        let user = accounts
            .verify_second_factor(&input.token, &input.code, &caller)
            .await?;
        finish_login::<M>(LoginStep::Done(user), &state, &sessions, jar, &caller).await
    }

    /// Start TOTP activation
    ///
    /// A new secret for the authenticator app (as text, as an `otpauth://` URL and as a QR
    /// code) and the `activation_token` that switches it on with a first code.
    #[oai(
        path = "/mfa/totp/activate/",
        method = "get",
        operation_id = "startTotpActivation",
        tag = "Tag::Mfa"
    )]
    async fn start_activation(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
    ) -> Result<Success<TotpSetup>, ApiError> {
        let setup = accounts.begin_totp_activation(&auth.0.user)?;
        Ok(Success::Ok(Json(TotpSetup {
            secret: setup.secret,
            totp_url: setup.url,
            qr_code_data_uri: setup.qr_code_data_uri,
            activation_token: setup.activation_token,
        })))
    }

    /// Activate TOTP
    ///
    /// Switches MFA on once a code from the app proves it holds the secret; answers the
    /// recovery codes (shown once here, and later at `mfa/recovery-codes/`).
    #[oai(
        path = "/mfa/totp/activate/",
        method = "post",
        operation_id = "activateTotp",
        tag = "Tag::Mfa"
    )]
    async fn activate(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        body: Input<TotpActivateRequest, Code<true>>,
    ) -> Result<Success<RecoveryCodesActivated>, ApiError> {
        if accounts.mfa_status(auth.0.user.id).await?.enabled {
            return Err(ApiError::bad_request(messages::MFA_ALREADY_ENABLED));
        }
        let input = body.0.0;
        input.errors.into_result()?;
        let (token, code) = (
            input.token.unwrap_or_default(),
            input.code.unwrap_or_default(),
        );
        let codes = accounts
            .activate_totp(&auth.0, &token, &code, &caller)
            .await?;
        Ok(Success::Ok(Json(RecoveryCodesActivated {
            recovery_codes: codes,
        })))
    }

    /// Deactivate TOTP
    ///
    /// Switches MFA off (the recovery codes go too) with a current TOTP code. Needs a recent
    /// proof of the password (`reauthenticate/`).
    #[oai(
        path = "/mfa/totp/deactivate/",
        method = "post",
        operation_id = "deactivateTotp",
        tag = "Tag::Mfa"
    )]
    async fn deactivate(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        body: Input<TotpCodeRequest, Code<false>>,
    ) -> Result<Success<Detail>, ApiError> {
        if !accounts.mfa_status(auth.0.user.id).await?.enabled {
            return Err(ApiError::bad_request(messages::MFA_NOT_ENABLED));
        }
        guard(&accounts, &auth.0, true).await?;
        let input = body.0.0;
        input.errors.into_result()?;
        accounts
            .deactivate_totp(&auth.0, &input.code.unwrap_or_default(), &caller)
            .await?;
        Ok(Detail::new(messages::TOTP_DEACTIVATED))
    }

    /// MFA status
    #[oai(
        path = "/mfa/status/",
        method = "get",
        operation_id = "getMfaStatus",
        tag = "Tag::Mfa"
    )]
    async fn status(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
    ) -> Result<Success<MfaStatus>, ApiError> {
        let status = accounts.mfa_status(auth.0.user.id).await?;
        Ok(Success::Ok(Json(status.into())))
    }

    /// Show the unused recovery codes
    ///
    /// In the order they were issued; none without MFA. Needs a recent proof of the password
    /// unless `mfa.recovery_codes_require_reauthentication = false`.
    #[oai(
        path = "/mfa/recovery-codes/",
        method = "post",
        operation_id = "listRecoveryCodes",
        tag = "Tag::Mfa"
    )]
    async fn recovery_codes(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
    ) -> Result<Success<RecoveryCodes>, ApiError> {
        let guarded = accounts
            .config()
            .mfa
            .recovery_codes_require_reauthentication;
        guard(&accounts, &auth.0, guarded).await?;
        let codes = accounts.recovery_codes(auth.0.user.id).await?;
        Ok(Success::Ok(Json(RecoveryCodes { codes })))
    }

    /// Regenerate the recovery codes
    ///
    /// New codes; the old ones stop working. Guarded as showing them is.
    #[oai(
        path = "/mfa/recovery-codes/regenerate/",
        method = "post",
        operation_id = "regenerateRecoveryCodes",
        tag = "Tag::Mfa"
    )]
    async fn regenerate(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
    ) -> Result<Success<RecoveryCodes>, ApiError> {
        if !accounts.mfa_status(auth.0.user.id).await?.enabled {
            return Err(ApiError::bad_request(messages::MFA_NOT_ENABLED));
        }
        let guarded = accounts
            .config()
            .mfa
            .recovery_codes_require_reauthentication;
        guard(&accounts, &auth.0, guarded).await?;
        let codes = accounts
            .regenerate_recovery_codes(auth.0.user.id, &caller)
            .await?;
        Ok(Success::Ok(Json(RecoveryCodes { codes })))
    }
}

/// `reauthenticate/` in mode `M` (in every configuration: later guarded actions need it too).
pub struct ReauthenticateApi<M>(PhantomData<M>);

impl<M> ReauthenticateApi<M> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M> Default for ReauthenticateApi<M> {
    fn default() -> Self {
        Self::new()
    }
}

#[OpenApi]
impl<M: Mode> ReauthenticateApi<M> {
    /// Confirm the password
    ///
    /// Renews the credential's proof of the password (and of the second factor, for a user
    /// with MFA), which guarded actions need within `account.reauthentication_timeout`.
    #[oai(
        path = "/reauthenticate/",
        method = "post",
        operation_id = "reauthenticate",
        tag = "Tag::Auth"
    )]
    async fn reauthenticate(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        body: Input<ReauthenticateRequest, ReauthenticateInput>,
    ) -> Result<Success<Detail>, ApiError> {
        let input = body.0;
        accounts
            .reauthenticate(&auth.0, input.password, input.code, &caller)
            .await?;
        Ok(Detail::new(messages::OK))
    }
}
