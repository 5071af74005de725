//! Reading one iJw 3.2 message (`Bericht`) as XML events over its bytes (quick-xml's namespace
//! reader, no copy): what zicht takes from a JW301, JW305 or JW307, checked against the
//! message's structure; everything else (names, addresses, contacts, comments) is skipped
//! unread.
//!
//! Hostile input is bounded: a message is held in memory only up to [`MAX_MESSAGE`] bytes (a
//! larger file is refused after that many are read), a DTD (and with it every entity
//! declaration) is refused, entity references other than XML's five and character references
//! are refused, and nesting deeper than [`MAX_DEPTH`] stops the read. Lines and columns are
//! counted only for a problem. The BSN becomes its pseudonym the moment its element ends; no
//! error names a value read.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
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

/// What a message says, as far as zicht reads it.
#[derive(Debug, Default)]
pub(super) struct Message {
    /// The gemeente (four-digit CBS code): the sender of a JW301, the receiver of the others.
    pub gemeente: String,
    /// The aanbieder's AGB code: the receiver of a JW301, the sender of the others.
    pub agb: String,
    /// The client's pseudonym (the keyed hash of the BSN).
    pub youth: String,
    /// The client's date of birth.
    pub birth: Option<NaiveDate>,
    /// JuridischeStatus (WJ232), in a JW301.
    pub legal_status: Option<String>,
    /// WettelijkeVertegenwoordiging (WJ003), in a JW301.
    pub guardian: Option<String>,
    /// The products, in message order.
    pub products: Vec<Product>,
}

