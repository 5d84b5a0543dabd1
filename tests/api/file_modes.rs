//! What Tessera writes to disk is its own user's alone, whatever the umask: the SQLite
//! database and its `-wal` and `-shm` files, the generated secret key, and the `file` mail
//! backend's folder (`0700`) and messages (`0600`, they hold live links).

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::process::{BIN, ServeProcess};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `tessera ARGS` in `dir` under `umask 000`, where nothing is private unless Tessera says so.
fn run_with_open_umask(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let output = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_key_and_mail_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TESSERA_EMAIL__BACKEND", "file"),
        ("TESSERA_EMAIL__FILE_DIR", "mail/out"),
    ];
    run_with_open_umask(dir.path(), &["migrate"], &env);
    run_with_open_umask(dir.path(), &["sendtestemail", "ada@example.com"], &env);

    assert_eq!(mode(&dir.path().join("tessera.db")), 0o600);
    let mail = dir.path().join("mail/out");
    assert_eq!(mode(&mail), 0o700, "mail folder");
    let messages: Vec<_> = std::fs::read_dir(&mail)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(mode(&messages[0]), 0o600, "{}", messages[0].display());

    // While it serves, the WAL and shared-memory files exist: private too. A database left
    // readable by an older version is closed up at start.
    std::fs::set_permissions(
        dir.path().join("tessera.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut server = ServeProcess::start(dir.path(), &env, None);
    server.wait_ready(&crate::support::http_client()).await;
    for file in [
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
        "tessera.secret",
    ] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
    }
    server.stop();
}
