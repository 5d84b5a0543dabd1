//! `tessera import-django`: users, their email addresses, their dj-rest-auth tokens and their
//! MFA authenticators, from a Django database into Tessera's, so that people log in with the
//! passwords they have and clients holding a token stay logged in.
//!
//! - Batches of [`BATCH`] users, each in one transaction (a dry run holds them all in one
//!   transaction that is rolled back, so its counts are the real run's).
//! - Idempotent: a user whose address Tessera already has is "already present" and left as it
//!   is (it may have logged in since, and its hash been upgraded); a token whose digest Tessera
//!   has is too.
//! - Each imported user gets an `account_imported` entry in the audit trail; that is also how a
//!   later run tells users it brought from users who signed up in Tessera (which it will not
//!   mix with unless told to: `merge`).
//! - Nothing of a password hash, token key or MFA secret reaches the summary or the logs.

pub mod source;

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use serde::Serialize;
use serde_json::Value;

use self::source::{DjangoAuthenticator, DjangoDatabase, DjangoUser, MfaApp};
use super::accounts::Accounts;
use super::audit::{Caller, Entry, Event};
use super::email_address::normalize_email;
use super::error::{Error, Result};
use super::mfa::{recovery_codes, totp};
use super::sealing::Purpose;
use crate::store::{self, issue::Origin, users::UserId};

/// Users per transaction.
pub const BATCH: u64 = 500;

#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Do everything, report it, write nothing.
    pub dry_run: bool,
    /// Add to a Tessera database that has users of its own.
    pub merge: bool,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub users: Counts,
    /// Users whose Django id is taken in Tessera, and the id they got instead.
    pub new_ids: Vec<NewId>,
    /// Imported users by how their password will be checked: Django's hasher name,
    /// `unusable`, `above_cap` (over `password_hashing.max_imported_cost`) or `not_checked`.
    pub passwords: BTreeMap<&'static str, u64>,
    pub email_addresses: Counts,
    pub tokens: Counts,
    pub mfa_authenticators: Counts,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub imported: u64,
    pub already_present: u64,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    /// The Django user it belongs to.
    pub django_id: i64,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct NewId {
    pub django_id: i64,
    pub id: i64,
}

impl Summary {
    /// Whether the run found nothing to bring.
    pub fn nothing_new(&self) -> bool {
        self.users.imported == 0
            && self.email_addresses.imported == 0
            && self.tokens.imported == 0
            && self.mfa_authenticators.imported == 0
    }
}

impl Counts {
    fn skip(&mut self, django_id: i64, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            django_id,
            reason: reason.into(),
        });
    }
}

/// The Django user's rows in the batch being imported.
struct Related<'a> {
    addresses: Vec<&'a source::DjangoEmailAddress>,
    tokens: Vec<&'a source::DjangoToken>,
    authenticators: Vec<&'a DjangoAuthenticator>,
}

impl Accounts {
    /// Imports `source` into this service's database. `progress` hears the number of users
    /// read so far, of `total` (given once, first).
    pub async fn import_django(
        &self,
        source: &DjangoDatabase,
        options: ImportOptions,
        mut progress: impl FnMut(Progress),
    ) -> Result<Summary> {
        let event = Event::AccountImported.name();
        let own_users = store::users::count_without_audit_event(&self.db, event).await?;
        if own_users > 0 && !options.merge {
            return Err(Error::Internal(format!(
                "the Tessera database already has {own_users} user(s) that no import brought; \
                 run again with --merge to add the Django users to them"
            )));
        }
        progress(Progress::Total(source.count_users().await?));
        let mut summary = Summary {
            dry_run: options.dry_run,
            ..Default::default()
        };
        // A dry run does every batch inside one outer transaction, rolled back at the end.
        let outer = match options.dry_run {
            true => Some(store::begin_write(&self.db).await?),
            false => None,
        };
        let mut after = 0;
        let mut read = 0;
        loop {
            let users = source.users_after(after, BATCH).await?;
            let Some(last) = users.last() else { break };
            after = last.id;
            read += users.len() as u64;
            let batch = match &outer {
                Some(outer) => outer.begin().await?,
                None => store::begin_write(&self.db).await?,
            };
            self.import_batch(&batch, source, &users, &mut summary)
                .await?;
            batch.commit().await?;
            progress(Progress::Read(read));
        }
        if let Some(outer) = outer {
            outer.rollback().await?;
        }
        Ok(summary)
    }

