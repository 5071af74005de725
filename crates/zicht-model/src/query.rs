//! A template call as a node runs it: the template, the purpose it is asked for (doelbinding),
//! its scope, filters and grouping, each a checked domain value. The node builds one from the
//! wire request at its edge; everything behind the edge takes this.

use chrono::NaiveDate;

use crate::{CareType, CodeList, Dimension, Landsdeel, Network, Purpose, Region, Template};

/// The days a query is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An inclusive period (`youth_in_care`, `flows`, `length_of_stay`).
    Period {
        /// First day.
        from: NaiveDate,
        /// Last day, not before `from`.
        to: NaiveDate,
    },
    /// A reference date (`capacity`, `transition18`).
    Peildatum(NaiveDate),
}

impl Scope {
    /// The day the query is about: the period's last day or the peildatum (network
    /// membership and ages are taken then).
    pub fn reference_date(self) -> NaiveDate {
        match self {
            Scope::Period { to, .. } => to,
            Scope::Peildatum(date) => date,
        }
    }
}

/// Keep the units whose `dimension` takes one of `values` (codes of its list, each once), or,
/// when `exclude`, the units whose `dimension` takes none of them (`placement_region!=twente`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The dimension, one of the template's.
    pub dimension: Dimension,
    /// The values kept (or, when `exclude`, left out), at least one.
    pub values: Vec<String>,
    /// Whether the filter keeps the other values (`!=`).
    pub exclude: bool,
}

impl Filter {
    /// Whether the filter keeps units whose dimension takes `value`.
    pub fn keeps(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value) != self.exclude
    }

    /// Whether the filter is in the vocabulary a perturbed release takes: one value, or
    /// exactly one group its code lists define ([`filter_groups`] on `on`), kept or left out.
    /// Arbitrary sets of values would let a requester write one small set as many different
    /// differences of larger ones; groups and single values give each set few.
    pub fn in_vocabulary(&self, on: NaiveDate) -> bool {
        if self.values.len() <= 1 {
            return true;
        }
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        values.dedup();
        filter_groups(self.dimension, on)
            .into_iter()
            .any(|mut group| {
                group.sort_unstable();
                group == values
            })
    }
}

/// The groups of values of `dimension` its code lists define, as of `on`: the care types of
/// each stay group (pleegzorg, JeugdhulpPlus, andere verblijfszorg, ambulant), the regions of
/// each landsdeel and the member regions of each network. Other dimensions have none.
pub fn filter_groups(dimension: Dimension, on: NaiveDate) -> Vec<Vec<&'static str>> {
    match dimension {
        Dimension::CareType => crate::StayGroup::ALL
            .iter()
            .map(|group| {
                CareType::ALL
                    .iter()
                    .filter(|care| care.stay_group() == *group)
                    .map(|care| care.code())
                    .collect()
            })
            .collect(),
        Dimension::OriginRegion | Dimension::PlacementRegion => {
            let landsdelen = Landsdeel::ALL.iter().map(|landsdeel| {
                Region::ALL
                    .iter()
                    .filter(|region| region.landsdeel() == *landsdeel)
                    .map(|region| region.code())
                    .collect()
            });
            let networks = Network::ALL
                .iter()
                .map(|network| network.members_on(on).map(|region| region.code()).collect());
            landsdelen.chain(networks).collect()
        }
        _ => Vec::new(),
    }
}

/// A checked template call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The template.
    pub template: Template,
    /// The purpose it is asked for.
    pub purpose: Purpose,
    /// Its period or peildatum.
    pub scope: Scope,
    /// Its filters, each dimension once.
    pub filters: Vec<Filter>,
    /// Its group-by dimensions, in order, each once.
    pub group_by: Vec<Dimension>,
    /// The record fields asked for (`consented_records` only; empty: every field the grant
    /// allows), each once, from [`crate::Consent::field_list`].
    pub fields: Vec<&'static str>,
    /// `member_region` was asked (first in the group-by): the asking node's Outway lists each
    /// member's published cells beside their sum. A data-owning node answers for itself, so it
    /// ignores it; it is never a grouping of the data and needs no grant.
    pub by_member: bool,
}

impl Query {
    /// The dimensions it filters on (a filter needs the same grant as grouping by it).
    pub fn filter_dimensions(&self) -> Vec<Dimension> {
        self.filters.iter().map(|f| f.dimension).collect()
    }
}

#[cfg(test)]
mod vocabulary_tests {
    use super::*;

    fn filter(dimension: Dimension, values: &[&str], exclude: bool) -> Filter {
        Filter {
            dimension,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            exclude,
        }
    }

    #[test]
    fn a_filter_takes_one_value_or_one_group_of_its_code_lists() {
        let on = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let ok = |d, values: &[&str], exclude| filter(d, values, exclude).in_vocabulary(on);
        assert!(ok(Dimension::LegalBasis, &["jeugdwet_vrijwillig"], false));
        assert!(ok(Dimension::LegalBasis, &["jeugdwet_vrijwillig"], true));
        assert!(!ok(
            Dimension::FlowKind,
            &["uitstroom", "doorplaatsing"],
            false
        ));
        // A landsdeel and a network, in any order, kept or left out.
        assert!(ok(
            Dimension::OriginRegion,
            &["groningen", "drenthe", "friesland"],
            false
        ));
        assert!(ok(
            Dimension::PlacementRegion,
            &["twente", "ijsselland"],
            true
        ));
        assert!(!ok(
            Dimension::PlacementRegion,
            &["drenthe", "groningen"],
            false
        ));
        // The care types of a stay group.
        let plus: Vec<&str> = CareType::ALL
            .iter()
            .filter(|c| c.stay_group() == crate::StayGroup::JeugdhulpPlus)
            .map(|c| c.code())
            .collect();
        assert!(ok(Dimension::CareType, &plus, false));
        assert!(filter_groups(Dimension::AgeBand, on).is_empty());
    }
}
