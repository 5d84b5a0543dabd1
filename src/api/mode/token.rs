//! Token mode (`auth.mode = "token"`): opaque tokens, one per login, sent as
//! `Authorization: Token <key>` and read as DRF's `TokenAuthentication` reads them.

use poem::Request;
use poem::http::header;
use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem_openapi::payload::Json;
use poem_openapi::registry::MetaSecurityScheme;
use poem_openapi::{ApiResponse, Object, OpenApi, Union};

use crate::api::caller::client_ip;
use crate::api::edge::reshape::Challenge;
use crate::api::error::ApiError;
use crate::api::mode::credentials::MaybeAuthenticated;
use crate::api::mode::{Mode, session_login};
use crate::api::responses::{Detail, MfaRequired, Success};
use crate::api::session_cookie::CookieSessions;
use crate::api::tags::Tag;
use crate::config::Config;
use crate::messages;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::principal::{Principal, User};
use crate::service::registration::Registered;

const KEYWORD: &str = "Token";

/// The token mode's credential strategy.
pub struct Token;

/// An opaque API token, to send as `Authorization: Token <key>`.
#[derive(Object)]
pub struct TokenKey {
    /// 40 lowercase hexadecimal characters.
    key: String,
}

/// `{"key"}` when the account can log in at once; `{"detail"}` when it must first confirm its
/// email address (`account.email_verification = "mandatory"`).
#[derive(Union)]
#[oai(one_of)]
pub enum RegisterResult {
    LoggedIn(TokenKey),
    VerificationSent(Detail),
}

/// A new token for this device, or, for a user with MFA, the second step's token.
#[derive(Union)]
#[oai(one_of)]
pub enum TokenLogin {
    LoggedIn(TokenKey),
    SecondFactor(MfaRequired),
}

#[derive(ApiResponse)]
pub enum TokenLoggedIn {
    /// A new token for this device (every login gets its own, so logging out on one device
    /// leaves the others logged in); for a user with MFA, `{"ephemeral_token",
    /// "mfa_required"}` instead.
    #[oai(status = 200)]
    Ok(Json<TokenLogin>),
}

#[derive(ApiResponse)]
pub enum TokenRegistered {
    /// The account was created: `{"key"}` (its first token), or `{"detail"}` when it must
    /// first confirm its email address.
    #[oai(status = 201)]
    Created(Json<RegisterResult>),
}

impl Mode for Token {
    type State = Accounts;
    type LoggedIn = TokenLoggedIn;
    type SignedUp = TokenRegistered;
    type OwnApi = TokenLogoutApi;

    const SCHEME: &'static str = "TokenAuth";
    const CHALLENGE: Challenge = Challenge::Token;
    const AUTHORIZE: &'static str = "This server runs in **token mode**. `login/` and \
        `registration/` answer `{\"key\": ...}`: send it as `Authorization: Token <key>`. Here, \
        click *Authorize* and paste the key (the `Token ` prefix is added for you). Every login \
        gets its own key; `logout/` ends the one it is sent with.";

    fn state(accounts: &Accounts, _config: &Config) -> anyhow::Result<Accounts> {
        Ok(accounts.clone())
    }

    fn own_api() -> TokenLogoutApi {
        TokenLogoutApi
    }

    fn security_scheme() -> MetaSecurityScheme {
        super::api_key(
            "Authorization",
            "header",
            "An opaque token from `login/` or `registration/`, sent as \
             `Authorization: Token <key>`.",
        )
    }

    async fn principal(
        request: &Request,
        accounts: &Accounts,
    ) -> Result<Option<Principal>, ApiError> {
        match presented_key(request)? {
            Some(key) => Ok(Some(
                accounts
                    .authenticate_token(&key, client_ip(request))
                    .await?,
            )),
            None => Ok(None),
        }
    }

    async fn logged_in(
        accounts: &Accounts,
        _jar: &CookieJar,
        user: User,
        caller: &Caller,
    ) -> Result<TokenLoggedIn, ApiError> {
        let key = accounts.issue_token(user.id, caller).await?;
        Ok(TokenLoggedIn::Ok(Json(TokenLogin::LoggedIn(TokenKey {
            key,
        }))))
    }

    fn second_factor_required(ephemeral_token: String) -> TokenLoggedIn {
        TokenLoggedIn::Ok(Json(TokenLogin::SecondFactor(MfaRequired::new(
            ephemeral_token,
        ))))
    }

    async fn signed_up(
        accounts: &Accounts,
        _jar: &CookieJar,
        registered: Registered,
        caller: &Caller,
    ) -> Result<TokenRegistered, ApiError> {
        let result = match registered {
            Registered::Active(user) => RegisterResult::LoggedIn(TokenKey {
                key: accounts.issue_token(user.id, caller).await?,
            }),
            Registered::VerificationSent => {
                RegisterResult::VerificationSent(Detail::text(messages::VERIFICATION_SENT))
            }
        };
        Ok(TokenRegistered::Created(Json(result)))
    }
}

/// The key from `Authorization: Token <key>`: `None` when no token is presented at all.
fn presented_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let parts: Vec<&[u8]> = value
        .as_bytes()
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [keyword, ..] if keyword.eq_ignore_ascii_case(KEYWORD.as_bytes()) => {}
        // Another scheme (Basic, Bearer, ...) is not ours: as if nothing was presented.
        _ => return Ok(None),
    }
    let key = match parts.as_slice() {
        [_, key] => key,
        [_] => {
            return Err(ApiError::authentication_failed(
                messages::TOKEN_HEADER_EMPTY,
            ));
        }
        _ => {
            return Err(ApiError::authentication_failed(
                messages::TOKEN_HEADER_SPACES,
            ));
        }
    };
    match std::str::from_utf8(key) {
        Ok(key) => Ok(Some(key.to_owned())),
        Err(_) => Err(ApiError::authentication_failed(
            messages::TOKEN_HEADER_CHARACTERS,
        )),
    }
}

/// Token mode's own endpoint: `logout/`.
pub struct TokenLogoutApi;

#[OpenApi]
impl TokenLogoutApi {
    /// Log out
    ///
    /// Ends the token sent with the request, and only that one. Without a token the answer
    /// is 400 (dj-rest-auth's), unless `auth.session_login` ended a session instead.
    #[oai(
        path = "/logout/",
        method = "post",
        operation_id = "logout",
        tag = "Tag::Auth"
    )]
    async fn logout(
        &self,
        accounts: Data<&Accounts>,
        sessions: Data<&CookieSessions>,
        jar: &CookieJar,
        caller: Caller,
        auth: MaybeAuthenticated<Token>,
    ) -> Result<Success<Detail>, ApiError> {
        let session_closed = session_login::close(&sessions, jar, &caller).await?;
        match auth.0 {
            Some(principal) => accounts.logout(&principal, &caller).await?,
            None if session_closed => {}
            None => return Err(ApiError::not_logged_in()),
        }
        Ok(Detail::new(messages::LOGGED_OUT))
    }
}
