//! One way to write a file that must never be half-written: state, catalogs, keys, anchor
//! files, the insecure secret store. A crash or a full disk leaves the old content or the new,
//! never a mix, and never a stray temporary file after an error.
//!
//! On Windows it also reads who owns a file and who may write it ([`windows_security`]): the
//! one place this crate calls the platform's C API, and so the one module allowed `unsafe`.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]

#[cfg(windows)]
#[allow(unsafe_code)]
pub mod windows_security;

/// What a Windows security descriptor says about writing a file or folder, as SID strings
/// (`S-1-5-32-544`): read by [`windows_security::write_access`] on Windows, plain data
/// everywhere so the rules over it are tested on any platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowsWriteAccess {
    pub owner: String,
    /// Whoever an entry that applies to this object allows to write. `None` when there is no
    /// access list at all, which lets everyone do everything.
    pub writers: Option<Vec<String>>,
    /// Types of entries the reader does not interpret (anything but allow and deny), which
    /// a rule should treat as untrustworthy rather than guess.
    pub unread_entry_types: Vec<u8>,
}

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` through a temporary file in the same directory: created with
/// `mode` (Unix permission bits, applied before any byte is written and again after the
/// umask), flushed to disk, renamed over the target, and the directory flushed so the rename
/// itself survives a power cut.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_all_atomically(&[FileWrite { path, bytes, mode }], 1)
        .pop()
        .unwrap_or_else(|| Err(std::io::Error::other("no result for the one file written")))
}

/// One file of a [`write_all_atomically`] batch.
#[derive(Debug, Clone, Copy)]
pub struct FileWrite<'a> {
    pub path: &'a Path,
    pub bytes: &'a [u8],
    /// Unix permission bits of the new file.
    pub mode: u32,
}

/// Writes several files, each as [`write_atomically`] does, with the flushes shared: every
/// temporary is written first, then all are flushed (by up to `parallel` threads, so that
/// the device can join flushes that wait at the same time), then each is renamed, then each
/// directory is flushed once, not once per file. For N files in one directory that is N file
/// flushes side by side and one directory flush instead of 2N flushes one after another
/// (per round of 256 files, to stay far from the limit on open files).
///
/// Each file's result is its own, in the order given: a file that fails keeps its old content
/// and leaves no temporary, and the others still land. When this returns `Ok` for a file, its
/// new content and its name are both on disk.
pub fn write_all_atomically(files: &[FileWrite<'_>], parallel: usize) -> Vec<std::io::Result<()>> {
    // Each staged file holds a descriptor until its rename: in rounds, so that a batch of
    // thousands never runs into the process's limit on open files (often 1,024).
    const FILES_PER_ROUND: usize = 256;
    files
        .chunks(FILES_PER_ROUND)
        .flat_map(|round| write_round(round, &[], parallel))
        .collect()
}

/// Replaces the file at `path` keeping its permission bits, its owner and its group (as
/// [`write_atomically`] does otherwise): a file other users or services read, such as a
/// `root:lapd 0640` catalog, stays readable by them and by nobody else. A file that does
/// not exist yet is created with `new_mode`. When the owner or the group cannot be kept
/// (not allowed to give the file away), nothing changes and the error says so.
pub fn replace_keeping_access(path: &Path, bytes: &[u8], new_mode: u32) -> std::io::Result<()> {
    let access = match std::fs::metadata(path) {
        Ok(meta) => Access::of(&meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Access {
            mode: new_mode,
            owner: None,
        },
        Err(e) => return Err(e),
    };
    write_round(
        &[FileWrite {
            path,
            bytes,
            mode: access.mode,
        }],
        &[access.owner],
        1,
    )
    .pop()
    .unwrap_or_else(|| Err(std::io::Error::other("no result for the one file written")))
}

/// Creates the directory `path` (and its missing parents) readable by its owner only (0700),
/// or narrows it to 0700 if it exists with access for the group or others. Returns the bits
/// it had when it had to narrow them, for the caller to log. Directories of private files
/// (license keys, records holding session keys) are made so.
pub fn create_private_dir(path: &Path) -> std::io::Result<Option<u32>> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => narrow_to_owner(path, &meta),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "exists and is not a directory",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            #[cfg_attr(not(unix), allow(unused_mut, reason = "only Unix sets a mode"))]
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            match builder.create(path) {
                // Another process created it meanwhile: check it as an existing one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    narrow_to_owner(path, &std::fs::metadata(path)?)
                }
                other => other.map(|()| None),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn narrow_to_owner(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    let group_and_others = mode & 0o077;
    if group_and_others == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    Ok(Some(mode))
}

#[cfg(not(unix))]
#[allow(
    clippy::unnecessary_wraps,
    reason = "one signature with the Unix version, which can fail"
)]
fn narrow_to_owner(_path: &Path, _meta: &std::fs::Metadata) -> std::io::Result<Option<u32>> {
    // Per-user folders on Windows (LOCALAPPDATA) inherit an owner-only ACL.
    Ok(None)
}

/// The mode, owner and group a rewritten file keeps.
struct Access {
    mode: u32,
    /// `(uid, gid)`: `None` leaves the new file the writer's.
    owner: Option<(u32, u32)>,
}

impl Access {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            mode: meta.mode() & 0o7777,
            owner: Some((meta.uid(), meta.gid())),
        }
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Self {
        Self {
            mode: 0o644,
            owner: None,
        }
    }
}

fn write_round(
    files: &[FileWrite<'_>],
    owners: &[Option<(u32, u32)>],
    parallel: usize,
) -> Vec<std::io::Result<()>> {
    // Stage 1: temporaries written, not yet flushed.
    let mut staged: Vec<std::io::Result<(PathBuf, File)>> = files
        .iter()
        .enumerate()
        .map(|(n, f)| write_temporary(f.path, f.bytes, f.mode, owners.get(n).copied().flatten()))
        .collect();
    // Stage 2: flushed, side by side.
    flush_all(&mut staged, parallel);
    // Stage 3: renamed over their targets, then each directory flushed once.
    let mut results: Vec<std::io::Result<()>> = Vec::with_capacity(files.len());
    let mut renamed_in: Vec<(PathBuf, Vec<usize>)> = Vec::new();
    for (n, (file, stage)) in files.iter().zip(staged).enumerate() {
        let result = stage.and_then(|(tmp, handle)| {
            drop(handle);
            rename_over(&tmp, file.path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        });
        if result.is_ok() {
            let dir = parent(file.path).to_owned();
            match renamed_in.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, members)) => members.push(n),
                None => renamed_in.push((dir, vec![n])),
            }
        }
        results.push(result);
    }
    #[cfg(unix)]
    for (dir, members) in renamed_in {
        if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
            // The renames happened but may not survive a power cut: say so for each.
            for n in members {
                results[n] = Err(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
    }
    results
}

/// Renames `tmp` over `path`. On Unix one `rename`, atomic even when others rename over the
/// same name at the same moment.
#[cfg(not(windows))]
fn rename_over(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, path)
}

/// Renames `tmp` over `path`. Windows refuses a replacing rename with "access denied" or a
/// sharing violation while another writer is replacing the same name or a reader holds it
/// open for a moment (seen under Wine with eight threads writing one file); the refusal
/// passes within milliseconds, so it is retried for up to about half a second, the way
/// npm's graceful-fs does. Any other error, or one that lasts, is returned.
#[cfg(windows)]
fn rename_over(tmp: &Path, path: &Path) -> std::io::Result<()> {
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    let mut waited = std::time::Duration::ZERO;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match std::fs::rename(tmp, path) {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION)
                ) && waited < std::time::Duration::from_millis(500) =>
            {
                std::thread::sleep(pause);
                waited += pause;
                pause = (pause * 2).min(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates `path`'s temporary next to it with `mode` (and `owner`, when given) and writes
/// `bytes` into it; on error nothing is left behind.
fn write_temporary(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<(PathBuf, File)> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
        })?
        .to_string_lossy();
    // Unique per process and per call: threads of one process may write side by side.
    let tmp = parent(path).join(format!(
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
    let mut file = options.open(&tmp)?;
    match give_access_and_write(&mut file, mode, owner, bytes) {
        Ok(()) => Ok((tmp, file)),
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Gives a new temporary its owner and mode (Unix; Windows files inherit their folder's
/// ACL), then its bytes.
fn give_access_and_write(
    file: &mut File,
    mode: u32,
    owner: Option<(u32, u32)>,
    bytes: &[u8],
) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Before the mode: a change of owner clears the set-id bits.
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&*file, Some(uid), Some(gid))?;
        }
        // The umask may have narrowed the mode (a 0644 file others must read).
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (mode, owner);
    file.write_all(bytes)
}

/// Flushes every staged temporary, by up to `parallel` threads; one that fails is removed
/// and its entry becomes the error.
fn flush_all(staged: &mut [std::io::Result<(PathBuf, File)>], parallel: usize) {
    let flush = |entry: &mut std::io::Result<(PathBuf, File)>| {
        if let Ok((tmp, file)) = entry
            && let Err(e) = file.sync_all()
        {
            let _ = std::fs::remove_file(&*tmp);
            *entry = Err(e);
        }
    };
    let threads = parallel.clamp(1, staged.len().max(1));
    if threads == 1 {
        staged.iter_mut().for_each(flush);
        return;
    }
    let chunk = staged.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for part in staged.chunks_mut(chunk) {
            scope.spawn(move || part.iter_mut().for_each(flush));
        }
    });
}

/// Removes the temporary files [`write_atomically`] left next to `path` when a writer was
/// killed between writing and renaming. Only files of processes that no longer run are
/// removed: a live writer (this process's other threads, another process) keeps its own.
/// Where it cannot tell whether a process runs (no `/proc`), it removes nothing.
pub fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    if can_tell_liveness() {
        remove_temporaries(dir, &temporary_prefix(name), writer_is_gone);
    }
}

/// [`remove_stale_temporaries`] for every file of `dir` at once: one directory read for a
/// batch of files written there.
pub fn remove_stale_temporaries_in(dir: &Path) {
    if can_tell_liveness() {
        remove_temporaries(dir, ".", writer_is_gone);
    }
}

/// Removes every temporary [`write_atomically`] left next to `path`, whichever process wrote
/// it, on every platform. Only for a caller that holds the lock every writer of `path` takes
/// first: under it no write of `path` is under way, so each temporary is a killed writer's,
/// even one whose process id has since been reused by a live process.
pub fn remove_temporaries_under_lock(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    remove_temporaries(dir, &temporary_prefix(name), |_| true);
}

fn temporary_prefix(name: &std::ffi::OsStr) -> String {
    format!(".{}.tmp-", name.to_string_lossy())
}

fn can_tell_liveness() -> bool {
    Path::new("/proc/self").exists()
}

fn writer_is_gone(pid: u32) -> bool {
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes `dir`'s `<prefix>…tmp-<pid>-<n>` files whose writer `remove` says may go.
fn remove_temporaries(dir: &Path, prefix: &str, remove: impl Fn(u32) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .filter(|n| n.starts_with(prefix))
            .and_then(|n| n.rsplit_once(".tmp-"))
            .and_then(|(_, rest)| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if remove(pid) {
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

    #[test]
    fn under_the_lock_every_temporary_of_the_file_goes_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomically(&path, b"{}", 0o600).expect("write");
        // Under the lock even a temporary named after a running process (this one: its id
        // reused after a killed writer) cannot belong to a write under way.
        let own = format!(".state.json.tmp-{}-3", std::process::id());
        for name in [
            ".state.json.tmp-4194305-0",
            own.as_str(),
            ".state.json.corrupt-7",
            ".other.json.tmp-4194305-0",
            "state.json.tmp-1-1",
        ] {
            std::fs::write(dir.path().join(name), b"partial").expect("file");
        }
        remove_temporaries_under_lock(&path);
        assert_eq!(
            entries(dir.path()),
            [
                ".other.json.tmp-4194305-0",
                ".state.json.corrupt-7",
                "state.json",
                "state.json.tmp-1-1"
            ]
        );
    }

    #[test]
    fn a_directory_sweep_removes_every_dead_writers_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = [".a.json.tmp-4194305-0", ".b.json.tmp-4194306-3"];
        let live = format!(".c.json.tmp-{}-1", std::process::id());
        for name in dead
            .iter()
            .copied()
            .chain([live.as_str(), "a.json", "notes.tmp-1-2"])
        {
            std::fs::write(dir.path().join(name), b"x").expect("file");
        }
        remove_stale_temporaries_in(dir.path());
        assert_eq!(
            entries(dir.path()),
            [live.as_str(), "a.json", "notes.tmp-1-2"]
        );
    }

    #[test]
    fn a_batch_lands_every_file_in_every_directory_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = dir.path().join("other");
        std::fs::create_dir(&other).expect("mkdir");
        // More than one round of 256 open temporaries.
        let paths: Vec<PathBuf> = (0..600)
            .map(|n| if n % 3 == 0 { &other } else { dir.path() }.join(format!("r{n}.json")))
            .collect();
        std::fs::write(&paths[5], b"old").expect("old content");
        let bodies: Vec<Vec<u8>> = (0..600)
            .map(|n| format!("record {n}").into_bytes())
            .collect();
        let files: Vec<FileWrite<'_>> = paths
            .iter()
            .zip(&bodies)
            .map(|(path, bytes)| FileWrite {
                path,
                bytes,
                mode: 0o640,
            })
            .collect();
        for parallel in [1, 8] {
            let results = write_all_atomically(&files, parallel);
            assert_eq!(results.len(), 600);
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            for (path, bytes) in paths.iter().zip(&bodies) {
                assert_eq!(&std::fs::read(path).expect("read"), bytes);
            }
        }
        assert!(entries(dir.path()).iter().all(|n| !n.contains(".tmp-")));
        assert!(entries(&other).iter().all(|n| !n.contains(".tmp-")));
    }

    #[test]
    fn a_failing_file_in_a_batch_changes_only_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.json");
        let kept = dir.path().join("kept.json");
        std::fs::write(&kept, b"old").expect("old");
        // A target that is a non-empty directory: its temporary is written and flushed, and
        // the rename fails.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).expect("mkdir");
        let missing_dir = dir.path().join("no/such/dir/x.json");
        let results = write_all_atomically(
            &[
                FileWrite {
                    path: &blocked,
                    bytes: b"new",
                    mode: 0o600,
                },
                FileWrite {
                    path: &good,
                    bytes: b"good",
                    mode: 0o600,
                },
                FileWrite {
                    path: &missing_dir,
                    bytes: b"x",
                    mode: 0o600,
                },
                FileWrite {
                    path: &kept,
                    bytes: b"replaced",
                    mode: 0o600,
                },
            ],
            4,
        );
        assert!(results[0].is_err() && results[2].is_err());
        assert!(results[1].is_ok() && results[3].is_ok());
        assert_eq!(std::fs::read(&good).expect("good"), b"good");
        assert_eq!(std::fs::read(&kept).expect("kept"), b"replaced");
        assert!(
            blocked.join("inside").is_dir(),
            "the failed target is as it was"
        );
        assert_eq!(entries(dir.path()), ["blocked", "good.json", "kept.json"]);
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    fn gid_of(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).expect("meta").gid()
    }

    /// A group this process may give its files other than `not`: any as root, else one of
    /// its supplementary groups (`/proc/self/status`), if it has one.
    #[cfg(unix)]
    fn another_group(not: u32) -> Option<u32> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|rest| {
                    rest.split_whitespace()
                        .filter_map(|n| n.parse::<u32>().ok())
                        .collect::<Vec<u32>>()
                })
                .unwrap_or_default()
        };
        if field("Uid:").get(1) == Some(&0) {
            return Some(if not == 4242 { 4243 } else { 4242 });
        }
        field("Groups:").into_iter().find(|g| *g != not)
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_mode_and_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.toml");
        write_atomically(&path, b"old", 0o640).expect("write");
        let group = another_group(gid_of(&path));
        if let Some(gid) = group {
            std::os::unix::fs::chown(&path, None, Some(gid)).expect("chgrp");
        }
        let before = gid_of(&path);
        replace_keeping_access(&path, b"new", 0o644).expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert_eq!(mode_of(&path), 0o640, "the mode is kept, not the default");
        assert_eq!(gid_of(&path), before, "the group is kept");
        assert_eq!(entries(dir.path()), ["catalog.toml"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_replaced_for_the_first_time_gets_the_new_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.toml");
        replace_keeping_access(&path, b"first", 0o600).expect("create");
        assert_eq!(mode_of(&path), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_private_dir_is_created_owner_only_and_a_loose_one_is_narrowed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let new = dir.path().join("share/lapwing");
        assert_eq!(create_private_dir(&new).expect("create"), None);
        assert_eq!(mode_of(&new), 0o700);
        assert_eq!(
            create_private_dir(&new).expect("again"),
            None,
            "already private"
        );

        let loose = dir.path().join("loose");
        std::fs::create_dir(&loose).expect("mkdir");
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(create_private_dir(&loose).expect("narrow"), Some(0o755));
        assert_eq!(mode_of(&loose), 0o700);

        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("file");
        assert!(
            create_private_dir(&file).is_err(),
            "a file is not a directory"
        );
    }
}
