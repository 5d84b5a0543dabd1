//! JWT mode (`auth.mode = "jwt"`): `login/`, `logout/`, `registration/`, `token/verify/` and
//! `token/refresh/`, as dj-rest-auth with SimpleJWT answers them, cookies included.

use chrono::SecondsFormat;
use poem::http::header;
use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem::{EndpointExt, Request, Route, get};
use poem_openapi::payload::Json;
use poem_openapi::registry::MetaSecurityScheme;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi, Union};

use crate::api::caller::client_ip;
use crate::api::cookies::CookieRules;
use crate::api::edge::csrf;
use crate::api::edge::reshape::Challenge;
use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::api::mode::credentials::MaybeAuthenticated;
use crate::api::mode::{Mode, session_login};
use crate::api::responses::{Detail, MfaRequired, Success, UserDetails};
use crate::api::session_cookie::CookieSessions;
use crate::api::tags::Tag;
use crate::config::{Config, JwtConfig};
use crate::messages;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::error::Error as ServiceError;
use crate::service::jwt::{Issued, JwtRejection, JwtSessions, TokenPair};
use crate::service::principal::{Principal, User};
use crate::service::registration::Registered;

/// Documented by `api::document` when `jwt.auth_cookie` names the access cookie.
pub const COOKIE_SCHEME: &str = "JWTCookie";
const MAX_TOKEN_LENGTH: usize = 8192;

/// The JWT mode's credential strategy.
pub struct Jwt;

/// Access and refresh tokens with the user they belong to. `refresh` is `""` when it travels
/// in an HttpOnly cookie instead; the expirations appear when `jwt.return_expiration`.
#[derive(Object)]
pub struct JwtPair {
    access: String,
    refresh: String,
    user: UserDetails,
    /// ISO 8601.
    #[oai(skip_serializing_if_is_none)]
    access_expiration: Option<String>,
    /// ISO 8601.
    #[oai(skip_serializing_if_is_none)]
    refresh_expiration: Option<String>,
}

/// The tokens of a new account, or `{"detail"}` when it must first confirm its address.
#[derive(Union)]
#[oai(one_of)]
pub enum JwtRegisterResult {
    LoggedIn(JwtPair),
    VerificationSent(Detail),
}

#[derive(ApiResponse)]
pub enum JwtLoggedIn {
    /// An access token (short-lived), a refresh token and the user (every login starts its
    /// own refresh-token family, ended by `logout/`); for a user with MFA,
    /// `{"ephemeral_token", "mfa_required"}` instead.
    #[oai(status = 200)]
    Ok(Json<JwtLogin>),
}

/// The tokens, or, for a user with MFA, the second step's token.
#[derive(Union)]
#[oai(one_of)]
pub enum JwtLogin {
    LoggedIn(JwtPair),
    SecondFactor(MfaRequired),
}

#[derive(ApiResponse)]
pub enum JwtRegistered {
    /// The account was created: the tokens of a first login, or `{"detail"}` when it must
    /// first confirm its email address.
    #[oai(status = 201)]
    Created(Json<JwtRegisterResult>),
}

/// A refresh token; optional when it travels in the refresh cookie.
#[derive(Object)]
#[oai(example)]
pub struct RefreshRequest {
    #[oai(validator(max_length = 8192), skip_serializing_if_is_none)]
    refresh: Option<String>,
}

impl Example for RefreshRequest {
    fn example() -> Self {
        Self {
            refresh: Some("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.signature".into()),
        }
    }
}

struct RefreshField(Option<String>);

impl FromFields for RefreshField {
    fn from_fields(fields: &mut Fields) -> Self {
        Self(fields.text("refresh", Presence::Optional, MAX_TOKEN_LENGTH))
    }
}

/// Any token issued by this service; optional when a JWT cookie carries one.
#[derive(Object)]
#[oai(example)]
pub struct VerifyRequest {
    #[oai(
        validator(min_length = 1, max_length = 8192),
        skip_serializing_if_is_none
    )]
    token: Option<String>,
}

impl Example for VerifyRequest {
    fn example() -> Self {
        Self {
            token: Some("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.signature".into()),
        }
    }
}

struct TokenField(Option<String>);

