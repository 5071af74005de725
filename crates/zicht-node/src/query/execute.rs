//! Runs a template on the node's own store and puts the result through disclosure control:
//! the one path from data to anything that leaves a node, shared by the `Inway` service and
//! `zicht query` on the node itself.
//!
//! Person counts leave under the cell key method (see `zicht-privacy` and `docs/privacy.md`):
//! every cell, margin and total is published as its true count plus the deviation the
//! perturbation table gives for that count and the cell's key, unless the caller owns the data
//! (the region's own analysts under an `owner` grant, or `zicht query` on the node's database),
//! who see exact counts.

use chrono::Months;

use zicht_model::{
    CodeList, Dimension, Filter, NaiveDate, Published, Query, Region, Row, Scope, Statistic, Table,
    Template,
};
use zicht_privacy::{magnitudes, CellNoise, Magnitudes, PerturbationTable, Settings};

use crate::audit::{entries, Logged, Operation, Subject};
use crate::convert::RequestText;
use crate::disclosure::Disclosure;
use crate::error::Error;
use zicht_store::{
    CountQuery, CountRow, CountScope, ReleaseEntry, ReleasedPopulation, Store, StoreError,
    UnsupportedDimension,
};

/// Today's date (UTC), for the budgets of distinct populations.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// A result ready to leave, and what to log with it.
#[derive(Debug, Clone)]
pub struct Released {
    /// The protected table.
    pub table: Table,
    /// The population released (perturbed person counts only), for the budgets.
    pub population: Option<ReleasedPopulation>,
    /// The population's total as published (the processing record's `population`).
    pub population_published: Option<u64>,
    /// For the auditor only (the log, never the answer): the requester's questions of this
    /// template and period reached a multiple of [`DECOMPOSITION_WATCH`].
    pub watch: Option<String>,
}

/// Distinct populations of one template and period (a family) one requester may be given in
/// 365 days before the node warns its auditor, and again at every multiple: the
/// decompositions of one small set all share its template and period, so an averaging attack
/// asks many members of one family, and ordinary work a few.
pub const DECOMPOSITION_WATCH: i64 = 10;

/// One template call on a node's own data.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The node's store.
    pub store: &'a Store,
    /// What the node enforces.
    pub disclosure: &'a Disclosure,
    /// The query, checked at the edge (and against limits and policy).
    pub query: &'a Query,
    /// Whether the caller owns the data (exact counts): the region's own analysts under an
    /// `owner` grant, or `zicht query` on the node's own database.
    pub exact: bool,
    /// Who is given the result (a PeerID, or `local`): the budget of distinct populations it
    /// spends.
    pub requester: &'a str,
    /// The person a node asks for (proven by their delegation), whose own budget it spends
    /// too; the node's budget then holds [`crate::query::admission::ANALYSTS_SHARE`] times a
    /// person's, for all its people together.
    pub person: Option<&'a str>,
    /// The day of the release.
    pub today: NaiveDate,
}

/// Runs a template call: the template's SQL, then disclosure control for person counts.
pub async fn execute(call: &Call<'_>) -> Result<Released, Error> {
    match call.query.template {
        Template::Capacity => capacity(call.store, call.query).await,
        // Records leave only to their recipients, through a node (`query::consented`).
        Template::ConsentedRecords => Err(Error::Invalid(
            "consented_records gives the records consented to a recipient: ask a node for them (zicht query --client)".to_owned(),
        )),
        _ => person_counts(call).await,
    }
}

/// Writes the release log entry of one request, its audit records and, when perturbed counts
/// are released, the population released, in one transaction. Call it before the answer
/// leaves; an error means it must not. `outcome` is the released result or the name of the
/// refusing rule.
pub async fn log_outcome(
    store: &Store,
    operation: &Operation,
    requester: &str,
    role: &str,
    request: &RequestText,
    outcome: Result<&Released, &str>,
) -> Result<(), StoreError> {
    let text = match outcome {
        Ok(Released {
            watch: Some(watch), ..
        }) => format!("released; {watch}"),
        Ok(_) => "released".to_owned(),
        Err(rule) => format!("refused: {rule}"),
    };
    let released = outcome.ok();
    let logged = Logged {
        result: released.map(|released| &released.table),
        population: released.and_then(|released| released.population.as_ref()),
        population_published: released.and_then(|released| released.population_published),
        ..Logged::new(operation, requester, role, Subject::Request(request), &text)
    };
    log_entry(store, &logged).await
}

