//! Configuration: built-in defaults < TOML file < `DATABASE_URL` < `TESSERA_*` environment.
//!
//! Every key has a default, so `tessera serve` runs with no file at all. Unknown keys in the
//! file are errors (a typo must not silently fall back to a default); unknown `TESSERA_*`
//! variables are warnings, because the environment is shared with other software.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

mod rate_limit_rules;
pub use rate_limit_rules::{Per, Rule, Rules};

/// Environment variables that share the `TESSERA_` prefix but are not settings.
const NON_SETTING_VARIABLES: &[&str] = &["TESSERA_CONFIG", "TESSERA_PASSWORD", "TESSERA_LOG"];

/// Default location of the configuration file, read when it exists.
pub const DEFAULT_CONFIG_FILE: &str = "tessera.toml";

/// Shortest secret key accepted; anything shorter is guessable enough to forge credentials.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on: `IP:PORT`, or `localhost:PORT`.
    #[serde(deserialize_with = "deserialize_bind")]
    pub bind: SocketAddr,
    /// Public base URL of this service, used to build links; never taken from the Host header.
    pub public_url: url::Url,
    /// Signing secret. When unset, `serve` generates one and keeps it in `secret_key_file`.
    #[serde(serialize_with = "serialize_secret")]
    pub secret_key: Option<SecretString>,
    /// A file holding the secret key, read when `secret_key` is unset and the file exists (a
    /// systemd credential, a container secret); otherwise where a generated key is kept
    /// (default: beside the SQLite database).
    pub secret_key_file: Option<PathBuf>,
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub jwt: JwtConfig,
    pub session: SessionConfig,
    pub account: AccountConfig,
    pub password_hashing: PasswordHashingConfig,
    pub email: EmailConfig,
    pub frontend: FrontendConfig,
    pub cors: CorsConfig,
    pub rate_limits: RateLimitsConfig,
    pub audit: AuditConfig,
    pub credential_cache: CredentialCacheConfig,
    pub mfa: MfaConfig,
    pub social: SocialConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://FILE?mode=rwc` (embedded default) or `postgres://USER@HOST/DB` (scale-out).
    #[serde(serialize_with = "serialize_url_redacted")]
    pub url: String,
    /// Apply pending migrations when `serve` starts.
    pub auto_migrate: bool,
    pub max_connections: u32,
    /// Longest a request waits for a database connection (connecting included) before it is
    /// answered 503: while the database is unreachable, nothing hangs longer than this.
    pub acquire_timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Path prefix of the account API (dj-rest-auth's `P`).
    pub prefix: String,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed. Empty: the
    /// client address is the socket's, and the header is ignored.
    #[serde(deserialize_with = "deserialize_proxies")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Longest a request may take, reading its body included; then 408. Bounds slow clients.
    pub request_timeout_seconds: u64,
    /// Longest a request's head (request line and headers) may take to arrive once it has
    /// begun; a slower one gets its connection closed (slowloris).
    pub header_read_timeout_seconds: u64,
    /// Close connections silent for this long.
    pub idle_timeout_seconds: u64,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish.
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Token,
    Jwt,
    Session,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The REST_AUTH switch: `token`, `jwt` or `session`.
    pub mode: AuthMode,
    /// Lifetime of an opaque token in seconds; `0` means tokens live until logout.
    pub token_ttl_seconds: u64,
    /// Require `old_password` on `password/change/`.
    pub old_password_field_enabled: bool,
    /// Also end the credential used to change the password.
    pub logout_on_password_change: bool,
    /// Also open a session (cookie) at login in token or jwt mode (`REST_SESSION_LOGIN`).
    pub session_login: bool,
}

/// JWT signing algorithm (SimpleJWT's `ALGORITHM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    EdDSA,
}

/// A cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

/// `auth.mode = "session"` (and `auth.session_login`): Django's session and CSRF cookies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Django's `SESSION_COOKIE_NAME`.
    pub cookie_name: String,
    /// `Secure` on the session and CSRF cookies (set it behind HTTPS).
    pub cookie_secure: bool,
    pub cookie_samesite: SameSite,
    pub cookie_domain: Option<String>,
    /// A session unused this long ends.
    pub idle_timeout_seconds: u64,
    /// A session ends this long after login however much it is used.
    pub absolute_timeout_seconds: u64,
    /// Django's `CSRF_COOKIE_NAME`; the page echoes it in `X-CSRFToken`.
    pub csrf_cookie_name: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "sessionid".into(),
            cookie_secure: false,
            cookie_samesite: SameSite::Lax,
            cookie_domain: None,
            idle_timeout_seconds: 1_209_600,
            absolute_timeout_seconds: 2_592_000,
            csrf_cookie_name: "csrftoken".into(),
        }
    }
}

