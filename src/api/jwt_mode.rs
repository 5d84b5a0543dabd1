//! JWT mode (`auth.mode = "jwt"`): `login/`, `logout/`, `registration/`, `token/verify/` and
//! `token/refresh/`, as dj-rest-auth with SimpleJWT answers them, cookies included.

use chrono::SecondsFormat;
use poem::web::Data;
use poem::web::cookie::{Cookie, CookieJar};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::api::accounts::{
    Detail, LOGGED_OUT, LoginRequest, RegisterRequest, Success, UserDetails, VERIFICATION_SENT,
};
use crate::api::auth::MaybeAuthenticated;
use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::api::session_mode::{authenticate_login, close_session};
use crate::config::{JwtConfig, SameSite};
use crate::service::accounts::{Accounts, LoginInput, Registered, RegistrationInput};
use crate::service::audit::Caller;
use crate::service::error::Error as ServiceError;
use crate::service::jwt::Issued;
use crate::service::jwt_auth::{JwtRejection, TokenPair};

const NO_REFRESH_IN_DATA: &str = "Refresh token was not included in request data.";
const NO_REFRESH_IN_COOKIE: &str = "Refresh token was not included in cookie data.";
const NO_VALID_REFRESH: &str = "No valid refresh token found.";
const MAX_TOKEN_LENGTH: usize = 8192;

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
#[derive(Object)]
pub struct JwtRegisterResult {
    #[oai(skip_serializing_if_is_none)]
    access: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    refresh: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    user: Option<UserDetails>,
    #[oai(skip_serializing_if_is_none)]
    access_expiration: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    refresh_expiration: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    detail: Option<String>,
}

#[derive(ApiResponse)]
enum JwtRegisterResponse {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<JwtRegisterResult>),
}

/// A refresh token; optional when it travels in the refresh cookie.
#[derive(Object)]
#[oai(example)]
pub struct RefreshRequest {
    #[oai(skip_serializing_if_is_none)]
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
    #[oai(validator(min_length = 1), skip_serializing_if_is_none)]
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

/// SimpleJWT's refusal body for `token/verify/` and `token/refresh/`.
fn token_not_valid(rejection: JwtRejection) -> ApiError {
    ApiError::token_not_valid(rejection.message())
}

fn refusal(err: ServiceError) -> ApiError {
    match err {
        ServiceError::TokenRejected(rejection) => token_not_valid(rejection),
        other => other.into(),
    }
}

/// Sets the configured JWT cookies (dj-rest-auth's `set_jwt_cookies`).
fn set_cookies(jar: &CookieJar, config: &JwtConfig, access: &Issued, refresh: Option<&Issued>) {
    if let Some(name) = &config.auth_cookie {
        jar.add(cookie(config, name, &access.token, access, "/"));
    }
    if let (Some(name), Some(refresh)) = (&config.refresh_cookie, refresh) {
        jar.add(cookie(
            config,
            name,
            &refresh.token,
            refresh,
            &config.refresh_cookie_path,
        ));
    }
}

fn cookie(config: &JwtConfig, name: &str, value: &str, issued: &Issued, path: &str) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_expires(issued.expires_at);
    cookie.set_path(path);
    cookie.set_http_only(config.cookie_httponly);
    cookie.set_secure(config.cookie_secure);
    cookie.set_same_site(same_site(config.cookie_samesite));
    if let Some(domain) = &config.cookie_domain {
        cookie.set_domain(domain);
    }
    cookie
}

pub(crate) fn same_site(value: SameSite) -> poem::web::cookie::SameSite {
    match value {
        SameSite::Lax => poem::web::cookie::SameSite::Lax,
        SameSite::Strict => poem::web::cookie::SameSite::Strict,
        SameSite::None => poem::web::cookie::SameSite::None,
    }
}

