//! One configured provider as an OAuth 2.0 client: where to send the browser, how a code
//! becomes tokens, and how a token becomes an [`Identity`]. `oidc` and `google` read their
//! endpoints from discovery (config overrides win) and trust id_tokens only once verified;
//! `github` speaks GitHub's token endpoint and its `/user` and `/user/emails` API.
//!
//! An access token handed in by a frontend is only ever sent to this provider's own userinfo
//! or user API, as configured: whatever it unlocks elsewhere, it proves nothing here.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::identity::{Identity, names};
use super::provider::without_url;
use super::{FetchOptions, IdTokenError, OidcProvider, ProviderError, verify_id_token};
use crate::config::{SocialProvider, SocialProviderKind};
use crate::service::email_address::normalize_email;

const GITHUB_WEB: &str = "https://github.com";
const GITHUB_API: &str = "https://api.github.com";

/// Why a provider did not vouch for a user. For the logs: URLs, statuses and the provider's
/// error codes, never a code, token or secret.
#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    /// The code could not be traded for tokens (dj-rest-auth: "Failed to exchange code for
    /// access token").
    #[error("code exchange: {0}")]
    Exchange(String),
    /// A token (handed in, or from the exchange) was refused ("Incorrect value").
    #[error("token refused: {0}")]
    Token(String),
    #[error("id_token: {0}")]
    IdToken(#[from] IdTokenError),
    #[error("provider: {0}")]
    Provider(#[from] ProviderError),
}

/// What the token endpoint answered (RFC 6749 §5.1), secrets kept out of `Debug`.
struct Tokens {
    access_token: Option<SecretString>,
    id_token: Option<String>,
}

pub struct SocialClient {
    pub config: SocialProvider,
    /// Discovery and keys, for `oidc` and `google`.
    oidc: Option<OidcProvider>,
    http: reqwest::Client,
}

impl std::fmt::Debug for SocialClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialClient")
            .field("id", &self.config.id)
            .field("kind", &self.config.kind)
            .finish_non_exhaustive()
    }
}

