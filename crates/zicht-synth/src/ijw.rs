//! The synthetic placements as a gemeente's iJw 3.2 exchange: per placement a JW301
//! (toewijzing), a JW305 (start zorg) and, once it ended, a JW307 (stop zorg), in one `.zip`
//! batch, with the region's `mapping.toml` that says what the messages do not: the aanbieder
//! behind each AGB code, the care type of each product code, the legal basis of the
//! juridische statuses the region uses, the outflow destination of the reden beëindiging it
//! maps.
//!
//! iJw carries less than the canonical format: no outflow profile, and an outflow destination
//! only as far as a reden beëindiging (JZ588) says it ([`destination_as_carried`]). A youth
//! whose responsible gemeente is unknown is exchanged under gemeente code `0000`, which the
//! mapping maps to `onbekend`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use zicht_model::{CareType, CodeList, LegalBasis, NaiveDate, OutflowDestination};
use zip::write::SimpleFileOptions;
use zip::ZipWriter;

use crate::PlacementSink;

const JW: &str = "http://www.istandaarden.nl/ijw/3_2";

/// The gemeente code the synthetic exchange uses where the responsible gemeente is unknown.
pub const UNKNOWN_GEMEENTE: &str = "0000";

/// The region's own product per care type: productcategorie (JZ020) and product code.
pub const PRODUCTS: &[(CareType, &str, &str)] = &[
    (CareType::Pleegzorg, "44", "44P01"),
    (CareType::Gezinshuis, "43", "43G01"),
    (CareType::KleinschaligWonen, "44", "44K01"),
    (CareType::OpenResidentieel, "43", "43R01"),
    (CareType::JeugdhulpPlus, "43", "43J01"),
    (CareType::Crisisopvang, "46", "46C01"),
    (CareType::Gezinspsychiatrie, "43", "43F01"),
    (CareType::KlinischeGgz, "54", "54K01"),
    (CareType::LvbMultidisciplinair, "43", "43L01"),
    (CareType::Forensisch, "43", "43D01"),
    (CareType::ExtraOndersteunendeVoorziening, "44", "44E01"),
    (CareType::Kamertraining, "44", "44T01"),
    (CareType::Zorgboerderij, "44", "44Z01"),
    (CareType::AmbulantIntensief, "45", "45A01"),
];

/// The reden beëindiging (JZ588) an aanbieder gives for each way a stay ends, and whether the
/// region's mapping maps it back to that destination (a transfer, `38`, and another domain,
/// `39`, say too little, so those placements read `onbekend`).
const REASONS: &[(OutflowDestination, &str, bool)] = &[
    (OutflowDestination::Thuis, "31", true),
    (OutflowDestination::Onbekend, "32", true),
    (OutflowDestination::Anders, "33", true),
    (OutflowDestination::Netwerk, "34", true),
    (OutflowDestination::Jji, "35", true),
    (OutflowDestination::ZelfstandigWonen, "39", false),
    (OutflowDestination::BegeleidWonen, "39", false),
    (OutflowDestination::MoBw, "39", false),
    (OutflowDestination::WlzInstelling, "39", false),
    (OutflowDestination::VolwassenGgz, "39", false),
];

/// The reden beëindiging for a placement that ended towards `destination` (care elsewhere is
/// a transfer, `38`).
pub fn reason_for(destination: OutflowDestination) -> &'static str {
    REASONS
        .iter()
        .find(|(d, _, _)| *d == destination)
        .map_or("38", |(_, code, _)| code)
}

/// The destination an import through the generated mapping reads for a placement that ended
/// towards `destination`.
pub fn destination_as_carried(destination: OutflowDestination) -> OutflowDestination {
    REASONS
        .iter()
        .find(|(d, _, _)| *d == destination)
        .filter(|(_, _, mapped)| *mapped)
        .map_or(OutflowDestination::Onbekend, |(d, _, _)| *d)
}

/// The JuridischeStatus (WJ232) and WettelijkeVertegenwoordiging (WJ003) of a legal basis,
/// as the synthetic gemeenten record them.
fn legal_status(basis: LegalBasis) -> (Option<&'static str>, Option<&'static str>) {
    match basis {
        LegalBasis::Vrijwillig => (None, None),
        LegalBasis::Ots => (Some("04"), None),
        LegalBasis::Voogdij => (None, Some("06")),
        LegalBasis::MachtigingGesloten => (Some("01"), None),
        LegalBasis::Spoedmachtiging => (Some("05"), None),
        LegalBasis::Strafrechtelijk => (Some("11"), None),
    }
}

