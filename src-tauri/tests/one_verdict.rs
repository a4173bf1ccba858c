//! The one-verdict rule: every summary a person sees of a product (the tray's menu entry, icon
//! and tooltip; the status the windows get and the Products header drawn from it; doctor's
//! level and exit code, which Diagnostics shows; `lapctl status --json`'s `verdict`) is the
//! verdict of `lapwing_core::verdict`, for every state a product can be in. One table of
//! states, each rendered through every consumer, and each consumer asserted to agree.

use std::sync::Arc;
use std::time::Duration;

use lap_proto::time::DAY;
use lap_proto::{LicenseKind, Uuid};
use lapwing::menu::{icon_name, menu_model};
use lapwing::publish::StatusView;
use lapwing_core::cause::Cause;
use lapwing_core::clock::FakeClock;
use lapwing_core::doctor::{Check, DoctorOptions, Level, bounded_by_verdict, has_problem};
use lapwing_core::engine::{Engine, EngineConfig, ProductStatus};
use lapwing_core::identity::FixedIdentity;
use lapwing_core::state::{Attempt, AttemptOutcome, Grant, ProductState, State};
use lapwing_core::status::Phase;
use lapwing_core::transport::{OsEntropy, RetryPolicy};
use lapwing_core::verdict::{
    BatchResult, Overall, Reason, Verdict, judged, outcome_words, product_verdict,
};
use lapwing_discovery::DiscoveryConfig;
use lapwing_secrets::{MemoryStore, SecretStore};

const NOW: u64 = 1_795_000_000;
const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

fn status(id: &str, state: Phase) -> ProductStatus {
    ProductStatus {
        id: id.into(),
        name: format!("Acme {id}"),
        vendor: "Acme".into(),
        sku: SKU,
        state,
        ..ProductStatus::default()
    }
}

#[allow(clippy::unnecessary_wraps, reason = "it fills `last_attempt` directly")]
fn attempt(outcome: AttemptOutcome, diagnosis: Vec<Cause>) -> Option<Attempt> {
    Some(Attempt {
        at: NOW - 60,
        outcome,
        diagnosis,
        server: None,
    })
}

fn activated(id: &str) -> ProductStatus {
    ProductStatus {
        not_after: Some(NOW + 100 * DAY),
        ends_at: Some(NOW + 100 * DAY),
        days_left: Some(100),
        kind: Some(LicenseKind::Term),
        in_compliance: Some(true),
        has_key: true,
        last_attempt: attempt(AttemptOutcome::Activated, Vec::new()),
        next_attempt_at: Some(NOW + 7 * DAY),
        ..status(id, Phase::Activated)
    }
}

fn evaluation(id: &str, days: u64) -> ProductStatus {
    ProductStatus {
        ends_at: Some(NOW + days * DAY),
        days_left: Some(days),
        next_attempt_at: Some(NOW + DAY),
        ..status(id, Phase::Evaluation)
    }
}

