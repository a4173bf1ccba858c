//! `lapctl machine --bench`: how long computing the identity takes without a TPM, cold (the
//! first call in a fresh process, as the tray app and `lapctl` pay it) and warm (repeated
//! calls), against the 50 ms budget; and the TPM's EK read when one is reachable.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lapwing_machine::{EkMethod, Options, TpmState, TpmTarget};
use serde::Serialize;

use crate::{CliError, output};

/// The budget for the identity without a TPM.
const BUDGET: Duration = Duration::from_millis(50);

/// What `--bench` was asked for beyond the identity's options: the flags it passes on to its
/// timed children and how it reports.
#[derive(Debug)]
pub struct Request<'a> {
    /// Fresh processes for the cold figure (warm calls are ten times as many).
    pub runs: u32,
    /// The SMBIOS dump the timed children read instead of the live table.
    pub smbios: Option<&'a Path>,
    /// How long each TPM EK read may take.
    pub tpm_timeout: Duration,
    /// Print JSON instead of a table.
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Figures {
    runs: usize,
    min_ms: f64,
    median_ms: f64,
    max_ms: f64,
}

impl Figures {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Self {
            runs: samples.len(),
            min_ms: samples.first().map_or(0.0, |d| ms(*d)),
            median_ms: samples.get(samples.len() / 2).map_or(0.0, |d| ms(*d)),
            max_ms: samples.last().map_or(0.0, |d| ms(*d)),
        }
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:.2} ms (min {:.2}, max {:.2}; {} runs)",
            self.median_ms, self.min_ms, self.max_ms, self.runs
        )
    }
}

#[derive(Debug, Serialize)]
struct BenchReport {
    /// The first identity call in a fresh process, timed inside it.
    cold_identity: Figures,
    /// The whole fresh process (exec, dynamic linking, the call, exit).
    cold_process: Figures,
    warm_identity: Figures,
    budget_ms: f64,
    within_budget: bool,
    tpm: TpmBench,
}

#[derive(Debug, Serialize)]
struct TpmBench {
    via: String,
    state: &'static str,
    ek_read: Option<Figures>,
}

/// Times one identity in this (fresh) process and prints the nanoseconds.
pub fn child(options: &Options, out: &mut dyn Write) -> Result<(), CliError> {
    let start = Instant::now();
    let identity = lapwing_machine::identify(options)?;
    let elapsed = start.elapsed();
    std::hint::black_box(&identity);
    Ok(writeln!(out, "{}", elapsed.as_nanos())?)
}

pub fn run(request: &Request<'_>, options: &Options, out: &mut dyn Write) -> Result<(), CliError> {
    let runs = usize::try_from(request.runs.max(1)).unwrap_or(1);
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Runtime(format!("cannot find lapctl's own path: {e}")))?;
    let mut child_args = vec!["machine".to_owned(), "--bench-child".to_owned()];
    if let Some(file) = request.smbios {
        child_args.push("--smbios".to_owned());
        child_args.push(file.display().to_string());
    }
    let mut cold_identity = Vec::with_capacity(runs);
    let mut cold_process = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let timed = Command::new(&exe)
            .args(&child_args)
            .output()
            .map_err(|e| CliError::Runtime(format!("cannot run {}: {e}", exe.display())))?;
        cold_process.push(start.elapsed());
        if !timed.status.success() {
            return Err(CliError::Runtime(format!(
                "the timed child failed: {}",
                String::from_utf8_lossy(&timed.stderr).trim()
            )));
        }
        let nanos: u64 = String::from_utf8_lossy(&timed.stdout)
            .trim()
            .parse()
            .map_err(|_| CliError::Runtime("the timed child printed no figure".to_owned()))?;
        cold_identity.push(Duration::from_nanos(nanos));
    }
    lapwing_machine::identify(options)?;
    let mut warm = Vec::with_capacity(runs * 10);
    for _ in 0..runs * 10 {
        let start = Instant::now();
        let identity = lapwing_machine::identify(options)?;
        warm.push(start.elapsed());
        std::hint::black_box(&identity);
    }
    let target = TpmTarget::from_env();
    let timeout = request.tpm_timeout;
    let first = lapwing_machine::tpm::read_ek(&target, EkMethod::Auto, timeout);
    let ek_read = matches!(first.state, TpmState::Present(_)).then(|| {
        let mut samples = vec![first.elapsed];
        for _ in 0..4 {
            samples.push(lapwing_machine::tpm::read_ek(&target, EkMethod::Auto, timeout).elapsed);
        }
        Figures::of(samples)
    });
    let cold_identity = Figures::of(cold_identity);
    let warm_identity = Figures::of(warm);
    let report = BenchReport {
        within_budget: cold_identity.max_ms <= BUDGET.as_secs_f64() * 1000.0
            && warm_identity.max_ms <= BUDGET.as_secs_f64() * 1000.0,
        cold_identity,
        cold_process: Figures::of(cold_process),
        warm_identity,
        budget_ms: BUDGET.as_secs_f64() * 1000.0,
        tpm: TpmBench {
            via: target.to_string(),
            state: first.state.name(),
            ek_read,
        },
    };
    if request.json {
        return output::json(out, &report);
    }
    let tpm = match &report.tpm.ek_read {
        Some(figures) => format!("TPM EK read via {}: {figures}", report.tpm.via),
        None => format!(
            "TPM via {}: {} (no EK read to time)",
            report.tpm.via, report.tpm.state
        ),
    };
    Ok(write!(
        out,
        "identity without a TPM (budget {:.0} ms)\n\
         \x20 cold, first call in a fresh process  {}\n\
         \x20 cold, whole process                  {}\n\
         \x20 warm, repeated calls                 {}\n\
         \x20 within budget                        {}\n\
         {tpm}\n",
        report.budget_ms,
        report.cold_identity,
        report.cold_process,
        report.warm_identity,
        if report.within_budget { "yes" } else { "NO" },
    )?)
}
