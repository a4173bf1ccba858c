//! What the menu and the windows can ask the app to do beyond reading: activate one product,
//! activate all, quit. Each publishes what it changed through `publish.rs`.

use std::sync::Arc;
use std::time::Duration;

use lapwing_core::engine::ProductStatus;
use tauri::{AppHandle, Manager as _, Runtime};

use crate::error::CommandError;
use crate::publish::{Publisher, refresh};
use crate::state::Lapwing;

/// How long Quit waits for the engine to finish an attempt in flight.
const QUIT_GRACE: Duration = Duration::from_secs(10);

/// Activates one product now, then publishes the change.
pub async fn activate<R: Runtime>(
    app: &AppHandle<R>,
    id: &str,
) -> Result<ProductStatus, CommandError> {
    let lapwing = app.state::<Lapwing>();
    let engine = Arc::clone(&lapwing.engine);
    let status = {
        let _busy = lapwing.busy();
        // The listeners (the tray) show the busy state at once.
        app.state::<Publisher>().republish();
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
    let lapwing = app.state::<Lapwing>();
    let engine = Arc::clone(&lapwing.engine);
    let ids: Vec<String> = engine.catalog().products.into_keys().collect();
    let results = {
        let _busy = lapwing.busy();
        app.state::<Publisher>().republish();
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

/// Quits gracefully: stops the engine's run loop, waits for it, then exits.
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    let lapwing = app.state::<Lapwing>();
    if lapwing
        .quitting
        .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return;
    }
    lapwing.shutdown.send_replace(true);
    let task = lapwing
        .engine_task
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Some(task) = task
            && tokio::time::timeout(QUIT_GRACE, task).await.is_err()
        {
            tracing::warn!("the engine did not stop in time; quitting anyway");
        }
        app.exit(0);
    });
}