/// Every state a product can be in, with the verdict it must have.
fn cases() -> Vec<(&'static str, ProductStatus, Verdict, Reason)> {
    let no_answer = || {
        attempt(
            AttemptOutcome::NoAnswer,
            Cause::of_silence(true, Vec::new()),
        )
    };
    let not_sent = || {
        attempt(
            AttemptOutcome::NotSent,
            vec![Cause::NoServerFound {
                skipped: Vec::new(),
            }],
        )
    };
    vec![
        (
            "activated",
            activated("activated"),
            Verdict::AllGood,
            Reason::Activated,
        ),
        (
            "renewal due, nothing failed",
            ProductStatus {
                state: Phase::RenewalDue,
                next_attempt_at: Some(NOW - 10),
                ..activated("renewal-due")
            },
            Verdict::Working,
            Reason::AttemptDue,
        ),
        (
            "renewal due, the attempt failed",
            ProductStatus {
                state: Phase::RenewalDue,
                last_attempt: no_answer(),
                next_attempt_at: Some(NOW + 900),
                ..activated("renewal-failed")
            },
            Verdict::Attention,
            Reason::LastAttemptFailed(AttemptOutcome::NoAnswer),
        ),
        (
            "evaluation, days to spare",
            evaluation("eval-long", 20),
            Verdict::AllGood,
            Reason::Evaluating,
        ),
        (
            "evaluation, within the warning",
            evaluation("eval-short", 3),
            Verdict::Attention,
            Reason::EndsSoon { days_left: 3 },
        ),
        (
            "evaluation over",
            ProductStatus {
                days_left: Some(0),
                ..status("eval-over", Phase::EvaluationExpired)
            },
            Verdict::Broken,
            Reason::EvaluationOver,
        ),
        (
            "expired",
            ProductStatus {
                state: Phase::Expired,
                days_left: Some(0),
                ..activated("expired")
            },
            Verdict::Broken,
            Reason::Expired,
        ),
        (
            "unlicensed, no key",
            status("no-key", Phase::Unlicensed),
            Verdict::Broken,
            Reason::NotActivated,
        ),
        (
            "clock moved back",
            ProductStatus {
                clock_moved_back_by: Some(3 * 3600),
                ..activated("clock-back")
            },
            Verdict::Attention,
            Reason::ClockMovedBack,
        ),
        (
            "out of compliance",
            ProductStatus {
                in_compliance: Some(false),
                ..activated("over-seats")
            },
            Verdict::Attention,
            Reason::OutOfCompliance,
        ),
        (
            "activated, the last attempt not sent",
            ProductStatus {
                last_attempt: not_sent(),
                ..activated("not-sent")
            },
            Verdict::Attention,
            Reason::LastAttemptFailed(AttemptOutcome::NotSent),
        ),
        (
            "unlicensed, not sent",
            ProductStatus {
                has_key: true,
                last_attempt: not_sent(),
                ..status("not-sent-unlicensed", Phase::Unlicensed)
            },
            Verdict::Broken,
            Reason::NotActivated,
        ),
        (
            "deactivated on this computer",
            ProductStatus {
                has_key: true,
                deactivated_at: Some(NOW - 60),
                ..status("deactivated", Phase::Deactivated)
            },
            Verdict::AllGood,
            Reason::Deactivated,
        ),
        (
            "the vendor's final release",
            ProductStatus {
                sunset_issued: Some(NOW - 86_400),
                ..status("sunset", Phase::Sunset)
            },
            Verdict::AllGood,
            Reason::Sunset,
        ),
        (
            "looks cloned",
            ProductStatus {
                duplicate: true,
                ..activated("cloned")
            },
            Verdict::Attention,
            Reason::Duplicate,
        ),
    ]
}

/// The tooltip's words for each verdict, and the icon's file.
fn tray_words(verdict: Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::AllGood => ("Lapwing: all good, ", "ok"),
        Verdict::Working => ("Lapwing: activating…", "working"),
        Verdict::Attention => ("Lapwing: needs attention: ", "attention"),
        Verdict::Broken => ("Lapwing: not usable: ", "broken"),
    }
}

/// What the Products header says for one product of each verdict (the UI's `verdictSummary`
/// is tested against the same table in ui/tests/unit/verdict.test.ts).
fn header(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::AllGood => "1 product · all in order",
        Verdict::Working => "1 product · 1 activating",
        Verdict::Attention => "1 product · 1 needs attention",
        Verdict::Broken => "1 product · 1 not usable",
    }
}