impl SocialClient {
    pub fn new(config: &SocialProvider, options: FetchOptions) -> Self {
        // One HTTP client (one connection pool) per provider: the OpenID Connect provider's
        // discovery and key fetches and the exchanges here share it.
        let oidc = match config.kind {
            SocialProviderKind::Github => None,
            _ => OidcProvider::new(config, options.clone()).ok(),
        };
        let http = match &oidc {
            Some(oidc) => oidc.http().clone(),
            None => super::provider::http_client(&options),
        };
        Self {
            config: config.clone(),
            oidc,
            http,
        }
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Fetches what can be fetched ahead (discovery and keys); a provider that cannot be
    /// reached is a warning, tried again when next needed.
    pub async fn warm_up(&self) {
        if let Some(oidc) = &self.oidc {
            oidc.warm_up().await;
        }
    }

    /// Where the redirect flow sends the browser.
    pub async fn authorization_endpoint(&self) -> Result<String, SocialError> {
        if let Some(url) = &self.config.authorization_endpoint {
            return Ok(url.clone());
        }
        match &self.oidc {
            Some(oidc) => oidc
                .discovery()
                .await?
                .authorization_endpoint
                .ok_or_else(|| {
                    SocialError::Provider(ProviderError::Fetch {
                        url: oidc.issuer.clone(),
                        reason: "discovery names no authorization_endpoint".into(),
                    })
                }),
            None => Ok(format!("{GITHUB_WEB}/login/oauth/authorize")),
        }
    }

    async fn token_endpoint(&self) -> Result<String, SocialError> {
        if let Some(url) = &self.config.token_endpoint {
            return Ok(url.clone());
        }
        match &self.oidc {
            Some(oidc) => {
                oidc.discovery().await?.token_endpoint.ok_or_else(|| {
                    SocialError::Exchange("discovery names no token_endpoint".into())
                })
            }
            None => Ok(format!("{GITHUB_WEB}/login/oauth/access_token")),
        }
    }

    /// The scopes asked for in the redirect flow, space separated.
    pub fn scope(&self) -> String {
        self.config.scopes.join(" ")
    }

    /// Trades an authorization code for the user: the token endpoint with the client's
    /// secret and the PKCE verifier when there is one, then the id_token (checked against
    /// `nonce` when the flow sent one) or, without one, the user API.
    pub async fn identity_from_code(
        &self,
        code: &str,
        code_verifier: Option<&str>,
        redirect_uri: &str,
        nonce: Option<&str>,
    ) -> Result<Identity, SocialError> {
        let tokens = self.exchange(code, code_verifier, redirect_uri).await?;
        if let (Some(oidc), Some(id_token)) = (&self.oidc, &tokens.id_token) {
            let mut identity = Identity::from(verify_id_token(oidc, id_token, nonce).await?);
            // Some providers keep the address out of the id_token; userinfo has it then, for
            // the same subject only.
            if identity.email.is_none()
                && let Some(access_token) = &tokens.access_token
                && let Ok(info) = self.identity_from_access_token(access_token).await
                && info.uid == identity.uid
            {
                identity.email = info.email;
                identity.email_verified = info.email_verified;
            }
            return Ok(identity);
        }
        if self.oidc.is_some() && nonce.is_some() {
            // The redirect flow's nonce is only checked in an id_token: without one the
            // answer cannot be tied to this flow.
            return Err(SocialError::Token(
                "the token answer has no id_token".into(),
            ));
        }
        let access_token = tokens
            .access_token
            .ok_or_else(|| SocialError::Exchange("the answer has no access_token".into()))?;
        self.identity_from_access_token(&access_token).await
    }

    /// The user an id_token names, once verified (a frontend that ran the flow itself).
    pub async fn identity_from_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Identity, SocialError> {
        let oidc = self
            .oidc
            .as_ref()
            .ok_or_else(|| SocialError::Token("GitHub issues no id_token".into()))?;
        Ok(verify_id_token(oidc, id_token, nonce).await?.into())
    }

    /// The user an access token belongs to, asked of this provider's own user API.
    pub async fn identity_from_access_token(
        &self,
        access_token: &SecretString,
    ) -> Result<Identity, SocialError> {
        match &self.oidc {
            Some(oidc) => {
                let url = match &self.config.userinfo_endpoint {
                    Some(url) => url.clone(),
                    None => oidc.discovery().await?.userinfo_endpoint.ok_or_else(|| {
                        SocialError::Token("discovery names no userinfo_endpoint".into())
                    })?,
                };
                let info: UserInfo = self.get_json(&url, access_token).await?;
                let (first_name, last_name) =
                    names(info.given_name, info.family_name, info.name.as_deref());
                if info.sub.is_empty() {
                    return Err(SocialError::Token("userinfo has no sub".into()));
                }
                Ok(Identity {
                    uid: info.sub,
                    email: info.email.as_deref().map(normalize_email),
                    email_verified: info.email_verified,
                    first_name,
                    last_name,
                    username: info.preferred_username,
                })
            }
            None => self.github_identity(access_token).await,
        }
    }

    async fn github_identity(&self, access_token: &SecretString) -> Result<Identity, SocialError> {
        let api = self
            .config
            .api_url
            .as_deref()
            .unwrap_or(GITHUB_API)
            .trim_end_matches('/');
        let user: GithubUser = self.get_json(&format!("{api}/user"), access_token).await?;
        // The verified primary address from `/user/emails` (scope `user:email`); the
        // profile's public address is not known to be verified, and a token without the
        // scope gets 404 there: then the address is taken as unverified.
        let emails: Vec<GithubEmail> = self
            .get_json(&format!("{api}/user/emails"), access_token)
            .await
            .unwrap_or_default();
        let chosen = emails
            .iter()
            .find(|e| e.primary && e.verified)
            .or_else(|| emails.iter().find(|e| e.verified));
        let (email, email_verified) = match (chosen, &user.email) {
            (Some(found), _) => (Some(found.email.clone()), true),
            (None, Some(public)) => {
                let verified = emails.iter().any(|e| &e.email == public && e.verified);
                (Some(public.clone()), verified)
            }
            (None, None) => (None, false),
        };
        let (first_name, last_name) = names(None, None, user.name.as_deref());
        Ok(Identity {
            uid: user.id.to_string(),
            email: email.as_deref().map(normalize_email),
            email_verified,
            first_name,
            last_name,
            username: Some(user.login),
        })
    }

    async fn exchange(
        &self,
        code: &str,
        code_verifier: Option<&str>,
        redirect_uri: &str,
    ) -> Result<Tokens, SocialError> {
        let url = self.token_endpoint().await?;
        let secret = self
            .config
            .client_secret()
            .map_err(|err| SocialError::Exchange(format!("client_secret_file: {err}")))?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.config.client_id.as_str()),
        ];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier));
        }
        let mut request = self
            .http
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/json");
        match (&secret, self.config.kind) {
            // GitHub documents the secret as a form field.
            (Some(secret), SocialProviderKind::Github) => {
                form.push(("client_secret", secret.expose_secret()));
            }
            // RFC 6749 §2.3.1: HTTP Basic with form-encoded parts, which every OpenID
            // Connect provider must accept (`client_secret_basic` is the default method).
            (Some(secret), _) => {
                let encode = |text: &str| {
                    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(
                    encode(&self.config.client_id),
                    Some(encode(secret.expose_secret())),
                );
            }
            (None, _) => {}
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|err| SocialError::Exchange(format!("{url}: {}", without_url(&err))))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|_| SocialError::Exchange(format!("{url}: HTTP {status}, not JSON")))?;
        // GitHub answers its errors with 200 and an `error` field.
        if let Some(error) = body.get("error").and_then(Value::as_str) {
            return Err(SocialError::Exchange(format!(
                "{url}: HTTP {status}, error {error:?}"
            )));
        }
        if !status.is_success() {
            return Err(SocialError::Exchange(format!("{url}: HTTP {status}")));
        }
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(Tokens {
            access_token: text("access_token").map(SecretString::from),
            id_token: text("id_token"),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        access_token: &SecretString,
    ) -> Result<T, SocialError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| SocialError::Token(format!("{url}: {}", without_url(&err))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(SocialError::Token(format!("{url}: HTTP {status}")));
        }
        response
            .json()
            .await
            .map_err(|err| SocialError::Token(format!("{url}: {}", without_url(&err))))
    }
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default)]
    sub: String,
    email: Option<String>,
    #[serde(default, deserialize_with = "super::identity::lenient_bool")]
    email_verified: bool,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    preferred_username: Option<String>,
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize, Default)]
struct GithubEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

/// The configured providers, by `id`.
#[derive(Debug, Default)]
pub struct SocialClients(std::collections::HashMap<String, std::sync::Arc<SocialClient>>);

impl SocialClients {
    pub fn new(providers: &[SocialProvider], options: FetchOptions) -> Self {
        Self(
            providers
                .iter()
                .map(|config| {
                    let client = SocialClient::new(config, options.clone());
                    (config.id.clone(), std::sync::Arc::new(client))
                })
                .collect(),
        )
    }

    pub fn get(&self, id: &str) -> Option<std::sync::Arc<SocialClient>> {
        self.0.get(id).cloned()
    }

    /// Each provider's documents fetched ahead; one that cannot be reached is a warning.
    pub async fn warm_up(&self) {
        for client in self.0.values() {
            client.warm_up().await;
        }
    }
}
