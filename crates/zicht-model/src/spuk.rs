//! SPUK capacity reference (2021): open residential (O3M) providers with their places, from the
//! supra-regional transformation plans. Used by the synthetic generator for realistic capacity.

use chrono::NaiveDate;

use crate::region::Region;

/// One provider row of the SPUK 2021 capacity reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpukProvider {
    /// Provider name.
    pub provider: &'static str,
    /// Municipalities where it has locations.
    pub locations: &'static [&'static str],
    /// Regions its locations lie in.
    pub placement_regions: &'static [Region],
    /// Municipality that coordinates the SPUK grant.
    pub coordinating_municipality: &'static str,
    /// Places in the SPUK table; `None` where not published.
    pub spuk_places: Option<u32>,
    /// Reference date of the table.
    pub peildatum: NaiveDate,
}

const PEILDATUM: NaiveDate = match NaiveDate::from_ymd_opt(2021, 8, 1) {
    Some(date) => date,
    None => panic!("invalid date constant"),
};

macro_rules! spuk {
    ($provider:literal, [$($loc:literal),+], [$($region:ident),+], $coord:literal, $places:expr) => {
        SpukProvider {
            provider: $provider,
            locations: &[$($loc),+],
            placement_regions: &[$(Region::$region),+],
            coordinating_municipality: $coord,
            spuk_places: $places,
            peildatum: PEILDATUM,
        }
    };
}

/// The SPUK 2021 table (reference `spuk_capacity_2021.csv`).
pub const SPUK_2021: &[SpukProvider] = &[
    spuk!(
        "Yorneo",
        ["Assen", "Meppel", "Emmen"],
        [Drenthe],
        "Assen",
        Some(36)
    ),
    spuk!("Elker", ["Groningen"], [Groningen], "Groningen", Some(41)),
    spuk!(
        "Alliade (incl. Talant)",
        ["Drachten", "Leeuwarden"],
        [Friesland],
        "Leeuwarden",
        Some(32)
    ),
    spuk!("Fier", ["Leeuwarden"], [Friesland], "Leeuwarden", Some(72)),
    spuk!(
        "Jeugdhulp Friesland",
        ["Kortehemmen", "Drachten", "Leeuwarden"],
        [Friesland],
        "Leeuwarden",
        Some(70)
    ),
    spuk!(
        "Ambiq (Hoogeveen)",
        ["Hoogeveen"],
        [Drenthe],
        "Enschede",
        Some(40)
    ),
    spuk!(
        "Leger des Heils (Veendam)",
        ["Veendam"],
        [Groningen],
        "Utrecht",
        Some(8)
    ),
    spuk!(
        "Ambiq (Hengelo)",
        ["Hengelo"],
        [Twente],
        "Enschede",
        Some(42)
    ),
    spuk!(
        "Jarabee",
        ["Hengelo", "Enschede", "Oldenzaal"],
        [Twente],
        "Enschede",
        Some(39)
    ),
    spuk!("Pluryn (deels)", ["Almelo"], [Twente], "Enschede", Some(62)),
    spuk!(
        "Trias Jeugdhulp",
        ["Zwolle", "Hellendoorn"],
        [Ijsselland, Twente],
        "Enschede",
        Some(42)
    ),
    spuk!("Pactum", ["Deventer"], [Ijsselland], "Arnhem", None),
    spuk!(
        "Triade Vitree",
        ["Zwolle", "Kampen"],
        [Ijsselland],
        "Utrecht",
        None
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::CodeList;

    #[test]
    fn matches_reference_csv() {
        let csv = include_str!("../reference/spuk_capacity_2021.csv");
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), SPUK_2021.len());
        for (row, spuk) in rows.iter().zip(SPUK_2021) {
            assert_eq!(row[0], spuk.provider);
            assert_eq!(row[1], spuk.locations.join("|"));
            let regions: Vec<&str> = spuk.placement_regions.iter().map(|r| r.code()).collect();
            assert_eq!(row[2], regions.join("|"));
            assert_eq!(row[3], spuk.coordinating_municipality);
            assert_eq!(
                row[4],
                spuk.spuk_places.map(|p| p.to_string()).unwrap_or_default()
            );
            assert_eq!(row[5], spuk.peildatum.to_string());
        }
    }
}
