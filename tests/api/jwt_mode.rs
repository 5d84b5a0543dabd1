//! JWT mode (`auth.mode = "jwt"`): dj-rest-auth + SimpleJWT 5.5 on the wire. Login and signup
//! answer `{"access","refresh","user"}`; `token/verify/` and `token/refresh/` refuse in
//! SimpleJWT's words; refresh tokens rotate and a reused one ends its family; hostile tokens are
//! refused; RS256/EdDSA keys are published as a JWKS other services verify with; cookies and
//! CSRF follow dj-rest-auth's settings.
//!
//! Requests are built by hand (no cookie store) so every `Cookie` sent is visible here.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde_json::{Value, json};
use tessera::Config;
use tessera::config::{AuthMode, EmailVerification, JwtAlgorithm};

use crate::support::cookies::{issued, with_cookies};
use crate::support::jwt::{
    claims_of, fixture, header_of, hs256, kid_of, now, read_fixture, sign, unsigned, with, without,
};
use crate::support::{Backend, PASSWORD, Reply, TestApp, assert_detail};

on_each_backend!(
    full_journey_register_login_change_logout,
    claims_have_simplejwt_shape,
    return_expiration_adds_expirations,
    refresh_rotates_and_reuse_revokes_the_family,
    refresh_without_rotation_keeps_the_token,
    concurrent_refreshes_of_one_token_have_at_most_one_winner,
    verify_accepts_good_tokens_and_refuses_garbage_and_expired,
    hostile_hs256_tokens_are_refused,
    algorithm_confusion_and_foreign_keys_are_refused_under_rs256,
    rs256_jwks_lets_another_service_verify_offline,
    eddsa_jwks_lets_another_service_verify_offline,
    hs256_publishes_no_keys,
    rotated_rsa_key_is_still_accepted,
    previous_hs256_secret_is_still_accepted,
    issuer_and_audience_are_set_and_required,
    password_change_spares_only_the_current_family,
    password_reset_revokes_every_family,
    logout_needs_a_valid_live_refresh_token,
    cookies_follow_dj_rest_auth_settings,
    logout_reads_and_clears_the_cookies,
    logout_without_a_refresh_cookie_says_so,
    cookie_domain_and_secure_are_honoured,
    refresh_body_does_not_leak_the_httponly_refresh_token,
    csrf_guards_cookie_authenticated_unsafe_requests,
    csrf_guards_the_refresh_cookie_alone,
    stale_cookies_never_block_login_or_registration,
    missing_credentials_ask_for_a_bearer_token,
    openapi_document_is_served_in_jwt_mode,
    verify_reads_the_cookie_when_the_body_has_no_token,
);

const SECRET: &str = "test-secret-key-that-is-long-enough-0123456789";
const OTHER_SECRET: &str = "another-secret-key-that-is-long-enough-987654";
const NEW_PASSWORD: &str = "a brand new passphrase";
const CHALLENGE: &str = "Bearer realm=\"api\"";
const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const INVALID: &str = "Token is invalid";
const EXPIRED: &str = "Token is expired";
const WRONG_TYPE: &str = "Token has wrong type";
const BLACKLISTED: &str = "Token is blacklisted";
const LOGGED_OUT: &str = "Successfully logged out.";
const ACCESS_COOKIE: &str = "jwt-access";
const REFRESH_COOKIE: &str = "jwt-refresh";
const CSRF_SECRET: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";
const OTHER_CSRF_SECRET: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA012345";
const RESET_PREFIX: &str = "https://app.example.com/reset/";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn spawn(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        config.auth.mode = AuthMode::Jwt;
        configure(config);
    })
    .await
}

fn signed_with(config: &mut Config, algorithm: JwtAlgorithm, private_key: &str) {
    config.jwt.algorithm = algorithm;
    config.jwt.private_key_file = Some(fixture(private_key));
}

fn cookies(config: &mut Config) {
    config.jwt.auth_cookie = Some(ACCESS_COOKIE.into());
    config.jwt.refresh_cookie = Some(REFRESH_COOKIE.into());
}

/// The tokens of a login or signup answer, and the answer.
struct Pair {
    access: String,
    refresh: String,
    reply: Reply,
}

impl Pair {
    fn of(reply: Reply) -> Self {
        let text = |field: &str| {
            reply.body[field]
                .as_str()
                .unwrap_or_else(|| panic!("a string {field:?}: {}", reply.text))
                .to_owned()
        };
        Self {
            access: text("access"),
            refresh: text("refresh"),
            reply,
        }
    }
}

async fn signup_reply(app: &TestApp, email: &str) -> Reply {
    app.post(
        "registration/",
        json!({"email": email, "password1": PASSWORD, "password2": PASSWORD}),
    )
    .await
}

async fn signup(app: &TestApp, email: &str) -> Pair {
    let reply = signup_reply(app, email).await;
    assert_eq!(reply.status, 201, "registration failed: {}", reply.text);
    Pair::of(reply)
}

async fn login(app: &TestApp, email: &str, password: &str) -> Pair {
    let reply = app.login(email, password).await;
    assert_eq!(reply.status, 200, "login failed: {}", reply.text);
    Pair::of(reply)
}

async fn me(app: &TestApp, access: &str) -> Reply {
    app.send(app.client.get(app.api("user/")).bearer_auth(access))
        .await
}

async fn bearer_post(app: &TestApp, path: &str, access: &str, body: Value) -> Reply {
    app.send(
        app.client
            .post(app.api(path))
            .bearer_auth(access)
            .json(&body),
    )
    .await
}

async fn refresh(app: &TestApp, token: &str) -> Reply {
    app.post("token/refresh/", json!({"refresh": token})).await
}

async fn verify(app: &TestApp, token: &str) -> Reply {
    app.post("token/verify/", json!({"token": token})).await
}

async fn logout(app: &TestApp, refresh: &str) -> Reply {
    app.post("logout/", json!({"refresh": refresh})).await
}

fn assert_challenge(reply: &Reply) {
    assert_eq!(
        reply.header("www-authenticate"),
        Some(CHALLENGE),
        "a 401 asks for a Bearer token: {:?}",
        reply.headers
    );
}

/// SimpleJWT's refusal on `token/verify/` and `token/refresh/`.
fn assert_token_not_valid(reply: &Reply, message: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"detail": message, "code": "token_not_valid"}),
        "{}",
        reply.text
    );
    assert_challenge(reply);
}

/// SimpleJWT's refusal of a bad access token on an authenticated endpoint.
fn assert_bad_access(reply: &Reply, message: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{
                "token_class": "AccessToken",
                "token_type": "access",
                "message": message,
            }],
        }),
        "{}",
        reply.text
    );
    assert_challenge(reply);
}

