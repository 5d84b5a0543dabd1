//! What the workspace's tests share across its crates: tests that need PostgreSQL, and the
//! throwaway database each of them runs on.
//!
//! A test that needs PostgreSQL is written inside [`postgres_test!`]. When
//! `TESSERA_TEST_DATABASE_URL` is unset (or empty) as the tests are built, the macro marks it
//! `#[ignore]`, so the summary counts it as ignored, with the reason, instead of counting a test
//! that did nothing as passed. Set it to a server whose user may create databases, e.g.
//! `TESSERA_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test --workspace`,
//! and they run: `build.rs` watches the variable, so cargo rebuilds this crate and the test
//! binaries that use it (not the crates under test).
//!
//! Under `CI=true` a missing variable is an error, not a skip: see [`assert_postgres_under_ci`].
//!
//! Why a crate and a macro rather than a `cfg` the tested crates read: a `cargo::rustc-cfg`
//! from a build script reaches only the targets of its own package, and in `tessera` it would
//! rebuild the library whenever the variable changed. Here the choice is made once, when this
//! crate is compiled, and the macro carries it into every test that uses it.

use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::{ConnectionTrait, Database};

/// The variable naming the PostgreSQL server the tests create their databases on.
pub const DATABASE_URL_VARIABLE: &str = "TESSERA_TEST_DATABASE_URL";

/// Whether the tests were built to run on PostgreSQL (`TESSERA_TEST_DATABASE_URL` was set).
pub const POSTGRES_TESTS: bool = cfg!(tessera_postgres_tests);

/// Tests (items) that run on PostgreSQL: as written when `TESSERA_TEST_DATABASE_URL` was set
/// at build time, otherwise each marked `#[ignore]` with the way to run it.
///
/// ```text
/// test_support::postgres_test! {
///     #[tokio::test]
///     async fn postgres_roundtrip() {
///         let database = test_support::PostgresDatabase::create().await;
///         // ... connect to database.url() ...
///     }
/// }
/// ```
#[cfg(tessera_postgres_tests)]
#[macro_export]
macro_rules! postgres_test {
    ($($test:item)*) => {
        $($test)*
    };
}

/// See the other definition: this one is used when `TESSERA_TEST_DATABASE_URL` was unset.
#[cfg(not(tessera_postgres_tests))]
#[macro_export]
macro_rules! postgres_test {
    ($($test:item)*) => {
        $(
            // A literal: libtest shows it as the reason (a macro call here would be lost).
            #[ignore = "PostgreSQL twin: set TESSERA_TEST_DATABASE_URL to run it (CONTRIBUTING.md, Tests)"]
            $test
        )*
    };
}

/// `TESSERA_TEST_DATABASE_URL`, the server's administrative URL; panics saying how to set it.
pub fn admin_url() -> String {
    std::env::var(DATABASE_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "this test needs PostgreSQL, but {DATABASE_URL_VARIABLE} is not set; set it, \
                 e.g. {DATABASE_URL_VARIABLE}=postgres://postgres@127.0.0.1:5432/test"
            )
        })
}

/// Fails when `CI` is `true` (or `1`) and the PostgreSQL tests do not run: CI must not lose
/// PostgreSQL coverage silently. Called by one test of the workspace (`tests/api/main.rs`).
pub fn assert_postgres_under_ci() {
    let ci = std::env::var("CI").is_ok_and(|ci| ci.eq_ignore_ascii_case("true") || ci == "1");
    if !ci {
        return;
    }
    let set = std::env::var(DATABASE_URL_VARIABLE).is_ok_and(|url| !url.is_empty());
    assert!(
        POSTGRES_TESTS && set,
        "CI is set, but {DATABASE_URL_VARIABLE} {}, so every PostgreSQL twin was ignored. \
         Point it at a PostgreSQL server whose user may create databases, e.g. \
         {DATABASE_URL_VARIABLE}=postgres://postgres@127.0.0.1:5432/test cargo test --workspace \
         (.ci/run sets it, and starts the local server)",
        if set {
            "was not set when the tests were built"
        } else {
            "is not set"
        }
    );
}

/// A PostgreSQL database created for one test on the server `TESSERA_TEST_DATABASE_URL` names,
/// and dropped (connections and all) when this value is.
#[derive(Debug)]
pub struct PostgresDatabase {
    url: String,
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    pub async fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin_url = admin_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!(
            "tessera_test_{}_{nanos}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|err| panic!("{DATABASE_URL_VARIABLE} is not a URL: {err}"));
        url.set_path(&format!("/{name}"));

        let admin = Database::connect(admin_url.as_str())
            .await
            .unwrap_or_else(|err| panic!("connect to {DATABASE_URL_VARIABLE}: {err}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|err| panic!("create the test database {name}: {err}"));
        admin.close().await.ok();
        Self {
            url: url.into(),
            admin_url,
            name,
        }
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = std::mem::take(&mut self.admin_url);
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop may run inside a test's runtime (which must not block on itself) or outside
        // any: a private runtime on a thread of its own works in both cases.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                    admin.execute_unprepared(&sql).await.ok();
                    admin.close().await.ok();
                }
            });
        })
        .join()
        .ok();
    }
}
