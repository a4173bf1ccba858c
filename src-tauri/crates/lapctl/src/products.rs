//! The engine's commands: status, products, activate, key, install, uninstall, doctor. Each
//! is a thin adapter: parse, call `lapwing-core`, write (text or `--json`) to `out`.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use lapwing_core::doctor::{DoctorOptions, has_problem};
use lapwing_core::engine::{Engine, EngineError, KeyStored, ProductStatus};
use lapwing_core::environment::{SecretsChoice, engine_from_environment};
use lapwing_core::manifest::{Manifest, product_dirs};
use lapwing_core::product_status::{base_first, statuses_base_first};
use lapwing_core::shown::shown;
use lapwing_core::state::AttemptOutcome;
use lapwing_core::status::Phase;
use lapwing_core::verdict::{BatchResult, judged, product_verdict};

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

/// One line for a person: "Activated until 2027-03-12", "Evaluation: 9 days left", …,
/// with the first cause of a failed attempt, or what went wrong on the way to a successful
/// one (an override that did not answer) and the server that answered instead; and what
/// became of a new key not accepted yet.
pub fn describe(status: &ProductStatus) -> String {
    let mut text = status.headline(date);
    if let Some(attempt) = &status.last_attempt
        && let Some(cause) = attempt.diagnosis.first()
    {
        let _ = write!(text, ": {cause}");
        if attempt.outcome == AttemptOutcome::Activated
            && let Some(server) = &attempt.server
        {
            let _ = write!(
                text,
                "; activated through {} (by {})",
                server.address, server.source
            );
        }
    }
    if let Some(note) = status.pending_key_note() {
        let _ = write!(text, ". {note}");
    }
    if let Some(note) = status.lifecycle_note() {
        let _ = write!(text, ". {note}");
    }
    text
}

/// Where a product stands after an attempt, as the STATE column says it and as the exit
/// code of `activate` and `key set` counts it: one value, so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The phase, when the last attempt succeeded (or none was made).
    Phase(Phase),
    /// The last attempt failed; an earlier grant still stands until its end.
    NotRenewed,
    /// The last attempt failed and nothing was ever granted (an evaluation counted locally
    /// is not an activation until a server grants it).
    NotActivated,
}

impl Standing {
    pub fn of(status: &ProductStatus) -> Self {
        let failed = status
            .last_attempt
            .as_ref()
            .is_some_and(|a| a.outcome != AttemptOutcome::Activated);
        match status.state {
            Phase::Activated | Phase::RenewalDue | Phase::Evaluation if failed => {
                if status.license_id.is_some() {
                    Self::NotRenewed
                } else {
                    Self::NotActivated
                }
            }
            phase => Self::Phase(phase),
        }
    }

    /// The STATE column's word.
    pub fn word(self) -> &'static str {
        match self {
            Self::Phase(phase) => phase.as_str(),
            Self::NotRenewed => "not-renewed",
            Self::NotActivated => "not-activated",
        }
    }

    /// Whether the exit code says activated (0) rather than not activated (3).
    pub fn activated(self) -> bool {
        matches!(
            self,
            Self::Phase(Phase::Activated | Phase::RenewalDue | Phase::Evaluation | Phase::Sunset)
        )
    }
}

pub fn print_table(
    out: &mut dyn Write,
    statuses: &[ProductStatus],
    now: u64,
) -> Result<(), CliError> {
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
    writeln!(
        out,
        "{:width$}  {:18}  {:15}  STATUS",
        "ID", "STATE", "VERDICT"
    )?;
    // Ids are slugs (the manifest is refused otherwise); names, host names, the causes that
    // quote them and the server's words are outside text.
    for s in statuses {
        writeln!(
            out,
            "{:width$}  {:18}  {:15}  {}",
            s.id,
            Standing::of(s).word(),
            product_verdict(s, now).verdict.words(),
            shown(&describe(s))
        )?;
        if let Some(server) = &s.server {
            writeln!(
                out,
                "{:width$}  {:18}  {:15}  server {} (by {})",
                "",
                "",
                "",
                shown(&server.address),
                server.source
            )?;
        }
        if !s.features.is_empty() {
            writeln!(
                out,
                "{:width$}  {:18}  {:15}  features {}",
                "",
                "",
                "",
                shown(&s.features.join(", "))
            )?;
        }
        if let Some(notice) = &s.notice {
            writeln!(
                out,
                "{:width$}  {:18}  {:15}  notice {}",
                "",
                "",
                "",
                shown(notice)
            )?;
        }
    }
    Ok(())
}

