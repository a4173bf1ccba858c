//! Tauri's build step, with the app's own commands declared so each gets an `allow-…`
//! permission and the capability file can grant exactly these and nothing else.

const COMMANDS: &[&str] = &[
    "status",
    "activate",
    "activate_all",
    "check_key",
    "set_key",
    "key_masked",
    "reveal_key",
    "remove_key",
    "server_info",
    "check_server",
    "set_server",
    "doctor",
    "doctor_report",
    "about",
    "settings",
    "set_autostart",
    "open_window",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("the Tauri build step (config, capabilities, permissions) failed");
}
