//! Attacks on disclosure control through the node's real query path (`execute` and the
//! fail-closed log, as the `Inway` runs them), on both backends, over a synthetic region.
//!
//! Each family of attacks that recovered exact 1-9 counts before the cell key method is run
//! again. A differencing-style attack infers a count as a linear combination of published
//! counts; it is right exactly when the deviations of its terms cancel. For independent cell
//! keys that probability follows from the perturbation table, so each family asserts that the
//! attacker is right no more often than the table allows (its expectation plus three standard
//! deviations) and never for the whole family. Consistency attacks (the same youths through
//! another filter, grouping or requester) must publish the identical number.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;

use zicht_model::Published;
use zicht_model::{Dimension, Region, Template};
use zicht_node::{execute, log_outcome, Call, Disclosure, Error};
use zicht_privacy::{PerturbationTable, RecordKeySecret, Refusal, Settings};
use zicht_proto::v1 as pb;
use zicht_testkit::queries::Ask;
use zicht_testkit::{both_backends, TestDb};

/// A question: template, scope, filters and grouping.
#[derive(Debug, Clone)]
struct Q {
    template: Template,
    scope: pb::query_request::Scope,
    filters: Vec<(Dimension, Vec<String>)>,
    group_by: Vec<Dimension>,
}

fn date(year: i32, month: i32, day: i32) -> pb::Date {
    pb::Date { year, month, day }
}

fn period(from: (i32, i32, i32), to: (i32, i32, i32)) -> pb::query_request::Scope {
    pb::query_request::Scope::Period(pb::Period {
        from: Some(date(from.0, from.1, from.2)),
        to: Some(date(to.0, to.1, to.2)),
    })
}

fn year(y: i32) -> pb::query_request::Scope {
    period((y, 1, 1), (y, 12, 31))
}

impl Q {
    fn new(template: Template, scope: pb::query_request::Scope) -> Q {
        Q {
            template,
            scope,
            filters: Vec::new(),
            group_by: Vec::new(),
        }
    }

    fn by(mut self, dimension: Dimension) -> Q {
        self.group_by.push(dimension);
        self
    }

    fn filter(mut self, dimension: Dimension, values: &[&str]) -> Q {
        self.filters
            .push((dimension, values.iter().map(|v| (*v).to_owned()).collect()));
        self
    }

    fn request(&self) -> pb::QueryRequest {
        let ask = Ask::new(self.template).scope(self.scope);
        let ask = self.group_by.iter().fold(ask, |ask, &d| ask.by(d));
        self.filters
            .iter()
            .fold(ask, |ask, (d, values)| {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                ask.filter(*d, &values)
            })
            .wire()
    }
}

/// A released table: each cell's count by key, the total, and the length-of-stay figures.
#[derive(Debug, Clone, PartialEq)]
struct Table {
    cells: HashMap<Vec<String>, u64>,
    total: u64,
    statistics: HashMap<Vec<String>, Vec<Option<f64>>>,
}

impl Table {
    fn cell(&self, key: &[&str]) -> u64 {
        let key: Vec<String> = key.iter().map(|k| (*k).to_owned()).collect();
        self.cells.get(&key).copied().unwrap_or(0)
    }
}

/// A region's database with the synthetic data of drenthe, and the node's disclosure control.
struct Region_ {
    db: TestDb,
    disclosure: Disclosure,
    _dir: tempfile::TempDir,
}

impl Region_ {
    async fn new(db: TestDb, region: Region, settings: Settings) -> Region_ {
        let dir = tempfile::tempdir().unwrap();
        zicht_testkit::node::import_synthetic(&db, region, dir.path()).await;
        let disclosure = Disclosure::new(settings, Some(region), None)
            .unwrap()
            .with_secret(RecordKeySecret::from_bytes([region as u8 + 1; 32]));
        Region_ {
            db,
            disclosure,
            _dir: dir,
        }
    }

    async fn drenthe(db: TestDb) -> Region_ {
        Region_::new(db, Region::Drenthe, Settings::default()).await
    }

    /// The same region's disclosure control under `settings` (the same secret).
    fn set(&mut self, settings: Settings) {
        self.disclosure = Disclosure::new(settings, self.disclosure.region, None)
            .unwrap()
            .with_secret(RecordKeySecret::from_bytes(
                [self.disclosure.region.map_or(0, |r| r as u8) + 1; 32],
            ));
    }

    fn ptable(&self) -> &PerturbationTable {
        self.disclosure.ptable()
    }

    /// Runs `q` for `requester` through the query path and its log; exact for the owner.
    async fn run(&self, requester: &str, q: &Q, exact: bool) -> Result<Table, Error> {
        self.run_request(requester, &q.request(), exact).await
    }

    /// [`Region_::run`] for a request as it goes on the wire.
    async fn run_request(
        &self,
        requester: &str,
        request: &pb::QueryRequest,
        exact: bool,
    ) -> Result<Table, Error> {
        let query = zicht_node::convert::query(request)?;
        let call = Call {
            store: &self.db.store,
            disclosure: &self.disclosure,
            query: &query,
            exact,
            requester,
            person: None,
            today: zicht_node::today(),
        };
        let outcome = execute(&call).await;
        log_outcome(
            &self.db.store,
            &zicht_node::audit::Operation::start("test", "test"),
            requester,
            "test",
            &zicht_node::convert::RequestText::of(request),
            outcome.as_ref().map_err(|e| e.rule()),
        )
        .await
        .unwrap();
        let released = outcome?;
        let value = |published: &Published| {
            assert_eq!(
                published.max_deviation,
                if exact { 0 } else { 4 },
                "{}",
                request.template
            );
            published.value
        };
        Ok(Table {
            cells: released
                .table
                .rows
                .iter()
                .map(|row| (row.key.clone(), value(&row.count)))
                .collect(),
            total: value(&released.table.total),
            statistics: released
                .table
                .rows
                .iter()
                .map(|row| {
                    (
                        row.key.clone(),
                        row.statistics.iter().map(|s| s.value).collect(),
                    )
                })
                .collect(),
        })
    }

