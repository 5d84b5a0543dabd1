//! An OpenID Connect provider: discovery (`{issuer}/.well-known/openid-configuration`) and its
//! JWKS, each cached for its HTTP `Cache-Control: max-age`, held between a floor and a ceiling.
//!
//! Nothing is fetched until asked: `warm_up` at startup only logs a provider it cannot reach,
//! and the next verification tries again (at most once per `retry_interval`), so a provider
//! that is down when Tessera starts is a warning, not a crash. A token signed by a key the
//! cached JWKS lacks makes one refetch (rate-limited), which is how keys rotate without a
//! restart.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{SocialProvider, SocialProviderKind};

/// How a provider's documents are fetched and kept.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Bounds each request, connecting included.
    pub timeout: Duration,
    /// Shortest a document is kept, whatever its `max-age` says (a provider saying `no-cache`
    /// must not turn every login into two fetches).
    pub min_cache: Duration,
    /// Longest a document is kept, whatever its `max-age` says.
    pub max_cache: Duration,
    /// Kept this long when the answer has no `max-age`.
    pub default_cache: Duration,
    /// Least time between two fetches the cache did not ask for: a JWKS refetch for an unknown
    /// `kid`, or a retry after a failure. Bounds what forged tokens can make us fetch.
    pub retry_interval: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            min_cache: Duration::from_secs(60),
            max_cache: Duration::from_secs(86_400),
            default_cache: Duration::from_secs(3600),
            retry_interval: Duration::from_secs(10),
        }
    }
}

/// Why a provider's documents could not be had. Carries URLs and statuses, no secrets.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("discovery names issuer {found:?}, but {expected:?} is configured")]
    IssuerMismatch { expected: String, found: String },
    #[error("the provider was unreachable moments ago; next try after {0:?}")]
    Backoff(Duration),
    #[error("provider {0:?} is not an OpenID Connect provider")]
    NotOidc(String),
}

/// The parts of a discovery document Tessera reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
}

struct Cached<T> {
    value: T,
    fresh_until: Instant,
}

impl<T> Cached<T> {
    fn fresh(&self) -> Option<&T> {
        (Instant::now() < self.fresh_until).then_some(&self.value)
    }
}

#[derive(Default)]
struct State {
    /// Kept past its lifetime: when a refresh fails, the stale copy serves (a provider's
    /// blip should not stop sign-ins with keys it published minutes ago).
    discovery: Option<Cached<Discovery>>,
    jwks: Option<Cached<Vec<Jwk>>>,
    /// When a fetch last failed (cleared by a success): no new attempt before
    /// `retry_interval`, so a provider that is down is not asked once per sign-in.
    last_failure: Option<Instant>,
    /// When an unknown `kid` last made us refetch the JWKS.
    last_forced_refetch: Option<Instant>,
}

/// One configured OpenID Connect provider (`oidc` or `google`).
pub struct OidcProvider {
    pub id: String,
    pub issuer: String,
    pub client_id: String,
    jwks_uri_override: Option<String>,
    options: FetchOptions,
    http: reqwest::Client,
    // One fetch at a time: concurrent logins after expiry wait for one fetch, not make many.
    state: Mutex<State>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No client secret is held here; still, only what identifies the provider.
        f.debug_struct("OidcProvider")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// An HTTP client for providers: every request bounded, no redirects followed (a provider's
/// documents are at the URLs it names). TLS by rustls with ring, checked against the
/// platform's trusted roots.
pub fn http_client(options: &FetchOptions) -> reqwest::Client {
    crate::tls::install();
    reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client with the platform's roots")
}

impl OidcProvider {
    pub fn new(config: &SocialProvider, options: FetchOptions) -> Result<Self, ProviderError> {
        let issuer = match config.kind {
            SocialProviderKind::Github => return Err(ProviderError::NotOidc(config.id.clone())),
            _ => config.issuer().unwrap_or_default().to_owned(),
        };
        Ok(Self {
            id: config.id.clone(),
            issuer,
            client_id: config.client_id.clone(),
            jwks_uri_override: config.jwks_uri.clone(),
            http: http_client(&options),
            options,
            state: Mutex::new(State::default()),
        })
    }

    /// The client its documents are fetched with (cheap to clone: one shared pool).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Fetches discovery and keys now; a failure is logged and left for the next use to retry.
    pub async fn warm_up(&self) {
        if let Err(err) = self.key(None).await {
            tracing::warn!(
                provider = %self.id,
                error = %err,
                "social provider unreachable at startup; retried when next needed"
            );
        }
    }

    /// The discovery document, from the cache while it is fresh.
    pub async fn discovery(&self) -> Result<Discovery, ProviderError> {
        let mut state = self.state.lock().await;
        self.discovery_locked(&mut state).await
    }

    async fn discovery_locked(&self, state: &mut State) -> Result<Discovery, ProviderError> {
        if let Some(discovery) = state.discovery.as_ref().and_then(Cached::fresh) {
            return Ok(discovery.clone());
        }
        let fetched = match self.backing_off(state) {
            Some(err) => Err(err),
            None => self.fetch_discovery().await,
        };
        let (discovery, lifetime) = match fetched {
            Ok(fetched) => fetched,
            Err(err) => {
                let stale = state.discovery.as_ref().map(|cached| cached.value.clone());
                return self.failed(state, err, stale);
            }
        };
        state.last_failure = None;
        state.discovery = Some(Cached {
            value: discovery.clone(),
            fresh_until: Instant::now() + lifetime,
        });
        Ok(discovery)
    }

