//! Licenses that move (profile 1.1, §9), against a real `lapd` behind a relay that opens
//! every request: the seed extensions actually sent (Generation, PreviousMachineHash,
//! Intent) and what a 1.1 `lapd` makes of them (a seat moved, released, a restored snapshot
//! flagged, a lost answer and its retry not); a 1.0 `lapd` (it ignores Room, so a release is
//! answered with a plain grant); silence; deactivating here anyway; the vendor's sunset grant.

mod support;

use std::sync::Arc;

use lap_proto::test_util::key;
use lap_proto::time::DAY;
use lap_proto::{
    Intent, LicenseKind, ProductRecord, SeedExtensions, SeedV1, ServerData, ServerSecretKeys,
    SunsetGrant, Uuid, VerifiedRecord,
};
use lapwing_core::clock::Clock as _;
use lapwing_core::engine::{DeactivateOptions, Deactivation, Engine, EngineConfig, EngineError};
use lapwing_core::identity::FixedIdentity;
use lapwing_core::status::Phase;
use support::{BASE_SKU, Relayed, quick, setup};

const STUDIO: &str = "acme-studio";

/// The keys the test `lapd` signs with (see `support`).
fn server_keys() -> ServerSecretKeys {
    ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32])
}

/// The seed and its extensions of every request the relay saw.
fn sent(server: &Relayed) -> Vec<(SeedV1, SeedExtensions)> {
    server
        .seen()
        .iter()
        .map(|seen| {
            let request = seen.request.as_ref().expect("opens with the server's keys");
            SeedV1::decode_with_extensions(&request.client_seed).expect("a well-formed seed")
        })
        .collect()
}

fn generations(server: &Relayed) -> Vec<Option<u32>> {
    sent(server).iter().map(|(_, ext)| ext.generation).collect()
}

/// The same data directory, products and keyring, on another machine anchor.
fn on_other_hardware(engine: &Engine, anchor: [u8; 32]) -> Engine {
    Engine::new(EngineConfig {
        identity: Arc::new(FixedIdentity::new(anchor)),
        ..engine.config().clone()
    })
}

fn record_path(engine: &Engine) -> std::path::PathBuf {
    engine
        .config()
        .data_dir
        .join("activations/acme-studio.json")
}

#[tokio::test]
async fn generation_counts_accepted_answers_only_and_a_lost_answer_s_retry_is_not_flagged() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine.set_key(STUDIO, &key(1).to_display()).expect("key");
    s.engine.activate(STUDIO, None).await.expect("runs");
    s.engine.activate(STUDIO, None).await.expect("runs");
    assert_eq!(generations(&server), [Some(0), Some(1)]);

    // Silence: two attempts (quick), both with the count of the answers accepted so far.
    server.set_open(false);
    let silent = s.engine.activate(STUDIO, None).await.expect("runs");
    assert_ne!(
        silent.last_attempt.map(|a| a.outcome),
        Some(lapwing_core::state::AttemptOutcome::Activated)
    );
    assert_eq!(generations(&server)[2..], [Some(2), Some(2)]);
    // The server answers, but its answers are lost: it has seen count 2 now.
    server.set_open(true);
    server.set_answering(false);
    s.engine.activate(STUDIO, None).await.expect("runs");
    assert_eq!(generations(&server)[4..], [Some(2), Some(2)]);
    // The retry that gets through sends the same count, and is not taken for a clone.
    server.set_answering(true);
    let answered = s.engine.activate(STUDIO, None).await.expect("runs");
    assert_eq!(generations(&server)[6..], [Some(2)], "the retry, answered");
    assert_eq!(answered.state, Phase::Activated);
    assert!(
        !answered.duplicate,
        "a lost answer's retry is never flagged"
    );

    // The keyring keeps the count: a lost state file does not send a lower one.
    std::fs::remove_file(s.engine.config().data_dir.join("state.json")).expect("state file");
    let rebuilt = s.engine.activate(STUDIO, None).await.expect("runs");
    assert_eq!(generations(&server)[7..], [Some(3)]);
    assert!(!rebuilt.duplicate);
    for (_, extensions) in sent(&server) {
        assert_eq!(extensions.intent, Intent::Activate);
        assert_eq!(extensions.previous_machine_hash, None, "the same hardware");
    }
}

