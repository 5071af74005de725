//! Merging the protected results of several nodes, honestly: counts add exactly where every
//! contribution was released; a small or suppressed contribution turns the merged cell into an
//! interval `[low, high]` that is certain to hold the true count. The merged table is then
//! protected again under the merging node's own settings before anyone sees it.
//!
//! Pure functions over the wire types; no I/O. The attacker model is the one of
//! `zicht-privacy`: whoever reads the merged table knows every cell as shown and the total, and
//! may solve for a cell through the total (the only relation a single released table carries).

use std::collections::HashMap;

use zicht_model::{CodeList, Dimension, Template};
use zicht_privacy::{Refusal, Settings};
use zicht_proto::v1 as pb;

/// What a shown cell says about the count behind it: it lies in `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Smallest possible count.
    pub low: u64,
    /// Largest possible count.
    pub high: u64,
}

impl Span {
    /// Exactly `n`.
    pub fn exact(n: u64) -> Span {
        Span { low: n, high: n }
    }

    fn add(self, other: Span) -> Span {
        Span {
            low: self.low.saturating_add(other.low),
            high: self.high.saturating_add(other.high),
        }
    }

    /// Whether the count is known exactly.
    pub fn is_exact(self) -> bool {
        self.low == self.high
    }
}

/// What `cell` says about its count. A suppressed cell says only that it is at most
/// `suppressed_high` (what the table's total leaves for it).
pub fn span_of(cell: &pb::CellValue, suppressed_high: u64) -> Span {
    use pb::cell_value::Value;
    match &cell.value {
        Some(Value::Exact(n)) => rounded_span(*n, u64::from(cell.rounding_base)),
        Some(Value::Small(small)) => Span {
            low: 0,
            high: u64::from(small.threshold.saturating_sub(1)),
        },
        Some(Value::Interval(interval)) => Span {
            low: interval.low,
            high: interval.high.max(interval.low),
        },
        Some(Value::Suppressed(_)) | None => Span {
            low: 0,
            high: suppressed_high,
        },
    }
}

/// The counts that round to `shown` with base `base` (rounding half up, as
/// `zicht_privacy::protect` does).
fn rounded_span(shown: u64, base: u64) -> Span {
    if base == 0 {
        return Span::exact(shown);
    }
    let half = base / 2;
    Span {
        low: shown.saturating_sub(half),
        high: shown.saturating_add(base - 1 - half),
    }
}

