//! The `zicht` command line: subcommands and what they print. `main` only parses and calls
//! [`run`].

pub mod audit;
pub mod consent;
mod database;
pub mod demo;
pub mod exit;
mod format;
mod node;
mod output;
mod progress;
mod query;
pub use query::ask;
mod records;
pub mod web;

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use zicht_model::{CodeList, Region};
use zicht_store::import::{import_file, ImportError, ImportOptions, RegionCheck, Table};

/// zicht: a federated data-exchange gateway for Dutch youth-care regions (jeugdhulpregio's).
#[derive(Debug, Parser)]
#[command(
    name = "zicht",
    version,
    about = "zicht: federated data exchange for Dutch youth-care regions (jeugdhulpregio's)",
    long_about = None,
    after_long_help = "Exit codes: 0 an answer was shown (or the command did its work); 1 an error \
        or a refusal; 2 a usage error (the command line asks for something zicht does not take); \
        3 a federated question no region answered; 4 a partial answer with --require-all. \
        See docs/cli.md."
)]
pub struct Cli {
    /// How log lines are written to standard error: `text` for people, `json` (one object a
    /// line) for a log shipper. Levels come from RUST_LOG (default `info`; `warn` for the
    /// demo).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ZICHT_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// The log level when `RUST_LOG` is not set: `info` for a node, `warn` for the demo (whose
    /// answers are its output; its 17 nodes' start lines would bury them).
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Demo(_) => "warn",
            _ => "info",
        }
    }
}

