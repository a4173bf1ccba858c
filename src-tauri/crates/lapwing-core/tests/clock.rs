//! The clock (profile §8): checked when a server stays silent, blamed only when measured
//! off; a clock behind a time already seen sends nothing; the network coming back retries
//! failed products at once. A real `lapd` behind a relay, fake time sources, a fake clock.

mod support;

use std::time::Duration;

use lap_proto::test_util::key;
use lap_proto::time::{DAY, HOUR, MINUTE};
use lapwing_core::cause::Cause;
use lapwing_core::clock::Clock as _;
use lapwing_core::doctor::{DoctorOptions, Level};
use lapwing_core::netwatch::NetworkChange;
use lapwing_core::state::AttemptOutcome;
use lapwing_core::status::Phase;
use support::{Relayed, Setup, quick, setup};

fn write_policy(s: &Setup, text: &str) {
    std::fs::write(&s.policy, text).expect("policy");
}

fn diagnosis(status: &lapwing_core::engine::ProductStatus) -> Vec<Cause> {
    status
        .last_attempt
        .as_ref()
        .map(|a| a.diagnosis.clone())
        .unwrap_or_default()
}

/// Two products silent at once: one SNTP query for the batch, to the policy's server, and
/// the clock it measured three days ahead is named first, with the offset.
#[tokio::test]
async fn silence_blames_a_clock_measured_off_first_after_one_query_for_the_batch() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    write_policy(&s, "[clock]\ntime_server = \"ntp.corp.test:123\"\n");
    *s.sources.system.lock().expect("lock") = vec!["system.test:123".into()];
    *s.sources.server_time.lock().expect("lock") = Some(s.clock.now() - 3 * DAY);
    *s.sources.synchronized.lock().expect("lock") = Ok(true);
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    s.engine
        .set_key("acme-export", &key(2).to_display())
        .expect("key");
    server.set_open(false);
    let results = s
        .engine
        .activate_many(&["acme-studio", "acme-export"], None)
        .await
        .expect("runs");
    assert_eq!(
        s.sources.queries(),
        ["ntp.corp.test:123"],
        "one query, policy first"
    );
    for result in results {
        let status = result.expect("attempted");
        let causes = diagnosis(&status);
        assert_eq!(
            causes.first(),
            Some(&Cause::ClockOff {
                offset_secs: i64::try_from(3 * DAY).expect("fits"),
                server: "ntp.corp.test:123".into(),
            }),
            "{causes:?}"
        );
        assert!(
            causes[0].to_string().contains("3 days ahead of"),
            "{}",
            causes[0]
        );
        assert_eq!(
            causes
                .iter()
                .filter(|c| c.code().starts_with("clock"))
                .count(),
            1,
            "the clock is named once: {causes:?}"
        );
    }
    // A clock measured off leaves no mark: set right again, it is not refused as moved back.
    let lock = s.engine.state_store().lock().expect("lock");
    let (state, _) = s.engine.state_store().load(&lock).expect("load");
    assert_eq!(state.highest_time_seen, 0, "no time of this batch is kept");
}

/// A clock measured right, or vouched for by the system, is ruled out, last; with no time
/// server named anywhere nothing is queried; the system's server is asked when the policy
/// names none.
#[tokio::test]
async fn a_clock_checked_right_is_ruled_out_last_and_never_blamed() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine
        .set_key("acme-studio", &key(9).to_display())
        .expect("key");

    *s.sources.synchronized.lock().expect("lock") = Ok(true);
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    let codes: Vec<&str> = diagnosis(&status).iter().map(Cause::code).collect();
    assert_eq!(
        codes,
        ["key-may-be-refused", "unreachable", "clock-synchronized"]
    );
    assert!(
        s.sources.queries().is_empty(),
        "no server named, none asked"
    );

    *s.sources.system.lock().expect("lock") = vec!["system.test:123".into()];
    *s.sources.server_time.lock().expect("lock") = Some(s.clock.now() + 2);
    *s.sources.synchronized.lock().expect("lock") = Ok(false);
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    let causes = diagnosis(&status);
    assert_eq!(
        causes.last(),
        Some(&Cause::ClockRight {
            offset_secs: -2,
            server: "system.test:123".into()
        })
    );
    assert_eq!(causes.first(), Some(&Cause::KeyMayBeRefused));
    assert_eq!(s.sources.queries(), ["system.test:123"]);

    // Neither check could settle it: said so, with both reasons, and not blamed.
    *s.sources.server_time.lock().expect("lock") = None;
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    let causes = diagnosis(&status);
    assert_eq!(
        causes.last(),
        Some(&Cause::ClockNotChecked {
            reason: "the system says it is not synchronized; no answer from system.test:123".into()
        })
    );
    assert_eq!(causes.first(), Some(&Cause::KeyMayBeRefused));
}