/// Writes placements as iJw messages into a `.zip` batch.
pub struct Writer {
    zip: ZipWriter<BufWriter<File>>,
    /// (provider, location, placement region, setting) -> AGB code.
    sites: BTreeMap<(String, String, String, String), String>,
    messages: u64,
    dagtekening: String,
}

fn io_error(error: zip::result::ZipError) -> io::Error {
    io::Error::other(error)
}

impl Writer {
    /// A batch written to `path`; messages are dated `dagtekening`.
    pub fn create(path: &Path, dagtekening: NaiveDate) -> io::Result<Writer> {
        Ok(Writer {
            zip: ZipWriter::new(BufWriter::with_capacity(1 << 16, File::create(path)?)),
            sites: BTreeMap::new(),
            messages: 0,
            dagtekening: dagtekening.to_string(),
        })
    }

    fn header(&mut self, code: &str, from: &str, to: &str) -> String {
        self.messages += 1;
        format!(
            "<Header><BerichtCode>{code}</BerichtCode><BerichtVersie>3</BerichtVersie>\
             <BerichtSubversie>2</BerichtSubversie><Afzender>{from}</Afzender>\
             <Ontvanger>{to}</Ontvanger><BerichtIdentificatie><ijw:Identificatie>{}\
             </ijw:Identificatie><ijw:Dagtekening>{}</ijw:Dagtekening></BerichtIdentificatie>\
             <XsdVersie><ijw:BasisschemaXsdVersie>1.0.0</ijw:BasisschemaXsdVersie>\
             <ijw:BerichtXsdVersie>1.0.0</ijw:BerichtXsdVersie></XsdVersie></Header>",
            self.messages, self.dagtekening
        )
    }

    fn message(&mut self, kind: &str, header: &str, client: &str) -> io::Result<()> {
        let name = format!("{kind}/{:08}.xml", self.messages);
        self.zip
            .start_file(name, SimpleFileOptions::default())
            .map_err(io_error)?;
        write!(
            self.zip,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Bericht xmlns=\"{JW}/{kind}/schema\" \
             xmlns:ijw=\"{JW}/basisschema/schema\">\n{header}\n{client}\n</Bericht>\n"
        )
    }

    /// Finishes the batch, and writes the region's mapping to `mapping`.
    pub fn finish(self, mapping: &Path) -> io::Result<()> {
        let file = self.zip.finish().map_err(io_error)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let mut text = String::from(
            "# The region's mapping for its iJw exchange (generated with the synthetic data).\n\
             # Aanbieders by AGB code, and where their placements are.\n",
        );
        for ((provider, location, region, setting), agb) in &self.sites {
            let _ = writeln!(
                text,
                "\n[providers.\"{agb}\"]\nname = {provider:?}\nregion = {region:?}"
            );
            if !location.is_empty() {
                let _ = writeln!(text, "municipality = {location:?}");
            }
            if !setting.is_empty() {
                let _ = writeln!(text, "setting = {setting:?}");
            }
        }
        text.push_str("\n# The region's product codes.\n[values.care_type]\n");
        for (care_type, _, code) in PRODUCTS {
            let _ = writeln!(text, "\"{code}\" = \"{}\"", care_type.code());
        }
        text.push_str(
            "\n# Juridische status (WJ232) as the region records gesloten jeugdhulp.\n\
             [values.legal_basis]\n\"01\" = \"machtiging_gesloten\"\n\"05\" = \"spoedmachtiging\"\n\
             \n# Reden beeindiging (JZ588) where it tells the destination.\n\
             [values.outflow_destination]\n",
        );
        for (destination, code, mapped) in REASONS {
            if *mapped {
                let _ = writeln!(text, "\"{code}\" = \"{}\"", destination.code());
            }
        }
        let _ = writeln!(
            text,
            "\n# The code the exchange uses where the responsible gemeente is unknown.\n\
             [values.origin_region]\n\"{UNKNOWN_GEMEENTE}\" = \"onbekend\""
        );
        std::fs::write(mapping, text)
    }
}