impl FromFields for TokenField {
    fn from_fields(fields: &mut Fields) -> Self {
        Self(fields.text("token", Presence::Optional, MAX_TOKEN_LENGTH))
    }
}

/// The token is valid (an empty object, as SimpleJWT answers).
#[derive(Object)]
pub struct Empty {}

/// A new access token, and with rotation a new refresh token (absent when it travels in an
/// HttpOnly cookie).
#[derive(Object)]
pub struct Refreshed {
    access: String,
    /// ISO 8601.
    access_expiration: String,
    #[oai(skip_serializing_if_is_none)]
    refresh: Option<String>,
    /// ISO 8601.
    #[oai(skip_serializing_if_is_none)]
    refresh_expiration: Option<String>,
}

fn iso(issued: &Issued) -> String {
    issued
        .expires_at
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `token/verify/` and `token/refresh/` answer a refused token in SimpleJWT's shape.
fn refusal(err: ServiceError) -> ApiError {
    match err {
        ServiceError::TokenRejected(rejection) => ApiError::token_not_valid(rejection),
        other => other.into(),
    }
}

/// Sets the configured JWT cookies (dj-rest-auth's `set_jwt_cookies`).
fn set_cookies(jar: &CookieJar, config: &JwtConfig, access: &Issued, refresh: Option<&Issued>) {
    if let Some(name) = &config.auth_cookie {
        jar.add(CookieRules::jwt(config, "/").until(name, &access.token, access.expires_at));
    }
    if let (Some(name), Some(refresh)) = (&config.refresh_cookie, refresh) {
        let rules = CookieRules::jwt(config, &config.refresh_cookie_path);
        jar.add(rules.until(name, &refresh.token, refresh.expires_at));
    }
}

/// Expires the JWT cookies (dj-rest-auth's `unset_jwt_cookies`).
fn clear_cookies(jar: &CookieJar, config: &JwtConfig) {
    for (name, path) in [
        (&config.auth_cookie, "/"),
        (&config.refresh_cookie, config.refresh_cookie_path.as_str()),
    ] {
        if let Some(name) = name {
            jar.add(CookieRules::jwt(config, path).removal(name));
        }
    }
}

/// The refresh token goes in the body unless an HttpOnly cookie carries it.
fn refresh_in_body(config: &JwtConfig, refresh: &Issued) -> String {
    match (&config.refresh_cookie, config.cookie_httponly) {
        (Some(_), true) => String::new(),
        _ => refresh.token.clone(),
    }
}

fn pair_body(config: &JwtConfig, pair: TokenPair) -> JwtPair {
    let expirations = config.return_expiration;
    JwtPair {
        access_expiration: expirations.then(|| iso(&pair.access)),
        refresh_expiration: expirations.then(|| iso(&pair.refresh)),
        refresh: refresh_in_body(config, &pair.refresh),
        access: pair.access.token,
        user: pair.user.into(),
    }
}

impl Mode for Jwt {
    type State = JwtSessions;
    type LoggedIn = JwtLoggedIn;
    type SignedUp = JwtRegistered;
    type OwnApi = JwtOwnApi;

    const SCHEME: &'static str = "JWTAuth";
    const CHALLENGE: Challenge = Challenge::Bearer;
    const AUTHORIZE: &'static str = "This server runs in **JWT mode**. `login/` and \
        `registration/` answer an `access` and a `refresh` token: send the access token as \
        `Authorization: Bearer <access>`, and trade the refresh token for a new access token at \
        `token/refresh/`. Here, click *Authorize* and paste the access token. With \
        `jwt.auth_cookie` set, the tokens also come as cookies, and a browser needs nothing \
        else.";

    fn state(accounts: &Accounts, _config: &Config) -> anyhow::Result<JwtSessions> {
        JwtSessions::from_config(accounts.clone()).map_err(|err| anyhow::anyhow!(err))
    }

    fn own_api() -> JwtOwnApi {
        JwtOwnApi
    }

    fn outside_prefix(route: Route, sessions: &JwtSessions) -> Route {
        route.at("/.well-known/jwks.json", get(jwks).data(sessions.clone()))
    }

    fn security_scheme() -> MetaSecurityScheme {
        MetaSecurityScheme {
            ty: "http",
            description: Some(
                "An access token from `login/`, `registration/` or `token/refresh/`, sent as \
                 `Authorization: Bearer <access>`.",
            ),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        }
    }

    async fn principal(
        request: &Request,
        sessions: &JwtSessions,
    ) -> Result<Option<Principal>, ApiError> {
        let Some(token) = presented_access(request, &sessions.accounts().config().jwt)? else {
            return Ok(None);
        };
        match sessions.authenticate(&token, client_ip(request)).await {
            Ok(principal) => Ok(Some(principal)),
            Err(ServiceError::TokenRejected(rejection)) => {
                Err(ApiError::access_token_not_valid(rejection))
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn logged_in(
        sessions: &JwtSessions,
        jar: &CookieJar,
        user: User,
        caller: &Caller,
    ) -> Result<JwtLoggedIn, ApiError> {
        let pair = sessions.start(user, caller).await?;
        let config = &sessions.accounts().config().jwt;
        set_cookies(jar, config, &pair.access, Some(&pair.refresh));
        Ok(JwtLoggedIn::Ok(Json(JwtLogin::LoggedIn(pair_body(
            config, pair,
        )))))
    }

    fn second_factor_required(ephemeral_token: String) -> JwtLoggedIn {
        JwtLoggedIn::Ok(Json(JwtLogin::SecondFactor(MfaRequired::new(
            ephemeral_token,
        ))))
    }

    async fn signed_up(
        sessions: &JwtSessions,
        jar: &CookieJar,
        registered: Registered,
        caller: &Caller,
    ) -> Result<JwtRegistered, ApiError> {
        let result = match registered {
            Registered::Active(user) => {
                let pair = sessions.start(user, caller).await?;
                let config = &sessions.accounts().config().jwt;
                set_cookies(jar, config, &pair.access, Some(&pair.refresh));
                JwtRegisterResult::LoggedIn(pair_body(config, pair))
            }
            Registered::VerificationSent => {
                JwtRegisterResult::VerificationSent(Detail::text(messages::VERIFICATION_SENT))
            }
        };
        Ok(JwtRegistered::Created(Json(result)))
    }
}

/// The access token from `Authorization: Bearer <token>`, else from the access cookie (then
/// with CSRF enforced when `jwt.cookie_use_csrf`), as SimpleJWT and dj-rest-auth read it.
fn presented_access(request: &Request, config: &JwtConfig) -> Result<Option<String>, ApiError> {
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
                    Err(_) => Err(ApiError::access_token_not_valid(JwtRejection::Invalid)),
                };
            }
            [scheme, ..] if scheme.eq_ignore_ascii_case(b"Bearer") => {
                return Err(ApiError::authentication_failed(
                    messages::BEARER_HEADER_PARTS,
                ));
            }
            // Another scheme is not ours: fall through to the cookie.
            _ => {}
        }
    }
    cookie_token(request, config, config.auth_cookie.as_deref())
}