/// One ToegewezenProduct, StartProduct or StopProduct.
#[derive(Debug, Default)]
pub(super) struct Product {
    pub at: Option<At>,
    pub toewijzing: Option<String>,
    pub category: Option<String>,
    pub code: Option<String>,
    /// Begindatum (JW305, JW307) or Ingangsdatum (JW301).
    pub begin: Option<NaiveDate>,
    /// Einddatum (JW307).
    pub end: Option<NaiveDate>,
    /// RedenBeeindiging (JZ588, JW307).
    pub reason: Option<String>,
    /// StatusAanlevering (COD467): 1 first, 2 changed, 3 to be removed.
    pub status: Option<u8>,
    /// Toewijzingsdatum and -tijd (JW301): which assignment of a number is the latest.
    pub assigned: Option<(NaiveDate, String)>,
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

/// The role of `child` under `parent` in a message of `kind`; `None` where the structure has
/// no such element.
fn role(kind: Kind, parent: &str, child: &str) -> Option<Role> {
    use Field::*;
    use Role::{Group, Leaf, Skip};
    Some(match (parent, child) {
        ("Bericht", "Header" | "Client") => Group,
        ("Header", "BerichtCode") => Leaf(BerichtCode),
        ("Header", "BerichtVersie") => Leaf(BerichtVersie),
        ("Header", "BerichtSubversie") => Leaf(BerichtSubversie),
        ("Header", "Afzender") => Leaf(Afzender),
        ("Header", "Ontvanger") => Leaf(Ontvanger),
        ("Header", "BerichtIdentificatie" | "XsdVersie") => Skip,
        ("Client", "Bsn") => Leaf(Bsn),
        ("Client", "Geboortedatum") => Group,
        ("Geboortedatum", "Datum") => Leaf(Datum),
        ("Geboortedatum", "DatumGebruik") => Leaf(DatumGebruik),
        ("Client", "Geslacht" | "Naam") => Skip,
        ("Client", "JuridischeStatus") if kind == Kind::Jw301 => Leaf(JuridischeStatus),
        ("Client", "WettelijkeVertegenwoordiging") if kind == Kind::Jw301 => {
            Leaf(WettelijkeVertegenwoordiging)
        }
        ("Client", "Communicatie" | "Commentaar" | "Relaties" | "Contactgegevens")
            if kind == Kind::Jw301 =>
        {
            Skip
        }
        ("Client", "ToegewezenProducten") if kind == Kind::Jw301 => Group,
        ("Client", "StartProducten") if kind == Kind::Jw305 => Group,
        ("Client", "StopProducten") if kind == Kind::Jw307 => Group,
        ("ToegewezenProducten", "ToegewezenProduct")
        | ("StartProducten", "StartProduct")
        | ("StopProducten", "StopProduct") => Group,
        ("ToegewezenProduct" | "StartProduct" | "StopProduct", "ToewijzingNummer") => {
            Leaf(ToewijzingNummer)
        }
        ("ToegewezenProduct" | "StartProduct" | "StopProduct", "Product") => Group,
        ("Product", "Categorie") => Leaf(Categorie),
        ("Product", "Code") => Leaf(Code),
        ("ToegewezenProduct", "Ingangsdatum") => Leaf(Begindatum),
        ("ToegewezenProduct", "Toewijzingsdatum") => Leaf(Toewijzingsdatum),
        ("ToegewezenProduct", "Toewijzingstijd") => Leaf(Toewijzingstijd),
        (
            "ToegewezenProduct",
            "ReferentieAanbieder"
            | "Einddatum"
            | "RedenWijziging"
            | "Omvang"
            | "Budget"
            | "Commentaar",
        ) => Skip,
        ("StartProduct" | "StopProduct", "ToewijzingIngangsdatum") => Skip,
        ("StartProduct" | "StopProduct", "Begindatum") => Leaf(Begindatum),
        ("StartProduct" | "StopProduct", "StatusAanlevering") => Leaf(StatusAanlevering),
        ("StopProduct", "RedenBeeindiging") => Leaf(RedenBeeindiging),
        ("StopProduct", "Einddatum") => Leaf(Einddatum),
        _ => return None,
    })
}

/// The elements each group must hold.
fn required(kind: Kind, group: &str) -> &'static [&'static str] {
    match (group, kind) {
        ("Bericht", _) => &["Header", "Client"],
        ("Header", _) => &[
            "BerichtCode",
            "BerichtVersie",
            "BerichtSubversie",
            "Afzender",
            "Ontvanger",
            "BerichtIdentificatie",
            "XsdVersie",
        ],
        ("Client", Kind::Jw301) => &[
            "Bsn",
            "Geboortedatum",
            "Geslacht",
            "Naam",
            "Contactgegevens",
            "ToegewezenProducten",
        ],
        ("Client", Kind::Jw305) => &["Bsn", "Geboortedatum", "Geslacht", "Naam", "StartProducten"],
        ("Client", Kind::Jw307) => &["Bsn", "Geboortedatum", "Geslacht", "Naam", "StopProducten"],
        ("Geboortedatum", _) => &["Datum"],
        ("ToegewezenProducten", _) => &["ToegewezenProduct"],
        ("StartProducten", _) => &["StartProduct"],
        ("StopProducten", _) => &["StopProduct"],
        ("ToegewezenProduct", _) => &[
            "ToewijzingNummer",
            "Toewijzingsdatum",
            "Toewijzingstijd",
            "Ingangsdatum",
        ],
        ("StartProduct", _) => &["Begindatum", "StatusAanlevering"],
        ("StopProduct", _) => &[
            "Begindatum",
            "RedenBeeindiging",
            "Einddatum",
            "StatusAanlevering",
        ],
        ("Product", _) => &["Categorie"],
        _ => &[],
    }
}

/// The groups whose children are the basisschema's (its composite types).
fn basis_group(group: &str) -> bool {
    matches!(
        group,
        "Geboortedatum" | "Product" | "BerichtIdentificatie" | "XsdVersie"
    )
}

/// Reads one message, `text` (at most [`MAX_MESSAGE`] bytes): the BSN is pseudonymised under
/// `key` as it is read.
pub(super) fn read(text: &[u8], key: &PseudonymKey) -> Result<Outcome, Flaw> {
    let start = At {
        line: 1,
        column: 1,
        path: String::new(),
    };
    if text.len() as u64 > MAX_MESSAGE {
        return Err(flaw(
            start,
            "the message is larger than 16 MiB: not an iJw message",
        ));
    }
    // A byte order mark of UTF-16 or UTF-32: iJw messages are UTF-8.
    if text.starts_with(&[0xFF, 0xFE]) || text.starts_with(&[0xFE, 0xFF]) {
        return Err(flaw(start, "the message is UTF-16; iJw messages are UTF-8"));
    }
    let mut reader = Reading {
        xml: NsReader::from_reader(text),
        text,
        path: Vec::new(),
        kind: None,
        key,
        root_namespace: String::new(),
    };
    reader.xml.config_mut().expand_empty_elements = true;
    reader.xml.config_mut().check_end_names = true;
    reader.run()
}

