//! Reading one iJw 3.2 message (`Bericht`) as XML events over its bytes (quick-xml's reader
//! and namespace resolver, no copy): what zicht takes from a JW301, JW305 or JW307, checked
//! against the message's structure; everything else (names, addresses, contacts, comments) is
//! skipped unread. Values are read where they lie in the text and kept as numbers and short
//! inline codes, so a message costs a handful of allocations.
//!
//! Hostile input is bounded: a message is held in memory only up to [`MAX_MESSAGE`] bytes (a
//! larger file is refused after that many are read), a DTD (and with it every entity
//! declaration) is refused, entity references other than XML's five and character references
//! are refused, and nesting deeper than [`MAX_DEPTH`] stops the read. Lines and columns are
//! counted only for a problem. The BSN becomes its pseudonym the moment its element ends; no
//! error names a value read.

use std::borrow::Cow;
use std::fmt;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceResolver, ResolveResult};
use quick_xml::Reader;
use zicht_model::NaiveDate;
use zicht_privacy::PseudonymKey;

/// The namespace every iJw message's own elements are in: `…/ijw/<version>/<message>/schema`.
const IJW: &str = "http://www.istandaarden.nl/ijw/";
/// The namespace of the basisschema's types (dates, products, identifications).
const BASIS: &[u8] = b"http://www.istandaarden.nl/ijw/3_2/basisschema/schema";

/// Elements nested deeper than this stop the read (iJw nests seven deep).
pub(super) const MAX_DEPTH: usize = 32;
/// Bytes of one message (a message holds one client).
pub(super) const MAX_MESSAGE: u64 = 16 * 1024 * 1024;

/// The three messages zicht reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// JW301: the gemeente assigns products to an aanbieder (toewijzing).
    Jw301,
    /// JW305: the aanbieder started delivering a product (start zorg).
    Jw305,
    /// JW307: the aanbieder stopped delivering a product (stop zorg).
    Jw307,
}

impl Kind {
    fn of(message: &str) -> Option<Kind> {
        match message {
            "jw301" => Some(Kind::Jw301),
            "jw305" => Some(Kind::Jw305),
            "jw307" => Some(Kind::Jw307),
            _ => None,
        }
    }

    /// The BerichtCode (COD002-VEKT) of the message.
    fn code(self) -> &'static str {
        match self {
            Kind::Jw301 => "436",
            Kind::Jw305 => "438",
            Kind::Jw307 => "440",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Jw301 => "JW301",
            Kind::Jw305 => "JW305",
            Kind::Jw307 => "JW307",
        }
    }
}

/// Where in a message: line and column of an element's `<` (both 1-based) and its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct At {
    pub line: u64,
    pub column: u64,
    pub path: String,
}

/// A short text held inline (at most `N` bytes): a two-digit code, a product code, a
/// toewijzing's number, a time. Ordered as its text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Short<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Short<N> {
    /// `text` if it is at most `N` bytes long.
    pub(super) fn new(text: &str) -> Option<Self> {
        if text.len() > N {
            return None;
        }
        let mut bytes = [0; N];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Short {
            len: text.len() as u8,
            bytes,
        })
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl<const N: usize> Ord for Short<N> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl<const N: usize> PartialOrd for Short<N> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> fmt::Debug for Short<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for Short<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A two-digit code of an iJw code list (JZ020, JZ588, WJ232, WJ003).
pub(super) type Code = Short<2>;
/// A productcode: 1-5 letters and digits.
pub(super) type ProductCode = Short<5>;
/// A ToewijzingNummer (1-20 characters), or for a product without one, its category and code.
pub(super) type Toewijzing = Short<24>;
/// A Toewijzingstijd as written (its first 12 characters; they order as times do).
pub(super) type Time = Short<12>;

/// What a message says, as far as zicht reads it.
#[derive(Debug, Default)]
pub(super) struct Message {
    /// The gemeente's four-digit CBS code: the sender of a JW301, the receiver of the others.
    pub gemeente: u16,
    /// The aanbieder's eight-digit AGB code: the receiver of a JW301, the sender of the
    /// others.
    pub agb: u32,
    /// The client's pseudonym (the keyed hash of the BSN) as a number.
    pub youth: u128,
    /// The client's date of birth.
    pub birth: Option<NaiveDate>,
    /// JuridischeStatus (WJ232), in a JW301.
    pub legal_status: Option<Code>,
    /// WettelijkeVertegenwoordiging (WJ003), in a JW301.
    pub guardian: Option<Code>,
    /// The products, in message order.
    pub products: Vec<Product>,
}

