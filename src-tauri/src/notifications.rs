//! The engine's events as desktop notifications (notify-rust). The engine sends each event
//! at most once; this module only words it and, where the platform reports clicks, opens the
//! window that helps.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use lap_proto::time::{DAY, HOUR};
use lapwing_core::cause::Cause;
use lapwing_core::engine::ProductStatus;
use lapwing_core::scheduler::{Event, WarningKind};
use lapwing_core::shown::{markup_escaped, shown};
use lapwing_core::status::Phase;
use tauri::{AppHandle, Runtime};

use crate::windows::View;

/// A notification's words and the window a click opens. Both are plain text, with the outside
/// text in them (product names, causes quoting host names and server words) passed through
/// `shown`; the body is made markup-safe where it is sent as markup ([`Notice::markup_body`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub summary: String,
    pub body: String,
    pub view: View,
}

impl Notice {
    /// The body for a freedesktop notification server, which may read it as markup (`<b>`,
    /// `<a href>`, entities). The summary is plain text there and stays as it is: escaped, it
    /// would show `&lt;` literally. Other platforms take the plain body.
    pub fn markup_body(&self) -> String {
        markup_escaped(&self.body)
    }
}

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
            let name = shown(name);
            let date = crate::menu::date(*ends_at);
            match what {
                WarningKind::Evaluation => Notice {
                    summary: format!("{name}: evaluation ends {}", time_left(*ends_at, now)),
                    body: format!(
                        "The evaluation ends on {date}. Enter a license key to keep using {name}."
                    ),
                    view: View::Key(product.clone()),
                },
                WarningKind::NotAfter => Notice {
                    summary: format!("{name}: license ends {}", time_left(*ends_at, now)),
                    body: format!(
                        "The license runs until {date}. Lapwing renews it when the server allows; if it cannot, ask your vendor."
                    ),
                    view: View::Products,
                },
            }
        }
        Event::Recovered { name, .. } => Notice {
            summary: format!("{} is activated again", shown(name)),
            body: "The license server answered after failed attempts.".into(),
            view: View::Products,
        },
        Event::NeedsAttention {
            product,
            name,
            cause,
        } => Notice {
            summary: format!("{} needs you", shown(name)),
            body: sentence(&shown(&cause.to_string())),
            view: attention_view(cause, product),
        },
    }
}

