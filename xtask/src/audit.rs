//! `cargo xtask audit`: check `Cargo.lock` against a plain-directory snapshot of the RustSec
//! advisory database (no network, no git), plus version floors for security-critical crates.
//!
//! Vulnerabilities fail the check unless `xtask/audit-ignore.toml` lists them with a reason;
//! unmaintained / unsound / notice advisories are printed as warnings and never fail it.

use rustsec::{
    Database, Lockfile, Version, Vulnerability, Warning,
    advisory::{self, Informational},
    report,
};
use serde::Deserialize;
use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    env, fmt, fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

/// Environment variable that overrides the default advisory database location.
pub const DB_ENV: &str = "TESSERA_ADVISORY_DB";

/// The file in the snapshot directory that records which advisory-db commit it was taken from.
const SNAPSHOT_FILE: &str = "SNAPSHOT";

/// Command-line options of `audit`; `None` means "use the default".
#[derive(Debug, Default)]
pub struct Options {
    pub db: Option<PathBuf>,
    pub lockfile: Option<PathBuf>,
    pub policy: Option<PathBuf>,
}

impl Options {
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
                _ => (arg.as_str(), None),
            };
            let slot = match flag {
                "--db" => &mut options.db,
                "--lockfile" => &mut options.lockfile,
                "--policy" => &mut options.policy,
                _ => return Err(format!("unexpected argument `{arg}` for `audit`")),
            };
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("`{flag}` needs a value"))?,
            };
            if value.is_empty() {
                return Err(format!("`{flag}` needs a non-empty value"));
            }
            *slot = Some(PathBuf::from(value));
        }
        Ok(options)
    }
}

/// The `xtask` package directory. `cargo run` and `cargo test` set `CARGO_MANIFEST_DIR` for the
/// process too, and that value wins over the one compiled in: checkouts sharing one
/// `CARGO_TARGET_DIR` (git worktrees, a fresh clone) reuse each other's xtask build whenever
/// cargo finds it up to date, and the compiled-in path names whichever checkout built it last.
pub fn manifest_dir() -> PathBuf {
    match env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// The workspace root (the directory holding the root `Cargo.toml` and `Cargo.lock`).
pub fn workspace_root() -> PathBuf {
    manifest_dir()
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Default snapshot location: `../shared/advisory-db` relative to the workspace root.
pub fn default_db_path() -> PathBuf {
    let root = workspace_root();
    root.parent()
        .unwrap_or(&root)
        .join("shared")
        .join("advisory-db")
}

/// `--db`, else `$TESSERA_ADVISORY_DB`, else the default location.
fn resolve_db_path(cli: Option<&Path>) -> PathBuf {
    if let Some(path) = cli {
        return path.to_path_buf();
    }
    match env::var_os(DB_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => default_db_path(),
    }
}

// ---------------------------------------------------------------------------------------------
// Policy file (xtask/audit-ignore.toml)

/// Contents of `xtask/audit-ignore.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub ignore: Vec<Ignore>,
    #[serde(default)]
    pub floor: Vec<Floor>,
}

/// A vulnerability advisory accepted for now, with the justification.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ignore {
    pub id: String,
    pub reason: String,
}

/// Every version of `krate` in the lockfile must be at least `min`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Floor {
    #[serde(rename = "crate")]
    pub krate: String,
    #[serde(deserialize_with = "deserialize_version")]
    pub min: Version,
    pub reason: String,
}

fn deserialize_version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
    let text = String::deserialize(d)?;
    Version::parse(&text)
        .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a semver version: {e}")))
}

