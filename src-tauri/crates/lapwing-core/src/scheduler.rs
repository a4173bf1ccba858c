//! What is due when: renewals, retries and warnings, computed from the state and the clock.
//! The engine sleeps until the earliest deadline (no polling) and wakes early when the state
//! or the manifests change.

use serde::Serialize;

use crate::engine::{Engine, EngineError, ProductStatus};
use crate::manifest::Manifest;
use crate::policy::{EVALUATION_DISABLED, Policy};
use crate::schedule::{due_warning, next_warning_at, renew_at};
use crate::state::{AttemptOutcome, ProductState, State};
use crate::status::{Phase, evaluation_end};

/// Something the person should hear about (the tray turns these into notifications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// An end is coming: NotAfter, or the end of an evaluation.
    Warning {
        product: String,
        name: String,
        what: String,
        ends_at: u64,
        label: String,
    },
    /// Activated again after failed attempts.
    Recovered { product: String, name: String },
    /// An attempt failed in a way the person must act on (no key, evaluation over, …).
    NeedsAttention {
        product: String,
        name: String,
        reason: String,
    },
}

/// When the product next needs an activation attempt, if ever.
pub fn activation_due_at(manifest: &Manifest, product: &ProductState, now: u64) -> Option<u64> {
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
/// attempt sends nothing); after that nothing is due until a key is entered.
pub fn activation_due_under(
    policy: &Policy,
    manifest: &Manifest,
    product: &ProductState,
    now: u64,
) -> Option<u64> {
    if !policy.evaluation.allowed && !product.has_key {
        let told = product.last_attempt.as_ref().is_some_and(|a| {
            a.outcome == AttemptOutcome::NotSent
                && a.diagnosis.first().map(String::as_str) == Some(EVALUATION_DISABLED)
        });
        return (manifest.evaluation_days > 0 && !told).then_some(now);
    }
    activation_due_at(manifest, product, now)
}

/// The end a product's warnings count towards, and what it is called. An evaluation the
/// policy forbids has no end to warn about: the product is unlicensed.
fn warning_end(
    policy: &Policy,
    manifest: &Manifest,
    product: &ProductState,
) -> Option<(&'static str, u64)> {
    match &product.grant {
        Some(grant) if !grant.without_key => grant.not_after.map(|end| ("not-after", end)),
        _ if !policy.evaluation.allowed => None,
        _ => evaluation_end(manifest, product).map(|end| ("evaluation", end)),
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
                .and_then(|(what, end)| next_warning_at(what, end, now, &p.warnings_sent));
            [activation_due_under(policy, m, p, now), warning]
        })
        .flatten()
        .min()
}

impl Engine {
    fn installed_with_state(&self) -> Result<(Vec<(Manifest, ProductState)>, State), EngineError> {
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
                if let Some(warning) = due_warning(what, end, now, &product.warnings_sent) {
                    product.warnings_sent.extend(warning.covers.iter().cloned());
                    events.push(Event::Warning {
                        product: manifest.id.clone(),
                        name: manifest.name.clone(),
                        what: what.to_owned(),
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
    if needs_person && newly {
        let reason = status
            .last_attempt
            .as_ref()
            .and_then(|a| a.diagnosis.first().cloned())
            .unwrap_or_else(|| status.state.as_str().to_owned());
        return vec![Event::NeedsAttention {
            product: manifest.id.clone(),
            name: manifest.name.clone(),
            reason,
        }];
    }
    Vec::new()
}

/// Each sleep is cut at this length: the monotonic clock that timers use stands still while
/// a laptop is suspended, so a long sleep could oversleep a renewal by the length of the
/// suspend. Waking every 15 minutes at most bounds that, at no measurable cost.
pub const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Engine {
    /// Runs until `shutdown` completes: does what is due, then sleeps until the next
    /// deadline, waking early when a products directory or the state file changes (a
    /// product installed, `lapctl` at work). Events go to `events`.
    pub async fn run(
        &self,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
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
                Some(at) if at <= now => {
                    std::time::Duration::from_secs(crate::schedule::RETRY_FAST)
                }
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
