//! `lapd`: the reference LAP server's command line.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lap_proto::{LicenseKey, LicenseKind, ServerPublicKeys, Uuid};
use lapd::catalog::{LicenseCatalog, NewLicense, add_license, license_kind};
use lapd::ratelimit::RateLimiter;
use lapd::rules::Profile;
use lapd::server::{Server, bind, run, sweep_leases_periodically, watch_catalog};
use lapd::store::{DbLocation, Store};
use lapd::{bench, keys};
use serde::Deserialize;

/// The reference License Activation Protocol server.
///
/// Exit codes: 0 success, 1 runtime error (message on stderr), 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "lapd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the server's X25519 and Ed25519 keys (secret files 0600, public `server.toml`).
    Keygen {
        /// Directory to write the keys into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace existing keys: products provisioned with the old ones stop activating.
        #[arg(long)]
        force: bool,
    },
    /// Serve LAP on UDP. Prints the bound address as the first line on stdout.
    Serve(ServeArgs),
    /// Manage licenses in a catalog.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Check a catalog file and print a summary.
    CheckCatalog { catalog: PathBuf },
    /// Send one activation request and print what the server grants (or why it may be silent).
    Probe(ProbeArgs),
    /// Load-test a running lapd with pre-built valid requests; prints responses/s and latency.
    Bench(BenchArgs),
    /// Manage the seat database: schema migrations, importing a SQLite file into PostgreSQL.
    #[command(subcommand)]
    Db(DbCommand),
    /// See and free seats (for a support desk); works while `serve` runs on the same database.
    #[command(subcommand)]
    Seats(SeatsCommand),
    /// Write a sunset grant: the vendor's exit, valid on every machine for good (profile §9).
    Sunset(SunsetArgs),
    /// Print the DNS records that let desktops find this server with no address typed: SRV
    /// and DNS-SD as BIND zone lines, and the same as dnsmasq options.
    Dns {
        /// The domain desktops search (their search domain, or the manifest's srv_domain).
        #[arg(long)]
        domain: String,
        /// Where this lapd answers, IP:PORT (as `serve --listen`, but a real address).
        #[arg(long)]
        listen: SocketAddr,
        /// The host name to publish for it (default: lap.<domain>).
        #[arg(long)]
        host: Option<String>,
    },
    /// Pools (profile §10): on a vendor's server, the intermediates holding seats of each
    /// pool license; on an intermediate, the state of its own pools.
    #[command(subcommand)]
    Pools(PoolsCommand),
}

#[derive(Debug, Subcommand)]
enum PoolsCommand {
    /// (Vendor) each pool license, each intermediate: seats granted and in use, last contact.
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        json: bool,
    },
    /// (Intermediate) each pool this lapd serves from: seats, in use, end, renewal, warnings.
    Status {
        /// The `serve` config file with the `[upstream]` section.
        #[arg(long)]
        config: PathBuf,
        /// Seconds added to this machine's clock (as `serve --time-offset`).
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        time_offset: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SeatsCommand {
    /// List seats: id, license, machine hash prefix, first and last seen, generation, state.
    List {
        #[command(flatten)]
        db: DbArg,
        /// Only this license, by its reference (the non-secret name `lapd` logs; see
        /// --key-file to name it by its key).
        #[arg(long, value_name = "REF", conflicts_with_all = ["key_file", "sku"])]
        license: Option<String>,
        /// Only the license whose key is in this file (`-` for stdin).
        #[arg(long, value_name = "FILE", conflicts_with = "sku")]
        key_file: Option<PathBuf>,
        /// Only the licenses of this SKU (from the catalog) and its evaluations.
        #[arg(long)]
        sku: Option<Uuid>,
        /// The catalog (for --sku and each license's lease); default: the --config's.
        #[arg(long)]
        catalog: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Free one seat by its id (from `seats list`); logged as a transfer of its license.
    Release {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, value_name = "ID")]
        seat: u64,
    },
}

