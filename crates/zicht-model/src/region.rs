//! Jeugdhulpregio's (youth-care regions), landsdelen and the supra-regional networks.

use chrono::NaiveDate;

use crate::codes::{code_list, CodeList, UnknownCode};

code_list! {
    /// A jeugdhulpregio: a region of municipalities that jointly commission youth care. Each runs
    /// one zicht node.
    pub enum Region: "region" {
        Drenthe = ("drenthe", "Drenthe"),
        Friesland = ("friesland", "Friesland", ["Fryslân", "SD Fryslan"]),
        Groningen = ("groningen", "Groningen", ["RIGG"]),
        Twente = ("twente", "Twente"),
        Ijsselland = ("ijsselland", "IJsselland"),
        AmsterdamAmstelland = ("amsterdam-amstelland", "Amsterdam-Amstelland", ["Amsterdam/Amstelland"]),
        ZaanstreekWaterland = ("zaanstreek-waterland", "Zaanstreek-Waterland", ["Zaanstreek/Waterland"]),
        ZuidKennemerland = ("zuid-kennemerland", "Zuid-Kennemerland"),
        Ijmond = ("ijmond", "IJmond", ["Midden-Kennemerland"]),
        Haarlemmermeer = ("haarlemmermeer", "Haarlemmermeer"),
        Alkmaar = ("alkmaar", "Alkmaar", ["Noord-Kennemerland"]),
        KopVanNoordHolland = ("kop-van-noord-holland", "Kop van Noord-Holland"),
        WestFriesland = ("west-friesland", "West-Friesland"),
        GooiEnVechtstreek = ("gooi-en-vechtstreek", "Gooi en Vechtstreek", ["Gooi- en Vechtstreek"]),
    }
}

/// A landsdeel: the supra-regional area a region belongs to (the unit of "inside or outside
/// the origin's landsdeel" in `youth_in_care`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Landsdeel {
    /// Drenthe, Friesland, Groningen.
    NoordNederland,
    /// Twente, IJsselland.
    Overijssel,
    /// The nine Noord-Holland regions.
    NoordHolland,
}

impl Landsdeel {
    /// Every landsdeel in reference order.
    pub const ALL: &'static [Landsdeel] = &[
        Landsdeel::NoordNederland,
        Landsdeel::Overijssel,
        Landsdeel::NoordHolland,
    ];

    /// Display name as in the reference data.
    pub fn name(self) -> &'static str {
        match self {
            Landsdeel::NoordNederland => "Noord-Nederland",
            Landsdeel::Overijssel => "Overijssel",
            Landsdeel::NoordHolland => "Noord-Holland",
        }
    }

    /// Regions in this landsdeel, in reference order.
    pub fn regions(self) -> impl Iterator<Item = Region> {
        Region::ALL
            .iter()
            .copied()
            .filter(move |r| r.landsdeel() == self)
    }
}

impl Region {
    /// The landsdeel this region lies in.
    pub fn landsdeel(self) -> Landsdeel {
        use Region::*;
        match self {
            Drenthe | Friesland | Groningen => Landsdeel::NoordNederland,
            Twente | Ijsselland => Landsdeel::Overijssel,
            AmsterdamAmstelland | ZaanstreekWaterland | ZuidKennemerland | Ijmond
            | Haarlemmermeer | Alkmaar | KopVanNoordHolland | WestFriesland | GooiEnVechtstreek => {
                Landsdeel::NoordHolland
            }
        }
    }
}

/// Where a youth comes from: a region of the federation, or `onbekend` (unknown, e.g. under
/// voogdij — guardianship — when the responsible municipality is not recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OriginRegion {
    /// A known region of the federation.
    Region(Region),
    /// Origin not known.
    Onbekend,
}

impl OriginRegion {
    /// The code as stored and exchanged.
    pub fn code(self) -> &'static str {
        match self {
            OriginRegion::Region(region) => region.code(),
            OriginRegion::Onbekend => "onbekend",
        }
    }

    /// Parses a region code or alias, or `onbekend`.
    pub fn parse(text: &str) -> Result<Self, UnknownCode> {
        if text == "onbekend" {
            return Ok(OriginRegion::Onbekend);
        }
        match Region::parse(text) {
            Ok(region) => Ok(OriginRegion::Region(region)),
            Err(_) if crate::codes::fold(text) == "onbekend" => Ok(OriginRegion::Onbekend),
            Err(error) => Err(UnknownCode {
                list: "origin_region",
                valid: [error.valid, vec!["onbekend"]].concat(),
                ..error
            }),
        }
    }
}

/// Where a placement is: a region of the federation, or `buiten_federatie` (a facility outside
/// the 14 regions, e.g. in Gelderland).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlacementRegion {
    /// A region of the federation.
    Region(Region),
    /// A facility outside the federation's regions.
    BuitenFederatie,
}