/// Expires the JWT cookies (dj-rest-auth's `unset_jwt_cookies`).
fn clear_cookies(jar: &CookieJar, config: &JwtConfig) {
    for (name, path) in [
        (&config.auth_cookie, "/"),
        (&config.refresh_cookie, config.refresh_cookie_path.as_str()),
    ] {
        if let Some(name) = name {
            let mut cookie = Cookie::named(name.as_str());
            cookie.set_path(path);
            if let Some(domain) = &config.cookie_domain {
                cookie.set_domain(domain);
            }
            cookie.make_removal();
            jar.add(cookie);
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

pub struct JwtModeApi;

#[OpenApi]
impl JwtModeApi {
    /// Log in
    ///
    /// Checks the credentials and returns an access token (short-lived), a refresh token and
    /// the user. Every login starts its own refresh-token family, ended by `logout/`.
    #[oai(
        path = "/login/",
        method = "post",
        operation_id = "login",
        tag = "Tag::Auth"
    )]
    async fn login(
        &self,
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<LoginRequest, LoginInput>,
    ) -> Result<Success<JwtPair>, ApiError> {
        let user = authenticate_login(&accounts, jar, body.0, &caller).await?;
        let pair = accounts.start_jwt_session(user).await?;
        let config = &accounts.config().jwt;
        set_cookies(jar, config, &pair.access, Some(&pair.refresh));
        Ok(Success::Ok(Json(pair_body(config, pair))))
    }

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
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        _auth: MaybeAuthenticated,
        body: Input<RefreshRequest, RefreshField>,
    ) -> Result<Success<Detail>, ApiError> {
        let config = &accounts.config().jwt;
        if accounts.config().auth.session_login {
            close_session(&accounts, jar, &caller).await?;
        }
        // Read the refresh cookie before clearing: the jar then holds the removal cookie.
        let cookie = config
            .refresh_cookie
            .as_deref()
            .and_then(|name| jar.get(name));
        clear_cookies(jar, config);
        let refresh = match (body.0.0, cookie) {
            (Some(token), _) => token,
            (None, Some(cookie)) => cookie.value_str().to_owned(),
            (None, None) => {
                let message = match config.refresh_cookie {
                    Some(_) => NO_REFRESH_IN_COOKIE,
                    None => NO_REFRESH_IN_DATA,
                };
                return Err(ApiError::detail(
                    poem::http::StatusCode::UNAUTHORIZED,
                    message,
                ));
            }
        };
        match accounts.logout_jwt(&refresh, &caller).await {
            Ok(()) => Ok(Detail::new(LOGGED_OUT)),
            // dj-rest-auth answers these without SimpleJWT's `code`.
            Err(ServiceError::TokenRejected(rejection)) => {
                let message = match rejection {
                    JwtRejection::Blacklisted => JwtRejection::Blacklisted.message(),
                    _ => JwtRejection::Invalid.message(),
                };
                Err(ApiError::detail(
                    poem::http::StatusCode::UNAUTHORIZED,
                    message,
                ))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Register
    ///
    /// Creates an account. Unless email verification is mandatory, the answer carries the
    /// tokens of a first login; otherwise a confirmation email is sent and the answer says so.
    #[oai(
        path = "/registration/",
        method = "post",
        operation_id = "register",
        tag = "Tag::Registration"
    )]
    async fn register(
        &self,
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<RegisterRequest, RegistrationInput>,
    ) -> Result<JwtRegisterResponse, ApiError> {
        let result = match accounts.register(body.0, &caller).await? {
            Registered::Active(user) => {
                let pair = accounts.start_jwt_session(user).await?;
                let config = &accounts.config().jwt;
                set_cookies(jar, config, &pair.access, Some(&pair.refresh));
                let body = pair_body(config, pair);
                JwtRegisterResult {
                    access: Some(body.access),
                    refresh: Some(body.refresh),
                    user: Some(body.user),
                    access_expiration: body.access_expiration,
                    refresh_expiration: body.refresh_expiration,
                    detail: None,
                }
            }
            Registered::VerificationSent => JwtRegisterResult {
                access: None,
                refresh: None,
                user: None,
                access_expiration: None,
                refresh_expiration: None,
                detail: Some(VERIFICATION_SENT.into()),
            },
        };
        Ok(JwtRegisterResponse::Created(Json(result)))
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
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        body: Input<VerifyRequest, TokenField>,
    ) -> Result<Success<Empty>, ApiError> {
        let config = &accounts.config().jwt;
        // The body's token, else the access cookie, else the refresh cookie.
        let from_cookie = [&config.auth_cookie, &config.refresh_cookie]
            .into_iter()
            .flatten()
            .find_map(|name| jar.get(name))
            .map(|cookie| cookie.value_str().to_owned());
        let Some(token) = body.0.0.or(from_cookie) else {
            return Err(crate::service::error::FieldErrors::single(
                "token",
                crate::api::input::REQUIRED,
            )
            .into());
        };
        accounts.verify_jwt(&token).await.map_err(refusal)?;
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
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<RefreshRequest, RefreshField>,
    ) -> Result<Success<Refreshed>, ApiError> {
        let config = &accounts.config().jwt;
        let cookie = config
            .refresh_cookie
            .as_deref()
            .and_then(|name| jar.get(name));
        let token = match (body.0.0, cookie) {
            (Some(token), _) => token,
            (None, Some(cookie)) => cookie.value_str().to_owned(),
            (None, None) => return Err(ApiError::token_not_valid(NO_VALID_REFRESH)),
        };
        let refreshed = accounts
            .refresh_jwt(&token, &caller)
            .await
            .map_err(refusal)?;
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
