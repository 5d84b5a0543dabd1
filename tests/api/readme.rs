//! The README's commands, run as written (issue 17: "every command in the README run as
//! written on a fresh clone in CI or by a test").
//!
//! In an empty directory, with the `tessera` binary under test first on `PATH`, every ```sh
//! block runs in README order, as a reader would run it:
//! - a line with `tessera serve` starts that server (the one before it stopped) on a free
//!   port, which stands in for `127.0.0.1:8000` in the `curl` lines;
//! - a `curl` line runs with bash against it; its answer must have the shape of the `# {...}`
//!   line under it: the same keys, the same values where they are not `<placeholders>`.
//!   `<key>` is the key from the last answer in the "Run" section; elsewhere `<key>` and
//!   `<access>` come from a fresh login as the account "Run" registered;
//! - any other `tessera ...` or `openssl ...` line runs with bash and must exit 0;
//! - a line in [`SKIPPED`] is not run (the reason is beside it), and any other command fails
//!   the test, so a new command in the README is run here or listed there.
//!
//! Each server's `/` must lead to `/docs`, and the inbox server's `/_inbox/` must answer, as
//! the "Run" section says. Besides: every ```toml block must load as a configuration file
//! (`tessera --config FILE openapi`), the subcommands listed under "Command line" must be
//! those of `tessera --help`, and every ```rust block must be a verbatim part of
//! `examples/embed.rs` (which `embedding.rs` compiles and runs the routes of).
//!
//! Commands in running text are not extracted: `cargo run --release -- serve` builds the
//! binary this test runs (in release), and `cargo run --example embed` is the example above.
//! `cargo install --locked --path .` runs in `.ci/run`.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::free_port;
use crate::support::process::BIN;

const README: &str = include_str!("../../README.md");
const EMBED_EXAMPLE: &str = include_str!("../../examples/embed.rs");

/// The address the README's commands use; each server of the test stands in for it.
const README_ADDRESS: &str = "http://127.0.0.1:8000";
/// The account the "Run" section registers, as its commands spell it.
const README_EMAIL: &str = "ada@example.com";
const README_PASSWORD: &str = "correct horse battery";

/// README commands this test does not run (whitespace-normalised), and why.
const SKIPPED: &[(&str, &str)] = &[
    (
        "cargo install --locked --path .",
        ".ci/run runs it after the tests (with --debug, which reuses the test build)",
    ),
    (
        "cargo install --locked --git URL tessera",
        "URL stands for the reader's git server",
    ),
    (
        "python3 -m venv /tmp/smtp && /tmp/smtp/bin/pip install aiosmtpd",
        "installs from the network; email_smtp.rs delivers through aiosmtpd already",
    ),
    (
        "/tmp/smtp/bin/python -m aiosmtpd -n -l 127.0.0.1:2525 &",
        "needs the aiosmtpd installed above",
    ),
    (
        "TESSERA_EMAIL__BACKEND=smtp TESSERA_EMAIL__SMTP_URL=smtp://127.0.0.1:2525 tessera serve",
        "needs the aiosmtpd started above",
    ),
    (
        "DATABASE_URL=postgres://tessera:secret@db.internal/tessera \
         TESSERA_SECRET_KEY=\"$(cat /run/secrets/tessera_key)\" TESSERA_BIND=0.0.0.0:8000 \
         tessera serve",
        "needs that PostgreSQL server and secret file; the PostgreSQL twins of the API tests \
         run instances on one database",
    ),
    (
        "install -m 0755 target/release/tessera /usr/local/bin/tessera",
        "installs into the system as root; deployment.rs serves deploy/tessera.toml instead",
    ),
    (
        "install -D -m 0644 deploy/tessera.toml /etc/tessera/tessera.toml",
        "installs into the system as root; deployment.rs serves deploy/tessera.toml instead",
    ),
    (
        "(umask 077 && openssl rand -hex 32 > /etc/tessera/secret_key && touch \
         /etc/tessera/tessera.env)",
        "writes into /etc as root; deployment.rs serves with a key file of its own",
    ),
    (
        "install -m 0644 deploy/tessera.service /etc/systemd/system/tessera.service",
        "installs into the system as root; deployment.rs checks the unit with systemd-analyze",
    ),
    (
        "systemctl daemon-reload && systemctl enable --now tessera",
        "no systemd runs on the test machines; deployment.rs checks the unit with systemd-analyze",
    ),
    (
        "docker build -t tessera .",
        "no Docker engine on the test machines; deployment.rs reads the Dockerfile",
    ),
    (
        "docker run -d --name tessera --env-file /etc/tessera/tessera.env \
         -v /etc/tessera/tessera.toml:/etc/tessera/tessera.toml:ro \
         -v /etc/tessera/secret_key:/run/secrets/tessera_secret_key:ro \
         -p 10.0.0.10:8000:8000 -p 10.0.0.10:9464:9464 --stop-timeout 45 tessera",
        "needs the image built above",
    ),
];