    /// What `attacker` is given.
    async fn published(&self, q: &Q) -> Table {
        self.run(ATTACKER, q, false)
            .await
            .unwrap_or_else(|e| panic!("{q:?}: {e}"))
    }

    /// What the attacker is given, or `None` when the population floor refuses it (a refusal
    /// is decided on the published total, so it tells no more; see family 9).
    async fn attempt(&self, q: &Q) -> Option<Table> {
        self.attempt_request(&q.request()).await
    }

    /// [`Region_::attempt`] for a request as it goes on the wire.
    async fn attempt_request(&self, request: &pb::QueryRequest) -> Option<Table> {
        match self.run_request(ATTACKER, request, false).await {
            Ok(table) => Some(table),
            Err(Error::Disclosure(Refusal::PopulationFloor { .. })) => None,
            Err(other) => panic!("{request:?}: {other}"),
        }
    }

    /// The true counts (the owner's exact path; checked against hand-written SQL below).
    async fn truth(&self, q: &Q) -> Table {
        self.run("owner", q, true).await.unwrap()
    }
}

const ATTACKER: &str = "00000099000000000101";

/// One inference: `Σ coefficient × published` for `Σ coefficient × true`.
#[derive(Debug, Default)]
struct Trial {
    terms: Vec<(i64, u64, u64)>,
}

impl Trial {
    fn term(mut self, coefficient: i64, published: u64, truth: u64) -> Trial {
        self.terms.push((coefficient, published, truth));
        self
    }

    fn inferred(&self) -> i64 {
        self.terms.iter().map(|(c, p, _)| c * *p as i64).sum()
    }

    fn truth(&self) -> i64 {
        self.terms.iter().map(|(c, _, t)| c * *t as i64).sum()
    }

    /// The probability that the deviations cancel, for independent cell keys: the
    /// distribution of `Σ c v` convolved from each term's row of the table.
    fn chance(&self, ptable: &PerturbationTable) -> f64 {
        let mut distribution: HashMap<i64, f64> = HashMap::from([(0, 1.0)]);
        for (coefficient, _, truth) in &self.terms {
            let rows = ptable.rows();
            let row = &rows[(*truth as usize).min(rows.len() - 1)];
            let mut next = HashMap::new();
            for (sum, p) in &distribution {
                for deviation in &row.deviations {
                    *next
                        .entry(sum + coefficient * i64::from(deviation.value))
                        .or_insert(0.0) += p * deviation.probability();
                }
            }
            distribution = next;
        }
        distribution.get(&0).copied().unwrap_or(0.0)
    }
}

/// The attacker is right no more often than the perturbation table allows, and never for the
/// whole family. Only inferences of 1-9 youths count (what the attacks were after).
fn assert_family(name: &str, trials: &[Trial], ptable: &PerturbationTable) {
    let targets: Vec<&Trial> = trials
        .iter()
        .filter(|t| (1..=9).contains(&t.truth()))
        .collect();
    assert!(
        targets.len() >= 5,
        "{name}: only {} inferences of 1-9 youths to try",
        targets.len()
    );
    let right = targets.iter().filter(|t| t.inferred() == t.truth()).count();
    let chances: Vec<f64> = targets.iter().map(|t| t.chance(ptable)).collect();
    let expected: f64 = chances.iter().sum();
    let spread: f64 = chances.iter().map(|p| p * (1.0 - p)).sum::<f64>().sqrt();
    eprintln!(
        "{name}: right {right} of {} (the table allows {expected:.1} ± {spread:.1})",
        targets.len()
    );
    assert!(
        (right as f64) <= expected + 3.0 * spread + 1.0,
        "{name}: right {right} of {}, the table allows {expected:.1} ± {spread:.1}",
        targets.len()
    );
    assert!(right < targets.len(), "{name}: right every time");
}

fn keys(dimension: Dimension) -> Vec<&'static str> {
    dimension.domain().unwrap_or_default()
}

// Family 1: linked tables of one population with different groupings. A cell is inferred
// from a margin minus the other cells of its row.
both_backends!(linked_tables, |db| async move {
    let r = Region_::drenthe(db).await;
    let both = Q::new(Template::YouthInCare, year(2024))
        .by(Dimension::CareType)
        .by(Dimension::LegalBasis);
    let margin = Q::new(Template::YouthInCare, year(2024)).by(Dimension::CareType);
    let (table, margins) = (r.published(&both).await, r.published(&margin).await);
    let (true_table, true_margins) = (r.truth(&both).await, r.truth(&margin).await);
    let mut trials = Vec::new();
    for care in keys(Dimension::CareType) {
        for legal in keys(Dimension::LegalBasis) {
            let mut trial =
                Trial::default().term(1, margins.cell(&[care]), true_margins.cell(&[care]));
            for other in keys(Dimension::LegalBasis)
                .into_iter()
                .filter(|l| *l != legal)
            {
                trial = trial.term(
                    -1,
                    table.cell(&[care, other]),
                    true_table.cell(&[care, other]),
                );
            }
            trials.push(trial);
        }
    }
    assert_family("linked tables", &trials, r.ptable());
});

