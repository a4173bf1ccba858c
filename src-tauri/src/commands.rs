//! The commands the windows may call (COMMANDS.md, exactly). Each checks its input, asks
//! `lapwing-core`, and publishes a changed status; none decides anything of its own.

use std::fmt::Write as _;
use std::sync::Arc;

use lap_proto::license_key::{self, LicenseKey, LicenseKeyError};
use lapwing_core::doctor::{Check, DoctorOptions};
use lapwing_core::engine::{DeactivateOptions, Engine};
use lapwing_core::server_info::ServerInfo;
use serde::Serialize;
use tauri::{AppHandle, Manager as _, Runtime, State};

use crate::actions::activate as run_activation;
use crate::error::CommandError;
use crate::publish::{StatusView, refresh, view, views};
use crate::state::Lapwing;
use crate::validate::{VIEWS, is_product_id};
use crate::windows::View;

/// Suggestions offered for a mistyped key, at most.
const MAX_SUGGESTIONS: usize = 8;

type Result<T> = std::result::Result<T, CommandError>;

/// A product id that is well formed and installed.
fn product(engine: &Engine, id: &str) -> Result<String> {
    if !is_product_id(id) {
        return Err(CommandError::InvalidInput(
            "a product id is 1 to 64 characters of a-z, 0-9 and '-'".into(),
        ));
    }
    if !engine.catalog().products.contains_key(id) {
        return Err(CommandError::UnknownProduct(id.to_owned()));
    }
    Ok(id.to_owned())
}

fn engine(state: &State<'_, Lapwing>) -> Arc<Engine> {
    Arc::clone(&state.engine)
}

#[tauri::command]
pub async fn status<R: Runtime>(app: AppHandle<R>) -> Result<Vec<StatusView>> {
    Ok(views(&app, refresh(&app)?))
}

#[tauri::command]
pub async fn activate<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Lapwing>,
    id: String,
) -> Result<StatusView> {
    let id = product(&state.engine, &id)?;
    Ok(view(&app, run_activation(&app, &id).await?))
}

/// What "Activate all" and the global "Try now" report: the products as they now stand and
/// the batch's result, counted from each attempt's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct BatchView {
    pub products: Vec<StatusView>,
    pub result: BatchResultView,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchResultView {
    #[serde(flatten)]
    pub counts: lapwing_core::verdict::BatchResult,
    /// "1 of 2 products activated; 1 not sent (Acme Export: no server found)."
    pub message: String,
}

#[tauri::command]
pub async fn activate_all<R: Runtime>(app: AppHandle<R>) -> Result<BatchView> {
    let statuses = crate::menu::base_first(&crate::actions::activate_all(&app).await?);
    let counts = lapwing_core::verdict::BatchResult::of(&statuses);
    Ok(BatchView {
        products: views(&app, statuses),
        result: BatchResultView {
            message: counts.sentence(),
            counts,
        },
    })
}

/// The local check of a typed or pasted key (profile §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyCheck {
    pub valid: bool,
    pub normalized: String,
    pub display: Option<String>,
    pub error: Option<KeyProblem>,
    pub suggestions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyProblem {
    pub code: &'static str,
    pub message: String,
    pub position: Option<usize>,
    pub found: Option<usize>,
}

/// Checks a key without storing it: a pure function of the text.
pub fn key_check(text: &str) -> KeyCheck {
    let normalized = license_key::normalize(text);
    let parsed = if normalized.is_empty() {
        Err(None)
    } else {
        LicenseKey::parse(text).map_err(Some)
    };
    match parsed {
        Ok(key) => KeyCheck {
            valid: true,
            normalized,
            display: Some(key.to_display()),
            error: None,
            suggestions: Vec::new(),
        },
        Err(error) => {
            let problem = match error {
                None => KeyProblem {
                    code: "empty",
                    message: "type or paste the license key".into(),
                    position: None,
                    found: None,
                },
                Some(e) => problem(&e),
            };
            KeyCheck {
                valid: false,
                normalized,
                display: None,
                error: Some(problem),
                suggestions: license_key::suggestions(text)
                    .iter()
                    .take(MAX_SUGGESTIONS)
                    .map(LicenseKey::to_display)
                    .collect(),
            }
        }
    }
}

fn problem(e: &LicenseKeyError) -> KeyProblem {
    let (code, position, found) = match e {
        LicenseKeyError::Length { found } => ("length", None, Some(*found)),
        LicenseKeyError::InvalidCharacter { position, .. } => ("character", Some(*position), None),
        LicenseKeyError::PaddingBits => ("padding", None, None),
        LicenseKeyError::AllZero => ("all-zero", None, None),
        // The check characters, and any reason a later lap-proto adds: all "mistyped".
        _ => ("check", None, None),
    };
    KeyProblem {
        code,
        message: e.to_string(),
        position,
        found,
    }
}

