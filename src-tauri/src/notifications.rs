//! The engine's events as desktop notifications (notify-rust). The engine sends each event
//! at most once; this module only words it and, where the platform reports clicks, opens the
//! window that helps.

use lapwing_core::scheduler::Event;
use tauri::{AppHandle, Runtime};

use crate::windows::View;

/// A notification's words and the window a click opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub summary: String,
    pub body: String,
    pub view: View,
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// "in 9 days", "in 5 hours", "within the hour", "now".
fn time_left(end: u64, now: u64) -> String {
    let left = end.saturating_sub(now);
    match left {
        0 => "now".into(),
        l if l < HOUR => "within the hour".into(),
        l if l < DAY => match l.div_ceil(HOUR) {
            1 => "in 1 hour".into(),
            n => format!("in {n} hours"),
        },
        l => match l.div_ceil(DAY) {
            1 => "in 1 day".into(),
            n => format!("in {n} days"),
        },
    }
}

/// The words for an event at `now`.
pub fn notice(event: &Event, now: u64) -> Notice {
    match event {
        Event::Warning {
            product,
            name,
            what,
            ends_at,
            ..
        } => {
            let date = crate::menu::date(*ends_at);
            if what == "evaluation" {
                Notice {
                    summary: format!("{name}: evaluation ends {}", time_left(*ends_at, now)),
                    body: format!(
                        "The evaluation ends on {date}. Enter a license key to keep using {name}."
                    ),
                    view: View::Key(product.clone()),
                }
            } else {
                Notice {
                    summary: format!("{name}: license ends {}", time_left(*ends_at, now)),
                    body: format!(
                        "The license runs until {date}. Lapwing renews it when the server allows; if it cannot, ask your vendor."
                    ),
                    view: View::Products,
                }
            }
        }
        Event::Recovered { name, .. } => Notice {
            summary: format!("{name} is activated again"),
            body: "The license server answered after failed attempts.".into(),
            view: View::Products,
        },
        Event::NeedsAttention {
            product,
            name,
            reason,
        } => {
            // The reason is the engine's first diagnosis: it names what to fix.
            let view = if reason.starts_with("no server found") {
                View::Server(Some(product.clone()))
            } else if reason.contains("license key") || reason.contains("evaluation") {
                View::Key(product.clone())
            } else {
                View::Diagnostics
            };
            Notice {
                summary: format!("{name} needs you"),
                body: sentence(reason),
                view,
            }
        }
    }
}

/// The engine's diagnoses are lower-case clauses; a notification body reads as a sentence.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Shows the event. Showing talks to the notification server (D-Bus on Linux) and, where
/// clicks are reported, waits for one: both on a thread of their own, never the UI's.
pub fn show<R: Runtime>(app: &AppHandle<R>, event: &Event, now: u64) {
    let notice = notice(event, now);
    let app = app.clone();
    std::thread::spawn(move || deliver(&app, &notice));
}

#[cfg(all(unix, not(target_os = "macos")))]
fn deliver<R: Runtime>(app: &AppHandle<R>, notice: &Notice) {
    let shown = notify_rust::Notification::new()
        .appname("Lapwing")
        .summary(&notice.summary)
        .body(&notice.body)
        .icon("dialog-information")
        .action("default", "Open")
        .show();
    match shown {
        Ok(handle) => handle.wait_for_action(|action| {
            if action == "default" {
                let view = notice.view.clone();
                let opener = app.clone();
                let _ = app.run_on_main_thread(move || {
                    if let Err(e) = crate::windows::open(&opener, &view) {
                        tracing::warn!(error = %e, "cannot open the window for a notification");
                    }
                });
            }
        }),
        Err(e) => tracing::warn!(error = %e, "cannot show a notification"),
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn deliver<R: Runtime>(_app: &AppHandle<R>, notice: &Notice) {
    // Clicks are not reported here: the notification only informs.
    if let Err(e) = notify_rust::Notification::new()
        .summary(&notice.summary)
        .body(&notice.body)
        .show()
    {
        tracing::warn!(error = %e, "cannot show a notification");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000;
    /// 12 Mar 2027, 12:00 UTC.
    const MARCH_12: u64 = 1_804_852_800;

    #[test]
    fn warnings_name_the_end_and_the_time_left() {
        let license = Event::Warning {
            product: "acme".into(),
            name: "Acme Studio".into(),
            what: "not-after".into(),
            ends_at: MARCH_12,
            label: "not-after@1/60d".into(),
        };
        let n = notice(&license, MARCH_12 - 9 * DAY);
        assert_eq!(n.summary, "Acme Studio: license ends in 9 days");
        assert!(n.body.starts_with("The license runs until 12 Mar 2027."));
        assert_eq!(n.view, View::Products);

        let evaluation = Event::Warning {
            product: "acme".into(),
            name: "Acme Studio".into(),
            what: "evaluation".into(),
            ends_at: MARCH_12,
            label: "evaluation@1/1h".into(),
        };
        let n = notice(&evaluation, MARCH_12 - 5 * HOUR);
        assert_eq!(n.summary, "Acme Studio: evaluation ends in 5 hours");
        assert_eq!(
            n.body,
            "The evaluation ends on 12 Mar 2027. Enter a license key to keep using Acme Studio."
        );
        assert_eq!(n.view, View::Key("acme".into()));
        assert_eq!(
            notice(&evaluation, MARCH_12 - 60).summary,
            "Acme Studio: evaluation ends within the hour"
        );
        assert_eq!(
            notice(&evaluation, MARCH_12 - DAY).summary,
            "Acme Studio: evaluation ends in 1 day"
        );
    }

    #[test]
    fn recovery_and_attention_have_their_words_and_windows() {
        let n = notice(
            &Event::Recovered {
                product: "acme".into(),
                name: "Acme".into(),
            },
            NOW,
        );
        assert_eq!(n.summary, "Acme is activated again");
        assert_eq!(n.view, View::Products);

        let attention = |reason: &str| {
            notice(
                &Event::NeedsAttention {
                    product: "acme".into(),
                    name: "Acme".into(),
                    reason: reason.into(),
                },
                NOW,
            )
        };
        let n = attention("no server found: set one with `lapctl server set HOST:PORT`");
        assert_eq!(n.summary, "Acme needs you");
        assert_eq!(
            n.body,
            "No server found: set one with `lapctl server set HOST:PORT`."
        );
        assert_eq!(n.view, View::Server(Some("acme".into())));
        assert_eq!(
            attention("the license key may not be accepted for this product").view,
            View::Key("acme".into())
        );
        assert_eq!(attention("expired").view, View::Diagnostics);
    }
}
