//! Identity providers for the social login tests, real servers on 127.0.0.1:
//!
//! - [`OidcProvider`]: an OpenID Connect provider, PyPI's `oidc-provider-mock` (Flask and
//!   Authlib) run by `oidc_provider/run.py`, which adds what the package lacks and the issue
//!   asks of the tests: clients the test names, with a checked secret; PKCE (S256) verified;
//!   a `kid` on id_tokens; key rotation; HTTP cache lifetimes on discovery and JWKS; id_tokens
//!   minted with any claims (expired, wrong audience, forged).
//! - [`GithubStub`]: `github_stub.py` (standard library only), GitHub's token, user and emails
//!   endpoints as GitHub answers them.
//!
//! A user signs in without a browser: the provider's consent step is one form POST (`sub`),
//! after the test has set that user's claims (`PUT /users/<sub>`). The provider takes its
//! issuer from the Host header: reach it as `127.0.0.1:PORT`, as [`OidcProvider::issuer`] says.
//!
//! The provider's virtualenv is built once per machine under `<target>/test-tools/oidc`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The provider and what `run.py` reaches into (grant classes, PKCE, JOSE), pinned together:
/// changing one rebuilds the virtualenv.
pub const PINS: &[&str] = &[
    "oidc-provider-mock==0.3.4",
    "Authlib==1.9.10",
    "joserfc==1.8.0",
    "Flask==3.1.3",
    "Werkzeug==3.1.9",
];

const RUN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/support/oidc_provider/run.py"
);
const GITHUB_STUB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/support/github_stub.py"
);
/// A cold start (Flask, Authlib, an RSA key) takes under a second; the first install is
/// before this and not counted.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The provider's interpreter, its virtualenv built on first use (see `tools`).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| super::tools::python_venv("oidc", PINS))
        .clone()
}

/// A child that prints its base URL once listening (it binds port 0 itself, so no other
/// process can take the port in between) and exits when its stdin closes.
struct Server {
    url: String,
    log_dir: TempDir,
    child: Child,
    /// Held open: the server exits when it closes, even if this test process dies.
    _stdin: ChildStdin,
}

