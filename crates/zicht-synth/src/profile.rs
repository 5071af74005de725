//! What makes each synthetic region look like itself: size, municipalities, providers.

use zicht_model::{CodeList, Landsdeel, Region};

/// Relative size of a region: roughly its population aged 0-17, in thousands.
pub fn youth_population_thousands(region: Region) -> u32 {
    use Region::*;
    match region {
        Drenthe => 95,
        Friesland => 130,
        Groningen => 105,
        Twente => 130,
        Ijsselland => 110,
        AmsterdamAmstelland => 210,
        ZaanstreekWaterland => 70,
        ZuidKennemerland => 70,
        Ijmond => 35,
        Haarlemmermeer => 35,
        Alkmaar => 60,
        KopVanNoordHolland => 35,
        WestFriesland => 45,
        GooiEnVechtstreek => 55,
    }
}

/// The region's municipalities (the first is the central city). A data table, hence its
/// length.
pub fn municipalities(region: Region) -> &'static [&'static str] {
    use Region::*;
    match region {
        Drenthe => &[
            "Assen",
            "Emmen",
            "Hoogeveen",
            "Meppel",
            "Coevorden",
            "Midden-Drenthe",
            "Tynaarlo",
            "Noordenveld",
            "Aa en Hunze",
            "Borger-Odoorn",
            "De Wolden",
            "Westerveld",
        ],
        Friesland => &[
            "Leeuwarden",
            "Súdwest-Fryslân",
            "Smallingerland",
            "Heerenveen",
            "De Fryske Marren",
            "Tytsjerksteradiel",
            "Waadhoeke",
            "Opsterland",
            "Ooststellingwerf",
            "Weststellingwerf",
            "Noardeast-Fryslân",
            "Harlingen",
        ],
        Groningen => &[
            "Groningen",
            "Midden-Groningen",
            "Oldambt",
            "Het Hogeland",
            "Westerkwartier",
            "Veendam",
            "Eemsdelta",
            "Stadskanaal",
            "Pekela",
            "Westerwolde",
        ],
        Twente => &[
            "Enschede",
            "Hengelo",
            "Almelo",
            "Borne",
            "Hellendoorn",
            "Oldenzaal",
            "Rijssen-Holten",
            "Wierden",
            "Haaksbergen",
            "Losser",
            "Tubbergen",
            "Twenterand",
            "Hof van Twente",
            "Dinkelland",
        ],
        Ijsselland => &[
            "Zwolle",
            "Deventer",
            "Kampen",
            "Raalte",
            "Hardenberg",
            "Steenwijkerland",
            "Olst-Wijhe",
            "Dalfsen",
            "Staphorst",
            "Zwartewaterland",
            "Ommen",
        ],
        AmsterdamAmstelland => &[
            "Amsterdam",
            "Amstelveen",
            "Aalsmeer",
            "Diemen",
            "Ouder-Amstel",
            "Uithoorn",
        ],
        ZaanstreekWaterland => &[
            "Zaanstad",
            "Purmerend",
            "Edam-Volendam",
            "Waterland",
            "Landsmeer",
            "Oostzaan",
            "Wormerland",
        ],
        ZuidKennemerland => &["Haarlem", "Zandvoort", "Bloemendaal", "Heemstede"],
        Ijmond => &["Velsen", "Beverwijk", "Heemskerk"],
        Haarlemmermeer => &["Haarlemmermeer"],
        Alkmaar => &[
            "Alkmaar",
            "Bergen",
            "Castricum",
            "Heiloo",
            "Dijk en Waard",
            "Uitgeest",
        ],
        KopVanNoordHolland => &["Den Helder", "Hollands Kroon", "Schagen", "Texel"],
        WestFriesland => &[
            "Hoorn",
            "Koggenland",
            "Medemblik",
            "Drechterland",
            "Enkhuizen",
            "Opmeer",
            "Stede Broec",
        ],
        GooiEnVechtstreek => &[
            "Hilversum",
            "Gooise Meren",
            "Huizen",
            "Wijdemeren",
            "Laren",
            "Blaricum",
        ],
    }
}

/// Municipalities of facilities outside the federation (Gelderland, Utrecht, Flevoland).
pub const OUTSIDE_MUNICIPALITIES: &[&str] =
    &["Apeldoorn", "Arnhem", "Nijmegen", "Zeist", "Ede", "Almere"];

/// The region that hosts the landsdeel's JeugdhulpPlus (secure care) facility, and where.
pub fn jeugdhulp_plus_host(landsdeel: Landsdeel) -> (Region, &'static str, &'static str) {
    match landsdeel {
        Landsdeel::NoordNederland => (Region::Groningen, "JeugdhulpPlus Noord", "Groningen"),
        Landsdeel::Overijssel => (Region::Twente, "JeugdhulpPlus Oost", "Hengelo"),
        Landsdeel::NoordHolland => (
            Region::AmsterdamAmstelland,
            "JeugdhulpPlus Noord-Holland",
            "Amsterdam",
        ),
    }
}

/// A generic provider name for a care type in a region (synthetic, not a real organisation).
pub fn provider_name(region: Region, kind: &str) -> String {
    format!("{} {}", kind, region.name_nl())
}
