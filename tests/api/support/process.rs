//! The real `tessera` binary (the one cargo built for these tests), run in a directory of
//! its own with none of the caller's `TESSERA_*` or `DATABASE_URL` variables.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::free_port;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// `tessera ARGS` in `dir`, with only `PATH` and `env` in its environment.
pub fn tessera(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    tessera(dir, args, env).output().expect("the binary runs")
}

/// A running `tessera serve`, killed if the test ends without stopping it.
pub struct ServeProcess {
    child: Option<Child>,
    pub base: String,
}

impl ServeProcess {
    /// `tessera serve` in `dir` on a free port, with `env`. Its log (stderr) goes to `log_file`
    /// when given, else it is captured for `stop`.
    pub fn start(dir: &Path, env: &[(&str, &str)], log_file: Option<&Path>) -> Self {
        let bind = format!("127.0.0.1:{}", free_port());
        let mut env = env.to_vec();
        env.push(("TESSERA_BIND", &bind));
        let stderr = match log_file {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::piped(),
        };
        let child = tessera(dir, &["serve"], &env)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("serve starts");
        Self {
            child: Some(child),
            base: format!("http://{bind}"),
        }
    }

    pub async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve exited early with {status}");
            }
            let ready = client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "serve did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status, what was logged (stderr, unless it went to a file) and
    /// printed (stdout).
    pub fn stop(mut self) -> (ExitStatus, String, String) {
        let child = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One request with an optional `Token` and JSON body; the status and the body as JSON.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
