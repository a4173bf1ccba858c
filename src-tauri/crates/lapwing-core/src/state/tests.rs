//! The state file's round trips: saving and loading, setting a broken file aside, old and
//! newer schemas, concurrent writers.

use super::*;

fn sample() -> State {
    let mut state = State {
        highest_time_seen: 1_795_000_000,
        ..State::default()
    };
    let mut product = ProductState::new(Uuid::from_u128(1), Uuid::nil());
    product.grant = Some(Grant {
        license_id: Uuid::from_u128(2),
        server_time: 1_795_000_000,
        received_at: 1_795_000_001,
        not_after: Some(1_800_000_000),
        renew_after: None,
        kind: Some(LicenseKind::Term),
        in_compliance: Some(true),
        features: vec!["pro".into()],
        notice: None,
        server: Some(ServerUsed {
            address: "127.0.0.1:4711".into(),
            source: ServerSource::Srv,
        }),
        without_key: false,
    });
    state.products.insert("acme".into(), product);
    state
}

#[cfg(unix)]
#[test]
fn the_data_directory_is_made_private_new_or_existing() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
    let dir = tempfile::tempdir().expect("tempdir");
    let new = dir.path().join("share/lapwing");
    let store = StateStore::new(&new);
    let lock = store.lock().expect("lock");
    store.save(&lock, &sample()).expect("save");
    assert_eq!(mode(&new), 0o700, "created owner-only");
    assert_eq!(mode(&store.path()), 0o600);
    drop(lock);

    let loose = dir.path().join("loose");
    std::fs::create_dir(&loose).expect("mkdir");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o775)).expect("chmod");
    StateStore::new(&loose).update(|_| ()).expect("update");
    assert_eq!(mode(&loose), 0o700, "an existing loose one is narrowed");
}

#[test]
fn saves_and_loads_the_same_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::new(dir.path());
    let lock = store.lock().expect("lock");
    store.save(&lock, &sample()).expect("save");
    let (loaded, report) = store.load(&lock).expect("load");
    assert_eq!(loaded, sample());
    assert_eq!(report, LoadReport::default());
    let text = std::fs::read_to_string(store.path()).expect("read");
    assert!(text.contains("\"source\": \"srv\""), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_corrupt_file_is_set_aside_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::new(dir.path());
    std::fs::write(store.path(), b"{\"schema\": 1, \"products\": {\"acme\": ").expect("write");
    let lock = store.lock().expect("lock");
    let (state, report) = store.load(&lock).expect("load");
    let (aside, reason) = report.set_aside.expect("reported");
    assert_eq!(
        state,
        State {
            recovered_from: Some(aside.display().to_string()),
            ..State::default()
        }
    );
    assert!(reason.contains("truncated"), "{reason}");
    assert_eq!(
        std::fs::read(&aside).expect("kept"),
        b"{\"schema\": 1, \"products\": {\"acme\": "
    );
    assert!(!store.path().exists());
}

/// A state file as Lapwing wrote it before the license kinds came from lap-proto.
const OLD_STATE_FILE: &str = r#"{
  "schema": 1,
  "highest_time_seen": 1795000000,
  "global_override": null,
  "pinned_anchor": null,
  "recovered_from": null,
  "products": {
    "acme": {
      "client_base_id": "00000000-0000-0000-0000-000000000001",
      "client_addon_id": "00000000-0000-0000-0000-000000000000",
      "grant": {
        "license_id": "00000000-0000-0000-0000-000000000002",
        "server_time": 1795000000,
        "received_at": 1795000001,
        "not_after": 1800000000,
        "renew_after": null,
        "kind": "term",
        "in_compliance": true,
        "features": [
          "pro"
        ],
        "notice": null,
        "server": {
          "address": "127.0.0.1:4711",
          "source": "srv"
        },
        "without_key": false
      },
      "last_attempt": null,
      "backoff": null,
      "evaluation_started": null,
      "warnings_sent": [],
      "server_override": null,
      "has_key": false
    }
  }
}
"#;

