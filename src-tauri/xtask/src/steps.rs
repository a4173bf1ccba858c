//! Running the commands' steps: each external program echoed and checked, each titled step
//! timed, and the one error type a failed step ends with.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::paths::root;

/// A failed step: what was run and how it ended.
#[derive(Debug)]
pub struct StepError(String);

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T = ()> = std::result::Result<T, StepError>;

pub fn fail(message: impl Into<String>) -> StepError {
    StepError(message.into())
}

/// Runs a command in the repository root, echoing it, failing on a non-zero exit.
pub fn cmd(program: &str, args: &[&str]) -> Result {
    run_in(&root(), program, args, &[])
}

pub fn run_in(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Result {
    println!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| fail(format!("cannot start {program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "`{program} {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// Runs a titled step and reports its duration.
pub fn step(title: &str, body: impl FnOnce() -> Result) -> Result {
    println!("\n=== {title}");
    let started = Instant::now();
    let result = body();
    println!(
        "=== {title}: {} in {:.1} s",
        if result.is_ok() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    result
}

pub fn has_cargo_subcommand(name: &str) -> bool {
    Command::new("cargo")
        .args([name, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}
