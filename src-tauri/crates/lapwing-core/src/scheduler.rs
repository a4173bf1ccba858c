//! What is due when: renewals, retries and warnings, computed from the state and the clock.
//! The engine sleeps until the earliest deadline (no polling) and wakes early when the state
//! or the manifests change.

use serde::Serialize;

use crate::cause::Cause;
use crate::engine::{Engine, EngineError, ProductStatus};
use crate::manifest::Manifest;
use crate::policy::Policy;
use crate::state::{AttemptOutcome, ProductState, State};
use crate::status::{Phase, evaluation_end};
use crate::timing::{due_warning, next_warning_at, renew_at};

/// Which end a warning counts towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// The end of an evaluation.
    Evaluation,
    /// The license's NotAfter.
    NotAfter,
}

impl WarningKind {
    /// The word in the warning points recorded as shown ("not-after/30d"): stored in the
    /// state file, so it never changes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evaluation => "evaluation",
            Self::NotAfter => "not-after",
        }
    }
}

/// Something the person should hear about (the tray turns these into notifications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// An end is coming: NotAfter, or the end of an evaluation.
    Warning {
        product: String,
        name: String,
        what: WarningKind,
        ends_at: u64,
        label: String,
    },
    /// Activated again after failed attempts.
    Recovered { product: String, name: String },
    /// An attempt failed in a way the person must act on (no key, evaluation over, …).
    NeedsAttention {
        product: String,
        name: String,
        cause: Cause,
    },
}

/// When the product next needs an activation attempt, if ever.
pub fn activation_due_at(manifest: &Manifest, product: &ProductState, now: u64) -> Option<u64> {
    if product.is_quiet() {
        return None;
    }
    if let Some(backoff) = product.backoff {
        return Some(backoff.next_at);
    }
    match &product.grant {
        Some(grant) if !(grant.without_key && product.has_key) => Some(renew_at(grant)),
        // Nothing granted yet, or an evaluation to replace with the newly entered key.
        _ if product.has_key || manifest.evaluation_days > 0 => {
            // An evaluation that has ended locally waits for a key; nothing to send.
            let ended =
                !product.has_key && evaluation_end(manifest, product).is_some_and(|end| now >= end);
            (!ended).then_some(now)
        }
        _ => None,
    }
}

/// [`activation_due_at`] under the machine policy. With evaluations forbidden, a product
/// without a key is tried once, so that its status carries the administrator's reason (the
/// attempt sends nothing); after that nothing is due until a key is entered. The same once a
/// changed server key was reported.
pub fn activation_due_under(
    policy: &Policy,
    manifest: &Manifest,
    product: &ProductState,
    now: u64,
) -> Option<u64> {
    if product.is_quiet() || told(product, &Cause::ServerKeyChanged) {
        // Only the person can confirm the new server key (entering the key again activates
        // at once): trying again would only say the same thing.
        return None;
    }
    if !policy.evaluation.allowed && !product.has_key {
        let told = told(product, &Cause::EvaluationDisabled);
        return (manifest.evaluation_days > 0 && !told).then_some(now);
    }
    activation_due_at(manifest, product, now)
}

/// Whether the last attempt sent nothing, for `cause`.
fn told(product: &ProductState, cause: &Cause) -> bool {
    product
        .last_attempt
        .as_ref()
        .is_some_and(|a| a.outcome == AttemptOutcome::NotSent && a.diagnosis.first() == Some(cause))
}

/// The end a product's warnings count towards, and what it is called. An evaluation the
/// policy forbids has no end to warn about: the product is unlicensed.
fn warning_end(
    policy: &Policy,
    manifest: &Manifest,
    product: &ProductState,
) -> Option<(WarningKind, u64)> {
    if product.is_quiet() {
        return None;
    }
    match &product.grant {
        Some(grant) if !grant.without_key => {
            grant.not_after.map(|end| (WarningKind::NotAfter, end))
        }
        _ if !policy.evaluation.allowed => None,
        _ => evaluation_end(manifest, product).map(|end| (WarningKind::Evaluation, end)),
    }
}