/// One ToegewezenProduct, StartProduct or StopProduct.
#[derive(Debug, Default)]
pub(super) struct Product {
    /// Line and column of its element.
    pub line: u64,
    pub column: u64,
    pub toewijzing: Option<Toewijzing>,
    pub category: Option<Code>,
    pub code: Option<ProductCode>,
    /// Begindatum (JW305, JW307) or Ingangsdatum (JW301).
    pub begin: Option<NaiveDate>,
    /// Einddatum (JW307).
    pub end: Option<NaiveDate>,
    /// RedenBeeindiging (JZ588, JW307).
    pub reason: Option<Code>,
    /// StatusAanlevering (COD467): 1 first, 2 changed, 3 to be removed.
    pub status: Option<u8>,
    /// Toewijzingsdatum and -tijd (JW301): which assignment of a number is the latest.
    pub assigned: Option<(NaiveDate, Option<Time>)>,
}

/// What a read found.
#[derive(Debug)]
pub(super) enum Outcome {
    /// A message zicht reads.
    Message(Kind, Message),
    /// Another iJw 3.2 message (a retourbericht, a JW315): skipped.
    Other(String),
}

/// A reason the message cannot be used, where.
#[derive(Debug)]
pub(super) struct Flaw {
    pub at: At,
    pub reason: String,
}

fn flaw(at: At, reason: impl Into<String>) -> Flaw {
    Flaw {
        at,
        reason: reason.into(),
    }
}

/// The elements of the messages zicht reads, each with its name.
macro_rules! elements {
    ($($name:ident),* $(,)?) => {
        /// An element of the messages zicht reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum El {
            $($name),*
        }

        impl El {
            fn name(self) -> &'static str {
                match self {
                    $(El::$name => stringify!($name)),*
                }
            }
        }
    };
}

elements!(
    Bericht,
    Header,
    Client,
    BerichtCode,
    BerichtVersie,
    BerichtSubversie,
    Afzender,
    Ontvanger,
    BerichtIdentificatie,
    XsdVersie,
    Bsn,
    Geboortedatum,
    Datum,
    DatumGebruik,
    Geslacht,
    Naam,
    JuridischeStatus,
    WettelijkeVertegenwoordiging,
    Communicatie,
    Commentaar,
    Relaties,
    Contactgegevens,
    ToegewezenProducten,
    StartProducten,
    StopProducten,
    ToegewezenProduct,
    StartProduct,
    StopProduct,
    ToewijzingNummer,
    Product,
    Categorie,
    Code,
    Ingangsdatum,
    Toewijzingsdatum,
    Toewijzingstijd,
    ReferentieAanbieder,
    Einddatum,
    RedenWijziging,
    Omvang,
    Budget,
    ToewijzingIngangsdatum,
    Begindatum,
    StatusAanlevering,
    RedenBeeindiging,
);

impl El {
    /// Its bit in a set of elements seen (there are fewer than 64).
    fn bit(self) -> u64 {
        1 << (self as u32)
    }

    /// A product of a message, which may occur more than once.
    fn is_product(self) -> bool {
        matches!(
            self,
            El::ToegewezenProduct | El::StartProduct | El::StopProduct
        )
    }

    /// A group whose children are the basisschema's (its composite types).
    fn is_basis_group(self) -> bool {
        matches!(
            self,
            El::Geboortedatum | El::Product | El::BerichtIdentificatie | El::XsdVersie
        )
    }
}

const _: () = assert!((El::RedenBeeindiging as u32) < 64);

/// What an element is to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Holds elements.
    Group,
    /// Text zicht reads.
    Leaf(Field),
    /// Allowed, not read: skipped with everything in it.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    BerichtCode,
    BerichtVersie,
    BerichtSubversie,
    Afzender,
    Ontvanger,
    Bsn,
    Datum,
    DatumGebruik,
    JuridischeStatus,
    WettelijkeVertegenwoordiging,
    ToewijzingNummer,
    Categorie,
    Code,
    Begindatum,
    Einddatum,
    RedenBeeindiging,
    StatusAanlevering,
    Toewijzingsdatum,
    Toewijzingstijd,
}