/// A message being read: the events of its text, the path of open elements.
struct Reading<'t, 'k> {
    xml: NsReader<&'t [u8]>,
    text: &'t [u8],
    /// The open elements' local names.
    path: Vec<&'static str>,
    kind: Option<Kind>,
    key: &'k PseudonymKey,
    /// The root element's namespace, as written.
    root_namespace: String,
}

/// What the next event was, as the message reader needs it.
enum Next {
    Start {
        /// The element's local name among those iJw 3.2 has, or as written (to name it).
        local: Result<&'static str, String>,
        namespace: Namespace,
        /// Byte offset of its `<`.
        offset: u64,
    },
    /// Text (whitespace-only text is `Space`).
    Text(String),
    Space,
    End,
    Eof,
}

/// Which namespace an element is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    /// The basisschema's.
    Basis,
    /// An iJw message's own (`…/ijw/<version>/<message>/schema`).
    Message,
    /// Another, or none.
    Other,
}

impl Namespace {
    fn of(resolved: &ResolveResult<'_>) -> Namespace {
        match resolved {
            ResolveResult::Bound(ns) if ns.0 == BASIS => Namespace::Basis,
            ResolveResult::Bound(ns)
                if ns.0.starts_with(IJW.as_bytes()) && ns.0.ends_with(b"/schema") =>
            {
                Namespace::Message
            }
            _ => Namespace::Other,
        }
    }
}