/// Logs one operation of the node's own `activity` (not a template call): a read of the audit
/// logs, a checkpoint, the disclosure settings, a summary of requests turned away.
pub(crate) async fn log_activity(
    store: &Store,
    operation: &Operation,
    requester: &str,
    role: &str,
    activity: &'static str,
    outcome: &str,
) -> Result<(), StoreError> {
    let logged = Logged::new(
        operation,
        requester,
        role,
        Subject::Activity(activity),
        outcome,
    );
    log_entry(store, &logged).await
}

/// Writes one release log entry (outcome `released`, `refused: <rule>`, `forwarded to ...`),
/// its processing and access records, and the population released, in one transaction.
pub async fn log_entry(store: &Store, logged: &Logged<'_>) -> Result<(), StoreError> {
    #[cfg(feature = "unaudited")]
    if UNAUDITED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let entry = release_entry(logged);
    let (audit, record) = entries(logged);
    store
        .record_release(&entry, logged.population, &audit)
        .await?;
    logged.operation.logged(&record);
    Ok(())
}

/// The release log row of one logged request. The request's own strings may be anything:
/// logged shortened, never echoed to callers.
pub(crate) fn release_entry(logged: &Logged<'_>) -> ReleaseEntry {
    let rows = logged.result.map_or(0, |t| t.rows.len() + t.records.len());
    ReleaseEntry {
        peer_id: logged.requester.to_owned(),
        role: logged.role.to_owned(),
        template: logged.subject.template(),
        purpose: logged.subject.purpose(),
        group_by: logged.subject.group_by(),
        outcome: logged.outcome.to_owned(),
        result_rows: i64::try_from(rows).unwrap_or(i64::MAX),
    }
}

/// Benchmarks only (feature `unaudited`, which the zicht binary never enables): while set,
/// nothing is logged, so a benchmark can measure the same node with and without its audit
/// write in one run.
#[cfg(feature = "unaudited")]
pub static UNAUDITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn capacity(store: &Store, query: &Query) -> Result<Released, Error> {
    let Scope::Peildatum(peildatum) = query.scope else {
        return Err(Error::Invalid("capacity needs a peildatum".to_owned()));
    };
    let group_by = &query.group_by[..];
    let rows = store
        .capacity(peildatum, group_by)
        .await
        .map_err(Error::store("run the query"))?
        .map_err(|e: UnsupportedDimension| Error::Invalid(e.to_string()))?;
    if rows.is_empty()
        && !store
            .has_capacity()
            .await
            .map_err(Error::store("run the query"))?
    {
        return Err(Error::NoCapacityData);
    }
    let table = Table {
        template: Template::Capacity,
        dimensions: group_by.to_vec(),
        rows: rows
            .iter()
            .map(|row| Row {
                key: row.key.clone(),
                count: Published::exact(row.facilities.max(0) as u64),
                statistics: vec![
                    Statistic::new("places", row.places as f64),
                    Statistic::new("occupied", row.occupied as f64),
                    Statistic::new("available", (row.places - row.occupied) as f64),
                ],
            })
            .collect(),
        total: Published::exact(rows.iter().map(|r| r.facilities.max(0) as u64).sum()),
        rules: vec!["capacity is facility data: released exactly".to_owned()],
        records: Vec::new(),
    };
    Ok(Released {
        table,
        population: None,
        population_published: None,
        watch: None,
    })
}

/// The store's scope of a query, and the days its population is drawn from (a `transition18`
/// peildatum reads the checks of the half year up to it).
fn count_scope(scope: Scope) -> (CountScope, NaiveDate, NaiveDate) {
    match scope {
        Scope::Peildatum(peildatum) => {
            let from = peildatum
                .checked_sub_months(Months::new(6))
                .and_then(|d| d.succ_opt())
                .unwrap_or(peildatum);
            (CountScope::Peildatum(peildatum), from, peildatum)
        }
        Scope::Period { from, to } => (CountScope::Period { from, to }, from, to),
    }
}