impl PlacementRegion {
    /// The code as stored and exchanged.
    pub fn code(self) -> &'static str {
        match self {
            PlacementRegion::Region(region) => region.code(),
            PlacementRegion::BuitenFederatie => "buiten_federatie",
        }
    }

    /// Parses a region code or alias, or `buiten_federatie`.
    pub fn parse(text: &str) -> Result<Self, UnknownCode> {
        if text == "buiten_federatie" {
            return Ok(PlacementRegion::BuitenFederatie);
        }
        match Region::parse(text) {
            Ok(region) => Ok(PlacementRegion::Region(region)),
            Err(_) if crate::codes::fold(text) == "buiten-federatie" => {
                Ok(PlacementRegion::BuitenFederatie)
            }
            Err(error) => Err(UnknownCode {
                list: "placement_region",
                valid: [error.valid, vec!["buiten_federatie"]].concat(),
                ..error
            }),
        }
    }
}

code_list! {
    /// A supra-regional expertise network that aggregates bovenregionaal (supra-regional) counts
    /// over its member regions and runs a node without youth data.
    pub enum Network: "network" {
        /// Jeugd Expertisenetwerk Noord-Nederland.
        Jenn = ("jenn", "Jeugd Expertisenetwerk Noord-Nederland"),
        /// Bovenregionaal samenwerkingsverband Overijssel.
        Overijssel = ("overijssel", "Bovenregionaal samenwerkingsverband Overijssel"),
        /// Bovenregionaal Expertisenetwerk Noord-Holland.
        BenNh = ("ben-nh", "Bovenregionaal Expertisenetwerk Noord-Holland"),
    }
}

/// One region's membership of a network over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The member region.
    pub region: Region,
    /// First day of membership.
    pub valid_from: NaiveDate,
    /// Last day of membership, if it ended (inclusive).
    pub valid_to: Option<NaiveDate>,
}

impl Membership {
    /// Whether the membership holds on `date`.
    pub fn holds_on(&self, date: NaiveDate) -> bool {
        date >= self.valid_from && self.valid_to.is_none_or(|to| date <= to)
    }
}

const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("invalid date constant"),
    }
}

const fn member(region: Region, valid_from: NaiveDate) -> Membership {
    Membership {
        region,
        valid_from,
        valid_to: None,
    }
}

const JENN_FROM: NaiveDate = date(2020, 12, 1);
const OVERIJSSEL_FROM: NaiveDate = date(2021, 10, 1);
const BEN_NH_FROM: NaiveDate = date(2020, 2, 18);

const JENN: &[Membership] = &[
    member(Region::Drenthe, JENN_FROM),
    member(Region::Friesland, JENN_FROM),
    member(Region::Groningen, JENN_FROM),
];
const OVERIJSSEL: &[Membership] = &[
    member(Region::Twente, OVERIJSSEL_FROM),
    member(Region::Ijsselland, OVERIJSSEL_FROM),
];
const BEN_NH: &[Membership] = &[
    member(Region::AmsterdamAmstelland, BEN_NH_FROM),
    member(Region::ZaanstreekWaterland, BEN_NH_FROM),
    member(Region::ZuidKennemerland, BEN_NH_FROM),
    member(Region::Ijmond, BEN_NH_FROM),
    member(Region::Haarlemmermeer, BEN_NH_FROM),
    member(Region::Alkmaar, BEN_NH_FROM),
    member(Region::KopVanNoordHolland, BEN_NH_FROM),
    member(Region::WestFriesland, BEN_NH_FROM),
    member(Region::GooiEnVechtstreek, date(2022, 1, 1)),
];

impl Network {
    /// Every membership period of the network, as in the reference data.
    pub fn memberships(self) -> &'static [Membership] {
        match self {
            Network::Jenn => JENN,
            Network::Overijssel => OVERIJSSEL,
            Network::BenNh => BEN_NH,
        }
    }

    /// The member regions on `date`, in reference order.
    pub fn members_on(self, date: NaiveDate) -> impl Iterator<Item = Region> {
        self.memberships()
            .iter()
            .filter(move |m| m.holds_on(date))
            .map(|m| m.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_time_bound() {
        let before = date(2021, 12, 31);
        let after = date(2022, 1, 1);
        assert_eq!(Network::BenNh.members_on(before).count(), 8);
        assert_eq!(Network::BenNh.members_on(after).count(), 9);
        assert_eq!(Network::Overijssel.members_on(date(2021, 9, 30)).count(), 0);
        assert_eq!(
            Network::Jenn.members_on(after).collect::<Vec<_>>(),
            vec![Region::Drenthe, Region::Friesland, Region::Groningen]
        );
    }

    #[test]
    fn landsdelen_partition_the_regions() {
        let total: usize = Landsdeel::ALL.iter().map(|l| l.regions().count()).sum();
        assert_eq!(total, Region::ALL.len());
        assert_eq!(Landsdeel::Overijssel.regions().count(), 2);
    }

    #[test]
    fn origin_and_placement_regions_parse_their_extra_codes() {
        assert_eq!(OriginRegion::parse("onbekend"), Ok(OriginRegion::Onbekend));
        assert_eq!(
            OriginRegion::parse("IJmond"),
            Ok(OriginRegion::Region(Region::Ijmond))
        );
        assert_eq!(
            PlacementRegion::parse("buiten_federatie"),
            Ok(PlacementRegion::BuitenFederatie)
        );
        let error = PlacementRegion::parse("gelderland").unwrap_err();
        assert_eq!(error.list, "placement_region");
    }
}