/// The refresh token from the body, else from the refresh cookie. A cookie travels on its own,
/// so with `jwt.cookie_use_csrf` one taken from it must pass the CSRF check, as the access
/// cookie does (a cross-site form must not log the user out or rotate their tokens).
fn presented_refresh(
    request: &Request,
    config: &JwtConfig,
    from_body: Option<String>,
) -> Result<Option<String>, ApiError> {
    if from_body.is_some() {
        return Ok(from_body);
    }
    cookie_token(request, config, config.refresh_cookie.as_deref())
}

/// The token in the JWT cookie `name` (when configured and sent). A cookie travels on its
/// own, so with `jwt.cookie_use_csrf` the request must pass the CSRF check.
fn cookie_token(
    request: &Request,
    config: &JwtConfig,
    name: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(cookie) = name.and_then(|name| request.cookie().get(name)) else {
        return Ok(None);
    };
    if config.cookie_use_csrf {
        csrf::require(request)?;
    }
    Ok(Some(cookie.value_str().to_owned()))
}

/// The public keys that verify this service's JWTs, for other services to verify offline.
#[poem::handler]
fn jwks(sessions: Data<&JwtSessions>) -> poem::web::Json<serde_json::Value> {
    poem::web::Json(sessions.jwks())
}

/// JWT mode's own endpoints: `logout/`, `token/verify/` and `token/refresh/`.
pub struct JwtOwnApi;

