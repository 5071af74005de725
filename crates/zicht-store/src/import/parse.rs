//! Reading and checking one CSV file into typed rows; no database.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::Display;
use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use std::io::{self, Read};

use csv::{ByteRecord, StringRecord};
use zicht_model::{
    codes::levenshtein, region_of_municipality, regions_of_municipality, After18Funding,
    Big5Status, Capacity, CareType, CodeList, Consent, ConsentId, Financing, LegalBasis, Measure,
    MeasureKind, Name, OriginRegion, OutflowDestination, OutflowProfile, Placement,
    PlacementRegion, Purpose, Recipient, Region, Setting, Timestamp, Transition18Check, Violation,
    YouthId,
};

use super::mapping::{fold, is_code_column, Mapping};
use super::{Links, Problem, Rows, Table, MAX_PROBLEMS};

/// How to read a file's text: what the dialect and the mapping say, and which region its
/// placements must be of.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// The field delimiter.
    pub delimiter: Option<u8>,
    /// How dates are written.
    pub date_format: zicht_model::DateFormat,
    /// The region's mapping, if any.
    pub mapping: Option<std::sync::Arc<Mapping>>,
    /// Whether the encoding was detected as UTF-8 (then invalid UTF-8 further on hints at
    /// `--encoding cp1252`).
    pub detected_utf8: bool,
    /// The region the placements must be of: `Some` to check against it, `None` with
    /// `infer` to take the first row's, neither to check nothing.
    pub region: Option<zicht_model::Region>,
    /// Take the region from the first placement that names one.
    pub infer_region: bool,
    /// Whether the region was given (by the node's config or `--region`), rather than held
    /// by the database or taken from the file.
    pub region_given: bool,
    /// The key the file's youth_id values (the source's identifiers, such as BSNs) become
    /// pseudonyms under; `None` takes them as pseudonyms already.
    pub pseudonymise: Option<std::sync::Arc<zicht_privacy::PseudonymKey>>,
}

/// Why a file did not parse.
#[derive(Debug)]
pub enum Rejection {
    /// Reading failed.
    Io(io::Error),
    /// The content broke the format.
    Problems {
        /// Problems in file order.
        problems: Vec<Problem>,
        /// False when checking stopped at [`MAX_PROBLEMS`].
        complete: bool,
    },
}

fn rejected(problem: Problem) -> Rejection {
    Rejection::Problems {
        problems: vec![problem],
        complete: true,
    }
}

/// Reads a whole CSV file of `table` and checks every row; returns all rows or the problems.
pub fn parse(table: Table, reader: impl Read) -> Result<Rows, Rejection> {
    let mut all: Option<Rows> = None;
    stream(
        table,
        reader,
        &Reading::default(),
        None,
        usize::MAX,
        &mut |batch, _| {
            match &mut all {
                Some(rows) => rows.extend(batch),
                None => all = Some(batch),
            }
            true
        },
    )?;
    Ok(all.unwrap_or_else(|| Rows::empty(table)))
}

/// Reads a CSV file of `table`, checking every row, and hands the good rows to `emit` in
/// batches of up to `batch` rows with the byte offset reached, while no problem was found
/// (after the first problem only problems are collected). `emit` returns false to stop
/// early. Returns the number of rows, or the problems. `links`, when given, are the stored
/// rows a `measures.csv` row must name (its facility, a placement covering it).
pub(crate) fn stream(
    table: Table,
    reader: impl Read,
    reading: &Reading,
    links: Option<&Links>,
    batch: usize,
    emit: &mut dyn FnMut(Rows, u64) -> bool,
) -> Result<u64, Rejection> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(reading.delimiter.unwrap_or(b','))
        .from_reader(reader);
    let mut record = ByteRecord::new();
    if !read_record(&mut csv, &mut record)? {
        return Err(rejected(Problem {
            line: 1,
            column: 1,
            column_name: None,
            reason: format!(
                "file is empty; expected a header row: {}",
                table.columns().join(",")
            ),
        }));
    }
    let header = Header::read(table, &record, reading).map_err(|problems| Rejection::Problems {
        problems,
        complete: true,
    })?;
    let mut sink = Sink { batch, emit };
    match table {
        Table::Placements => check_rows(
            &mut csv,
            &header,
            (placement, &unlinked),
            placement_key,
            &mut sink,
            Rows::Placements,
        )
        .and_then(|(count, tally)| {
            tally.verdict(reading.region_given)?;
            Ok(count)
        }),
        Table::Capacity => check_rows(
            &mut csv,
            &header,
            (capacity, &unlinked),
            capacity_key,
            &mut sink,
            Rows::Capacity,
        )
        .map(|(count, _)| count),
        Table::Transition18 => check_rows(
            &mut csv,
            &header,
            (transition18, &unlinked),
            transition18_key,
            &mut sink,
            Rows::Transition18,
        )
        .map(|(count, _)| count),
        Table::Consents => check_rows(
            &mut csv,
            &header,
            (consent, &unlinked),
            consent_key,
            &mut sink,
            Rows::Consents,
        )
        .map(|(count, _)| count),
        Table::Measures => check_rows(
            &mut csv,
            &header,
            (measure, &|m: &Measure| links.and_then(|l| l.check(m))),
            measure_key,
            &mut sink,
            Rows::Measures,
        )
        .map(|(count, _)| count),
    }
}

