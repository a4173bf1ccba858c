//! The engine's commands: status, products, activate, key, server, install, uninstall,
//! doctor. Each is a thin adapter: parse, call `lapwing-core`, print (text or `--json`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use lapwing_core::doctor::{DoctorOptions, Level};
use lapwing_core::engine::{Engine, EngineError, ProductStatus};
use lapwing_core::environment::{SecretsChoice, engine_from_environment};
use lapwing_core::manifest::{Manifest, product_dirs};
use lapwing_core::status::Phase;
use lapwing_secrets::SecretError;

/// Exit codes, stable for scripts (listed in `lapctl --help` and the README).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    /// `activate` ran but a product is not activated (no answer, refused, nothing to send).
    pub const NOT_ACTIVATED: u8 = 3;
    /// A license key failed its local check (length, character, check characters).
    pub const BAD_KEY: u8 = 4;
    /// The keyring is locked, missing or refused access.
    pub const KEYRING: u8 = 5;
    /// `doctor` found a problem.
    pub const DOCTOR_PROBLEM: u8 = 6;
}

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
    /// Check a key locally and store it, then activate the product.
    Set { id: String, key: String },
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
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Use HOST:PORT for one product (--product) or all.
    Set {
        #[arg(long)]
        product: Option<String>,
        server: String,
    },
    /// Go back to discovery.
    Clear {
        #[arg(long)]
        product: Option<String>,
    },
    /// The servers that would be tried, in order, and how each was found.
    Show {
        #[arg(long)]
        product: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// What failed, mapped to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Message(String, u8),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Engine(EngineError::Key(_)) => exit::BAD_KEY,
            Self::Engine(EngineError::Secrets(e))
                if !matches!(e, SecretError::InvalidProductId { .. }) =>
            {
                exit::KEYRING
            }
            Self::Engine(_) => exit::ERROR,
            Self::Message(_, code) => *code,
        }
    }
}

/// The engine as configured by the environment (see `lapwing_core::environment`).
pub fn engine(args: &EngineArgs) -> Result<Engine, CommandError> {
    let choice = if args.insecure_file_store {
        SecretsChoice::InsecureFile
    } else {
        SecretsChoice::Keyring
    };
    Ok(engine_from_environment(choice)?)
}

fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CommandError::Message(format!("cannot start the async runtime: {e}"), exit::ERROR)
        })
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// `YYYY-MM-DD` (UTC) for UNIX seconds.
fn date(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map_or_else(|| unix.to_string(), |t| t.date().to_string())
}

/// One line for a person: "Activated until 2027-03-12", "Evaluation: 9 days left", …
pub fn describe(status: &ProductStatus) -> String {
    let mut text = status.headline(date);
    if let Some(attempt) = &status.last_attempt
        && attempt.outcome != lapwing_core::state::AttemptOutcome::Activated
        && let Some(cause) = attempt.diagnosis.first()
    {
        let _ = write!(text, ": {cause}");
    }
    text
}

fn print_table(statuses: &[ProductStatus]) {
    if statuses.is_empty() {
        println!("No product is installed.");
        return;
    }
    let width = statuses
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(2)
        .max(2);
    println!("{:width$}  {:18}  STATUS", "ID", "STATE");
    for s in statuses {
        println!("{:width$}  {:18}  {}", s.id, s.state.as_str(), describe(s));
        if let Some(server) = &s.server {
            println!(
                "{:width$}  {:18}  server {} (by {})",
                "", "", server.address, server.source
            );
        }
    }
}

pub fn status(args: &EngineArgs, json: bool) -> Result<u8, CommandError> {
    let statuses = engine(args)?.status()?;
    if json {
        print_json(&statuses);
    } else {
        print_table(&statuses);
    }
    Ok(exit::OK)
}

