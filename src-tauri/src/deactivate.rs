//! What "Deactivate on this computer" answers the windows (`DeactivateView`): a thin view of
//! `Engine::deactivate` (profile §9, issue 16). The outcome and its sentence are the engine's
//! (`Deactivation::sentence`, worded alike in `lapctl`); this module only makes it the
//! window's sentence and says whether the key went too.

use lapwing_core::engine::Deactivation;
use lapwing_core::shown::shown;
use serde::Serialize;

use crate::publish::StatusView;

/// The `deactivate` command's answer (COMMANDS.md).
#[derive(Debug, Clone, Serialize)]
pub struct DeactivateView {
    /// `released`, `kept`, `unanswered` or `deactivated-here` (the engine's words).
    pub outcome: &'static str,
    /// The sentence the Products window shows.
    pub message: String,
    /// The server's Notice, exactly as it sent it, when it kept the seat with one.
    pub notice: Option<String>,
    /// Whether the stored license key is gone now (asked for, and done).
    pub key_removed: bool,
    /// The product as it now stands (also published to every window and the tray).
    pub status: StatusView,
}

/// Added when the key went too.
pub const KEY_REMOVED: &str = "The license key was removed from this computer.";

/// The engine's outcome word.
pub fn outcome_word(outcome: &Deactivation) -> &'static str {
    match outcome {
        Deactivation::Released => "released",
        Deactivation::Kept { .. } => "kept",
        Deactivation::Unanswered { .. } => "unanswered",
        Deactivation::DeactivatedHere => "deactivated-here",
    }
}

/// The view of an outcome for the product as it now stands. The key counts as removed only
/// when it was asked for and the status no longer has one.
pub fn view(outcome: &Deactivation, remove_key: bool, status: StatusView) -> DeactivateView {
    let key_removed = remove_key && !status.status.has_key;
    DeactivateView {
        outcome: outcome_word(outcome),
        message: message(outcome, &status.status.name, key_removed),
        notice: match outcome {
            Deactivation::Kept { notice } => notice.clone(),
            _ => None,
        },
        key_removed,
        status,
    }
}

/// The engine's sentence as the window's: the name and the server's Notice in it defused
/// (`shown`), a capital first letter, a full stop, and the key's fate when it went too.
pub fn message(outcome: &Deactivation, name: &str, key_removed: bool) -> String {
    let mut out = sentence(&shown(&outcome.sentence(&shown(name))));
    if key_removed {
        out.push(' ');
        out.push_str(KEY_REMOVED);
    }
    out
}

/// A clause as a sentence: a capital first letter and a closing full stop (a Notice may end
/// without one, or with "!" or "?", which stay).
fn sentence(text: &str) -> String {
    let text = text.trim();
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
    use lapwing_core::cause::Cause;
    use lapwing_core::engine::ProductStatus;

    use super::*;

    fn status(has_key: bool) -> StatusView {
        StatusView::at(
            ProductStatus {
                id: "acme".into(),
                name: "Acme Studio".into(),
                has_key,
                ..ProductStatus::default()
            },
            0,
        )
    }

    #[test]
    fn released_says_the_seat_is_free_and_whether_the_key_went() {
        let kept_key = view(&Deactivation::Released, false, status(true));
        assert_eq!(kept_key.outcome, "released");
        assert_eq!(
            kept_key.message,
            "Acme Studio was deactivated on this computer: its seat is free for another computer."
        );
        assert!(!kept_key.key_removed);
        let gone = view(&Deactivation::Released, true, status(false));
        assert!(gone.key_removed);
        assert!(gone.message.ends_with(KEY_REMOVED), "{}", gone.message);
        // Asked, but the key is still there: not said as removed.
        assert!(!view(&Deactivation::Released, true, status(true)).key_removed);
    }

    #[test]
    fn kept_says_the_notice_or_that_the_server_cannot_release() {
        let limit = Deactivation::Kept {
            notice: Some("the next transfer is possible on 3 Mar 2027".into()),
        };
        let v = view(&limit, false, status(true));
        assert_eq!(v.outcome, "kept");
        assert_eq!(
            v.message,
            "Acme Studio stays activated: the next transfer is possible on 3 Mar 2027."
        );
        assert_eq!(
            v.notice.as_deref(),
            Some("the next transfer is possible on 3 Mar 2027")
        );
        let plain = view(&Deactivation::Kept { notice: None }, false, status(true));
        assert_eq!(
            plain.message,
            "Acme Studio stays activated: this vendor's server cannot release seats."
        );
        assert_eq!(plain.notice, None);
    }

    #[test]
    fn unanswered_says_nothing_changed_with_the_cause_and_the_lease() {
        let silent = Deactivation::Unanswered {
            cause: Some(Cause::ServerRefused {
                address: "127.0.0.1:4711".into(),
            }),
        };
        let v = view(&silent, true, status(true));
        assert_eq!(v.outcome, "unanswered");
        assert!(
            v.message.starts_with("Nothing was changed: "),
            "{}",
            v.message
        );
        // The cause in its few words (`Cause::short`): the window has the rest.
        assert!(
            v.message.contains("(the server is not running)"),
            "{}",
            v.message
        );
        assert!(
            v.message.contains("until its lease runs out"),
            "{}",
            v.message
        );
        // Nothing changed: the key was not removed either.
        assert!(!v.key_removed);
    }

    #[test]
    fn deactivated_here_says_the_seat_stays_taken() {
        let v = view(&Deactivation::DeactivatedHere, false, status(true));
        assert_eq!(v.outcome, "deactivated-here");
        assert!(
            v.message
                .contains("the seat stays taken on the server until its lease runs out"),
            "{}",
            v.message
        );
    }

    #[test]
    fn a_notice_or_a_name_cannot_garble_the_sentence() {
        let mut s = status(true);
        s.status.name = "Acme\u{202e}Studio".into();
        let v = view(
            &Deactivation::Kept {
                notice: Some("limit\u{202e}reached\n".into()),
            },
            false,
            s,
        );
        assert!(!v.message.contains('\u{202e}'), "{}", v.message);
        assert!(!v.message.contains('\n'), "{}", v.message);
        // The Notice field keeps the exact text, as `lapctl --json` does.
        assert_eq!(v.notice.as_deref(), Some("limit\u{202e}reached\n"));
    }

    #[test]
    fn the_outcome_words_are_the_engine_s() {
        for outcome in [
            Deactivation::Released,
            Deactivation::Kept { notice: None },
            Deactivation::Unanswered { cause: None },
            Deactivation::DeactivatedHere,
        ] {
            let engine = serde_json::to_value(&outcome).expect("serializes");
            assert_eq!(engine["outcome"], outcome_word(&outcome), "{outcome:?}");
        }
    }
}
