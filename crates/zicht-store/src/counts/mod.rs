//! The person-count templates: `youth_in_care`, `flows`, `length_of_stay` and `transition18`.
//! They run in memory over the store's snapshot of the counted tables (`engine`, kept up to
//! date with the database by the data generation, see `snapshot`); the same definitions as
//! plain SQL (`sql`, with the `reference-sql` feature) are the oracle the engine is tested
//! against on both backends. Only aggregates leave this module; the node puts them through
//! disclosure control before anything leaves the node.
//!
//! One unit, one definition: each template first picks the unit it counts (a youth's counted
//! placement, event or check), and only then applies filters and groupings to that unit. A
//! filter therefore partitions the units exactly as a grouping does (`A` + `B` = `A,B`), and
//! a cell of a filtered table holds the same youths as the same cell unfiltered.
//! - `youth_in_care`: youths with a placement overlapping the period (start on or before its
//!   last day, no end or an end on or after its first day), each counted with their most
//!   recent such placement. Age is taken at the last day.
//! - `flows`: instroom is a placement starting in the period with no placement of the youth
//!   ending in the [`zicht_model::FlowKind::TRANSFER_DAYS`] days before; a placement ending in the period
//!   is doorplaatsing when another placement of the youth starts within that many days after
//!   its end, else uitstroom. Each youth counts once per kind, with their latest such event.
//! - `length_of_stay`: youths whose placement ended in the period, each with their most
//!   recently ended stay; days are end minus start. Median and p90 are the values at ranks
//!   ceil(n/2) and ceil(0.9 n) (as `percentile_disc`).
//! - `transition18`: youths with a check in the half year up to the peildatum, each with their
//!   latest check (once per BIG5 domain when grouped or filtered by domain).
//! - `measures`: youths with a vrijheidsbeperkende maatregel starting in the period, each with
//!   their latest measure (once per kind, with the latest of that kind, when grouped or
//!   filtered by `measure_kind`); the group also counts the units' measures in the period (of
//!   the unit's kind, when per kind). "Latest" is by start day, then provider and facility.
//! - `youth_in_care`'s `separatie`: whether the youth had a separatie starting in the period.
//!
//! Where a youth has two candidate rows that the definition ranks equally, the rest of the
//! table's key decides, compared bytewise (care type, then provider, then start date).
//!
//! Every group also carries the sum of its units' record keys (the cell key method), from the
//! key function the caller passes (see `record_keys`).

mod engine;
#[cfg(feature = "reference-sql")]
mod sql;

use chrono::NaiveDate;
use zicht_model::{CodeList, Dimension, Filter, Template};

use crate::{RecordKeys, Store, StoreError};

/// The scope of a person-count query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountScope {
    /// An inclusive period (`youth_in_care`, `flows`, `length_of_stay`).
    Period {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// A reference date (`transition18`).
    Peildatum(NaiveDate),
}

/// A person-count query: the template, its scope, filters (dimension and allowed values) and
/// group-by dimensions.
#[derive(Debug, Clone, Copy)]
pub struct CountQuery<'a> {
    /// The template.
    pub template: Template,
    /// Period or peildatum.
    pub scope: CountScope,
    /// Keep only units whose dimension takes one of the values.
    pub filters: &'a [Filter],
    /// Group by these, in order.
    pub group_by: &'a [Dimension],
}

/// Length-of-stay figures of one group, before the dominance rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StayFigures {
    /// Sum of days over the group's stays.
    pub sum_days: i64,
    /// The longest stay.
    pub max_days: i64,
    /// Median days (the value at rank ceil(n/2)).
    pub median_days: i64,
    /// 90th percentile days (the value at rank ceil(0.9 n)).
    pub p90_days: i64,
}

/// The measures of one `measures` group, before the dominance rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureFigures {
    /// The group's measures (each unit's measures in the period: of its kind, when per kind).
    pub measures: i64,
    /// The most measures one unit holds.
    pub max_per_youth: i64,
}

/// One non-empty group of a person-count result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    /// One value per group-by dimension, in request order.
    pub key: Vec<String>,
    /// Youths counted in the group.
    pub youths: i64,
    /// The sum of their record keys (the cell key is this modulo 2^32); 0 when counted
    /// without the key function.
    pub record_key_sum: i64,
    /// `length_of_stay` only.
    pub stay: Option<StayFigures>,
    /// `measures` only.
    pub measures: Option<MeasureFigures>,
}

