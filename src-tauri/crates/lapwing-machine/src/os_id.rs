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
                WINDOWS_MACHINE_GUID.key,
            ],
            &WINDOWS_MACHINE_GUID,
        )
    }
    #[cfg(target_os = "macos")]
    {
        let _ = path;
        from_command(
            "ioreg",
            &["-rd1", "-c", "IOPlatformExpertDevice"],
            &MACOS_PLATFORM_UUID,
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

/// How a system tool prints the id: on the line whose first word is `key`, after the word
/// `separator`, optionally in double quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLine {
    pub key: &'static str,
    pub separator: &'static str,
}

/// Windows: `reg query HKLM\SOFTWARE\Microsoft\Cryptography /v MachineGuid` prints
/// `    MachineGuid    REG_SZ    3d1219c7-c4c5-404a-aa1f-6d2a48adfda4`.
pub const WINDOWS_MACHINE_GUID: ToolLine = ToolLine {
    key: "MachineGuid",
    separator: "REG_SZ",
};

/// macOS: `ioreg -rd1 -c IOPlatformExpertDevice` prints, among the device's properties,
/// `      "IOPlatformUUID" = "564D1A2B-3C4D-5E6F-7A8B-9C0D1E2F3A4B"`. The quotes are part of
/// the key, so that `"IOPlatformUUIDx"` or a value mentioning the name does not match.
pub const MACOS_PLATFORM_UUID: ToolLine = ToolLine {
    key: "\"IOPlatformUUID\"",
    separator: "=",
};

/// The id in a system tool's output (Windows `reg`, macOS `ioreg`), in its canonical form.
/// Pure, so that both platforms' parsing is tested on every platform. No line for the key,
/// or an empty value, is `Absent` (as an empty machine-id file is on Linux); a line for the
/// key in another shape is `Failed`, its reason naming the key and never the line (which may
/// hold the id).
pub fn parse_tool_output(output: &str, line: &ToolLine) -> OsIdState {
    let Some(found) = output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(line.key))
    else {
        return OsIdState::Absent;
    };
    let mut after_key = found.split_whitespace().skip(1);
    if after_key.next() != Some(line.separator) {
        return OsIdState::Failed(format!(
            "the {} line has no {:?} after the name",
            line.key, line.separator
        ));
    }
    let value = after_key.collect::<Vec<_>>().join(" ");
    let value = value.trim_matches('"');
    if value.trim().is_empty() {
        OsIdState::Absent
    } else {
        OsIdState::Present(canonical(value))
    }
}

/// Runs a system tool and reads the id from its output: no registry or IOKit bindings for
/// one value.
#[cfg(any(windows, target_os = "macos"))]
fn from_command(program: &str, args: &[&str], line: &ToolLine) -> OsIdState {
    match std::process::Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => {
            parse_tool_output(&String::from_utf8_lossy(&out.stdout), line)
        }
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

    /// Shaped like what `ioreg -rd1 -c IOPlatformExpertDevice` prints on an Apple silicon Mac
    /// (serial and UUID replaced), other properties before and after the one read.
    /// `IOPlatformUUIDCache` is not Apple's: it is here to show that a look-alike name is not
    /// taken for the id.
    const IOREG_OUTPUT: &str = r##"+-o J314sAP  <class IOPlatformExpertDevice, id 0x100000114, registered, matched, active, busy 0 (14 ms), retain 39>
    {
      "#address-cells" = <02000000>
      "IOPlatformSerialNumber" = "C02ZZ0ZZZZZZ"
      "IOPolledInterface" = "AppleARMWatchdogTimerHibernateHandler is not serializable"
      "model" = <"MacBookPro18,3">
      "IOPlatformUUIDCache" = "00000000-0000-0000-0000-000000000000"
      "IOPlatformUUID" = "564D1A2B-3C4D-5E6F-7A8B-9C0D1E2F3A4B"
      "serial-number" = <43303200000000000000000000>
    }
"##;

    /// What `reg query HKLM\SOFTWARE\Microsoft\Cryptography /v MachineGuid` prints.
    const REG_OUTPUT: &str = "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Cryptography\r\n    \
        MachineGuid    REG_SZ    3D1219C7-C4C5-404A-AA1F-6D2A48ADFDA4\r\n\r\n";

    #[test]
    fn macos_platform_uuid_is_read_from_ioreg_output() {
        assert_eq!(
            parse_tool_output(IOREG_OUTPUT, &MACOS_PLATFORM_UUID),
            OsIdState::Present("564d1a2b-3c4d-5e6f-7a8b-9c0d1e2f3a4b".to_owned())
        );
    }

    #[test]
    fn windows_machine_guid_is_read_from_reg_output() {
        assert_eq!(
            parse_tool_output(REG_OUTPUT, &WINDOWS_MACHINE_GUID),
            OsIdState::Present("3d1219c7-c4c5-404a-aa1f-6d2a48adfda4".to_owned())
        );
    }

    #[test]
    fn a_missing_key_or_an_empty_value_is_absent() {
        let without_uuid: String = IOREG_OUTPUT
            .lines()
            .filter(|l| !l.contains("\"IOPlatformUUID\" ="))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            parse_tool_output(&without_uuid, &MACOS_PLATFORM_UUID),
            OsIdState::Absent,
            "the look-alike IOPlatformUUIDCache is not the id"
        );
        assert_eq!(
            parse_tool_output("", &MACOS_PLATFORM_UUID),
            OsIdState::Absent
        );
        assert_eq!(
            parse_tool_output("    \"IOPlatformUUID\" = \"\"\n", &MACOS_PLATFORM_UUID),
            OsIdState::Absent
        );
        assert_eq!(
            parse_tool_output("    MachineGuid    REG_SZ    \r\n", &WINDOWS_MACHINE_GUID),
            OsIdState::Absent,
            "the type is not the value"
        );
    }

    #[test]
    fn a_key_line_in_another_shape_fails_without_echoing_it() {
        for (output, line) in [
            ("\"IOPlatformUUID\"\n", &MACOS_PLATFORM_UUID),
            (
                "\"IOPlatformUUID\" <564d1a2b3c4d5e6f7a8b9c0d1e2f3a4b>",
                &MACOS_PLATFORM_UUID,
            ),
            (
                "MachineGuid REG_BINARY 3d1219c7c4c5404aaa1f6d2a48adfda4",
                &WINDOWS_MACHINE_GUID,
            ),
        ] {
            match parse_tool_output(output, line) {
                OsIdState::Failed(reason) => {
                    assert!(reason.contains(line.key), "{reason}");
                    assert!(!reason.contains("564d1a2b"), "{reason}");
                    assert!(!reason.contains("3d1219c7"), "{reason}");
                }
                other => panic!("{other:?} for {output:?}"),
            }
        }
    }

    #[test]
    fn garbage_holds_no_id() {
        let garbage = "ioreg: command not found\n\u{fffd}\u{fffd}\0\0 IOPlatformUUID";
        assert_eq!(
            parse_tool_output(garbage, &MACOS_PLATFORM_UUID),
            OsIdState::Absent
        );
        assert_eq!(
            parse_tool_output(garbage, &WINDOWS_MACHINE_GUID),
            OsIdState::Absent
        );
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
