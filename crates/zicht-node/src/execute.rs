//! Runs a template on the node's own store and puts the result through disclosure control:
//! the one path from data to anything that leaves a node, shared by the `Inway` service and
//! `zicht query` on the node itself.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, Months};

use zicht_model::{CareType, CodeList, Dimension, NaiveDate, Region, Template};
use zicht_privacy::{differencing, magnitudes, protect, Cell, Magnitudes, Scope, Settings, Table};
use zicht_proto::v1 as pb;

use crate::audit::{entries, Logged, Operation};
use zicht_store::{
    CountQuery, CountRow, CountScope, LedgerEntry, ReleaseEntry, Store, StoreError,
    UnsupportedDimension,
};

/// What a node enforces when it releases person counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Disclosure {
    /// The disclosure settings (checked against the network floor when loaded).
    pub settings: Settings,
    /// The region whose data the node holds: `origin_region` lists only it and `onbekend`
    /// (and any other origin present), since under the woonplaatsbeginsel a region holds its
    /// own youths. `None` lists every region.
    pub region: Option<Region>,
}

/// A result ready to leave, and the populations to record in the ledger when it does.
#[derive(Debug, Clone)]
pub struct Released {
    /// The protected result.
    pub result: pb::ProtectedResult,
    /// One entry per released population (the total and every released cell).
    pub ledger: Vec<LedgerEntry>,
}

/// Why a template produced nothing to release.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The request's parameters do not fit the template.
    #[error("{0}")]
    Invalid(String),
    /// Disclosure control refused; the message names the rule.
    #[error(transparent)]
    Refused(#[from] zicht_privacy::Refusal),
    /// The template exists but this node cannot run it.
    #[error("template {0} is registered but not executable on this node yet")]
    NotExecutable(Template),
    /// The store failed.
    #[error("the node could not run the query")]
    Store(#[source] StoreError),
    /// A ledger entry cannot be read back; the guard fails closed.
    #[error("the node's privacy ledger holds an entry it cannot read; nothing was released")]
    CorruptLedger,
}

impl ExecuteError {
    /// The short name of what refused, for the release log.
    pub fn rule(&self) -> &'static str {
        match self {
            ExecuteError::Invalid(_) => "limit-or-invalid",
            ExecuteError::Refused(refusal) => refusal.rule(),
            ExecuteError::NotExecutable(_) => "not-executable",
            ExecuteError::Store(_) => "store-error",
            ExecuteError::CorruptLedger => "ledger-error",
        }
    }
}

/// One template call on a node's own data.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The node's store.
    pub store: &'a Store,
    /// What the node enforces.
    pub disclosure: &'a Disclosure,
    /// The template (already checked against limits and policy).
    pub template: Template,
    /// The request as it came.
    pub query: &'a pb::QueryRequest,
    /// Its group-by dimensions, checked against the template.
    pub group_by: &'a [Dimension],
    /// Whose ledger the differencing guard reads and extends (a PeerID, or `local`).
    pub requester: &'a str,
    /// The day of the release, for the ledger's window.
    pub today: NaiveDate,
}

/// Runs a template call: the template's SQL, then disclosure control for person counts.
pub async fn execute(call: &Call<'_>) -> Result<Released, ExecuteError> {
    match call.template {
        Template::Capacity => capacity(call.store, call.query, call.group_by).await,
        Template::ConsentedRecords => Err(ExecuteError::NotExecutable(call.template)),
        _ => person_counts(call).await,
    }
}

/// Writes the release log entry of one request, its audit records and, when something is
/// released, its ledger rows, in one transaction. Call it before the answer leaves; an error
/// means it must not. `outcome` is the released result or the name of the refusing rule.
pub async fn log_outcome(
    store: &Store,
    operation: &Operation,
    requester: &str,
    role: &str,
    query: &pb::QueryRequest,
    outcome: Result<&Released, &str>,
) -> Result<(), StoreError> {
    let text = match outcome {
        Ok(_) => "released".to_owned(),
        Err(rule) => format!("refused: {rule}"),
    };
    let logged = Logged {
        operation,
        requester,
        role,
        query,
        outcome: &text,
        result: outcome.ok().map(|released| &released.result),
        ledger: outcome.map_or(&[][..], |released| &released.ledger[..]),
        activity: None,
    };
    log_entry(store, &logged).await
}