#[test]
fn every_state_has_one_verdict_in_every_summary() {
    for (case, s, verdict, reason) in cases() {
        let decided = product_verdict(&s, NOW);
        assert_eq!(
            (decided.verdict, decided.reason),
            (verdict, reason),
            "{case}"
        );

        // The tray: the product's entry, the icon and the tooltip.
        let menu = menu_model(std::slice::from_ref(&s), NOW);
        assert_eq!(menu.products[0].state, verdict, "{case}: menu entry");
        assert_eq!(menu.overall, verdict, "{case}: tray icon");
        let (tooltip, icon) = tray_words(verdict);
        assert!(
            menu.tooltip.starts_with(tooltip),
            "{case}: tooltip {:?}",
            menu.tooltip
        );
        assert_eq!(icon_name(menu.overall), icon, "{case}");
        if verdict == Verdict::AllGood {
            assert!(menu.tooltip.ends_with(header(verdict)), "{case}");
        }

        // The windows: the status they get carries the verdict, and the header counts it.
        let view = serde_json::to_value(StatusView::at(s.clone(), NOW)).expect("serializes");
        assert_eq!(view["verdict"]["level"], verdict.as_str(), "{case}: {view}");
        assert_eq!(view["verdict"]["reason"], reason.code(), "{case}");
        assert_eq!(view["verdict"]["message"], reason.to_string(), "{case}");
        let overall = Overall::of([verdict]);
        assert_eq!(overall.summary(), header(verdict), "{case}: header");
        let said_all_in_order = overall.summary().contains("all in order");
        assert_eq!(said_all_in_order, verdict == Verdict::AllGood, "{case}");

        // `lapctl status --json`: the same verdict beside the same fields.
        let json = serde_json::to_value(judged(std::slice::from_ref(&s), NOW)).expect("JSON");
        assert_eq!(json[0]["verdict"], view["verdict"], "{case}: lapctl status");
        assert_eq!(json[0]["state"], view["state"], "{case}");

        // Doctor (and Diagnostics, which shows doctor's checks): a missing server and a
        // failed attempt, as doctor finds them, are no louder than the verdict; the product's
        // first line is the verdict; the exit code says a problem only for a broken product.
        let found = vec![
            Check {
                subject: format!("product {}", s.id),
                level: Level::Problem,
                message: "no server found: set one with `lapctl server set`".into(),
            },
            Check {
                subject: format!("product {}", s.id),
                level: Level::Ok,
                message: "a license key is stored (well formed)".into(),
            },
        ];
        let checks = bounded_by_verdict(&s, NOW, found);
        assert_eq!(checks[0].level, Level::from(verdict), "{case}: {checks:?}");
        assert!(
            checks[0].message.starts_with(verdict.words()),
            "{case}: {checks:?}"
        );
        assert!(
            checks
                .iter()
                .all(|c| c.level <= Level::from(verdict).max(Level::Warning)),
            "{case}: {checks:?}"
        );
        assert_eq!(
            has_problem(&checks),
            verdict == Verdict::Broken,
            "{case}: doctor's exit code (6 only when not usable)"
        );
    }
}

#[test]
fn the_overall_verdict_is_the_worst_everywhere_and_the_counts_add_up() {
    let statuses: Vec<ProductStatus> = cases().into_iter().map(|(_, s, _, _)| s).collect();
    let overall = Overall::of_statuses(&statuses, NOW);
    let menu = menu_model(&statuses, NOW);
    assert_eq!(menu.overall, overall.verdict);
    assert_eq!(overall.verdict, Verdict::Broken);
    assert_eq!(overall.counts.total(), statuses.len());
    assert_eq!(
        (
            overall.counts.all_good,
            overall.counts.working,
            overall.counts.attention,
            overall.counts.broken
        ),
        (4, 1, 6, 4)
    );
    assert_eq!(
        overall.summary(),
        "15 products · 4 not usable · 6 need attention · 1 activating"
    );
    // The tooltip names exactly the products the header counts as not usable.
    let named = menu.tooltip.matches(" (").count();
    assert_eq!(named, overall.counts.broken, "{}", menu.tooltip);
}

#[test]
fn a_batch_counts_only_attempts_that_activated_and_says_why_the_others_were_not_sent() {
    let statuses = [
        activated("studio"),
        // Activated before: the phase says activated, this batch's attempt was not sent.
        ProductStatus {
            last_attempt: attempt(
                AttemptOutcome::NotSent,
                vec![Cause::NoServerFound {
                    skipped: Vec::new(),
                }],
            ),
            ..activated("export")
        },
    ];
    let result = BatchResult::of(&statuses);
    assert_eq!(
        (result.attempted, result.activated, result.not_sent),
        (2, 1, 1)
    );
    assert_eq!(
        result.sentence(),
        "1 of 2 products activated; 1 not sent (Acme export: no server found)."
    );
    let all = BatchResult::of(&[activated("a"), activated("b")]);
    assert_eq!(all.sentence(), "2 of 2 products activated.");
    let silent = ProductStatus {
        state: Phase::RenewalDue,
        last_attempt: attempt(AttemptOutcome::NoAnswer, Vec::new()),
        ..activated("c")
    };
    assert_eq!(
        BatchResult::of(&[silent]).sentence(),
        "0 of 1 product activated; 1 sent without success."
    );
    assert_eq!(outcome_words(AttemptOutcome::NoAnswer), "no answer");
}

