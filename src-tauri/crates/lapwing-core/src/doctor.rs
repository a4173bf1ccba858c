//! `lapctl doctor`: every check that can explain a failed activation, each one line of what
//! is wrong and what to do. Nothing secret is ever printed.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::Serialize;

use crate::cause::{Cause, span};
use crate::clock_check::ClockReport;
use crate::engine::ProductStatus;
use crate::engine::{Engine, EngineError};
use crate::policy::Policy;
use crate::status::Phase;
use crate::time_mark::moved_back_by;
use crate::verdict::{Verdict, outcome_words, product_verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Info,
    Warning,
    Problem,
}

impl Level {
    /// The mark a report shows for the level: a problem shouts.
    pub fn mark(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Problem => "PROBLEM",
        }
    }
}

/// A product's verdict as a doctor's level: the one verdict decides how loud a product's
/// checks may be, so doctor never shouts PROBLEM about a product every other summary calls
/// usable, nor says ok about one they call broken.
impl From<Verdict> for Level {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::AllGood => Self::Ok,
            Verdict::Working => Self::Info,
            Verdict::Attention => Self::Warning,
            Verdict::Broken => Self::Problem,
        }
    }
}

/// The mark, padded when a width is given (`{:7}` lines the marks up).
impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.mark())
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. "keyring", "clock", "server acme-studio".
    pub subject: String,
    pub level: Level,
    pub message: String,
}

/// The finding's report line, as `lapctl doctor` and the tray's diagnostics show it: the mark
/// in a column of its own, then what was checked and what was found.
impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:7}  {}: {}", self.level, self.subject, self.message)
    }
}

fn check(subject: impl Into<String>, level: Level, message: impl Into<String>) -> Check {
    Check {
        subject: subject.into(),
        level,
        message: message.into(),
    }
}

/// What to check beyond the local state.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    /// A time server to measure the clock against, HOST:PORT already resolved; `None` asks
    /// the machine policy's `[clock] time_server`, else the system's.
    pub sntp: Option<SocketAddr>,
}

/// The clock check's report line.
fn clock_line(report: &ClockReport) -> Check {
    let system = match &report.synchronized {
        Ok(true) => "the system says it is synchronized with network time".to_owned(),
        Ok(false) => "the system says it is NOT synchronized with network time".to_owned(),
        Err(e) => format!("the system's synchronization is unknown ({e})"),
    };
    match report.cause() {
        Cause::ClockOff {
            offset_secs,
            server,
        } => check(
            "clock",
            Level::Problem,
            format!(
                "this machine's clock is {} {} the time server {server}: LAP servers ignore requests more than 30 s off; set the clock (turn network time on); {system}",
                span(offset_secs.unsigned_abs()),
                if offset_secs > 0 {
                    "ahead of"
                } else {
                    "behind"
                }
            ),
        ),
        Cause::ClockRight {
            offset_secs,
            server,
        } => check(
            "clock",
            Level::Ok,
            format!(
                "within {} of the time server {server}; {system}",
                span(offset_secs.unsigned_abs())
            ),
        ),
        Cause::ClockSynchronized => {
            let measured = match &report.measured {
                Some((server, Err(e))) => format!("; not measured: {server}: {e}"),
                _ => "; not measured (no time server named: `[clock] time_server` in the machine policy, or --sntp HOST:PORT)".to_owned(),
            };
            check("clock", Level::Ok, format!("{system}{measured}"))
        }
        other => check(
            "clock",
            Level::Warning,
            format!(
                "could not be checked: {}",
                match other {
                    Cause::ClockNotChecked { reason } => reason,
                    other => other.to_string(),
                }
            ),
        ),
    }
}