/// Where checked rows go, in batches.
struct Sink<'e> {
    batch: usize,
    emit: &'e mut dyn FnMut(Rows, u64) -> bool,
}

fn read_record<R: Read>(
    csv: &mut csv::Reader<R>,
    record: &mut ByteRecord,
) -> Result<bool, Rejection> {
    csv.read_byte_record(record).map_err(read_failure)
}

/// A failure to read on: the file's bytes, or CSV itself (not one field's content).
fn read_failure(error: csv::Error) -> Rejection {
    let line = error.position().map(|p| p.line()).unwrap_or(0);
    match error.into_kind() {
        csv::ErrorKind::Io(io) => Rejection::Io(io),
        _ => rejected(Problem {
            line,
            column: 1,
            column_name: None,
            reason: "malformed CSV (check RFC 4180 quoting)".to_owned(),
        }),
    }
}

/// What reading the next row gave.
enum Next {
    /// A row, valid UTF-8 throughout (checked once for the whole record).
    Row,
    /// A row with invalid UTF-8 in the file's field `field`, at `line`; the reader goes on
    /// after it.
    InvalidUtf8 { field: usize, line: u64 },
    /// The end of the file.
    End,
}

fn read_row<R: Read>(
    csv: &mut csv::Reader<R>,
    record: &mut StringRecord,
) -> Result<Next, Rejection> {
    match csv.read_record(record) {
        Ok(true) => Ok(Next::Row),
        Ok(false) => Ok(Next::End),
        Err(error) => {
            if let csv::ErrorKind::Utf8 { pos, err } = error.kind() {
                return Ok(Next::InvalidUtf8 {
                    field: err.field(),
                    line: pos.as_ref().map_or(0, |p| p.line()),
                });
            }
            Err(read_failure(error))
        }
    }
}

/// Where each canonical column sits in this file.
struct Header {
    table: Table,
    /// `positions[i]` is the file's field index of canonical column `i`.
    positions: Vec<usize>,
    /// Fields up to the last named column; fields after it (Excel's trailing empty column)
    /// must be empty.
    significant: usize,
    /// How the file is read.
    reading: Reading,
}

/// Whether a header field looks like a column name (letters, spaces, `_`, `-`, `.`), so a
/// message may repeat it: a data row read as a header holds digits (dates, ids).
fn looks_like_a_name(text: &str) -> bool {
    (1..=40).contains(&text.chars().count())
        && text
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '_' | '-' | '.'))
}

impl Header {
    fn read(table: Table, record: &ByteRecord, reading: &Reading) -> Result<Header, Vec<Problem>> {
        let columns = table.columns();
        let mut positions = vec![usize::MAX; columns.len()];
        let mut problems = Vec::new();
        let names: Vec<Result<&str, ()>> = record
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let field = if index == 0 {
                    field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
                } else {
                    field
                };
                std::str::from_utf8(field).map(str::trim).map_err(drop)
            })
            .collect();
        // Excel's trailing empty columns are no columns.
        let significant = names
            .iter()
            .rposition(|name| name.as_ref().map_or(true, |n| !n.is_empty()))
            .map_or(0, |last| last + 1);
        for (index, name) in names.iter().enumerate().take(significant) {
            let problem = |reason: String| Problem {
                line: 1,
                column: index + 1,
                column_name: None,
                reason,
            };
            let Ok(name) = name else {
                problems.push(problem(invalid_utf8_reason(reading, "in header")));
                continue;
            };
            let mapped = reading.mapping.as_ref().and_then(|m| m.column(name));
            let folded = fold(name);
            let found = mapped
                .and_then(|m| columns.iter().position(|&c| c == m))
                .or_else(|| {
                    columns
                        .iter()
                        .position(|&c| c == folded || c.replace('_', " ") == folded)
                });
            match found {
                Some(canonical) if positions[canonical] != usize::MAX => {
                    problems.push(problem(format!(
                        "column `{}` appears twice",
                        columns[canonical]
                    )));
                }
                Some(canonical) => positions[canonical] = index,
                None if name.is_empty() => {
                    problems.push(problem("a column without a name".to_owned()))
                }
                None => {
                    // The unknown name is not repeated: a file without a header row would
                    // put a youth's data here.
                    let closest = columns
                        .iter()
                        .min_by_key(|c| levenshtein(c, &folded))
                        .copied()
                        .unwrap_or_default();
                    problems.push(problem(format!(
                        "unknown column for {table}.csv; closest expected column is `{closest}` (an export's own column names go in a mapping's [columns])"
                    )));
                }
            }
        }
        let missing: Vec<&str> = columns
            .iter()
            .zip(&positions)
            .filter(|(_, &p)| p == usize::MAX)
            .map(|(&c, _)| c)
            .collect();
        if missing.len() == columns.len() {
            // Nothing matched: say what the file looks like rather than list 14 guesses.
            return Err(vec![unrecognised_header(
                table,
                &names[..significant],
                reading,
            )]);
        }
        if !missing.is_empty() {
            problems.push(Problem {
                line: 1,
                column: significant + 1,
                column_name: None,
                reason: format!("missing column(s): {}", missing.join(", ")),
            });
        }
        if problems.is_empty() {
            Ok(Header {
                table,
                positions,
                significant,
                reading: reading.clone(),
            })
        } else {
            Err(problems)
        }
    }

    /// The problem of invalid UTF-8 in the file's field `field` at `line`.
    fn invalid_utf8(&self, field: usize, line: u64) -> Problem {
        let canonical = self.positions.iter().position(|&p| p == field);
        Problem {
            line,
            column: field + 1,
            column_name: canonical.map(|c| self.table.columns()[c]),
            reason: invalid_utf8_reason(&self.reading, ""),
        }
    }
}

