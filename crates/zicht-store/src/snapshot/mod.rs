//! The counted tables in memory: a compact, sorted copy of `placements`, `transition18` and
//! `measures` that the person-count templates run over (see `counts::engine`).
//!
//! The database stays the system of record and the only thing written. The snapshot is built
//! from it inside one read transaction together with the data generation (a number every
//! write to those tables raises in its own transaction, see migration 0010); before each
//! count the store reads the generation again and rebuilds when it moved. So a count is never
//! older than the database at the moment it was asked.
//!
//! The snapshot is also stored in the database (`stored`), so a fresh process reads one value
//! instead of every row while the data has not changed.
//!
//! Each text column holding codes is kept as an index into one table of the distinct codes;
//! dates as days. Youth pseudonyms are not kept at all: rows are grouped per youth (sorted)
//! and only the groups' boundaries remain, with each youth's record key when the snapshot is
//! built with the node's key function (see `record_keys`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use futures_util::TryStreamExt;
use zicht_model::CodeList;

use crate::{on_pool, query_error, Pool, RecordKeys, Store, StoreError};

mod stored;

/// A date as days from the common era (open ends are [`OPEN`]).
pub(crate) type Day = i32;

/// The end of a placement that has not ended.
pub(crate) const OPEN: Day = Day::MAX;

/// An index into [`Snapshot::codes`].
pub(crate) type Code = u16;

/// No code (a placement that has not ended has no outflow destination).
pub(crate) const NO_CODE: Code = Code::MAX;

/// No birth date known (a checked youth without a placement).
pub(crate) const NO_BIRTH: Day = Day::MIN;

/// The day number of a date.
pub(crate) fn day(date: NaiveDate) -> Day {
    date.num_days_from_ce()
}

/// One placement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stay {
    pub start: Day,
    /// [`OPEN`] while ongoing.
    pub end: Day,
    pub birth: Day,
    /// The youth's record key; `None` in a snapshot built without the key function.
    pub record_key: Option<u32>,
    pub care_type: Code,
    pub origin_region: Code,
    pub placement_region: Code,
    pub legal_basis: Code,
    /// [`NO_CODE`] while ongoing.
    pub outflow_destination: Code,
    /// 1-4, or 0 when unknown.
    pub outflow_profile: u8,
    /// The rank of the care type's code in byte order (the tie-break `care_type DESC`).
    pub care_rank: u16,
    /// The rank of the provider's name in byte order (the tie-break `provider DESC`).
    pub provider_rank: u32,
}

/// One 18+ transition check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    pub date: Day,
    /// The youth's birth date as their placements give it (the latest, as the SQL's `MAX`);
    /// [`NO_BIRTH`] when the youth has no placement.
    pub birth: Day,
    /// As [`Stay::record_key`].
    pub record_key: Option<u32>,
    pub toekomstplan: bool,
    pub after18_funding: Code,
    /// The status of each domain, in [`zicht_model::Big5Domain::ALL`] order.
    pub big5: [Code; 5],
}

/// One vrijheidsbeperkende maatregel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    /// The day it started.
    pub day: Day,
    /// As [`Stay::record_key`].
    pub record_key: Option<u32>,
    pub kind: Code,
    pub placement_region: Code,
    /// Index into [`Snapshot::names`].
    pub provider: u32,
    /// Index into [`Snapshot::names`].
    pub facility: u32,
}

/// Rows grouped per youth: `rows[bounds[i]..bounds[i + 1]]` are youth `i`'s, in key order.
#[derive(Debug, Default)]
pub(crate) struct PerYouth<T> {
    rows: Vec<T>,
    bounds: Vec<u32>,
}

