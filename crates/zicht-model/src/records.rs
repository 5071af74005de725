//! The four kinds of record a regional node holds, with the invariants every one must satisfy.

use chrono::NaiveDate;

use crate::care::{CareType, Financing, LegalBasis, OutflowDestination, OutflowProfile, Setting};
use crate::ids::{ConsentId, PeerId, YouthId};
use crate::region::{Network, OriginRegion, PlacementRegion, Region};
use crate::transition::{After18Funding, Big5Status};
use crate::{Purpose, Timestamp};

/// A broken invariant of one record: the column to point at and the rule, in words that
/// contain no record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct Violation {
    /// The column the data team should look at.
    pub column: &'static str,
    /// The rule that was broken.
    pub rule: &'static str,
}

fn violation(column: &'static str, rule: &'static str) -> Violation {
    Violation { column, rule }
}

/// Free text (provider, facility, municipality names, evidence references).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

/// Free text that is empty after trimming, longer than 200 characters or has control characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1-200 characters of text without control characters")]
pub struct InvalidName;

impl Name {
    /// Validates and trims a name.
    pub fn parse(text: &str) -> Result<Self, InvalidName> {
        let trimmed = text.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 200
            || trimmed.chars().any(char::is_control)
        {
            return Err(InvalidName);
        }
        Ok(Name(trimmed.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One placement of a youth: a period of care with a provider, the node's own youths wherever
/// they are placed (woonplaatsbeginsel: the origin municipality is responsible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Pseudonymous youth id.
    pub youth_id: YouthId,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Region of the responsible municipality, or onbekend.
    pub origin_region: OriginRegion,
    /// Responsible municipality, if known.
    pub origin_municipality: Option<Name>,
    /// Care provider.
    pub provider: Name,
    /// Municipality of the location, if recorded (foster addresses often are not).
    pub location_municipality: Option<Name>,
    /// Region of the location, or buiten_federatie.
    pub placement_region: PlacementRegion,
    /// Kind of care.
    pub care_type: CareType,
    /// On an institution's grounds or in a neighbourhood, if recorded.
    pub setting: Option<Setting>,
    /// Legal framework.
    pub legal_basis: LegalBasis,
    /// First day of the placement.
    pub start_date: NaiveDate,
    /// Last day of the placement; `None` while it goes on.
    pub end_date: Option<NaiveDate>,
    /// Where the youth went after the placement; set exactly when it ended.
    pub outflow_destination: Option<OutflowDestination>,
    /// Outflow profile 1-4, if assessed.
    pub outflow_profile: Option<OutflowProfile>,
}

impl Placement {
    /// Columns of `placements.csv` (canonical import format v1), in canonical order.
    pub const COLUMNS: &'static [&'static str] = &[
        "youth_id",
        "birth_date",
        "origin_region",
        "origin_municipality",
        "provider",
        "location_municipality",
        "placement_region",
        "care_type",
        "setting",
        "legal_basis",
        "start_date",
        "end_date",
        "outflow_destination",
        "outflow_profile",
    ];

    /// Checks the rules that span more than one column.
    pub fn check(&self) -> Result<(), Violation> {
        if self.start_date < self.birth_date {
            return Err(violation("start_date", "start_date is before birth_date"));
        }
        if let Some(end) = self.end_date {
            if end < self.start_date {
                return Err(violation("end_date", "end_date is before start_date"));
            }
        }
        match (self.end_date, self.outflow_destination) {
            (Some(_), None) => Err(violation(
                "outflow_destination",
                "outflow_destination is required when end_date is set",
            )),
            (None, Some(_)) => Err(violation(
                "outflow_destination",
                "outflow_destination is only allowed when end_date is set",
            )),
            _ => Ok(()),
        }
    }
}

/// The capacity of one facility for one care type on a peildatum (reference date). Facility
/// data, not person data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// Care provider.
    pub provider: Name,
    /// Facility (location or group) name.
    pub facility: Name,
    /// Municipality of the facility.
    pub location_municipality: Name,
    /// Region the facility lies in.
    pub placement_region: Region,
    /// Kind of care offered.
    pub care_type: CareType,
    /// On an institution's grounds or in a neighbourhood, if recorded.
    pub setting: Option<Setting>,
    /// Reference date of the count.
    pub peildatum: NaiveDate,
    /// Contracted places.
    pub places: u32,
    /// Occupied places; never more than `places`.
    pub occupied: u32,
    /// How places are financed, if recorded.
    pub financing: Option<Financing>,
}

impl Capacity {
    /// Columns of `capacity.csv`, in canonical order.
    pub const COLUMNS: &'static [&'static str] = &[
        "provider",
        "facility",
        "location_municipality",
        "placement_region",
        "care_type",
        "setting",
        "peildatum",
        "places",
        "occupied",
        "financing",
    ];

