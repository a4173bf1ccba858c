//! `lapctl machine` and `lapctl machine anchor`: this machine's identity, and the root-written
//! anchor file. A thin adapter over `lapwing-machine`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use lapwing_core::hardware_move::HardwareMove;
use lapwing_core::shown::shown;
use lapwing_machine::anchor_file::{self, AnchorFileState};
use lapwing_machine::{AnchorSource, Options, SmbiosInput};

use crate::error::exit;
use crate::products::EngineArgs;
use crate::{CliError, bench, output, render};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent command-line flags"
)]
pub struct MachineArgs {
    #[command(subcommand)]
    command: Option<MachineCommand>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Read this SMBIOS dump (raw table, Windows RawSMBIOSData, dmidecode --dump-bin)
    /// instead of the live table.
    #[arg(long, value_name = "FILE")]
    smbios: Option<PathBuf>,
    /// Show raw identifiers (System UUID, serials, the EK, the OS id).
    #[arg(long)]
    show_raw: bool,
    /// The source pinned at first activation (tpm-ek, smbios-uuid, smbios-board, os-id);
    /// default: the anchor file's.
    #[arg(long, value_name = "SOURCE")]
    pin: Option<AnchorSource>,
    /// Do not consult the TPM.
    #[arg(long)]
    no_tpm: bool,
    /// How long the TPM may take, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = 2000)]
    tpm_timeout_ms: u64,
    /// Time the identity without a TPM: cold (first call in fresh processes) and warm.
    #[arg(long)]
    bench: bool,
    /// Fresh processes for the cold figure (warm calls are ten times as many).
    #[arg(long, default_value_t = 10, requires = "bench")]
    runs: u32,
    /// One cold measurement in this process (what --bench spawns).
    #[arg(long, hide = true)]
    bench_child: bool,
}

#[derive(Debug, Subcommand)]
enum MachineCommand {
    /// Show the root-written anchor file, or write it (--write, as root): the anchor digest
    /// and its source name, never raw identifiers, for users who cannot read the hardware.
    Anchor(AnchorArgs),
}

#[derive(Debug, Args)]
struct AnchorArgs {
    /// Compute the anchor from the hardware and write the file (atomically, mode 0644).
    #[arg(long)]
    write: bool,
    /// The anchor file (default: $LAPWING_ANCHOR_FILE, else /var/lib/lapwing/anchor).
    #[arg(long, value_name = "P")]
    path: Option<PathBuf>,
}

/// `lapctl machine …`: the one entry for the subcommand and its flags.
pub fn run(
    args: &MachineArgs,
    engine: &EngineArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, CliError> {
    match &args.command {
        Some(MachineCommand::Anchor(anchor)) => anchor_command(args, anchor, out, err),
        None if args.bench_child => bench::child(&options(args), out),
        None if args.bench => bench::run(&bench_request(args), &options(args), out),
        None => machine(args, engine, out, err),
    }?;
    Ok(exit::OK)
}

fn options(args: &MachineArgs) -> Options {
    let mut options = Options::from_env();
    if let Some(file) = &args.smbios {
        options.smbios = SmbiosInput::File(file.clone());
    }
    if args.no_tpm || args.bench || args.bench_child {
        options.tpm = None;
    }
    options.tpm_timeout = Duration::from_millis(args.tpm_timeout_ms);
    options.pinned = args.pin;
    options
}

fn bench_request(args: &MachineArgs) -> bench::Request<'_> {
    bench::Request {
        runs: args.runs,
        smbios: args.smbios.as_deref(),
        tpm_timeout: Duration::from_millis(args.tpm_timeout_ms),
        json: args.json,
    }
}

fn machine(
    args: &MachineArgs,
    engine: &EngineArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let identity = lapwing_machine::identify(&options(args))?;
    let report = identity.report(args.show_raw);
    let moves = hardware_moves(identity.anchor.as_ref().map(|a| &a.digest), engine, err)?;
    if args.json {
        let mut value =
            serde_json::to_value(&report).map_err(|e| CliError::Runtime(format!("JSON: {e}")))?;
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "previous_hardware".into(),
                serde_json::to_value(&moves)
                    .map_err(|e| CliError::Runtime(format!("JSON: {e}")))?,
            );
        }
        output::json(out, &value)
    } else {
        out.write_all(render::machine(&report).as_bytes())?;
        for m in &moves {
            writeln!(
                out,
                "{}: last answered for other hardware (machine hash {}…, now {}…); its next request asks the server to move the seat",
                m.id, m.previous, m.current
            )?;
        }
        Ok(())
    }
}

/// The products last answered for other hardware than `anchor`. Without an engine (no data
/// directory, a state that cannot be read) the identity is shown all the same, with a warning.
fn hardware_moves(
    anchor: Option<&[u8; 32]>,
    engine: &EngineArgs,
    err: &mut dyn Write,
) -> Result<Vec<HardwareMove>, CliError> {
    let Some(anchor) = anchor else {
        return Ok(Vec::new());
    };
    match crate::products::engine(engine).and_then(|e| Ok(e.hardware_moves(anchor)?)) {
        Ok(moves) => Ok(moves),
        Err(e) => {
            writeln!(
                err,
                "lapctl: warning: the products' previous hardware cannot be compared: {}",
                shown(&e.to_string())
            )?;
            Ok(Vec::new())
        }
    }
}

fn anchor_command(
    args: &MachineArgs,
    anchor: &AnchorArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let path = anchor
        .path
        .clone()
        .unwrap_or_else(anchor_file::default_path);
    if !anchor.write {
        let state = anchor_file::read(&path);
        let record = state.record();
        let detail = match &state {
            AnchorFileState::Corrupt(d) | AnchorFileState::Unreadable(d) => Some(d.clone()),
            _ => None,
        };
        return if args.json {
            output::json(
                out,
                &serde_json::json!({
                    "path": path.display().to_string(),
                    "state": state.name(),
                    "source": record.map(|r| r.source),
                    "digest": record.map(|r| hex::encode(r.digest)),
                    "written": record.map(|r| r.written),
                    "detail": detail,
                }),
            )
        } else {
            Ok(out.write_all(render::anchor_file(&path, &state).as_bytes())?)
        };
    }
    let mut options = Options::from_env();
    options.anchor_file = Some(path.clone());
    options.tpm_timeout = Duration::from_millis(args.tpm_timeout_ms);
    let identity = lapwing_machine::identify(&options)?;
    for warning in &identity.warnings {
        writeln!(err, "lapctl: warning: {}", shown(warning))?;
    }
    let record = lapwing_machine::anchor_record_to_write(&identity, lap_proto::time::unix_now())?;
    anchor_file::write(&path, &record)?;
    if args.json {
        return output::json(
            out,
            &serde_json::json!({
                "path": path.display().to_string(),
                "written": true,
                "source": record.source,
                "digest": hex::encode(record.digest),
                "pin": identity.selection.pin_note(),
            }),
        );
    }
    writeln!(
        out,
        "anchor written to {}: source {}{}, digest {}",
        path.display(),
        record.source,
        if record.source.is_weakest() {
            " (weakest)"
        } else {
            ""
        },
        hex::encode(record.digest)
    )?;
    if let Some(note) = identity.selection.pin_note() {
        writeln!(out, "{note}")?;
    }
    Ok(())
}
