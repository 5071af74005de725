//! The person-count templates over the in-memory snapshot: one pass over each youth's rows
//! picks the youth's unit (the definitions are in the module above), then every unit is
//! filtered and grouped on small numbers, and only the groups become text.

use std::collections::HashMap;

use chrono::{Months, NaiveDate};
use zicht_model::{
    AgeBand, Big5Domain, CareType, CodeList, Dimension, FlowKind, Landsdeel, Region, Template,
    NOT_APPLICABLE, UNKNOWN,
};

use super::{CountQuery, CountRow, CountScope, MeasureFigures, StayFigures};
use crate::snapshot::{day, Check, Day, Mark, Snapshot, Stay, NO_BIRTH, NO_CODE, OPEN};

/// The values a query's units can take, numbered: first the snapshot's codes (a code's
/// number is its index there), then the values the templates derive.
struct Labels {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Labels {
    fn new(codes: &[String]) -> Labels {
        let mut labels = Labels {
            names: Vec::with_capacity(codes.len() + 32),
            index: HashMap::new(),
        };
        for code in codes {
            labels.id(code);
        }
        labels
    }

    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }
}

/// The derived values of one query, as label numbers.
struct Derived {
    /// Per code: its stay group when it is a care type (else `''`).
    stay_group: Vec<u32>,
    /// Per code: the number of its landsdeel when it is a region (else 0).
    landsdeel: Vec<u8>,
    unknown: u32,
    inside: u32,
    outside: u32,
    yes: u32,
    no: u32,
    not_applicable: u32,
    /// Born after the day, younger than the band after: `(day, band)` in band order.
    age_cutoffs: Vec<(Day, u32)>,
    oldest: u32,
    kinds: [u32; 3],
    /// Outflow profile 0 (unknown) to 4.
    profiles: [u32; 5],
    domains: [u32; 5],
    /// `age` and `turns_18` on the reference date: born after the day, that value; else the
    /// last.
    ages: (Vec<(Day, u32)>, u32),
    turns_18: (Vec<(Day, u32)>, u32),
    /// The `stay_length` bands, in [`zicht_model::STAY_LENGTHS`] order.
    stay_lengths: Vec<u32>,
}

impl Derived {
    fn new(labels: &mut Labels, codes: &[String], reference: NaiveDate) -> Derived {
        let stay_group = codes
            .iter()
            .map(|code| {
                let group = CareType::from_code(code).map_or("", |c| c.stay_group().code());
                labels.id(group)
            })
            .collect();
        let landsdeel = codes
            .iter()
            .map(|code| {
                Region::from_code(code).map_or(0, |r| {
                    Landsdeel::ALL
                        .iter()
                        .position(|l| *l == r.landsdeel())
                        .map_or(0, |p| p as u8 + 1)
                })
            })
            .collect();
        let bands = AgeBand::ALL;
        let age_cutoffs = bands
            .windows(2)
            .map(|w| {
                let cutoff = reference
                    .checked_sub_months(Months::new(12 * w[1].min_age()))
                    .unwrap_or(NaiveDate::MIN);
                (day(cutoff), labels.id(w[0].code()))
            })
            .collect();
        let oldest = labels.id(bands.last().map_or("", |b| b.code()));
        let kinds = [
            FlowKind::Instroom,
            FlowKind::Doorplaatsing,
            FlowKind::Uitstroom,
        ]
        .map(|k| labels.id(k.code()));
        let unknown = labels.id(UNKNOWN);
        let profiles = [0, 1, 2, 3, 4].map(|p| match p {
            0 => unknown,
            p => labels.id(&p.to_string()),
        });
        let mut domains = [0; 5];
        for (slot, domain) in domains.iter_mut().zip(Big5Domain::ALL) {
            *slot = labels.id(domain.code());
        }
        let mut births = |dimension| {
            let (cutoffs, last) =
                zicht_model::birth_cutoffs(dimension, reference).unwrap_or_default();
            let cutoffs = cutoffs
                .into_iter()
                .map(|(cutoff, value)| (day(cutoff), labels.id(value)))
                .collect();
            (cutoffs, labels.id(last))
        };
        let ages = births(Dimension::AgeOnPeildatum);
        let turns_18 = births(Dimension::Turns18);
        let stay_lengths = zicht_model::STAY_LENGTHS
            .iter()
            .map(|(band, _)| labels.id(band))
            .collect();
        Derived {
            stay_group,
            landsdeel,
            unknown,
            inside: labels.id("binnen"),
            outside: labels.id("buiten"),
            yes: labels.id("ja"),
            no: labels.id("nee"),
            not_applicable: labels.id(NOT_APPLICABLE),
            age_cutoffs,
            oldest,
            kinds,
            profiles,
            domains,
            ages,
            turns_18,
            stay_lengths,
        }
    }