/// The earliest moment anything is due for any product. Warnings the policy silences are
/// not worth waking up for.
pub fn next_deadline(
    products: &[(Manifest, ProductState)],
    policy: &Policy,
    now: u64,
) -> Option<u64> {
    products
        .iter()
        .flat_map(|(m, p)| {
            let warning = warning_end(policy, m, p)
                .filter(|_| policy.notifications.warnings_shown())
                .and_then(|(what, end)| next_warning_at(what.as_str(), end, now, &p.warnings_sent));
            [activation_due_under(policy, m, p, now), warning]
        })
        .flatten()
        .min()
}

impl Engine {
    fn installed_with_state(&self) -> Result<(Vec<(Manifest, ProductState)>, State), EngineError> {
        self.pick_up_sunsets_logged();
        let catalog = self.catalog();
        let lock = self.state_store().lock()?;
        let (state, _) = self.state_store().load(&lock)?;
        drop(lock);
        let fresh = ProductState::new(lap_proto::Uuid::nil(), lap_proto::Uuid::nil());
        let pairs = catalog
            .products
            .into_values()
            .map(|m| {
                let p = state
                    .products
                    .get(&m.id)
                    .cloned()
                    .unwrap_or_else(|| fresh.clone());
                (m, p)
            })
            .collect();
        Ok((pairs, state))
    }

    /// The machine policy as the scheduler uses it. A broken file is logged and read as the
    /// defaults here, so the run loop keeps going and the person keeps being warned;
    /// activation refuses to run on it (and says why), so nothing is granted on that guess.
    fn scheduling_policy(&self) -> Policy {
        Policy::load(&self.config().policy_path).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the machine policy cannot be read; scheduling with its defaults");
            Policy::default()
        })
    }

    /// When the engine must next wake up.
    pub fn next_deadline(&self) -> Result<Option<u64>, EngineError> {
        let (products, _) = self.installed_with_state()?;
        Ok(next_deadline(
            &products,
            &self.scheduling_policy(),
            self.config().clock.now(),
        ))
    }

    /// Does everything due now: activations of every due product (concurrently), then the
    /// warnings. Each warning is recorded before it is returned, so it is shown at most once.
    /// With `[notifications] enabled = false` in the machine policy, no event is returned.
    pub async fn tick(&self) -> Result<Vec<Event>, EngineError> {
        let now = self.config().clock.now();
        let policy = self.scheduling_policy();
        let (products, _) = self.installed_with_state()?;
        let due: Vec<&Manifest> = products
            .iter()
            .filter(|(m, p)| activation_due_under(&policy, m, p, now).is_some_and(|at| at <= now))
            .map(|(m, _)| m)
            .collect();
        // One batch: concurrent exchanges, one state commit for all of them.
        let ids: Vec<&str> = due.iter().map(|m| m.id.as_str()).collect();
        let results = match self.activate_many(&ids, None).await {
            Ok(results) => results,
            Err(e) => {
                // The batch could not run (state, policy or identity unreadable): the products
                // stay due, and warnings are still given.
                tracing::warn!(error = %e, "activations could not run");
                Vec::new()
            }
        };
        let mut events = Vec::new();
        for (manifest, result) in due.iter().zip(results) {
            let before = products
                .iter()
                .find(|(m, _)| m.id == manifest.id)
                .map(|(_, p)| p);
            match result {
                Ok(status) => events.extend(attempt_events(manifest, before, &status)),
                Err(e) => {
                    tracing::warn!(product = %manifest.id, error = %e, "activation could not run");
                }
            }
        }
        events.extend(self.take_warnings()?);
        if !policy.notifications.enabled {
            // The attempts' outcomes are in the state (and so in the status) all the same.
            events.clear();
        }
        Ok(events)
    }

    /// Warnings due now and not yet shown; marks them shown. Warnings the machine policy
    /// silences are neither returned nor marked: turned back on, the latest point due is
    /// shown (it covers the ones before it), and the state is not rewritten meanwhile.
    pub fn take_warnings(&self) -> Result<Vec<Event>, EngineError> {
        let now = self.config().clock.now();
        let policy = self.scheduling_policy();
        if !policy.notifications.warnings_shown() {
            return Ok(Vec::new());
        }
        let catalog = self.catalog();
        let (events, _) = self.state_store().update(|state| {
            let mut events = Vec::new();
            for manifest in catalog.products.values() {
                let Some(product) = state.products.get_mut(&manifest.id) else {
                    continue;
                };
                let Some((what, end)) = warning_end(&policy, manifest, product) else {
                    continue;
                };
                if let Some(warning) = due_warning(what.as_str(), end, now, &product.warnings_sent)
                {
                    product.warnings_sent.extend(warning.covers.iter().cloned());
                    events.push(Event::Warning {
                        product: manifest.id.clone(),
                        name: manifest.name.clone(),
                        what,
                        ends_at: end,
                        label: warning.label,
                    });
                }
            }
            events
        })?;
        Ok(events)
    }
}