impl<T> PerYouth<T> {
    /// Each youth's rows.
    pub fn youths(&self) -> impl Iterator<Item = &[T]> {
        self.bounds
            .windows(2)
            .map(|w| &self.rows[w[0] as usize..w[1] as usize])
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Youth `youth`'s rows in a table grouped over every youth (see [`PerYouth::dense`]).
    pub fn of(&self, youth: usize) -> &[T] {
        match (self.bounds.get(youth), self.bounds.get(youth + 1)) {
            (Some(&from), Some(&to)) => &self.rows[from as usize..to as usize],
            _ => &[],
        }
    }

    /// Sorts `(youth, row)` pairs by youth and then `order`, with a boundary for every youth
    /// `0..youths` (none for rows of youths beyond).
    fn dense(
        mut rows: Vec<(u32, T)>,
        youths: usize,
        order: impl Fn(&T, &T) -> std::cmp::Ordering,
    ) -> PerYouth<T> {
        rows.retain(|(youth, _)| (*youth as usize) < youths);
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| order(&a.1, &b.1)));
        let mut bounds = Vec::with_capacity(youths + 1);
        let mut at = 0;
        for youth in 0..youths as u32 {
            bounds.push(at as u32);
            while rows.get(at).is_some_and(|(y, _)| *y == youth) {
                at += 1;
            }
        }
        bounds.push(rows.len() as u32);
        PerYouth {
            rows: rows.into_iter().map(|(_, row)| row).collect(),
            bounds,
        }
    }

    /// Sorts `(youth, row)` pairs by youth and then `order`, and keeps the boundaries.
    fn group(mut rows: Vec<(u32, T)>, order: impl Fn(&T, &T) -> std::cmp::Ordering) -> PerYouth<T> {
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| order(&a.1, &b.1)));
        let mut bounds = Vec::new();
        let mut previous = None;
        for (i, (youth, _)) in rows.iter().enumerate() {
            if previous != Some(*youth) {
                bounds.push(i as u32);
                previous = Some(*youth);
            }
        }
        bounds.push(rows.len() as u32);
        PerYouth {
            rows: rows.into_iter().map(|(_, row)| row).collect(),
            bounds,
        }
    }
}

/// The counted tables at one data generation.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub generation: i64,
    /// The fingerprint of the key function the record keys come from, if any.
    pub keys: Option<String>,
    /// Every distinct code the rows hold (regions, care types, legal bases, destinations,
    /// funding, BIG5 statuses), as stored.
    pub codes: Vec<String>,
    /// Placements per youth, ordered by start date, care type and provider.
    pub placements: PerYouth<Stay>,
    /// Transition checks per youth, ordered by check date.
    pub checks: PerYouth<Check>,
    /// The providers and facilities the measures name.
    pub names: Vec<String>,
    /// Measures per youth, ordered by start day, provider and facility (bytewise).
    pub measures: PerYouth<Mark>,
    /// The start days of each placed youth's separaties, in the order of `placements`' youths
    /// (every one of them has a group, most empty).
    pub separaties: PerYouth<Day>,
}

/// Gives each distinct text a small number, in order of first sight. (foldhash: a million
/// pseudonyms are hashed per build, and SipHash was a tenth of it.)
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32, foldhash::fast::RandomState>,
}

impl Interner {
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.index.get(text) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(text.to_owned());
        self.index.insert(text.to_owned(), id);
        id
    }

    /// Each id's position when the texts are sorted bytewise.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let mut ranks = vec![0; order.len()];
        for (rank, id) in order.into_iter().enumerate() {
            ranks[id as usize] = rank as u32;
        }
        ranks
    }
}

/// Codes, with the error a column holding more distinct codes than fit.
struct Codes(Interner);

impl Codes {
    fn code(&mut self, text: &str) -> Result<Code, StoreError> {
        let id = self.0.id(text);
        Code::try_from(id)
            .ok()
            .filter(|&c| c != NO_CODE)
            .ok_or(StoreError::Snapshot(
                "more distinct codes than the snapshot holds",
            ))
    }
}

const GENERATION: &str = "SELECT generation FROM data_generation";

/// How a column travels in the snapshot's text lines.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Never NULL; codes, dates, tokens, numbers and booleans (no tab or newline in them).
    Plain,
    /// May be NULL (empty, or PostgreSQL's `\N`).
    Nullable,
    /// Free text, sent as hex (which sorts as the text does, bytewise).
    Hex,
}

use Kind::{Hex, Nullable, Plain};