#[tauri::command]
pub async fn check_key(text: String) -> Result<KeyCheck> {
    Ok(key_check(&text))
}

#[tauri::command]
pub async fn set_key<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Lapwing>,
    id: String,
    key: String,
) -> Result<StatusView> {
    let engine = engine(&state);
    let id = product(&engine, &id)?;
    engine.set_key(&id, &key)?;
    // Stored: publish (has_key changed) even if the activation below cannot run.
    refresh(&app)?;
    Ok(view(&app, run_activation(&app, &id).await?))
}

#[tauri::command]
pub async fn key_masked(state: State<'_, Lapwing>, id: String) -> Result<Option<String>> {
    let engine = engine(&state);
    let id = product(&engine, &id)?;
    Ok(engine.key(&id)?.map(|k| k.masked()))
}

#[tauri::command]
pub async fn reveal_key(state: State<'_, Lapwing>, id: String) -> Result<Option<String>> {
    let engine = engine(&state);
    let id = product(&engine, &id)?;
    Ok(engine.key(&id)?.map(|k| k.to_display()))
}

#[tauri::command]
pub async fn remove_key<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Lapwing>,
    id: String,
) -> Result<StatusView> {
    let engine = engine(&state);
    let id = product(&engine, &id)?;
    engine.remove_key(&id)?;
    refresh(&app)?;
    Ok(view(&app, engine.product_status(&id)?))
}

/// "Keep the current key": drops a new key not accepted yet.
#[tauri::command]
pub async fn drop_pending_key<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Lapwing>,
    id: String,
) -> Result<StatusView> {
    let engine = engine(&state);
    let id = product(&engine, &id)?;
    engine.drop_pending_key(&id)?;
    refresh(&app)?;
    Ok(view(&app, engine.product_status(&id)?))
}

/// "Deactivate on this computer": asks the server to free the seat (or, with `anyway`, gives
/// the activation up here only), then publishes the new status so the tray and every window
/// follow. The JSON names are `{ id, remove_key, anyway }` (COMMANDS.md).
#[tauri::command(rename_all = "snake_case")]
pub async fn deactivate<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Lapwing>,
    id: String,
    remove_key: bool,
    anyway: bool,
) -> Result<crate::deactivate::DeactivateView> {
    let engine = engine(&state);
    let id = product(&engine, &id)?;
    let outcome = {
        let _busy = state.busy();
        // The tray shows the busy state at once, as for an activation.
        app.state::<crate::publish::Publisher>().republish();
        engine
            .deactivate(&id, DeactivateOptions { remove_key, anyway })
            .await
    };
    // Published whatever the outcome: a failure half-way (a key not removed) is shown as is.
    refresh(&app)?;
    let outcome = outcome?;
    let status = view(&app, engine.product_status(&id)?);
    Ok(crate::deactivate::view(&outcome, remove_key, status))
}

#[tauri::command]
pub async fn server_info(state: State<'_, Lapwing>, product: Option<String>) -> Result<ServerInfo> {
    let engine = engine(&state);
    let product = product.map(|p| self::product(&engine, &p)).transpose()?;
    Ok(engine.server_info(product.as_deref()).await?)
}

/// `HOST:PORT` as the person typed it, checked.
fn host_port(text: &str) -> Result<String> {
    lapwing_discovery::parse_host_port(text)
        .map(|hp| hp.to_string())
        .map_err(|e| CommandError::BadServer(e.to_string()))
}

#[tauri::command]
pub async fn check_server(text: String) -> Result<()> {
    host_port(&text).map(drop)
}

#[tauri::command]
pub async fn set_server<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Lapwing>,
    product: Option<String>,
    server: Option<String>,
) -> Result<ServerInfo> {
    let engine = engine(&state);
    let product = product.map(|p| self::product(&engine, &p)).transpose()?;
    let server = server.as_deref().map(host_port).transpose()?;
    engine.set_server_override(product.as_deref(), server.as_deref())?;
    refresh(&app)?;
    Ok(engine.server_info(product.as_deref()).await?)
}

async fn checks(engine: &Engine, product: Option<&str>) -> Result<Vec<Check>> {
    Ok(engine
        .doctor(
            product,
            // The clock is checked as after a silent server: the system's word, and the
            // machine policy's (else the system's) time server.
            &DoctorOptions { sntp: None },
        )
        .await?)
}

#[tauri::command]
pub async fn doctor(state: State<'_, Lapwing>, product: Option<String>) -> Result<Vec<Check>> {
    let engine = engine(&state);
    let product = product.map(|p| self::product(&engine, &p)).transpose()?;
    checks(&engine, product.as_deref()).await
}