/// Writes one release log entry (outcome `released`, `refused: <rule>`, `forwarded to ...`),
/// its processing and access records, and its ledger rows, in one transaction.
pub async fn log_entry(store: &Store, logged: &Logged<'_>) -> Result<(), StoreError> {
    #[cfg(feature = "unaudited")]
    if UNAUDITED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    // The request's own strings may be anything: logged shortened, never echoed to callers.
    let short = |text: &str| text.chars().take(64).collect::<String>();
    let query = logged.query;
    let entry = ReleaseEntry {
        peer_id: logged.requester.to_owned(),
        role: logged.role.to_owned(),
        template: short(&query.template),
        purpose: short(&query.purpose),
        group_by: short(&query.group_by.join(",")),
        outcome: logged.outcome.to_owned(),
        result_rows: logged
            .result
            .map_or(0, |r| i64::try_from(r.rows.len()).unwrap_or(i64::MAX)),
    };
    store
        .record_release(&entry, logged.ledger, &entries(logged))
        .await
}

/// Benchmarks only (feature `unaudited`, which the zicht binary never enables): while set,
/// nothing is logged, so a benchmark can measure the same node with and without its audit
/// write in one run.
#[cfg(feature = "unaudited")]
pub static UNAUDITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A calendar year as a period.
pub fn calendar_year(year: i32) -> pb::Period {
    pb::Period {
        from: Some(pb::Date {
            year,
            month: 1,
            day: 1,
        }),
        to: Some(pb::Date {
            year,
            month: 12,
            day: 31,
        }),
    }
}

/// A calendar date from the wire.
pub fn to_date(date: &pb::Date) -> Result<NaiveDate, ExecuteError> {
    let month = u32::try_from(date.month).unwrap_or(0);
    let day = u32::try_from(date.day).unwrap_or(0);
    NaiveDate::from_ymd_opt(date.year, month, day)
        .ok_or_else(|| ExecuteError::Invalid("not a valid calendar date".to_owned()))
}

