//! Social login (issue 13): signing in, linking and unlinking through identity providers,
//! and the browser redirect flow. The providers' protocols are in `social/`; this file holds
//! Tessera's rules: which account a provider's user gets, when an address may link
//! accounts, and what may not be unlinked.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::config::EmailVerification;
use crate::messages::*;
use crate::secrets;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::error::{Error, FieldErrors, Result};
use crate::service::login::LoginStep;
use crate::service::principal::{Principal, User};
use crate::service::rate_limits::Action;
use crate::service::registration::{Confirmation, Origin};
use crate::service::social::{Identity, SocialClient, SocialError};
use crate::store::{self, users::UserId};
use entity::{SocialAccountId, social_account};

/// How long a redirect flow may take, from the redirect to the callback.
const STATE_LIFETIME_MINUTES: i64 = 10;
/// How long a finished flow's `login_code` can be traded.
const LOGIN_CODE_LIFETIME_SECONDS: i64 = 60;

/// What a client proves a provider's user with (`social/{id}/`, `connect/`).
pub enum SocialProof {
    /// An authorization code, traded here with the client secret (and the frontend's PKCE
    /// verifier, when it used PKCE).
    Code {
        code: SecretString,
        code_verifier: Option<SecretString>,
    },
    /// An id_token the frontend got itself (OpenID Connect providers only).
    IdToken(SecretString),
    /// An access token, checked by asking the provider's own user API who it belongs to.
    AccessToken(SecretString),
}

/// A user's link to a provider's account (`socialaccounts/`).
pub type SocialAccount = social_account::Model;

/// Where a redirect flow sends the browser, and the `state` the browser must bring back.
pub struct RedirectStart {
    pub authorization_url: String,
    pub state: SecretString,
}

/// How a redirect flow ended, once its `state` was found good.
pub enum CallbackOutcome {
    /// The provider vouched for `user`: the caller completes the login (or its MFA step).
    SignedIn { next: String, user: User },
    /// The user refused at the provider, or the provider's answer was refused: the browser
    /// goes back to `next` with the reason.
    Failed {
        next: String,
        error: &'static str,
        description: String,
    },
}

impl Accounts {
    fn social_client(&self, provider: &str) -> Result<Arc<SocialClient>> {
        self.social.get(provider).ok_or(Error::NotFound)
    }

    /// The URL the redirect flow returns to: Tessera's own callback.
    pub fn social_callback_url(&self, provider: &str) -> String {
        let base = self.config.public_base();
        let prefix = self.config.server.prefix.trim_end_matches('/');
        format!("{base}{prefix}/social/{provider}/callback/")
    }

    /// The `redirect_uri` of a code a frontend brings: `callback_url`, or Tessera's callback.
    fn code_redirect_uri(&self, client: &SocialClient) -> String {
        match &client.config.callback_url {
            Some(url) => url.clone(),
            None => self.social_callback_url(client.id()),
        }
    }

    /// Who the provider says the proof's user is; a refusal is logged with its reason and
    /// answered with dj-rest-auth's message.
    async fn identity(
        &self,
        client: &SocialClient,
        proof: SocialProof,
        redirect_uri: &str,
        nonce: Option<&str>,
    ) -> Result<Identity> {
        use secrecy::ExposeSecret;
        let found = match &proof {
            SocialProof::Code {
                code,
                code_verifier,
            } => {
                client
                    .identity_from_code(
                        code.expose_secret(),
                        code_verifier.as_ref().map(|v| v.expose_secret()),
                        redirect_uri,
                        nonce,
                    )
                    .await
            }
            SocialProof::IdToken(token) => {
                client
                    .identity_from_id_token(token.expose_secret(), nonce)
                    .await
            }
            SocialProof::AccessToken(token) => client.identity_from_access_token(token).await,
        };
        found.map_err(|err| {
            tracing::info!(provider = %client.id(), reason = %err, "social login refused");
            FieldErrors::non_field(match err {
                SocialError::Exchange(_) => SOCIAL_EXCHANGE_FAILED,
                _ => SOCIAL_INCORRECT_VALUE,
            })
        })
    }

