//! Merging the results of several nodes: each member already published its counts under its
//! own disclosure control (the cell key method), so the merged count of a cell is the sum of
//! the members' published counts, and its bound the sum of their bounds (±D per contributing
//! region that perturbed). An exact contribution (facility data, or the asking region's own
//! data for its own analysts) adds exactly. Nothing is perturbed a second time: the noise is
//! already in every member's number, and re-perturbing a sum would only add more.
//!
//! Pure functions over domain tables (peers' answers were read into tables at the edge); no
//! I/O.

use std::collections::HashMap;

use zicht_model::{Dimension, Published, Row, Statistic, Table, Template};

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

/// Merges the answers of several nodes (each read at the edge as answering `template` grouped
/// by `dimensions`) into one table. A key a node does not list counts 0 there: a node lists
/// every combination of its domain, so a missing key is one that cannot occur in its data (a
/// structural zero).
pub fn merge(template: Template, dimensions: &[Dimension], parts: &[&Table]) -> Table {
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
    // Medians and percentiles do not add: figures pass through only from a single node.
    // Capacity's places and the number of measures do.
    let single = parts.len() == 1;
    let adds = matches!(template, Template::Capacity | Template::Measures);
    let rows: Vec<Row> = keys
        .into_iter()
        .map(|key| {
            let count = merged.get(&key).copied().unwrap_or_default();
            let figures = statistics.remove(&key).unwrap_or_default();
            let statistics = if adds || single {
                figures
            } else {
                figures.into_iter().map(Statistic::withheld).collect()
            };
            Row {
                key,
                count,
                statistics,
            }
        })
        .collect();
    let mut rules = merged_rules(template, parts.len(), total, perturbing, rules);
    if template == Template::LengthOfStay {
        // After the line that says how the table was merged.
        rules.splice(1..1, band_figures(dimensions, &rows));
    }
    Table {
        template,
        dimensions: dimensions.to_vec(),
        rows,
        total,
        rules,
        // Records are not added up: every node's are listed, as it released them.
        records: parts
            .iter()
            .flat_map(|p| p.records.iter().cloned())
            .collect(),
    }
}

/// The merged table `sum` listed per member (`--by member_region`): each member's own
/// published cells under its node's code, then the sum under [`zicht_model::MEMBER_TOTAL`].
/// Every number is one a member released (or their sum), so nothing new is published.
pub fn per_member(sum: Table, members: &[(&str, &Table)]) -> Table {
    let prefixed = |code: &str, row: &Row| Row {
        key: std::iter::once(code.to_owned())
            .chain(row.key.iter().cloned())
            .collect(),
        count: row.count,
        statistics: row.statistics.clone(),
    };
    let mut rows: Vec<Row> = members
        .iter()
        .flat_map(|(code, table)| table.rows.iter().map(|row| prefixed(code, row)))
        .collect();
    rows.extend(
        sum.rows
            .iter()
            .map(|row| prefixed(zicht_model::MEMBER_TOTAL, row)),
    );
    let mut rules = sum.rules;
    rules.insert(
        1,
        format!(
            "member_region: each member's own published counts, then their sum ({})",
            zicht_model::MEMBER_TOTAL
        ),
    );
    Table {
        dimensions: std::iter::once(Dimension::MemberRegion)
            .chain(sum.dimensions)
            .collect(),
        rows,
        rules,
        ..sum
    }
}

