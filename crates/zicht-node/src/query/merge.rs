//! Merging the results of several nodes: each member already published its counts under its
//! own disclosure control (the cell key method), so the merged count of a cell is the sum of
//! the members' published counts, and its bound the sum of their bounds (±D per contributing
//! region that perturbed). An exact contribution (facility data, or the asking region's own
//! data for its own analysts) adds exactly. Nothing is perturbed a second time: the noise is
//! already in every member's number, and re-perturbing a sum would only add more.
//!
//! Pure functions over the wire types; no I/O.

use std::collections::HashMap;

use zicht_model::{CodeList, Dimension, Template};
use zicht_proto::v1 as pb;

/// A count as published: a value and how far it may be from the true count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Published {
    /// The published value.
    pub value: u64,
    /// The largest deviation from the true count (0: exact).
    pub max_deviation: u32,
}

impl Published {
    /// What `cell` says about its count; `None` for a cell with no value.
    pub fn of(cell: &pb::CellValue) -> Option<Published> {
        use pb::cell_value::Value;
        match cell.value.as_ref()? {
            Value::Exact(n) => Some(Published {
                value: *n,
                max_deviation: 0,
            }),
            Value::Perturbed(p) => Some(Published {
                value: p.value,
                max_deviation: p.max_deviation,
            }),
        }
    }

    fn add(self, other: Published) -> Published {
        Published {
            value: self.value.saturating_add(other.value),
            max_deviation: self.max_deviation.saturating_add(other.max_deviation),
        }
    }

    /// As a cell value: exact when the bound is 0.
    pub fn cell(self) -> pb::CellValue {
        use pb::cell_value::Value;
        pb::CellValue {
            value: Some(if self.max_deviation == 0 {
                Value::Exact(self.value)
            } else {
                Value::Perturbed(pb::Perturbed {
                    value: self.value,
                    max_deviation: self.max_deviation,
                })
            }),
        }
    }
}