    /// Checks the rules that span more than one column.
    pub fn check(&self) -> Result<(), Violation> {
        if self.occupied > self.places {
            return Err(violation("occupied", "occupied is more than places"));
        }
        Ok(())
    }
}

/// The half-yearly check of a youth aged 16 or 17: is there a toekomstplan (plan for life after
/// 18), who is involved, and how do the five BIG5 domains stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition18Check {
    /// Pseudonymous youth id.
    pub youth_id: YouthId,
    /// Date of the check.
    pub check_date: NaiveDate,
    /// A toekomstplan (future plan) is present.
    pub toekomstplan: bool,
    /// The lokaal team (municipal social team) is involved.
    pub lokaal_team: bool,
    /// A cliëntondersteuner (independent client support) is involved.
    pub clientondersteuner: bool,
    /// How care after 18 is funded.
    pub after18_funding: After18Funding,
    /// BIG5 domain support / netwerk.
    pub big5_support: Big5Status,
    /// BIG5 domain wonen (housing).
    pub big5_wonen: Big5Status,
    /// BIG5 domain werk en school.
    pub big5_werk_school: Big5Status,
    /// BIG5 domain inkomen en schulden.
    pub big5_inkomen_schulden: Big5Status,
    /// BIG5 domain zorg en ondersteuning.
    pub big5_zorg_ondersteuning: Big5Status,
    /// Uit beeld: the youth is lost from view.
    pub uit_beeld: bool,
}

impl Transition18Check {
    /// Columns of `transition18.csv`, in canonical order.
    pub const COLUMNS: &'static [&'static str] = &[
        "youth_id",
        "check_date",
        "toekomstplan",
        "lokaal_team",
        "clientondersteuner",
        "after18_funding",
        "big5_support",
        "big5_wonen",
        "big5_werk_school",
        "big5_inkomen_schulden",
        "big5_zorg_ondersteuning",
        "uit_beeld",
    ];
}

/// Who a consent lets receive records: one certificate holder, one region's organisation, or
/// one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    /// A node, team or person by PeerID.
    Peer(PeerId),
    /// A region's organisation (`region:<code>`): its node, and its analysts and teams.
    Region(Region),
    /// A network's aggregator node (`<code>` or `network:<code>`).
    Network(Network),
}

impl Recipient {
    /// Parses a 20-digit PeerID, `region:<code>`, or a network code (`jenn`,
    /// `network:jenn`); region codes and aliases as in the import.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        use crate::codes::CodeList;
        const FORMS: &str = "must be a 20-digit PeerID, region:<region code> or a network code (jenn, overijssel, ben-nh)";
        if let Ok(peer) = PeerId::parse(text) {
            return Ok(Recipient::Peer(peer));
        }
        if let Some(region) = text.strip_prefix("region:") {
            return Region::parse(region)
                .map(Recipient::Region)
                .map_err(|_| FORMS);
        }
        let network = text.strip_prefix("network:").unwrap_or(text);
        Network::parse(network)
            .map(Recipient::Network)
            .map_err(|_| FORMS)
    }

    /// The recipient as stored and exchanged: a PeerID, `region:<code>` or a network code.
    pub fn to_code(self) -> String {
        use crate::codes::CodeList;
        match self {
            Recipient::Peer(peer) => peer.as_str().to_owned(),
            Recipient::Region(region) => format!("region:{}", region.code()),
            Recipient::Network(network) => network.code().to_owned(),
        }
    }
}

/// A youth's consent to share named fields of their records with one recipient for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Consent id.
    pub consent_id: ConsentId,
    /// Pseudonymous youth id.
    pub youth_id: YouthId,
    /// What the records may be used for.
    pub purpose: Purpose,
    /// Who may receive them.
    pub recipient: Recipient,
    /// Which placements/transition18 columns may be released (non-empty, no duplicates).
    pub fields: Vec<&'static str>,
    /// When the consent was given.
    pub granted_at: Timestamp,
    /// When it ends, if limited.
    pub expires_at: Option<Timestamp>,
    /// When it was withdrawn, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Where the signed consent is kept (document reference, never the document).
    pub evidence_ref: Option<Name>,
}

