//! JWT mode: access + refresh tokens as SimpleJWT issues them, with refresh rotation and
//! reuse detection over refresh-token families.
//!
//! Access tokens are stateless and short-lived (5 minutes by default): any service holding the
//! public key can verify them. Refresh tokens are tracked by `jti`: each login starts a family,
//! each refresh retires the presented token and adds its successor, and a retired token
//! presented again revokes the whole family (it was copied). Both tokens carry the family id
//! as `sid`, so a password change can spare the caller's own family.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::Expiry;
use moka::sync::Cache;

use crate::messages::USER_INACTIVE;
use crate::service::accounts::Accounts;
use crate::service::audit::{Caller, Entry, Event};
use crate::service::credential_cache::{CredentialKey, Verified};
use crate::service::error::{Error, Result};
use crate::service::jwt::keys::{Claims, Issued, JwtKeys, JwtRejection, TokenType};
use crate::service::principal::{Credential, Principal, User};
use crate::service::revocations::Revoked;
use crate::store;
use crate::store::refresh_tokens::FamilyId;
use crate::store::users::UserId;

/// A new access + refresh pair for a user.
pub struct TokenPair {
    pub access: Issued,
    pub refresh: Issued,
    pub user: User,
}

/// The answer to a refresh: a new access token, and a new refresh token when rotating.
pub struct Refreshed {
    pub access: Issued,
    pub refresh: Option<Issued>,
}

/// JWT mode's credentials: the keys, and the refresh families kept in the database. Exists
/// only in JWT mode, so nothing else can reach for keys that are not configured.
#[derive(Clone)]
pub struct JwtSessions {
    accounts: Accounts,
    keys: JwtKeys,
    /// Access tokens whose signature and claims were verified, until they expire: checking a
    /// signature again costs more than the rest of an authenticated request. Keys only change
    /// with a restart, so a verdict holds until `exp`. What the token stands for (its family,
    /// its user) is still looked up in the credential cache on every request. `None` when
    /// `credential_cache.capacity = 0`.
    verified_access: Option<Cache<Arc<str>, Arc<Claims>>>,
}

/// A verified access token is remembered until its `exp`.
struct UntilExp;

impl Expiry<Arc<str>, Arc<Claims>> for UntilExp {
    fn expire_after_create(
        &self,
        _token: &Arc<str>,
        claims: &Arc<Claims>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = claims.exp - Utc::now().timestamp();
        Some(Duration::from_secs(left.max(0) as u64))
    }
}

