//! Printing protected results: a table for people, JSON and CSV for tools. A perturbed count
//! shows its bound (`12 ±3`), and a footer says what that means and names the rules.

use std::fmt::Write as _;

use zicht_model::CodeList as _;

use zicht_proto::v1 as pb;

use crate::format::{csv_field, Format};

/// How a cell reads: an exact number, or a perturbed one with its bound (`12 ±4`); where the
/// bound reaches below 0, the range it allows (`0 (0–36)`): a count is never negative.
pub fn cell_text(cell: Option<&pb::CellValue>) -> String {
    cell.and_then(published)
        .map_or_else(|| "?".to_owned(), |(n, bound)| bound_text(n, bound))
}

/// A count `n` within `bound` of the truth as it reads ([`zicht_model::Published`]'s one
/// `Display`: `12 ±4`, `0 (0–36)`, `7` when exact).
pub fn bound_text(n: u64, bound: u32) -> String {
    zicht_model::Published {
        value: n,
        max_deviation: bound,
        variance_centi: 0,
    }
    .to_string()
}

/// The typical error of a perturbed cell (one standard deviation of its noise), when known.
fn typical_error(cell: Option<&pb::CellValue>) -> Option<f64> {
    let count = zicht_proto::domain::published(cell?)?;
    (count.variance_centi > 0).then(|| count.typical_error())
}

/// A cell's value and bound (0: exact), read through the one reading of wire cells.
pub fn published(cell: &pb::CellValue) -> Option<(u64, u32)> {
    zicht_proto::domain::published(cell).map(|count| (count.value, count.max_deviation))
}

fn statistic_text(statistic: &pb::Statistic) -> String {
    match statistic.value {
        Some(value) if value.fract() == 0.0 => format!("{value:.0}"),
        Some(value) => format!("{value:.1}"),
        None => "-".to_owned(),
    }
}

/// The column names: the dimensions, the count, then the statistics of the first row.
fn header(result: &pb::ProtectedResult) -> Vec<String> {
    let mut columns = result.dimensions.clone();
    columns.push(if result.template == "capacity" {
        "facilities".to_owned()
    } else {
        "youths".to_owned()
    });
    if let Some(row) = result.rows.first() {
        columns.extend(row.statistics.iter().map(|s| s.name.clone()));
        if bezetting(row).is_some() {
            columns.push("bezetting %".to_owned());
        }
    }
    columns
}

/// Occupancy (bezetting): occupied places as a share of places, in percent, for a capacity
/// row that has both; `-` where there are no places.
fn bezetting(row: &pb::ResultRow) -> Option<String> {
    let value = |name: &str| {
        row.statistics
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.value)
    };
    let (places, occupied) = (value("places")?, value("occupied")?);
    Some(if places > 0.0 {
        format!("{:.1}", occupied / places * 100.0)
    } else {
        "-".to_owned()
    })
}

fn lines(result: &pb::ProtectedResult) -> Vec<Vec<String>> {
    result
        .rows
        .iter()
        .map(|row| {
            let mut line = row.key.clone();
            line.push(cell_text(row.count.as_ref()));
            line.extend(row.statistics.iter().map(statistic_text));
            line.extend(bezetting(row));
            line
        })
        .collect()
}

/// The footer lines: the total, what the marks mean, and the rules.
pub fn footer(result: &pb::ProtectedResult) -> Vec<String> {
    let mut footer = vec![format!("total: {}", cell_text(result.total.as_ref()))];
    let perturbed = result
        .rows
        .iter()
        .filter_map(|r| r.count.as_ref())
        .chain(result.total.as_ref())
        .any(|c| matches!(c.value, Some(pb::cell_value::Value::Perturbed(_))));
    if perturbed {
        footer.push(
            "n ±b = a published count within b of the true count (cell key method); each count \
             is perturbed on its own, so cells need not add up to the total"
                .to_owned(),
        );
        if let Some(typical) = typical_error(result.total.as_ref()) {
            footer.push(format!(
                "typically within ±{typical:.1} (one standard deviation of the noise; ±b is the \
                 most); n (0–u): the true count is between 0 and u"
            ));
        }
    }
    if result
        .rows
        .iter()
        .any(|r| r.statistics.iter().any(|s| s.value.is_none()))
    {
        footer.push("- = withheld (too few youths, or one youth dominates)".to_owned());
    }
    footer.push(format!("rules: {}", result.rules_applied.join("; ")));
    footer
}

/// The coverage of a federated answer (every targeted node, whether it answered, and why not)
/// and its trace id, which an auditor follows with `zicht audit trace`.
pub fn coverage_lines(answer: &pb::FederatedResult) -> Vec<String> {
    let mut lines = peer_lines(&answer.coverage);
    if !answer.trace_id.is_empty() {
        lines.push(format!("trace: {}", answer.trace_id));
    }
    lines
}