/// `auth.mode = "jwt"`: SimpleJWT's token settings and dj-rest-auth's cookie settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// `HS256` signs with `secret_key`; `RS256` and `EdDSA` with `private_key_file`.
    pub algorithm: JwtAlgorithm,
    /// PEM private key (RSA for RS256, Ed25519 for EdDSA).
    pub private_key_file: Option<PathBuf>,
    /// `kid` of the signing key; default: derived from the public key.
    pub key_id: Option<String>,
    /// More PEM public keys whose tokens are still accepted (key rotation).
    pub verification_key_files: Vec<PathBuf>,
    /// Earlier HS256 secrets whose tokens are still accepted (secret rotation).
    #[serde(serialize_with = "serialize_secrets")]
    pub previous_secret_keys: Vec<SecretString>,
    pub access_lifetime_seconds: u64,
    pub refresh_lifetime_seconds: u64,
    /// Each refresh returns a new refresh token and retires the old one.
    pub rotate_refresh: bool,
    /// `iss` claim, set and required when configured.
    pub issuer: Option<String>,
    /// `aud` claim, set and required when configured.
    pub audience: Option<String>,
    /// Add `access_expiration` / `refresh_expiration` to login and refresh answers.
    pub return_expiration: bool,
    /// Also send the access token in this cookie (dj-rest-auth's `JWT_AUTH_COOKIE`).
    pub auth_cookie: Option<String>,
    /// Send the refresh token in this cookie (`JWT_AUTH_REFRESH_COOKIE`).
    pub refresh_cookie: Option<String>,
    pub refresh_cookie_path: String,
    pub cookie_secure: bool,
    pub cookie_httponly: bool,
    pub cookie_samesite: SameSite,
    pub cookie_domain: Option<String>,
    /// Require CSRF protection for requests authenticated by the access cookie.
    pub cookie_use_csrf: bool,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::HS256,
            private_key_file: None,
            key_id: None,
            verification_key_files: Vec::new(),
            previous_secret_keys: Vec::new(),
            access_lifetime_seconds: 300,
            refresh_lifetime_seconds: 86_400,
            rotate_refresh: true,
            issuer: None,
            audience: None,
            return_expiration: false,
            auth_cookie: None,
            refresh_cookie: None,
            refresh_cookie_path: "/".into(),
            cookie_secure: false,
            cookie_httponly: true,
            cookie_samesite: SameSite::Lax,
            cookie_domain: None,
            cookie_use_csrf: false,
        }
    }
}

fn serialize_secrets<S: serde::Serializer>(
    secrets: &[SecretString],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(secrets.len()))?;
    for _ in secrets {
        seq.serialize_element("[redacted]")?;
    }
    seq.end()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailVerification {
    None,
    Optional,
    Mandatory,
}