#[derive(Debug, Args)]
struct SunsetArgs {
    /// Directory written by `lapd keygen`: the grant is signed with the server's key.
    #[arg(long)]
    keys: PathBuf,
    #[arg(long)]
    sku: Uuid,
    /// A feature to grant (repeatable).
    #[arg(long = "feature")]
    features: Vec<String>,
    /// The products' AssetKey, hex (it is in the published grant; never printed).
    #[arg(long, value_name = "HEX")]
    asset_key: Option<String>,
    /// Where to write the grant (JSON; Lapwing reads `<id>.sunset.json` next to a manifest).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Bring the database's schema forward to this lapd's (never back); `serve` does the same
    /// when it starts.
    Migrate(DbArg),
    /// Copy every seat of a SQLite file into another database (PostgreSQL), keeping each
    /// machine's LicenseId; seats already there stay as they are, so it can be run again.
    Import {
        /// The SQLite file `lapd serve --db` used.
        #[arg(long, value_name = "FILE")]
        from: String,
        #[command(flatten)]
        to: DbArg,
    },
    /// Add made-up seats (for benchmarks: `lapd bench --machines filled`).
    #[command(hide = true)]
    Fill {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        seats: u64,
        /// The license (a key file, `-` for stdin) that every tenth seat is taken under.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
}

/// The database a `db` command works on.
#[derive(Debug, Args)]
struct DbArg {
    /// A SQLite file or a postgres:// URL (`--to` for `import`).
    #[arg(
        long,
        alias = "to",
        value_name = "DB",
        required_unless_present = "config"
    )]
    db: Option<String>,
    /// Or the `db` of a `serve` config file (keeps a password off the command line).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Who to ask and what for: shared by `probe` and `bench`.
#[derive(Debug, Args)]
struct Target {
    /// The server, HOST:PORT.
    #[arg(long)]
    server: SocketAddr,
    /// The server's public keys: its `server.toml` (or any file with that `[server]` table).
    #[arg(long)]
    public: PathBuf,
    #[arg(long)]
    sku: Uuid,
    /// A file holding a license key for that SKU (`-` reads stdin); without one,
    /// evaluations are asked for. Never the key itself: `ps` shows arguments to everyone.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Refused: a key on the command line (kept only to say how to give it instead).
    #[arg(long, hide = true)]
    key: Option<String>,
    /// Ask as an add-on installation (the SKU must be an add-on).
    #[arg(long)]
    addon: bool,
}

#[derive(Debug, Args)]
struct ProbeArgs {
    #[command(flatten)]
    target: Target,
    /// A 32-byte machine hash in hex (default: random, which takes a new seat).
    #[arg(long)]
    machine: Option<String>,
    #[arg(long, default_value_t = 3)]
    attempts: u32,
    /// Milliseconds to wait for each attempt's answer.
    #[arg(long, default_value_t = 1000)]
    wait_ms: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// A TOML file with any of: listen, keys, catalog, db, threads, rate_limit, burst,
    /// profile, lease_sweep_secs, and an `[upstream]` section that makes this lapd a
    /// customer's intermediate server (admin guide). Flags given on the command line win;
    /// relative paths are relative to the file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:4711 or [::]:4711; port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory written by `lapd keygen`.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Catalog TOML (SKUs and licenses); reloaded when it changes.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Where seats are kept: a SQLite file (created if missing) or a PostgreSQL URL,
    /// `postgres://USER@HOST/DB` (put one with a password in --config, not here).
    #[arg(long)]
    db: Option<String>,
    /// Sockets sharing the port, each served by 16 threads; 0 means one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Requests per second allowed from one source address; 0 turns limiting off.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Requests one source may send at once before the rate applies.
    #[arg(long)]
    burst: Option<u32>,
    /// Seconds added to this machine's clock (for tests and demos that play with time).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    time_offset: i64,
    /// The profile spoken: 1.1 (releases, moves, leases, Duplicate) or 1.0 (Room ignored:
    /// a server of before the lifecycle, for clients' tests).
    #[arg(long, value_name = "1.0|1.1")]
    profile: Option<String>,
    /// Seconds between sweeps freeing seats past their lease; 0 sweeps never (seats are
    /// still freed when their license is full and a new machine asks).
    #[arg(long, value_name = "SECS")]
    lease_sweep_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    listen: Option<SocketAddr>,
    keys: Option<PathBuf>,
    catalog: Option<PathBuf>,
    db: Option<String>,
    threads: Option<usize>,
    rate_limit: Option<u32>,
    burst: Option<u32>,
    profile: Option<String>,
    lease_sweep_secs: Option<u64>,
    /// Makes this lapd a customer's intermediate server (profile §10; see `upstream`).
    upstream: Option<lapd::upstream::UpstreamConfig>,
}

