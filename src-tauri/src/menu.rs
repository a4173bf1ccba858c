//! The tray's words and shape as plain data: a pure function of the engine's status and the
//! time, so every state is unit-tested without a desktop. `tray.rs` only applies it.

use lapwing_core::cause::Cause;
use lapwing_core::engine::ProductStatus;
use lapwing_core::shown::shown;
use lapwing_core::state::AttemptOutcome;
use lapwing_core::status::Phase;

/// The tray icon's state: the worst verdict across products (`lapwing_core::verdict`, the one
/// every summary derives from).
pub use lapwing_core::verdict::Verdict as Overall;

/// The icon file's stem in `icons/tray/`.
pub fn icon_name(overall: Overall) -> &'static str {
    match overall {
        Overall::AllGood => "ok",
        Overall::Working => "working",
        Overall::Attention => "attention",
        Overall::Broken => "broken",
    }
}

/// What a menu item does when chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Activate(String),
    EnterKey(String),
    Server(String),
    OpenLapwing,
    ActivateAll,
    Settings,
    Diagnostics,
    About,
    Quit,
}

impl Action {
    /// The menu item's id (product ids are `[a-z0-9-]`, so `:` cannot occur in them).
    pub fn id(&self) -> String {
        match self {
            Self::Activate(p) => format!("activate:{p}"),
            Self::EnterKey(p) => format!("key:{p}"),
            Self::Server(p) => format!("server:{p}"),
            Self::OpenLapwing => "open".into(),
            Self::ActivateAll => "activate-all".into(),
            Self::Settings => "settings".into(),
            Self::Diagnostics => "diagnostics".into(),
            Self::About => "about".into(),
            Self::Quit => "quit".into(),
        }
    }

    /// The action behind a menu item id; `None` for anything this module did not make.
    pub fn from_id(id: &str) -> Option<Self> {
        let product = |p: &str| crate::validate::is_product_id(p).then(|| p.to_owned());
        match id.split_once(':') {
            Some(("activate", p)) => product(p).map(Self::Activate),
            Some(("key", p)) => product(p).map(Self::EnterKey),
            Some(("server", p)) => product(p).map(Self::Server),
            Some(_) => None,
            None => match id {
                "open" => Some(Self::OpenLapwing),
                "activate-all" => Some(Self::ActivateAll),
                "settings" => Some(Self::Settings),
                "diagnostics" => Some(Self::Diagnostics),
                "about" => Some(Self::About),
                "quit" => Some(Self::Quit),
                _ => None,
            },
        }
    }

    /// The item's label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Activate(_) => "Activate now",
            Self::EnterKey(_) => "Enter or correct license key…",
            Self::Server(_) => "Server…",
            Self::OpenLapwing => "Open Lapwing",
            Self::ActivateAll => "Activate all",
            Self::Settings => "Settings…",
            Self::Diagnostics => "Diagnostics…",
            Self::About => "About Lapwing",
            Self::Quit => "Quit",
        }
    }
}

/// One product's entry: a submenu titled with its name and state, holding its actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductEntry {
    pub id: String,
    /// The manifest's name and the status line as shown: menus do not read markup, but a bidi
    /// override would reverse the label and a control character garble it (`shown`).
    pub name: String,
    pub line: String,
    pub state: Overall,
    pub actions: [Action; 3],
}

impl ProductEntry {
    /// The submenu's title, e.g. "Acme Studio — Evaluation: 9 days left".
    pub fn title(&self) -> String {
        format!("{} — {}", self.name, self.line)
    }
}

/// Everything the tray shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuModel {
    pub overall: Overall,
    pub tooltip: String,
    pub products: Vec<ProductEntry>,
    /// After the products: Open Lapwing, Activate all, Settings, Diagnostics, About, Quit.
    pub actions: [Action; 6],
}

/// The products in the order a person reads them: each add-on right after its base product,
/// otherwise in the engine's order (`lapwing_core::product_status::base_first`, which
/// `lapctl` lists by too).
pub fn base_first(statuses: &[ProductStatus]) -> Vec<ProductStatus> {
    lapwing_core::product_status::statuses_base_first(statuses)
}