    async fn fetch_discovery(&self) -> Result<(Discovery, Duration), ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let (discovery, lifetime) = self.fetch::<Discovery>(&url).await?;
        // OpenID Connect Discovery 1.0 §4.3: a document for another issuer is an impostor.
        if discovery.issuer != self.issuer {
            return Err(ProviderError::IssuerMismatch {
                expected: self.issuer.clone(),
                found: discovery.issuer,
            });
        }
        Ok((discovery, lifetime))
    }

    /// The key with `kid` (or the only key, when the token names none) and the discovery
    /// document. An unknown `kid` refetches the JWKS once per `retry_interval`.
    pub async fn key(&self, kid: Option<&str>) -> Result<(Option<Jwk>, Discovery), ProviderError> {
        let mut state = self.state.lock().await;
        let discovery = self.discovery_locked(&mut state).await?;
        let cached = state.jwks.as_ref().and_then(Cached::fresh).cloned();
        let keys = match cached {
            Some(keys) => keys,
            None => self.fetch_jwks(&mut state, &discovery).await?,
        };
        if let Some(key) = pick(&keys, kid) {
            return Ok((Some(key), discovery));
        }
        // A kid we do not know: the provider may have rotated. Refetch, but not for every
        // token that names a made-up kid.
        let recently = state
            .last_forced_refetch
            .is_some_and(|at| at.elapsed() < self.options.retry_interval);
        if recently {
            return Ok((None, discovery));
        }
        state.last_forced_refetch = Some(Instant::now());
        let keys = self.fetch_jwks(&mut state, &discovery).await?;
        Ok((pick(&keys, kid), discovery))
    }

    async fn fetch_jwks(
        &self,
        state: &mut State,
        discovery: &Discovery,
    ) -> Result<Vec<Jwk>, ProviderError> {
        let fetched = match self.backing_off(state) {
            Some(err) => Err(err),
            None => self.fetch_key_set(discovery).await,
        };
        let (keys, lifetime) = match fetched {
            Ok(fetched) => fetched,
            Err(err) => {
                let stale = state.jwks.as_ref().map(|cached| cached.value.clone());
                return self.failed(state, err, stale);
            }
        };
        state.last_failure = None;
        state.jwks = Some(Cached {
            value: keys.clone(),
            fresh_until: Instant::now() + lifetime,
        });
        Ok(keys)
    }

    async fn fetch_key_set(
        &self,
        discovery: &Discovery,
    ) -> Result<(Vec<Jwk>, Duration), ProviderError> {
        let Some(url) = self
            .jwks_uri_override
            .as_ref()
            .or(discovery.jwks_uri.as_ref())
        else {
            return Err(ProviderError::Fetch {
                url: self.issuer.clone(),
                reason: "discovery names no jwks_uri".into(),
            });
        };
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let (set, lifetime) = self.fetch::<RawSet>(url).await?;
        // Key by key: one key of a type we cannot read must not hide the others.
        let keys = set
            .keys
            .into_iter()
            .filter_map(|key| serde_json::from_value(key).ok())
            .collect();
        Ok((keys, lifetime))
    }

    /// `Some` while the last failure is too recent to try again.
    fn backing_off(&self, state: &State) -> Option<ProviderError> {
        let since = state.last_failure?.elapsed();
        (since < self.options.retry_interval)
            .then(|| ProviderError::Backoff(self.options.retry_interval - since))
    }

    /// After a failed fetch: the stale copy when there is one (logged), else the error.
    fn failed<T>(
        &self,
        state: &mut State,
        err: ProviderError,
        stale: Option<T>,
    ) -> Result<T, ProviderError> {
        if !matches!(err, ProviderError::Backoff(_)) {
            state.last_failure = Some(Instant::now());
        }
        match stale {
            Some(stale) => {
                if !matches!(err, ProviderError::Backoff(_)) {
                    tracing::warn!(
                        provider = %self.id,
                        error = %err,
                        "social provider refresh failed; using what was fetched before"
                    );
                }
                Ok(stale)
            }
            None => Err(err),
        }
    }

    /// GETs `url` as JSON, with how long the answer may be kept.
    async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(T, Duration), ProviderError> {
        let fail = |reason: String| ProviderError::Fetch {
            url: url.to_owned(),
            reason,
        };
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| fail(without_url(&err)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        let lifetime = cache_lifetime(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|value| value.to_str().ok()),
            &self.options,
        );
        let value = response
            .json::<T>()
            .await
            .map_err(|err| fail(format!("not the JSON expected: {}", without_url(&err))))?;
        Ok((value, lifetime))
    }
}

/// reqwest's message without the URL it appends (the caller names the URL once; a URL may
/// carry a code in its query).
pub(super) fn without_url(err: &reqwest::Error) -> String {
    let mut reason = err.to_string();
    if let Some(url) = err.url() {
        reason = reason.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        reason.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    reason
}

/// The key a token names; without a `kid`, only a JWKS of one signing key is unambiguous.
fn pick(keys: &[Jwk], kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|key| key.common.key_id.as_deref() == Some(kid))
            .cloned(),
        None => match keys {
            [only] => Some(only.clone()),
            _ => None,
        },
    }
}

/// How long an answer may be kept: its `max-age` (`no-store`/`no-cache` as 0), clamped to
/// the floor and ceiling; the default when it says nothing.
pub fn cache_lifetime(cache_control: Option<&str>, options: &FetchOptions) -> Duration {
    let mut max_age = None;
    for directive in cache_control.unwrap_or_default().split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            max_age = Some(Duration::ZERO);
            break;
        }
        if let Some(seconds) = directive.strip_prefix("max-age=") {
            max_age = seconds
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
        .unwrap_or(options.default_cache)
        .clamp(options.min_cache, options.max_cache)
}