/// `account.deletion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountDeletion {
    Delete,
    Deactivate,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginMethod {
    Email,
    Username,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountConfig {
    pub email_verification: EmailVerification,
    /// Which identifiers `login/` accepts, as allauth's `ACCOUNT_LOGIN_METHODS`.
    pub login_methods: Vec<LoginMethod>,
    /// Never reveal whether an address has an account.
    pub prevent_enumeration: bool,
    pub email_confirmation_expire_days: u32,
    /// Lifetime of a password-reset link, in seconds.
    pub password_reset_timeout: u64,
    /// Django's `MinimumLengthValidator` setting.
    pub password_min_length: usize,
    /// How long a proof of the password (a login, `reauthenticate/`) lets a credential do what
    /// needs a fresh one (showing recovery codes, switching MFA off, adding or removing an email
    /// address), in seconds.
    pub reauthentication_timeout: u64,
    /// Most email addresses one user may have, the primary included (allauth's
    /// `ACCOUNT_MAX_EMAIL_ADDRESSES`); `0` means no limit.
    pub max_email_addresses: u32,
    /// allauth's `ACCOUNT_CHANGE_EMAIL`: a user has one address and changes it by adding a new
    /// one, which replaces the old one once confirmed (at most one pending at a time).
    pub change_email: bool,
    /// What `DELETE user/` does: `delete` the account and everything tied to it,
    /// `deactivate` it (the row stays, inactive, with its personal fields blanked and its
    /// addresses free to sign up again), or `disabled` (405).
    pub deletion: AccountDeletion,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordHashingConfig {
    /// argon2id memory cost in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; `0` means one per CPU core. Bounds memory under load.
    pub max_concurrent: usize,
    /// The most an imported (Django) hash may cost to check. A hash above a cap never
    /// matches (its user resets the password): a planted hash cannot pin a core for seconds.
    pub max_imported_cost: MaxImportedCost,
}

/// Caps on the cost parameters read from an imported hash; Django's defaults sit well below.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaxImportedCost {
    /// PBKDF2 rounds (`pbkdf2_sha256`, `pbkdf2_sha1`); Django 5.2 uses 1,000,000, 6.0 1,200,000.
    pub pbkdf2_iterations: u32,
    /// bcrypt's log2 rounds (`bcrypt_sha256`, `bcrypt`); Django uses 12.
    pub bcrypt_cost: u32,
    /// scrypt's memory, `128 * n * r` bytes, in KiB; Django uses 16 MiB (n = 2^14, r = 8).
    pub scrypt_memory_kib: u64,
    /// scrypt's parallelism `p` (each lane is run in turn, so it multiplies the time); Django
    /// uses 5.
    pub scrypt_parallelism: u32,
    /// argon2's memory in KiB, allocated for the check; Django uses 102,400 (100 MiB).
    pub argon2_memory_kib: u32,
    /// argon2's passes; Django uses 2.
    pub argon2_iterations: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailBackend {
    Console,
    Smtp,
    File,
    /// Kept in memory and shown at `/_inbox/` (development; loopback `bind` only).
    Inbox,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// `console` (print to stdout), `smtp`, `file` (one `.eml` per message) or `inbox` (the
    /// last messages at `/_inbox/`, for development on a loopback address).
    pub backend: EmailBackend,
    /// Sender address (`From:`), e.g. `Tessera <no-reply@example.com>`.
    pub from: lettre::message::Mailbox,
    /// Put in front of every subject (allauth's `ACCOUNT_EMAIL_SUBJECT_PREFIX`).
    pub subject_prefix: String,
    /// The product name used in messages.
    pub site_name: String,
    /// `smtp://host:port`, `smtp://host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`.
    #[serde(serialize_with = "serialize_url_redacted")]
    pub smtp_url: String,
    /// Seconds to wait for the SMTP server before treating an attempt as failed.
    pub smtp_timeout_seconds: u64,
    /// Directory for the `file` backend.
    pub file_dir: PathBuf,
    /// Directory whose templates replace the built-in ones, file by file.
    pub templates_dir: Option<PathBuf>,
    /// First retry delay after a failed delivery; it doubles with each attempt.
    pub retry_initial_seconds: f64,
    /// Longest delay between two attempts.
    pub retry_max_seconds: f64,
    /// Stop retrying a message this long after it was queued, and record why.
    pub give_up_after_seconds: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontendConfig {
    /// Page that confirms an address, with a `{key}` placeholder.
    /// Default: `{public_url}/verify-email/{key}/`.
    pub verify_email_url: Option<String>,
    /// Page that sets a new password, with `{uid}` and `{token}` placeholders.
    /// Default: `{public_url}/password-reset/confirm/{uid}/{token}/`.
    pub password_reset_url: Option<String>,
    /// Directory whose files replace the built-in pages served at those defaults, file by file.
    pub pages_templates_dir: Option<PathBuf>,
}

/// Where rate-limit counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitStore {
    /// In this process: fast, but each instance counts alone.
    Memory,
    /// In the database: shared by every instance on it.
    Database,
}

/// allauth's `ACCOUNT_RATE_LIMITS`: per action, comma-separated rules `AMOUNT/PERIOD/PER`
/// (period `s`, `m`, `h`, `d`, optionally with a count such as `300s`; per `ip`, `key` or
/// `user`). `""` leaves an action unlimited.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    pub enabled: bool,
    pub store: RateLimitStore,
    /// Every login attempt.
    pub login: Rules,
    /// Failed logins; counters for an address clear when it logs in or resets its password.
    pub login_failed: Rules,
    pub signup: Rules,
    /// Confirmation emails per address.
    pub confirm_email: Rules,
    pub reset_password: Rules,
    pub reset_password_from_key: Rules,
    pub change_password: Rules,
    /// IPv6 clients are counted per network of this prefix length (a host gets a whole /64).
    pub ipv6_prefix: u8,
}

impl RateLimitsConfig {
    /// (action name, rules) for every limited action.
    pub fn actions(&self) -> [(&'static str, &Rules); 7] {
        [
            ("login", &self.login),
            ("login_failed", &self.login_failed),
            ("signup", &self.signup),
            ("confirm_email", &self.confirm_email),
            ("reset_password", &self.reset_password),
            ("reset_password_from_key", &self.reset_password_from_key),
            ("change_password", &self.change_password),
        ]
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            store: RateLimitStore::Memory,
            login: rules("30/m/ip"),
            login_failed: rules("10/m/ip,5/300s/key"),
            signup: rules("20/m/ip"),
            confirm_email: rules("1/180s/key"),
            reset_password: rules("20/m/ip,5/m/key"),
            reset_password_from_key: rules("20/m/ip"),
            change_password: rules("5/m/user"),
            ipv6_prefix: 64,
        }
    }
}

/// A built-in rule string (known to parse).
fn rules(text: &str) -> Rules {
    text.parse().expect("the default rate-limit rules parse")
}

/// The audit trail (`audit_events`): authentication events, also logged under the
/// `tessera::audit` target.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Events older than this many days are deleted (hourly); 0 keeps them forever.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 365,
        }
    }
}

/// The per-instance cache of verified credentials: a request whose credential is cached needs
/// no database query. Every instance on one PostgreSQL hears every revocation within about a
/// second (`LISTEN/NOTIFY`, with a poll of `credential_revocations` as a safety net).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialCacheConfig {
    /// Most credentials held at once (least recently and frequently used leave first); 0
    /// turns the cache off, so every request reads the database.
    pub capacity: u64,
    /// Longest an entry is served before it is read from the database again.
    pub ttl_seconds: u64,
    /// Unknown or refused credentials one client address may present per minute before the
    /// rest are answered 429 without a database query; 0 is no limit.
    pub failed_checks_per_minute: u32,
}

