//! A real browser for pages: Debian's Chromium, headless, installed with apt on first use
//! (pinned; when the archive has moved past the pin, its current version, said on stderr).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const CHROMIUM: &str = "/usr/bin/chromium";
const PINNED: &str = "chromium=156.0.8078.129-1~deb12u1";

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

fn chromium() -> PathBuf {
    static BROWSER: OnceLock<PathBuf> = OnceLock::new();
    BROWSER.get_or_init(install).clone()
}

fn install() -> PathBuf {
    if Path::new(CHROMIUM).exists() {
        return CHROMIUM.into();
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    let installed = apt(&["install", "-y", "-q", PINNED]) || {
        apt(&["update", "-q"]);
        apt(&["install", "-y", "-q", PINNED]) || {
            eprintln!("{PINNED} is no longer in the archive; installing its current chromium");
            apt(&["install", "-y", "-q", "chromium"])
        }
    };
    assert!(
        installed && Path::new(CHROMIUM).exists(),
        "could not install chromium with apt-get (the page tests need a real browser)"
    );
    CHROMIUM.into()
}
