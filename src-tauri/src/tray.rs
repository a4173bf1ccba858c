//! The tray icon: applies the menu model (icon per overall state, tooltip, menu) and turns
//! menu choices into actions. It listens to the publish path (`publish.rs`) and redraws on
//! every publish; nothing calls into it but the app's start. Only the real app creates the
//! tray; everywhere else (the command tests' mock runtime) there is none.

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager as _, Runtime};

use crate::menu::{Action, MenuModel, Overall, menu_model};
use crate::publish::Publisher;
use crate::state::Lapwing;
use crate::windows::View;

const TRAY_ID: &str = "lapwing";

fn icon(overall: Overall) -> tauri::Result<Image<'static>> {
    let bytes: &'static [u8] = match overall {
        Overall::AllGood => include_bytes!("../../icons/tray/ok-64.png"),
        Overall::Working => include_bytes!("../../icons/tray/working-64.png"),
        Overall::Attention => include_bytes!("../../icons/tray/attention-64.png"),
        Overall::Broken => include_bytes!("../../icons/tray/broken-64.png"),
    };
    Image::from_bytes(bytes)
}

fn item<R: Runtime>(app: &AppHandle<R>, action: &Action) -> tauri::Result<MenuItem<R>> {
    MenuItem::with_id(app, action.id(), action.label(), true, None::<&str>)
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, model: &MenuModel) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for product in &model.products {
        let submenu = Submenu::new(app, product.title(), true)?;
        for action in &product.actions {
            submenu.append(&item(app, action)?)?;
        }
        menu.append(&submenu)?;
    }
    if !model.products.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    for action in &model.actions {
        if *action == Action::Quit {
            menu.append(&PredefinedMenuItem::separator(app)?)?;
        }
        menu.append(&item(app, action)?)?;
    }
    Ok(menu)
}

fn model<R: Runtime>(
    app: &AppHandle<R>,
    statuses: &[lapwing_core::engine::ProductStatus],
) -> MenuModel {
    let lapwing = app.state::<Lapwing>();
    let model = menu_model(statuses, lapwing.engine.config().clock.now());
    if lapwing.is_busy() {
        model.busy()
    } else {
        model
    }
}

fn set<R: Runtime>(tray: &TrayIcon<R>, app: &AppHandle<R>, model: &MenuModel) -> tauri::Result<()> {
    tray.set_menu(Some(build_menu(app, model)?))?;
    tray.set_icon(Some(icon(model.overall)?))?;
    tray.set_tooltip(Some(&model.tooltip))
}

/// Creates the tray for the current status; from then on it redraws on every publish.
pub fn create<R: Runtime>(
    app: &AppHandle<R>,
    statuses: &[lapwing_core::engine::ProductStatus],
) -> tauri::Result<()> {
    let model = model(app, statuses);
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(model.overall)?)
        .tooltip(&model.tooltip)
        .menu(&build_menu(app, &model)?)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| choose(app, event.id().as_ref()))
        .build(app)?;
    let handle = app.clone();
    // Every publish, changed or not: the day counts and the busy state move on their own.
    app.state::<Publisher>()
        .subscribe(move |publication| apply(&handle, publication.statuses));
    Ok(())
}

/// Redraws the tray for these statuses, if there is a tray.
fn apply<R: Runtime>(app: &AppHandle<R>, statuses: &[lapwing_core::engine::ProductStatus]) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let model = model(app, statuses);
    // Menus belong to the main thread on every platform.
    let handle = app.clone();
    let _ = app.run_on_main_thread(move || {
        if let Err(e) = set(&tray, &handle, &model) {
            tracing::warn!(error = %e, "cannot update the tray");
        }
    });
}

fn open<R: Runtime>(app: &AppHandle<R>, view: &View) {
    if let Err(e) = crate::windows::open(app, view) {
        tracing::warn!(error = %e, "cannot open a window");
    }
}

/// Does what a menu item says.
fn choose<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(action) = Action::from_id(id) else {
        return;
    };
    match action {
        Action::Activate(product) => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = crate::actions::activate(&app, &product).await {
                    tracing::warn!(product, error = %e, "activation could not run");
                }
            });
        }
        Action::ActivateAll => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = crate::actions::activate_all(&app).await {
                    tracing::warn!(error = %e, "activation could not run");
                }
            });
        }
        Action::EnterKey(product) => open(app, &View::Key(product)),
        Action::Server(product) => open(app, &View::Server(Some(product))),
        Action::OpenLapwing => open(app, &View::Products),
        Action::Settings => open(app, &View::Settings),
        Action::Diagnostics => open(app, &View::Diagnostics),
        Action::About => open(app, &View::About),
        Action::Quit => crate::actions::quit(app),
    }
}
