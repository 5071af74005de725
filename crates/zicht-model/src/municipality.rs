//! The municipalities (gemeenten) of the fourteen jeugdhulpregio's, with their CBS codes and
//! the days they belonged to their region: a region's municipalities change over the years
//! (gemeentelijke herindelingen; Weesp joined Amsterdam in 2022 and with it another
//! jeugdhulpregio). Carried from CBS's "Gemeentelijke indeling" and the regions' own lists;
//! a region whose list differs tells the project, and meanwhile imports with
//! `--allow-other-regions`.

use chrono::NaiveDate;

use crate::codes::fold;
use crate::region::Region;

/// One municipality in one region over a span of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Municipality {
    /// CBS code, `GM` and four digits.
    pub code: &'static str,
    /// Official name.
    pub name: &'static str,
    /// The jeugdhulpregio it belongs to in this span.
    pub region: Region,
    /// First day in this region (`None`: before the records zicht takes).
    pub from: Option<(i32, u32, u32)>,
    /// Last day in this region (`None`: to this day).
    pub until: Option<(i32, u32, u32)>,
}

impl Municipality {
    /// Whether the municipality belonged to its region on `day`.
    pub fn on(&self, day: NaiveDate) -> bool {
        let date = |(y, m, d): (i32, u32, u32)| NaiveDate::from_ymd_opt(y, m, d);
        self.from.and_then(date).is_none_or(|from| from <= day)
            && self.until.and_then(date).is_none_or(|until| day <= until)
    }

    /// Whether it belongs to its region today (in the latest list).
    pub fn current(&self) -> bool {
        self.until.is_none()
    }
}

const fn m(code: &'static str, name: &'static str, region: Region) -> Municipality {
    Municipality {
        code,
        name,
        region,
        from: None,
        until: None,
    }
}

const fn until(
    code: &'static str,
    name: &'static str,
    region: Region,
    last: (i32, u32, u32),
) -> Municipality {
    Municipality {
        code,
        name,
        region,
        from: None,
        until: Some(last),
    }
}

const fn from(
    code: &'static str,
    name: &'static str,
    region: Region,
    first: (i32, u32, u32),
) -> Municipality {
    Municipality {
        code,
        name,
        region,
        from: Some(first),
        until: None,
    }
}

use Region::*;

