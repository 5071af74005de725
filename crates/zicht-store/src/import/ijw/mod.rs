//! iJw 3.2 import: a gemeente's JW301 (toewijzing), JW305 (start zorg) and JW307 (stop zorg)
//! messages, as single `.xml` files or as the `.zip` batches its system exports, turned into
//! placements.
//!
//! A placement is one delivery of a product: a JW305's start, the JW307 that stops it (same
//! client, ToewijzingNummer and Begindatum; without one the placement goes on), and the
//! JW301 that assigned its toewijzing (the client's legal status). What the messages do not
//! carry comes from the region's mapping: the aanbieder behind each AGB code and where its
//! placements are (`[providers]`), the care type of each product code or category
//! (`[values.care_type]`), the outflow destination of each reden beëindiging
//! (`[values.outflow_destination]`, else `onbekend`), and the legal basis of each juridische
//! status (`[values.legal_basis]`, over the defaults in [`LEGAL_STATUS`]). The origin is the
//! gemeente the messages are exchanged with, by the CBS code lists zicht carries (or
//! `[values.origin_region]` for a code the list does not hold).
//!
//! All messages of one import are read before anything is stored (a stop may come before its
//! start), then stored in one transaction: a truncated batch or one bad message stores
//! nothing. The BSN becomes its pseudonym under the region's key as it is read.

mod message;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use sha2::{Digest, Sha256};
use zicht_model::{
    CareType, CodeList, LegalBasis, NaiveDate, Name, OriginRegion, OutflowDestination, Placement,
    YouthId,
};
use zicht_privacy::PseudonymKey;

use self::message::{At, Kind, Message, Outcome};
use super::mapping::Mapping;
use super::parse::RegionTally;
use super::{Rows, MAX_PROBLEMS};

/// The legal basis of a JuridischeStatus (WJ232) where a region's mapping does not say
/// otherwise. Statuses 01-03 and 05 (machtigingen, inbewaringstelling) mean different things
/// per region's practice and must be mapped; a client without a status is `vrijwillig`, or
/// `voogdij` when the WettelijkeVertegenwoordiging (WJ003) is 06.
pub const LEGAL_STATUS: &[(&str, LegalBasis)] = &[
    ("04", LegalBasis::Ots),
    ("11", LegalBasis::Strafrechtelijk),
    ("12", LegalBasis::Strafrechtelijk),
];

/// One reason an iJw import was rejected: `file:line:column: element path: reason`. Never a
/// value read (no BSN, name or date of birth); codes of products, aanbieders, gemeenten and
/// reasons are named, as they say how to fix the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageProblem {
    /// The file, and for a batch the message in it (`batch.zip!jw305/0001.xml`).
    pub file: String,
    /// Line of the element's start (1-based; 0 for a problem of the whole file or batch).
    pub line: u64,
    /// Column of the element's `<` (1-based, in bytes).
    pub column: u64,
    /// The element's path from `Bericht`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for MessageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.reason)
    }
}

/// What the messages of an import held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// JW301 messages read.
    pub jw301: u64,
    /// JW305 messages read.
    pub jw305: u64,
    /// JW307 messages read.
    pub jw307: u64,
    /// Other iJw 3.2 messages (retourberichten, JW315, ...), skipped, by kind.
    pub skipped: Vec<(String, u64)>,
    /// Entries of a batch that are not XML (skipped).
    pub not_xml: u64,
}

impl fmt::Display for MessageCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} JW301, {} JW305, {} JW307",
            self.jw301, self.jw305, self.jw307
        )?;
        for (kind, n) in &self.skipped {
            write!(f, "; {n} {kind} skipped")?;
        }
        if self.not_xml > 0 {
            write!(f, "; {} non-XML batch entries skipped", self.not_xml)?;
        }
        Ok(())
    }
}

/// Why messages were not turned into placements.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A file could not be read.
    Io(String, io::Error),
    /// The messages broke the format or could not be mapped.
    Problems(Vec<MessageProblem>, bool),
}

