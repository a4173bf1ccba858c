//! The panel side of a desktop's tray, on the virtual desktop's private session bus: an
//! `org.kde.StatusNotifierWatcher` that says a host is registered, and, as a panel does,
//! reads each item's properties once it registers. Without it the tray app finds no tray
//! and opens its Products window at start (so that something of it can be seen), which is
//! not what the app costs on a desktop with a panel.

use std::sync::{Mutex, PoisonError};

use zbus::message::Header;
use zbus::names::InterfaceName;

use crate::steps::{Result, fail};

const WATCHER: &str = "org.kde.StatusNotifierWatcher";
const ITEM: &str = "org.kde.StatusNotifierItem";

/// The watcher, served for as long as it lives.
#[derive(Debug)]
pub struct TrayWatcher {
    _connection: zbus::blocking::Connection,
}

impl TrayWatcher {
    pub fn start(bus_address: &str) -> Result<Self> {
        let serve = || -> zbus::Result<zbus::blocking::Connection> {
            zbus::blocking::connection::Builder::address(bus_address)?
                .name(WATCHER)?
                .serve_at("/StatusNotifierWatcher", Watcher::default())?
                .build()
        };
        let connection =
            serve().map_err(|e| fail(format!("a tray watcher on the session bus: {e}")))?;
        Ok(Self {
            _connection: connection,
        })
    }
}

#[derive(Debug, Default)]
struct Watcher {
    items: Mutex<Vec<String>>,
}

// The D-Bus interface fixes the signatures: zbus hands the header over by value, and the
// constant properties are still methods.
#[allow(
    clippy::needless_pass_by_value,
    clippy::unused_self,
    reason = "signatures of the D-Bus interface"
)]
#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    /// `service` is a bus name, or (libayatana-appindicator) the item's object path on the
    /// caller's connection.
    fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &zbus::Connection,
    ) {
        let Some(sender) = header.sender().map(ToString::to_string) else {
            return;
        };
        let (destination, path) = if service.starts_with('/') {
            (sender, service)
        } else {
            (service, "/StatusNotifierItem".to_owned())
        };
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!("{destination}{path}"));
        // After the reply, as a panel does: the app answers it from its own main loop.
        let connection = zbus::blocking::Connection::from(connection.clone());
        std::thread::spawn(move || {
            let read = || -> zbus::Result<usize> {
                let properties = zbus::blocking::fdo::PropertiesProxy::builder(&connection)
                    .destination(destination.as_str())?
                    .path(path.as_str())?
                    .build()?;
                let interface = InterfaceName::try_from(ITEM)?;
                Ok(properties.get_all(interface)?.len())
            };
            if let Err(e) = read() {
                eprintln!("tray watcher: cannot read the item's properties: {e}");
            }
        });
    }

    /// The host is this watcher's own: another has nothing to add.
    fn register_status_notifier_host(&self, service: String) {
        drop(service);
    }

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}