/// Where the median and p90 stay of each group of a table by `stay_length` (its last
/// dimension) lie, read from the merged counts per band: the band that holds them, and the
/// bands they could lie in when every band count is anywhere within its bound (the earliest
/// with the shorter bands at their most and the longer at their least, the latest the other
/// way round). Nothing for a table not by `stay_length`.
fn band_figures(dimensions: &[Dimension], rows: &[Row]) -> Vec<String> {
    use zicht_model::STAY_LENGTHS;
    if dimensions.last() != Some(&Dimension::StayLength) {
        return Vec::new();
    }
    // Per group: (value, bound) per band, in band order.
    type Bands = Vec<(u64, u64)>;
    let mut groups: Vec<(&[String], Bands)> = Vec::new();
    for row in rows {
        let Some((band, group)) = row.key.split_last() else {
            continue;
        };
        let Some(position) = STAY_LENGTHS.iter().position(|(b, _)| b == band) else {
            continue;
        };
        let count = (row.count.value, u64::from(row.count.max_deviation));
        match groups.iter_mut().find(|(key, _)| *key == group) {
            Some((_, counts)) => counts[position] = count,
            None => {
                let mut counts = vec![(0, 0); STAY_LENGTHS.len()];
                counts[position] = count;
                groups.push((group, counts));
            }
        }
    }
    // The band holding rank ceil(share * n) of `counts`.
    let band_at = |counts: &[u64], share: f64| {
        let total: u64 = counts.iter().sum();
        let wanted = ((total as f64 * share).ceil() as u64).max(1);
        let mut seen = 0;
        counts.iter().position(|n| {
            seen += n;
            seen >= wanted
        })
    };
    let within = |counts: &[(u64, u64)], share: f64, split: usize, early: bool| {
        let shifted: Vec<u64> = counts
            .iter()
            .enumerate()
            .map(|(i, &(n, b))| match (i <= split) == early {
                true => n + b,
                false => n.saturating_sub(b),
            })
            .collect();
        band_at(&shifted, share)
    };
    let name = |band: usize| STAY_LENGTHS[band].0;
    let mut lines = Vec::new();
    for (group, counts) in groups {
        let values: Vec<u64> = counts.iter().map(|(n, _)| *n).collect();
        let mut parts = Vec::new();
        for (label, share) in [("median", 0.5), ("p90", 0.9)] {
            let Some(band) = band_at(&values, share) else {
                continue;
            };
            // The shorter bands at their most pull the figure down, the longer at their
            // least push it up; each split gives a bound, the widest is the range.
            let earliest = (0..STAY_LENGTHS.len())
                .filter_map(|split| within(&counts, share, split, true))
                .min()
                .unwrap_or(band);
            let latest = (0..STAY_LENGTHS.len())
                .filter_map(|split| within(&counts, share, split, false))
                .max()
                .unwrap_or(band);
            parts.push(if earliest == latest {
                format!("{label} in {}", name(band))
            } else {
                format!(
                    "{label} in {} (within the bounds: {} to {})",
                    name(band),
                    name(earliest),
                    name(latest)
                )
            });
        }
        if parts.is_empty() {
            continue;
        }
        let total: u64 = values.iter().sum();
        let group = if group.is_empty() {
            "all stays".to_owned()
        } else {
            group.join(" ")
        };
        lines.push(format!(
            "{group}: {} (read from the {total} published stays per stay_length band)",
            parts.join(", ")
        ));
    }
    lines
}

/// The rule lines of a merged table: how it was merged, then each member's own rules.
fn merged_rules(
    template: Template,
    parts: usize,
    total: Published,
    perturbing: usize,
    members: Vec<String>,
) -> Vec<String> {
    let mut applied = vec![if template == Template::Capacity {
        format!("merged over {parts} node(s): facility data, added exactly")
    } else if template == Template::ConsentedRecords {
        format!(
            "merged over {parts} node(s): each node's records of youths who consented to you, \
             as it released them"
        )
    } else {
        format!(
            "merged over {parts} node(s): each count is the sum of the regions' published counts; \
             ±{} is the most it can differ from the true count ({perturbing} region(s) perturbed)",
            total.max_deviation,
        )
    }];
    if template == Template::LengthOfStay && parts > 1 {
        applied.push(
            "length-of-stay figures are withheld when several nodes contribute (medians do not \
             add); the stays per stay_length band do"
                .to_owned(),
        );
    }
    applied.extend(
        members
            .into_iter()
            .map(|rule| format!("at the data-owning nodes: {rule}")),
    );
    applied
}

/// The members' published counts and bounds added up, key by key, with their statistics and
/// their own rule lines.
#[derive(Default)]
struct Sums {
    keys: Vec<Vec<String>>,
    merged: HashMap<Vec<String>, Published>,
    total: Published,
    statistics: HashMap<Vec<String>, Vec<Statistic>>,
    rules: Vec<String>,
    /// Members whose counts are perturbed (not exact).
    perturbing: usize,
}

impl Sums {
    fn add(&mut self, part: &Table) {
        if !part.total.is_exact() {
            self.perturbing += 1;
        }
        self.total = self.total + part.total;
        for row in &part.rows {
            let keys = &mut self.keys;
            let entry = self.merged.entry(row.key.clone()).or_insert_with(|| {
                keys.push(row.key.clone());
                Published::default()
            });
            *entry = *entry + row.count;
            add_statistics(
                self.statistics.entry(row.key.clone()).or_default(),
                &row.statistics,
            );
        }
        // A region's own words about its rules, kept short (it is its text, not ours).
        for rule in part.rules.iter().filter(|r| r.len() <= 300).take(20) {
            if !self.rules.contains(rule) {
                self.rules.push(rule.clone());
            }
        }
    }
}