/// Activated, then the clock set two hours back: nothing is sent, and the attempt says by
/// how much; the grant stands.
#[tokio::test]
async fn a_clock_behind_a_time_already_seen_sends_nothing_and_says_by_how_much() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    let first = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(first.state, Phase::Activated);
    let sent = server.seen().len();

    s.clock.set(s.clock.now() - 2 * HOUR);
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(server.seen().len(), sent, "nothing sent");
    let attempt = status.last_attempt.expect("recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::NotSent);
    let Some(Cause::ClockMovedBack { by_secs }) = attempt.diagnosis.first() else {
        panic!("{:?}", attempt.diagnosis);
    };
    assert!((2 * HOUR..2 * HOUR + MINUTE).contains(by_secs), "{by_secs}");
    assert!(
        attempt.diagnosis[0].to_string().contains("2 hours behind"),
        "{}",
        attempt.diagnosis[0]
    );
    assert_eq!(status.state, Phase::Activated, "the grant stands");
    assert_eq!(status.clock_moved_back_by, Some(*by_secs));
}

/// The mark rises with every activation, not only with accepted answers: a product whose
/// server never answered still catches a clock moved back an hour later.
#[tokio::test]
async fn the_mark_rises_at_every_attempt_not_only_on_acceptance() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    server.set_open(false);
    let at = s.clock.now();
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(
        status.last_attempt.map(|a| a.outcome),
        Some(AttemptOutcome::NoAnswer)
    );
    let lock = s.engine.state_store().lock().expect("lock");
    let (state, _) = s.engine.state_store().load(&lock).expect("load");
    drop(lock);
    assert_eq!(
        state.highest_time_seen, at,
        "the silent attempt's time is kept"
    );

    let sent = server.seen().len();
    s.clock.set(at - HOUR);
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(server.seen().len(), sent, "nothing sent");
    assert_eq!(
        diagnosis(&status),
        [Cause::ClockMovedBack { by_secs: HOUR }]
    );
}

/// A mark set while the clock ran a day ahead does not lock the product out once the clock
/// is right: a check that confirms the clock lowers the mark, and the attempt goes out.
#[tokio::test]
async fn a_clock_confirmed_right_lowers_a_mark_set_by_a_clock_that_ran_ahead() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    let right = s.clock.now();
    s.clock.set(right + DAY);
    // The server ignores a clock a day off: silence, and the mark at the day ahead.
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(
        status.last_attempt.map(|a| a.outcome),
        Some(AttemptOutcome::NoAnswer)
    );
    s.clock.set(right);
    *s.sources.synchronized.lock().expect("lock") = Ok(true);
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(status.state, Phase::Activated, "{:?}", status.last_attempt);
    assert_eq!(status.clock_moved_back_by, None);
    let lock = s.engine.state_store().lock().expect("lock");
    let (state, _) = s.engine.state_store().load(&lock).expect("load");
    assert!(
        state.highest_time_seen < right + HOUR,
        "the mark was lowered"
    );
}