fn keys_of(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn set_of(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

fn assert_close(actual: DateTime<Utc>, expected_timestamp: i64, what: &str) {
    assert!(
        (actual.timestamp() - expected_timestamp).abs() <= 2,
        "{what}: {actual} vs exp {expected_timestamp}"
    );
}

// ---------------------------------------------------------------------------------------------
// Journey and token shape
// ---------------------------------------------------------------------------------------------

async fn full_journey_register_login_change_logout(backend: Backend) {
    let app = spawn(backend, |_| {}).await;

    let signed_up = signup(&app, "ada@example.com").await;
    assert_eq!(
        keys_of(&signed_up.reply.body),
        set_of(&["access", "refresh", "user"]),
        "no expirations by default: {}",
        signed_up.reply.text
    );
    let user = &signed_up.reply.body["user"];
    assert_eq!(
        keys_of(user),
        set_of(&["pk", "username", "email", "first_name", "last_name"])
    );
    assert_eq!(user["email"], "ada@example.com");
    assert!(user["pk"].is_i64());

    let profile = me(&app, &signed_up.access).await;
    assert_eq!(profile.status, 200, "{}", profile.text);
    assert_eq!(&profile.body, user, "user/ answers the same user");

    let device = login(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(
        keys_of(&device.reply.body),
        set_of(&["access", "refresh", "user"])
    );
    assert_eq!(&device.reply.body["user"], user);
    assert_ne!(device.refresh, signed_up.refresh, "every login has its own");
    assert_eq!(me(&app, &device.access).await.status, 200);

    let changed = bearer_post(
        &app,
        "password/change/",
        &device.access,
        json!({"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
    )
    .await;
    assert_detail(&changed, 200, "New password has been saved.");
    let old = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(old.status, 400, "{}", old.text);
    assert_eq!(
        old.body,
        json!({"non_field_errors": ["Unable to log in with provided credentials."]})
    );

    // The device that changed the password stays logged in; the signup's family is over.
    let renewed = refresh(&app, &device.refresh).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let current = renewed.body["refresh"].as_str().unwrap().to_owned();
    assert_token_not_valid(&refresh(&app, &signed_up.refresh).await, BLACKLISTED);

    assert_detail(&logout(&app, &current).await, 200, LOGGED_OUT);
    assert_token_not_valid(&refresh(&app, &current).await, BLACKLISTED);

    // The new password works and starts a working family.
    let again = login(&app, "ada@example.com", NEW_PASSWORD).await;
    assert_eq!(refresh(&app, &again.refresh).await.status, 200);
}

async fn claims_have_simplejwt_shape(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    let pk = pair.reply.body["user"]["pk"].as_i64().unwrap();

    let before = now();
    for (token, token_type, lifetime) in [
        (&pair.access, "access", 300),
        (&pair.refresh, "refresh", 86_400),
    ] {
        let header = header_of(token);
        assert_eq!(header["alg"], "HS256", "{header}");
        assert_eq!(header["typ"], "JWT", "{header}");
        assert!(
            header["kid"].as_str().is_some_and(|kid| !kid.is_empty()),
            "a kid: {header}"
        );

        let claims = claims_of(token);
        assert_eq!(claims["token_type"], token_type, "{claims}");
        assert_eq!(
            claims["user_id"],
            json!(pk.to_string()),
            "user_id is a string, as SimpleJWT 5.5: {claims}"
        );
        let exp = claims["exp"].as_i64().expect("exp is an integer");
        let iat = claims["iat"].as_i64().expect("iat is an integer");
        assert_eq!(exp - iat, lifetime, "{token_type} lifetime: {claims}");
        assert!(
            (iat - before).abs() < 300,
            "iat is the time of issue: {iat} vs {before}"
        );
        let jti = claims["jti"].as_str().expect("a string jti");
        assert!(
            jti.len() >= 32 && jti.chars().all(|c| c.is_ascii_alphanumeric()),
            "a random jti of at least 128 bits: {jti:?}"
        );
        assert!(claims.get("iss").is_none(), "no iss unless configured");
        assert!(claims.get("aud").is_none(), "no aud unless configured");
    }
    assert_ne!(
        claims_of(&pair.access)["jti"],
        claims_of(&pair.refresh)["jti"]
    );

    // The signature is HS256 with the secret key: SimpleJWT's default, so a Django
    // deployment sharing the secret verifies it.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    let verified = jsonwebtoken::decode::<Value>(
        &pair.access,
        &DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .expect("signed with secret_key");
    assert_eq!(verified.claims, claims_of(&pair.access));
}

async fn login_after_signup(app: &TestApp, email: &str) -> Pair {
    signup(app, email).await;
    login(app, email, PASSWORD).await
}

async fn return_expiration_adds_expirations(backend: Backend) {
    let app = spawn(backend, |config| config.jwt.return_expiration = true).await;

    let signed_up = signup(&app, "ada@example.com").await;
    let logged_in = login(&app, "ada@example.com", PASSWORD).await;
    for pair in [&signed_up, &logged_in] {
        let body = &pair.reply.body;
        assert_eq!(
            keys_of(body),
            set_of(&[
                "access",
                "refresh",
                "user",
                "access_expiration",
                "refresh_expiration"
            ]),
            "{}",
            pair.reply.text
        );
        for (field, token) in [
            ("access_expiration", &pair.access),
            ("refresh_expiration", &pair.refresh),
        ] {
            let text = body[field].as_str().expect("an ISO 8601 string");
            let at = DateTime::parse_from_rfc3339(text)
                .unwrap_or_else(|e| panic!("{field} {text:?} is ISO 8601: {e}"));
            assert_close(
                at.with_timezone(&Utc),
                claims_of(token)["exp"].as_i64().unwrap(),
                field,
            );
        }
    }

    let refreshed = refresh(&app, &logged_in.refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let access = refreshed.body["access"].as_str().unwrap();
    let expiration = refreshed.body["access_expiration"]
        .as_str()
        .expect("access_expiration");
    assert_close(
        DateTime::parse_from_rfc3339(expiration)
            .unwrap()
            .with_timezone(&Utc),
        claims_of(access)["exp"].as_i64().unwrap(),
        "refreshed access_expiration",
    );
}

// ---------------------------------------------------------------------------------------------
// Refresh rotation
// ---------------------------------------------------------------------------------------------

async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let first = login_after_signup(&app, "ada@example.com").await;
    let bystander = login(&app, "ada@example.com", PASSWORD).await;

    let rotated = refresh(&app, &first.refresh).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(
        keys_of(&rotated.body),
        set_of(&[
            "access",
            "access_expiration",
            "refresh",
            "refresh_expiration"
        ]),
        "{}",
        rotated.text
    );
    let access = rotated.body["access"].as_str().unwrap();
    let second = rotated.body["refresh"].as_str().unwrap().to_owned();
    assert_ne!(second, first.refresh, "a new refresh token");
    assert_eq!(claims_of(&second)["token_type"], "refresh");
    assert_eq!(
        claims_of(&second)["user_id"],
        claims_of(&first.refresh)["user_id"]
    );
    assert_eq!(claims_of(access)["token_type"], "access");
    let profile = me(&app, access).await;
    assert_eq!(profile.status, 200, "{}", profile.text);
    assert_eq!(profile.body["email"], "ada@example.com");

    // The retired token comes back: somebody copied it. The family ends, newest token included.
    assert_token_not_valid(&refresh(&app, &first.refresh).await, BLACKLISTED);
    assert_token_not_valid(&refresh(&app, &second).await, BLACKLISTED);
    assert_token_not_valid(&verify(&app, &second).await, BLACKLISTED);
    assert_detail(&logout(&app, &second).await, 401, BLACKLISTED);

    // Another login's family is not involved.
    let other = refresh(&app, &bystander.refresh).await;
    assert_eq!(other.status, 200, "{}", other.text);
}

async fn refresh_without_rotation_keeps_the_token(backend: Backend) {
    let app = spawn(backend, |config| config.jwt.rotate_refresh = false).await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    for _ in 0..2 {
        let reply = refresh(&app, &pair.refresh).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(
            keys_of(&reply.body),
            set_of(&["access", "access_expiration"]),
            "no new refresh token without rotation: {}",
            reply.text
        );
        let access = reply.body["access"].as_str().unwrap();
        assert_eq!(me(&app, access).await.status, 200);
    }
    assert_detail(&logout(&app, &pair.refresh).await, 200, LOGGED_OUT);
    assert_token_not_valid(&refresh(&app, &pair.refresh).await, BLACKLISTED);
}

async fn concurrent_refreshes_of_one_token_have_at_most_one_winner(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let pair = login_after_signup(&app, "ada@example.com").await;

    let replies = join_all((0..8).map(|_| refresh(&app, &pair.refresh))).await;
    let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert!(
        winners.len() <= 1,
        "one refresh token, {} new ones: {:?}",
        winners.len(),
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(
            reply.status, 401,
            "a loser is refused, not failed: {}",
            reply.text
        );
        assert_eq!(reply.body["code"], "token_not_valid", "{}", reply.text);
    }
    // The presented token is spent whatever happened.
    assert_eq!(refresh(&app, &pair.refresh).await.status, 401);
}

// ---------------------------------------------------------------------------------------------
// Verification and hostile tokens
// ---------------------------------------------------------------------------------------------

async fn verify_accepts_good_tokens_and_refuses_garbage_and_expired(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let pair = login_after_signup(&app, "ada@example.com").await;

    for token in [&pair.access, &pair.refresh] {
        let ok = verify(&app, token).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert_eq!(ok.body, json!({}), "SimpleJWT answers an empty object");
    }

    assert_token_not_valid(&verify(&app, "garbage").await, INVALID);
    assert_token_not_valid(&verify(&app, "a.b.c").await, INVALID);

    let kid = kid_of(&pair.access);
    let expired = with(
        &with(&claims_of(&pair.access), "exp", json!(now() - 60)),
        "iat",
        json!(now() - 360),
    );
    let expired = sign(Algorithm::HS256, Some(&kid), &expired, &hs256(SECRET));
    assert_token_not_valid(&verify(&app, &expired).await, EXPIRED);
    assert_bad_access(&me(&app, &expired).await, EXPIRED);

    let forged = sign(
        Algorithm::HS256,
        Some(&kid),
        &claims_of(&pair.access),
        &hs256(OTHER_SECRET),
    );
    assert_token_not_valid(&verify(&app, &forged).await, INVALID);

    let missing = app.post("token/verify/", json!({})).await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.body, json!({"token": ["This field is required."]}));
}

async fn hostile_hs256_tokens_are_refused(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    let kid = kid_of(&pair.access);
    let access = claims_of(&pair.access);
    let refresh_claims = claims_of(&pair.refresh);
    let key = hs256(SECRET);

    // Positive control: the real claims re-signed with the real key and kid are accepted, so
    // each refusal below is owed to the one thing changed.
    let resigned = sign(Algorithm::HS256, Some(&kid), &access, &key);
    assert_eq!(me(&app, &resigned).await.status, 200);

    // alg: none, with and without the real kid.
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "typ": "JWT", "kid": kid}),
        json!({"alg": "None", "typ": "JWT"}),
    ] {
        assert_bad_access(&me(&app, &unsigned(header.clone(), &access)).await, INVALID);
        assert_token_not_valid(
            &refresh(&app, &unsigned(header.clone(), &refresh_claims)).await,
            INVALID,
        );
    }

    // A well-signed token naming a key this service does not have.
    let unknown_kid = sign(Algorithm::HS256, Some("not-a-known-key"), &access, &key);
    assert_bad_access(&me(&app, &unknown_kid).await, INVALID);
    let unknown_kid = sign(
        Algorithm::HS256,
        Some("not-a-known-key"),
        &refresh_claims,
        &key,
    );
    assert_token_not_valid(&refresh(&app, &unknown_kid).await, INVALID);

    // No exp: refused (SimpleJWT says "Token has no 'exp' claim"; "Token is invalid" is as
    // safe).
    for token in [
        sign(Algorithm::HS256, Some(&kid), &without(&access, "exp"), &key),
        sign(Algorithm::HS256, None, &without(&access, "exp"), &key),
    ] {
        let reply = me(&app, &token).await;
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(reply.body["code"], "token_not_valid", "{}", reply.text);
        let message = reply.body["messages"][0]["message"].as_str().unwrap_or("");
        assert!(
            [INVALID, "Token has no 'exp' claim"].contains(&message),
            "{}",
            reply.text
        );
    }
    let no_exp = sign(
        Algorithm::HS256,
        Some(&kid),
        &without(&refresh_claims, "exp"),
        &key,
    );
    let reply = refresh(&app, &no_exp).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.body["code"], "token_not_valid", "{}", reply.text);

    // exp as a string (PyJWT: "must be an integer").
    let far = json!((now() + 3600).to_string());
    let string_exp = sign(
        Algorithm::HS256,
        Some(&kid),
        &with(&access, "exp", far.clone()),
        &key,
    );
    assert_bad_access(&me(&app, &string_exp).await, INVALID);
    let string_exp = sign(
        Algorithm::HS256,
        Some(&kid),
        &with(&refresh_claims, "exp", far),
        &key,
    );
    assert_token_not_valid(&refresh(&app, &string_exp).await, INVALID);

    // Each token only where it belongs.
    assert_token_not_valid(&refresh(&app, &pair.access).await, WRONG_TYPE);
    assert_bad_access(&me(&app, &pair.refresh).await, WRONG_TYPE);
    // A refresh token whose claims say "access" is still only what its claims say.
    let relabelled = sign(
        Algorithm::HS256,
        Some(&kid),
        &with(&refresh_claims, "token_type", json!("access")),
        &key,
    );
    assert_token_not_valid(&refresh(&app, &relabelled).await, WRONG_TYPE);

    // A token naming an audience this service does not have was meant for somebody else.
    let foreign = sign(
        Algorithm::HS256,
        Some(&kid),
        &with(&access, "aud", json!("some-other-api")),
        &key,
    );
    assert_bad_access(&me(&app, &foreign).await, INVALID);

    // None of the forgeries used up the real refresh token.
    let reply = refresh(&app, &pair.refresh).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn algorithm_confusion_and_foreign_keys_are_refused_under_rs256(backend: Backend) {
    let app = spawn(backend, |config| {
        signed_with(config, JwtAlgorithm::RS256, "rsa_private.pem");
    })
    .await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    assert_eq!(header_of(&pair.access)["alg"], "RS256");
    let kid = kid_of(&pair.access);
    let access = claims_of(&pair.access);
    let refresh_claims = claims_of(&pair.refresh);
    assert_eq!(me(&app, &pair.access).await.status, 200);

    // HS256 "signed" with the public key, as if the public PEM were a shared secret; the
    // confusion a naive verifier falls for (the PEM as stored, and without its final newline).
    let public_pem = read_fixture("rsa_public.pem");
    let public_text = String::from_utf8(public_pem.clone()).unwrap();
    for secret in [
        public_pem.clone(),
        public_text.trim_end().as_bytes().to_vec(),
    ] {
        let key = EncodingKey::from_secret(&secret);
        for kid in [Some(kid.as_str()), None] {
            let token = sign(Algorithm::HS256, kid, &access, &key);
            assert_bad_access(&me(&app, &token).await, INVALID);
            assert_token_not_valid(&verify(&app, &token).await, INVALID);
            let token = sign(Algorithm::HS256, kid, &refresh_claims, &key);
            assert_token_not_valid(&refresh(&app, &token).await, INVALID);
        }
    }

    // HS256 with the app's secret_key: not a key of this RS256 service.
    let token = sign(Algorithm::HS256, None, &access, &hs256(SECRET));
    assert_bad_access(&me(&app, &token).await, INVALID);

    // alg: none.
    let token = unsigned(json!({"alg": "none", "typ": "JWT", "kid": kid}), &access);
    assert_bad_access(&me(&app, &token).await, INVALID);

    // Signed by another RSA key, claiming the real kid or none.
    let other = EncodingKey::from_rsa_pem(&read_fixture("rsa2_private.pem")).unwrap();
    for kid in [Some(kid.as_str()), None] {
        let token = sign(Algorithm::RS256, kid, &access, &other);
        assert_bad_access(&me(&app, &token).await, INVALID);
        let token = sign(Algorithm::RS256, kid, &refresh_claims, &other);
        assert_token_not_valid(&refresh(&app, &token).await, INVALID);
    }

    // Positive control: a SimpleJWT-style RS256 token (no kid) by the real key is accepted.
    let real = EncodingKey::from_rsa_pem(&read_fixture("rsa_private.pem")).unwrap();
    let token = sign(Algorithm::RS256, None, &access, &real);
    assert_eq!(me(&app, &token).await.status, 200);
    assert_eq!(refresh(&app, &pair.refresh).await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// Keys: JWKS, offline verification, rotation
// ---------------------------------------------------------------------------------------------

async fn jwks(app: &TestApp) -> Value {
    let reply = app
        .send(app.client.get(app.url("/.well-known/jwks.json")))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

/// What another service does with nothing but the JWKS: pick the key by `kid`, verify.
fn verify_offline(jwks: &Value, token: &str) -> Result<Value, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| format!("not a JWK set: {e}"))?;
    let kid = kid_of(token);
    let jwk = set.find(&kid).ok_or(format!("no key {kid} in {jwks}"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK: {e}"))?;
    let alg: Algorithm = header_of(token)["alg"]
        .as_str()
        .unwrap()
        .parse()
        .map_err(|e| format!("alg: {e}"))?;
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| format!("{e}"))
}

fn assert_public_only(key: &Value) {
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(
            key.get(private).is_none(),
            "the JWKS publishes private material {private:?}: {key}"
        );
    }
}

async fn rs256_jwks_lets_another_service_verify_offline(backend: Backend) {
    let app = spawn(backend, |config| {
        signed_with(config, JwtAlgorithm::RS256, "rsa_private.pem");
    })
    .await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    let pk = pair.reply.body["user"]["pk"].as_i64().unwrap();

    let set = jwks(&app).await;
    let keys = set["keys"].as_array().expect("a keys array");
    assert_eq!(keys.len(), 1, "{set}");
    let key = &keys[0];
    assert_eq!(key["kid"], json!(kid_of(&pair.access)), "{key}");
    assert_eq!(key["alg"], "RS256", "{key}");
    assert_eq!(key["kty"], "RSA", "{key}");
    assert_eq!(key["use"], "sig", "{key}");
    assert_public_only(key);

    let claims = verify_offline(&set, &pair.access).expect("verifies offline");
    assert_eq!(claims["user_id"], json!(pk.to_string()));
    assert_eq!(claims["token_type"], "access");

    // The JWKS key is the real one: a token by another key with the same kid fails offline.
    let other = EncodingKey::from_rsa_pem(&read_fixture("rsa2_private.pem")).unwrap();
    let forged = sign(
        Algorithm::RS256,
        Some(&kid_of(&pair.access)),
        &claims_of(&pair.access),
        &other,
    );
    assert!(verify_offline(&set, &forged).is_err());
}

async fn eddsa_jwks_lets_another_service_verify_offline(backend: Backend) {
    let app = spawn(backend, |config| {
        signed_with(config, JwtAlgorithm::EdDSA, "ed25519_private.pem");
    })
    .await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    assert_eq!(header_of(&pair.access)["alg"], "EdDSA");
    assert_eq!(me(&app, &pair.access).await.status, 200);
    assert_eq!(verify(&app, &pair.refresh).await.status, 200);

    let set = jwks(&app).await;
    let keys = set["keys"].as_array().expect("a keys array");
    assert_eq!(keys.len(), 1, "{set}");
    let key = &keys[0];
    assert_eq!(key["kid"], json!(kid_of(&pair.access)), "{key}");
    assert_eq!(key["alg"], "EdDSA", "{key}");
    assert_eq!(key["kty"], "OKP", "{key}");
    assert_eq!(key["crv"], "Ed25519", "{key}");
    assert_public_only(key);

    let claims = verify_offline(&set, &pair.access).expect("verifies offline");
    assert_eq!(claims, claims_of(&pair.access));
    let claims = verify_offline(&set, &pair.refresh).expect("verifies offline");
    assert_eq!(claims["token_type"], "refresh");

    let rotated = refresh(&app, &pair.refresh).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
}

async fn hs256_publishes_no_keys(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let set = jwks(&app).await;
    assert_eq!(
        set,
        json!({"keys": []}),
        "an HMAC secret is never published"
    );
}

async fn rotated_rsa_key_is_still_accepted(backend: Backend) {
    let old = spawn(backend.clone(), |config| {
        signed_with(config, JwtAlgorithm::RS256, "rsa_private.pem");
    })
    .await;
    let new = spawn(backend.clone(), |config| {
        signed_with(config, JwtAlgorithm::RS256, "rsa2_private.pem");
        config.jwt.verification_key_files =
            vec![fixture("rsa_public.pem"), fixture("ed25519_public.pem")];
    })
    .await;
    let oldest = spawn(backend.clone(), |config| {
        signed_with(config, JwtAlgorithm::EdDSA, "ed25519_private.pem");
    })
    .await;
    let stranger = spawn(backend, |config| {
        signed_with(config, JwtAlgorithm::RS256, "rsa2_private.pem");
    })
    .await;
    // The same account (pk 1) in each database.
    let from_old = signup(&old, "ada@example.com").await;
    let from_new = signup(&new, "ada@example.com").await;
    let from_oldest = signup(&oldest, "ada@example.com").await;
    signup(&stranger, "ada@example.com").await;
    assert_eq!(
        claims_of(&from_old.access)["user_id"],
        claims_of(&from_new.access)["user_id"]
    );
    assert_ne!(kid_of(&from_old.access), kid_of(&from_new.access));

    let accepted = me(&new, &from_old.access).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.body["email"], "ada@example.com");
    assert_eq!(verify(&new, &from_old.access).await.status, 200);
    // Several verification keys, of different algorithms.
    let accepted = me(&new, &from_oldest.access).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    // Without the old public key, the same token is refused.
    assert_bad_access(&me(&stranger, &from_old.access).await, INVALID);
    // Verification keys do not sign: the old service does not know the new key.
    assert_bad_access(&me(&old, &from_new.access).await, INVALID);

    // Every key is published, each under its own kid, for verifiers to rotate too.
    let set = jwks(&new).await;
    let kids: BTreeSet<String> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kids,
        [
            kid_of(&from_old.access),
            kid_of(&from_new.access),
            kid_of(&from_oldest.access),
        ]
        .into_iter()
        .collect::<BTreeSet<_>>(),
        "{set}"
    );
    verify_offline(&set, &from_old.access).expect("old token, new JWKS");
    verify_offline(&set, &from_new.access).expect("new token, new JWKS");
    verify_offline(&set, &from_oldest.access).expect("EdDSA token, new JWKS");
}