/// Every municipality of the fourteen regions, the central city of each region first. A data
/// table, hence its length.
pub const MUNICIPALITIES: &[Municipality] = &[
    m("GM0106", "Assen", Drenthe),
    m("GM0114", "Emmen", Drenthe),
    m("GM0118", "Hoogeveen", Drenthe),
    m("GM0119", "Meppel", Drenthe),
    m("GM0109", "Coevorden", Drenthe),
    m("GM1731", "Midden-Drenthe", Drenthe),
    m("GM1730", "Tynaarlo", Drenthe),
    m("GM1699", "Noordenveld", Drenthe),
    m("GM1680", "Aa en Hunze", Drenthe),
    m("GM1681", "Borger-Odoorn", Drenthe),
    m("GM1690", "De Wolden", Drenthe),
    m("GM1701", "Westerveld", Drenthe),
    m("GM0080", "Leeuwarden", Friesland),
    m("GM1900", "Súdwest-Fryslân", Friesland),
    m("GM0090", "Smallingerland", Friesland),
    m("GM0074", "Heerenveen", Friesland),
    m("GM1921", "De Fryske Marren", Friesland),
    m("GM0737", "Tytsjerksteradiel", Friesland),
    m("GM1949", "Waadhoeke", Friesland),
    m("GM0086", "Opsterland", Friesland),
    m("GM0085", "Ooststellingwerf", Friesland),
    m("GM0098", "Weststellingwerf", Friesland),
    m("GM1970", "Noardeast-Fryslân", Friesland),
    m("GM0072", "Harlingen", Friesland),
    m("GM0059", "Achtkarspelen", Friesland),
    m("GM1891", "Dantumadiel", Friesland),
    m("GM0060", "Ameland", Friesland),
    m("GM0093", "Terschelling", Friesland),
    m("GM0096", "Vlieland", Friesland),
    m("GM0088", "Schiermonnikoog", Friesland),
    m("GM0014", "Groningen", Groningen),
    m("GM1952", "Midden-Groningen", Groningen),
    m("GM1895", "Oldambt", Groningen),
    m("GM1966", "Het Hogeland", Groningen),
    m("GM1969", "Westerkwartier", Groningen),
    m("GM0047", "Veendam", Groningen),
    from("GM1979", "Eemsdelta", Groningen, (2021, 1, 1)),
    m("GM0037", "Stadskanaal", Groningen),
    m("GM0765", "Pekela", Groningen),
    m("GM1950", "Westerwolde", Groningen),
    until("GM0003", "Appingedam", Groningen, (2020, 12, 31)),
    until("GM0010", "Delfzijl", Groningen, (2020, 12, 31)),
    until("GM0024", "Loppersum", Groningen, (2020, 12, 31)),
    m("GM0153", "Enschede", Twente),
    m("GM0164", "Hengelo", Twente),
    m("GM0141", "Almelo", Twente),
    m("GM0147", "Borne", Twente),
    m("GM0163", "Hellendoorn", Twente),
    m("GM0173", "Oldenzaal", Twente),
    m("GM1742", "Rijssen-Holten", Twente),
    m("GM0189", "Wierden", Twente),
    m("GM0158", "Haaksbergen", Twente),
    m("GM0168", "Losser", Twente),
    m("GM0183", "Tubbergen", Twente),
    m("GM1700", "Twenterand", Twente),
    m("GM1735", "Hof van Twente", Twente),
    m("GM1774", "Dinkelland", Twente),
    m("GM0193", "Zwolle", Ijsselland),
    m("GM0150", "Deventer", Ijsselland),
    m("GM0166", "Kampen", Ijsselland),
    m("GM0177", "Raalte", Ijsselland),
    m("GM0160", "Hardenberg", Ijsselland),
    m("GM1708", "Steenwijkerland", Ijsselland),
    m("GM1773", "Olst-Wijhe", Ijsselland),
    m("GM0148", "Dalfsen", Ijsselland),
    m("GM0180", "Staphorst", Ijsselland),
    m("GM1896", "Zwartewaterland", Ijsselland),
    m("GM0175", "Ommen", Ijsselland),
    m("GM0363", "Amsterdam", AmsterdamAmstelland),
    m("GM0362", "Amstelveen", AmsterdamAmstelland),
    m("GM0358", "Aalsmeer", AmsterdamAmstelland),
    m("GM0384", "Diemen", AmsterdamAmstelland),
    m("GM0437", "Ouder-Amstel", AmsterdamAmstelland),
    m("GM0451", "Uithoorn", AmsterdamAmstelland),
    m("GM0479", "Zaanstad", ZaanstreekWaterland),
    m("GM0439", "Purmerend", ZaanstreekWaterland),
    m("GM0385", "Edam-Volendam", ZaanstreekWaterland),
    m("GM0852", "Waterland", ZaanstreekWaterland),
    m("GM0415", "Landsmeer", ZaanstreekWaterland),
    m("GM0431", "Oostzaan", ZaanstreekWaterland),
    m("GM0880", "Wormerland", ZaanstreekWaterland),
    until("GM0370", "Beemster", ZaanstreekWaterland, (2021, 12, 31)),
    m("GM0392", "Haarlem", ZuidKennemerland),
    m("GM0473", "Zandvoort", ZuidKennemerland),
    m("GM0377", "Bloemendaal", ZuidKennemerland),
    m("GM0397", "Heemstede", ZuidKennemerland),
    m("GM0453", "Velsen", Ijmond),
    m("GM0375", "Beverwijk", Ijmond),
    m("GM0396", "Heemskerk", Ijmond),
    m("GM0394", "Haarlemmermeer", Haarlemmermeer),
    m("GM0361", "Alkmaar", Alkmaar),
    m("GM0373", "Bergen", Alkmaar),
    m("GM0383", "Castricum", Alkmaar),
    m("GM0399", "Heiloo", Alkmaar),
    from("GM1980", "Dijk en Waard", Alkmaar, (2022, 1, 1)),
    m("GM0450", "Uitgeest", Alkmaar),
    until("GM0398", "Heerhugowaard", Alkmaar, (2021, 12, 31)),
    until("GM0416", "Langedijk", Alkmaar, (2021, 12, 31)),
    m("GM0400", "Den Helder", KopVanNoordHolland),
    m("GM1911", "Hollands Kroon", KopVanNoordHolland),
    m("GM0441", "Schagen", KopVanNoordHolland),
    m("GM0448", "Texel", KopVanNoordHolland),
    m("GM0405", "Hoorn", WestFriesland),
    m("GM1598", "Koggenland", WestFriesland),
    m("GM0420", "Medemblik", WestFriesland),
    m("GM0498", "Drechterland", WestFriesland),
    m("GM0388", "Enkhuizen", WestFriesland),
    m("GM0432", "Opmeer", WestFriesland),
    m("GM0532", "Stede Broec", WestFriesland),
    m("GM0402", "Hilversum", GooiEnVechtstreek),
    m("GM1942", "Gooise Meren", GooiEnVechtstreek),
    m("GM0406", "Huizen", GooiEnVechtstreek),
    m("GM1696", "Wijdemeren", GooiEnVechtstreek),
    m("GM0417", "Laren", GooiEnVechtstreek),
    m("GM0376", "Blaricum", GooiEnVechtstreek),
    // Weesp joined Amsterdam on 24 March 2022, and so moved to Amsterdam-Amstelland.
    until("GM0457", "Weesp", GooiEnVechtstreek, (2022, 3, 23)),
    from("GM0457", "Weesp", AmsterdamAmstelland, (2022, 3, 24)),
];