#[tokio::test]
async fn the_readme_commands_run_as_written() {
    let blocks = code_blocks(README);
    assert!(
        README.contains(&format!(
            r#""email": "{README_EMAIL}", "password": "{README_PASSWORD}""#
        )),
        "the Run section logs in as {README_EMAIL} with {README_PASSWORD:?}; update this test"
    );
    let mut reader = Reader::new();
    let mut ran = Vec::new();
    let mut skipped = BTreeSet::new();
    for block in blocks.iter().filter(|b| b.lang == "sh") {
        for step in steps(block) {
            let line = normalise(&step.text);
            if let Some((command, _)) = SKIPPED.iter().find(|(c, _)| normalise(c) == line) {
                skipped.insert(*command);
                continue;
            }
            reader.run(block, &step).await;
            ran.push((block.section.clone(), line));
        }
    }
    let stale: Vec<_> = SKIPPED
        .iter()
        .filter(|(c, _)| !skipped.contains(c))
        .collect();
    assert!(
        stale.is_empty(),
        "skipped commands no longer in the README: {stale:?}"
    );
    let in_run = |prefix: &str| {
        ran.iter()
            .filter(|(section, line)| section == "Run" && line.starts_with(prefix))
            .count()
    };
    assert!(
        in_run("tessera serve") >= 1 && in_run("curl ") >= 4,
        "the Run section's server and curl session were not found: {ran:#?}"
    );
    assert!(reader.curls >= 8, "only {} curl commands ran", reader.curls);
    for (section, line) in &ran {
        eprintln!("ran ({section}): {line}");
    }
    drop(reader);

    for block in &blocks {
        match block.lang.as_str() {
            "sh" | "js" | "json" => {}
            "toml" => loads_as_configuration(block),
            "rust" => assert!(
                EMBED_EXAMPLE.contains(&block.body.join("\n")),
                "the Rust block at README.md:{} is not a part of examples/embed.rs as it is",
                block.line
            ),
            "" if block.section == "Command line" => lists_every_subcommand(block),
            other => panic!(
                "README.md:{}: a ```{other} block this test does not read; use ```sh for \
                 commands",
                block.line
            ),
        }
    }
}

/// A fenced block of the README, with the `##` section it is in.
struct Block {
    section: String,
    lang: String,
    /// The line of its opening fence (1-based).
    line: usize,
    body: Vec<String>,
}

fn code_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        match open.as_mut() {
            Some(_) if line.starts_with("```") => blocks.extend(open.take()),
            Some(block) => block.body.push(line.to_owned()),
            None => {
                if let Some(title) = line.strip_prefix("## ") {
                    section = title.trim().to_owned();
                } else if let Some(lang) = line.strip_prefix("```") {
                    open = Some(Block {
                        section: section.clone(),
                        lang: lang.trim().to_owned(),
                        line: index + 1,
                        body: Vec::new(),
                    });
                }
            }
        }
    }
    assert!(open.is_none(), "README.md ends inside a code block");
    blocks
}

/// One command of a ```sh block (continued over lines ending in `\`) and the `#` lines
/// under it.
struct Step {
    text: String,
    expected: Vec<String>,
    line: usize,
}

fn steps(block: &Block) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = block.body.iter().enumerate();
    while let Some((index, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let step = steps.last_mut().unwrap_or_else(|| {
                panic!("README.md:{}: a comment before any command", block.line)
            });
            step.expected.push(comment.trim().to_owned());
            continue;
        }
        let mut text = line.clone();
        while text.ends_with('\\') {
            let (_, next) = lines.next().expect("a continued line goes on");
            text.push('\n');
            text.push_str(next);
        }
        steps.push(Step {
            text,
            expected: Vec::new(),
            line: block.line + 1 + index,
        });
    }
    steps
}