#[test]
fn an_old_state_file_reads_and_is_written_back_word_for_word() {
    assert_eq!(State::parse(OLD_STATE_FILE.as_bytes()), Ok(sample()));
    for kind in LicenseKind::ALL {
        let text = OLD_STATE_FILE.replace("\"term\"", &format!("\"{kind}\""));
        let state = State::parse(text.as_bytes()).expect("every kind's word reads");
        let grant = state.products["acme"].grant.as_ref().expect("granted");
        assert_eq!(grant.kind, Some(kind));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::new(dir.path());
    let lock = store.lock().expect("lock");
    store.save(&lock, &sample()).expect("save");
    assert_eq!(
        std::fs::read_to_string(store.path()).expect("read"),
        OLD_STATE_FILE
    );
}

#[test]
fn saving_removes_what_killed_writers_left_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::new(dir.path());
    let killed = dir.path().join(".state.json.tmp-4194305-0");
    // This very process id, as a killed writer's id reused: under the lock still stale.
    let reused = dir
        .path()
        .join(format!(".state.json.tmp-{}-7", std::process::id()));
    let other = dir.path().join(".catalog.json.tmp-4194305-0");
    for p in [&killed, &reused, &other] {
        std::fs::write(p, b"partial").expect("temporary");
    }
    store.update(|s| s.highest_time_seen = 1).expect("update");
    assert!(!killed.exists());
    assert!(!reused.exists());
    assert!(
        other.exists(),
        "another file's temporary is not the state's to remove"
    );
}

#[test]
fn a_newer_schema_is_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::new(dir.path());
    std::fs::write(store.path(), b"{\"schema\": 99}").expect("write");
    let lock = store.lock().expect("lock");
    assert!(matches!(
        store.load(&lock),
        Err(StateError::NewerSchema { found: 99, .. })
    ));
    assert_eq!(
        std::fs::read(store.path()).expect("kept"),
        b"{\"schema\": 99}"
    );
}

#[test]
fn concurrent_updates_are_never_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::new(dir.path());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..25 {
                    store.update(|s| s.highest_time_seen += 1).expect("update");
                }
            });
        }
    });
    let lock = store.lock().expect("lock");
    assert_eq!(store.load(&lock).expect("load").0.highest_time_seen, 200);
}

/// A state file as Lapwing wrote it before causes were typed: the diagnosis is sentences.
const STATE_WITH_SENTENCES: &str = r#"{
  "schema": 1,
  "highest_time_seen": 1795000000,
  "global_override": null,
  "pinned_anchor": "machine-id",
  "recovered_from": null,
  "products": {
    "acme": {
      "client_base_id": "00000000-0000-0000-0000-000000000001",
      "client_addon_id": "00000000-0000-0000-0000-000000000000",
      "grant": null,
      "last_attempt": {
        "at": 1795000000,
        "outcome": "not-sent",
        "diagnosis": [
          "evaluation disabled by the administrator (machine policy): enter a license key",
          "the server may be unreachable: no answer from 127.0.0.1:4711 (srv)"
        ],
        "server": null
      },
      "backoff": null,
      "evaluation_started": null,
      "warnings_sent": [],
      "server_override": null,
      "has_key": false
    }
  }
}"#;

#[test]
fn a_state_file_with_sentences_as_diagnosis_still_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::new(dir.path());
    std::fs::write(store.path(), STATE_WITH_SENTENCES).expect("write");
    let lock = store.lock().expect("lock");
    let (state, report) = store.load(&lock).expect("load");
    assert_eq!(report, LoadReport::default(), "not set aside as corrupt");
    let attempt = state.products["acme"]
        .last_attempt
        .clone()
        .expect("the attempt is kept");
    assert_eq!(
        attempt.diagnosis,
        [
            Cause::EvaluationDisabled,
            Cause::Recorded {
                message: "the server may be unreachable: no answer from 127.0.0.1:4711 (srv)"
                    .into()
            },
        ]
    );
    // Written back typed, and read again as the same.
    store.save(&lock, &state).expect("save");
    let text = std::fs::read_to_string(store.path()).expect("read");
    assert!(text.contains("\"code\": \"evaluation-disabled\""), "{text}");
    assert_eq!(store.load(&lock).expect("load").0, state);
}