/// Doctor run by a real engine on a real state file agrees with the status the same engine
/// gives the windows: an evaluation without a key is not a problem, a product that cannot be
/// used is.
#[tokio::test]
async fn a_real_engines_doctor_agrees_with_its_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let products = dir.path().join("products.d");
    std::fs::create_dir_all(&products).expect("mkdir");
    let manifest = |id: &str, evaluation_days: u32| {
        format!(
            "schema = 1\nid = \"{id}\"\nname = \"Acme {id}\"\nvendor = \"Acme\"\nsku = \"{SKU}\"\n\
             evaluation_days = {evaluation_days}\n\
             [server]\nx25519 = \"{}\"\ned25519 = \"{}\"\naddress = \"127.0.0.1:9\"\n",
            "4954728102f02d2917df9aabf24634d4a3a3b83312273e818e40da0cf2755623",
            "a72f4e02db405c0582a48e79f4830538bccc150e4ccda0404e03f4a190e12356",
        )
    };
    std::fs::write(products.join("trial.toml"), manifest("trial", 30)).expect("write");
    std::fs::write(products.join("keyless.toml"), manifest("keyless", 0)).expect("write");
    std::fs::write(products.join("studio.toml"), manifest("studio", 0)).expect("write");
    let data = dir.path().join("data");
    let secrets = Arc::new(MemoryStore::new());
    secrets
        .set_license_key("studio", lap_proto::test_util::key(1).as_bytes())
        .expect("stored");
    // A product activated earlier, with a keyed grant far from its end.
    let mut studio = ProductState::new(Uuid::from_u128(3), Uuid::nil());
    studio.has_key = true;
    studio.grant = Some(Grant {
        license_id: Uuid::from_u128(9),
        server_time: NOW - DAY,
        received_at: NOW - DAY,
        not_after: Some(NOW + 300 * DAY),
        renew_after: Some(NOW + 30 * DAY),
        kind: Some(LicenseKind::Term),
        in_compliance: Some(true),
        features: Vec::new(),
        notice: None,
        server: None,
        without_key: false,
    });
    let mut state = State {
        highest_time_seen: NOW - DAY,
        ..State::default()
    };
    state.products.insert("studio".into(), studio);
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(
        data.join(lapwing_core::state::STATE_FILE),
        serde_json::to_string(&state).expect("JSON"),
    )
    .expect("write the state");
    let engine = Engine::new(EngineConfig {
        data_dir: data,
        product_dirs: vec![products],
        policy_path: dir.path().join("policy.toml"),
        clock: Arc::new(FakeClock::at(NOW)),
        entropy: Arc::new(OsEntropy),
        secrets: secrets as Arc<dyn SecretStore>,
        identity: Arc::new(FixedIdentity::new([7; 32])),
        discovery: DiscoveryConfig {
            mdns: None,
            ..DiscoveryConfig::default()
        },
        retry: RetryPolicy {
            waits: vec![Duration::from_millis(50)],
        },
    });
    let statuses = engine.status().expect("status");
    let checks = engine
        .doctor(None, &DoctorOptions::default())
        .await
        .expect("doctor");
    for s in &statuses {
        let verdict = product_verdict(s, NOW).verdict;
        let subject = format!("product {}", s.id);
        let mine: Vec<&Check> = checks.iter().filter(|c| c.subject == subject).collect();
        assert_eq!(mine[0].level, Level::from(verdict), "{}: {mine:?}", s.id);
        let problem = mine.iter().any(|c| c.level == Level::Problem);
        assert_eq!(problem, verdict == Verdict::Broken, "{}: {mine:?}", s.id);
    }
    let verdicts: Vec<(&str, Verdict)> = statuses
        .iter()
        .map(|s| (s.id.as_str(), product_verdict(s, NOW).verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("keyless", Verdict::Broken),
            ("studio", Verdict::AllGood),
            ("trial", Verdict::AllGood)
        ]
    );
    // The trial's key line says what the verdict says: an evaluation, not a problem.
    assert!(
        checks.iter().any(|c| c.subject == "product trial"
            && c.level == Level::Info
            && c.message == "no license key: running as an evaluation"),
        "{checks:?}"
    );
}
