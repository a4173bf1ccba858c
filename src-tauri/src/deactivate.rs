//! What "Deactivate on this computer" answers the windows (`DeactivateView`) and the words
//! for each outcome of `Engine::deactivate` (profile §9, issue 16). The outcome itself is the
//! engine's; this module only words it, so that the windows show one sentence per outcome
//! and the troubleshooting guide can quote it.

use lapwing_core::shown::shown;
use serde::Serialize;

use crate::publish::StatusView;

/// What became of the activation here: the engine's outcome words (`lapwing_core`'s
/// `Deactivation`, serialized kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The server freed the seat; the activation record is gone.
    Released,
    /// The server answered with an ordinary grant (a transfer limit, a 1.0 server): the
    /// activation stays.
    Kept,
    /// No server answered: nothing changed.
    Unanswered,
    /// Given up here without the server's word ("Deactivate here anyway").
    DeactivatedHere,
}

/// The `deactivate` command's answer (COMMANDS.md).
#[derive(Debug, Clone, Serialize)]
pub struct DeactivateView {
    pub outcome: Outcome,
    /// The sentence the Products window shows, from [`message`].
    pub message: String,
    /// The server's Notice, as it sent it (a kept activation says why with it).
    pub notice: Option<String>,
    /// Whether the stored license key is gone now (asked for, and done).
    pub key_removed: bool,
    /// The product as it now stands (also published to every window and the tray).
    pub status: StatusView,
}

/// A released seat, said first in the result.
pub const RELEASED: &str = "Deactivated on this computer. Its seat is free for another computer.";
/// A kept activation when the server sent no Notice: a 1.0 server, or one that says nothing.
pub const CANNOT_RELEASE: &str =
    "This vendor's server cannot release seats; the activation is kept.";
/// After a Notice that kept the seat.
pub const KEPT: &str = "The activation is kept.";
/// After the silent server's cause.
pub const NOTHING_CHANGED: &str = "Nothing was changed.";
/// Given up here: the honest consequence, as the dialog promised it.
pub const DEACTIVATED_HERE: &str = "Deactivated on this computer only. The seat stays taken on the server until its lease runs out.";
/// Added when the key went too.
pub const KEY_REMOVED: &str = "The license key was removed from this computer.";

/// The sentence for an outcome. `notice` is the server's (kept), `cause` the engine's first
/// cause for a silence (unanswered), `key_removed` whether the key went too. Outside text
/// (the Notice, host names in the cause) passes through `shown`.
pub fn message(
    outcome: Outcome,
    notice: Option<&str>,
    cause: Option<&str>,
    key_removed: bool,
) -> String {
    let mut out = match outcome {
        Outcome::Released => RELEASED.to_owned(),
        Outcome::Kept => match notice.map(str::trim).filter(|n| !n.is_empty()) {
            Some(notice) => format!("{} {KEPT}", sentence(&shown(notice))),
            None => CANNOT_RELEASE.to_owned(),
        },
        Outcome::Unanswered => match cause.map(str::trim).filter(|c| !c.is_empty()) {
            Some(cause) => format!("{} {NOTHING_CHANGED}", sentence(&shown(cause))),
            None => format!("No license server answered. {NOTHING_CHANGED}"),
        },
        Outcome::DeactivatedHere => DEACTIVATED_HERE.to_owned(),
    };
    if key_removed {
        out.push(' ');
        out.push_str(KEY_REMOVED);
    }
    out
}

/// A clause as a sentence: a capital first letter and a closing full stop (a Notice or a
/// cause may end without one, or with "!" or "?", which stay).
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_says_the_seat_is_free_and_whether_the_key_went() {
        assert_eq!(
            message(Outcome::Released, None, None, false),
            "Deactivated on this computer. Its seat is free for another computer."
        );
        assert!(
            message(Outcome::Released, None, None, true)
                .ends_with("The license key was removed from this computer.")
        );
    }

    #[test]
    fn kept_says_the_notice_or_that_the_server_cannot_release() {
        assert_eq!(
            message(
                Outcome::Kept,
                Some("the next transfer of this license is possible on 3 Mar 2027"),
                None,
                false
            ),
            "The next transfer of this license is possible on 3 Mar 2027. The activation is kept."
        );
        for silent in [None, Some(""), Some("  ")] {
            assert_eq!(
                message(Outcome::Kept, silent, None, false),
                "This vendor's server cannot release seats; the activation is kept."
            );
        }
    }

    #[test]
    fn unanswered_says_the_cause_and_that_nothing_changed() {
        let said = message(
            Outcome::Unanswered,
            None,
            Some("the server may be unreachable: no answer from lap.example.com:4711 (DNS SRV)"),
            false,
        );
        assert_eq!(
            said,
            "The server may be unreachable: no answer from lap.example.com:4711 (DNS SRV). Nothing was changed."
        );
        assert_eq!(
            message(Outcome::Unanswered, None, None, false),
            "No license server answered. Nothing was changed."
        );
    }

    #[test]
    fn deactivated_here_says_the_seat_stays_taken() {
        assert!(
            message(Outcome::DeactivatedHere, None, None, false)
                .contains("The seat stays taken on the server until its lease runs out.")
        );
    }

    #[test]
    fn a_notice_cannot_garble_the_sentence() {
        let said = message(Outcome::Kept, Some("limit\u{202e}reached\n"), None, false);
        assert!(!said.contains('\u{202e}'), "{said}");
        assert!(said.ends_with(KEPT), "{said}");
    }

    #[test]
    fn outcomes_serialize_to_the_engine_s_words() {
        let words: Vec<String> = [
            Outcome::Released,
            Outcome::Kept,
            Outcome::Unanswered,
            Outcome::DeactivatedHere,
        ]
        .iter()
        .map(|o| serde_json::to_value(o).expect("serializes").to_string())
        .collect();
        assert_eq!(
            words,
            [
                "\"released\"",
                "\"kept\"",
                "\"unanswered\"",
                "\"deactivated-here\""
            ]
        );
    }
}