    /// A birth date read by `age` or `turns_18` (`onbekend` without one).
    fn by_birth(&self, (cutoffs, last): &(Vec<(Day, u32)>, u32), birth: Day) -> u32 {
        if birth == NO_BIRTH {
            return self.unknown;
        }
        cutoffs
            .iter()
            .find(|(cutoff, _)| birth > *cutoff)
            .map_or(*last, |(_, value)| *value)
    }

    fn age_band(&self, birth: Day) -> u32 {
        self.age_cutoffs
            .iter()
            .find(|(cutoff, _)| birth > *cutoff)
            .map_or(self.oldest, |(_, band)| *band)
    }

    /// Inside or outside the landsdeel of the origin region (`onbekend` for an unknown
    /// origin).
    fn landsdeel_inside(&self, unknown_origin: bool, origin: u16, placement: u16) -> u32 {
        if unknown_origin {
            self.unknown
        } else if self.landsdeel[origin as usize] == self.landsdeel[placement as usize] {
            self.inside
        } else {
            self.outside
        }
    }
}

/// One group's running totals.
#[derive(Default)]
struct Totals {
    youths: i64,
    record_key_sum: i64,
    days: Vec<i64>,
    measures: i64,
    max_per_youth: i64,
}

/// What a unit adds to its group beyond itself.
#[derive(Clone, Copy)]
enum Extra {
    None,
    /// `length_of_stay`: the stay's days.
    Days(i64),
    /// `measures`: the unit's measures.
    Measures(i64),
}

/// Filters units and adds them to their groups.
struct Groups<'q> {
    /// Per filter: its dimension and, per label, whether a unit with it is kept.
    filters: Vec<(Dimension, Vec<bool>)>,
    group_by: &'q [Dimension],
    groups: HashMap<Vec<u32>, Totals>,
    key: Vec<u32>,
}