fn attempt_events(
    manifest: &Manifest,
    before: Option<&ProductState>,
    status: &ProductStatus,
) -> Vec<Event> {
    let failed_before = before.is_some_and(|p| p.backoff.is_some());
    let succeeded = status
        .last_attempt
        .as_ref()
        .is_some_and(|a| a.outcome == crate::state::AttemptOutcome::Activated);
    if succeeded && failed_before {
        return vec![Event::Recovered {
            product: manifest.id.clone(),
            name: manifest.name.clone(),
        }];
    }
    let needs_person = matches!(status.state, Phase::Expired | Phase::EvaluationExpired)
        || status
            .last_attempt
            .as_ref()
            .is_some_and(|a| a.outcome == crate::state::AttemptOutcome::NotSent);
    let newly = before
        .and_then(|p| p.last_attempt.as_ref())
        .map(|a| a.outcome)
        != status.last_attempt.as_ref().map(|a| a.outcome);
    if needs_person
        && newly
        && let Some(cause) = attention_cause(status)
    {
        return vec![Event::NeedsAttention {
            product: manifest.id.clone(),
            name: manifest.name.clone(),
            cause,
        }];
    }
    Vec::new()
}

/// What the person is told to act on: the attempt's most likely cause, else what the phase
/// itself says.
fn attention_cause(status: &ProductStatus) -> Option<Cause> {
    let first = status
        .last_attempt
        .as_ref()
        .and_then(|a| a.diagnosis.first().cloned());
    first.or(match status.state {
        Phase::Expired => Some(Cause::LicenseExpired),
        Phase::EvaluationExpired => Some(Cause::EvaluationEnded),
        Phase::Unlicensed
        | Phase::Evaluation
        | Phase::Activated
        | Phase::RenewalDue
        | Phase::Deactivated
        | Phase::Sunset => None,
    })
}

/// Each sleep is cut at this length: the monotonic clock that timers use stands still while
/// a laptop is suspended, so a long sleep could oversleep a renewal by the length of the
/// suspend. Waking every 15 minutes at most bounds that, at no measurable cost.
pub const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How long a network change is given to settle before the retries: a link coming up brings
/// its address, its routes and its DNS servers within about a second, in several events.
pub const NETWORK_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Brings every failing product's next attempt forward to `now` (the network came back: the
/// backoff's wait no longer says anything). Returns the products concerned.
pub fn retry_failing_now(state: &mut State, now: u64) -> Vec<String> {
    state
        .products
        .iter_mut()
        .filter_map(|(id, p)| {
            let backoff = p.backoff.as_mut()?;
            (backoff.next_at > now).then(|| {
                backoff.next_at = now;
                id.clone()
            })
        })
        .collect()
}

impl Engine {
    /// The network came back: every failing product is due now (one state write), so the
    /// next tick tries it with the products already due, at once.
    pub fn network_changed(&self) -> Result<Vec<String>, EngineError> {
        let now = self.config().clock.now();
        let (retried, _) = self
            .state_store()
            .update(|state| retry_failing_now(state, now))?;
        if !retried.is_empty() {
            tracing::info!(products = ?retried, "the network changed: failed activations are retried now");
        }
        Ok(retried)
    }

    /// [`Engine::run_watching`] without a network source: failed activations wait for their
    /// backoff points.
    pub async fn run(
        &self,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
        self.run_watching(events, crate::netwatch::never(), shutdown)
            .await
    }

