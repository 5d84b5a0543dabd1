//! `cfg(tessera_postgres_tests)` exactly when `TESSERA_TEST_DATABASE_URL` is set and not empty
//! (see `postgres_test!` in src/lib.rs). Changing the variable rebuilds this small crate and the
//! tests that use it, never the crates under test.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tessera_postgres_tests)");
    println!("cargo::rerun-if-env-changed=TESSERA_TEST_DATABASE_URL");
    if std::env::var_os("TESSERA_TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=tessera_postgres_tests");
    }
}
