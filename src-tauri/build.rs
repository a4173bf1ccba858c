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
    "drop_pending_key",
    "deactivate",
    "server_info",
    "check_server",
    "set_server",
    "doctor",
    "doctor_report",
    "about",
    "settings",
    "set_autostart",
    "open_window",
    "close_window",
    "tray_host",
];

/// The windows' bundle, embedded at compile time (`build.frontendDist`).
const UI_DIST: &str = "../ui/dist";

fn main() {
    // A rebuilt UI must be embedded again.
    println!("cargo:rerun-if-changed={UI_DIST}");
    assert!(
        std::path::Path::new(UI_DIST).join("index.html").exists(),
        "ui/dist/index.html is missing: the tray app embeds the built UI. Build it first: \
         `cargo xtask test` does, or `npm --prefix ui ci && npm --prefix ui run build`"
    );
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("the Tauri build step (config, capabilities, permissions) failed");
}