/// The elements `parent` may hold in a message of `kind`, with their roles.
fn children(kind: Kind, parent: El) -> &'static [(El, Role)] {
    use El::*;
    use Role::{Group, Leaf, Skip};
    type F = Field;
    match (parent, kind) {
        (Bericht, _) => &[(Header, Group), (Client, Group)],
        (Header, _) => &[
            (BerichtCode, Leaf(F::BerichtCode)),
            (BerichtVersie, Leaf(F::BerichtVersie)),
            (BerichtSubversie, Leaf(F::BerichtSubversie)),
            (Afzender, Leaf(F::Afzender)),
            (Ontvanger, Leaf(F::Ontvanger)),
            (BerichtIdentificatie, Skip),
            (XsdVersie, Skip),
        ],
        (Client, Kind::Jw301) => &[
            (Bsn, Leaf(F::Bsn)),
            (Geboortedatum, Group),
            (Geslacht, Skip),
            (Naam, Skip),
            (JuridischeStatus, Leaf(F::JuridischeStatus)),
            (
                WettelijkeVertegenwoordiging,
                Leaf(F::WettelijkeVertegenwoordiging),
            ),
            (Communicatie, Skip),
            (Commentaar, Skip),
            (Relaties, Skip),
            (Contactgegevens, Skip),
            (ToegewezenProducten, Group),
        ],
        (Client, Kind::Jw305) => &[
            (Bsn, Leaf(F::Bsn)),
            (Geboortedatum, Group),
            (Geslacht, Skip),
            (Naam, Skip),
            (StartProducten, Group),
        ],
        (Client, Kind::Jw307) => &[
            (Bsn, Leaf(F::Bsn)),
            (Geboortedatum, Group),
            (Geslacht, Skip),
            (Naam, Skip),
            (StopProducten, Group),
        ],
        (Geboortedatum, _) => &[
            (Datum, Leaf(F::Datum)),
            (DatumGebruik, Leaf(F::DatumGebruik)),
        ],
        (ToegewezenProducten, _) => &[(ToegewezenProduct, Group)],
        (StartProducten, _) => &[(StartProduct, Group)],
        (StopProducten, _) => &[(StopProduct, Group)],
        (ToegewezenProduct, _) => &[
            (ToewijzingNummer, Leaf(F::ToewijzingNummer)),
            (Product, Group),
            (Ingangsdatum, Leaf(F::Begindatum)),
            (Toewijzingsdatum, Leaf(F::Toewijzingsdatum)),
            (Toewijzingstijd, Leaf(F::Toewijzingstijd)),
            (ReferentieAanbieder, Skip),
            (Einddatum, Skip),
            (RedenWijziging, Skip),
            (Omvang, Skip),
            (Budget, Skip),
            (Commentaar, Skip),
        ],
        (StartProduct, _) => &[
            (ToewijzingNummer, Leaf(F::ToewijzingNummer)),
            (Product, Group),
            (ToewijzingIngangsdatum, Skip),
            (Begindatum, Leaf(F::Begindatum)),
            (StatusAanlevering, Leaf(F::StatusAanlevering)),
        ],
        (StopProduct, _) => &[
            (ToewijzingNummer, Leaf(F::ToewijzingNummer)),
            (Product, Group),
            (ToewijzingIngangsdatum, Skip),
            (Begindatum, Leaf(F::Begindatum)),
            (RedenBeeindiging, Leaf(F::RedenBeeindiging)),
            (Einddatum, Leaf(F::Einddatum)),
            (StatusAanlevering, Leaf(F::StatusAanlevering)),
        ],
        (Product, _) => &[(Categorie, Leaf(F::Categorie)), (Code, Leaf(F::Code))],
        _ => &[],
    }
}

/// The elements each group must hold.
fn required(kind: Kind, group: El) -> &'static [El] {
    use El::*;
    match (group, kind) {
        (Bericht, _) => &[Header, Client],
        (Header, _) => &[
            BerichtCode,
            BerichtVersie,
            BerichtSubversie,
            Afzender,
            Ontvanger,
            BerichtIdentificatie,
            XsdVersie,
        ],
        (Client, Kind::Jw301) => &[
            Bsn,
            Geboortedatum,
            Geslacht,
            Naam,
            Contactgegevens,
            ToegewezenProducten,
        ],
        (Client, Kind::Jw305) => &[Bsn, Geboortedatum, Geslacht, Naam, StartProducten],
        (Client, Kind::Jw307) => &[Bsn, Geboortedatum, Geslacht, Naam, StopProducten],
        (Geboortedatum, _) => &[Datum],
        (ToegewezenProducten, _) => &[ToegewezenProduct],
        (StartProducten, _) => &[StartProduct],
        (StopProducten, _) => &[StopProduct],
        (ToegewezenProduct, _) => &[
            ToewijzingNummer,
            Toewijzingsdatum,
            Toewijzingstijd,
            Ingangsdatum,
        ],
        (StartProduct, _) => &[Begindatum, StatusAanlevering],
        (StopProduct, _) => &[Begindatum, RedenBeeindiging, Einddatum, StatusAanlevering],
        (Product, _) => &[Categorie],
        _ => &[],
    }
}