/// Sends the `tracing` events of every crate to standard error in `format`, filtered by
/// `RUST_LOG` (default `default_level`). Log lines name rules, nodes and counts, never youth
/// data.
pub fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let lines = match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    // Log lines as RUST_LOG says; operation spans for OpenTelemetry whatever the level (they
    // are exported only by nodes that configure it). Another subscriber may be set already
    // (tests running in one process): keep it.
    let _ = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(zicht_node::tracing_layer())
        .try_init();
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A whole federation on loopback: dev PKI, synthetic data for 14 regions, 17 nodes over
    /// mutual TLS, and the headline queries with their coverage.
    Demo(DemoArgs),
    /// Import canonical CSV files (placements, capacity, transition18, consents, measures); all-or-nothing.
    Import(ImportArgs),
    /// Generate deterministic synthetic CSV files for one or more regions.
    Generate(GenerateArgs),
    /// Create a region's database, or upgrade its schema (the only commands that create one
    /// are this and import).
    Migrate(MigrateArgs),
    /// Show what a region's database holds.
    Summary(DatabaseArg),
    /// Development PKI: federation root, node and person certificates, revocation.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Run a node: gRPC over mutual TLS for its peers (stops on Ctrl-C or SIGTERM; SIGHUP
    /// reloads certificates and CRL at once).
    Node {
        /// The node's configuration file (see deploy/nodes/).
        #[arg(long)]
        config: PathBuf,
    },
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run a template on a region's own database under disclosure control and print the
    /// protected result (table, JSON or CSV).
    Query(Box<query::QueryArgs>),
    /// Disclosure control.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// The tamper-evident audit logs.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Consents: revoke one at once; a youth's own report of every release of their records.
    #[command(subcommand)]
    Consent(consent::ConsentCommand),
    /// Ask a node's plaintext probe port (health_listen) whether it serves: exit 0 if it
    /// does, 1 if not (for container health checks and systemd).
    Health {
        /// The probe address, e.g. 127.0.0.1:8401.
        address: std::net::SocketAddr,
        /// How long to wait, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Print a shell completion script: `zicht completions bash > /etc/bash_completion.d/zicht`,
    /// `zicht completions zsh > ~/.zfunc/_zicht`, `zicht completions fish >
    /// ~/.config/fish/completions/zicht.fish`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The monitor: a local web app that acts as the person of a client profile (an analyst's
    /// pages, or an auditor's), asking the federation as `zicht query` does.
    Web(web::WebArgs),
    /// Print the manual page zicht(1), or write one page per command into a directory.
    Man {
        /// Write zicht.1, zicht-query.1, ... into this directory instead of printing zicht(1).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    database: DatabaseArg,
    /// Client profile of an auditor, to fetch the checkpoints peers hold of this node.
    #[arg(long, requires = "node")]
    client: Option<PathBuf>,
    /// The node whose database this is (its checkpoints are fetched from the others).
    #[arg(long, requires = "client")]
    node: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check a node's audit chains (processing log and access log) offline: every entry's hash,
    /// its link to the one before, no gaps; with --client and --node also against the signed
    /// checkpoints the other nodes hold of it, which shows a rewritten or cut history. Names
    /// the first broken entry and exits non-zero.
    Verify(VerifyArgs),
    /// Follow one federated query across every node of the manifest it touched, as an
    /// auditor: each node's operations, how they link, and each node's chain verification.
    Trace {
        /// The trace id (32 hex digits), e.g. from a node's processing log.
        trace_id: String,
        /// Client profile of an auditor (see deploy/clients/auditor.toml).
        #[arg(long)]
        client: PathBuf,
    },
    /// Export one node's audit entries as JSON lines, as an auditor: by log, trace, caller
    /// (PeerID), purpose, template and time. Each line holds the entry's seq, hashes and body
    /// as stored; every hash is re-checked as received.
    Export(audit::ExportArgs),
}

#[derive(Debug, Subcommand)]
enum PrivacyCommand {
    /// Show the disclosure settings a node enforces, next to the network floor.
    Settings(query::Target),
    /// Print (or write) the perturbation table of the cell key method for parameters D, V and
    /// js, with its checks per row.
    Ptable(query::PtableArgs),
    /// Create a node's record-key secret (32 random bytes, mode 0600) if it does not exist
    /// yet; a node also creates it on first start. Back it up with the database.
    Init {
        /// The secret file, as `privacy.record_key_secret` in the node config names it.
        #[arg(long)]
        secret: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check a policy file against the code lists (and a federation manifest's PeerIDs);
    /// reports every problem with its line.
    Check {
        /// The policy file.
        file: PathBuf,
        /// The federation manifest whose PeerIDs grants may name.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Create a dev federation: root CA, 17 node certificates, an analyst and a lokaal team
    /// per region, an auditor and an empty CRL (keys are written 0600; never commit them).
    DevFederation {
        /// Folder for the PKI files.
        #[arg(long, default_value = "certs/dev")]
        dir: PathBuf,
    },
    /// Revoke a certificate: add it to the federation's CRL (nodes reload it without restart).
    Revoke {
        /// Folder of the dev federation.
        #[arg(long, default_value = "certs/dev")]
        dir: PathBuf,
        /// The certificate (PEM) to revoke.
        cert: PathBuf,
    },
}

#[derive(Debug, Args)]
struct DatabaseArg {
    /// Database: a SQLite file path, sqlite://PATH, or postgres://... (never printed); a
    /// read never creates one.
    #[arg(long, env = "ZICHT_DATABASE_URL")]
    database: String,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    /// Database: a SQLite file path (created if there is none), sqlite://PATH, or
    /// postgres://... (never printed).
    /// Without --database and --config: ZICHT_DATABASE_URL.
    #[arg(long)]
    database: Option<String>,
    /// A node configuration file: its database (ZICHT_DATABASE_URL overrides it, as for the
    /// node), before a node's first start or after an upgrade.
    #[arg(long, conflicts_with = "database")]
    config: Option<PathBuf>,
}

/// The variable that names a database where no option does (and overrides a node config's).
pub(crate) const DATABASE_VARIABLE: &str = "ZICHT_DATABASE_URL";

#[derive(Debug, Args)]
struct ImportArgs {
    /// Database: a SQLite file path (created if there is none), sqlite://PATH, or
    /// postgres://... (never printed). Without --database and --config: ZICHT_DATABASE_URL.
    #[arg(long)]
    database: Option<String>,
    /// A regional node's configuration file: its database (ZICHT_DATABASE_URL overrides it,
    /// as for the node) and its region, which the placements must be of.
    #[arg(long, conflicts_with = "database")]
    config: Option<PathBuf>,
    /// The region the placements must be of (by origin_region and origin_municipality);
    /// default: the node's (--config), else the region the database holds.
    #[arg(long, value_parser = parse_region)]
    region: Option<Region>,
    /// Import placements of other regions too (a file meant so, such as a municipality that
    /// moved region).
    #[arg(long)]
    allow_other_regions: bool,
    /// Field delimiter: `,`, `;` or `tab`; default: detected from the header line.
    #[arg(long, value_parser = parse_delimiter_option)]
    delimiter: Option<u8>,
    /// Text encoding: `utf-8`, `cp1252` (Windows-1252, Excel's ANSI; also latin1) or
    /// `utf-16` (Excel's Unicode text); default: detected.
    #[arg(long, value_parser = parse_encoding)]
    encoding: Option<zicht_store::import::TextEncoding>,
    /// Dates: `iso` (YYYY-MM-DD), `dd-mm-jjjj` (DD-MM-YYYY, as Dutch Excel writes them), or
    /// `either`.
    #[arg(long, default_value = "either", value_parser = parse_date_format)]
    date_format: zicht_model::DateFormat,
    /// The sheet of an .xlsx workbook; default: the first.
    #[arg(long)]
    sheet: Option<String>,
    /// A mapping file: the export's column names and its codes for zicht's code lists (see
    /// docs/import-format.md).
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// The youth_id column holds the source's identifiers (BSNs): store their keyed hashes
    /// under the region's pseudonymisation key instead, never the identifiers.
    #[arg(long)]
    pseudonymise: bool,
    /// The pseudonymisation key file (created 0600 on first use; back it up with the
    /// database): for --pseudonymise and for iJw messages; default: `[privacy]
    /// pseudonym_key` of the node config.
    #[arg(long)]
    pseudonym_key: Option<PathBuf>,
    /// How the files are written: `csv` (CSV, TSV and .xlsx, one table each), `ijw` (iJw 3.2
    /// JW301/JW305/JW307 messages, .xml files and .zip batches, imported together as
    /// placements), or `auto` (.xml and .zip files are iJw).
    #[arg(long, default_value = "auto", value_parser = ["auto", "csv", "ijw"])]
    format: String,
    /// Table of every file (placements, capacity, transition18, consents, measures); default:
    /// from each file's name. Files are imported in that order of tables (measures name
    /// placements and capacity).
    #[arg(long, value_parser = parse_table)]
    table: Option<Table>,
    /// Replace the table's contents with the file (a full export) instead of upserting rows.
    #[arg(long)]
    replace: bool,
    /// A drop folder: import every .csv, .tsv, .txt and .xlsx file in it (named by table:
    /// placements*.csv, ...), with its mapping.toml if there is one and no --mapping.
    #[arg(long)]
    folder: Option<PathBuf>,
    /// After each file, move it into the folder's `imported/<time>/` or `rejected/<time>/`
    /// (for a drop folder a watcher runs on, so no file is read twice).
    #[arg(long, requires = "folder")]
    archive: bool,
    /// CSV, TSV or .xlsx files to import, each in its own transaction; iJw messages (.xml,
    /// .zip) together in one.
    #[arg(required_unless_present = "folder")]
    files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Regions to generate (codes or aliases, repeatable); `all` for all 14.
    #[arg(long = "region", required = true, value_parser = parse_regions)]
    regions: Vec<Vec<Region>>,
    /// Seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Output folder; each region gets a sub-folder with its files.
    #[arg(long, default_value = "synthetic")]
    out: PathBuf,
    /// Exact number of placement rows per region (for benchmarks) instead of the natural size.
    #[arg(long)]
    placements: Option<u64>,
    /// First year of the reporting window.
    #[arg(long, default_value_t = 2021)]
    first_year: i32,
    /// Last year of the reporting window (its 31 December is the export date).
    #[arg(long, default_value_t = 2025)]
    last_year: i32,
    /// `csv`: the canonical CSV files; `ijw`: the placements as a gemeente's iJw 3.2 exchange
    /// (berichten.zip with the region's mapping.toml) and the other tables as CSV, all with
    /// synthetic BSNs (import with a pseudonymisation key).
    #[arg(long, default_value = "csv", value_parser = ["csv", "ijw"])]
    format: String,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Folder for the demo's CSV files and databases (re-running replaces its contents).
    #[arg(long, default_value = "zicht-demo")]
    dir: PathBuf,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Stop the federation after the headline queries instead of keeping it running.
    #[arg(long)]
    once: bool,
}

/// `zicht audit verify`: both chains, each reported, then the checkpoints peers hold; the
/// first broken entry fails the command.
async fn audit_verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let store = database::existing(&args.database.database).await?;
    let held = match (&args.client, &args.node) {
        (Some(client), Some(node)) => {
            let environment = |name: &str| std::env::var(name).ok();
            let profile = zicht_node::config::load_client(client, &environment)?;
            let node =
                zicht_model::NodeName::parse(node).map_err(|e| anyhow::anyhow!("--node: {e}"))?;
            audit::held_checkpoints(&profile, node).await
        }
        _ => Vec::new(),
    };
    let mut broken = Vec::new();
    for (name, log) in [
        ("processing log", zicht_store::AuditLog::Processing),
        ("access log", zicht_store::AuditLog::Access),
    ] {
        let entries = match store.audit_chain(log).await {
            Ok(entries) => entries,
            Err(zicht_store::StoreError::Tampered { seq, .. }) => {
                let error = format!(
                    "entry {seq}: its search columns do not match its contents (the row was altered)"
                );
                println!("{name}: broken at {error}");
                broken.push(format!("{name}: {error}"));
                continue;
            }
            Err(error) => return Err(anyhow::Error::new(error).context("read the audit log")),
        };
        match zicht_audit::verify(entries.clone()) {
            Ok(verified) => println!(
                "{name}: {} entries, chain intact, head {}",
                verified.entries, verified.head
            ),
            Err(error) => {
                println!("{name}: broken at {error}");
                broken.push(format!("{name}: {error}"));
                continue;
            }
        }
        for (holder, checkpoints) in &held {
            let checkpoints = match checkpoints {
                Ok(checkpoints) => checkpoints,
                Err(reason) => {
                    println!("{name}: checkpoints held by {holder}: not asked ({reason})");
                    continue;
                }
            };
            if checkpoints.is_empty() {
                println!("{name}: {holder} holds no checkpoint of this node yet");
                continue;
            }
            let mut first = None;
            for checkpoint in checkpoints {
                let head = match log {
                    zicht_store::AuditLog::Processing => &checkpoint.processing,
                    zicht_store::AuditLog::Access => &checkpoint.access,
                };
                if let Err(error) = zicht_audit::check_head(&entries, head) {
                    first = first.or(Some(error));
                }
            }
            match first {
                None => println!(
                    "{name}: matches the {} checkpoint(s) held by {holder}",
                    checkpoints.len()
                ),
                Some(error) => {
                    println!("{name}: broken at {error} (checkpoint held by {holder})");
                    broken.push(format!("{name}: {error} (checkpoint held by {holder})"));
                }
            }
        }
    }
    store.close().await;
    if !broken.is_empty() {
        bail!("audit chain broken: {}", broken.join("; "));
    }
    Ok(())
}

/// `grpc.health.v1.Health/Check` of the whole node on its plaintext probe port.
async fn health(address: std::net::SocketAddr, timeout: std::time::Duration) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("no health probe answers at {address}"))?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    };
    let status = client
        .check(request)
        .await
        .with_context(|| format!("the health probe at {address} failed"))?
        .into_inner()
        .status();
    if status == ServingStatus::Serving {
        println!("serving");
        Ok(())
    } else {
        bail!("not serving: {}", status.as_str_name())
    }
}