const DEFAULT_RATE_LIMIT: u32 = 20;
/// Leases count in days: an hourly sweep frees a seat within the hour it runs out.
const DEFAULT_LEASE_SWEEP_SECS: u64 = 3_600;
const DEFAULT_BURST: u32 = 40;

#[derive(Debug, Subcommand)]
enum LicenseCommand {
    /// Add a license with a fresh key to the catalog and print the key.
    New {
        #[arg(long)]
        catalog: PathBuf,
        #[arg(long)]
        sku: Uuid,
        /// perpetual, term or subscription (default: perpetual, or term when --days is given).
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 1)]
        seats: u32,
        /// Term in days from the license's first activation.
        #[arg(long)]
        days: Option<u32>,
        /// A feature to grant (repeatable).
        #[arg(long = "feature")]
        features: Vec<String>,
        /// Text shown to the user (at most 200 bytes).
        #[arg(long)]
        notice: Option<String>,
        /// Releases and moves to other hardware allowed per year (default: no limit).
        #[arg(long)]
        transfers_per_year: Option<u32>,
        /// Days a seat that is not renewed stays taken (default: the profile's lease, 90 days
        /// past the last answer's end, or 180 days past the last answer without one).
        #[arg(long)]
        seat_lease_days: Option<u32>,
        /// A pool for customers' intermediate servers (profile §10): its seats are granted to
        /// intermediates only, never to desktops. Not with --days.
        #[arg(long)]
        pool: bool,
        /// Print a JSON object with `key` and `key_hex`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    target: Target,
    /// Requests per second in total; 0 sends as fast as answers arrive.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Clients (sockets) sending in parallel, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Requests built before the run, each sent once (lapd drops a repeated request as a
    /// replay); 0: enough for --rate (or 15,000/s) over the run. More are built as needed.
    #[arg(long, default_value_t = 0)]
    requests: usize,
    /// Who asks: `one` (a random machine, then the same one: a returning machine), `new` (a
    /// new machine each request: each takes a seat), or `filled:N` (returning machines of a
    /// database that `lapd db fill --seats N` made).
    #[arg(long, default_value = "one")]
    machines: String,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Catalog(#[from] lapd::catalog::CatalogError),
    #[error(transparent)]
    Store(#[from] lapd::store::StoreError),
    #[error(transparent)]
    Bench(#[from] bench::BenchError),
    #[error(transparent)]
    Probe(#[from] lapd::probe::ProbeError),
    #[error(transparent)]
    KeyFile(#[from] lapd::keyfile::KeyFileError),
    #[error(transparent)]
    Sunset(#[from] lapd::sunset::SunsetError),
    #[error(transparent)]
    Upstream(#[from] lapd::upstream::UpstreamError),
    /// Not the key's text: the error line can end up in logs.
    #[error(
        "a license key is never given on the command line (every user can read it in `ps`): {}",
        lapd::keyfile::HOW
    )]
    KeyArgument,
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAPD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lapd: error: {error}");
            match error {
                // A usage error, as clap's own; the other usage errors keep their 1.
                CliError::KeyArgument => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Keygen { out, force } => {
            let keys = keys::generate(&out, force)?;
            print!("{}", keys::public_snippet(&keys));
            eprintln!(
                "lapd: keys written to {} (secret files are mode 0600)",
                out.display()
            );
            Ok(())
        }
        Command::Serve(args) => serve(args),
        Command::License(LicenseCommand::New {
            catalog,
            sku,
            kind,
            seats,
            days,
            features,
            notice,
            transfers_per_year,
            seat_lease_days,
            pool,
            json,
        }) => {
            let kind = match kind.as_deref() {
                None if days.is_some() => LicenseKind::Term,
                None => LicenseKind::Perpetual,
                Some(word) => license_kind(word).ok_or_else(|| {
                    CliError::Usage(format!(
                        "--kind {word:?}: use perpetual, term or subscription"
                    ))
                })?,
            };
            let key = LicenseKey::generate(|| {
                let mut bytes = [0u8; 16];
                // A failing OS RNG is unrecoverable; all-zero would be refused as a license key.
                getrandom::fill(&mut bytes).expect("the operating system's random source");
                bytes
            });
            let new = NewLicense {
                sku,
                kind,
                seats,
                days,
                features,
                notice,
                transfers_per_year,
                seat_lease_days,
                pool,
            };
            add_license(&catalog, &new, &key)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "key": key.to_display(),
                        "key_hex": hex::encode(key.as_bytes()),
                        "sku": sku,
                        "kind": kind.as_str(),
                        "seats": seats,
                        "days": days,
                    })
                );
            } else {
                println!("{}", key.to_display());
            }
            Ok(())
        }
        Command::CheckCatalog { catalog } => {
            let loaded = LicenseCatalog::load(&catalog)?;
            println!(
                "{}: {} SKUs, {} licenses: OK",
                catalog.display(),
                loaded.skus().count(),
                loaded.licenses().count()
            );
            Ok(())
        }
        Command::Probe(args) => probe(&args),
        Command::Bench(args) => bench(&args),
        Command::Db(command) => db(command),
        Command::Seats(command) => seats(command),
        Command::Sunset(args) => sunset(args),
        Command::Pools(command) => pools(command),
        Command::Dns {
            domain,
            listen,
            host,
        } => {
            print!(
                "{}",
                lapd::dns::records(&domain, listen, host.as_deref()).map_err(CliError::Usage)?
            );
            Ok(())
        }
    }
}

