//! Start at login, through tauri-plugin-autostart (an XDG autostart entry on Linux, a
//! LaunchAgent on macOS, the per-user Run key on Windows). On by default at the first run; once the person
//! has chosen (or the default was applied) the choice is theirs and is never reapplied.
//!
//! The installers add a machine-wide entry for users who have not chosen yet (Windows: the
//! HKLM Run value `lapwing.exe --login-default`; Linux: /etc/xdg/autostart through
//! `lapwing-autostart`). It steps aside once this user's marker exists, so switching the
//! start at login off in the app really keeps it off.

use std::ffi::OsString;
use std::path::PathBuf;

use tauri::{AppHandle, Manager as _, Runtime};
use tauri_plugin_autostart::AutoLaunchManager;

use crate::error::CommandError;

/// Present once the default was applied or the person chose, in the app's config directory.
const CHOSEN_MARKER: &str = "autostart-chosen";

/// The app's identifier (tauri.conf.json), the name of its config directory.
const IDENTIFIER: &str = "com.lapwing.tray";

/// Where this user's marker is, found before Tauri starts (the machine-wide entry must step
/// aside without starting anything) the way Tauri's `app_config_dir` finds it: the
/// platform's config folder (`%APPDATA%` on Windows, `$XDG_CONFIG_HOME` or `~/.config` on
/// Linux, `~/Library/Application Support` on macOS) and the identifier.
pub fn chosen_marker(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    #[cfg(windows)]
    let base = var("APPDATA");
    #[cfg(target_os = "macos")]
    let base = var("HOME").map(|h| h.join("Library/Application Support"));
    #[cfg(not(any(windows, target_os = "macos")))]
    let base = var("XDG_CONFIG_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| h.join(".config")));
    base.map(|b| b.join(IDENTIFIER).join(CHOSEN_MARKER))
}

/// Whether a start by the machine-wide login entry should end at once: this user has
/// chosen, and their own entry (or its absence) decides.
pub fn machine_entry_steps_aside(var: impl Fn(&str) -> Option<OsString>) -> bool {
    chosen_marker(var).is_some_and(|marker| marker.exists())
}

fn manager<R: Runtime>(
    app: &AppHandle<R>,
) -> Result<tauri::State<'_, AutoLaunchManager>, CommandError> {
    app.try_state::<AutoLaunchManager>()
        .ok_or_else(|| CommandError::Engine("starting at login is not available here".into()))
}

pub fn is_enabled<R: Runtime>(app: &AppHandle<R>) -> Result<bool, CommandError> {
    manager(app)?
        .is_enabled()
        .map_err(|e| CommandError::Engine(format!("cannot read the login start setting: {e}")))
}

pub fn set<R: Runtime>(app: &AppHandle<R>, enabled: bool) -> Result<(), CommandError> {
    let manager = manager(app)?;
    let result = if enabled {
        manager.enable()
    } else {
        manager.disable()
    };
    result.map_err(|e| CommandError::Engine(format!("cannot change the login start: {e}")))?;
    remember_choice(app);
    Ok(())
}

fn remember_choice<R: Runtime>(app: &AppHandle<R>) {
    let Ok(dir) = app.path().app_config_dir() else {
        return;
    };
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(CHOSEN_MARKER), b""))
    {
        tracing::warn!(error = %e, "cannot remember the login start choice");
    }
}

/// Turns starting at login on at the first run.
pub fn apply_default<R: Runtime>(app: &AppHandle<R>) {
    let chosen = app
        .path()
        .app_config_dir()
        .is_ok_and(|dir| dir.join(CHOSEN_MARKER).exists());
    if !chosen && let Err(e) = set(app, true) {
        tracing::warn!(error = %e, "cannot turn on starting at login");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_identifier_is_the_apps() {
        let config: serde_json::Value =
            serde_json::from_str(include_str!("../tauri.conf.json")).expect("tauri.conf.json");
        assert_eq!(config["identifier"], IDENTIFIER);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_marker_is_where_tauri_keeps_the_config() {
        assert_eq!(
            chosen_marker(env(&[("HOME", "/home/ann")])),
            Some(PathBuf::from(
                "/home/ann/.config/com.lapwing.tray/autostart-chosen"
            ))
        );
        assert_eq!(
            chosen_marker(env(&[("HOME", "/home/ann"), ("XDG_CONFIG_HOME", "/cfg")])),
            Some(PathBuf::from("/cfg/com.lapwing.tray/autostart-chosen"))
        );
        // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
        assert_eq!(
            chosen_marker(env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "cfg")])),
            Some(PathBuf::from(
                "/h/.config/com.lapwing.tray/autostart-chosen"
            ))
        );
        assert_eq!(chosen_marker(env(&[("HOME", "")])), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_machine_entry_steps_aside_once_the_user_has_chosen() {
        let home = tempfile::tempdir().expect("tempdir");
        let home_text = home.path().to_str().expect("utf-8").to_owned();
        let vars = [("HOME", home_text.as_str())];
        assert!(!machine_entry_steps_aside(env(&vars)));
        let marker = chosen_marker(env(&vars)).expect("a marker path");
        std::fs::create_dir_all(marker.parent().expect("parent")).expect("mkdir");
        std::fs::write(&marker, b"").expect("marker");
        assert!(machine_entry_steps_aside(env(&vars)));
        // Without a home there is no user to have chosen: the entry does its job.
        assert!(!machine_entry_steps_aside(env(&[])));
    }
}