impl<'q> Groups<'q> {
    fn new(query: &CountQuery<'q>, labels: &Labels) -> Groups<'q> {
        let filters = query
            .filters
            .iter()
            .map(|filter| {
                let kept = labels
                    .names
                    .iter()
                    .map(|name| filter.values.iter().any(|v| v == name) != filter.exclude)
                    .collect();
                (filter.dimension, kept)
            })
            .collect();
        Groups {
            filters,
            group_by: query.group_by,
            groups: HashMap::new(),
            key: Vec::with_capacity(query.group_by.len()),
        }
    }

    /// Adds a unit whose dimensions take `value(dimension)`, with its record key and what
    /// else its template counts.
    fn add(&mut self, value: impl Fn(Dimension) -> u32, record_key: Option<u32>, extra: Extra) {
        if !self
            .filters
            .iter()
            .all(|(dimension, kept)| kept[value(*dimension) as usize])
        {
            return;
        }
        self.key.clear();
        self.key.extend(self.group_by.iter().map(|d| value(*d)));
        let totals = match self.groups.get_mut(&self.key) {
            Some(totals) => totals,
            None => self.groups.entry(self.key.clone()).or_default(),
        };
        totals.youths += 1;
        if let Some(key) = record_key {
            totals.record_key_sum += i64::from(key);
        }
        match extra {
            Extra::None => {}
            Extra::Days(days) => totals.days.push(days),
            Extra::Measures(n) => {
                totals.measures += n;
                totals.max_per_youth = totals.max_per_youth.max(n);
            }
        }
    }

    /// The groups as rows, ordered by key.
    fn rows(self, labels: &Labels, template: Template) -> Vec<CountRow> {
        let mut rows: Vec<CountRow> = self
            .groups
            .into_iter()
            .map(|(key, totals)| CountRow {
                key: key
                    .iter()
                    .map(|&l| labels.names[l as usize].clone())
                    .collect(),
                youths: totals.youths,
                record_key_sum: totals.record_key_sum,
                measures: (template == Template::Measures).then_some(MeasureFigures {
                    measures: totals.measures,
                    max_per_youth: totals.max_per_youth,
                }),
                stay: (template == Template::LengthOfStay).then(|| stay_figures(totals.days)),
            })
            .collect();
        rows.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        rows
    }
}

/// Sum, maximum, median (rank ceil(n/2)) and p90 (rank ceil(0.9 n)) of a group's days.
fn stay_figures(mut days: Vec<i64>) -> StayFigures {
    days.sort_unstable();
    let n = days.len();
    let at = |rank: usize| days.get(rank.max(1) - 1).copied().unwrap_or(0);
    StayFigures {
        sum_days: days.iter().sum(),
        max_days: days.last().copied().unwrap_or(0),
        median_days: at(n.div_ceil(2)),
        p90_days: at((n * 9).div_ceil(10)),
    }
}

/// The value of a placement-based unit's dimension.
fn stay_value(
    stay: &Stay,
    dimension: Dimension,
    derived: &Derived,
    unknown_code: Option<u16>,
) -> u32 {
    match dimension {
        Dimension::OriginRegion => u32::from(stay.origin_region),
        Dimension::PlacementRegion => u32::from(stay.placement_region),
        Dimension::CareType => u32::from(stay.care_type),
        Dimension::LegalBasis => u32::from(stay.legal_basis),
        Dimension::StayGroup => derived.stay_group[stay.care_type as usize],
        Dimension::AgeBand => derived.age_band(stay.birth),
        Dimension::LandsdeelInside => derived.landsdeel_inside(
            Some(stay.origin_region) == unknown_code,
            stay.origin_region,
            stay.placement_region,
        ),
        // Only `length_of_stay` has it, over ended stays.
        Dimension::StayLength => {
            derived.stay_lengths
                [zicht_model::stay_length_band(i64::from(stay.end) - i64::from(stay.start))]
        }
        // `validate` lets no other dimension reach a placement-based template.
        _ => derived.unknown,
    }
}

/// Runs a validated query over the snapshot.
pub(super) fn person_counts(snapshot: &Snapshot, query: &CountQuery<'_>) -> Vec<CountRow> {
    let reference = match query.scope {
        CountScope::Period { to, .. } => to,
        CountScope::Peildatum(peildatum) => peildatum,
    };
    let mut labels = Labels::new(&snapshot.codes);
    let derived = Derived::new(&mut labels, &snapshot.codes, reference);
    let unknown_code = snapshot
        .codes
        .iter()
        .position(|c| c == UNKNOWN)
        .map(|p| p as u16);
    // The providers and facilities measures name, as values (before the filters read the
    // labels).
    let names: Vec<u32> = match query.template {
        Template::Measures => snapshot.names.iter().map(|n| labels.id(n)).collect(),
        _ => Vec::new(),
    };
    let mut groups = Groups::new(query, &labels);
    match (query.template, query.scope) {
        (Template::YouthInCare, CountScope::Period { from, to }) => {
            let (from, to) = (day(from), day(to));
            let separatie = query.uses(Dimension::Separatie);
            for (youth, stays) in snapshot.placements.youths().enumerate() {
                // The most recent placement overlapping the period (rows are in key order).
                if let Some(stay) = stays.iter().rev().find(|s| s.start <= to && s.end >= from) {
                    let separated = separatie
                        && snapshot
                            .separaties
                            .of(youth)
                            .iter()
                            .any(|d| (from..=to).contains(d));
                    groups.add(
                        |d| match d {
                            Dimension::Separatie if separated => derived.yes,
                            Dimension::Separatie => derived.no,
                            d => stay_value(stay, d, &derived, unknown_code),
                        },
                        stay.record_key,
                        Extra::None,
                    );
                }
            }
        }
        (Template::Flows, CountScope::Period { from, to }) => {
            flows(snapshot, (day(from), day(to)), &derived, &mut groups);
        }
        (Template::LengthOfStay, CountScope::Period { from, to }) => {
            let (from, to) = (day(from), day(to));
            for stays in snapshot.placements.youths() {
                // The most recently ended stay: latest end, then start, care type, provider.
                let ended = stays
                    .iter()
                    .filter(|s| s.end != OPEN && s.end >= from && s.end <= to)
                    .max_by_key(|s| (s.end, s.start, s.care_rank, s.provider_rank));
                if let Some(stay) = ended {
                    groups.add(
                        |d| stay_value(stay, d, &derived, unknown_code),
                        stay.record_key,
                        Extra::Days(i64::from(stay.end) - i64::from(stay.start)),
                    );
                }
            }
        }
        (Template::Transition18, CountScope::Peildatum(peildatum)) => {
            transition18(snapshot, query, peildatum, &derived, &mut groups);
        }
        (Template::Measures, CountScope::Period { from, to }) => {
            let values = (names.as_slice(), derived.unknown);
            measures(snapshot, query, (day(from), day(to)), values, &mut groups);
        }
        // `validate` lets no other pair through.
        _ => {}
    }
    groups.rows(&labels, query.template)
}

/// One flow event: the placement it comes from, its kind (index into `Derived::kinds`) and
/// its day.
#[derive(Clone, Copy)]
struct Event<'s> {
    stay: &'s Stay,
    kind: usize,
    day: Day,
}

