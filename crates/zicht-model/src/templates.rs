//! The allow-listed query templates and the closed list of group-by dimensions each allows.
//! Peers can only ask these; never free SQL.

use chrono::NaiveDate;

use crate::codes::{code_list, parse_among, CodeList, UnknownCode};
use crate::{
    After18Funding, Big5Domain, Big5Status, CareType, LegalBasis, MeasureKind, OriginRegion,
    OutflowDestination, OutflowProfile, PlacementRegion, Region, StayGroup,
};

code_list! {
    /// A registered, versioned query template.
    pub enum Template: "template" {
        Capacity = ("capacity", "Capaciteit en bezetting"),
        YouthInCare = ("youth_in_care", "Jeugdigen in zorg"),
        Flows = ("flows", "Instroom, uitstroom en doorplaatsing"),
        LengthOfStay = ("length_of_stay", "Verblijfsduur"),
        Transition18 = ("transition18", "Overgang naar 18+"),
        Measures = ("measures", "Vrijheidsbeperkende maatregelen"),
        ConsentedRecords = ("consented_records", "Records met toestemming"),
    }
}

code_list! {
    /// A dimension a result can be grouped by.
    pub enum Dimension: "dimension" {
        OriginRegion = ("origin_region", "Herkomstregio"),
        PlacementRegion = ("placement_region", "Plaatsingsregio"),
        CareType = ("care_type", "Zorgvorm"),
        StayGroup = ("stay_group", "Verblijfsgroep"),
        LandsdeelInside = ("landsdeel_inside", "Binnen of buiten eigen landsdeel"),
        AgeBand = ("age_band", "Leeftijdsklasse"),
        LegalBasis = ("legal_basis", "Juridisch kader"),
        Provider = ("provider", "Aanbieder"),
        Setting = ("setting", "Setting"),
        LocationMunicipality = ("location_municipality", "Gemeente locatie"),
        Facility = ("facility", "Voorziening"),
        Financing = ("financing", "Financiering"),
        FlowKind = ("flow_kind", "Instroom, uitstroom of doorplaatsing"),
        OutflowDestination = ("outflow_destination", "Uitstroombestemming"),
        OutflowProfile = ("outflow_profile", "Uitstroomprofiel"),
        Toekomstplan = ("toekomstplan", "Toekomstplan aanwezig"),
        After18Funding = ("after18_funding", "Financiering na 18"),
        Big5Domain = ("big5_domain", "BIG5-domein"),
        Big5Status = ("big5_status", "BIG5-status"),
        AgeOnPeildatum = ("age", "Leeftijd op de peildatum"),
        StayLength = ("stay_length", "Verblijfsduur"),
        Turns18 = ("turns_18", "Wordt 18"),
        MeasureKind = ("measure_kind", "Soort vrijheidsbeperkende maatregel"),
        Separatie = ("separatie", "Ten minste een separatie in de periode"),
        MemberRegion = ("member_region", "Regio (per lid van het netwerk)"),
    }
}

/// The ages on the peildatum `transition18` lists (`age`): the 16+ check is for 16- and
/// 17-year-olds; `onbekend` where no placement gives the youth's birth date.
pub const AGES_ON_PEILDATUM: [&str; 5] = ["onder_16", "16", "17", "18_plus", UNKNOWN];

/// When a youth turns 18, counted from the peildatum (`turns_18`): already, within 6 months,
/// within 6 to 12 months, later; `onbekend` without a birth date.
pub const TURNS_18: [&str; 5] = [
    "al_18",
    "binnen_6_maanden",
    "binnen_12_maanden",
    "later",
    UNKNOWN,
];