impl Policy {
    /// Parse and validate a policy file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        policy.validate()?;
        Ok(policy)
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = fs::read_to_string(path)
            .map_err(|e| format!("cannot read policy file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("invalid policy file {}: {e}", path.display()))
    }

    fn validate(&self) -> Result<(), String> {
        let mut ids = HashSet::new();
        for ignore in &self.ignore {
            let id: advisory::Id = ignore
                .id
                .parse()
                .map_err(|e| format!("[[ignore]] id `{}` is not an advisory id: {e}", ignore.id))?;
            if !id.is_rustsec() {
                return Err(format!(
                    "[[ignore]] id `{}`: use the RUSTSEC-YYYY-NNNN id of the advisory",
                    ignore.id
                ));
            }
            if ignore.reason.trim().is_empty() {
                return Err(format!(
                    "[[ignore]] {}: `reason` must say why the advisory is accepted",
                    ignore.id
                ));
            }
            if !ids.insert(ignore.id.as_str()) {
                return Err(format!("[[ignore]] {} is listed twice", ignore.id));
            }
        }
        let mut crates = HashSet::new();
        for floor in &self.floor {
            if floor.krate.trim().is_empty() {
                return Err("[[floor]] `crate` must not be empty".to_owned());
            }
            if floor.reason.trim().is_empty() {
                return Err(format!(
                    "[[floor]] {}: `reason` must say why the floor exists",
                    floor.krate
                ));
            }
            if !crates.insert(floor.krate.as_str()) {
                return Err(format!("[[floor]] {} is listed twice", floor.krate));
            }
        }
        Ok(())
    }

    fn ignore_reason(&self, id: &advisory::Id) -> Option<&str> {
        self.ignore
            .iter()
            .find(|ignore| ignore.id == id.as_str())
            .map(|ignore| ignore.reason.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// The check itself

/// A lockfile entry below its floor.
#[derive(Debug)]
pub struct FloorViolation {
    pub krate: String,
    pub found: Version,
    pub min: Version,
    pub reason: String,
}

/// Result of checking one lockfile against one database and policy.
#[derive(Debug, Default)]
pub struct Findings {
    /// Vulnerabilities not covered by an ignore: each fails the check.
    pub vulnerabilities: Vec<Vulnerability>,
    /// Vulnerabilities covered by an ignore, with its reason.
    pub ignored: Vec<(Vulnerability, String)>,
    /// Unmaintained / unsound / notice advisories: reported, never failing.
    pub warnings: Vec<Warning>,
    /// Version floors that the lockfile breaks: each fails the check.
    pub floor_violations: Vec<FloorViolation>,
    /// Ignore entries that match nothing in the lockfile any more.
    pub stale_ignores: Vec<String>,
}

impl Findings {
    pub fn failed(&self) -> bool {
        !self.vulnerabilities.is_empty() || !self.floor_violations.is_empty()
    }
}

pub fn check_floors(lockfile: &Lockfile, floors: &[Floor]) -> Vec<FloorViolation> {
    let mut violations = Vec::new();
    for floor in floors {
        for package in &lockfile.packages {
            if package.name.as_str() == floor.krate && package.version < floor.min {
                violations.push(FloorViolation {
                    krate: floor.krate.clone(),
                    found: package.version.clone(),
                    min: floor.min.clone(),
                    reason: floor.reason.clone(),
                });
            }
        }
    }
    violations
}

pub fn audit(db: &Database, lockfile: &Lockfile, policy: &Policy) -> Findings {
    let mut findings = Findings::default();
    let mut matched: HashSet<String> = HashSet::new();

    // Vulnerabilities: every crates.io package, all platforms, withdrawn advisories excluded.
    for vuln in db.vulnerabilities(lockfile) {
        match policy.ignore_reason(&vuln.advisory.id) {
            Some(reason) => {
                matched.insert(vuln.advisory.id.to_string());
                let reason = reason.to_owned();
                findings.ignored.push((vuln, reason));
            }
            None => findings.vulnerabilities.push(vuln),
        }
    }

    // Informational advisories become warnings.
    let settings = report::Settings {
        informational_warnings: vec![
            Informational::Unmaintained,
            Informational::Unsound,
            Informational::Notice,
        ],
        ..Default::default()
    };
    for warning in report::find_warnings(db, lockfile, &settings)
        .into_values()
        .flatten()
    {
        if let Some(advisory) = &warning.advisory
            && policy.ignore_reason(&advisory.id).is_some()
        {
            matched.insert(advisory.id.to_string());
        }
        findings.warnings.push(warning);
    }

    findings.floor_violations = check_floors(lockfile, &policy.floor);
    findings.stale_ignores = policy
        .ignore
        .iter()
        .filter(|ignore| !matched.contains(&ignore.id))
        .map(|ignore| ignore.id.clone())
        .collect();
    findings
}

/// Shortest chain of dependents from a package up to a workspace member (or any package with
/// no dependents), e.g. `rsa 0.9.8 <- jsonwebtoken 11.1.0 <- tessera 0.1.0`.
pub fn dependency_path(lockfile: &Lockfile, name: &str, version: &Version) -> String {
    type Key = (String, Version);
    let mut dependents: HashMap<Key, Vec<Key>> = HashMap::new();
    let mut local: HashSet<Key> = HashSet::new();
    for package in &lockfile.packages {
        let parent = (package.name.as_str().to_owned(), package.version.clone());
        if package.source.is_none() {
            local.insert(parent.clone());
        }
        for dep in &package.dependencies {
            dependents
                .entry((dep.name.as_str().to_owned(), dep.version.clone()))
                .or_default()
                .push(parent.clone());
        }
    }

    let start: Key = (name.to_owned(), version.clone());
    let mut came_from: HashMap<Key, Key> = HashMap::new();
    let mut seen: HashSet<Key> = HashSet::from([start.clone()]);
    let mut queue = VecDeque::from([start.clone()]);
    let mut end = start.clone();
    while let Some(key) = queue.pop_front() {
        let parents = dependents.get(&key).map(Vec::as_slice).unwrap_or_default();
        if local.contains(&key) || parents.is_empty() {
            end = key;
            break;
        }
        for parent in parents {
            if seen.insert(parent.clone()) {
                came_from.insert(parent.clone(), key.clone());
                queue.push_back(parent.clone());
            }
        }
    }

    let mut chain = vec![end.clone()];
    let mut at = end;
    while let Some(next) = came_from.get(&at) {
        chain.push(next.clone());
        at = next.clone();
    }
    chain.reverse();
    chain
        .iter()
        .map(|(name, version)| format!("{name} {version}"))
        .collect::<Vec<_>>()
        .join(" <- ")
}

// ---------------------------------------------------------------------------------------------
// Loading and printing

/// Open the snapshot, refusing anything that does not look like an advisory database (a missing
/// or empty directory must never pass as "no advisories").
pub fn open_database(path: &Path) -> Result<Database, String> {
    let hint = format!(
        "point --db or ${DB_ENV} at a RustSec advisory-db snapshot (default: {})",
        default_db_path().display()
    );
    if !path.is_dir() {
        return Err(format!(
            "advisory database not found: {} is not a directory; {hint}",
            path.display()
        ));
    }
    if !path.join("crates").is_dir() {
        return Err(format!(
            "{} has no crates/ directory, so it is not an advisory-db snapshot; {hint}",
            path.display()
        ));
    }
    let db = Database::open(path)
        .map_err(|e| format!("cannot read advisory database {}: {e}", path.display()))?;
    if db.iter().next().is_none() {
        return Err(format!(
            "advisory database {} holds no advisories; {hint}",
            path.display()
        ));
    }
    Ok(db)
}

/// First line of the snapshot's `SNAPSHOT` file (which advisory-db commit and date it holds).
fn snapshot_description(db_path: &Path) -> Option<String> {
    let text = fs::read_to_string(db_path.join(SNAPSHOT_FILE)).ok()?;
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
}

struct Patched<'a>(&'a advisory::Versions);

impl fmt::Display for Patched<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patched = self.0.patched();
        if patched.is_empty() {
            return f.write_str("none (no fixed release)");
        }
        let reqs: Vec<String> = patched.iter().map(ToString::to_string).collect();
        f.write_str(&reqs.join(" | "))
    }
}

fn print_advisory(
    label: &str,
    vuln_advisory: &advisory::Metadata,
    versions: Option<&advisory::Versions>,
    package: &rustsec::package::Package,
    lockfile: &Lockfile,
) {
    println!(
        "{label}: {} {} {}",
        vuln_advisory.id, package.name, package.version
    );
    println!("    title:   {}", vuln_advisory.title);
    println!("    date:    {}", vuln_advisory.date.as_str());
    if let Some(cvss) = &vuln_advisory.cvss {
        println!("    severity: {} ({cvss})", cvss.severity());
    }
    if !vuln_advisory.aliases.is_empty() {
        let aliases: Vec<&str> = vuln_advisory.aliases.iter().map(|a| a.as_str()).collect();
        println!("    aliases: {}", aliases.join(", "));
    }
    if let Some(versions) = versions {
        println!("    patched: {}", Patched(versions));
    }
    if let Some(url) = vuln_advisory.id.url() {
        println!("    url:     {url}");
    }
    println!(
        "    path:    {}",
        dependency_path(lockfile, package.name.as_str(), &package.version)
    );
}

fn print_findings(findings: &Findings, lockfile: &Lockfile) {
    for vuln in &findings.vulnerabilities {
        print_advisory(
            "error[vulnerability]",
            &vuln.advisory,
            Some(&vuln.versions),
            &vuln.package,
            lockfile,
        );
    }
    for (vuln, reason) in &findings.ignored {
        print_advisory(
            "ignored[vulnerability]",
            &vuln.advisory,
            Some(&vuln.versions),
            &vuln.package,
            lockfile,
        );
        println!("    ignored: {reason}");
    }
    for warning in &findings.warnings {
        let label = format!("warning[{}]", warning.kind);
        match &warning.advisory {
            Some(advisory) => print_advisory(
                &label,
                advisory,
                warning.versions.as_ref(),
                &warning.package,
                lockfile,
            ),
            None => println!(
                "{label}: {} {}",
                warning.package.name, warning.package.version
            ),
        }
    }
    for violation in &findings.floor_violations {
        println!(
            "error[floor]: {} {} is below the floor {} ({})",
            violation.krate, violation.found, violation.min, violation.reason
        );
    }
    for id in &findings.stale_ignores {
        println!(
            "warning[stale-ignore]: {id} in the policy file matches nothing in the lockfile; remove it"
        );
    }
}

fn run(options: &Options) -> Result<bool, String> {
    let root = workspace_root();
    let db_path = resolve_db_path(options.db.as_deref());
    let lockfile_path = options
        .lockfile
        .clone()
        .unwrap_or_else(|| root.join("Cargo.lock"));
    let policy_path = options
        .policy
        .clone()
        .unwrap_or_else(|| root.join("xtask").join("audit-ignore.toml"));

    let policy = Policy::load(&policy_path)?;
    let lockfile = Lockfile::load(&lockfile_path)
        .map_err(|e| format!("cannot load {}: {e}", lockfile_path.display()))?;
    let db = open_database(&db_path)?;

    println!("advisory db: {}", db_path.display());
    match snapshot_description(&db_path) {
        Some(snapshot) => println!("snapshot:    {snapshot}"),
        None => {
            println!("snapshot:    unknown (no {SNAPSHOT_FILE} file in the database directory)")
        }
    }
    println!(
        "checking:    {} ({} packages) against {} advisories",
        lockfile_path.display(),
        lockfile.packages.len(),
        db.iter().count()
    );
    let floors: Vec<String> = policy
        .floor
        .iter()
        .map(|floor| format!("{} >= {}", floor.krate, floor.min))
        .collect();
    if !floors.is_empty() {
        println!("floors:      {}", floors.join(", "));
    }
    println!();

    let findings = audit(&db, &lockfile, &policy);
    print_findings(&findings, &lockfile);

    let affected: BTreeSet<&str> = findings
        .vulnerabilities
        .iter()
        .map(|vuln| vuln.package.name.as_str())
        .collect();
    println!(
        "\naudit: {} vulnerabilities{}, {} ignored, {} warnings, {} broken floors",
        findings.vulnerabilities.len(),
        if affected.is_empty() {
            String::new()
        } else {
            format!(
                " (in {})",
                affected.into_iter().collect::<Vec<_>>().join(", ")
            )
        },
        findings.ignored.len(),
        findings.warnings.len(),
        findings.floor_violations.len(),
    );
    Ok(!findings.failed())
}

pub fn main(options: &Options) -> ExitCode {
    match run(options) {
        Ok(true) => {
            println!("audit: OK");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!(
                "audit: FAILED (fix the dependency, or list the advisory in xtask/audit-ignore.toml with a reason)"
            );
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

    /// A minimal Cargo.lock: workspace member `app` depending on `via`, which depends on each
    /// `(name, version)` given, all from crates.io.
    fn lockfile_text(deps: &[(&str, &str)]) -> String {
        let mut text = String::from("version = 4\n\n");
        text.push_str(
            "[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"via\",\n]\n\n",
        );
        text.push_str(&format!(
            "[[package]]\nname = \"via\"\nversion = \"1.0.0\"\nsource = \"{CRATES_IO}\"\ndependencies = [\n"
        ));
        for (name, version) in deps {
            text.push_str(&format!(" \"{name} {version}\",\n"));
        }
        text.push_str("]\n");
        for (name, version) in deps {
            text.push_str(&format!(
                "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"{CRATES_IO}\"\n"
            ));
        }
        text
    }

    /// Write the lockfile into a temporary directory and load it from there, as the tool does.
    fn lockfile(deps: &[(&str, &str)]) -> Lockfile {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("Cargo.lock");
        fs::write(&path, lockfile_text(deps)).expect("write Cargo.lock");
        Lockfile::load(&path).expect("parse fabricated Cargo.lock")
    }

    /// The advisory-db fixture committed with the tests (a few real advisories copied from the
    /// snapshot, see its README.md), so the tests need nothing outside the repository.
    fn fixture_path() -> PathBuf {
        manifest_dir().join("tests/fixtures/advisory-db")
    }

    fn fixture() -> Database {
        open_database(&fixture_path())
            .unwrap_or_else(|e| panic!("the advisory-db test fixture does not load: {e}"))
    }

    fn ids(vulns: &[Vulnerability]) -> Vec<String> {
        vulns.iter().map(|v| v.advisory.id.to_string()).collect()
    }

    const FLOORS: &str = r#"
        [[floor]]
        crate = "jsonwebtoken"
        min = "10.3.0"
        reason = "CVE-2026-25537"
    "#;

    #[test]
    fn floor_catches_a_lower_version() {
        let policy = Policy::parse(FLOORS).unwrap();

        let low = check_floors(&lockfile(&[("jsonwebtoken", "10.2.0")]), &policy.floor);
        assert_eq!(low.len(), 1);
        assert_eq!(low[0].krate, "jsonwebtoken");
        assert_eq!(low[0].found, Version::new(10, 2, 0));
        assert_eq!(low[0].min, Version::new(10, 3, 0));

        // A pre-release of the floor version is below it.
        let pre = check_floors(&lockfile(&[("jsonwebtoken", "10.3.0-rc.1")]), &policy.floor);
        assert_eq!(pre.len(), 1);

        for ok in ["10.3.0", "10.3.1", "11.1.0"] {
            let found = check_floors(&lockfile(&[("jsonwebtoken", ok)]), &policy.floor);
            assert!(found.is_empty(), "{ok} should satisfy the floor: {found:?}");
        }

        // Two versions in one tree: the old one alone breaks the floor.
        let both = check_floors(
            &lockfile(&[("jsonwebtoken", "9.3.1"), ("jsonwebtoken", "11.1.0")]),
            &policy.floor,
        );
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].found, Version::new(9, 3, 1));

        // A crate that is not in the tree holds its floor.
        assert!(check_floors(&lockfile(&[("serde", "1.0.0")]), &policy.floor).is_empty());
    }

    #[test]
    fn floor_needs_a_reason_and_a_version() {
        let no_reason = "[[floor]]\ncrate = \"lettre\"\nmin = \"0.11.22\"\n";
        assert!(Policy::parse(no_reason).unwrap_err().contains("reason"));
        let blank = "[[floor]]\ncrate = \"lettre\"\nmin = \"0.11.22\"\nreason = \" \"\n";
        assert!(Policy::parse(blank).unwrap_err().contains("reason"));
        let bad = "[[floor]]\ncrate = \"lettre\"\nmin = \"0.11\"\nreason = \"x\"\n";
        assert!(Policy::parse(bad).unwrap_err().contains("semver"));
    }

    #[test]
    fn ignored_advisory_needs_a_reason() {
        let missing = "[[ignore]]\nid = \"RUSTSEC-2026-0141\"\n";
        let err = Policy::parse(missing).unwrap_err();
        assert!(err.contains("reason"), "{err}");

        for blank in ["", "   ", "\n\t"] {
            let text = format!("[[ignore]]\nid = \"RUSTSEC-2026-0141\"\nreason = {blank:?}\n");
            let err = Policy::parse(&text).unwrap_err();
            assert!(err.contains("reason"), "{err}");
        }

        let ok = "[[ignore]]\nid = \"RUSTSEC-2026-0141\"\nreason = \"boring-tls only\"\n";
        let policy = Policy::parse(ok).unwrap();
        assert_eq!(policy.ignore.len(), 1);

        // Typos in keys, non-RUSTSEC ids and duplicates are rejected, not skipped.
        assert!(Policy::parse("[[ignore]]\nid = \"RUSTSEC-2026-0141\"\nreasn = \"x\"\n").is_err());
        assert!(Policy::parse("[[ignore]]\nid = \"CVE-2026-46428\"\nreason = \"x\"\n").is_err());
        assert!(Policy::parse(&format!("{ok}{ok}")).is_err());
    }

    #[test]
    fn advisory_matches_a_vulnerable_version_only() {
        let db = fixture();
        let policy = Policy::default();

        // RUSTSEC-2026-0141: lettre < 0.11.22 (>= 0.10.1).
        let vulnerable = lockfile(&[("lettre", "0.11.21")]);
        let findings = audit(&db, &vulnerable, &policy);
        assert_eq!(ids(&findings.vulnerabilities), ["RUSTSEC-2026-0141"]);
        assert!(findings.failed());
        let vuln = &findings.vulnerabilities[0];
        assert_eq!(vuln.package.name.as_str(), "lettre");
        assert!(
            vuln.versions
                .patched()
                .iter()
                .any(|req| req.matches(&Version::new(0, 11, 22))),
            "the advisory names 0.11.22 as patched"
        );
        assert_eq!(
            dependency_path(&vulnerable, "lettre", &Version::new(0, 11, 21)),
            "lettre 0.11.21 <- via 1.0.0 <- app 0.1.0"
        );

        let patched = lockfile(&[("lettre", "0.11.22")]);
        let findings = audit(&db, &patched, &policy);
        assert!(
            findings.vulnerabilities.is_empty(),
            "{:?}",
            ids(&findings.vulnerabilities)
        );
        assert!(!findings.failed());

        // A second, older advisory: smallvec::insert_many (RUSTSEC-2021-0003), fixed in 1.6.1.
        let findings = audit(&db, &lockfile(&[("smallvec", "1.6.0")]), &policy);
        assert_eq!(ids(&findings.vulnerabilities), ["RUSTSEC-2021-0003"]);
        let findings = audit(&db, &lockfile(&[("smallvec", "1.6.1")]), &policy);
        assert!(
            findings.vulnerabilities.is_empty(),
            "{:?}",
            ids(&findings.vulnerabilities)
        );
    }

    #[test]
    fn ignore_moves_a_vulnerability_aside_and_stale_ignores_are_reported() {
        let db = fixture();
        let policy = Policy::parse(
            "[[ignore]]\nid = \"RUSTSEC-2026-0141\"\nreason = \"boring-tls only\"\n\n\
             [[ignore]]\nid = \"RUSTSEC-2021-0003\"\nreason = \"smallvec is not in this tree\"\n",
        )
        .unwrap();
        let findings = audit(&db, &lockfile(&[("lettre", "0.11.21")]), &policy);
        assert!(findings.vulnerabilities.is_empty());
        assert!(!findings.failed());
        assert_eq!(findings.ignored.len(), 1);
        assert_eq!(findings.ignored[0].1, "boring-tls only");
        assert_eq!(findings.stale_ignores, ["RUSTSEC-2021-0003"]);
    }

    #[test]
    fn unmaintained_is_a_warning_not_a_failure() {
        let db = fixture();
        // RUSTSEC-2024-0384: `instant` is unmaintained.
        let findings = audit(&db, &lockfile(&[("instant", "0.1.13")]), &Policy::default());
        assert!(findings.vulnerabilities.is_empty());
        assert!(!findings.failed());
        let warning = findings
            .warnings
            .iter()
            .find(|w| w.advisory.as_ref().map(|a| a.id.as_str()) == Some("RUSTSEC-2024-0384"))
            .expect("instant is reported as unmaintained");
        assert!(warning.is_unmaintained());
    }

    #[test]
    fn snapshot_file_names_the_source() {
        let described = snapshot_description(&fixture_path()).expect("the fixture has SNAPSHOT");
        assert!(described.contains("rustsec/advisory-db at "), "{described}");
        assert_eq!(snapshot_description(&fixture_path().join("crates")), None);
    }

    #[test]
    fn missing_database_is_an_error_not_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_database(&dir.path().join("nope")).unwrap_err();
        assert!(err.contains("not found"), "{err}");
        let err = open_database(dir.path()).unwrap_err();
        assert!(err.contains("crates/"), "{err}");
        fs::create_dir(dir.path().join("crates")).unwrap();
        let err = open_database(dir.path()).unwrap_err();
        assert!(err.contains("no advisories"), "{err}");
    }

    #[test]
    fn the_repository_policy_holds_the_required_floors() {
        let policy = Policy::load(&workspace_root().join("xtask/audit-ignore.toml")).unwrap();
        let floor = |name: &str| {
            policy
                .floor
                .iter()
                .find(|f| f.krate == name)
                .map(|f| f.min.clone())
        };
        assert!(floor("jsonwebtoken") >= Some(Version::from_str("10.3.0").unwrap()));
        assert!(floor("lettre") >= Some(Version::from_str("0.11.22").unwrap()));
    }

    #[test]
    fn options_parse() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = Options::from_args(&args(&["--db", "/x", "--lockfile=/y"])).unwrap();
        assert_eq!(o.db.as_deref(), Some(Path::new("/x")));
        assert_eq!(o.lockfile.as_deref(), Some(Path::new("/y")));
        assert!(o.policy.is_none());
        assert!(Options::from_args(&args(&["--db"])).is_err());
        assert!(Options::from_args(&args(&["--bogus"])).is_err());
    }
}