    /// Runs until `shutdown` completes: does what is due, then sleeps until the next
    /// deadline, waking early when a products directory or the state file changes (a
    /// product installed, `lapctl` at work), and when `network` says the network came back
    /// (then every product that is due or failing is tried at once). Events go to `events`.
    pub async fn run_watching(
        &self,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
        mut network: crate::netwatch::NetworkEvents,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
        use futures::{FutureExt as _, StreamExt as _};
        let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
        // Kept alive for the loop's lifetime; dropping it stops the watching.
        let _watcher = self.watch(changed_tx);
        tokio::pin!(shutdown);
        loop {
            for event in self.tick().await? {
                let _ = events.send(event);
            }
            let now = self.config().clock.now();
            let wait = match self.next_deadline()? {
                // Still due after a tick: the attempt could not run (a locked keyring, say).
                // Try again after the first retry interval, or sooner on any change.
                Some(at) if at <= now => std::time::Duration::from_secs(crate::timing::RETRY_FAST),
                Some(at) => std::time::Duration::from_secs(at - now).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(wait) => {}
                Some(()) = changed.recv() => {
                    // A burst of file events (an installer writing several files) is one change.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    while changed.try_recv().is_ok() {}
                }
                Some(_) = network.next() => {
                    tokio::time::sleep(NETWORK_SETTLE).await;
                    while let Some(Some(_)) = network.next().now_or_never() {}
                    if let Err(e) = self.network_changed() {
                        tracing::warn!(error = %e, "cannot bring the failed activations forward");
                    }
                }
            }
        }
    }