async fn previous_hs256_secret_is_still_accepted(backend: Backend) {
    let old = spawn(backend.clone(), |_| {}).await;
    let new = spawn(backend, |config| {
        config.secret_key = Some(OTHER_SECRET.to_owned().into());
        config.jwt.previous_secret_keys = vec![SECRET.to_owned().into()];
    })
    .await;
    let from_old = signup(&old, "ada@example.com").await;
    let from_new = signup(&new, "ada@example.com").await;
    assert_ne!(kid_of(&from_old.access), kid_of(&from_new.access));

    let accepted = me(&new, &from_old.access).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.body["email"], "ada@example.com");
    // A SimpleJWT token (no kid) signed with the previous secret is accepted too.
    let simplejwt = sign(
        Algorithm::HS256,
        None,
        &claims_of(&from_old.access),
        &hs256(SECRET),
    );
    assert_eq!(me(&new, &simplejwt).await.status, 200);
    // New tokens are signed with the new secret only.
    assert_bad_access(&me(&old, &from_new.access).await, INVALID);
    assert_eq!(jwks(&new).await, json!({"keys": []}));
}

async fn issuer_and_audience_are_set_and_required(backend: Backend) {
    let app = spawn(backend, |config| {
        config.jwt.issuer = Some("https://accounts.example.com".into());
        config.jwt.audience = Some("example-api".into());
    })
    .await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    for token in [&pair.access, &pair.refresh] {
        let claims = claims_of(token);
        assert_eq!(claims["iss"], "https://accounts.example.com", "{claims}");
        assert_eq!(claims["aud"], "example-api", "{claims}");
    }
    assert_eq!(me(&app, &pair.access).await.status, 200);

    let kid = kid_of(&pair.access);
    let key = hs256(SECRET);
    let access = claims_of(&pair.access);
    let refresh_claims = claims_of(&pair.refresh);
    // Positive control: the same claims re-signed are accepted.
    assert_eq!(
        me(&app, &sign(Algorithm::HS256, Some(&kid), &access, &key))
            .await
            .status,
        200
    );
    for claims in [
        without(&access, "iss"),
        without(&access, "aud"),
        with(&access, "iss", json!("https://evil.example")),
        with(&access, "aud", json!("another-api")),
    ] {
        let token = sign(Algorithm::HS256, Some(&kid), &claims, &key);
        assert_bad_access(&me(&app, &token).await, INVALID);
        assert_token_not_valid(&verify(&app, &token).await, INVALID);
    }
    for claims in [
        without(&refresh_claims, "iss"),
        without(&refresh_claims, "aud"),
    ] {
        let token = sign(Algorithm::HS256, Some(&kid), &claims, &key);
        assert_token_not_valid(&refresh(&app, &token).await, INVALID);
    }

    let refreshed = refresh(&app, &pair.refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let claims = claims_of(refreshed.body["access"].as_str().unwrap());
    assert_eq!(claims["iss"], "https://accounts.example.com");
    assert_eq!(claims["aud"], "example-api");
}

// ---------------------------------------------------------------------------------------------
// Password events and logout
// ---------------------------------------------------------------------------------------------

async fn password_change_spares_only_the_current_family(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let signed_up = signup(&app, "ada@example.com").await;
    let laptop = login(&app, "ada@example.com", PASSWORD).await;
    let phone = login(&app, "ada@example.com", PASSWORD).await;
    // The laptop's family has moved on once; the change is made with its newest access token.
    let rotated = refresh(&app, &laptop.refresh).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let laptop_access = rotated.body["access"].as_str().unwrap().to_owned();
    let laptop_refresh = rotated.body["refresh"].as_str().unwrap().to_owned();

    let changed = bearer_post(
        &app,
        "password/change/",
        &laptop_access,
        json!({"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
    )
    .await;
    assert_detail(&changed, 200, "New password has been saved.");

    for other in [&signed_up.refresh, &phone.refresh] {
        assert_token_not_valid(&refresh(&app, other).await, BLACKLISTED);
    }
    assert_token_not_valid(&verify(&app, &phone.refresh).await, BLACKLISTED);
    let kept = refresh(&app, &laptop_refresh).await;
    assert_eq!(
        kept.status, 200,
        "the current family lives on: {}",
        kept.text
    );
    let newest = kept.body["refresh"].as_str().unwrap();
    assert_detail(&logout(&app, newest).await, 200, LOGGED_OUT);
}

async fn password_reset_revokes_every_family(backend: Backend) {
    let app = spawn(backend, |config| {
        config.account.email_verification = EmailVerification::None;
        config.frontend.password_reset_url = Some(format!("{RESET_PREFIX}{{uid}}/{{token}}/"));
    })
    .await;
    let signed_up = signup(&app, "ada@example.com").await;
    let device = login(&app, "ada@example.com", PASSWORD).await;

    let requested = app
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    assert_detail(&requested, 200, "Password reset e-mail has been sent.");
    let (uid, token) = app.reset_link(RESET_PREFIX).await;
    let done = app
        .post(
            "password/reset/confirm/",
            json!({"uid": uid, "token": token, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
        )
        .await;
    assert_detail(&done, 200, "Password has been reset with the new password.");

    for refresh_token in [&signed_up.refresh, &device.refresh] {
        assert_token_not_valid(&refresh(&app, refresh_token).await, BLACKLISTED);
        assert_detail(&logout(&app, refresh_token).await, 401, BLACKLISTED);
    }
    let fresh = login(&app, "ada@example.com", NEW_PASSWORD).await;
    assert_eq!(refresh(&app, &fresh.refresh).await.status, 200);
}

async fn logout_needs_a_valid_live_refresh_token(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let pair = login_after_signup(&app, "ada@example.com").await;

    let missing = app.post("logout/", json!({})).await;
    assert_detail(
        &missing,
        401,
        "Refresh token was not included in request data.",
    );
    assert_detail(&logout(&app, "garbage").await, 401, INVALID);
    // An access token is not a refresh token; dj-rest-auth reports any such failure as invalid.
    assert_detail(&logout(&app, &pair.access).await, 401, INVALID);

    // Logging out with the Bearer header too is fine; the refresh token decides.
    let done = app
        .send(
            app.client
                .post(app.api("logout/"))
                .bearer_auth(&pair.access)
                .json(&json!({"refresh": pair.refresh})),
        )
        .await;
    assert_detail(&done, 200, LOGGED_OUT);
    assert_detail(&logout(&app, &pair.refresh).await, 401, BLACKLISTED);
    assert_token_not_valid(&refresh(&app, &pair.refresh).await, BLACKLISTED);
}

// ---------------------------------------------------------------------------------------------
// Cookies and CSRF
// ---------------------------------------------------------------------------------------------

async fn cookies_follow_dj_rest_auth_settings(backend: Backend) {
    let app = spawn(backend, |config| {
        cookies(config);
        config.jwt.refresh_cookie_path = "/auth/token/".into();
    })
    .await;

    // Registration honours the cookie settings too.
    let signed_up = signup(&app, "ada@example.com").await;
    assert_eq!(signed_up.refresh, "", "{}", signed_up.reply.text);
    assert_eq!(
        issued(&signed_up.reply, ACCESS_COOKIE).value,
        signed_up.access
    );
    assert_eq!(
        claims_of(&issued(&signed_up.reply, REFRESH_COOKIE).value)["token_type"],
        "refresh"
    );

    let pair = login(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(
        pair.refresh, "",
        "the HttpOnly refresh token stays out of the body"
    );
    let access_cookie = issued(&pair.reply, ACCESS_COOKIE);
    let refresh_cookie = issued(&pair.reply, REFRESH_COOKIE);
    assert_eq!(access_cookie.value, pair.access);
    let refresh_token = refresh_cookie.value.clone();
    assert_eq!(claims_of(&refresh_token)["token_type"], "refresh");
    for (cookie, path, token) in [
        (&access_cookie, "/", &pair.access),
        (&refresh_cookie, "/auth/token/", &refresh_token),
    ] {
        assert!(cookie.http_only(), "{cookie:?}");
        assert_eq!(cookie.same_site().as_deref(), Some("Lax"), "{cookie:?}");
        assert_eq!(cookie.path(), Some(path), "{cookie:?}");
        assert!(!cookie.secure(), "not Secure unless configured: {cookie:?}");
        assert!(
            cookie.domain().is_none(),
            "no Domain unless configured: {cookie:?}"
        );
        let expires = cookie.expires().expect("an Expires attribute");
        assert_close(
            expires,
            claims_of(token)["exp"].as_i64().unwrap(),
            &cookie.name,
        );
    }

    // user/ with nothing but the access cookie.
    let profile = app
        .send(with_cookies(
            app.client.get(app.api("user/")),
            &[(ACCESS_COOKIE, &pair.access)],
        ))
        .await;
    assert_eq!(profile.status, 200, "{}", profile.text);
    assert_eq!(profile.body["email"], "ada@example.com");
    let garbage = app
        .send(with_cookies(
            app.client.get(app.api("user/")),
            &[(ACCESS_COOKIE, "garbage")],
        ))
        .await;
    assert_bad_access(&garbage, INVALID);

    // token/refresh/ with nothing but the refresh cookie: rotates the cookie.
    let refreshed = app
        .send(with_cookies(
            app.client.post(app.api("token/refresh/")).json(&json!({})),
            &[(REFRESH_COOKIE, &refresh_token)],
        ))
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let new_access = refreshed.body["access"].as_str().unwrap().to_owned();
    assert_eq!(issued(&refreshed, ACCESS_COOKIE).value, new_access);
    let rotated = issued(&refreshed, REFRESH_COOKIE);
    assert_ne!(rotated.value, refresh_token, "a new refresh cookie");
    assert_eq!(claims_of(&rotated.value)["token_type"], "refresh");
    assert_eq!(rotated.path(), Some("/auth/token/"));
    assert!(rotated.http_only());
    let new_refresh = rotated.value.clone();

    // Neither in the body nor in a cookie: SimpleJWT-shaped refusal. A blank `refresh` is a
    // field error, as DRF's CharField (allow_blank=False) answers it.
    let none = app.post("token/refresh/", json!({})).await;
    assert_token_not_valid(&none, "No valid refresh token found.");
    let empty = app.post("token/refresh/", json!({"refresh": ""})).await;
    assert_eq!(empty.status, 400, "{}", empty.text);
    assert_eq!(
        empty.body,
        json!({"refresh": ["This field may not be blank."]})
    );

    // The rotated cookie works in turn.
    let again = app
        .send(with_cookies(
            app.client.post(app.api("token/refresh/")).json(&json!({})),
            &[(REFRESH_COOKIE, &new_refresh)],
        ))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
}

async fn logout_without_a_refresh_cookie_says_so(backend: Backend) {
    let app = spawn(backend, cookies).await;
    let missing = app.post("logout/", json!({})).await;
    assert_detail(
        &missing,
        401,
        "Refresh token was not included in cookie data.",
    );
}

async fn logout_reads_and_clears_the_cookies(backend: Backend) {
    let app = spawn(backend, |config| {
        cookies(config);
        config.jwt.refresh_cookie_path = "/auth/token/".into();
    })
    .await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    let refresh_token = issued(&pair.reply, REFRESH_COOKIE).value;

    // Logout reads the refresh cookie, revokes its family and clears both cookies.
    let logged_out = app
        .send(with_cookies(
            app.client.post(app.api("logout/")).json(&json!({})),
            &[(REFRESH_COOKIE, &refresh_token)],
        ))
        .await;
    assert_detail(&logged_out, 200, LOGGED_OUT);
    let cleared_access = issued(&logged_out, ACCESS_COOKIE);
    let cleared_refresh = issued(&logged_out, REFRESH_COOKIE);
    assert!(cleared_access.is_removal(), "{cleared_access:?}");
    assert!(cleared_refresh.is_removal(), "{cleared_refresh:?}");
    assert_eq!(cleared_access.path(), Some("/"));
    assert_eq!(
        cleared_refresh.path(),
        Some("/auth/token/"),
        "a cookie is only removed under its own path"
    );
    let after = app
        .send(with_cookies(
            app.client.post(app.api("token/refresh/")).json(&json!({})),
            &[(REFRESH_COOKIE, &refresh_token)],
        ))
        .await;
    assert_token_not_valid(&after, BLACKLISTED);
}

async fn cookie_domain_and_secure_are_honoured(backend: Backend) {
    let app = spawn(backend, |config| {
        cookies(config);
        config.jwt.cookie_secure = true;
        config.jwt.cookie_domain = Some("example.test".into());
    })
    .await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        let cookie = issued(&pair.reply, name);
        assert!(cookie.secure(), "{cookie:?}");
        assert!(cookie.http_only(), "{cookie:?}");
        assert_eq!(cookie.same_site().as_deref(), Some("Lax"), "{cookie:?}");
        assert_eq!(
            cookie.domain().map(|d| d.trim_start_matches('.')),
            Some("example.test"),
            "{cookie:?}"
        );
        assert_eq!(cookie.path(), Some("/"), "{cookie:?}");
    }
    // (The token in the body: this test is about the cookies' attributes.)
    let refresh_token = issued(&pair.reply, REFRESH_COOKIE).value;
    let logged_out = logout(&app, &refresh_token).await;
    assert_detail(&logged_out, 200, LOGGED_OUT);
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        let cookie = issued(&logged_out, name);
        assert!(cookie.is_removal(), "{cookie:?}");
        assert_eq!(
            cookie.domain().map(|d| d.trim_start_matches('.')),
            Some("example.test"),
            "a cookie is only removed under its own domain: {cookie:?}"
        );
    }
}

/// The spec's `token/refresh/` answer: `refresh` (and `refresh_expiration`) only "when not
/// HttpOnly". Whatever the exact shape, the refresh token itself must not reach the body.
async fn refresh_body_does_not_leak_the_httponly_refresh_token(backend: Backend) {
    let app = spawn(backend.clone(), cookies).await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    let refresh_token = issued(&pair.reply, REFRESH_COOKIE).value;

    let refreshed = app
        .send(with_cookies(
            app.client.post(app.api("token/refresh/")).json(&json!({})),
            &[(REFRESH_COOKIE, &refresh_token)],
        ))
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert!(
        refreshed.body.get("refresh").is_none_or(|r| r == ""),
        "the HttpOnly refresh token is in the body: {}",
        refreshed.text
    );
    let new_refresh = issued(&refreshed, REFRESH_COOKIE).value;
    assert!(
        !refreshed.text.contains(&new_refresh),
        "the new refresh token is in the body: {}",
        refreshed.text
    );

    // Not HttpOnly: the body carries it (dj-rest-auth with JWT_AUTH_HTTPONLY = False).
    let readable = spawn(backend, |config| {
        cookies(config);
        config.jwt.cookie_httponly = false;
    })
    .await;
    let pair = login_after_signup(&readable, "ada@example.com").await;
    let cookie = issued(&pair.reply, REFRESH_COOKIE);
    assert!(!cookie.http_only(), "{cookie:?}");
    assert_eq!(
        pair.refresh, cookie.value,
        "a readable cookie hides nothing"
    );
    let refreshed = refresh(&readable, &pair.refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        refreshed.body["refresh"].as_str(),
        Some(issued(&refreshed, REFRESH_COOKIE).value.as_str())
    );
}

/// The access cookie lives minutes, the refresh cookie a day: once only the refresh cookie is
/// left, a cross-site form must still not log the user out or rotate their tokens.
async fn csrf_guards_the_refresh_cookie_alone(backend: Backend) {
    let app = spawn(backend, |config| {
        cookies(config);
        config.jwt.cookie_use_csrf = true;
    })
    .await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    let refresh = issued(&pair.reply, REFRESH_COOKIE).value;
    let post = |path: &str| app.client.post(app.api(path)).json(&json!({}));
    let only_refresh = [(REFRESH_COOKIE, refresh.as_str())];

    let rotated = app
        .send(with_cookies(post("token/refresh/"), &only_refresh))
        .await;
    assert_detail(&rotated, 403, "CSRF Failed: CSRF cookie not set.");
    let logged_out = app
        .send(with_cookies(
            post("logout/"),
            &[
                (REFRESH_COOKIE, refresh.as_str()),
                ("csrftoken", CSRF_SECRET),
            ],
        ))
        .await;
    assert_detail(&logged_out, 403, "CSRF Failed: CSRF token missing.");
    assert!(
        issued_none(&logged_out),
        "a refused logout clears no cookie"
    );

    // The family is untouched, and the page that echoes the token gets through.
    let with_csrf = [
        (REFRESH_COOKIE, refresh.as_str()),
        ("csrftoken", CSRF_SECRET),
    ];
    let rotated = app
        .send(with_cookies(
            post("token/refresh/").header("X-CSRFToken", CSRF_SECRET),
            &with_csrf,
        ))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let next = issued(&rotated, REFRESH_COOKIE).value;
    let logged_out = app
        .send(with_cookies(
            post("logout/").header("X-CSRFToken", CSRF_SECRET),
            &[(REFRESH_COOKIE, next.as_str()), ("csrftoken", CSRF_SECRET)],
        ))
        .await;
    assert_eq!(logged_out.status, 200, "{}", logged_out.text);
}

/// Whether an answer sets none of the JWT cookies.
fn issued_none(reply: &Reply) -> bool {
    reply.headers.get_all("set-cookie").iter().all(|value| {
        let value = value.to_str().unwrap_or_default();
        !value.starts_with(ACCESS_COOKIE) && !value.starts_with(REFRESH_COOKIE)
    })
}

async fn csrf_guards_cookie_authenticated_unsafe_requests(backend: Backend) {
    let app = spawn(backend, |config| {
        cookies(config);
        config.jwt.cookie_use_csrf = true;
    })
    .await;
    let pair = login_after_signup(&app, "ada@example.com").await;
    let access = pair.access.as_str();
    let patch = || {
        app.client
            .patch(app.api("user/"))
            .json(&json!({"first_name": "Ada"}))
    };

    // Safe methods need no token.
    let read = app
        .send(with_cookies(
            app.client.get(app.api("user/")),
            &[(ACCESS_COOKIE, access)],
        ))
        .await;
    assert_eq!(read.status, 200, "{}", read.text);

    let no_cookie = app
        .send(with_cookies(patch(), &[(ACCESS_COOKIE, access)]))
        .await;
    assert_detail(&no_cookie, 403, "CSRF Failed: CSRF cookie not set.");

    let no_header = app
        .send(with_cookies(
            patch(),
            &[(ACCESS_COOKIE, access), ("csrftoken", CSRF_SECRET)],
        ))
        .await;
    assert_detail(&no_header, 403, "CSRF Failed: CSRF token missing.");

    let wrong = app
        .send(with_cookies(
            patch().header("X-CSRFToken", OTHER_CSRF_SECRET),
            &[(ACCESS_COOKIE, access), ("csrftoken", CSRF_SECRET)],
        ))
        .await;
    assert_detail(
        &wrong,
        403,
        "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect.",
    );
    let unchanged = me(&app, access).await;
    assert_eq!(
        unchanged.body["first_name"], "",
        "refused requests change nothing"
    );

    let passed = app
        .send(with_cookies(
            patch().header("X-CSRFToken", CSRF_SECRET),
            &[(ACCESS_COOKIE, access), ("csrftoken", CSRF_SECRET)],
        ))
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    assert_eq!(passed.body["first_name"], "Ada");

    // The Bearer header is not a cookie a cross-site form could send: no CSRF, even with the
    // access cookie present too.
    let bearer = app
        .send(
            app.client
                .patch(app.api("user/"))
                .bearer_auth(access)
                .json(&json!({"last_name": "Lovelace"})),
        )
        .await;
    assert_eq!(bearer.status, 200, "{}", bearer.text);
    let both = app
        .send(with_cookies(
            app.client
                .patch(app.api("user/"))
                .bearer_auth(access)
                .json(&json!({"last_name": "King"})),
            &[(ACCESS_COOKIE, access)],
        ))
        .await;
    assert_eq!(both.status, 200, "{}", both.text);
    assert_eq!(both.body["last_name"], "King");

    // Password change over the cookie is guarded the same way.
    let change = app
        .send(with_cookies(
            app.client
                .post(app.api("password/change/"))
                .json(&json!({"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})),
            &[(ACCESS_COOKIE, access)],
        ))
        .await;
    assert_detail(&change, 403, "CSRF Failed: CSRF cookie not set.");
    login(&app, "ada@example.com", PASSWORD).await;
}

async fn stale_cookies_never_block_login_or_registration(backend: Backend) {
    let app = spawn(backend, |config| {
        cookies(config);
        config.jwt.cookie_use_csrf = true;
    })
    .await;
    let first = signup(&app, "ada@example.com").await;
    let expired = with(
        &with(&claims_of(&first.access), "exp", json!(now() - 60)),
        "iat",
        json!(now() - 360),
    );
    let expired = sign(
        Algorithm::HS256,
        Some(&kid_of(&first.access)),
        &expired,
        &hs256(SECRET),
    );

    for (n, stale) in ["garbage", expired.as_str(), first.refresh.as_str()]
        .into_iter()
        .enumerate()
    {
        let cookies = [(ACCESS_COOKIE, stale), (REFRESH_COOKIE, stale)];
        let logged_in = app
            .send(with_cookies(
                app.client
                    .post(app.api("login/"))
                    .json(&json!({"email": "ada@example.com", "password": PASSWORD})),
                &cookies,
            ))
            .await;
        assert_eq!(
            logged_in.status, 200,
            "login with a stale cookie: {}",
            logged_in.text
        );
        let fresh = issued(&logged_in, ACCESS_COOKIE).value;
        assert_eq!(me(&app, &fresh).await.status, 200);

        let email = format!("new{n}@example.com");
        let registered = app
            .send(with_cookies(
                app.client
                    .post(app.api("registration/"))
                    .json(&json!({"email": email, "password1": PASSWORD, "password2": PASSWORD})),
                &cookies,
            ))
            .await;
        assert_eq!(
            registered.status, 201,
            "registration with a stale cookie: {}",
            registered.text
        );
    }
}

async fn missing_credentials_ask_for_a_bearer_token(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let pair = login_after_signup(&app, "ada@example.com").await;

    let anonymous = app.send(app.client.get(app.api("user/"))).await;
    assert_detail(&anonymous, 401, NOT_PROVIDED);
    assert_challenge(&anonymous);

    // Another scheme is not a JWT: as if nothing was presented (SimpleJWT's header types).
    let token_scheme = app
        .send(
            app.client
                .get(app.api("user/"))
                .header("Authorization", format!("Token {}", pair.access)),
        )
        .await;
    assert_detail(&token_scheme, 401, NOT_PROVIDED);
    assert_challenge(&token_scheme);

    let change = app
        .post(
            "password/change/",
            json!({"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
        )
        .await;
    assert_detail(&change, 401, NOT_PROVIDED);
    assert_challenge(&change);

    assert_bad_access(&me(&app, "garbage").await, INVALID);

    // The access cookie is not read when none is configured.
    let cookie_only = app
        .send(with_cookies(
            app.client.get(app.api("user/")),
            &[("jwt-access", &pair.access)],
        ))
        .await;
    assert_detail(&cookie_only, 401, NOT_PROVIDED);
}

// ---------------------------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------------------------

fn jwt_config() -> Config {
    let mut config = Config::default();
    config.auth.mode = AuthMode::Jwt;
    config
}

#[test]
fn openapi_document_declares_bearer_and_the_token_endpoints() {
    let spec = tessera::api::openapi_document(&jwt_config());
    let schemes = spec["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let bearer: Vec<&String> = schemes
        .iter()
        .filter(|(_, s)| {
            s["type"] == "http"
                && s["scheme"]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case("bearer"))
        })
        .map(|(name, _)| name)
        .collect();
    assert_eq!(bearer.len(), 1, "one bearer scheme: {schemes:?}");
    let bearer = bearer[0];
    assert!(
        !schemes
            .values()
            .any(|s| s["type"] == "apiKey" && s["in"] == "header"),
        "no `Authorization: Token` scheme in JWT mode: {schemes:?}"
    );

    let user_security = &spec["paths"]["/auth/user/"]["get"]["security"];
    assert!(
        user_security
            .as_array()
            .is_some_and(|reqs| reqs.iter().any(|r| r.get(bearer).is_some())),
        "user/ requires the bearer scheme: {user_security}"
    );

    let mut ids = BTreeSet::new();
    for path in [
        "/auth/token/verify/",
        "/auth/token/refresh/",
        "/auth/login/",
    ] {
        let operation = &spec["paths"][path]["post"];
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("POST {path} with an operationId: {operation}"));
        assert!(!id.is_empty());
        ids.insert(id.to_owned());
    }
    assert_eq!(ids.len(), 3, "distinct operationIds: {ids:?}");
    assert!(
        spec["paths"]["/auth/token/verify/"]["post"]
            .get("security")
            .is_none(),
        "token/verify/ needs no credentials"
    );

    // login/ answers the JWT triple.
    let content = spec["paths"]["/auth/login/"]["post"]["responses"]["200"]["content"]
        .as_object()
        .expect("login/ 200 has content");
    let (media, login_ok) = content.iter().next().expect("a media type");
    assert!(media.starts_with("application/json"), "{media}");
    let name = login_ok["schema"]["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or_else(|| panic!("a schema reference: {login_ok}"));
    // One of two shapes: the JWT triple, or the MFA step.
    let shapes: Vec<BTreeSet<String>> = spec["components"]["schemas"][name]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} is a oneOf"))
        .iter()
        .map(|shape| {
            let target = shape["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
            keys_of(&spec["components"]["schemas"][target]["properties"])
        })
        .collect();
    assert!(
        shapes.contains(&set_of(&[
            "access",
            "refresh",
            "user",
            "access_expiration",
            "refresh_expiration"
        ])),
        "{shapes:?}"
    );
    assert!(
        shapes.contains(&set_of(&["ephemeral_token", "mfa_required"])),
        "{shapes:?}"
    );

    // Token mode has none of this.
    let token_mode = tessera::api::openapi_document(&Config::default());
    assert!(token_mode["paths"].get("/auth/token/verify/").is_none());
    assert!(token_mode["paths"].get("/auth/token/refresh/").is_none());
}

async fn openapi_document_is_served_in_jwt_mode(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let served = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(served.body, tessera::api::openapi_document(&app.config));
    assert!(served.body["paths"].get("/auth/token/refresh/").is_some());
}

async fn verify_reads_the_cookie_when_the_body_has_no_token(backend: Backend) {
    let app = spawn(backend, cookies).await;
    let pair = signup(&app, "verify-cookie@example.com").await;
    let url = app.api("token/verify/");
    let by_cookie = app
        .send(
            with_cookies(app.client.post(&url), &[(ACCESS_COOKIE, &pair.access)]).json(&json!({})),
        )
        .await;
    assert_eq!(
        (by_cookie.status, &by_cookie.body),
        (200, &json!({})),
        "{}",
        by_cookie.text
    );
    let garbage = app
        .send(with_cookies(app.client.post(&url), &[(ACCESS_COOKIE, "not.a.jwt")]).json(&json!({})))
        .await;
    assert_token_not_valid(&garbage, INVALID);
    // The body wins over the cookie.
    let body_wins = app
        .send(
            with_cookies(app.client.post(&url), &[(ACCESS_COOKIE, &pair.access)])
                .json(&json!({"token": "not.a.jwt"})),
        )
        .await;
    assert_token_not_valid(&body_wins, INVALID);
    let neither = app.post("token/verify/", json!({})).await;
    assert_eq!(
        (neither.status, &neither.body),
        (400, &json!({"token": ["This field is required."]}))
    );
}
