//! The one way a status leaves the engine. Every path that can change the status (a command,
//! a menu action, an engine event, a file changed by `lapctl`) ends in [`refresh`], which
//! sends the windows only real changes (the `status-changed` event) and tells the
//! [`Publisher`]'s listeners (the tray) what it read. This module knows no listener: the tray
//! subscribes itself when it is created.

use std::sync::{Arc, Mutex, PoisonError};

use lapwing_core::engine::ProductStatus;
use lapwing_core::verdict::{ProductVerdict, product_verdict};
use serde::Serialize;
use tauri::{AppHandle, Emitter as _, Manager as _, Runtime};

use crate::error::CommandError;
use crate::state::Lapwing;

/// The event every window hears when the status changes.
pub const STATUS_CHANGED: &str = "status-changed";
/// The event every window hears when the stored data changed from outside the window (the
/// state file written by `lapctl`, by another window or by the engine): what is not in the
/// status (the masked key, the server overrides) must be read again.
pub const STORED_CHANGED: &str = "stored-changed";

/// `ProductStatus` as the windows get it: `lapctl status --json`'s fields (the verdict
/// included) plus the tray's line.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    #[serde(flatten)]
    pub status: ProductStatus,
    pub line: String,
    /// The one verdict (`lapwing_core::verdict`): the windows show it, never recompute it.
    pub verdict: ProductVerdict,
    /// What became of a new key not accepted yet (`ProductStatus::pending_key_note`), worded
    /// as `lapctl` words it; none without one.
    pub pending_note: Option<String>,
    /// What the license's lifecycle adds to the line (`ProductStatus::lifecycle_note`: looks
    /// cloned and what to do, moved to new hardware), worded as `lapctl` words it.
    pub lifecycle_note: Option<String>,
}

impl StatusView {
    /// The view of a status at `now` (UNIX seconds, the engine's clock).
    pub fn at(status: ProductStatus, now: u64) -> Self {
        let line = crate::menu::line(&status);
        let verdict = product_verdict(&status, now);
        let pending_note = status.pending_key_note();
        let lifecycle_note = status.lifecycle_note();
        Self {
            status,
            line,
            verdict,
            pending_note,
            lifecycle_note,
        }
    }
}

/// The views of statuses, at the engine's time now.
pub fn views<R: Runtime>(app: &AppHandle<R>, statuses: Vec<ProductStatus>) -> Vec<StatusView> {
    let now = app.state::<Lapwing>().engine.config().clock.now();
    statuses
        .into_iter()
        .map(|s| StatusView::at(s, now))
        .collect()
}

/// The view of one status, at the engine's time now.
pub fn view<R: Runtime>(app: &AppHandle<R>, status: ProductStatus) -> StatusView {
    let now = app.state::<Lapwing>().engine.config().clock.now();
    StatusView::at(status, now)
}

/// What a listener hears on every publish.
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    pub statuses: &'a [ProductStatus],
    /// False when the status equals the one published before: what a listener draws from it
    /// may still have moved (the day counts with time, the busy state with an activation).
    pub changed: bool,
}

type Listener = dyn Fn(&Publication<'_>) + Send + Sync;

/// The status last published and who hears the next one. Managed by the app; runtime-free.
#[derive(Default)]
pub struct Publisher {
    /// `None` before the first publish.
    last: Mutex<Option<Vec<ProductStatus>>>,
    listeners: Mutex<Vec<Arc<Listener>>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("last", &self.last)
            .field(
                "listeners",
                &self
                    .listeners
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            )
            .finish()
    }
}

impl Publisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a listener for every publish from now on.
    pub fn subscribe(&self, listener: impl Fn(&Publication<'_>) + Send + Sync + 'static) {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(listener));
    }

    /// Records `statuses` as published and tells every listener. Returns whether they differ
    /// from the ones published before.
    pub fn publish(&self, statuses: &[ProductStatus]) -> bool {
        let changed = {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let changed = last.as_deref() != Some(statuses);
            if changed {
                *last = Some(statuses.to_vec());
            }
            changed
        };
        self.tell(&Publication { statuses, changed });
        changed
    }

    /// Tells every listener the last status again, as unchanged: something they draw beside
    /// it (the busy state) moved. Nothing is told before the first publish.
    pub fn republish(&self) {
        if let Some(statuses) = self.last() {
            self.tell(&Publication {
                statuses: &statuses,
                changed: false,
            });
        }
    }

    /// The status last published; `None` before the first.
    pub fn last(&self) -> Option<Vec<ProductStatus>> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn tell(&self, publication: &Publication<'_>) {
        // Called outside the lock, so a listener may subscribe or read `last` itself.
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for listener in listeners {
            listener(publication);
        }
    }
}

/// Reads the status and publishes it: the listeners hear it every time, the windows when it
/// changed. Returns the status read, add-ons after their base (`menu::base_first`).
pub fn refresh<R: Runtime>(app: &AppHandle<R>) -> Result<Vec<ProductStatus>, CommandError> {
    let statuses = crate::menu::base_first(&app.state::<Lapwing>().engine.status()?);
    if app.state::<Publisher>().publish(&statuses) {
        tracing::debug!(products = statuses.len(), "status changed: windows updated");
        let views = views(app, statuses.clone());
        if let Err(e) = app.emit(STATUS_CHANGED, &views) {
            tracing::warn!(error = %e, "cannot send the status to the windows");
        }
    }
    Ok(statuses)
}