impl JwtSessions {
    /// Loads the keys `jwt.*` names; a bad key is a startup error naming the setting.
    pub fn from_config(accounts: Accounts) -> Result<Self, String> {
        let config = accounts.config();
        if config.jwt.algorithm == crate::config::JwtAlgorithm::RS256 {
            tracing::warn!(
                "jwt.algorithm = RS256: the RSA implementation has a known timing side \
                 channel (RUSTSEC-2023-0071, no fixed release); prefer EdDSA"
            );
        }
        let keys = JwtKeys::from_config(config)?;
        let capacity = config.credential_cache.capacity;
        let verified_access = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp)
                .build()
        });
        Ok(Self {
            accounts,
            keys,
            verified_access,
        })
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The public keys that verify issued JWTs (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    /// Starts a refresh family for the user and returns its first pair.
    pub async fn start(&self, user: User, caller: &Caller) -> Result<TokenPair> {
        let keys = &self.keys;
        let now = Utc::now();
        let txn = store::begin_write(&self.accounts.db).await?;
        let family =
            store::refresh_tokens::start_family(&txn, user.id, now, &caller.into()).await?;
        let refresh = issue(keys, TokenType::Refresh, user.id, family, now)?;
        store::refresh_tokens::add(&txn, family, &refresh.claims.jti, now, refresh.expires_at)
            .await?;
        txn.commit().await?;
        let access = issue(keys, TokenType::Access, user.id, family, now)?;
        Ok(TokenPair {
            access,
            refresh,
            user,
        })
    }

    /// Resolves an access token to its user. The token must still belong to a live refresh
    /// family (logout, a password change or reset, and reuse detection end it); one without a
    /// family must be newer than its user's last such event. Answered from the credential
    /// cache when it can, so a valid token usually costs no query.
    pub async fn authenticate(&self, token: &str, client: Option<IpAddr>) -> Result<Principal> {
        let claims = self.verified_access(token)?;
        let Ok(user_id) = claims.user_id.parse::<UserId>() else {
            return Err(Error::Unauthenticated(USER_INACTIVE));
        };
        let db = &self.accounts.db;
        let cache = self.accounts.revocations.cache();
        let family = family_of(&claims);
        let found = match family {
            Some(family) => {
                let load = async {
                    let found = store::refresh_tokens::find_live_family(db, family).await?;
                    let last_used = found.as_ref().and_then(|(family, _)| family.last_used_at);
                    verified_user(
                        found.map(|(_, user)| user),
                        user_id,
                        Some(family),
                        last_used,
                    )
                };
                cache
                    .authenticate(CredentialKey::JwtFamily(family), client, load)
                    .await?
            }
            None => {
                let issued_at = DateTime::from_timestamp(claims.iat, 0).unwrap_or_default();
                if cache
                    .credentials_ended_at(user_id)
                    .is_some_and(|ended| issued_at < ended)
                {
                    return Err(Error::TokenRejected(JwtRejection::Invalid));
                }
                let load = async {
                    let user = store::users::find_by_id(db, user_id).await?;
                    verified_user(user, user_id, None, None)
                };
                cache
                    .authenticate(CredentialKey::JwtUser(user_id), client, load)
                    .await?
            }
        };
        match found {
            Some(cached) if cached.principal.user.id == user_id => {
                self.accounts.record_use(&cached).await;
                Ok(cached.principal.clone())
            }
            _ => Err(Error::TokenRejected(JwtRejection::Invalid)),
        }
    }

    /// The claims of a valid access token: remembered, or checked now. A remembered one is
    /// held to its expiry as a fresh check would (no leeway).
    fn verified_access(&self, token: &str) -> Result<Arc<Claims>> {
        let Some(verified) = &self.verified_access else {
            return Ok(Arc::new(self.decode_access(token)?));
        };
        if let Some(claims) = verified.get(token) {
            if claims.exp > Utc::now().timestamp() {
                return Ok(claims);
            }
            return Err(Error::TokenRejected(JwtRejection::Expired));
        }
        let claims = Arc::new(self.decode_access(token)?);
        verified.insert(Arc::from(token), claims.clone());
        Ok(claims)
    }

    fn decode_access(&self, token: &str) -> Result<Claims> {
        self.keys
            .decode(token, TokenType::Access)
            .map_err(Error::TokenRejected)
    }

    /// `token/verify/`: any valid token of either type; a refresh token of a revoked family
    /// is "blacklisted".
    pub async fn verify(&self, token: &str) -> Result<()> {
        let keys = &self.keys;
        let claims = match keys.decode(token, TokenType::Access) {
            Ok(claims) => claims,
            Err(JwtRejection::WrongType) => keys
                .decode(token, TokenType::Refresh)
                .map_err(Error::TokenRejected)?,
            Err(err) => return Err(Error::TokenRejected(err)),
        };
        if claims.token_type == "refresh" {
            let found = store::refresh_tokens::find(&self.accounts.db, &claims.jti).await?;
            if found.is_none_or(|f| f.family.revoked_at.is_some()) {
                return Err(Error::TokenRejected(JwtRejection::Blacklisted));
            }
        }
        Ok(())
    }

    /// `token/refresh/`: a new access token, and with rotation a new refresh token in place of
    /// the presented one. Presenting a retired refresh token revokes its family.
    pub async fn refresh(&self, token: &str, caller: &Caller) -> Result<Refreshed> {
        let keys = &self.keys;
        let claims = keys
            .decode(token, TokenType::Refresh)
            .map_err(Error::TokenRejected)?;
        let now = Utc::now();
        let txn = store::begin_write(&self.accounts.db).await?;
        let Some(found) = store::refresh_tokens::find(&txn, &claims.jti).await? else {
            return Err(Error::TokenRejected(JwtRejection::Blacklisted));
        };
        if found.family.revoked_at.is_some() {
            return Err(Error::TokenRejected(JwtRejection::Blacklisted));
        }
        let user_id = found.family.user_id;
        let family = found.family.id;
        if !store::users::find_by_id(&txn, user_id)
            .await?
            .is_some_and(|u| u.is_active)
        {
            return Err(Error::TokenRejected(JwtRejection::Invalid));
        }
        let rotate = self.accounts.config.jwt.rotate_refresh;
        if rotate && !store::refresh_tokens::retire(&txn, &claims.jti, now).await? {
            // Already retired: this copy was used before (or a concurrent refresh won). Either
            // way someone holds a token they should not: end the family.
            store::refresh_tokens::revoke_family(&txn, family, now, "refresh token reused").await?;
            let revoked = (self.accounts.revocations)
                .record(&txn, user_id, Revoked::Credentials)
                .await?;
            let entry = Entry::blocked(Event::RefreshTokenReuse, "family_revoked", Some(user_id));
            self.accounts.audit.record_in(&txn, caller, entry).await?;
            txn.commit().await?;
            revoked.apply();
            tracing::warn!(
                user_id = user_id.0,
                family = family.0,
                "refresh token reuse detected; family revoked"
            );
            return Err(Error::TokenRejected(JwtRejection::Blacklisted));
        }
        let refresh = match rotate {
            true => {
                let next = issue(keys, TokenType::Refresh, user_id, family, now)?;
                store::refresh_tokens::add(&txn, family, &next.claims.jti, now, next.expires_at)
                    .await?;
                Some(next)
            }
            false => None,
        };
        let used = store::credentials::CredentialRow::RefreshFamily(family);
        store::credentials::touch(&txn, used, now).await?;
        txn.commit().await?;
        let access = issue(keys, TokenType::Access, user_id, family, now)?;
        Ok(Refreshed { access, refresh })
    }

    /// JWT logout: revokes the refresh token's family.
    pub async fn logout(&self, refresh: &str, caller: &Caller) -> Result<()> {
        let claims = self
            .keys
            .decode(refresh, TokenType::Refresh)
            .map_err(Error::TokenRejected)?;
        let Some(found) = store::refresh_tokens::find(&self.accounts.db, &claims.jti).await? else {
            return Err(Error::TokenRejected(JwtRejection::Invalid));
        };
        if found.family.revoked_at.is_some() {
            return Err(Error::TokenRejected(JwtRejection::Blacklisted));
        }
        let user_id = found.family.user_id;
        let txn = store::begin_write(&self.accounts.db).await?;
        store::refresh_tokens::revoke_family(&txn, found.family.id, Utc::now(), "logout").await?;
        let revoked = (self.accounts.revocations)
            .record(&txn, user_id, Revoked::Credentials)
            .await?;
        let entry = Entry::success(Event::Logout, user_id).because("refresh_family");
        self.accounts.audit.record_in(&txn, caller, entry).await?;
        txn.commit().await?;
        revoked.apply();
        Ok(())
    }
}