    /// Watches the products directories and the state directory. A directory that does not
    /// exist yet is watched through its parent where possible; a watcher that cannot start is
    /// logged and the engine falls back on its timed wake-ups. Public so the tray refreshes
    /// its menu on exactly the changes the run loop wakes on (`lapctl` at work included).
    pub fn watch(
        &self,
        changed: tokio::sync::mpsc::UnboundedSender<()>,
    ) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher as _;
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = changed.send(());
            }
        })
        .map_err(|e| tracing::warn!(error = %e, "cannot watch for new products; changes are noticed on the next wake-up"))
        .ok()?;
        let mut dirs = self.config().product_dirs.clone();
        dirs.push(self.config().data_dir.clone());
        for dir in dirs {
            let target = if dir.exists() {
                Some(dir.clone())
            } else {
                dir.parent()
                    .filter(|p| p.exists())
                    .map(std::path::Path::to_owned)
            };
            if let Some(target) = target
                && let Err(e) = watcher.watch(&target, notify::RecursiveMode::NonRecursive)
            {
                tracing::warn!(dir = %target.display(), error = %e, "cannot watch directory");
            }
        }
        Some(watcher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product_status::product_status;
    use crate::state::{Attempt, Grant};
    use lap_proto::LicenseKind;
    use lap_proto::Uuid;
    use lap_proto::time::DAY;
    use std::path::Path;

    const NOW: u64 = 1_795_000_000;

    fn manifest(evaluation_days: u32) -> Manifest {
        let text = format!(
            "schema = 1\nid = \"acme\"\nname = \"Acme\"\nvendor = \"Acme\"\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nevaluation_days = {evaluation_days}\n[server]\nx25519 = \"4954728102f02d2917df9aabf24634d4a3a3b83312273e818e40da0cf2755623\"\ned25519 = \"a72f4e02db405c0582a48e79f4830538bccc150e4ccda0404e03f4a190e12356\"\n"
        );
        Manifest::parse(&text, Path::new("acme.toml")).expect("valid")
    }

    fn product(outcome: AttemptOutcome, diagnosis: Vec<Cause>) -> ProductState {
        let mut p = ProductState::new(Uuid::from_u128(1), Uuid::nil());
        p.last_attempt = Some(Attempt {
            at: NOW - 60,
            outcome,
            diagnosis,
            server: None,
        });
        p
    }

    fn without_evaluations() -> Policy {
        let mut policy = Policy::default();
        policy.evaluation.allowed = false;
        policy
    }

    fn status_of(manifest: &Manifest, p: &ProductState) -> ProductStatus {
        let mut state = State::default();
        state.products.insert(manifest.id.clone(), p.clone());
        product_status(manifest, &state, NOW, true)
    }

    #[test]
    fn a_forbidden_evaluation_is_tried_until_its_cause_is_recorded() {
        let (policy, m) = (without_evaluations(), manifest(30));
        let fresh = ProductState::new(Uuid::from_u128(1), Uuid::nil());
        assert_eq!(activation_due_under(&policy, &m, &fresh, NOW), Some(NOW));
        let told = product(AttemptOutcome::NotSent, vec![Cause::EvaluationDisabled]);
        assert_eq!(activation_due_under(&policy, &m, &told, NOW), None);
        // Another cause, even one worded alike, is not the administrator's reason: the
        // decision is the variant's, never the sentence's.
        for other in [
            Cause::NoLicenseKey,
            Cause::Recorded {
                message: Cause::EvaluationDisabled.to_string(),
            },
        ] {
            let p = product(AttemptOutcome::NotSent, vec![other.clone()]);
            assert_eq!(
                activation_due_under(&policy, &m, &p, NOW),
                Some(NOW),
                "{other:?}"
            );
        }
        // Recorded, but not as an unsent attempt: still due.
        let answered = product(AttemptOutcome::NoAnswer, vec![Cause::EvaluationDisabled]);
        assert_eq!(activation_due_under(&policy, &m, &answered, NOW), Some(NOW));
    }

    #[test]
    fn an_unsent_attempt_needs_attention_with_its_first_cause() {
        let m = manifest(0);
        for cause in [
            Cause::NoServerFound { skipped: vec![] },
            Cause::NoLicenseKey,
            Cause::EvaluationDisabled,
            Cause::EvaluationEnded,
        ] {
            let after = product(
                AttemptOutcome::NotSent,
                vec![cause.clone(), Cause::ClockMayBeOff],
            );
            let events = attempt_events(&m, None, &status_of(&m, &after));
            assert_eq!(
                events,
                [Event::NeedsAttention {
                    product: "acme".into(),
                    name: "Acme".into(),
                    cause: cause.clone(),
                }],
                "{cause:?}"
            );
            // Said once: the same outcome again is no news.
            assert_eq!(attempt_events(&m, Some(&after), &status_of(&m, &after)), []);
        }
        // Silence while activated is not the person's to act on.
        let silent = product(
            AttemptOutcome::NoAnswer,
            Cause::of_silence(true, Vec::new()),
        );
        assert_eq!(attempt_events(&m, None, &status_of(&m, &silent)), []);
    }

    #[test]
    fn an_expiry_without_a_cause_is_named_by_its_phase() {
        let m = manifest(0);
        let mut expired = product(AttemptOutcome::NoAnswer, Vec::new());
        expired.has_key = true;
        expired.grant = Some(Grant {
            license_id: Uuid::from_u128(2),
            server_time: NOW - 40 * DAY,
            received_at: NOW - 40 * DAY,
            not_after: Some(NOW - DAY),
            renew_after: None,
            kind: Some(LicenseKind::Term),
            in_compliance: Some(true),
            features: vec![],
            notice: None,
            server: None,
            without_key: false,
        });
        let status = status_of(&m, &expired);
        assert_eq!(status.state, Phase::Expired);
        assert!(matches!(
            &attempt_events(&m, None, &status)[..],
            [Event::NeedsAttention {
                cause: Cause::LicenseExpired,
                ..
            }]
        ));
    }

    #[test]
    fn a_network_change_brings_only_failing_products_forward() {
        let mut state = State::default();
        let mut failing = ProductState::new(Uuid::from_u128(1), Uuid::nil());
        failing.backoff = Some(crate::state::Backoff {
            first_failure_at: NOW - 60,
            failures: 1,
            next_at: NOW + 15 * 60,
        });
        let mut due_already = failing.clone();
        due_already.backoff = due_already.backoff.map(|b| crate::state::Backoff {
            next_at: NOW - 1,
            ..b
        });
        let fine = ProductState::new(Uuid::from_u128(2), Uuid::nil());
        state.products.insert("failing".into(), failing);
        state.products.insert("due".into(), due_already);
        state.products.insert("fine".into(), fine.clone());
        assert_eq!(retry_failing_now(&mut state, NOW), ["failing"]);
        let m = manifest(0);
        assert_eq!(
            activation_due_at(&m, &state.products["failing"], NOW),
            Some(NOW),
            "due now, not at its backoff point"
        );
        assert_eq!(
            state.products["fine"], fine,
            "a product not failing is left alone"
        );
        assert_eq!(
            state.products["due"].backoff.map(|b| b.next_at),
            Some(NOW - 1)
        );
    }

    #[test]
    fn warning_kinds_keep_the_words_recorded_in_state_files() {
        assert_eq!(WarningKind::Evaluation.as_str(), "evaluation");
        assert_eq!(WarningKind::NotAfter.as_str(), "not-after");
        assert_eq!(
            serde_json::to_value(WarningKind::NotAfter).expect("serializes"),
            "not-after"
        );
    }
}