fn pools(command: PoolsCommand) -> Result<(), CliError> {
    let now = lap_proto::time::unix_now();
    match command {
        PoolsCommand::List { db, json } => {
            let store = existing_db(&db)?;
            let lines = lapd::pool_listing::list(store.as_ref(), now)?;
            if json {
                println!("{}", serde_json::to_string(&lines).unwrap_or_default());
            } else {
                print!("{}", lapd::pool_listing::table(&lines));
            }
        }
        PoolsCommand::Status {
            config,
            time_offset,
            json,
        } => {
            let (file, base) = read_serve_file(&config)?;
            let upstream = file
                .upstream
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "{}: no [upstream] section: this lapd is no intermediate",
                        config.display()
                    ))
                })?
                .resolved(base.as_deref())?;
            let state = lapd::upstream::StateFile::load(&upstream.state_path())?;
            // Seats in use, when the seat database and catalog can be read.
            let catalog = file
                .catalog
                .map(|p| resolve(base.as_deref(), p))
                .and_then(|p| LicenseCatalog::load(&p).ok());
            let store = file
                .db
                .map(|text| DbLocation::parse(&text, base.as_deref()))
                .filter(|location| !matches!(location, DbLocation::Sqlite(p) if !p.exists()))
                .and_then(|location| Store::open(&location).ok());
            let now = now.saturating_add_signed(time_offset);
            let lines = lapd::pool_listing::status(&upstream, &state, now, |sku| {
                match (&catalog, &store) {
                    (Some(catalog), Some(store)) => {
                        Some(lapd::upstream::Upstream::in_use(catalog, store, sku, now))
                    }
                    _ => None,
                }
            });
            if json {
                println!("{}", serde_json::to_string(&lines).unwrap_or_default());
            } else {
                print!("{}", lapd::pool_listing::status_table(&lines));
            }
        }
    }
    Ok(())
}

/// The database of a `seats` command: never a new, empty SQLite file made by a typo.
fn existing_db(arg: &DbArg) -> Result<Box<dyn lapd::store::SeatStore>, CliError> {
    let location = db_location(arg)?;
    if let DbLocation::Sqlite(path) = &location
        && !path.exists()
    {
        return Err(CliError::Usage(format!(
            "--db {}: no such file",
            path.display()
        )));
    }
    Ok(location.open()?)
}

