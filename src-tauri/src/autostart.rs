//! Start at login, through tauri-plugin-autostart (an XDG autostart entry on Linux, a login
//! item on macOS, the Run key on Windows). On by default at the first run; once the person
//! has chosen (or the default was applied) the choice is theirs and is never reapplied.

use tauri::{AppHandle, Manager as _, Runtime};
use tauri_plugin_autostart::AutoLaunchManager;

use crate::error::CommandError;

/// Present once the default was applied or the person chose, in the app's config directory.
const CHOSEN_MARKER: &str = "autostart-chosen";

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
