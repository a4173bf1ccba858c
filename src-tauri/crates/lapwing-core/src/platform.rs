//! The desktop platforms Lapwing keeps folders on. The rules that find those folders from
//! environment variables take the platform as an argument, so that every platform's answer is
//! tested on every platform (Linux CI cannot run the macOS build, and runs the Windows one
//! only under Wine); the running build passes [`Platform::CURRENT`].

/// A platform whose folder conventions Lapwing follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Linux, and any other Unix-like build: XDG folders and `/etc`.
    Linux,
    Windows,
    MacOs,
}

impl Platform {
    /// The platform this build runs on.
    pub const CURRENT: Self = if cfg!(windows) {
        Self::Windows
    } else if cfg!(target_os = "macos") {
        Self::MacOs
    } else {
        Self::Linux
    };
}

/// An environment of the given variables only, for the folder rules' tests.
#[cfg(test)]
pub(crate) fn fake_env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
    let vars: Vec<(String, std::ffi::OsString)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), std::ffi::OsString::from(v)))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// A Windows answer as Windows writes it: `Path::join` separates with `/` on Linux where
/// Windows writes `\`.
#[cfg(test)]
pub(crate) fn as_windows(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('/', "\\")
}