    /// `social/{id}/`: the proof's user, signed in (or waiting for the second factor).
    /// `None`: the request brought no proof.
    pub async fn social_login(
        &self,
        provider: &str,
        proof: Option<SocialProof>,
        caller: &Caller,
    ) -> Result<LoginStep> {
        let client = self.social_client(provider)?;
        let proof = proof.ok_or_else(|| FieldErrors::non_field(SOCIAL_INPUT_MISSING))?;
        self.limit_by_ip(Action::Login, caller).await?;
        let redirect_uri = self.code_redirect_uri(&client);
        let identity = self.identity(&client, proof, &redirect_uri, None).await?;
        let user = self.sign_in_with(provider, &identity, caller).await?;
        self.after_first_factor(user).await
    }

    /// A user the provider vouched for: the second step when they have MFA, else done.
    pub async fn after_first_factor(&self, user: User) -> Result<LoginStep> {
        if self.mfa_enabled(user.id).await? {
            self.metrics.record_login("mfa_required", None);
            return Ok(LoginStep::SecondFactor(
                self.start_second_factor(&user).await?,
            ));
        }
        Ok(LoginStep::Done(user))
    }

    /// The account a provider's user signs in to: the one linked to it; else, with
    /// `social.email_authentication` and an address the provider vouches for, the account
    /// holding that address (linked now); else a new account. An address another account
    /// holds is never linked otherwise: the sign-in is refused and nothing changes.
    async fn sign_in_with(
        &self,
        provider: &str,
        identity: &Identity,
        caller: &Caller,
    ) -> Result<User> {
        let now = Utc::now();
        let refuse = |reason, user_id| Entry::failure(Event::SocialLogin, reason, user_id);
        if let Some(link) = store::social::find(&self.db, provider, &identity.uid).await? {
            let user = store::users::find_by_id(&self.db, link.user_id)
                .await?
                .ok_or(Error::Internal("a social account without its user".into()))?;
            if !user.is_active {
                self.audit
                    .record(caller, refuse("inactive", Some(user.id)))
                    .await?;
                return Err(FieldErrors::non_field(BAD_CREDENTIALS));
            }
            if self.held_back_for_confirmation(&user).await? {
                self.audit
                    .record(caller, refuse("email_not_verified", Some(user.id)))
                    .await?;
                return Err(FieldErrors::non_field(EMAIL_NOT_VERIFIED));
            }
            let txn = store::begin_write(&self.db).await?;
            store::social::record_login(&txn, link.id, &identity.extra_data(), now).await?;
            store::users::record_login(&txn, user.id, now).await?;
            self.audit
                .record_in(&txn, caller, Entry::success(Event::SocialLogin, user.id))
                .await?;
            txn.commit().await?;
            return Ok(user.into());
        }
        let Some(email) = identity.email.as_deref() else {
            self.audit.record(caller, refuse("no_email", None)).await?;
            return Err(FieldErrors::non_field(SOCIAL_NO_EMAIL));
        };
        if let Some(owner) = store::users::find_owner_of_email(&self.db, email, None).await? {
            if !(self.config.social.email_authentication && identity.email_verified) {
                self.audit
                    .record(caller, refuse("email_taken", Some(owner.id)))
                    .await?;
                return Err(FieldErrors::non_field(EMAIL_TAKEN));
            }
            if !owner.is_active {
                self.audit
                    .record(caller, refuse("inactive", Some(owner.id)))
                    .await?;
                return Err(FieldErrors::non_field(BAD_CREDENTIALS));
            }
            return self.link_by_email(provider, identity, owner, caller).await;
        }
        self.limit_by_ip(Action::Signup, caller).await?;
        let origin = Origin::Social {
            caller,
            confirmation: Confirmation::as_configured(&self.config),
            provider,
            identity,
        };
        let user = self.insert_user(email, None, "", origin).await?;
        let mandatory = self.config.account.email_verification == EmailVerification::Mandatory;
        if mandatory && !identity.email_verified {
            // The confirmation mail is on its way; the next sign-in after it gets in.
            return Err(FieldErrors::non_field(EMAIL_NOT_VERIFIED));
        }
        Ok(user)
    }