/// The municipalities a region has today, central city first.
pub fn current_municipalities(region: Region) -> impl Iterator<Item = &'static Municipality> {
    MUNICIPALITIES
        .iter()
        .filter(move |m| m.region == region && m.current())
}

/// The spans of the municipality `name` names: its name in any case, with or without accents,
/// or its CBS code (`GM0106` or `0106`). Looked up in an index built once.
fn spans(name: &str) -> &'static [&'static Municipality] {
    static INDEX: std::sync::OnceLock<
        std::collections::HashMap<String, Vec<&'static Municipality>>,
    > = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index: std::collections::HashMap<String, Vec<&'static Municipality>> =
            std::collections::HashMap::new();
        for m in MUNICIPALITIES {
            for key in [fold(m.name), m.code[2..].to_owned()] {
                index.entry(key).or_default().push(m);
            }
        }
        index
    });
    let wanted = fold(name);
    let key = match wanted.strip_prefix("gm") {
        Some(code) if code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) => code,
        _ => wanted.as_str(),
    };
    index.get(key).map_or(&[], Vec::as_slice)
}

/// The region `name` (a municipality's name in any case, with or without accents, or its CBS
/// code `GM0106` / `0106`) belonged to on `day`; `None` for a municipality outside the
/// fourteen regions or not known.
pub fn region_of_municipality(name: &str, day: NaiveDate) -> Option<Region> {
    spans(name).iter().find(|m| m.on(day)).map(|m| m.region)
}

/// The municipality `name` (as [`region_of_municipality`] reads it) names: its span on `day`,
/// else its latest span (a municipality outside the federation's regions on that day, such
/// as Weesp before its move for a record of another region); `None` when not known.
pub fn municipality(name: &str, day: NaiveDate) -> Option<&'static Municipality> {
    let spans = spans(name);
    spans.iter().find(|m| m.on(day)).or(spans.last()).copied()
}

/// Every region `name` (as [`region_of_municipality`] reads it) has belonged to, in the
/// list's order; empty for a municipality outside the fourteen regions or not known. A
/// municipality that moved region (Weesp) belongs to both: its successor holds its records
/// from before the move.
pub fn regions_of_municipality(name: &str) -> Vec<Region> {
    let mut regions = Vec::new();
    for m in spans(name) {
        if !regions.contains(&m.region) {
            regions.push(m.region);
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn every_region_has_its_municipalities_and_codes_are_unique_per_day() {
        for region in <Region as crate::CodeList>::ALL {
            assert!(current_municipalities(*region).count() > 0, "{region:?}");
        }
        for a in MUNICIPALITIES {
            assert!(a.code.starts_with("GM") && a.code.len() == 6, "{}", a.code);
            let twins = MUNICIPALITIES
                .iter()
                .filter(|b| b.code == a.code && b.current() && a.current())
                .count();
            assert!(!a.current() || twins == 1, "{} twice today", a.code);
        }
    }

    #[test]
    fn names_and_codes_find_the_region_of_the_day() {
        let today = day(2025, 6, 1);
        assert_eq!(region_of_municipality("Assen", today), Some(Drenthe));
        assert_eq!(region_of_municipality("ASSEN", today), Some(Drenthe));
        assert_eq!(region_of_municipality("GM0106", today), Some(Drenthe));
        assert_eq!(region_of_municipality("0106", today), Some(Drenthe));
        assert_eq!(
            region_of_municipality("Sudwest Fryslan", today),
            Some(Friesland)
        );
        assert_eq!(region_of_municipality("Utrecht", today), None);
        // Weesp moved region with the herindeling.
        assert_eq!(
            region_of_municipality("Weesp", day(2021, 1, 1)),
            Some(GooiEnVechtstreek)
        );
        assert_eq!(
            region_of_municipality("Weesp", today),
            Some(AmsterdamAmstelland)
        );
        assert_eq!(region_of_municipality("Delfzijl", today), None);
        assert_eq!(
            regions_of_municipality("weesp"),
            [GooiEnVechtstreek, AmsterdamAmstelland]
        );
        assert_eq!(regions_of_municipality("GM0106"), [Drenthe]);
        assert!(regions_of_municipality("Utrecht").is_empty());
        assert_eq!(
            region_of_municipality("Delfzijl", day(2019, 1, 1)),
            Some(Groningen)
        );
    }
}