/// Every targeted node, whether it answered, and why not. Nodes that did not answer for the
/// same reason share one line: thirteen identical refusals read as one.
fn peer_lines(coverage: &[pb::PeerStatus]) -> Vec<String> {
    let answered = coverage
        .iter()
        .filter(|c| c.status == pb::peer_status::Status::Answered as i32)
        .count();
    let mut groups: Vec<(Vec<&str>, i32, &str)> = Vec::new();
    for peer in coverage {
        let same = groups.iter_mut().find(|(_, status, reason)| {
            peer.status != pb::peer_status::Status::Answered as i32
                && *status == peer.status
                && *reason == peer.reason
        });
        match same {
            Some((nodes, _, _)) => nodes.push(&peer.node),
            None => groups.push((vec![&peer.node], peer.status, &peer.reason)),
        }
    }
    let width = groups
        .iter()
        .filter(|(nodes, _, _)| nodes.len() == 1)
        .map(|(nodes, _, _)| nodes[0].len())
        .max()
        .unwrap_or(0);
    let mut lines = vec![format!(
        "coverage: {answered} of {} regions answered",
        coverage.len()
    )];
    for (nodes, status, reason) in groups {
        let status = status_name(status);
        let because = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        match nodes.as_slice() {
            [node] => lines.push(format!("  {node:<width$}  {status}{because}")),
            _ => {
                lines.push(format!("  {} regions {status}{because}", nodes.len()));
                lines.push(format!("    ({})", nodes.join(", ")));
            }
        }
    }
    lines
}

/// A coverage status as people read it.
pub(crate) fn status_name(status: i32) -> &'static str {
    use pb::peer_status::Status;
    match Status::try_from(status) {
        Ok(Status::Answered) => "answered",
        Ok(Status::Refused) => "refused",
        Ok(Status::Unreachable) => "unreachable",
        Ok(Status::TimedOut) => "timed out",
        _ => "unknown",
    }
}

/// A federated answer as JSON: the result plus its coverage.
pub fn federated_json(answer: &pb::FederatedResult) -> serde_json::Value {
    let mut value = answer
        .result
        .as_ref()
        .map_or(serde_json::json!({}), |result| {
            if result.template == zicht_model::Template::ConsentedRecords.code() {
                serde_json::from_str(&crate::records::render(result, Format::Json))
                    .unwrap_or_default()
            } else {
                json(result)
            }
        });
    let coverage: Vec<serde_json::Value> = answer
        .coverage
        .iter()
        .map(|c| serde_json::json!({"node": c.node, "status": status_name(c.status), "reason": c.reason}))
        .collect();
    if let Some(object) = value.as_object_mut() {
        object.insert("coverage".to_owned(), serde_json::Value::Array(coverage));
        object.insert("trace_id".to_owned(), answer.trace_id.clone().into());
    }
    value
}

/// Renders a federated answer in `format`: the merged result, then its coverage (for CSV the
/// coverage goes with the footer to stderr, see [`footer`]).
pub fn render_federated(answer: &pb::FederatedResult, format: Format) -> String {
    let result = answer.result.clone().unwrap_or_default();
    match format {
        Format::Json => federated_json(answer).to_string(),
        Format::Csv => render(&result, format),
        Format::Table => {
            let mut out = render(&result, format);
            for line in coverage_lines(answer) {
                out.push_str(&line);
                out.push('\n');
            }
            out
        }
    }
}

/// Renders `result` in `format`.
pub fn render(result: &pb::ProtectedResult, format: Format) -> String {
    if result.template == zicht_model::Template::ConsentedRecords.code() {
        return crate::records::render(result, format);
    }
    match format {
        Format::Table => table(result),
        Format::Csv => csv(result),
        Format::Json => json(result).to_string(),
    }
}