/// The tray for these statuses at `now` (UNIX seconds), add-ons after their base.
pub fn menu_model(statuses: &[ProductStatus], now: u64) -> MenuModel {
    let products: Vec<ProductEntry> = base_first(statuses)
        .iter()
        .map(|s| ProductEntry {
            id: s.id.clone(),
            name: shown(&s.name).into_owned(),
            line: shown(&line(s)).into_owned(),
            state: product_state(s, now),
            actions: [
                Action::Activate(s.id.clone()),
                Action::EnterKey(s.id.clone()),
                Action::Server(s.id.clone()),
            ],
        })
        .collect();
    let overall = products
        .iter()
        .map(|p| p.state)
        .max()
        .unwrap_or(Overall::AllGood);
    MenuModel {
        overall,
        tooltip: tooltip(overall, &products),
        products,
        actions: [
            Action::OpenLapwing,
            Action::ActivateAll,
            Action::Settings,
            Action::Diagnostics,
            Action::About,
            Action::Quit,
        ],
    }
}

impl MenuModel {
    /// The same model while the app itself runs an activation (a command, Activate all):
    /// shown as working unless something is already broken or needs attention.
    #[must_use]
    pub fn busy(mut self) -> Self {
        if self.overall == Overall::AllGood {
            self.overall = Overall::Working;
            self.tooltip = tooltip(Overall::Working, &self.products);
        }
        self
    }
}

fn product_state(s: &ProductStatus, now: u64) -> Overall {
    lapwing_core::verdict::product_verdict(s, now).verdict
}

