//! `lapctl`: Lapwing's command line, for scripts and admins: everything the tray can do.
//! A thin adapter over `lapwing-core` (the engine) and `lapwing-machine`.

mod bench;
mod products;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use lapwing_machine::anchor_file::{self, AnchorFileState};
use lapwing_machine::{AnchorSource, MachineError, Options, SmbiosInput};

/// Lapwing's command line: activate the licensed software installed on this machine.
#[derive(Debug, Parser)]
#[command(
    name = "lapctl",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success; 1 runtime error (one line on stderr); 2 usage error; \
                  3 a product is not activated after `activate`/`key set`; 4 license key refused \
                  locally; 5 keyring locked or unavailable; 6 `doctor` found a problem."
)]
struct Cli {
    #[command(flatten)]
    engine: products::EngineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every product's status (state, end, server and how it was found, last attempt).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The installed products (manifests) and the manifests refused.
    Products {
        #[arg(long)]
        json: bool,
    },
    /// Activate (or renew) now.
    Activate {
        /// The product; or --all.
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// Use this IP:PORT for this run only, instead of discovery.
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Enter, show or remove a product's license key.
    #[command(subcommand)]
    Key(products::KeyCommand),
    /// Set, clear or show the server override (per product or for all).
    #[command(subcommand)]
    Server(products::ServerCommand),
    /// What a product's installer calls: place its manifest, store the key, activate.
    Install {
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        key: Option<String>,
    },
    /// Forget a product: its manifest, secrets, state and activation record.
    Uninstall { id: String },
    /// Check everything that can make an activation fail, one line each.
    Doctor {
        id: Option<String>,
        /// A time server HOST:PORT (UDP, SNTP) to compare this machine's clock with.
        #[arg(long)]
        sntp: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Write the manual pages (lapctl.1 and one per subcommand) into a directory: what the
    /// packages ship, generated from these very definitions so they cannot drift.
    #[command(hide = true)]
    Man {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// This machine's identity: anchor sources and their verdicts, the chosen anchor and its
    /// digest, TPM, SMBIOS, CPU counts, VM flag. Raw identifiers only with --show-raw.
    Machine(MachineArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent command-line flags"
)]
struct MachineArgs {
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

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error("{0}")]
    Runtime(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if std::env::var_os("LAPWING_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("LAPWING_LOG"))
            .init();
    }
    let engine_result = match &cli.command {
        Command::Status { json } => Some(products::status(&cli.engine, *json)),
        Command::Products { json } => Some(products::products(&cli.engine, *json)),
        Command::Activate {
            id,
            all,
            server,
            json,
        } => Some(products::activate(
            &cli.engine,
            id.as_deref(),
            *all,
            server.as_deref(),
            *json,
        )),
        Command::Key(command) => Some(products::key(&cli.engine, command)),
        Command::Server(command) => Some(products::server(&cli.engine, command)),
        Command::Install { manifest, key } => {
            Some(products::install(&cli.engine, manifest, key.as_deref()))
        }
        Command::Uninstall { id } => Some(products::uninstall(&cli.engine, id)),
        Command::Doctor { id, sntp, json } => Some(products::doctor(
            &cli.engine,
            id.as_deref(),
            sntp.as_deref(),
            *json,
        )),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "lapctl", &mut std::io::stdout());
            Some(Ok(products::exit::OK))
        }
        Command::Machine(_) | Command::Man { .. } => None,
    };
    if let Some(result) = engine_result {
        return match result {
            Ok(code) => ExitCode::from(code),
            Err(error) => {
                eprintln!("lapctl: error: {error}");
                ExitCode::from(error.exit_code())
            }
        };
    }
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lapctl: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Machine(args) => match &args.command {
            Some(MachineCommand::Anchor(anchor)) => anchor_command(&args, anchor),
            None if args.bench_child => bench::child(&machine_options(&args)),
            None if args.bench => bench::run(&args, &machine_options(&args)),
            None => machine(&args),
        },
        Command::Man { out } => std::fs::create_dir_all(&out)
            .and_then(|()| clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), &out))
            .map_err(|e| CliError::Runtime(format!("writing man pages to {}: {e}", out.display()))),
        // Handled in main: they report their own exit codes.
        _ => Ok(()),
    }
}

fn machine_options(args: &MachineArgs) -> Options {
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

fn machine(args: &MachineArgs) -> Result<(), CliError> {
    let identity = lapwing_machine::identify(&machine_options(args))?;
    let report = identity.report(args.show_raw);
    if args.json {
        emit(&(to_json(&report)? + "\n"))
    } else {
        emit(&render::machine(&report))
    }
}

/// Writes to stdout; a reader that went away (`lapctl machine | head`) is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Runtime(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value).map_err(|e| CliError::Runtime(format!("JSON: {e}")))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn anchor_command(args: &MachineArgs, anchor: &AnchorArgs) -> Result<(), CliError> {
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
            emit(
                &(to_json(&serde_json::json!({
                    "path": path.display().to_string(),
                    "state": state.name(),
                    "source": record.map(|r| r.source),
                    "digest": record.map(|r| hex::encode(r.digest)),
                    "written": record.map(|r| r.written),
                    "detail": detail,
                }))? + "\n"),
            )
        } else {
            emit(&render::anchor_file(&path, &state))
        };
    }
    let mut options = Options::from_env();
    options.anchor_file = Some(path.clone());
    options.tpm_timeout = Duration::from_millis(args.tpm_timeout_ms);
    let identity = lapwing_machine::identify(&options)?;
    for warning in &identity.warnings {
        eprintln!("lapctl: warning: {warning}");
    }
    let record = lapwing_machine::anchor_record_to_write(&identity, unix_now())?;
    anchor_file::write(&path, &record)?;
    if args.json {
        emit(
            &(to_json(&serde_json::json!({
                "path": path.display().to_string(),
                "written": true,
                "source": record.source,
                "digest": hex::encode(record.digest),
                "pin": identity.selection.pin_note(),
            }))? + "\n"),
        )
    } else {
        let mut text = format!(
            "anchor written to {}: source {}{}, digest {}\n",
            path.display(),
            record.source,
            if record.source.is_weakest() {
                " (weakest)"
            } else {
                ""
            },
            hex::encode(record.digest)
        );
        if let Some(note) = identity.selection.pin_note() {
            text.push_str(&note);
            text.push('\n');
        }
        emit(&text)
    }
}