/// `zicht man`: the manual pages, from the same clap definitions as `--help`.
fn man(dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let command = <Cli as clap::CommandFactory>::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("write the manual pages into {}", dir.display()))?;
            println!("wrote the manual pages into {}", dir.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            match clap_mangen::Man::new(command).render(&mut out) {
                // `zicht man | head`: the reader stopped, nothing failed.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.context("print the manual page")?,
            }
        }
    }
    Ok(())
}

fn parse_table(text: &str) -> Result<Table, String> {
    Table::parse(text)
        .ok_or_else(|| "must be one of placements, capacity, transition18, consents".to_owned())
}

fn parse_delimiter_option(text: &str) -> Result<u8, String> {
    zicht_store::import::parse_delimiter(text).ok_or_else(|| "must be `,`, `;` or `tab`".to_owned())
}

fn parse_encoding(text: &str) -> Result<zicht_store::import::TextEncoding, String> {
    zicht_store::import::TextEncoding::parse(text).ok_or_else(|| {
        "must be `utf-8`, `cp1252` (also windows-1252, latin1) or `utf-16`".to_owned()
    })
}

fn parse_date_format(text: &str) -> Result<zicht_model::DateFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "either" => Ok(zicht_model::DateFormat::Either),
        "iso" | "yyyy-mm-dd" | "jjjj-mm-dd" => Ok(zicht_model::DateFormat::Iso),
        "dd-mm-jjjj" | "dd-mm-yyyy" | "dmy" => Ok(zicht_model::DateFormat::DayMonthYear),
        _ => Err("must be `iso`, `dd-mm-jjjj` or `either`".to_owned()),
    }
}

