//! The engine's commands: status, products, activate, key, install, uninstall, doctor. Each
//! is a thin adapter: parse, call `lapwing-core`, write (text or `--json`) to `out`.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use lapwing_core::doctor::{DoctorOptions, Level};
use lapwing_core::engine::{Engine, EngineError, KeyStored, ProductStatus};
use lapwing_core::environment::{SecretsChoice, engine_from_environment};
use lapwing_core::manifest::{Manifest, product_dirs};
use lapwing_core::shown::shown;
use lapwing_core::status::Phase;

use crate::error::exit;
use crate::keyinput::{self, KeySource};
use crate::{CliError, output};

/// Options every engine command shares.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Keep secrets in a plain file (0600) instead of the OS keyring. Anyone who can read
    /// your files can then read your license keys: only for machines without a keyring.
    #[arg(long, global = true)]
    pub insecure_file_store: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Check a key locally and store it, then activate the product. The key is read from a
    /// prompt on the terminal, from stdin when piped (`echo KEY | lapctl key set ID`), or
    /// from --key-file: never from the command line, where `ps` shows it to everyone.
    Set {
        id: String,
        /// A file holding the key; `-` reads stdin.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Refused: a key on the command line (kept only to say how to give it instead).
        #[arg(hide = true)]
        key: Option<String>,
        /// Refused, as the positional key.
        #[arg(long = "key", hide = true)]
        key_flag: Option<String>,
        /// Print the product's status after the activation as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the stored key, masked unless --reveal.
    Show {
        id: String,
        #[arg(long)]
        reveal: bool,
        #[arg(long)]
        json: bool,
    },
    /// Forget the stored key.
    Remove { id: String },
    /// Drop a new key that was not accepted yet, keeping the key in effect.
    DropPending { id: String },
}

/// The engine as configured by the environment (see `lapwing_core::environment`).
pub fn engine(args: &EngineArgs) -> Result<Engine, CliError> {
    let choice = if args.insecure_file_store {
        SecretsChoice::InsecureFile
    } else {
        SecretsChoice::Keyring
    };
    Ok(engine_from_environment(choice)?)
}

pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))
}

/// `YYYY-MM-DD` (UTC) for UNIX seconds.
fn date(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map_or_else(|| unix.to_string(), |t| t.date().to_string())
}

/// One line for a person: "Activated until 2027-03-12", "Evaluation: 9 days left", …, and
/// what became of a new key not accepted yet.
pub fn describe(status: &ProductStatus) -> String {
    let mut text = status.headline(date);
    if let Some(attempt) = &status.last_attempt
        && attempt.outcome != lapwing_core::state::AttemptOutcome::Activated
        && let Some(cause) = attempt.diagnosis.first()
    {
        let _ = write!(text, ": {cause}");
    }
    if let Some(note) = status.pending_key_note() {
        let _ = write!(text, ". {note}");
    }
    text
}

fn print_table(out: &mut dyn Write, statuses: &[ProductStatus]) -> Result<(), CliError> {
    if statuses.is_empty() {
        writeln!(out, "No product is installed.")?;
        return Ok(());
    }
    let width = statuses
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(2)
        .max(2);
    writeln!(out, "{:width$}  {:18}  STATUS", "ID", "STATE")?;
    // Ids are slugs (the manifest is refused otherwise); names, host names, the causes that
    // quote them and the server's words are outside text.
    for s in statuses {
        writeln!(
            out,
            "{:width$}  {:18}  {}",
            s.id,
            s.state.as_str(),
            shown(&describe(s))
        )?;
        if let Some(server) = &s.server {
            writeln!(
                out,
                "{:width$}  {:18}  server {} (by {})",
                "",
                "",
                shown(&server.address),
                server.source
            )?;
        }
        if !s.features.is_empty() {
            writeln!(
                out,
                "{:width$}  {:18}  features {}",
                "",
                "",
                shown(&s.features.join(", "))
            )?;
        }
        if let Some(notice) = &s.notice {
            writeln!(out, "{:width$}  {:18}  notice {}", "", "", shown(notice))?;
        }
    }
    Ok(())
}

pub fn status(args: &EngineArgs, json: bool, out: &mut dyn Write) -> Result<u8, CliError> {
    let statuses = engine(args)?.status()?;
    if json {
        output::json(out, &statuses)?;
    } else {
        print_table(out, &statuses)?;
    }
    Ok(exit::OK)
}