/// Prometheus metrics at `GET /metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// A listener of their own (`IP:PORT`, e.g. a private interface): then `/metrics` is
    /// served there and not on the public `bind`.
    pub bind: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: None,
        }
    }
}

/// Two-factor authentication (TOTP and recovery codes), with dj-rest-auth's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// `false` removes the `mfa/` endpoints; logins then never ask for a code.
    pub enabled: bool,
    /// Lifetime of the token between the password and the code at login, and of a pending
    /// activation, in seconds.
    pub ephemeral_token_timeout: u64,
    pub totp_digits: u8,
    /// Seconds per TOTP step.
    pub totp_period: u64,
    /// The issuer authenticator apps show; `email.site_name` when unset.
    pub totp_issuer: Option<String>,
    pub recovery_code_count: u32,
    /// Showing and regenerating recovery codes needs a recent proof of the password.
    pub recovery_codes_require_reauthentication: bool,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ephemeral_token_timeout: 300,
            totp_digits: 6,
            totp_period: 30,
            totp_issuer: None,
            recovery_code_count: 10,
            recovery_codes_require_reauthentication: true,
        }
    }
}

impl Default for CredentialCacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl_seconds: 300,
            failed_checks_per_minute: 120,
        }
    }
}

/// Social login (issue 13): OAuth 2.0 / OpenID Connect providers, each at `social/{id}/`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocialConfig {
    /// One entry per provider (`[[social.providers]]`); empty: no social login.
    pub providers: Vec<SocialProvider>,
    /// Sign a provider's user in to the existing account with the same address, when the
    /// provider asserts the address verified (`email_verified`). Off: such a sign-in is refused.
    pub email_authentication: bool,
    /// Origins the redirect flow may send the browser back to (`next`), e.g.
    /// `["https://app.example.com"]`.
    pub allowed_redirect_origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocialProviderKind {
    /// Any OpenID Connect provider, by discovery from its issuer.
    Oidc,
    /// OpenID Connect with Google's issuer preset.
    Google,
    /// GitHub's OAuth 2.0 apps and its user API (not OpenID Connect).
    Github,
}

/// `[[social.providers]]`: one identity provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialProvider {
    /// Names the provider in paths (`social/{id}/`): letters, digits, `-` and `_`.
    pub id: String,
    pub kind: SocialProviderKind,
    /// The OpenID Connect issuer, exactly as its tokens say `iss`; required for `oidc`,
    /// `https://accounts.google.com` for `google`.
    #[serde(default)]
    pub issuer: Option<String>,
    pub client_id: String,
    #[serde(default, serialize_with = "serialize_secret")]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret (read when `client_secret` is unset).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_social_scopes")]
    pub scopes: Vec<String>,
    /// The `redirect_uri` registered at the provider, sent with the code exchange.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// Endpoint overrides; for `oidc`/`google` they win over discovery (and `jwks_uri` is
    /// where keys are fetched); for `github` they replace github.com's.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// GitHub's API base (`https://api.github.com`), for `/user` and `/user/emails`.
    #[serde(default)]
    pub api_url: Option<String>,
}

/// Google's issuer, preset for `kind = "google"`.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

fn default_social_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

impl SocialProvider {
    /// The issuer an id_token must name: the configured one, or Google's for `google`.
    pub fn issuer(&self) -> Option<&str> {
        match (&self.issuer, self.kind) {
            (Some(issuer), _) => Some(issuer),
            (None, SocialProviderKind::Google) => Some(GOOGLE_ISSUER),
            (None, _) => None,
        }
    }
}

impl SocialProvider {
    /// The client secret: `client_secret`, or the trimmed contents of `client_secret_file`
    /// (read when asked, so a rotated file is picked up); `None` when neither is set.
    pub fn client_secret(&self) -> std::io::Result<Option<SecretString>> {
        match (&self.client_secret, &self.client_secret_file) {
            (Some(secret), _) => Ok(Some(secret.clone())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)?;
                Ok(Some(text.trim().to_owned().into()))
            }
            (None, None) => Ok(None),
        }
    }
}