/// Why one node's answer cannot be merged (a wrong or tampered answer). Never data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("its answer does not match the request: {0}")]
pub struct Mismatch(pub &'static str);

/// Checks that `result` answers `template` grouped by `dimensions`, with known codes.
pub fn check_answer(
    result: &pb::ProtectedResult,
    template: Template,
    dimensions: &[Dimension],
) -> Result<(), Mismatch> {
    if result.template != template.code() {
        return Err(Mismatch("another template"));
    }
    let asked: Vec<&str> = dimensions.iter().map(|d| d.code()).collect();
    if result.dimensions != asked {
        return Err(Mismatch("other dimensions"));
    }
    if result.total.is_none() {
        return Err(Mismatch("no total"));
    }
    for row in &result.rows {
        if row.key.len() != dimensions.len() || row.count.is_none() {
            return Err(Mismatch("a row of another shape"));
        }
        for (value, dimension) in row.key.iter().zip(dimensions) {
            if let Some(domain) = dimension.domain() {
                if !domain.contains(&value.as_str()) {
                    return Err(Mismatch("a value outside the code list"));
                }
            }
        }
    }
    Ok(())
}

/// One node's answer as spans per key, and its total.
fn spans(result: &pb::ProtectedResult) -> (Vec<(Vec<String>, Span)>, Span) {
    let total = span_of(
        result.total.as_ref().unwrap_or(&pb::CellValue::default()),
        0,
    );
    let count = |row: &pb::ResultRow| row.count.unwrap_or_default();
    // What the total leaves for a suppressed cell once every other cell's least is taken.
    let lows: u64 = result
        .rows
        .iter()
        .map(|row| span_of(&count(row), 0).low)
        .sum();
    let rows = result
        .rows
        .iter()
        .map(|row| {
            let cell = count(row);
            let own_low = span_of(&cell, 0).low;
            let room = total.high.saturating_sub(lows.saturating_sub(own_low));
            (row.key.clone(), span_of(&cell, room))
        })
        .collect();
    (rows, total)
}

/// Sort position of a key: each value's place in its dimension's code list.
fn order(key: &[String], dimensions: &[Dimension]) -> Vec<(usize, String)> {
    key.iter()
        .zip(dimensions)
        .map(|(value, dimension)| {
            let position = dimension
                .domain()
                .and_then(|domain| domain.iter().position(|v| v == value))
                .unwrap_or(usize::MAX);
            (position, value.clone())
        })
        .collect()
}

/// Merges the answers of several nodes (each checked with [`check_answer`]) into one result,
/// protected again under `settings`. A key a node does not list counts 0 there: a node lists
/// every combination of its domain, so a missing key is one that cannot occur in its data.
pub fn merge(
    template: Template,
    dimensions: &[Dimension],
    parts: &[&pb::ProtectedResult],
    settings: &Settings,
) -> Result<pb::ProtectedResult, Refusal> {
    let mut keys: Vec<Vec<String>> = Vec::new();
    let mut merged: HashMap<Vec<String>, Span> = HashMap::new();
    let mut total = Span::exact(0);
    let mut statistics: HashMap<Vec<String>, Vec<pb::Statistic>> = HashMap::new();
    let mut rules: Vec<String> = Vec::new();
    for part in parts {
        let (rows, part_total) = spans(part);
        total = total.add(part_total);
        for (key, span) in rows {
            let entry = merged.entry(key.clone()).or_insert_with(|| {
                keys.push(key.clone());
                Span::exact(0)
            });
            *entry = entry.add(span);
        }
        for row in &part.rows {
            let entry = statistics.entry(row.key.clone()).or_default();
            add_statistics(entry, &row.statistics);
        }
        // A region's own words about its rules, kept short (it is its text, not ours).
        for rule in part
            .rules_applied
            .iter()
            .filter(|r| r.len() <= 200)
            .take(20)
        {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
    }
    keys.sort_by_key(|key| order(key, dimensions));
    let spans: Vec<Span> = keys.iter().map(|key| merged[key]).collect();

    let mut applied = vec![format!(
        "merged over {} node(s): counts add where every contribution was released; a small or \
         suppressed contribution makes an interval [low, high]",
        parts.len()
    )];
    let (cells, total_cell) = if template == Template::Capacity {
        // Facility data: released exactly by every node, so it adds exactly.
        let cells = spans.iter().map(|s| shown(s.low, 0)).collect();
        (cells, shown(total.low, 0))
    } else {
        if total.high < u64::from(settings.population_floor) {
            return Err(Refusal::PopulationFloor {
                floor: settings.population_floor,
            });
        }
        let (cells, suppressed) = protect_merged(&spans, total, settings)?;
        applied.extend(settings.table_rules(suppressed));
        (cells, total_value(total, settings))
    };
    // Medians and percentiles do not add: figures pass through only from a single node.
    let single = parts.len() == 1;
    if template == Template::LengthOfStay && !single {
        applied.push(
            "length-of-stay figures are withheld when several nodes contribute (medians do not add)"
                .to_owned(),
        );
    }
    let repeated: Vec<String> = rules
        .into_iter()
        .filter(|rule| !applied.contains(rule))
        .map(|rule| format!("at the data-owning nodes: {rule}"))
        .collect();
    applied.extend(repeated);
    let rows = keys
        .into_iter()
        .zip(cells)
        .map(|(key, count)| {
            let figures = statistics.remove(&key).unwrap_or_default();
            let statistics = if template == Template::Capacity || single {
                figures
            } else {
                figures
                    .into_iter()
                    .map(|s| pb::Statistic {
                        name: s.name,
                        value: None,
                    })
                    .collect()
            };
            pb::ResultRow {
                key,
                count: Some(count),
                statistics,
            }
        })
        .collect();
    Ok(pb::ProtectedResult {
        template: template.code().to_owned(),
        template_version: template.version(),
        dimensions: dimensions.iter().map(|d| d.code().to_owned()).collect(),
        rows,
        total: Some(total_cell),
        rules_applied: applied,
        ..Default::default()
    })
}

/// Adds named statistics (capacity's places, occupied, available); a figure withheld anywhere
/// stays withheld.
fn add_statistics(into: &mut Vec<pb::Statistic>, from: &[pb::Statistic]) {
    for statistic in from {
        match into.iter_mut().find(|s| s.name == statistic.name) {
            Some(existing) => {
                existing.value = existing.value.zip(statistic.value).map(|(a, b)| a + b);
            }
            None => into.push(statistic.clone()),
        }
    }
}

fn shown(n: u64, rounding_base: u32) -> pb::CellValue {
    pb::CellValue {
        value: Some(pb::cell_value::Value::Exact(n)),
        rounding_base,
    }
}

fn round(n: u64, base: u32) -> u64 {
    let base = u64::from(base);
    (n + base / 2).checked_div(base).map_or(n, |q| q * base)
}

fn total_value(total: Span, settings: &Settings) -> pb::CellValue {
    if total.is_exact() {
        shown(
            round(total.low, settings.rounding_base),
            settings.rounding_base,
        )
    } else {
        interval(total)
    }
}

fn interval(span: Span) -> pb::CellValue {
    pb::CellValue {
        value: Some(pb::cell_value::Value::Interval(pb::Interval {
            low: span.low,
            high: span.high,
        })),
        rounding_base: 0,
    }
}

/// How a merged cell is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Exact(u64),
    Small,
    Interval(Span),
    Suppressed,
}

/// Protects the merged cells under `settings`: every cell that may be below the minimum cell
/// count reads `<threshold`; where the total would let a reader pin such a cell (non-zero)
/// narrower than `protection_width`, the smallest exact cells are suppressed until it cannot.
/// Returns the cells and whether any was suppressed.
fn protect_merged(
    spans: &[Span],
    total: Span,
    settings: &Settings,
) -> Result<(Vec<pb::CellValue>, bool), Refusal> {
    let threshold = u64::from(settings.min_cell_count);
    let width = u64::from(settings.protection_width);
    let mut shown: Vec<Shown> = spans
        .iter()
        .map(|&span| {
            if span.high < threshold {
                Shown::Small
            } else if span.is_exact() {
                Shown::Exact(span.low)
            } else {
                Shown::Interval(span)
            }
        })
        .collect();
    let base = u64::from(settings.rounding_base);
    // What a reader knows of each cell as shown.
    let known = |cell: Shown| match cell {
        Shown::Exact(n) => rounded_span(round(n, settings.rounding_base), base),
        Shown::Small => Span {
            low: 0,
            high: threshold - 1,
        },
        Shown::Interval(span) => span,
        Shown::Suppressed => Span {
            low: 0,
            high: total.high,
        },
    };
    let shown_total = if total.is_exact() {
        rounded_span(round(total.low, settings.rounding_base), base)
    } else {
        total
    };
    let mut suppressed = false;
    loop {
        let knowns: Vec<Span> = shown.iter().map(|&c| known(c)).collect();
        let lows: u64 = knowns.iter().map(|s| s.low).sum();
        let highs: u64 = knowns.iter().map(|s| s.high).sum();
        let exposed = shown.iter().enumerate().any(|(i, cell)| {
            if *cell != Shown::Small || spans[i].high == 0 {
                return false;
            }
            // The reader's bounds through the total: total minus what the others can hold.
            let others_high = highs - knowns[i].high;
            let others_low = lows - knowns[i].low;
            let low = shown_total
                .low
                .saturating_sub(others_high)
                .max(knowns[i].low);
            let high = shown_total
                .high
                .saturating_sub(others_low)
                .min(knowns[i].high);
            high.saturating_sub(low) < width
        });
        if !exposed {
            break;
        }
        let smallest = shown
            .iter()
            .enumerate()
            .filter_map(|(i, cell)| match cell {
                Shown::Exact(n) => Some((*n, i)),
                _ => None,
            })
            .min();
        match smallest {
            Some((_, i)) => {
                shown[i] = Shown::Suppressed;
                suppressed = true;
            }
            None => return Err(Refusal::CannotProtect),
        }
    }
    let cells = shown
        .into_iter()
        .map(|cell| match cell {
            Shown::Exact(n) => shown_exact(n, settings),
            Shown::Small => pb::CellValue {
                value: Some(pb::cell_value::Value::Small(pb::SmallCell {
                    threshold: settings.min_cell_count,
                })),
                rounding_base: 0,
            },
            Shown::Interval(span) => interval(span),
            Shown::Suppressed => pb::CellValue {
                value: Some(pb::cell_value::Value::Suppressed(pb::Suppressed {})),
                rounding_base: 0,
            },
        })
        .collect();
    Ok((cells, suppressed))
}

fn shown_exact(n: u64, settings: &Settings) -> pb::CellValue {
    shown(round(n, settings.rounding_base), settings.rounding_base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(n: u64) -> pb::CellValue {
        shown(n, 0)
    }

    fn small() -> pb::CellValue {
        pb::CellValue {
            value: Some(pb::cell_value::Value::Small(pb::SmallCell {
                threshold: 10,
            })),
            rounding_base: 0,
        }
    }

    fn suppressed() -> pb::CellValue {
        pb::CellValue {
            value: Some(pb::cell_value::Value::Suppressed(pb::Suppressed {})),
            rounding_base: 0,
        }
    }

    fn result(rows: &[(&str, pb::CellValue)], total: u64) -> pb::ProtectedResult {
        pb::ProtectedResult {
            template: "youth_in_care".to_owned(),
            template_version: 1,
            dimensions: vec!["stay_group".to_owned()],
            rows: rows
                .iter()
                .map(|(key, count)| pb::ResultRow {
                    key: vec![(*key).to_owned()],
                    count: Some(*count),
                    statistics: Vec::new(),
                })
                .collect(),
            total: Some(exact(total)),
            rules_applied: vec!["min-cell-count 10".to_owned()],
            ..Default::default()
        }
    }

    fn span(cell: &pb::CellValue) -> Span {
        span_of(cell, u64::MAX)
    }

    const DIMS: &[Dimension] = &[Dimension::StayGroup];

    fn merged(parts: &[&pb::ProtectedResult]) -> pb::ProtectedResult {
        merge(Template::YouthInCare, DIMS, parts, &Settings::default()).unwrap()
    }

    fn cell<'a>(result: &'a pb::ProtectedResult, key: &str) -> &'a pb::CellValue {
        result
            .rows
            .iter()
            .find(|r| r.key[0] == key)
            .and_then(|r| r.count.as_ref())
            .unwrap()
    }

    #[test]
    fn released_counts_add_exactly() {
        let a = result(
            &[("jeugdhulp_plus", exact(12)), ("pleegzorg", exact(30))],
            42,
        );
        let b = result(
            &[("jeugdhulp_plus", exact(15)), ("pleegzorg", exact(20))],
            35,
        );
        let m = merged(&[&a, &b]);
        assert_eq!(cell(&m, "jeugdhulp_plus"), &exact(27));
        assert_eq!(cell(&m, "pleegzorg"), &exact(50));
        assert_eq!(m.total, Some(exact(77)));
    }

    #[test]
    fn a_small_contribution_makes_an_interval() {
        let a = result(
            &[
                ("jeugdhulp_plus", exact(120)),
                ("pleegzorg", exact(30)),
                ("andere_verblijfzorg", small()),
            ],
            153,
        );
        let b = result(
            &[
                ("jeugdhulp_plus", small()),
                ("pleegzorg", exact(20)),
                ("andere_verblijfzorg", exact(11)),
            ],
            35,
        );
        let m = merged(&[&a, &b]);
        // 120 plus something below 10.
        assert_eq!(
            span(cell(&m, "jeugdhulp_plus")),
            Span {
                low: 120,
                high: 129
            }
        );
        assert_eq!(
            span(cell(&m, "andere_verblijfzorg")),
            Span { low: 11, high: 20 }
        );
        assert_eq!(m.total, Some(exact(188)));
    }

    #[test]
    fn a_suppressed_contribution_is_bounded_by_its_total() {
        // b hides "pleegzorg" (secondary) to protect "andere_verblijfzorg": open <= 40 - 25 - 0.
        let b = result(
            &[
                ("jeugdhulp_plus", exact(25)),
                ("pleegzorg", suppressed()),
                ("andere_verblijfzorg", small()),
            ],
            40,
        );
        let a = result(
            &[("jeugdhulp_plus", exact(12)), ("pleegzorg", exact(30))],
            42,
        );
        let m = merged(&[&a, &b]);
        assert_eq!(span(cell(&m, "pleegzorg")), Span { low: 30, high: 45 });
        assert_eq!(
            span(cell(&m, "andere_verblijfzorg")),
            Span { low: 0, high: 9 }
        );
    }

    #[test]
    fn rounded_contributions_widen_to_what_rounds_to_them() {
        let mut rounded = exact(20);
        rounded.rounding_base = 5;
        assert_eq!(span(&rounded), Span { low: 18, high: 22 });
        rounded.rounding_base = 10;
        assert_eq!(span(&rounded), Span { low: 15, high: 24 });
        for n in 0..200u64 {
            for base in [5u32, 10] {
                let mut cell = exact(round(n, base));
                cell.rounding_base = base;
                let s = span(&cell);
                assert!(s.low <= n && n <= s.high, "{n} base {base}: {s:?}");
            }
        }
    }

    #[test]
    fn a_key_one_node_does_not_list_counts_zero_there() {
        let mut a = result(&[("drenthe", exact(40))], 40);
        let mut b = result(&[("friesland", exact(33))], 33);
        let dims = &[Dimension::OriginRegion];
        a.dimensions = vec!["origin_region".to_owned()];
        b.dimensions = vec!["origin_region".to_owned()];
        let m = merge(Template::YouthInCare, dims, &[&a, &b], &Settings::default()).unwrap();
        let keys: Vec<&str> = m.rows.iter().map(|r| r.key[0].as_str()).collect();
        assert_eq!(keys, ["drenthe", "friesland"], "code-list order");
        assert_eq!(m.total, Some(exact(73)));
    }

    #[test]
    fn a_stricter_merging_node_hides_and_protects_what_a_member_released() {
        // Members release 12 (min-cell-count 10); the merging node asks 15.
        let a = result(
            &[
                ("jeugdhulp_plus", exact(12)),
                ("pleegzorg", exact(30)),
                ("andere_verblijfzorg", exact(40)),
            ],
            82,
        );
        let settings = Settings {
            min_cell_count: 15,
            ..Settings::default()
        };
        let m = merge(Template::YouthInCare, DIMS, &[&a], &settings).unwrap();
        assert_eq!(span(cell(&m, "jeugdhulp_plus")), Span { low: 0, high: 14 });
        // Without a second hidden cell, 82 - 30 - 40 would give it back.
        assert_eq!(cell(&m, "pleegzorg"), &suppressed());
        assert_eq!(cell(&m, "andere_verblijfzorg"), &exact(40));
        assert!(m
            .rules_applied
            .iter()
            .any(|r| r.starts_with("secondary-suppression")));
    }

    #[test]
    fn a_merged_population_below_the_floor_is_refused() {
        let a = result(&[("pleegzorg", small())], 9);
        let refused = merge(Template::YouthInCare, DIMS, &[&a], &Settings::default());
        assert!(matches!(refused, Err(Refusal::PopulationFloor { .. })));
    }

    #[test]
    fn answers_of_another_shape_are_not_merged() {
        let a = result(&[("pleegzorg", exact(30))], 30);
        assert!(check_answer(&a, Template::YouthInCare, DIMS).is_ok());
        assert!(check_answer(&a, Template::Flows, DIMS).is_err());
        assert!(check_answer(&a, Template::YouthInCare, &[Dimension::CareType]).is_err());
        let mut odd = a.clone();
        odd.rows[0].key = vec!["not-a-code".to_owned()];
        assert!(check_answer(&odd, Template::YouthInCare, DIMS).is_err());
    }
}
