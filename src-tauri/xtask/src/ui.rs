//! The UI's npm packages and its bundle, which several commands need before they start.

use std::path::Path;

use crate::paths::root;
use crate::steps::{Result, run_in, step};

/// The UI's packages, installed from the lock file when they are missing or older than it.
pub fn ui_packages() -> Result {
    let ui = root().join("ui");
    let installed = ui.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (
        modified(&installed),
        modified(&ui.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if fresh {
        println!("ui/node_modules matches ui/package-lock.json");
        return Ok(());
    }
    run_in(&ui, "npm", &["ci", "--no-audit", "--no-fund"], &[])
}

/// The windows' bundle (`ui/dist`), which the tray app embeds when it is compiled.
pub fn build_ui() -> Result {
    step("build the UI (ui/dist, embedded by the tray app)", || {
        run_in(&root().join("ui"), "npm", &["run", "build"], &[])
    })
}
