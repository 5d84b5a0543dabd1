//! Social login on dj-rest-auth's social views (`social/{id}/`, `connect/`,
//! `socialaccounts/`, `disconnect/`), and the browser redirect flow (`redirect/`,
//! `callback/`, `social/exchange/`), in mode `M`.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::{ExposeSecret, SecretString};

use crate::api::cookies::CookieRules;
use crate::api::error::ApiError;
use crate::api::input::{Fields, FromFields, Input, Presence};
use crate::api::mode::credentials::Authenticated;
use crate::api::mode::{Mode, finish_login};
use crate::api::responses::{Detail, Success};
use crate::api::session_cookie::CookieSessions;
use crate::api::tags::Tag;
use crate::messages::*;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::login::LoginStep;
use crate::service::social_login::{CallbackInput, CallbackOutcome, SocialAccount, SocialProof};

/// The cookie that binds a redirect flow's `state` to the browser that started it.
const STATE_COOKIE: &str = "tessera_social_state";

/// A provider's proof of its user: one of `code`, `id_token` or `access_token`.
#[derive(Object)]
#[oai(example)]
pub struct SocialLoginRequest {
    /// An authorization code the frontend got at the provider, traded here with the client
    /// secret (and `redirect_uri` = the provider's `callback_url`).
    #[oai(skip_serializing_if_is_none)]
    code: Option<String>,
    /// PKCE's verifier, when the frontend sent a `code_challenge` with its authorization
    /// request.
    #[oai(skip_serializing_if_is_none)]
    code_verifier: Option<String>,
    /// An OpenID Connect id_token issued to this client (verified in full).
    #[oai(skip_serializing_if_is_none)]
    id_token: Option<String>,
    /// An access token for the provider's user API (only ever sent to that provider).
    #[oai(skip_serializing_if_is_none)]
    access_token: Option<String>,
}

impl Example for SocialLoginRequest {
    fn example() -> Self {
        Self {
            code: Some("4/0AfJohXn...".into()),
            code_verifier: None,
            id_token: None,
            access_token: None,
        }
    }
}

/// The parsed proof, or why there is none.
pub struct ProofInput(Option<SocialProof>);

impl FromFields for ProofInput {
    fn from_fields(fields: &mut Fields) -> Self {
        let mut secret = |name: &str| fields.secret_allow_blank(name);
        let code = secret("code");
        let code_verifier = secret("code_verifier");
        let id_token = secret("id_token");
        let access_token = secret("access_token");
        let proof = match (code, id_token, access_token) {
            (Some(code), _, _) => Some(SocialProof::Code {
                code,
                code_verifier,
            }),
            (None, Some(token), _) => Some(SocialProof::IdToken(token)),
            (None, None, Some(token)) => Some(SocialProof::AccessToken(token)),
            (None, None, None) => None,
        };
        ProofInput(proof)
    }
}

/// A finished redirect flow's code, for `social/exchange/`.
#[derive(Object)]
#[oai(example)]
pub struct LoginCodeRequest {
    /// From the fragment of the URL the callback sent the browser to (`#login_code=...`).
    login_code: String,
}

impl Example for LoginCodeRequest {
    fn example() -> Self {
        Self {
            login_code: "5f0c0e1d2b...".into(),
        }
    }
}

pub struct LoginCodeInput(SecretString);

impl FromFields for LoginCodeInput {
    fn from_fields(fields: &mut Fields) -> Self {
        LoginCodeInput(Fields::required(
            fields.password("login_code", Presence::Required),
        ))
    }
}

/// One of the user's accounts at an identity provider (allauth's `SocialAccount`).
#[derive(Object)]
pub struct SocialAccountInfo {
    /// For `socialaccounts/{id}/disconnect/`.
    id: i64,
    /// The provider's `id` in `social.providers`.
    provider: String,
    /// The user's stable id at the provider (`sub`, GitHub's numeric id).
    uid: String,
    #[oai(nullable)]
    last_login: Option<DateTime<Utc>>,
    date_joined: DateTime<Utc>,
}

impl From<SocialAccount> for SocialAccountInfo {
    fn from(account: SocialAccount) -> Self {
        Self {
            id: account.id.0,
            provider: account.provider,
            uid: account.uid,
            last_login: account.last_login,
            date_joined: account.date_joined,
        }
    }
}

