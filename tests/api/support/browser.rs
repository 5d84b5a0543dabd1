//! A real browser for pages: Debian's Chromium, headless, installed with apt on first use
//! (`tools::apt_package`: pinned; when the archive has moved past the pin, its current version,
//! said on stderr), and Playwright (npm, pinned) to drive it through a page as a person would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMIUM_VERSION: &str = "156.0.8078.129-1~deb12u1";
const PLAYWRIGHT: &str = "playwright-core@1.64.1";

/// What the browser made of a page: the DOM after its scripts ran, and its console (CSP
/// violations included).
pub struct Rendered {
    pub dom: String,
    pub console: String,
}

/// Loads `url`, lets its scripts run for up to five seconds of virtual time, and returns the
/// resulting DOM and the console.
pub fn render(url: &str) -> Rendered {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ])
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Rendered {
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
        console: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the Playwright script `script` (CommonJS, in `tests/api/support/`) with `args`; its
/// standard output, or a panic with its standard error when it fails.
pub fn drive(script: &str, args: &[&str]) -> String {
    static MODULES: OnceLock<PathBuf> = OnceLock::new();
    let modules = MODULES.get_or_init(|| super::tools::node_modules("playwright", &[PLAYWRIGHT]));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/support")
        .join(script);
    let output = Command::new("node")
        .arg(path)
        .args(args)
        .env("NODE_PATH", modules)
        .env("CHROMIUM", chromium())
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("node runs (the page tests need Node.js)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed; it printed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn chromium() -> PathBuf {
    static BROWSER: OnceLock<PathBuf> = OnceLock::new();
    BROWSER
        .get_or_init(|| {
            super::tools::apt_package(
                "chromium",
                CHROMIUM_VERSION,
                CHROMIUM,
                "a real browser for the page tests",
            )
        })
        .clone()
}
