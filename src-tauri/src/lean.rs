//! Keeping the idle tray small.
//!
//! At start GDK probes OpenGL, and on a machine with Mesa's software renderer that maps
//! libLLVM and more: about 30 MB of the idle tray's PSS (measured with `cargo xtask bench
//! tray`: 96 MB with the probe, 65 MB without). The tray draws nothing with GL, and the
//! windows' webview composites without GDK's GL. `GDK_GL=disable` turns the probe off, but
//! GDK reads it when GTK starts, and changing the environment of a running process is unsafe
//! (another thread may read it at the same moment). So the process starts itself again, once,
//! with the variable set: `exec` keeps the process id, and a person's own `GDK_GL` (any value)
//! is respected.

/// Replaces this process with itself under `GDK_GL=disable`, unless `GDK_GL` is already set.
/// Returns only when nothing was done or the `exec` failed (then the app runs as it is).
#[cfg(target_os = "linux")]
pub fn restart_without_gl_probing() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os("GDK_GL").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GDK_GL", "disable")
        .exec();
    eprintln!("lapwing: starting without GL probing failed ({error}); starting as is");
}