/// How `age` and `turns_18` read a birth date on `peildatum`: the first `(cutoff, value)`
/// whose cutoff the youth was born after, or else the last value (one rule for the engine and
/// the SQL, so both place a birthday on the same side). `None` for other dimensions.
pub fn birth_cutoffs(
    dimension: Dimension,
    peildatum: NaiveDate,
) -> Option<(Vec<(NaiveDate, &'static str)>, &'static str)> {
    let shifted = |plus: u32, minus_years: u32| {
        peildatum
            .checked_add_months(chrono::Months::new(plus))
            .and_then(|d| d.checked_sub_months(chrono::Months::new(12 * minus_years)))
            .unwrap_or(NaiveDate::MIN)
    };
    match dimension {
        Dimension::AgeOnPeildatum => Some((
            vec![
                (shifted(0, 16), "onder_16"),
                (shifted(0, 17), "16"),
                (shifted(0, 18), "17"),
            ],
            "18_plus",
        )),
        Dimension::Turns18 => Some((
            vec![
                (shifted(12, 18), "later"),
                (shifted(6, 18), "binnen_12_maanden"),
                (shifted(0, 18), "binnen_6_maanden"),
            ],
            "al_18",
        )),
        _ => None,
    }
}

/// The bands of `stay_length` (`length_of_stay`): each with the days it holds up to (not
/// including); the last holds every longer stay. Counts per band are person counts, so a
/// network can add them and read its median and p90 band from the sum.
pub const STAY_LENGTHS: [(&str, i64); 5] = [
    ("0_3_maanden", 91),
    ("3_6_maanden", 183),
    ("6_12_maanden", 365),
    ("1_2_jaar", 730),
    ("2_jaar_plus", i64::MAX),
];

/// The `stay_length` band of a stay of `days`.
pub fn stay_length_band(days: i64) -> usize {
    STAY_LENGTHS
        .iter()
        .position(|(_, below)| days < *below)
        .unwrap_or(STAY_LENGTHS.len() - 1)
}

/// The `member_region` row that holds the sum over every member that answered.
pub const MEMBER_TOTAL: &str = "totaal";

code_list! {
    /// Age band at the reference date (the end of the period, or the peildatum).
    pub enum AgeBand: "age_band" {
        Age0To5 = ("0-5", "0 tot 6 jaar"),
        Age6To11 = ("6-11", "6 tot 12 jaar"),
        Age12To15 = ("12-15", "12 tot 16 jaar"),
        Age16To17 = ("16-17", "16 en 17 jaar"),
        Age18Plus = ("18+", "18 jaar en ouder"),
    }
}

impl AgeBand {
    /// The youngest age in the band.
    pub fn min_age(self) -> u32 {
        match self {
            AgeBand::Age0To5 => 0,
            AgeBand::Age6To11 => 6,
            AgeBand::Age12To15 => 12,
            AgeBand::Age16To17 => 16,
            AgeBand::Age18Plus => 18,
        }
    }
}

code_list! {
    /// Whether a youth is placed inside the landsdeel of their origin region.
    pub enum LandsdeelInside: "landsdeel_inside" {
        Binnen = ("binnen", "Binnen eigen landsdeel"),
        Buiten = ("buiten", "Buiten eigen landsdeel"),
        Onbekend = ("onbekend", "Herkomst onbekend"),
    }
}

code_list! {
    /// A care movement in a period: instroom (into care), doorplaatsing (a placement ends
    /// and another starts within [`FlowKind::TRANSFER_DAYS`] days), uitstroom (out of care).
    pub enum FlowKind: "flow_kind" {
        Instroom = ("instroom", "Instroom"),
        Doorplaatsing = ("doorplaatsing", "Doorplaatsing"),
        Uitstroom = ("uitstroom", "Uitstroom"),
    }
}

impl FlowKind {
    /// A placement that starts at most this many days after another one ended continues care
    /// (doorplaatsing) rather than starting it anew (instroom).
    pub const TRANSFER_DAYS: i64 = 30;
}

/// The value of `outflow_destination` and `outflow_profile` for flows without an ending
/// placement (instroom): not applicable.
pub const NOT_APPLICABLE: &str = "nvt";

/// The value of `outflow_profile` for an ended placement without a recorded profile.
pub const UNKNOWN: &str = "onbekend";

impl Dimension {
    /// Every value a person-count dimension can take, in reference order: a grouped result
    /// lists each combination, zeros too. `origin_region` lists every region and `onbekend`
    /// (a node narrows it to what it can hold); `None` for the facility dimensions of
    /// `capacity` and `measures`, whose values are not a closed list (a node lists the
    /// facilities of its capacity table).
    pub fn domain(self) -> Option<Vec<&'static str>> {
        fn codes<T: CodeList>() -> Vec<&'static str> {
            T::ALL.iter().map(|c| c.code()).collect()
        }
        Some(match self {
            Dimension::OriginRegion => {
                let mut values = codes::<Region>();
                values.push("onbekend");
                values
            }
            Dimension::PlacementRegion => {
                let mut values = codes::<Region>();
                values.push(PlacementRegion::BuitenFederatie.code());
                values
            }
            Dimension::CareType => codes::<CareType>(),
            Dimension::StayGroup => codes::<StayGroup>(),
            Dimension::LandsdeelInside => codes::<LandsdeelInside>(),
            Dimension::AgeBand => codes::<AgeBand>(),
            Dimension::LegalBasis => codes::<LegalBasis>(),
            Dimension::FlowKind => codes::<FlowKind>(),
            Dimension::OutflowDestination => {
                let mut values = codes::<OutflowDestination>();
                values.push(NOT_APPLICABLE);
                values
            }
            Dimension::OutflowProfile => {
                let mut values = codes::<OutflowProfile>();
                values.extend([UNKNOWN, NOT_APPLICABLE]);
                values
            }
            Dimension::Toekomstplan | Dimension::Separatie => vec!["ja", "nee"],
            Dimension::MeasureKind => codes::<MeasureKind>(),
            Dimension::After18Funding => codes::<After18Funding>(),
            Dimension::Big5Domain => codes::<Big5Domain>(),
            Dimension::Big5Status => codes::<Big5Status>(),
            Dimension::AgeOnPeildatum => AGES_ON_PEILDATUM.to_vec(),
            Dimension::StayLength => STAY_LENGTHS.iter().map(|(band, _)| *band).collect(),
            Dimension::Turns18 => TURNS_18.to_vec(),
            // Not a data dimension: the asking node lists each member's own published cells
            // under its region, and their sum under `totaal`.
            Dimension::MemberRegion => {
                let mut values = codes::<Region>();
                values.push(MEMBER_TOTAL);
                values
            }
            Dimension::Provider
            | Dimension::Setting
            | Dimension::LocationMunicipality
            | Dimension::Facility
            | Dimension::Financing => return None,
        })
    }
}

