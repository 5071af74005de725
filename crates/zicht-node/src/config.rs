//! Node configuration: one TOML file per node, overridable by `ZICHT_*` environment variables,
//! validated into typed settings at start. A bad value fails with the file (and line) or the
//! variable, the key, and the reason. This is the only code that reads configuration files and
//! the environment; callers pass the environment in as a function, so tests never mutate it.
//!
//! ```toml
//! node = "drenthe"
//! listen = "127.0.0.1:7401"
//! health_listen = "127.0.0.1:8401"             # optional: plaintext, grpc.health.v1 only
//! database = "sqlite://../../data/drenthe.db"   # aggregators: only their release log
//! policy = "../policies/drenthe.toml"
//! manifest = "../federation.toml"
//! start_empty = false                         # optional: a new region may start before its
//!                                             # first import (else a node refuses an empty one)
//! checkpoint_seconds = 300                    # optional: how often to sign chain heads for peers
//! checkpoint_entries = 100                    # optional: and after this many new log entries
//! metrics_listen = "127.0.0.1:9401"           # optional: plaintext, Prometheus /metrics only
//! otlp_endpoint = "https://collector:4317"    # optional: OpenTelemetry export (off if unset);
//!                                             # http://127.0.0.1:4317 for a collector on this host
//! otlp_interval_seconds = 10                  # optional: how often spans and metrics are sent
//! otlp_ca = "../../certs/collector-ca.pem"    # optional (https): default the [tls] ca bundle
//! otlp_client_certificate = true              # optional (https): present the node certificate
//!
//! [tls]
//! ca = "../../certs/dev/ca.pem"
//! cert = "../../certs/dev/nodes/drenthe.pem"
//! key = "../../certs/dev/nodes/drenthe.key"
//! crl = "../../certs/dev/crl.pem"
//! reload_seconds = 5
//! crl_grace_days = 7  # a CRL this long past its nextUpdate: every handshake is refused
//!
//! [limits]            # optional; defaults shown
//! max_request_bytes = 16384
//! max_deadline_ms = 30000
//! max_group_by = 3
//! max_filters = 8
//! max_cells = 5000
//! max_connection_age_seconds = 3600   # then the connection handshakes again
//! idle_timeout_seconds = 300
//! refusals_per_minute = 60        # then a caller's requests are turned away, unlogged, a while
//! max_connections = 1024          # lowered to fit the file-descriptor limit
//! max_handshakes = 128
//! handshake_timeout_seconds = 10
//! checkpoint_max_bytes = 4096     # per checkpoint a peer hands in
//! checkpoints_per_minute = 6      # per peer
//! checkpoints_kept = 24           # per peer, the latest
//!
//! [privacy]           # optional; defaults shown; a region may only make them stricter
//! record_key_secret = "../../data/drenthe.secret"  # created (0600) on first start; back it up
//! subject_key = "../../data/drenthe.subject-key"   # consented records: created (0600); back it up
//! pseudonym_key = "../../data/drenthe.pseudonym-key"  # import --pseudonymise: BSN -> pseudonym;
//!                                                     # created (0600) on first use; back it up
//! max_deviation = 4   # D: published counts within ±D of the true count
//! variance = 2.0      # V: variance of the perturbation
//! js = 3              # no published count in 1..js
//! population_floor = 10
//! period_granularity = "month"   # or quarter, year
//! period_ranges = false          # true: ranges of whole units too (not only one month, quarter, half year, year)
//! max_dimensions = 2             # filters and groupings of one question together; 1 to 3
//! max_populations_per_day = 500   # per person (a node asking for its people: 4x); at most 2000
//! max_populations_per_year = 10000 # per person, any 365 days; at most 40000
//! magnitude_min_youths = 10
//! dominance_max_share_percent = 50
//! ```
//!
//! Relative paths are relative to the config file's folder.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use zicht_model::{CodeList, NodeName, PeerId};

use crate::policy::parse_policy;
use crate::settings::Limits;
use crate::settings::NodeSettings;
use crate::settings::{ManifestPeer, TlsFiles};

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A file, at a line.
    File {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
    },
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File { path, line } => write!(f, "{path}:{line}"),
            Place::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File and line, or environment variable.
    pub place: Place,
    /// The key, e.g. `tls.cert`; empty when the whole file could not be read (the reason
    /// then names it).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: key `{}`: {}", self.place, self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// `path` (a `what`, e.g. "client profile") could not be read; a missing file says where
    /// such files are (`hint`).
    fn unreadable(path: &Path, what: &str, hint: &str, error: &std::io::Error) -> ConfigError {
        let reason = if error.kind() == std::io::ErrorKind::NotFound {
            format!("no {what} at {}{hint}", path.display())
        } else {
            format!("cannot read the {what} {}: {error}", path.display())
        };
        ConfigError {
            place: Place::File {
                path: path.display().to_string(),
                line: 1,
            },
            key: String::new(),
            reason,
        }
    }
}

