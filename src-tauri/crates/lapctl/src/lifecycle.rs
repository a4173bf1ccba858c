//! Licenses that move (profile 1.1, §9): `deactivate` and `sunset import`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use lapwing_core::engine::{DeactivateOptions, Deactivation};
use lapwing_core::shown::shown;

use crate::error::exit;
use crate::products::{EngineArgs, describe, engine, runtime};
use crate::{CliError, output};

/// `lapctl deactivate`.
#[derive(Debug, Args)]
pub struct DeactivateArgs {
    /// The product.
    pub id: String,
    /// Also forget the license key (kept otherwise, to activate again later).
    #[arg(long)]
    pub remove_key: bool,
    /// Ask no server: deactivate here only. The seat stays taken on the server until its
    /// lease runs out.
    #[arg(long)]
    pub anyway: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SunsetCommand {
    /// Verify a vendor's sunset grant with the product's server key and keep it: the product
    /// is then activated for good, with no renewals.
    Import {
        id: String,
        /// The grant, as the vendor published it (`<id>.sunset.json`).
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// The exit code of a deactivation (see `exit`).
fn deactivation_code(deactivation: &Deactivation) -> u8 {
    match deactivation {
        Deactivation::Released | Deactivation::DeactivatedHere => exit::OK,
        Deactivation::Kept { .. } => exit::DEACTIVATE_KEPT,
        Deactivation::Unanswered { .. } => exit::DEACTIVATE_UNANSWERED,
    }
}

pub fn deactivate(
    args: &EngineArgs,
    what: &DeactivateArgs,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let engine = engine(args)?;
    let options = DeactivateOptions {
        remove_key: what.remove_key,
        anyway: what.anyway,
    };
    let deactivation = runtime()?.block_on(engine.deactivate(&what.id, options))?;
    let status = engine.product_status(&what.id)?;
    if what.json {
        output::json(
            out,
            &serde_json::json!({"deactivation": deactivation, "status": status}),
        )?;
    } else {
        writeln!(out, "{}", shown(&deactivation.sentence(&status.name)))?;
        writeln!(out, "{}: {}", status.id, shown(&describe(&status)))?;
    }
    Ok(deactivation_code(&deactivation))
}

pub fn sunset(
    args: &EngineArgs,
    command: &SunsetCommand,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let SunsetCommand::Import { id, file, json } = command;
    let engine = engine(args)?;
    let status = engine.import_sunset(id, file)?;
    if *json {
        output::json(out, &status)?;
    } else {
        writeln!(out, "{}: {}", status.id, shown(&describe(&status)))?;
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_deactivation_has_its_documented_exit_code() {
        let cases = [
            (Deactivation::Released, 0),
            (Deactivation::DeactivatedHere, 0),
            (Deactivation::Kept { notice: None }, 8),
            (Deactivation::Unanswered { cause: None }, 9),
        ];
        for (deactivation, code) in cases {
            assert_eq!(deactivation_code(&deactivation), code, "{deactivation:?}");
        }
    }
}