impl SocialConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let mut seen = std::collections::BTreeSet::new();
        for provider in &self.providers {
            let id = &provider.id;
            // A path segment as is: no escaping needed, nothing a router could misread.
            if id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return invalid(format!(
                    "social.providers: id {id:?} must be 1 to 64 letters, digits, '-' or '_'"
                ));
            }
            // `social/exchange/` is a path of its own.
            if id == "exchange" {
                return invalid(
                    "social.providers: id \"exchange\" is taken by social/exchange/".into(),
                );
            }
            if !seen.insert(id.as_str()) {
                return invalid(format!("social.providers: id {id:?} is listed twice"));
            }
            if provider.client_secret.is_some() && provider.client_secret_file.is_some() {
                return invalid(format!(
                    "social.providers {id:?}: set client_secret or client_secret_file, not both"
                ));
            }
            if provider.client_id.is_empty() {
                return invalid(format!("social.providers {id:?}: client_id is empty"));
            }
            if provider.kind != SocialProviderKind::Github && provider.issuer().is_none() {
                return invalid(format!(
                    "social.providers {id:?}: kind = \"oidc\" needs an issuer (discovery is \
                     read from {{issuer}}/.well-known/openid-configuration)"
                ));
            }
            if provider.kind == SocialProviderKind::Github
                && (provider.issuer.is_some()
                    || provider.userinfo_endpoint.is_some()
                    || provider.jwks_uri.is_some())
            {
                return invalid(format!(
                    "social.providers {id:?}: kind = \"github\" is not OpenID Connect; it takes \
                     authorization_endpoint, token_endpoint and api_url, not issuer, \
                     userinfo_endpoint or jwks_uri"
                ));
            }
            if provider.kind != SocialProviderKind::Github && provider.api_url.is_some() {
                return invalid(format!(
                    "social.providers {id:?}: api_url is for kind = \"github\" only"
                ));
            }
            let urls = [
                ("issuer", provider.issuer()),
                ("callback_url", provider.callback_url.as_deref()),
                (
                    "authorization_endpoint",
                    provider.authorization_endpoint.as_deref(),
                ),
                ("token_endpoint", provider.token_endpoint.as_deref()),
                ("userinfo_endpoint", provider.userinfo_endpoint.as_deref()),
                ("jwks_uri", provider.jwks_uri.as_deref()),
                ("api_url", provider.api_url.as_deref()),
            ];
            for (key, url) in urls {
                if let Some(url) = url
                    && !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                {
                    return invalid(format!(
                        "social.providers {id:?}: {key} must be an http(s) URL, got {url:?}"
                    ));
                }
            }
        }
        if let Some(origin) = self
            .allowed_redirect_origins
            .iter()
            .find(|o| !is_web_origin(o))
        {
            return invalid(format!(
                "social.allowed_redirect_origins: {origin:?} is not an origin like \
                 \"https://app.example.com\""
            ));
        }
        Ok(())
    }
}

/// Cross-origin access for browser frontends on other origins. Off until origins are listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to call the API from a browser, e.g. `["https://app.example.com"]`.
    /// Only these get CORS headers, credentials (cookies) included.
    #[serde(deserialize_with = "one_or_many")]
    pub allowed_origins: Vec<String>,
    /// How long browsers may cache a preflight answer.
    pub max_age_seconds: u32,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            max_age_seconds: 600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `tessera=debug,sqlx=warn`. `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            public_url: url::Url::parse("http://127.0.0.1:8000").expect("a valid URL"),
            secret_key: None,
            secret_key_file: None,
            database: DatabaseConfig::default(),
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            jwt: JwtConfig::default(),
            session: SessionConfig::default(),
            account: AccountConfig::default(),
            password_hashing: PasswordHashingConfig::default(),
            email: EmailConfig::default(),
            frontend: FrontendConfig::default(),
            cors: CorsConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            audit: AuditConfig::default(),
            credential_cache: CredentialCacheConfig::default(),
            mfa: MfaConfig::default(),
            social: SocialConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://tessera.db?mode=rwc".into(),
            auto_migrate: true,
            max_connections: 10,
            acquire_timeout_seconds: 5,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            prefix: "/auth/".into(),
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            request_timeout_seconds: 30,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            shutdown_grace_seconds: 10,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Token,
            token_ttl_seconds: 0,
            old_password_field_enabled: false,
            logout_on_password_change: false,
            session_login: false,
        }
    }
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            email_verification: EmailVerification::Optional,
            login_methods: vec![LoginMethod::Email],
            prevent_enumeration: true,
            email_confirmation_expire_days: 3,
            password_reset_timeout: 3600,
            password_min_length: 8,
            reauthentication_timeout: 300,
            max_email_addresses: 5,
            change_email: false,
            deletion: AccountDeletion::Delete,
        }
    }
}

impl Default for PasswordHashingConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
            max_imported_cost: MaxImportedCost::default(),
        }
    }
}

impl Default for MaxImportedCost {
    fn default() -> Self {
        Self {
            pbkdf2_iterations: 2_000_000,
            bcrypt_cost: 13,
            scrypt_memory_kib: 32 * 1024,
            scrypt_parallelism: 8,
            argon2_memory_kib: 128 * 1024,
            argon2_iterations: 4,
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            backend: EmailBackend::Console,
            from: "webmaster@localhost"
                .parse()
                .expect("the default sender is a valid mailbox"),
            subject_prefix: "[Tessera] ".into(),
            site_name: "Tessera".into(),
            smtp_url: "smtp://127.0.0.1:25".into(),
            smtp_timeout_seconds: 10,
            file_dir: PathBuf::from("sent-mail"),
            templates_dir: None,
            retry_initial_seconds: 5.0,
            retry_max_seconds: 900.0,
            give_up_after_seconds: 86_400,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// A `server.trusted_proxies` entry: a CIDR range or a single address.
fn parse_proxy(entry: &str) -> Option<ipnet::IpNet> {
    entry.parse::<ipnet::IpNet>().ok().or_else(|| {
        entry
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// `bind`: a socket address, or `localhost:PORT` (the loopback address, without asking DNS).
fn deserialize_bind<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    text.strip_prefix("localhost:")
        .and_then(|port| port.parse::<u16>().ok())
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not an address to listen on (IP:PORT or localhost:PORT)"
            ))
        })
}

/// A list, or one string standing for a list of one (settings; an id_token's `aud`).
pub(crate) fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Where links point when `public_url` is not set: the address served, with a loopback
/// address in place of "every interface" (`0.0.0.0` is no place to send a browser).
fn public_url_for(bind: SocketAddr) -> url::Url {
    let ip = match bind.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    url::Url::parse(&format!("http://{}", SocketAddr::new(ip, bind.port())))
        .expect("a socket address makes a URL")
}

/// `server.trusted_proxies`: CIDR ranges, or single addresses (a /32 or /128).
fn deserialize_proxies<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let entries = Vec::<String>::deserialize(deserializer)?;
    entries
        .iter()
        .map(|entry| {
            parse_proxy(entry).ok_or_else(|| {
                serde::de::Error::custom(format!("{entry:?} is not an IP address or CIDR range"))
            })
        })
        .collect()
}

fn serialize_secret<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("[redacted]"),
        None => serializer.serialize_none(),
    }
}

fn serialize_url_redacted<S: serde::Serializer>(
    url: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url_password(url))
}

/// `postgres://user:pw@host/db` → `postgres://user:[redacted]@host/db`, for logs and errors.
pub fn redact_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.password().is_none() => url.to_owned(),
        Ok(mut parsed) => {
            // `set_password` percent-encodes its argument; put the marker in afterwards.
            let _ = parsed.set_password(Some("redacted"));
            parsed.as_str().replacen(":redacted@", ":[redacted]@", 1)
        }
        // Not a URL we can take apart: show none of what follows the scheme.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://[redacted]"),
            None => "[redacted]".into(),
        },
    }
}