impl Event<'_> {
    /// The order among a youth's events of one kind: latest day, then care type, provider
    /// and start.
    fn rank(&self) -> (Day, u16, u32, Day) {
        (
            self.day,
            self.stay.care_rank,
            self.stay.provider_rank,
            self.stay.start,
        )
    }
}

fn flows<'s>(
    snapshot: &'s Snapshot,
    (from, to): (Day, Day),
    derived: &Derived,
    groups: &mut Groups<'_>,
) {
    let transfer = FlowKind::TRANSFER_DAYS as Day;
    for stays in snapshot.placements.youths() {
        let mut latest: [Option<Event<'_>>; 3] = [None; 3];
        let mut keep = |event: Event<'s>| {
            let slot = &mut latest[event.kind];
            if slot.is_none_or(|best| event.rank() > best.rank()) {
                *slot = Some(event);
            }
        };
        // Rows are ordered by start: those starting before row `i` are a prefix, and the
        // first starting after it follows the rows sharing its start.
        let mut run_start = 0;
        let mut latest_end_before = Day::MIN;
        for (i, stay) in stays.iter().enumerate() {
            if stay.start != stays[run_start].start {
                for earlier in &stays[run_start..i] {
                    latest_end_before = latest_end_before.max(earlier.end);
                }
                run_start = i;
            }
            if stay.start >= from
                && stay.start <= to
                && latest_end_before < stay.start.saturating_sub(transfer)
            {
                keep(Event {
                    stay,
                    kind: 0,
                    day: stay.start,
                });
            }
            if stay.end != OPEN && stay.end >= from && stay.end <= to {
                let next = stays[i..].iter().find(|s| s.start > stay.start);
                let transferred =
                    next.is_some_and(|n| n.start <= stay.end.saturating_add(transfer));
                keep(Event {
                    stay,
                    kind: if transferred { 1 } else { 2 },
                    day: stay.end,
                });
            }
        }
        for event in latest.into_iter().flatten() {
            let stay = event.stay;
            let ended = event.kind != 0;
            groups.add(
                |d| match d {
                    Dimension::FlowKind => derived.kinds[event.kind],
                    Dimension::CareType => u32::from(stay.care_type),
                    Dimension::OriginRegion => u32::from(stay.origin_region),
                    Dimension::OutflowDestination if !ended => derived.not_applicable,
                    Dimension::OutflowDestination if stay.outflow_destination == NO_CODE => {
                        derived.unknown
                    }
                    Dimension::OutflowDestination => u32::from(stay.outflow_destination),
                    Dimension::OutflowProfile if !ended => derived.not_applicable,
                    Dimension::OutflowProfile => derived
                        .profiles
                        .get(stay.outflow_profile as usize)
                        .copied()
                        .unwrap_or(derived.unknown),
                    _ => derived.unknown,
                },
                stay.record_key,
                Extra::None,
            );
        }
    }
}