/// The tooltip, in the verdict's words ("all good", "activating", "needs attention", "not
/// usable") and with the Products header's counts when all is good.
fn tooltip(overall: Overall, products: &[ProductEntry]) -> String {
    if products.is_empty() {
        return "Lapwing: no product installed".into();
    }
    let names = |wanted: Overall| {
        products
            .iter()
            .filter(|p| p.state == wanted)
            .map(|p| format!("{} ({})", p.name, p.line))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match overall {
        Overall::AllGood => format!(
            "Lapwing: {}, {}",
            overall.words(),
            lapwing_core::verdict::Overall::of(products.iter().map(|p| p.state)).summary()
        ),
        Overall::Working => format!("Lapwing: {}…", overall.words()),
        Overall::Attention | Overall::Broken => {
            format!("Lapwing: {}: {}", overall.words(), names(overall))
        }
    }
}

/// "12 Mar 2027" (UTC) for UNIX seconds.
pub fn date(unix: u64) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// The product's line in the menu (also `ProductStatus.line` for the windows):
/// "Activated until 12 Mar 2027", "Evaluation: 9 days left", "Not activated: key not accepted".
pub fn line(s: &ProductStatus) -> String {
    let headline = s.headline(date);
    match failure_reason(s) {
        Some(reason) if s.state == Phase::Unlicensed => format!("{headline}: {reason}"),
        _ => headline,
    }
}

/// A few words on why the last attempt failed. The engine's causes are ranked (clock, key,
/// reachability) and their sentences long; a menu line has room for the gist only
/// (`Cause::short`), and the full diagnosis is in the Products and Diagnostics windows.
fn failure_reason(s: &ProductStatus) -> Option<String> {
    let attempt = s.last_attempt.as_ref()?;
    match attempt.outcome {
        AttemptOutcome::Activated => None,
        // Evidence the engine ranked first (`ranking`): what the network said, a clock
        // measured off, an override that did not answer, or a key already accepted (the
        // silent servers then come first).
        AttemptOutcome::NoAnswer
            if matches!(
                attempt.diagnosis.first(),
                Some(
                    Cause::ClockOff { .. }
                        | Cause::ServerRefused { .. }
                        | Cause::NoRoute { .. }
                        | Cause::OverrideSilent { .. }
                        | Cause::OverrideNotFound { .. }
                        | Cause::Unreachable { .. }
                )
            ) =>
        {
            attempt.diagnosis.first().map(|c| c.short().into_owned())
        }
        // The server drops a key it does not know without a word, so silence after a key was
        // entered most often means that key.
        AttemptOutcome::NoAnswer if s.has_key => Some("key not accepted".into()),
        AttemptOutcome::NoAnswer => Some("no answer from the server".into()),
        AttemptOutcome::RejectedAnswer => Some("the server's answer was refused".into()),
        AttemptOutcome::NotSent => Some(attempt.diagnosis.first().map_or_else(
            || "nothing could be sent".to_owned(),
            |c| c.short().into_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lap_proto::LicenseKind;
    use lap_proto::time::DAY;
    use lapwing_core::cause::Cause;
    use lapwing_core::state::Attempt;

    const NOW: u64 = 1_795_000_000; // 18 Nov 2026
    /// 12 Mar 2027, 12:00 UTC.
    const MARCH_12: u64 = 1_804_852_800;

    fn status(id: &str, state: Phase) -> ProductStatus {
        ProductStatus {
            id: id.into(),
            name: format!("Acme {id}"),
            vendor: "Acme".into(),
            state,
            ..ProductStatus::default()
        }
    }

    fn activated(id: &str) -> ProductStatus {
        ProductStatus {
            not_after: Some(MARCH_12),
            ends_at: Some(MARCH_12),
            days_left: Some((MARCH_12 - NOW).div_ceil(DAY)),
            kind: Some(LicenseKind::Term),
            in_compliance: Some(true),
            has_key: true,
            next_attempt_at: Some(NOW + 7 * DAY),
            ..status(id, Phase::Activated)
        }
    }

    fn evaluation(days: u64) -> ProductStatus {
        ProductStatus {
            days_left: Some(days),
            ends_at: Some(NOW + days * DAY),
            next_attempt_at: Some(NOW + DAY),
            ..status("eval", Phase::Evaluation)
        }
    }

    #[allow(clippy::unnecessary_wraps, reason = "it fills `last_attempt` directly")]
    fn attempt(outcome: AttemptOutcome, diagnosis: &[Cause]) -> Option<Attempt> {
        Some(Attempt {
            at: NOW - 60,
            outcome,
            diagnosis: diagnosis.to_vec(),
            server: None,
        })
    }

    #[test]
    fn activated_products_are_all_good() {
        let m = menu_model(&[activated("a"), activated("b")], NOW);
        assert_eq!(m.overall, Overall::AllGood);
        assert_eq!(m.products[0].line, "Activated until 12 Mar 2027");
        assert_eq!(
            m.products[0].title(),
            "Acme a — Activated until 12 Mar 2027"
        );
        assert_eq!(m.tooltip, "Lapwing: all good, 2 products · all in order");
        let perpetual = ProductStatus {
            not_after: None,
            days_left: None,
            ..activated("p")
        };
        assert_eq!(line(&perpetual), "Activated");
    }

    #[test]
    fn evaluations_count_days_and_need_attention_in_the_last_week() {
        let m = menu_model(&[evaluation(9)], NOW);
        assert_eq!(m.products[0].line, "Evaluation: 9 days left");
        assert_eq!(m.overall, Overall::AllGood);
        assert_eq!(line(&evaluation(1)), "Evaluation: 1 day left");
        let m = menu_model(&[evaluation(3)], NOW);
        assert_eq!(m.overall, Overall::Attention);
        assert_eq!(
            m.tooltip,
            "Lapwing: needs attention: Acme eval (Evaluation: 3 days left)"
        );
    }

    #[test]
    fn an_expired_evaluation_is_broken() {
        let expired = ProductStatus {
            days_left: Some(0),
            ..status("eval", Phase::EvaluationExpired)
        };
        let m = menu_model(&[activated("a"), expired], NOW);
        assert_eq!(m.overall, Overall::Broken);
        assert_eq!(m.products[1].line, "Evaluation over: enter a license key");
        assert_eq!(
            m.tooltip,
            "Lapwing: not usable: Acme eval (Evaluation over: enter a license key)"
        );
    }

    #[test]
    fn unlicensed_says_why_when_an_attempt_failed() {
        let plain = status("u", Phase::Unlicensed);
        assert_eq!(line(&plain), "Not activated");
        assert_eq!(menu_model(&[plain], NOW).overall, Overall::Broken);

        let silent_with_key = ProductStatus {
            has_key: true,
            last_attempt: attempt(
                AttemptOutcome::NoAnswer,
                &Cause::of_silence(true, Vec::new()),
            ),
            ..status("u", Phase::Unlicensed)
        };
        assert_eq!(line(&silent_with_key), "Not activated: key not accepted");
        let silent = ProductStatus {
            has_key: false,
            ..silent_with_key.clone()
        };
        assert_eq!(line(&silent), "Not activated: no answer from the server");
        let mut measured = Cause::of_silence(true, Vec::new());
        lapwing_core::ranking::place_clock(
            &mut measured,
            Cause::ClockOff {
                offset_secs: 600,
                server: "ntp.test:123".into(),
            },
        );
        let clock_off = ProductStatus {
            last_attempt: attempt(AttemptOutcome::NoAnswer, &measured),
            ..silent_with_key.clone()
        };
        assert_eq!(
            line(&clock_off),
            "Not activated: this machine's clock is off",
            "a clock measured off is named before the key"
        );
        let refused = ProductStatus {
            last_attempt: attempt(
                AttemptOutcome::NoAnswer,
                &[
                    Cause::ServerRefused {
                        address: "127.0.0.1:9".into(),
                    },
                    Cause::KeyMayBeRefused,
                ],
            ),
            ..silent_with_key.clone()
        };
        assert_eq!(
            line(&refused),
            "Not activated: the server is not running",
            "the engine's first cause, not a guess about the key"
        );
        let not_sent = |cause: Cause| ProductStatus {
            last_attempt: attempt(AttemptOutcome::NotSent, &[cause]),
            ..status("u", Phase::Unlicensed)
        };
        for (cause, words) in [
            (Cause::NoServerFound { skipped: vec![] }, "no server found"),
            (Cause::NoLicenseKey, "no license key"),
            (
                Cause::EvaluationDisabled,
                "evaluation disabled by the administrator (machine policy)",
            ),
            (Cause::EvaluationEnded, "the evaluation has ended"),
        ] {
            assert_eq!(line(&not_sent(cause)), format!("Not activated: {words}"));
        }
        let rejected = ProductStatus {
            last_attempt: attempt(AttemptOutcome::RejectedAnswer, &[Cause::ClockMayBeOff]),
            ..status("u", Phase::Unlicensed)
        };
        assert_eq!(
            line(&rejected),
            "Not activated: the server's answer was refused"
        );
    }

    #[test]
    fn expired_is_broken_with_its_date() {
        let expired = ProductStatus {
            state: Phase::Expired,
            days_left: Some(0),
            ..activated("x")
        };
        let m = menu_model(&[expired], MARCH_12 + DAY);
        assert_eq!(m.products[0].line, "Expired on 12 Mar 2027");
        assert_eq!(m.overall, Overall::Broken);
    }

    #[test]
    fn renewal_due_is_working_until_an_attempt_fails() {
        let due = ProductStatus {
            state: Phase::RenewalDue,
            next_attempt_at: Some(NOW - 10),
            ..activated("r")
        };
        let m = menu_model(std::slice::from_ref(&due), NOW);
        assert_eq!(
            m.products[0].line,
            "Activated until 12 Mar 2027 (renewal due)"
        );
        assert_eq!(m.overall, Overall::Working);
        assert_eq!(m.tooltip, "Lapwing: activating…");
        let failed = ProductStatus {
            last_attempt: attempt(AttemptOutcome::NoAnswer, &[Cause::ClockMayBeOff]),
            next_attempt_at: Some(NOW + 900),
            ..due
        };
        assert_eq!(menu_model(&[failed], NOW).overall, Overall::Attention);
    }

    #[test]
    fn the_worst_state_wins_and_busy_only_lifts_all_good() {
        let broken = status("u", Phase::Unlicensed);
        let m = menu_model(&[activated("a"), evaluation(3), broken], NOW);
        assert_eq!(m.overall, Overall::Broken);
        assert_eq!(m.clone().busy().overall, Overall::Broken);
        let good = menu_model(&[activated("a")], NOW).busy();
        assert_eq!(good.overall, Overall::Working);
        assert_eq!(good.tooltip, "Lapwing: activating…");
    }

    #[test]
    fn out_of_compliance_and_a_clock_moved_back_need_attention() {
        let over = ProductStatus {
            in_compliance: Some(false),
            ..activated("o")
        };
        assert_eq!(
            line(&over),
            "Activated until 12 Mar 2027 (out of compliance)"
        );
        assert_eq!(menu_model(&[over], NOW).overall, Overall::Attention);
        let clock = ProductStatus {
            clock_moved_back_by: Some(3600),
            ..activated("c")
        };
        assert_eq!(menu_model(&[clock], NOW).overall, Overall::Attention);
    }

    #[test]
    fn deactivated_and_sunset_products_are_quiet_and_said_so() {
        let deactivated = ProductStatus {
            deactivated_at: Some(NOW - DAY),
            has_key: true,
            ..status("gone", Phase::Deactivated)
        };
        let sunset = ProductStatus {
            sunset_issued: Some(NOW - 30 * DAY),
            kind: Some(LicenseKind::Perpetual),
            ..status("final", Phase::Sunset)
        };
        let m = menu_model(&[deactivated, sunset, activated("a")], NOW);
        assert_eq!(m.products[0].line, "Deactivated on this computer");
        assert_eq!(
            m.products[1].line,
            "Activated for good (the vendor's final release)"
        );
        // Where the person or the vendor left them: nothing to do, the icon stays all good.
        assert_eq!(m.products[0].state, Overall::AllGood);
        assert_eq!(m.products[1].state, Overall::AllGood);
        assert_eq!(m.overall, Overall::AllGood);
    }

    #[test]
    fn a_duplicate_needs_attention_and_the_line_says_it_looks_cloned_or_restored() {
        let cloned = ProductStatus {
            duplicate: true,
            ..activated("vm")
        };
        let m = menu_model(&[cloned, activated("a")], NOW);
        assert_eq!(
            m.products[0].line,
            "Activated until 12 Mar 2027 (looks cloned or restored from a snapshot)"
        );
        assert_eq!(m.overall, Overall::Attention);
        assert_eq!(
            m.tooltip,
            "Lapwing: needs attention: Acme vm (Activated until 12 Mar 2027 (looks cloned or restored from a snapshot))"
        );
        // Moved to new hardware is good news: the line stays the plain one.
        let moved = ProductStatus {
            moved_from_previous_hardware: true,
            ..activated("m")
        };
        assert_eq!(line(&moved), "Activated until 12 Mar 2027");
        assert_eq!(menu_model(&[moved], NOW).overall, Overall::AllGood);
    }

    #[test]
    fn no_products_is_said_in_words() {
        let m = menu_model(&[], NOW);
        assert_eq!(m.overall, Overall::AllGood);
        assert_eq!(m.tooltip, "Lapwing: no product installed");
        assert!(m.products.is_empty());
    }

    #[test]
    fn menu_ids_round_trip_and_refuse_strangers() {
        let m = menu_model(&[activated("acme-studio")], NOW);
        let all: Vec<&Action> = m.products[0].actions.iter().chain(&m.actions).collect();
        let labels: Vec<&str> = all.iter().map(|a| a.label()).collect();
        assert_eq!(
            labels,
            [
                "Activate now",
                "Enter or correct license key…",
                "Server…",
                "Open Lapwing",
                "Activate all",
                "Settings…",
                "Diagnostics…",
                "About Lapwing",
                "Quit"
            ]
        );
        for action in all {
            assert_eq!(Action::from_id(&action.id()).as_ref(), Some(action));
        }
        for stranger in [
            "",
            "activate:",
            "activate:Bad_Id",
            "key:a:b",
            "nope",
            "quit:x",
        ] {
            assert_eq!(Action::from_id(stranger), None, "{stranger}");
        }
    }

    /// A manifest's name and a recorded cause are outside text: a bidi override would reverse
    /// the label, an ESC sequence garble it.
    #[test]
    fn labels_carry_no_control_or_bidi_character() {
        let hostile = ProductStatus {
            name: "\u{1b}[2J\u{202E}<b>Acme</b>\u{2066}".into(),
            last_attempt: attempt(
                AttemptOutcome::NotSent,
                &[Cause::Recorded {
                    message: "gone\u{1b}[31m\u{202D}red: older words".into(),
                }],
            ),
            ..status("u", Phase::Unlicensed)
        };
        let m = menu_model(&[hostile], NOW);
        let entry = &m.products[0];
        for text in [entry.title(), m.tooltip.clone()] {
            assert!(
                !text.chars().any(|c| c.is_control()
                    || ('\u{2066}'..='\u{2069}').contains(&c)
                    || ('\u{202A}'..='\u{202E}').contains(&c)),
                "{text:?}"
            );
        }
        assert_eq!(
            entry.title(),
            "\\u{1b}[2J\\u{202e}<b>Acme</b>\\u{2066} — Not activated: gone\\u{1b}[31m\\u{202d}red"
        );
    }

    #[test]
    fn add_ons_follow_their_base_in_the_menu() {
        let addon = |id: &str, base: &str| ProductStatus {
            addon_of: Some(base.into()),
            ..activated(id)
        };
        // The engine's order is by id: "demo-export" (an add-on) before "demo-studio".
        let statuses = [
            addon("demo-export", "demo-studio"),
            activated("demo-studio"),
            addon("orphan-addon", "not-installed"),
            activated("other"),
            addon("another-export", "demo-studio"),
        ];
        let ids = |list: &[ProductStatus]| list.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&base_first(&statuses)),
            [
                "demo-studio",
                "demo-export",
                "another-export",
                "orphan-addon",
                "other"
            ]
        );
        let m = menu_model(&statuses, NOW);
        let menu: Vec<&str> = m.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(menu[..2], ["demo-studio", "demo-export"]);
        assert_eq!(base_first(&base_first(&statuses)), base_first(&statuses));
    }

    #[test]
    fn about_and_diagnostics_are_in_the_menu() {
        let m = menu_model(&[], NOW);
        assert!(m.actions.contains(&Action::About));
        assert!(m.actions.contains(&Action::Diagnostics));
        assert_eq!(m.actions.last(), Some(&Action::Quit));
    }

    #[test]
    fn dates_are_day_month_year() {
        assert_eq!(date(MARCH_12), "12 Mar 2027");
        assert_eq!(date(1_767_312_000), "2 Jan 2026");
    }
}
