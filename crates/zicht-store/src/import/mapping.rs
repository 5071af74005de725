//! A region's mapping file (`--mapping mapping.toml`): the names its exports give columns,
//! and its own codes and words for zicht's code lists.
//!
//! ```toml
//! [columns]                     # the export's header -> zicht's column
//! "Geboortedatum" = "birth_date"
//! "Soort hulp" = "care_type"
//!
//! [values.care_type]            # the export's value -> zicht's code
//! "Residentiele jeugdhulp" = "open_residentieel"
//! "43" = "open_residentieel"    # iJw productcategorie 43
//! ```
//!
//! For iJw messages, `[providers]` names the aanbieder behind each AGB code (the messages
//! carry only the code) and where its placements are:
//!
//! ```toml
//! [providers."73730001"]
//! name = "Jeugdhulp Noord"
//! region = "drenthe"            # placement_region
//! municipality = "Assen"        # location_municipality (optional)
//! setting = "op_terrein"        # optional
//! ```
//!
//! Names and values match whatever their case and surrounding spaces. Value maps are allowed
//! for the columns that hold codes only, so a mapping never holds youth data, and an export's
//! value that is neither mapped nor a code can be named in the error.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use zicht_model::{
    After18Funding, Big5Status, CareType, CodeList, Financing, LegalBasis, MeasureKind, Name,
    OriginRegion, OutflowDestination, OutflowProfile, PlacementRegion, Setting,
};

use super::Table;

/// How a code column's value is checked: why it is not a code.
type CodeCheck = fn(&str) -> Result<(), String>;

/// The columns that hold codes from a code list, and how each is checked.
const CODE_COLUMNS: &[(&str, CodeCheck)] = &[
    ("care_type", |t| code::<CareType>(t)),
    ("setting", |t| code::<Setting>(t)),
    ("legal_basis", |t| code::<LegalBasis>(t)),
    ("outflow_destination", |t| code::<OutflowDestination>(t)),
    ("outflow_profile", |t| code::<OutflowProfile>(t)),
    ("origin_region", |t| {
        OriginRegion::parse(t).map(drop).map_err(|e| e.to_string())
    }),
    ("placement_region", |t| {
        PlacementRegion::parse(t)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("financing", |t| code::<Financing>(t)),
    ("after18_funding", |t| code::<After18Funding>(t)),
    ("big5_support", |t| code::<Big5Status>(t)),
    ("big5_wonen", |t| code::<Big5Status>(t)),
    ("big5_werk_school", |t| code::<Big5Status>(t)),
    ("big5_inkomen_schulden", |t| code::<Big5Status>(t)),
    ("big5_zorg_ondersteuning", |t| code::<Big5Status>(t)),
    ("kind", |t| code::<MeasureKind>(t)),
    ("toekomstplan", yes_no),
    ("lokaal_team", yes_no),
    ("clientondersteuner", yes_no),
    ("uit_beeld", yes_no),
];

fn code<C: CodeList>(text: &str) -> Result<(), String> {
    C::parse(text).map(drop).map_err(|e| e.to_string())
}

fn yes_no(text: &str) -> Result<(), String> {
    matches!(text, "ja" | "nee")
        .then_some(())
        .ok_or_else(|| "must be `ja` or `nee`".to_owned())
}

/// Whether `column` holds codes (and so may have a value map, and its values may be named in
/// errors).
pub(crate) fn is_code_column(column: &str) -> bool {
    CODE_COLUMNS.iter().any(|(c, _)| *c == column)
}

/// A loaded, checked mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Folded export header -> canonical column.
    columns: HashMap<String, &'static str>,
    /// Canonical column -> folded export value -> zicht code.
    values: HashMap<&'static str, HashMap<String, String>>,
    /// AGB code -> the aanbieder and where its placements are (iJw).
    providers: HashMap<String, Provider>,
}

/// An aanbieder as a region's mapping names it for iJw messages, which carry its AGB code only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The provider's name, as `placements.provider`.
    pub name: Name,
    /// Where its placements are.
    pub region: PlacementRegion,
    /// The municipality of its location, if one.
    pub municipality: Option<Name>,
    /// On an institution's grounds or in a neighbourhood, if known.
    pub setting: Option<Setting>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    name: String,
    region: String,
    municipality: Option<String>,
    setting: Option<String>,
}

impl ProviderEntry {
    fn check(self, agb: &str) -> Result<Provider, String> {
        let at = |reason: String| format!("[providers.\"{agb}\"] {reason}");
        if agb.len() != 8 || !agb.bytes().all(|b| b.is_ascii_digit()) {
            return Err(at("an AGB code is eight digits".to_owned()));
        }
        Ok(Provider {
            name: Name::parse(&self.name).map_err(|e| at(format!("name: {e}")))?,
            region: PlacementRegion::parse(self.region.trim())
                .map_err(|e| at(format!("region: {e}")))?,
            municipality: self
                .municipality
                .map(|m| Name::parse(&m).map_err(|e| at(format!("municipality: {e}"))))
                .transpose()?,
            setting: self
                .setting
                .map(|s| Setting::parse(s.trim()).map_err(|e| at(format!("setting: {e}"))))
                .transpose()?,
        })
    }
}