fn parse_region(text: &str) -> Result<Region, String> {
    Region::parse(text).map_err(|error| error.to_string())
}

fn parse_regions(text: &str) -> Result<Vec<Region>, String> {
    if text == "all" {
        return Ok(Region::ALL.to_vec());
    }
    Region::parse(text)
        .map(|region| vec![region])
        .map_err(|error| error.to_string())
}

/// Parses `args` (the first is the program name) and runs them, as `main` does.
pub async fn run_from<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    run(Cli::try_parse_from(args)?).await
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(&args.dir, args.seed, args.once).await,
        Command::Import(args) => import(args).await,
        Command::Generate(args) => generate(args),
        Command::Migrate(args) => {
            let environment = |name: &str| std::env::var(name).ok();
            let database = match (&args.database, &args.config) {
                (_, Some(config)) => zicht_node::config::load(config, &environment)?.database,
                (Some(database), None) => database.clone(),
                (None, None) => environment(DATABASE_VARIABLE).ok_or_else(|| {
                    exit::usage("give --database (or ZICHT_DATABASE_URL) or --config")
                })?,
            };
            database::create_or_upgrade(&database, false)
                .await?
                .close()
                .await;
            Ok(())
        }
        Command::Pki(command) => pki(command),
        Command::Node { config } => node::run(&config).await,
        Command::Policy(PolicyCommand::Check { file, manifest }) => {
            policy_check(&file, manifest.as_deref())
        }
        Command::Query(args) => query::run(*args).await,
        Command::Audit(AuditCommand::Verify(args)) => audit_verify(&args).await,
        Command::Audit(AuditCommand::Trace { trace_id, client }) => {
            audit::run_trace(&client, &trace_id).await
        }
        Command::Audit(AuditCommand::Export(args)) => audit::run_export(&args).await,
        Command::Consent(command) => consent::run(command).await,
        Command::Health {
            address,
            timeout_ms,
        } => health(address, std::time::Duration::from_millis(timeout_ms)).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            // Generated whole first: clap_complete panics on a write error, and a reader that
            // stops early (`| head`) is a quiet end, not one.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "zicht", &mut script);
            let mut out = std::io::stdout().lock();
            match out.write_all(&script).and_then(|()| out.flush()) {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(error).context("write the completion script")
                }
                _ => Ok(()),
            }
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::Web(args) => web::run(&args).await,
        Command::Privacy(PrivacyCommand::Settings(target)) => query::settings(&target),
        Command::Privacy(PrivacyCommand::Ptable(args)) => query::ptable(&args),
        Command::Privacy(PrivacyCommand::Init { secret }) => {
            let (_, created) = zicht_node::secret::load_or_create(&secret)
                .map_err(|e| anyhow::anyhow!("record-key secret: {e}"))?;
            if created {
                println!(
                    "created {} (mode 0600): back it up with the database; a new secret changes every published count",
                    secret.display()
                );
            } else {
                println!(
                    "{} already holds a record-key secret; left as it is",
                    secret.display()
                );
            }
            Ok(())
        }
        Command::Summary(args) => {
            let store = database::existing(&args.database).await?;
            let summary = store.summary().await?;
            println!("placements           {:>9}", summary.placements);
            println!("  distinct youths    {:>9}", summary.youths);
            println!("  ongoing            {:>9}", summary.ongoing);
            println!("capacity rows        {:>9}", summary.capacity_rows);
            println!("  places (latest)    {:>9}", summary.places);
            println!("  occupied (latest)  {:>9}", summary.occupied);
            println!("transition18 checks  {:>9}", summary.transition18_checks);
            println!("consents             {:>9}", summary.consents);
            println!("measures             {:>9}", summary.measures);
            Ok(())
        }
    }
}

