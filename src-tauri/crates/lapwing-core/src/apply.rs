//! Applying one product's attempt to the state: the grant it won, or the backoff and the
//! causes it failed with. Pure: the caller holds the state's lock and commits.

use lap_proto::ActivationRecord;

use crate::cause::Cause;
use crate::state::{Attempt, AttemptOutcome, Backoff, Grant, PendingKey, ServerUsed, State};
use crate::timing::next_retry;

/// What one product's attempt came to, before anything of it is committed.
#[derive(Debug)]
pub(crate) struct Attempted {
    /// When the attempt began.
    pub at: u64,
    /// The evaluation's start, when the attempt used (and so fixed) it.
    pub evaluation_started: Option<u64>,
    pub outcome: Outcome,
    /// How the try of a pending key (see `PendingKey`) ended, when one was tried.
    pub pending: Option<PendingTry>,
}

/// The try of a pending license key, made before the stored key's own exchange.
#[derive(Debug)]
pub(crate) enum PendingTry {
    /// A server granted it: it is the license key now (the keyring was told already).
    Accepted,
    /// Not accepted: the stored key and its grant stay in effect.
    NotAccepted(Attempt),
    /// The state names a pending key the keyring no longer holds (promoted by an attempt
    /// whose commit failed, or dropped meanwhile): the state follows the keyring.
    Gone,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    /// An answer that passed every check; its record is written before the commit. Boxed:
    /// the other outcomes are a fraction of its size.
    Accepted {
        grant: Box<Grant>,
        record: Box<ActivationRecord>,
        /// What went wrong on the way, though another server answered (an override that
        /// did not answer): kept as the attempt's diagnosis, so the status says it.
        notes: Vec<Cause>,
        lifecycle: Lifecycle,
    },
    /// The server confirmed the release of this installation's seat (profile 1.1, §9): the
    /// grant goes and the product is deactivated on this computer. Its record is removed
    /// before the commit.
    Released { at: u64, lifecycle: Lifecycle },
    /// Silence, or answers that failed their checks: the previous grant stands.
    Failed {
        outcome: AttemptOutcome,
        diagnosis: Vec<Cause>,
        server: Option<ServerUsed>,
    },
    /// Nothing was sent, and why.
    NotSent(Cause),
    /// Nothing was sent: the vendor's final release (sunset) stands, and nothing changes.
    Sunset,
}

/// What an accepted answer says of the installation beyond its grant (profile 1.1, §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lifecycle {
    /// The Generation after this answer: the count sent, plus this one.
    pub generation: u32,
    /// The MachineHash (hex) this answer was given for.
    pub machine_hash: String,
    /// PreviousMachineHash was sent and the answer kept the LicenseId: the seat moved.
    pub moved: bool,
    /// The answer carried Duplicate.
    pub duplicate: bool,
}

/// Notes an accepted answer's lifecycle in the product's state.
fn note_lifecycle(p: &mut crate::state::ProductState, lifecycle: &Lifecycle) {
    // Never down: the keyring's count may be ahead of a rebuilt state's.
    p.generation = p.generation.max(lifecycle.generation);
    p.machine_hash = Some(lifecycle.machine_hash.clone());
    p.moved_from_previous_hardware = lifecycle.moved;
    p.duplicate = lifecycle.duplicate;
}