    /// Links the provider's account to `owner`, who holds the address the provider vouches
    /// for. When the owner had not confirmed that address, whoever set the account up may
    /// not own the address (an account registered in advance by someone else, waiting for
    /// its victim): the account is taken back. Its password, credentials, reset links,
    /// authenticators, other provider links and other addresses end; the vouched-for address
    /// (its primary one) is confirmed, and only the provider's sign-in gets in. (allauth only
    /// removes the password; whatever else the squatter set up would still get in.)
    async fn link_by_email(
        &self,
        provider: &str,
        identity: &Identity,
        owner: entity::user::Model,
        caller: &Caller,
    ) -> Result<User> {
        let now = Utc::now();
        let email = identity.email.as_deref().unwrap_or_default();
        let txn = store::begin_write(&self.db).await?;
        let address = store::email_addresses::find_of_user(&txn, owner.id, email).await?;
        let mut revoked = None;
        if let Some(address) = address.filter(|a| !a.verified) {
            store::users::set_password_hash(&txn, owner.id, "").await?;
            revoked = Some(
                self.end_every_credential(&txn, owner.id, "email_linked")
                    .await?,
            );
            store::password_resets::delete_for_user(&txn, owner.id).await?;
            store::mfa::remove_all(&txn, owner.id).await?;
            store::social::delete_all_for_user(&txn, owner.id).await?;
            store::email_addresses::delete_all_but(&txn, owner.id, address.id).await?;
            // An owner found by an address it has not confirmed holds it as its primary
            // one (`find_owner_of_email`): it stays primary, now confirmed.
            store::email_addresses::mark_verified(&txn, address.id).await?;
        }
        let inserted = store::social::insert(
            &txn,
            owner.id,
            provider,
            &identity.uid,
            &identity.extra_data(),
            now,
        )
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if store::is_unique_violation(&err) => {
                // A concurrent sign-in linked it first; this one is refused, nothing changed.
                txn.rollback().await?;
                return Err(FieldErrors::non_field(SOCIAL_ACCOUNT_TAKEN));
            }
            Err(err) => return Err(err.into()),
        }
        store::users::record_login(&txn, owner.id, now).await?;
        let entry = Entry::success(Event::SocialLogin, owner.id).because("email_link");
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        if let Some(revoked) = revoked {
            revoked.apply();
        }
        Ok(owner.into())
    }

    /// `social/{id}/connect/`: links the proof's provider account to the caller. Guarded by
    /// a recent proof of the password, as adding a way into the account should be.
    pub async fn connect_social(
        &self,
        principal: &Principal,
        provider: &str,
        proof: Option<SocialProof>,
        caller: &Caller,
    ) -> Result<()> {
        let client = self.social_client(provider)?;
        let proof = proof.ok_or_else(|| FieldErrors::non_field(SOCIAL_INPUT_MISSING))?;
        self.require_recent_password(principal).await?;
        self.limit_by_ip(Action::Login, caller).await?;
        let user_id = principal.user.id;
        let redirect_uri = self.code_redirect_uri(&client);
        let identity = self.identity(&client, proof, &redirect_uri, None).await?;
        let now = Utc::now();
        let refused = |reason| Entry::failure(Event::SocialAccountConnected, reason, Some(user_id));
        if let Some(link) = store::social::find(&self.db, provider, &identity.uid).await? {
            if link.user_id != user_id {
                self.audit.record(caller, refused("account_taken")).await?;
                return Err(FieldErrors::non_field(SOCIAL_ACCOUNT_TAKEN));
            }
            store::social::record_login(&self.db, link.id, &identity.extra_data(), now).await?;
            return Ok(());
        }
        let txn = store::begin_write(&self.db).await?;
        match store::social::insert(
            &txn,
            user_id,
            provider,
            &identity.uid,
            &identity.extra_data(),
            now,
        )
        .await
        {
            Ok(_) => {}
            Err(err) if store::is_unique_violation(&err) => {
                txn.rollback().await?;
                self.audit.record(caller, refused("account_taken")).await?;
                return Err(FieldErrors::non_field(SOCIAL_ACCOUNT_TAKEN));
            }
            Err(err) => return Err(err.into()),
        }
        let entry = Entry::success(Event::SocialAccountConnected, user_id);
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        Ok(())
    }

    /// `socialaccounts/`: the user's links, oldest first.
    pub async fn social_accounts(&self, user_id: UserId) -> Result<Vec<SocialAccount>> {
        Ok(store::social::list_for_user(&self.db, user_id).await?)
    }

    /// `socialaccounts/{id}/disconnect/`: unlinks one of the user's provider accounts,
    /// unless it is their last way in (no usable password and no other link).
    pub async fn disconnect_social(
        &self,
        user_id: UserId,
        id: SocialAccountId,
        caller: &Caller,
    ) -> Result<()> {
        let txn = store::begin_write(&self.db).await?;
        let user = store::users::lock_by_id(&txn, user_id)
            .await?
            .ok_or(Error::NotAuthenticated)?;
        let links = store::social::list_for_user(&txn, user_id).await?;
        if !links.iter().any(|link| link.id == id) {
            return Err(Error::NotFound);
        }
        if user.password_hash.is_empty() && links.len() == 1 {
            let entry = Entry::failure(
                Event::SocialAccountDisconnected,
                "last_login_method",
                Some(user_id),
            );
            self.audit.record_in(&txn, caller, entry).await?;
            txn.commit().await?;
            return Err(Error::BadRequest(SOCIAL_NO_PASSWORD));
        }
        store::social::delete(&txn, user_id, id).await?;
        let entry = Entry::success(Event::SocialAccountDisconnected, user_id);
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        Ok(())
    }

    /// `social/{id}/redirect/`: starts a redirect flow back to `next` (an allowed origin's
    /// URL). The `state` (kept by digest), `nonce` and PKCE verifier stay server-side for
    /// ten minutes; the state also goes to the browser (a cookie), which must bring it back.
    pub async fn start_social_redirect(
        &self,
        provider: &str,
        next: Option<&str>,
        caller: &Caller,
    ) -> Result<RedirectStart> {
        let client = self.social_client(provider)?;
        let Some(next) = next.filter(|next| !next.is_empty()) else {
            return Err(FieldErrors::single("next", REQUIRED));
        };
        if !self.redirect_allowed(next) {
            return Err(FieldErrors::single("next", SOCIAL_NEXT_NOT_ALLOWED));
        }
        self.limit_by_ip(Action::Login, caller).await?;
        let authorization_endpoint = client.authorization_endpoint().await.map_err(|err| {
            tracing::warn!(provider, reason = %err, "social provider unavailable");
            Error::Unavailable
        })?;
        let state = secrets::random_hex(32);
        let nonce = secrets::random_hex(16);
        let verifier = secrets::random_hex(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let now = Utc::now();
        store::social::insert_state(
            &self.db,
            store::social::NewState {
                digest: &secrets::digest(&state),
                provider,
                nonce: &nonce,
                code_verifier: &verifier,
                next_url: next,
                now,
                expires_at: now + Duration::minutes(STATE_LIFETIME_MINUTES),
            },
        )
        .await?;
        let mut url = url::Url::parse(&authorization_endpoint).map_err(|_| {
            Error::Internal(format!("{provider}: authorization endpoint is no URL"))
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.config.client_id)
            .append_pair("redirect_uri", &self.social_callback_url(provider))
            .append_pair("scope", &client.scope())
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(RedirectStart {
            authorization_url: url.into(),
            state: state.into(),
        })
    }

    /// Whether `next` is a URL on one of `social.allowed_redirect_origins`.
    fn redirect_allowed(&self, next: &str) -> bool {
        let Ok(url) = url::Url::parse(next) else {
            return false;
        };
        let origin = url.origin().ascii_serialization();
        self.config
            .social
            .allowed_redirect_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/') == origin)
    }

    /// `social/{id}/callback/`: the provider sent the browser back. The `state` must be the
    /// one this browser started (`cookie_state`), live and unused; it is spent either way.
    /// Then the code is traded (with the flow's PKCE verifier) and the id_token must carry
    /// the flow's nonce.
    pub async fn finish_social_redirect(
        &self,
        provider: &str,
        callback: CallbackInput,
        caller: &Caller,
    ) -> Result<CallbackOutcome> {
        use secrecy::ExposeSecret;
        let client = self.social_client(provider)?;
        let incorrect = || FieldErrors::non_field(SOCIAL_INCORRECT_VALUE);
        let (Some(state), Some(cookie_state)) = (&callback.state, &callback.cookie_state) else {
            return Err(incorrect());
        };
        let same_browser: bool = subtle::ConstantTimeEq::ct_eq(
            state.expose_secret().as_bytes(),
            cookie_state.expose_secret().as_bytes(),
        )
        .into();
        if !same_browser {
            return Err(incorrect());
        }
        let flow = store::social::take_state(
            &self.db,
            &secrets::digest(state.expose_secret()),
            Utc::now(),
        )
        .await?;
        let Some(flow) = flow.filter(|flow| flow.provider == provider) else {
            return Err(incorrect());
        };
        let next = flow.next_url;
        let failed = |error, description: &str| CallbackOutcome::Failed {
            next: next.clone(),
            error,
            description: description.to_owned(),
        };
        if let Some(error) = &callback.error {
            tracing::info!(provider, error = %error, "the provider sent the user back without a code");
            return Ok(failed("access_denied", SOCIAL_EXCHANGE_FAILED));
        }
        let Some(code) = callback.code else {
            return Ok(failed("invalid_request", SOCIAL_INPUT_MISSING));
        };
        let proof = SocialProof::Code {
            code,
            code_verifier: Some(flow.code_verifier.into()),
        };
        let redirect_uri = self.social_callback_url(provider);
        let signed_in = async {
            let identity = self
                .identity(&client, proof, &redirect_uri, Some(&flow.nonce))
                .await?;
            self.sign_in_with(provider, &identity, caller).await
        };
        match signed_in.await {
            Ok(user) => Ok(CallbackOutcome::SignedIn {
                next: next.clone(),
                user,
            }),
            Err(Error::Invalid(errors)) => {
                let message = errors
                    .iter()
                    .flat_map(|(_, messages)| messages.iter())
                    .next()
                    .cloned()
                    .unwrap_or_else(|| SOCIAL_INCORRECT_VALUE.into());
                Ok(failed("login_failed", &message))
            }
            Err(err) => Err(err),
        }
    }

    /// A finished redirect flow's single-use `login_code`, good for a minute.
    pub async fn issue_social_login_code(&self, user: &User, provider: &str) -> Result<String> {
        let code = secrets::random_hex(32);
        let now = Utc::now();
        store::social::insert_login_code(
            &self.db,
            &secrets::digest(&code),
            user.id,
            provider,
            now,
            now + Duration::seconds(LOGIN_CODE_LIFETIME_SECONDS),
        )
        .await?;
        Ok(code)
    }

    /// `social/exchange/`: a `login_code` for the login it stands for (spent either way).
    pub async fn exchange_social_login_code(
        &self,
        login_code: &str,
        caller: &Caller,
    ) -> Result<LoginStep> {
        self.limit_by_ip(Action::Login, caller).await?;
        let taken =
            store::social::take_login_code(&self.db, &secrets::digest(login_code), Utc::now())
                .await?;
        let Some(taken) = taken else {
            return Err(FieldErrors::single("login_code", SOCIAL_INCORRECT_VALUE));
        };
        let user = store::users::find_by_id(&self.db, taken.user_id)
            .await?
            .filter(|user| user.is_active)
            .ok_or_else(|| FieldErrors::single("login_code", SOCIAL_INCORRECT_VALUE))?;
        self.after_first_factor(user.into()).await
    }
}

/// What the provider's redirect back brought, and the browser's own copy of the state.
pub struct CallbackInput {
    pub code: Option<SecretString>,
    pub state: Option<SecretString>,
    pub error: Option<String>,
    pub cookie_state: Option<SecretString>,
}