/// Why one node's answer cannot be merged (a wrong or tampered answer). Never data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("its answer does not match the request: {0}")]
pub struct Mismatch(pub &'static str);

/// Checks that `result` answers `template` grouped by `dimensions`, with known codes and a
/// value in every cell.
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
    if result.total.as_ref().and_then(Published::of).is_none() {
        return Err(Mismatch("no total"));
    }
    for row in &result.rows {
        if row.key.len() != dimensions.len() || row.count.as_ref().and_then(Published::of).is_none()
        {
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

/// Merges the answers of several nodes (each checked with [`check_answer`]) into one result.
/// A key a node does not list counts 0 there: a node lists every combination of its domain,
/// so a missing key is one that cannot occur in its data (a structural zero).
pub fn merge(
    template: Template,
    dimensions: &[Dimension],
    parts: &[&pb::ProtectedResult],
) -> pb::ProtectedResult {
    let mut sums = Sums::default();
    for part in parts {
        sums.add(part);
    }
    let Sums {
        mut keys,
        merged,
        total,
        mut statistics,
        rules,
        perturbing,
    } = sums;
    keys.sort_by_key(|key| order(key, dimensions));

    let mut applied = vec![if template == Template::Capacity {
        format!(
            "merged over {} node(s): facility data, added exactly",
            parts.len()
        )
    } else {
        format!(
            "merged over {} node(s): each count is the sum of the regions' published counts; \
             ±{} is the most it can differ from the true count ({} region(s) perturbed)",
            parts.len(),
            total.max_deviation,
            perturbing
        )
    }];
    // Medians and percentiles do not add: figures pass through only from a single node.
    let single = parts.len() == 1;
    if template == Template::LengthOfStay && !single {
        applied.push(
            "length-of-stay figures are withheld when several nodes contribute (medians do not add)"
                .to_owned(),
        );
    }
    applied.extend(
        rules
            .into_iter()
            .map(|rule| format!("at the data-owning nodes: {rule}")),
    );
    let rows = keys
        .into_iter()
        .map(|key| {
            let count = merged.get(&key).copied().unwrap_or_default();
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
                count: Some(count.cell()),
                statistics,
            }
        })
        .collect();
    pb::ProtectedResult {
        template: template.code().to_owned(),
        template_version: template.version(),
        dimensions: dimensions.iter().map(|d| d.code().to_owned()).collect(),
        rows,
        total: Some(total.cell()),
        rules_applied: applied,
        ..Default::default()
    }
}

/// The members' published counts and bounds added up, key by key, with their statistics and
/// their own rule lines.
#[derive(Default)]
struct Sums {
    keys: Vec<Vec<String>>,
    merged: HashMap<Vec<String>, Published>,
    total: Published,
    statistics: HashMap<Vec<String>, Vec<pb::Statistic>>,
    rules: Vec<String>,
    /// Members whose counts are perturbed (not exact).
    perturbing: usize,
}

impl Sums {
    fn add(&mut self, part: &pb::ProtectedResult) {
        let part_total = part
            .total
            .as_ref()
            .and_then(Published::of)
            .unwrap_or_default();
        if part_total.max_deviation > 0 {
            self.perturbing += 1;
        }
        self.total = self.total.add(part_total);
        for row in &part.rows {
            let cell = row
                .count
                .as_ref()
                .and_then(Published::of)
                .unwrap_or_default();
            let keys = &mut self.keys;
            let entry = self.merged.entry(row.key.clone()).or_insert_with(|| {
                keys.push(row.key.clone());
                Published::default()
            });
            *entry = entry.add(cell);
            add_statistics(
                self.statistics.entry(row.key.clone()).or_default(),
                &row.statistics,
            );
        }
        // A region's own words about its rules, kept short (it is its text, not ours).
        for rule in part
            .rules_applied
            .iter()
            .filter(|r| r.len() <= 300)
            .take(20)
        {
            if !self.rules.contains(rule) {
                self.rules.push(rule.clone());
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(n: u64) -> pb::CellValue {
        Published {
            value: n,
            max_deviation: 0,
        }
        .cell()
    }

    fn perturbed(n: u64) -> pb::CellValue {
        Published {
            value: n,
            max_deviation: 3,
        }
        .cell()
    }

    fn result(rows: &[(&str, pb::CellValue)], total: pb::CellValue) -> pb::ProtectedResult {
        pb::ProtectedResult {
            template: "youth_in_care".to_owned(),
            template_version: 1,
            dimensions: vec!["care_type".to_owned()],
            rows: rows
                .iter()
                .map(|(key, count)| pb::ResultRow {
                    key: vec![(*key).to_owned()],
                    count: Some(*count),
                    statistics: vec![],
                })
                .collect(),
            total: Some(total),
            rules_applied: vec![],
            ..Default::default()
        }
    }

    fn merged(parts: &[&pb::ProtectedResult]) -> pb::ProtectedResult {
        merge(Template::YouthInCare, &[Dimension::CareType], parts)
    }

    fn cell(result: &pb::ProtectedResult, key: &str) -> Published {
        result
            .rows
            .iter()
            .find(|r| r.key[0] == key)
            .and_then(|r| r.count.as_ref())
            .and_then(Published::of)
            .expect("cell")
    }

    #[test]
    fn published_counts_add_and_so_do_their_bounds() {
        let a = result(
            &[("pleegzorg", perturbed(12)), ("gezinshuis", perturbed(0))],
            perturbed(13),
        );
        let b = result(&[("pleegzorg", perturbed(5))], perturbed(6));
        let m = merged(&[&a, &b]);
        assert_eq!(
            cell(&m, "pleegzorg"),
            Published {
                value: 17,
                max_deviation: 6
            }
        );
        assert_eq!(
            cell(&m, "gezinshuis"),
            Published {
                value: 0,
                max_deviation: 3
            },
            "a key one node does not list counts 0 there"
        );
        assert_eq!(
            m.total.as_ref().and_then(Published::of),
            Some(Published {
                value: 19,
                max_deviation: 6
            })
        );
        assert!(m.rules_applied[0].contains("±6"), "{:?}", m.rules_applied);
    }

    #[test]
    fn exact_contributions_add_exactly() {
        let own = result(&[("pleegzorg", exact(20))], exact(20));
        let peer = result(&[("pleegzorg", perturbed(7))], perturbed(7));
        let m = merged(&[&own, &peer]);
        assert_eq!(
            cell(&m, "pleegzorg"),
            Published {
                value: 27,
                max_deviation: 3
            }
        );
        let m = merged(&[&own]);
        assert_eq!(m.rows[0].count, Some(exact(20)));
    }

    #[test]
    fn answers_of_another_shape_are_not_merged() {
        let good = result(&[("pleegzorg", perturbed(12))], perturbed(12));
        assert_eq!(
            check_answer(&good, Template::YouthInCare, &[Dimension::CareType]),
            Ok(())
        );
        assert!(check_answer(&good, Template::Flows, &[Dimension::CareType]).is_err());
        assert!(check_answer(&good, Template::YouthInCare, &[]).is_err());
        let mut bad = good.clone();
        bad.rows[0].key[0] = "nonsense".to_owned();
        assert!(check_answer(&bad, Template::YouthInCare, &[Dimension::CareType]).is_err());
        let mut empty = good;
        empty.rows[0].count = Some(pb::CellValue { value: None });
        assert!(check_answer(&empty, Template::YouthInCare, &[Dimension::CareType]).is_err());
    }
}