/// Applies one product's attempt to the state read under the lock. A product removed
/// meanwhile (`forget`) stays removed.
pub(crate) fn apply(state: &mut State, id: &str, attempted: &Attempted, anchor_source: &str) {
    if let Outcome::Accepted { grant, .. } = &attempted.outcome {
        // Any accepted answer (an activation) ends a deactivation: the product is in use again.
        state
            .pinned_anchor
            .get_or_insert_with(|| anchor_source.to_owned());
        // Both are times seen: the server's (signed) and this clock's, which the server has
        // just found within 30 s of its own.
        state.highest_time_seen = state
            .highest_time_seen
            .max(grant.received_at)
            .max(grant.server_time);
    }
    let Some(p) = state.products.get_mut(id) else {
        return;
    };
    if let Some(start) = attempted.evaluation_started {
        // The earliest start wins, as in the keyring: an evaluation never restarts.
        p.evaluation_started = Some(p.evaluation_started.map_or(start, |s| s.min(start)));
    }
    match &attempted.pending {
        Some(PendingTry::Accepted) => {
            p.pending_key = None;
            p.has_key = true;
        }
        Some(PendingTry::Gone) => p.pending_key = None,
        Some(PendingTry::NotAccepted(last_try)) => {
            // Made afresh when the state lost it (a rebuilt file): the keyring still holds it.
            let since = p.pending_key.as_ref().map_or(last_try.at, |k| k.since);
            p.pending_key = Some(PendingKey {
                since,
                last_try: Some(last_try.clone()),
            });
        }
        None => {}
    }
    match &attempted.outcome {
        Outcome::Accepted {
            grant,
            notes,
            lifecycle,
            ..
        } => {
            note_lifecycle(p, lifecycle);
            p.deactivated_at = None;
            p.grant = Some((**grant).clone());
            p.backoff = None;
            p.last_attempt = Some(Attempt {
                at: grant.received_at,
                outcome: AttemptOutcome::Activated,
                diagnosis: notes.clone(),
                server: grant.server.clone(),
            });
        }
        Outcome::Sunset => {}
        Outcome::Released { at, lifecycle } => {
            note_lifecycle(p, lifecycle);
            p.moved_from_previous_hardware = false;
            p.grant = None;
            p.backoff = None;
            p.last_attempt = None;
            p.warnings_sent.clear();
            p.deactivated_at = Some(*at);
        }
        Outcome::Failed {
            outcome,
            diagnosis,
            server,
        } if p.is_quiet() => {
            // Deactivated or released for good: the failure is said, but nothing is retried.
            p.last_attempt = Some(Attempt {
                at: attempted.at,
                outcome: *outcome,
                diagnosis: diagnosis.clone(),
                server: server.clone(),
            });
        }
        Outcome::Failed {
            outcome,
            diagnosis,
            server,
        } => {
            let now = attempted.at;
            let not_after = p.grant.as_ref().and_then(|g| g.not_after);
            let first = p.backoff.map_or(now, |b| b.first_failure_at);
            let failures = p.backoff.map_or(1, |b| b.failures + 1);
            p.backoff = Some(Backoff {
                first_failure_at: first,
                failures,
                next_at: next_retry(first, now, not_after),
            });
            p.last_attempt = Some(Attempt {
                at: now,
                outcome: *outcome,
                diagnosis: diagnosis.clone(),
                server: server.clone(),
            });
        }
        Outcome::NotSent(why) => {
            p.last_attempt = Some(Attempt {
                at: attempted.at,
                outcome: AttemptOutcome::NotSent,
                diagnosis: vec![why.clone()],
                server: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cause::Cause;
    use crate::state::ProductState;
    use crate::timing::RETRY_FAST;
    use lap_proto::LicenseKind;
    use lap_proto::Uuid;

    const NOW: u64 = 1_795_000_000;

    fn state_with(grant: Option<Grant>) -> State {
        let mut product = ProductState::new(Uuid::from_u128(1), Uuid::nil());
        product.grant = grant;
        let mut state = State::default();
        state.products.insert("acme".into(), product);
        state
    }

    fn grant() -> Grant {
        Grant {
            license_id: Uuid::from_u128(2),
            server_time: NOW - 100,
            received_at: NOW - 100,
            not_after: Some(NOW + 300 * 86_400),
            renew_after: None,
            kind: Some(LicenseKind::Term),
            in_compliance: Some(true),
            features: vec![],
            notice: None,
            server: None,
            without_key: false,
        }
    }

    fn attempted(outcome: Outcome) -> Attempted {
        Attempted {
            at: NOW,
            evaluation_started: None,
            outcome,
            pending: None,
        }
    }

    #[test]
    fn a_failure_keeps_the_grant_records_its_causes_and_backs_off() {
        let mut state = state_with(Some(grant()));
        let diagnosis = Cause::of_silence(true, Vec::new());
        let failed = attempted(Outcome::Failed {
            outcome: AttemptOutcome::NoAnswer,
            diagnosis: diagnosis.clone(),
            server: None,
        });
        apply(&mut state, "acme", &failed, "machine-id");
        let p = &state.products["acme"];
        assert_eq!(p.grant, Some(grant()), "the previous grant stands");
        let attempt = p.last_attempt.as_ref().expect("recorded");
        assert_eq!(
            (attempt.outcome, &attempt.diagnosis),
            (AttemptOutcome::NoAnswer, &diagnosis)
        );
        assert_eq!(
            p.backoff,
            Some(Backoff {
                first_failure_at: NOW,
                failures: 1,
                next_at: NOW + RETRY_FAST,
            })
        );
        assert_eq!(state.pinned_anchor, None, "nothing granted, nothing pinned");
        // A second failure counts from the first.
        apply(&mut state, "acme", &failed, "machine-id");
        assert_eq!(state.products["acme"].backoff.map(|b| b.failures), Some(2));
    }

    #[test]
    fn an_unsent_attempt_records_why_and_leaves_the_backoff() {
        let mut state = state_with(None);
        apply(
            &mut state,
            "acme",
            &attempted(Outcome::NotSent(Cause::NoLicenseKey)),
            "machine-id",
        );
        let p = &state.products["acme"];
        let attempt = p.last_attempt.as_ref().expect("recorded");
        assert_eq!(attempt.outcome, AttemptOutcome::NotSent);
        assert_eq!(attempt.diagnosis, [Cause::NoLicenseKey]);
        assert_eq!(p.backoff, None);
    }

    #[test]
    fn a_pending_key_keeps_when_it_was_entered_and_goes_once_accepted() {
        let mut state = state_with(Some(grant()));
        state.products.get_mut("acme").expect("product").pending_key = Some(PendingKey {
            since: NOW - 60,
            last_try: None,
        });
        let ignored = Attempt {
            at: NOW,
            outcome: AttemptOutcome::NoAnswer,
            diagnosis: vec![Cause::KeyMayBeRefused],
            server: None,
        };
        let renewed = Attempted {
            pending: Some(PendingTry::NotAccepted(ignored.clone())),
            ..attempted(Outcome::NotSent(Cause::NoLicenseKey))
        };
        apply(&mut state, "acme", &renewed, "machine-id");
        assert_eq!(
            state.products["acme"].pending_key,
            Some(PendingKey {
                since: NOW - 60,
                last_try: Some(ignored),
            })
        );
        let accepted = Attempted {
            pending: Some(PendingTry::Accepted),
            ..attempted(Outcome::NotSent(Cause::NoLicenseKey))
        };
        apply(&mut state, "acme", &accepted, "machine-id");
        assert_eq!(state.products["acme"].pending_key, None);
        assert!(state.products["acme"].has_key);
    }

    fn lifecycle(generation: u32, duplicate: bool) -> Lifecycle {
        Lifecycle {
            generation,
            machine_hash: "ab".repeat(32),
            moved: false,
            duplicate,
        }
    }

    fn accepted(lifecycle: Lifecycle) -> Attempted {
        let record = ActivationRecord {
            schema: 1,
            id: "acme".into(),
            sku: Uuid::from_u128(1),
            client_id: Uuid::from_u128(1),
            license_id: Uuid::from_u128(2),
            server_time: NOW,
            response: String::new(),
            key: String::new(),
        };
        attempted(Outcome::Accepted {
            grant: Box::new(grant()),
            record: Box::new(record),
            notes: Vec::new(),
            lifecycle,
        })
    }

    #[test]
    fn duplicate_stays_until_an_answer_without_it_and_the_count_never_goes_down() {
        let mut state = state_with(Some(grant()));
        apply(
            &mut state,
            "acme",
            &accepted(lifecycle(5, true)),
            "machine-id",
        );
        let p = &state.products["acme"];
        assert!(p.duplicate);
        assert_eq!(p.generation, 5);
        assert_eq!(p.machine_hash.as_deref(), Some("ab".repeat(32).as_str()));
        // A silence in between keeps it: only an answer says otherwise.
        let failed = attempted(Outcome::Failed {
            outcome: AttemptOutcome::NoAnswer,
            diagnosis: Vec::new(),
            server: None,
        });
        apply(&mut state, "acme", &failed, "machine-id");
        assert!(state.products["acme"].duplicate);
        // A lower count (a state rebuilt behind the keyring) does not lower the state's.
        apply(
            &mut state,
            "acme",
            &accepted(lifecycle(3, false)),
            "machine-id",
        );
        let p = &state.products["acme"];
        assert!(!p.duplicate);
        assert_eq!(p.generation, 5);
    }

    #[test]
    fn a_release_removes_the_grant_and_a_deactivated_product_is_not_retried() {
        let mut state = state_with(Some(grant()));
        let released = attempted(Outcome::Released {
            at: NOW,
            lifecycle: lifecycle(1, false),
        });
        apply(&mut state, "acme", &released, "machine-id");
        let p = &state.products["acme"];
        assert_eq!((p.grant.as_ref(), p.deactivated_at), (None, Some(NOW)));
        let failed = attempted(Outcome::Failed {
            outcome: AttemptOutcome::NoAnswer,
            diagnosis: Vec::new(),
            server: None,
        });
        apply(&mut state, "acme", &failed, "machine-id");
        let p = &state.products["acme"];
        assert_eq!(p.backoff, None, "no retry for a deactivated product");
        assert_eq!(
            p.last_attempt.as_ref().map(|a| a.outcome),
            Some(AttemptOutcome::NoAnswer)
        );
        // Activated again: no longer deactivated.
        apply(
            &mut state,
            "acme",
            &accepted(lifecycle(2, false)),
            "machine-id",
        );
        assert_eq!(state.products["acme"].deactivated_at, None);
    }

    #[test]
    fn a_forgotten_product_stays_forgotten() {
        let mut state = State::default();
        apply(
            &mut state,
            "acme",
            &attempted(Outcome::NotSent(Cause::NoLicenseKey)),
            "machine-id",
        );
        assert!(state.products.is_empty());
    }
}