fn invalid_utf8_reason(reading: &Reading, place: &str) -> String {
    let place = if place.is_empty() {
        String::new()
    } else {
        format!(" {place}")
    };
    if reading.detected_utf8 {
        format!(
            "invalid UTF-8{place}; if the file was saved as ANSI or Windows-1252 (as Excel does), give --encoding cp1252"
        )
    } else {
        format!("invalid UTF-8{place}")
    }
}

/// The problem of a header row that names no column of `table`: what the file looks like.
fn unrecognised_header(table: Table, names: &[Result<&str, ()>], reading: &Reading) -> Problem {
    let delimiter = super::dialect::delimiter_name(reading.delimiter.unwrap_or(b','));
    // A line with a digit anywhere is data (every table has a date), and none of it is
    // repeated: it may be a youth's.
    let data = names.iter().any(|n| {
        n.as_ref()
            .map_or(true, |n| n.bytes().any(|b| b.is_ascii_digit()))
    });
    let shown: Vec<String> = names
        .iter()
        .take(4)
        .map(|n| match n {
            Ok(name) if !data && looks_like_a_name(name) => format!("`{name}`"),
            _ => "(not a name)".to_owned(),
        })
        .collect();
    let hint = if names.len() <= 1 && !data {
        "; the line does not split: is the delimiter right (--delimiter , ; or tab)?"
    } else if data {
        "; the first line looks like data: the file needs a header row"
    } else {
        "; columns named otherwise go in a mapping's [columns] (--mapping)"
    };
    Problem {
        line: 1,
        column: 1,
        column_name: None,
        reason: format!(
            "the header names no column of {table}.csv: read as {} {delimiter}-separated field(s) starting {}{hint}; expected: {}",
            names.len(),
            shown.join(", "),
            table.columns().join(",")
        ),
    }
}

/// One record's fields, looked up by canonical column name.
struct Cells<'a> {
    header: &'a Header,
    record: &'a StringRecord,
    line: u64,
    /// The canonical index after the one last looked up: the row readers ask for the columns
    /// in canonical order, so that one is tried first.
    next: std::cell::Cell<usize>,
}

impl<'a> Cells<'a> {
    /// The canonical index of `column`.
    fn canonical(&self, column: &'static str) -> usize {
        let columns = self.header.table.columns();
        let next = self.next.get();
        let index = if columns.get(next) == Some(&column) {
            next
        } else {
            columns.iter().position(|&c| c == column).unwrap_or(0)
        };
        self.next.set(index + 1);
        index
    }

    fn problem(&self, column: &'static str, reason: impl Into<String>) -> Problem {
        let canonical = self.canonical(column);
        Problem {
            line: self.line,
            column: self.header.positions.get(canonical).map_or(0, |p| p + 1),
            column_name: Some(column),
            reason: reason.into(),
        }
    }

