//! `lapctl`: Lapwing's command line, for scripts and admins: everything the tray can do.
//! A thin adapter over `lapwing-core` (the engine) and `lapwing-machine`.
//!
//! One path: `main` parses, `run` dispatches and writes everything through the writers it is
//! given, and `main` prints an error once and exits with the error's code.

mod bench;
mod error;
mod keyinput;
mod lifecycle;
mod machine;
mod output;
mod products;
mod render;
mod server;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use error::CliError;
use error::exit;

/// Lapwing's command line: activate the licensed software installed on this machine.
#[derive(Debug, Parser)]
#[command(
    name = "lapctl",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success; 1 runtime error (one line on stderr); 2 usage error; \
                  3 a product is not activated after `activate`/`key set`; 4 license key refused \
                  locally; 5 keyring locked or unavailable; 6 `doctor` found a problem; 7 `key set` kept \
                  the new key pending (not accepted yet; the previous key stays in effect); 8 `deactivate`: \
                  the server kept the seat (the activation stays); 9 `deactivate`: no answer, nothing \
                  changed; 10 `sunset import`: the grant was refused, nothing changed."
)]
struct Cli {
    #[command(flatten)]
    engine: products::EngineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every product's status (state, verdict, end, server and how it was found, last attempt).
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
        /// Use this HOST:PORT for this run only, instead of discovery (read as `server set`
        /// reads it: a host name, an IPv4 or a bracketed IPv6 address).
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
    Server(server::ServerCommand),
    /// What a product's installer calls: place its manifest, store the key, activate.
    Install(products::InstallArgs),
    /// Deactivate a product on this computer: ask its server to free the seat for another
    /// computer (--anyway: here only; the seat stays taken until its lease runs out).
    Deactivate(lifecycle::DeactivateArgs),
    /// The vendor's final release: import a sunset grant for a product.
    #[command(subcommand)]
    Sunset(lifecycle::SunsetCommand),
    /// Forget a product: its manifest, secrets, state and activation record.
    Uninstall { id: String },
    /// Check everything that can make an activation fail, one line each.
    Doctor {
        id: Option<String>,
        /// A time server HOST:PORT (UDP, SNTP) to measure this machine's clock with (default:
        /// the machine policy's `[clock] time_server`, else the system's NTP server).
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
    Machine(machine::MachineArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version print to stdout and exit 0; usage errors say why and exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE));
        }
    };
    if std::env::var_os("LAPWING_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("LAPWING_LOG"))
            .init();
    }
    let mut out = output::Quiet::new(io::stdout().lock());
    let mut err = output::Quiet::new(io::stderr());
    let result = run(cli, &mut out, &mut err).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            // An error may quote outside text (a manifest's words, a host name); its own line
            // breaks (the key suggestions) stay.
            let text = error.to_string();
            let lines: Vec<_> = text.lines().map(lapwing_core::shown::shown).collect();
            let _ = writeln!(err, "lapctl: error: {}", lines.join("\n"));
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs one command line. Everything the command prints goes to `out` (and warnings to
/// `err`); the caller prints the error, once.
fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<ExitCode, CliError> {
    let engine = &cli.engine;
    let code = match cli.command {
        Command::Status { json } => products::status(engine, json, out)?,
        Command::Products { json } => products::products(engine, json, out, err)?,
        Command::Activate {
            id,
            all,
            server,
            json,
        } => products::activate(engine, id.as_deref(), all, server.as_deref(), json, out)?,
        Command::Key(command) => products::key(engine, &command, out)?,
        Command::Server(command) => server::run(engine, &command, out)?,
        Command::Install(args) => products::install(engine, &args, out)?,
        Command::Uninstall { id } => products::uninstall(engine, &id, out)?,
        Command::Deactivate(args) => lifecycle::deactivate(engine, &args, out)?,
        Command::Sunset(command) => lifecycle::sunset(engine, &command, out)?,
        Command::Doctor { id, sntp, json } => {
            products::doctor(engine, id.as_deref(), sntp.as_deref(), json, out)?
        }
        Command::Completions { shell } => {
            // clap_complete panics when a write fails: it writes into memory, we write out.
            let mut script = Vec::new();
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "lapctl", &mut script);
            out.write_all(&script)?;
            exit::OK
        }
        Command::Man { out: dir } => {
            std::fs::create_dir_all(&dir)
                .and_then(|()| {
                    clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), &dir)
                })
                .map_err(|e| {
                    CliError::Runtime(format!("writing man pages to {}: {e}", dir.display()))
                })?;
            exit::OK
        }
        Command::Machine(args) => machine::run(&args, engine, out, err)?,
    };
    Ok(ExitCode::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_line(args: &[&str]) -> (Result<ExitCode, CliError>, String, String) {
        let cli = Cli::try_parse_from(args).expect("parses");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = run(cli, &mut out, &mut err);
        (
            result,
            String::from_utf8(out).expect("UTF-8"),
            String::from_utf8(err).expect("UTF-8"),
        )
    }

    #[test]
    fn what_a_command_prints_goes_to_the_writer_it_is_given() {
        let (result, out, err) = run_line(&["lapctl", "completions", "bash"]);
        assert_eq!(result.ok(), Some(ExitCode::SUCCESS));
        assert!(out.contains("_lapctl()"), "{out}");
        assert_eq!(err, "");

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("anchor");
        let path = path.to_str().expect("UTF-8");
        let (result, out, _) = run_line(&["lapctl", "machine", "anchor", "--json", "--path", path]);
        assert_eq!(result.ok(), Some(ExitCode::SUCCESS));
        let status: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(status["state"], "missing");
    }

    #[test]
    fn a_failure_is_returned_not_printed() {
        let (result, out, err) = run_line(&["lapctl", "machine", "--smbios", "/nonexistent/dump"]);
        let error = result.expect_err("no such dump");
        assert_eq!(error.exit_code(), exit::ERROR);
        assert_eq!((out.as_str(), err.as_str()), ("", ""));
    }

    #[test]
    fn a_key_given_as_an_argument_is_refused_without_repeating_it() {
        for line in [
            &["lapctl", "key", "set", "acme", "ABCD-EFGH"][..],
            &["lapctl", "key", "set", "acme", "--key", "ABCD-EFGH"],
            &[
                "lapctl",
                "install",
                "--manifest",
                "/nonexistent",
                "--key",
                "ABCD-EFGH",
            ],
        ] {
            let (result, out, err) = run_line(line);
            let error = result.expect_err("refused");
            assert_eq!(error.exit_code(), exit::USAGE, "{line:?}");
            let message = error.to_string();
            assert!(message.contains("--key-file"), "{message}");
            assert!(!message.contains("ABCD-EFGH"), "{message}");
            assert_eq!((out.as_str(), err.as_str()), ("", ""));
        }
    }
}