/// A redirect of the browser.
#[derive(ApiResponse)]
pub enum Redirect {
    /// To the provider's authorization page, or back to the frontend (`next`).
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

/// Social login in mode `M`.
pub struct SocialApi<M>(PhantomData<M>);

impl<M> SocialApi<M> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M> Default for SocialApi<M> {
    fn default() -> Self {
        Self::new()
    }
}

/// The state cookie's path: the provider's callback only.
fn state_cookie_path(accounts: &Accounts, provider: &str) -> String {
    format!(
        "{}/social/{provider}/callback",
        accounts.config().server.prefix.trim_end_matches('/')
    )
}

/// `next` with `pairs` as its fragment (a fragment never reaches a server's logs).
fn with_fragment(next: &str, pairs: &[(&str, &str)]) -> String {
    let fragment = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    match url::Url::parse(next) {
        Ok(mut url) => {
            url.set_fragment(Some(&fragment));
            url.into()
        }
        Err(_) => format!("{next}#{fragment}"),
    }
}

#[OpenApi]
impl<M: Mode> SocialApi<M> {
    /// Log in with an identity provider
    ///
    /// Signs in the provider's user, given an authorization `code` (traded here, with
    /// `code_verifier` when the frontend used PKCE), an OpenID Connect `id_token`, or an
    /// `access_token`; answers as `login/` does (the MFA step for a user with MFA). A user
    /// new to Tessera gets an account; an address that an existing account holds is linked
    /// only with `social.email_authentication` and when the provider says it is verified.
    /// 404 for a provider not configured.
    #[oai(
        path = "/social/:provider/",
        method = "post",
        operation_id = "socialLogin",
        tag = "Tag::Social"
    )]
    // Handlers take what they use as extractors; the count says nothing about complexity.
    #[allow(clippy::too_many_arguments)]
    async fn login(
        &self,
        accounts: Data<&Accounts>,
        state: Data<&M::State>,
        sessions: Data<&CookieSessions>,
        jar: &CookieJar,
        caller: Caller,
        provider: Path<String>,
        body: Input<SocialLoginRequest, ProofInput>,
    ) -> Result<M::LoggedIn, ApiError> {
        let step = accounts
            .social_login(&provider.0, body.0.0, &caller)
            .await?;
        finish_login::<M>(step, &state, &sessions, jar, &caller).await
    }

    /// Connect an identity provider
    ///
    /// Links the provider's account (same proofs as `social/{provider}/`) to the logged-in
    /// user, who can then log in with it. Needs a recent proof of the password
    /// (`reauthenticate/`). Refused when the provider's account is linked to another user.
    #[oai(
        path = "/social/:provider/connect/",
        method = "post",
        operation_id = "socialConnect",
        tag = "Tag::Social"
    )]
    async fn connect(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        provider: Path<String>,
        body: Input<SocialLoginRequest, ProofInput>,
    ) -> Result<Success<Detail>, ApiError> {
        accounts
            .connect_social(&auth.0, &provider.0, body.0.0, &caller)
            .await?;
        Ok(Detail::new(SOCIAL_CONNECTED))
    }

    /// List linked provider accounts
    #[oai(
        path = "/socialaccounts/",
        method = "get",
        operation_id = "listSocialAccounts",
        tag = "Tag::Social"
    )]
    async fn list(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
    ) -> Result<Success<Vec<SocialAccountInfo>>, ApiError> {
        let links = accounts.social_accounts(auth.0.user.id).await?;
        Ok(Success::Ok(Json(
            links.into_iter().map(SocialAccountInfo::from).collect(),
        )))
    }

    /// Disconnect a provider account
    ///
    /// Unlinks one of the user's provider accounts (404 for an id that is not one of
    /// theirs). Refused, with `{"detail": "Your account has no password set up."}`, when it
    /// is the last way to log in: no usable password and no other provider account.
    #[oai(
        path = "/socialaccounts/:id/disconnect/",
        method = "post",
        operation_id = "socialDisconnect",
        tag = "Tag::Social"
    )]
    async fn disconnect(
        &self,
        accounts: Data<&Accounts>,
        auth: Authenticated<M>,
        caller: Caller,
        id: Path<String>,
    ) -> Result<Success<Detail>, ApiError> {
        let id = id.0.parse().map_err(|_| ApiError::not_found())?;
        accounts
            .disconnect_social(auth.0.user.id, id, &caller)
            .await?;
        Ok(Detail::new(SOCIAL_DISCONNECTED))
    }

    /// Start a login in the browser
    ///
    /// Redirects the browser to the provider's authorization page, with `state`, `nonce`
    /// and PKCE (S256) kept server-side for 10 minutes and the state bound to this browser
    /// by a cookie. The provider sends the browser back to `social/{provider}/callback/`,
    /// which ends at `next`. `next` must be on one of `social.allowed_redirect_origins`.
    #[oai(
        path = "/social/:provider/redirect/",
        method = "get",
        operation_id = "socialRedirect",
        tag = "Tag::Social"
    )]
    async fn redirect(
        &self,
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        provider: Path<String>,
        /// Where the browser goes when the login is done (or has failed).
        next: Query<Option<String>>,
    ) -> Result<Redirect, ApiError> {
        let started = accounts
            .start_social_redirect(&provider.0, next.0.as_deref(), &caller)
            .await?;
        let path = state_cookie_path(&accounts, &provider.0);
        let rules = CookieRules::social_state(&accounts.config().session, &path);
        jar.add(rules.lasting(
            STATE_COOKIE,
            started.state.expose_secret(),
            std::time::Duration::from_secs(600),
        ));
        Ok(Redirect::Found(started.authorization_url))
    }

    /// Finish a login in the browser
    ///
    /// Where the provider sends the browser back. Checks `state` against this browser's,
    /// trades the code, and sends the browser to `next`: in session mode logged in (its
    /// cookies set); in token and JWT mode, and for a user with MFA, with a single-use
    /// `login_code` (valid 60 s) in the fragment (`next#login_code=...`), which the frontend
    /// trades at `social/exchange/`. A refusal goes to `next#error=...&error_description=...`.
    /// A bad, used or foreign `state`: 400.
    #[oai(
        path = "/social/:provider/callback/",
        method = "get",
        operation_id = "socialCallback",
        tag = "Tag::Social"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn callback(
        &self,
        accounts: Data<&Accounts>,
        state: Data<&M::State>,
        sessions: Data<&CookieSessions>,
        jar: &CookieJar,
        caller: Caller,
        provider: Path<String>,
        code: Query<Option<String>>,
        #[oai(name = "state")] flow_state: Query<Option<String>>,
        error: Query<Option<String>>,
    ) -> Result<Redirect, ApiError> {
        let path = state_cookie_path(&accounts, &provider.0);
        let rules = CookieRules::social_state(&accounts.config().session, &path);
        let cookie_state = jar.get(STATE_COOKIE).map(|c| c.value_str().to_owned());
        jar.add(rules.removal(STATE_COOKIE));
        let input = CallbackInput {
            code: code.0.map(SecretString::from),
            state: flow_state.0.map(SecretString::from),
            error: error.0,
            cookie_state: cookie_state.map(SecretString::from),
        };
        let outcome = accounts
            .finish_social_redirect(&provider.0, input, &caller)
            .await?;
        let (next, user) = match outcome {
            CallbackOutcome::SignedIn { next, user } => (next, user),
            CallbackOutcome::Failed {
                next,
                error,
                description,
            } => {
                let pairs = [
                    ("error", error),
                    ("error_description", description.as_str()),
                ];
                return Ok(Redirect::Found(with_fragment(&next, &pairs)));
            }
        };
        if M::IS_SESSION && !accounts.mfa_enabled(user.id).await? {
            finish_login::<M>(LoginStep::Done(user), &state, &sessions, jar, &caller).await?;
            return Ok(Redirect::Found(next));
        }
        let login_code = accounts.issue_social_login_code(&user, &provider.0).await?;
        Ok(Redirect::Found(with_fragment(
            &next,
            &[("login_code", login_code.as_str())],
        )))
    }

    /// Trade a login code
    ///
    /// The `login_code` a finished browser login put in `next`'s fragment, for this mode's
    /// login answer (as `login/`'s, the MFA step included). Single use, valid 60 s.
    #[oai(
        path = "/social/exchange/",
        method = "post",
        operation_id = "socialExchange",
        tag = "Tag::Social"
    )]
    async fn exchange(
        &self,
        accounts: Data<&Accounts>,
        state: Data<&M::State>,
        sessions: Data<&CookieSessions>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<LoginCodeRequest, LoginCodeInput>,
    ) -> Result<M::LoggedIn, ApiError> {
        let step = accounts
            .exchange_social_login_code(body.0.0.expose_secret(), &caller)
            .await?;
        finish_login::<M>(step, &state, &sessions, jar, &caller).await
    }
}
