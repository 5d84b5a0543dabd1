//! Test-only tools (a Python virtualenv with aiosmtpd, Playwright for Chromium, a client
//! generator), installed once per machine under `<target>/test-tools/NAME`, pinned, so a fresh
//! checkout passes with plain `cargo test`; and Debian packages (Chromium, nginx), installed
//! system-wide with apt-get, pinned ([`apt_package`]).
//!
//! Safe when test threads or test processes race: each install happens in a directory of its
//! own and is renamed into place; the first rename wins. A marker written last holds what was
//! installed, so an interrupted install is never taken for a finished one, and changing the
//! pin installs again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const MARKER: &str = ".tessera-test-tools";

/// `<target>/test-tools/NAME`, installed by `install(dir)` unless it already holds `pin`.
pub fn installed(name: &str, pin: &str, install: impl FnOnce(&Path)) -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`, wherever the target directory is.
    let tools = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-tools");
    let dir = tools.join(name);
    if is_ready(&dir, pin) {
        return dir;
    }
    std::fs::create_dir_all(&tools).expect("create <target>/test-tools");
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let building = tools.join(format!("{name}.building-{unique}"));
    std::fs::create_dir_all(&building).expect("create the install directory");
    install(&building);
    std::fs::write(building.join(MARKER), pin).expect("write the install marker");
    for _ in 0..3 {
        if std::fs::rename(&building, &dir).is_ok() {
            return dir;
        }
        if is_ready(&dir, pin) {
            // Another test process won the race: use its install.
            std::fs::remove_dir_all(&building).ok();
            return dir;
        }
        // An install of another pin: move it aside, then retry.
        let stale = tools.join(format!("{name}.stale-{unique}"));
        if std::fs::rename(&dir, &stale).is_ok() {
            std::fs::remove_dir_all(&stale).ok();
        }
    }
    panic!(
        "could not move {} into place at {}",
        building.display(),
        dir.display()
    );
}

fn is_ready(dir: &Path, pin: &str) -> bool {
    std::fs::read_to_string(dir.join(MARKER)).is_ok_and(|installed| installed == pin)
}

/// A Python virtualenv with `requirements` installed: its interpreter. The venv works from
/// its final path when run as `<venv>/bin/python`.
pub fn python_venv(name: &str, requirements: &[&str]) -> PathBuf {
    let venv = installed(name, &requirements.join(" "), |dir| {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(dir),
            "python3 -m venv",
            "Python 3 with the venv module and pip (Debian: apt-get install python3 python3-venv)",
        );
        run(
            Command::new(dir.join("bin").join("python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                ])
                .args(requirements),
            &format!("pip install {}", requirements.join(" ")),
            "access to PyPI once per machine",
        );
    });
    venv.join("bin").join("python")
}

/// npm `packages` installed under one directory: its `node_modules`, for `NODE_PATH`.
pub fn node_modules(name: &str, packages: &[&str]) -> PathBuf {
    let dir = installed(name, &packages.join(" "), |dir| {
        run(
            Command::new("npm")
                .args([
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                ])
                .arg(dir)
                .args(packages),
            &format!("npm install {}", packages.join(" ")),
            "Node.js with npm, and access to the npm registry once per machine",
        );
    });
    dir.join("node_modules")
}

/// `program`, a file the Debian package `package` installs, installed with apt-get unless it
/// is already there: `package=version` first; when the archive has moved past the pin, after an
/// `apt-get update`, its current version (said on stderr). Panics with apt-get's own words and
/// what the tests need (`needs`) when it cannot be installed.
pub fn apt_package(package: &str, version: &str, program: &str, needs: &str) -> PathBuf {
    // One apt-get at a time in this process (dpkg holds a lock); other processes are waited for.
    static APT: Mutex<()> = Mutex::new(());
    let _apt = APT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if Path::new(program).exists() {
        return program.into();
    }
    let mut said = String::new();
    let mut apt = |args: &[&str]| {
        let output = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        match output {
            Ok(output) => {
                said = format!(
                    "apt-get {} ({}):\n{}{}",
                    args.join(" "),
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
                output.status.success()
            }
            Err(err) => {
                said = format!("apt-get: {err}");
                false
            }
        }
    };
    let pinned = format!("{package}={version}");
    let installed = apt(&["install", "-y", "-q", &pinned]) || {
        apt(&["update", "-q"]);
        apt(&["install", "-y", "-q", &pinned]) || {
            eprintln!("{pinned} is no longer in the archive; installing its current {package}");
            apt(&["install", "-y", "-q", package])
        }
    };
    assert!(
        installed && Path::new(program).exists(),
        "could not install {package} ({program}) with apt-get; the tests need {needs}. {said}"
    );
    program.into()
}

/// Runs an install step; on failure says what the tests need.
pub fn run(command: &mut Command, what: &str, needs: &str) {
    let output = match command.output() {
        Ok(output) => output,
        Err(err) => panic!("{what}: {err}; the tests need {needs}"),
    };
    if !output.status.success() {
        panic!(
            "{what} failed ({}); the tests need {needs}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
