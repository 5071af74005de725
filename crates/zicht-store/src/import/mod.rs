//! CSV import, canonical format v1: one file per table, a header row naming exactly the table's
//! columns in any order, UTF-8, RFC 4180 quoting, ISO dates, codes from the code lists.
//!
//! Import is all-or-nothing. The file is checked and stored as it is read, in one transaction;
//! a bad row rejects the file with `file:line:column` and the reason (never the value, which
//! may be youth data), and the transaction is rolled back, so nothing is stored. A good file
//! is stored upserting on the table's key, so importing the same file again changes nothing.

mod dialect;
mod ijw;
mod load;
mod mapping;
mod parse;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};
use zicht_model::{
    Capacity, CodeList, Consent, Measure, NaiveDate, Placement, Transition18Check, Violation,
};

pub use dialect::{parse_delimiter, Dialect, Sniffed, TextEncoding, WorkbookError};
pub use ijw::{is_ijw_file, MessageCounts, MessageProblem, LEGAL_STATUS};
pub use mapping::{Mapping, MappingError, Provider};
pub use parse::parse;

use crate::{on_pool, query_error, Store, StoreError};

/// The tables a region imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `placements.csv`.
    Placements,
    /// `capacity.csv`.
    Capacity,
    /// `transition18.csv`.
    Transition18,
    /// `consents.csv`.
    Consents,
    /// `measures.csv` (vrijheidsbeperkende maatregelen); needs `capacity` and `placements`
    /// stored first, as it names their facilities and placements.
    Measures,
}

impl Table {
    /// Every table, in import order.
    pub const ALL: [Table; 5] = [
        Table::Placements,
        Table::Capacity,
        Table::Transition18,
        Table::Consents,
        Table::Measures,
    ];

    /// The table's name (also the database table and the file stem).
    pub fn name(self) -> &'static str {
        match self {
            Table::Placements => "placements",
            Table::Capacity => "capacity",
            Table::Transition18 => "transition18",
            Table::Consents => "consents",
            Table::Measures => "measures",
        }
    }

    /// The canonical columns of the table's CSV file.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Placements => Placement::COLUMNS,
            Table::Capacity => Capacity::COLUMNS,
            Table::Transition18 => Transition18Check::COLUMNS,
            Table::Consents => Consent::COLUMNS,
            Table::Measures => Measure::COLUMNS,
        }
    }

    /// The columns that identify a row; a file may hold each key once.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Table::Placements => &["youth_id", "start_date", "care_type", "provider"],
            Table::Capacity => &["provider", "facility", "care_type", "peildatum"],
            Table::Transition18 => &["youth_id", "check_date"],
            Table::Consents => &["consent_id"],
            Table::Measures => &["youth_id", "start_date", "start_time", "kind"],
        }
    }

    /// Parses a table name.
    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// The table a file is for, from its name: `placements.csv`, `placements-2024.csv`, ...
    pub fn from_file_name(path: &Path) -> Option<Table> {
        let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
        Table::ALL.iter().copied().find(|t| {
            stem.strip_prefix(t.name())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '_', '.']))
        })
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The checked rows of one file, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// Rows of `placements.csv`.
    Placements(Vec<Placement>),
    /// Rows of `capacity.csv`.
    Capacity(Vec<Capacity>),
    /// Rows of `transition18.csv`.
    Transition18(Vec<Transition18Check>),
    /// Rows of `consents.csv`.
    Consents(Vec<Consent>),
    /// Rows of `measures.csv`.
    Measures(Vec<Measure>),
}

