//! `sessions/`: the user's devices (every live credential) in mode `M`, and ending them.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

use crate::api::error::ApiError;
use crate::api::mode::Mode;
use crate::api::mode::credentials::Authenticated;
use crate::api::responses::{NoContent, Success};
use crate::api::tags::Tag;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::devices::{Device, DeviceKind};

/// The kind of credential: an opaque token, a cookie session, or a JWT refresh family (its
/// refresh token and the access tokens it mints).
#[derive(Enum)]
#[oai(rename_all = "lowercase")]
pub enum SessionKind {
    Token,
    Session,
    Jwt,
}

/// A device: one live credential. Nothing in it is a secret.
#[derive(Object)]
pub struct SessionInfo {
    /// An opaque public id (not the credential, and not its digest).
    id: String,
    kind: SessionKind,
    created_at: DateTime<Utc>,
    /// The last use, recorded at most once a minute; `null` for a token or JWT login not used
    /// since it was issued (a session's starts at its login).
    #[oai(nullable)]
    last_used_at: Option<DateTime<Utc>>,
    /// The client address of the login that created it.
    #[oai(nullable)]
    ip: Option<String>,
    /// The user agent of the login that created it.
    #[oai(nullable)]
    user_agent: Option<String>,
    /// Whether this is the credential of the request that asked.
    current: bool,
}

impl From<Device> for SessionInfo {
    fn from(device: Device) -> Self {
        Self {
            id: device.id,
            kind: match device.kind {
                DeviceKind::Token => SessionKind::Token,
                DeviceKind::Session => SessionKind::Session,
                DeviceKind::Jwt => SessionKind::Jwt,
            },
            created_at: device.created_at,
            last_used_at: device.last_used_at,
            ip: device.ip,
            user_agent: device.user_agent,
            current: device.current,
        }
    }
}

/// `sessions/` in mode `M`.
pub struct SessionsApi<M>(PhantomData<M>);

impl<M> SessionsApi<M> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M> Default for SessionsApi<M> {
    fn default() -> Self {
        Self::new()
    }
}

#[OpenApi]
impl<M: Mode> SessionsApi<M> {
    /// List the devices logged in
    ///
    /// Every live credential of the user, newest first: tokens, cookie sessions, and JWT
    /// logins (one entry per refresh family).
    #[oai(
        path = "/sessions/",
        method = "get",
        operation_id = "listSessions",
        tag = "Tag::Account"
    )]
    async fn list(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
    ) -> Result<Success<Vec<SessionInfo>>, ApiError> {
        let devices = accounts.devices(&auth.0).await?;
        Ok(Success::Ok(Json(
            devices.into_iter().map(SessionInfo::from).collect(),
        )))
    }

    /// Log out one device
    ///
    /// Ends the credential with this id in every instance at once (a JWT login: its refresh
    /// token and its access tokens). 404 for an id that is not one of the user's live
    /// credentials.
    #[oai(
        path = "/sessions/:id/",
        method = "delete",
        operation_id = "endSession",
        tag = "Tag::Account"
    )]
    async fn end(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        id: Path<String>,
    ) -> Result<NoContent, ApiError> {
        accounts.end_device(&auth.0, &id.0, &caller).await?;
        Ok(NoContent::Done)
    }

    /// Log out every other device
    ///
    /// Ends every credential of the user except the one making this request. Needs a recent
    /// proof of the password (`reauthenticate/`).
    #[oai(
        path = "/sessions/",
        method = "delete",
        operation_id = "endOtherSessions",
        tag = "Tag::Account"
    )]
    async fn end_others(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
    ) -> Result<NoContent, ApiError> {
        accounts.end_other_devices(&auth.0, &caller).await?;
        Ok(NoContent::Done)
    }
}