/// A command on one line, single-spaced: how `SKIPPED` names it.
fn normalise(text: &str) -> String {
    text.replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The README's reader: a working directory, `tessera` on `PATH`, the server last started.
struct Reader {
    dir: tempfile::TempDir,
    /// `tessera` (a link to the binary under test) and the servers' logs.
    tools: tempfile::TempDir,
    path: String,
    server: Option<Server>,
    client: reqwest::Client,
    /// The key in the last answer that had one.
    last_key: Option<String>,
    curls: usize,
    servers: usize,
}

impl Reader {
    fn new() -> Self {
        let tools = tempfile::tempdir().unwrap();
        let bin = tools.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("tessera")).unwrap();
        let path = match std::env::var("PATH") {
            Ok(path) => format!("{}:{path}", bin.display()),
            Err(_) => bin.display().to_string(),
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            tools,
            path,
            server: None,
            client: crate::support::http_client(),
            last_key: None,
            curls: 0,
            servers: 0,
        }
    }

    /// `bash -c TEXT` in the working directory, with `PATH` and `env` only.
    fn bash(&self, text: &str, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new("bash");
        command
            .args(["-e", "-o", "pipefail", "-c", text])
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", &self.path)
            .envs(env.iter().copied());
        command
    }

    async fn run(&mut self, block: &Block, step: &Step) {
        let at = format!("README.md:{}", step.line);
        let words: Vec<&str> = step.text.split_whitespace().collect();
        let program = words
            .iter()
            .find(|w| !is_assignment(w))
            .copied()
            .unwrap_or_default();
        if words.windows(2).any(|w| w == ["tessera", "serve"]) {
            self.serve(&step.text, &at).await;
        } else if program == "curl" {
            self.curl(block, step, &at).await;
        } else if program == "tessera" || program == "openssl" {
            if step.text.contains("| jq") && !self.has("jq") {
                eprintln!("{at}: jq is not installed here; not run: {}", step.text);
                return;
            }
            let output = self.bash(&step.text, &[]).output().unwrap();
            assert_success(&output, &at, &step.text);
        } else {
            panic!(
                "{at}: a command this test neither runs nor lists in SKIPPED: {}",
                step.text
            );
        }
    }

    fn has(&self, program: &str) -> bool {
        self.bash(&format!("command -v {program}"), &[])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    async fn serve(&mut self, text: &str, at: &str) {
        self.server = None;
        let bind = format!("127.0.0.1:{}", free_port());
        self.servers += 1;
        let log = self
            .tools
            .path()
            .join(format!("serve-{}.log", self.servers));
        let out = std::fs::File::create(&log).unwrap();
        let mut child = self.bash(text, &[("TESSERA_BIND", &bind)]);
        child
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        let mut server = Server {
            child: child.spawn().expect("bash runs"),
            base: format!("http://{bind}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("{at}: `{text}` exited with {status}:\n{log}");
            }
            let ready = self
                .client
                .get(format!("{}/health/ready", server.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{at}: `{text}` did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // "<http://127.0.0.1:8000/> redirects there" (to Swagger UI).
        let root = self.client.get(&server.base).send().await.unwrap();
        assert_eq!(
            (root.status().as_u16(), root.url().path()),
            (200, "/docs"),
            "{at}: / leads to /docs"
        );
        if text.contains("TESSERA_EMAIL__BACKEND=inbox") {
            let inbox = self
                .client
                .get(format!("{}/_inbox/", server.base))
                .send()
                .await
                .unwrap();
            assert_eq!(inbox.status(), 200, "{at}: the inbox page");
        }
        self.server = Some(server);
    }

    async fn curl(&mut self, block: &Block, step: &Step, at: &str) {
        let base = match &self.server {
            Some(server) => server.base.clone(),
            None => panic!("{at}: curl before any `tessera serve`"),
        };
        assert!(
            step.text.contains(README_ADDRESS),
            "{at}: a curl command not aimed at {README_ADDRESS}: {}",
            step.text
        );
        let mut text = step.text.replace(README_ADDRESS, &base);
        if text.contains("<key>") {
            let key = if block.section == "Run" {
                self.last_key
                    .clone()
                    .unwrap_or_else(|| panic!("{at}: <key> before any answer with a key"))
            } else {
                self.log_in(&base, "key").await
            };
            text = text.replace("<key>", &key);
        }
        if text.contains("<access>") {
            text = text.replace("<access>", &self.log_in(&base, "access").await);
        }
        if let Some(placeholder) = placeholder_in(&text) {
            panic!("{at}: this test does not know what to put for {placeholder}");
        }

        let output = self.bash(&text, &[]).output().unwrap();
        assert_success(&output, at, &text);
        self.curls += 1;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let answer: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{at}: the answer is not JSON ({e}): {stdout}"));
        let expected = step.expected.join(" ");
        let expected: Value = serde_json::from_str(&expected).unwrap_or_else(|e| {
            panic!("{at}: the `# ...` line under a curl command must be its JSON answer ({e})")
        });
        if let Err(difference) = same_shape(&expected, &answer, "answer") {
            panic!("{at}: {difference}\n  expected {expected}\n  got      {answer}");
        }
        if let Some(key) = answer["key"].as_str() {
            self.last_key = Some(key.to_owned());
        }
    }

    /// A fresh credential (`field` of the login answer) for the README's account.
    async fn log_in(&self, base: &str, field: &str) -> String {
        let answer = self
            .client
            .post(format!("{base}/auth/login/"))
            .json(&json!({"email": README_EMAIL, "password": README_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "login as {README_EMAIL}");
        let body: Value = answer.json().await.unwrap();
        body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in the login answer {body}"))
            .to_owned()
    }
}

/// A server started from a README line, in a process group of its own.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The group: bash, and tessera should bash not have exec'd it.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// A `<placeholder>` left in a command: `<` then lowercase words then `>`.
fn placeholder_in(text: &str) -> Option<&str> {
    let start = text.find('<')?;
    let end = start + text[start..].find('>')?;
    let inner = &text[start + 1..end];
    (!inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase() || c == ' '))
        .then(|| &text[start..=end])
}

fn assert_success(output: &Output, at: &str, text: &str) {
    assert!(
        output.status.success(),
        "{at}: `{text}` failed with {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `actual` has the keys of `expected` (no more, no fewer), arrays as long, and the same
/// values except where `expected` has a `"<placeholder>"` string.
fn same_shape(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            let want_keys: BTreeSet<_> = want.keys().collect();
            let got_keys: BTreeSet<_> = got.keys().collect();
            if want_keys != got_keys {
                return Err(format!("{path} has keys {got_keys:?}, not {want_keys:?}"));
            }
            want.iter()
                .try_for_each(|(key, value)| same_shape(value, &got[key], &format!("{path}.{key}")))
        }
        (Value::Array(want), Value::Array(got)) => {
            if want.len() != got.len() {
                return Err(format!(
                    "{path} has {} items, not {}",
                    got.len(),
                    want.len()
                ));
            }
            want.iter()
                .zip(got)
                .enumerate()
                .try_for_each(|(i, (w, g))| same_shape(w, g, &format!("{path}[{i}]")))
        }
        (Value::String(want), Value::String(_)) if want.starts_with('<') && want.ends_with('>') => {
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path} is {actual}, not {expected}")),
    }
}

/// A ```toml block is a configuration Tessera accepts, on its own.
fn loads_as_configuration(block: &Block) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(&file, block.body.join("\n")).unwrap();
    let output = Command::new(BIN)
        .args(["--config", &file.display().to_string(), "openapi"])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "README.md:{}: the toml block is not a configuration Tessera loads quietly:\n{}",
        block.line,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The "Command line" listing names exactly the subcommands of `tessera --help`.
fn lists_every_subcommand(block: &Block) {
    let listed: BTreeSet<String> = block
        .body
        .iter()
        .filter_map(|line| line.strip_prefix("tessera "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let help = Command::new(BIN)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    let known: BTreeSet<String> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(
        !known.is_empty(),
        "no subcommands in `tessera --help`:\n{help}"
    );
    assert_eq!(
        listed, known,
        "README.md:{}: the Command line section against `tessera --help`",
        block.line
    );
}

#[test]
fn placeholders_and_shapes() {
    assert_eq!(placeholder_in("Token <key> x"), Some("<key>"));
    assert_eq!(placeholder_in("a -> b < c"), None);
    let expected = json!({"key": "<40 hex characters>", "n": 1});
    assert!(same_shape(&expected, &json!({"key": "abc", "n": 1}), "a").is_ok());
    assert!(same_shape(&expected, &json!({"key": "abc", "n": 2}), "a").is_err());
    assert!(same_shape(&expected, &json!({"key": "abc"}), "a").is_err());
    assert!(same_shape(&expected, &json!({"key": 5, "n": 1}), "a").is_err());
    assert!(is_assignment("TESSERA_AUTH__MODE=jwt"));
    assert!(!is_assignment("--config=x"));
}