#[tokio::test]
async fn an_installation_restored_from_a_snapshot_is_told_it_looks_cloned_until_it_catches_up() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine.set_key(STUDIO, &key(1).to_display()).expect("key");
    s.engine.activate(STUDIO, None).await.expect("runs");
    // The snapshot: the state file and the keyring's count, after one accepted answer.
    let state_file = s.engine.config().data_dir.join("state.json");
    let snapshot = std::fs::read(&state_file).expect("state");
    s.engine.activate(STUDIO, None).await.expect("runs");
    s.engine.activate(STUDIO, None).await.expect("runs");
    std::fs::write(&state_file, &snapshot).expect("restored");
    s.engine
        .config()
        .secrets
        .set_generation(STUDIO, 1)
        .expect("keyring restored");

    let restored = s.engine.activate(STUDIO, None).await.expect("runs");
    assert_eq!(generations(&server), [Some(0), Some(1), Some(2), Some(1)]);
    assert_eq!(restored.state, Phase::Activated, "answered as usual");
    assert!(restored.duplicate, "the server saw a later answer count");
    let verdict = lapwing_core::verdict::product_verdict(&restored, s.clock.now());
    assert_eq!(verdict.reason, lapwing_core::verdict::Reason::Duplicate);
    assert!(
        restored
            .lifecycle_note()
            .is_some_and(|note| note.contains("cloned or restored from a snapshot"))
    );
    // Kept in the status until an answer without it; doctor says what to do.
    assert!(s.engine.product_status(STUDIO).expect("status").duplicate);
    let checks = s
        .engine
        .doctor(
            Some(STUDIO),
            &lapwing_core::doctor::DoctorOptions::default(),
        )
        .await
        .expect("doctor runs");
    assert!(
        checks
            .iter()
            .any(|c| c.level == lapwing_core::doctor::Level::Warning
                && c.message.contains("SMBIOS UUID")
                && c.message.contains("/etc/machine-id")),
        "{checks:?}"
    );
    let caught_up = s.engine.activate(STUDIO, None).await.expect("runs");
    assert_eq!(generations(&server)[4..], [Some(2)]);
    assert!(!caught_up.duplicate);
}

#[tokio::test]
async fn after_a_hardware_change_the_seat_moves_and_keeps_its_license_id() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine.set_key(STUDIO, &key(1).to_display()).expect("key");
    let first = s.engine.activate(STUDIO, None).await.expect("runs");
    let ed25519 = server_keys().public().ed25519_bytes().to_owned();
    let old_hash = lap_proto::machine_hash(&ed25519, &[7; 32]);
    let new_hash = lap_proto::machine_hash(&ed25519, &[8; 32]);

    let moved = on_other_hardware(&s.engine, [8; 32]);
    let before = moved.hardware_moves(&[8; 32]).expect("reads");
    assert_eq!(before.len(), 1, "answered for the old hardware");
    assert!(hex::encode(old_hash).starts_with(&before[0].previous));
    assert!(hex::encode(new_hash).starts_with(&before[0].current));
    let status = moved.activate(STUDIO, None).await.expect("runs");
    let (seed, extensions) = sent(&server).pop().expect("a request");
    assert_eq!(seed.machine_hash, new_hash);
    assert_eq!(extensions.previous_machine_hash, Some(old_hash));
    assert_eq!(status.state, Phase::Activated);
    assert_eq!(status.license_id, first.license_id, "the seat moved");
    assert!(status.moved_from_previous_hardware);
    assert!(
        status
            .lifecycle_note()
            .is_some_and(|note| note.starts_with("Moved to new hardware"))
    );
    assert_eq!(moved.hardware_moves(&[8; 32]).expect("reads"), []);

    // The next renewal is an ordinary one: no previous hash, and the note is gone.
    let renewed = moved.activate(STUDIO, None).await.expect("runs");
    let (_, extensions) = sent(&server).pop().expect("a request");
    assert_eq!(
        extensions.previous_machine_hash, None,
        "answered for this hash"
    );
    assert_eq!(renewed.license_id, first.license_id);
    assert!(!renewed.moved_from_previous_hardware);
}

#[tokio::test]
async fn a_1_0_server_ignores_the_previous_hash_and_nothing_says_the_license_moved() {
    let server = Relayed::start_1_0();
    let s = setup(server.address, quick());
    s.engine.set_key(STUDIO, &key(1).to_display()).expect("key");
    let first = s.engine.activate(STUDIO, None).await.expect("runs");
    let status = on_other_hardware(&s.engine, [8; 32])
        .activate(STUDIO, None)
        .await
        .expect("runs");
    let (_, extensions) = sent(&server).pop().expect("a request");
    assert!(
        extensions.previous_machine_hash.is_some(),
        "sent all the same"
    );
    // A second seat, with its own LicenseId: not a move.
    assert_eq!(status.state, Phase::Activated);
    assert_ne!(status.license_id, first.license_id);
    assert!(!status.moved_from_previous_hardware);
}

