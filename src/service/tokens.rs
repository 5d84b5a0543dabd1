//! Token mode's credential: opaque keys, one per login, stored only as SHA-256 digests. Also
//! logout of the request's own credential (a token, or a session opened by `session_login`).

use chrono::{Duration, Utc};

use crate::messages::*;
use crate::secrets;
use crate::service::accounts::{Accounts, Credential, Principal};
use crate::service::audit::{Caller, Entry, Event};
use crate::service::error::{Error, Result};
use crate::store::{self, users::UserId};

impl Accounts {
    /// A new opaque token for the user (token mode): 40 hex characters, shown once, stored
    /// only as a digest.
    pub async fn issue_token(&self, user_id: UserId) -> Result<String> {
        let key = secrets::new_token_key();
        let now = Utc::now();
        let ttl = self.config.auth.token_ttl_seconds;
        let expires_at =
            (ttl > 0).then(|| now + Duration::seconds(ttl.min(i64::MAX as u64) as i64));
        store::tokens::insert(&self.db, user_id, &secrets::digest(&key), now, expires_at).await?;
        Ok(key)
    }

    /// Resolves `Authorization: Token <key>` to its user.
    pub async fn authenticate_token(&self, key: &str) -> Result<Principal> {
        if !secrets::looks_like_token_key(key) {
            return Err(Error::Unauthenticated(INVALID_TOKEN));
        }
        let found = store::tokens::find_live(&self.db, &secrets::digest(key), Utc::now()).await?;
        let Some((token, user)) = found else {
            return Err(Error::Unauthenticated(INVALID_TOKEN));
        };
        if !user.is_active {
            return Err(Error::Unauthenticated(USER_INACTIVE));
        }
        Ok(Principal {
            user: user.into(),
            credential: Credential::Token(token.id),
        })
    }

    /// Ends the presented credential only; the user's other devices stay logged in.
    /// Ends the request's token or session (a JWT ends with its refresh family instead).
    pub async fn logout(&self, principal: &Principal, caller: &Caller) -> Result<()> {
        let ended = match principal.credential {
            Credential::Token(id) => {
                store::tokens::delete(&self.db, id).await?;
                "token"
            }
            Credential::Session(id) => {
                store::sessions::delete(&self.db, id).await?;
                "session"
            }
            Credential::Jwt { .. } => return Ok(()),
        };
        self.audit
            .record(
                caller,
                Entry::success(Event::Logout, principal.user.id).because(ended),
            )
            .await
    }
}