impl PlacementSink for Writer {
    fn header(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn placement(&mut self, fields: &[&str; 14]) -> io::Result<()> {
        let [bsn, birth, _, origin, provider, location, region, care_type, setting, legal, start, end, destination, _] =
            *fields;
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
        let start_day: NaiveDate = start.parse().map_err(|_| invalid("start date"))?;
        let gemeente = match origin {
            "" => UNKNOWN_GEMEENTE.to_owned(),
            name => zicht_model::municipality(name, start_day)
                .map(|m| m.code[2..].to_owned())
                .ok_or_else(|| invalid("origin municipality without a CBS code"))?,
        };
        let site = (
            provider.to_owned(),
            location.to_owned(),
            region.to_owned(),
            setting.to_owned(),
        );
        let next = format!("99{:06}", self.sites.len());
        let agb = self.sites.entry(site).or_insert(next).clone();
        let care_type = CareType::parse(care_type).map_err(|_| invalid("care type"))?;
        let (_, category, code) = PRODUCTS
            .iter()
            .find(|(c, _, _)| *c == care_type)
            .ok_or_else(|| invalid("care type without a product"))?;
        let product = format!(
            "<Product><ijw:Categorie>{category}</ijw:Categorie><ijw:Code>{code}</ijw:Code></Product>"
        );
        let basis = LegalBasis::parse(legal).map_err(|_| invalid("legal basis"))?;
        let (status, guardian) = legal_status(basis);
        let toewijzing = format!("{:010}", self.messages + 1);
        let client = format!(
            "<Client><Bsn>{bsn}</Bsn><Geboortedatum><ijw:Datum>{birth}</ijw:Datum></Geboortedatum>\
             <Geslacht>0</Geslacht><Naam><ijw:Geslachtsnaam><ijw:Achternaam>Synthetisch\
             </ijw:Achternaam></ijw:Geslachtsnaam></Naam>"
        );

        let mut assigned = client.clone();
        if let Some(status) = status {
            let _ = write!(assigned, "<JuridischeStatus>{status}</JuridischeStatus>");
        }
        if let Some(guardian) = guardian {
            let _ = write!(
                assigned,
                "<WettelijkeVertegenwoordiging>{guardian}</WettelijkeVertegenwoordiging>"
            );
        }
        let _ = write!(
            assigned,
            "<Contactgegevens><Contact><Soort>01</Soort></Contact></Contactgegevens>\
             <ToegewezenProducten><ToegewezenProduct><ToewijzingNummer>{toewijzing}\
             </ToewijzingNummer>{product}<Toewijzingsdatum>{start}</Toewijzingsdatum>\
             <Toewijzingstijd>12:00:00</Toewijzingstijd><Ingangsdatum>{start}</Ingangsdatum>\
             </ToegewezenProduct></ToegewezenProducten></Client>"
        );
        let header = self.header("436", &gemeente, &agb);
        self.message("jw301", &header, &assigned)?;

        let started = format!(
            "{client}<StartProducten><StartProduct><ToewijzingNummer>{toewijzing}\
             </ToewijzingNummer>{product}<ToewijzingIngangsdatum>{start}</ToewijzingIngangsdatum>\
             <Begindatum>{start}</Begindatum><StatusAanlevering>1</StatusAanlevering>\
             </StartProduct></StartProducten></Client>"
        );
        let header = self.header("438", &agb, &gemeente);
        self.message("jw305", &header, &started)?;

        if !end.is_empty() {
            let destination =
                OutflowDestination::parse(destination).map_err(|_| invalid("destination"))?;
            let reason = reason_for(destination);
            let stopped = format!(
                "{client}<StopProducten><StopProduct><ToewijzingNummer>{toewijzing}\
                 </ToewijzingNummer>{product}<ToewijzingIngangsdatum>{start}\
                 </ToewijzingIngangsdatum><Begindatum>{start}</Begindatum>\
                 <RedenBeeindiging>{reason}</RedenBeeindiging><Einddatum>{end}</Einddatum>\
                 <StatusAanlevering>1</StatusAanlevering></StopProduct></StopProducten></Client>"
            );
            let header = self.header("440", &agb, &gemeente);
            self.message("jw307", &header, &stopped)?;
        }
        Ok(())
    }
}