/// A node's validated configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Which node this is.
    pub node: NodeName,
    /// The database URL (an aggregator's holds only its release log).
    pub database: String,
    /// The federation manifest: every node's address and PeerID.
    pub manifest: Vec<ManifestPeer>,
    /// What the server needs.
    pub settings: NodeSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    node: Spanned<String>,
    listen: Spanned<String>,
    health_listen: Option<Spanned<String>>,
    database: Option<Spanned<String>>,
    start_empty: Option<Spanned<bool>>,
    policy: Spanned<String>,
    manifest: Spanned<String>,
    tls: Spanned<TlsSection>,
    limits: Option<LimitsSection>,
    privacy: Option<PrivacySection>,
    checkpoint_seconds: Option<Spanned<u64>>,
    checkpoint_entries: Option<Spanned<u64>>,
    metrics_listen: Option<Spanned<String>>,
    otlp_endpoint: Option<Spanned<String>>,
    otlp_interval_seconds: Option<Spanned<u64>>,
    otlp_ca: Option<Spanned<String>>,
    otlp_client_certificate: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PrivacySection {
    record_key_secret: Option<Spanned<String>>,
    subject_key: Option<Spanned<String>>,
    pseudonym_key: Option<Spanned<String>>,
    max_deviation: Option<Spanned<u64>>,
    variance: Option<Spanned<toml::Value>>,
    js: Option<Spanned<u64>>,
    population_floor: Option<Spanned<u64>>,
    period_granularity: Option<Spanned<String>>,
    period_ranges: Option<Spanned<bool>>,
    max_dimensions: Option<Spanned<u64>>,
    max_populations_per_day: Option<Spanned<u64>>,
    max_populations_per_year: Option<Spanned<u64>>,
    magnitude_min_youths: Option<Spanned<u64>>,
    dominance_max_share_percent: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    ca: Spanned<String>,
    cert: Spanned<String>,
    key: Spanned<String>,
    crl: Option<Spanned<String>>,
    reload_seconds: Option<Spanned<u64>>,
    crl_grace_days: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_request_bytes: Option<Spanned<u64>>,
    max_deadline_ms: Option<Spanned<u64>>,
    max_group_by: Option<Spanned<u64>>,
    max_filters: Option<Spanned<u64>>,
    max_cells: Option<Spanned<u64>>,
    max_connection_age_seconds: Option<Spanned<u64>>,
    idle_timeout_seconds: Option<Spanned<u64>>,
    refusals_per_minute: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    max_handshakes: Option<Spanned<u64>>,
    handshake_timeout_seconds: Option<Spanned<u64>>,
    checkpoint_max_bytes: Option<Spanned<u64>>,
    checkpoints_per_minute: Option<Spanned<u64>>,
    checkpoints_kept: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    peer: Vec<Spanned<ManifestEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    node: Spanned<String>,
    address: Spanned<String>,
    peer_id: Spanned<String>,
}

/// A value with where it came from.
struct Value<T> {
    value: T,
    place: Place,
    key: &'static str,
}

impl<T> Value<T> {
    fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            place: self.place.clone(),
            key: self.key.to_owned(),
            reason: reason.into(),
        }
    }
}

struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn file_place(&self, offset: usize) -> Place {
        Place::File {
            path: self.path.display().to_string(),
            line: self.line(offset),
        }
    }

    /// The file's string value, or the environment's when the key's variable is set.
    fn string(&self, key: &'static str, file: Option<&Spanned<String>>) -> Option<Value<String>> {
        let var = env_var(key);
        match (self.env)(&var) {
            Some(value) => Some(Value {
                value,
                place: Place::Env(var),
                key,
            }),
            None => file.map(|s| Value {
                value: s.get_ref().clone(),
                place: self.file_place(s.span().start),
                key,
            }),
        }
    }

    /// A key the file must have (the environment may still override it).
    fn required(&self, key: &'static str, file: &Spanned<String>) -> Value<String> {
        let from_file = || Value {
            value: file.get_ref().clone(),
            place: self.file_place(file.span().start),
            key,
        };
        self.string(key, None).unwrap_or_else(from_file)
    }

    fn number(
        &self,
        key: &'static str,
        file: Option<&Spanned<u64>>,
    ) -> Result<Option<Value<u64>>, ConfigError> {
        let var = env_var(key);
        if let Some(text) = (self.env)(&var) {
            let value = text.trim().parse().map_err(|_| ConfigError {
                place: Place::Env(var.clone()),
                key: key.to_owned(),
                reason: "must be a whole number".to_owned(),
            })?;
            return Ok(Some(Value {
                value,
                place: Place::Env(var),
                key,
            }));
        }
        Ok(file.map(|s| Value {
            value: *s.get_ref(),
            place: self.file_place(s.span().start),
            key,
        }))
    }

    /// An optional `true` or `false`.
    fn boolean(
        &self,
        key: &'static str,
        file: Option<&Spanned<bool>>,
    ) -> Result<Option<bool>, ConfigError> {
        let var = env_var(key);
        match (self.env)(&var) {
            Some(text) => match text.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(ConfigError {
                    place: Place::Env(var),
                    key: key.to_owned(),
                    reason: "must be true or false".to_owned(),
                }),
            },
            None => Ok(file.map(|s| *s.get_ref())),
        }
    }

    /// An optional address such as `127.0.0.1:8401`.
    fn address(
        &self,
        key: &'static str,
        file: Option<&Spanned<String>>,
        example: &str,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        self.string(key, file)
            .map(|value| {
                value
                    .value
                    .parse::<SocketAddr>()
                    .map_err(|_| value.error(format!("must be an address such as {example}")))
            })
            .transpose()
    }

    /// A path relative to the config file's folder (not checked).
    fn relative(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_relative() {
            self.path.parent().unwrap_or(Path::new(".")).join(path)
        } else {
            path.to_owned()
        }
    }

    /// Resolves a path relative to the config file's folder and checks that it is readable.
    fn file(&self, value: &Value<String>) -> Result<PathBuf, ConfigError> {
        let path = self.relative(&value.value);
        std::fs::File::open(&path)
            .map_err(|e| value.error(format!("cannot read {}: {e}", path.display())))?;
        Ok(path)
    }
}

