//! The operating system's installation id: the last-resort anchor (profile §3). It changes
//! with every reinstall and is copied with every cloned image, so it is marked the weakest.

use std::path::Path;

/// Where systemd keeps the machine id (`LAPWING_MACHINE_ID_FILE` replaces it, for tests).
pub const LINUX_MACHINE_ID: &str = "/etc/machine-id";
/// Older systems without systemd keep D-Bus's copy only.
#[cfg(not(any(windows, target_os = "macos")))]
const LINUX_DBUS_MACHINE_ID: &str = "/var/lib/dbus/machine-id";

/// What reading the id found. `Debug` leaves the id out.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OsIdState {
    /// The id, trimmed and lowercase (its canonical form).
    Present(String),
    Absent,
    PermissionDenied,
    Failed(String),
}

impl std::fmt::Debug for OsIdState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Present(_) => f.write_str("Present(<redacted>)"),
            Self::Absent => f.write_str("Absent"),
            Self::PermissionDenied => f.write_str("PermissionDenied"),
            Self::Failed(reason) => f.debug_tuple("Failed").field(reason).finish(),
        }
    }
}

/// The canonical form of an id: trimmed, lowercase.
pub fn canonical(text: &str) -> String {
    text.trim().to_lowercase()
}

/// Why an id is not plausible: empty, systemd's `uninitialized` (first boot not finished), or
/// one repeated character (all zero).
pub fn implausibility(id: &str) -> Option<&'static str> {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return Some("empty");
    };
    if id == "uninitialized" {
        return Some("not initialized yet (first boot)");
    }
    if chars.all(|c| c == first) {
        return Some("one repeated character");
    }
    None
}

/// Reads the id. On Linux from `path` (normally [`LINUX_MACHINE_ID`], falling back to D-Bus's
/// copy when that is the default and missing).
pub fn read(path: &Path) -> OsIdState {
    #[cfg(windows)]
    {
        let _ = path;
        from_command(
            "reg",
            &[
                "query",
                r"HKLM\SOFTWARE\Microsoft\Cryptography",
                "/v",
                "MachineGuid",
            ],
            "MachineGuid",
        )
    }
    #[cfg(target_os = "macos")]
    {
        let _ = path;
        from_command(
            "ioreg",
            &["-rd1", "-c", "IOPlatformExpertDevice"],
            "\"IOPlatformUUID\"",
        )
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    {
        let state = read_file(path);
        if state == OsIdState::Absent && path == Path::new(LINUX_MACHINE_ID) {
            return read_file(Path::new(LINUX_DBUS_MACHINE_ID));
        }
        state
    }
}

#[cfg(not(any(windows, target_os = "macos")))]
fn read_file(path: &Path) -> OsIdState {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => OsIdState::Absent,
        Ok(text) => OsIdState::Present(canonical(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => OsIdState::Absent,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => OsIdState::PermissionDenied,
        Err(e) => OsIdState::Failed(format!("{}: {e}", path.display())),
    }
}

/// Runs a system tool and takes the last word of the line that holds `key` (Windows `reg`,
/// macOS `ioreg`): no registry or IOKit bindings for one value.
#[cfg(any(windows, target_os = "macos"))]
fn from_command(program: &str, args: &[&str], key: &str) -> OsIdState {
    match std::process::Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains(key))
            .and_then(|l| l.split_whitespace().last())
            .map_or(OsIdState::Absent, |v| {
                OsIdState::Present(canonical(v.trim_matches('"')))
            }),
        Ok(out) => OsIdState::Failed(format!("{program} exited with {}", out.status)),
        Err(e) => OsIdState::Failed(format!("{program}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_and_plausibility() {
        assert_eq!(
            canonical(" 3D1219C7c4c5404aaa1f6d2a48adfda4\n"),
            "3d1219c7c4c5404aaa1f6d2a48adfda4"
        );
        assert!(implausibility("").is_some());
        assert!(implausibility("uninitialized").is_some());
        assert!(implausibility("00000000000000000000000000000000").is_some());
        assert_eq!(implausibility("3d1219c7c4c5404aaa1f6d2a48adfda4"), None);
    }

    #[cfg(not(any(windows, target_os = "macos")))]
    #[test]
    fn reads_a_file_and_reports_absence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("machine-id");
        assert_eq!(read(&path), OsIdState::Absent);
        std::fs::write(&path, "ABCDEF0123456789abcdef0123456789\n").expect("write");
        assert_eq!(
            read(&path),
            OsIdState::Present("abcdef0123456789abcdef0123456789".to_owned())
        );
    }

    /// Windows (run under Wine): the registry's MachineGuid, through `reg query`, in its
    /// canonical form; the path is not consulted.
    #[cfg(windows)]
    #[test]
    fn reads_machine_guid_from_the_registry() {
        let state = read(Path::new(r"C:\nonexistent\machine-id"));
        let OsIdState::Present(id) = state else {
            panic!("MachineGuid not read: {state:?}");
        };
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "a GUID: {id}");
        assert!(
            id.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "canonical (lowercase hex): {id}"
        );
        assert_eq!(implausibility(&id), None);
    }
}