/// `doctor` runs the same check (the tray's doctor too: it is this function) and reports
/// what it found; "not checked" never appears once a check ran.
#[tokio::test]
async fn doctor_reports_what_the_clock_check_found() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    let clock_lines = |checks: &[lapwing_core::doctor::Check]| -> Vec<(Level, String)> {
        checks
            .iter()
            .filter(|c| c.subject == "clock")
            .map(|c| (c.level, c.message.clone()))
            .collect()
    };

    let checks = s
        .engine
        .doctor(None, &DoctorOptions::default())
        .await
        .expect("doctor");
    let lines = clock_lines(&checks);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].0, Level::Warning);
    assert!(
        lines[0]
            .1
            .starts_with("could not be checked: no system bus in this test"),
        "{lines:?}"
    );

    write_policy(&s, "[clock]\ntime_server = \"ntp.corp.test:123\"\n");
    *s.sources.server_time.lock().expect("lock") = Some(s.clock.now() - 120);
    let checks = s
        .engine
        .doctor(None, &DoctorOptions::default())
        .await
        .expect("doctor");
    let lines = clock_lines(&checks);
    assert_eq!(lines[0].0, Level::Problem, "{lines:?}");
    assert!(
        lines[0].1.starts_with(
            "this machine's clock is 120 s ahead of the time server ntp.corp.test:123"
        ),
        "{lines:?}"
    );

    *s.sources.server_time.lock().expect("lock") = Some(s.clock.now());
    *s.sources.synchronized.lock().expect("lock") = Ok(true);
    let lines = clock_lines(
        &s.engine
            .doctor(None, &DoctorOptions::default())
            .await
            .expect("doctor"),
    );
    assert_eq!(lines[0].0, Level::Ok, "{lines:?}");
    assert_eq!(
        lines[0].1,
        "within 0 s of the time server ntp.corp.test:123; the system says it is synchronized with network time"
    );
    for (_, line) in &lines {
        assert!(!line.contains("not checked"), "{line}");
    }

    // A clock behind a time already seen needs attention, as every product's verdict says.
    s.engine.activate("acme-studio", None).await.expect("runs");
    s.clock.set(s.clock.now() - 3 * HOUR);
    *s.sources.server_time.lock().expect("lock") = Some(s.clock.now() + 3 * HOUR);
    let lines = clock_lines(
        &s.engine
            .doctor(None, &DoctorOptions::default())
            .await
            .expect("doctor"),
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1].0, Level::Warning);
    assert!(
        lines[1].1.starts_with("3 hours behind a time already seen"),
        "{lines:?}"
    );
}

/// A product failing with its next attempt 15 minutes away is tried as soon as the network
/// source says the network came back, with the fake clock standing still: not at its
/// backoff point.
#[tokio::test]
async fn a_network_change_retries_a_failing_product_at_once() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    std::fs::remove_file(s.products.join("acme-export.toml")).expect("one product");
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    server.set_open(false);
    let (network_tx, network_rx) = futures::channel::mpsc::unbounded::<NetworkChange>();
    let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = std::sync::Arc::new(s.engine);
    let running = {
        let engine = std::sync::Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .run_watching(events, Box::pin(network_rx), async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    // The first tick fails (the relay is closed) and backs off by 15 minutes.
    let failing = wait_until(&engine, |p| {
        p.last_attempt
            .as_ref()
            .is_some_and(|a| a.outcome == AttemptOutcome::NoAnswer)
    })
    .await;
    let now = s.clock.now();
    assert_eq!(failing.next_attempt_at, Some(now + 15 * MINUTE));

    server.set_open(true);
    network_tx.unbounded_send(NetworkChange).expect("sent");
    let activated = wait_until(&engine, |p| p.state == Phase::Activated).await;
    assert_eq!(s.clock.now(), now, "the fake clock never moved");
    assert_eq!(
        activated.last_attempt.map(|a| a.outcome),
        Some(AttemptOutcome::Activated)
    );
    let _ = stop.send(());
    running.await.expect("joins").expect("runs cleanly");
}

/// Polls the status (the run loop works on its own task) until `done`, for at most 20 s.
async fn wait_until(
    engine: &lapwing_core::engine::Engine,
    done: impl Fn(&lapwing_core::engine::ProductStatus) -> bool,
) -> lapwing_core::engine::ProductStatus {
    for _ in 0..200 {
        if let Ok(status) = engine.product_status("acme-studio")
            && done(&status)
        {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "not reached within 20 s: {:?}",
        engine.product_status("acme-studio")
    );
}