impl Server {
    fn spawn(mut command: Command, what: &str) -> Self {
        let log_dir = tempfile::tempdir().expect("temporary directory");
        let log_path = log_dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("create the server log");
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) if line.starts_with("http://") => Self {
                url: line.trim().to_owned(),
                log_dir,
                child,
                _stdin: stdin,
            },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("{what} did not start:\n{log}");
            }
        }
    }

    /// What the server wrote on stderr: one `METHOD PATH STATUS` line a request, and errors.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("server.log")).unwrap_or_default()
    }

    /// How many requests began with `method path_prefix` (query included in the path).
    fn hits(&self, method: &str, path_prefix: &str) -> usize {
        let start = format!("{method} {path_prefix}");
        self.log()
            .lines()
            .filter(|line| line.starts_with(&start))
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Redirects are what the tests look at (the code is in the `Location`), so none is followed.
fn http_client() -> reqwest::Client {
    crate::support::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// A PKCE pair as a relying party makes it (RFC 7636, S256).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("random bytes");
        Self::from_verifier(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_verifier(verifier: &str) -> Self {
        Self {
            verifier: verifier.to_owned(),
            challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()).as_slice()),
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// Who signs in at the provider: the subject and the claims it asserts about them.
#[derive(Debug, Clone)]
pub struct Claims {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
}

impl Claims {
    pub fn new(sub: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            email: None,
            email_verified: None,
            name: None,
        }
    }

    pub fn email(mut self, email: &str, verified: bool) -> Self {
        self.email = Some(email.to_owned());
        self.email_verified = Some(verified);
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// The user record the provider keeps (all but `sub`); it picks from these by scope.
    fn user_claims(&self) -> Value {
        let mut claims = serde_json::Map::new();
        if let Some(email) = &self.email {
            claims.insert("email".into(), json!(email));
        }
        if let Some(verified) = self.email_verified {
            claims.insert("email_verified".into(), json!(verified));
        }
        if let Some(name) = &self.name {
            claims.insert("name".into(), json!(name));
        }
        Value::Object(claims)
    }
}

/// A client registered at the provider (`PUT /test/clients/<id>`): any other client id is
/// refused, and the secret is checked (HTTP Basic or in the form).
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

/// How the provider runs; the default is what a careful real provider does.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    /// Refuse an authorization request without a PKCE challenge (`invalid_request`).
    pub require_pkce: bool,
    /// Lifetime of id_tokens and access tokens, in seconds.
    pub token_max_age: u64,
    /// `Cache-Control: public, max-age=N` on discovery and JWKS; none without it.
    pub cache_max_age: Option<u64>,
}

impl Default for OidcOptions {
    fn default() -> Self {
        Self {
            require_pkce: true,
            token_max_age: 3600,
            cache_max_age: None,
        }
    }
}

/// The key an id_token from [`OidcProvider::id_token_for`] is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey {
    /// The key the provider signs with now (in its JWKS).
    Current,
    /// The key before the last [`OidcProvider::rotate_keys`] (in the JWKS while kept).
    Previous,
    /// A key the provider never published, under the current key's `kid`: a forgery.
    Stranger,
}

/// A running OpenID Connect provider. Stopped when dropped.
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`, exactly as the provider writes `iss` (no trailing slash).
    pub issuer: String,
    server: Server,
    http: reqwest::Client,
}

impl OidcProvider {
    pub fn start() -> Self {
        Self::start_with(OidcOptions::default())
    }

    pub fn start_with(options: OidcOptions) -> Self {
        let python = python();
        let mut command = Command::new(&python);
        command
            .arg(RUN)
            .args(["--port", "0", "--token-max-age"])
            .arg(options.token_max_age.to_string());
        if options.require_pkce {
            command.arg("--require-pkce");
        }
        if let Some(max_age) = options.cache_max_age {
            command.arg("--cache-max-age").arg(max_age.to_string());
        }
        let server = Server::spawn(
            command,
            "the OpenID Connect provider (oidc_provider/run.py)",
        );
        Self {
            issuer: server.url.clone(),
            server,
            http: http_client(),
        }
    }

    /// The provider's own discovery document, for comparing with what the app fetched.
    pub async fn discovery(&self) -> Value {
        self.get_json("/.well-known/openid-configuration").await
    }

    pub async fn jwks(&self) -> Value {
        self.get_json("/jwks").await
    }

    /// Registers `client` (again: replaces it).
    pub async fn register_client(&self, client: &OidcClient) {
        let body = json!({
            "client_secret": client.client_secret,
            "redirect_uris": client.redirect_uris,
        });
        let path = format!("/test/clients/{}", client.client_id);
        self.send(self.http.put(self.url(&path)).json(&body), &path)
            .await;
    }

    /// Sets what the provider asserts about `claims.sub` from now on (id_token and userinfo).
    pub async fn set_user(&self, claims: &Claims) {
        let path = format!("/users/{}", claims.sub);
        self.send(
            self.http.put(self.url(&path)).json(&claims.user_claims()),
            &path,
        )
        .await;
    }

    /// The user's part of a redirect flow, done over plain HTTP: `authorization_url` is where
    /// the relying party sent the browser (the provider's authorize endpoint with its query);
    /// the user `claims.sub` consents. Returns where the provider sends the browser back:
    /// `redirect_uri?code=..&state=..`, or `?error=..&state=..` when it refused the request.
    pub async fn consent(&self, authorization_url: &str, claims: &Claims) -> url::Url {
        self.set_user(claims).await;
        let response = self
            .http
            .post(authorization_url)
            .form(&[("sub", claims.sub.as_str())])
            .send()
            .await
            .unwrap_or_else(|err| panic!("POST {authorization_url}: {err}"));
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(location) if status.is_redirection() => url::Url::parse(&location)
                .unwrap_or_else(|err| panic!("a redirect URL: {location}: {err}")),
            _ => panic!(
                "the provider did not redirect back from {authorization_url}: {status}\n{}\n{}",
                response.text().await.unwrap_or_default(),
                self.server.log()
            ),
        }
    }

    /// The authorization request a relying party would make, for a test that plays the
    /// frontend (the `code` POST variant): the user `claims.sub` consents; returns the code.
    pub async fn authorize(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
        claims: &Claims,
    ) -> String {
        let mut url = url::Url::parse(&self.url("/oauth2/authorize")).expect("a URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        let back = self.consent(url.as_str(), claims).await;
        let param = |name: &str| {
            back.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        if let Some(error) = param("error") {
            panic!(
                "the provider refused the authorization: {error}: {}",
                param("error_description").unwrap_or_default()
            );
        }
        assert_eq!(
            param("state").as_deref(),
            Some(state),
            "state echoed: {back}"
        );
        param("code").unwrap_or_else(|| panic!("a code in {back}"))
    }

    /// The token endpoint's answer for `code` (`access_token`, `id_token`, ...), as the
    /// relying party would get it: for tests of the `access_token` and `id_token` variants.
    pub async fn exchange(
        &self,
        client: &OidcClient,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Value {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ];
        let request = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&form);
        self.send(request, "/oauth2/token").await
    }

    /// A whole sign-in at the provider (authorize, consent, token) without the app: the
    /// token answer, its id_token carrying `nonce`. Uses the client's first redirect URI.
    pub async fn sign_in(&self, client: &OidcClient, claims: &Claims, nonce: &str) -> Value {
        let redirect_uri = client.redirect_uris.first().expect("a redirect URI");
        let pkce = Pkce::new();
        let code = self
            .authorize(
                &client.client_id,
                redirect_uri,
                "state",
                nonce,
                &pkce.challenge,
                claims,
            )
            .await;
        self.exchange(client, &code, redirect_uri, &pkce.verifier)
            .await
    }

    /// Rotates the signing key as providers do: a new key (new `kid`) signs from now on and
    /// is published; the old one stays in the JWKS. Returns the new `kid`.
    pub async fn rotate_keys(&self) -> String {
        self.rotate(true).await
    }

    /// Rotates, and drops every older key from the JWKS: tokens signed before no longer
    /// verify. Returns the new `kid`.
    pub async fn replace_keys(&self) -> String {
        self.rotate(false).await
    }

    async fn rotate(&self, keep_previous: bool) -> String {
        let request = self
            .http
            .post(self.url("/test/rotate-keys"))
            .json(&json!({ "keep_previous": keep_previous }));
        let answer = self.send(request, "/test/rotate-keys").await;
        answer["kid"].as_str().expect("the new kid").to_owned()
    }

    /// An id_token signed by `key` with `claims` over the provider's defaults (`iss`, `iat`,
    /// `exp` = now + token lifetime, `auth_time`); `sub`, `aud`, `nonce` etc. are the
    /// test's to give. An `exp` in the past makes an expired token.
    pub async fn id_token_for(&self, claims: &Value, key: SigningKey) -> String {
        self.id_token_with_header(claims, key, &json!({})).await
    }

    /// As [`Self::id_token_for`], with header fields replaced (e.g. another `kid`).
    pub async fn id_token_with_header(
        &self,
        claims: &Value,
        key: SigningKey,
        header: &Value,
    ) -> String {
        let key = match key {
            SigningKey::Current => "current",
            SigningKey::Previous => "previous",
            SigningKey::Stranger => "stranger",
        };
        let body = json!({ "claims": claims, "key": key, "header": header });
        let request = self.http.post(self.url("/test/id-token")).json(&body);
        let answer = self.send(request, "/test/id-token").await;
        answer["id_token"].as_str().expect("an id_token").to_owned()
    }

    /// How many `GET` requests for `path_prefix` the provider served, e.g. `/jwks` (how often
    /// the app fetched keys) or `/.well-known/openid-configuration`.
    pub fn hits(&self, path_prefix: &str) -> usize {
        self.server.hits("GET", path_prefix)
    }

    /// The provider's request log and errors, for a failing test's message.
    pub fn log(&self) -> String {
        self.server.log()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    async fn get_json(&self, path: &str) -> Value {
        self.send(self.http.get(self.url(path)), path).await
    }

    /// Sends a request the test expects to succeed: its JSON answer (null when empty).
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Value {
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{what} at the provider: {err}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{what} at the provider: {status}\n{text}\n{}",
            self.server.log()
        );
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{what}: JSON: {err}: {text}"))
        }
    }
}

/// A running stand-in for GitHub's OAuth app endpoints (`github_stub.py`). Stopped when
/// dropped. Its base URL serves both GitHub's web endpoints (`/login/oauth/...`) and its API
/// (`/user`, `/user/emails`).
pub struct GithubStub {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    server: Server,
    _config: TempDir,
    http: reqwest::Client,
}

impl GithubStub {
    /// Starts the stub with `config`: `{"clients": {"<id>": {"secret", "redirect_uris"?}},
    /// "users": [{"id", "login", "name", "email" (null: private), "emails": [{"email",
    /// "primary", "verified", "visibility"}], "codes"?: [..]}]}` (see `github_stub.py`).
    /// Standard-library Python only: no virtualenv.
    pub fn start(config: &Value) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("github.json");
        std::fs::write(&path, config.to_string()).expect("write the stub's config");
        let mut command = Command::new("python3");
        command
            .arg(GITHUB_STUB)
            .args(["--port", "0", "--config"])
            .arg(&path);
        let server = Server::spawn(command, "the GitHub stub (github_stub.py)");
        Self {
            url: server.url.clone(),
            server,
            _config: dir,
            http: http_client(),
        }
    }

    /// A code for `login` with `scope` (comma or space separated; `user:email` lets the token
    /// read `/user/emails`), valid 10 minutes for any configured client, single use.
    pub async fn code_for(&self, login: &str, scope: &str) -> String {
        let response = self
            .http
            .post(format!("{}/_stub/codes", self.url))
            .json(&json!({ "login": login, "scope": scope }))
            .send()
            .await
            .expect("POST /_stub/codes");
        let answer: Value = response.json().await.expect("JSON from /_stub/codes");
        answer["code"]
            .as_str()
            .unwrap_or_else(|| panic!("a code for {login}: {answer}"))
            .to_owned()
    }

    /// The user's part of a redirect flow: `authorization_url` is where the app sent the
    /// browser (`/login/oauth/authorize?...`); `login` authorizes. Returns where the stub
    /// sends the browser back (`redirect_uri?code=..&state=..`).
    pub async fn consent(&self, authorization_url: &str, login: &str) -> url::Url {
        let mut url = url::Url::parse(authorization_url).expect("an authorization URL");
        url.query_pairs_mut().append_pair("login", login);
        let response = self
            .http
            .get(url.as_str())
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {url}: {err}"));
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(location) if status.is_redirection() => url::Url::parse(&location)
                .unwrap_or_else(|err| panic!("a redirect URL: {location}: {err}")),
            _ => panic!(
                "the GitHub stub did not redirect back from {url}: {status}\n{}",
                response.text().await.unwrap_or_default()
            ),
        }
    }

    /// How many `method` requests for `path_prefix` the stub served (e.g. `GET /user/emails`).
    pub fn hits(&self, method: &str, path_prefix: &str) -> usize {
        self.server.hits(method, path_prefix)
    }

    pub fn log(&self) -> String {
        self.server.log()
    }
}
