//! Code lists from the reference data as typed enums, and the one way to parse them.
//!
//! Every list is an enum made by [`code_list!`]; parsing folds case, diacritics and separators
//! (`Jeugdhulp-Plus` reads as `jeugdhulp_plus`) and, on a miss, names the closest valid code.

use std::fmt;

/// A code that is not in its code list, with the closest valid code as a suggestion when one
/// is close, and otherwise the valid codes.
///
/// The rejected text itself is deliberately not kept: error messages never repeat input that
/// may be youth data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {list} code; {}", self.hint())]
pub struct UnknownCode {
    /// Which code list was searched, e.g. `care_type`.
    pub list: &'static str,
    /// The valid code closest to the input, if one is close: the input (folded) is part of
    /// it, or it is within a few edits (about one in five characters).
    pub closest: Option<&'static str>,
    /// Every valid code, in reference order.
    pub valid: Vec<&'static str>,
}

impl UnknownCode {
    /// What to write instead: the closest valid code, or the valid codes.
    pub fn hint(&self) -> String {
        // A short list is shown whole, even beside the closest code: the right one may be
        // another.
        const FEW: usize = 8;
        match self.closest {
            Some(code) if self.valid.len() <= FEW => format!(
                "closest valid code is `{code}`; valid codes are {}",
                self.valid.join(", ")
            ),
            Some(code) => format!("closest valid code is `{code}`"),
            None => format!("valid codes are {}", self.valid.join(", ")),
        }
    }
}

/// Common behaviour of every code list enum.
pub trait CodeList: Sized + Copy + 'static {
    /// Name of the list as used in messages and CSV column docs.
    const LIST: &'static str;
    /// Every member in reference order.
    const ALL: &'static [Self];
    /// The canonical code.
    fn code(self) -> &'static str;
    /// Dutch display name from the reference data.
    fn name_nl(self) -> &'static str;
    /// Extra spellings accepted on input (region aliases); empty for most lists.
    fn aliases(self) -> &'static [&'static str] {
        &[]
    }

    /// The member whose canonical code is exactly `code` (no folding, no aliases): for codes
    /// that come from the code lists themselves, on the wire or in configuration.
    fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.code() == code)
    }

    /// Parses a code (or alias), folding case, diacritics and separators.
    fn parse(text: &str) -> Result<Self, UnknownCode> {
        // Canonical codes are by far the most common input: no allocation for them.
        if let Some(member) = Self::from_code(text) {
            return Ok(member);
        }
        let wanted = fold(text);
        let candidates = Self::ALL
            .iter()
            .flat_map(|&member| spellings(member).map(move |s| (s, member.code())));
        let mut folded_candidates = Vec::new();
        for (spelling, code) in candidates {
            let folded = fold(spelling);
            if folded == wanted {
                // Every spelling of a member belongs to that member.
                if let Some(&member) = Self::ALL.iter().find(|m| m.code() == code) {
                    return Ok(member);
                }
            }
            folded_candidates.push((folded, code));
        }
        Err(UnknownCode {
            list: Self::LIST,
            closest: nearest(&wanted, &folded_candidates),
            valid: Self::ALL.iter().map(|m| m.code()).collect(),
        })
    }
}