fn issue(
    keys: &JwtKeys,
    token_type: TokenType,
    user_id: UserId,
    family: FamilyId,
    now: DateTime<Utc>,
) -> Result<Issued> {
    keys.issue(token_type, user_id.0, Some(family.to_string()), now)
        .map_err(Error::Internal)
}

/// What the database said of an access token's user: unknown or inactive users end in 401
/// (SimpleJWT: "User not found" / "User is inactive").
fn verified_user(
    user: Option<entity::user::Model>,
    user_id: UserId,
    family: Option<FamilyId>,
    last_used: Option<DateTime<Utc>>,
) -> Result<Option<Verified>> {
    match user {
        // A family of another user: a signed but wrong pairing. Not remembered as unknown, so
        // it cannot shut out the family's real tokens.
        Some(user) if user.id != user_id => Err(Error::TokenRejected(JwtRejection::Invalid)),
        Some(user) if user.is_active => Ok(Some(Verified {
            principal: Principal {
                user: user.into(),
                credential: Credential::Jwt { family },
            },
            expires_at: None,
            idle: None,
            last_used,
        })),
        // The family was revoked (or deleted with its user): the token died with it.
        None if family.is_some() => Ok(None),
        _ => Err(Error::Unauthenticated(USER_INACTIVE)),
    }
}

fn family_of(claims: &Claims) -> Option<FamilyId> {
    claims.sid.as_deref().and_then(|sid| sid.parse().ok())
}
