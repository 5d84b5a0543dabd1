//! The process's TLS crypto provider: rustls with ring.
//!
//! reqwest is built without a crypto provider of its own (its default would add aws-lc-rs),
//! so every reqwest client in the process, Tessera's and an embedding application's alike,
//! needs one installed before it is built; otherwise reqwest panics. `install` is idempotent
//! and is called by `main`, before Tessera builds a client, and by the tests and examples.

use std::sync::Once;

/// Makes ring rustls' process-wide default, unless something already installed one.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // `Err` means another provider was installed first: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