impl Dimension {
    /// `text` as a value of this dimension, folded as the import folds codes (`Open
    /// Residentieel` is `open_residentieel`, region aliases resolve); for the open dimensions
    /// of `capacity` (provider, municipality, setting), the text trimmed.
    pub fn value(self, text: &str) -> Result<String, UnknownCode> {
        match self {
            Dimension::OriginRegion => OriginRegion::parse(text).map(|r| r.code().to_owned()),
            Dimension::PlacementRegion => PlacementRegion::parse(text).map(|r| r.code().to_owned()),
            _ => match self.domain() {
                Some(codes) => parse_among(self.code(), &codes, text).map(str::to_owned),
                None => Ok(text.trim().to_owned()),
            },
        }
    }
}

impl Template {
    /// The current version of the template; a request names the version it was written for.
    pub fn version(self) -> u32 {
        1
    }

    /// Whether the template is asked on a reference date (peildatum) rather than over a
    /// period: `capacity` and `transition18`.
    pub fn takes_peildatum(self) -> bool {
        matches!(self, Template::Capacity | Template::Transition18)
    }

    /// Whether the cell `key` (of a table grouped by `dimensions`) can never hold anyone: a
    /// structural zero. In `flows`, instroom has no outflow destination or profile (`nvt`),
    /// and doorplaatsing and uitstroom always have one. `kind` is the one flow kind a filter
    /// kept, when the table is not grouped by it.
    pub fn structural_zero(
        self,
        dimensions: &[Dimension],
        key: &[String],
        kind: Option<&str>,
    ) -> bool {
        if self != Template::Flows {
            return false;
        }
        let value = |wanted: Dimension| {
            dimensions
                .iter()
                .position(|d| *d == wanted)
                .and_then(|i| key.get(i))
                .map(String::as_str)
        };
        let Some(kind) = value(Dimension::FlowKind).or(kind) else {
            return false;
        };
        let instroom = kind == FlowKind::Instroom.code();
        [Dimension::OutflowDestination, Dimension::OutflowProfile]
            .into_iter()
            .filter_map(value)
            .any(|v| (v == NOT_APPLICABLE) != instroom)
    }

