//! `user/export/` and `DELETE user/`: a user takes their data and leaves, in mode `M`.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::endpoints::email_addresses::EmailAddressInfo;
use crate::api::endpoints::mfa::MfaStatus;
use crate::api::endpoints::sessions::SessionInfo;
use crate::api::endpoints::social::SocialAccountInfo;
use crate::api::error::ApiError;
use crate::api::mode::Mode;
use crate::api::mode::credentials::Authenticated;
use crate::api::responses::NoContent;
use crate::api::tags::Tag;
use crate::config::AccountDeletion;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::leaving::Export;

/// The account's details as stored (no password hash).
#[derive(Object)]
pub struct ExportedProfile {
    pk: i64,
    username: String,
    email: String,
    first_name: String,
    last_name: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    date_joined: DateTime<Utc>,
    #[oai(nullable)]
    last_login: Option<DateTime<Utc>>,
}

/// One entry of the user's audit trail.
#[derive(Object)]
pub struct ExportedEvent {
    created_at: DateTime<Utc>,
    event: String,
    outcome: String,
    #[oai(nullable)]
    reason: Option<String>,
    #[oai(nullable)]
    ip: Option<String>,
    #[oai(nullable)]
    user_agent: Option<String>,
    #[oai(nullable)]
    request_id: Option<String>,
}

/// Everything Tessera holds about the user. No secret: no password hash, credential,
/// digest, TOTP secret or recovery code.
#[derive(Object)]
pub struct AccountExport {
    exported_at: DateTime<Utc>,
    profile: ExportedProfile,
    email_addresses: Vec<EmailAddressInfo>,
    /// The live credentials, as `sessions/` lists them.
    sessions: Vec<SessionInfo>,
    mfa: MfaStatus,
    /// The linked identity-provider accounts, as `socialaccounts/` lists them.
    social_accounts: Vec<SocialAccountInfo>,
    /// Oldest first.
    audit_events: Vec<ExportedEvent>,
}

impl From<Export> for AccountExport {
    fn from(export: Export) -> Self {
        let user = export.user;
        Self {
            exported_at: export.exported_at,
            profile: ExportedProfile {
                pk: user.id.0,
                username: user.username,
                email: user.email,
                first_name: user.first_name,
                last_name: user.last_name,
                is_active: user.is_active,
                is_staff: user.is_staff,
                is_superuser: user.is_superuser,
                date_joined: user.date_joined,
                last_login: user.last_login,
            },
            email_addresses: export
                .email_addresses
                .into_iter()
                .map(EmailAddressInfo::from)
                .collect(),
            sessions: export.sessions.into_iter().map(SessionInfo::from).collect(),
            mfa: export.mfa.into(),
            social_accounts: export
                .social_accounts
                .into_iter()
                .map(SocialAccountInfo::from)
                .collect(),
            audit_events: export
                .audit_events
                .into_iter()
                .map(|event| ExportedEvent {
                    created_at: event.created_at,
                    event: event.event,
                    outcome: event.outcome,
                    reason: event.reason,
                    ip: event.ip,
                    user_agent: event.user_agent,
                    request_id: event.request_id,
                })
                .collect(),
        }
    }
}

/// The export, as a file to keep.
#[derive(ApiResponse)]
pub enum Exported {
    /// Everything Tessera holds about the user.
    #[oai(status = 200)]
    Ok(
        Json<AccountExport>,
        /// `attachment`, with a file name.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

/// The methods `user/` answers besides `DELETE`, for the 405 of `account.deletion = "disabled"`.
const USER_METHODS: [&str; 5] = ["GET", "PUT", "PATCH", "HEAD", "OPTIONS"];

/// `DELETE user/`. Its operation is declared in [`UserApi`](super::UserApi): poem-openapi
/// writes each API's paths separately, so a second API declaring `/user/` would replace the
/// first's `get`, `put` and `patch` in the document (and the 405 guard built from it).
pub async fn delete_account<M: Mode>(
    accounts: &Accounts,
    auth: Authenticated<M>,
    caller: Caller,
) -> Result<NoContent, ApiError> {
    if accounts.config().account.deletion == AccountDeletion::Disabled {
        let allowed = USER_METHODS.map(String::from);
        return Err(ApiError::method_not_allowed("DELETE", &allowed));
    }
    accounts.delete_account(&auth.0, &caller).await?;
    Ok(NoContent::Done)
}

/// `user/export/` in mode `M` (`DELETE user/` is in `UserApi`, which holds `user/`).
pub struct LeavingApi<M>(PhantomData<M>);

impl<M> LeavingApi<M> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M> Default for LeavingApi<M> {
    fn default() -> Self {
        Self::new()
    }
}

#[OpenApi]
impl<M: Mode> LeavingApi<M> {
    /// Export my data
    ///
    /// Everything Tessera holds about the user, as a JSON file: profile, email addresses,
    /// live sessions, MFA status (never secrets or codes) and audit trail. Needs a recent
    /// proof of the password (`reauthenticate/`).
    #[oai(
        path = "/user/export/",
        method = "get",
        operation_id = "exportAccount",
        tag = "Tag::Account"
    )]
    async fn export(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
    ) -> Result<Exported, ApiError> {
        let export = accounts.export(&auth.0, &caller).await?;
        let file = format!(
            "attachment; filename=\"account-{}-{}.json\"",
            export.user.id,
            export.exported_at.format("%Y%m%d")
        );
        Ok(Exported::Ok(Json(export.into()), file))
    }
}