/// The placements of a set of message files, their counts, and the SHA-256 over the files'
/// bytes in order.
pub(crate) struct Converted {
    pub rows: Rows,
    pub counts: MessageCounts,
    pub sha256: String,
}

/// What the join keeps of an assignment (JW301's ToegewezenProduct).
struct Assignment {
    legal_status: Option<String>,
    guardian: Option<String>,
    category: Option<String>,
    code: Option<String>,
    assigned: (NaiveDate, String),
}

/// What the join keeps of a start (JW305's StartProduct): the aanbieder's AGB code and the
/// gemeente's code as numbers (eight and four digits).
struct Start {
    agb: u32,
    gemeente: u16,
    birth: NaiveDate,
    category: Option<String>,
    code: Option<String>,
    at: Located,
}

/// What the join keeps of a stop (JW307's StopProduct).
struct Stop {
    end: NaiveDate,
    reason: String,
    at: Located,
}

/// A place in the input: the file index, and where in it.
#[derive(Clone)]
struct Located {
    file: usize,
    line: u32,
    column: u32,
    path: &'static str,
}

impl Located {
    fn at(&self) -> At {
        At {
            line: self.line.into(),
            column: self.column.into(),
            path: self.path.to_owned(),
        }
    }
}

/// The client as the join keys them: the pseudonym's 128 bits.
type Client = u128;

/// The delivery a start or stop belongs to: client, toewijzing (or for a product without
/// one, its category and code), begin date.
type DeliveryKey = (Client, String, NaiveDate);

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Exchange {
    /// (client, ToewijzingNummer) -> the latest assignment.
    assignments: Map<(Client, String), Assignment>,
    starts: Map<DeliveryKey, Start>,
    stops: Map<DeliveryKey, Stop>,
    /// The files (and batch entries) read, for problems' names.
    names: Vec<String>,
    counts: MessageCounts,
    problems: Vec<MessageProblem>,
}

impl Exchange {
    fn problem(&mut self, file: usize, at: &At, reason: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS + 1 {
            self.problems.push(MessageProblem {
                file: self.names.get(file).cloned().unwrap_or_default(),
                line: at.line,
                column: at.column,
                path: at.path.clone(),
                reason: reason.into(),
            });
        }
    }

    fn full(&self) -> bool {
        self.problems.len() > MAX_PROBLEMS
    }