impl Engine {
    /// Runs every check, for one product or all.
    pub async fn doctor(
        &self,
        product: Option<&str>,
        options: &DoctorOptions,
    ) -> Result<Vec<Check>, EngineError> {
        let mut out = Vec::new();
        let catalog = self.catalog();
        for error in &catalog.errors {
            out.push(check(
                "manifest",
                Level::Problem,
                format!("{error}: fix or remove the file"),
            ));
        }
        if let Some(id) = product
            && !catalog.products.contains_key(id)
        {
            return Err(EngineError::UnknownProduct(id.to_owned()));
        }
        if catalog.products.is_empty() {
            out.push(check(
                "products",
                Level::Warning,
                "no product is installed (no manifest in the products directories)",
            ));
        }

        let store = self.config().secrets.as_ref();
        match lapwing_secrets::probe(store) {
            Ok(()) => out.push(check(
                "keyring",
                Level::Ok,
                format!("{} works", store.describe()),
            )),
            Err(e) => out.push(check("keyring", Level::Problem, e.to_string())),
        }

        match Policy::load(&self.config().policy_path) {
            Ok(policy) => {
                if let Some(address) = policy.server.address {
                    let lock = if policy.server.locked { ", locked" } else { "" };
                    out.push(check(
                        "policy",
                        Level::Info,
                        format!("the machine policy sets the server {address}{lock}"),
                    ));
                }
                if !policy.evaluation.allowed {
                    out.push(check(
                        "policy",
                        Level::Info,
                        "the machine policy disables evaluations: every product needs a license key".to_owned(),
                    ));
                }
                if !policy.notifications.enabled {
                    out.push(check(
                        "policy",
                        Level::Info,
                        "the machine policy turns desktop notifications off".to_owned(),
                    ));
                } else if !policy.notifications.warnings {
                    out.push(check(
                        "policy",
                        Level::Info,
                        "the machine policy turns warnings before an end off".to_owned(),
                    ));
                }
            }
            Err(e) => out.push(check(
                "policy",
                Level::Problem,
                format!("{e}: ask your administrator"),
            )),
        }

        let lock = self.state_store().lock()?;
        let (state, _) = self.state_store().load(&lock)?;
        drop(lock);
        match self.config().identity.read(state.pinned_anchor.as_deref()) {
            Ok(facts) => {
                let level = if facts.weak {
                    Level::Warning
                } else {
                    Level::Ok
                };
                // The OS id is not hardware: say where it was read, not the path's name.
                let read = match (facts.anchor_path.as_str(), facts.weak) {
                    ("anchor-file", _) => "from the anchor file",
                    (_, true) => "read from the operating system",
                    (_, false) => "read from the hardware",
                };
                let mut message = format!("machine anchor from {}, {read}", facts.anchor_source);
                if facts.weak {
                    message.push_str(": the OS id changes on reinstall; run `sudo lapctl machine anchor --write` for a hardware anchor");
                }
                if facts.virtual_machine {
                    message.push_str("; this is a virtual machine: clones share its identity");
                }
                out.push(check("machine", level, message));
            }
            Err(e) => out.push(check("machine", Level::Problem, e.to_string())),
        }

        out.extend(self.clock_checks(options, &state).await);

        let statuses = self.status()?;
        let now = self.config().clock.now();
        for manifest in catalog
            .products
            .values()
            .filter(|m| product.is_none_or(|id| id == m.id))
        {
            let Some(status) = statuses.iter().find(|s| s.id == manifest.id) else {
                continue;
            };
            let mut checks = Vec::new();
            let saved = state.products.get(&manifest.id);
            self.doctor_product(manifest, status, saved, &mut checks)
                .await?;
            out.extend(bounded_by_verdict(status, now, checks));
        }
        Ok(out)
    }

    /// The clock: what the checks found, and whether it is behind a time already seen.
    async fn clock_checks(
        &self,
        options: &DoctorOptions,
        state: &crate::state::State,
    ) -> Vec<Check> {
        // A broken policy is reported above; the clock is still checked, with the defaults.
        let policy = Policy::load(&self.config().policy_path).unwrap_or_default();
        let report = self
            .check_clock(&policy, options.sntp.map(|s| s.to_string()))
            .await;
        let mut out = vec![clock_line(&report)];
        let now = self.config().clock.now();
        if let Some(by) = moved_back_by(state, now) {
            // Every product's verdict is "needs attention" then (`verdict::Reason::ClockMovedBack`).
            out.push(check(
                "clock",
                Level::from(Verdict::Attention),
                format!(
                    "{} behind a time already seen (a server's answer or an earlier run): nothing is sent until the clock is set right",
                    span(by)
                ),
            ));
        }
        out
    }