fn table(result: &pb::ProtectedResult) -> String {
    let header = header(result);
    let lines = lines(result);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in &lines {
        for (i, cell) in line.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let dimensions = result.dimensions.len();
    let format_line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            if i > 0 {
                text.push_str("  ");
            }
            // Keys left-aligned, figures right-aligned.
            if i < dimensions {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "{cell:>width$}");
            }
        }
        text.trim_end().to_owned()
    };
    let mut out = format!("{} (v{})\n", result.template, result.template_version);
    out.push_str(&format_line(&header));
    out.push('\n');
    for line in &lines {
        out.push_str(&format_line(line));
        out.push('\n');
    }
    for line in footer(result) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn csv(result: &pb::ProtectedResult) -> String {
    let mut out = String::new();
    // For tools: the count column holds the number only, its bound a column of its own.
    let count = result.dimensions.len();
    let mut head = header(result);
    head.insert(count + 1, "max_deviation".to_owned());
    let rows = result
        .rows
        .iter()
        .zip(lines(result))
        .map(|(row, mut line)| {
            let published = row.count.as_ref().and_then(published).unwrap_or_default();
            line[count] = published.0.to_string();
            line.insert(count + 1, published.1.to_string());
            line
        });
    for line in std::iter::once(head).chain(rows) {
        let fields: Vec<String> = line.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn cell_json(cell: Option<&pb::CellValue>) -> serde_json::Value {
    use pb::cell_value::Value;
    use serde_json::json;
    let Some(cell) = cell else {
        return serde_json::Value::Null;
    };
    match &cell.value {
        Some(Value::Exact(n)) => json!({"value": n}),
        Some(Value::Perturbed(p)) => json!({"value": p.value, "max_deviation": p.max_deviation}),
        None => serde_json::Value::Null,
    }
}

/// The result as JSON: rows with their keys by dimension, cells as objects.
pub fn json(result: &pb::ProtectedResult) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let rows: Vec<Value> = result
        .rows
        .iter()
        .map(|row| {
            let mut key = Map::new();
            for (dimension, value) in result.dimensions.iter().zip(&row.key) {
                key.insert(dimension.clone(), Value::String(value.clone()));
            }
            let mut statistics = Map::new();
            for statistic in &row.statistics {
                statistics.insert(
                    statistic.name.clone(),
                    statistic.value.map_or(Value::Null, |v| json!(v)),
                );
            }
            json!({"key": key, "count": cell_json(row.count.as_ref()), "statistics": statistics})
        })
        .collect();
    json!({
        "template": result.template,
        "template_version": result.template_version,
        "dimensions": result.dimensions,
        "rows": rows,
        "total": cell_json(result.total.as_ref()),
        "rules_applied": result.rules_applied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(value: pb::cell_value::Value) -> Option<pb::CellValue> {
        Some(pb::CellValue { value: Some(value) })
    }

    fn perturbed(value: u64) -> pb::cell_value::Value {
        pb::cell_value::Value::Perturbed(pb::Perturbed {
            value,
            max_deviation: 3,
            variance_centi: 200,
        })
    }

    fn sample() -> pb::ProtectedResult {
        let row = |key: &str, value| pb::ResultRow {
            key: vec![key.to_owned()],
            count: cell(value),
            statistics: Vec::new(),
        };
        pb::ProtectedResult {
            template: "youth_in_care".to_owned(),
            template_version: 1,
            dimensions: vec!["stay_group".to_owned()],
            rows: vec![
                row("pleegzorg", perturbed(120)),
                row("jeugdhulp_plus", perturbed(0)),
                row("andere_verblijfzorg", perturbed(44)),
            ],
            total: cell(perturbed(163)),
            rules_applied: vec!["cell-key perturbation".to_owned()],
            ..Default::default()
        }
    }

    #[test]
    fn capacity_shows_bezetting_beside_places_and_occupied() {
        let row = |provider: &str, places: f64, occupied: f64| pb::ResultRow {
            key: vec![provider.to_owned()],
            count: cell(pb::cell_value::Value::Exact(2)),
            statistics: vec![
                pb::Statistic {
                    name: "places".to_owned(),
                    value: Some(places),
                },
                pb::Statistic {
                    name: "occupied".to_owned(),
                    value: Some(occupied),
                },
            ],
        };
        let result = pb::ProtectedResult {
            template: "capacity".to_owned(),
            template_version: 1,
            dimensions: vec!["provider".to_owned()],
            rows: vec![row("accare", 40.0, 34.0), row("leeg", 0.0, 0.0)],
            total: cell(pb::cell_value::Value::Exact(4)),
            ..Default::default()
        };
        let text = render(&result, Format::Table);
        assert!(
            text.contains(
                "provider  facilities  places  occupied  bezetting %
"
            ),
            "{text}"
        );
        assert!(
            text.contains("\naccare             2      40        34         85.0\n"),
            "{text}"
        );
        assert!(
            text.contains("\nleeg               2       0         0            -\n"),
            "{text}"
        );
    }

    #[test]
    fn table_shows_each_bound_and_says_what_it_means() {
        let text = render(&sample(), Format::Table);
        assert_eq!(
            text,
            "youth_in_care (v1)\n\
             stay_group            youths\n\
             pleegzorg             120 ±3\n\
             jeugdhulp_plus       0 (0–3)\n\
             andere_verblijfzorg    44 ±3\n\
             total: 163 ±3\n\
             n ±b = a published count within b of the true count (cell key method); each count \
             is perturbed on its own, so cells need not add up to the total\n\
             typically within ±1.4 (one standard deviation of the noise; ±b is the most); n (0–u): \
             the true count is between 0 and u\n\
             rules: cell-key perturbation\n"
        );
    }

    #[test]
    fn csv_and_json_carry_the_same_cells() {
        assert_eq!(
            render(&sample(), Format::Csv),
            "stay_group,youths,max_deviation\npleegzorg,120,3\njeugdhulp_plus,0,3\nandere_verblijfzorg,44,3\n"
        );
        let value = json(&sample());
        assert_eq!(value["rows"][1]["count"]["value"], 0);
        assert_eq!(value["rows"][2]["count"]["max_deviation"], 3);
        assert_eq!(value["total"]["value"], 163);
    }
}