    /// Takes one message in.
    fn take(&mut self, file: usize, kind: Kind, message: Message) {
        match kind {
            Kind::Jw301 => self.counts.jw301 += 1,
            Kind::Jw305 => self.counts.jw305 += 1,
            Kind::Jw307 => self.counts.jw307 += 1,
        }
        let birth = message.birth.unwrap_or(NaiveDate::MIN);
        // Both are checked digits; the pseudonym is 32 hex digits.
        let client = u128::from_str_radix(&message.youth, 16).unwrap_or_default();
        let agb: u32 = message.agb.parse().unwrap_or_default();
        let gemeente: u16 = message.gemeente.parse().unwrap_or_default();
        let path = match kind {
            Kind::Jw301 => "Bericht/Client/ToegewezenProducten/ToegewezenProduct",
            Kind::Jw305 => "Bericht/Client/StartProducten/StartProduct",
            Kind::Jw307 => "Bericht/Client/StopProducten/StopProduct",
        };
        for product in message.products {
            let (line, column) = product
                .at
                .as_ref()
                .map_or((1, 1), |at| (at.line, at.column));
            let at = Located {
                file,
                line: u32::try_from(line).unwrap_or(u32::MAX),
                column: u32::try_from(column).unwrap_or(u32::MAX),
                path,
            };
            let toewijzing = product.toewijzing.clone().unwrap_or_else(|| {
                format!(
                    "product {}{}",
                    product.category.as_deref().unwrap_or(""),
                    product.code.as_deref().unwrap_or("")
                )
            });
            let delivery = |begin: NaiveDate| (client, toewijzing.clone(), begin);
            match kind {
                Kind::Jw301 => {
                    let (Some(number), Some(assigned)) = (product.toewijzing, product.assigned)
                    else {
                        continue;
                    };
                    let assignment = Assignment {
                        legal_status: message.legal_status.clone(),
                        guardian: message.guardian.clone(),
                        category: product.category,
                        code: product.code,
                        assigned,
                    };
                    // A changed assignment (a later Toewijzingsdatum and -tijd) replaces it.
                    match self.assignments.entry((client, number)) {
                        std::collections::hash_map::Entry::Occupied(mut held) => {
                            if held.get().assigned <= assignment.assigned {
                                held.insert(assignment);
                            }
                        }
                        std::collections::hash_map::Entry::Vacant(free) => {
                            free.insert(assignment);
                        }
                    }
                }
                Kind::Jw305 => {
                    let Some(begin) = product.begin else { continue };
                    let key = delivery(begin);
                    if product.status == Some(3) {
                        self.starts.remove(&key);
                        continue;
                    }
                    self.starts.insert(
                        key,
                        Start {
                            agb,
                            gemeente,
                            birth,
                            category: product.category,
                            code: product.code,
                            at,
                        },
                    );
                }
                Kind::Jw307 => {
                    let (Some(begin), Some(end), Some(reason)) =
                        (product.begin, product.end, product.reason.clone())
                    else {
                        continue;
                    };
                    let key = delivery(begin);
                    if product.status == Some(3) {
                        self.stops.remove(&key);
                        continue;
                    }
                    self.stops.insert(key, Stop { end, reason, at });
                }
            }
        }
    }

    /// Takes one item of the reading in.
    fn apply(&mut self, item: Item) {
        let (name, item) = match item {
            Item::Message(name, outcome) => (name, Ok(outcome)),
            Item::Damaged(name, reason) => (name, Err(reason)),
            Item::NotXml => {
                self.counts.not_xml += 1;
                return;
            }
        };
        self.names.push(name);
        let file = self.names.len() - 1;
        match item {
            Ok(Ok(Outcome::Message(kind, message))) => self.take(file, kind, message),
            Ok(Ok(Outcome::Other(kind))) => {
                match self.counts.skipped.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, n)) => *n += 1,
                    None => self.counts.skipped.push((kind, 1)),
                }
            }
            Ok(Err(flaw)) => self.problem(file, &flaw.at, flaw.reason),
            Err(reason) => {
                let at = At {
                    line: 0,
                    column: 0,
                    path: String::new(),
                };
                self.problem(file, &at, format!("{reason}; nothing was stored"));
            }
        }
    }
}

/// Whether `path` is read as iJw: a `.zip` batch or an `.xml` file, or a file of another
/// name whose head is an XML element in an iJw namespace.
pub fn is_ijw_file(path: &Path) -> bool {
    let named = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("xml") || e.eq_ignore_ascii_case("zip"));
    if named {
        return true;
    }
    let mut head = Vec::with_capacity(4096);
    let read = File::open(path).and_then(|file| file.take(4096).read_to_end(&mut head));
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    read.is_ok()
        && text.trim_ascii_start().starts_with(b"<")
        && text
            .windows(b"istandaarden.nl/ijw/".len())
            .any(|w| w == b"istandaarden.nl/ijw/")
}

