//! What the app keeps while it runs: the engine, the status last published, and how to stop.
//! Every path that can change the status (a command, a menu action, an engine event, a file
//! changed by `lapctl`) ends in [`refresh`], which publishes only real changes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lapwing_core::engine::{Engine, ProductStatus};
use serde::Serialize;
use tauri::{AppHandle, Emitter as _, Manager as _, Runtime};

use crate::error::CommandError;

/// The event every window hears when the status changes.
pub const STATUS_CHANGED: &str = "status-changed";

/// `ProductStatus` as the windows get it: `lapctl status --json`'s fields plus the tray's line.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    #[serde(flatten)]
    pub status: ProductStatus,
    pub line: String,
}

impl From<ProductStatus> for StatusView {
    fn from(status: ProductStatus) -> Self {
        let line = crate::menu::line(&status);
        Self { status, line }
    }
}

/// The app's managed state.
#[derive(Debug)]
pub struct Lapwing {
    pub engine: Arc<Engine>,
    /// The status last sent to the windows and the tray; `None` before the first.
    published: Mutex<Option<Vec<ProductStatus>>>,
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
}

impl Lapwing {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            published: Mutex::new(None),
            busy: AtomicUsize::new(0),
            quitting: AtomicBool::new(false),
            shutdown: tokio::sync::watch::Sender::new(false),
            engine_task: Mutex::new(None),
            watcher: Mutex::new(None),
        }
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0
    }
}

/// Counts an activation the app runs, for the tray's "working" state, until dropped.
struct Busy<'a, R: Runtime>(&'a AppHandle<R>);

impl<'a, R: Runtime> Busy<'a, R> {
    fn start(app: &'a AppHandle<R>) -> Self {
        app.state::<Lapwing>().busy.fetch_add(1, Ordering::SeqCst);
        crate::tray::show_current(app);
        Self(app)
    }
}

impl<R: Runtime> Drop for Busy<'_, R> {
    fn drop(&mut self) {
        self.0
            .state::<Lapwing>()
            .busy
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads the status; when it differs from what was published, sends it to every window and
/// rebuilds the tray. Returns the status read.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) -> Result<Vec<ProductStatus>, CommandError> {
    let lapwing = app.state::<Lapwing>();
    let statuses = lapwing.engine.status()?;
    let changed = {
        let mut published = lapwing
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = published.as_ref() != Some(&statuses);
        if changed {
            *published = Some(statuses.clone());
        }
        changed
    };
    if changed {
        tracing::debug!(
            products = statuses.len(),
            "status changed: windows and tray updated"
        );
        let views: Vec<StatusView> = statuses.iter().cloned().map(StatusView::from).collect();
        if let Err(e) = app.emit(STATUS_CHANGED, &views) {
            tracing::warn!(error = %e, "cannot send the status to the windows");
        }
    }
    // The tray is redrawn even without a change: the busy state or the day count may have
    // moved.
    crate::tray::apply(app, &statuses);
    Ok(statuses)
}

/// The status last published (for the tray while a refresh is not due).
pub fn published<R: Runtime>(app: &AppHandle<R>) -> Option<Vec<ProductStatus>> {
    app.state::<Lapwing>()
        .published
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Activates one product now, then publishes the change.
pub async fn activate<R: Runtime>(
    app: &AppHandle<R>,
    id: &str,
) -> Result<ProductStatus, CommandError> {
    let engine = Arc::clone(&app.state::<Lapwing>().engine);
    let status = {
        let _busy = Busy::start(app);
        engine.activate(id, None).await
    };
    refresh(app)?;
    Ok(status?)
}

/// Activates every installed product at once (one batch: concurrent exchanges, one state
/// write), then publishes the change.
pub async fn activate_all<R: Runtime>(
    app: &AppHandle<R>,
) -> Result<Vec<ProductStatus>, CommandError> {
    let engine = Arc::clone(&app.state::<Lapwing>().engine);
    let ids: Vec<String> = engine.catalog().products.into_keys().collect();
    let results = {
        let _busy = Busy::start(app);
        engine.activate_many(&ids, None).await
    };
    refresh(app)?;
    let results = results?;
    let mut out = Vec::with_capacity(results.len());
    for result in results {
        out.push(result?);
    }
    Ok(out)
}