    async fn import_batch(
        &self,
        txn: &DatabaseTransaction,
        source: &DjangoDatabase,
        users: &[DjangoUser],
        summary: &mut Summary,
    ) -> Result<()> {
        let ids: Vec<i64> = users.iter().map(|user| user.id).collect();
        let addresses = source.email_addresses(&ids).await?;
        let tokens = source.tokens(&ids).await?;
        let authenticators = source.authenticators(&ids).await?;
        let caller = Caller::new(None, Some("tessera import-django"));
        for user in users {
            let related = Related {
                addresses: addresses.iter().filter(|a| a.user_id == user.id).collect(),
                tokens: tokens.iter().filter(|t| t.user_id == user.id).collect(),
                authenticators: authenticators
                    .iter()
                    .filter(|a| a.user_id == user.id)
                    .collect(),
            };
            let Some(id) = self.import_user(txn, user, &related, summary).await? else {
                continue;
            };
            self.import_addresses(txn, user, id, &related, summary)
                .await?;
            // Keys live on as DRF's did, unless Tessera's keys expire: then from the import.
            let expires_at = self.token_expiry(Utc::now());
            import_tokens(txn, user.id, id, &related, expires_at, summary).await?;
            self.import_authenticators(txn, user.id, id, &related, summary)
                .await?;
            self.audit
                .record_in(txn, &caller, Entry::success(Event::AccountImported, id))
                .await?;
        }
        store::users::move_id_sequence_past_ids(txn).await?;
        Ok(())
    }

    /// The user row; `None` when it is already here or cannot be brought (counted either way).
    async fn import_user(
        &self,
        txn: &DatabaseTransaction,
        user: &DjangoUser,
        related: &Related<'_>,
        summary: &mut Summary,
    ) -> Result<Option<UserId>> {
        // Tessera's users.email is the primary address; allauth's primary row says which one
        // that is when it differs from auth_user.email.
        let primary = related
            .addresses
            .iter()
            .find(|a| a.primary)
            .map_or(user.email.as_str(), |a| a.email.as_str());
        let email = normalize_email(primary);
        if email.is_empty() || !email.contains('@') {
            summary.users.skip(user.id, "no email address");
            return Ok(None);
        }
        if store::users::find_by_email(txn, &email).await?.is_some() {
            summary.users.already_present += 1;
            return Ok(None);
        }
        if user.username.is_empty() {
            summary.users.skip(user.id, "no username");
            return Ok(None);
        }
        if store::users::username_taken(txn, &user.username, None).await? {
            summary.users.skip(
                user.id,
                format!(
                    "the username {:?} is taken (usernames are unique regardless of case)",
                    user.username
                ),
            );
            return Ok(None);
        }
        let wanted = UserId(user.id);
        let id_free = store::users::find_by_id(txn, wanted).await?.is_none();
        // Django's unusable password ("!" and random characters) is Tessera's empty hash.
        let password_hash = match user.password.starts_with('!') {
            true => "",
            false => user.password.as_str(),
        };
        let inner = txn.begin().await?;
        let written = store::users::insert_imported(
            &inner,
            store::users::ImportedUser {
                id: id_free.then_some(wanted),
                email: &email,
                username: &user.username,
                first_name: &user.first_name,
                last_name: &user.last_name,
                password_hash,
                is_active: user.is_active,
                is_staff: user.is_staff,
                is_superuser: user.is_superuser,
                date_joined: user.date_joined,
                last_login: user.last_login,
            },
        )
        .await;
        let inserted = settle(inner, written).await?;
        let Some(row) = inserted else {
            summary
                .users
                .skip(user.id, "the address or username is taken");
            return Ok(None);
        };
        if !id_free {
            summary.new_ids.push(NewId {
                django_id: user.id,
                id: row.id.0,
            });
        }
        summary.users.imported += 1;
        *summary
            .passwords
            .entry(self.hasher.imported_kind(password_hash))
            .or_default() += 1;
        Ok(Some(row.id))
    }

    /// The user's addresses, the primary one first, with allauth's verified flags (unverified
    /// without allauth). An address another account has verified stays with that account; as
    /// the primary one it comes in unverified.
    async fn import_addresses(
        &self,
        txn: &DatabaseTransaction,
        user: &DjangoUser,
        id: UserId,
        related: &Related<'_>,
        summary: &mut Summary,
    ) -> Result<()> {
        let Some(primary) = store::users::find_by_id(txn, id).await?.map(|u| u.email) else {
            return Ok(());
        };
        let verified = |email: &str| {
            related
                .addresses
                .iter()
                .any(|a| a.verified && normalize_email(&a.email) == email)
        };
        let mut wanted = vec![(primary.clone(), verified(&primary), true)];
        for address in &related.addresses {
            let email = normalize_email(&address.email);
            if wanted.iter().all(|(seen, _, _)| *seen != email) {
                wanted.push((email.clone(), verified(&email), false));
            }
        }
        let counts = &mut summary.email_addresses;
        for (email, verified, primary) in wanted {
            if insert_address(txn, id, &email, verified, primary, user.date_joined).await? {
                counts.imported += 1;
                continue;
            }
            counts.skip(user.id, format!("{email} is verified by another account"));
            if primary && insert_address(txn, id, &email, false, true, user.date_joined).await? {
                counts.imported += 1;
            }
        }
        Ok(())
    }