/// The stored data changed (a file in the data directory): every window hears it and reads
/// again what it shows, then the status is refreshed as after any change.
pub fn stored_changed<R: Runtime>(app: &AppHandle<R>) -> Result<Vec<ProductStatus>, CommandError> {
    if let Err(e) = app.emit(STORED_CHANGED, ()) {
        tracing::warn!(error = %e, "cannot tell the windows that the stored data changed");
    }
    refresh(app)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tauri::Listener as _;
    use tauri::test::{mock_builder, mock_context, noop_assets};

    use super::*;
    use crate::test_support::{engine, install};

    /// What one listener heard: the product ids and whether they changed, per publish.
    type Heard = Arc<Mutex<Vec<(Vec<String>, bool)>>>;

    fn listen(publisher: &Publisher) -> Heard {
        let heard = Heard::default();
        let sink = Arc::clone(&heard);
        publisher.subscribe(move |p| {
            let ids = p.statuses.iter().map(|s| s.id.clone()).collect();
            sink.lock().expect("lock").push((ids, p.changed));
        });
        heard
    }

    fn heard(heard: &Heard) -> Vec<(Vec<String>, bool)> {
        heard.lock().expect("lock").clone()
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_real_changes_count_and_every_listener_hears_each_publish_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(dir.path());
        let none = engine.status().expect("status");
        install(dir.path(), "acme-studio");
        let one = engine.status().expect("status");
        assert_eq!(one.len(), 1);

        let publisher = Publisher::new();
        assert_eq!(publisher.last(), None);
        let first = listen(&publisher);
        let second = listen(&publisher);

        assert!(publisher.publish(&none), "the first publish is a change");
        assert!(!publisher.publish(&none));
        assert!(publisher.publish(&one));
        assert!(!publisher.publish(&one));
        assert!(publisher.publish(&none), "going back is a change too");

        let expected = vec![
            (ids(&[]), true),
            (ids(&[]), false),
            (ids(&["acme-studio"]), true),
            (ids(&["acme-studio"]), false),
            (ids(&[]), true),
        ];
        assert_eq!(heard(&first), expected);
        assert_eq!(heard(&second), expected);
        assert_eq!(publisher.last(), Some(none));
    }

    #[test]
    fn republishing_repeats_the_last_status_as_unchanged() {
        let publisher = Publisher::new();
        let heard_so_far = listen(&publisher);
        publisher.republish();
        assert_eq!(
            heard(&heard_so_far),
            [],
            "nothing to repeat before the first"
        );

        publisher.publish(&[]);
        publisher.republish();
        assert_eq!(heard(&heard_so_far), [(ids(&[]), true), (ids(&[]), false)]);
    }

    #[test]
    fn a_listener_may_read_and_subscribe_while_it_is_told() {
        let publisher = Arc::new(Publisher::new());
        let inner = Arc::clone(&publisher);
        let late = Arc::new(Mutex::new(None));
        let late_sink = Arc::clone(&late);
        publisher.subscribe(move |p| {
            assert_eq!(inner.last().as_deref(), Some(p.statuses));
            let mut late = late_sink.lock().expect("lock");
            if late.is_none() {
                *late = Some(listen(&inner));
            }
        });
        publisher.publish(&[]);
        publisher.publish(&[]);
        let late = late.lock().expect("lock").clone().expect("subscribed");
        assert_eq!(
            heard(&late),
            [(ids(&[]), false)],
            "heard from the next one on"
        );
    }

    #[test]
    fn refresh_sends_the_windows_each_change_once_and_the_listeners_every_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = crate::run_app(
            mock_builder(),
            mock_context(noop_assets()),
            Arc::new(engine(dir.path())),
        )
        .expect("the app builds");
        let windows = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&windows);
        app.listen_any(STATUS_CHANGED, move |event| {
            sink.lock().expect("lock").push(event.payload().to_owned());
        });
        let tray = listen(&app.state::<Publisher>());

        assert!(refresh(app.handle()).expect("status").is_empty());
        assert!(refresh(app.handle()).expect("status").is_empty());
        install(dir.path(), "acme-studio");
        assert_eq!(refresh(app.handle()).expect("status").len(), 1);
        assert_eq!(refresh(app.handle()).expect("status").len(), 1);

        let windows = windows.lock().expect("lock").clone();
        assert_eq!(windows.len(), 2, "{windows:?}");
        assert_eq!(windows[0], "[]");
        assert!(
            windows[1].contains("\"id\":\"acme-studio\"")
                && windows[1].contains("\"line\":\"Not activated\""),
            "{}",
            windows[1]
        );
        assert_eq!(
            heard(&tray),
            [
                (ids(&[]), true),
                (ids(&[]), false),
                (ids(&["acme-studio"]), true),
                (ids(&["acme-studio"]), false),
            ]
        );
    }

    #[test]
    fn a_stored_change_reaches_every_window_even_when_the_status_is_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = crate::run_app(
            mock_builder(),
            mock_context(noop_assets()),
            Arc::new(engine(dir.path())),
        )
        .expect("the app builds");
        let heard = Arc::new(Mutex::new(0_usize));
        let sink = Arc::clone(&heard);
        app.listen_any(STORED_CHANGED, move |_| {
            *sink.lock().expect("lock") += 1;
        });
        refresh(app.handle()).expect("status");
        assert_eq!(
            *heard.lock().expect("lock"),
            0,
            "a refresh alone is not a stored change"
        );
        stored_changed(app.handle()).expect("status");
        stored_changed(app.handle()).expect("status");
        assert_eq!(
            *heard.lock().expect("lock"),
            2,
            "each change, though the status is the same"
        );
    }
}