/// Every key of a node config, as `ZICHT_*` variables name them too ([`env_var`]).
pub const KEYS: &[&str] = &[
    "node",
    "listen",
    "health_listen",
    "database",
    "start_empty",
    "policy",
    "manifest",
    "checkpoint_seconds",
    "checkpoint_entries",
    "metrics_listen",
    "otlp_endpoint",
    "otlp_interval_seconds",
    "otlp_ca",
    "otlp_client_certificate",
    "tls.ca",
    "tls.cert",
    "tls.key",
    "tls.crl",
    "tls.reload_seconds",
    "tls.crl_grace_days",
    "limits.max_request_bytes",
    "limits.max_deadline_ms",
    "limits.max_group_by",
    "limits.max_filters",
    "limits.max_cells",
    "limits.max_connection_age_seconds",
    "limits.idle_timeout_seconds",
    "limits.refusals_per_minute",
    "limits.max_connections",
    "limits.max_handshakes",
    "limits.handshake_timeout_seconds",
    "limits.checkpoint_max_bytes",
    "limits.checkpoints_per_minute",
    "limits.checkpoints_kept",
    "privacy.record_key_secret",
    "privacy.pseudonym_key",
    "privacy.subject_key",
    "privacy.max_deviation",
    "privacy.variance",
    "privacy.js",
    "privacy.population_floor",
    "privacy.period_granularity",
    "privacy.period_ranges",
    "privacy.max_dimensions",
    "privacy.max_populations_per_day",
    "privacy.max_populations_per_year",
    "privacy.magnitude_min_youths",
    "privacy.dominance_max_share_percent",
];

/// The environment variable that overrides `key`: `ZICHT_` and the key in capitals with `.`
/// as `_` (`tls.cert` is `ZICHT_TLS_CERT`); the database URL is `ZICHT_DATABASE_URL`, as for
/// every zicht command.
pub fn env_var(key: &str) -> String {
    debug_assert!(KEYS.contains(&key), "{key} is missing from config::KEYS");
    if key == "database" {
        return "ZICHT_DATABASE_URL".to_owned();
    }
    format!("ZICHT_{}", key.to_ascii_uppercase().replace('.', "_"))
}

fn positive(value: Option<Value<u64>>, default: u64) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v.value == 0 => Err(v.error("must be at least 1")),
        Some(v) => Ok(v.value),
    }
}

/// Reads a TOML file into `T`; syntax errors name the file and line.
fn parse_file<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    hint: &str,
) -> Result<(String, T), ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError::unreadable(path, what, hint, &e))?;
    let file: T = toml::from_str(&text).map_err(|error| {
        let line = error.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        ConfigError {
            place: Place::File {
                path: path.display().to_string(),
                line,
            },
            key: "(syntax)".to_owned(),
            reason: error.message().to_owned(),
        }
    })?;
    Ok((text, file))
}

/// The `[tls]` section's files, each checked readable.
fn tls_files(reader: &Reader<'_>, tls: &TlsSection) -> Result<TlsFiles, ConfigError> {
    let ca = reader.file(&reader.required("tls.ca", &tls.ca))?;
    let cert = reader.file(&reader.required("tls.cert", &tls.cert))?;
    let key = reader.file(&reader.required("tls.key", &tls.key))?;
    let crl = match reader.string("tls.crl", tls.crl.as_ref()) {
        Some(value) => Some(reader.file(&value)?),
        None => None,
    };
    Ok(TlsFiles { ca, cert, key, crl })
}