/// `scheme://host[:port]` over http(s) and nothing else: what a browser sends as `Origin`.
fn is_web_origin(entry: &str) -> bool {
    match url::Url::parse(entry) {
        Ok(url) => {
            matches!(url.scheme(), "http" | "https")
                && url
                    .origin()
                    .ascii_serialization()
                    .eq_ignore_ascii_case(entry)
        }
        Err(_) => false,
    }
}

/// A configuration problem, reported at startup in plain words.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Invalid(String),
    #[error("configuration error: {}", describe(.0))]
    Figment(Box<figment::Error>),
}

/// A figment error in the words of this configuration: the dotted key without figment's
/// profile (`default.`), the file by its name, and for a misspelt key the nearest real one.
fn describe(err: &figment::Error) -> String {
    let path: Vec<&str> = err
        .path
        .iter()
        .map(String::as_str)
        .skip_while(|part| *part == "default")
        .collect();
    let key = path.join(".");
    let what = match &err.kind {
        figment::error::Kind::UnknownField(field, expected) => {
            let hint = nearest(field, expected.iter().copied())
                .map(|near| format!(" (did you mean `{near}`?)"))
                .unwrap_or_default();
            format!("there is no setting `{key}`{hint}")
        }
        kind => format!("{kind} for `{key}`"),
    };
    let source = err
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.source.as_ref())
        .and_then(|source| source.file_path())
        .and_then(|path| path.file_name())
        .map(|name| format!(" in {}", name.to_string_lossy()))
        .unwrap_or_default();
    format!("{what}{source}")
}