/// The files a drop folder holds for import, sorted by name; its `mapping.toml`, if any.
fn folder_files(folder: &std::path::Path) -> anyhow::Result<(Vec<PathBuf>, Option<PathBuf>)> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(folder)
        .with_context(|| format!("read the folder {}", folder.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("read the folder {}", folder.display()))?
            .path();
        let importable = path.is_file()
            && path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                ["csv", "tsv", "txt", "xlsx", "xlsm", "xml", "zip"]
                    .iter()
                    .any(|x| e.eq_ignore_ascii_case(x))
            });
        if importable {
            files.push(path);
        }
    }
    files.sort();
    let mapping = Some(folder.join("mapping.toml")).filter(|m| m.is_file());
    Ok((files, mapping))
}

/// Where an import's files go in a drop folder: a file the database could not take (it is
/// down, say) stays for the next run (`None`); a file that is wrong goes aside until someone
/// mends it.
fn archive_outcome(result: Result<(), &ImportError>) -> Option<&'static str> {
    match result {
        Ok(()) => Some("imported"),
        Err(ImportError::Store { .. } | ImportError::Read { .. }) => None,
        Err(_) => Some("rejected"),
    }
}

/// Moves an imported (or rejected) file of a drop folder into `<folder>/<outcome>/<stamp>/`.
fn archive(
    folder: &std::path::Path,
    file: &std::path::Path,
    outcome: &str,
    stamp: &str,
) -> anyhow::Result<()> {
    let target = folder.join(outcome).join(stamp);
    std::fs::create_dir_all(&target).with_context(|| format!("create {}", target.display()))?;
    let name = file.file_name().unwrap_or_default();
    std::fs::rename(file, target.join(name))
        .with_context(|| format!("move {} into {}", file.display(), target.display()))
}

