//! Vrijheidsbeperkende maatregelen (freedom-restricting measures) taken in gesloten jeugdhulp
//! (JeugdhulpPlus): the `measures.csv` record and its code list.
//!
//! The kinds follow the measures the Jeugdwet allows in a gesloten accommodatie (hoofdstuk 6,
//! paragraaf 6.3, as the Wet rechtspositie gesloten jeugdhulp rewrote it from 2025, and the
//! Besluit Jeugdwet paragraaf 6.2) and the way the Inspectie Gezondheidszorg en Jeugd and the
//! NJI list them: afzondering (separatie), fixatie, insluiten op de eigen kamer, time-out,
//! onderzoek van kamer, lichaam en urine, toezicht op communicatie, cameratoezicht, and
//! beperking van bewegingsvrijheid. A provider's own registration maps onto these; what fits
//! none is `overig`.

use chrono::NaiveDate;

use crate::codes::code_list;
use crate::ids::YouthId;
use crate::records::{Name, Violation};
use crate::region::Region;

code_list! {
    /// The kind of a vrijheidsbeperkende maatregel.
    pub enum MeasureKind: "measure_kind" {
        Separatie = ("separatie", "Separatie of afzondering in een afzonderingsruimte", ["afzondering", "isoleren"]),
        InsluitenEigenKamer = ("insluiten_eigen_kamer", "Insluiten op de eigen kamer"),
        Fixatie = ("fixatie", "Fixatie: vastpakken en vasthouden", ["fixeren", "vastpakken"]),
        TijdelijkeOverplaatsing = ("tijdelijke_overplaatsing", "Tijdelijke overplaatsing (time-out)"),
        BeperkingBewegingsvrijheid = ("beperking_bewegingsvrijheid", "Beperking van bewegingsvrijheid (verbod op plaatsen)"),
        OnderzoekKamer = ("onderzoek_kamer", "Onderzoek van de kamer"),
        OnderzoekLichaamKleding = ("onderzoek_lichaam_kleding", "Onderzoek aan lichaam of kleding"),
        ControleMiddelen = ("controle_middelen", "Controle op middelen (urinecontrole)"),
        ToezichtCommunicatie = ("toezicht_communicatie", "Toezicht op telefoon, post en internet"),
        Cameratoezicht = ("cameratoezicht", "Cameratoezicht of deursignalering"),
        Overig = ("overig", "Andere vrijheidsbeperkende maatregel"),
    }
}

/// One vrijheidsbeperkende maatregel taken with a youth in a facility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    /// Pseudonymous youth id.
    pub youth_id: YouthId,
    /// Care provider (as in `placements.csv` and `capacity.csv`).
    pub provider: Name,
    /// Facility (as in `capacity.csv`).
    pub facility: Name,
    /// Region the facility lies in.
    pub placement_region: Region,
    /// Day the measure started.
    pub start_date: NaiveDate,
    /// Minutes after midnight it started (`HH:MM` in the file).
    pub start_minute: u16,
    /// How long it lasted, in minutes (0 for a measure without duration, such as an
    /// onderzoek van de kamer).
    pub duration_minutes: u32,
    /// What kind of measure.
    pub kind: MeasureKind,
}

impl Measure {
    /// Columns of `measures.csv`, in canonical order.
    pub const COLUMNS: &'static [&'static str] = &[
        "youth_id",
        "provider",
        "facility",
        "placement_region",
        "start_date",
        "start_time",
        "duration_minutes",
        "kind",
    ];

    /// The longest duration a file may state: a measure lasting more than a year is a typo.
    pub const MAX_DURATION_MINUTES: u32 = 366 * 24 * 60;
}

/// `HH:MM` (24-hour) as minutes after midnight.
pub fn parse_time(text: &str) -> Result<u16, Violation> {
    let bad = Violation {
        column: "start_time",
        rule: "must be a time HH:MM (00:00-23:59)",
    };
    let (hours, minutes) = text.trim().split_once(':').ok_or(bad)?;
    let number = |part: &str, below: u16| {
        (!part.is_empty() && part.len() <= 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u16>().ok())
            .flatten()
            .filter(|n| *n < below)
    };
    match (number(hours, 24), number(minutes, 60)) {
        (Some(h), Some(m)) if minutes.len() == 2 => Ok(h * 60 + m),
        _ => Err(bad),
    }
}

/// A duration in whole minutes, 0 up to [`Measure::MAX_DURATION_MINUTES`].
pub fn parse_duration(text: &str) -> Result<u32, Violation> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(Violation {
            column: "duration_minutes",
            rule: "a duration cannot be below zero",
        });
    }
    text.parse::<u32>()
        .ok()
        .filter(|m| *m <= Measure::MAX_DURATION_MINUTES)
        .ok_or(Violation {
            column: "duration_minutes",
            rule: "must be whole minutes, 0 up to a year (527040)",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CodeList;

    #[test]
    fn times_and_durations_read_as_the_file_states_them() {
        assert_eq!(parse_time("00:00"), Ok(0));
        assert_eq!(parse_time("9:05"), Ok(545));
        assert_eq!(parse_time("23:59"), Ok(1439));
        for bad in ["24:00", "12:60", "12", "12:5", "", "ab:cd", "-1:00"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration(" 90 "), Ok(90));
        assert_eq!(
            parse_duration("-5").unwrap_err().rule,
            "a duration cannot be below zero"
        );
        assert!(parse_duration("1.5").is_err());
        assert!(parse_duration("600000").is_err());
    }

    #[test]
    fn kinds_fold_like_every_code_list() {
        assert_eq!(MeasureKind::parse("Separatie"), Ok(MeasureKind::Separatie));
        assert_eq!(
            MeasureKind::parse("insluiten eigen kamer"),
            Ok(MeasureKind::InsluitenEigenKamer)
        );
    }
}