/// Why a person-count query cannot be built. Messages name the parameter, never data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCountQuery {
    /// The template does not count persons this way.
    #[error("template {0} is not a person-count template")]
    NotCounting(&'static str),
    /// The dimension is not in the template's closed list.
    #[error("template {template} cannot group or filter by {dimension}")]
    Dimension {
        /// Template code.
        template: &'static str,
        /// Dimension code.
        dimension: &'static str,
    },
    /// A period template got a peildatum or the other way round, or the period is reversed.
    #[error("template {template} needs {needs}")]
    Scope {
        /// Template code.
        template: &'static str,
        /// What it needs.
        needs: &'static str,
    },
    /// BIG5 statuses only add up within one domain.
    #[error("big5_status needs big5_domain in group_by or a filter on exactly one big5_domain")]
    Big5StatusWithoutDomain,
}

/// Checks that the template can answer the query: a person-count template, the right scope,
/// only its own dimensions, and BIG5 statuses within one domain.
fn validate(query: &CountQuery<'_>) -> Result<(), InvalidCountQuery> {
    let template = query.template;
    let needs = |needs| InvalidCountQuery::Scope {
        template: template.code(),
        needs,
    };
    match (template, query.scope) {
        (Template::Capacity | Template::ConsentedRecords, _) => {
            return Err(InvalidCountQuery::NotCounting(template.code()))
        }
        (Template::Transition18, CountScope::Peildatum(_)) => {}
        (Template::Transition18, CountScope::Period { .. }) => return Err(needs("a peildatum")),
        (_, CountScope::Peildatum(_)) => return Err(needs("a period")),
        (_, CountScope::Period { from, to }) if from > to => {
            return Err(needs("a period whose first day is not after its last"))
        }
        (_, CountScope::Period { .. }) => {}
    }
    if template == Template::Transition18
        && query.uses(Dimension::Big5Status)
        && !query.group_by.contains(&Dimension::Big5Domain)
        && !query
            .filters
            .iter()
            .any(|f| f.dimension == Dimension::Big5Domain && f.values.len() == 1 && !f.exclude)
    {
        return Err(InvalidCountQuery::Big5StatusWithoutDomain);
    }
    let dimensions = query
        .group_by
        .iter()
        .chain(query.filters.iter().map(|f| &f.dimension));
    for &dimension in dimensions {
        if !template.dimensions().contains(&dimension) {
            return Err(InvalidCountQuery::Dimension {
                template: template.code(),
                dimension: dimension.code(),
            });
        }
    }
    Ok(())
}

impl CountQuery<'_> {
    /// Whether the query groups or filters by `dimension`.
    fn uses(&self, dimension: Dimension) -> bool {
        self.group_by.contains(&dimension) || self.filters.iter().any(|f| f.dimension == dimension)
    }
}

impl Store {
    /// The values `measures` lists for an open dimension (`provider` or `facility`; none for
    /// others): each JeugdhulpPlus one in `capacity` and each one named by any stored measure,
    /// whatever the period, in byte order. So a table lists the same cells, zeros included,
    /// for every period.
    pub async fn measure_names(&self, dimension: Dimension) -> Result<Vec<String>, StoreError> {
        let column = match dimension {
            Dimension::Provider => "provider",
            Dimension::Facility => "facility",
            _ => return Ok(Vec::new()),
        };
        let sql = format!(
            "SELECT {column} FROM capacity WHERE care_type = 'jeugdhulp_plus' \
             UNION SELECT {column} FROM measures"
        );
        let mut names: Vec<String> = crate::on_pool!(self, pool => sqlx::query_scalar(&sql)
            .fetch_all(pool)
            .await
            .map_err(crate::query_error("read the names measures list")))?;
        names.sort_unstable();
        Ok(names)
    }

    /// Reads the counted tables into memory now, with record keys from `keys`, so the next
    /// count does not wait for it (a node calls this at start).
    pub async fn prepare_counts(&self, keys: Option<&RecordKeys>) -> Result<(), StoreError> {
        self.snapshot(keys).await.map(|_| ())
    }

    /// Runs a person-count template over the snapshot of the data as it is now; each group's
    /// record keys come from `keys` (without, the sums are 0: for exact counts). The outer
    /// `Result` is the store failing; the inner one a query the template cannot answer. Only
    /// non-empty groups are returned, ordered by their key (bytewise).
    pub async fn person_counts(
        &self,
        query: &CountQuery<'_>,
        keys: Option<&RecordKeys>,
    ) -> Result<Result<Vec<CountRow>, InvalidCountQuery>, StoreError> {
        if let Err(invalid) = validate(query) {
            return Ok(Err(invalid));
        }
        let snapshot = self.snapshot(keys).await?;
        let mut rows = engine::person_counts(&snapshot, query);
        if keys.is_none() {
            // A snapshot built with keys also serves exact counts; their sums say nothing.
            rows.iter_mut().for_each(|row| row.record_key_sum = 0);
        }
        Ok(Ok(rows))
    }
}
