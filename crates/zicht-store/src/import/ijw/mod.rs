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
use std::io::{self, BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use sha2::{Digest, Sha256};
use zicht_model::{
    CareType, CodeList, LegalBasis, NaiveDate, Name, OriginRegion, OutflowDestination, Placement,
    YouthId,
};
use zicht_privacy::PseudonymKey;

use self::message::{At, Code, Kind, Message, Outcome, ProductCode, Time, Toewijzing};
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
    /// Stops whose start is not among the messages: each ends a placement an earlier import
    /// stored, or is a problem.
    pub earlier: Vec<EarlierStop>,
}

/// A JW307 stop whose JW305 start is not among the messages imported: it ends the placement
/// an earlier import stored for this client, aanbieder and Begindatum (and care type, where
/// the stop's product or its toewijzing says it), if exactly one does.
pub(crate) struct EarlierStop {
    pub youth_id: YouthId,
    pub start_date: NaiveDate,
    pub provider: Name,
    pub care_type: Option<CareType>,
    pub end_date: NaiveDate,
    pub destination: OutflowDestination,
    /// Where the stop is, for the problem when no stored placement (or more than one) matches.
    pub at: MessageProblem,
}

impl EarlierStop {
    /// The problem of this stop, for `reason`.
    pub fn problem(&self, reason: &str) -> MessageProblem {
        MessageProblem {
            reason: reason.to_owned(),
            ..self.at.clone()
        }
    }

    /// `stored` as this stop ends it.
    pub fn end(&self, stored: Placement) -> Result<Placement, String> {
        let ended = Placement {
            end_date: Some(self.end_date),
            outflow_destination: Some(self.destination),
            ..stored
        };
        ended
            .check()
            .map_err(|violation| format!("{}: {}", violation.column, violation.rule))?;
        Ok(ended)
    }
}

/// What the join keeps of an assignment (JW301's ToegewezenProduct).
struct Assignment {
    legal_status: Option<Code>,
    guardian: Option<Code>,
    category: Option<Code>,
    code: Option<ProductCode>,
    assigned: (NaiveDate, Option<Time>),
}

/// What the join keeps of a start (JW305's StartProduct): the aanbieder's AGB code and the
/// gemeente's code as numbers (eight and four digits).
struct Start {
    agb: u32,
    gemeente: u16,
    birth: NaiveDate,
    category: Option<Code>,
    code: Option<ProductCode>,
    at: Located,
}

