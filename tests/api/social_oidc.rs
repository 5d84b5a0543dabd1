//! Social login, first piece (issue 13): provider configuration, and id_tokens verified
//! against a real OpenID Connect provider (`support::oidc`) over HTTP: discovery, JWKS and
//! its caching, key rotation, and every way a token can be wrong. No Tessera database.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera::Config;
use tessera::config::{SocialProvider, SocialProviderKind};
use tessera::service::social::{
    FetchOptions, IdTokenError, OidcProvider, ProviderError, verify_id_token,
};

use crate::support::oidc::{self, Claims, OidcClient, OidcOptions, SigningKey};
use crate::support::tcp_proxy::TcpProxy;

const CLIENT_ID: &str = "tessera-test";
const REDIRECT_URI: &str = "http://127.0.0.1:1/auth/callback/corp";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn client() -> OidcClient {
    OidcClient {
        client_id: CLIENT_ID.into(),
        client_secret: "s3cret-for-the-test".into(),
        redirect_uris: vec![REDIRECT_URI.into()],
    }
}

fn provider_config(issuer: &str) -> SocialProvider {
    serde_json::from_value(json!({
        "id": "corp",
        "kind": "oidc",
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": "s3cret-for-the-test",
        "callback_url": REDIRECT_URI,
    }))
    .unwrap()
}

/// Quick retries, so a test of "later" need not wait the production 10 s.
fn quick() -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(2),
        retry_interval: Duration::from_millis(300),
        ..FetchOptions::default()
    }
}

/// The provider running, our client registered, and Tessera's view of it.
async fn setup(options: OidcOptions, fetch: FetchOptions) -> (oidc::OidcProvider, OidcProvider) {
    let idp = oidc::OidcProvider::start_with(options);
    idp.register_client(&client()).await;
    let ours = OidcProvider::new(&provider_config(&idp.issuer), fetch).unwrap();
    (idp, ours)
}

/// Claims of a well-formed token for our client; tests spoil one thing at a time.
fn good_claims(sub: &str) -> Value {
    json!({ "sub": sub, "aud": CLIENT_ID, "nonce": "n-1" })
}

async fn refused(ours: &OidcProvider, token: &str, nonce: Option<&str>) -> IdTokenError {
    let err = verify_id_token(ours, token, nonce)
        .await
        .expect_err("the token must be refused");
    // Reasons are for the logs: never the token, nor a part of it.
    let shown = format!("{err} {err:?}");
    for part in token.split('.').filter(|part| part.len() > 8) {
        assert!(!shown.contains(part), "the error shows the token: {shown}");
    }
    err
}

#[tokio::test]
async fn a_token_from_a_real_code_flow_verifies() {
    let (idp, ours) = setup(OidcOptions::default(), quick()).await;
    let ada = Claims::new("ada-1815")
        .email("ada@example.com", true)
        .name("Ada Lovelace");
    let answer = idp.sign_in(&client(), &ada, "nonce-abc").await;
    let token = answer["id_token"].as_str().expect("an id_token");

    let claims = verify_id_token(&ours, token, Some("nonce-abc"))
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", idp.log()));
    assert_eq!(claims.sub, "ada-1815");
    assert_eq!(claims.email.as_deref(), Some("ada@example.com"));
    assert!(claims.email_verified);
    assert_eq!(claims.name.as_deref(), Some("Ada Lovelace"));

    // The same token with another expected nonce (a replay into another flow) is refused.
    let err = refused(&ours, token, Some("nonce-other")).await;
    assert!(matches!(err, IdTokenError::Nonce), "{err:?}");
    // What discovery said is what the provider serves.
    let discovery = ours.discovery().await.unwrap();
    assert_eq!(
        discovery.jwks_uri.as_deref(),
        idp.discovery().await["jwks_uri"].as_str()
    );
}