pub fn products(
    args: &EngineArgs,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, CliError> {
    let catalog = engine(args)?.catalog();
    // JSON keeps every name exactly: serde_json escapes control characters, and bidi
    // characters stay as the data they are (a program reading it decides how to show them).
    if json {
        let products: Vec<_> = catalog
            .products
            .values()
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "name": m.name, "vendor": m.vendor, "sku": m.sku, "addon_of": m.addon_of,
                    "evaluation_days": m.evaluation_days, "srv_domain": m.srv_domain, "address": m.address,
                    "manifest": m.file,
                })
            })
            .collect();
        let errors: Vec<_> = catalog
            .errors
            .iter()
            .map(|e| serde_json::json!({"file": e.file, "field": e.field, "reason": e.reason}))
            .collect();
        output::json(
            out,
            &serde_json::json!({"products": products, "errors": errors}),
        )?;
    } else {
        for m in catalog.products.values() {
            let addon = m
                .addon_of
                .as_ref()
                .map(|b| format!(" (add-on of {b})"))
                .unwrap_or_default();
            writeln!(
                out,
                "{}  {} by {}{addon}  [{}]",
                m.id,
                shown(&m.name),
                shown(&m.vendor),
                shown(&m.file.display().to_string())
            )?;
        }
        for e in &catalog.errors {
            writeln!(err, "lapctl: warning: {}", shown(&e.to_string()))?;
        }
    }
    Ok(exit::OK)
}

pub fn activate(
    args: &EngineArgs,
    id: Option<&str>,
    all: bool,
    server: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let engine = engine(args)?;
    let server = server
        .map(|s| {
            s.parse::<SocketAddr>().map_err(|_| {
                CliError::Usage(format!(
                    "--server {s:?}: give an IP address and port, e.g. 192.0.2.7:4711"
                ))
            })
        })
        .transpose()?;
    let ids: Vec<String> = match (id, all) {
        (Some(id), false) => vec![id.to_owned()],
        (None, true) => engine.catalog().products.into_keys().collect(),
        _ => {
            return Err(CliError::Usage("give a product id or --all".into()));
        }
    };
    let rt = runtime()?;
    // One batch: concurrent exchanges, one durable state commit for all the products.
    let results = rt.block_on(engine.activate_many(&ids, server))?;
    let mut statuses = Vec::new();
    for result in results {
        statuses.push(result?);
    }
    if json {
        output::json(out, &statuses)?;
    } else {
        print_table(out, &statuses)?;
    }
    let activated = |s: &ProductStatus| {
        matches!(s.state, Phase::Activated | Phase::Evaluation)
            && s.last_attempt
                .as_ref()
                .is_some_and(|a| a.outcome == lapwing_core::state::AttemptOutcome::Activated)
    };
    Ok(if statuses.iter().all(activated) {
        exit::OK
    } else {
        exit::NOT_ACTIVATED
    })
}

pub fn key(args: &EngineArgs, command: &KeyCommand, out: &mut dyn Write) -> Result<u8, CliError> {
    if let KeyCommand::Set { key, key_flag, .. } = command
        && (key.is_some() || key_flag.is_some())
    {
        return Err(keyinput::refused_argument());
    }
    let engine = engine(args)?;
    match command {
        KeyCommand::Set {
            id, key_file, json, ..
        } => {
            let key = KeySource::from_flag(key_file.as_deref()).read(id)?;
            let stored = match engine.set_key(id, &key) {
                Ok(stored) => stored,
                Err(EngineError::Key(e)) => {
                    let suggestions = lap_proto::license_key::suggestions(&key);
                    let mut message = format!("the key was not stored: {e}");
                    if !suggestions.is_empty() {
                        message.push_str("\ndid you mean:");
                        for s in suggestions {
                            let _ = write!(message, "\n  {}", s.to_display());
                        }
                    }
                    return Err(CliError::BadKey(message));
                }
                Err(e) => return Err(e.into()),
            };
            if !json {
                match stored {
                    KeyStored::Key => writeln!(out, "key stored for {id}; activating…")?,
                    KeyStored::Pending => writeln!(
                        out,
                        "the new key for {id} is kept as pending until the server accepts it \
                         (the key in effect stays until then); activating…"
                    )?,
                }
            }
            let status = runtime()?.block_on(engine.activate(id, None))?;
            if *json {
                output::json(out, &status)?;
            } else {
                writeln!(out, "{id}: {}", shown(&describe(&status)))?;
            }
            // The pending key is what was asked for: a renewal of the previous key is not
            // "activated" for it.
            if status.pending_key.is_some() {
                return Ok(exit::KEY_PENDING);
            }
            let ok = status
                .last_attempt
                .as_ref()
                .is_some_and(|a| a.outcome == lapwing_core::state::AttemptOutcome::Activated);
            Ok(if ok { exit::OK } else { exit::NOT_ACTIVATED })
        }
        KeyCommand::Show { id, reveal, json } => {
            let key = engine.key(id)?;
            let text = key.map(|k| if *reveal { k.to_display() } else { k.masked() });
            if *json {
                output::json(
                    out,
                    &serde_json::json!({"id": id, "key": text, "masked": !reveal}),
                )?;
            } else {
                writeln!(out, "{}", text.unwrap_or_else(|| "(no key stored)".into()))?;
            }
            Ok(exit::OK)
        }
        KeyCommand::Remove { id } => {
            engine.remove_key(id)?;
            writeln!(out, "key removed for {id}")?;
            Ok(exit::OK)
        }
        KeyCommand::DropPending { id } => {
            engine.drop_pending_key(id)?;
            writeln!(
                out,
                "no new key is pending for {id}; the key in effect stays"
            )?;
            Ok(exit::OK)
        }
    }
}