fn seats(command: SeatsCommand) -> Result<(), CliError> {
    let now = lap_proto::time::unix_now();
    match command {
        SeatsCommand::List {
            db,
            license,
            key_file,
            sku,
            catalog,
            json,
        } => {
            let catalog_path = match (catalog, &db.config) {
                (Some(path), _) => Some(path),
                (None, Some(config)) => {
                    let (file, base) = read_serve_file(config)?;
                    file.catalog.map(|p| resolve(base.as_deref(), p))
                }
                (None, None) => None,
            };
            let catalog = catalog_path
                .as_deref()
                .map(LicenseCatalog::load)
                .transpose()?;
            let which = match (license, key_file, sku) {
                (Some(reference), _, _) => lapd::seats::Which::License(reference),
                (None, Some(file), _) => lapd::seats::Which::License(
                    lapd::catalog::license_reference(&lapd::keyfile::read(&file)?),
                ),
                (None, None, Some(_)) if catalog.is_none() => {
                    return Err(CliError::Usage(
                        "--sku needs --catalog (a SKU's licenses are listed in the catalog)".into(),
                    ));
                }
                (None, None, Some(sku)) => lapd::seats::Which::Sku(sku),
                (None, None, None) => lapd::seats::Which::All,
            };
            let store = existing_db(&db)?;
            let lines = lapd::seats::list(store.as_ref(), &which, catalog.as_ref(), now)?;
            if json {
                println!("{}", serde_json::to_string(&lines).unwrap_or_default());
            } else {
                print!("{}", lapd::seats::table(&lines));
            }
        }
        SeatsCommand::Release { db, seat } => {
            let store = existing_db(&db)?;
            let freed = store
                .release_by_id(seat, now)?
                .ok_or_else(|| CliError::Usage(format!("--seat {seat}: no such seat")))?;
            println!(
                "seat {seat} of license {} (machine {}) released; a server answering from its cache stops within {} s",
                freed.license,
                &hex::encode(freed.machine)[..12],
                lapd::store::cached::SEAT_TRUST_SECS
            );
        }
    }
    Ok(())
}

fn sunset(args: SunsetArgs) -> Result<(), CliError> {
    let sunset = lapd::sunset::Sunset {
        sku: args.sku,
        features: args.features,
        asset_key_hex: args.asset_key.map(zeroize::Zeroizing::new),
        issued: lap_proto::time::unix_now(),
    };
    lapd::sunset::write(&args.keys, &sunset, &args.out)?;
    println!(
        "sunset grant for SKU {} written to {}: perpetual, features [{}]{}",
        args.sku,
        args.out.display(),
        sunset.features.join(", "),
        if sunset.asset_key_hex.is_some() {
            ", with the asset key"
        } else {
            ""
        }
    );
    Ok(())
}

fn db_location(arg: &DbArg) -> Result<DbLocation, CliError> {
    if let Some(text) = &arg.db {
        return Ok(DbLocation::parse(text, None));
    }
    let (file, base) = match &arg.config {
        Some(path) => read_serve_file(path)?,
        None => return Err(CliError::Usage("give --db (or --config)".into())),
    };
    let text = file
        .db
        .ok_or_else(|| CliError::Usage("the config file has no `db`".into()))?;
    Ok(DbLocation::parse(&text, base.as_deref()))
}

fn db(command: DbCommand) -> Result<(), CliError> {
    match command {
        DbCommand::Migrate(arg) => {
            let location = db_location(&arg)?;
            let store = location.open()?;
            println!(
                "{location}: schema version {} (this lapd's), {} seats",
                store.schema_version()?,
                store.seat_count()?
            );
        }
        DbCommand::Import { from, to } => {
            let from = DbLocation::parse(&from, None);
            if let DbLocation::Sqlite(path) = &from
                && !path.exists()
            {
                return Err(CliError::Usage(format!(
                    "--from {}: no such file",
                    path.display()
                )));
            }
            let to = db_location(&to)?;
            if from == to {
                return Err(CliError::Usage(
                    "--from and --to name the same database".into(),
                ));
            }
            let source = from.open()?;
            let target = to.open()?;
            let total = source.seat_count()?;
            let copied = lapd::dbtool::copy(
                source.as_ref(),
                target.as_ref(),
                lapd::dbtool::BATCH,
                &mut |c| eprintln!("lapd: {} of {total} seats read, {} added", c.read, c.added),
            )?;
            println!(
                "imported {} seats from {from} into {to}: {} added, {} already there",
                copied.read,
                copied.added,
                copied.read - copied.added
            );
        }
        DbCommand::Fill {
            db,
            seats,
            key_file,
        } => {
            let key = lapd::keyfile::read(&key_file)?;
            let location = db_location(&db)?;
            let store = location.open()?;
            let reference = lapd::catalog::license_reference(&key);
            let added = lapd::dbtool::fill(
                store.as_ref(),
                seats,
                &reference,
                lap_proto::time::unix_now(),
                &mut |n| {
                    if n % 1_000_000 == 0 {
                        eprintln!("lapd: {n} seats added");
                    }
                },
            )?;
            println!("{location}: {added} seats added");
        }
    }
    Ok(())
}

