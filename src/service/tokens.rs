//! Token mode's credential: opaque keys, one per login, stored only as SHA-256 digests. Also
//! logout of the request's own credential (a token, or a session opened by `session_login`).

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use crate::messages::*;
use crate::secrets;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::credential_cache::{CredentialKey, Verified};
use crate::service::error::{Error, Result};
use crate::service::principal::{Credential, Principal};
use crate::service::revocations::Revoked;
use crate::store::{self, users::UserId};

impl Accounts {
    /// A new opaque token for the user (token mode): 40 hex characters, shown once, stored
    /// only as a digest.
    pub async fn issue_token(&self, user_id: UserId, caller: &Caller) -> Result<String> {
        let key = secrets::new_token_key();
        let now = Utc::now();
        let expires_at = self.token_expiry(now);
        let origin = caller.into();
        let digest = secrets::digest(&key);
        store::tokens::insert(&self.db, user_id, &digest, now, expires_at, &origin).await?;
        Ok(key)
    }

    /// When a key issued (or imported) at `from` expires: `auth.token_ttl_seconds` later, or
    /// never when that is 0.
    pub(super) fn token_expiry(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let ttl = self.config.auth.token_ttl_seconds;
        (ttl > 0).then(|| from + Duration::seconds(ttl.min(i64::MAX as u64) as i64))
    }

    /// Resolves `Authorization: Token <key>` to its user (from the credential cache when it
    /// can). `client` is the caller's address, for the limit on failed checks.
    pub async fn authenticate_token(&self, key: &str, client: Option<IpAddr>) -> Result<Principal> {
        if !secrets::looks_like_token_key(key) {
            return Err(Error::Unauthenticated(INVALID_TOKEN));
        }
        let digest = secrets::digest(key);
        let load = async {
            let Some((token, user)) =
                store::tokens::find_live(&self.db, &digest, Utc::now()).await?
            else {
                return Ok(None);
            };
            if !user.is_active {
                return Err(Error::Unauthenticated(USER_INACTIVE));
            }
            Ok(Some(Verified {
                principal: Principal {
                    user: user.into(),
                    credential: Credential::Token(token.id),
                },
                expires_at: token.expires_at,
                idle: None,
                last_used: token.last_used_at,
            }))
        };
        let cache = self.revocations.cache();
        match cache
            .authenticate(CredentialKey::Token(digest.clone()), client, load)
            .await?
        {
            Some(cached) => {
                self.record_use(&cached).await;
                Ok(cached.principal.clone())
            }
            None => Err(Error::Unauthenticated(INVALID_TOKEN)),
        }
    }

    /// Ends the presented credential only; the user's other devices stay logged in.
    /// Ends the request's token or session (a JWT ends with its refresh family instead).
    pub async fn logout(&self, principal: &Principal, caller: &Caller) -> Result<()> {
        let user_id = principal.user.id;
        let txn = store::begin_write(&self.db).await?;
        let ended = match principal.credential {
            Credential::Token(id) => {
                store::tokens::delete(&txn, id).await?;
                "token"
            }
            Credential::Session(id) => {
                store::sessions::delete(&txn, id).await?;
                "session"
            }
            Credential::Jwt { .. } => return Ok(()),
        };
        let revoked = self
            .revocations
            .record(&txn, user_id, Revoked::Credentials)
            .await?;
        let entry = Entry::success(Event::Logout, user_id).because(ended);
        self.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        revoked.apply();
        Ok(())
    }
}
