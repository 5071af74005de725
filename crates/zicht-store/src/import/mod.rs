//! CSV import, canonical format v1: one file per table, a header row naming exactly the table's
//! columns in any order, UTF-8, RFC 4180 quoting, ISO dates, codes from the code lists.
//!
//! Import is all-or-nothing. The file is checked and stored as it is read, in one transaction;
//! a bad row rejects the file with `file:line:column` and the reason (never the value, which
//! may be youth data), and the transaction is rolled back, so nothing is stored. A good file
//! is stored upserting on the table's key, so importing the same file again changes nothing.

mod load;
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
    let mut message = format!("{file}: rejected, nothing was stored");
    for problem in problems {
        message.push_str(&format!("\n  {file}:{problem}"));
    }
    if !complete {
        message.push_str(&format!(
            "\n  (stopped after {MAX_PROBLEMS} problems; fix these and import again)"
        ));
    }
    message
}

/// How to import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Replace the table's whole contents with the file (a full export), in the same
    /// transaction; by default rows are upserted on the table's key.
    pub replace: bool,
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
    let file_label = path.display().to_string();
    let table = table
        .or_else(|| Table::from_file_name(path))
        .ok_or_else(|| ImportError::UnknownTable {
            file: file_label.clone(),
        })?;
    let read_error = |source| ImportError::Read {
        file: file_label.clone(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let links = match table {
        Table::Measures => Some(store.links().await.map_err(|source| ImportError::Store {
            file: file_label.clone(),
            source,
        })?),
        _ => None,
    };
    let total = file.metadata().map_err(read_error)?.len();
    progress.advance(Phase::Check, 0, total);
    let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
    let checker = tokio::task::spawn_blocking(move || {
        let mut reader = HashingReader {
            inner: BufReader::with_capacity(1 << 16, file),
            hasher: Sha256::new(),
        };
        let rows = parse::stream(
            table,
            &mut reader,
            links.as_ref(),
            load::BATCH,
            &mut |batch, at| sender.blocking_send((batch, at)).is_ok(),
        )?;
        Ok(load::Finished {
            rows,
            sha256: hex(&reader.hasher.finalize()),
        })
    });
    let label = file_label.clone();
    let source = async move {
        let checked = checker.await.map_err(|join| ImportError::Read {
            file: label.clone(),
            source: io::Error::other(join.to_string()),
        })?;
        checked.map_err(|rejection| match rejection {
            parse::Rejection::Io(source) => ImportError::Read {
                file: label.clone(),
                source,
            },
            parse::Rejection::Problems { problems, complete } => ImportError::Rejected {
                file: label.clone(),
                problems,
                complete,
            },
        })
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let finished = load::store_stream(
        store,
        table,
        options,
        &file_name,
        &mut receiver,
        total,
        source,
        progress,
    )
    .await
    .map_err(|source| ImportError::Store {
        file: file_label,
        source,
    })??;
    Ok(ImportReport {
        table,
        rows: finished.rows,
        replaced: options.replace,
        sha256: finished.sha256,
    })
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
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