/// A node name as written in a file: an exact region or network code.
fn node_name(value: &Value<String>) -> Result<NodeName, ConfigError> {
    NodeName::parse(&value.value)
        .ok()
        .filter(|n| n.code() == value.value)
        .ok_or_else(|| value.error("must be a region or network code (e.g. drenthe, jenn)"))
}

/// How a person (an analyst) reaches a node: the node to ask, the federation manifest that
/// gives its address and PeerID, and the person's own certificate.
///
/// ```toml
/// node = "drenthe"               # the node to ask; `zicht query --node jenn` asks another
/// manifest = "../federation.toml"
///
/// [tls]
/// ca = "../../certs/dev/ca.pem"
/// cert = "../../certs/dev/people/analyst-drenthe.pem"
/// key = "../../certs/dev/people/analyst-drenthe.key"
/// crl = "../../certs/dev/crl.pem"
/// ```
#[derive(Debug, Clone)]
pub struct ClientProfile {
    /// The node asked by default.
    pub node: NodeName,
    /// Every node's address and PeerID.
    pub manifest: Vec<ManifestPeer>,
    /// The person's certificate, key, and the trust bundle and CRL.
    pub tls: TlsFiles,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    node: Spanned<String>,
    manifest: Spanned<String>,
    tls: Spanned<TlsSection>,
}

/// Loads and validates a client profile.
pub fn load_client(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientProfile, ConfigError> {
    let (text, file) = parse_file::<ClientFile>(
        path,
        "client profile",
        " (profiles are in deploy/clients/; the demo writes its own in zicht-demo/clients/)",
    )?;
    let reader = Reader {
        path,
        text: &text,
        env,
    };
    let node = node_name(&reader.required("node", &file.node))?;
    let manifest_value = reader.required("manifest", &file.manifest);
    let manifest = load_manifest(&reader.file(&manifest_value)?)?;
    if !manifest.iter().any(|p| p.node == node) {
        return Err(manifest_value.error(format!("the manifest does not list {node}")));
    }
    let tls = tls_files(&reader, file.tls.get_ref())?;
    Ok(ClientProfile {
        node,
        manifest,
        tls,
    })
}

/// Reads a node's configuration file and its `node` key, then hands both to `then`.
fn read_node_file<T>(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    then: impl FnOnce(&Reader<'_>, ConfigFile, NodeName) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let (text, file) = parse_file::<ConfigFile>(
        path,
        "node configuration",
        " (every node's configuration is in deploy/nodes/)",
    )?;
    let reader = Reader {
        path,
        text: &text,
        env,
    };
    let node = node_name(&reader.required("node", &file.node))?;
    then(&reader, file, node)
}

/// What a node's data is: which node, its database, and whether it may start on a database
/// that holds no placements yet (`start_empty`, a new region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTarget {
    /// Which node.
    pub node: NodeName,
    /// Its database URL.
    pub database: String,
    /// Whether a regional node may start with no placements.
    pub start_empty: bool,
    /// The pseudonymisation key file (`[privacy] pseudonym_key`), if the config names one.
    pub pseudonym_key: Option<PathBuf>,
}

/// The node, database and `start_empty` of a node's configuration, read without loading the
/// rest (nothing is created): for `zicht import --config` and the checks before a start.
pub fn data_target(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DataTarget, ConfigError> {
    read_node_file(path, env, |reader, file, node| {
        Ok(DataTarget {
            node,
            database: database_url(reader, &file, node)?,
            start_empty: reader
                .boolean("start_empty", file.start_empty.as_ref())?
                .unwrap_or(false),
            pseudonym_key: reader
                .string(
                    "privacy.pseudonym_key",
                    file.privacy.as_ref().and_then(|p| p.pseudonym_key.as_ref()),
                )
                .map(|value| reader.relative(&value.value)),
        })
    })
}

/// Loads and validates a node's configuration. A region's record-key secret and data-subject
/// key are created on first use (see [`data_target`] to check the database first).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<NodeConfig, ConfigError> {
    read_node_file(path, env, node_config)
}

