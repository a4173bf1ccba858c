//! What the app keeps while it runs: the engine, how many activations it is running, and how
//! to stop. Nothing here publishes or draws: that is `publish.rs` and its listeners.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use lapwing_core::engine::Engine;

use crate::tray_host::TrayHost;

/// The app's managed state.
#[derive(Debug)]
pub struct Lapwing {
    pub engine: Arc<Engine>,
    /// Activations the app itself is running (the tray shows "working" meanwhile).
    busy: AtomicUsize,
    /// Set once Quit was chosen: from then on an exit request is let through.
    pub quitting: AtomicBool,
    /// True once the engine run loop must stop.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The engine run loop, awaited on quit.
    pub engine_task: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// Keeps the directory watcher alive (dropping it stops the watching).
    pub watcher: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// Whether a tray icon can be seen, decided once at start; unset (the command tests' mock
    /// runtime) counts as present.
    tray_host: OnceLock<TrayHost>,
}

impl Lapwing {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            busy: AtomicUsize::new(0),
            quitting: AtomicBool::new(false),
            shutdown: tokio::sync::watch::Sender::new(false),
            engine_task: Mutex::new(None),
            watcher: Mutex::new(None),
            tray_host: OnceLock::new(),
        }
    }

    pub fn tray_host(&self) -> TrayHost {
        self.tray_host.get().copied().unwrap_or(TrayHost::Present)
    }

    /// Records what the start found; the first answer stands.
    pub fn set_tray_host(&self, host: TrayHost) {
        let _ = self.tray_host.set(host);
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0
    }

    /// Counts an activation the app runs until the returned guard is dropped.
    pub fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(&self.busy)
    }
}

/// One activation the app runs; [`Lapwing::is_busy`] holds while any is alive.
#[derive(Debug)]
#[must_use = "the activation counts as running only while this guard lives"]
pub struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_holds_while_any_guard_lives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lapwing = Lapwing::new(Arc::new(crate::test_support::engine(dir.path())));
        assert!(!lapwing.is_busy());
        let first = lapwing.busy();
        let second = lapwing.busy();
        assert!(lapwing.is_busy());
        drop(first);
        assert!(lapwing.is_busy());
        drop(second);
        assert!(!lapwing.is_busy());
    }
}
