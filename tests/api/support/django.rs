//! A real Django site's database, for `tessera import-django`: `django_site/build.py` runs the
//! real Django, django-allauth and dj-rest-auth (pinned, in a virtualenv installed once per
//! machine, see `tools`) to migrate a new SQLite or PostgreSQL database and fill it the way
//! those libraries do. So an import is tested against what a site really holds, not against
//! tables and hashes written from our reading of them.
//!
//! What it builds, read back from the database ([`DjangoFixture`]): users hashed by each of
//! Django's password hashers at their default costs (one PBKDF2 user at Django 3.2's 260,000
//! iterations, one without a usable password), one inactive, one staff superuser, one with a
//! non-ASCII password and names, a gap in the ids (a deleted user), allauth's email addresses
//! (verified or not, secondary ones), dj-rest-auth token logins, a signup through
//! `auth/registration/` confirmed by its mailed key, dj-rest-auth's MFA (`dj_rest_auth.mfa`)
//! activated and used through its endpoints, and allauth's MFA (`allauth.mfa`) through its API.

use std::process::Command;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Everything the builder installs, transitive packages included, pinned: changing one
/// rebuilds the virtualenv. allauth's `socialaccount` extra because dj-rest-auth's registration
/// views import it, its `mfa` extra because `allauth.mfa` imports fido2; pyotp is
/// dj-rest-auth's `with-mfa` extra.
pub const DJANGO: &[&str] = &[
    "Django==5.2.20",
    "django-allauth[socialaccount,mfa]==65.22.1",
    "dj-rest-auth==7.2.0",
    "djangorestframework==3.18.3",
    "pyotp==2.12.1",
    "argon2-cffi==25.1.0",
    "argon2-cffi-bindings==26.2.0",
    "bcrypt==5.0.0",
    "psycopg[binary]==3.3.9",
    "psycopg-binary==3.3.9",
    "asgiref==3.13.0",
    "sqlparse==0.6.1",
    "cffi==2.1.1",
    "pycparser==3.12",
    "typing_extensions==4.16.0",
    "requests==2.34.2",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
    "idna==3.21",
    "urllib3==2.8.0",
    "oauthlib==4.0.1",
    "PyJWT==2.15.1",
    "cryptography==51.0.1",
    "fido2==2.2.1",
    "qrcode==8.2",
];

const BUILD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/support/django_site/build.py"
);

/// What `build.py` built, as it reads back from the database, with what only the builder
/// knows (passwords, TOTP secrets, recovery codes).
#[derive(Deserialize, Debug)]
pub struct DjangoFixture {
    /// Every user in the database, by id.
    pub users: Vec<DjangoUser>,
    /// Ids that were taken and freed (a user created, then deleted).
    pub deleted_user_ids: Vec<i64>,
}

impl DjangoFixture {
    /// The user named `username`; panics when there is none.
    pub fn user(&self, username: &str) -> &DjangoUser {
        self.users
            .iter()
            .find(|user| user.username == username)
            .unwrap_or_else(|| panic!("the Django fixture has no user {username}"))
    }
}

/// One `auth_user` row and what hangs off it.
#[derive(Deserialize, Debug)]
pub struct DjangoUser {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// The password in the clear; `None` for an unusable one (`!…`).
    pub password: Option<String>,
    /// `auth_user.password` as stored.
    pub password_hash: String,
    /// Django's hasher name (`pbkdf2_sha256`, `argon2`, …); `None` for an unusable password.
    pub hasher: Option<String>,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub first_name: String,
    pub last_name: String,
    pub date_joined: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    /// allauth's `account_emailaddress` rows, in id order.
    pub emails: Vec<DjangoEmail>,
    /// The `authtoken_token` key (a dj-rest-auth token login), if any.
    pub token: Option<String>,
    /// The base32 TOTP secret the user's authenticator app holds.
    pub totp_secret: Option<String>,
    /// The recovery codes still usable, as the app that made them shows them.
    pub recovery_codes_unused: Option<Vec<String>>,
    /// The recovery codes already used (one each).
    pub recovery_codes_used: Option<Vec<String>>,
    /// The user's rows of `dj_rest_auth_mfa_authenticator` and `mfa_authenticator`.
    pub authenticators: Vec<DjangoAuthenticator>,
}

#[derive(Deserialize, Debug)]
pub struct DjangoEmail {
    pub email: String,
    pub verified: bool,
    pub primary: bool,
}

/// One authenticator row, its `data` column as stored.
#[derive(Deserialize, Debug)]
pub struct DjangoAuthenticator {
    /// The row's JSON (`secret`, or `seed` and `used_mask`).
    pub data: serde_json::Value,
}

/// Builds a Django database at `url` (`sqlite:///ABSOLUTE/PATH.db`, a file not there yet, or
/// `postgres://…/DBNAME`, an empty database) with the real Django. Blocking (the first call on
/// a machine installs the virtualenv, then a build takes seconds): call from `spawn_blocking`.
pub fn build_database(url: &str) -> DjangoFixture {
    let python = super::tools::python_venv("django", DJANGO);
    let output = Command::new(&python)
        .arg(BUILD)
        .args(["--database", url])
        .output()
        .unwrap_or_else(|err| panic!("{}: {err}", python.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "build.py --database {url} failed ({}):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "build.py printed no fixture ({err}):\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
