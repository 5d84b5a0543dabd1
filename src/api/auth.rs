//! Credentials on requests: `Authorization: Token <key>`, parsed as DRF's `TokenAuthentication`.
//!
//! These are hand-written extractors rather than `#[derive(SecurityScheme)]`: the derive
//! answers a missing header with poem's plain-text 401 before any of our code runs, and cannot
//! express "optional, but invalid is still 401" (what `logout/` needs). They still declare the
//! security scheme, so the OpenAPI document marks exactly the operations that need a token.

use poem::http::{StatusCode, header};
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::api::error::ApiError;
use crate::config::{AuthMode, JwtConfig};
use crate::service::accounts::{Accounts, Principal};
use crate::service::error::Error as ServiceError;

pub const TOKEN_SCHEME: &str = "TokenAuth";
const KEYWORD: &str = "Token";

/// The caller, authenticated by a token (401 otherwise).
pub struct Authenticated(pub Principal);

/// The caller if a credential was presented (an invalid one is still a 401).
pub struct MaybeAuthenticated(pub Option<Principal>);

fn register_scheme(registry: &mut Registry) {
    registry.create_security_scheme(
        TOKEN_SCHEME,
        MetaSecurityScheme {
            ty: "apiKey",
            description: Some(
                "An opaque token from `login/` or `registration/`, sent as \
                 `Authorization: Token <key>`.",
            ),
            name: Some("Authorization"),
            key_in: Some("header"),
            scheme: None,
            bearer_format: None,
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// The key from `Authorization: Token <key>`: `None` when no token is presented at all.
fn presented_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.as_bytes();
    let mut parts = value
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty());
    match parts.next() {
        Some(keyword) if keyword.eq_ignore_ascii_case(KEYWORD.as_bytes()) => {}
        // Another scheme (Basic, Bearer, ...) is not ours: as if nothing was presented.
        _ => return Ok(None),
    }
    let (Some(key), None) = (parts.next(), parts.next()) else {
        let message = if value
            .split(|b| b.is_ascii_whitespace())
            .filter(|p| !p.is_empty())
            .count()
            == 1
        {
            "Invalid token header. No credentials provided."
        } else {
            "Invalid token header. Token string should not contain spaces."
        };
        return Err(ApiError::unauthorized(message));
    };
    match std::str::from_utf8(key) {
        Ok(key) => Ok(Some(key.to_owned())),
        Err(_) => Err(ApiError::unauthorized(
            "Invalid token header. Token string should not contain invalid characters.",
        )),
    }
}

async fn authenticate(request: &Request) -> poem::Result<Option<Principal>> {
    let accounts = request.data::<Accounts>().ok_or_else(ApiError::internal)?;
    let principal = match accounts.config().auth.mode {
        AuthMode::Token => match presented_key(request)? {
            Some(key) => Some(
                accounts
                    .authenticate_token(&key)
                    .await
                    .map_err(ApiError::from)?,
            ),
            None => None,
        },
        AuthMode::Jwt => match presented_jwt(request, &accounts.config().jwt)? {
            Some(token) => Some(accounts.authenticate_jwt(&token).await.map_err(
                |err| match err {
                    ServiceError::TokenRejected(rejection) => {
                        ApiError::access_token_not_valid(rejection.message())
                    }
                    other => other.into(),
                },
            )?),
            None => None,
        },
        AuthMode::Session => None,
    };
    match principal {
        Some(principal) => Ok(Some(principal)),
        // Session mode, or a session opened at login by `auth.session_login`.
        None if accounts.config().auth.mode == AuthMode::Session => {
            session_principal(request, accounts).await
        }
        None if accounts.config().auth.session_login => {
            let principal = session_principal(request, accounts).await?;
            if principal.is_some() {
                let cookie = &accounts.config().session.csrf_cookie_name;
                crate::api::csrf::check(request, cookie)?;
            }
            Ok(principal)
        }
        None => Ok(None),
    }
}

/// The user of the session cookie; an unknown or expired session counts as no credential.
async fn session_principal(
    request: &Request,
    accounts: &Accounts,
) -> poem::Result<Option<Principal>> {
    let Some(cookie) = request.cookie().get(&accounts.config().session.cookie_name) else {
        return Ok(None);
    };
    Ok(accounts
        .authenticate_session(cookie.value_str())
        .await
        .map_err(ApiError::from)?)
}

/// The access token from `Authorization: Bearer <token>`, else from the access cookie (then
/// with CSRF enforced when `jwt.cookie_use_csrf`), as SimpleJWT and dj-rest-auth read it.
fn presented_jwt(request: &Request, config: &JwtConfig) -> Result<Option<String>, ApiError> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let parts: Vec<&[u8]> = value
            .as_bytes()
            .split(|b| b.is_ascii_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        match parts.as_slice() {
            [scheme, token] if scheme.eq_ignore_ascii_case(b"Bearer") => {
                return match std::str::from_utf8(token) {
                    Ok(token) => Ok(Some(token.to_owned())),
                    Err(_) => Err(ApiError::access_token_not_valid("Token is invalid")),
                };
            }
            [scheme, ..] if scheme.eq_ignore_ascii_case(b"Bearer") => {
                return Err(ApiError::detail(
                    StatusCode::UNAUTHORIZED,
                    "Authorization header must contain two space-delimited values",
                ));
            }
            // Another scheme is not ours: fall through to the cookie.
            _ => {}
        }
    }
    let Some(name) = &config.auth_cookie else {
        return Ok(None);
    };
    let Some(cookie) = request.cookie().get(name) else {
        return Ok(None);
    };
    if config.cookie_use_csrf {
        let csrf_cookie = &request
            .data::<Accounts>()
            .map(|a| a.config().session.csrf_cookie_name.clone())
            .unwrap_or_else(|| "csrftoken".into());
        crate::api::csrf::check(request, csrf_cookie)?;
    }
    Ok(Some(cookie.value_str().to_owned()))
}

impl<'a> ApiExtractor<'a> for Authenticated {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![TOKEN_SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match authenticate(request).await? {
            Some(principal) => Ok(Self(principal)),
            None => Err(ApiError::unauthorized(crate::api::error::NOT_PROVIDED).into()),
        }
    }
}

impl<'a> ApiExtractor<'a> for MaybeAuthenticated {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_scheme(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![TOKEN_SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(authenticate(request).await?))
    }
}