/// The origin of a youth whose municipality is not known.
const UNKNOWN_ORIGIN: &str = zicht_model::UNKNOWN;

/// Every value of `dimension` a grouped result lists: its domain (for `origin_region`, the
/// node's own region and `onbekend`; for an open dimension, the names `open` gives; for a
/// filtered dimension, the values asked for) plus anything present in the data.
fn domain(
    dimension: Dimension,
    region: Option<Region>,
    filters: &[Filter],
    (rows, open): (&[CountRow], &[(Dimension, Vec<String>)]),
    i: usize,
) -> Vec<String> {
    let filtered = filters.iter().find(|f| f.dimension == dimension);
    let all = || -> Vec<String> {
        match dimension.domain() {
            Some(values) => values.into_iter().map(str::to_owned).collect(),
            None => open
                .iter()
                .find(|(d, _)| *d == dimension)
                .map(|(_, names)| names.clone())
                .unwrap_or_default(),
        }
    };
    let mut values: Vec<String> = match (dimension, region, filtered) {
        // Asked for origins: of those, the ones a region holds (its own and onbekend). Other
        // regions' youths are not in its data, so they are no cells of its table.
        (Dimension::OriginRegion, Some(region), Some(filter)) => [region.code(), UNKNOWN_ORIGIN]
            .into_iter()
            .filter(|v| filter.keeps(v))
            .map(str::to_owned)
            .collect(),
        // An open dimension filtered lists the names asked for, whether or not any is known.
        (_, _, Some(filter)) if dimension.domain().is_none() && !filter.exclude => {
            filter.values.clone()
        }
        // A filtered dimension lists the values it keeps, in domain order.
        (_, _, Some(filter)) => all().into_iter().filter(|v| filter.keeps(v)).collect(),
        (Dimension::OriginRegion, Some(region), None) => {
            vec![region.code().to_owned(), UNKNOWN_ORIGIN.to_owned()]
        }
        _ => all(),
    };
    for row in rows {
        if !values.contains(&row.key[i]) {
            values.push(row.key[i].clone());
        }
    }
    values
}

/// One cell of a person-count table: its youths and the sum of their record keys.
#[derive(Debug, Clone, Copy, Default)]
struct CellCount {
    youths: u64,
    key_sum: u64,
}

impl CellCount {
    fn add(&mut self, other: CellCount) {
        self.youths += other.youths;
        self.key_sum = self.key_sum.wrapping_add(other.key_sum);
    }
}

/// How counts are published: exactly (the owner) or perturbed under the cell key method, the
/// table looked up through the node's keyed function of each cell key.
enum Publish<'a> {
    Exact,
    Perturbed(&'a PerturbationTable, Box<CellNoise>, u32),
}

impl Publish<'_> {
    fn published(&self, cell: CellCount) -> u64 {
        match self {
            Publish::Exact => cell.youths,
            Publish::Perturbed(ptable, noise, _) => {
                ptable.perturb(cell.youths, noise.lookup_key(cell.key_sum))
            }
        }
    }

    fn value(&self, cell: CellCount) -> Published {
        match self {
            Publish::Exact => Published::exact(cell.youths),
            Publish::Perturbed(ptable, _, bound) => {
                Published::perturbed(self.published(cell), *bound, ptable.params().variance)
            }
        }
    }
}

/// What defines a released population (template, scope, filters, grouping), hashed: the unit
/// of the per-requester, per-day limit.
fn population_key(
    template: Template,
    from: NaiveDate,
    to: NaiveDate,
    filters: &[Filter],
    group_by: &[Dimension],
) -> String {
    let mut filters: Vec<String> = filters
        .iter()
        .map(|filter| {
            let mut values = filter.values.clone();
            values.sort();
            let operator = if filter.exclude { "!=" } else { "=" };
            format!("{}{operator}{}", filter.dimension, values.join("|"))
        })
        .collect();
    filters.sort();
    let group_by: Vec<&str> = group_by.iter().map(|d| d.code()).collect();
    let text = format!(
        "{template};{from};{to};{};{}",
        filters.join(";"),
        group_by.join(",")
    );
    zicht_audit::sha256_hex(text.as_bytes())
}