#[tokio::test]
async fn a_released_seat_removes_the_activation_and_the_product_stays_quiet() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine.set_key(STUDIO, &key(1).to_display()).expect("key");
    let before = s.engine.activate(STUDIO, None).await.expect("runs");
    let outcome = s
        .engine
        .deactivate(
            STUDIO,
            DeactivateOptions {
                remove_key: true,
                anyway: false,
            },
        )
        .await
        .expect("runs");
    assert_eq!(outcome, Deactivation::Released);
    let seen = server.seen();
    let request = seen.last().and_then(|s| s.request.as_ref()).expect("opens");
    assert_eq!(Some(request.current_license_id), before.license_id);
    let (_, extensions) = SeedV1::decode_with_extensions(&request.client_seed).expect("seed");
    assert_eq!(extensions.intent, Intent::Release);
    let status = s.engine.product_status(STUDIO).expect("status");
    assert_eq!(
        (status.state, status.license_id, status.next_attempt_at),
        (Phase::Deactivated, None, None)
    );
    assert_eq!(
        status.headline(|t| t.to_string()),
        "Deactivated on this computer"
    );
    assert!(!record_path(&s.engine).exists(), "the record is removed");
    assert!(
        s.engine.key(STUDIO).expect("keyring").is_none(),
        "--remove-key"
    );
    assert_eq!(s.engine.next_deadline().expect("reads"), None);
}

#[tokio::test]
async fn a_1_0_server_answers_a_release_with_a_grant_and_the_activation_is_kept() {
    let server = Relayed::start_1_0();
    let s = setup(server.address, quick());
    s.engine.set_key(STUDIO, &key(1).to_display()).expect("key");
    let before = s.engine.activate(STUDIO, None).await.expect("runs");
    let outcome = s
        .engine
        .deactivate(STUDIO, DeactivateOptions::default())
        .await
        .expect("runs");
    assert_eq!(outcome, Deactivation::Kept { notice: None });
    assert!(
        outcome
            .sentence("Acme Studio")
            .contains("this vendor's server cannot release seats")
    );
    let seen = server.seen();
    let request = seen.last().and_then(|s| s.request.as_ref()).expect("opens");
    assert_eq!(Some(request.current_license_id), before.license_id);
    let (_, extensions) = SeedV1::decode_with_extensions(&request.client_seed).expect("seed");
    assert_eq!(extensions.intent, Intent::Release);
    let after = s.engine.product_status(STUDIO).expect("status");
    assert_eq!(after.state, Phase::Activated);
    assert_eq!(after.license_id, before.license_id);
    assert!(record_path(&s.engine).is_file(), "the record stays");
    assert!(s.engine.key(STUDIO).expect("keyring").is_some());
}

#[tokio::test]
async fn a_release_nobody_answers_changes_nothing() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine.set_key(STUDIO, &key(1).to_display()).expect("key");
    s.engine.activate(STUDIO, None).await.expect("runs");
    let state_file = s.engine.config().data_dir.join("state.json");
    let state_before = std::fs::read(&state_file).expect("state");
    let record_before = std::fs::read(record_path(&s.engine)).expect("record");
    server.set_open(false);
    let outcome = s
        .engine
        .deactivate(STUDIO, DeactivateOptions::default())
        .await
        .expect("runs");
    let Deactivation::Unanswered { cause } = &outcome else {
        panic!("unanswered, not {outcome:?}");
    };
    assert!(cause.is_some(), "a ranked cause");
    assert_eq!(std::fs::read(&state_file).expect("state"), state_before);
    assert_eq!(
        std::fs::read(record_path(&s.engine)).expect("record"),
        record_before
    );
    assert_eq!(
        s.engine.product_status(STUDIO).expect("status").state,
        Phase::Activated
    );
}

#[tokio::test]
async fn deactivated_here_anyway_the_product_stays_quiet_until_activated_again() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine.set_key(STUDIO, &key(1).to_display()).expect("key");
    s.engine.activate(STUDIO, None).await.expect("runs");
    let outcome = s
        .engine
        .deactivate(
            STUDIO,
            DeactivateOptions {
                remove_key: false,
                anyway: true,
            },
        )
        .await
        .expect("runs");
    assert_eq!(outcome, Deactivation::DeactivatedHere);
    assert!(outcome.sentence("Acme Studio").contains("lease runs out"));
    let status = s.engine.product_status(STUDIO).expect("status");
    assert_eq!(
        (status.state, status.license_id, status.next_attempt_at),
        (Phase::Deactivated, None, None)
    );
    assert!(!record_path(&s.engine).exists(), "the record is removed");
    assert!(s.engine.key(STUDIO).expect("keyring").is_some(), "key kept");
    let verdict = lapwing_core::verdict::product_verdict(&status, s.clock.now());
    assert_eq!(verdict.reason, lapwing_core::verdict::Reason::Deactivated);

    // Far past when it would have renewed, and past its end: nothing is due or sent.
    let sent_before = server.seen().len();
    assert_eq!(s.engine.next_deadline().expect("reads"), None);
    s.clock.advance(400 * DAY);
    let events = s.engine.tick().await.expect("ticks");
    assert_eq!(events, []);
    assert_eq!(server.seen().len(), sent_before, "nothing sent");
    assert_eq!(
        s.engine.product_status(STUDIO).expect("status").state,
        Phase::Deactivated
    );

    // Activated again on purpose (`lapd` checks ClientTime against its real clock).
    s.clock.set(lap_proto::time::unix_now());
    let again = s.engine.activate(STUDIO, None).await.expect("runs");
    assert_eq!(again.state, Phase::Activated);
    assert!(record_path(&s.engine).is_file());
}