/// Reads every message of `files` (`.xml` messages and `.zip` batches of them) and joins them
/// into placements; `tally` checks their region (`given`: the region was given rather than
/// held by the database).
pub(crate) fn convert(
    files: &[PathBuf],
    key: &PseudonymKey,
    mapping: &Mapping,
    tally: &mut RegionTally,
    given: bool,
) -> Result<Converted, Failure> {
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
    // The batches' messages are parsed on two threads while this one inflates the next; a
    // collector takes them in in reading order (a later message may change an earlier one).
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (results, collected) = mpsc::sync_channel::<(u64, Vec<Item>)>(8);
    let mut exchange = std::thread::scope(|scope| {
        let collector = scope.spawn(|| collect(collected, &stop));
        let mut workers = Vec::new();
        for _ in 0..PARSERS {
            let (jobs, queue) = mpsc::sync_channel::<(u64, Vec<Entry>)>(4);
            let results = results.clone();
            scope.spawn(move || {
                for (seq, entries) in queue {
                    let items = entries
                        .into_iter()
                        .map(|(name, bytes)| {
                            Item::Message(name, message::read(bytes.as_slice(), key))
                        })
                        .collect();
                    if results.send((seq, items)).is_err() {
                        break;
                    }
                }
            });
            workers.push(jobs);
        }
        let read = read_files(files, key, &hasher, &results, &workers, &stop);
        drop((results, workers));
        let exchange = collector.join().map_err(|_| {
            Failure::Io(
                "(iJw messages)".to_owned(),
                io::Error::other("a parser stopped"),
            )
        })?;
        read.map(|()| exchange)
    })?;
    let rows = exchange.placements(mapping, tally, given);
    if !exchange.problems.is_empty() {
        let complete = exchange.problems.len() <= MAX_PROBLEMS;
        exchange.problems.truncate(MAX_PROBLEMS);
        return Err(Failure::Problems(exchange.problems, complete));
    }
    let sha256 = hasher
        .lock()
        .map_or_else(|_| String::new(), |h| super::hex(&h.clone().finalize()));
    Ok(Converted {
        rows: Rows::Placements(rows),
        counts: exchange.counts,
        sha256,
    })
}

/// Threads that parse messages.
const PARSERS: usize = 2;

/// A batch entry's name and bytes.
type Entry = (String, Vec<u8>);

/// Batch entries a parser gets at a time.
const ENTRIES: usize = 64;

/// What the reading of the files found, in reading order.
enum Item {
    /// A message, read (or not) from the named file or batch entry.
    Message(String, Result<Outcome, message::Flaw>),
    /// A batch entry that is not XML.
    NotXml,
    /// A batch that could not be read on, named, with why.
    Damaged(String, String),
}

