//! Social login over HTTP (issue 13): dj-rest-auth's social views (`social/{id}/`,
//! `social/{id}/connect/`, `socialaccounts/`, `socialaccounts/{id}/disconnect/`) and the
//! browser redirect flow (`social/{id}/redirect/`, `social/{id}/callback/`,
//! `social/exchange/`), against a real OpenID Connect provider and the GitHub stand-in
//! (`support::oidc`), in token, JWT and session mode.
//!
//! Every proof a frontend can bring (a code with and without PKCE, an id_token, an access
//! token) and every way one can be wrong; which account a provider's user gets (a new one, the
//! linked one, the one holding a verified address under `social.email_authentication`, the
//! password of an unconfirmed one ended); linking and unlinking, and the last way in kept;
//! the redirect flow end to end and its refusals; the second factor; account deletion; and
//! the real binary's log, which must hold no code, token or client secret.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, Utc};
use entity::{audit_event, social_account, social_login_code, social_login_state, user};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tessera::Config;
use tessera::config::{AccountDeletion, EmailVerification, SocialProvider};

use crate::support::cookies::{SESSION_COOKIE, set_cookies};
use crate::support::device::Device;
use crate::support::mail::{
    PUBLIC_URL, RESET_PREFIX, VERIFY_PREFIX, frontend_links, key_from, uid_and_token,
};
use crate::support::modes::{MODES, Mode};
use crate::support::oidc::{self, Claims, GithubStub, OidcClient, OidcOptions, Pkce, SigningKey};
use crate::support::process::ServeProcess;
use crate::support::totp::Authenticator;
use crate::support::{Backend, PASSWORD, Reply, TestApp, TestDb, confirm_reset};

on_each_backend!(
    every_proof_signs_in_one_user_in_every_mode,
    a_code_without_pkce_and_without_callback_url,
    a_wrong_or_missing_pkce_verifier_fails_the_exchange,
    github_codes_tokens_and_addresses,
    bad_tokens_and_inputs_are_refused,
    keys_rotate_without_breaking_sign_in,
    an_existing_address_is_not_linked_by_default,
    email_authentication_links_a_verified_address,
    linking_an_unconfirmed_local_address_ends_its_password,
    a_squatted_account_is_taken_back_whole,
    a_squatters_authenticator_ends_with_its_password,
    mandatory_verification_holds_back_an_unverified_provider_address,
    inactive_users_are_refused,
    connect_list_and_disconnect_in_every_mode,
    the_last_way_in_cannot_be_disconnected,
    an_account_linked_elsewhere_cannot_be_connected,
    the_redirect_flow_in_every_mode,
    the_redirect_flow_refuses_bad_next_and_bad_state,
    refusals_after_a_good_state_go_back_to_next,
    login_codes_are_single_use_and_short_lived,
    mfa_users_get_the_second_step_in_every_mode,
    deleting_the_account_removes_its_links,
    unknown_providers_are_not_found,
    no_secret_reaches_the_log,
);

const CORP: &str = "corp";
const CLIENT_ID: &str = "tessera-test";
const CLIENT_SECRET: &str = "s3cret-client-secret-for-the-corp-idp";
/// The frontend's own callback, where the `code` POST variant's codes are issued for: the
/// provider's `callback_url`.
const FRONTEND_CALLBACK: &str = "https://app.example.com/auth/callback/corp";
const APP_ORIGIN: &str = "https://app.example.com";
/// Where the redirect flow ends (on an allowed origin).
const NEXT: &str = "https://app.example.com/signed-in?from=social";
const STATE_COOKIE: &str = "tessera_social_state";

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const GRACE: &str = "grace@example.com";

// dj-rest-auth's and allauth's messages, byte for byte, and Tessera's own.
const INPUT_MISSING: &str = "Incorrect input. access_token or code is required.";
const EXCHANGE_FAILED: &str = "Failed to exchange code for access token";
const INCORRECT_VALUE: &str = "Incorrect value";
const EMAIL_TAKEN: &str = "User is already registered with this e-mail address.";
const EMAIL_NOT_VERIFIED: &str = "E-mail is not verified.";
const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
const ACCOUNT_TAKEN: &str = "The third-party account is already connected to a different account.";
const CONNECTED: &str = "Connected.";
const DISCONNECTED: &str = "Disconnected.";
const NO_PASSWORD: &str = "Your account has no password set up.";
const NEXT_NOT_ALLOWED: &str = "This redirect URL is not allowed.";
const REQUIRED: &str = "This field is required.";
const NOT_FOUND: &str = "Not found.";
const REAUTHENTICATION_REQUIRED: &str = "Please confirm your password to continue.";

// ---------------------------------------------------------------------------------------------
// The identity provider
// ---------------------------------------------------------------------------------------------

/// Tessera's callback for `provider`: the redirect flow's `redirect_uri`, and the code
/// variant's when the provider has no `callback_url`.
fn tessera_callback(provider: &str) -> String {
    format!("{PUBLIC_URL}/auth/social/{provider}/callback/")
}

fn oidc_client() -> OidcClient {
    OidcClient {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![
            FRONTEND_CALLBACK.into(),
            tessera_callback(CORP),
            tessera_callback("plain"),
        ],
    }
}

fn ada() -> Claims {
    Claims::new("ada-1815")
        .email(ADA, true)
        .name("Ada Lovelace")
}

/// The OpenID Connect provider with Tessera's client registered.
struct Idp {
    oidc: oidc::OidcProvider,
}

impl Idp {
    async fn start() -> Self {
        Self::start_with(OidcOptions::default()).await
    }

    async fn start_with(options: OidcOptions) -> Self {
        let oidc = oidc::OidcProvider::start_with(options);
        oidc.register_client(&oidc_client()).await;
        Self { oidc }
    }

    /// `[[social.providers]]` for this provider under `id`, with `callback_url` when given.
    fn provider(&self, id: &str, callback_url: Option<&str>) -> SocialProvider {
        let mut config = json!({
            "id": id,
            "kind": "oidc",
            "issuer": self.oidc.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        });
        if let Some(url) = callback_url {
            config["callback_url"] = json!(url);
        }
        serde_json::from_value(config).unwrap()
    }

    /// The corp provider as most tests have it: codes are issued for the frontend's callback.
    fn corp(&self) -> SocialProvider {
        self.provider(CORP, Some(FRONTEND_CALLBACK))
    }

    async fn authorization_endpoint(&self) -> String {
        self.oidc.discovery().await["authorization_endpoint"]
            .as_str()
            .expect("discovery names the authorization endpoint")
            .to_owned()
    }

    /// A code for `claims`' user, issued for `redirect_uri`, the authorization request carrying
    /// `pkce`'s challenge when given (as a frontend running the flow itself would get it).
    async fn code(&self, claims: &Claims, redirect_uri: &str, pkce: Option<&Pkce>) -> String {
        let mut url = url::Url::parse(&self.authorization_endpoint().await).unwrap();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", CLIENT_ID)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", "openid email profile")
                .append_pair("state", "frontend-state")
                .append_pair("nonce", "frontend-nonce");
            if let Some(pkce) = pkce {
                query
                    .append_pair("code_challenge", &pkce.challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        let back = self.oidc.consent(url.as_str(), claims).await;
        let params = query_of(&back);
        assert!(
            !params.contains_key("error"),
            "the provider refused: {back}\n{}",
            self.oidc.log()
        );
        params
            .get("code")
            .unwrap_or_else(|| panic!("a code in {back}"))
            .clone()
    }

    /// The token endpoint's answer of a whole sign-in of `claims`' user at the provider.
    async fn tokens(&self, claims: &Claims) -> Value {
        self.oidc.sign_in(&oidc_client(), claims, "n-1").await
    }

    /// An id_token the provider issued to Tessera's client in a real code flow.
    async fn id_token(&self, claims: &Claims) -> String {
        string(&self.tokens(claims).await["id_token"])
    }

    /// An access token for the provider's userinfo, from a real code flow.
    async fn access_token(&self, claims: &Claims) -> String {
        string(&self.tokens(claims).await["access_token"])
    }

    /// An id_token for `claims` signed by `key`, `change` applied to its claims first.
    async fn minted(
        &self,
        claims: &Claims,
        key: SigningKey,
        change: impl FnOnce(&mut Value),
    ) -> String {
        let mut body = json!({ "sub": claims.sub, "aud": CLIENT_ID });
        if let Some(email) = &claims.email {
            body["email"] = json!(email);
            body["email_verified"] = json!(claims.email_verified.unwrap_or(false));
        }
        if let Some(name) = &claims.name {
            body["name"] = json!(name);
        }
        change(&mut body);
        self.oidc.id_token_for(&body, key).await
    }
}

// ---------------------------------------------------------------------------------------------
// The app and a frontend per mode
// ---------------------------------------------------------------------------------------------

/// An app in `mode` with `providers`, redirects allowed back to the frontend's origin, mail
/// links to the frontend; `configure` applied last.
async fn spawn(
    backend: &Backend,
    mode: Mode,
    providers: Vec<SocialProvider>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    TestApp::spawn_with(backend.clone(), |config| {
        mode.configure(config);
        frontend_links(config);
        config.social.providers = providers;
        config.social.allowed_redirect_origins = vec![APP_ORIGIN.into()];
        configure(config);
    })
    .await
}

/// An HTTP client that follows no redirect: the redirect flow's answers are what is tested.
fn no_redirects() -> reqwest::Client {
    crate::support::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// A frontend of one mode on one device (a browser in session mode); redirects are not
/// followed.
fn new_frontend(app: &TestApp, mode: Mode) -> Device<'_> {
    Device::new(app, mode).http_client(no_redirects())
}

/// Social login as a frontend calls it.
impl Device<'_> {
    async fn social(&mut self, provider: &str, body: Value) -> Reply {
        self.post(&format!("social/{provider}/"), body).await
    }