/// The window that helps with a cause: where to set a server, where to enter a key, or the
/// diagnostics. Decided on the variant alone (every one named, no catch-all), so rewording a
/// sentence cannot send a click elsewhere and a new cause must be given a window here.
fn attention_view(cause: &Cause, product: &str) -> View {
    match cause {
        Cause::NoServerFound { .. }
        | Cause::OverrideSilent { .. }
        | Cause::OverrideNotFound { .. } => View::Server(Some(product.to_owned())),
        Cause::NoLicenseKey
        | Cause::KeyMayBeRefused
        | Cause::EvaluationDisabled
        | Cause::EvaluationEnded
        | Cause::ServerKeyChanged
        | Cause::EvaluationMayNotBeOffered => View::Key(product.to_owned()),
        Cause::ClockMayBeOff
        | Cause::ClockOff { .. }
        | Cause::ClockRight { .. }
        | Cause::ClockSynchronized
        | Cause::ClockNotChecked { .. }
        | Cause::ClockMovedBack { .. }
        | Cause::Unreachable { .. }
        | Cause::InvalidServerData { .. }
        | Cause::DatagramsRejected { .. }
        | Cause::LicenseExpired
        | Cause::Recorded { .. }
        | Cause::ServerRefused { .. }
        | Cause::NoRoute { .. } => View::Diagnostics,
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

/// The notice for a product the server called a Duplicate (profile §9): what it means and
/// what to do, in the status's own words (`ProductStatus::lifecycle_note`). A click opens
/// the Products window, where the card says the same.
pub fn duplicate_notice(status: &ProductStatus) -> Option<Notice> {
    if !status.duplicate || status.state == Phase::Sunset {
        return None;
    }
    let note = status.lifecycle_note()?;
    Some(Notice {
        summary: format!(
            "{}: {}",
            shown(&status.name),
            lapwing_core::verdict::Reason::Duplicate
        ),
        body: sentence(&shown(&note)),
        view: View::Products,
    })
}

/// Tells of a Duplicate once: when a product is first seen flagged in this run, and again
/// only after an answer without the flag cleared it. The engine's events are the scheduler's
/// (warnings, attention); the flag arrives with any accepted answer, so the tray watches the
/// published status for it.
#[derive(Debug, Default)]
pub struct DuplicateWatch {
    told: Mutex<BTreeSet<String>>,
}

impl DuplicateWatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The notices due for these statuses; remembers them as told.
    pub fn due(&self, statuses: &[ProductStatus]) -> Vec<Notice> {
        let mut told = self.told.lock().unwrap_or_else(PoisonError::into_inner);
        // A flag that cleared may be told again when it returns.
        told.retain(|id| statuses.iter().any(|s| &s.id == id && s.duplicate));
        statuses
            .iter()
            .filter_map(|s| {
                let notice = duplicate_notice(s)?;
                told.insert(s.id.clone()).then_some(notice)
            })
            .collect()
    }
}

/// Shows a notice of the tray's own (not an engine event), on a thread of its own.
pub fn show_notice<R: Runtime>(app: &AppHandle<R>, notice: Notice) {
    let app = app.clone();
    std::thread::spawn(move || deliver(&app, &notice));
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
        .body(&notice.markup_body())
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

/// macOS: a notification through the system's notification center. Windows: a toast through
/// WinRT (notify-rust's Windows backend), under the app id notify-rust defaults to, since an
/// id of our own must be carried by a Start-menu shortcut and the installer's makensis cannot
/// write that property without a plugin. Built for Windows in CI; not shown here (Wine has no
/// toasts).
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

    fn flagged(id: &str, duplicate: bool, state: Phase) -> ProductStatus {
        ProductStatus {
            id: id.into(),
            name: "Acme Studio".into(),
            state,
            duplicate,
            ..ProductStatus::default()
        }
    }

    #[test]
    fn a_duplicate_is_told_once_with_what_to_do() {
        let watch = DuplicateWatch::new();
        let clean = [flagged("acme", false, Phase::Activated)];
        let cloned = [flagged("acme", true, Phase::Activated)];
        assert!(watch.due(&clean).is_empty());
        let told = watch.due(&cloned);
        assert_eq!(told.len(), 1);
        assert_eq!(
            told[0].summary,
            "Acme Studio: this installation looks cloned or restored from a snapshot"
        );
        assert!(told[0].body.contains("SMBIOS UUID"), "{}", told[0].body);
        assert!(told[0].body.ends_with('.'), "{}", told[0].body);
        assert_eq!(told[0].view, View::Products);
        // Every later publish with the flag still set: nothing more.
        assert!(watch.due(&cloned).is_empty());
        assert!(watch.due(&cloned).is_empty());
        // Cleared by an answer without it, then flagged again: told again.
        assert!(watch.due(&clean).is_empty());
        assert_eq!(watch.due(&cloned).len(), 1);
    }

    #[test]
    fn a_sunset_product_is_never_told_of_a_duplicate() {
        let watch = DuplicateWatch::new();
        assert!(
            watch
                .due(&[flagged("acme", true, Phase::Sunset)])
                .is_empty()
        );
    }

    const NOW: u64 = 1_795_000_000;
    /// 12 Mar 2027, 12:00 UTC.
    const MARCH_12: u64 = 1_804_852_800;

    #[test]
    fn warnings_name_the_end_and_the_time_left() {
        let license = Event::Warning {
            product: "acme".into(),
            name: "Acme Studio".into(),
            what: WarningKind::NotAfter,
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
            what: WarningKind::Evaluation,
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

        let n = attention(Cause::NoServerFound { skipped: vec![] });
        assert_eq!(n.summary, "Acme needs you");
        assert_eq!(
            n.body,
            "No server found: set one with `lapctl server set HOST:PORT`."
        );
        assert_eq!(n.view, View::Server(Some("acme".into())));
        assert_eq!(
            attention(Cause::EvaluationDisabled).body,
            "Evaluation disabled by the administrator (machine policy): enter a license key."
        );
        assert_eq!(
            attention(Cause::LicenseExpired).body,
            "The license has expired."
        );
    }

    /// A manifest's name and the host names a cause quotes are outside text: no control or
    /// bidi character reaches the notification, and markup in them is shown, not obeyed.
    #[test]
    fn outside_text_is_neither_obeyed_nor_garbled() {
        let name = "\u{1b}[2J\u{202E}<b>bold</b> & co";
        let warning = Event::Warning {
            product: "acme".into(),
            name: name.into(),
            what: WarningKind::Evaluation,
            ends_at: MARCH_12,
            label: "evaluation@1/1h".into(),
        };
        let attention = Event::NeedsAttention {
            product: "acme".into(),
            name: name.into(),
            cause: Cause::NoServerFound {
                skipped: vec![lapwing_core::cause::SkippedServer {
                    source: lapwing_discovery::ServerSource::DnsSd,
                    subject: "<i>lab</i>\u{1b}]8;;http://evil\u{7}".into(),
                    reason: "loopback".into(),
                }],
            },
        };
        for (event, escaped) in [
            (warning, "&lt;b&gt;bold&lt;/b&gt; &amp; co"),
            (attention, "&lt;i&gt;lab&lt;/i&gt;"),
        ] {
            let n = notice(&event, MARCH_12 - DAY);
            let body = n.markup_body();
            for text in [&n.summary, &n.body, &body] {
                assert!(
                    !text.chars().any(|c| c.is_control() || c == '\u{202E}'),
                    "{text:?}"
                );
            }
            assert!(n.summary.contains("<b>bold</b>"), "{}", n.summary);
            assert!(body.contains(escaped), "{body}");
            assert!(!body.contains('<') && !body.contains('>'), "{body}");
        }
        let plain = notice(
            &Event::Recovered {
                product: "acme".into(),
                name: "Acme".into(),
            },
            NOW,
        );
        assert_eq!(plain.markup_body(), plain.body);
    }

    fn attention(cause: Cause) -> Notice {
        notice(
            &Event::NeedsAttention {
                product: "acme".into(),
                name: "Acme".into(),
                cause,
            },
            NOW,
        )
    }

    /// Every cause and the window its notification opens.
    #[test]
    fn each_cause_opens_its_window() {
        let key = View::Key("acme".into());
        let cases = [
            (
                Cause::NoServerFound { skipped: vec![] },
                View::Server(Some("acme".into())),
            ),
            (Cause::NoLicenseKey, key.clone()),
            (Cause::KeyMayBeRefused, key.clone()),
            (Cause::EvaluationDisabled, key.clone()),
            (Cause::EvaluationEnded, key.clone()),
            (Cause::ServerKeyChanged, key.clone()),
            (Cause::EvaluationMayNotBeOffered, key.clone()),
            (Cause::ClockMayBeOff, View::Diagnostics),
            (Cause::ClockMovedBack { by_secs: 7_200 }, View::Diagnostics),
            (
                Cause::ClockOff {
                    offset_secs: 600,
                    server: "ntp.test:123".into(),
                },
                View::Diagnostics,
            ),
            (Cause::Unreachable { tried: vec![] }, View::Diagnostics),
            (
                Cause::InvalidServerData {
                    address: "10.0.0.1:4711".into(),
                    error: "NotAfter is already past".into(),
                },
                View::Diagnostics,
            ),
            (
                Cause::DatagramsRejected {
                    count: 2,
                    address: "10.0.0.1:4711".into(),
                    last_error: "authentication failed".into(),
                },
                View::Diagnostics,
            ),
            (Cause::LicenseExpired, View::Diagnostics),
            (
                Cause::Recorded {
                    message: "an older sentence".into(),
                },
                View::Diagnostics,
            ),
        ];
        for (cause, view) in cases {
            assert_eq!(attention(cause.clone()).view, view, "{cause:?}");
        }
    }

    /// The window follows the variant, not the words: sentences that read like another
    /// cause's (as the text matching of old would have read them) change nothing.
    #[test]
    fn rewording_a_cause_changes_no_window() {
        let misleading = "no server found: enter a license key to start the evaluation";
        assert_eq!(
            attention(Cause::Recorded {
                message: misleading.into()
            })
            .view,
            View::Diagnostics
        );
        assert_eq!(
            attention(Cause::InvalidServerData {
                address: "evaluation.example:4711".into(),
                error: misleading.into(),
            })
            .view,
            View::Diagnostics
        );
        assert_eq!(
            attention(Cause::Unreachable {
                tried: vec![lapwing_core::state::ServerUsed {
                    address: "license-key.example:4711".into(),
                    source: lapwing_core::state::ServerSource::Override,
                }],
            })
            .view,
            View::Diagnostics
        );
    }
}
