//! One way to write a file that must never be half-written: state, catalogs, keys, anchor
//! files, the insecure secret store. A crash or a full disk leaves the old content or the new,
//! never a mix, and never a stray temporary file after an error.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` through a temporary file in the same directory: created with
/// `mode` (Unix permission bits, applied before any byte is written and again after the
/// umask), flushed to disk, renamed over the target, and the directory flushed so the rename
/// itself survives a power cut.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
        })?
        .to_string_lossy();
    // Unique per process and per call: threads of one process may write side by side.
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        // The umask may have narrowed the mode (a 0644 file others must read).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes the temporary files [`write_atomically`] left next to `path` when a writer was
/// killed between writing and renaming. Only files of processes that no longer run are
/// removed: a live writer (this process's other threads, another process) keeps its own.
/// Where it cannot tell whether a process runs (no `/proc`), it removes nothing.
pub fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let proc_fs = Path::new("/proc/self");
    if !proc_fs.exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_content_with_the_mode_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomically(&path, b"old", 0o600).expect("first write");
        write_atomically(&path, b"new", 0o644).expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert_eq!(entries(dir.path()), ["state.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomically(&path, b"good", 0o600).expect("write");
        // Renaming over a directory fails after the temporary file was written.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).expect("mkdir");
        std::fs::write(blocked.join("x"), b"x").expect("write");
        assert!(write_atomically(&blocked, b"bad", 0o600).is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"good");
        assert_eq!(entries(dir.path()), ["blocked", "state.json"]);
    }

    #[test]
    fn threads_may_write_side_by_side() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::thread::scope(|s| {
            for n in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomically(path, &[n; 64], 0o600).expect("write");
                    }
                });
            }
        });
        let content = std::fs::read(&path).expect("read");
        assert_eq!(content.len(), 64);
        assert!(content.iter().all(|b| *b == content[0]), "never a mix");
        assert_eq!(entries(dir.path()), ["f"]);
    }

    #[test]
    fn stale_temporaries_of_dead_writers_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("acme.json");
        write_atomically(&path, b"{}", 0o644).expect("write");
        // A pid above the kernel's limit (2^22) never runs; this process does.
        let dead = dir.path().join(".acme.json.tmp-4194305-0");
        let live = dir
            .path()
            .join(format!(".acme.json.tmp-{}-9", std::process::id()));
        let other = dir.path().join(".other.json.tmp-4194305-0");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"partial").expect("temporary");
        }
        remove_stale_temporaries(&path);
        assert!(!dead.exists(), "a dead writer's temporary is removed");
        assert!(live.exists(), "a live writer's temporary is kept");
        assert!(other.exists(), "another file's temporary is not touched");
        assert!(path.exists());
    }
}