/// The placement columns of a snapshot line, in order.
const PLACEMENT_COLUMNS: &[(&str, Kind)] = &[
    ("youth_id", Plain),
    ("start_date", Plain),
    ("end_date", Nullable),
    ("birth_date", Plain),
    ("care_type", Plain),
    ("origin_region", Plain),
    ("placement_region", Plain),
    ("legal_basis", Plain),
    ("outflow_destination", Nullable),
    ("outflow_profile", Nullable),
    ("provider", Hex),
];

/// The transition check columns of a snapshot line: the BIG5 statuses in
/// [`zicht_model::Big5Domain::ALL`] order (a test checks).
const CHECK_COLUMNS: &[(&str, Kind)] = &[
    ("youth_id", Plain),
    ("check_date", Plain),
    ("toekomstplan", Plain),
    ("after18_funding", Plain),
    ("big5_support", Plain),
    ("big5_wonen", Plain),
    ("big5_werk_school", Plain),
    ("big5_inkomen_schulden", Plain),
    ("big5_zorg_ondersteuning", Plain),
];

/// The measure columns of a snapshot line.
const MEASURE_COLUMNS: &[(&str, Kind)] = &[
    ("youth_id", Plain),
    ("start_date", Plain),
    ("kind", Plain),
    ("placement_region", Plain),
    ("provider", Hex),
    ("facility", Hex),
];

/// The text of a [`Hex`] field.
fn unhex(field: &str) -> Result<String, StoreError> {
    hex::decode(field)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(MALFORMED)
}

/// Rows per SQLite chunk (about 100 bytes of text each).
const SQLITE_CHUNK: i64 = 50_000;

/// SQLite: each row as one tab-separated line, in chunks of [`SQLITE_CHUNK`] rows joined by
/// newlines, so one value per chunk crosses into Rust instead of a dozen per row.
fn sqlite_chunk_sql(table: &str, columns: Columns) -> String {
    let fields: Vec<String> = columns
        .iter()
        .map(|(name, kind)| match kind {
            Plain => format!("CAST({name} AS TEXT)"),
            Nullable => format!("COALESCE(CAST({name} AS TEXT), '')"),
            Hex => format!("hex({name})"),
        })
        .collect();
    format!(
        "SELECT MAX(rid), group_concat(line, char(10)) FROM (SELECT rowid AS rid, {} AS line \
         FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT {SQLITE_CHUNK}) AS chunk",
        fields.join(" || char(9) || ")
    )
}

/// PostgreSQL: the rows as `COPY ... TO STDOUT` text (tab-separated, `\N` for NULL).
fn postgres_copy_sql(table: &str, columns: Columns) -> String {
    let fields: Vec<String> = columns
        .iter()
        .map(|(name, kind)| match kind {
            Hex => format!("encode(convert_to({name}, 'UTF8'), 'hex')"),
            _ => name.to_string(),
        })
        .collect();
    format!("COPY (SELECT {} FROM {table}) TO STDOUT", fields.join(", "))
}

const MALFORMED: StoreError =
    StoreError::Snapshot("a row of the counted tables has an unexpected form");

/// The `N` tab-separated fields of a line.
fn fields<const N: usize>(line: &str) -> Result<[&str; N], StoreError> {
    let mut fields = [""; N];
    let mut parts = line.split('\t');
    for field in &mut fields {
        *field = parts.next().ok_or(MALFORMED)?;
    }
    match parts.next() {
        None => Ok(fields),
        Some(_) => Err(MALFORMED),
    }
}

fn nullable(field: &str) -> Option<&str> {
    (!field.is_empty() && field != "\\N").then_some(field)
}

/// An ISO date (`YYYY-MM-DD`) as a day.
fn parse_day(text: &str) -> Result<Day, StoreError> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = (b.len() == 10 && b[4] == b'-' && b[7] == b'-')
        .then(|| {
            let year = i32::try_from(digits(0..4)?).ok()?;
            NaiveDate::from_ymd_opt(year, digits(5..7)?, digits(8..10)?)
        })
        .flatten();
    date.map(day).ok_or(MALFORMED)
}