/// A mapping file that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct MappingError {
    /// The file as named.
    pub file: String,
    /// What is wrong and where (TOML line and column, or the table and key).
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    columns: HashMap<String, String>,
    #[serde(default)]
    values: HashMap<String, HashMap<String, String>>,
    #[serde(default)]
    providers: HashMap<String, ProviderEntry>,
}

/// Lower case, trimmed, inner runs of spaces as one: how export names and values are matched.
pub(crate) fn fold(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The canonical column named `name` in any table.
fn canonical(name: &str) -> Option<&'static str> {
    Table::ALL
        .iter()
        .flat_map(|t| t.columns().iter().copied())
        .find(|&c| c == name)
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| MappingError {
            file: file.clone(),
            reason: format!("cannot read: {e}"),
        })?;
        Mapping::parse(&text).map_err(|reason| MappingError { file, reason })
    }

    /// Parses and checks a mapping's text.
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let raw: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut mapping = Mapping::default();
        for (from, to) in raw.columns {
            let target = canonical(to.trim()).ok_or_else(|| {
                format!(
                    "[columns] `{from}`: `{to}` is not a zicht column (see docs/import-format.md)"
                )
            })?;
            mapping.columns.insert(fold(&from), target);
        }
        for (column, values) in raw.values {
            let (target, check) = CODE_COLUMNS
                .iter()
                .find(|(c, _)| *c == column)
                .ok_or_else(|| {
                    format!(
                        "[values.{column}]: values can be mapped for the columns that hold codes only: {}",
                        CODE_COLUMNS.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
                    )
                })?;
            let mut map = HashMap::new();
            for (from, to) in values {
                check(to.trim())
                    .map_err(|reason| format!("[values.{column}] `{from}` = `{to}`: {reason}"))?;
                map.insert(fold(&from), to.trim().to_owned());
            }
            mapping.values.insert(target, map);
        }
        for (agb, entry) in raw.providers {
            let provider = entry.check(agb.trim())?;
            mapping.providers.insert(agb.trim().to_owned(), provider);
        }
        Ok(mapping)
    }

    /// The canonical column an export's header names, if the mapping names it.
    pub(crate) fn column(&self, header: &str) -> Option<&'static str> {
        self.columns.get(&fold(header)).copied()
    }

    /// Whether the mapping has a value map for `column`.
    pub(crate) fn maps(&self, column: &str) -> bool {
        self.values.contains_key(column)
    }

    /// The aanbieder with AGB code `agb`, if the mapping names it.
    pub(crate) fn provider(&self, agb: &str) -> Option<&Provider> {
        self.providers.get(agb)
    }

    /// The zicht code an export's `value` of `column` maps to.
    pub(crate) fn value(&self, column: &str, value: &str) -> Option<&str> {
        self.values
            .get(column)
            .and_then(|map| map.get(&fold(value)))
            .map(String::as_str)
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} column name(s), {} provider(s), value maps for {}",
            self.columns.len(),
            self.providers.len(),
            if self.values.is_empty() {
                "no column".to_owned()
            } else {
                let mut columns: Vec<_> = self.values.keys().copied().collect();
                columns.sort_unstable();
                columns.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_names_columns_and_codes() {
        let mapping = Mapping::parse(
            r#"
            [columns]
            "Geboortedatum" = "birth_date"
            [values.care_type]
            "Residentiele  jeugdhulp" = "open_residentieel"
            "43" = "open_residentieel"
            "#,
        )
        .unwrap();
        assert_eq!(mapping.column(" geboortedatum "), Some("birth_date"));
        assert_eq!(
            mapping.value("care_type", "residentiele jeugdhulp"),
            Some("open_residentieel")
        );
        assert_eq!(mapping.value("care_type", "44"), None);
        assert!(mapping.maps("care_type") && !mapping.maps("legal_basis"));
    }

    #[test]
    fn a_bad_mapping_says_where() {
        let error = Mapping::parse("[values.care_type]\n\"43\" = \"residentieel\"\n").unwrap_err();
        assert!(
            error.contains("[values.care_type] `43` = `residentieel`"),
            "{error}"
        );
        let error = Mapping::parse("[values.youth_id]\n\"a\" = \"b\"\n").unwrap_err();
        assert!(error.contains("columns that hold codes only"), "{error}");
        let error = Mapping::parse("[columns]\n\"Geboortedatum\" = \"geboorte\"\n").unwrap_err();
        assert!(error.contains("not a zicht column"), "{error}");
        let error = Mapping::parse("[colums]\n").unwrap_err();
        assert!(error.contains("line 1"), "{error}");
    }
}