/// The code among `candidates` (each a folded spelling and the code it stands for) close to
/// `wanted` (folded): within about one edit in five characters, or else the shortest code
/// that has `wanted` in it (`origin` in `origin_region`); none when nothing is close, so a
/// suggestion never misleads.
pub fn nearest(wanted: &str, candidates: &[(String, &'static str)]) -> Option<&'static str> {
    let mut best: Option<(usize, &'static str)> = None;
    let mut containing: Option<&'static str> = None;
    for (folded, code) in candidates {
        if wanted.chars().count() >= 3
            && folded.contains(wanted)
            && containing.is_none_or(|c| code.len() < c.len())
        {
            containing = Some(code);
        }
        let distance = levenshtein(folded, wanted);
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, code));
        }
    }
    let close = 1 + wanted.chars().count() / 5;
    best.filter(|(d, _)| *d <= close)
        .map(|(_, code)| code)
        .or(containing)
}

/// `text` as one of `codes` (a closed list that is no code list of its own, such as a
/// dimension's values), folded as import folds codes.
pub fn parse_among(
    list: &'static str,
    codes: &[&'static str],
    text: &str,
) -> Result<&'static str, UnknownCode> {
    if let Some(code) = codes.iter().find(|c| **c == text) {
        return Ok(code);
    }
    let wanted = fold(text);
    let folded: Vec<(String, &'static str)> = codes.iter().map(|c| (fold(c), *c)).collect();
    if let Some((_, code)) = folded.iter().find(|(f, _)| *f == wanted) {
        return Ok(code);
    }
    Err(UnknownCode {
        list,
        closest: nearest(&wanted, &folded),
        valid: codes.to_vec(),
    })
}

/// Every accepted spelling of a member: its code and its aliases. (Region names need no entry:
/// each folds to its code, which `code_lists_match_reference_csv` relies on.)
fn spellings<T: CodeList>(member: T) -> impl Iterator<Item = &'static str> {
    std::iter::once(member.code()).chain(member.aliases().iter().copied())
}

/// Folds text for code comparison: lower case, common Dutch/Frisian diacritics removed, and
/// every run of characters other than letters and digits turned into one `-`.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_separator = false;
    for c in text.chars() {
        let c = match c {
            'â' | 'á' | 'à' | 'ä' | 'Â' | 'Á' | 'À' | 'Ä' => 'a',
            'ê' | 'é' | 'è' | 'ë' | 'Ê' | 'É' | 'È' | 'Ë' => 'e',
            'î' | 'í' | 'ì' | 'ï' | 'Î' | 'Í' | 'Ì' | 'Ï' => 'i',
            'ô' | 'ó' | 'ò' | 'ö' | 'Ô' | 'Ó' | 'Ò' | 'Ö' => 'o',
            'û' | 'ú' | 'ù' | 'ü' | 'Û' | 'Ú' | 'Ù' | 'Ü' => 'u',
            c => c,
        };
        if c.is_alphanumeric() {
            if pending_separator && !out.is_empty() {
                out.push('-');
            }
            pending_separator = false;
            out.extend(c.to_lowercase());
        } else {
            pending_separator = true;
        }
    }
    out
}

/// Edit distance between two strings, by characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Declares a code list enum with its codes and Dutch names, in reference order.
macro_rules! code_list {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $list:literal {
            $( $(#[$vmeta:meta])* $variant:ident = ($code:literal, $name_nl:literal $(, [$($alias:literal),*])?) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( #[doc = $name_nl] $(#[$vmeta])* $variant ),+
        }

        impl $crate::codes::CodeList for $name {
            const LIST: &'static str = $list;
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn code(self) -> &'static str {
                match self { $(Self::$variant => $code),+ }
            }
            fn name_nl(self) -> &'static str {
                match self { $(Self::$variant => $name_nl),+ }
            }
            fn aliases(self) -> &'static [&'static str] {
                match self { $(Self::$variant => &[$($($alias),*)?]),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::codes::CodeList::code(*self))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::codes::UnknownCode;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                <Self as $crate::codes::CodeList>::parse(text)
            }
        }
    };
}
pub(crate) use code_list;