fn node_config(
    reader: &Reader<'_>,
    file: ConfigFile,
    node: NodeName,
) -> Result<NodeConfig, ConfigError> {
    let listen_value = reader.required("listen", &file.listen);
    let listen: SocketAddr = listen_value
        .value
        .parse()
        .map_err(|_| listen_value.error("must be an address such as 127.0.0.1:7401"))?;
    let health_listen = reader.address(
        "health_listen",
        file.health_listen.as_ref(),
        "127.0.0.1:8401",
    )?;
    let metrics_listen = reader.address(
        "metrics_listen",
        file.metrics_listen.as_ref(),
        "127.0.0.1:9401",
    )?;
    let otlp = otlp_settings(reader, &file)?;
    let database = database_url(reader, &file, node)?;
    let tls = file.tls.get_ref();
    let tls_files = tls_files(reader, tls)?;
    let reload = positive(
        reader.number("tls.reload_seconds", tls.reload_seconds.as_ref())?,
        5,
    )?;
    let crl_grace_days = positive(
        reader.number("tls.crl_grace_days", tls.crl_grace_days.as_ref())?,
        crate::settings::DEFAULT_CRL_GRACE.as_secs() / 86_400,
    )?;
    let checkpoint_seconds = positive(
        reader.number("checkpoint_seconds", file.checkpoint_seconds.as_ref())?,
        300,
    )?;
    let checkpoint_entries = positive(
        reader.number("checkpoint_entries", file.checkpoint_entries.as_ref())?,
        crate::settings::DEFAULT_CHECKPOINT_ENTRIES,
    )?;
    let (manifest, policy, policy_path) = manifest_and_policy(reader, &file, node)?;
    let limits = limits(reader, &file.limits.unwrap_or_default())?;
    let region = match node {
        NodeName::Region(region) => Some(region),
        NodeName::Network(_) => None,
    };
    owner_grants(&policy, region, &policy_path)?;
    let disclosure = disclosure(reader, &file.privacy.unwrap_or_default(), region)?;
    Ok(NodeConfig {
        node,
        database,
        manifest: manifest.clone(),
        settings: NodeSettings {
            node,
            manifest,
            listen,
            health_listen,
            tls: tls_files,
            checkpoint_interval: Duration::from_secs(checkpoint_seconds),
            checkpoint_entries,
            metrics_listen,
            otlp,
            tls_reload_interval: Duration::from_secs(reload),
            crl_grace: Duration::from_secs(crl_grace_days.saturating_mul(86_400)),
            policy,
            limits,
            disclosure,
        },
    })
}

/// `otlp_endpoint`, `otlp_interval_seconds`, `otlp_ca` and `otlp_client_certificate`: export
/// is off unless the endpoint is set.
fn otlp_settings(
    reader: &Reader<'_>,
    file: &ConfigFile,
) -> Result<Option<crate::settings::OtlpSettings>, ConfigError> {
    let interval = positive(
        reader.number("otlp_interval_seconds", file.otlp_interval_seconds.as_ref())?,
        10,
    )?;
    let Some(value) = reader.string("otlp_endpoint", file.otlp_endpoint.as_ref()) else {
        return Ok(None);
    };
    let tls = value.value.starts_with("https://");
    let usable = (tls || value.value.starts_with("http://"))
        && tonic::transport::Endpoint::from_shared(value.value.clone()).is_ok();
    if !usable {
        return Err(value.error(
            "must be an OTLP/gRPC address such as https://collector.example:4317 (TLS), or http://127.0.0.1:4317 for a collector on this host",
        ));
    }
    let ca = reader
        .string("otlp_ca", file.otlp_ca.as_ref())
        .map(|ca| reader.file(&ca))
        .transpose()?;
    let client_certificate = reader
        .boolean(
            "otlp_client_certificate",
            file.otlp_client_certificate.as_ref(),
        )?
        .unwrap_or(false);
    Ok(Some(crate::settings::OtlpSettings {
        endpoint: value.value,
        interval: Duration::from_secs(interval),
        ca,
        client_certificate,
    }))
}

/// `database`: every node logs what leaves it; an aggregator's database holds only its logs.
fn database_url(
    reader: &Reader<'_>,
    file: &ConfigFile,
    node: NodeName,
) -> Result<String, ConfigError> {
    match reader.string("database", file.database.as_ref()) {
        Some(value) => Ok(resolve_sqlite(reader.path, &value.value)),
        None => Err(ConfigError {
            place: reader.file_place(0),
            key: "database".to_owned(),
            reason: match node {
                NodeName::Region(_) => "a regional node needs its database URL",
                NodeName::Network(_) => {
                    "a network aggregator needs a database for its release log (it holds no youth data)"
                }
            }
            .to_owned(),
        }),
    }
}

/// `manifest` (which must list this node) and `policy` (checked against its PeerIDs).
fn manifest_and_policy(
    reader: &Reader<'_>,
    file: &ConfigFile,
    node: NodeName,
) -> Result<(Vec<ManifestPeer>, crate::policy::Policy, PathBuf), ConfigError> {
    let manifest_value = reader.required("manifest", &file.manifest);
    let manifest = load_manifest(&reader.file(&manifest_value)?)?;
    if !manifest.iter().any(|p| p.node == node) {
        return Err(manifest_value.error(format!("the manifest does not list this node ({node})")));
    }
    let policy_value = reader.required("policy", &file.policy);
    let policy_path = reader.file(&policy_value)?;
    let policy_text = std::fs::read_to_string(&policy_path)
        .map_err(|e| policy_value.error(format!("cannot read {}: {e}", policy_path.display())))?;
    let known: Vec<PeerId> = manifest.iter().map(|p| p.peer_id).collect();
    let policy = parse_policy(&policy_text, Some(&known)).map_err(|problems| {
        let first = &problems[0];
        ConfigError {
            place: Place::File {
                path: policy_path.display().to_string(),
                line: first.line,
            },
            key: "policy".to_owned(),
            reason: format!(
                "{} (and {} more; run `zicht policy check`)",
                first.message,
                problems.len() - 1
            ),
        }
    })?;
    Ok((manifest, policy, policy_path))
}

