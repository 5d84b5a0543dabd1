//! Credentials on requests: the extractors operations use to require (or accept) the caller's
//! credential, in whatever form the mode `M` reads it.
//!
//! These are hand-written extractors rather than `#[derive(SecurityScheme)]`: the derive
//! answers a missing header with poem's plain-text 401 before any of our code runs, and cannot
//! express "optional, but invalid is still 401" (what `logout/` needs). They still declare the
//! mode's security schemes, so the OpenAPI document marks exactly the operations that need a
//! credential (and, through poem-openapi's security fallback, those where it is optional).

use std::future::Future;
use std::marker::PhantomData;

use poem::{Request, RequestBody};
use poem_openapi::registry::Registry;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::api::error::ApiError;
use crate::api::mode::{Mode, session_login};
use crate::service::principal::Principal;

/// The caller, authenticated by the mode's credential (401, or 403 in session mode, otherwise).
pub struct Authenticated<M>(pub Principal, PhantomData<M>);

/// The caller if a credential was presented; an invalid one is still refused.
pub struct MaybeAuthenticated<M>(pub Option<Principal>, PhantomData<M>);

/// The mode's way of reading a credential, as request data (for `api::guard`, where the
/// mode is not a type parameter).
#[derive(Clone, Copy)]
pub struct Authenticate(for<'a> fn(&'a Request) -> BoxedPrincipal<'a>);

type BoxedPrincipal<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<Option<Principal>, ApiError>> + Send + 'a>>;

impl Authenticate {
    pub fn of<M: Mode>() -> Self {
        Self(|request| Box::pin(principal::<M>(request)))
    }

    pub async fn principal(&self, request: &Request) -> Result<Option<Principal>, ApiError> {
        (self.0)(request).await
    }
}

/// The mode's credential, else a session opened at login by `auth.session_login`.
/// The caller's user id also goes on the request's span, so every later log line has it.
async fn principal<M: Mode>(request: &Request) -> Result<Option<Principal>, ApiError> {
    let state = request.data::<M::State>().ok_or_else(ApiError::internal)?;
    let principal = match M::principal(request, state).await? {
        Some(principal) => Some(principal),
        None if M::IS_SESSION => None,
        None => session_login::principal(request).await?,
    };
    if let Some(principal) = &principal {
        crate::api::edge::access_log::record_user(principal.user.id.0);
    }
    Ok(principal)
}

impl<'a, M: Mode> ApiExtractor<'a> for Authenticated<M> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(M::SCHEME, M::security_scheme());
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![M::SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match principal::<M>(request).await? {
            Some(principal) => Ok(Self(principal, PhantomData)),
            None => Err(ApiError::not_authenticated().into()),
        }
    }
}

impl<'a, M: Mode> ApiExtractor<'a> for MaybeAuthenticated<M> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(M::SCHEME, M::security_scheme());
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![M::SCHEME]
    }

    /// Documents the credential as optional (an empty requirement among the alternatives).
    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(principal::<M>(request).await?, PhantomData))
    }
}