fn probe(args: &ProbeArgs) -> Result<(), CliError> {
    let key = target_key(&args.target)?;
    let public_keys = read_public_keys(&args.target.public)?;
    let machine_hash = match args.machine.as_deref() {
        Some(text) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(text, &mut out)
                .map_err(|_| CliError::Usage("--machine takes 64 hex digits".into()))?;
            out
        }
        None => random_machine_hash()?,
    };
    let answer = lapd::probe::run(&lapd::probe::Probe {
        server: args.target.server,
        public_keys,
        sku: args.target.sku,
        key,
        addon: args.target.addon,
        machine_hash,
        attempts: args.attempts.max(1),
        wait: Duration::from_millis(args.wait_ms),
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&answer).unwrap_or_default());
    } else {
        println!("{answer}");
    }
    Ok(())
}

fn bench(args: &BenchArgs) -> Result<(), CliError> {
    let key = target_key(&args.target)?;
    let public_keys = read_public_keys(&args.target.public)?;
    let machines = match args.machines.split_once(':') {
        None if args.machines == "one" => bench::Machines::One(random_machine_hash()?),
        None if args.machines == "new" => bench::Machines::New,
        Some(("filled", count)) => bench::Machines::Filled(count.parse().map_err(|_| {
            CliError::Usage(format!(
                "--machines {}: filled:N takes a count",
                args.machines
            ))
        })?),
        _ => {
            return Err(CliError::Usage(format!(
                "--machines {}: use one, new or filled:N",
                args.machines
            )));
        }
    };
    let report = bench::run(&bench::BenchConfig {
        server: args.target.server,
        public_keys,
        sku: args.target.sku,
        key,
        addon: args.target.addon,
        rate: args.rate,
        seconds: args.seconds,
        concurrency: args.concurrency,
        distinct_requests: args.requests,
        machines,
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!("{report}");
    }
    Ok(())
}

fn read_public_keys(path: &Path) -> Result<ServerPublicKeys, CliError> {
    let (x, ed) = keys::load_public(path)?;
    ServerPublicKeys::from_bytes(x, &ed)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

fn target_key(target: &Target) -> Result<Option<LicenseKey>, CliError> {
    if target.key.is_some() {
        return Err(CliError::KeyArgument);
    }
    Ok(target
        .key_file
        .as_deref()
        .map(lapd::keyfile::read)
        .transpose()?)
}

fn random_machine_hash() -> Result<[u8; 32], CliError> {
    let mut machine_hash = [0u8; 32];
    getrandom::fill(&mut machine_hash)
        .map_err(|e| CliError::Usage(format!("no randomness: {e}")))?;
    Ok(machine_hash)
}

fn resolve(base: Option<&Path>, path: PathBuf) -> PathBuf {
    match base {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

/// A `serve` config file, and the folder its relative paths are relative to.
fn read_serve_file(path: &Path) -> Result<(ServeFile, Option<PathBuf>), CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let file: ServeFile = toml::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: {}", path.display(), e.message())))?;
    Ok((file, path.parent().map(Path::to_owned)))
}

fn serve(args: ServeArgs) -> Result<(), CliError> {
    let (file, base) = match &args.config {
        Some(path) => read_serve_file(path)?,
        None => (ServeFile::default(), None),
    };
    let missing =
        |what: &str| CliError::Usage(format!("serve needs --{what} (or `{what}` in --config)"));
    let listen = args
        .listen
        .or(file.listen)
        .ok_or_else(|| missing("listen"))?;
    let keys_dir = args
        .keys
        .or_else(|| file.keys.map(|p| resolve(base.as_deref(), p)))
        .ok_or_else(|| missing("keys"))?;
    let catalog_path = args
        .catalog
        .or_else(|| file.catalog.map(|p| resolve(base.as_deref(), p)))
        .ok_or_else(|| missing("catalog"))?;
    // A relative SQLite path on the command line is the working directory's; in the file,
    // the file's folder's.
    let db = match (args.db, file.db) {
        (Some(text), _) => DbLocation::parse(&text, None),
        (None, Some(text)) => DbLocation::parse(&text, base.as_deref()),
        (None, None) => return Err(missing("db")),
    };
    let threads = match args.threads.or(file.threads).unwrap_or(0) {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        n => n,
    };
    let rate = args
        .rate_limit
        .or(file.rate_limit)
        .unwrap_or(DEFAULT_RATE_LIMIT);
    let burst = args.burst.or(file.burst).unwrap_or(DEFAULT_BURST);
    let profile = match args.profile.or(file.profile).as_deref() {
        None | Some("1.1") => Profile::V1_1,
        Some("1.0") => Profile::V1_0,
        Some(other) => {
            return Err(CliError::Usage(format!(
                "--profile {other:?}: use 1.0 or 1.1"
            )));
        }
    };
    let lease_sweep_secs = args
        .lease_sweep_secs
        .or(file.lease_sweep_secs)
        .unwrap_or(DEFAULT_LEASE_SWEEP_SECS);

    let keys = keys::load(&keys_dir)?;
    let upstream = file
        .upstream
        .map(|config| {
            let config = config.resolved(base.as_deref())?;
            lapd::upstream::Upstream::open(config, &keys, lapd::upstream::os_random)
        })
        .transpose()?;
    let catalog = LicenseCatalog::load(&catalog_path)?;
    let store = Store::open(&db)?;
    let sockets = bind(listen, threads).map_err(|source| CliError::Io {
        context: format!("binding {listen}"),
        source,
    })?;
    let bound = sockets[0].local_addr().map_err(|source| CliError::Io {
        context: "reading the bound address".into(),
        source,
    })?;
    tracing::info!(
        %bound, threads, skus = catalog.skus().count(), licenses = catalog.licenses().count(),
        rate_limit = rate, burst, db = %db, profile = ?profile, lease_sweep_secs, "lapd serving"
    );
    let server = Arc::new(
        Server::new(
            keys,
            catalog,
            store,
            RateLimiter::new(rate, burst),
            args.time_offset,
        )
        .with_profile(profile),
    );
    // An intermediate serves from its saved pools at once (the vendor may be unreachable),
    // then syncs before it says where it listens, so that its first answers use the sync.
    let upstream = upstream.map(|mut upstream| {
        server.set_pools(upstream.pools_at(server.server_time()));
        lapd::upstream::tick_server(&mut upstream, &server);
        upstream
    });
    let stop = server.stop_flag();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|source| CliError::Io {
            context: "installing signal handlers".into(),
            source,
        })?;
    }
    // The first stdout line is the contract with scripts and tests: the bound address.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{bound}");
    let _ = stdout.flush();
    watch_catalog(&server, catalog_path, Duration::from_secs(1));
    if lease_sweep_secs > 0 && profile == Profile::V1_1 {
        sweep_leases_periodically(&server, Duration::from_secs(lease_sweep_secs));
    }
    if let Some(upstream) = upstream {
        lapd::upstream::sync_periodically(&server, upstream);
    }
    run(&server, &sockets);
    // The store is not dropped here (the catalog watcher and the sweep hold the server).
    if let Err(error) = server.with_store(Store::write_back) {
        tracing::warn!(%error, "seat database not written back at stop");
    }
    let commits = server.with_store(Store::commit_stats);
    tracing::info!(
        stats = %server.stats.summary(), seat_writes = commits.writes, commits = commits.commits,
        "lapd stopped"
    );
    Ok(())
}
