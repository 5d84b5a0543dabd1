//! Workspace maintenance tasks, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! Tasks:
//! - `audit`: check `Cargo.lock` against an offline RustSec advisory database snapshot and the
//!   version floors in `xtask/audit-ignore.toml`.

mod audit;

use std::{env, process::ExitCode};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  audit [--db PATH] [--lockfile PATH] [--policy PATH]
      Check Cargo.lock against the RustSec advisory database snapshot (offline).
      --db PATH        advisory-db directory (default: $TESSERA_ADVISORY_DB, else
                       ../shared/advisory-db relative to the workspace root)
      --lockfile PATH  lockfile to check (default: <workspace root>/Cargo.lock)
      --policy PATH    ignores and version floors (default: xtask/audit-ignore.toml)
      Exit status: 0 clean, 1 vulnerability or broken floor, 2 could not run the check.
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("audit") => match audit::Options::from_args(&args[1..]) {
            Ok(options) => audit::main(&options),
            Err(message) => {
                eprintln!("error: {message}\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown task `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
