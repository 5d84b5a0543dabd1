//! Reading a Django database (PostgreSQL or SQLite) as Django, DRF, allauth and dj-rest-auth
//! left it. Plain SQL over sea-orm's raw statements: the tables are Django's, not Tessera's
//! entities. Every column is read in a form both backends give the same way (ids cast to
//! BIGINT, JSON cast to text); datetimes differ (`timestamptz` on PostgreSQL, naive UTC text on
//! SQLite) and are read per backend.

use chrono::{DateTime, NaiveDateTime, Utc};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    QueryResult, Statement,
};

/// allauth's and dj-rest-auth's MFA tables: one shape, two names.
pub const MFA_TABLES: [(&str, MfaApp); 2] = [
    ("mfa_authenticator", MfaApp::Allauth),
    ("dj_rest_auth_mfa_authenticator", MfaApp::DjRestAuth),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaApp {
    Allauth,
    DjRestAuth,
}

/// An open Django database and which of the tables Tessera reads it has.
pub struct DjangoDatabase {
    db: DatabaseConnection,
    user_table: String,
    pub has_email_addresses: bool,
    pub has_tokens: bool,
    pub mfa_tables: Vec<(&'static str, MfaApp)>,
}

/// `auth_user` (or a custom user model with its columns): the password is the stored hash.
pub struct DjangoUser {
    pub id: i64,
    pub password: String,
    pub last_login: Option<DateTime<Utc>>,
    pub is_superuser: bool,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub is_staff: bool,
    pub is_active: bool,
    pub date_joined: DateTime<Utc>,
}

impl std::fmt::Debug for DjangoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DjangoUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// allauth's `account_emailaddress`.
pub struct DjangoEmailAddress {
    pub user_id: i64,
    pub email: String,
    pub verified: bool,
    pub primary: bool,
}

/// DRF's `authtoken_token`: the key a dj-rest-auth client holds.
pub struct DjangoToken {
    pub user_id: i64,
    pub key: String,
    pub created: DateTime<Utc>,
}

/// An MFA `Authenticator` row; `data` is its JSON (secrets inside).
pub struct DjangoAuthenticator {
    pub app: MfaApp,
    pub user_id: i64,
    pub kind: String,
    pub data: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl DjangoDatabase {
    /// Opens `url` (`postgres://...`, or `sqlite:///ABSOLUTE/PATH` as dj-database-url writes
    /// it; SQLite is opened read-only) and finds which tables are there. `user_table` is
    /// `auth_user` unless the project has a custom user model.
    pub async fn open(url: &str, user_table: &str) -> Result<Self, SourceError> {
        if user_table.is_empty()
            || !user_table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(SourceError::Invalid(format!(
                "{user_table:?} is not a table name (letters, digits and _ only)"
            )));
        }
        let url = if url.starts_with("sqlite:") {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}mode=ro")
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.to_owned()
        } else {
            return Err(SourceError::Invalid(
                "--from takes postgres://... or sqlite:///ABSOLUTE/PATH".into(),
            ));
        };
        let mut options = ConnectOptions::new(url);
        options.max_connections(2).sqlx_logging(false);
        let db = Database::connect(options)
            .await
            .map_err(SourceError::Open)?;
        let mut source = Self {
            db,
            user_table: user_table.to_owned(),
            has_email_addresses: false,
            has_tokens: false,
            mfa_tables: Vec::new(),
        };
        if !source.has_table(user_table).await {
            return Err(SourceError::Invalid(format!(
                "the database has no table {user_table} (a custom user model? name its table \
                 with --user-table)"
            )));
        }
        source.has_email_addresses = source.has_table("account_emailaddress").await;
        source.has_tokens = source.has_table("authtoken_token").await;
        for (table, app) in MFA_TABLES {
            if source.has_table(table).await {
                source.mfa_tables.push((table, app));
            }
        }
        Ok(source)
    }

    async fn has_table(&self, table: &str) -> bool {
        self.db
            .query_one_raw(self.statement(format!("SELECT 1 FROM {table} WHERE 1 = 0")))
            .await
            .is_ok()
    }

    fn statement(&self, sql: String) -> Statement {
        Statement::from_string(self.db.get_database_backend(), sql)
    }

    pub async fn count_users(&self) -> Result<u64, DbErr> {
        let row = self
            .db
            .query_one_raw(self.statement(format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {}",
                self.user_table
            )))
            .await?;
        Ok(row.map_or(Ok(0), |row| row.try_get::<i64>("", "n"))? as u64)
    }

    /// Up to `limit` users with ids above `after`, by id.
    pub async fn users_after(&self, after: i64, limit: u64) -> Result<Vec<DjangoUser>, DbErr> {
        let sql = format!(
            "SELECT CAST(id AS BIGINT) AS id, password, last_login, is_superuser, username, \
             first_name, last_name, email, is_staff, is_active, date_joined \
             FROM {} WHERE id > {after} ORDER BY id LIMIT {limit}",
            self.user_table
        );
        let rows = self.db.query_all_raw(self.statement(sql)).await?;
        rows.iter()
            .map(|row| {
                Ok(DjangoUser {
                    id: row.try_get("", "id")?,
                    password: row.try_get("", "password")?,
                    last_login: self.datetime(row, "last_login")?,
                    is_superuser: row.try_get("", "is_superuser")?,
                    username: row.try_get("", "username")?,
                    first_name: row.try_get("", "first_name")?,
                    last_name: row.try_get("", "last_name")?,
                    email: row.try_get("", "email")?,
                    is_staff: row.try_get("", "is_staff")?,
                    is_active: row.try_get("", "is_active")?,
                    date_joined: self.required_datetime(row, "date_joined")?,
                })
            })
            .collect()
    }

    pub async fn email_addresses(&self, users: &[i64]) -> Result<Vec<DjangoEmailAddress>, DbErr> {
        if !self.has_email_addresses || users.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT CAST(user_id AS BIGINT) AS user_id, email, verified, \"primary\" AS is_primary \
             FROM account_emailaddress WHERE user_id IN ({}) ORDER BY id",
            id_list(users)
        );
        let rows = self.db.query_all_raw(self.statement(sql)).await?;
        rows.iter()
            .map(|row| {
                Ok(DjangoEmailAddress {
                    user_id: row.try_get("", "user_id")?,
                    email: row.try_get("", "email")?,
                    verified: row.try_get("", "verified")?,
                    primary: row.try_get("", "is_primary")?,
                })
            })
            .collect()
    }

    pub async fn tokens(&self, users: &[i64]) -> Result<Vec<DjangoToken>, DbErr> {
        if !self.has_tokens || users.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT CAST(user_id AS BIGINT) AS user_id, key, created FROM authtoken_token \
             WHERE user_id IN ({})",
            id_list(users)
        );
        let rows = self.db.query_all_raw(self.statement(sql)).await?;
        rows.iter()
            .map(|row| {
                Ok(DjangoToken {
                    user_id: row.try_get("", "user_id")?,
                    key: row.try_get("", "key")?,
                    created: self.required_datetime(row, "created")?,
                })
            })
            .collect()
    }

    pub async fn authenticators(&self, users: &[i64]) -> Result<Vec<DjangoAuthenticator>, DbErr> {
        let mut found = Vec::new();
        if users.is_empty() {
            return Ok(found);
        }
        for &(table, app) in &self.mfa_tables {
            let sql = format!(
                "SELECT CAST(user_id AS BIGINT) AS user_id, type, CAST(data AS TEXT) AS data, \
                 created_at, last_used_at FROM {table} WHERE user_id IN ({}) ORDER BY id",
                id_list(users)
            );
            for row in self.db.query_all_raw(self.statement(sql)).await? {
                found.push(DjangoAuthenticator {
                    app,
                    user_id: row.try_get("", "user_id")?,
                    kind: row.try_get("", "type")?,
                    data: row.try_get("", "data")?,
                    created_at: self.required_datetime(&row, "created_at")?,
                    last_used_at: self.datetime(&row, "last_used_at")?,
                });
            }
        }
        Ok(found)
    }

    /// A datetime column: `timestamptz` on PostgreSQL; on SQLite the text Django writes
    /// (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC under `USE_TZ = True`).
    fn datetime(&self, row: &QueryResult, column: &str) -> Result<Option<DateTime<Utc>>, DbErr> {
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            return row.try_get("", column);
        }
        let Some(text) = row.try_get::<Option<String>>("", column)? else {
            return Ok(None);
        };
        let text = text.trim_end_matches("+00:00");
        ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .map(|naive| Some(naive.and_utc()))
            .ok_or_else(|| DbErr::Type(format!("{column}: {text:?} is not a Django datetime")))
    }

    fn required_datetime(&self, row: &QueryResult, column: &str) -> Result<DateTime<Utc>, DbErr> {
        self.datetime(row, column)?
            .ok_or_else(|| DbErr::Type(format!("{column} is NULL")))
    }
}

/// Ids read from the database itself, so formatting them into the SQL cannot inject anything.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot open the Django database: {0}")]
    Open(DbErr),
}