/// What the join keeps of a stop (JW307's StopProduct): for a stop of a placement an earlier
/// import stored, also its aanbieder and product.
struct Stop {
    end: NaiveDate,
    reason: Code,
    agb: u32,
    category: Option<Code>,
    code: Option<ProductCode>,
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
type DeliveryKey = (Client, Toewijzing, NaiveDate);

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Exchange {
    /// (client, ToewijzingNummer) -> the latest assignment.
    assignments: Map<(Client, Toewijzing), Assignment>,
    starts: Map<DeliveryKey, Start>,
    stops: Map<DeliveryKey, Stop>,
    /// The files (and batch entries) read, for problems' names.
    names: Names,
    counts: MessageCounts,
    problems: Vec<MessageProblem>,
}

impl Exchange {
    fn problem(&mut self, file: usize, at: &At, reason: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS + 1 {
            self.problems.push(MessageProblem {
                file: self.names.get(file),
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
        let (client, agb, gemeente) = (message.youth, message.agb, message.gemeente);
        let path = match kind {
            Kind::Jw301 => "Bericht/Client/ToegewezenProducten/ToegewezenProduct",
            Kind::Jw305 => "Bericht/Client/StartProducten/StartProduct",
            Kind::Jw307 => "Bericht/Client/StopProducten/StopProduct",
        };
        for product in message.products {
            let at = Located {
                file,
                line: u32::try_from(product.line).unwrap_or(u32::MAX),
                column: u32::try_from(product.column).unwrap_or(u32::MAX),
                path,
            };
            let toewijzing = product.toewijzing.unwrap_or_else(|| {
                let product = format!(
                    "product {}{}",
                    product.category.as_ref().map_or("", Code::as_str),
                    product.code.as_ref().map_or("", ProductCode::as_str)
                );
                Toewijzing::new(&product).unwrap_or_else(|| unreachable!("15 bytes at most"))
            });
            let delivery = |begin: NaiveDate| (client, toewijzing, begin);
            match kind {
                Kind::Jw301 => {
                    let (Some(number), Some(assigned)) = (product.toewijzing, product.assigned)
                    else {
                        continue;
                    };
                    let assignment = Assignment {
                        legal_status: message.legal_status,
                        guardian: message.guardian,
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
                        (product.begin, product.end, product.reason)
                    else {
                        continue;
                    };
                    let key = delivery(begin);
                    if product.status == Some(3) {
                        self.stops.remove(&key);
                        continue;
                    }
                    let stop = Stop {
                        end,
                        reason,
                        agb,
                        category: product.category,
                        code: product.code,
                        at,
                    };
                    self.stops.insert(key, stop);
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
        let file = self.names.push(name);
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

/// Where a message came from: a file (an index into the import's labels) and, in a batch, the
/// entry's name.
struct Source {
    file: u32,
    entry: Option<String>,
}

/// The names of the messages read, in one buffer (a batch holds millions of entries).
#[derive(Default)]
struct Names {
    /// The files read (and a label for problems of all messages).
    labels: Vec<String>,
    /// The batch entries' names, one after the other.
    entries: String,
    /// Per message: its file, and where its entry name ends in `entries` (`None`: the file
    /// itself).
    spans: Vec<(u32, Option<usize>)>,
}

impl Names {
    /// The index of a new label.
    fn label(&mut self, label: &str) -> u32 {
        self.labels.push(label.to_owned());
        u32::try_from(self.labels.len() - 1).unwrap_or(u32::MAX)
    }

    /// Keeps a message's name; its index.
    fn push(&mut self, name: Source) -> usize {
        let end = name.entry.map(|entry| {
            self.entries.push_str(&entry);
            self.entries.len()
        });
        self.spans.push((name.file, end));
        self.spans.len() - 1
    }

    /// The name of message `index`: `file` or `batch.zip!entry`.
    fn get(&self, index: usize) -> String {
        let Some(&(file, end)) = self.spans.get(index) else {
            return String::new();
        };
        let label = self.labels.get(file as usize).map_or("", String::as_str);
        let Some(end) = end else {
            return label.to_owned();
        };
        let start = self.spans[..index]
            .iter()
            .rev()
            .find_map(|&(_, end)| end)
            .unwrap_or(0);
        format!("{label}!{}", self.entries.get(start..end).unwrap_or(""))
    }
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
    let labels: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    // A batch's entries are inflated and parsed on two threads while this one reads on; a
    // collector takes them in in reading order (a later message may change an earlier one).
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (results, collected) = mpsc::sync_channel::<(u64, Vec<Item>)>(8);
    let mut exchange = std::thread::scope(|scope| {
        let collector = scope.spawn(|| collect(&labels, collected, &stop));
        let mut workers = Vec::new();
        for _ in 0..PARSERS {
            let (jobs, queue) = mpsc::sync_channel::<(u64, Vec<Entry>)>(4);
            let results = results.clone();
            scope.spawn(move || {
                let mut inflater = Inflater::new();
                let mut scratch = message::Scratch::default();
                for (seq, entries) in queue {
                    let items = entries
                        .into_iter()
                        .map(|entry| {
                            let read = inflater
                                .inflate(&entry)
                                .map(|bytes| message::read(bytes, key, &mut scratch));
                            match read {
                                Ok(outcome) => Item::Message(entry.name, outcome),
                                Err(reason) => Item::Damaged(entry.name, reason),
                            }
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
    let (rows, earlier) = exchange.placements(mapping, tally, given);
    if !exchange.problems.is_empty() {
        let complete = exchange.problems.len() <= MAX_PROBLEMS;
        exchange.problems.truncate(MAX_PROBLEMS);
        return Err(Failure::Problems(exchange.problems, complete));
    }
    let sha256 = hasher
        .lock()
        .map_or_else(|_| String::new(), |h| hex::encode(h.clone().finalize()));
    Ok(Converted {
        rows: Rows::Placements(rows),
        counts: exchange.counts,
        sha256,
        earlier,
    })
}

/// Threads that inflate and parse messages.
const PARSERS: usize = 2;

/// A batch entry as stored: its name, how it is compressed, its checksum and size, and its
/// compressed bytes.
struct Entry {
    name: Source,
    method: rawzip::CompressionMethod,
    crc32: u32,
    size: u64,
    stored: Vec<u8>,
}

/// Batch entries a parser gets at a time.
const ENTRIES: usize = 64;

/// What the reading of the files found, in reading order.
enum Item {
    /// A message, read (or not) from the named file or batch entry.
    Message(Source, Result<Outcome, message::Flaw>),
    /// A batch entry that is not XML.
    NotXml,
    /// A batch or batch entry that could not be read, named, with why.
    Damaged(Source, String),
}

/// Takes the items in in their order, until the channel closes; tells `stop` when the
/// problems are enough.
fn collect(
    labels: &[String],
    items: mpsc::Receiver<(u64, Vec<Item>)>,
    stop: &std::sync::atomic::AtomicBool,
) -> Exchange {
    let mut exchange = Exchange::default();
    exchange.names.labels = labels.to_vec();
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

/// Inflates batch entries with one inflate state, reused.
struct Inflater {
    inflate: flate2::Decompress,
    out: Vec<u8>,
}

impl Inflater {
    fn new() -> Inflater {
        Inflater {
            inflate: flate2::Decompress::new(false),
            out: Vec::new(),
        }
    }

    /// The message an entry holds, inflated up to one byte over the bound a message may have
    /// (which the parser then names), its size and checksum checked.
    fn inflate<'a>(&'a mut self, entry: &'a Entry) -> Result<&'a [u8], String> {
        let damaged = |what: &str| format!("the batch entry is damaged or truncated ({what})");
        let bound = message::MAX_MESSAGE as usize + 1;
        let bytes = match entry.method {
            rawzip::CompressionMethod::STORE => entry.stored.as_slice(),
            rawzip::CompressionMethod::DEFLATE => {
                self.inflate.reset(false);
                self.out.clear();
                let mut input = entry.stored.as_slice();
                loop {
                    if self.out.len() == self.out.capacity() {
                        if self.out.len() >= bound {
                            break;
                        }
                        let more = (entry.size as usize).max(self.out.len()).max(4096);
                        self.out.reserve(more.min(bound - self.out.len()));
                    }
                    let (before, produced) = (self.inflate.total_in(), self.out.len());
                    let status = self
                        .inflate
                        .decompress_vec(input, &mut self.out, flate2::FlushDecompress::Finish)
                        .map_err(|_| damaged("its deflate data"))?;
                    let used = (self.inflate.total_in() - before) as usize;
                    input = input.get(used..).unwrap_or_default();
                    match status {
                        flate2::Status::StreamEnd => break,
                        // With room to write, a call that reads and writes nothing never will.
                        _ if used == 0 && self.out.len() == produced => {
                            return Err(damaged("its deflate data ends early"))
                        }
                        _ => {}
                    }
                }
                self.out.as_slice()
            }
            method => {
                return Err(format!(
                    "the batch entry is compressed with {method}; zicht reads stored and deflated entries"
                ))
            }
        };
        if bytes.len() < bound
            && (bytes.len() as u64 != entry.size || crc32fast::hash(bytes) != entry.crc32)
        {
            return Err(damaged("its checksum or size does not match"));
        }
        Ok(bytes)
    }
}

/// Compressed bytes of one batch entry read at most: a message's bound, and room for what
/// deflate adds in the worst case.
const STORED_MAX: u64 = message::MAX_MESSAGE + (1 << 18);

/// Hands what is read to the collector (items found here) and to the parsers (batch entries,
/// [`ENTRIES`] at a time), numbered in reading order.
struct Dispatch<'a> {
    results: &'a mpsc::SyncSender<(u64, Vec<Item>)>,
    workers: &'a [mpsc::SyncSender<(u64, Vec<Entry>)>],
    seq: u64,
    entries: Vec<Entry>,
}

impl Dispatch<'_> {
    /// Hands the entries gathered to a parser; false when the parsers are gone.
    fn flush(&mut self) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.entries, Vec::with_capacity(ENTRIES));
        let worker = &self.workers[(self.seq as usize) % self.workers.len()];
        let sent = worker.send((self.seq, batch)).is_ok();
        self.seq += 1;
        sent
    }

    /// Gathers a batch entry for a parser; false when the parsers are gone.
    fn entry(&mut self, entry: Entry) -> bool {
        self.entries.push(entry);
        self.entries.len() < ENTRIES || self.flush()
    }

    /// Sends an item found here, after the entries before it.
    fn item(&mut self, item: Item) {
        self.flush();
        let _ = self.results.send((self.seq, vec![item]));
        self.seq += 1;
    }
}

/// Reads `files`, handing each batch entry to a parser and parsing a plain `.xml` file here.
fn read_files(
    files: &[PathBuf],
    key: &PseudonymKey,
    hasher: &std::sync::Arc<std::sync::Mutex<Sha256>>,
    results: &mpsc::SyncSender<(u64, Vec<Item>)>,
    workers: &[mpsc::SyncSender<(u64, Vec<Entry>)>],
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), Failure> {
    let mut out = Dispatch {
        results,
        workers,
        seq: 0,
        entries: Vec::with_capacity(ENTRIES),
    };
    for (index, path) in files.iter().enumerate() {
        let label = path.display().to_string();
        let file = u32::try_from(index).unwrap_or(u32::MAX);
        let opened = File::open(path).map_err(|e| Failure::Io(label.clone(), e))?;
        let hashing = super::HashingReader {
            inner: opened,
            hasher: hasher.clone(),
        };
        let zipped = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        let mut reader = BufReader::with_capacity(1 << 16, hashing);
        if zipped {
            read_batch(path, file, &mut reader, &mut out, stop)
                .map_err(|e| Failure::Io(label.clone(), e))?;
        } else {
            // A message is read whole, up to one byte over the bound it may have.
            let mut bytes = Vec::new();
            io::Read::take(&mut reader, message::MAX_MESSAGE + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::Io(label.clone(), e))?;
            let outcome = message::read(&bytes, key, &mut message::Scratch::default());
            let refused = outcome.is_err();
            let whole = Source { file, entry: None };
            out.item(Item::Message(whole, outcome));
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

/// Reads the `.zip` batch at `path`: its central directory says where each entry lies, and the
/// entries are read in one pass through `reader` (which hashes what it reads), so the batch may
/// use data descriptors and entries the directory does not name are stepped over. Entries
/// that overlap or lie out of order are refused (a zip bomb's trick).
fn read_batch(
    path: &Path,
    file: u32,
    reader: &mut impl BufRead,
    out: &mut Dispatch<'_>,
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<()> {
    let whole = || Source { file, entry: None };
    let damaged = |error: &dyn fmt::Display| {
        Item::Damaged(
            whole(),
            format!("the batch is damaged or truncated ({error})"),
        )
    };
    let mut buffer = vec![0u8; rawzip::RECOMMENDED_BUFFER_SIZE];
    let archive = match rawzip::ZipArchive::from_file(File::open(path)?, &mut buffer) {
        Ok(archive) => archive,
        Err(error) => {
            out.item(damaged(&error));
            return Ok(());
        }
    };
    let mut directory = archive.entries(&mut buffer);
    let mut position = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let record = match directory.next_entry() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(error) => {
                out.item(damaged(&error));
                break;
            }
        };
        let path = record.file_path();
        let name = String::from_utf8_lossy(path.as_ref());
        if record.is_dir() {
            continue;
        }
        if !name.to_ascii_lowercase().ends_with(".xml") {
            out.item(Item::NotXml);
            continue;
        }
        let name = Source {
            file,
            entry: Some(name.chars().take(200).collect()),
        };
        if record.flags().is_encrypted() {
            let reason = "the batch entry is encrypted; pack the batch again without a password";
            out.item(Item::Damaged(name, reason.to_owned()));
            break;
        }
        let (method, crc32) = (record.compression_method(), record.crc32());
        let size = record.uncompressed_size_hint();
        let (start, end) = match archive.get_entry(record.wayfinder()) {
            Ok(entry) => entry.compressed_data_range(),
            Err(error) => {
                let reason = format!("the batch entry is damaged ({error})");
                out.item(Item::Damaged(name, reason));
                break;
            }
        };
        if start < position {
            let reason = "the batch's entries overlap or are out of order".to_owned();
            out.item(Item::Damaged(name, reason));
            break;
        }
        // What lies before the entry's data: its local header, a data descriptor before it.
        position += io::copy(&mut reader.by_ref().take(start - position), &mut io::sink())?;
        if size > message::MAX_MESSAGE || end - start > STORED_MAX {
            out.item(Item::Message(name, Err(message::too_large())));
            continue;
        }
        let mut stored = Vec::with_capacity((end - start) as usize);
        position += reader.by_ref().take(end - start).read_to_end(&mut stored)? as u64;
        if position != end {
            let reason = "the batch entry is damaged or truncated".to_owned();
            out.item(Item::Damaged(name, reason));
            break;
        }
        let entry = Entry {
            name,
            method,
            crc32,
            size,
            stored,
        };
        if !out.entry(entry) {
            break;
        }
    }
    out.flush();
    Ok(())
}

impl Exchange {
    /// Joins starts, stops and assignments into placements, and gives the stops without
    /// their start apart; problems go to `self.problems`.
    fn placements(
        &mut self,
        mapping: &Mapping,
        tally: &mut RegionTally,
        given: bool,
    ) -> (Vec<Placement>, Vec<EarlierStop>) {
        let mut starts: Vec<(DeliveryKey, Start)> =
            std::mem::take(&mut self.starts).into_iter().collect();
        // File order, so problems and rows come in the order they were read.
        starts.sort_by_key(|(_, start)| (start.at.file, start.at.line));
        let mut rows = Vec::with_capacity(starts.len());
        let mut keys: Map<_, ()> = Map::default();
        let mut origins = Map::default();
        for (key, start) in starts {
            if self.full() {
                break;
            }
            let stop = self.stops.remove(&key);
            match self.placement(&key, &start, stop.as_ref(), mapping, &mut origins) {
                Ok(placement) => {
                    let row_key = (
                        key.0,
                        placement.start_date,
                        placement.care_type,
                        placement.provider.clone(),
                    );
                    if keys.insert(row_key, ()).is_some() {
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
        let mut orphans: Vec<(DeliveryKey, Stop)> =
            std::mem::take(&mut self.stops).into_iter().collect();
        orphans.sort_by_key(|(_, stop)| (stop.at.file, stop.at.line));
        let mut earlier = Vec::new();
        for (key, stop) in orphans {
            if self.full() {
                break;
            }
            match self.earlier_stop(&key, &stop, mapping) {
                Ok(found) => earlier.push(found),
                Err(reason) => self.problem(stop.at.file, &stop.at.at(), reason),
            }
        }
        if let Some(reason) = tally.reason(given) {
            let at = At {
                line: 0,
                column: 0,
                path: String::new(),
            };
            let file = self.names.label("(all messages)");
            let index = self.names.push(Source { file, entry: None });
            self.problem(index, &at, reason);
        }
        (rows, earlier)
    }

    /// A stop without its start, as what it ends of a stored placement: the client, the
    /// aanbieder through the mapping, the Begindatum, and the care type where the stop's
    /// product (or the JW301 of its toewijzing) names it.
    fn earlier_stop(
        &self,
        (youth, toewijzing, begin): &DeliveryKey,
        stop: &Stop,
        mapping: &Mapping,
    ) -> Result<EarlierStop, String> {
        let assignment = self.assignments.get(&(*youth, *toewijzing));
        let (category, code) = product(stop.category.as_ref(), stop.code.as_ref(), assignment);
        let care_type = match (category, code) {
            (None, None) => None,
            _ => Some(care_type(category, code, mapping)?),
        };
        let provider = provider(stop.agb, mapping)?;
        let at = stop.at.at();
        Ok(EarlierStop {
            youth_id: YouthId::parse(&format!("{youth:032x}")).map_err(|e| e.to_string())?,
            start_date: *begin,
            provider: provider.name.clone(),
            care_type,
            end_date: stop.end,
            destination: destination(stop.reason.as_str(), mapping),
            at: MessageProblem {
                file: self.names.get(stop.at.file),
                line: at.line,
                column: at.column,
                path: at.path,
                reason: String::new(),
            },
        })
    }

    /// The placement of one start, its stop and its assignment.
    fn placement(
        &self,
        (youth, toewijzing, begin): &DeliveryKey,
        start: &Start,
        stop: Option<&Stop>,
        mapping: &Mapping,
        origins: &mut Origins,
    ) -> Result<Placement, String> {
        let assignment = self.assignments.get(&(*youth, *toewijzing));
        let assignment = match assignment {
            Some(assignment) => Some(assignment),
            None if toewijzing.as_str().starts_with("product ") => None,
            None => {
                return Err("a JW305 start of a toewijzing no JW301 in the import assigns; import the gemeente's JW301 messages with the JW305 and JW307 messages".to_owned())
            }
        };
        let (category, code) = product(start.category.as_ref(), start.code.as_ref(), assignment);
        let care_type = care_type(category, code, mapping)?;
        let provider = provider(start.agb, mapping)?;
        let (origin_region, origin_municipality) = origins
            .entry((start.gemeente, *begin))
            .or_insert_with(|| origin(&format!("{:04}", start.gemeente), *begin, mapping))
            .clone()?;
        let legal_basis = legal_basis(assignment, mapping)?;
        let (end_date, outflow_destination) = match stop {
            Some(stop) => (
                Some(stop.end),
                Some(destination(stop.reason.as_str(), mapping)),
            ),
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

/// The product (categorie, code) a start or stop names, else the one the JW301 of its
/// toewijzing assigns.
fn product<'a>(
    category: Option<&'a Code>,
    code: Option<&'a ProductCode>,
    assignment: Option<&'a Assignment>,
) -> (Option<&'a str>, Option<&'a str>) {
    let category = category.or(assignment.and_then(|a| a.category.as_ref()));
    let code = code.or(assignment.and_then(|a| a.code.as_ref()));
    (category.map(Code::as_str), code.map(ProductCode::as_str))
}

/// The aanbieder of an AGB code (eight digits), through the mapping's `[providers]`.
fn provider(agb: u32, mapping: &Mapping) -> Result<&super::mapping::Provider, String> {
    let agb = format!("{agb:08}");
    mapping.provider(&agb).ok_or_else(|| {
        format!(
            "aanbieder AGB {agb} is not in the mapping; add [providers.\"{agb}\"] with name and region (see docs/import-format.md)"
        )
    })
}

/// The origins already looked up, by gemeente and day (many placements share both).
type Origins = Map<(u16, NaiveDate), Result<(OriginRegion, Option<Name>), String>>;

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
    match assignment.legal_status.as_ref().map(Code::as_str) {
        Some(status) => {
            if let Some(mapped) = mapping.value("legal_basis", status) {
                return LegalBasis::parse(mapped).map_err(|e| e.to_string());
            }
            LEGAL_STATUS
                .iter()
                .find(|(code, _)| *code == status)
                .map(|(_, basis)| *basis)
                .ok_or_else(|| {
                    format!(
                        "JuridischeStatus {status} has no legal basis in the mapping; add \"{status}\" = \"<legal_basis>\" to [values.legal_basis]"
                    )
                })
        }
        None if assignment.guardian.as_ref().map(Code::as_str) == Some("06") => {
            Ok(LegalBasis::Voogdij)
        }
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