/// The `[limits]` section, each a positive number with its default.
fn limits(reader: &Reader<'_>, section: &LimitsSection) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let number = |key, spanned: &Option<Spanned<u64>>, default: u64| {
        positive(reader.number(key, spanned.as_ref())?, default)
    };
    let size = |key, spanned: &Option<Spanned<u64>>, default: usize| {
        number(key, spanned, default as u64).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let rate = |key, spanned: &Option<Spanned<u64>>, default: u32| {
        number(key, spanned, u64::from(default)).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let seconds = |key, spanned: &Option<Spanned<u64>>, default: Duration| {
        number(key, spanned, default.as_secs()).map(Duration::from_secs)
    };
    let l = section;
    Ok(Limits {
        max_request_bytes: size(
            "limits.max_request_bytes",
            &l.max_request_bytes,
            d.max_request_bytes,
        )?,
        max_deadline: Duration::from_millis(number(
            "limits.max_deadline_ms",
            &l.max_deadline_ms,
            d.max_deadline.as_millis() as u64,
        )?),
        max_group_by: size("limits.max_group_by", &l.max_group_by, d.max_group_by)?,
        max_filters: size("limits.max_filters", &l.max_filters, d.max_filters)?,
        max_cells: number("limits.max_cells", &l.max_cells, d.max_cells)?,
        max_connection_age: seconds(
            "limits.max_connection_age_seconds",
            &l.max_connection_age_seconds,
            d.max_connection_age,
        )?,
        idle_timeout: seconds(
            "limits.idle_timeout_seconds",
            &l.idle_timeout_seconds,
            d.idle_timeout,
        )?,
        refusals_per_minute: rate(
            "limits.refusals_per_minute",
            &l.refusals_per_minute,
            d.refusals_per_minute,
        )?,
        max_connections: size(
            "limits.max_connections",
            &l.max_connections,
            d.max_connections,
        )?,
        max_handshakes: size("limits.max_handshakes", &l.max_handshakes, d.max_handshakes)?,
        handshake_timeout: seconds(
            "limits.handshake_timeout_seconds",
            &l.handshake_timeout_seconds,
            d.handshake_timeout,
        )?,
        checkpoint_max_bytes: size(
            "limits.checkpoint_max_bytes",
            &l.checkpoint_max_bytes,
            d.checkpoint_max_bytes,
        )?,
        checkpoints_per_minute: rate(
            "limits.checkpoints_per_minute",
            &l.checkpoints_per_minute,
            d.checkpoints_per_minute,
        )?,
        checkpoints_kept: size(
            "limits.checkpoints_kept",
            &l.checkpoints_kept,
            d.checkpoints_kept,
        )?,
    })
}

/// The `[privacy]` section: the settings, and for a region its record-key secret and its
/// data-subject key (each created on first use; a file that cannot be read stops the node).
fn disclosure(
    reader: &Reader<'_>,
    section: &PrivacySection,
    region: Option<zicht_model::Region>,
) -> Result<crate::Disclosure, ConfigError> {
    let privacy = privacy_settings(reader, section)?;
    let secret = match reader.string(
        "privacy.record_key_secret",
        section.record_key_secret.as_ref(),
    ) {
        Some(value) if region.is_some() => Some(
            crate::secret::load_or_create(&reader.relative(&value.value))
                .map_err(|e| value.error(e))?
                .0,
        ),
        Some(value) => {
            return Err(value.error("a network aggregator holds no youth data and needs no secret"))
        }
        None => None,
    };
    let subject_key = match reader.string("privacy.subject_key", section.subject_key.as_ref()) {
        Some(value) if region.is_some() => Some(
            crate::secret::load_or_create_subject_key(&reader.relative(&value.value))
                .map_err(|e| value.error(e))?
                .0,
        ),
        Some(value) => {
            return Err(
                value.error("a network aggregator holds no youth data and needs no subject key")
            )
        }
        None => None,
    };
    let disclosure =
        crate::Disclosure::new(privacy, region, secret).map_err(|problem| ConfigError {
            place: reader.file_place(0),
            key: format!("privacy.{}", problem.key),
            reason: problem.reason,
        })?;
    Ok(match subject_key {
        Some(key) => disclosure.with_subject_key(key),
        None => disclosure,
    })
}

/// `owner = true` grants name this node's own region's analysts only: owners see exact
/// counts of the data this node holds.
fn owner_grants(
    policy: &crate::policy::Policy,
    region: Option<zicht_model::Region>,
    policy_path: &Path,
) -> Result<(), ConfigError> {
    use crate::policy::Who;
    for (index, grant) in policy.grants.iter().enumerate() {
        let own = matches!((&grant.who, region), (Who::Analyst(Some(r)), Some(own)) if *r == own);
        if grant.owner && !own {
            return Err(ConfigError {
                place: Place::File {
                    path: policy_path.display().to_string(),
                    line: 1,
                },
                key: "policy".to_owned(),
                reason: format!(
                    "grant {}: owner = true must name this node's own analysts (analyst:{})",
                    index + 1,
                    region.map_or("<region>", |r| r.code())
                ),
            });
        }
    }
    Ok(())
}

/// The `[privacy]` section: defaults where absent, and no value looser than the network floor.
fn privacy_settings(
    reader: &Reader<'_>,
    section: &PrivacySection,
) -> Result<zicht_privacy::Settings, ConfigError> {
    let mut settings = zicht_privacy::Settings::default();
    let mut places: Vec<(&'static str, Place)> = Vec::new();
    let fields: [(&'static str, &Option<Spanned<u64>>, &mut u32); 8] = [
        (
            "privacy.max_deviation",
            &section.max_deviation,
            &mut settings.max_deviation,
        ),
        ("privacy.js", &section.js, &mut settings.js),
        (
            "privacy.population_floor",
            &section.population_floor,
            &mut settings.population_floor,
        ),
        (
            "privacy.max_dimensions",
            &section.max_dimensions,
            &mut settings.max_dimensions,
        ),
        (
            "privacy.max_populations_per_day",
            &section.max_populations_per_day,
            &mut settings.max_populations_per_day,
        ),
        (
            "privacy.max_populations_per_year",
            &section.max_populations_per_year,
            &mut settings.max_populations_per_year,
        ),
        (
            "privacy.magnitude_min_youths",
            &section.magnitude_min_youths,
            &mut settings.magnitude_min_youths,
        ),
        (
            "privacy.dominance_max_share_percent",
            &section.dominance_max_share_percent,
            &mut settings.dominance_max_share_percent,
        ),
    ];
    for (key, spanned, target) in fields {
        if let Some(value) = reader.number(key, spanned.as_ref())? {
            *target = u32::try_from(value.value).map_err(|_| value.error("is too large"))?;
            places.push((key, value.place));
        }
    }
    if let Some((variance, place)) = variance(reader, section)? {
        settings.variance = variance;
        places.push(("privacy.variance", place));
    }
    if let Some(value) = reader.string(
        "privacy.period_granularity",
        section.period_granularity.as_ref(),
    ) {
        settings.period_granularity = zicht_privacy::PeriodGranularity::parse(&value.value)
            .ok_or_else(|| value.error("must be month, quarter or year"))?;
    }
    if let Some(ranges) = reader.boolean("privacy.period_ranges", section.period_ranges.as_ref())? {
        settings.period_ranges = ranges;
    }
    if let Some(problem) = settings.problems().into_iter().next() {
        let key = format!("privacy.{}", problem.key);
        let place = places
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, place)| place)
            .unwrap_or_else(|| reader.file_place(0));
        return Err(ConfigError {
            place,
            key,
            reason: problem.reason,
        });
    }
    Ok(settings)
}

/// `privacy.variance`: a number, whole or not, from the environment or the file.
fn variance(
    reader: &Reader<'_>,
    section: &PrivacySection,
) -> Result<Option<(f64, Place)>, ConfigError> {
    let var = env_var("privacy.variance");
    let given = match (reader.env)(&var) {
        Some(text) => Some((text.trim().parse::<f64>().ok(), Place::Env(var))),
        None => section.variance.as_ref().map(|v| {
            let number = match v.get_ref() {
                toml::Value::Float(f) => Some(*f),
                toml::Value::Integer(i) => Some(*i as f64),
                _ => None,
            };
            (number, reader.file_place(v.span().start))
        }),
    };
    given
        .map(|(number, place)| match number {
            Some(number) => Ok((number, place)),
            None => Err(ConfigError {
                place,
                key: "privacy.variance".to_owned(),
                reason: "must be a number, e.g. 2.0".to_owned(),
            }),
        })
        .transpose()
}

/// A SQLite URL or file path with a relative path is made relative to the config file's
/// folder, like every other path in the file; PostgreSQL URLs stay as they are.
fn resolve_sqlite(config: &Path, url: &str) -> String {
    let (prefix, rest) = if let Some(rest) = url.strip_prefix("sqlite://") {
        ("sqlite://", rest)
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        ("sqlite:", rest)
    } else if url.contains("://") {
        return url.to_owned();
    } else {
        ("", url)
    };
    let (file, query) = rest
        .split_once('?')
        .map_or((rest, None), |(f, q)| (f, Some(q)));
    if file.is_empty() || file.starts_with('/') || file.starts_with(':') {
        return url.to_owned();
    }
    let joined = config.parent().unwrap_or(Path::new(".")).join(file);
    match query {
        Some(query) => format!("{prefix}{}?{query}", joined.display()),
        None => format!("{prefix}{}", joined.display()),
    }
}

/// The text of a federation manifest of `peers` as [`load_manifest`] reads it, after the
/// `comment` lines (each written with `# `).
pub fn manifest_text(comment: &str, peers: &[ManifestPeer]) -> String {
    let mut text = comment_lines(comment);
    for peer in peers {
        text.push_str(&format!(
            "\n[[peer]]\nnode = \"{}\"\naddress = \"{}\"\npeer_id = \"{}\"\n",
            peer.node, peer.address, peer.peer_id
        ));
    }
    text
}

/// The text of a client profile as [`load_client`] reads it: the person of `tls` asks `node`
/// by default, with the federation manifest at `manifest`.
pub fn client_profile_text(
    comment: &str,
    node: NodeName,
    manifest: &Path,
    tls: &TlsFiles,
) -> String {
    // A TOML basic string: backslash, quote and control characters escaped.
    let quoted = |path: &Path| {
        let mut text = String::from("\"");
        for c in path.display().to_string().chars() {
            match c {
                '\\' | '"' => {
                    text.push('\\');
                    text.push(c);
                }
                c if c.is_control() => text.push_str(&format!("\\u{:04X}", u32::from(c))),
                c => text.push(c),
            }
        }
        text.push('"');
        text
    };
    let mut text = comment_lines(comment);
    text.push_str(&format!(
        "node = \"{node}\"\nmanifest = {}\n\n[tls]\nca = {}\ncert = {}\nkey = {}\n",
        quoted(manifest),
        quoted(&tls.ca),
        quoted(&tls.cert),
        quoted(&tls.key),
    ));
    if let Some(crl) = &tls.crl {
        text.push_str(&format!("crl = {}\n", quoted(crl)));
    }
    text
}

fn comment_lines(comment: &str) -> String {
    comment.lines().map(|line| format!("# {line}\n")).collect()
}

/// Loads a federation manifest: `[[peer]]` tables with `node`, `address`, `peer_id`.
pub fn load_manifest(path: &Path) -> Result<Vec<ManifestPeer>, ConfigError> {
    let place = |text: &str, offset: usize| Place::File {
        path: path.display().to_string(),
        line: text[..offset.min(text.len())].matches('\n').count() + 1,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::unreadable(path, "federation manifest", "", &e))?;
    let file: ManifestFile = toml::from_str(&text).map_err(|error| ConfigError {
        place: place(&text, error.span().map_or(0, |s| s.start)),
        key: "(syntax)".to_owned(),
        reason: error.message().to_owned(),
    })?;
    let mut peers: Vec<ManifestPeer> = Vec::new();
    for entry in &file.peer {
        let entry = entry.get_ref();
        let error = |spanned_start: usize, key: &str, reason: &str| ConfigError {
            place: place(&text, spanned_start),
            key: format!("peer.{key}"),
            reason: reason.to_owned(),
        };
        let node = NodeName::parse(entry.node.get_ref())
            .ok()
            .filter(|n| n.code() == entry.node.get_ref())
            .ok_or_else(|| {
                error(
                    entry.node.span().start,
                    "node",
                    "must be a region or network code",
                )
            })?;
        let address = crate::settings::PeerAddress::parse(entry.address.get_ref())
            .map_err(|e| error(entry.address.span().start, "address", &e.to_string()))?;
        let peer_id = PeerId::parse(entry.peer_id.get_ref())
            .map_err(|_| error(entry.peer_id.span().start, "peer_id", "must be 20 digits"))?;
        if peers.iter().any(|p| p.node == node || p.peer_id == peer_id) {
            return Err(error(
                entry.node.span().start,
                "node",
                "node or PeerID listed twice",
            ));
        }
        peers.push(ManifestPeer {
            node,
            address,
            peer_id,
        });
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_are_the_keys_in_capitals() {
        assert_eq!(env_var("listen"), "ZICHT_LISTEN");
        assert_eq!(env_var("tls.cert"), "ZICHT_TLS_CERT");
        assert_eq!(env_var("limits.max_cells"), "ZICHT_LIMITS_MAX_CELLS");
        assert_eq!(
            env_var("privacy.record_key_secret"),
            "ZICHT_PRIVACY_RECORD_KEY_SECRET"
        );
        assert_eq!(env_var("database"), "ZICHT_DATABASE_URL");
    }
}
