//! Lapwing's tray app: tray icon and menu, windows, notifications, autostart and single
//! instance, over the engine in `lapwing-core` (in-process, on Tauri's tokio runtime). It
//! decides nothing itself: status, activation, keys, servers and diagnostics are the engine's.
//!
//! [`run_app`] builds the app on any Tauri runtime, so the command layer is tested with
//! `tauri::test::mock_builder()` and a real engine; [`run`] adds what only a desktop has
//! (plugins, tray, the engine's run loop, notifications) and runs it.

pub mod actions;
pub mod autostart;
pub mod commands;
pub mod deactivate;
pub mod error;
#[cfg(target_os = "linux")]
pub mod handover;
pub mod lean;
pub mod menu;
pub mod notifications;
pub mod publish;
pub mod state;
#[cfg(test)]
mod test_support;
pub mod tray;
pub mod tray_host;
pub mod validate;
pub mod windows;

use std::sync::Arc;
use std::time::Duration;

use lapwing_core::engine::Engine;
use lapwing_core::environment::{SecretsChoice, engine_from_environment};
use tauri::{App, AppHandle, Builder, Context, Manager as _, RunEvent, Runtime};

use crate::publish::{Publisher, refresh, stored_changed};
use crate::state::Lapwing;
use crate::tray_host::TrayHost;
use crate::windows::View;

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `--insecure-file-store` (or `LAPWING_INSECURE_FILE_STORE=1`): secrets in a plain file.
    pub insecure_file_store: bool,
    /// `--open VIEW [--product ID]`: a window to open at start (or, in a second launch, in
    /// the running app).
    pub open: Option<View>,
    /// `--login-default`: started by the installer's machine-wide login entry, which steps
    /// aside for a user who has chosen (see `autostart`).
    pub login_default: bool,
    /// Arguments not understood, reported once.
    pub unknown: Vec<String>,
}

/// Reads the arguments (without the program name). Pure, so a second launch's arguments
/// are read the same way as the first's.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Args {
    let mut out = Args::default();
    let mut view: Option<String> = None;
    let mut product: Option<String> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        match name.as_str() {
            "--insecure-file-store" => out.insecure_file_store = true,
            "--login-default" if inline.is_none() => out.login_default = true,
            "--open" => view = inline.or_else(|| args.next()),
            "--product" => product = inline.or_else(|| args.next()),
            _ => out.unknown.push(arg),
        }
    }
    if let Some(view) = view {
        let product = product.filter(|p| validate::is_product_id(p));
        out.open = validate::VIEWS
            .contains(&view.as_str())
            .then(|| View::from_parts(&view, product))
            .flatten();
        if out.open.is_none() {
            out.unknown.push(format!("--open {view}"));
        }
    }
    out
}

/// Builds the app on any runtime with the engine given: state, commands. Nothing runs yet
/// and nothing desktop-only is touched (tests build it on the mock runtime).
pub fn run_app<R: Runtime>(
    builder: Builder<R>,
    context: Context<R>,
    engine: Arc<Engine>,
) -> tauri::Result<App<R>> {
    builder
        .manage(Lapwing::new(engine))
        .manage(Publisher::new())
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::activate,
            commands::activate_all,
            commands::check_key,
            commands::set_key,
            commands::key_masked,
            commands::reveal_key,
            commands::remove_key,
            commands::drop_pending_key,
            commands::deactivate,
            commands::server_info,
            commands::check_server,
            commands::set_server,
            commands::doctor,
            commands::doctor_report,
            commands::about,
            commands::settings,
            commands::set_autostart,
            commands::open_window,
            commands::close_window,
            commands::tray_host,
        ])
        .build(context)
}

/// The engine's run loop is restarted after this long when it stops on an error (a state
/// file that cannot be written, say): the tray keeps showing what it can meanwhile.
const ENGINE_RESTART: Duration = Duration::from_secs(60);
/// A burst of file events (an installer writing several files) is one change.
const SETTLE: Duration = Duration::from_millis(200);