async fn import(mut args: ImportArgs) -> anyhow::Result<()> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    // A drop folder's file whose table its name does not tell is set aside (with --archive)
    // and counted, so one stray file neither stops the rest nor comes back every run.
    let mut unnamed = 0;
    // iJw messages are imported together, apart from the tables' files; each file is told
    // once (auto reads the head of a file without a telling name).
    let format = args.format.clone();
    let is_message = |file: &PathBuf| {
        format == "ijw" || (format == "auto" && zicht_store::import::is_ijw_file(file))
    };
    let (mut messages, tables): (Vec<PathBuf>, Vec<PathBuf>) = std::mem::take(&mut args.files)
        .into_iter()
        .partition(is_message);
    args.files = tables;
    if let Some(folder) = &args.folder {
        let (files, mapping) = folder_files(folder)?;
        if files.is_empty() {
            println!("{}: nothing to import", folder.display());
            return Ok(());
        }
        for file in files {
            if is_message(&file) {
                messages.push(file);
            } else if args.table.is_none() && Table::from_file_name(&file).is_none() {
                let unknown = ImportError::UnknownTable {
                    file: file.display().to_string(),
                };
                eprintln!("{unknown}");
                if args.archive {
                    archive(folder, &file, "rejected", &stamp)?;
                }
                unnamed += 1;
            } else {
                args.files.push(file);
            }
        }
        if args.mapping.is_none() {
            args.mapping = mapping;
        }
        if args.files.is_empty() && messages.is_empty() {
            bail!("{unnamed} file(s) not imported");
        }
    }
    // What can be told before anything is written: a missing file, an unknown table or a
    // bad mapping creates no database.
    for file in &messages {
        if let Err(error) = std::fs::metadata(file) {
            bail!(
                "cannot read {}: {error}; nothing was imported",
                file.display()
            );
        }
    }
    for file in &args.files {
        if args.table.is_none() && Table::from_file_name(file).is_none() {
            let unknown = ImportError::UnknownTable {
                file: file.display().to_string(),
            };
            return Err(exit::usage(unknown.to_string()));
        }
        if let Err(error) = std::fs::metadata(file) {
            bail!(
                "cannot read {}: {error}; nothing was imported",
                file.display()
            );
        }
    }
    let mapping = match &args.mapping {
        Some(path) => Some(std::sync::Arc::new(zicht_store::import::Mapping::load(
            path,
        )?)),
        None => None,
    };
    let (database, node_region, config_key) = import_target(&args)?;
    if !messages.is_empty() && mapping.is_none() {
        return Err(exit::usage(
            "iJw messages name aanbieders by AGB code and products by the region's own codes: give the region's --mapping (see docs/import-format.md)",
        ));
    }
    let needs_key = args.pseudonymise || !messages.is_empty();
    let pseudonymise = match (needs_key, args.pseudonym_key.clone().or(config_key)) {
        (false, _) => None,
        (true, None) => {
            return Err(exit::usage(if args.pseudonymise {
                "--pseudonymise needs a pseudonymisation key: --pseudonym-key FILE, or [privacy] pseudonym_key in the node config (--config)"
            } else {
                "iJw messages carry BSNs, which become pseudonyms as they are read: give the region's pseudonymisation key (--pseudonym-key FILE, or [privacy] pseudonym_key in the node config with --config)"
            }))
        }
        (true, Some(path)) => {
            let (key, created) = zicht_node::secret::load_or_create_pseudonym_key(&path)
                .map_err(|e| anyhow::anyhow!("pseudonymisation key: {e}"))?;
            if created {
                println!(
                    "created {} (mode 0600): back it up with the database; another key gives every youth another pseudonym",
                    path.display()
                );
            }
            Some(std::sync::Arc::new(key))
        }
    };
    let store = database::create_or_upgrade(&database, true).await?;
    let region = args.region.or(node_region);
    let options = ImportOptions {
        replace: args.replace,
        dialect: zicht_store::import::Dialect {
            delimiter: args.delimiter,
            encoding: args.encoding,
            date_format: args.date_format,
            sheet: args.sheet.clone(),
        },
        mapping,
        region: match region {
            _ if args.allow_other_regions => RegionCheck::Off,
            Some(region) => RegionCheck::Region(region),
            None => RegionCheck::Held,
        },
        pseudonymise,
    };
    let mut failed = unnamed;
    if !messages.is_empty() {
        let started = std::time::Instant::now();
        let mut bar = progress::Bar::for_file(&messages[0]);
        let result =
            zicht_store::import::import_messages(&store, &messages, options.clone(), &mut bar)
                .await;
        bar.finish();
        if let (Some(folder), true) = (&args.folder, args.archive) {
            if let Some(outcome) = archive_outcome(result.as_ref().map(drop)) {
                for file in &messages {
                    archive(folder, file, outcome, &stamp)?;
                }
            }
        }
        let label = match messages.as_slice() {
            [one] => one.display().to_string(),
            more => format!("{} iJw files", more.len()),
        };
        match result {
            Ok(report) => println!(
                "{label}: imported {} placements{} from iJw messages ({}) in {:.1}s (sha256 {})",
                report.rows,
                if report.replaced {
                    ", replacing the table"
                } else {
                    ""
                },
                report.counts,
                started.elapsed().as_secs_f64(),
                &report.sha256[..16.min(report.sha256.len())],
            ),
            Err(error @ (ImportError::Rejected { .. } | ImportError::Messages { .. })) => {
                eprintln!("{error}");
                failed += messages.len();
            }
            Err(error) => {
                eprintln!("error: {:#}", anyhow::Error::from(error));
                failed += messages.len();
            }
        }
    }
    // Measures name placements and capacity: files go in table order (`zicht import *.csv`
    // lists measures.csv before placements.csv), in the given order within a table.
    let mut files: Vec<&PathBuf> = args.files.iter().collect();
    files.sort_by_key(|file| {
        args.table
            .or_else(|| Table::from_file_name(file))
            .and_then(|t| Table::ALL.iter().position(|&a| a == t))
    });
    for file in files {
        let mut bar = progress::Bar::for_file(file);
        let started = std::time::Instant::now();
        let result = import_file(&store, file, args.table, options.clone(), &mut bar).await;
        bar.finish();
        if let (Some(folder), true) = (&args.folder, args.archive) {
            if let Some(outcome) = archive_outcome(result.as_ref().map(drop)) {
                archive(folder, file, outcome, &stamp)?;
            }
        }
        match result {
            Ok(report) => println!(
                "{}: imported {} {} rows{} in {:.1}s ({}; sha256 {})",
                file.display(),
                report.rows,
                report.table,
                if report.replaced {
                    ", replacing the table"
                } else {
                    ""
                },
                started.elapsed().as_secs_f64(),
                report.sniffed,
                &report.sha256[..16.min(report.sha256.len())],
            ),
            Err(error @ ImportError::Rejected { .. }) => {
                eprintln!("{error}");
                failed += 1;
            }
            Err(error) => {
                eprintln!("error: {:#}", anyhow::Error::from(error));
                failed += 1;
            }
        }
    }
    store.close().await;
    if failed > 0 {
        bail!(
            "{failed} of {} file(s) not imported",
            args.files.len() + messages.len() + unnamed
        );
    }
    Ok(())
}