    async fn connect(&mut self, provider: &str, body: Value) -> Reply {
        self.post(&format!("social/{provider}/connect/"), body)
            .await
    }

    async fn exchange(&mut self, login_code: &str) -> Reply {
        self.post("social/exchange/", json!({ "login_code": login_code }))
            .await
    }

    /// `user/`, which must answer.
    async fn profile(&mut self) -> Value {
        let reply = self.me().await;
        assert_eq!(reply.status, 200, "{:?}: user/: {}", self.mode, reply.text);
        reply.body
    }

    /// The user's pk, checking that the credential is `email`'s.
    async fn pk_of(&mut self, email: &str) -> i64 {
        let me = self.profile().await;
        assert_eq!(me["email"], email, "{me}");
        me["pk"].as_i64().expect("a pk")
    }

    async fn accounts(&mut self) -> Vec<Value> {
        let reply = self.get("socialaccounts/").await;
        assert_eq!(reply.status, 200, "{:?}: {}", self.mode, reply.text);
        reply.body.as_array().expect("a list").clone()
    }

    async fn disconnect(&mut self, id: &str) -> Reply {
        self.post(&format!("socialaccounts/{id}/disconnect/"), json!({}))
            .await
    }

    /// `reply` is a login answer of this mode, shaped as `login/`'s (token: 200 `{"key"}`;
    /// JWT: 200 with the access and refresh tokens; session: 204 and the session cookie); the
    /// frontend now holds that credential.
    fn adopt_login(&mut self, reply: &Reply) {
        self.adopt(reply, 200);
        if self.mode == Mode::Token {
            assert_eq!(keys(&reply.body), set(&["key"]), "{}", reply.text);
        }
    }

    /// Forgets its credential, keeping its CSRF cookie (a fresh tab of the same browser).
    fn log_out_locally(&mut self) {
        self.bearer = None;
        self.jar.remove(SESSION_COOKIE);
    }
}