/// What a population's decompositions share: its template and period, hashed.
fn family_key(template: Template, from: NaiveDate, to: NaiveDate) -> String {
    zicht_audit::sha256_hex(format!("{template};{from};{to}").as_bytes())
}

/// Runs the count query; perturbed counts carry each group's record keys under the node's
/// secret, which the store computes for every youth as it reads the data, so no youth is ever
/// counted without its key.
async fn count_rows(call: &Call<'_>, query: &CountQuery<'_>) -> Result<Vec<CountRow>, Error> {
    let keys = match call.exact {
        true => None,
        false => Some(call.disclosure.record_keys().ok_or(Error::NoSecret)?),
    };
    call.store
        .person_counts(query, keys.as_ref())
        .await
        .map_err(Error::store("run the query"))?
        .map_err(|e| Error::Invalid(e.to_string()))
}

async fn person_counts(call: &Call<'_>) -> Result<Released, Error> {
    let Call {
        disclosure,
        query,
        exact: owner,
        ..
    } = *call;
    let (template, group_by, filters) = (query.template, &query.group_by[..], &query.filters[..]);
    let settings = &disclosure.settings;
    let (scope, from, to) = count_scope(query.scope);
    let publish = publishing(call, scope)?;
    let (population, watch) = match owner {
        true => (None, None),
        false => {
            let key = population_key(template, from, to, filters, group_by);
            let (population, watch) = within_budgets(call, key, (from, to)).await?;
            (Some(population), watch)
        }
    };
    let count_query = CountQuery {
        template,
        scope,
        filters,
        group_by,
    };
    let rows = count_rows(call, &count_query).await?;
    let open = open_names(call, group_by).await?;
    let counts = CountTable::of((&rows, &open), group_by, disclosure.region, filters);
    // Decided on the published total: the refusal says no more than the total would.
    if !owner && publish.published(counts.total) < u64::from(settings.population_floor) {
        return Err(zicht_privacy::Refusal::PopulationFloor {
            floor: settings.population_floor,
        }
        .into());
    }
    let figures = matches!(template, Template::LengthOfStay | Template::Measures);
    let mut rules = if owner {
        vec![
            "exact counts: for the data's owner (the region's own analysts and database)"
                .to_owned(),
        ]
    } else {
        settings.rules()
    };
    if figures {
        rules.push(settings.magnitude_rule());
    }
    Ok(Released {
        table: Table {
            template,
            dimensions: group_by.to_vec(),
            rows: counts.rows(&publish, figures.then_some((template, settings))),
            total: publish.value(counts.total),
            rules,
            records: Vec::new(),
        },
        population,
        population_published: Some(publish.published(counts.total)),
        watch,
    })
}

/// The values each open dimension of `group_by` lists (`measures`' providers and
/// facilities), read from the store whatever the period.
async fn open_names(
    call: &Call<'_>,
    group_by: &[Dimension],
) -> Result<Vec<(Dimension, Vec<String>)>, Error> {
    let mut open = Vec::new();
    for &dimension in group_by.iter().filter(|d| d.domain().is_none()) {
        let names = call
            .store
            .measure_names(dimension)
            .await
            .map_err(Error::store("read the names measures list"))?;
        open.push((dimension, names));
    }
    Ok(open)
}

/// How this call's counts are published: exactly for the data's owner; otherwise perturbed,
/// which needs the node's secret, a period of whole units and filters of the vocabulary (one
/// value or one group each).
fn publishing<'a>(call: &Call<'a>, scope: CountScope) -> Result<Publish<'a>, Error> {
    if call.exact {
        return Ok(Publish::Exact);
    }
    let disclosure = call.disclosure;
    let Some(secret) = &disclosure.secret else {
        return Err(Error::NoSecret);
    };
    if let CountScope::Period { from, to } = scope {
        disclosure
            .settings
            .period_granularity
            .check(from, to, disclosure.settings.period_ranges)
            .map_err(zicht_privacy::Refusal::PeriodGranularity)?;
    }
    vocabulary(call.query, disclosure.settings.max_dimensions)?;
    Ok(Publish::Perturbed(
        &disclosure.ptable,
        Box::new(secret.cell_noise()),
        disclosure.settings.max_deviation,
    ))
}