impl Consent {
    /// Columns of `consents.csv`, in canonical order.
    pub const COLUMNS: &'static [&'static str] = &[
        "consent_id",
        "youth_id",
        "purpose",
        "recipient",
        "fields",
        "granted_at",
        "expires_at",
        "revoked_at",
        "evidence_ref",
    ];

    /// Parses the `|`-separated field list into known column names, rejecting unknown,
    /// duplicate or no fields.
    pub fn parse_fields(text: &str) -> Result<Vec<&'static str>, &'static str> {
        let mut fields = Vec::new();
        for part in text.split('|') {
            let part = part.trim();
            let known = Placement::COLUMNS
                .iter()
                .chain(Transition18Check::COLUMNS)
                .find(|&&column| column == part)
                .ok_or("fields must name placements or transition18 columns, separated by `|` (see docs/consent.md)")?;
            if fields.contains(known) {
                return Err("fields names a column twice");
            }
            fields.push(*known);
        }
        Ok(fields)
    }

    /// Checks the rules that span more than one column.
    pub fn check(&self) -> Result<(), Violation> {
        if self
            .expires_at
            .is_some_and(|expires| expires < self.granted_at)
        {
            return Err(violation("expires_at", "expires_at is before granted_at"));
        }
        if self
            .revoked_at
            .is_some_and(|revoked| revoked < self.granted_at)
        {
            return Err(violation("revoked_at", "revoked_at is before granted_at"));
        }
        Ok(())
    }

    /// Whether the consent holds at `now`: granted at or before it, not expired and not
    /// revoked by then (an end or a revocation at `now` itself is in force).
    pub fn holds_at(&self, now: Timestamp) -> bool {
        self.granted_at <= now
            && self.expires_at.is_none_or(|expires| expires > now)
            && self.revoked_at.is_none_or(|revoked| revoked > now)
    }

    /// The fields every consent may list: the columns of `placements.csv` and
    /// `transition18.csv` (`youth_id` once), in that order.
    pub fn field_list() -> Vec<&'static str> {
        let mut fields: Vec<&'static str> = Placement::COLUMNS.to_vec();
        fields.extend(
            Transition18Check::COLUMNS
                .iter()
                .filter(|c| !Placement::COLUMNS.contains(c)),
        );
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_date;

    fn day(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn placement() -> Placement {
        Placement {
            youth_id: YouthId::parse("Y1").unwrap(),
            birth_date: day("2008-03-01"),
            origin_region: OriginRegion::Region(Region::Drenthe),
            origin_municipality: Some(Name::parse("Assen").unwrap()),
            provider: Name::parse("Yorneo").unwrap(),
            location_municipality: None,
            placement_region: PlacementRegion::Region(Region::Drenthe),
            care_type: CareType::Pleegzorg,
            setting: None,
            legal_basis: LegalBasis::Vrijwillig,
            start_date: day("2022-01-01"),
            end_date: None,
            outflow_destination: None,
            outflow_profile: None,
        }
    }

    #[test]
    fn placement_rules() {
        assert_eq!(placement().check(), Ok(()));
        let ended_without_destination = Placement {
            end_date: Some(day("2022-06-01")),
            ..placement()
        };
        assert_eq!(
            ended_without_destination.check().unwrap_err().column,
            "outflow_destination"
        );
        let backwards = Placement {
            end_date: Some(day("2021-06-01")),
            outflow_destination: Some(OutflowDestination::Thuis),
            ..placement()
        };
        assert_eq!(
            backwards.check().unwrap_err().rule,
            "end_date is before start_date"
        );
        let destination_while_ongoing = Placement {
            outflow_destination: Some(OutflowDestination::Thuis),
            ..placement()
        };
        assert!(destination_while_ongoing.check().is_err());
        let before_birth = Placement {
            start_date: day("2007-01-01"),
            ..placement()
        };
        assert_eq!(before_birth.check().unwrap_err().column, "start_date");
    }

    #[test]
    fn consent_fields_and_validity() {
        assert_eq!(
            Consent::parse_fields("care_type|toekomstplan"),
            Ok(vec!["care_type", "toekomstplan"])
        );
        assert!(Consent::parse_fields("care_type|care_type").is_err());
        assert!(Consent::parse_fields("bsn").is_err());
        assert!(Consent::parse_fields("").is_err());
        let consent = Consent {
            consent_id: ConsentId::parse("C1").unwrap(),
            youth_id: YouthId::parse("Y1").unwrap(),
            purpose: Purpose::WarmeOverdracht,
            recipient: Recipient::parse("jenn").unwrap(),
            fields: vec!["care_type"],
            granted_at: at("2024-01-01"),
            expires_at: Some(at("2024-12-31")),
            revoked_at: Some(at("2024-06-01")),
            evidence_ref: None,
        };
        assert_eq!(consent.check(), Ok(()));
        assert!(consent.holds_at(at("2024-05-31T23:59:59Z")));
        assert!(!consent.holds_at(at("2024-06-01")));
        assert!(!consent.holds_at(at("2023-12-31")));
        assert!(
            consent.holds_at(at("2024-01-01")),
            "from the moment it is granted"
        );
        assert_eq!(
            Recipient::parse("region:IJmond").map(Recipient::to_code),
            Ok("region:ijmond".to_owned())
        );
        assert_eq!(Recipient::parse("network:jenn"), Recipient::parse("jenn"));
        assert!(Recipient::parse("region:gelderland").is_err());
    }

    #[test]
    fn names_are_trimmed_text() {
        assert_eq!(Name::parse("  Elker ").unwrap().as_str(), "Elker");
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse("a\tb").is_err());
    }
}