    /// TOTP secrets and recovery-code seeds, sealed as Tessera seals its own.
    async fn import_authenticators(
        &self,
        txn: &DatabaseTransaction,
        django_id: i64,
        id: UserId,
        related: &Related<'_>,
        summary: &mut Summary,
    ) -> Result<()> {
        let counts = &mut summary.mfa_authenticators;
        let mut kinds_done: Vec<&str> = Vec::new();
        for authenticator in &related.authenticators {
            let what = format!("{:?} {}", authenticator.app, authenticator.kind);
            let (kind, purpose, secret, used_mask) = match readable(authenticator) {
                Ok(read) => read,
                Err(reason) => {
                    counts.skip(django_id, format!("{what}: {reason}"));
                    continue;
                }
            };
            if kinds_done.contains(&kind) {
                counts.skip(django_id, format!("{what}: the user has one already"));
                continue;
            }
            kinds_done.push(kind);
            let sealed = self.sealer()?.seal(purpose, &secret);
            store::mfa::insert_imported(
                txn,
                id,
                kind,
                &sealed,
                used_mask,
                authenticator.created_at,
                authenticator.last_used_at,
            )
            .await?;
            counts.imported += 1;
        }
        Ok(())
    }
}

/// An authenticator's kind, what its secret is sealed as, the secret and the used-code mask;
/// or why it cannot be brought.
fn readable(
    authenticator: &DjangoAuthenticator,
) -> std::result::Result<(&'static str, Purpose, Vec<u8>, i64), &'static str> {
    let data: Value =
        serde_json::from_str(&authenticator.data).map_err(|_| "its data is not JSON")?;
    match authenticator.kind.as_str() {
        "totp" => {
            let stored = data["secret"].as_str().ok_or("no secret in its data")?;
            // dj-rest-auth signs the secret with Django's signer: `BASE32:signature`.
            let base32 = match authenticator.app {
                MfaApp::DjRestAuth => stored.rsplit_once(':').map_or(stored, |(s, _)| s),
                MfaApp::Allauth => stored,
            };
            let secret = totp::Secret::decode(base32)
                .ok_or("its secret is not base32 (encrypted by a custom allauth adapter?)")?;
            Ok((store::mfa::TOTP, Purpose::TotpSecret, secret.0, 0))
        }
        "recovery_codes" if data.get("migrated_codes").is_some() => {
            Err("its codes were migrated into allauth as a list, which Tessera does not keep")
        }
        "recovery_codes" => {
            let text = data["seed"].as_str().ok_or("no seed in its data")?;
            let bytes = hex::decode(text)
                .map_err(|_| "its seed is not hex (encrypted by a custom allauth adapter?)")?;
            // dj-rest-auth's codes come from the seed's bytes, as Tessera's own; allauth's from
            // its hex text, another way (recovery_codes::ALLAUTH_SEED).
            let seed = match authenticator.app {
                MfaApp::DjRestAuth => bytes,
                MfaApp::Allauth => [recovery_codes::ALLAUTH_SEED, text.as_bytes()].concat(),
            };
            let used_mask = data["used_mask"].as_i64().unwrap_or(0);
            Ok((
                store::mfa::RECOVERY_CODES,
                Purpose::RecoveryCodeSeed,
                seed,
                used_mask,
            ))
        }
        _ => Err("Tessera has no such authenticator"),
    }
}

/// dj-rest-auth's token keys, stored as Tessera stores keys (a digest): the clients holding
/// them stay logged in.
async fn import_tokens(
    txn: &DatabaseTransaction,
    django_id: i64,
    id: UserId,
    related: &Related<'_>,
    expires_at: Option<chrono::DateTime<Utc>>,
    summary: &mut Summary,
) -> Result<()> {
    for token in &related.tokens {
        if token.key.is_empty() {
            summary.tokens.skip(django_id, "an empty key");
            continue;
        }
        let digest = crate::secrets::digest(&token.key);
        let inner = txn.begin().await?;
        let written = store::tokens::insert(
            &inner,
            id,
            &digest,
            token.created,
            expires_at,
            &Origin::default(),
        )
        .await;
        let inserted = settle(inner, written).await?;
        match inserted {
            Some(_) => summary.tokens.imported += 1,
            None => summary.tokens.already_present += 1,
        }
    }
    Ok(())
}

/// Adds an address in a savepoint; `false` when a unique rule refused it.
async fn insert_address(
    txn: &DatabaseTransaction,
    id: UserId,
    email: &str,
    verified: bool,
    primary: bool,
    at: chrono::DateTime<Utc>,
) -> Result<bool> {
    let inner = txn.begin().await?;
    let written =
        store::users::insert_imported_address(&inner, id, email, verified, primary, at).await;
    Ok(settle(inner, written).await?.is_some())
}

/// Ends the savepoint `inner` after one write: committed, or rolled back when the write broke a
/// unique constraint (`None`; the transaction goes on, where PostgreSQL would otherwise refuse
/// every later statement).
async fn settle<T>(
    inner: DatabaseTransaction,
    written: std::result::Result<T, DbErr>,
) -> Result<Option<T>> {
    match written {
        Ok(value) => {
            inner.commit().await?;
            Ok(Some(value))
        }
        Err(err) if store::is_unique_violation(&err) => {
            inner.rollback().await?;
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// What `import_django` reports while it works.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Total(u64),
    Read(u64),
}