/// Takes the items in in their order, until the channel closes; tells `stop` when the
/// problems are enough.
fn collect(
    items: mpsc::Receiver<(u64, Vec<Item>)>,
    stop: &std::sync::atomic::AtomicBool,
) -> Exchange {
    let mut exchange = Exchange::default();
    let mut pending = std::collections::BTreeMap::new();
    let mut next = 0u64;
    for (seq, item) in items {
        pending.insert(seq, item);
        while let Some(items) = pending.remove(&next) {
            next += 1;
            items.into_iter().for_each(|item| exchange.apply(item));
        }
        if exchange.full() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    // Items after a gap (a parser that stopped) are taken in as they are.
    for (_, items) in pending {
        items.into_iter().for_each(|item| exchange.apply(item));
    }
    exchange
}

/// Reads `files`, handing each batch entry to a parser and parsing a plain `.xml` file here
/// (streamed: it may be large); every item gets the next number.
fn read_files(
    files: &[PathBuf],
    key: &PseudonymKey,
    hasher: &std::sync::Arc<std::sync::Mutex<Sha256>>,
    results: &mpsc::SyncSender<(u64, Vec<Item>)>,
    workers: &[mpsc::SyncSender<(u64, Vec<Entry>)>],
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), Failure> {
    let mut seq = 0u64;
    let mut entries: Vec<Entry> = Vec::with_capacity(ENTRIES);
    // Hands the entries gathered to a parser, under the next number.
    let dispatch = |entries: &mut Vec<Entry>, seq: &mut u64| {
        if entries.is_empty() {
            return true;
        }
        let batch = std::mem::replace(entries, Vec::with_capacity(ENTRIES));
        let worker = &workers[(*seq as usize) % workers.len()];
        let sent = worker.send((*seq, batch)).is_ok();
        *seq += 1;
        sent
    };
    // Sends an item found here, after the entries before it.
    let send = |item: Item, entries: &mut Vec<Entry>, seq: &mut u64| {
        dispatch(entries, seq);
        let _ = results.send((*seq, vec![item]));
        *seq += 1;
    };
    for path in files {
        let label = path.display().to_string();
        let file = File::open(path).map_err(|e| Failure::Io(label.clone(), e))?;
        let hashing = super::HashingReader {
            inner: file,
            hasher: hasher.clone(),
        };
        let zipped = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        let mut reader = BufReader::with_capacity(1 << 16, hashing);
        if zipped {
            loop {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let mut entry = match zip::read::read_zipfile_from_stream(&mut reader) {
                    Ok(Some(entry)) => entry,
                    Ok(None) => break,
                    Err(error) => {
                        let reason = format!("the batch is damaged or truncated ({error})");
                        send(Item::Damaged(label.clone(), reason), &mut entries, &mut seq);
                        break;
                    }
                };
                if entry.is_dir() {
                    continue;
                }
                let name = entry.name().chars().take(200).collect::<String>();
                if !name.to_ascii_lowercase().ends_with(".xml") {
                    send(Item::NotXml, &mut entries, &mut seq);
                    continue;
                }
                let name = format!("{label}!{name}");
                // The whole entry (its checksum is checked at its end), up to one byte over
                // the bound a message may have, which the parser then names.
                let bound = message::MAX_MESSAGE + 1;
                let mut bytes = Vec::with_capacity(entry.size().min(bound) as usize);
                let read = io::Read::take(&mut entry, bound)
                    .read_to_end(&mut bytes)
                    .and_then(|_| io::copy(&mut entry, &mut io::sink()));
                if let Err(error) = read {
                    let reason =
                        format!("the batch entry is damaged or truncated ({})", error.kind());
                    send(Item::Damaged(name, reason), &mut entries, &mut seq);
                    break;
                }
                entries.push((name, bytes));
                if entries.len() == ENTRIES && !dispatch(&mut entries, &mut seq) {
                    break;
                }
            }
            dispatch(&mut entries, &mut seq);
        } else {
            // A message is read whole, up to one byte over the bound it may have.
            let mut bytes = Vec::new();
            io::Read::take(&mut reader, message::MAX_MESSAGE + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::Io(label.clone(), e))?;
            let outcome = message::read(&bytes, key);
            let refused = outcome.is_err();
            send(
                Item::Message(label.clone(), outcome),
                &mut entries,
                &mut seq,
            );
            if refused {
                // A refused file is not read on (it may be huge); its hash is not needed.
                continue;
            }
        }
        // The rest of the file, so the hash covers it whole.
        io::copy(&mut reader, &mut io::sink()).map_err(|e| Failure::Io(label.clone(), e))?;
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

impl Exchange {
    /// Joins starts, stops and assignments into placements; problems go to `self.problems`.
    fn placements(
        &mut self,
        mapping: &Mapping,
        tally: &mut RegionTally,
        given: bool,
    ) -> Vec<Placement> {
        let mut starts: Vec<(DeliveryKey, Start)> =
            std::mem::take(&mut self.starts).into_iter().collect();
        // File order, so problems and rows come in the order they were read.
        starts.sort_by_key(|(_, start)| (start.at.file, start.at.line));
        let mut rows = Vec::with_capacity(starts.len());
        let mut keys = std::collections::HashSet::with_capacity(starts.len());
        for (key, start) in starts {
            if self.full() {
                break;
            }
            let stop = self.stops.remove(&key);
            match self.placement(&key, &start, stop.as_ref(), mapping) {
                Ok(placement) => {
                    let row_key = (
                        placement.youth_id.clone(),
                        placement.start_date,
                        placement.care_type,
                        placement.provider.clone(),
                    );
                    if !keys.insert(row_key) {
                        let at = start.at.at();
                        self.problem(
                            start.at.file,
                            &at,
                            "a second delivery of this client with the same aanbieder, care type and Begindatum under another ToewijzingNummer; zicht keeps one placement per client, start date, care type and provider",
                        );
                        continue;
                    }
                    tally.add_placement(&placement, start.at.line.into());
                    rows.push(placement);
                }
                Err(reason) => {
                    let at = start.at.at();
                    self.problem(start.at.file, &at, reason);
                }
            }
        }
        let mut orphans: Vec<Stop> = std::mem::take(&mut self.stops).into_values().collect();
        orphans.sort_by_key(|stop| (stop.at.file, stop.at.line));
        for stop in orphans.into_iter().take(MAX_PROBLEMS) {
            self.problem(
                stop.at.file,
                &stop.at.at(),
                "a JW307 stop without the JW305 start of this client, ToewijzingNummer and Begindatum in the import; import the gemeente's JW305 messages with their JW307 messages",
            );
        }
        if let Some(reason) = tally.reason(given) {
            let at = At {
                line: 0,
                column: 0,
                path: String::new(),
            };
            self.names.push("(all messages)".to_owned());
            let index = self.names.len() - 1;
            self.problem(index, &at, reason);
        }
        rows
    }

    /// The placement of one start, its stop and its assignment.
    fn placement(
        &self,
        (youth, toewijzing, begin): &DeliveryKey,
        start: &Start,
        stop: Option<&Stop>,
        mapping: &Mapping,
    ) -> Result<Placement, String> {
        let assignment = self.assignments.get(&(*youth, toewijzing.clone()));
        let assignment = match assignment {
            Some(assignment) => Some(assignment),
            None if toewijzing.starts_with("product ") => None,
            None => {
                return Err("a JW305 start of a toewijzing no JW301 in the import assigns; import the gemeente's JW301 messages with the JW305 and JW307 messages".to_owned())
            }
        };
        let category = start
            .category
            .as_deref()
            .or(assignment.and_then(|a| a.category.as_deref()));
        let code = start
            .code
            .as_deref()
            .or(assignment.and_then(|a| a.code.as_deref()));
        let care_type = care_type(category, code, mapping)?;
        let agb = format!("{:08}", start.agb);
        let provider = mapping.provider(&agb).ok_or_else(|| {
            format!(
                "aanbieder AGB {} is not in the mapping; add [providers.\"{}\"] with name and region (see docs/import-format.md)",
                agb, agb
            )
        })?;
        let (origin_region, origin_municipality) =
            origin(&format!("{:04}", start.gemeente), *begin, mapping)?;
        let legal_basis = legal_basis(assignment, mapping)?;
        let (end_date, outflow_destination) = match stop {
            Some(stop) => (Some(stop.end), Some(destination(&stop.reason, mapping))),
            None => (None, None),
        };
        let placement = Placement {
            youth_id: YouthId::parse(&format!("{youth:032x}")).map_err(|e| e.to_string())?,
            birth_date: start.birth,
            origin_region,
            origin_municipality,
            provider: provider.name.clone(),
            location_municipality: provider.municipality.clone(),
            placement_region: provider.region,
            care_type,
            setting: provider.setting,
            legal_basis,
            start_date: *begin,
            end_date,
            outflow_destination,
            outflow_profile: None,
        };
        placement
            .check()
            .map_err(|violation| format!("{}: {}", violation.column, violation.rule))?;
        Ok(placement)
    }
}

/// The care type of a product: its code, else its category, through `[values.care_type]`.
fn care_type(
    category: Option<&str>,
    code: Option<&str>,
    mapping: &Mapping,
) -> Result<CareType, String> {
    let mapped = code
        .and_then(|c| mapping.value("care_type", c))
        .or_else(|| category.and_then(|c| mapping.value("care_type", c)));
    match mapped {
        Some(mapped) => CareType::parse(mapped).map_err(|e| e.to_string()),
        None => Err(match (category, code) {
            (_, Some(code)) => format!(
                "product {code} (productcategorie {}) has no care type in the mapping; add \"{code}\" = \"<care_type>\" (or its category) to [values.care_type]",
                category.unwrap_or("-")
            ),
            (Some(category), None) => format!(
                "productcategorie {category} has no care type in the mapping; add \"{category}\" = \"<care_type>\" to [values.care_type]"
            ),
            (None, None) => "neither the JW305 nor its JW301 names a product".to_owned(),
        }),
    }
}

/// The origin of a placement: the gemeente's region on the begin date and its name.
fn origin(
    gemeente: &str,
    begin: NaiveDate,
    mapping: &Mapping,
) -> Result<(OriginRegion, Option<Name>), String> {
    let known = zicht_model::municipality(gemeente, begin);
    if let Some(mapped) = mapping.value("origin_region", gemeente) {
        let region = OriginRegion::parse(mapped).map_err(|e| e.to_string())?;
        let name = match region {
            OriginRegion::Onbekend => None,
            OriginRegion::Region(_) => known.and_then(|m| Name::parse(m.name).ok()),
        };
        return Ok((region, name));
    }
    let Some(municipality) = known else {
        return Err(format!(
            "gemeente {gemeente} is not a gemeente of the federation's regions in zicht's CBS list; map it in [values.origin_region] (\"{gemeente}\" = \"<region>\" or \"onbekend\")"
        ));
    };
    let region =
        zicht_model::region_of_municipality(gemeente, begin).unwrap_or(municipality.region);
    Ok((
        OriginRegion::Region(region),
        Name::parse(municipality.name).ok(),
    ))
}

/// The legal basis of an assignment's client.
fn legal_basis(assignment: Option<&Assignment>, mapping: &Mapping) -> Result<LegalBasis, String> {
    let Some(assignment) = assignment else {
        return Ok(LegalBasis::Vrijwillig);
    };
    match &assignment.legal_status {
        Some(status) => {
            if let Some(mapped) = mapping.value("legal_basis", status) {
                return LegalBasis::parse(mapped).map_err(|e| e.to_string());
            }
            LEGAL_STATUS
                .iter()
                .find(|(code, _)| code == status)
                .map(|(_, basis)| *basis)
                .ok_or_else(|| {
                    format!(
                        "JuridischeStatus {status} has no legal basis in the mapping; add \"{status}\" = \"<legal_basis>\" to [values.legal_basis]"
                    )
                })
        }
        None if assignment.guardian.as_deref() == Some("06") => Ok(LegalBasis::Voogdij),
        None => Ok(LegalBasis::Vrijwillig),
    }
}

/// The outflow destination a reden beëindiging maps to, else `onbekend`.
fn destination(reason: &str, mapping: &Mapping) -> OutflowDestination {
    mapping
        .value("outflow_destination", reason)
        .and_then(|d| OutflowDestination::parse(d).ok())
        .unwrap_or(OutflowDestination::Onbekend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ijw_message_is_told_by_its_name_or_its_namespace() {
        let dir = std::env::temp_dir().join(format!("zicht-ijw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap_or_default();
            path
        };
        let message = "\u{feff}<?xml version=\"1.0\"?>\n<Bericht xmlns=\"http://www.istandaarden.nl/ijw/3_2/jw305/schema\"/>";
        assert!(is_ijw_file(&write("a.XML", "")));
        assert!(is_ijw_file(&write("batch.zip", "")));
        assert!(is_ijw_file(&write("export", message)));
        assert!(!is_ijw_file(&write(
            "placements.csv",
            "youth_id,birth_date\n"
        )));
        assert!(!is_ijw_file(&write(
            "other.txt",
            "<html>istandaarden</html>"
        )));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