/// The vocabulary of a perturbed question, which bounds how many released counts can contain
/// one small cell: each filter keeps one value or one group of the code lists (leaving values
/// out would make every value and group of every dimension a part with its complement: two
/// more estimates of each cell it splits), and at most `max_dimensions` dimensions are
/// constrained, by filters and groupings together (one flow kind kept picks the unit and
/// does not count).
fn vocabulary(query: &Query, max_dimensions: u32) -> Result<(), zicht_privacy::Refusal> {
    use zicht_privacy::Refusal;
    let on = query.scope.reference_date();
    for filter in &query.filters {
        let dimension = filter.dimension.code().to_owned();
        if filter.exclude {
            return Err(Refusal::LeaveOut(dimension));
        }
        if !filter.in_vocabulary(on) {
            return Err(Refusal::FilterVocabulary(dimension));
        }
    }
    // A filter keeping one flow kind picks which flows are counted (instroom, doorplaatsing or
    // uitstroom: three units, not a split of one): it does not count. Grouped by flow kind,
    // it does.
    let selects_the_unit = |filter: &&Filter| {
        filter.dimension == Dimension::FlowKind
            && filter.values.len() == 1
            && !query.group_by.contains(&Dimension::FlowKind)
    };
    let mut constrained: Vec<Dimension> = query
        .filters
        .iter()
        .filter(|filter| !selects_the_unit(filter))
        .map(|filter| filter.dimension)
        .chain(query.group_by.iter().copied())
        .collect();
    constrained.sort_unstable();
    constrained.dedup();
    if constrained.len() > max_dimensions as usize {
        return Err(Refusal::Dimensions {
            limit: max_dimensions,
        });
    }
    Ok(())
}

/// The budgets of distinct populations, decided on the request alone: the requester's, and
/// the person's a node asks for; each per day and over 365 days. A population given to a
/// budget within the year does not count again (and is not recorded again). Returns the
/// population to record, with the budgets it spends, and the auditor's warning when a
/// budget's questions of this `family` (template and period) reach a multiple of
/// [`DECOMPOSITION_WATCH`] (`from..to` is the population's period).
async fn within_budgets(
    call: &Call<'_>,
    population: String,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<(ReleasedPopulation, Option<String>), Error> {
    use zicht_privacy::{BudgetHolder, BudgetWindow, Refusal};
    let family = family_key(call.query.template, from, to);
    let settings = &call.disclosure.settings;
    let share = crate::query::admission::ANALYSTS_SHARE;
    // (whose, their daily and yearly limits, what a refusal calls them)
    let holders = match call.person {
        Some(person) => vec![
            (person, 1, BudgetHolder::You),
            (call.requester, share, BudgetHolder::YourNode),
        ],
        None => vec![(call.requester, 1, BudgetHolder::You)],
    };
    let mut requesters = Vec::with_capacity(holders.len());
    let mut watch = None;
    for (holder, times, named) in holders {
        let given = call
            .store
            .populations_given(holder, call.today, &population, &family)
            .await
            .map_err(Error::store("run the query"))?;
        if given.again {
            continue;
        }
        let day = settings.max_populations_per_day.saturating_mul(times);
        let year = settings.max_populations_per_year.saturating_mul(times);
        let spent = |given: i64, limit: u32| given >= i64::from(limit);
        let window = if spent(given.today, day) {
            Some((day, BudgetWindow::Day))
        } else if spent(given.year, year) {
            Some((year, BudgetWindow::Year))
        } else {
            None
        };
        if let Some((limit, window)) = window {
            return Err(Refusal::DistinctPopulations {
                limit,
                window,
                holder: named,
            }
            .into());
        }
        let of_family = given.of_family + 1;
        if watch.is_none() && of_family % DECOMPOSITION_WATCH == 0 {
            watch = Some(format!(
                "decomposition-watch: {holder} was given {of_family} distinct populations of \
                 {} over {from}..{to} in 365 days",
                call.query.template,
            ));
        }
        requesters.push(holder.to_owned());
    }
    let population = ReleasedPopulation {
        requesters,
        released_on: call.today,
        population,
        family,
    };
    Ok((population, watch))
}

/// A person-count table: every combination of the dimensions' values (zeros included), each
/// cell's youths and record-key sum, and the total.
struct CountTable<'a> {
    domains: Vec<Vec<String>>,
    cells: Vec<CellCount>,
    /// The store's row of each cell (length-of-stay figures).
    rows: Vec<Option<&'a CountRow>>,
    total: CellCount,
}

