//! The differencing guard: two released populations that overlap and differ by 1 to
//! `min_cell_count - 1` youths would reveal that small group by subtraction, whatever
//! suppression did to each table on its own. The node keeps a ledger of every population it
//! released to a requester (each total and each released cell) and checks new ones against it.

use std::collections::{BTreeMap, BTreeSet};

use crate::Refusal;

/// Which youths a released number counts: a template, an inclusive period in days (a
/// peildatum is a one-day period) and, per dimension, the values allowed (a dimension not
/// named allows every value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Template code.
    pub template: String,
    /// First day (days since an epoch; only compared).
    pub from: i64,
    /// Last day, inclusive.
    pub to: i64,
    /// Allowed values per dimension code.
    pub filters: BTreeMap<String, BTreeSet<String>>,
}

impl Scope {
    /// Whether some youth could be counted in both scopes.
    pub fn overlaps(&self, other: &Scope) -> bool {
        self.template == other.template
            && self.from <= other.to
            && other.from <= self.to
            && self.filters.iter().all(|(dimension, values)| {
                other
                    .filters
                    .get(dimension)
                    .is_none_or(|others| !values.is_disjoint(others))
            })
    }

    /// This scope restricted to `value` of `dimension` (a cell of a grouped result).
    pub fn narrowed(&self, dimension: &str, values: BTreeSet<String>) -> Scope {
        let mut scope = self.clone();
        let entry = scope.filters.entry(dimension.to_owned());
        match entry {
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(values);
            }
            std::collections::btree_map::Entry::Occupied(mut occupied) => {
                let kept = occupied.get().intersection(&values).cloned().collect();
                occupied.insert(kept);
            }
        }
        scope
    }

    /// The filters as one line for the ledger: `dimension=v1|v2;dimension=v3`, sorted. Codes
    /// never contain `=`, `|` or `;`.
    pub fn filters_text(&self) -> String {
        self.filters
            .iter()
            .map(|(dimension, values)| {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                format!("{dimension}={}", values.join("|"))
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Reads [`Scope::filters_text`] back; `None` when the text is not in that form.
    pub fn parse_filters(text: &str) -> Option<BTreeMap<String, BTreeSet<String>>> {
        let mut filters = BTreeMap::new();
        for part in text.split(';').filter(|p| !p.is_empty()) {
            let (dimension, values) = part.split_once('=')?;
            let values = values
                .split('|')
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect();
            filters.insert(dimension.to_owned(), values);
        }
        Some(filters)
    }
}

/// Refuses when a population about to be released overlaps one released earlier to the same
/// requester and differs from it by 1 to `threshold - 1` youths. Repeating a query (a
/// difference of 0) is fine.
pub fn differencing(
    new: &[(Scope, u64)],
    earlier: &[(Scope, u64)],
    threshold: u32,
) -> Result<(), Refusal> {
    for (scope, count) in new {
        for (old_scope, old_count) in earlier {
            let difference = count.abs_diff(*old_count);
            if difference > 0 && difference < u64::from(threshold) && scope.overlaps(old_scope) {
                return Err(Refusal::Differencing { threshold });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(from: i64, to: i64, filters: &[(&str, &[&str])]) -> Scope {
        Scope {
            template: "youth_in_care".to_owned(),
            from,
            to,
            filters: filters
                .iter()
                .map(|(d, vs)| (d.to_string(), vs.iter().map(|v| v.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn overlap_needs_the_template_the_period_and_every_shared_dimension() {
        let a = scope(0, 364, &[("care_type", &["pleegzorg", "gezinshuis"])]);
        assert!(a.overlaps(&scope(100, 500, &[])));
        assert!(a.overlaps(&scope(0, 364, &[("care_type", &["gezinshuis"])])));
        assert!(!a.overlaps(&scope(365, 700, &[])));
        assert!(!a.overlaps(&scope(0, 364, &[("care_type", &["jeugdhulp_plus"])])));
        let mut other = a.clone();
        other.template = "flows".to_owned();
        assert!(!a.overlaps(&other));
    }

    #[test]
    fn small_differences_between_overlapping_populations_are_refused() {
        let all = (scope(0, 364, &[]), 130);
        let narrower = (scope(0, 364, &[("legal_basis", &["vrijwillig"])]), 129);
        assert_eq!(
            differencing(
                std::slice::from_ref(&narrower),
                std::slice::from_ref(&all),
                10
            ),
            Err(Refusal::Differencing { threshold: 10 })
        );
        assert_eq!(
            differencing(std::slice::from_ref(&all), std::slice::from_ref(&all), 10),
            Ok(())
        );
        let far = (scope(0, 364, &[("legal_basis", &["vrijwillig"])]), 120);
        assert_eq!(differencing(&[far], std::slice::from_ref(&all), 10), Ok(()));
        let disjoint = (scope(400, 700, &[]), 129);
        assert_eq!(differencing(&[disjoint], &[all], 10), Ok(()));
    }

    #[test]
    fn filters_round_trip_through_text() {
        let s = scope(
            0,
            1,
            &[("care_type", &["b", "a"]), ("age_band", &["16-17"])],
        );
        assert_eq!(s.filters_text(), "age_band=16-17;care_type=a|b");
        assert_eq!(Scope::parse_filters(&s.filters_text()), Some(s.filters));
        assert_eq!(Scope::parse_filters(""), Some(BTreeMap::new()));
        assert_eq!(Scope::parse_filters("nonsense"), None);
    }

    #[test]
    fn narrowing_intersects() {
        let s = scope(0, 1, &[("care_type", &["a", "b"])]);
        let cell = s.narrowed("care_type", ["b".to_owned(), "c".to_owned()].into());
        assert_eq!(cell.filters_text(), "care_type=b");
        let cell = s.narrowed("age_band", ["0-5".to_owned()].into());
        assert_eq!(cell.filters_text(), "age_band=0-5;care_type=a|b");
    }
}