/// Why a message larger than [`MAX_MESSAGE`] is refused.
pub(super) fn too_large() -> Flaw {
    let at = At {
        line: 1,
        column: 1,
        path: String::new(),
    };
    flaw(at, "the message is larger than 16 MiB: not an iJw message")
}

/// What reading a message needs besides its text, kept from one message to the next by a
/// thread that reads many: the namespaces in scope, the path of open elements, the root's
/// namespace.
#[derive(Default)]
pub(super) struct Scratch {
    namespaces: NamespaceResolver,
    path: Vec<El>,
    root_namespace: Vec<u8>,
}

/// Reads one message, `text` (at most [`MAX_MESSAGE`] bytes): the BSN is pseudonymised under
/// `key` as it is read.
pub(super) fn read(
    text: &[u8],
    key: &PseudonymKey,
    scratch: &mut Scratch,
) -> Result<Outcome, Flaw> {
    let start = At {
        line: 1,
        column: 1,
        path: String::new(),
    };
    if text.len() as u64 > MAX_MESSAGE {
        return Err(too_large());
    }
    // A byte order mark of UTF-16 or UTF-32: iJw messages are UTF-8.
    if text.starts_with(&[0xFF, 0xFE]) || text.starts_with(&[0xFE, 0xFF]) {
        return Err(flaw(start, "the message is UTF-16; iJw messages are UTF-8"));
    }
    let mut xml = Reader::from_reader(text);
    xml.config_mut().expand_empty_elements = true;
    xml.config_mut().check_end_names = true;
    let mut reader = Reading {
        xml,
        text,
        key,
        root_known: false,
        scratch: std::mem::take(scratch),
        counted: (0, 1, 0),
    };
    reader.scratch.namespaces.set_level(0);
    reader.scratch.path.clear();
    reader.scratch.root_namespace.clear();
    let outcome = reader.run();
    *scratch = reader.scratch;
    outcome
}

/// A message being read: the events of its text, the namespaces in scope, the path of open
/// elements.
struct Reading<'t, 'k> {
    xml: Reader<&'t [u8]>,
    text: &'t [u8],
    key: &'k PseudonymKey,
    /// Whether the root element's namespace is known (in `scratch`).
    root_known: bool,
    scratch: Scratch,
    /// Lines counted so far for products' places: up to this byte, this many lines, the
    /// last of them starting at this byte (so a message of many products is counted once).
    counted: (usize, u64, usize),
}

/// What the next event was, as the message reader needs it.
enum Next<'t> {
    Start {
        /// The element's local name, as written.
        local: &'t [u8],
        namespace: Namespace,
        /// Byte offset of its `<`.
        offset: u64,
    },
    /// Text (whitespace-only text is `Space`).
    Text(Cow<'t, str>),
    Space,
    End,
    Eof,
}

/// Which namespace an element is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    /// The basisschema's.
    Basis,
    /// The message's own: the root element's.
    Message,
    /// Another, or none.
    Other,
}

/// Text as UTF-8, borrowed where it lies.
fn utf8(bytes: Cow<'_, [u8]>) -> Result<Cow<'_, str>, &'static str> {
    const NOT_UTF8: &str = "text is not valid UTF-8";
    match bytes {
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| NOT_UTF8),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| NOT_UTF8),
    }
}