/// Adds named statistics (capacity's places, occupied, available); a figure withheld anywhere
/// stays withheld.
fn add_statistics(into: &mut Vec<Statistic>, from: &[Statistic]) {
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

    fn perturbed(value: u64) -> Published {
        Published::perturbed(value, 3, 2.0)
    }

    fn table(rows: &[(&str, Published)], total: Published) -> Table {
        Table {
            template: Template::YouthInCare,
            dimensions: vec![Dimension::CareType],
            rows: rows
                .iter()
                .map(|(key, count)| Row {
                    key: vec![(*key).to_owned()],
                    count: *count,
                    statistics: vec![],
                })
                .collect(),
            total,
            rules: vec![],
            records: vec![],
        }
    }

    fn merged(parts: &[&Table]) -> Table {
        merge(Template::YouthInCare, &[Dimension::CareType], parts)
    }

    fn cell(table: &Table, key: &str) -> Published {
        table
            .rows
            .iter()
            .find(|r| r.key[0] == key)
            .map(|r| r.count)
            .expect("cell")
    }

    #[test]
    fn the_median_band_is_read_from_the_merged_bands_with_its_range() {
        let member = |counts: [u64; 5]| Table {
            template: Template::LengthOfStay,
            dimensions: vec![Dimension::StayLength],
            rows: zicht_model::STAY_LENGTHS
                .iter()
                .zip(counts)
                .map(|((band, _), n)| Row {
                    key: vec![(*band).to_owned()],
                    count: Published::perturbed(n, 4, 2.0),
                    statistics: vec![],
                })
                .collect(),
            total: Published::perturbed(counts.iter().sum(), 4, 2.0),
            rules: vec![],
            records: vec![],
        };
        // 100 stays per member, the median in 6-12 months, p90 in 1-2 years. The bounds (±8
        // per band over two members) cannot move the median out of its band, but p90 (rank
        // 180 of 200, with 10 stays above it) could be among the longest.
        let a = member([10, 20, 40, 25, 5]);
        let b = member([10, 20, 40, 25, 5]);
        let sum = merge(Template::LengthOfStay, &[Dimension::StayLength], &[&a, &b]);
        assert_eq!(
            sum.rules[1],
            "all stays: median in 6_12_maanden, p90 in 1_2_jaar (within the bounds: 1_2_jaar \
             to 2_jaar_plus) (read from the 200 published stays per stay_length band)"
        );
        // A median at a band's edge (rank 50, 49 stays below its band): within the bounds it
        // could be in the band before.
        let edge = member([20, 29, 40, 6, 5]);
        let sum = merge(Template::LengthOfStay, &[Dimension::StayLength], &[&edge]);
        assert_eq!(
            sum.rules[1],
            "all stays: median in 6_12_maanden (within the bounds: 3_6_maanden to \
             6_12_maanden), p90 in 1_2_jaar (within the bounds: 6_12_maanden to 2_jaar_plus) \
             (read from the 100 published stays per stay_length band)"
        );
    }

    #[test]
    fn published_counts_add_and_so_do_their_bounds() {
        let a = table(
            &[("pleegzorg", perturbed(12)), ("gezinshuis", perturbed(0))],
            perturbed(13),
        );
        let b = table(&[("pleegzorg", perturbed(5))], perturbed(6));
        let m = merged(&[&a, &b]);
        assert_eq!(cell(&m, "pleegzorg"), Published::perturbed(17, 6, 4.0));
        assert_eq!(
            cell(&m, "gezinshuis"),
            Published::perturbed(0, 3, 2.0),
            "a key one node does not list counts 0 there"
        );
        assert_eq!(m.total, Published::perturbed(19, 6, 4.0));
        assert!(m.rules[0].contains("±6"), "{:?}", m.rules);
    }

    #[test]
    fn exact_contributions_add_exactly() {
        let own = table(&[("pleegzorg", Published::exact(20))], Published::exact(20));
        let peer = table(&[("pleegzorg", perturbed(7))], perturbed(7));
        let m = merged(&[&own, &peer]);
        assert_eq!(cell(&m, "pleegzorg"), Published::perturbed(27, 3, 2.0));
        let m = merged(&[&own]);
        assert_eq!(m.rows[0].count, Published::exact(20));
    }
}