#[tokio::test]
async fn an_unverified_or_string_email_verified_is_read_as_the_provider_meant() {
    let (idp, ours) = setup(OidcOptions::default(), quick()).await;
    let mut claims = good_claims("grace");
    claims["email"] = json!("grace@example.com");
    claims["email_verified"] = json!("true");
    claims["given_name"] = json!("Grace");
    claims["family_name"] = json!("Hopper");
    let token = idp.id_token_for(&claims, SigningKey::Current).await;
    let verified = verify_id_token(&ours, &token, None).await.unwrap();
    assert!(verified.email_verified);
    assert_eq!(verified.given_name.as_deref(), Some("Grace"));
    assert_eq!(verified.family_name.as_deref(), Some("Hopper"));

    claims["email_verified"] = json!(false);
    let token = idp.id_token_for(&claims, SigningKey::Current).await;
    assert!(
        !verify_id_token(&ours, &token, None)
            .await
            .unwrap()
            .email_verified
    );
    claims.as_object_mut().unwrap().remove("email_verified");
    let token = idp.id_token_for(&claims, SigningKey::Current).await;
    assert!(
        !verify_id_token(&ours, &token, None)
            .await
            .unwrap()
            .email_verified
    );
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_refused() {
    let (idp, ours) = setup(OidcOptions::default(), quick()).await;
    let mint = |claims: Value, key: SigningKey| {
        let idp = &idp;
        async move { idp.id_token_for(&claims, key).await }
    };

    // Signed by a key the provider never published, under its current kid.
    let token = mint(good_claims("eve"), SigningKey::Stranger).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::Signature), "{err:?}");

    let mut expired = good_claims("eve");
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let token = mint(expired, SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::Expired), "{err:?}");

    let mut future = good_claims("eve");
    future["iat"] = json!(now() + 3600);
    future["exp"] = json!(now() + 7200);
    let token = mint(future, SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::IssuedInFuture), "{err:?}");

    let mut other_client = good_claims("eve");
    other_client["aud"] = json!("someone-else");
    let token = mint(other_client, SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::Audience), "{err:?}");

    // Several audiences: azp must name us.
    let mut shared = good_claims("eve");
    shared["aud"] = json!([CLIENT_ID, "someone-else"]);
    let token = mint(shared.clone(), SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::AuthorizedParty), "{err:?}");
    shared["azp"] = json!("someone-else");
    let token = mint(shared.clone(), SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::AuthorizedParty), "{err:?}");
    shared["azp"] = json!(CLIENT_ID);
    let token = mint(shared, SigningKey::Current).await;
    verify_id_token(&ours, &token, Some("n-1")).await.unwrap();
    // One audience, but azp naming another client.
    let mut azp = good_claims("eve");
    azp["azp"] = json!("someone-else");
    let token = mint(azp, SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::AuthorizedParty), "{err:?}");

    let mut wrong_issuer = good_claims("eve");
    wrong_issuer["iss"] = json!("http://127.0.0.1:1");
    let token = mint(wrong_issuer, SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::Issuer(_)), "{err:?}");

    let token = mint(good_claims("eve"), SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-2")).await;
    assert!(matches!(err, IdTokenError::Nonce), "{err:?}");
    let mut no_nonce = good_claims("eve");
    no_nonce.as_object_mut().unwrap().remove("nonce");
    let token = mint(no_nonce, SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::Nonce), "{err:?}");
    // Without a nonce to compare, the same token verifies (the id_token POST variant).
    verify_id_token(&ours, &token, None).await.unwrap();

    let mut no_subject = good_claims("eve");
    no_subject.as_object_mut().unwrap().remove("sub");
    let token = mint(no_subject, SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::Claim(_)), "{err:?}");
}