fn transition18(
    snapshot: &Snapshot,
    query: &CountQuery<'_>,
    peildatum: NaiveDate,
    derived: &Derived,
    groups: &mut Groups<'_>,
) {
    let since = peildatum
        .checked_sub_months(Months::new(6))
        .unwrap_or(NaiveDate::MIN);
    let (peil, since) = (day(peildatum), day(since));
    let per_domain = query.uses(Dimension::Big5Domain) || query.uses(Dimension::Big5Status);
    for checks in snapshot.checks.youths() {
        let Some(check) = checks
            .iter()
            .rev()
            .find(|c| c.date <= peil && c.date > since)
        else {
            continue;
        };
        let value = |d: Dimension, domain: usize, check: &Check| match d {
            Dimension::Toekomstplan if check.toekomstplan => derived.yes,
            Dimension::Toekomstplan => derived.no,
            Dimension::After18Funding => u32::from(check.after18_funding),
            Dimension::Big5Domain => derived.domains[domain],
            Dimension::Big5Status => u32::from(check.big5[domain]),
            Dimension::AgeOnPeildatum => derived.by_birth(&derived.ages, check.birth),
            Dimension::Turns18 => derived.by_birth(&derived.turns_18, check.birth),
            _ => derived.unknown,
        };
        if per_domain {
            for domain in 0..Big5Domain::ALL.len() {
                groups.add(|d| value(d, domain, check), check.record_key, Extra::None);
            }
        } else {
            groups.add(|d| value(d, 0, check), check.record_key, Extra::None);
        }
    }
}

fn measures(
    snapshot: &Snapshot,
    query: &CountQuery<'_>,
    (from, to): (Day, Day),
    (names, unknown): (&[u32], u32),
    groups: &mut Groups<'_>,
) {
    let per_kind = query.uses(Dimension::MeasureKind);
    let value = |d: Dimension, mark: &Mark| match d {
        Dimension::MeasureKind => u32::from(mark.kind),
        Dimension::PlacementRegion => u32::from(mark.placement_region),
        Dimension::Provider => names[mark.provider as usize],
        Dimension::Facility => names[mark.facility as usize],
        // `validate` lets no other dimension reach `measures`.
        _ => unknown,
    };
    // Kinds seen for one youth, with their latest measure and how many.
    let mut kinds: Vec<(u16, &Mark, i64)> = Vec::new();
    for marks in snapshot.measures.youths() {
        // Rows are in "latest" order: the last one in the period wins.
        let in_period = marks.iter().filter(|m| m.day >= from && m.day <= to);
        if per_kind {
            kinds.clear();
            for mark in in_period {
                match kinds.iter_mut().find(|(k, _, _)| *k == mark.kind) {
                    Some(seen) => *seen = (mark.kind, mark, seen.2 + 1),
                    None => kinds.push((mark.kind, mark, 1)),
                }
            }
            for &(_, mark, n) in &kinds {
                groups.add(|d| value(d, mark), mark.record_key, Extra::Measures(n));
            }
        } else {
            let (n, latest) = in_period.fold((0, None), |(n, _), m| (n + 1, Some(m)));
            if let Some(mark) = latest {
                groups.add(|d| value(d, mark), mark.record_key, Extra::Measures(n));
            }
        }
    }
}