    /// The group-by dimensions this template allows (the finest it can ever answer).
    pub fn dimensions(self) -> &'static [Dimension] {
        use Dimension::*;
        match self {
            Template::Capacity => &[
                PlacementRegion,
                Provider,
                Facility,
                CareType,
                Setting,
                LocationMunicipality,
                Financing,
            ],
            Template::YouthInCare => &[
                OriginRegion,
                PlacementRegion,
                CareType,
                StayGroup,
                LandsdeelInside,
                AgeBand,
                LegalBasis,
                Separatie,
            ],
            Template::Flows => &[
                FlowKind,
                CareType,
                OriginRegion,
                OutflowDestination,
                OutflowProfile,
            ],
            Template::LengthOfStay => &[CareType, StayGroup, StayLength],
            Template::Transition18 => &[
                Toekomstplan,
                After18Funding,
                Big5Domain,
                Big5Status,
                AgeOnPeildatum,
                Turns18,
            ],
            Template::Measures => &[MeasureKind, PlacementRegion, Provider, Facility],
            Template::ConsentedRecords => &[],
        }
    }

    /// Whether the template releases person data (counts of youths, or records) rather than
    /// facility data.
    pub fn is_person_data(self) -> bool {
        self != Template::Capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_person_dimension_has_a_domain_without_repeats() {
        for &template in Template::ALL.iter().filter(|t| t.is_person_data()) {
            for &dimension in template.dimensions() {
                // Measures name providers and facilities: open lists, as in capacity.
                let Some(mut values) = dimension.domain() else {
                    assert!(
                        template == Template::Measures
                            && matches!(dimension, Dimension::Provider | Dimension::Facility),
                        "{template} {dimension} is open"
                    );
                    continue;
                };
                let len = values.len();
                values.sort_unstable();
                values.dedup();
                assert_eq!(values.len(), len, "{dimension}");
            }
        }
    }

    #[test]
    fn query_values_fold_like_imported_codes() {
        assert_eq!(
            Dimension::CareType.value("Open Residentieel").unwrap(),
            "open_residentieel"
        );
        assert_eq!(
            Dimension::StayGroup.value("Jeugdhulp-Plus").unwrap(),
            "jeugdhulp_plus"
        );
        assert_eq!(
            Dimension::PlacementRegion
                .value("Midden-Kennemerland")
                .unwrap(),
            "ijmond"
        );
        assert_eq!(
            Dimension::OriginRegion.value("Onbekend").unwrap(),
            "onbekend"
        );
        assert_eq!(Dimension::OutflowProfile.value("nvt").unwrap(), "nvt");
        let unknown = Dimension::LandsdeelInside.value("in").unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown landsdeel_inside code; valid codes are binnen, buiten, onbekend"
        );
    }

    #[test]
    fn ages_and_turning_18_are_read_on_the_peildatum() {
        let peil = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
        let read = |dimension, birth: NaiveDate| {
            let (cutoffs, last) = birth_cutoffs(dimension, peil).unwrap();
            cutoffs
                .iter()
                .find(|(cutoff, _)| birth > *cutoff)
                .map_or(last, |(_, value)| value)
        };
        let born = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        use Dimension::{AgeOnPeildatum as Age, Turns18};
        assert_eq!(read(Age, born(2009, 7, 2)), "onder_16");
        assert_eq!(read(Age, born(2009, 7, 1)), "16", "16 on the birthday");
        assert_eq!(read(Age, born(2008, 7, 2)), "16");
        assert_eq!(read(Age, born(2008, 7, 1)), "17");
        assert_eq!(read(Age, born(2007, 7, 1)), "18_plus");
        assert_eq!(read(Turns18, born(2007, 7, 1)), "al_18");
        assert_eq!(read(Turns18, born(2007, 7, 2)), "binnen_6_maanden");
        assert_eq!(read(Turns18, born(2008, 1, 1)), "binnen_6_maanden");
        assert_eq!(read(Turns18, born(2008, 1, 2)), "binnen_12_maanden");
        assert_eq!(read(Turns18, born(2008, 7, 2)), "later");
    }

    #[test]
    fn instroom_has_no_destination_and_the_others_always_one() {
        use Dimension::*;
        let key = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
        let flows = Template::Flows;
        let by = [FlowKind, OutflowDestination];
        assert!(flows.structural_zero(&by, &key(&["instroom", "thuis"]), None));
        assert!(!flows.structural_zero(&by, &key(&["instroom", "nvt"]), None));
        assert!(flows.structural_zero(&by, &key(&["uitstroom", "nvt"]), None));
        assert!(!flows.structural_zero(&by, &key(&["uitstroom", "thuis"]), None));
        let profile = [OutflowProfile];
        assert!(flows.structural_zero(&profile, &key(&["nvt"]), Some("uitstroom")));
        assert!(
            !flows.structural_zero(&profile, &key(&["nvt"]), None),
            "all kinds"
        );
        assert!(!Template::YouthInCare.structural_zero(&[CareType], &key(&["pleegzorg"]), None));
    }

    #[test]
    fn every_dimension_is_used_by_some_template() {
        // member_region is the asking node's, never a template's.
        for &dimension in Dimension::ALL
            .iter()
            .filter(|d| **d != Dimension::MemberRegion)
        {
            assert!(
                Template::ALL
                    .iter()
                    .any(|t| t.dimensions().contains(&dimension)),
                "{dimension}"
            );
        }
    }
}