    /// The trimmed text of a column, through the mapping's value map; empty means absent.
    fn text(&self, column: &'static str) -> Result<&'a str, Problem> {
        let canonical = self.canonical(column);
        let text = self
            .header
            .positions
            .get(canonical)
            .and_then(|&p| self.record.get(p))
            .unwrap_or_default()
            .trim();
        Ok(self
            .header
            .reading
            .mapping
            .as_deref()
            .and_then(|m| m.value(column, text))
            .unwrap_or(text))
    }

    fn optional<T, E: Display>(
        &self,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, Problem> {
        let text = self.text(column)?;
        if text.is_empty() {
            return Ok(None);
        }
        parse(text)
            .map(Some)
            .map_err(|error| self.problem(column, self.unparsed(column, text, error)))
    }

    /// Why `text` of `column` did not parse. A code column says how an export's own codes
    /// are mapped; where the mapping maps the column, its value is named: a code, never youth
    /// data.
    fn unparsed(&self, column: &'static str, text: &str, error: impl Display) -> String {
        if !is_code_column(column) {
            return error.to_string();
        }
        let mapped = self
            .header
            .reading
            .mapping
            .as_deref()
            .is_some_and(|m| m.maps(column));
        if mapped && text.chars().count() <= 60 {
            format!(
                "`{text}` is neither in the mapping's [values.{column}] nor a {column} code ({error}); add \"{text}\" = \"<code>\" to [values.{column}]"
            )
        } else {
            format!("{error}; an export's own codes go in a mapping's [values.{column}]")
        }
    }

    fn required<T, E: Display>(
        &self,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, Problem> {
        self.optional(column, parse)?
            .ok_or_else(|| self.problem(column, "required value is missing"))
    }

    /// The youth's pseudonym: the column's value, or with a pseudonymisation key, the keyed
    /// hash of the source's identifier (which is dropped with the record).
    fn youth_id(&self) -> Result<YouthId, Problem> {
        match &self.header.reading.pseudonymise {
            None => self.required("youth_id", YouthId::parse),
            Some(key) => self.required("youth_id", |text| YouthId::parse(&key.pseudonym(text))),
        }
    }

    /// A date in the file's date format.
    fn date(&self, column: &'static str) -> Result<zicht_model::NaiveDate, Problem> {
        let format = self.header.reading.date_format;
        self.required(column, |text| parse_date_as(format, text))
    }

    /// An optional date in the file's date format.
    fn optional_date(
        &self,
        column: &'static str,
    ) -> Result<Option<zicht_model::NaiveDate>, Problem> {
        let format = self.header.reading.date_format;
        self.optional(column, |text| parse_date_as(format, text))
    }

    fn violation(&self, violation: Violation) -> Problem {
        self.problem(violation.column, violation.rule)
    }
}

/// A table whose rows name no stored rows.
fn unlinked<T>(_: &T) -> Option<Violation> {
    None
}

/// How a row is read: its fields and rules, then the stored rows it must name (a broken
/// link, or `None`).
type RowCheck<'l, T> = (
    fn(&Cells<'_>) -> Result<T, Problem>,
    &'l dyn Fn(&T) -> Option<Violation>,
);

/// Checks one record of the right file: its fields, its table's rules, the stored rows it
/// names, and that its key is new (`seen` maps key digests to their first line).
fn check_row<T, K: Hash + Eq>(
    header: &Header,
    record: &StringRecord,
    (row, link): RowCheck<'_, T>,
    key: fn(&T) -> K,
    seen: &mut HashMap<[u8; 16], u64, foldhash::fast::RandomState>,
) -> Result<T, Problem> {
    let line = record.position().map_or(0, |p| p.line());
    let extra_filled = (header.significant..record.len())
        .find(|&i| record.get(i).is_some_and(|f| !f.trim().is_empty()));
    if record.len() < header.significant || extra_filled.is_some() {
        return Err(Problem {
            line,
            column: extra_filled.unwrap_or(record.len()) + 1,
            column_name: None,
            reason: format!(
                "expected {} fields as in the header, found {}",
                header.significant,
                record.len()
            ),
        });
    }
    let cells = Cells {
        header,
        record,
        line,
        next: std::cell::Cell::new(0),
    };
    let value = row(&cells)?;
    if let Some(broken) = link(&value) {
        return Err(cells.violation(broken));
    }
    match seen.entry(digest(&key(&value))) {
        Entry::Occupied(first) => Err(cells.problem(
            header.table.key_columns()[0],
            format!(
                "duplicate key ({}): same as line {}",
                header.table.key_columns().join(", "),
                first.get()
            ),
        )),
        Entry::Vacant(slot) => {
            slot.insert(line);
            Ok(value)
        }
    }
}

fn check_rows<R: Read, T, K: Hash + Eq>(
    csv: &mut csv::Reader<R>,
    header: &Header,
    row: RowCheck<'_, T>,
    key: fn(&T) -> K,
    sink: &mut Sink<'_>,
    wrap: fn(Vec<T>) -> Rows,
) -> Result<(u64, RegionTally), Rejection>
where
    T: Regional,
{
    let mut rows = Vec::new();
    let mut count = 0u64;
    let mut problems = Vec::new();
    let mut tally = RegionTally::new(&header.reading);
    // Keys seen, by a 128-bit digest: a few dozen bytes a row, whatever the key's size. The
    // digests are uniform already: foldhash only spreads them over the table.
    let mut seen: HashMap<[u8; 16], u64, foldhash::fast::RandomState> = HashMap::default();
    let mut record = StringRecord::new();
    loop {
        let result = match read_row(csv, &mut record)? {
            Next::End => break,
            Next::InvalidUtf8 { field, line } => Err(header.invalid_utf8(field, line)),
            Next::Row => {
                if record.len() == 1 && record.get(0).is_some_and(str::is_empty) {
                    continue; // a blank line
                }
                check_row(header, &record, row, key, &mut seen)
            }
        };
        match result {
            Ok(value) if problems.is_empty() => {
                count += 1;
                tally.add(&value, record.position().map_or(0, |p| p.line()));
                rows.push(value);
                if rows.len() >= sink.batch {
                    let at = record.position().map_or(0, |p| p.byte());
                    if !(sink.emit)(wrap(std::mem::take(&mut rows)), at) {
                        return Ok((count, tally));
                    }
                }
            }
            Ok(_) => {}
            Err(problem) => {
                rows.clear();
                problems.push(problem);
                if problems.len() == MAX_PROBLEMS {
                    return Err(Rejection::Problems {
                        problems,
                        complete: false,
                    });
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Rejection::Problems {
            problems,
            complete: true,
        });
    }
    if !rows.is_empty() {
        let at = record.position().map_or(0, |p| p.byte());
        (sink.emit)(wrap(rows), at);
    }
    Ok((count, tally))
}

/// Which region a row is of, by its own columns. Only placements say: by their origin region
/// and the regions their origin municipality has belonged to.
trait Regional {
    /// The region the row names first: its origin region, else its municipality's region on
    /// the start date (to take a file's region from its first row).
    fn region(&self) -> Option<Region> {
        None
    }

    /// The other region the row is of when it is not of `expected`.
    fn other_than(&self, _expected: Region) -> Option<Region> {
        None
    }
}

impl Regional for Placement {
    fn region(&self) -> Option<Region> {
        match self.origin_region {
            OriginRegion::Region(region) => Some(region),
            OriginRegion::Onbekend => self
                .origin_municipality
                .as_ref()
                .and_then(|m| region_of_municipality(m.as_str(), self.start_date)),
        }
    }

    fn other_than(&self, expected: Region) -> Option<Region> {
        if let OriginRegion::Region(region) = self.origin_region {
            if region != expected {
                return Some(region);
            }
        }
        // A municipality that moved region belongs to both: its successor holds its records
        // from before the move.
        let municipality = self.origin_municipality.as_ref()?;
        let regions = regions_of_municipality(municipality.as_str());
        if regions.is_empty() || regions.contains(&expected) {
            return None;
        }
        region_of_municipality(municipality.as_str(), self.start_date).or(regions.first().copied())
    }
}

impl Regional for Capacity {}
impl Regional for Transition18Check {}
impl Regional for Consent {}
impl Regional for Measure {}

/// The rows of another region than the database's, counted per region.
pub(crate) struct RegionTally {
    /// The region rows must be of (taken from the first row when inferred).
    expected: Option<Region>,
    infer: bool,
    check: bool,
    others: std::collections::BTreeMap<Region, u64>,
    first: Option<u64>,
}

impl RegionTally {
    pub(crate) fn new(reading: &Reading) -> RegionTally {
        RegionTally {
            expected: reading.region,
            infer: reading.infer_region && reading.region.is_none(),
            check: reading.region.is_some() || reading.infer_region,
            others: Default::default(),
            first: None,
        }
    }

    fn add(&mut self, row: &impl Regional, line: u64) {
        if !self.check {
            return;
        }
        if self.infer && self.expected.is_none() {
            self.expected = row.region();
        }
        let Some(expected) = self.expected else {
            return;
        };
        if let Some(other) = row.other_than(expected) {
            *self.others.entry(other).or_default() += 1;
            self.first.get_or_insert(line);
        }
    }

    /// Tallies a placement found at `line`.
    pub(crate) fn add_placement(&mut self, placement: &Placement, line: u64) {
        self.add(placement, line);
    }

    /// A rejection when rows of other regions were found; `given` when the region was given
    /// (rather than held or taken from the file).
    fn verdict(&self, given: bool) -> Result<(), Rejection> {
        match self.reason(given) {
            None => Ok(()),
            Some(reason) => Err(rejected(Problem {
                line: self.first.unwrap_or(0),
                column: 1,
                column_name: Some("origin_region"),
                reason,
            })),
        }
    }

    /// Why the rows are refused, when rows of other regions were found.
    pub(crate) fn reason(&self, given: bool) -> Option<String> {
        let expected = self.expected?;
        if self.others.is_empty() {
            return None;
        }
        let counts: Vec<String> = self
            .others
            .iter()
            .map(|(region, n)| format!("{n} of {}", region.code()))
            .collect();
        let whose = if given {
            "this import is for"
        } else if self.infer {
            "the file's first row is of"
        } else {
            "this database holds"
        };
        Some(format!(
            "{whose} {}, but {} row(s) are of other regions by origin_region or origin_municipality ({}); import them into their own region's node, or give --allow-other-regions if the file is meant so",
            expected.code(),
            self.others.values().sum::<u64>(),
            counts.join(", ")
        ))
    }
}

/// Feeds what a key hashes into SHA-256 (the key types' `Hash` writes their contents with
/// separators, so different keys feed different bytes).
struct Digester(Sha256);

impl Hasher for Digester {
    fn finish(&self) -> u64 {
        0 // unused: `digest` reads the SHA-256 state
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The first 128 bits of the SHA-256 of a key.
fn digest<K: Hash>(key: &K) -> [u8; 16] {
    let mut digester = Digester(Sha256::new());
    key.hash(&mut digester);
    let full = digester.0.finalize();
    let mut first = [0; 16];
    first.copy_from_slice(&full[..16]);
    first
}

/// A date in `format`, with a reason that names the forms it takes.
fn parse_date_as(
    format: zicht_model::DateFormat,
    text: &str,
) -> Result<zicht_model::NaiveDate, String> {
    use zicht_model::{DateFormat, InvalidDate};
    format.parse(text).map_err(|error| match (error, format) {
        (InvalidDate::Shape, DateFormat::Either) => {
            "not a date in YYYY-MM-DD or DD-MM-YYYY form".to_owned()
        }
        (InvalidDate::Shape, DateFormat::DayMonthYear) => {
            "not a date in DD-MM-YYYY form (--date-format dd-mm-jjjj)".to_owned()
        }
        (error, _) => error.to_string(),
    })
}

fn yes_no(text: &str) -> Result<bool, &'static str> {
    match text.to_ascii_lowercase().as_str() {
        "ja" => Ok(true),
        "nee" => Ok(false),
        _ => Err("must be `ja` or `nee`"),
    }
}

fn count(text: &str) -> Result<u32, &'static str> {
    const RULE: &str = "must be a whole number from 0 to 2147483647";
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RULE);
    }
    text.parse::<u32>()
        .ok()
        .filter(|&n| i32::try_from(n).is_ok())
        .ok_or(RULE)
}

fn placement(c: &Cells<'_>) -> Result<Placement, Problem> {
    let placement = Placement {
        youth_id: c.youth_id()?,
        birth_date: c.date("birth_date")?,
        origin_region: c.required("origin_region", OriginRegion::parse)?,
        origin_municipality: c.optional("origin_municipality", Name::parse)?,
        provider: c.required("provider", Name::parse)?,
        location_municipality: c.optional("location_municipality", Name::parse)?,
        placement_region: c.required("placement_region", PlacementRegion::parse)?,
        care_type: c.required("care_type", CareType::parse)?,
        setting: c.optional("setting", Setting::parse)?,
        legal_basis: c.required("legal_basis", LegalBasis::parse)?,
        start_date: c.date("start_date")?,
        end_date: c.optional_date("end_date")?,
        outflow_destination: c.optional("outflow_destination", OutflowDestination::parse)?,
        outflow_profile: c.optional("outflow_profile", OutflowProfile::parse)?,
    };
    placement.check().map_err(|v| c.violation(v))?;
    Ok(placement)
}

type PlacementKey = (YouthId, zicht_model::NaiveDate, CareType, Name);

fn placement_key(p: &Placement) -> PlacementKey {
    (
        p.youth_id.clone(),
        p.start_date,
        p.care_type,
        p.provider.clone(),
    )
}

fn capacity(c: &Cells<'_>) -> Result<Capacity, Problem> {
    let capacity = Capacity {
        provider: c.required("provider", Name::parse)?,
        facility: c.required("facility", Name::parse)?,
        location_municipality: c.required("location_municipality", Name::parse)?,
        placement_region: c.required("placement_region", Region::parse)?,
        care_type: c.required("care_type", CareType::parse)?,
        setting: c.optional("setting", Setting::parse)?,
        peildatum: c.date("peildatum")?,
        places: c.required("places", count)?,
        occupied: c.required("occupied", count)?,
        financing: c.optional("financing", Financing::parse)?,
    };
    capacity.check().map_err(|v| c.violation(v))?;
    Ok(capacity)
}

fn capacity_key(c: &Capacity) -> (Name, Name, CareType, zicht_model::NaiveDate) {
    (
        c.provider.clone(),
        c.facility.clone(),
        c.care_type,
        c.peildatum,
    )
}

fn transition18(c: &Cells<'_>) -> Result<Transition18Check, Problem> {
    Ok(Transition18Check {
        youth_id: c.youth_id()?,
        check_date: c.date("check_date")?,
        toekomstplan: c.required("toekomstplan", yes_no)?,
        lokaal_team: c.required("lokaal_team", yes_no)?,
        clientondersteuner: c.required("clientondersteuner", yes_no)?,
        after18_funding: c.required("after18_funding", After18Funding::parse)?,
        big5_support: c.required("big5_support", Big5Status::parse)?,
        big5_wonen: c.required("big5_wonen", Big5Status::parse)?,
        big5_werk_school: c.required("big5_werk_school", Big5Status::parse)?,
        big5_inkomen_schulden: c.required("big5_inkomen_schulden", Big5Status::parse)?,
        big5_zorg_ondersteuning: c.required("big5_zorg_ondersteuning", Big5Status::parse)?,
        uit_beeld: c.required("uit_beeld", yes_no)?,
    })
}

fn transition18_key(t: &Transition18Check) -> (YouthId, zicht_model::NaiveDate) {
    (t.youth_id.clone(), t.check_date)
}

fn consent(c: &Cells<'_>) -> Result<Consent, Problem> {
    let consent = Consent {
        consent_id: c.required("consent_id", ConsentId::parse)?,
        youth_id: c.youth_id()?,
        purpose: c.required("purpose", Purpose::parse)?,
        recipient: c.required("recipient", Recipient::parse)?,
        fields: c.required("fields", Consent::parse_fields)?,
        granted_at: c.required("granted_at", Timestamp::parse)?,
        expires_at: c.optional("expires_at", Timestamp::parse)?,
        revoked_at: c.optional("revoked_at", Timestamp::parse)?,
        evidence_ref: c.optional("evidence_ref", Name::parse)?,
    };
    consent.check().map_err(|v| c.violation(v))?;
    Ok(consent)
}

fn consent_key(c: &Consent) -> ConsentId {
    c.consent_id.clone()
}

fn measure(c: &Cells<'_>) -> Result<Measure, Problem> {
    let violation = |v: Violation| c.violation(v);
    Ok(Measure {
        youth_id: c.youth_id()?,
        provider: c.required("provider", Name::parse)?,
        facility: c.required("facility", Name::parse)?,
        placement_region: c.required("placement_region", Region::parse)?,
        start_date: c.date("start_date")?,
        start_minute: zicht_model::parse_time(c.text("start_time")?).map_err(violation)?,
        duration_minutes: zicht_model::parse_duration(c.text("duration_minutes")?)
            .map_err(violation)?,
        kind: c.required("kind", MeasureKind::parse)?,
    })
}

fn measure_key(m: &Measure) -> (YouthId, zicht_model::NaiveDate, u16, MeasureKind) {
    (m.youth_id.clone(), m.start_date, m.start_minute, m.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACEMENTS_HEADER: &str = "youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile\n";

    /// Parses `placements.csv` content and renders the outcome as one string per problem.
    fn check(content: &[u8], expect: &[&str]) {
        let outcome = match parse(Table::Placements, content) {
            Ok(rows) => vec![format!("ok: {} rows", rows.len())],
            Err(Rejection::Problems { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(Rejection::Io(error)) => vec![format!("io: {error}")],
        };
        assert_eq!(outcome, expect);
    }

    fn with_rows(rows: &[&str]) -> Vec<u8> {
        let mut content = PLACEMENTS_HEADER.to_owned();
        for row in rows {
            content.push_str(row);
            content.push('\n');
        }
        content.into_bytes()
    }

    const GOOD: &str = "Y1,2008-03-01,drenthe,Assen,Yorneo,Assen,drenthe,open_residentieel,,vrijwillig,2022-01-01,2022-06-30,thuis,2";

    #[test]
    fn accepts_good_rows_aliases_and_quoting() {
        check(&with_rows(&[GOOD]), &["ok: 1 rows"]);
        check(
            &with_rows(&[
                "Y2,2008-03-01,Fryslân,\"Súdwest-Fryslân\",\"Fier, Leeuwarden\",,SD Fryslan,pleegzorg,,ots,2022-01-01,,,",
            ]),
            &["ok: 1 rows"],
        );
    }

    #[test]
    fn header_in_any_order_with_bom() {
        let content = "\u{feff}start_date,youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,end_date,outflow_destination,outflow_profile\n2022-01-01,Y1,2008-03-01,drenthe,,P,,drenthe,pleegzorg,,ots,,,\n";
        check(content.as_bytes(), &["ok: 1 rows"]);
    }

    #[test]
    fn header_problems() {
        check(b"", &["1:1: file is empty; expected a header row: youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile"]);
        check(
            b"youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_typ,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile,youth_id\n",
            &[
                "1:8: unknown column for placements.csv; closest expected column is `care_type` (an export's own column names go in a mapping's [columns])",
                "1:15: column `youth_id` appears twice",
                "1:16: missing column(s): care_type",
            ],
        );
    }

    #[test]
    fn unknown_code_suggests_closest() {
        check(
            &with_rows(&[&GOOD.replace("open_residentieel", "open-residentiel")]),
            &["2:8: care_type: unknown care_type code; closest valid code is `open_residentieel`; an export's own codes go in a mapping's [values.care_type]"],
        );
        check(
            &with_rows(&[&GOOD.replacen("drenthe", "drente", 1)]),
            &["2:3: origin_region: unknown origin_region code; closest valid code is `drenthe`; an export's own codes go in a mapping's [values.origin_region]"],
        );
    }

    #[test]
    fn bad_dates_and_order() {
        check(
            &with_rows(&[&GOOD.replace("2022-06-30", "2022-02-30")]),
            &["2:12: end_date: no such day in the calendar"],
        );
        check(
            &with_rows(&[&GOOD.replace("2022-06-30", "9999-06-30")]),
            &["2:12: end_date: not a date from 1900-01-01 to 2100-12-31"],
        );
        check(
            &with_rows(&[&GOOD.replace("2022-06-30", "2021-12-31")]),
            &["2:12: end_date: end_date is before start_date"],
        );
        check(
            &with_rows(&[&GOOD.replace(",thuis,", ",,")]),
            &["2:13: outflow_destination: outflow_destination is required when end_date is set"],
        );
    }

    #[test]
    fn duplicate_key_names_first_line() {
        check(
            &with_rows(&[GOOD, GOOD]),
            &["3:1: youth_id: duplicate key (youth_id, start_date, care_type, provider): same as line 2"],
        );
    }

    #[test]
    fn wrong_column_count() {
        check(
            &with_rows(&["Y1,2008-03-01,drenthe"]),
            &["2:4: expected 14 fields as in the header, found 3"],
        );
        check(
            &with_rows(&[&format!("{GOOD},extra")]),
            &["2:15: expected 14 fields as in the header, found 15"],
        );
    }

    #[test]
    fn invalid_utf8_names_the_column() {
        let mut content = with_rows(&[]);
        content.extend_from_slice(
            b"Y1,2008-03-01,drenthe,Ass\xffen,Yorneo,Assen,drenthe,pleegzorg,,ots,2022-01-01,,,\n",
        );
        check(&content, &["2:4: origin_municipality: invalid UTF-8"]);
    }

    #[test]
    fn checking_goes_on_after_invalid_utf8() {
        // The whole record is checked for UTF-8 at once; the problem still names the column,
        // and the rows after it are still read and checked.
        let mut content = with_rows(&[GOOD]);
        content.extend_from_slice(
            b"Y2,2008-03-01,drenthe,Assen,\"Yor\nneo\xff\",Assen,drenthe,pleegzorg,,ots,2022-01-01,,,\n",
        );
        content.extend_from_slice(
            b"Y3,2008-03-01,drenthe,Assen,Yorneo,Assen,drenthe,pleegzorg,,ots,2022-13-01,,,\n",
        );
        check(
            &content,
            &[
                "3:5: provider: invalid UTF-8",
                "5:11: start_date: no such day in the calendar",
            ],
        );
    }

    #[test]
    fn problems_never_repeat_values() {
        let secret = "SECRET-PSEUDONYM-0042";
        let row = GOOD
            .replace("Y1", secret)
            .replace("2008-03-01", "2008-13-01");
        let content = with_rows(&[&row, &row.replace("vrijwillig", "vrijwilig")]);
        let Err(Rejection::Problems { problems, .. }) = parse(Table::Placements, &content[..])
        else {
            panic!("expected problems");
        };
        for problem in problems {
            assert!(!problem.to_string().contains(secret), "{problem}");
            assert!(!problem.to_string().contains("2008-13"), "{problem}");
        }
    }

    #[test]
    fn stops_after_max_problems() {
        let bad = GOOD.replace("vrijwillig", "x");
        let rows: Vec<&str> = std::iter::repeat_n(bad.as_str(), 50).collect();
        match parse(Table::Placements, &with_rows(&rows)[..]) {
            Err(Rejection::Problems { problems, complete }) => {
                assert_eq!(problems.len(), MAX_PROBLEMS);
                assert!(!complete);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_quoting_is_a_problem() {
        check(
            &with_rows(&["\"Y1,2008-03-01"]),
            &["2:2: expected 14 fields as in the header, found 1"],
        );
    }

    #[test]
    fn other_tables_parse() {
        let capacity = "provider,facility,location_municipality,placement_region,care_type,setting,peildatum,places,occupied,financing\nElker,Groep 1,Groningen,groningen,open_residentieel,op_terrein,2024-01-01,12,13,capaciteit\n";
        match parse(Table::Capacity, capacity.as_bytes()) {
            Err(Rejection::Problems { problems, .. }) => {
                assert_eq!(
                    problems[0].to_string(),
                    "2:9: occupied: occupied is more than places"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let transition = "youth_id,check_date,toekomstplan,lokaal_team,clientondersteuner,after18_funding,big5_support,big5_wonen,big5_werk_school,big5_inkomen_schulden,big5_zorg_ondersteuning,uit_beeld\nY1,2024-07-01,ja,nee,JA,wmo,op_orde,wankel,niet_op_orde,onbekend,op_orde,misschien\n";
        match parse(Table::Transition18, transition.as_bytes()) {
            Err(Rejection::Problems { problems, .. }) => {
                assert_eq!(
                    problems[0].to_string(),
                    "2:12: uit_beeld: must be `ja` or `nee`; an export's own codes go in a mapping's [values.uit_beeld]"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let consents = "consent_id,youth_id,purpose,recipient,fields,granted_at,expires_at,revoked_at,evidence_ref\nC1,Y1,warme-overdracht,00000099000000000002,care_type|toekomstplan,2024-01-01,,,dossier 7\nC2,Y1,triage-plaatsing,jenn,care_type,2024-01-01,2023-01-01,,\n";
        match parse(Table::Consents, consents.as_bytes()) {
            Err(Rejection::Problems { problems, .. }) => {
                assert_eq!(problems.len(), 1);
                assert_eq!(
                    problems[0].to_string(),
                    "3:7: expires_at: expires_at is before granted_at"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // Every malformed consent is named by line and column, without its values.
        let consents = "consent_id,youth_id,purpose,recipient,fields,granted_at,expires_at,revoked_at,evidence_ref\n\
            C1,Y1,warme-overdracht,region:IJmond,care_type,2024-01-01T09:30:00+01:00,,2024-06-01,\n\
            C2,Y1,nieuwsgierig,jenn,care_type,2024-01-01,,,\n\
            C3,Y1,warme-overdracht,gemeente:zwolle,care_type,2024-01-01,,,\n\
            C4,Y1,warme-overdracht,jenn,care_type|bsn,2024-01-01,,,\n\
            C5,Y1,warme-overdracht,jenn,care_type,1 januari 2024,,,\n";
        match parse(Table::Consents, consents.as_bytes()) {
            Err(Rejection::Problems { problems, .. }) => {
                let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
                assert_eq!(found.len(), 4, "{found:?}");
                assert!(found[0].starts_with("3:3: purpose: "), "{found:?}");
                assert_eq!(
                    found[1],
                    "4:4: recipient: must be a 20-digit PeerID, region:<region code> or a network code (jenn, overijssel, ben-nh)"
                );
                assert!(
                    found[2].starts_with(
                        "5:5: fields: fields must name placements or transition18 columns"
                    ),
                    "{found:?}"
                );
                assert!(
                    found[3].starts_with(
                        "6:6: granted_at: not a date (YYYY-MM-DD) or a moment in RFC 3339"
                    ),
                    "{found:?}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
