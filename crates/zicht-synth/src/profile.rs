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

/// The region's municipalities today (the first is the central city), from the list the
/// import's region check uses.
pub fn municipalities(region: Region) -> &'static [&'static str] {
    static LISTS: std::sync::OnceLock<Vec<Vec<&'static str>>> = std::sync::OnceLock::new();
    let lists = LISTS.get_or_init(|| {
        Region::ALL
            .iter()
            .map(|&r| {
                zicht_model::current_municipalities(r)
                    .map(|m| m.name)
                    .collect()
            })
            .collect()
    });
    let index = Region::ALL.iter().position(|&r| r == region).unwrap_or(0);
    lists.get(index).map_or(&[], Vec::as_slice)
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