#[OpenApi]
impl JwtOwnApi {
    /// Log out
    ///
    /// Revokes the refresh token's family (from the body, or the refresh cookie) and clears
    /// the JWT cookies. Access tokens already issued expire on their own within minutes.
    #[oai(
        path = "/logout/",
        method = "post",
        operation_id = "logout",
        tag = "Tag::Auth"
    )]
    async fn logout(
        &self,
        request: &Request,
        jwt: Data<&JwtSessions>,
        sessions: Data<&CookieSessions>,
        caller: Caller,
        _auth: MaybeAuthenticated<Jwt>,
        body: Input<RefreshRequest, RefreshField>,
    ) -> Result<Success<Detail>, ApiError> {
        let config = &jwt.accounts().config().jwt;
        let jar = request.cookie();
        // Read (and CSRF-check) the refresh cookie before anything changes: after clearing,
        // the jar holds the removal cookie.
        let presented = presented_refresh(request, config, body.0.0)?;
        session_login::close(&sessions, jar, &caller).await?;
        clear_cookies(jar, config);
        let Some(refresh) = presented else {
            return Err(ApiError::refresh_not_included(
                config.refresh_cookie.is_some(),
            ));
        };
        match jwt.logout(&refresh, &caller).await {
            Ok(()) => Ok(Detail::new(messages::LOGGED_OUT)),
            Err(ServiceError::TokenRejected(rejection)) => {
                Err(ApiError::refresh_refused_at_logout(rejection))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Verify a token
    ///
    /// Answers `{}` when the token (access or refresh) is valid, and 401 with
    /// `"code": "token_not_valid"` otherwise. Without `token` in the body, the JWT cookie's
    /// token is checked.
    #[oai(
        path = "/token/verify/",
        method = "post",
        operation_id = "verifyToken",
        tag = "Tag::Auth"
    )]
    async fn verify(
        &self,
        jwt: Data<&JwtSessions>,
        jar: &CookieJar,
        body: Input<VerifyRequest, TokenField>,
    ) -> Result<Success<Empty>, ApiError> {
        let config = &jwt.accounts().config().jwt;
        // The body's token, else the access cookie, else the refresh cookie.
        let from_cookie = [&config.auth_cookie, &config.refresh_cookie]
            .into_iter()
            .flatten()
            .find_map(|name| jar.get(name))
            .map(|cookie| cookie.value_str().to_owned());
        let Some(token) = body.0.0.or(from_cookie) else {
            return Err(ApiError::field("token", messages::REQUIRED));
        };
        jwt.verify(&token).await.map_err(refusal)?;
        Ok(Success::Ok(Json(Empty {})))
    }

    /// Refresh the access token
    ///
    /// Takes the refresh token from the body, or else from the refresh cookie. With rotation
    /// (the default) the answer also carries a new refresh token and the presented one is
    /// retired: presenting it again revokes its whole family.
    #[oai(
        path = "/token/refresh/",
        method = "post",
        operation_id = "refreshToken",
        tag = "Tag::Auth"
    )]
    async fn refresh(
        &self,
        request: &Request,
        jwt: Data<&JwtSessions>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<RefreshRequest, RefreshField>,
    ) -> Result<Success<Refreshed>, ApiError> {
        let config = &jwt.accounts().config().jwt;
        let Some(token) = presented_refresh(request, config, body.0.0)? else {
            return Err(ApiError::no_valid_refresh());
        };
        let refreshed = jwt.refresh(&token, &caller).await.map_err(refusal)?;
        set_cookies(jar, config, &refreshed.access, refreshed.refresh.as_ref());
        // A rotated refresh token in an HttpOnly cookie stays out of the body altogether.
        let in_body = refreshed
            .refresh
            .as_ref()
            .filter(|_| !(config.refresh_cookie.is_some() && config.cookie_httponly));
        Ok(Success::Ok(Json(Refreshed {
            access_expiration: iso(&refreshed.access),
            refresh_expiration: in_body.map(iso),
            refresh: in_body.map(|r| r.token.clone()),
            access: refreshed.access.token,
        })))
    }
}
