//! Whether anyone can see the tray icon. On Linux a tray icon is a StatusNotifier item: it is
//! shown only when a host (a panel) has registered with the `org.kde.StatusNotifierWatcher`
//! on the session bus. Without one the icon is created without error and nobody sees it, so
//! the app must not pretend: it says so, and the Products window becomes its main window.
//!
//! The decision is a pure function of the facts read from the bus ([`decide`]); [`probe`] only
//! reads them. Windows and macOS always have a notification area. What follows from it for the
//! windows (which open at start, which one's closing quits) is in `windows.rs`.

use std::fmt;

use serde::Serialize;

/// What the session bus said, read once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusFacts {
    /// A session bus answered.
    pub session_bus: bool,
    /// `org.kde.StatusNotifierWatcher` has an owner.
    pub watcher: bool,
    /// The watcher's `IsStatusNotifierHostRegistered`; `None` when it could not be read.
    pub host_registered: Option<bool>,
}

/// Why no tray icon can be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoHost {
    NoSessionBus,
    NoWatcher,
    NoHostRegistered,
}

impl fmt::Display for NoHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSessionBus => "there is no session bus, so no system tray can be reached",
            Self::NoWatcher => "no system tray (StatusNotifier host) is running on this desktop",
            Self::NoHostRegistered => {
                "this desktop's status notifier watcher has no tray to show icons in"
            }
        })
    }
}

/// Whether the tray icon can be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayHost {
    Present,
    Absent(NoHost),
}

/// The decision. A watcher whose property cannot be read is given the benefit of the doubt:
/// every watcher in use implements it, and one that does not still shows items to its host.
pub fn decide(facts: &BusFacts) -> TrayHost {
    if !facts.session_bus {
        return TrayHost::Absent(NoHost::NoSessionBus);
    }
    if !facts.watcher {
        return TrayHost::Absent(NoHost::NoWatcher);
    }
    match facts.host_registered {
        Some(false) => TrayHost::Absent(NoHost::NoHostRegistered),
        Some(true) | None => TrayHost::Present,
    }
}

#[cfg(target_os = "linux")]
const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// Reads the facts from the session bus.
#[cfg(target_os = "linux")]
pub fn probe() -> BusFacts {
    let Ok(connection) = zbus::blocking::Connection::session() else {
        return BusFacts {
            session_bus: false,
            watcher: false,
            host_registered: None,
        };
    };
    let watcher = zbus::blocking::fdo::DBusProxy::new(&connection)
        .ok()
        .zip(zbus::names::BusName::try_from(WATCHER).ok())
        .is_some_and(|(bus, name)| bus.name_has_owner(name).unwrap_or(false));
    let host_registered = if watcher {
        zbus::blocking::Proxy::new(&connection, WATCHER, "/StatusNotifierWatcher", WATCHER)
            .and_then(|proxy| proxy.get_property::<bool>("IsStatusNotifierHostRegistered"))
            .ok()
    } else {
        None
    };
    BusFacts {
        session_bus: true,
        watcher,
        host_registered,
    }
}

/// Windows and macOS always have a place for the icon (the BSDs are not built for).
#[cfg(not(target_os = "linux"))]
pub fn probe() -> BusFacts {
    BusFacts {
        session_bus: true,
        watcher: true,
        host_registered: Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(session_bus: bool, watcher: bool, host_registered: Option<bool>) -> BusFacts {
        BusFacts {
            session_bus,
            watcher,
            host_registered,
        }
    }

    #[test]
    fn a_tray_is_there_only_with_a_watcher_that_has_a_host() {
        assert_eq!(
            decide(&facts(true, true, Some(true))),
            TrayHost::Present,
            "a panel registered its host"
        );
        assert_eq!(
            decide(&facts(true, true, None)),
            TrayHost::Present,
            "a watcher without the property is trusted"
        );
        assert_eq!(
            decide(&facts(true, true, Some(false))),
            TrayHost::Absent(NoHost::NoHostRegistered)
        );
        assert_eq!(
            decide(&facts(true, false, None)),
            TrayHost::Absent(NoHost::NoWatcher)
        );
        // No bus at all: nothing else read can matter.
        for watcher in [false, true] {
            for host in [None, Some(false), Some(true)] {
                assert_eq!(
                    decide(&facts(false, watcher, host)),
                    TrayHost::Absent(NoHost::NoSessionBus)
                );
            }
        }
    }

    #[test]
    fn each_reason_is_a_sentence_and_a_code() {
        for (reason, code) in [
            (NoHost::NoSessionBus, "\"no-session-bus\""),
            (NoHost::NoWatcher, "\"no-watcher\""),
            (NoHost::NoHostRegistered, "\"no-host-registered\""),
        ] {
            assert!(!reason.to_string().is_empty());
            assert_eq!(serde_json::to_string(&reason).expect("json"), code);
        }
    }
}