/// `alg: none`, and HS256 keyed with the provider's public key (the classic confusion):
/// neither is an algorithm the provider's RSA key allows.
#[tokio::test]
async fn none_and_hmac_algorithms_are_refused() {
    let (idp, ours) = setup(OidcOptions::default(), quick()).await;
    let genuine = idp
        .id_token_for(&good_claims("mallory"), SigningKey::Current)
        .await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(genuine.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let payload = genuine.split('.').nth(1).unwrap();

    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string());
    for token in [
        format!("{none_header}.{payload}."),
        format!(
            "{none_header}.{payload}.{}",
            genuine.split('.').nth(2).unwrap()
        ),
    ] {
        let err = refused(&ours, &token, Some("n-1")).await;
        assert!(matches!(err, IdTokenError::Algorithm(_)), "{err:?}");
    }

    let jwks = idp.jwks().await;
    let modulus = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == json!(kid))
        .expect("the current key")["n"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid);
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    for secret in [modulus.as_bytes().to_vec(), jwks.to_string().into_bytes()] {
        let token = jsonwebtoken::encode(
            &hs_header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        let err = refused(&ours, &token, Some("n-1")).await;
        assert!(matches!(err, IdTokenError::Algorithm(_)), "{err:?}");
    }

    let err = refused(&ours, "not.a.jwt", Some("n-1")).await;
    assert!(
        matches!(err, IdTokenError::Malformed(_) | IdTokenError::Algorithm(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn keys_rotate_without_a_restart_with_one_jwks_refetch() {
    // Production's refetch interval: a second unknown kid inside it fetches nothing.
    let (idp, ours) = setup(OidcOptions::default(), FetchOptions::default()).await;
    let before = idp
        .id_token_for(&good_claims("ada"), SigningKey::Current)
        .await;
    verify_id_token(&ours, &before, Some("n-1")).await.unwrap();
    assert_eq!(idp.hits("/jwks"), 1, "{}", idp.log());

    let new_kid = idp.rotate_keys().await;
    let after = idp
        .id_token_for(&good_claims("ada"), SigningKey::Current)
        .await;
    assert!(after.contains('.'));
    verify_id_token(&ours, &after, Some("n-1"))
        .await
        .unwrap_or_else(|err| panic!("a token under the new kid {new_kid}: {err}"));
    assert_eq!(idp.hits("/jwks"), 2, "one refetch for the new kid");
    // The previous key is still published: its tokens verify from the refetched set.
    let old = idp
        .id_token_for(&good_claims("ada"), SigningKey::Previous)
        .await;
    verify_id_token(&ours, &old, Some("n-1")).await.unwrap();
    assert_eq!(idp.hits("/jwks"), 2);

    // Made-up kids do not make us fetch again and again.
    let unknown = idp
        .id_token_with_header(
            &good_claims("ada"),
            SigningKey::Current,
            &json!({"kid": "made-up"}),
        )
        .await;
    for _ in 0..3 {
        let err = refused(&ours, &unknown, Some("n-1")).await;
        assert!(matches!(err, IdTokenError::UnknownKey(_)), "{err:?}");
    }
    assert_eq!(idp.hits("/jwks"), 2, "refetches are rate-limited");

    // Keys the provider dropped no longer verify once the set is refetched.
    let replaced = idp.replace_keys().await;
    let newest = idp
        .id_token_for(&good_claims("ada"), SigningKey::Current)
        .await;
    let fresh = OidcProvider::new(&provider_config(&idp.issuer), quick()).unwrap();
    verify_id_token(&fresh, &newest, Some("n-1"))
        .await
        .unwrap_or_else(|err| panic!("{replaced}: {err}"));
    let err = refused(&fresh, &old, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::UnknownKey(_)), "{err:?}");
}

#[tokio::test]
async fn discovery_and_keys_are_cached_for_their_max_age() {
    let options = OidcOptions {
        cache_max_age: Some(300),
        ..OidcOptions::default()
    };
    let (idp, ours) = setup(options, quick()).await;
    for sub in ["one", "two", "three"] {
        let token = idp
            .id_token_for(&good_claims(sub), SigningKey::Current)
            .await;
        assert_eq!(
            verify_id_token(&ours, &token, Some("n-1"))
                .await
                .unwrap()
                .sub,
            sub
        );
    }
    assert_eq!(idp.hits("/jwks"), 1, "{}", idp.log());
    assert_eq!(idp.hits("/.well-known/openid-configuration"), 1);
}

#[tokio::test]
async fn a_short_max_age_is_held_to_the_floor_and_an_expired_cache_is_refetched() {
    // max-age=0 from the provider; our floor is 1 s here (60 s in production).
    let options = OidcOptions {
        cache_max_age: Some(0),
        ..OidcOptions::default()
    };
    let fetch = FetchOptions {
        min_cache: Duration::from_secs(1),
        ..quick()
    };
    let (idp, ours) = setup(options, fetch).await;
    let token = idp
        .id_token_for(&good_claims("a"), SigningKey::Current)
        .await;
    verify_id_token(&ours, &token, Some("n-1")).await.unwrap();
    verify_id_token(&ours, &token, Some("n-1")).await.unwrap();
    assert_eq!(idp.hits("/jwks"), 1, "held for the floor");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    verify_id_token(&ours, &token, Some("n-1")).await.unwrap();
    assert_eq!(idp.hits("/jwks"), 2, "refetched after the floor");
    assert_eq!(idp.hits("/.well-known/openid-configuration"), 2);
}

#[test]
fn cache_lifetimes_honour_max_age_within_floor_and_ceiling() {
    use tessera::service::social::provider::cache_lifetime;
    let options = FetchOptions::default();
    let secs = |header: Option<&str>| cache_lifetime(header, &options).as_secs();
    assert_eq!(secs(Some("public, max-age=600")), 600);
    assert_eq!(secs(Some("max-age=5")), 60);
    assert_eq!(secs(Some("no-cache")), 60);
    assert_eq!(secs(Some("public, max-age=31536000")), 86_400);
    assert_eq!(secs(None), 3600);
    assert_eq!(secs(Some("max-age=banana")), 3600);
}

#[tokio::test]
async fn a_provider_down_at_startup_is_a_warning_and_works_once_it_is_up() {
    crate::support::init_tracing();
    let idp = oidc::OidcProvider::start();
    idp.register_client(&client()).await;
    let target = idp.issuer.trim_start_matches("http://").parse().unwrap();
    let proxy = TcpProxy::start(target).await;
    proxy.cut();
    // The provider names itself by the Host it is reached at: through the proxy, the
    // proxy's address is the issuer.
    let issuer = format!("http://{}", proxy.address);
    let fetch = FetchOptions {
        timeout: Duration::from_millis(500),
        ..quick()
    };
    let ours = OidcProvider::new(&provider_config(&issuer), fetch).unwrap();

    ours.warm_up().await; // logs a warning, does not fail
    let mut claims = good_claims("ada");
    claims["iss"] = json!(issuer);
    let token = idp.id_token_for(&claims, SigningKey::Current).await;
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::Provider(_)), "{err:?}");
    // Right after a failure, no new attempt: a down provider is not hammered per login.
    let err = refused(&ours, &token, Some("n-1")).await;
    assert!(
        matches!(err, IdTokenError::Provider(ProviderError::Backoff(_))),
        "{err:?}"
    );

    proxy.restore();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let verified = verify_id_token(&ours, &token, Some("n-1"))
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", idp.log()));
    assert_eq!(verified.sub, "ada");
}

#[tokio::test]
async fn a_provider_that_goes_down_leaves_the_keys_it_published_in_use() {
    let idp = oidc::OidcProvider::start();
    let target = idp.issuer.trim_start_matches("http://").parse().unwrap();
    let proxy = TcpProxy::start(target).await;
    let issuer = format!("http://{}", proxy.address);
    let fetch = FetchOptions {
        timeout: Duration::from_millis(500),
        min_cache: Duration::from_millis(200),
        default_cache: Duration::from_millis(200),
        ..quick()
    };
    let ours = OidcProvider::new(&provider_config(&issuer), fetch).unwrap();
    let mut claims = good_claims("ada");
    claims["iss"] = json!(issuer);
    let token = idp.id_token_for(&claims, SigningKey::Current).await;
    verify_id_token(&ours, &token, Some("n-1")).await.unwrap();

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Both documents are stale and cannot be refreshed: the stale ones serve.
    for _ in 0..2 {
        verify_id_token(&ours, &token, Some("n-1"))
            .await
            .unwrap_or_else(|err| panic!("stale keys serve: {err}"));
    }
    // But a forgery is still one.
    let forged = idp.id_token_for(&claims, SigningKey::Stranger).await;
    let err = refused(&ours, &forged, Some("n-1")).await;
    assert!(matches!(err, IdTokenError::Signature), "{err:?}");
}

#[tokio::test]
async fn discovery_for_another_issuer_is_refused() {
    let idp = oidc::OidcProvider::start();
    // Configured with a trailing slash: not the issuer the document names.
    let config = provider_config(&format!("{}/", idp.issuer));
    let ours = OidcProvider::new(&config, quick()).unwrap();
    let err = ours.discovery().await.expect_err("an issuer mismatch");
    assert!(
        matches!(err, ProviderError::IssuerMismatch { .. }),
        "{err:?}"
    );
}

fn load(toml: &str) -> Result<Config, String> {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(toml.as_bytes()).unwrap();
    Config::load(Some(file.path()), Vec::new())
        .map(|loaded| loaded.config)
        .map_err(|err| err.to_string())
}

#[test]
fn providers_are_configured_and_checked_at_load() {
    let config = load(
        r#"
[social]
email_authentication = true
allowed_redirect_origins = ["https://app.example.com"]

[[social.providers]]
id = "corp"
kind = "oidc"
issuer = "https://id.example.com"
client_id = "tessera"
client_secret = "very-secret-client-secret"
callback_url = "https://app.example.com/auth/callback/corp"

[[social.providers]]
id = "google"
kind = "google"
client_id = "123.apps.googleusercontent.com"
client_secret_file = "/run/secrets/google"
scopes = ["openid", "email"]

[[social.providers]]
id = "github"
kind = "github"
client_id = "Iv1.abc"
client_secret = "gh-secret-value"
api_url = "http://127.0.0.1:9999"
"#,
    )
    .unwrap();
    let providers = &config.social.providers;
    assert_eq!(providers.len(), 3);
    assert!(config.social.email_authentication);
    assert_eq!(providers[0].scopes, ["openid", "email", "profile"]);
    assert_eq!(providers[1].kind, SocialProviderKind::Google);
    assert_eq!(providers[1].issuer(), Some("https://accounts.google.com"));
    assert_eq!(providers[1].scopes, ["openid", "email"]);
    assert_eq!(providers[2].issuer(), None);

    // Secrets are neither in Debug nor in what `tessera check` prints.
    let shown = format!("{config:?} {}", serde_json::to_string(&config).unwrap());
    for secret in ["very-secret-client-secret", "gh-secret-value"] {
        assert!(!shown.contains(secret), "a client secret is shown");
    }

    let defaults = Config::default();
    assert!(defaults.social.providers.is_empty());
    assert!(!defaults.social.email_authentication);
    assert!(defaults.social.allowed_redirect_origins.is_empty());
}

#[test]
fn bad_provider_settings_are_errors_naming_them() {
    let provider = |body: &str| format!("[[social.providers]]\n{body}\n");
    for (toml, expected) in [
        (
            provider("id = \"corp\"\nkind = \"oidc\"\nclient_id = \"x\""),
            "needs an issuer",
        ),
        (
            provider("id = \"a/b\"\nkind = \"google\"\nclient_id = \"x\""),
            "\"a/b\"",
        ),
        (
            provider("id = \"\"\nkind = \"google\"\nclient_id = \"x\""),
            "id \"\"",
        ),
        (
            format!(
                "{}{}",
                provider("id = \"g\"\nkind = \"google\"\nclient_id = \"x\""),
                provider("id = \"g\"\nkind = \"google\"\nclient_id = \"y\"")
            ),
            "listed twice",
        ),
        (
            provider("id = \"g\"\nkind = \"saml\"\nclient_id = \"x\""),
            "saml",
        ),
        (
            provider(
                "id = \"g\"\nkind = \"google\"\nclient_id = \"x\"\nclient_secret = \"a\"\n\
                 client_secret_file = \"/f\"",
            ),
            "not both",
        ),
        (
            provider("id = \"g\"\nkind = \"github\"\nclient_id = \"x\"\njwks_uri = \"http://a\""),
            "not OpenID Connect",
        ),
        (
            provider("id = \"g\"\nkind = \"oidc\"\nissuer = \"id.example.com\"\nclient_id = \"x\""),
            "issuer must be an http(s) URL",
        ),
        (
            provider("id = \"g\"\nkind = \"google\"\nclient_id = \"x\"\nclent_id = \"y\""),
            "clent_id",
        ),
        (
            "[social]\nallowed_redirect_origins = [\"https://app.example.com/path\"]\n".into(),
            "allowed_redirect_origins",
        ),
    ] {
        let err = load(&toml).expect_err(&toml);
        assert!(err.contains(expected), "{toml}\n=> {err}");
    }
}

#[test]
fn a_client_secret_file_is_read_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "from-the-file\n").unwrap();
    let mut config = provider_config("https://id.example.com");
    config.client_secret = None;
    config.client_secret_file = Some(path);
    let secret = config.client_secret().unwrap().unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&secret),
        "from-the-file"
    );
}

