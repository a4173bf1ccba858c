//! `lapctl.exe` under Wine, for the Windows system tests (tests/system/windows.rs): the
//! private prefix `cargo xtask windows` prepared (with the ProcessPrng shim, see
//! installers/windows/wine/processprng.c) and the binaries it cross-built.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The prefix and the Windows binaries, as `cargo xtask` names them.
#[derive(Debug, Clone)]
pub struct Wine {
    pub prefix: PathBuf,
    pub bins: PathBuf,
}

impl Wine {
    /// From `LAPWING_WINE_PREFIX` and `LAPWING_WINDOWS_BIN_DIR`; fails loudly, naming the
    /// command that sets them up, when either is missing.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name).map_or_else(
                || panic!("{name} is not set: run these tests through `cargo xtask windows`"),
                PathBuf::from,
            )
        };
        let wine = Self {
            prefix: var("LAPWING_WINE_PREFIX"),
            bins: var("LAPWING_WINDOWS_BIN_DIR"),
        };
        assert!(
            wine.prefix.join("system.reg").exists(),
            "no Wine prefix at {}",
            wine.prefix.display()
        );
        assert!(
            wine.prefix
                .join("drive_c/windows/system32/bcryptprimitives.dll")
                .exists(),
            "the ProcessPrng shim is not in the prefix"
        );
        wine
    }

    /// `wine <bins>/<exe> args`, in the private prefix, with no Lapwing variable of the
    /// Linux test run leaking in.
    pub fn command(&self, exe: &str, args: &[&str]) -> Command {
        let path = self.bins.join(exe);
        assert!(path.exists(), "{} is missing", path.display());
        self.program(path.as_os_str(), args)
    }

    /// `wine program args` (a Linux path, or a Windows one such as `C:\…\lapctl.exe`),
    /// in the private prefix.
    pub fn program(&self, program: &std::ffi::OsStr, args: &[&str]) -> Command {
        let mut command = Command::new("wine");
        command
            .arg(program)
            .args(args)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LAPWING_") {
                command.env_remove(name);
            }
        }
        command
    }

    /// Waits until the prefix's wineserver has ended: the registry (Credential Manager
    /// among it) is then on disk.
    pub fn wait(&self) {
        let status = Command::new("wineserver")
            .arg("-w")
            .env("WINEPREFIX", &self.prefix)
            .status()
            .expect("wineserver runs");
        assert!(status.success(), "wineserver -w: {status}");
    }

    /// `reg query KEY [/v VALUE]`'s output, or `None` when the key or value is absent.
    pub fn reg_query(&self, key: &str, value: Option<&str>) -> Option<String> {
        let mut args = vec!["query", key];
        if let Some(value) = value {
            args.extend(["/v", value]);
        }
        let out = self
            .program(std::ffi::OsStr::new("reg"), &args)
            .output()
            .expect("wine reg runs");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).replace('\r', ""))
    }

    /// `C:\` of the prefix, as a Linux path.
    pub fn drive_c(&self) -> PathBuf {
        self.prefix.join("drive_c")
    }

    /// The Wine user's `%LOCALAPPDATA%` as a Linux path (Wine names the user after the Unix
    /// one: the only folder under `users` besides `Public`).
    pub fn local_app_data(&self) -> PathBuf {
        self.user_profile().join("AppData/Local")
    }

    /// The Wine user's `%APPDATA%` (roaming) as a Linux path.
    pub fn app_data(&self) -> PathBuf {
        self.user_profile().join("AppData/Roaming")
    }

    fn user_profile(&self) -> PathBuf {
        let users = self.drive_c().join("users");
        std::fs::read_dir(&users)
            .expect("users folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n != "Public"))
            .expect("a Wine user")
    }

    /// The prefix's `MachineGuid`, read from its registry file (not through Windows).
    pub fn machine_guid(&self) -> String {
        let system = std::fs::read_to_string(self.prefix.join("system.reg")).expect("system.reg");
        let section = system
            .split("\n[")
            .find(|s| s.starts_with("Software\\\\Microsoft\\\\Cryptography]"))
            .expect("the Cryptography key");
        let line = section
            .lines()
            .find(|l| l.starts_with("\"MachineGuid\"="))
            .expect("MachineGuid");
        line.split('"').nth(3).expect("quoted value").to_lowercase()
    }
}

/// A Linux path as Windows programs under Wine see it (drive `Z:` is `/`).
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// Runs `command` to completion with `input` on its stdin.
pub fn run_fed(command: &mut Command, input: &str) -> Output {
    crate::output_fed(command, input)
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file()
                && std::fs::read(&path)
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(path);
            }
        }
    }
    found
}