/// The candidate closest to `typed`, if it is close enough to be a typo.
fn nearest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|candidate| (strsim::levenshtein(typed, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min()
        .map(|(_, candidate)| candidate)
}

/// The outcome of loading: the configuration plus warnings to log once logging is set up.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads from an explicit file (must exist), or from `tessera.toml` when present, then the
    /// environment given as `vars` (the process environment in production, a fixed list in tests).
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        // What the file and the environment say, without the defaults: which settings are set.
        let mut given = Figment::new();
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError::Invalid(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
            Some(path) => {
                figment = figment.merge(Toml::file_exact(path));
                given = given.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
                given = given.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }

        let known = known_keys();
        let mut warnings = Vec::new();
        // (setting key, variable name): lets an error say which variable held the bad value.
        let mut sources: Vec<(String, String)> = Vec::new();
        if let Some((_, url)) = vars.iter().find(|(name, _)| name == "DATABASE_URL") {
            figment = figment.merge(Serialized::default("database.url", url));
            sources.push(("database.url".into(), "DATABASE_URL".into()));
        }
        for (name, raw) in &vars {
            let Some(rest) = name.strip_prefix("TESSERA_") else {
                continue;
            };
            if NON_SETTING_VARIABLES.contains(&name.as_str()) {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace("__", ".");
            let Some(kind) = known.get(&key) else {
                let hint = nearest(&key, known.keys().map(String::as_str))
                    .map(|near| {
                        let variable =
                            format!("TESSERA_{}", near.replace('.', "__").to_uppercase());
                        format!(" (did you mean {variable}?)")
                    })
                    .unwrap_or_default();
                warnings.push(format!(
                    "ignoring environment variable {name}: there is no setting `{key}`{hint}"
                ));
                continue;
            };
            // Text settings take the raw string (an all-digit secret stays text); the others
            // parse like TOML values, so `true`, `1024` and `["email"]` work.
            let value = match kind {
                KeyKind::Text => figment::value::Value::from(raw.clone()),
                KeyKind::Other => raw.parse().unwrap_or_else(|never| match never {}),
            };
            figment = figment.merge(Serialized::default(&key, value.clone()));
            given = given.merge(Serialized::default(&key, value));
            sources.push((key, name.clone()));
        }

        let mut config: Config = figment.extract().map_err(|err: figment::Error| {
            let key = err.path.join(".");
            match sources.iter().rev().find(|(k, _)| *k == key) {
                Some((_, var)) => {
                    ConfigError::Invalid(format!("{} (set by {var})", describe(&err)))
                }
                None => ConfigError::Figment(Box::new(err)),
            }
        })?;
        if !given.contains("public_url") {
            config.public_url = public_url_for(config.bind);
        }
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    /// Checks that cannot be expressed in types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let url = &self.database.url;
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return invalid(format!(
                "database.url must be sqlite://FILE?mode=rwc (the embedded default) or \
                 postgres://USER@HOST/DATABASE, got {:?}",
                redact_url_password(url)
            ));
        }
        if let Some(key) = &self.secret_key
            && key.expose_secret().len() < MIN_SECRET_KEY_BYTES
        {
            return invalid(format!(
                "secret_key is too short: use at least {MIN_SECRET_KEY_BYTES} random bytes \
                 (e.g. the output of `openssl rand -hex 32`)"
            ));
        }
        let prefix = &self.server.prefix;
        if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.contains("//") {
            return invalid(format!(
                "server.prefix must start and end with '/', got {prefix:?}"
            ));
        }
        if [
            "/docs/",
            "/health/",
            "/metrics/",
            "/openapi.json/",
            "/openapi.yaml/",
        ]
        .contains(&prefix.as_str())
        {
            return invalid(format!(
                "server.prefix {prefix:?} collides with a built-in route"
            ));
        }
        if self.email.backend == EmailBackend::Inbox && !self.bind.ip().is_loopback() {
            return invalid(format!(
                "email.backend = \"inbox\" shows every message, live links included, to whoever \
                 can reach /_inbox/: it is only for a loopback bind (127.0.0.1 or ::1), and bind \
                 is {}",
                self.bind
            ));
        }
        if !matches!(self.public_url.scheme(), "http" | "https") || !self.public_url.has_host() {
            return invalid(format!(
                "public_url must be an http(s) URL, got {:?}",
                self.public_url.as_str()
            ));
        }
        if self.server.request_timeout_seconds == 0
            || self.server.header_read_timeout_seconds == 0
            || self.server.idle_timeout_seconds == 0
        {
            return invalid("server timeouts must be at least 1 second".into());
        }
        if self.database.acquire_timeout_seconds == 0 || self.database.max_connections == 0 {
            return invalid(
                "database.max_connections and database.acquire_timeout_seconds must be at \
                 least 1"
                    .into(),
            );
        }
        if self.server.max_body_bytes < 1024 {
            return invalid("server.max_body_bytes must be at least 1024".into());
        }
        if self.account.login_methods.is_empty() {
            return invalid("account.login_methods must name at least one method".into());
        }
        if self.account.password_min_length == 0 {
            return invalid("account.password_min_length must be at least 1".into());
        }
        if !(1..=128).contains(&self.rate_limits.ipv6_prefix) {
            return invalid("rate_limits.ipv6_prefix must be between 1 and 128".into());
        }
        if !(6..=8).contains(&self.mfa.totp_digits) {
            return invalid(
                "mfa.totp_digits must be 6, 7 or 8 (what authenticator apps show)".into(),
            );
        }
        if self.mfa.totp_period == 0 || self.mfa.ephemeral_token_timeout == 0 {
            return invalid(
                "mfa.totp_period and mfa.ephemeral_token_timeout must be positive".into(),
            );
        }
        if !(1..=63).contains(&self.mfa.recovery_code_count) {
            return invalid("mfa.recovery_code_count must be between 1 and 63".into());
        }
        if let Err(err) = argon2::Params::new(
            self.password_hashing.memory_kib,
            self.password_hashing.iterations,
            self.password_hashing.parallelism,
            None,
        ) {
            return invalid(format!("password_hashing: {err}"));
        }
        if let Some(origin) = self.cors.allowed_origins.iter().find(|o| !is_web_origin(o)) {
            return invalid(format!(
                "cors.allowed_origins: {origin:?} is not an origin like \"https://app.example.com\" \
                 (no wildcard: credentials are allowed for listed origins)"
            ));
        }
        self.social.validate()?;
        if self.session.idle_timeout_seconds == 0 || self.session.absolute_timeout_seconds == 0 {
            return invalid("session timeouts must be positive".into());
        }
        if !(self.email.retry_initial_seconds > 0.0
            && self.email.retry_max_seconds >= self.email.retry_initial_seconds)
        {
            return invalid(
                "email.retry_initial_seconds must be positive and at most email.retry_max_seconds"
                    .into(),
            );
        }
        for (key, template, placeholders) in [
            (
                "frontend.verify_email_url",
                &self.frontend.verify_email_url,
                &["{key}"][..],
            ),
            (
                "frontend.password_reset_url",
                &self.frontend.password_reset_url,
                &["{uid}", "{token}"][..],
            ),
        ] {
            if let Some(template) = template
                && let Some(missing) = placeholders.iter().find(|p| !template.contains(*p))
            {
                return invalid(format!("{key} must contain the placeholder {missing}"));
            }
        }
        Ok(())
    }

    /// The link that confirms an email address, from configuration only (never the Host header).
    pub fn verify_email_link(&self, key: &str) -> String {
        match &self.frontend.verify_email_url {
            Some(template) => template.replace("{key}", key),
            None => format!("{}/verify-email/{key}/", self.public_base()),
        }
    }

    /// The link that opens the password-reset form for `uid` and `token`.
    pub fn password_reset_link(&self, uid: &str, token: &str) -> String {
        match &self.frontend.password_reset_url {
            Some(template) => template.replace("{uid}", uid).replace("{token}", token),
            None => format!(
                "{}/password-reset/confirm/{uid}/{token}/",
                self.public_base()
            ),
        }
    }

    /// What `tessera check --deploy` warns about, as Django's `check --deploy` does: settings
    /// that are fine on a laptop and wrong in production.
    pub fn deployment_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let https = self.public_url.scheme() == "https";
        if https && !self.session.cookie_secure {
            warnings.push(
                "public_url is https but session.cookie_secure = false: the session and CSRF \
                 cookies would also travel over plain http"
                    .to_owned(),
            );
        }
        if https && self.auth.mode == AuthMode::Jwt && !self.jwt.cookie_secure {
            warnings.push("public_url is https but jwt.cookie_secure = false".to_owned());
        }
        if !self.bind.ip().is_loopback() && self.server.trusted_proxies.is_empty() {
            warnings.push(format!(
                "bind = {} is reachable from other hosts and server.trusted_proxies is empty: \
                 behind a proxy, rate limits and the audit trail see only the proxy's address",
                self.bind
            ));
        }
        match self.email.backend {
            EmailBackend::Console | EmailBackend::Inbox => warnings.push(format!(
                "email.backend = {:?} delivers no mail to anyone: use smtp",
                self.email.backend
            )),
            EmailBackend::Smtp | EmailBackend::File => {}
        }
        match (&self.secret_key, &self.secret_key_file) {
            // A key file that exists is read as the key: the secret store's file is as good.
            (Some(_), _) => {}
            (None, Some(path)) if path.exists() => {}
            (None, Some(path)) => warnings.push(format!(
                "secret_key_file {} does not exist: serve would generate a key there that only \
                 this machine has; put the key from your secret store there",
                path.display()
            )),
            (None, None) => warnings.push(
                "no secret_key is set: a generated key file works for one machine; set \
                 TESSERA_SECRET_KEY, or secret_key_file to a file holding the key, from your \
                 secret store"
                    .to_owned(),
            ),
        }
        if self.sqlite_path().is_some() {
            warnings.push(
                "the database is SQLite: one instance only; several instances need PostgreSQL"
                    .to_owned(),
            );
        }
        if self
            .public_url
            .host_str()
            .is_some_and(|host| host == "127.0.0.1" || host == "localhost")
        {
            warnings.push(format!(
                "public_url = {} points at this machine: links in mails will not work elsewhere",
                self.public_url
            ));
        }
        warnings
    }

    /// `public_url` without a trailing slash, for appending paths.
    pub fn public_base(&self) -> &str {
        self.public_url.as_str().trim_end_matches('/')
    }

    /// The SQLite database file, when the database is SQLite on disk.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database.url.strip_prefix("sqlite:")?;
        let rest = rest.trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        Some(PathBuf::from(path))
    }
}

/// Every dotted key path a setting can have, derived from the defaults so it never drifts.
fn known_keys() -> BTreeMap<String, KeyKind> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, KeyKind>) {
        if let serde_json::Value::Object(map) = value {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                walk(&path, child, out);
                let kind = match child {
                    serde_json::Value::String(_) | serde_json::Value::Null => KeyKind::Text,
                    _ => KeyKind::Other,
                };
                out.insert(path, kind);
            }
        }
    }
    let mut out = BTreeMap::new();
    let defaults = serde_json::to_value(Config::default()).expect("defaults serialize");
    walk("", &defaults, &mut out);
    out
}

#[derive(Clone, Copy)]
enum KeyKind {
    Text,
    Other,
}
