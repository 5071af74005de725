//! A template call as a node runs it: the template, the purpose it is asked for (doelbinding),
//! its scope, filters and grouping, each a checked domain value. The node builds one from the
//! wire request at its edge; everything behind the edge takes this.

use chrono::NaiveDate;

use crate::{Dimension, Purpose, Template};

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
}

impl Query {
    /// The dimensions it filters on (a filter needs the same grant as grouping by it).
    pub fn filter_dimensions(&self) -> Vec<Dimension> {
        self.filters.iter().map(|f| f.dimension).collect()
    }
}

/// The first and last day a date in a query or an import may be: real calendar dates in this
/// range are compared as dates on every backend.
pub const DATE_RANGE: (NaiveDate, NaiveDate) = (
    match NaiveDate::from_ymd_opt(1900, 1, 1) {
        Some(date) => date,
        None => NaiveDate::MIN,
    },
    match NaiveDate::from_ymd_opt(2100, 12, 31) {
        Some(date) => date,
        None => NaiveDate::MAX,
    },
);