/// Line and column (1-based, the column in bytes) of byte `offset` of `text`.
fn line_column(text: &[u8], offset: u64) -> (u64, u64) {
    let before = &text[..(offset as usize).min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    (
        1 + before.iter().filter(|&&b| b == b'\n').count() as u64,
        (before.len() - line_start) as u64 + 1,
    )
}

impl<'t> Reading<'t, '_> {
    /// Line and column of byte `offset` (counted only when a place is needed), with the path
    /// of the open elements.
    fn here(&self, offset: u64) -> At {
        let (line, column) = line_column(self.text, offset);
        At {
            line,
            column,
            path: self.path_text(),
        }
    }

    /// Line and column of byte `offset`, counting on from the last place asked for (products
    /// come in text order).
    fn place(&mut self, offset: u64) -> (u64, u64) {
        let offset = (offset as usize).min(self.text.len());
        let (from, mut lines, mut line_start) = self.counted;
        if offset < from {
            return line_column(self.text, offset as u64);
        }
        for (i, &b) in self.text[from..offset].iter().enumerate() {
            if b == b'\n' {
                lines += 1;
                line_start = from + i + 1;
            }
        }
        self.counted = (offset, lines, line_start);
        (lines, (offset - line_start) as u64 + 1)
    }

    fn path_text(&self) -> String {
        let names: Vec<&str> = self.scratch.path.iter().map(|el| el.name()).collect();
        names.join("/")
    }

    /// The next event that matters.
    fn next(&mut self) -> Result<Next<'t>, Flaw> {
        loop {
            let offset = self.xml.buffer_position();
            let event = match self.xml.read_event() {
                Ok(event) => event,
                Err(error) => {
                    let at = self.here(self.xml.error_position());
                    return Err(flaw(at, xml_error(&error)));
                }
            };
            let refused = |reason: &str| Err(flaw(self.here(offset), reason));
            return match event {
                Event::Start(e) => self.start(&e, offset),
                Event::End(_) => {
                    self.scratch.namespaces.pop();
                    Ok(Next::End)
                }
                Event::Text(e) => {
                    let text = e.into_inner();
                    if text.iter().all(u8::is_ascii_whitespace) {
                        Ok(Next::Space)
                    } else {
                        utf8(text).map(Next::Text).or_else(&refused)
                    }
                }
                Event::CData(e) => utf8(e.into_inner())
                    .map(Next::Text)
                    .or_else(&refused),
                Event::GeneralRef(e) => Ok(Next::Text(match &*e {
                    b"lt" => Cow::Borrowed("<"),
                    b"gt" => Cow::Borrowed(">"),
                    b"amp" => Cow::Borrowed("&"),
                    b"apos" => Cow::Borrowed("'"),
                    b"quot" => Cow::Borrowed("\""),
                    _ => match e.resolve_char_ref() {
                        Ok(Some(c)) => Cow::Owned(c.to_string()),
                        _ => return refused(
                            "an entity reference other than XML's own: iJw messages declare no entities",
                        ),
                    },
                })),
                Event::DocType(_) => refused(
                    "a DOCTYPE declaration: iJw messages have none, and zicht reads no DTD or entity",
                ),
                Event::Decl(e) => {
                    if let Some(Ok(encoding)) = e.encoding() {
                        if !encoding.eq_ignore_ascii_case(b"utf-8") {
                            return refused(&format!(
                                "the message declares encoding {}; iJw messages are UTF-8",
                                String::from_utf8_lossy(&encoding)
                                    .chars()
                                    .take(20)
                                    .collect::<String>()
                            ));
                        }
                    }
                    continue;
                }
                Event::Eof => Ok(Next::Eof),
                Event::Comment(_) | Event::PI(_) | Event::Empty(_) => continue,
            };
        }
    }

    /// An element's start at byte `offset`: its namespaces come into scope, and its name is
    /// resolved.
    fn start(&mut self, e: &BytesStart<'_>, offset: u64) -> Result<Next<'t>, Flaw> {
        if self.scratch.namespaces.push(e).is_err() {
            return Err(flaw(self.here(offset), "a malformed namespace declaration"));
        }
        let name = e.name();
        let resolved = self.scratch.namespaces.resolve_element(name).0;
        let bound = match resolved {
            ResolveResult::Bound(ns) => Some(ns.0),
            _ => None,
        };
        if !self.root_known {
            self.root_known = true;
            let root = &mut self.scratch.root_namespace;
            root.extend_from_slice(bound.unwrap_or_default());
        }
        let namespace = match bound {
            Some(ns) if ns == self.scratch.root_namespace.as_slice() => Namespace::Message,
            Some(BASIS) => Namespace::Basis,
            _ => Namespace::Other,
        };
        // The name as it lies in the text, right after the `<` (the first at or after where
        // the event began: a byte order mark may come before it).
        let qualified = name.as_ref();
        let lt = self
            .text
            .get(offset as usize..)
            .and_then(|rest| rest.iter().position(|&b| b == b'<'))
            .map_or(offset, |skipped| offset + skipped as u64);
        let at = lt as usize + 1;
        let Some(written) = self
            .text
            .get(at..at + qualified.len())
            .filter(|written| *written == qualified)
        else {
            return Err(flaw(self.here(offset), "not well-formed XML"));
        };
        let offset = lt;
        let local = match written.iter().position(|&b| b == b':') {
            Some(colon) => &written[colon + 1..],
            None => written,
        };
        Ok(Next::Start {
            local,
            namespace,
            offset,
        })
    }

    fn run(&mut self) -> Result<Outcome, Flaw> {
        let (local, offset) = loop {
            match self.next()? {
                Next::Start { local, offset, .. } => break (local, offset),
                Next::Space => {}
                Next::Text(_) | Next::End => {
                    return Err(flaw(self.here(0), "text before the root element"))
                }
                Next::Eof => return Err(flaw(self.here(0), "the file is empty")),
            }
        };
        let at = self.here(offset);
        let namespace: String = String::from_utf8_lossy(&self.scratch.root_namespace)
            .chars()
            .take(120)
            .collect();
        let local = String::from_utf8_lossy(local);
        let Some(rest) = namespace
            .strip_prefix(IJW)
            .filter(|_| namespace.ends_with("/schema"))
        else {
            return Err(flaw(
                at,
                format!(
                    "root element `{}` in namespace `{namespace}`: not an iJw message (namespace {IJW}3_2/jw301/schema and the like)",
                    local.chars().take(40).collect::<String>()
                ),
            ));
        };
        let mut parts = rest.split('/');
        let (version, message) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if version != "3_2" {
            return Err(flaw(
                at,
                format!(
                    "an iJw {} message; zicht reads iJw release 3.2 (convert it, or export it in 3.2)",
                    version.replace('_', ".")
                ),
            ));
        }
        if local != "Bericht" {
            return Err(flaw(at, "the root element of an iJw message is `Bericht`"));
        }
        let Some(kind) = Kind::of(message) else {
            return Ok(Outcome::Other(message.to_ascii_uppercase()));
        };
        self.scratch.path.push(El::Bericht);
        let mut message = Message::default();
        let mut product = None;
        self.group(kind, El::Bericht, offset, &mut message, &mut product)?;
        self.scratch.path.clear();
        // Nothing but whitespace and comments after the root element.
        loop {
            let end = self.xml.buffer_position();
            match self.next()? {
                Next::Eof => break,
                Next::Space => {}
                _ => {
                    return Err(flaw(
                        self.here(end),
                        "content after the message's root element",
                    ))
                }
            }
        }
        Ok(Outcome::Message(kind, message))
    }

    /// Where the text ends: for a message that ends too soon.
    fn end(&self) -> At {
        self.here(self.text.len() as u64)
    }

    /// Reads the children of the open group `name` (opened at byte `opened`) up to its end.
    fn group(
        &mut self,
        kind: Kind,
        name: El,
        opened: u64,
        message: &mut Message,
        product: &mut Option<Product>,
    ) -> Result<(), Flaw> {
        let mut seen = 0u64;
        if self.scratch.path.len() > MAX_DEPTH {
            return Err(flaw(self.here(opened), "elements nested too deep"));
        }
        let allowed = children(kind, name);
        loop {
            let before = self.xml.buffer_position();
            match self.next()? {
                Next::End => break,
                Next::Eof => {
                    return Err(flaw(
                        self.end(),
                        format!(
                            "the file ends inside `{}`: a truncated message",
                            name.name()
                        ),
                    ))
                }
                Next::Space => {}
                Next::Text(_) => {
                    return Err(flaw(
                        self.here(before),
                        format!("text directly in `{}`", name.name()),
                    ))
                }
                Next::Start {
                    local,
                    namespace,
                    offset,
                } => {
                    let known = allowed
                        .iter()
                        .find(|(child, _)| child.name().as_bytes() == local);
                    let Some(&(child, role)) = known else {
                        let local: String =
                            String::from_utf8_lossy(local).chars().take(40).collect();
                        let mut at = self.here(offset);
                        at.path = format!("{}/{local}", at.path);
                        return Err(flaw(
                            at,
                            format!(
                                "`{local}` is not an element of `{}` in an iJw 3.2 {}",
                                name.name(),
                                kind.name()
                            ),
                        ));
                    };
                    self.scratch.path.push(child);
                    let namespace_ok = if name.is_basis_group() {
                        namespace == Namespace::Basis
                    } else {
                        namespace == Namespace::Message
                    };
                    if !namespace_ok && role != Role::Skip {
                        return Err(flaw(
                            self.here(offset),
                            if name.is_basis_group() {
                                "not in the basisschema's namespace".to_owned()
                            } else {
                                format!("not in the {} namespace", kind.name())
                            },
                        ));
                    }
                    if seen & child.bit() != 0 && !child.is_product() {
                        return Err(flaw(self.here(offset), "occurs twice"));
                    }
                    seen |= child.bit();
                    match role {
                        Role::Skip => self.skip(offset)?,
                        Role::Leaf(field) => {
                            let text = self.leaf(offset)?;
                            store(kind, field, &text, message, product, self.key)
                                .map_err(|reason| flaw(self.here(offset), reason))?;
                        }
                        Role::Group => {
                            if child.is_product() {
                                let (line, column) = self.place(offset);
                                *product = Some(Product {
                                    line,
                                    column,
                                    ..Product::default()
                                });
                            }
                            self.group(kind, child, offset, message, product)?;
                            if child.is_product() {
                                message.products.extend(product.take());
                            }
                        }
                    }
                    self.scratch.path.pop();
                }
            }
        }
        if let Some(missing) = required(kind, name).iter().find(|el| seen & el.bit() == 0) {
            return Err(flaw(
                self.here(opened),
                format!("`{}` is missing", missing.name()),
            ));
        }
        Ok(())
    }

    /// Reads the text of the leaf opened at byte `opened` up to its end (borrowed from the
    /// message where it is one piece).
    fn leaf(&mut self, opened: u64) -> Result<Cow<'t, str>, Flaw> {
        let mut text: Cow<'t, str> = Cow::Borrowed("");
        loop {
            let more = match self.next()? {
                Next::Space => Cow::Borrowed(" "),
                Next::Text(more) => more,
                Next::End => return Ok(text),
                Next::Start { .. } => {
                    return Err(flaw(
                        self.here(opened),
                        "holds an element where a value belongs",
                    ))
                }
                Next::Eof => {
                    return Err(flaw(
                        self.end(),
                        "the file ends inside a value: a truncated message",
                    ))
                }
            };
            if text.len() + more.len() > 4096 {
                return Err(flaw(self.here(opened), "a value longer than 4,096 bytes"));
            }
            if text.is_empty() {
                text = more;
            } else {
                text.to_mut().push_str(&more);
            }
        }
    }

    /// Skips the element opened at byte `opened`, which zicht does not read, with everything
    /// in it (its text is not kept).
    fn skip(&mut self, opened: u64) -> Result<(), Flaw> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.next()? {
                Next::Start { .. } => {
                    depth += 1;
                    if self.scratch.path.len() + depth > MAX_DEPTH {
                        return Err(flaw(self.here(opened), "elements nested too deep"));
                    }
                }
                Next::End => depth -= 1,
                Next::Text(_) | Next::Space => {}
                Next::Eof => {
                    return Err(flaw(
                        self.end(),
                        "the file ends inside this element: a truncated message",
                    ))
                }
            }
        }
        Ok(())
    }
}