fn sunset_grant(keys: &ServerSecretKeys) -> SunsetGrant {
    let data = ServerData {
        kind: Some(LicenseKind::Perpetual),
        features: vec!["export".into()],
        ..ServerData::default()
    };
    SunsetGrant::sign(keys, BASE_SKU, 1_800_000_000, &data).expect("signs")
}

#[tokio::test]
async fn a_sunset_grant_next_to_the_manifest_activates_for_good() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    let grant = sunset_grant(&server_keys());
    std::fs::write(s.products.join("acme-studio.sunset.json"), grant.to_json()).expect("write");
    let status = s.engine.product_status(STUDIO).expect("status");
    assert_eq!(status.state, Phase::Sunset);
    assert_eq!(
        status.headline(|t| t.to_string()),
        "Activated for good (the vendor's final release)"
    );
    assert_eq!(status.features, ["export"]);
    assert_eq!(status.next_attempt_at, None);
    // The record is the sunset record, and a product verifies it with its built-in key.
    let text = std::fs::read_to_string(record_path(&s.engine)).expect("record");
    let record = ProductRecord::from_json(&text).expect("parses");
    let verified = record
        .verify(BASE_SKU, server_keys().public().ed25519_bytes())
        .expect("verifies");
    assert!(matches!(verified, VerifiedRecord::Sunset(_)));
    // Nothing is sent for it, not even on request.
    let activated = s.engine.activate(STUDIO, None).await.expect("runs");
    assert_eq!(activated.state, Phase::Sunset);
    assert_eq!(server.seen().len(), 0);
    assert_eq!(s.engine.next_deadline().expect("reads"), None);
}

#[tokio::test]
async fn an_imported_sunset_grant_is_verified_and_a_tampered_one_changes_nothing() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    let dir = tempfile::tempdir().expect("tempdir");
    let grant = sunset_grant(&server_keys());

    // Another vendor's signature, then altered terms: both refused, nothing written.
    let forged = sunset_grant(&ServerSecretKeys::from_bytes([1; 32], &[2; 32]));
    let mut altered = grant.clone();
    altered.issued += 1;
    for (name, bad) in [("forged", forged), ("altered", altered)] {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, bad.to_json()).expect("write");
        let error = s.engine.import_sunset(STUDIO, &file).expect_err(name);
        assert!(
            matches!(error, EngineError::Sunset { .. }),
            "{name}: {error}"
        );
        assert!(error.to_string().contains("signature"), "{error}");
    }
    let other_sku = dir.path().join("other.json");
    std::fs::write(
        &other_sku,
        SunsetGrant::sign(
            &server_keys(),
            Uuid::from_u128(5),
            1,
            &ServerData::default(),
        )
        .expect("signs")
        .to_json(),
    )
    .expect("write");
    let error = s.engine.import_sunset(STUDIO, &other_sku).expect_err("SKU");
    assert!(error.to_string().contains("another product"), "{error}");
    assert_eq!(
        s.engine.product_status(STUDIO).expect("status").state,
        Phase::Evaluation
    );
    assert!(!record_path(&s.engine).exists());
    assert!(!s.engine.config().data_dir.join("sunset").exists());

    let file = dir.path().join("acme-studio.sunset.json");
    std::fs::write(&file, grant.to_json()).expect("write");
    let status = s.engine.import_sunset(STUDIO, &file).expect("imports");
    assert_eq!(status.state, Phase::Sunset);
    assert_eq!(status.sunset_issued, Some(1_800_000_000));
    let kept = s
        .engine
        .config()
        .data_dir
        .join("sunset/acme-studio.sunset.json");
    assert_eq!(
        SunsetGrant::from_json(&std::fs::read_to_string(kept).expect("copy")).expect("parses"),
        grant
    );
}