/// A date for the wire.
pub fn from_date(date: NaiveDate) -> pb::Date {
    pb::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

fn exact(n: u64, rounding_base: u32) -> pb::CellValue {
    pb::CellValue {
        value: Some(pb::cell_value::Value::Exact(n)),
        rounding_base,
    }
}

async fn capacity(
    store: &Store,
    query: &pb::QueryRequest,
    group_by: &[Dimension],
) -> Result<Released, ExecuteError> {
    let peildatum = match &query.scope {
        Some(pb::query_request::Scope::Peildatum(date)) => to_date(date)?,
        _ => {
            return Err(ExecuteError::Invalid(
                "capacity needs a peildatum".to_owned(),
            ))
        }
    };
    if !query.filters.is_empty() {
        return Err(ExecuteError::Invalid(
            "capacity takes no filters; group by the dimension instead".to_owned(),
        ));
    }
    let rows = store
        .capacity(peildatum, group_by)
        .await
        .map_err(ExecuteError::Store)?
        .map_err(|e: UnsupportedDimension| ExecuteError::Invalid(e.to_string()))?;
    let statistic = |name: &str, value: i64| pb::Statistic {
        name: name.to_owned(),
        value: Some(value as f64),
    };
    let result = pb::ProtectedResult {
        template: Template::Capacity.code().to_owned(),
        template_version: Template::Capacity.version(),
        dimensions: group_by.iter().map(|d| d.code().to_owned()).collect(),
        rows: rows
            .iter()
            .map(|row| pb::ResultRow {
                key: row.key.clone(),
                count: Some(exact(row.facilities.max(0) as u64, 0)),
                statistics: vec![
                    statistic("places", row.places),
                    statistic("occupied", row.occupied),
                    statistic("available", row.places - row.occupied),
                ],
            })
            .collect(),
        total: Some(exact(
            rows.iter().map(|r| r.facilities.max(0) as u64).sum(),
            0,
        )),
        rules_applied: vec!["capacity is facility data: released exactly".to_owned()],
        ..Default::default()
    };
    Ok(Released {
        result,
        ledger: Vec::new(),
    })
}

/// The request's filters, checked: dimensions of the template, each once, values from the
/// dimension's code list.
fn filters(
    template: Template,
    query: &pb::QueryRequest,
) -> Result<Vec<(Dimension, Vec<String>)>, ExecuteError> {
    let mut checked: Vec<(Dimension, Vec<String>)> = Vec::new();
    for (position, filter) in query.filters.iter().enumerate() {
        let invalid =
            |what: &str| ExecuteError::Invalid(format!("filter {}: {what}", position + 1));
        let dimension = Dimension::ALL
            .iter()
            .copied()
            .find(|d| d.code() == filter.dimension)
            .filter(|d| template.dimensions().contains(d))
            .ok_or_else(|| {
                invalid(&format!(
                    "template {template} cannot filter by this dimension"
                ))
            })?;
        if checked.iter().any(|(d, _)| *d == dimension) {
            return Err(invalid(&format!("{dimension} is filtered twice")));
        }
        let domain = dimension.domain().unwrap_or_default();
        let mut values: Vec<String> = Vec::with_capacity(filter.values.len());
        for value in &filter.values {
            if !domain.contains(&value.as_str()) {
                return Err(invalid(&format!("a value is not a {dimension} code")));
            }
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
        if values.is_empty() {
            return Err(invalid("no values"));
        }
        checked.push((dimension, values));
    }
    Ok(checked)
}

/// The days a query's population is drawn from.
fn count_scope(
    template: Template,
    query: &pb::QueryRequest,
) -> Result<(CountScope, NaiveDate, NaiveDate), ExecuteError> {
    use pb::query_request::Scope as S;
    let needs = |what: &str| ExecuteError::Invalid(format!("template {template} needs {what}"));
    match (template, &query.scope) {
        (Template::Transition18, Some(S::Peildatum(date))) => {
            let peildatum = to_date(date)?;
            // Checks in the half year up to the peildatum.
            let from = peildatum
                .checked_sub_months(Months::new(6))
                .and_then(|d| d.succ_opt())
                .unwrap_or(peildatum);
            Ok((CountScope::Peildatum(peildatum), from, peildatum))
        }
        (Template::Transition18, _) => Err(needs("a peildatum")),
        (_, Some(S::Period(period))) => {
            let from = to_date(
                period
                    .from
                    .as_ref()
                    .ok_or_else(|| needs("a period start"))?,
            )?;
            let to = to_date(period.to.as_ref().ok_or_else(|| needs("a period end"))?)?;
            if from > to {
                return Err(needs("a period whose first day is not after its last"));
            }
            Ok((CountScope::Period { from, to }, from, to))
        }
        _ => Err(needs("a period")),
    }
}

/// Days since the common era, for comparing scopes.
fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

/// A scope in the differencing guard's terms; stay groups become their care types, so a
/// stay-group cell and a care-type cell are compared as the youths they count.
fn ledger_scope(
    template: Template,
    from: NaiveDate,
    to: NaiveDate,
    filters: &[(Dimension, Vec<String>)],
) -> Scope {
    let scope = Scope {
        template: template.code().to_owned(),
        from: day_number(from),
        to: day_number(to),
        filters: BTreeMap::new(),
    };
    filters.iter().fold(scope, |scope, (dimension, values)| {
        narrowed(scope, *dimension, values.iter().cloned().collect())
    })
}

fn narrowed(scope: Scope, dimension: Dimension, values: BTreeSet<String>) -> Scope {
    if dimension == Dimension::StayGroup {
        let care_types = CareType::ALL
            .iter()
            .filter(|c| values.contains(c.stay_group().code()))
            .map(|c| c.code().to_owned())
            .collect();
        return scope.narrowed(Dimension::CareType.code(), care_types);
    }
    scope.narrowed(dimension.code(), values)
}

/// The origin of a youth whose municipality is not known.
const UNKNOWN_ORIGIN: &str = zicht_model::UNKNOWN;

/// Every value of `dimension` a grouped result lists: its domain (for `origin_region`, the
/// node's own region and `onbekend`; for a filtered dimension, the values asked for) plus
/// anything present in the data.
fn domain(
    dimension: Dimension,
    region: Option<Region>,
    filters: &[(Dimension, Vec<String>)],
    rows: &[CountRow],
    i: usize,
) -> Vec<String> {
    let filtered = filters.iter().find(|(d, _)| *d == dimension);
    let mut values: Vec<String> = match (dimension, region, filtered) {
        // Asked for origins: of those, the ones a region holds (its own and onbekend). Other
        // regions' youths are not in its data, so they are no cells of its table.
        (Dimension::OriginRegion, Some(region), Some((_, allowed))) => {
            [region.code(), UNKNOWN_ORIGIN]
                .into_iter()
                .filter(|v| allowed.iter().any(|a| a == v))
                .map(str::to_owned)
                .collect()
        }
        // A filtered dimension lists the values asked for, in domain order.
        (_, _, Some((_, allowed))) => dimension
            .domain()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| allowed.iter().any(|a| a == v))
            .map(str::to_owned)
            .collect(),
        (Dimension::OriginRegion, Some(region), None) => {
            vec![region.code().to_owned(), UNKNOWN_ORIGIN.to_owned()]
        }
        _ => dimension
            .domain()
            .unwrap_or_default()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    for row in rows {
        if !values.contains(&row.key[i]) {
            values.push(row.key[i].clone());
        }
    }
    values
}

async fn person_counts(call: &Call<'_>) -> Result<Released, ExecuteError> {
    let Call {
        store,
        disclosure,
        template,
        query,
        group_by,
        requester,
        today,
    } = *call;
    let settings = &disclosure.settings;
    let filters = filters(template, query)?;
    let (scope, from, to) = count_scope(template, query)?;
    let count_query = CountQuery {
        template,
        scope,
        filters: &filters,
        group_by,
    };
    let rows = store
        .person_counts(&count_query)
        .await
        .map_err(ExecuteError::Store)?
        .map_err(|e| ExecuteError::Invalid(e.to_string()))?;
    let complement = if filters.is_empty() {
        None
    } else {
        let everyone = CountQuery {
            filters: &[],
            group_by: &[],
            ..count_query
        };
        let all: i64 = store
            .person_counts(&everyone)
            .await
            .map_err(ExecuteError::Store)?
            .map_err(|e| ExecuteError::Invalid(e.to_string()))?
            .iter()
            .map(|r| r.youths)
            .sum();
        let population: i64 = rows.iter().map(|r| r.youths).sum();
        Some(all.saturating_sub(population).max(0) as u64)
    };

    // The full table: every combination of the dimensions' values, zeros included.
    let domains: Vec<Vec<String>> = group_by
        .iter()
        .enumerate()
        .map(|(i, &d)| domain(d, disclosure.region, &filters, &rows, i))
        .collect();
    let shape: Vec<usize> = domains.iter().map(Vec::len).collect();
    let cells: usize = shape.iter().product();
    let mut counts = vec![0u64; cells];
    let mut by_cell: Vec<Option<&CountRow>> = vec![None; cells];
    for row in &rows {
        let index = row
            .key
            .iter()
            .zip(&domains)
            .fold(0usize, |index, (value, values)| {
                index * values.len() + values.iter().position(|v| v == value).unwrap_or(0)
            });
        counts[index] += row.youths.max(0) as u64;
        by_cell[index] = Some(row);
    }
    let table = Table::new(shape, counts)
        .ok_or_else(|| ExecuteError::Invalid("result shape".to_owned()))?;
    let protected = protect(&table, settings, complement)?;

    // The differencing guard over the total and every released cell.
    let base = ledger_scope(template, from, to, &filters);
    let mut released: Vec<(Scope, u64)> = vec![(base.clone(), table.total())];
    for (index, cell) in protected.cells.iter().enumerate() {
        if let Cell::Released(_) = cell {
            let coordinates = table.coordinates(index);
            let scope = group_by
                .iter()
                .zip(&coordinates)
                .zip(&domains)
                .fold(base.clone(), |scope, ((&d, &c), values)| {
                    narrowed(scope, d, BTreeSet::from([values[c].clone()]))
                });
            released.push((scope, table.counts()[index]));
        }
    }
    let since = today
        .checked_sub_days(Days::new(u64::from(settings.differencing_window_days)))
        .unwrap_or(NaiveDate::MIN);
    let earlier: Vec<(Scope, u64)> = store
        .ledger(requester, template.code(), since)
        .await
        .map_err(ExecuteError::Store)?
        .into_iter()
        .map(|entry| {
            Ok((
                Scope {
                    template: entry.template,
                    from: day_number(entry.period_from),
                    to: day_number(entry.period_to),
                    filters: Scope::parse_filters(&entry.filters)
                        .ok_or(ExecuteError::CorruptLedger)?,
                },
                entry.population.max(0) as u64,
            ))
        })
        .collect::<Result<_, ExecuteError>>()?;
    differencing(&released, &earlier, settings.min_cell_count)?;

    let mut rules = protected.rules.clone();
    rules.push(settings.differencing_rule());
    let stays = template == Template::LengthOfStay;
    if stays {
        rules.push(format!(
            "dominance: at least {} youths, none over {}% of the days",
            settings.dominance_min_contributors, settings.dominance_max_share_percent
        ));
    }
    let cell_value = |cell: &Cell| pb::CellValue {
        value: Some(match cell {
            Cell::Released(n) => pb::cell_value::Value::Exact(*n),
            Cell::Small => pb::cell_value::Value::Small(pb::SmallCell {
                threshold: protected.threshold,
            }),
            Cell::Suppressed => pb::cell_value::Value::Suppressed(pb::Suppressed {}),
        }),
        rounding_base: match cell {
            Cell::Released(_) => protected.rounding_base,
            _ => 0,
        },
    };
    let result_rows = protected
        .cells
        .iter()
        .enumerate()
        .map(|(index, cell)| {
            let coordinates = table.coordinates(index);
            let statistics = if stays {
                stay_statistics(cell, by_cell[index], settings)
            } else {
                Vec::new()
            };
            pb::ResultRow {
                key: coordinates
                    .iter()
                    .zip(&domains)
                    .map(|(&c, values)| values[c].clone())
                    .collect(),
                count: Some(cell_value(cell)),
                statistics,
            }
        })
        .collect();
    let ledger = released
        .into_iter()
        .map(|(scope, population)| LedgerEntry {
            requester: requester.to_owned(),
            recorded_on: today,
            template: template.code().to_owned(),
            period_from: from,
            period_to: to,
            filters: scope.filters_text(),
            population: population as i64,
        })
        .collect();
    Ok(Released {
        result: pb::ProtectedResult {
            template: template.code().to_owned(),
            template_version: template.version(),
            dimensions: group_by.iter().map(|d| d.code().to_owned()).collect(),
            rows: result_rows,
            total: Some(exact(protected.total, protected.rounding_base)),
            rules_applied: rules,
            ..Default::default()
        },
        ledger,
    })
}

/// Median, mean and p90 days of a released length-of-stay cell that passes the dominance
/// rules; withheld (no value) otherwise.
fn stay_statistics(cell: &Cell, row: Option<&CountRow>, settings: &Settings) -> Vec<pb::Statistic> {
    let figures = match (cell, row.and_then(|r| r.stay.map(|s| (r.youths, s)))) {
        (Cell::Released(_), Some((youths, stay))) => {
            let group = Magnitudes {
                contributors: youths.max(0) as u64,
                largest: stay.max_days as f64,
                sum: stay.sum_days as f64,
            };
            magnitudes(&group, settings).ok().map(|()| {
                let mean = stay.sum_days as f64 / youths.max(1) as f64;
                [
                    stay.median_days as f64,
                    (mean * 10.0).round() / 10.0,
                    stay.p90_days as f64,
                ]
            })
        }
        _ => None,
    };
    ["median_days", "mean_days", "p90_days"]
        .iter()
        .enumerate()
        .map(|(i, name)| pb::Statistic {
            name: (*name).to_owned(),
            value: figures.map(|f| f[i]),
        })
        .collect()
}