    /// The checks of one product: its key, its servers, its last attempt.
    async fn doctor_product(
        &self,
        manifest: &crate::manifest::Manifest,
        status: &ProductStatus,
        saved: Option<&crate::state::ProductState>,
        out: &mut Vec<Check>,
    ) -> Result<(), EngineError> {
        let subject = format!("product {}", manifest.id);
        match status.state {
            Phase::Sunset => {
                // The vendor's servers are gone: keys, servers and attempts say nothing more.
                out.push(check(
                    &subject,
                    Level::Ok,
                    "activated for good by the vendor's final release (sunset grant, verified): no renewal is needed",
                ));
                return Ok(());
            }
            Phase::Deactivated => out.push(check(
                &subject,
                Level::Info,
                format!(
                    "deactivated on this computer: nothing is renewed until `lapctl activate {}`",
                    manifest.id
                ),
            )),
            _ => {}
        }
        if status.duplicate {
            out.push(check(
                &subject,
                Level::Warning,
                crate::product_status::DUPLICATE_NOTE,
            ));
        }
        if status.moved_from_previous_hardware {
            out.push(check(
                &subject,
                Level::Info,
                "moved to new hardware: the server moved this computer's seat from its previous hardware",
            ));
        }
        match self.config().secrets.get_license_key(&manifest.id) {
            Ok(Some(_)) => out.push(check(
                &subject,
                Level::Ok,
                "a license key is stored (well formed)",
            )),
            Ok(None) if status.state == Phase::Evaluation => {
                out.push(check(
                    &subject,
                    Level::Info,
                    "no license key: running as an evaluation",
                ));
            }
            Ok(None) => out.push(check(
                &subject,
                Level::Problem,
                format!(
                    "no license key: run `lapctl key set {}` (it asks for the key)",
                    manifest.id
                ),
            )),
            Err(e) => out.push(check(&subject, Level::Problem, e.to_string())),
        }
        let discovered = self.discover(&manifest.id).await?;
        for skipped in &discovered.skipped {
            out.push(check(
                &subject,
                Level::Warning,
                format!("server lookup: {skipped}"),
            ));
        }
        let last_attempt = status.last_attempt.as_ref();
        let silent_override = |address: &str| {
            last_attempt.is_some_and(|a| {
                a.diagnosis.iter().any(
                    |c| matches!(c, Cause::OverrideSilent { address: silent } if silent == address),
                )
            })
        };
        match discovered.candidates.first() {
            // The override the person set did not answer last time: not fine, whatever
            // answered instead.
            Some(c)
                if c.source == lapwing_discovery::ServerSource::Override
                    && silent_override(&c.address.to_string()) =>
            {
                out.push(check(
                    &subject,
                    Level::Warning,
                    format!(
                        "server {} (override) did not answer at the last attempt: correct it, or clear it with `lapctl server clear{}`",
                        c.address,
                        saved
                            .and_then(|p| p.server_override.as_ref())
                            .map_or(String::new(), |_| format!(" --product {}", manifest.id))
                    ),
                ));
            }
            Some(c) => out.push(check(
                &subject,
                Level::Ok,
                format!(
                    "server {} found by {} ({} candidate(s) in all)",
                    c.address,
                    c.source,
                    discovered.candidates.len()
                ),
            )),
            None => out.push(check(
                &subject,
                Level::Problem,
                format!(
                    "no server found: set one with `lapctl server set --product {} HOST:PORT`",
                    manifest.id
                ),
            )),
        }
        if let Some(attempt) = last_attempt {
            let level = match attempt.outcome {
                // Activated, but something on the way did not answer (an override).
                crate::state::AttemptOutcome::Activated if !attempt.diagnosis.is_empty() => {
                    Level::Warning
                }
                crate::state::AttemptOutcome::Activated => Level::Ok,
                _ => Level::Problem,
            };
            let mut message = format!("last attempt: {}", outcome_words(attempt.outcome));
            for (n, cause) in attempt.diagnosis.iter().enumerate() {
                let _ = write!(message, "; {}. {cause}", n + 1);
            }
            out.push(check(&subject, level, message));
        }
        Ok(())
    }
}

/// Whether the checks found a problem: `lapctl doctor` then exits with 6. For a product
/// that is only when its verdict is "not usable" (see [`bounded_by_verdict`]).
pub fn has_problem(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.level == Level::Problem)
}

/// A product's checks under its verdict: first the verdict itself (its level and reason),
/// then each check no louder than the verdict allows: a product the verdict calls usable
/// gets no PROBLEM (a missing server is a warning until it is needed), and only a broken one
/// can make `lapctl doctor` exit with a problem.
pub fn bounded_by_verdict(status: &ProductStatus, now: u64, checks: Vec<Check>) -> Vec<Check> {
    let verdict = product_verdict(status, now);
    let ceiling = Level::from(verdict.verdict);
    let subject = format!("product {}", status.id);
    let mut out = vec![check(
        &subject,
        ceiling,
        format!("{}: {}", verdict.verdict.words(), verdict.reason),
    )];
    out.extend(checks.into_iter().map(|mut c| {
        if c.level > ceiling && c.level == Level::Problem {
            c.level = ceiling.max(Level::Warning);
        }
        c
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_line_their_marks_up() {
        let lines: Vec<String> = [Level::Ok, Level::Info, Level::Warning, Level::Problem]
            .into_iter()
            .map(|level| check("clock", level, "said so").to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "ok       clock: said so",
                "info     clock: said so",
                "warning  clock: said so",
                "PROBLEM  clock: said so",
            ]
        );
    }
}