/// Turns snapshot lines into rows.
struct Reader {
    codes: Codes,
    providers: Interner,
    placement_youths: Youths,
    check_youths: Youths,
    measure_youths: Youths,
    names: Interner,
    stays: Vec<(u32, Stay)>,
    checks: Vec<(u32, Check)>,
    marks: Vec<(u32, Mark)>,
}

/// The youths of one table: a number for each, and their record keys (in number order) when
/// the snapshot is built with the key function.
struct Youths {
    ids: Interner,
    keys: Option<(RecordKeys, Vec<u32>)>,
}

impl Youths {
    fn new(keys: Option<&RecordKeys>) -> Youths {
        Youths {
            ids: Interner::default(),
            keys: keys.map(|k| (k.clone(), Vec::new())),
        }
    }

    /// The youth's number; a youth seen for the first time gets their record key.
    fn id(&mut self, youth: &str) -> u32 {
        let id = self.ids.id(youth);
        if let Some((function, keys)) = &mut self.keys {
            if id as usize == keys.len() {
                keys.push(function.key(youth));
            }
        }
        id
    }

    fn key(&self, id: u32) -> Option<u32> {
        self.keys.as_ref().map(|(_, keys)| keys[id as usize])
    }
}

/// A table's columns in a snapshot line.
type Columns = &'static [(&'static str, Kind)];

/// What reads one line of a table.
type LineFn = fn(&mut Reader, &str) -> Result<(), StoreError>;

impl Reader {
    fn new(keys: Option<&RecordKeys>) -> Reader {
        Reader {
            codes: Codes(Interner::default()),
            providers: Interner::default(),
            placement_youths: Youths::new(keys),
            check_youths: Youths::new(keys),
            measure_youths: Youths::new(keys),
            names: Interner::default(),
            stays: Vec::new(),
            checks: Vec::new(),
            marks: Vec::new(),
        }
    }

    fn placement(&mut self, line: &str) -> Result<(), StoreError> {
        let [youth, start, end, birth, care, origin, region, legal, destination, profile, provider] =
            fields::<11>(line)?;
        let youth = self.placement_youths.id(youth);
        let stay = Stay {
            start: parse_day(start)?,
            end: nullable(end).map_or(Ok(OPEN), parse_day)?,
            birth: parse_day(birth)?,
            record_key: self.placement_youths.key(youth),
            care_type: self.codes.code(care)?,
            origin_region: self.codes.code(origin)?,
            placement_region: self.codes.code(region)?,
            legal_basis: self.codes.code(legal)?,
            outflow_destination: match nullable(destination) {
                Some(d) => self.codes.code(d)?,
                None => NO_CODE,
            },
            outflow_profile: nullable(profile)
                .map(|p| p.parse::<u8>().map_err(|_| MALFORMED))
                .transpose()?
                .unwrap_or(0),
            care_rank: 0,
            provider_rank: self.providers.id(provider),
        };
        self.stays.push((youth, stay));
        Ok(())
    }

    fn check(&mut self, line: &str) -> Result<(), StoreError> {
        let [youth, date, plan, funding, b0, b1, b2, b3, b4] = fields::<9>(line)?;
        let youth = self.check_youths.id(youth);
        let mut big5 = [NO_CODE; 5];
        for (slot, status) in big5.iter_mut().zip([b0, b1, b2, b3, b4]) {
            *slot = self.codes.code(status)?;
        }
        let check = Check {
            date: parse_day(date)?,
            birth: NO_BIRTH,
            record_key: self.check_youths.key(youth),
            toekomstplan: match plan {
                "1" | "t" | "true" => true,
                "0" | "f" | "false" => false,
                _ => return Err(MALFORMED),
            },
            after18_funding: self.codes.code(funding)?,
            big5,
        };
        self.checks.push((youth, check));
        Ok(())
    }

    fn measure(&mut self, line: &str) -> Result<(), StoreError> {
        let [youth, day, kind, region, provider, facility] = fields::<6>(line)?;
        let youth = self.measure_youths.id(youth);
        let mark = Mark {
            day: parse_day(day)?,
            record_key: self.measure_youths.key(youth),
            kind: self.codes.code(kind)?,
            placement_region: self.codes.code(region)?,
            provider: self.names.id(&unhex(provider)?),
            facility: self.names.id(&unhex(facility)?),
        };
        self.marks.push((youth, mark));
        Ok(())
    }