/// What a login answer looks like, whatever user it is for: the status, the body's keys, and
/// the names of the cookies it sets (not removes).
fn shape(reply: &Reply) -> (u16, BTreeSet<String>, BTreeSet<String>) {
    let keys = match &reply.body {
        Value::Object(map) => map.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    let cookies = set_cookies(reply)
        .into_iter()
        .filter(|cookie| !cookie.is_removal())
        .map(|cookie| cookie.name)
        .collect();
    (reply.status, keys, cookies)
}

/// The shape of `login/`'s answer in this app, from a password login of a user made for it.
async fn login_shape(app: &TestApp, mode: Mode) -> (u16, BTreeSet<String>, BTreeSet<String>) {
    let mut reference = new_frontend(app, mode);
    reference.register("reference@example.com").await;
    reference.log_out_locally();
    let reply = reference
        .post(
            "login/",
            json!({"email": "reference@example.com", "password": PASSWORD}),
        )
        .await;
    assert!(matches!(reply.status, 200 | 204), "{}", reply.text);
    shape(&reply)
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string: {value}"))
        .to_owned()
}

fn keys(body: &Value) -> BTreeSet<String> {
    body.as_object()
        .unwrap_or_else(|| panic!("an object: {body}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn query_of(url: &url::Url) -> BTreeMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The `application/x-www-form-urlencoded` pairs of a URL's fragment.
fn fragment_of(location: &str) -> BTreeMap<String, String> {
    let url = url::Url::parse(location).unwrap_or_else(|err| panic!("{location}: {err}"));
    url::form_urlencoded::parse(url.fragment().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The URL without its fragment.
fn without_fragment(location: &str) -> String {
    let mut url = url::Url::parse(location).unwrap_or_else(|err| panic!("{location}: {err}"));
    url.set_fragment(None);
    url.into()
}

fn location(reply: &Reply) -> String {
    assert_eq!(reply.status, 302, "{}", reply.text);
    reply
        .header("location")
        .unwrap_or_else(|| panic!("a Location: {reply:?}"))
        .to_owned()
}

fn assert_non_field(reply: &Reply, message: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({ "non_field_errors": [message] }),
        "{}",
        reply.text
    );
}

fn assert_field(reply: &Reply, field: &str, message: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({ field: [message] }), "{}", reply.text);
}

fn assert_detail(reply: &Reply, status: u16, detail: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["detail"], detail, "{}", reply.text);
}

/// Who holds what at the providers: (user id, provider, uid), in order of linking.
async fn links(app: &TestApp) -> Vec<(i64, String, String)> {
    social_account::Entity::find()
        .order_by_asc(social_account::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|link| (link.user_id.0, link.provider, link.uid))
        .collect()
}

async fn user_count(app: &TestApp) -> u64 {
    user::Entity::find().count(&app.db).await.unwrap()
}

/// The social entries of the audit trail: (event, outcome, reason, user id), oldest first.
async fn social_events(app: &TestApp) -> Vec<AuditRow> {
    audit_event::Entity::find()
        .filter(audit_event::Column::Event.starts_with("social"))
        .order_by_asc(audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|event| {
            (
                event.event,
                event.outcome,
                event.reason,
                event.user_id.map(|id| id.0),
            )
        })
        .collect()
}

fn event(name: &str, outcome: &str, reason: Option<&str>, user: Option<i64>) -> AuditRow {
    (name.into(), outcome.into(), reason.map(str::to_owned), user)
}

type AuditRow = (String, String, Option<String>, Option<i64>);

fn successes(events: Vec<AuditRow>) -> Vec<AuditRow> {
    events
        .into_iter()
        .filter(|(_, outcome, _, _)| outcome == "success")
        .collect()
}

/// `expected` appear in `events` in this order (other entries may come between).
fn assert_in_order(events: &[AuditRow], expected: &[AuditRow]) {
    let mut rest = events.iter();
    for wanted in expected {
        assert!(
            rest.any(|found| found == wanted),
            "{wanted:?} (in this order) in {events:?}"
        );
    }
}

/// Confirms `email`'s address with the newest confirmation link once `count` mails are out.
async fn confirm_address(app: &TestApp, count: usize) {
    let link = app.newest_link(count, VERIFY_PREFIX).await;
    let reply = app
        .post(
            "registration/verify-email/",
            json!({ "key": key_from(&link, VERIFY_PREFIX) }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

fn social_account_shape(entry: &Value, provider: &str, uid: &str) {
    assert_eq!(
        keys(entry),
        set(&["id", "provider", "uid", "last_login", "date_joined"]),
        "{entry}"
    );
    assert_eq!(entry["provider"], provider, "{entry}");
    assert_eq!(entry["uid"], uid, "{entry}");
    assert!(entry["id"].is_i64(), "{entry}");
    assert!(entry["date_joined"].is_string(), "{entry}");
}

fn id_of(entry: &Value) -> String {
    entry["id"].as_i64().expect("an id").to_string()
}

// ---------------------------------------------------------------------------------------------
// Proofs
// ---------------------------------------------------------------------------------------------

/// A code with PKCE signs the provider's user up: an account with the provider's names and
/// its verified address, no usable password, one link. An id_token and an access token of the
/// same user then sign in to that same account; each answer is `login/`'s, in every mode.
async fn every_proof_signs_in_one_user_in_every_mode(backend: Backend) {
    let idp = Idp::start().await;
    for mode in MODES {
        let app = spawn(&backend, mode, vec![idp.corp()], |_| {}).await;
        let reference = login_shape(&app, mode).await;

        let pkce = Pkce::new();
        let code = idp.code(&ada(), FRONTEND_CALLBACK, Some(&pkce)).await;
        let mut first = new_frontend(&app, mode);
        let reply = first
            .social(CORP, json!({"code": code, "code_verifier": pkce.verifier}))
            .await;
        first.adopt_login(&reply);
        assert_eq!(shape(&reply), reference, "{mode:?}: as login/ answers");
        let me = first.profile().await;
        assert_eq!(me["email"], ADA, "{me}");
        assert_eq!(me["first_name"], "Ada", "{me}");
        assert_eq!(me["last_name"], "Lovelace", "{me}");
        let pk = me["pk"].as_i64().unwrap();
        let emails = first.get("emails/").await;
        assert_eq!(
            emails.body,
            json!([{"email": ADA, "verified": true, "primary": true}]),
            "the provider vouched for the address: {}",
            emails.text
        );
        let accounts = first.accounts().await;
        assert_eq!(accounts.len(), 1, "{accounts:?}");
        social_account_shape(&accounts[0], CORP, "ada-1815");

        // A code is good once.
        let again = new_frontend(&app, mode)
            .social(CORP, json!({"code": code, "code_verifier": pkce.verifier}))
            .await;
        assert_non_field(&again, EXCHANGE_FAILED);

        // The same subject by an id_token, then by an access token: the same account.
        let mut second = new_frontend(&app, mode);
        let reply = second
            .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        second.adopt_login(&reply);
        assert_eq!(shape(&reply), reference);
        assert_eq!(second.pk_of(ADA).await, pk, "{mode:?}: the id_token's user");

        let mut third = new_frontend(&app, mode);
        let reply = third
            .social(
                CORP,
                json!({"access_token": idp.access_token(&ada()).await}),
            )
            .await;
        third.adopt_login(&reply);
        assert_eq!(shape(&reply), reference);
        assert_eq!(third.pk_of(ADA).await, pk, "{mode:?}: userinfo's user");

        // One account (and the reference user), one link; the account has no password.
        assert_eq!(user_count(&app).await, 2);
        assert_eq!(
            links(&app).await,
            vec![(pk, CORP.into(), "ada-1815".into())]
        );
        let mut by_password = new_frontend(&app, mode);
        let password = by_password
            .post("login/", json!({"email": ADA, "password": PASSWORD}))
            .await;
        assert_non_field(&password, BAD_CREDENTIALS);
        let password = by_password
            .post("login/", json!({"email": ADA, "password": ""}))
            .await;
        assert_eq!(password.status, 400, "{}", password.text);

        // The sign-up, then two sign-ins, in the audit trail (refused proofs may be there too).
        assert_eq!(
            successes(social_events(&app).await),
            vec![
                event("social_login", "success", Some("signup"), Some(pk)),
                event("social_login", "success", None, Some(pk)),
                event("social_login", "success", None, Some(pk)),
            ],
            "{mode:?}"
        );
        // And in the metrics: three sign-ins under one reason, the sign-up as a registration
        // beside the reference user's.
        let metrics = app.send(app.client.get(app.url("/metrics"))).await;
        let sample = |name: &str| {
            metrics
                .text
                .lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
        };
        assert_eq!(
            sample("tessera_logins_total{outcome=\"success\",reason=\"social\"}"),
            Some(3.0),
            "{mode:?}: {}",
            metrics.text
        );
        assert_eq!(sample("tessera_registrations_total"), Some(2.0), "{mode:?}");
        let accounts = first.accounts().await;
        assert!(accounts[0]["last_login"].is_string(), "{accounts:?}");
    }
}

/// Without PKCE the code works as a plain RFC 6749 code; without `callback_url` the code is
/// traded with Tessera's own callback as `redirect_uri`, which is what it must have been
/// issued for.
async fn a_code_without_pkce_and_without_callback_url(backend: Backend) {
    let idp = Idp::start_with(OidcOptions {
        require_pkce: false,
        ..OidcOptions::default()
    })
    .await;
    let plain = idp.provider("plain", None);
    let app = spawn(&backend, Mode::Token, vec![idp.corp(), plain], |_| {}).await;

    let code = idp.code(&ada(), FRONTEND_CALLBACK, None).await;
    let mut ada_frontend = new_frontend(&app, Mode::Token);
    let reply = ada_frontend.social(CORP, json!({ "code": code })).await;
    ada_frontend.adopt_login(&reply);
    ada_frontend.pk_of(ADA).await;

    let grace = Claims::new("grace-1906").email(GRACE, true);
    let code = idp.code(&grace, &tessera_callback("plain"), None).await;
    let mut grace_frontend = new_frontend(&app, Mode::Token);
    let reply = grace_frontend
        .social("plain", json!({ "code": code }))
        .await;
    grace_frontend.adopt_login(&reply);
    grace_frontend.pk_of(GRACE).await;
    assert_eq!(
        grace_frontend.accounts().await[0]["provider"],
        "plain",
        "links are per provider id"
    );

    // A code issued for the frontend's callback is not one for Tessera's.
    let bob = Claims::new("bob-1").email(BOB, true);
    let code = idp.code(&bob, FRONTEND_CALLBACK, None).await;
    let reply = app.post("social/plain/", json!({ "code": code })).await;
    assert_non_field(&reply, EXCHANGE_FAILED);
    assert!(
        links(&app).await.iter().all(|(_, _, uid)| uid != "bob-1"),
        "nothing linked"
    );
}

/// The provider checks the verifier against the challenge: a wrong one, or none, and the code
/// is not traded; no account is made.
async fn a_wrong_or_missing_pkce_verifier_fails_the_exchange(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |_| {}).await;

    let pkce = Pkce::new();
    let code = idp.code(&ada(), FRONTEND_CALLBACK, Some(&pkce)).await;
    let reply = app
        .post(
            "social/corp/",
            json!({"code": code, "code_verifier": Pkce::new().verifier}),
        )
        .await;
    assert_non_field(&reply, EXCHANGE_FAILED);

    let code = idp.code(&ada(), FRONTEND_CALLBACK, Some(&pkce)).await;
    let reply = app.post("social/corp/", json!({ "code": code })).await;
    assert_non_field(&reply, EXCHANGE_FAILED);

    assert_eq!(user_count(&app).await, 0, "no account");
    assert!(links(&app).await.is_empty());

    // The right verifier with a fresh code: the verifier is what was wrong.
    let code = idp.code(&ada(), FRONTEND_CALLBACK, Some(&pkce)).await;
    let reply = app
        .post(
            "social/corp/",
            json!({"code": code, "code_verifier": pkce.verifier}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

// ---------------------------------------------------------------------------------------------
// GitHub
// ---------------------------------------------------------------------------------------------

const GH: &str = "gh";
const GH_CLIENT: &str = "gh-client-id";
const GH_SECRET: &str = "gh-client-secret-value-0123";

fn github_stub() -> GithubStub {
    GithubStub::start(&json!({
        "clients": {GH_CLIENT: {"secret": GH_SECRET, "redirect_uris": [tessera_callback(GH)]}},
        "users": [
            {
                "id": 583231,
                "login": "octocat",
                "name": "The Octocat",
                "email": "octo-public@example.com",
                "emails": [
                    {"email": "octo-old@example.com", "primary": false, "verified": true,
                     "visibility": null},
                    {"email": "octocat@example.com", "primary": true, "verified": true,
                     "visibility": "private"},
                    {"email": "octo-public@example.com", "primary": false, "verified": false,
                     "visibility": "public"}
                ]
            },
            {
                "id": 9919,
                "login": "hubot",
                "name": "Hubot",
                "email": "hubot@example.com",
                "emails": [
                    {"email": "hubot@example.com", "primary": true, "verified": true,
                     "visibility": "public"}
                ]
            }
        ]
    }))
}

fn github_provider(stub: &GithubStub, secret: &str) -> SocialProvider {
    serde_json::from_value(json!({
        "id": GH,
        "kind": "github",
        "client_id": GH_CLIENT,
        "client_secret": secret,
        "scopes": ["read:user", "user:email"],
        "authorization_endpoint": format!("{}/login/oauth/authorize", stub.url),
        "token_endpoint": format!("{}/login/oauth/access_token", stub.url),
        "api_url": stub.url,
    }))
    .unwrap()
}

/// GitHub's numeric id is the uid; the address is the verified primary one of `/user/emails`;
/// without the `user:email` scope only the profile's public address is known, unverified.
/// Its access tokens sign in too, id_tokens never; the redirect flow works against it; a
/// wrong client secret fails the exchange.
async fn github_codes_tokens_and_addresses(backend: Backend) {
    let stub = github_stub();
    let app = spawn(
        &backend,
        Mode::Token,
        vec![github_provider(&stub, GH_SECRET)],
        |_| {},
    )
    .await;

    let code = stub.code_for("octocat", "read:user,user:email").await;
    let mut octocat = new_frontend(&app, Mode::Token);
    let reply = octocat.social(GH, json!({ "code": code })).await;
    octocat.adopt_login(&reply);
    let me = octocat.profile().await;
    assert_eq!(
        me["email"], "octocat@example.com",
        "the primary verified address: {me}"
    );
    assert_eq!(me["first_name"], "The", "{me}");
    assert_eq!(me["last_name"], "Octocat", "{me}");
    let emails = octocat.get("emails/").await;
    assert_eq!(
        emails.body,
        json!([{"email": "octocat@example.com", "verified": true, "primary": true}]),
        "{}",
        emails.text
    );
    let accounts = octocat.accounts().await;
    assert_eq!(accounts.len(), 1);
    social_account_shape(&accounts[0], GH, "583231");
    assert_eq!(
        stub.hits("POST", "/login/oauth/access_token"),
        1,
        "{}",
        stub.log()
    );
    assert_eq!(stub.hits("GET", "/user/emails"), 1, "{}", stub.log());

    // No `user:email`: the public address, which GitHub does not vouch for.
    let code = stub.code_for("hubot", "read:user").await;
    let mut hubot = new_frontend(&app, Mode::Token);
    let reply = hubot.social(GH, json!({ "code": code })).await;
    hubot.adopt_login(&reply);
    let emails = hubot.get("emails/").await;
    assert_eq!(
        emails.body,
        json!([{"email": "hubot@example.com", "verified": false, "primary": true}]),
        "{}",
        emails.text
    );
    social_account_shape(&hubot.accounts().await[0], GH, "9919");

    // An access token (traded by the frontend itself) signs in to the same account.
    let http = no_redirects();
    let token_answer: Value = http
        .post(format!("{}/login/oauth/access_token", stub.url))
        .header("Accept", "application/json")
        .form(&[
            ("client_id", GH_CLIENT),
            ("client_secret", GH_SECRET),
            (
                "code",
                &stub.code_for("octocat", "read:user,user:email").await,
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut again = new_frontend(&app, Mode::Token);
    let reply = again
        .social(GH, json!({"access_token": token_answer["access_token"]}))
        .await;
    again.adopt_login(&reply);
    assert_eq!(
        again.pk_of("octocat@example.com").await,
        me["pk"].as_i64().unwrap()
    );
    // GitHub issues no id_token; a made-up token is no one's.
    let reply = app
        .post(
            "social/gh/",
            json!({"id_token": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}),
        )
        .await;
    assert_non_field(&reply, INCORRECT_VALUE);
    let reply = app
        .post("social/gh/", json!({"access_token": "gho_not_a_token"}))
        .await;
    assert_non_field(&reply, INCORRECT_VALUE);

    // The redirect flow against GitHub's endpoints.
    let mut browser = new_frontend(&app, Mode::Token);
    let start = browser
        .get(&format!("social/gh/redirect/?next={}", encode(NEXT)))
        .await;
    let authorization = location(&start);
    assert!(
        authorization.starts_with(&format!("{}/login/oauth/authorize?", stub.url)),
        "{authorization}"
    );
    let back = stub.consent(&authorization, "octocat").await;
    assert!(back.as_str().starts_with(&tessera_callback(GH)), "{back}");
    let done = browser
        .get(&format!("social/gh/callback/?{}", back.query().unwrap()))
        .await;
    let after = location(&done);
    assert_eq!(without_fragment(&after), NEXT);
    let login_code = fragment_of(&after)["login_code"].clone();
    let reply = browser.exchange(&login_code).await;
    browser.adopt_login(&reply);
    assert_eq!(
        browser.pk_of("octocat@example.com").await,
        me["pk"].as_i64().unwrap()
    );

    // With a wrong client secret the stub refuses the exchange.
    let wrong = spawn(
        &backend,
        Mode::Token,
        vec![github_provider(&stub, "not-the-secret")],
        |_| {},
    )
    .await;
    let code = stub.code_for("octocat", "read:user,user:email").await;
    let reply = wrong.post("social/gh/", json!({ "code": code })).await;
    assert_non_field(&reply, EXCHANGE_FAILED);
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// Refusals of the proof
// ---------------------------------------------------------------------------------------------

/// A forged, expired, misaddressed or foreign id_token, an unknown access token, a made-up
/// code and no proof at all: dj-rest-auth's messages, and no account.
async fn bad_tokens_and_inputs_are_refused(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |_| {}).await;
    let now = Utc::now().timestamp();

    let forged = idp.minted(&ada(), SigningKey::Stranger, |_| {}).await;
    let expired = idp
        .minted(&ada(), SigningKey::Current, |claims| {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        })
        .await;
    let other_audience = idp
        .minted(&ada(), SigningKey::Current, |claims| {
            claims["aud"] = json!("someone-else");
        })
        .await;
    let other_issuer = idp
        .minted(&ada(), SigningKey::Current, |claims| {
            claims["iss"] = json!("http://127.0.0.1:1");
        })
        .await;
    for (what, token) in [
        ("forged", forged.as_str()),
        ("expired", expired.as_str()),
        ("another audience", other_audience.as_str()),
        ("another issuer", other_issuer.as_str()),
        ("not a JWT", "not.a.jwt"),
    ] {
        let reply = app.post("social/corp/", json!({ "id_token": token })).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.text);
        assert_non_field(&reply, INCORRECT_VALUE);
    }
    // The genuine article is accepted: the tokens above were refused for what was wrong.
    let genuine = idp.minted(&ada(), SigningKey::Current, |_| {}).await;
    let reply = app
        .post("social/corp/", json!({ "id_token": genuine }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(user_count(&app).await, 1);

    let grace = Claims::new("grace-1906").email(GRACE, true);
    let reply = app
        .post(
            "social/corp/",
            json!({"access_token": "not-a-token-of-this-provider"}),
        )
        .await;
    assert_non_field(&reply, INCORRECT_VALUE);
    let reply = app
        .post(
            "social/corp/",
            json!({"code": "made-up-code", "code_verifier": Pkce::new().verifier}),
        )
        .await;
    assert_non_field(&reply, EXCHANGE_FAILED);
    for body in [
        json!({}),
        json!({"code_verifier": "v"}),
        json!({"other": "x"}),
    ] {
        let reply = app.post("social/corp/", body.clone()).await;
        assert_non_field(&reply, INPUT_MISSING);
    }
    let reply = app
        .post(
            "social/corp/",
            json!({"id_token": idp.minted(&grace, SigningKey::Stranger, |_| {}).await}),
        )
        .await;
    assert_non_field(&reply, INCORRECT_VALUE);
    assert_eq!(
        user_count(&app).await,
        1,
        "no account for any refused proof"
    );
    assert_eq!(links(&app).await.len(), 1);
}

/// The provider rotates its signing key: tokens under the new key sign in without a restart,
/// and so do those under the previous key while it is published.
async fn keys_rotate_without_breaking_sign_in(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |_| {}).await;
    let sign_in = |token: String| {
        let app = &app;
        async move {
            let mut frontend = new_frontend(app, Mode::Token);
            let reply = frontend.social(CORP, json!({ "id_token": token })).await;
            frontend.adopt_login(&reply);
            frontend.pk_of(ADA).await
        }
    };
    let pk = sign_in(idp.id_token(&ada()).await).await;
    idp.oidc.rotate_keys().await;
    assert_eq!(sign_in(idp.id_token(&ada()).await).await, pk);
    assert_eq!(
        sign_in(idp.minted(&ada(), SigningKey::Previous, |_| {}).await).await,
        pk
    );
    // (A second rotation within `retry_interval`, 10 s, is not looked for: unknown kids
    // refetch the keys at most that often; `social_oidc.rs` covers it.)
    assert_eq!(links(&app).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Which account: addresses
// ---------------------------------------------------------------------------------------------

/// By default an address another account holds links nothing, verified or not, in any case of
/// letters: the sign-in is refused and the account is as it was.
async fn an_existing_address_is_not_linked_by_default(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |_| {}).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(ADA).await;
    confirm_address(&app, 1).await;
    let pk = owner.pk_of(ADA).await;

    for claims in [
        ada(),
        Claims::new("ada-1815").email("ADA@Example.COM", true),
        Claims::new("ada-1815").email(ADA, false),
    ] {
        let token = idp.id_token(&claims).await;
        let reply = app.post("social/corp/", json!({ "id_token": token })).await;
        assert_non_field(&reply, EMAIL_TAKEN);
    }
    assert!(links(&app).await.is_empty(), "nothing linked");
    assert!(owner.accounts().await.is_empty());
    assert_eq!(user_count(&app).await, 1, "no second account");
    assert_eq!(
        owner.pk_of(ADA).await,
        pk,
        "the owner's credential still works"
    );
    let login = app.login(ADA, PASSWORD).await;
    assert_eq!(
        login.status, 200,
        "the password still works: {}",
        login.text
    );
    assert_eq!(
        social_events(&app).await[0],
        event("social_login", "failure", Some("email_taken"), Some(pk))
    );
}

/// With `social.email_authentication`, a provider that vouches for an address signs in to the
/// account holding it, confirmed there, and links it; the owner's password and credentials
/// stay. An unverified address still links nothing.
async fn email_authentication_links_a_verified_address(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |config| {
        config.social.email_authentication = true;
    })
    .await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(ADA).await;
    confirm_address(&app, 1).await;
    let pk = owner.pk_of(ADA).await;

    let unverified = Claims::new("ada-other").email(ADA, false);
    let reply = app
        .post(
            "social/corp/",
            json!({"id_token": idp.id_token(&unverified).await}),
        )
        .await;
    assert_non_field(&reply, EMAIL_TAKEN);
    assert!(links(&app).await.is_empty());

    let mut social = new_frontend(&app, Mode::Token);
    let reply = social
        .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
        .await;
    social.adopt_login(&reply);
    assert_eq!(social.pk_of(ADA).await, pk, "the owner's account");
    assert_eq!(
        links(&app).await,
        vec![(pk, CORP.into(), "ada-1815".into())]
    );
    social_account_shape(&owner.accounts().await[0], CORP, "ada-1815");
    assert_eq!(owner.pk_of(ADA).await, pk, "the owner's credential stays");
    assert_eq!(
        app.login(ADA, PASSWORD).await.status,
        200,
        "and the password"
    );
    assert_eq!(user_count(&app).await, 1);
    let events = social_events(&app).await;
    assert_eq!(
        events.last(),
        Some(&event(
            "social_login",
            "success",
            Some("email_link"),
            Some(pk)
        )),
        "{events:?}"
    );
}

/// An account registered with an address nobody confirmed may be a trap set by someone else:
/// when a provider vouches for the address, the account's password no longer logs in and
/// its credentials end; the provider's user gets in, the address confirmed. With the link its
/// only way in, it cannot be disconnected.
async fn linking_an_unconfirmed_local_address_ends_its_password(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |config| {
        config.social.email_authentication = true;
    })
    .await;
    let mut squatter = new_frontend(&app, Mode::Token);
    squatter.register(ADA).await;
    let pk = squatter.pk_of(ADA).await;
    let squatter_token = app.login_key(ADA, PASSWORD).await;

    let mut real = new_frontend(&app, Mode::Token);
    let reply = real
        .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
        .await;
    real.adopt_login(&reply);
    assert_eq!(real.pk_of(ADA).await, pk);
    let emails = real.get("emails/").await;
    assert_eq!(
        emails.body,
        json!([{"email": ADA, "verified": true, "primary": true}]),
        "{}",
        emails.text
    );

    assert_non_field(&app.login(ADA, PASSWORD).await, BAD_CREDENTIALS);
    for token in [squatter.bearer.clone().unwrap(), squatter_token] {
        let reply = app.get("user/", Some(&token)).await;
        assert_eq!(
            reply.status, 401,
            "the old credential ended: {}",
            reply.text
        );
    }
    let accounts = real.accounts().await;
    let reply = real.disconnect(&id_of(&accounts[0])).await;
    assert_detail(&reply, 400, NO_PASSWORD);
    assert_eq!(real.accounts().await.len(), 1);
}

/// The same trap, set with more than a password: before the address's owner came, the
/// squatter connected a provider account of their own, added and confirmed an address of
/// their own, and asked for a password reset. Once the owner's provider vouches for the
/// address and takes the account back, none of it gets in any more: only the owner's link and
/// address are left.
async fn a_squatted_account_is_taken_back_whole(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |config| {
        config.social.email_authentication = true;
    })
    .await;
    const MALLORY: &str = "mallory@evil.example";
    let mut squatter = new_frontend(&app, Mode::Token);
    squatter.register(ADA).await;
    let pk = squatter.pk_of(ADA).await;
    let mallory = Claims::new("mallory-666").email(MALLORY, true);
    let reply = squatter
        .connect(CORP, json!({"id_token": idp.id_token(&mallory).await}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = squatter.post("emails/", json!({ "email": MALLORY })).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    confirm_address(&app, 2).await;
    let reply = app.post("password/reset/", json!({ "email": ADA })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reset = app.newest_link(3, RESET_PREFIX).await;
    let (uid, token) = uid_and_token(&reset, RESET_PREFIX);
    // All set: the squatter's link signs in, their address is confirmed.
    let mut via_link = new_frontend(&app, Mode::Token);
    let reply = via_link
        .social(CORP, json!({"id_token": idp.id_token(&mallory).await}))
        .await;
    via_link.adopt_login(&reply);
    assert_eq!(via_link.pk_of(ADA).await, pk);
    let emails = squatter.get("emails/").await;
    assert!(
        emails.body.as_array().unwrap().contains(&json!(
            {"email": MALLORY, "verified": true, "primary": false}
        )),
        "{}",
        emails.text
    );

    let mut real = new_frontend(&app, Mode::Token);
    let reply = real
        .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
        .await;
    real.adopt_login(&reply);
    assert_eq!(real.pk_of(ADA).await, pk);
    assert_non_field(&app.login(ADA, PASSWORD).await, BAD_CREDENTIALS);

    // The squatter's provider account no longer leads into the account.
    let reply = app
        .post(
            "social/corp/",
            json!({"id_token": idp.id_token(&mallory).await}),
        )
        .await;
    let into_ada = reply.status == 200
        && app.get("user/", reply.body["key"].as_str()).await.body["pk"] == json!(pk);
    assert!(
        !into_ada,
        "the squatter's link still signs in: {}",
        reply.text
    );
    let uids: Vec<String> = real
        .accounts()
        .await
        .iter()
        .map(|entry| string(&entry["uid"]))
        .collect();
    assert_eq!(
        uids,
        vec!["ada-1815".to_owned()],
        "only the owner's link is left"
    );
    // Nor the squatter's address, nor the reset link mailed before.
    let emails = real.get("emails/").await;
    assert_eq!(
        emails.body,
        json!([{"email": ADA, "verified": true, "primary": true}]),
        "{}",
        emails.text
    );
    let reply = confirm_reset(
        &app,
        &uid,
        &token,
        "a new password 4 mallory",
        "a new password 4 mallory",
    )
    .await;
    assert_eq!(
        reply.status, 400,
        "the old reset link is dead: {}",
        reply.text
    );
    assert_non_field(
        &app.login(ADA, "a new password 4 mallory").await,
        BAD_CREDENTIALS,
    );
}

/// The same trap with an authenticator: the squatter switched TOTP on before the owner came.
/// Taken back by the owner's provider, the account must not stay behind the squatter's
/// second factor (the owner could never pass it).
async fn a_squatters_authenticator_ends_with_its_password(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |config| {
        config.social.email_authentication = true;
    })
    .await;
    let mut squatter = new_frontend(&app, Mode::Token);
    squatter.register(ADA).await;
    let setup = squatter.get("mfa/totp/activate/").await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let authenticator = Authenticator::new(&string(&setup.body["secret"]));
    let reply = squatter
        .post(
            "mfa/totp/activate/",
            json!({"activation_token": setup.body["activation_token"], "code": authenticator.current()}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let mut real = new_frontend(&app, Mode::Token);
    let reply = real
        .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
        .await;
    assert_ne!(
        reply.body["mfa_required"],
        json!(true),
        "the owner is asked for the squatter's second factor: {}",
        reply.text
    );
    real.adopt_login(&reply);
    real.pk_of(ADA).await;
}

/// Under `account.email_verification = "mandatory"`, a provider that does not vouch for the
/// address makes the account but does not sign it in: a confirmation is mailed, and once it is
/// confirmed the provider's sign-in gets in. A vouched-for address gets in at once, no mail.
async fn mandatory_verification_holds_back_an_unverified_provider_address(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |config| {
        config.account.email_verification = EmailVerification::Mandatory;
    })
    .await;
    let grace = Claims::new("grace-1906")
        .email(GRACE, false)
        .name("Grace Hopper");
    let reply = app
        .post(
            "social/corp/",
            json!({"id_token": idp.id_token(&grace).await}),
        )
        .await;
    assert_non_field(&reply, EMAIL_NOT_VERIFIED);
    let mail = app.delivered(1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, vec![GRACE.to_owned()]);
    assert_eq!(user_count(&app).await, 1, "the account exists, waiting");

    // Not yet.
    let reply = app
        .post(
            "social/corp/",
            json!({"id_token": idp.id_token(&grace).await}),
        )
        .await;
    assert_non_field(&reply, EMAIL_NOT_VERIFIED);

    confirm_address(&app, 1).await;
    let mut frontend = new_frontend(&app, Mode::Token);
    let reply = frontend
        .social(CORP, json!({"id_token": idp.id_token(&grace).await}))
        .await;
    frontend.adopt_login(&reply);
    assert_eq!(frontend.profile().await["last_name"], "Hopper");
    assert_eq!(user_count(&app).await, 1);

    let mut ada_frontend = new_frontend(&app, Mode::Token);
    let reply = ada_frontend
        .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
        .await;
    ada_frontend.adopt_login(&reply);
    ada_frontend.pk_of(ADA).await;
    let outbox = app.outbox_rows().await;
    assert!(
        outbox.iter().all(|row| row.recipient != ADA),
        "no confirmation for a vouched-for address: {outbox:?}"
    );
}

/// A deactivated account does not sign in through its link, nor by its address.
async fn inactive_users_are_refused(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |config| {
        config.social.email_authentication = true;
    })
    .await;
    let reply = app
        .post(
            "social/corp/",
            json!({"id_token": idp.id_token(&ada()).await}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    app.register(BOB).await;
    user::Entity::update_many()
        .col_expr(user::Column::IsActive, Expr::value(false))
        .exec(&app.db)
        .await
        .unwrap();

    let reply = app
        .post(
            "social/corp/",
            json!({"id_token": idp.id_token(&ada()).await}),
        )
        .await;
    assert_non_field(&reply, BAD_CREDENTIALS);
    let bob = Claims::new("bob-1").email(BOB, true);
    let reply = app
        .post(
            "social/corp/",
            json!({"id_token": idp.id_token(&bob).await}),
        )
        .await;
    assert_non_field(&reply, BAD_CREDENTIALS);
    assert_eq!(links(&app).await.len(), 1, "bob's account was not linked");
}

// ---------------------------------------------------------------------------------------------
// Linking and unlinking
// ---------------------------------------------------------------------------------------------

/// Connecting needs a recent proof of the password; then the link is listed (and exported),
/// signs in to the account, and goes when disconnected (after which its address, the owner's,
/// is refused again). Other ids are 404.
async fn connect_list_and_disconnect_in_every_mode(backend: Backend) {
    let idp = Idp::start().await;
    for mode in MODES {
        let app = spawn(&backend, mode, vec![idp.corp()], |_| {}).await;
        let mut owner = new_frontend(&app, mode);
        owner.register(ADA).await;
        let pk = owner.pk_of(ADA).await;
        assert!(owner.accounts().await.is_empty());

        app.age_credentials(ADA).await;
        let reply = owner
            .connect(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        assert_eq!(reply.status, 403, "{mode:?}: {}", reply.text);
        assert_eq!(
            reply.body,
            json!({"detail": REAUTHENTICATION_REQUIRED, "code": "reauthentication_required"})
        );
        assert!(links(&app).await.is_empty());
        let reply = owner
            .post("reauthenticate/", json!({ "password": PASSWORD }))
            .await;
        assert_eq!(reply.status, 200, "{mode:?}: {}", reply.text);

        let reply = owner
            .connect(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        assert_eq!(reply.status, 200, "{mode:?}: {}", reply.text);
        assert_eq!(reply.body, json!({ "detail": CONNECTED }));
        let accounts = owner.accounts().await;
        assert_eq!(accounts.len(), 1, "{accounts:?}");
        social_account_shape(&accounts[0], CORP, "ada-1815");
        let export = owner.get("user/export/").await;
        assert_eq!(export.status, 200, "{}", export.text);
        assert_eq!(export.body["social_accounts"], json!(accounts));
        if mode == Mode::Token {
            operator_sees_the_link(&app).await;
        }

        let mut elsewhere = new_frontend(&app, mode);
        let reply = elsewhere
            .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        elsewhere.adopt_login(&reply);
        assert_eq!(
            elsewhere.pk_of(ADA).await,
            pk,
            "{mode:?}: the link signs in"
        );

        let id = id_of(&accounts[0]);
        let reply = owner.disconnect(&id).await;
        assert_eq!(reply.status, 200, "{mode:?}: {}", reply.text);
        assert_eq!(reply.body, json!({ "detail": DISCONNECTED }));
        assert!(owner.accounts().await.is_empty());
        assert!(links(&app).await.is_empty());
        let reply = new_frontend(&app, mode)
            .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        assert_non_field(&reply, EMAIL_TAKEN);

        for unknown in [id.as_str(), "999999", "abc"] {
            let reply = owner.disconnect(unknown).await;
            assert_eq!(reply.status, 404, "{mode:?}: {unknown}: {}", reply.text);
        }
        let events = social_events(&app).await;
        assert_in_order(
            &events,
            &[
                event("social_account_connected", "success", None, Some(pk)),
                event("social_login", "success", None, Some(pk)),
                event("social_account_disconnected", "success", None, Some(pk)),
                event("social_login", "failure", Some("email_taken"), Some(pk)),
            ],
        );

        // Anonymous callers are refused.
        let mut anonymous = new_frontend(&app, mode);
        for reply in [
            anonymous.get("socialaccounts/").await,
            anonymous
                .connect(CORP, json!({"id_token": idp.id_token(&ada()).await}))
                .await,
            anonymous.disconnect(&id).await,
        ] {
            assert!(
                matches!(reply.status, 401 | 403),
                "{mode:?}: {}",
                reply.text
            );
        }
    }
}

/// An account made through a provider has no password: its only link cannot be
/// disconnected. A second link (connected right after a provider sign-in, which is a fresh
/// login) can, and then the remaining one is the last again. Nobody disconnects another
/// user's link.
async fn the_last_way_in_cannot_be_disconnected(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |_| {}).await;
    let grace = Claims::new("grace-1906").email(GRACE, true);
    let mut frontend = new_frontend(&app, Mode::Token);
    let reply = frontend
        .social(CORP, json!({"id_token": idp.id_token(&grace).await}))
        .await;
    frontend.adopt_login(&reply);
    let pk = frontend.pk_of(GRACE).await;
    let first = id_of(&frontend.accounts().await[0]);

    let reply = frontend.disconnect(&first).await;
    assert_detail(&reply, 400, NO_PASSWORD);
    assert_eq!(reply.body, json!({ "detail": NO_PASSWORD }));
    assert_eq!(frontend.accounts().await.len(), 1);

    let mut bob = new_frontend(&app, Mode::Token);
    bob.register(BOB).await;
    let reply = bob.disconnect(&first).await;
    assert_eq!(reply.status, 404, "another user's link: {}", reply.text);
    assert_eq!(frontend.accounts().await.len(), 1);

    let second_identity = Claims::new("grace-work").email("grace@work.example.com", true);
    let reply = frontend
        .connect(
            CORP,
            json!({"id_token": idp.id_token(&second_identity).await}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let accounts = frontend.accounts().await;
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    let reply = frontend.disconnect(&first).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let remaining = frontend.accounts().await;
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["uid"], "grace-work");
    let reply = frontend.disconnect(&id_of(&remaining[0])).await;
    assert_detail(&reply, 400, NO_PASSWORD);
    assert_eq!(frontend.accounts().await.len(), 1);

    let events = social_events(&app).await;
    assert!(
        events.contains(&event(
            "social_account_disconnected",
            "failure",
            Some("last_login_method"),
            Some(pk)
        )),
        "{events:?}"
    );
}

/// A provider account linked to one user cannot be connected to another; nothing changes.
async fn an_account_linked_elsewhere_cannot_be_connected(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |_| {}).await;
    let shared = Claims::new("shared-sub").email(BOB, true);
    let mut bob = new_frontend(&app, Mode::Token);
    let reply = bob
        .social(CORP, json!({"id_token": idp.id_token(&shared).await}))
        .await;
    bob.adopt_login(&reply);
    let bob_pk = bob.pk_of(BOB).await;

    let mut ada_frontend = new_frontend(&app, Mode::Token);
    ada_frontend.register(ADA).await;
    let ada_pk = ada_frontend.pk_of(ADA).await;
    let reply = ada_frontend
        .connect(CORP, json!({"id_token": idp.id_token(&shared).await}))
        .await;
    assert_non_field(&reply, ACCOUNT_TAKEN);
    assert!(ada_frontend.accounts().await.is_empty());
    assert_eq!(
        links(&app).await,
        vec![(bob_pk, CORP.into(), "shared-sub".into())]
    );
    let mut again = new_frontend(&app, Mode::Token);
    let reply = again
        .social(CORP, json!({"id_token": idp.id_token(&shared).await}))
        .await;
    again.adopt_login(&reply);
    assert_eq!(again.pk_of(BOB).await, bob_pk);
    let events = social_events(&app).await;
    assert!(
        events.contains(&event(
            "social_account_connected",
            "failure",
            Some("account_taken"),
            Some(ada_pk)
        )),
        "{events:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The redirect flow
// ---------------------------------------------------------------------------------------------

/// `social/{id}/redirect/` for `next`: the provider's authorization URL; the browser now holds
/// the state cookie.
async fn start_flow(browser: &mut Device<'_>, provider: &str, next: &str) -> url::Url {
    let reply = browser
        .get(&format!(
            "social/{provider}/redirect/?next={}",
            encode(next)
        ))
        .await;
    let authorization = location(&reply);
    assert!(browser.jar.contains(STATE_COOKIE), "{reply:?}");
    url::Url::parse(&authorization).unwrap()
}

/// The provider's redirect back to Tessera's callback, followed by the browser.
async fn finish_flow(browser: &mut Device<'_>, provider: &str, back: &url::Url) -> Reply {
    assert!(
        back.as_str().starts_with(&tessera_callback(provider)),
        "the provider sends the browser to Tessera's callback: {back}"
    );
    browser
        .get(&format!(
            "social/{provider}/callback/?{}",
            back.query().unwrap_or_default()
        ))
        .await
}

/// The whole flow in each mode: the authorization request (PKCE, state, nonce), the state
/// cookie, the provider's consent, the callback; session mode ends logged in at `next`, token
/// and JWT mode at `next#login_code=...`, traded once for `login/`'s answer. The same state
/// brought back again is refused.
async fn the_redirect_flow_in_every_mode(backend: Backend) {
    let idp = Idp::start().await;
    let endpoint = idp.authorization_endpoint().await;
    for mode in MODES {
        let app = spawn(&backend, mode, vec![idp.corp()], |_| {}).await;
        let reference = login_shape(&app, mode).await;
        let mut browser = new_frontend(&app, mode);
        let reply = browser
            .get(&format!("social/corp/redirect/?next={}", encode(NEXT)))
            .await;
        let authorization = url::Url::parse(&location(&reply)).unwrap();
        let mut bare = authorization.clone();
        bare.set_query(None);
        assert_eq!(bare.as_str(), endpoint, "{mode:?}");
        let query = query_of(&authorization);
        assert_eq!(
            query.keys().cloned().collect::<BTreeSet<_>>(),
            set(&[
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method"
            ]),
            "{authorization}"
        );
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(query["redirect_uri"], tessera_callback(CORP));
        assert_eq!(query["scope"], "openid email profile");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["code_challenge"].len(), 43, "a SHA-256, base64url");
        assert!(query["state"].len() >= 32, "{authorization}");
        assert!(query["nonce"].len() >= 16, "{authorization}");
        let cookie = set_cookies(&reply)
            .into_iter()
            .find(|cookie| cookie.name == STATE_COOKIE)
            .expect("the state cookie");
        assert!(cookie.http_only(), "{}", cookie.raw);
        assert_eq!(cookie.same_site().as_deref(), Some("Lax"), "{}", cookie.raw);
        assert_eq!(
            cookie.path(),
            Some("/auth/social/corp/callback"),
            "{}",
            cookie.raw
        );
        let state_cookie = cookie.value.clone();

        let back = idp.oidc.consent(authorization.as_str(), &ada()).await;
        assert_eq!(query_of(&back)["state"], query["state"]);
        let done = finish_flow(&mut browser, CORP, &back).await;
        let after = location(&done);
        match mode {
            Mode::Session => {
                assert_eq!(after, NEXT, "session mode: back at next, logged in");
                assert!(browser.jar.contains(SESSION_COOKIE), "{done:?}");
                browser.pk_of(ADA).await;
            }
            Mode::Token | Mode::Jwt => {
                assert_eq!(without_fragment(&after), NEXT, "{after}");
                let fragment = fragment_of(&after);
                assert_eq!(
                    fragment.keys().cloned().collect::<BTreeSet<_>>(),
                    set(&["login_code"]),
                    "{after}"
                );
                assert!(
                    !set_cookies(&done)
                        .iter()
                        .any(|c| c.name == SESSION_COOKIE && !c.is_removal()),
                    "{done:?}"
                );
                let login_code = fragment["login_code"].clone();
                let reply = browser.exchange(&login_code).await;
                browser.adopt_login(&reply);
                assert_eq!(shape(&reply), reference, "{mode:?}: as login/ answers");
                browser.pk_of(ADA).await;
                let reply = browser.exchange(&login_code).await;
                assert_field(&reply, "login_code", INCORRECT_VALUE);
            }
        }

        // Replayed: the same state and its cookie, again.
        browser.jar.insert(STATE_COOKIE, &state_cookie);
        let replay = finish_flow(&mut browser, CORP, &back).await;
        assert_non_field(&replay, INCORRECT_VALUE);
        assert_eq!(
            user_count(&app).await,
            2,
            "{mode:?}: ada and the reference user"
        );
        assert_eq!(links(&app).await.len(), 1);
    }
}

/// `next` is required and must be on an allowed origin; the callback needs the state this
/// browser started, live and unused, for this provider.
async fn the_redirect_flow_refuses_bad_next_and_bad_state(backend: Backend) {
    let idp = Idp::start().await;
    let plain = idp.provider("plain", None);
    let app = spawn(&backend, Mode::Token, vec![idp.corp(), plain], |_| {}).await;
    let mut browser = new_frontend(&app, Mode::Token);

    let reply = browser.get("social/corp/redirect/").await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({"next": [REQUIRED]}), "{}", reply.text);
    for next in [
        "https://evil.example.com/after",
        "https://app.example.com.evil.example/after",
        "http://app.example.com/after",
        "https://app.example.com:8443/after",
        "https://app.example.com@evil.example/after",
        "//evil.example/after",
        "/after",
        "javascript:alert(1)",
    ] {
        let reply = browser
            .get(&format!("social/corp/redirect/?next={}", encode(next)))
            .await;
        assert_field(&reply, "next", NEXT_NOT_ALLOWED);
        assert!(!browser.jar.contains(STATE_COOKIE), "{next}: {reply:?}");
    }

    // The state without its cookie (another browser), or with another flow's cookie.
    let first = start_flow(&mut browser, CORP, NEXT).await;
    let first_cookie = browser.jar.get(STATE_COOKIE).unwrap().to_owned();
    let back = idp.oidc.consent(first.as_str(), &ada()).await;
    let mut stranger = new_frontend(&app, Mode::Token);
    assert_non_field(
        &finish_flow(&mut stranger, CORP, &back).await,
        INCORRECT_VALUE,
    );
    let mut other = new_frontend(&app, Mode::Token);
    start_flow(&mut other, CORP, NEXT).await;
    assert_non_field(&finish_flow(&mut other, CORP, &back).await, INCORRECT_VALUE);
    // No state at all.
    browser.jar.insert(STATE_COOKIE, &first_cookie);
    let code = query_of(&back)["code"].clone();
    let reply = browser
        .get(&format!("social/corp/callback/?code={}", encode(&code)))
        .await;
    assert_non_field(&reply, INCORRECT_VALUE);

    // A state of corp's flow at plain's callback.
    let mut browser = new_frontend(&app, Mode::Token);
    let flow = start_flow(&mut browser, CORP, NEXT).await;
    let back = idp.oidc.consent(flow.as_str(), &ada()).await;
    let reply = browser
        .get(&format!("social/plain/callback/?{}", back.query().unwrap()))
        .await;
    assert_non_field(&reply, INCORRECT_VALUE);

    // A state past its ten minutes.
    let mut browser = new_frontend(&app, Mode::Token);
    let flow = start_flow(&mut browser, CORP, NEXT).await;
    let back = idp.oidc.consent(flow.as_str(), &ada()).await;
    social_login_state::Entity::update_many()
        .col_expr(
            social_login_state::Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .exec(&app.db)
        .await
        .unwrap();
    assert_non_field(
        &finish_flow(&mut browser, CORP, &back).await,
        INCORRECT_VALUE,
    );

    assert_eq!(user_count(&app).await, 0, "nobody signed in");
}

/// Once the state is good, a refusal is the frontend's to show: the browser goes back to
/// `next` with `error` and `error_description` in the fragment, nobody signed in.
async fn refusals_after_a_good_state_go_back_to_next(backend: Backend) {
    let idp = Idp::start().await;
    for mode in [Mode::Token, Mode::Session] {
        let app = spawn(&backend, mode, vec![idp.corp()], |_| {}).await;
        new_frontend(&app, mode).register(ADA).await;

        // The address is another account's.
        let mut browser = new_frontend(&app, mode);
        let flow = start_flow(&mut browser, CORP, NEXT).await;
        let back = idp.oidc.consent(flow.as_str(), &ada()).await;
        let done = finish_flow(&mut browser, CORP, &back).await;
        let after = location(&done);
        assert_eq!(without_fragment(&after), NEXT, "{after}");
        let fragment = fragment_of(&after);
        assert_eq!(
            fragment.get("error").map(String::as_str),
            Some("login_failed")
        );
        assert_eq!(
            fragment.get("error_description").map(String::as_str),
            Some(EMAIL_TAKEN)
        );
        assert!(!fragment.contains_key("login_code"), "{after}");
        assert!(!browser.jar.contains(SESSION_COOKIE), "{mode:?}: {done:?}");

        // The user said no at the provider.
        let mut browser = new_frontend(&app, mode);
        let flow = start_flow(&mut browser, CORP, NEXT).await;
        let state = query_of(&flow)["state"].clone();
        let reply = browser
            .get(&format!(
                "social/corp/callback/?error=access_denied&state={}",
                encode(&state)
            ))
            .await;
        let after = location(&reply);
        assert_eq!(without_fragment(&after), NEXT, "{after}");
        let fragment = fragment_of(&after);
        assert_eq!(
            fragment.get("error").map(String::as_str),
            Some("access_denied"),
            "{after}"
        );
        assert!(fragment.contains_key("error_description"), "{after}");
        assert!(!fragment.contains_key("login_code"), "{after}");
        assert!(!browser.jar.contains(SESSION_COOKIE), "{reply:?}");
        assert!(links(&app).await.is_empty());
    }
}

/// A login code is good once, for a minute, and only as issued.
async fn login_codes_are_single_use_and_short_lived(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |_| {}).await;
    let mut browser = new_frontend(&app, Mode::Token);

    let reply = browser.post("social/exchange/", json!({})).await;
    assert_field(&reply, "login_code", REQUIRED);
    let reply = browser.exchange("not-a-code").await;
    assert_field(&reply, "login_code", INCORRECT_VALUE);

    let flow = start_flow(&mut browser, CORP, NEXT).await;
    let back = idp.oidc.consent(flow.as_str(), &ada()).await;
    let after = location(&finish_flow(&mut browser, CORP, &back).await);
    let login_code = fragment_of(&after)["login_code"].clone();
    social_login_code::Entity::update_many()
        .col_expr(
            social_login_code::Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .exec(&app.db)
        .await
        .unwrap();
    let reply = browser.exchange(&login_code).await;
    assert_field(&reply, "login_code", INCORRECT_VALUE);

    let flow = start_flow(&mut browser, CORP, NEXT).await;
    let back = idp.oidc.consent(flow.as_str(), &ada()).await;
    let after = location(&finish_flow(&mut browser, CORP, &back).await);
    let login_code = fragment_of(&after)["login_code"].clone();
    let wrong_case = login_code.to_uppercase();
    if wrong_case != login_code {
        assert_field(
            &browser.exchange(&wrong_case).await,
            "login_code",
            INCORRECT_VALUE,
        );
    }
    let reply = browser.exchange(&login_code).await;
    browser.adopt_login(&reply);
    browser.pk_of(ADA).await;
    assert_field(
        &browser.exchange(&login_code).await,
        "login_code",
        INCORRECT_VALUE,
    );

    // Brought by several tabs at once, a code still signs in once.
    let flow = start_flow(&mut browser, CORP, NEXT).await;
    let back = idp.oidc.consent(flow.as_str(), &ada()).await;
    let after = location(&finish_flow(&mut browser, CORP, &back).await);
    let login_code = fragment_of(&after)["login_code"].clone();
    let attempts =
        (0..6).map(|_| app.post("social/exchange/", json!({ "login_code": login_code })));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|reply| reply.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|status| matches!(status, 200 | 400)),
        "{statuses:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// MFA, deletion, unknown providers
// ---------------------------------------------------------------------------------------------

/// A user with TOTP gets `{"ephemeral_token", "mfa_required": true}` from a provider sign-in,
/// and no credential, until `mfa/verify/`; the redirect flow ends with a login code even in
/// session mode, and its exchange is the same second step.
async fn mfa_users_get_the_second_step_in_every_mode(backend: Backend) {
    let idp = Idp::start().await;
    for mode in MODES {
        let app = spawn(&backend, mode, vec![idp.corp()], |_| {}).await;
        let reference = login_shape(&app, mode).await;
        let mut owner = new_frontend(&app, mode);
        let reply = owner
            .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        owner.adopt_login(&reply);
        let setup = owner.get("mfa/totp/activate/").await;
        assert_eq!(setup.status, 200, "{mode:?}: {}", setup.text);
        let authenticator = Authenticator::new(&string(&setup.body["secret"]));
        let reply = owner
            .post(
                "mfa/totp/activate/",
                json!({"activation_token": setup.body["activation_token"], "code": authenticator.current()}),
            )
            .await;
        assert_eq!(reply.status, 200, "{mode:?}: {}", reply.text);
        let recovery_codes: Vec<String> = reply.body["recovery_codes"]
            .as_array()
            .expect("recovery codes")
            .iter()
            .map(string)
            .collect();

        let mut frontend = new_frontend(&app, mode);
        let reply = frontend
            .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        assert_eq!(reply.status, 200, "{mode:?}: {}", reply.text);
        assert_eq!(keys(&reply.body), set(&["ephemeral_token", "mfa_required"]));
        assert_eq!(reply.body["mfa_required"], true);
        assert!(!frontend.jar.contains(SESSION_COOKIE), "{reply:?}");
        let reply = frontend
            .post(
                "mfa/verify/",
                json!({"ephemeral_token": reply.body["ephemeral_token"], "code": authenticator.next()}),
            )
            .await;
        frontend.adopt_login(&reply);
        assert_eq!(shape(&reply), reference, "{mode:?}");
        frontend.pk_of(ADA).await;

        let mut browser = new_frontend(&app, mode);
        let flow = start_flow(&mut browser, CORP, NEXT).await;
        let back = idp.oidc.consent(flow.as_str(), &ada()).await;
        let done = finish_flow(&mut browser, CORP, &back).await;
        let after = location(&done);
        assert!(!browser.jar.contains(SESSION_COOKIE), "{mode:?}: {done:?}");
        let login_code = fragment_of(&after)
            .get("login_code")
            .unwrap_or_else(|| panic!("{mode:?}: a login code: {after}"))
            .clone();
        let reply = browser.exchange(&login_code).await;
        assert_eq!(reply.status, 200, "{mode:?}: {}", reply.text);
        assert_eq!(keys(&reply.body), set(&["ephemeral_token", "mfa_required"]));
        assert!(!browser.jar.contains(SESSION_COOKIE), "{reply:?}");
        let reply = browser
            .post(
                "mfa/verify/",
                json!({"ephemeral_token": reply.body["ephemeral_token"], "code": recovery_codes[0]}),
            )
            .await;
        browser.adopt_login(&reply);
        browser.pk_of(ADA).await;
    }
}

/// `DELETE user/` takes the account's links with it, whether the account is deleted or
/// deactivated: the same provider account can then sign up afresh.
async fn deleting_the_account_removes_its_links(backend: Backend) {
    let idp = Idp::start().await;
    for deletion in [AccountDeletion::Delete, AccountDeletion::Deactivate] {
        let app = spawn(&backend, Mode::Token, vec![idp.corp()], |config| {
            config.account.deletion = deletion;
        })
        .await;
        let mut owner = new_frontend(&app, Mode::Token);
        owner.register(ADA).await;
        let pk = owner.pk_of(ADA).await;
        let reply = owner
            .connect(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let reply = owner.send(Method::DELETE, "user/", None).await;
        assert_eq!(reply.status, 204, "{deletion:?}: {}", reply.text);
        assert!(links(&app).await.is_empty(), "{deletion:?}: the links went");

        let mut again = new_frontend(&app, Mode::Token);
        let reply = again
            .social(CORP, json!({"id_token": idp.id_token(&ada()).await}))
            .await;
        again.adopt_login(&reply);
        let new_pk = again.pk_of(ADA).await;
        assert_ne!(new_pk, pk, "{deletion:?}: a new account");
        assert_eq!(
            links(&app).await,
            vec![(new_pk, CORP.into(), "ada-1815".into())]
        );
    }
}

/// A provider id that is not configured is 404 on every path.
async fn unknown_providers_are_not_found(backend: Backend) {
    let idp = Idp::start().await;
    let app = spawn(&backend, Mode::Token, vec![idp.corp()], |_| {}).await;
    let token = idp.id_token(&ada()).await;
    let mut frontend = new_frontend(&app, Mode::Token);
    frontend.register(BOB).await;
    for reply in [
        frontend.social("nope", json!({ "id_token": token })).await,
        frontend.connect("nope", json!({ "id_token": token })).await,
        frontend
            .get(&format!("social/nope/redirect/?next={}", encode(NEXT)))
            .await,
        frontend.get("social/nope/callback/?code=c&state=s").await,
    ] {
        assert_detail(&reply, 404, NOT_FOUND);
    }

    let bare = spawn(&backend, Mode::Token, Vec::new(), |_| {}).await;
    let reply = bare
        .post("social/corp/", json!({ "id_token": token }))
        .await;
    assert_detail(&reply, 404, NOT_FOUND);
    assert!(links(&app).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The log
// ---------------------------------------------------------------------------------------------

/// The real binary at `log.level = "debug"`, through every proof, a refused code, a forged
/// token and a whole redirect flow: none of the codes, verifiers, tokens, states, login codes,
/// keys or the client secret appears in what it logged.
async fn no_secret_reaches_the_log(backend: Backend) {
    let idp = Idp::start().await;
    let database = TestDb::create(&backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            r#"
public_url = "{PUBLIC_URL}"
secret_key = "a-secret-key-for-the-log-test-0123456789abcdef"

[database]
url = "{database}"

[log]
level = "debug"

[rate_limits]
enabled = false

[social]
allowed_redirect_origins = ["{APP_ORIGIN}"]

[[social.providers]]
id = "corp"
kind = "oidc"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
callback_url = "{FRONTEND_CALLBACK}"
"#,
            database = database.url,
            issuer = idp.oidc.issuer,
        ),
    )
    .unwrap();
    let log_file = dir.path().join("serve.log");
    let config_path = config.to_str().unwrap().to_owned();
    let mut server = ServeProcess::start(
        dir.path(),
        &[("TESSERA_CONFIG", &config_path)],
        Some(&log_file),
    );
    let http = no_redirects();
    server.wait_ready(&http).await;
    let api = |path: &str| format!("{}/auth/{path}", server.base);
    let post = |path: String, body: Value| {
        let http = &http;
        async move {
            let response = http.post(path).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let mut secrets: Vec<String> = vec![CLIENT_SECRET.into()];
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{CLIENT_ID}:{CLIENT_SECRET}"),
    );
    secrets.push(basic);

    let pkce = Pkce::new();
    let code = idp.code(&ada(), FRONTEND_CALLBACK, Some(&pkce)).await;
    let (status, body) = post(
        api("social/corp/"),
        json!({"code": code, "code_verifier": pkce.verifier}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    secrets.extend([code, pkce.verifier.clone(), string(&body["key"])]);

    let tokens = idp.tokens(&ada()).await;
    let id_token = string(&tokens["id_token"]);
    let access_token = string(&tokens["access_token"]);
    let (status, body) = post(api("social/corp/"), json!({ "id_token": id_token })).await;
    assert_eq!(status, 200, "{body}");
    secrets.push(string(&body["key"]));
    let (status, body) = post(api("social/corp/"), json!({ "access_token": access_token })).await;
    assert_eq!(status, 200, "{body}");
    secrets.push(string(&body["key"]));
    secrets.push(access_token);
    secrets.extend(id_token.split('.').map(str::to_owned));
    secrets.push(id_token);

    let refused = idp.code(&ada(), FRONTEND_CALLBACK, Some(&pkce)).await;
    let wrong_verifier = Pkce::new().verifier;
    let (status, body) = post(
        api("social/corp/"),
        json!({"code": refused, "code_verifier": wrong_verifier}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    secrets.extend([refused, wrong_verifier]);
    let forged = idp.minted(&ada(), SigningKey::Stranger, |_| {}).await;
    let (status, body) = post(api("social/corp/"), json!({ "id_token": forged })).await;
    assert_eq!(status, 400, "{body}");
    secrets.push(forged.split('.').nth(2).unwrap().to_owned());

    let response = http
        .get(api(&format!("social/corp/redirect/?next={}", encode(NEXT))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let authorization = response.headers()["location"].to_str().unwrap().to_owned();
    let state_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with(STATE_COOKIE))
        .expect("the state cookie");
    let cookie_pair = state_cookie.split(';').next().unwrap().to_owned();
    let back = idp.oidc.consent(&authorization, &ada()).await;
    let flow = query_of(&back);
    let response = http
        .get(api(&format!(
            "social/corp/callback/?{}",
            back.query().unwrap()
        )))
        .header("Cookie", &cookie_pair)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let after = response.headers()["location"].to_str().unwrap().to_owned();
    let login_code = fragment_of(&after)["login_code"].clone();
    let (status, body) = post(api("social/exchange/"), json!({ "login_code": login_code })).await;
    assert_eq!(status, 200, "{body}");
    secrets.extend([
        flow["code"].clone(),
        flow["state"].clone(),
        login_code,
        string(&body["key"]),
    ]);

    let (exit, _, _) = server.stop();
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(exit.success(), "{exit}\n{log}");
    assert!(
        log.contains("social login refused"),
        "the refusals are logged at this level (the capture works):\n{log}"
    );
    for secret in secrets.iter().filter(|secret| secret.len() >= 8) {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows a secret ({}...):\n{log}",
            &secret[..6]
        );
    }
}

/// `tessera users show` lists the account's link, in JSON and in text (the real binary, on
/// the app's database).
async fn operator_sees_the_link(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TESSERA_DATABASE__URL", app.config.database.url.as_str()),
        (
            "TESSERA_SECRET_KEY",
            "operator-secret-key-that-is-long-enough-0123456789",
        ),
    ];
    let show = |args: &[&str]| {
        let output = crate::support::process::run(dir.path(), args, &env);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "tessera {args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let shown: Value = serde_json::from_str(&show(&["users", "show", ADA, "--json"])).unwrap();
    let links = shown["social_accounts"].as_array().expect("a list");
    assert_eq!(links.len(), 1, "{shown}");
    assert_eq!(links[0]["provider"], CORP, "{shown}");
    assert_eq!(links[0]["uid"], "ada-1815", "{shown}");
    assert!(links[0]["date_joined"].is_string(), "{shown}");
    let text = show(&["users", "show", ADA]);
    assert!(text.contains("corp (uid ada-1815, linked "), "{text}");
}
