//! A real SMTP server for tests: `tests/api/support/smtp_sink.py` (aiosmtpd) in a child process,
//! storing every accepted message as a file the test reads back.
//!
//! Python and aiosmtpd come from a virtualenv the harness builds once per machine under
//! `<target>/test-tools/venv`, so a fresh checkout passes with plain `cargo test`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port;
use super::mail::ReceivedMail;

/// The aiosmtpd release the sink runs on. Changing it rebuilds the virtualenv.
pub const AIOSMTPD: &str = "aiosmtpd==1.4.6";

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/support/smtp_sink.py"
);
/// A cold Python start plus aiosmtpd's own readiness check takes well under a second.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `start_on` waits for a port that is still being released.
const PORT_WAIT: Duration = Duration::from_secs(10);

/// The virtualenv's interpreter, built on first use (see `tools`).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| super::tools::python_venv("venv", &[AIOSMTPD]))
        .clone()
}

/// A running SMTP server that stores what it receives. Stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: TempDir,
    child: Child,
    /// Held open: the sink exits when it closes, even if this test process dies.
    _stdin: ChildStdin,
}

impl SmtpSink {
    /// A sink on a free port that accepts every message.
    pub fn start() -> Self {
        Self::start_free(None)
    }

    /// A sink on a free port that answers every message with `reply` after DATA (e.g.
    /// `451 4.3.0 Try again later` or `550 5.1.1 No such user`) and stores nothing.
    pub fn start_with_reply(reply: &str) -> Self {
        Self::start_free(Some(reply))
    }

    /// A sink on `port`, e.g. to bring a server back where the app was configured to look.
    /// Waits a little for the port if it is still being released.
    pub fn start_on(port: u16) -> Self {
        let deadline = Instant::now() + PORT_WAIT;
        loop {
            match Self::spawn(port, None) {
                Ok(sink) => return sink,
                Err(log) if Instant::now() >= deadline => {
                    panic!("the SMTP sink did not start on port {port}:\n{log}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn start_free(reply: Option<&str>) -> Self {
        let mut last = String::new();
        // The port is free when chosen but another process may take it before the sink binds.
        for _ in 0..5 {
            match Self::spawn(free_port(), reply) {
                Ok(sink) => return sink,
                Err(log) => last = log,
            }
        }
        panic!("the SMTP sink did not start:\n{last}");
    }

    /// Starts the sink; on failure, returns what it printed.
    fn spawn(port: u16, reply: Option<&str>) -> Result<Self, String> {
        let python = python();
        let dir = tempfile::tempdir().expect("temporary directory");
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).expect("create the mail directory");
        let log_path = dir.path().join("sink.log");
        let log = std::fs::File::create(&log_path).expect("create the sink log");

        let mut command = Command::new(&python);
        command
            .arg(SCRIPT)
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(&mail)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(reply) = reply {
            command.arg("--reply").arg(reply);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", python.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let ready = rx
            .recv_timeout(READY_TIMEOUT)
            .is_ok_and(|line| line.trim() == "ready");
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("(port {port}) {log}"));
        }
        Ok(Self {
            port,
            dir,
            child,
            _stdin: stdin,
        })
    }

    /// Kills the server and waits for it: its port is free when this returns.
    pub fn stop(self) {
        drop(self);
    }

    /// `smtp://127.0.0.1:PORT`, for `email.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in the order received.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path().join("mail"))
            .expect("read the mail directory")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let n = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".eml")?
                    .parse()
                    .ok()?;
                Some((n, path))
            })
            .collect();
        numbered.sort();
        numbered
            .into_iter()
            .map(|(_, path)| ReceivedMail::parse(std::fs::read(&path).expect("read a message")))
            .collect()
    }

    /// Waits until at least `count` messages have arrived and returns all of them; panics
    /// after `timeout` saying what did arrive.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if Instant::now() >= deadline {
                let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
                let log =
                    std::fs::read_to_string(self.dir.path().join("sink.log")).unwrap_or_default();
                panic!(
                    "expected {count} message(s) at the SMTP sink on port {} within {timeout:?}, \
                     got {}: {subjects:?}\nsink log:\n{log}",
                    self.port,
                    messages.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
