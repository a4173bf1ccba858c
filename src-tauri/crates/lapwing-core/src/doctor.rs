//! `lapctl doctor`: every check that can explain a failed activation, each one line of what
//! is wrong and what to do. Nothing secret is ever printed.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::engine::{Engine, EngineError};
use crate::policy::Policy;

/// The clock difference the server tolerates.
pub const CLOCK_TOLERANCE_SECS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Info,
    Warning,
    Problem,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. "keyring", "clock", "server acme-studio".
    pub subject: String,
    pub level: Level,
    pub message: String,
}

fn check(subject: impl Into<String>, level: Level, message: impl Into<String>) -> Check {
    Check {
        subject: subject.into(),
        level,
        message: message.into(),
    }
}

/// What to check beyond the local state.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// A time server, HOST:PORT already resolved; `None` skips the clock check (said so).
    pub sntp: Option<SocketAddr>,
    pub timeout: Duration,
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
                let mut message = format!(
                    "machine anchor from {} (read via {})",
                    facts.anchor_source, facts.anchor_path
                );
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

        match options.sntp {
            Some(server) => match self.clock_offset(server, options.timeout).await {
                Ok(offset) if offset.abs() > CLOCK_TOLERANCE_SECS => out.push(check(
                    "clock",
                    Level::Problem,
                    format!(
                        "this machine's clock is {} s {} the time server {server}: LAP servers ignore requests more than 30 s off; set the clock (enable NTP)",
                        offset.abs(),
                        if offset > 0 { "ahead of" } else { "behind" }
                    ),
                )),
                Ok(offset) => out.push(check("clock", Level::Ok, format!("within {} s of the time server {server}", offset.abs()))),
                Err(e) => out.push(check("clock", Level::Warning, format!("{e}: the clock could not be checked"))),
            },
            None => out.push(check("clock", Level::Info, "not checked (no time server given: --sntp HOST:PORT)")),
        }

        for manifest in catalog
            .products
            .values()
            .filter(|m| product.is_none_or(|id| id == m.id))
        {
            self.doctor_product(manifest, state.products.get(&manifest.id), &mut out)
                .await?;
        }
        Ok(out)
    }

    /// The checks of one product: its key, its servers, its last attempt.
    async fn doctor_product(
        &self,
        manifest: &crate::manifest::Manifest,
        saved: Option<&crate::state::ProductState>,
        out: &mut Vec<Check>,
    ) -> Result<(), EngineError> {
        let subject = format!("product {}", manifest.id);
        match self.config().secrets.get_license_key(&manifest.id) {
            Ok(Some(_)) => out.push(check(
                &subject,
                Level::Ok,
                "a license key is stored (well formed)",
            )),
            Ok(None) if manifest.evaluation_days > 0 => {
                out.push(check(
                    &subject,
                    Level::Info,
                    "no license key: running as an evaluation",
                ));
            }
            Ok(None) => out.push(check(
                &subject,
                Level::Problem,
                format!("no license key: run `lapctl key set {} KEY`", manifest.id),
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
        match discovered.candidates.first() {
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
        if let Some(attempt) = saved.and_then(|p| p.last_attempt.as_ref()) {
            let level = match attempt.outcome {
                crate::state::AttemptOutcome::Activated => Level::Ok,
                _ => Level::Problem,
            };
            let mut message = format!("last attempt: {:?}", attempt.outcome).to_lowercase();
            for (n, cause) in attempt.diagnosis.iter().enumerate() {
                let _ = write!(message, "; {}. {cause}", n + 1);
            }
            out.push(check(&subject, level, message));
        }
        Ok(())
    }
}