/// Tells of a Duplicate answer once (`notifications::DuplicateWatch`), unless the machine
/// policy turns notifications off (or cannot be read: nothing is shown on a guess).
fn watch_duplicates<R: Runtime>(app: &AppHandle<R>) {
    let watch = notifications::DuplicateWatch::new();
    let handle = app.clone();
    app.state::<Publisher>().subscribe(move |publication| {
        let due = watch.due(publication.statuses);
        if due.is_empty() {
            return;
        }
        let engine = Arc::clone(&handle.state::<Lapwing>().engine);
        let allowed = lapwing_core::policy::Policy::load(&engine.config().policy_path)
            .is_ok_and(|policy| policy.notifications.enabled);
        if allowed {
            for notice in due {
                notifications::show_notice(&handle, notice);
            }
        }
    });
}

/// Starts what a running tray needs: the tray itself, the engine's run loop, notifications
/// for its events, and a refresh whenever the products or the state change. With no tray
/// host ([`tray_host`]) the Products window opens too: it is then the app's main window.
pub fn start<R: Runtime>(app: &AppHandle<R>, open_at_start: Option<&View>, host: TrayHost) {
    let lapwing = app.state::<Lapwing>();
    lapwing.set_tray_host(host);
    let engine = Arc::clone(&lapwing.engine);
    let statuses = engine.status().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the status");
        Vec::new()
    });
    // Created either way: a panel started after the app still finds the icon.
    match (tray::create(app, &statuses), host) {
        (Ok(()), TrayHost::Present) => {
            tracing::info!(products = statuses.len(), "tray ready");
        }
        (Ok(()), TrayHost::Absent(reason)) => tracing::warn!(
            %reason,
            "no tray icon can be seen: the Products window is the main window, and closing it quits"
        ),
        (Err(e), _) => tracing::error!(error = %e, "cannot create the tray icon"),
    }
    // The one line a launcher waits for (the demo, the benchmark), tray or not.
    tracing::info!(products = statuses.len(), "app ready");
    watch_duplicates(app);
    if let Err(e) = refresh(app) {
        tracing::warn!(error = %e, "cannot read the status");
    }

    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut shutdown = lapwing.shutdown.subscribe();
    let task = {
        let engine = Arc::clone(&engine);
        tauri::async_runtime::spawn(async move {
            loop {
                let mut stop = shutdown.clone();
                let stopped = async move {
                    let _ = stop.wait_for(|quit| *quit).await;
                };
                // The network coming back retries failed activations at once (a netlink
                // socket on Linux; nothing elsewhere).
                let network = lapwing_core::netwatch::watch();
                match engine
                    .run_watching(events_tx.clone(), network, stopped)
                    .await
                {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "the engine stopped; restarting it in a minute");
                    }
                }
                tokio::select! {
                    _ = shutdown.wait_for(|quit| *quit) => return,
                    () = tokio::time::sleep(ENGINE_RESTART) => {}
                }
            }
        })
    };
    *lapwing
        .engine_task
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);

    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        while let Some(event) = events.recv().await {
            let now = handle.state::<Lapwing>().engine.config().clock.now();
            notifications::show(&handle, &event, now);
            if let Err(e) = refresh(&handle) {
                tracing::warn!(error = %e, "cannot read the status");
            }
        }
    });

    // The directories the run loop wakes on: a product installed, `lapctl` changing the state.
    let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
    if let Some(watcher) = engine.watch(changed_tx) {
        *lapwing
            .watcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Box::new(watcher));
    }
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let stored = tokio::select! {
                Some(()) = changed.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while changed.try_recv().is_ok() {}
                    true
                }
                // The day counts in the menu move with time, not with files.
                () = tokio::time::sleep(lapwing_core::scheduler::MAX_SLEEP) => false,
            };
            // A file changed (`lapctl key set`, `lapctl server clear`, another window): the
            // windows read again what the status does not carry.
            let read = if stored {
                stored_changed(&handle)
            } else {
                refresh(&handle)
            };
            if let Err(e) = read {
                tracing::warn!(error = %e, "cannot read the status");
            }
        }
    });

    autostart::apply_default(app);
    for view in windows::windows_at_start(host, open_at_start) {
        if let Err(e) = windows::open(app, &view) {
            tracing::warn!(error = %e, "cannot open the window asked for");
        }
    }
}

/// Without a session bus the single-instance plugin cannot find a running app: the handover
/// goes through a private Unix socket instead. Exits when another app took the arguments.
#[cfg(target_os = "linux")]
fn claim_without_bus() -> Option<std::os::unix::net::UnixListener> {
    let uid = handover::current_uid();
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    let dir = handover::socket_dir(runtime.as_deref(), uid);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match handover::claim(&dir, uid, &args) {
        Ok(handover::Claim::HandedOver) => {
            tracing::info!("Lapwing is already running: handed the arguments over to it");
            std::process::exit(0);
        }
        Ok(handover::Claim::First(listener)) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "cannot make sure that only one Lapwing runs");
            None
        }
    }
}