// Family 2: filtering on a value instead of grouping by it. The same youths give the same
// count: a filter releases nothing the grouped table did not.
both_backends!(
    filtering_on_a_value_publishes_the_grouped_cell,
    |db| async move {
        let r = Region_::drenthe(db).await;
        let transition = |q: Q| Q {
            scope: pb::query_request::Scope::Peildatum(date(2025, 6, 30)),
            ..q
        };
        let grouped = r
            .published(
                &transition(Q::new(Template::Transition18, year(2025)))
                    .by(Dimension::After18Funding),
            )
            .await;
        // A filtered population is refused exactly when its grouped cell is published below the
        // floor: the same youths, the same published count, the same decision.
        let same = |filtered: Option<Table>, cell: u64, what: &str| match filtered {
            Some(table) => assert_eq!(table.total, cell, "{what}"),
            None => assert!(cell < 10, "{what}: refused, yet published as {cell}"),
        };
        for funding in keys(Dimension::After18Funding) {
            let filtered = r
                .attempt(
                    &transition(Q::new(Template::Transition18, year(2025)))
                        .filter(Dimension::After18Funding, &[funding]),
                )
                .await;
            same(filtered, grouped.cell(&[funding]), funding);
        }
        let grouped = r
            .published(&Q::new(Template::YouthInCare, year(2024)).by(Dimension::CareType))
            .await;
        for care in keys(Dimension::CareType) {
            let filtered = r
                .attempt(
                    &Q::new(Template::YouthInCare, year(2024)).filter(Dimension::CareType, &[care]),
                )
                .await;
            same(filtered, grouped.cell(&[care]), care);
        }
    }
);