pub fn products(args: &EngineArgs, json: bool) -> Result<u8, CommandError> {
    let catalog = engine(args)?.catalog();
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
        print_json(&serde_json::json!({"products": products, "errors": errors}));
    } else {
        for m in catalog.products.values() {
            let addon = m
                .addon_of
                .as_ref()
                .map(|b| format!(" (add-on of {b})"))
                .unwrap_or_default();
            println!(
                "{}  {} by {}{addon}  [{}]",
                m.id,
                m.name,
                m.vendor,
                m.file.display()
            );
        }
        for e in &catalog.errors {
            eprintln!("lapctl: warning: {e}");
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
) -> Result<u8, CommandError> {
    let engine = engine(args)?;
    let server = server
        .map(|s| {
            s.parse::<SocketAddr>().map_err(|_| {
                CommandError::Message(
                    format!("--server {s:?}: give an IP address and port, e.g. 192.0.2.7:4711"),
                    exit::USAGE,
                )
            })
        })
        .transpose()?;
    let ids: Vec<String> = match (id, all) {
        (Some(id), false) => vec![id.to_owned()],
        (None, true) => engine.catalog().products.into_keys().collect(),
        _ => {
            return Err(CommandError::Message(
                "give a product id or --all".into(),
                exit::USAGE,
            ));
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
        print_json(&statuses);
    } else {
        print_table(&statuses);
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

pub fn key(args: &EngineArgs, command: &KeyCommand) -> Result<u8, CommandError> {
    let engine = engine(args)?;
    match command {
        KeyCommand::Set { id, key } => {
            match engine.set_key(id, key) {
                Ok(_) => {}
                Err(EngineError::Key(e)) => {
                    let suggestions = lap_proto::license_key::suggestions(key);
                    let mut message = format!("the key was not stored: {e}");
                    if !suggestions.is_empty() {
                        message.push_str("\ndid you mean:");
                        for s in suggestions {
                            let _ = write!(message, "\n  {}", s.to_display());
                        }
                    }
                    return Err(CommandError::Message(message, exit::BAD_KEY));
                }
                Err(e) => return Err(e.into()),
            }
            println!("key stored for {id}; activating…");
            let status = runtime()?.block_on(engine.activate(id, None))?;
            println!("{id}: {}", describe(&status));
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
                print_json(&serde_json::json!({"id": id, "key": text, "masked": !reveal}));
            } else {
                println!("{}", text.unwrap_or_else(|| "(no key stored)".into()));
            }
            Ok(exit::OK)
        }
        KeyCommand::Remove { id } => {
            engine.remove_key(id)?;
            println!("key removed for {id}");
            Ok(exit::OK)
        }
    }
}

pub fn server(args: &EngineArgs, command: &ServerCommand) -> Result<u8, CommandError> {
    let engine = engine(args)?;
    match command {
        ServerCommand::Set { product, server } => {
            engine.set_server_override(product.as_deref(), Some(server))?;
            println!(
                "server {server} set for {}",
                product.as_deref().unwrap_or("every product")
            );
        }
        ServerCommand::Clear { product } => {
            engine.set_server_override(product.as_deref(), None)?;
            println!(
                "server override cleared for {}",
                product.as_deref().unwrap_or("every product")
            );
        }
        ServerCommand::Show { product, json } => {
            let ids: Vec<String> = match product {
                Some(id) => vec![id.clone()],
                None => engine.catalog().products.into_keys().collect(),
            };
            let rt = runtime()?;
            let mut out = serde_json::Map::new();
            for id in ids {
                let found = rt.block_on(engine.discover(&id))?;
                if !*json {
                    println!("{id}:");
                    for (n, c) in found.candidates.iter().enumerate() {
                        println!("  {}. {} ({}: {})", n + 1, c.address, c.source, c.detail);
                    }
                    for s in &found.skipped {
                        println!("  skipped: {s}");
                    }
                }
                out.insert(id, serde_json::to_value(&found).unwrap_or_default());
            }
            if *json {
                print_json(&out);
            }
        }
    }
    Ok(exit::OK)
}

/// Where `install` puts manifests: `LAPWING_PRODUCTS_DIR`, else the per-user directory.
fn install_dir() -> Result<PathBuf, CommandError> {
    product_dirs().pop().ok_or_else(|| {
        CommandError::Message("no products directory on this platform".into(), exit::ERROR)
    })
}

pub fn install(args: &EngineArgs, manifest: &Path, key: Option<&str>) -> Result<u8, CommandError> {
    let parsed =
        Manifest::load(manifest).map_err(|e| CommandError::Message(e.to_string(), exit::ERROR))?;
    if let Some(key) = key {
        // Refuse a mistyped key before anything is installed.
        lap_proto::LicenseKey::parse(key).map_err(|e| {
            CommandError::Message(format!("the key was not accepted: {e}"), exit::BAD_KEY)
        })?;
    }
    let dir = install_dir()?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| CommandError::Message(format!("{}: {e}", dir.display()), exit::ERROR))?;
    let target = dir.join(format!("{}.toml", parsed.id));
    let text = std::fs::read(manifest)
        .map_err(|e| CommandError::Message(format!("{}: {e}", manifest.display()), exit::ERROR))?;
    lapwing_core::state::write_atomically(&target, &text, 0o644)
        .map_err(|e| CommandError::Message(format!("{}: {e}", target.display()), exit::ERROR))?;
    println!(
        "installed {} ({}) in {}",
        parsed.id,
        parsed.name,
        target.display()
    );
    let engine = engine(args)?;
    if let Some(key) = key {
        engine.set_key(&parsed.id, key)?;
    }
    let status = runtime()?.block_on(engine.activate(&parsed.id, None))?;
    println!("{}: {}", parsed.id, describe(&status));
    Ok(exit::OK)
}

pub fn uninstall(args: &EngineArgs, id: &str) -> Result<u8, CommandError> {
    let engine = engine(args)?;
    let manifest = engine
        .catalog()
        .products
        .remove(id)
        .ok_or_else(|| EngineError::UnknownProduct(id.to_owned()))?;
    engine.forget(id)?;
    match std::fs::remove_file(&manifest.file) {
        Ok(()) => {
            println!("uninstalled {id}: manifest, secrets, state and activation record removed");
        }
        Err(e) => println!(
            "forgot {id} (secrets, state, activation record); its manifest {} stays: {e} (it belongs to the product's installer)",
            manifest.file.display()
        ),
    }
    Ok(exit::OK)
}

pub fn doctor(
    args: &EngineArgs,
    id: Option<&str>,
    sntp: Option<&str>,
    json: bool,
) -> Result<u8, CommandError> {
    let engine = engine(args)?;
    let sntp = sntp
        .map(|s| {
            std::net::ToSocketAddrs::to_socket_addrs(s)
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    CommandError::Message(
                        format!("--sntp {s:?}: not a reachable HOST:PORT"),
                        exit::USAGE,
                    )
                })
        })
        .transpose()?;
    let checks = runtime()?.block_on(engine.doctor(
        id,
        &DoctorOptions {
            sntp,
            timeout: Duration::from_secs(2),
        },
    ))?;
    if json {
        print_json(&checks);
    } else {
        for c in &checks {
            let mark = match c.level {
                Level::Ok => "ok     ",
                Level::Info => "info   ",
                Level::Warning => "warning",
                Level::Problem => "PROBLEM",
            };
            println!("{mark}  {}: {}", c.subject, c.message);
        }
    }
    Ok(if checks.iter().any(|c| c.level == Level::Problem) {
        exit::DOCTOR_PROBLEM
    } else {
        exit::OK
    })
}