/// The database an import writes to, and the region and pseudonymisation key of the node
/// whose config named it.
fn import_target(args: &ImportArgs) -> anyhow::Result<(String, Option<Region>, Option<PathBuf>)> {
    let environment = |name: &str| std::env::var(name).ok();
    match (&args.database, &args.config) {
        (_, Some(config)) => {
            let target = zicht_node::config::data_target(config, &environment)?;
            match target.node {
                zicht_model::NodeName::Region(region) => {
                    Ok((target.database, Some(region), target.pseudonym_key))
                }
                zicht_model::NodeName::Network(network) => Err(exit::usage(format!(
                    "{} is the config of network node {}, which holds no youth data; import into its member regions' nodes",
                    config.display(),
                    network.code()
                ))),
            }
        }
        (Some(database), None) => Ok((database.clone(), None, None)),
        (None, None) => environment(DATABASE_VARIABLE)
            .map(|database| (database, None, None))
            .ok_or_else(|| exit::usage("give --database (or ZICHT_DATABASE_URL) or --config")),
    }
}

fn policy_check(file: &std::path::Path, manifest: Option<&std::path::Path>) -> anyhow::Result<()> {
    let known = match manifest {
        Some(path) => Some(
            zicht_node::config::load_manifest(path)?
                .into_iter()
                .map(|peer| peer.peer_id)
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    match zicht_node::policy::parse_policy(&text, known.as_deref()) {
        Ok(policy) => {
            println!(
                "{}: ok, {} grant(s); everything else is denied",
                file.display(),
                policy.grants.len()
            );
            Ok(())
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{}:{problem}", file.display());
            }
            bail!("{} problem(s) in {}", problems.len(), file.display())
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn pki(command: PkiCommand) -> anyhow::Result<()> {
    match command {
        PkiCommand::DevFederation { dir } => {
            let federation = zicht_pki::write_dev_federation(&dir, now())?;
            println!(
                "dev federation in {}: ca.pem (trust bundle), crl.pem, nodes/*.pem|key for 17 nodes, people/analyst-<region>, people/team-<region> and people/auditor",
                federation.dir.display()
            );
        }
        PkiCommand::Revoke { dir, cert } => {
            let federation = zicht_pki::DevFederation { dir };
            let serial = federation.revoke(&cert, now())?;
            println!(
                "revoked serial {serial}; {} updated",
                federation.crl().display()
            );
        }
    }
    Ok(())
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    if args.first_year > args.last_year {
        bail!("--first-year must not be after --last-year");
    }
    let mut regions: Vec<Region> = args.regions.into_iter().flatten().collect();
    regions.sort();
    regions.dedup();
    for region in regions {
        let config = zicht_synth::Config {
            region,
            seed: args.seed,
            first_year: args.first_year,
            last_year: args.last_year,
            placements: args.placements,
            youth_ids: zicht_synth::YouthIds::Pseudonyms,
        };
        let dir = args.out.join(region.code());
        let counts = match args.format.as_str() {
            "ijw" => zicht_synth::generate_ijw_to_dir(&config, &dir),
            _ => zicht_synth::generate_to_dir(&config, &dir),
        }
        .with_context(|| format!("write {}", dir.display()))?;
        println!(
            "{}: {} youths, {} placements, {} capacity rows, {} transition18 checks, {} consents, \
             {} measures",
            dir.display(),
            counts.youths,
            counts.placements,
            counts.capacity,
            counts.transition18,
            counts.consents,
            counts.measures
        );
    }
    Ok(())
}
