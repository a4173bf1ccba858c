//! The app's windows: created when opened, destroyed when closed (Tauri's default on close),
//! so an idle tray holds no webview. Opening one that exists brings it forward.

use tauri::webview::PageLoadEvent;
use tauri::{AppHandle, Manager, Runtime, Url, WebviewUrl, WebviewWindowBuilder};

use crate::tray_host::TrayHost;

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

    /// The window's title; `name` is the product's name as shown (the id only when the
    /// product is not installed, which the window then says).
    pub fn title(&self, name: Option<&str>) -> String {
        match self {
            Self::Products => "Lapwing".into(),
            Self::Key(p) => format!("License key — {}", name.unwrap_or(p)),
            Self::Server(None) => "Server for every product".into(),
            Self::Server(Some(p)) => format!("Server — {}", name.unwrap_or(p)),
            Self::Diagnostics => "Diagnostics".into(),
            Self::About => "About Lapwing".into(),
            Self::Settings => "Settings".into(),
        }
    }

    /// The product the window is about, if any.
    pub fn product(&self) -> Option<&str> {
        match self {
            Self::Key(p) | Self::Server(Some(p)) => Some(p),
            _ => None,
        }
    }

    /// The inner size, fitted to the content in its tallest ordinary state (the key window
    /// with a typo, its suggestion, the Activate button and a result; the server window with
    /// a result above its form), so nothing a person must see or press is below the edge. The
    /// browser tests check the layouts at exactly these sizes (`layout.test.mjs`).
    pub fn size(&self) -> (f64, f64) {
        match self {
            Self::Products | Self::Diagnostics => (720.0, 560.0),
            Self::Key(_) => (560.0, 640.0),
            Self::Server(_) => (600.0, 640.0),
            Self::Settings => (480.0, 360.0),
            Self::About => (560.0, 560.0),
        }
    }
}

/// Whether closing the window labelled `label` ends the app: with no tray to come back to,
/// the Products window is the app, and closing it must not leave an invisible process.
pub fn quits_when_closed(host: TrayHost, label: &str) -> bool {
    matches!(host, TrayHost::Absent(_)) && label == View::Products.label()
}

/// The windows to open at start: the one asked for, and with no tray the Products window
/// first (otherwise nothing of the app could be seen).
pub fn windows_at_start(host: TrayHost, asked: Option<&View>) -> Vec<View> {
    let mut out = Vec::new();
    if matches!(host, TrayHost::Absent(_)) {
        out.push(View::Products);
    }
    if let Some(view) = asked
        && !out.contains(view)
    {
        out.push(view.clone());
    }
    out
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
    // A person reads the product's name, never its id.
    let name = view.product().and_then(|id| {
        app.try_state::<crate::state::Lapwing>()
            .and_then(|lapwing| {
                lapwing
                    .engine
                    .catalog()
                    .products
                    .get(id)
                    .map(|m| lapwing_core::shown::shown(&m.name).into_owned())
            })
    });
    // The two log lines time a window from the request to its first paint (`cargo xtask
    // bench tray` reads them).
    tracing::info!(window = %label, "opening window");
    // The dev server's pages are the app's own only in a debug build.
    let dev_url = if cfg!(debug_assertions) {
        app.config().build.dev_url.clone()
    } else {
        None
    };
    WebviewWindowBuilder::new(app, label, WebviewUrl::App(view.url().into()))
        .on_navigation(move |url| {
            let own = is_own_page(url, dev_url.as_ref());
            if !own {
                tracing::warn!(url = %url.origin().ascii_serialization(), "navigation away from the app's pages refused");
            }
            own
        })
        .on_page_load(|window, payload| {
            if payload.event() == PageLoadEvent::Finished {
                tracing::info!(window = %window.label(), "page loaded");
            }
        })
        .title(view.title(name.as_deref()))
        .inner_size(width, height)
        .min_inner_size(360.0, 280.0)
        .build()?
        .set_focus()
}

/// Whether `url` is one of the app's own pages: Tauri's custom protocol (`tauri://localhost`
/// on Linux and macOS, `http(s)://tauri.localhost` on Windows) or, in a debug build, the dev
/// server. A link or a script in a page must not lead a window (and the commands it is
/// granted) to anything else.
pub fn is_own_page(url: &Url, dev_url: Option<&Url>) -> bool {
    let host = url.host_str();
    match url.scheme() {
        "tauri" => host == Some("localhost"),
        "http" | "https" if host == Some("tauri.localhost") => url.port().is_none(),
        _ => dev_url.is_some_and(|dev| dev.origin() == url.origin()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tray_host::NoHost;

    fn url(text: &str) -> Url {
        text.parse().expect("url")
    }

    #[test]
    fn only_the_apps_own_pages_may_be_navigated_to() {
        for own in [
            "tauri://localhost/index.html?view=products",
            "http://tauri.localhost/index.html?view=key&product=acme",
            "https://tauri.localhost/index.html",
        ] {
            assert!(is_own_page(&url(own), None), "{own}");
        }
        for foreign in [
            "https://example.com/",
            "http://localhost:1420/",
            "tauri://evil.example/",
            "http://tauri.localhost.evil.example/",
            "http://tauri.localhost:8080/",
            "file:///etc/passwd",
            "data:text/html,<b>hi</b>",
            "javascript:alert(1)",
        ] {
            assert!(!is_own_page(&url(foreign), None), "{foreign}");
        }
        let dev = url("http://localhost:1420/");
        assert!(is_own_page(
            &url("http://localhost:1420/index.html"),
            Some(&dev)
        ));
        assert!(!is_own_page(&url("http://localhost:1421/"), Some(&dev)));
    }

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
    fn only_the_products_window_is_the_app_and_only_without_a_tray() {
        let absent = TrayHost::Absent(NoHost::NoWatcher);
        assert!(quits_when_closed(absent, "products"));
        for other in ["key-acme", "server", "server-acme", "about", "settings"] {
            assert!(!quits_when_closed(absent, other), "{other}");
        }
        assert!(!quits_when_closed(TrayHost::Present, "products"));
    }

    #[test]
    fn without_a_tray_the_products_window_opens_at_start() {
        let absent = TrayHost::Absent(NoHost::NoSessionBus);
        assert_eq!(windows_at_start(absent, None), [View::Products]);
        assert_eq!(
            windows_at_start(absent, Some(&View::About)),
            [View::Products, View::About]
        );
        assert_eq!(
            windows_at_start(absent, Some(&View::Products)),
            [View::Products]
        );
        assert!(windows_at_start(TrayHost::Present, None).is_empty());
        assert_eq!(
            windows_at_start(TrayHost::Present, Some(&View::About)),
            [View::About]
        );
    }

    #[test]
    fn titles_name_the_product_not_its_id() {
        let key = View::Key("demo-export".into());
        assert_eq!(
            key.title(Some("Lapwing Demo Export")),
            "License key — Lapwing Demo Export"
        );
        assert_eq!(
            View::Server(Some("demo-export".into())).title(Some("Lapwing Demo Export")),
            "Server — Lapwing Demo Export"
        );
        assert_eq!(View::Server(None).title(None), "Server for every product");
        assert_eq!(key.product(), Some("demo-export"));
        assert_eq!(View::About.product(), None);
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