#[tauri::command]
pub async fn doctor_report(state: State<'_, Lapwing>, product: Option<String>) -> Result<String> {
    let engine = engine(&state);
    let product = product.map(|p| self::product(&engine, &p)).transpose()?;
    let checks = checks(&engine, product.as_deref()).await?;
    let statuses = engine.status()?;
    Ok(report(&statuses, &checks, engine.config().clock.now()))
}

/// The diagnostics as plain text to paste into a support request: the status lines and
/// every check, nothing secret (no key, no install nonce, no machine identifier).
pub fn report(
    statuses: &[lapwing_core::engine::ProductStatus],
    checks: &[Check],
    now: u64,
) -> String {
    let mut out = format!(
        "Lapwing {} diagnostics, {}\n\nProducts:\n",
        env!("CARGO_PKG_VERSION"),
        crate::menu::date(now)
    );
    if statuses.is_empty() {
        out.push_str("  (none installed)\n");
    }
    for s in statuses {
        let _ = writeln!(
            out,
            "  {} ({}, {}): {}",
            s.id,
            s.state.as_str(),
            lapwing_core::verdict::product_verdict(s, now)
                .verdict
                .words(),
            crate::menu::line(s)
        );
        if let Some(server) = &s.server {
            let _ = writeln!(out, "    server {} (by {})", server.address, server.source);
        }
        // Looks cloned (and what to do), or moved to new hardware: support needs to know.
        if let Some(note) = s.lifecycle_note() {
            let _ = writeln!(out, "    {note}");
        }
        for cause in s.last_attempt.iter().flat_map(|a| &a.diagnosis) {
            let _ = writeln!(out, "    - {cause}");
        }
    }
    out.push_str("\nChecks:\n");
    for c in checks {
        let _ = writeln!(out, "  {c}");
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub version: String,
    pub data_dir: String,
    pub state_file: String,
    pub policy_file: String,
    pub products_dirs: Vec<String>,
    pub log: String,
    pub licenses: Vec<License>,
}

#[derive(Debug, Clone, Serialize)]
pub struct License {
    pub name: &'static str,
    pub version: String,
    pub license: &'static str,
}

#[tauri::command]
pub async fn about(state: State<'_, Lapwing>) -> Result<About> {
    let config = state.engine.config();
    let path = |p: &std::path::Path| p.display().to_string();
    let ours = env!("CARGO_PKG_VERSION");
    Ok(About {
        version: ours.to_owned(),
        data_dir: path(&config.data_dir),
        state_file: path(&state.engine.state_store().path()),
        policy_file: path(&config.policy_path),
        products_dirs: config.product_dirs.iter().map(|p| path(p)).collect(),
        log: "standard error; set LAPWING_LOG=debug for more".into(),
        licenses: vec![
            License {
                name: "Lapwing",
                version: ours.to_owned(),
                license: env!("CARGO_PKG_LICENSE"),
            },
            License {
                name: "Tauri",
                version: tauri::VERSION.to_owned(),
                license: "Apache-2.0 OR MIT",
            },
            License {
                name: "notify-rust",
                version: "4".into(),
                license: "MIT OR Apache-2.0",
            },
            webview(),
        ],
    })
}

/// The system's web engine the windows run in: the version the machine has, read at run time.
fn webview() -> License {
    let (name, license) = if cfg!(target_os = "linux") {
        ("WebKitGTK", "LGPL-2.1-or-later AND BSD-2-Clause")
    } else if cfg!(target_os = "windows") {
        (
            "Microsoft Edge WebView2",
            "Microsoft Software License Terms",
        )
    } else {
        ("WebKit (WKWebView)", "LGPL-2.1-or-later AND BSD-2-Clause")
    };
    License {
        name,
        version: tauri::webview_version().unwrap_or_else(|_| "the system's".into()),
        license,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub autostart: bool,
}

#[tauri::command]
pub async fn settings<R: Runtime>(app: AppHandle<R>) -> Result<Settings> {
    Ok(Settings {
        autostart: crate::autostart::is_enabled(&app)?,
    })
}

#[tauri::command]
pub async fn set_autostart<R: Runtime>(app: AppHandle<R>, enabled: bool) -> Result<Settings> {
    crate::autostart::set(&app, enabled)?;
    Ok(Settings {
        autostart: crate::autostart::is_enabled(&app)?,
    })
}

#[tauri::command]
pub async fn open_window<R: Runtime>(
    app: AppHandle<R>,
    view: String,
    product: Option<String>,
) -> Result<()> {
    if !VIEWS.contains(&view.as_str()) {
        return Err(CommandError::InvalidInput(format!(
            "there is no window called {view:?}"
        )));
    }
    let product = {
        let state = app.state::<Lapwing>();
        product
            .map(|p| self::product(&state.engine, &p))
            .transpose()?
    };
    let view = View::from_parts(&view, product).ok_or_else(|| {
        CommandError::InvalidInput("that window needs a product, or takes none".into())
    })?;
    crate::windows::open(&app, &view)?;
    Ok(())
}

/// Closes the window that asks (Done, Escape): the windows are granted no window plugin.
#[tauri::command]
pub async fn close_window<R: Runtime>(window: tauri::WebviewWindow<R>) -> Result<()> {
    window.close()?;
    Ok(())
}

/// Whether a tray icon can be seen, and if not, why (the Products window says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrayHostView {
    pub present: bool,
    pub reason: Option<crate::tray_host::NoHost>,
    pub message: Option<String>,
}

impl From<crate::tray_host::TrayHost> for TrayHostView {
    fn from(host: crate::tray_host::TrayHost) -> Self {
        match host {
            crate::tray_host::TrayHost::Present => Self {
                present: true,
                reason: None,
                message: None,
            },
            crate::tray_host::TrayHost::Absent(reason) => Self {
                present: false,
                reason: Some(reason),
                message: Some(format!(
                    "No tray icon can be shown: {reason}. This window is Lapwing's main window: \
                     closing it quits Lapwing, and licenses are then not renewed until it runs again."
                )),
            },
        }
    }
}

#[tauri::command]
pub async fn tray_host(state: State<'_, Lapwing>) -> Result<TrayHostView> {
    Ok(state.tray_host().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lap_proto::test_util::key;

    #[test]
    fn a_pasted_key_with_spaces_and_line_breaks_is_valid() {
        let display = key(3).to_display();
        let pasted = format!("  {}\n", display.to_lowercase().replace('-', " \r\n"));
        let check = key_check(&pasted);
        assert!(check.valid, "{check:?}");
        assert_eq!(check.display.as_deref(), Some(display.as_str()));
        assert_eq!(check.normalized, display.replace('-', ""));
        assert!(check.error.is_none() && check.suggestions.is_empty());
    }

    #[test]
    fn problems_have_their_codes() {
        assert_eq!(key_check(" \n").error.map(|e| e.code), Some("empty"));
        let short = key_check("ABCD-EFGH");
        let error = short.error.expect("an error");
        assert_eq!((error.code, error.found), ("length", Some(8)));
        let good = key(4).to_display().replace('-', "");
        let bad = format!("{}U{}", &good[..4], &good[5..]);
        let error = key_check(&bad).error.expect("an error");
        assert_eq!((error.code, error.position), ("character", Some(5)));
        // Well formed, but the evaluation's stand-in for "no key": refused, never stored.
        let zero = key_check("0000-0000-0000-0000-0000-0000-0001");
        assert!(!zero.valid);
        let error = zero.error.expect("an error");
        assert_eq!(error.code, "all-zero");
        assert!(
            error.message.contains("not a license key"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_typo_suggests_the_right_key() {
        let right = key(5).to_display();
        let mut chars: Vec<char> = right.chars().collect();
        chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        let check = key_check(&typo);
        assert!(!check.valid);
        assert_eq!(check.error.as_ref().map(|e| e.code), Some("check"));
        assert!(check.suggestions.contains(&right), "{check:?}");
        assert!(check.suggestions.len() <= MAX_SUGGESTIONS);
    }

    #[test]
    fn errors_never_echo_the_key() {
        let right = key(6).to_display();
        let typo = right.replacen(
            &right[..1],
            if right.starts_with('A') { "B" } else { "A" },
            1,
        );
        let message = key_check(&typo).error.expect("an error").message;
        assert!(!message.contains(&typo[5..]), "{message}");
    }

    #[test]
    fn the_report_says_a_product_looks_cloned_and_what_to_do() {
        let cloned = lapwing_core::engine::ProductStatus {
            id: "acme".into(),
            name: "Acme Studio".into(),
            state: lapwing_core::status::Phase::Activated,
            duplicate: true,
            ..Default::default()
        };
        let text = report(&[cloned], &[], 0);
        assert!(
            text.contains("acme (activated, needs attention):"),
            "{text}"
        );
        assert!(text.contains("SMBIOS UUID"), "{text}");
    }

    #[test]
    fn host_port_is_checked() {
        assert_eq!(
            host_port(" 127.0.0.1:4711\n").ok().as_deref(),
            Some("127.0.0.1:4711")
        );
        for bad in ["", "no-port", "host:99999", "[::1", "a b:1"] {
            assert_eq!(
                host_port(bad).map_err(|e| e.kind()),
                Err("bad-server"),
                "{bad}"
            );
        }
    }
}