impl Rows {
    /// The table the rows belong to.
    pub fn table(&self) -> Table {
        match self {
            Rows::Placements(_) => Table::Placements,
            Rows::Capacity(_) => Table::Capacity,
            Rows::Transition18(_) => Table::Transition18,
            Rows::Consents(_) => Table::Consents,
            Rows::Measures(_) => Table::Measures,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Placements(rows) => rows.len(),
            Rows::Capacity(rows) => rows.len(),
            Rows::Transition18(rows) => rows.len(),
            Rows::Consents(rows) => rows.len(),
            Rows::Measures(rows) => rows.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No rows of `table`.
    pub fn empty(table: Table) -> Rows {
        match table {
            Table::Placements => Rows::Placements(Vec::new()),
            Table::Capacity => Rows::Capacity(Vec::new()),
            Table::Transition18 => Rows::Transition18(Vec::new()),
            Table::Consents => Rows::Consents(Vec::new()),
            Table::Measures => Rows::Measures(Vec::new()),
        }
    }

    /// Appends `more` rows of the same table (rows of another table are a caller's bug and
    /// are dropped).
    fn extend(&mut self, more: Rows) {
        match (self, more) {
            (Rows::Placements(rows), Rows::Placements(more)) => rows.extend(more),
            (Rows::Capacity(rows), Rows::Capacity(more)) => rows.extend(more),
            (Rows::Transition18(rows), Rows::Transition18(more)) => rows.extend(more),
            (Rows::Consents(rows), Rows::Consents(more)) => rows.extend(more),
            (Rows::Measures(rows), Rows::Measures(more)) => rows.extend(more),
            _ => debug_assert!(false, "rows of two tables"),
        }
    }
}

/// One reason a file was rejected, at `line:column` (both 1-based; the column is the field's
/// position in the file's own column order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line of the file (the first line of a record that spans lines).
    pub line: u64,
    /// Field number within the line.
    pub column: usize,
    /// The canonical column name, where the field is a known column.
    pub column_name: Option<&'static str>,
    /// What is wrong, without the offending value.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if let Some(name) = self.column_name {
            write!(f, "{name}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// At most this many problems are collected before a file's check stops.
pub const MAX_PROBLEMS: usize = 20;

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("read {file}")]
    Read {
        /// The file as named by the user.
        file: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The table could not be told from the file name.
    #[error("{file}: cannot tell the table from the file name; name it placements.csv, capacity.csv, transition18.csv, consents.csv or measures.csv (a suffix such as placements-2024.csv is fine), or give --table placements|capacity|transition18|consents|measures")]
    UnknownTable {
        /// The file as named by the user.
        file: String,
    },
    /// The file broke the format; nothing was stored.
    #[error("{}", rejected_message(file, problems, *complete))]
    Rejected {
        /// The file as named by the user.
        file: String,
        /// The problems found, in file order.
        problems: Vec<Problem>,
        /// False when the check stopped at [`MAX_PROBLEMS`].
        complete: bool,
    },
    /// iJw messages broke the format or could not be mapped; nothing was stored.
    #[error("{}", messages_message(file, problems, *complete))]
    Messages {
        /// The files as named by the user.
        file: String,
        /// The problems found.
        problems: Vec<MessageProblem>,
        /// False when the check stopped at [`MAX_PROBLEMS`].
        complete: bool,
    },
    /// iJw messages carry BSNs: they are read only with the region's pseudonymisation key.
    #[error("{file}: iJw messages carry BSNs, which zicht turns into pseudonyms as it reads them: give the region's pseudonymisation key (--pseudonym-key FILE, or [privacy] pseudonym_key of the node config); nothing was stored")]
    NoPseudonymKey {
        /// The files as named by the user.
        file: String,
    },
    /// An `.xlsx` workbook could not be read.
    #[error("{file}: {source}; nothing was stored")]
    Workbook {
        /// The file as named by the user.
        file: String,
        /// Cause.
        #[source]
        source: WorkbookError,
    },
    /// The database holds another region's placements than the import is for.
    #[error("{file}: the database holds the placements of {}, and this import is for {}; nothing was stored (is it the right database?)", held.code(), asked.code())]
    OtherRegion {
        /// The file as named by the user.
        file: String,
        /// The region the database holds.
        held: zicht_model::Region,
        /// The region the import is for.
        asked: zicht_model::Region,
    },
    /// The database refused or failed; the transaction was rolled back, nothing was stored.
    #[error("store {file}; nothing was stored")]
    Store {
        /// The file as named by the user.
        file: String,
        /// Cause.
        #[source]
        source: StoreError,
    },
}

fn rejected_message(file: &str, problems: &[Problem], complete: bool) -> String {
    let lines = problems.iter().map(|problem| format!("{file}:{problem}"));
    problems_message(file, lines, complete)
}

fn messages_message(file: &str, problems: &[MessageProblem], complete: bool) -> String {
    problems_message(file, problems.iter().map(ToString::to_string), complete)
}

/// `file: rejected` and a problem a line.
fn problems_message(file: &str, lines: impl Iterator<Item = String>, complete: bool) -> String {
    let mut message = format!("{file}: rejected, nothing was stored");
    for line in lines {
        message.push_str(&format!("\n  {line}"));
    }
    if !complete {
        message.push_str(&format!(
            "\n  (stopped after {MAX_PROBLEMS} problems; fix these and import again)"
        ));
    }
    message
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Replace the table's whole contents with the file (a full export), in the same
    /// transaction; by default rows are upserted on the table's key.
    pub replace: bool,
    /// How the file is written (detected where it leaves something open).
    pub dialect: Dialect,
    /// The region's mapping of its export's column names and codes.
    pub mapping: Option<std::sync::Arc<Mapping>>,
    /// Which region the placements must be of.
    pub region: RegionCheck,
    /// Pseudonymise the youth_id column under this key (the export holds the source's
    /// identifiers, such as BSNs, which are then never stored).
    pub pseudonymise: Option<std::sync::Arc<zicht_privacy::PseudonymKey>>,
}

/// Which region a placements file's rows must be of (by origin_region, and by the region its
/// origin_municipality belonged to on the start date); rows of another region reject the
/// file with a count per region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RegionCheck {
    /// The region the database holds: the one region of its stored placements, or for a
    /// database without placements, the region of the file's first row.
    #[default]
    Held,
    /// This region (from the node's config or `--region`); a database that holds another
    /// region's placements refuses the file.
    Region(zicht_model::Region),
    /// No check (`--allow-other-regions`): the file is meant to hold other regions' rows.
    Off,
}

/// What an import stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The table imported into.
    pub table: Table,
    /// Rows in the file (all stored).
    pub rows: u64,
    /// Whether the table's earlier contents were replaced.
    pub replaced: bool,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// What the file turned out to be: delimiter and encoding, or workbook sheet.
    pub sniffed: Sniffed,
}