/// Displays a list of codes joined by `, ` (for help texts and messages).
pub struct Codes<T: CodeList>(pub &'static [T]);

impl<T: CodeList> fmt::Display for Codes<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, member) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(member.code())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        After18Funding, Big5Domain, Big5Status, CareType, LegalBasis, Network, OutflowDestination,
        OutflowProfile, Region,
    };

    /// Rows of an embedded reference CSV (simple: the reference files quote nothing).
    fn rows(csv: &str) -> Vec<Vec<&str>> {
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect()
    }

    fn codes_of<T: CodeList>() -> Vec<(&'static str, &'static str)> {
        T::ALL.iter().map(|m| (m.code(), m.name_nl())).collect()
    }

    #[test]
    fn code_lists_match_reference_csv() {
        let pairs = |csv: &'static str| -> Vec<(&'static str, &'static str)> {
            rows(csv).into_iter().map(|r| (r[0], r[1])).collect()
        };
        assert_eq!(
            codes_of::<CareType>(),
            pairs(include_str!("../reference/care_types.csv"))
        );
        assert_eq!(
            codes_of::<LegalBasis>(),
            pairs(include_str!("../reference/legal_bases.csv"))
        );
        assert_eq!(
            codes_of::<OutflowDestination>(),
            pairs(include_str!("../reference/outflow_destinations.csv"))
        );
        assert_eq!(
            codes_of::<Region>(),
            pairs(include_str!("../reference/regions.csv"))
        );

        let transition = rows(include_str!("../reference/transition18.csv"));
        let of_kind = |kind: &str| -> Vec<(&str, &str)> {
            transition
                .iter()
                .filter(|r| r[0] == kind)
                .map(|r| (r[1], r[2]))
                .collect()
        };
        assert_eq!(codes_of::<After18Funding>(), of_kind("after18_funding"));
        assert_eq!(codes_of::<Big5Domain>(), of_kind("big5_domain"));
        assert_eq!(codes_of::<Big5Status>(), of_kind("big5_status"));
        assert_eq!(codes_of::<OutflowProfile>(), of_kind("outflow_profile"));
    }

    #[test]
    fn care_type_attributes_match_reference_csv() {
        for row in rows(include_str!("../reference/care_types.csv")) {
            let care = CareType::parse(row[0]).unwrap();
            assert_eq!(care.is_residential().to_string(), row[3], "{}", row[0]);
            assert_eq!(care.is_closed().to_string(), row[4], "{}", row[0]);
            assert_eq!(care.stay_group().code(), row[5], "{}", row[0]);
        }
    }

    #[test]
    fn region_attributes_and_aliases_match_reference_csv() {
        for row in rows(include_str!("../reference/regions.csv")) {
            let region = Region::parse(row[0]).unwrap();
            assert_eq!(region.landsdeel().name(), row[2]);
            let aliases: Vec<&str> = row[3].split('|').filter(|a| !a.is_empty()).collect();
            assert_eq!(region.aliases(), aliases.as_slice());
            for alias in aliases {
                assert_eq!(Region::parse(alias), Ok(region), "alias {alias}");
            }
        }
    }

    #[test]
    fn network_membership_matches_reference_csv() {
        let mut expected = Vec::new();
        for row in rows(include_str!("../reference/networks.csv")) {
            expected.push((
                row[0].to_owned(),
                row[2].to_owned(),
                row[3].to_owned(),
                row[4].to_owned(),
            ));
        }
        let mut actual = Vec::new();
        for &network in Network::ALL {
            for m in network.memberships() {
                actual.push((
                    network.code().to_owned(),
                    m.region.code().to_owned(),
                    m.valid_from.to_string(),
                    m.valid_to.map(|d| d.to_string()).unwrap_or_default(),
                ));
            }
        }
        expected.sort();
        actual.sort();
        assert_eq!(actual, expected);
    }

    #[test]
    fn parsing_folds_case_separators_and_diacritics() {
        assert_eq!(
            CareType::parse("Jeugdhulp-Plus"),
            Ok(CareType::JeugdhulpPlus)
        );
        assert_eq!(CareType::parse(" pleegzorg "), Ok(CareType::Pleegzorg));
        assert_eq!(Region::parse("Fryslân"), Ok(Region::Friesland));
        assert_eq!(Region::parse("fryslan"), Ok(Region::Friesland));
        assert_eq!(Region::parse("Midden-Kennemerland"), Ok(Region::Ijmond));
        assert_eq!(Region::parse("Noord-Kennemerland"), Ok(Region::Alkmaar));
        assert_eq!(
            Region::parse("Amsterdam/Amstelland"),
            Ok(Region::AmsterdamAmstelland)
        );
        assert_eq!(
            Region::parse("Gooi- en Vechtstreek"),
            Ok(Region::GooiEnVechtstreek)
        );
        assert_eq!(
            Region::parse("Kop van Noord-Holland"),
            Ok(Region::KopVanNoordHolland)
        );
        assert_eq!(Region::parse("RIGG"), Ok(Region::Groningen));
        assert_eq!(OutflowProfile::parse("3"), Ok(OutflowProfile::P3));
    }

    #[test]
    fn unknown_code_names_the_closest_valid_code() {
        let error = CareType::parse("pleegzrg").unwrap_err();
        assert_eq!(error.closest, Some("pleegzorg"));
        assert_eq!(
            error.to_string(),
            "unknown care_type code; closest valid code is `pleegzorg`"
        );
        // A short list is named whole beside the closest code.
        let error = crate::AgeBand::parse("16-18").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("valid codes are 0-5, 6-11, 12-15, 16-17, 18+"),
            "{error}"
        );
        assert_eq!(
            Region::parse("Frieslnd").unwrap_err().closest,
            Some("friesland")
        );
        assert_eq!(
            Region::parse("Midden Kenemerland").unwrap_err().closest,
            Some("ijmond")
        );
        assert_eq!(
            LegalBasis::parse("voogd").unwrap_err().closest,
            Some("voogdij")
        );
        // A part of a code is close; a far one is not, and the message lists the codes.
        assert_eq!(
            crate::Purpose::parse("sturing").unwrap_err().closest,
            Some("bovenregionale-sturing")
        );
        let far = crate::StayGroup::parse("anders").unwrap_err();
        assert_eq!(far.closest, None);
        assert_eq!(
            far.to_string(),
            "unknown stay_group code; valid codes are pleegzorg, jeugdhulp_plus, andere_verblijfzorg, ambulant"
        );
        assert!(OutflowProfile::parse("5").is_err());
    }

    #[test]
    fn fold_and_levenshtein() {
        assert_eq!(fold("  Gooi- en  Vechtstreek "), "gooi-en-vechtstreek");
        assert_eq!(fold("jeugdhulp_plus"), "jeugdhulp-plus");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("abc", "abc"), 0);
    }
}
