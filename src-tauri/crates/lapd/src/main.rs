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
use lapd::server::{Server, bind, run, watch_catalog};
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
    /// A TOML file with any of: listen, keys, catalog, db, threads, rate_limit, burst.
    /// Flags given on the command line win; relative paths are relative to the file.
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
    /// Worker threads, one socket each; 0 means one per core.
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
}

const DEFAULT_RATE_LIMIT: u32 = 20;
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
    }
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

    let keys = keys::load(&keys_dir)?;
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
        rate_limit = rate, burst, db = %db, "lapd serving"
    );
    let server = Arc::new(Server::new(
        keys,
        catalog,
        store,
        RateLimiter::new(rate, burst),
        args.time_offset,
    ));
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
    run(&server, sockets);
    tracing::info!(stats = %server.stats.summary(), "lapd stopped");
    Ok(())
}