/// What a second launch asked for, done in this one.
fn second_launch<R: Runtime>(app: &AppHandle<R>, argv: impl IntoIterator<Item = String>) {
    let view = parse_args(argv).open.unwrap_or(View::Products);
    if let Err(e) = windows::open(app, &view) {
        tracing::warn!(error = %e, "cannot open the window for a second launch");
    }
}

/// The app's entry point.
pub fn run() {
    let args = parse_args(std::env::args().skip(1));
    if args.login_default && autostart::machine_entry_steps_aside(|name| std::env::var_os(name)) {
        return;
    }
    if std::env::var_os("LAPWING_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("LAPWING_LOG"))
            .init();
    }
    for arg in &args.unknown {
        eprintln!("lapwing: ignoring the argument {arg:?}");
    }
    let facts = tray_host::probe();
    let host = tray_host::decide(&facts);
    #[cfg(target_os = "linux")]
    let handover = if facts.session_bus {
        None
    } else {
        claim_without_bus()
    };
    let insecure = args.insecure_file_store
        || std::env::var("LAPWING_INSECURE_FILE_STORE").is_ok_and(|v| v == "1");
    let choice = if insecure {
        SecretsChoice::InsecureFile
    } else {
        SecretsChoice::Keyring
    };
    let engine = match engine_from_environment(choice) {
        Ok(engine) => Arc::new(engine),
        Err(e) => {
            eprintln!("lapwing: {e}");
            std::process::exit(1);
        }
    };
    // Started at login the same way it was started now.
    let login_args: Vec<&'static str> = if insecure {
        vec!["--insecure-file-store"]
    } else {
        Vec::new()
    };
    let mut builder = tauri::Builder::default();
    if facts.session_bus {
        // First, so a second launch hands over its arguments before anything else starts.
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            second_launch(app, argv.into_iter().skip(1));
        }));
    }
    let builder = builder.plugin(
        tauri_plugin_autostart::Builder::new()
            .args(login_args)
            .build(),
    );
    let app = match run_app(builder, tauri::generate_context!(), engine) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("lapwing: cannot start: {e}");
            std::process::exit(1);
        }
    };
    #[cfg(target_os = "linux")]
    if let Some(listener) = handover {
        let handle = app.handle().clone();
        let served = handover::serve(listener, handover::current_uid(), move |argv| {
            second_launch(&handle, argv);
        });
        if let Err(e) = served {
            tracing::warn!(error = %e, "cannot listen for a second launch");
        }
    }
    start(app.handle(), args.open.as_ref(), host);
    app.run(|app, event| match event {
        RunEvent::WindowEvent {
            label,
            event: tauri::WindowEvent::Destroyed,
            ..
        } if windows::quits_when_closed(app.state::<Lapwing>().tray_host(), &label) => {
            tracing::info!(window = %label, "the main window closed: quitting");
            actions::quit(app);
        }
        // A tray app lives on when its last window closes; only Quit (which exits with a
        // code once the engine has stopped) ends it.
        RunEvent::ExitRequested { api, code, .. }
            if code.is_none()
                || !app
                    .state::<Lapwing>()
                    .quitting
                    .load(std::sync::atomic::Ordering::SeqCst) =>
        {
            api.prevent_exit();
        }
        _ => {}
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn the_command_line_is_read() {
        assert_eq!(args(&[]), Args::default());
        assert!(args(&["--login-default"]).login_default);
        assert!(!args(&["--login-default=yes"]).login_default);
        let a = args(&["--insecure-file-store", "--open", "products"]);
        assert!(a.insecure_file_store);
        assert_eq!(a.open, Some(View::Products));
        assert_eq!(
            args(&["--open=key", "--product", "acme"]).open,
            Some(View::Key("acme".into()))
        );
        assert_eq!(args(&["--open", "server"]).open, Some(View::Server(None)));
        let bad = args(&["--open", "main", "--frobnicate"]);
        assert_eq!(bad.open, None);
        assert_eq!(bad.unknown, ["--frobnicate", "--open main"]);
        assert_eq!(args(&["--open", "key", "--product", "Bad/Id"]).open, None);
    }
}