/// The phase an import is in, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the file (`done` is 0, `total` its bytes).
    Check,
    /// Checking and writing to the database as the file is read: `done` and `total` count
    /// the file's bytes.
    Store,
}

/// Receives progress of a long import (the CLI draws a bar on a terminal).
pub trait Progress {
    /// `done` of `total` units of `phase` are finished.
    fn advance(&mut self, phase: Phase, done: u64, total: u64);
}

/// Reports no progress.
impl Progress for () {
    fn advance(&mut self, _: Phase, _: u64, _: u64) {}
}

/// Imports one file into the store: `table` names the table, or `None` to tell it from the
/// file name. The file is read, checked and stored as a stream (a thread checks while the
/// database writes, in one transaction): memory holds a few batches and the keys seen, not
/// the file. The first problem stops the writing and the transaction is rolled back, so a
/// rejected file stores nothing.
pub async fn import_file(
    store: &Store,
    path: &Path,
    table: Option<Table>,
    options: ImportOptions,
    progress: &mut dyn Progress,
) -> Result<ImportReport, ImportError> {
    let label = path.display().to_string();
    let table = table
        .or_else(|| Table::from_file_name(path))
        .ok_or_else(|| ImportError::UnknownTable {
            file: label.clone(),
        })?;
    let read_error = |source| ImportError::Read {
        file: label.clone(),
        source,
    };
    let store_error = |source| ImportError::Store {
        file: label.clone(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let links = match table {
        Table::Measures => Some(store.links().await.map_err(store_error)?),
        _ => None,
    };
    let region = match table {
        Table::Placements => store.checked_region(options.region, &label).await?,
        _ => (None, false),
    };
    let total = file.metadata().map_err(read_error)?.len();
    progress.advance(Phase::Check, 0, total);
    let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
    let workbook = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx") || e.eq_ignore_ascii_case("xlsm"));
    let replace = options.replace;
    let checking = Checking {
        label: label.clone(),
        table,
        workbook,
        options,
        region,
        links,
    };
    let checker = tokio::task::spawn_blocking(move || {
        checking.run(file, &mut |batch, at| {
            sender.blocking_send((batch, at)).is_ok()
        })
    });
    let joined = label.clone();
    let source = async move {
        checker.await.map_err(|join| ImportError::Read {
            file: joined,
            source: io::Error::other(join.to_string()),
        })?
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let finished = load::store_stream(
        store,
        table,
        replace,
        &file_name,
        &mut receiver,
        total,
        source,
        progress,
    )
    .await
    .map_err(store_error)??;
    Ok(ImportReport {
        table,
        rows: finished.rows,
        replaced: replace,
        sha256: finished.sha256,
        sniffed: finished.sniffed.unwrap_or(Sniffed {
            delimiter: b',',
            encoding: TextEncoding::Utf8,
            detected: true,
            sheet: None,
        }),
    })
}

/// What an iJw import stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesReport {
    /// Placements stored.
    pub rows: u64,
    /// Whether the placements' earlier contents were replaced.
    pub replaced: bool,
    /// The messages read.
    pub counts: MessageCounts,
    /// SHA-256 over the files' bytes in the order given, hex.
    pub sha256: String,
}

/// Imports iJw 3.2 messages (`.xml` files and `.zip` batches of them) as placements, all in
/// one transaction: every message is read and joined first (a JW307 may come before its
/// JW305), so a bad message or a truncated batch stores nothing. The BSNs become pseudonyms
/// under `options.pseudonymise`, which must be given; `options.mapping` names the aanbieders
/// and maps the codes (see `ijw`). `progress` hears the rows stored.
pub async fn import_messages(
    store: &Store,
    files: &[std::path::PathBuf],
    options: ImportOptions,
    progress: &mut dyn Progress,
) -> Result<MessagesReport, ImportError> {
    let label = match files {
        [one] => one.display().to_string(),
        _ => format!("{} iJw files", files.len()),
    };
    let Some(key) = options.pseudonymise.clone() else {
        return Err(ImportError::NoPseudonymKey { file: label });
    };
    let store_error = |source| ImportError::Store {
        file: label.clone(),
        source,
    };
    let (region, infer) = store.checked_region(options.region, &label).await?;
    let reading = parse::Reading {
        region,
        infer_region: infer,
        region_given: matches!(options.region, RegionCheck::Region(_)),
        ..Default::default()
    };
    let mapping = options.mapping.clone().unwrap_or_default();
    let owned: Vec<std::path::PathBuf> = files.to_vec();
    let joined = label.clone();
    let converted = tokio::task::spawn_blocking(move || {
        let mut tally = parse::RegionTally::new(&reading);
        ijw::convert(&owned, &key, &mapping, &mut tally, reading.region_given)
    })
    .await
    .map_err(|join| ImportError::Read {
        file: joined,
        source: io::Error::other(join.to_string()),
    })?
    .map_err(|failure| match failure {
        ijw::Failure::Io(file, source) => ImportError::Read { file, source },
        ijw::Failure::Problems(problems, complete) => ImportError::Messages {
            file: label.clone(),
            problems,
            complete,
        },
    })?;
    let file_name = files
        .first()
        .and_then(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut converted = converted;
    let ended = end_earlier(store, &converted, options.replace, &label).await?;
    if let Rows::Placements(rows) = &mut converted.rows {
        rows.extend(ended);
    }
    let rows = converted.rows.len() as u64;
    load::store_rows(
        store,
        converted.rows,
        options.clone(),
        &file_name,
        &converted.sha256,
        progress,
    )
    .await
    .map_err(store_error)?;
    Ok(MessagesReport {
        rows,
        replaced: options.replace,
        counts: converted.counts,
        sha256: converted.sha256,
    })
}

/// The stored placements the stops of `converted` without their start end, each ended. A stop
/// that matches no stored placement of its client, aanbieder and Begindatum (and care type,
/// where it names one), or more than one, or a placement another stop or row of the import
/// already holds, is a problem; with `--replace` every such stop is (the import then holds
/// every placement).
async fn end_earlier(
    store: &Store,
    converted: &ijw::Converted,
    replace: bool,
    label: &str,
) -> Result<Vec<Placement>, ImportError> {
    let key = |p: &Placement| {
        (
            p.youth_id.clone(),
            p.start_date,
            p.care_type,
            p.provider.clone(),
        )
    };
    let mut held: HashSet<_> = match &converted.rows {
        Rows::Placements(rows) => rows.iter().map(key).collect(),
        _ => HashSet::new(),
    };
    // The stored placements of the stops' youths, read at once, by client, Begindatum and
    // aanbieder (under --replace none count).
    let mut youths: Vec<&zicht_model::YouthId> = converted
        .earlier
        .iter()
        .map(|stop| &stop.youth_id)
        .collect();
    youths.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    youths.dedup();
    let stored = match (replace, youths.is_empty()) {
        (false, false) => {
            store
                .placements_of(&youths)
                .await
                .map_err(|source| ImportError::Store {
                    file: label.to_owned(),
                    source,
                })?
        }
        _ => Vec::new(),
    };
    let mut started: HashMap<_, Vec<Placement>> = HashMap::new();
    for placement in stored {
        let at = (
            placement.youth_id.clone(),
            placement.start_date,
            placement.provider.clone(),
        );
        started.entry(at).or_default().push(placement);
    }
    let mut ended = Vec::new();
    let mut problems = Vec::new();
    for stop in &converted.earlier {
        if problems.len() > MAX_PROBLEMS {
            break;
        }
        let at = (
            stop.youth_id.clone(),
            stop.start_date,
            stop.provider.clone(),
        );
        let mut matching: Vec<Placement> = started
            .get(&at)
            .into_iter()
            .flatten()
            .filter(|p| stop.care_type.is_none_or(|care| care == p.care_type))
            .cloned()
            .collect();
        let reason = match (matching.pop(), matching.len()) {
            (Some(one), 0) => match stop.end(one) {
                Ok(placement) if held.insert(key(&placement)) => {
                    ended.push(placement);
                    continue;
                }
                Ok(_) => "a second JW307 stop of the same placement in the import".to_owned(),
                Err(reason) => reason,
            },
            (None, _) if replace => "a JW307 stop without the JW305 start of this client, ToewijzingNummer and Begindatum in the import; with --replace the import holds every placement, so it must hold the start of every stop".to_owned(),
            (None, _) => "a JW307 stop without the JW305 start of this client, ToewijzingNummer and Begindatum, in the import or stored by an earlier one; import the gemeente's JW305 messages with their JW307 messages".to_owned(),
            (Some(_), others) => format!(
                "a JW307 stop that matches {} stored placements of this client, aanbieder and Begindatum; zicht cannot tell which it ends (the stop's Product, or the JW301 of its toewijzing in the same import, names the care type)",
                others + 1
            ),
        };
        problems.push(stop.problem(&reason));
    }
    if problems.is_empty() {
        return Ok(ended);
    }
    let complete = problems.len() <= MAX_PROBLEMS;
    problems.truncate(MAX_PROBLEMS);
    Err(ImportError::Messages {
        file: label.to_owned(),
        problems,
        complete,
    })
}

/// What the checking thread needs: the file's label and table, how to read it, the region
/// its placements must be of (and whether to take it from the file), and the stored rows a
/// measure must name.
struct Checking {
    label: String,
    table: Table,
    workbook: bool,
    options: ImportOptions,
    region: (Option<zicht_model::Region>, bool),
    links: Option<Links>,
}

impl Checking {
    /// Opens, reads and checks the file, handing good rows to `emit` in batches.
    fn run(
        self,
        file: File,
        emit: &mut dyn FnMut(Rows, u64) -> bool,
    ) -> Result<load::Finished, ImportError> {
        let label = self.label;
        let options = self.options;
        let source = Source::open(file, self.workbook, &options.dialect).map_err(|e| match e {
            SourceError::Io(source) => ImportError::Read {
                file: label.clone(),
                source,
            },
            SourceError::Workbook(source) => ImportError::Workbook {
                file: label.clone(),
                source,
            },
        })?;
        let reading = parse::Reading {
            delimiter: Some(source.sniffed.delimiter),
            date_format: options.dialect.date_format,
            detected_utf8: source.sniffed.detected && source.sniffed.encoding == TextEncoding::Utf8,
            region: self.region.0,
            infer_region: self.region.1,
            region_given: matches!(options.region, RegionCheck::Region(_)),
            mapping: options.mapping,
            pseudonymise: options.pseudonymise,
        };
        let rows = parse::stream(
            self.table,
            source.reader,
            &reading,
            self.links.as_ref(),
            load::BATCH,
            emit,
        )
        .map_err(|rejection| match rejection {
            parse::Rejection::Io(source) => ImportError::Read {
                file: label.clone(),
                source,
            },
            parse::Rejection::Problems { problems, complete } => ImportError::Rejected {
                file: label.clone(),
                problems,
                complete,
            },
        })?;
        let sha256 = source.hasher.lock().map_or_else(
            |_| String::new(),
            |hasher| hex::encode(hasher.clone().finalize()),
        );
        Ok(load::Finished {
            rows,
            sha256,
            sniffed: Some(source.sniffed),
        })
    }
}

/// A file opened for checking: its text as UTF-8 CSV, what it turned out to be, and the
/// hash of its bytes as read.
struct Source {
    reader: Box<dyn Read + Send>,
    sniffed: Sniffed,
    hasher: std::sync::Arc<std::sync::Mutex<Sha256>>,
}

enum SourceError {
    Io(io::Error),
    Workbook(WorkbookError),
}

impl Source {
    /// Opens `file`: an `.xlsx` workbook (by name, or by its zip signature) is read whole
    /// into CSV; a text file is streamed through its encoding.
    fn open(file: File, workbook: bool, dialect: &Dialect) -> Result<Source, SourceError> {
        use std::io::BufRead;
        let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
        let mut reader = HashingReader {
            inner: BufReader::with_capacity(1 << 16, file),
            hasher: hasher.clone(),
        };
        let zipped =
            workbook || dialect::is_workbook(reader.inner.fill_buf().map_err(SourceError::Io)?);
        if zipped {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).map_err(SourceError::Io)?;
            let (csv, sheet) = dialect::workbook_as_csv(bytes, dialect.sheet.as_deref())
                .map_err(SourceError::Workbook)?;
            return Ok(Source {
                reader: Box::new(io::Cursor::new(csv)),
                sniffed: Sniffed {
                    delimiter: b',',
                    encoding: TextEncoding::Utf8,
                    detected: false,
                    sheet: Some(sheet),
                },
                hasher,
            });
        }
        let (reader, sniffed) = dialect::open(reader, dialect).map_err(SourceError::Io)?;
        Ok(Source {
            reader,
            sniffed,
            hasher,
        })
    }
}

pub use load::store_rows;

/// What a `measures.csv` row must name among the stored rows: a placement of its youth with
/// that provider, in that region, that covers the measure's start (a measure is taken during
/// a stay); and, where this node holds the capacity of the facility's region, a facility of
/// that provider there in `capacity` (a facility in a region whose capacity another node
/// holds cannot be checked here). Held in memory while the file is checked.
#[derive(Debug, Default)]
pub struct Links {
    /// The facilities of `capacity`: provider, facility, region.
    facilities: HashSet<(String, String, String)>,
    /// The regions `capacity` holds facilities in.
    regions: HashSet<String>,
    /// Each youth's placements.
    stays: HashMap<String, Vec<LinkedStay>>,
}

/// A stored placement as a measure names it: provider, region, first day, last day (`None`
/// while ongoing).
type LinkedStay = (String, String, NaiveDate, Option<NaiveDate>);

impl Links {
    /// The first broken link of `measure`, if any.
    fn check(&self, measure: &Measure) -> Option<Violation> {
        let provider = measure.provider.as_str();
        let region = measure.placement_region.code();
        let facility = (
            provider.to_owned(),
            measure.facility.as_str().to_owned(),
            region.to_owned(),
        );
        if self.regions.contains(region) && !self.facilities.contains(&facility) {
            return Some(Violation {
                column: "facility",
                rule: "not a facility of this provider in this placement_region in capacity.csv",
            });
        }
        let day = measure.start_date;
        let covered = self
            .stays
            .get(measure.youth_id.as_str())
            .is_some_and(|stays| {
                stays.iter().any(|(p, r, start, end)| {
                    p == provider
                        && r == region
                        && *start <= day
                        && end.is_none_or(|end| day <= end)
                })
            });
        (!covered).then_some(Violation {
            column: "start_date",
            rule: "no placement of this youth with this provider and placement_region covers \
                   start_date (a measure is taken during a stay; import placements first)",
        })
    }
}

impl Store {
    /// The federation regions the stored placements are of (`onbekend` left out).
    pub async fn held_regions(&self) -> Result<Vec<zicht_model::Region>, StoreError> {
        let codes: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT origin_region FROM placements WHERE origin_region <> 'onbekend'"
        )
        .fetch_all(pool)
        .await
        .map_err(query_error("read the regions of the placements")))?;
        Ok(codes
            .iter()
            .filter_map(|(code,)| zicht_model::Region::parse(code).ok())
            .collect())
    }

    /// The stored placements of `youths`, read a few hundred youths a query.
    async fn placements_of(
        &self,
        youths: &[&zicht_model::YouthId],
    ) -> Result<Vec<Placement>, StoreError> {
        let mut rows: Vec<crate::consented::PlacementTuple> = Vec::new();
        for chunk in youths.chunks(500) {
            let read: Vec<crate::consented::PlacementTuple> = on_pool!(self, pool => {
                let mut query = sqlx::QueryBuilder::new(format!(
                    "SELECT {} FROM placements WHERE youth_id IN (",
                    crate::consented::PLACEMENT_COLUMNS
                ));
                let mut ids = query.separated(", ");
                for youth in chunk {
                    ids.push_bind(youth.as_str());
                }
                query.push(")");
                query
                    .build_query_as()
                    .fetch_all(pool)
                    .await
                    .map_err(query_error("read stored placements"))
            })?;
            rows.extend(read);
        }
        rows.into_iter()
            .map(|row| {
                crate::StoredPlacement::from(row)
                    .placement()
                    .map_err(|reason| StoreError::Query {
                        action: "read stored placements",
                        source: sqlx::Error::Protocol(reason),
                    })
            })
            .collect()
    }

    /// Whether any placement is stored.
    pub async fn has_placements(&self) -> Result<bool, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM placements)"
        )
        .fetch_one(pool)
        .await
        .map_err(query_error("look for placements")))
    }

    /// The region a placements file is checked against, and whether to take it from the
    /// file; `Err` names the region the database holds when it is not the one asked for.
    async fn region_to_check(
        &self,
        check: RegionCheck,
    ) -> Result<Result<(Option<zicht_model::Region>, bool), zicht_model::Region>, StoreError> {
        let held = match check {
            RegionCheck::Off => return Ok(Ok((None, false))),
            _ => self.held_regions().await?,
        };
        Ok(match (check, held.as_slice()) {
            (RegionCheck::Region(asked), [held, ..]) if held != &asked => Err(*held),
            (RegionCheck::Region(asked), [_, other, ..]) if other != &asked => Err(*other),
            (RegionCheck::Region(asked), _) => Ok((Some(asked), false)),
            (_, []) => Ok((None, true)),
            (_, [held]) => Ok((Some(*held), false)),
            // A database that holds several regions' placements on purpose.
            _ => Ok((None, false)),
        })
    }

    /// [`Store::region_to_check`] for the import of `file`, its refusal as an error.
    async fn checked_region(
        &self,
        check: RegionCheck,
        file: &str,
    ) -> Result<(Option<zicht_model::Region>, bool), ImportError> {
        self.region_to_check(check)
            .await
            .map_err(|source| ImportError::Store {
                file: file.to_owned(),
                source,
            })?
            .map_err(|held| ImportError::OtherRegion {
                file: file.to_owned(),
                held,
                asked: match check {
                    RegionCheck::Region(asked) => asked,
                    _ => held,
                },
            })
    }

    /// The stored rows a `measures.csv` file is checked against.
    async fn links(&self) -> Result<Links, StoreError> {
        let facilities: Vec<(String, String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT provider, facility, placement_region FROM capacity"
        )
        .fetch_all(pool)
        .await
        .map_err(query_error("read the facilities of capacity")))?;
        let stays: Vec<(String, LinkedStay)> = on_pool!(self, pool =>
            sqlx::query_as::<_, (String, String, String, NaiveDate, Option<NaiveDate>)>(
                "SELECT youth_id, provider, placement_region, start_date, end_date FROM placements"
            )
            .fetch_all(pool)
            .await
            .map_err(query_error("read the placements measures name")))?
        .into_iter()
        .map(|(youth, provider, region, start, end)| (youth, (provider, region, start, end)))
        .collect();
        let mut links = Links::default();
        for (provider, facility, region) in facilities {
            links.regions.insert(region.clone());
            links.facilities.insert((provider, facility, region));
        }
        for (youth, stay) in stays {
            links.stays.entry(youth).or_default().push(stay);
        }
        Ok(links)
    }
}

/// Reads through, hashing every byte.
struct HashingReader<R> {
    inner: R,
    hasher: std::sync::Arc<std::sync::Mutex<Sha256>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut hasher) = self.hasher.lock() {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_from_file_name() {
        let of = |name: &str| Table::from_file_name(Path::new(name));
        assert_eq!(of("data/placements.csv"), Some(Table::Placements));
        assert_eq!(of("PLACEMENTS-2024.csv"), Some(Table::Placements));
        assert_eq!(of("transition18_h1.csv"), Some(Table::Transition18));
        assert_eq!(of("capacityx.csv"), None);
        assert_eq!(of("export.csv"), None);
    }
}