    fn lines(&mut self, text: &str, each: LineFn) -> Result<(), StoreError> {
        text.split('\n')
            .filter(|l| !l.is_empty())
            .try_for_each(|line| each(self, line))
    }

    fn finish(self, generation: i64) -> Snapshot {
        let Reader {
            codes,
            providers,
            placement_youths,
            check_youths,
            measure_youths,
            names,
            mut stays,
            mut checks,
            marks,
        } = self;
        // Each checked youth's birth date, from their placements (the latest of them).
        let mut births = vec![NO_BIRTH; placement_youths.ids.names.len()];
        for (youth, stay) in &stays {
            let slot = &mut births[*youth as usize];
            *slot = (*slot).max(stay.birth);
        }
        for (youth, check) in &mut checks {
            let name = &check_youths.ids.names[*youth as usize];
            if let Some(&placed) = placement_youths.ids.index.get(name) {
                check.birth = births[placed as usize];
            }
        }
        // Each placed youth's separaties, under the youth's number among the placed.
        let separatie = codes
            .0
            .index
            .get(zicht_model::MeasureKind::Separatie.code());
        let separaties: Vec<(u32, Day)> = marks
            .iter()
            .filter(|(_, mark)| separatie == Some(&u32::from(mark.kind)))
            .filter_map(|(youth, mark)| {
                let name = &measure_youths.ids.names[*youth as usize];
                placement_youths
                    .ids
                    .index
                    .get(name)
                    .map(|&placed| (placed, mark.day))
            })
            .collect();
        let placed = placement_youths.ids.names.len();
        let keys = placement_youths
            .keys
            .map(|(function, _)| function.fingerprint().to_owned());
        // Ranks in byte order, for the tie-breaks of "the latest placement".
        let code_ranks = codes.0.ranks();
        let provider_ranks = providers.ranks();
        for (_, stay) in &mut stays {
            stay.care_rank = code_ranks[stay.care_type as usize] as u16;
            stay.provider_rank = provider_ranks[stay.provider_rank as usize];
        }
        Snapshot {
            generation,
            keys,
            codes: codes.0.names,
            placements: PerYouth::group(stays, |a, b| {
                (a.start, a.care_rank, a.provider_rank).cmp(&(
                    b.start,
                    b.care_rank,
                    b.provider_rank,
                ))
            }),
            checks: PerYouth::group(checks, |a, b| a.date.cmp(&b.date)),
            measures: PerYouth::group(marks, |a, b| {
                let text = |m: &Mark| {
                    (
                        &names.names[m.provider as usize],
                        &names.names[m.facility as usize],
                    )
                };
                (a.day, text(a)).cmp(&(b.day, text(b)))
            }),
            names: names.names,
            separaties: PerYouth::dense(separaties, placed, Day::cmp),
        }
    }
}