impl Reading<'_, '_> {
    /// Line and column of byte `offset` (counted only when a place is needed), with the path
    /// of the open elements.
    fn here(&self, offset: u64) -> At {
        let before = &self.text[..(offset as usize).min(self.text.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1);
        At {
            line: 1 + before.iter().filter(|&&b| b == b'\n').count() as u64,
            column: (before.len() - line_start) as u64 + 1,
            path: self.path.join("/"),
        }
    }

    /// The next event that matters.
    fn next(&mut self) -> Result<Next, Flaw> {
        loop {
            let start = self.xml.buffer_position();
            let next = match self.xml.read_resolved_event() {
                Ok((resolved, event)) => {
                    let namespace = Namespace::of(&resolved);
                    if self.path.is_empty() && matches!(event, Event::Start(_)) {
                        if let ResolveResult::Bound(ns) = &resolved {
                            self.root_namespace =
                                String::from_utf8_lossy(ns.0).chars().take(120).collect();
                        }
                    }
                    translate(event, namespace, start)
                }
                Err(error) => {
                    let at = self.here(self.xml.error_position());
                    return Err(flaw(at, xml_error(&error)));
                }
            };
            if let Some(next) = next.map_err(|reason| flaw(self.here(start), reason))? {
                return Ok(next);
            }
        }
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
        let namespace = std::mem::take(&mut self.root_namespace);
        let local = match local {
            Ok(local) => local.to_owned(),
            Err(local) => local,
        };
        let Some(rest) = namespace.strip_prefix(IJW) else {
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
        self.kind = Some(kind);
        self.path.push("Bericht");
        let mut message = Message::default();
        let mut product = None;
        self.group(kind, "Bericht", offset, &mut message, &mut product)?;
        self.path.clear();
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
        name: &'static str,
        opened: u64,
        message: &mut Message,
        product: &mut Option<Product>,
    ) -> Result<(), Flaw> {
        let mut seen: Vec<&'static str> = Vec::new();
        if self.path.len() > MAX_DEPTH {
            return Err(flaw(self.here(opened), "elements nested too deep"));
        }
        loop {
            let before = self.xml.buffer_position();
            match self.next()? {
                Next::End => break,
                Next::Eof => {
                    return Err(flaw(
                        self.end(),
                        format!("the file ends inside `{name}`: a truncated message"),
                    ))
                }
                Next::Space => {}
                Next::Text(_) => {
                    return Err(flaw(
                        self.here(before),
                        format!("text directly in `{name}`"),
                    ))
                }
                Next::Start {
                    local,
                    namespace,
                    offset,
                } => {
                    let known = local
                        .as_ref()
                        .ok()
                        .and_then(|&child| role(kind, name, child).map(|role| (child, role)));
                    let Some((child, role)) = known else {
                        let local = match local {
                            Ok(local) => local.to_owned(),
                            Err(local) => local.chars().take(40).collect(),
                        };
                        let mut at = self.here(offset);
                        at.path = format!("{}/{local}", at.path);
                        return Err(flaw(
                            at,
                            format!(
                                "`{local}` is not an element of `{name}` in an iJw 3.2 {}",
                                kind.name()
                            ),
                        ));
                    };
                    self.path.push(child);
                    let namespace_ok = if basis_group(name) {
                        namespace == Namespace::Basis
                    } else {
                        namespace == Namespace::Message
                    };
                    if !namespace_ok && role != Role::Skip {
                        return Err(flaw(
                            self.here(offset),
                            if basis_group(name) {
                                "not in the basisschema's namespace".to_owned()
                            } else {
                                format!("not in the {} namespace", kind.name())
                            },
                        ));
                    }
                    if seen.contains(&child)
                        && !matches!(child, "ToegewezenProduct" | "StartProduct" | "StopProduct")
                    {
                        return Err(flaw(self.here(offset), "occurs twice"));
                    }
                    seen.push(child);
                    match role {
                        Role::Skip => self.skip(offset)?,
                        Role::Leaf(field) => {
                            let text = self.leaf(offset)?;
                            store(kind, field, &text, message, product, self.key)
                                .map_err(|reason| flaw(self.here(offset), reason))?;
                        }
                        Role::Group => {
                            let is_product = matches!(
                                child,
                                "ToegewezenProduct" | "StartProduct" | "StopProduct"
                            );
                            if is_product {
                                *product = Some(Product {
                                    at: Some(self.here(offset)),
                                    ..Product::default()
                                });
                            }
                            self.group(kind, child, offset, message, product)?;
                            if is_product {
                                message.products.extend(product.take());
                            }
                        }
                    }
                    self.path.pop();
                }
            }
        }
        if let Some(missing) = required(kind, name).iter().find(|r| !seen.contains(r)) {
            return Err(flaw(self.here(opened), format!("`{missing}` is missing")));
        }
        Ok(())
    }

    /// Reads the text of the leaf opened at byte `opened` up to its end.
    fn leaf(&mut self, opened: u64) -> Result<String, Flaw> {
        let mut text = String::new();
        loop {
            match self.next()? {
                Next::Space => text.push(' '),
                Next::Text(more) => {
                    if text.len() + more.len() > 4096 {
                        return Err(flaw(self.here(opened), "a value longer than 4,096 bytes"));
                    }
                    text.push_str(&more);
                }
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
                    if self.path.len() + depth > MAX_DEPTH {
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

/// What an event is to the message reader (`None`: nothing to it, such as a comment), or
/// why it is refused.
fn translate(event: Event<'_>, namespace: Namespace, offset: u64) -> Result<Option<Next>, String> {
    let utf8 = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| "text is not valid UTF-8".to_owned())
    };
    Ok(Some(match event {
        Event::Start(e) => {
            let local = e.local_name();
            Next::Start {
                local: NAMES
                    .iter()
                    .copied()
                    .find(|n| n.as_bytes() == local.as_ref())
                    .ok_or_else(|| String::from_utf8_lossy(local.as_ref()).into_owned()),
                namespace,
                offset,
            }
        }
        Event::End(_) => Next::End,
        Event::Text(e) if e.iter().all(u8::is_ascii_whitespace) => Next::Space,
        Event::Text(e) => Next::Text(utf8(&e)?),
        Event::CData(e) => Next::Text(utf8(&e)?),
        Event::GeneralRef(e) => Next::Text(match &*e {
            b"lt" => "<".to_owned(),
            b"gt" => ">".to_owned(),
            b"amp" => "&".to_owned(),
            b"apos" => "'".to_owned(),
            b"quot" => "\"".to_owned(),
            _ => match e.resolve_char_ref() {
                Ok(Some(c)) => c.to_string(),
                _ => return Err(
                    "an entity reference other than XML's own: iJw messages declare no entities"
                        .to_owned(),
                ),
            },
        }),
        Event::DocType(_) => {
            return Err(
                "a DOCTYPE declaration: iJw messages have none, and zicht reads no DTD or entity"
                    .to_owned(),
            )
        }
        Event::Decl(e) => {
            if let Some(Ok(encoding)) = e.encoding() {
                if !encoding.eq_ignore_ascii_case(b"utf-8") {
                    return Err(format!(
                        "the message declares encoding {}; iJw messages are UTF-8",
                        String::from_utf8_lossy(&encoding)
                            .chars()
                            .take(20)
                            .collect::<String>()
                    ));
                }
            }
            return Ok(None);
        }
        Event::Eof => Next::Eof,
        Event::Comment(_) | Event::PI(_) | Event::Empty(_) => return Ok(None),
    }))
}

/// The element names of the messages zicht reads.
const NAMES: &[&str] = &[
    "Header",
    "Client",
    "BerichtCode",
    "BerichtVersie",
    "BerichtSubversie",
    "Afzender",
    "Ontvanger",
    "BerichtIdentificatie",
    "XsdVersie",
    "Bsn",
    "Geboortedatum",
    "Datum",
    "DatumGebruik",
    "Geslacht",
    "Naam",
    "JuridischeStatus",
    "WettelijkeVertegenwoordiging",
    "Communicatie",
    "Commentaar",
    "Relaties",
    "Contactgegevens",
    "ToegewezenProducten",
    "StartProducten",
    "StopProducten",
    "ToegewezenProduct",
    "StartProduct",
    "StopProduct",
    "ToewijzingNummer",
    "Product",
    "Categorie",
    "Code",
    "Ingangsdatum",
    "Toewijzingsdatum",
    "Toewijzingstijd",
    "ReferentieAanbieder",
    "Einddatum",
    "RedenWijziging",
    "Omvang",
    "Budget",
    "ToewijzingIngangsdatum",
    "Begindatum",
    "StatusAanlevering",
    "RedenBeeindiging",
    "Bericht",
];

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

/// An xs:date without a time zone, as iJw writes dates (LDT_Datum).
fn date(text: &str) -> Option<NaiveDate> {
    (text.len() == 10)
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
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
            Ok(Some(text.to_owned()))
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
        Field::Afzender | Field::Ontvanger if gemeente_side => {
            if !digits(text, 4) {
                return bad("a gemeente is its four-digit CBS code");
            }
            message.gemeente = text.to_owned();
        }
        Field::Afzender | Field::Ontvanger => {
            if !digits(text, 8) {
                return bad("an aanbieder is its eight-digit AGB code");
            }
            message.agb = text.to_owned();
        }
        Field::Bsn => {
            if !zicht_model::is_bsn(text) {
                return bad("not a BSN (nine digits passing the elfproef)");
            }
            message.youth = key.pseudonym(text);
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
                    product.toewijzing = Some(text.to_owned());
                }
                Field::Categorie => {
                    product.category = two_digits("not a productcategorie (JZ020, two digits)")?;
                }
                Field::Code => {
                    if text.is_empty()
                        || text.len() > 5
                        || !text.bytes().all(|b| b.is_ascii_alphanumeric())
                    {
                        return bad("not a productcode (1-5 letters and digits)");
                    }
                    product.code = Some(text.to_owned());
                }
                Field::Begindatum | Field::Einddatum | Field::Toewijzingsdatum => {
                    let Some(day) = date(text) else {
                        return bad("not a date (YYYY-MM-DD)");
                    };
                    match field {
                        Field::Begindatum => product.begin = Some(day),
                        Field::Einddatum => product.end = Some(day),
                        _ => {
                            let time = product.assigned.take().map(|(_, t)| t).unwrap_or_default();
                            product.assigned = Some((day, time));
                        }
                    }
                }
                Field::Toewijzingstijd => {
                    let time = text.chars().take(12).collect::<String>();
                    let day = product.assigned.take().map_or(NaiveDate::MIN, |(d, _)| d);
                    product.assigned = Some((day, time));
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