/// Where `install` puts manifests: `LAPWING_PRODUCTS_DIR`, else the per-user directory.
fn install_dir() -> Result<PathBuf, CliError> {
    product_dirs()
        .pop()
        .ok_or_else(|| CliError::Runtime("no products directory on this platform".into()))
}

/// `install`'s arguments. A key is optional (without one the product starts its evaluation,
/// if it has one) and read only when --key-file names where: a script's stdin may be an
/// inherited pipe that never ends, and a keyless install must not wait on it.
#[derive(Debug, Args)]
pub struct InstallArgs {
    #[arg(long)]
    pub manifest: PathBuf,
    /// A file holding the license key; `-` reads stdin (a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Refused: a key on the command line (kept only to say how to give it instead).
    #[arg(long, hide = true)]
    pub key: Option<String>,
}

pub fn install(
    args: &EngineArgs,
    install: &InstallArgs,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    if install.key.is_some() {
        return Err(keyinput::refused_argument());
    }
    let manifest = install.manifest.as_path();
    let parsed = Manifest::load(manifest).map_err(|e| CliError::Runtime(e.to_string()))?;
    let key = install
        .key_file
        .as_deref()
        .map(|file| KeySource::from_flag(Some(file)).read(&parsed.id))
        .transpose()?;
    let key = key.as_deref();
    if let Some(key) = key {
        // Refuse a mistyped key before anything is installed.
        lap_proto::LicenseKey::parse(key)
            .map_err(|e| CliError::BadKey(format!("the key was not accepted: {e}")))?;
    }
    let dir = install_dir()?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", dir.display())))?;
    let target = dir.join(format!("{}.toml", parsed.id));
    let text = std::fs::read(manifest)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", manifest.display())))?;
    lapwing_core::state::write_atomically(&target, &text, 0o644)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", target.display())))?;
    writeln!(
        out,
        "installed {} ({}) in {}",
        parsed.id,
        shown(&parsed.name),
        shown(&target.display().to_string())
    )?;
    let engine = engine(args)?;
    if let Some(key) = key {
        engine.set_key(&parsed.id, key)?;
    }
    let status = runtime()?.block_on(engine.activate(&parsed.id, None))?;
    writeln!(out, "{}: {}", parsed.id, shown(&describe(&status)))?;
    Ok(exit::OK)
}

pub fn uninstall(args: &EngineArgs, id: &str, out: &mut dyn Write) -> Result<u8, CliError> {
    let engine = engine(args)?;
    let manifest = engine
        .catalog()
        .products
        .remove(id)
        .ok_or_else(|| EngineError::UnknownProduct(id.to_owned()))?;
    engine.forget(id)?;
    match std::fs::remove_file(&manifest.file) {
        Ok(()) => writeln!(
            out,
            "uninstalled {id}: manifest, secrets, state and activation record removed"
        )?,
        Err(e) => writeln!(
            out,
            "forgot {id} (secrets, state, activation record); its manifest {} stays: {e} (it belongs to the product's installer)",
            shown(&manifest.file.display().to_string())
        )?,
    }
    Ok(exit::OK)
}

pub fn doctor(
    args: &EngineArgs,
    id: Option<&str>,
    sntp: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let engine = engine(args)?;
    let sntp = sntp
        .map(|s| {
            std::net::ToSocketAddrs::to_socket_addrs(s)
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| CliError::Usage(format!("--sntp {s:?}: not a reachable HOST:PORT")))
        })
        .transpose()?;
    let checks = runtime()?.block_on(engine.doctor(id, &DoctorOptions { sntp }))?;
    if json {
        output::json(out, &checks)?;
    } else {
        for c in &checks {
            writeln!(out, "{}", shown(&c.to_string()))?;
        }
    }
    Ok(if checks.iter().any(|c| c.level == Level::Problem) {
        exit::DOCTOR_PROBLEM
    } else {
        exit::OK
    })
}