/// Providers are reached over TLS (rustls with ring, the platform's roots): an https issuer
/// whose certificate no trusted root vouches for is refused in the handshake, as a fetch
/// error naming the certificate, and nothing panics for want of a crypto provider.
#[tokio::test]
async fn an_https_provider_is_reached_over_tls_and_an_untrusted_certificate_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = crate::support::free_port();
    let serve = format!(
        "import http.server, ssl, sys\n\
         server = http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler)\n\
         context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         context.load_cert_chain({cert:?}, {key:?})\n\
         server.socket = context.wrap_socket(server.socket, server_side=True)\n\
         print('ready', flush=True)\n\
         server.serve_forever()\n",
        cert = cert.display().to_string(),
        key = key.display().to_string(),
    );
    let mut server = std::process::Command::new("python3")
        .args(["-c", &serve])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");

    let issuer = format!("https://127.0.0.1:{port}");
    let ours = OidcProvider::new(&provider_config(&issuer), quick()).unwrap();
    let err = ours
        .discovery()
        .await
        .expect_err("an untrusted certificate");
    server.kill().ok();
    server.wait().ok();
    let shown = format!("{err}").to_lowercase();
    assert!(
        shown.contains("certificate") || shown.contains("unknownissuer"),
        "refused in the TLS handshake, not before it: {shown}"
    );
}