impl<'a> CountTable<'a> {
    fn of(
        (rows, open): (&'a [CountRow], &[(Dimension, Vec<String>)]),
        group_by: &[Dimension],
        region: Option<Region>,
        filters: &[Filter],
    ) -> CountTable<'a> {
        let domains: Vec<Vec<String>> = group_by
            .iter()
            .enumerate()
            .map(|(i, &d)| domain(d, region, filters, (rows, open), i))
            .collect();
        let size: usize = domains.iter().map(Vec::len).product();
        let mut table = CountTable {
            cells: vec![CellCount::default(); size],
            rows: vec![None; size],
            total: CellCount::default(),
            domains,
        };
        for row in rows {
            let index =
                row.key
                    .iter()
                    .zip(&table.domains)
                    .fold(0usize, |index, (value, values)| {
                        index * values.len() + values.iter().position(|v| v == value).unwrap_or(0)
                    });
            let count = CellCount {
                youths: row.youths.max(0) as u64,
                key_sum: row.record_key_sum.max(0) as u64,
            };
            table.cells[index].add(count);
            table.total.add(count);
            table.rows[index] = Some(row);
        }
        table
    }

    /// The published rows, with the template's figures (length of stay, measures) under the
    /// settings' magnitude rules.
    fn rows(&self, publish: &Publish<'_>, figures: Option<(Template, &Settings)>) -> Vec<Row> {
        self.cells
            .iter()
            .enumerate()
            .map(|(index, &cell)| Row {
                key: coordinates(index, &self.domains)
                    .iter()
                    .zip(&self.domains)
                    .map(|(&c, values)| values[c].clone())
                    .collect(),
                count: publish.value(cell),
                statistics: match figures {
                    Some((Template::LengthOfStay, settings)) => {
                        stay_statistics(publish.published(cell), self.rows[index], settings)
                    }
                    Some((Template::Measures, settings)) => {
                        measure_statistics(publish.published(cell), self.rows[index], settings)
                    }
                    _ => Vec::new(),
                },
            })
            .collect()
    }
}

/// The coordinates of cell `index` of a table over `domains` (row-major, last fastest).
fn coordinates(mut index: usize, domains: &[Vec<String>]) -> Vec<usize> {
    let mut coordinates = vec![0; domains.len()];
    for (j, values) in domains.iter().enumerate().rev() {
        let size = values.len().max(1);
        coordinates[j] = index % size;
        index /= size;
    }
    coordinates
}

/// The number of measures of a `measures` group whose published count reaches the floor and
/// in which no youth holds more than the dominance share of the measures; withheld
/// otherwise. A count of measures is a magnitude of the youths, as days of stay are.
fn measure_statistics(
    published: u64,
    row: Option<&CountRow>,
    settings: &Settings,
) -> Vec<Statistic> {
    let figures = row.and_then(|r| r.measures).and_then(|m| {
        let group = Magnitudes {
            published_youths: published,
            largest: m.max_per_youth as f64,
            sum: m.measures as f64,
        };
        magnitudes(&group, settings)
            .ok()
            .map(|()| m.measures as f64)
    });
    vec![Statistic {
        name: MEASURES.to_owned(),
        value: figures,
    }]
}

/// The figure of a `measures` cell: how many measures its youths underwent.
pub const MEASURES: &str = "measures";

/// Median, mean and p90 days of a length-of-stay group whose published count reaches the
/// floor and that passes the dominance rule; withheld (no value) otherwise.
fn stay_statistics(published: u64, row: Option<&CountRow>, settings: &Settings) -> Vec<Statistic> {
    let figures = row
        .and_then(|r| r.stay.map(|s| (r.youths, s)))
        .and_then(|(youths, stay)| {
            let group = Magnitudes {
                published_youths: published,
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
        });
    ["median_days", "mean_days", "p90_days"]
        .iter()
        .enumerate()
        .map(|(i, name)| Statistic {
            name: (*name).to_owned(),
            value: figures.map(|f| f[i]),
        })
        .collect()
}