// Family 3: a shorter period, split by a partition so that no single pair differs by a few
// youths. A day shorter is refused by rule; by default so is a month shorter (a period is one
// calendar unit); where a region allows ranges, a month shorter gives noise.
both_backends!(shorter_periods_split_by_a_partition, |db| async move {
    let mut r = Region_::drenthe(db).await;
    let day_shorter = Q::new(Template::YouthInCare, period((2024, 1, 1), (2024, 12, 30)));
    match r.run(ATTACKER, &day_shorter, false).await {
        Err(Error::Disclosure(Refusal::PeriodGranularity(message))) => {
            assert!(message.contains("whole months"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let month_shorter = Q::new(Template::YouthInCare, period((2024, 1, 1), (2024, 11, 30)));
    match r.run(ATTACKER, &month_shorter, false).await {
        Err(Error::Disclosure(Refusal::PeriodGranularity(message))) => {
            assert!(
                message.contains("one month, quarter, half year or year"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    r.set(Settings {
        period_ranges: true,
        ..Settings::default()
    });
    // The year against the year without December, per care type, split by origin.
    let mut trials = Vec::new();
    for care in keys(Dimension::CareType) {
        let split = |scope| {
            Q::new(Template::YouthInCare, scope)
                .filter(Dimension::CareType, &[care])
                .by(Dimension::OriginRegion)
        };
        let (whole, shorter) = (
            split(year(2024)),
            split(period((2024, 1, 1), (2024, 11, 30))),
        );
        let (Some(a), Some(b)) = (r.attempt(&whole).await, r.attempt(&shorter).await) else {
            continue;
        };
        let (ta, tb) = (r.truth(&whole).await, r.truth(&shorter).await);
        let mut trial = Trial::default();
        for origin in ["drenthe", "onbekend"] {
            trial = trial.term(1, a.cell(&[origin]), ta.cell(&[origin])).term(
                -1,
                b.cell(&[origin]),
                tb.cell(&[origin]),
            );
        }
        trials.push(trial);
    }
    // And each month's change: January to month m+1 against January to month m.
    let month_end = |month: u32| {
        chrono::NaiveDate::from_ymd_opt(2024 + (month / 12) as i32, month % 12 + 1, 1)
            .and_then(|first| first.pred_opt())
            .unwrap()
    };
    for month in 1..12u32 {
        for group in keys(Dimension::StayGroup) {
            use chrono::Datelike;
            let upto = |end: chrono::NaiveDate| {
                Q::new(
                    Template::YouthInCare,
                    period(
                        (2024, 1, 1),
                        (end.year(), end.month() as i32, end.day() as i32),
                    ),
                )
                .filter(Dimension::StayGroup, &[group])
            };
            let (longer, shorter) = (upto(month_end(month + 1)), upto(month_end(month)));
            let (Some(a), Some(b)) = (r.attempt(&longer).await, r.attempt(&shorter).await) else {
                continue;
            };
            trials.push(
                Trial::default()
                    .term(1, a.total, r.truth(&longer).await.total)
                    .term(-1, b.total, r.truth(&shorter).await.total),
            );
        }
    }
    assert_family("shorter periods", &trials, r.ptable());
});

// Family 4: a filter split by age band: the filter's total minus all bands but one.
both_backends!(a_filter_split_by_age_band, |db| async move {
    let r = Region_::drenthe(db).await;
    let mut trials = Vec::new();
    for care in keys(Dimension::CareType) {
        // The filter's total and its age bands, as one table (a band alone is often below the
        // floor, a grouped cell is not refused).
        let q = Q::new(Template::YouthInCare, year(2024))
            .filter(Dimension::CareType, &[care])
            .by(Dimension::AgeBand);
        let Some(published) = r.attempt(&q).await else {
            continue;
        };
        let truth = r.truth(&q).await;
        let bands = keys(Dimension::AgeBand);
        for target in &bands {
            let mut trial = Trial::default().term(1, published.total, truth.total);
            for band in bands.iter().filter(|b| *b != target) {
                trial = trial.term(-1, published.cell(&[band]), truth.cell(&[band]));
            }
            trials.push(trial);
        }
    }
    assert_family("age-band split", &trials, r.ptable());
});

// Family 5: filter intersections. A filter selects on the counted unit, so filters partition
// youths: A + B = (A, B) before perturbation, checked against hand-written SQL, and no youth
// with placements of both kinds can be singled out.
both_backends!(filters_partition_the_counted_unit, |db| async move {
    let r = Region_::drenthe(db).await;
    // Ground truth by hand: each youth's most recent placement overlapping 2024.
    let counted = |values: &str| {
        format!(
            "SELECT COUNT(*) FROM (SELECT legal_basis, ROW_NUMBER() OVER (PARTITION BY youth_id \
             ORDER BY start_date DESC, care_type DESC, provider DESC) AS rn FROM placements \
             WHERE start_date <= '2024-12-31' AND (end_date IS NULL OR end_date >= '2024-01-01')) u \
             WHERE rn = 1 AND legal_basis IN ({values})"
        )
    };
    let bases = keys(Dimension::LegalBasis);
    for (i, a) in bases.iter().enumerate() {
        for b in &bases[i + 1..] {
            let q = |values: &[&str]| {
                Q::new(Template::YouthInCare, year(2024)).filter(Dimension::LegalBasis, values)
            };
            let (ta, tb, tab) = (
                r.truth(&q(&[a])).await.total,
                r.truth(&q(&[b])).await.total,
                r.truth(&q(&[a, b])).await.total,
            );
            assert_eq!(ta + tb, tab, "{a} + {b}");
            let by_hand = r.db.scalar(&counted(&format!("'{a}', '{b}'"))).await as u64;
            assert_eq!(tab, by_hand, "{a}, {b}");
        }
    }
});

// Family 6: length of stay. A group's figures depend on its own youths only: the same under
// every grouping and filter that selects it.
both_backends!(
    length_of_stay_figures_do_not_depend_on_the_grouping,
    |db| async move {
        let mut r = Region_::drenthe(db).await;
        // Stays span years: a region that allows ranges, asked over five.
        r.set(Settings {
            period_ranges: true,
            ..Settings::default()
        });
        let scope = period((2021, 1, 1), (2025, 12, 31));
        let grouped = r
            .published(&Q::new(Template::LengthOfStay, scope).by(Dimension::CareType))
            .await;
        let mut released = 0;
        for care in keys(Dimension::CareType) {
            let filtered = r
                .published(
                    &Q::new(Template::LengthOfStay, scope)
                        .filter(Dimension::CareType, &[care])
                        .by(Dimension::CareType),
                )
                .await;
            let key = vec![care.to_owned()];
            assert_eq!(
                filtered.statistics[&key], grouped.statistics[&key],
                "{care}"
            );
            assert_eq!(filtered.cell(&[care]), grouped.cell(&[care]), "{care}");
            if grouped.statistics[&key].iter().all(Option::is_some) {
                released += 1;
                assert!(
                    grouped.cell(&[care]) >= 10,
                    "figures only for 10+ published youths"
                );
            }
        }
        assert!(released >= 2, "ordinary groups get their figures");
    }
);

// Family 7: two ledgers. The same population through another requester (an aggregator, a
// second analyst, the node itself) publishes the identical count, so combining requesters
// gives the attacker nothing new.
both_backends!(
    every_requester_gets_the_same_published_counts,
    |db| async move {
        let r = Region_::drenthe(db).await;
        let q = Q::new(Template::YouthInCare, year(2024))
            .by(Dimension::StayGroup)
            .by(Dimension::AgeBand);
        let first = r.published(&q).await;
        for requester in ["00000099000000000102", "00000098000000000001", "local"] {
            let other = r.run(requester, &q, false).await.unwrap();
            assert_eq!(other, first, "{requester}");
        }
    }
);

// Family 9: refusal oracles. A refusal is decided on the published total, so it says no more
// than the published total would: a population of 1-6 youths is refused exactly like an empty
// one (under a floor of 10), and the refusal names only the rule.
both_backends!(
    refusals_tell_nothing_the_published_total_would_not,
    |db| async move {
        // A region that raised its floor to 10, and the same questions under the network floor
        // of 5 to see the published totals.
        let raised = Settings {
            population_floor: 10,
            ..Settings::default()
        };
        let r = Region_::new(db, Region::Drenthe, raised).await;
        let low_floor = Settings {
            population_floor: Settings::FLOOR.population_floor,
            ..Settings::default()
        };
        let open = Disclosure::new(low_floor, Some(Region::Drenthe), None)
            .unwrap()
            .with_secret(RecordKeySecret::from_bytes([Region::Drenthe as u8 + 1; 32]));
        let mut small = 0;
        for care in keys(Dimension::CareType) {
            for legal in keys(Dimension::LegalBasis) {
                let q = Q::new(Template::YouthInCare, year(2024))
                    .filter(Dimension::CareType, &[care])
                    .filter(Dimension::LegalBasis, &[legal]);
                let truth = r.truth(&q).await.total;
                let strict = r.run(ATTACKER, &q, false).await;
                // The same question under a lower floor shows the published total.
                let query = zicht_node::convert::query(&q.request()).unwrap();
                let call = Call {
                    store: &r.db.store,
                    disclosure: &open,
                    query: &query,
                    exact: false,
                    requester: "inspector",
                    person: None,
                    today: zicht_node::today(),
                };
                let published = execute(&call)
                    .await
                    .ok()
                    .map(|released| released.table.total.value);
                match strict {
                    Ok(table) => {
                        assert_eq!(Some(table.total), published);
                        assert!(table.total >= 10);
                    }
                    Err(Error::Disclosure(refusal)) => {
                        assert_eq!(
                        refusal.to_string(),
                        "population-floor: the published total is below 10; ask with a wider scope or fewer filters"
                    );
                        assert!(published.is_none_or(|p| p < 10), "{published:?}");
                    }
                    Err(other) => panic!("{other}"),
                }
                if (1..=6).contains(&truth) {
                    small += 1;
                    assert!(
                        r.run(ATTACKER, &q, false).await.is_err(),
                        "1-6 youths are refused like none"
                    );
                }
            }
        }
        assert!(small > 0, "the region has small populations to test");
    }
);

/// Twenty questions a regional data team asks in one session, by one requester.
fn ordinary_session() -> Vec<Q> {
    use Dimension::*;
    use Template::*;
    let yic = |scope| Q::new(YouthInCare, scope);
    let flows = |scope| Q::new(Flows, scope);
    let stays = |scope| Q::new(LengthOfStay, scope);
    let checks = Q {
        scope: pb::query_request::Scope::Peildatum(date(2025, 6, 30)),
        ..Q::new(Transition18, year(2025))
    };
    vec![
        yic(year(2024)).by(StayGroup),
        yic(year(2023)).by(StayGroup),
        yic(year(2024)).by(AgeBand),
        yic(year(2024)).by(LegalBasis),
        yic(year(2024)).by(PlacementRegion),
        yic(period((2024, 1, 1), (2024, 6, 30))).by(StayGroup),
        yic(year(2024)).by(CareType),
        yic(year(2024)).by(OriginRegion),
        yic(year(2024)).by(LandsdeelInside),
        yic(year(2024)).by(StayGroup).by(AgeBand),
        yic(year(2024))
            .filter(StayGroup, &["jeugdhulp_plus"])
            .by(AgeBand),
        flows(year(2024)).by(FlowKind),
        flows(year(2024))
            .filter(FlowKind, &["uitstroom"])
            .by(OutflowDestination),
        flows(year(2024))
            .filter(FlowKind, &["uitstroom"])
            .by(OutflowProfile),
        flows(year(2025)).by(FlowKind).by(CareType),
        stays(year(2024)).by(CareType),
        stays(year(2025)).by(StayGroup),
        checks.clone().by(Toekomstplan),
        checks.clone().by(After18Funding),
        checks.by(Big5Domain).by(Big5Status),
    ]
}

// Usefulness: every ordinary question of a session is answered (none refused, in any of three
// regions), and the published cells stay close to the truth.
both_backends!(an_ordinary_session_is_answered, |db| async move {
    let mut r = Region_::drenthe(db).await;
    for region in [Region::Drenthe, Region::AmsterdamAmstelland, Region::Twente] {
        if region != Region::Drenthe {
            let db = TestDb::new(r.db.store.backend()).await;
            r = Region_::new(db, region, Settings::default()).await;
        }
        let (mut refused, mut cells, mut deviation) = (Vec::new(), 0u64, 0u64);
        for q in ordinary_session() {
            match r.run("00000099000000000103", &q, false).await {
                Ok(published) => {
                    let truth = r.truth(&q).await;
                    for (key, value) in &published.cells {
                        let true_value = truth.cells.get(key).copied().unwrap_or(0);
                        assert!(value.abs_diff(true_value) <= 4);
                        deviation += value.abs_diff(true_value);
                        cells += 1;
                    }
                }
                Err(error) => refused.push(format!("{q:?}: {error}")),
            }
        }
        let mean = deviation as f64 / cells.max(1) as f64;
        eprintln!(
            "{region}: {} of 20 refused, {cells} cells, mean absolute deviation {mean:.2}",
            refused.len()
        );
        assert!(refused.is_empty(), "{region}: {refused:#?}");
        assert!(mean < 1.5, "{region}: mean absolute deviation {mean}");
        let watched = r
            .db
            .strings("SELECT outcome FROM release_log WHERE outcome LIKE '%decomposition-watch%'")
            .await;
        assert!(
            watched.is_empty(),
            "an ordinary session warns no auditor: {watched:?}"
        );
    }
});

// The auditor sees an averaging attack coming: the release that makes a requester's distinct
// populations of one template and period a multiple of 10 in 365 days is logged with the rule
// `decomposition-watch` (a node counts it in `zicht_decomposition_watch_total` too); other
// periods and other requesters count apart.
both_backends!(
    many_decompositions_of_one_template_and_period_warn_the_auditor,
    |db| async move {
        let r = Region_::drenthe(db).await;
        let dimensions = [
            Dimension::StayGroup,
            Dimension::AgeBand,
            Dimension::LegalBasis,
            Dimension::CareType,
            Dimension::OriginRegion,
            Dimension::PlacementRegion,
        ];
        let mut variants: Vec<Q> = dimensions
            .iter()
            .map(|&d| Q::new(Template::YouthInCare, year(2024)).by(d))
            .collect();
        for (i, &a) in dimensions.iter().enumerate() {
            for &b in &dimensions[i + 1..] {
                variants.push(Q::new(Template::YouthInCare, year(2024)).by(a).by(b));
            }
        }
        let watched = "SELECT outcome FROM release_log WHERE outcome LIKE '%decomposition-watch%'";
        for (n, q) in variants.iter().take(9).enumerate() {
            r.run(ATTACKER, q, false)
                .await
                .unwrap_or_else(|e| panic!("{n}: {e}"));
        }
        // Another period and another requester are other families: no warning yet.
        r.run(
            ATTACKER,
            &Q::new(Template::YouthInCare, year(2023)).by(Dimension::AgeBand),
            false,
        )
        .await
        .unwrap();
        r.run("00000099000000000102", &variants[9], false)
            .await
            .unwrap();
        r.run(ATTACKER, &variants[0], false)
            .await
            .expect("a repeat counts for nothing");
        assert!(r.db.strings(watched).await.is_empty());
        r.run(ATTACKER, &variants[9], false).await.unwrap();
        let outcomes = r.db.strings(watched).await;
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        assert!(
            outcomes[0].starts_with(&format!(
                "released; decomposition-watch: {ATTACKER} was given 10 distinct populations of \
                 youth_in_care over 2024-01-01..2024-12-31 in 365 days"
            )),
            "{outcomes:?}"
        );
        // The processing record says so too; the answer itself does not.
        let decisions =
            r.db.strings("SELECT body FROM processing_log WHERE body LIKE '%decomposition-watch%'")
                .await;
        assert_eq!(decisions.len(), 1);
    }
);

// Record keys follow the data: youths imported beside a running node are counted with their
// keys at once, each cell's key sum is exactly its youths' keys under the node's secret, and a
// new secret gives every youth a new key without any rewrite of the data.
both_backends!(
    youths_imported_later_are_counted_with_their_keys,
    |db| async move {
        let r = Region_::drenthe(db).await;
        let q = Q::new(Template::YouthInCare, year(2024)).by(Dimension::StayGroup);
        let before = r.truth(&q).await.total;
        r.published(&q).await;
        // The youths the total counts, from the table itself.
        const IN_2024: &str = "SELECT DISTINCT youth_id FROM placements \
             WHERE start_date <= '2024-12-31' AND (end_date IS NULL OR end_date >= '2024-01-01')";
        let query = zicht_store::CountQuery {
            template: Template::YouthInCare,
            scope: zicht_store::CountScope::Period {
                from: zicht_model::parse_date("2024-01-01").unwrap(),
                to: zicht_model::parse_date("2024-12-31").unwrap(),
            },
            filters: &[],
            group_by: &[],
        };
        let key_sum = |disclosure: &Disclosure| {
            let keys = disclosure.record_keys().unwrap();
            let store = r.db.store.clone();
            async move {
                let rows = store
                    .person_counts(&query, Some(&keys))
                    .await
                    .unwrap()
                    .unwrap();
                rows[0].record_key_sum
            }
        };
        let expected = |secret: &RecordKeySecret, youths: &[String]| -> i64 {
            youths.iter().map(|y| i64::from(secret.record_key(y))).sum()
        };
        // The node's secret, as `Region_::new` made it.
        let secret = RecordKeySecret::from_bytes([Region::Drenthe as u8 + 1; 32]);
        let youths = r.db.strings(IN_2024).await;
        assert_eq!(key_sum(&r.disclosure).await, expected(&secret, &youths));

        // Twelve more youths in pleegzorg in 2024, imported beside the running node.
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile\n");
        for i in 0..12 {
            csv.push_str(&format!(
                "NEW{i},2010-01-01,drenthe,Assen,P,Assen,drenthe,pleegzorg,,ots,2024-03-01,,,\n"
            ));
        }
        let path = dir.path().join("placements.csv");
        std::fs::write(&path, csv).unwrap();
        zicht_store::import::import_file(&r.db.store, &path, None, Default::default(), &mut ())
            .await
            .unwrap();
        let after = r.published(&q).await;
        assert_eq!(r.truth(&q).await.total, before + 12);
        assert!(
            after.total.abs_diff(before + 12) <= 3,
            "the new youths are counted"
        );
        let youths = r.db.strings(IN_2024).await;
        assert_eq!(youths.len() as u64, before + 12);
        assert_eq!(key_sum(&r.disclosure).await, expected(&secret, &youths));

        // Another secret: its own keys for every youth, from the same rows.
        let other_secret = RecordKeySecret::from_bytes([99; 32]);
        let other = Disclosure::default()
            .for_region(Some(Region::Drenthe))
            .with_secret(other_secret.clone());
        assert_eq!(key_sum(&other).await, expected(&other_secret, &youths));
        assert_ne!(expected(&other_secret, &youths), expected(&secret, &youths));
        assert_eq!(
            key_sum(&r.disclosure).await,
            expected(&secret, &youths),
            "the same secret gives the same keys after a rebuild"
        );
    }
);

// The per-day limit of distinct populations bounds averaging over many decompositions: it is
// decided on the request alone, a repeat does not count, and each requester has their own.
both_backends!(
    distinct_populations_per_requester_and_day_are_limited,
    |db| async move {
        let limited = Settings {
            max_populations_per_day: 3,
            ..Settings::default()
        };
        let r = Region_::new(db, Region::Drenthe, limited).await;
        let by = |dimension| Q::new(Template::YouthInCare, year(2024)).by(dimension);
        for dimension in [
            Dimension::StayGroup,
            Dimension::AgeBand,
            Dimension::LegalBasis,
        ] {
            r.published(&by(dimension)).await;
        }
        r.published(&by(Dimension::StayGroup)).await;
        match r.run(ATTACKER, &by(Dimension::CareType), false).await {
        Err(Error::Disclosure(refusal)) => assert_eq!(
            refusal.to_string(),
            "distinct-populations: you were given 3 distinct populations today, this node's limit; ask again tomorrow"
        ),
        other => panic!("{other:?}"),
    }
        r.run("00000099000000000102", &by(Dimension::CareType), false)
            .await
            .unwrap();
        r.run("owner", &by(Dimension::CareType), true)
            .await
            .unwrap();
    }
);

/// What drenthe's node (`f`) releases to jenn asking for `person` (a dev PKI name, with their
/// delegation; none: jenn on its own): youth in care in 2024 grouped by `by`.
async fn through_jenn(
    f: &zicht_testkit::node::NodeFixture,
    person: Option<&str>,
    by: &str,
) -> Result<tonic::Response<pb::ProtectedResult>, tonic::Status> {
    let jenn = zicht_model::NodeName::Network(zicht_model::Network::Jenn);
    let mut request = Ask::youth_in_care(2024).by(by).request();
    if let Some(person) = person {
        let (cert, key) = f.pki.person(person);
        let query = request.get_ref().clone();
        zicht_node::identity::Delegator::from_files(&cert, &key)
            .unwrap()
            .attach(jenn, &query, request.metadata_mut())
            .unwrap();
    }
    let mut client = pb::inway_client::InwayClient::new(f.channel_as_node(jenn).await);
    client.query(request).await
}

// Budgets of distinct populations are each person's own (a node asking for its people spends
// theirs and, four times as large, its own), they run over a day and over 365 days, and they
// are stored: a restart does not give them back. Over mutual TLS, as jenn asking drenthe.
both_backends!(
    a_persons_budget_is_their_own_and_survives_a_restart,
    |db| async move {
        let backend = db.store.backend();
        drop(db);
        const POLICY: &str = r#"
[[grant]]
role = "network:jenn"
templates = ["youth_in_care"]
purposes = ["bovenregionale-sturing"]
group_by = ["stay_group", "age_band", "legal_basis", "care_type", "origin_region", "placement_region"]
quota_per_minute = 100000
"#;
        let limited = Settings {
            max_populations_per_day: 3,
            max_populations_per_year: 4,
            ..Settings::default()
        };
        let mut f = zicht_testkit::node::spawn_node_on(
            backend,
            POLICY,
            zicht_node::Limits::default(),
            move |settings, _| {
                settings.disclosure = Disclosure::new(
                    limited,
                    Some(Region::Drenthe),
                    Some(RecordKeySecret::from_bytes([5; 32])),
                )
                .unwrap();
            },
        )
        .await;
        let by = [
            "stay_group",
            "age_band",
            "legal_basis",
            "care_type",
            "origin_region",
            "placement_region",
        ];
        let refused = |result: Result<tonic::Response<pb::ProtectedResult>, tonic::Status>| {
            let status = result.unwrap_err();
            assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
            status.message().to_owned()
        };
        // Drenthe's analyst: three a day.
        for dimension in &by[..3] {
            through_jenn(&f, Some("analyst-drenthe"), dimension)
                .await
                .unwrap();
        }
        through_jenn(&f, Some("analyst-drenthe"), by[0])
            .await
            .expect("a repeat does not count");
        assert_eq!(
            refused(through_jenn(&f, Some("analyst-drenthe"), by[3]).await),
            "refused by disclosure control: distinct-populations: you were given 3 distinct \
             populations today, this node's limit; ask again tomorrow"
        );
        // Friesland's analyst, through the same node, has a budget of their own.
        for dimension in &by[2..5] {
            through_jenn(&f, Some("analyst-friesland"), dimension)
                .await
                .unwrap();
        }
        // A restart gives nothing back: the budgets are in the database.
        f.restart().await;
        assert!(
            refused(through_jenn(&f, Some("analyst-drenthe"), by[4]).await)
                .contains("you were given 3")
        );
        through_jenn(&f, Some("analyst-drenthe"), by[1])
            .await
            .expect("a question asked before is still a repeat");
        // Asking on its own, jenn has a person's budget: its people's five distinct questions
        // (within its own four-fold budget for them) leave it none of its own today.
        assert!(refused(through_jenn(&f, None, by[5]).await)
            .contains("you were given 3 distinct populations today"));
        let rows =
            f.db.scalar("SELECT COUNT(*) FROM released_populations")
                .await;
        assert_eq!(
            rows,
            3 + 3 + 5,
            "each person's three, and jenn's five distinct ones"
        );
    }
);

// The vocabulary of a perturbed question, decided on the request alone: a filter keeps one
// value or one code-list group, never leaves values out, and a question constrains at most
// `max_dimensions` dimensions (a filter keeping one flow kind picks the unit and does not
// count). The data's owner asks anything; a region may allow three dimensions.
both_backends!(the_vocabulary_of_a_perturbed_question, |db| async move {
    use Dimension::*;
    let mut r = Region_::drenthe(db).await;
    let refusal = |result: Result<Table, Error>| match result {
        Err(Error::Disclosure(refusal)) => refusal,
        other => panic!("{:?}", other.map(|t| t.total)),
    };
    use zicht_model::CodeList;
    let jeugdhulp_plus: Vec<&str> = zicht_model::CareType::ALL
        .iter()
        .filter(|c| c.stay_group() == zicht_model::StayGroup::JeugdhulpPlus)
        .map(|c| c.code())
        .collect();
    let yic = || Q::new(Template::YouthInCare, year(2024));
    let not_a_group = yic()
        .filter(CareType, &["pleegzorg", "gezinshuis"])
        .by(AgeBand);
    assert!(matches!(
        refusal(r.run(ATTACKER, &not_a_group, false).await),
        Refusal::FilterVocabulary(_)
    ));
    let group = yic().filter(CareType, &jeugdhulp_plus).by(AgeBand);
    r.run(ATTACKER, &group, false).await.unwrap();
    let mut left_out = yic()
        .filter(CareType, &jeugdhulp_plus)
        .by(AgeBand)
        .request();
    left_out.filters[0].exclude = true;
    assert!(matches!(
        r.run_request(ATTACKER, &left_out, false).await,
        Err(Error::Disclosure(Refusal::LeaveOut(_)))
    ));
    let three = yic()
        .filter(PlacementRegion, &["drenthe"])
        .by(CareType)
        .by(AgeBand);
    assert_eq!(
        refusal(r.run(ATTACKER, &three, false).await),
        Refusal::Dimensions { limit: 2 }
    );
    // A dimension both filtered and grouped counts once.
    let once = yic()
        .filter(CareType, &jeugdhulp_plus)
        .by(CareType)
        .by(AgeBand);
    r.run(ATTACKER, &once, false).await.unwrap();
    // One flow kind kept picks the unit; grouped by flow kind, it is a dimension.
    let flows = || Q::new(Template::Flows, year(2024));
    let uitstroom = flows()
        .filter(FlowKind, &["uitstroom"])
        .filter(CareType, &jeugdhulp_plus)
        .by(OutflowProfile);
    r.run(ATTACKER, &uitstroom, false).await.unwrap();
    let by_kind = flows()
        .filter(FlowKind, &["uitstroom"])
        .filter(CareType, &jeugdhulp_plus)
        .by(FlowKind)
        .by(OutflowProfile);
    assert_eq!(
        refusal(r.run(ATTACKER, &by_kind, false).await),
        Refusal::Dimensions { limit: 2 }
    );
    // The owner asks anything.
    r.run("owner", &three, true).await.unwrap();
    r.run_request("owner", &left_out, true).await.unwrap();
    // A region may allow three.
    r.set(Settings {
        max_dimensions: 3,
        ..Settings::default()
    });
    r.run(ATTACKER, &three, false).await.unwrap();
});

/// How many ways one small cell of one dimension (a care type, a flow kind, an outcome) can be
/// written as a sum of other released cells of its template and period, each an independent
/// estimate of it, when `dimensions` are granted. With the vocabulary (at most two dimensions
/// per question, filters keep one value or one group): one per other dimension (grouped by
/// it), and one more where the dimension's groups partition its values (the landsdelen, the
/// stay groups), asked one group at a time. Before (any value set, kept or left out, on any
/// number of dimensions), every split of another dimension's values into a set and its
/// complement was one, and so was every combination of such splits; only the single splits are
/// counted here. Returns (with the vocabulary, before) for the worst target dimension.
fn decompositions_of_a_cell(dimensions: &[Dimension], on: zicht_model::NaiveDate) -> (u64, f64) {
    let mut worst = (0u64, 0f64);
    for &target in dimensions {
        let mut now = 0u64;
        let mut before = 0f64;
        for &other in dimensions.iter().filter(|d| **d != target) {
            let partitioned = !zicht_model::filter_groups(other, on).is_empty();
            now += 1 + u64::from(partitioned);
            let n = other.domain().map_or(2, |values| values.len()) as f64;
            before += 2f64.powf(n - 1.0) - 1.0 + 1.0;
        }
        worst = (worst.0.max(now), worst.1.max(before));
    }
    worst
}

/// Per template, under the network grant the shipped policies give (`deploy/policies`, the
/// grants to `network:jenn`): how many independent estimates of one small cell the vocabulary
/// leaves, against before (printed for `docs/privacy.md`).
#[test]
fn the_vocabulary_bounds_the_decompositions_of_a_small_cell() {
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/policies/drenthe.toml"
    ))
    .unwrap();
    let policy = zicht_node::policy::parse_policy(&policy, None).unwrap();
    let grant = policy
        .grants
        .iter()
        .find(|g| {
            g.templates.contains(&Template::YouthInCare)
                && g.who == zicht_node::policy::Who::Network(Some(zicht_model::Network::Jenn))
        })
        .unwrap();
    let on = zicht_model::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
    for template in [
        Template::YouthInCare,
        Template::Flows,
        Template::LengthOfStay,
        Template::Transition18,
    ] {
        let dimensions: Vec<Dimension> = template
            .dimensions()
            .iter()
            .copied()
            .filter(|d| grant.group_by.contains(d))
            .collect();
        let (now, before) = decompositions_of_a_cell(&dimensions, on);
        eprintln!(
            "{template}: {} granted dimensions; independent estimates of one small cell per period: at most {now} with the vocabulary, {before:.3e} before",
            dimensions.len()
        );
        assert!((now as f64) < before || dimensions.len() < 2);
        assert!(now <= 2 * dimensions.len() as u64);
    }
}