pub fn status(args: &EngineArgs, json: bool, out: &mut dyn Write) -> Result<u8, CliError> {
    let engine = engine(args)?;
    let statuses = statuses_base_first(&engine.status()?);
    let now = engine.config().clock.now();
    if json {
        output::json(out, &judged(&statuses, now))?;
    } else {
        print_table(out, &statuses, now)?;
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
    let all: Vec<&Manifest> = catalog.products.values().collect();
    let manifests = base_first(&all, |m| &m.id, |m| m.addon_of.as_deref());
    // JSON keeps every name exactly: serde_json escapes control characters, and bidi
    // characters stay as the data they are (a program reading it decides how to show them).
    if json {
        let products: Vec<_> = manifests
            .iter()
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
        for m in &manifests {
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

/// `--server HOST:PORT` as `server set` reads it (a host name, an IPv4 or a bracketed IPv6
/// address), refused alike (exit code 2, the same sentence), then resolved to one address
/// (a name that does not resolve is a runtime error, exit code 1).
pub fn server_address(text: &str) -> Result<SocketAddr, CliError> {
    let parsed = lapwing_discovery::parse_host_port(text)
        .map_err(|e| CliError::Engine(EngineError::Server(e.to_string())))?;
    match parsed.host {
        lapwing_discovery::Host::Ip(ip) => Ok(SocketAddr::new(ip, parsed.port)),
        lapwing_discovery::Host::Name(ref name) => {
            std::net::ToSocketAddrs::to_socket_addrs(&(name.trim_end_matches('.'), parsed.port))
                .ok()
                .and_then(|mut found| found.next())
                .ok_or_else(|| {
                    CliError::Runtime(format!(
                        "--server {parsed}: the host name does not resolve to an address"
                    ))
                })
        }
    }
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
    let server = server.map(server_address).transpose()?;
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
    let statuses = statuses_base_first(&statuses);
    let now = engine.config().clock.now();
    if json {
        output::json(out, &judged(&statuses, now))?;
    } else {
        print_table(out, &statuses, now)?;
        if all {
            // Counted from each attempt's outcome, as the tray's "Activate all" says it.
            writeln!(out, "{}", shown(&BatchResult::of(&statuses).sentence()))?;
        }
    }
    Ok(if statuses.iter().all(|s| Standing::of(s).activated()) {
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
            Ok(if Standing::of(&status).activated() {
                exit::OK
            } else {
                exit::NOT_ACTIVATED
            })
        }
        KeyCommand::Show { id, reveal, json } => {
            let key = engine.key(id)?;
            let text = key.map(|k| if *reveal { k.to_display() } else { k.masked() });
            // The key shown is the one in effect; a new key not accepted yet is only said,
            // never shown (it may be another product's, typed by mistake).
            let pending = engine.product_status(id)?.pending_key_note();
            if *json {
                output::json(
                    out,
                    &serde_json::json!({"id": id, "key": text, "masked": !reveal, "pending": pending}),
                )?;
            } else {
                writeln!(out, "{}", text.unwrap_or_else(|| "(no key stored)".into()))?;
                if let Some(note) = pending {
                    writeln!(out, "{}", shown(&note))?;
                }
            }
            Ok(exit::OK)
        }
        KeyCommand::Remove { id } => {
            // Said as it was: a second remove finds nothing to remove.
            let had_key = engine.key(id)?.is_some();
            engine.remove_key(id)?;
            if had_key {
                writeln!(out, "key removed for {id}")?;
            } else {
                writeln!(out, "no key was stored for {id}: nothing removed")?;
            }
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
    Ok(if has_problem(&checks) {
        exit::DOCTOR_PROBLEM
    } else {
        exit::OK
    })
}

#[cfg(test)]
mod server_address_tests {
    use super::*;

    #[test]
    fn activate_reads_a_server_as_server_set_does() {
        assert_eq!(
            server_address("192.0.2.7:4711").expect("an address"),
            "192.0.2.7:4711".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(
            server_address("[2001:db8::1]:4711")
                .expect("an address")
                .port(),
            4711
        );
        assert!(server_address("localhost:4711").is_ok_and(|a| a.ip().is_loopback()));
        for bad in ["lap.example", "lap.example:99999", "[::1]", ""] {
            let error = server_address(bad).expect_err(bad);
            assert_eq!(error.exit_code(), exit::USAGE, "{bad}");
            let said = lapwing_discovery::parse_host_port(bad)
                .expect_err(bad)
                .to_string();
            assert_eq!(error.to_string(), said, "the same sentence as `server set`");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapwing_core::cause::Cause;
    use lapwing_core::state::{Attempt, ServerSource, ServerUsed};

    fn status(state: Phase, granted: bool, outcome: Option<AttemptOutcome>) -> ProductStatus {
        ProductStatus {
            id: "acme".into(),
            name: "Acme".into(),
            vendor: "Acme".into(),
            state,
            license_id: granted.then(|| lap_proto::Uuid::from_u128(1)),
            has_key: true,
            last_attempt: outcome.map(|outcome| Attempt {
                at: 0,
                outcome,
                diagnosis: vec![Cause::Unreachable { tried: Vec::new() }],
                server: None,
            }),
            ..ProductStatus::default()
        }
    }

    /// The STATE column and the exit code come from one value: a column that says a
    /// product is activated never goes with exit code 3, and the other way round.
    #[test]
    fn the_state_column_and_the_exit_code_agree() {
        let phases = [
            Phase::Unlicensed,
            Phase::Evaluation,
            Phase::EvaluationExpired,
            Phase::Activated,
            Phase::RenewalDue,
            Phase::Expired,
        ];
        let outcomes = [
            None,
            Some(AttemptOutcome::Activated),
            Some(AttemptOutcome::NoAnswer),
            Some(AttemptOutcome::RejectedAnswer),
            Some(AttemptOutcome::NotSent),
        ];
        for phase in phases {
            for granted in [false, true] {
                for outcome in outcomes {
                    let standing = Standing::of(&status(phase, granted, outcome));
                    let says_activated =
                        matches!(standing.word(), "activated" | "evaluation" | "renewal-due");
                    assert_eq!(
                        says_activated,
                        standing.activated(),
                        "{phase:?}, granted {granted}, {outcome:?}: {}",
                        standing.word()
                    );
                }
            }
        }
        // The case a person met: the server stopped, the earlier grant stands, exit 3.
        let stopped = status(Phase::Activated, true, Some(AttemptOutcome::NoAnswer));
        assert_eq!(Standing::of(&stopped).word(), "not-renewed");
        assert!(!Standing::of(&stopped).activated());
        let never = status(Phase::Evaluation, false, Some(AttemptOutcome::NoAnswer));
        assert_eq!(Standing::of(&never).word(), "not-activated");
        let fine = status(Phase::Activated, true, Some(AttemptOutcome::Activated));
        assert_eq!(Standing::of(&fine).word(), "activated");
        assert!(Standing::of(&fine).activated());
    }

    #[test]
    fn an_activation_past_a_silent_override_says_so_and_names_the_server_that_answered() {
        let mut s = status(Phase::Activated, true, Some(AttemptOutcome::Activated));
        if let Some(attempt) = &mut s.last_attempt {
            attempt.diagnosis = vec![Cause::OverrideSilent {
                address: "192.0.2.7:4711".into(),
            }];
            attempt.server = Some(ServerUsed {
                address: "127.0.0.1:4711".into(),
                source: ServerSource::Manifest,
            });
        }
        assert_eq!(
            describe(&s),
            "Activated: the server override 192.0.2.7:4711 did not answer: correct it, or clear it to use the product's servers (`lapctl server clear`); activated through 127.0.0.1:4711 (by manifest)"
        );
    }
}