impl Store {
    /// The data generation now.
    pub(crate) async fn data_generation(&self) -> Result<i64, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar(GENERATION)
            .fetch_one(pool)
            .await
            .map_err(query_error("read the data generation")))
    }

    /// The snapshot of the data as it is now, with record keys from `keys` (none without):
    /// the one in memory when the generation has not moved since it was built and it holds
    /// the keys asked for, else a new one (one build at a time; concurrent askers wait for it
    /// and share it).
    pub(crate) async fn snapshot(
        &self,
        keys: Option<&RecordKeys>,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let generation = self.data_generation().await?;
        let mut cached = self.snapshot.lock().await;
        let fits = |s: &&Arc<Snapshot>| {
            s.generation == generation
                && keys.is_none_or(|k| s.keys.as_deref() == Some(k.fingerprint()))
        };
        if let Some(snapshot) = cached.as_ref().filter(fits) {
            return Ok(snapshot.clone());
        }
        let started = std::time::Instant::now();
        let (snapshot, how) = match self.load_snapshot(keys).await? {
            Some(stored) => (stored, "read the stored snapshot of the counted tables"),
            None => {
                let built = self.build_snapshot(keys).await?;
                // A cache: a database that cannot take it still answers, from the tables.
                if let Err(error) = self.save_snapshot(&built).await {
                    tracing::warn!(%error, "could not store the snapshot of the counted tables");
                }
                (
                    built,
                    "built the snapshot of the counted tables from their rows",
                )
            }
        };
        let snapshot = Arc::new(snapshot);
        tracing::debug!(
            generation = snapshot.generation,
            placements = snapshot.placements.len(),
            checks = snapshot.checks.len(),
            measures = snapshot.measures.len(),
            ms = started.elapsed().as_millis() as u64,
            "{how}"
        );
        *cached = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Reads the generation and both tables in one read transaction (a consistent view).
    async fn build_snapshot(&self, keys: Option<&RecordKeys>) -> Result<Snapshot, StoreError> {
        let tables: [(&str, Columns, LineFn); 3] = [
            ("placements", PLACEMENT_COLUMNS, Reader::placement),
            ("transition18", CHECK_COLUMNS, Reader::check),
            ("measures", MEASURE_COLUMNS, Reader::measure),
        ];
        let mut reader = Reader::new(keys);
        let read = || query_error("read the counted tables for the snapshot");
        let generation = match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(read())?;
                let generation: i64 = sqlx::query_scalar(GENERATION)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(read())?;
                // SQLite makes the next chunk on its thread while this one is read here.
                let (chunks, received) = tokio::sync::mpsc::channel::<(LineFn, String)>(2);
                let make = async {
                    for (table, columns, each) in &tables {
                        let sql = sqlite_chunk_sql(table, columns);
                        let mut after = 0i64;
                        loop {
                            let (last, text): (Option<i64>, Option<String>) = sqlx::query_as(&sql)
                                .bind(after)
                                .fetch_one(&mut *tx)
                                .await
                                .map_err(read())?;
                            let (Some(last), Some(text)) = (last, text) else {
                                break;
                            };
                            if chunks.send((*each, text)).await.is_err() {
                                // The reader stopped on a malformed line; it says why.
                                return Ok(());
                            }
                            after = last;
                        }
                    }
                    drop(chunks);
                    Ok::<_, StoreError>(())
                };
                let take = async {
                    // Owned here, so the channel closes when this stops early.
                    let mut received = received;
                    while let Some((each, text)) = received.recv().await {
                        reader.lines(&text, each)?;
                    }
                    Ok::<_, StoreError>(())
                };
                let (made, taken) = futures_util::future::join(make, take).await;
                made.and(taken)?;
                tx.commit().await.map_err(read())?;
                generation
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(read())?;
                for setup in [
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                    "SET LOCAL datestyle = 'ISO'",
                ] {
                    sqlx::query(setup).execute(&mut *tx).await.map_err(read())?;
                }
                let generation: i64 = sqlx::query_scalar(GENERATION)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(read())?;
                for (table, columns, each) in &tables {
                    let mut stream = tx
                        .copy_out_raw(&postgres_copy_sql(table, columns))
                        .await
                        .map_err(read())?;
                    // Chunks split lines anywhere: the unfinished tail waits for the next one.
                    let mut pending = Vec::new();
                    while let Some(chunk) = stream.try_next().await.map_err(read())? {
                        pending.extend_from_slice(&chunk);
                        if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                            let text =
                                std::str::from_utf8(&pending[..end]).map_err(|_| MALFORMED)?;
                            reader.lines(text, *each)?;
                            pending.drain(..=end);
                        }
                    }
                    let text = std::str::from_utf8(&pending).map_err(|_| MALFORMED)?;
                    reader.lines(text, *each)?;
                }
                tx.commit().await.map_err(read())?;
                generation
            }
        };
        Ok(reader.finish(generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zicht_model::{Big5Domain, CodeList};

    #[test]
    fn the_big5_columns_follow_the_domains() {
        let names: Vec<&str> = CHECK_COLUMNS[4..].iter().map(|(name, _)| *name).collect();
        let domains: Vec<String> = Big5Domain::ALL
            .iter()
            .map(|d| format!("big5_{}", d.code()))
            .collect();
        assert_eq!(names, domains);
    }
}
