//! The app's windows: created when opened, destroyed when closed (Tauri's default on close),
//! so an idle tray holds no webview. Opening one that exists brings it forward.

use tauri::webview::PageLoadEvent;
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

/// A window and what it shows (COMMANDS.md, "Windows").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Products,
    Key(String),
    Server(Option<String>),
    Diagnostics,
    About,
    Settings,
}

impl View {
    /// The view for a checked view name and product; `None` when the pair makes no sense
    /// (the key window needs a product; only key and server windows take one).
    pub fn from_parts(view: &str, product: Option<String>) -> Option<Self> {
        match (view, product) {
            ("products", None) => Some(Self::Products),
            ("key", Some(p)) => Some(Self::Key(p)),
            ("server", p) => Some(Self::Server(p)),
            ("diagnostics", None) => Some(Self::Diagnostics),
            ("about", None) => Some(Self::About),
            ("settings", None) => Some(Self::Settings),
            _ => None,
        }
    }

    /// The window label (product ids are `[a-z0-9-]`, so labels stay valid).
    pub fn label(&self) -> String {
        match self {
            Self::Products => "products".into(),
            Self::Key(p) => format!("key-{p}"),
            Self::Server(None) => "server".into(),
            Self::Server(Some(p)) => format!("server-{p}"),
            Self::Diagnostics => "diagnostics".into(),
            Self::About => "about".into(),
            Self::Settings => "settings".into(),
        }
    }

    /// The bundle's page and query that selects the view.
    pub fn url(&self) -> String {
        match self {
            Self::Products => "index.html?view=products".into(),
            Self::Key(p) => format!("index.html?view=key&product={p}"),
            Self::Server(None) => "index.html?view=server".into(),
            Self::Server(Some(p)) => format!("index.html?view=server&product={p}"),
            Self::Diagnostics => "index.html?view=diagnostics".into(),
            Self::About => "index.html?view=about".into(),
            Self::Settings => "index.html?view=settings".into(),
        }
    }

    pub fn title(&self) -> String {
        match self {
            Self::Products => "Lapwing".into(),
            Self::Key(p) => format!("License key — {p}"),
            Self::Server(None) => "Server".into(),
            Self::Server(Some(p)) => format!("Server — {p}"),
            Self::Diagnostics => "Diagnostics".into(),
            Self::About => "About Lapwing".into(),
            Self::Settings => "Settings".into(),
        }
    }

    fn size(&self) -> (f64, f64) {
        match self {
            Self::Products | Self::Diagnostics => (720.0, 520.0),
            Self::Key(_) | Self::Server(_) => (520.0, 420.0),
            Self::About | Self::Settings => (480.0, 400.0),
        }
    }
}

/// Opens the view's window, or brings it forward if it is open.
pub fn open<R: Runtime>(app: &AppHandle<R>, view: &View) -> tauri::Result<()> {
    let label = view.label();
    if let Some(window) = app.get_webview_window(&label) {
        // Best effort: a window manager may refuse focus; the window is there either way.
        let _ = window.unminimize();
        let _ = window.show();
        return window.set_focus();
    }
    let (width, height) = view.size();
    // The two log lines time a window from the request to its first paint (`cargo xtask
    // bench tray` reads them).
    tracing::info!(window = %label, "opening window");
    WebviewWindowBuilder::new(app, label, WebviewUrl::App(view.url().into()))
        .on_page_load(|window, payload| {
            if payload.event() == PageLoadEvent::Finished {
                tracing::info!(window = %window.label(), "page loaded");
            }
        })
        .title(view.title())
        .inner_size(width, height)
        .min_inner_size(360.0, 280.0)
        .build()?
        .set_focus()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_have_the_documented_labels_and_urls() {
        let cases = [
            (View::Products, "products", "index.html?view=products"),
            (
                View::Key("acme".into()),
                "key-acme",
                "index.html?view=key&product=acme",
            ),
            (View::Server(None), "server", "index.html?view=server"),
            (
                View::Server(Some("acme".into())),
                "server-acme",
                "index.html?view=server&product=acme",
            ),
            (
                View::Diagnostics,
                "diagnostics",
                "index.html?view=diagnostics",
            ),
            (View::About, "about", "index.html?view=about"),
            (View::Settings, "settings", "index.html?view=settings"),
        ];
        for (view, label, url) in cases {
            assert_eq!(view.label(), label);
            assert_eq!(view.url(), url);
        }
    }

    #[test]
    fn only_sensible_view_and_product_pairs_make_a_view() {
        assert_eq!(View::from_parts("products", None), Some(View::Products));
        assert_eq!(View::from_parts("key", None), None);
        assert_eq!(View::from_parts("about", Some("a".into())), None);
        assert_eq!(View::from_parts("server", None), Some(View::Server(None)));
        assert_eq!(View::from_parts("main", None), None);
    }
}