fn xml_error(error: &quick_xml::Error) -> String {
    match error {
        quick_xml::Error::Io(e) => format!("cannot read: {}", e.kind()),
        quick_xml::Error::Syntax(e) => format!("not well-formed XML: {e}"),
        quick_xml::Error::IllFormed(e) => format!("not well-formed XML: {e}"),
        quick_xml::Error::Encoding(_) => "text is not valid UTF-8".to_owned(),
        quick_xml::Error::Escape(_) => "a malformed character or entity reference".to_owned(),
        quick_xml::Error::Namespace(_) => "a malformed namespace declaration".to_owned(),
        _ => "not well-formed XML".to_owned(),
    }
}

fn digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

/// An xs:date without a time zone, as iJw writes dates (LDT_Datum): `YYYY-MM-DD`.
fn date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)
}

/// Takes a leaf's value into the message, checking its form; errors never repeat the value.
fn store(
    kind: Kind,
    field: Field,
    text: &str,
    message: &mut Message,
    product: &mut Option<Product>,
    key: &PseudonymKey,
) -> Result<(), String> {
    let text = text.trim();
    let bad = |reason: &str| Err(reason.to_owned());
    // A two-digit code, or why not.
    let two_digits = |reason: &str| {
        if digits(text, 2) {
            Ok(Code::new(text))
        } else {
            Err(reason.to_owned())
        }
    };
    let gemeente_side = matches!(
        (kind, field),
        (Kind::Jw301, Field::Afzender) | (Kind::Jw305 | Kind::Jw307, Field::Ontvanger)
    );
    match field {
        Field::BerichtCode if text != kind.code() => {
            return Err(format!(
                "BerichtCode of a {} is {}, not `{}`",
                kind.name(),
                kind.code(),
                text.chars().take(8).collect::<String>()
            ))
        }
        Field::BerichtVersie if text != "3" => return bad("not release 3 (BerichtVersie)"),
        Field::BerichtSubversie if text != "2" => return bad("not release 3.2 (BerichtSubversie)"),
        Field::BerichtCode | Field::BerichtVersie | Field::BerichtSubversie => {}
        Field::Afzender | Field::Ontvanger if gemeente_side => match text.parse() {
            Ok(code) if digits(text, 4) => message.gemeente = code,
            _ => return bad("a gemeente is its four-digit CBS code"),
        },
        Field::Afzender | Field::Ontvanger => match text.parse() {
            Ok(code) if digits(text, 8) => message.agb = code,
            _ => return bad("an aanbieder is its eight-digit AGB code"),
        },
        Field::Bsn => {
            if !zicht_model::is_bsn(text) {
                return bad("not a BSN (nine digits passing the elfproef)");
            }
            message.youth = key.pseudonym_u128(text);
        }
        Field::Datum => match date(text) {
            Some(day) => message.birth = Some(day),
            None => return bad("not a date (YYYY-MM-DD)"),
        },
        Field::DatumGebruik => match text {
            "1" | "2" => {}
            "3" => {
                return bad("the date of birth is unknown (DatumGebruik 3); a placement needs one")
            }
            _ => return bad("not a DatumGebruik code (COD170: 1, 2 or 3)"),
        },
        Field::JuridischeStatus => {
            message.legal_status = two_digits("not a JuridischeStatus code (WJ232, two digits)")?;
        }
        Field::WettelijkeVertegenwoordiging => {
            message.guardian =
                two_digits("not a WettelijkeVertegenwoordiging code (WJ003, two digits)")?;
        }
        _ => {
            let Some(product) = product.as_mut() else {
                return bad("outside a product");
            };
            match field {
                Field::ToewijzingNummer => {
                    if text.is_empty() || text.len() > 20 {
                        return bad("not a ToewijzingNummer (1-20 characters)");
                    }
                    product.toewijzing = Toewijzing::new(text);
                }
                Field::Categorie => {
                    product.category = two_digits("not a productcategorie (JZ020, two digits)")?;
                }
                Field::Code => {
                    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return bad("not a productcode (1-5 letters and digits)");
                    }
                    product.code = Some(
                        ProductCode::new(text)
                            .ok_or("not a productcode (1-5 letters and digits)")?,
                    );
                }
                Field::Begindatum | Field::Einddatum | Field::Toewijzingsdatum => {
                    let Some(day) = date(text) else {
                        return bad("not a date (YYYY-MM-DD)");
                    };
                    match field {
                        Field::Begindatum => product.begin = Some(day),
                        Field::Einddatum => product.end = Some(day),
                        _ => {
                            let time = product.assigned.take().and_then(|(_, t)| t);
                            product.assigned = Some((day, time));
                        }
                    }
                }
                Field::Toewijzingstijd => {
                    let time = text.get(..text.len().min(12)).and_then(Time::new);
                    let Some(time) = time else {
                        return bad("not a time (hh:mm:ss)");
                    };
                    let day = product.assigned.take().map_or(NaiveDate::MIN, |(d, _)| d);
                    product.assigned = Some((day, Some(time)));
                }
                Field::RedenBeeindiging => {
                    product.reason = two_digits("not a RedenBeeindiging code (JZ588, two digits)")?;
                }
                Field::StatusAanlevering => match text {
                    "1" | "2" | "3" => product.status = text.parse().ok(),
                    _ => return bad("not a StatusAanlevering code (COD467: 1, 2 or 3)"),
                },
                _ => {}
            }
        }
    }
    Ok(())
}
