//! Files only Tessera's own user may read, whatever the umask: the SQLite database (password
//! hashes, digests, audit IPs) with its `-wal` and `-shm` files, the generated secret key, and
//! mail written by the `file` backend (live links). Files are `0600`, folders `0700`.

use std::io::{self, Write};
use std::path::Path;

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Creates `path` (which must not exist) readable by its owner only, with `contents`.
pub fn create_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates the folder (and its parents) if missing, and makes it the owner's only.
pub fn create_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)?;
    set_mode(path, DIR_MODE)
}

/// Prepares a SQLite database file before the first connection: creates it `0600` when
/// missing (SQLite gives its `-wal` and `-shm` files the database file's mode), and takes
/// group and other access away from an existing one and its companions.
pub fn prepare_sqlite(path: &Path) -> io::Result<()> {
    if !path.exists() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        // An empty file is an empty SQLite database.
        match create_new(path, b"") {
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
            _ => {}
        }
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        // A file another user owns (shared on purpose, say) cannot be changed: say so and go
        // on, as SQLite itself will.
        if file.exists()
            && let Err(err) = set_mode(file, FILE_MODE)
        {
            tracing::warn!(
                file = %file.display(),
                error = %err,
                "could not make the database file private (0600)"
            );
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
